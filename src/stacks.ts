// User stacks of probed calls: stack records (bpf/uprobe.h struct stack_event: the registers and
// the top of the stack as the program copied them, or the kernel's frame-pointer walk) unwound
// here with lib/unwind and named in the target process's view (src/stack-views.ts); for --stack
// one stack per call line, for --stacks calls counted per unique stack (by the unwound pcs, per
// process), printed at exit as the top stacks, folded lines or a flame graph.
import { STACK_COPY_MAX, STACK_COUNT, STACK_COUNT_KEY, STACK_EVENT, STACK_FP_MAX, commAt } from "../lib/layouts.ts";
import { FoldedStacks } from "../lib/flamegraph.ts";
import { MapReader } from "../lib/maps.ts";
import { frameLabel, unwind, type FrameMethod, type SymbolizedFrame, type UnwindEnd, type UnwindMode } from "../lib/unwind/index.ts";
import { writeFileSync } from "node:fs";
import { renderFlameGraph } from "../lib/flamegraph.ts";
import { hex, type Out } from "./output.ts";
import { ProbeError } from "../lib/errors.ts";
import { UsageError } from "./errors.ts";
import { parseBytes } from "./options.ts";
import type { ProcessRow } from "./process-rows.ts";
import type { ProcessViews } from "./stack-views.ts";

/** What --stack, --stacks, --unwind, --stack-size, --folded and --flamegraph ask for. */
export interface StackRequest {
  /** --stacks: calls counted per unique stack (else --stack: one stack per call line). */
  aggregate: boolean;
  mode: StackMode;
  /** Bytes of stack copied per call (cfi, auto). */
  stackSize: number;
  folded: boolean;
  flamegraph?: string;
}

export const DEFAULT_STACK_SIZE = 16 << 10;

export interface StackOptionValues {
  stack?: boolean;
  stacks?: boolean;
  unwind?: unknown;
  stackSize?: unknown;
  folded?: boolean;
  flamegraph?: unknown;
  json?: boolean;
}

/** Validates the stack options (usage errors before anything is loaded); undefined without any. */
export function parseStackOptions(o: StackOptionValues): StackRequest | undefined {
  const flamegraph = o.flamegraph === undefined || o.flamegraph === false ? undefined : String(Array.isArray(o.flamegraph) ? o.flamegraph.at(-1) : o.flamegraph);
  if (flamegraph !== undefined && (flamegraph === "" || flamegraph === "true")) throw new UsageError("--flamegraph takes the file to write (FILE.svg)");
  // --folded and --flamegraph are about counted stacks: they imply --stacks.
  const aggregate = !!(o.stacks || o.folded || flamegraph !== undefined);
  if (!aggregate && !o.stack) {
    if (o.unwind !== undefined) throw new UsageError("--unwind goes with --stack or --stacks");
    if (o.stackSize !== undefined) throw new UsageError("--stack-size goes with --stack or --stacks");
    return undefined;
  }
  if (o.stack && aggregate) throw new UsageError("--stack prints each call's stack, --stacks (--folded, --flamegraph) counts calls per stack: choose one");
  const unwind = o.unwind === undefined ? "auto" : String(Array.isArray(o.unwind) ? o.unwind.at(-1) : o.unwind);
  if (unwind !== "auto" && unwind !== "cfi" && unwind !== "fp") throw new UsageError(`--unwind is auto, cfi or fp, not '${unwind}'`);
  if (unwind === "fp" && o.stackSize !== undefined) throw new UsageError("--stack-size is the stack copied for --unwind cfi/auto; --unwind fp copies none");
  const stackSize = parseBytes("stack-size", o.stackSize, DEFAULT_STACK_SIZE, STACK_COPY_MAX);
  if (stackSize < 512) throw new UsageError(`--stack-size takes at least 512 bytes, not '${String(o.stackSize)}'`);
  if (o.folded && o.json) throw new UsageError("--folded writes folded text, --json objects: choose one");
  return { aggregate, mode: unwind, stackSize: stackSize - (stackSize % 8), folded: !!o.folded, flamegraph };
}

const TWO32 = 4294967296;

/** `fp`: the kernel's frame-pointer walk only (no stack copied); the others unwind a copy of the stack. */
export type StackMode = UnwindMode;

