// Probes that mark the two ends of one operation — `function__entry`/`function__return`,
// `gc__start`/`gc__done`, `gc__begin`/`gc__end` — paired into calls with a latency. Both ends are
// ordinary probes (no uretprobe): the pairing is done on the events, per thread, with a stack, so
// nested and recursive calls pair innermost first. A return is matched against the innermost open
// call with the same identity (for Python: the same file and function, which function__return
// carries too); calls it skips over lost their return (they were open when probe started, or
// their return probe did not fire) and are dropped.
import type { UsdtProbe } from "./notes.ts";
import { usdtProbeName } from "./select.ts";

const SUFFIXES: readonly [string, string][] = [
  ["__entry", "__return"],
  ["__start", "__done"],
  ["__begin", "__end"],
];

export interface UsdtPair {
  /** `provider:stem`: `python:function`, `python:gc`, `hotspot:method`. */
  name: string;
  entry: UsdtProbe;
  ret: UsdtProbe;
}

/**
 * The pairs `selected` takes part in: each selected probe with its other end from `all` (the
 * file's probes, so naming only `function__entry` is enough). Selected probes that are no end of a
 * pair are returned in `unpaired`.
 */
export function pairUsdtProbes(selected: readonly UsdtProbe[], all: readonly UsdtProbe[]): { pairs: UsdtPair[]; unpaired: UsdtProbe[] } {
  const byName = new Map(all.map((p) => [usdtProbeName(p), p]));
  const pairs = new Map<string, UsdtPair>();
  const unpaired: UsdtProbe[] = [];
  for (const p of selected) {
    let found = false;
    for (const [a, b] of SUFFIXES) {
      const isEntry = p.name.endsWith(a);
      const isRet = p.name.endsWith(b);
      if (!isEntry && !isRet) continue;
      const stem = p.name.slice(0, -(isEntry ? a : b).length);
      if (!stem) continue;
      const entry = byName.get(`${p.provider}:${stem}${a}`);
      const ret = byName.get(`${p.provider}:${stem}${b}`);
      if (!entry || !ret) continue;
      pairs.set(`${p.provider}:${stem}`, { name: `${p.provider}:${stem}`, entry, ret });
      found = true;
      break;
    }
    if (!found) unpaired.push(p);
  }
  return { pairs: [...pairs.values()], unpaired };
}

interface Open<T> {
  identity: string;
  ts: bigint;
  value: T;
}

/** Bounds on what is kept for calls that never return (threads that exit, lost returns). */
const MAX_DEPTH = 4096;
const MAX_STACKS = 65536;
/** How far below the top a return's call is looked for before the return is called an orphan. */
const MAX_SKIP = 64;

export interface Paired<T> {
  value: T;
  latencyNs: bigint;
  /** Open calls above it that were dropped (their return was never seen). */
  dropped: number;
}

/** Open calls per (thread, pair), innermost last. */
export class CallStacks<T> {
  private readonly stacks = new Map<string, Open<T>[]>();
  /** Returns with no open call to pair with. */
  orphans = 0;
  /** Calls dropped unpaired (stack overflow, skipped over, or evicted). */
  dropped = 0;

  /** A call starts on thread `tid`: `identity` is what its return must carry too ('' matches any). */
  enter(tid: number, pair: number, identity: string, ts: bigint, value: T): void {
    const key = `${tid}:${pair}`;
    let s = this.stacks.get(key);
    if (!s) {
      if (this.stacks.size >= MAX_STACKS) this.evict();
      s = [];
      this.stacks.set(key, s);
    }
    if (s.length >= MAX_DEPTH) {
      s.shift();
      this.dropped++;
    }
    s.push({ identity, ts, value });
  }

  /** A call returns: its open call and latency, or undefined (an orphan return). */
  leave(tid: number, pair: number, identity: string, ts: bigint): Paired<T> | undefined {
    const key = `${tid}:${pair}`;
    const s = this.stacks.get(key);
    if (!s?.length) {
      this.orphans++;
      return undefined;
    }
    const lowest = Math.max(0, s.length - MAX_SKIP);
    for (let i = s.length - 1; i >= lowest; i--) {
      const o = s[i]!;
      if (identity && o.identity && o.identity !== identity) continue;
      const dropped = s.length - 1 - i;
      s.length = i;
      this.dropped += dropped;
      if (!s.length) this.stacks.delete(key);
      return { value: o.value, latencyNs: ts >= o.ts ? ts - o.ts : 0n, dropped };
    }
    this.orphans++;
    return undefined;
  }

  /** Open calls now (not yet returned). */
  get open(): number {
    let n = 0;
    for (const s of this.stacks.values()) n += s.length;
    return n;
  }

  private evict(): void {
    // The oldest threads first: a busy process's threads that exited are the ones left behind.
    let n = 0;
    for (const [k, s] of this.stacks) {
      this.dropped += s.length;
      this.stacks.delete(k);
      if (++n >= MAX_STACKS / 4) break;
    }
  }
}