/** One call's stack, unwound (not yet named). */
export interface StackSample extends ProcessRow {
  tid: number;
  tsLo: number;
  tsHi: number;
  pcs: number[];
  /** Which pcs are where code stopped rather than return addresses (frame 0, signal frames). */
  exact: boolean[];
  methods: FrameMethod[];
  end?: UnwindEnd;
  /** Bytes of stack the program could copy. */
  copied: number;
}

function u64(v: DataView, off: number): number {
  return v.getUint32(off + 4, true) * TWO32 + v.getUint32(off, true);
}

export class StackUnwinder {
  constructor(
    private readonly views: ProcessViews,
    private readonly mode: StackMode,
    /** Per function: probed at its first instruction, so that the return address is at rsp. */
    private readonly atEntry: boolean[],
  ) {}

  /** Unwinds the stack record at `off` (its bytes are read now: call while the ring buffer holds them). */
  fromRecord(v: DataView, off: number, len: number): StackSample {
    const E = STACK_EVENT;
    const pid = v.getUint32(off + E.pid, true);
    const func = v.getUint32(off + E.func, true);
    const regs = (i: number) => u64(v, off + E.regs + i * 8);
    const base = {
      pid,
      tid: v.getUint32(off + E.tid, true),
      func,
      comm: commAt(v, off + E.comm),
      nspid: v.getUint32(off + E.nspid, true),
      tsLo: v.getUint32(off + E.ts, true),
      tsHi: v.getUint32(off + E.ts + 4, true),
    };
    if (this.mode === "fp") {
      const nfp = Math.min(v.getUint32(off + E.nfp, true), STACK_FP_MAX);
      const fp: number[] = [];
      for (let i = 0; i < nfp; i++) fp.push(u64(v, off + E.fp + i * 8));
      const pcs = fpStack(regs(0), u64(v, off + E.at_sp), fp, this.atEntry[func] ?? false);
      if (pcs.length > 1) this.views.remember(pid);
      return { ...base, pcs, exact: pcs.map((_, i) => i === 0), methods: pcs.map((_, i) => (i === 0 ? "regs" : "fp")), copied: 0 };
    }
    const copied = Math.min(v.getUint32(off + E.stack_len, true), Math.max(0, len - E.size));
    const stack = new Uint8Array(v.buffer, v.byteOffset + off + E.size, copied);
    const snap = {
      regs: { rip: regs(0), rsp: regs(1), rbp: regs(2), rbx: regs(3), r12: regs(4), r13: regs(5), r14: regs(6), r15: regs(7) },
      stack,
      stackAddr: regs(1),
    };
    let space = this.views.space(pid);
    if (!space) return { ...base, pcs: [snap.regs.rip], exact: [true], methods: ["regs"], end: "no-mapping", copied };
    let r = unwind(space, snap, { mode: this.mode });
    // A pc in no mapping may be in a library loaded since the maps were read.
    if (r.end === "no-mapping" && this.views.refresh(pid)) {
      space = this.views.space(pid)!;
      r = unwind(space, snap, { mode: this.mode });
    }
    return { ...base, pcs: r.pcs, exact: r.exact, methods: r.methods, end: r.end, copied };
  }

  /** Names every frame of a sample (in its process's view as read while it ran). */
  frames(s: { pid: number; pcs: number[]; exact: boolean[] }): SymbolizedFrame[] {
    const space = this.views.space(s.pid);
    if (!space) return s.pcs.map((pc) => ({ pc, symbol: "[unknown]", known: false, offset: 0, file: "" }));
    return this.views.symbolizer.symbolizeStack(space, s.pcs, s.exact);
  }
}

/**
 * A frame-pointer walk's pcs: rip, then the return address at rsp when the probe is at a
 * function's first instruction (the function has not pushed a frame yet, so rbp still is its
 * caller's, and the walk, following rbp, would skip the caller), then the walk's return addresses.
 */
export function fpStack(rip: number, atSp: number, walk: number[], atEntry: boolean): number[] {
  const rest = walk.length && walk[0] === rip ? walk.slice(1) : walk;
  const pcs = [rip];
  if (atEntry && atSp) pcs.push(atSp);
  for (const pc of rest) {
    if (!pc) break;
    pcs.push(pc);
  }
  return pcs;
}

/** Why a walk stopped, where that is worth saying (it did not reach the outermost frame). */
export function endText(end: UnwindEnd | undefined, copied: number): string | undefined {
  switch (end) {
    case "stack-end": return `the rest is beyond the ${copied} bytes of stack copied (--stack-size)`;
    case "no-unwind-info": return "no unwind information for the next frame (and no frame pointer)";
    case "no-frame-pointer": return "no frame pointer to follow";
    case "bad-unwind-info": return "malformed unwind information";
    case "unknown-register": return "the unwind rule needs a register not known here";
    case "max-frames": return "frame limit reached";
    default: return undefined;
  }
}

/** `    target+0x9 (chain)` lines for --stack. */
export function stackLines(frames: SymbolizedFrame[], indent = "        "): string[] {
  return frames.map((f) => {
    if (!f.known) return `${indent}${frameLabel(f, { offsets: true })}`;
    const where = f.file ? ` (${f.file.slice(f.file.lastIndexOf("/") + 1)})` : "";
    return `${indent}${frameLabel(f, { offsets: true })}${where}`;
  });
}

/** A stack's frames in JSON. */
export function stackJson(frames: SymbolizedFrame[]): string {
  return JSON.stringify(
    frames.map((f) => ({
      pc: hex(BigInt(f.pc)),
      function: f.symbol,
      ...(f.demangled ? { demangled: f.demangled } : {}),
      ...(f.known ? { offset: f.offset } : {}),
      file: f.file,
      ...(f.fileOffset !== undefined ? { file_offset: hex(BigInt(f.fileOffset)) } : {}),
    })),
  );
}

interface Counted extends ProcessRow {
  pcs: number[];
  exact: boolean[];
  count: number;
}

/** A stack as reported: its frames by name (and file), how often, by which process(es). */
export interface StackTotal {
  comm: string;
  /** With per-process counting; else the stacks of every process of that name are summed. */
  pid?: number;
  func: number;
  /** name: as shown (demangled); symbol: the symbol table's name, where that is another. */
  frames: { name: string; file: string; symbol?: string }[];
  count: number;
}

/** Calls per unique stack: by the unwound pcs per process while running, by name at the end. */
export class StackCounter {
  private readonly byPcs = new Map<string, Counted>();
  calls = 0;

  add(s: StackSample, count = 1): void {
    this.calls += count;
    const key = `${s.pid}:${s.func}:${s.pcs.join(",")}:${s.exact.map((e) => (e ? 1 : 0)).join("")}`;
    const c = this.byPcs.get(key);
    if (c) c.count += count;
    else this.byPcs.set(key, { pid: s.pid, func: s.func, comm: s.comm, nspid: s.nspid, pcs: s.pcs, exact: s.exact, count });
  }

  /** Every distinct stack, named, summed by name (per process with `perProcess`), most calls first. */
  totals(unwinder: StackUnwinder, perProcess: boolean): StackTotal[] {
    const merged = new Map<string, StackTotal>();
    for (const c of this.byPcs.values()) {
      const frames = unwinder.frames(c).map((f) => ({ name: frameLabel(f), file: f.file, ...(f.demangled ? { symbol: f.symbol } : {}) }));
      const key = JSON.stringify([c.comm, perProcess ? c.pid : 0, c.func, frames]);
      const t = merged.get(key);
      if (t) t.count += c.count;
      else merged.set(key, { comm: c.comm, ...(perProcess ? { pid: c.pid } : {}), func: c.func, frames, count: c.count });
    }
    return [...merged.values()].sort((a, b) => b.count - a.count || a.comm.localeCompare(b.comm));
  }
}

/** Folded lines (`comm;outermost;...;innermost count`) of the totals. */
export function foldedOf(totals: StackTotal[]): FoldedStacks {
  const f = new FoldedStacks();
  for (const t of totals) f.addStack(t.pid !== undefined ? `${t.comm} [${t.pid}]` : t.comm, t.frames.map((x) => x.name), t.count);
  return f;
}

/**
 * STACK_FP_COUNT: the program's counts per (process, function, frame-pointer stack) and its
 * stack map, read into a StackCounter (the return address at rsp put back as the caller).
 */
export function readFpCounts(countsFd: number, stackIdsFd: number, atEntry: boolean[], views: ProcessViews): StackCounter {
  const counts = new MapReader(countsFd);
  const ids = new MapReader(stackIdsFd);
  const out = new StackCounter();
  const stacks = new Map<number, number[]>();
  for (const { key, values } of counts.entries()) {
    const k = new DataView(key.buffer, key.byteOffset, STACK_COUNT_KEY.size);
    const v = new DataView(values[0]!.buffer, values[0]!.byteOffset, STACK_COUNT.size);
    const id = k.getInt32(STACK_COUNT_KEY.stack_id, true);
    let walk = stacks.get(id);
    if (!walk) {
      const [ips] = ids.lookup(new Uint8Array(new Int32Array([id]).buffer)) ?? [];
      walk = [];
      if (ips) {
        const d = new DataView(ips.buffer, ips.byteOffset, ips.byteLength);
        for (let o = 0; o + 8 <= ips.byteLength; o += 8) {
          const pc = u64(d, o);
          if (!pc) break;
          walk.push(pc);
        }
      }
      stacks.set(id, walk);
    }
    const pid = k.getUint32(STACK_COUNT_KEY.pid, true);
    const func = k.getUint32(STACK_COUNT_KEY.func, true);
    if (!walk.length) continue;
    const pcs = fpStack(walk[0]!, u64(k, STACK_COUNT_KEY.at_sp), walk, atEntry[func] ?? false);
    views.remember(pid);
    const n = u64(v, STACK_COUNT.calls);
    out.add({ pid, tid: pid, func, comm: commAt(v, STACK_COUNT.comm), nspid: v.getUint32(STACK_COUNT.nspid, true), tsLo: 0, tsHi: 0, pcs, exact: pcs.map((_, i) => i === 0), methods: [], copied: 0 }, n);
  }
  return out;
}

/** Pids in the program's STACK_FP_COUNT table (their maps are read while they still run). */
export function fpCountPids(countsFd: number): number[] {
  const pids = new Set<number>();
  for (const key of new MapReader(countsFd).keys()) pids.add(new DataView(key.buffer, key.byteOffset).getUint32(STACK_COUNT_KEY.pid, true));
  return [...pids];
}

/**
 * The end of --stacks: the stacks by calls (most first; JSON: every one), or folded lines, and the
 * flame graph file. `note` says on stderr where the graph went.
 */
export function reportStacks(totals: StackTotal[], calls: number, req: StackRequest, names: string[], json: boolean, out: Out, note: (s: string) => void, title: string, humanMax: number): void {
  if (req.flamegraph !== undefined) {
    const svg = renderFlameGraph(foldedOf(totals), { title, subtitle: `${calls} calls, ${totals.length} distinct stacks`, countName: "calls" });
    try {
      writeFileSync(req.flamegraph, svg);
    } catch (e) {
      throw new ProbeError(`cannot write the flame graph to ${req.flamegraph}: ${(e as Error).message}`);
    }
    note(`probe: flame graph of ${calls} calls (${totals.length} stacks) written to ${req.flamegraph}`);
  }
  if (req.folded) {
    const text = foldedOf(totals).toString();
    for (const line of text.split("\n")) if (line) out.line(line);
    out.flush();
    return;
  }
  if (json) {
    for (const t of totals) {
      out.line(JSON.stringify({
        event: "stack", count: t.count, comm: t.comm, ...(t.pid !== undefined ? { pid: t.pid } : {}), function: names[t.func] ?? `#${t.func}`,
        frames: t.frames.map((f) => ({ function: f.symbol ?? f.name, ...(f.symbol ? { demangled: f.name } : {}), file: f.file })),
      }));
    }
    out.flush();
    return;
  }
  for (const t of totals.slice(0, humanMax)) {
    out.line(`${t.comm}${t.pid !== undefined ? ` [${t.pid}]` : ""}: ${t.count} call${t.count === 1 ? "" : "s"}`);
    for (const f of t.frames) out.line(`    ${f.name}`);
    out.line("");
  }
  if (totals.length > humanMax) {
    const rest = totals.slice(humanMax);
    out.line(`... and ${rest.length} more stacks (${rest.reduce((n, t) => n + t.count, 0)} calls)`);
  }
  out.line(`${calls} call${calls === 1 ? "" : "s"}, ${totals.length} distinct stack${totals.length === 1 ? "" : "s"}`);
  out.flush();
}
