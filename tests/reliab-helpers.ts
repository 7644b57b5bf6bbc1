// Shared by the reliability, new-user, README and signal tests (issues 9 and 10): the binary under
// test (PROBE_BIN, to run the same checks against an older build and see them fail), runs with a
// deadline, fixtures of tests/fixtures/reliab, and what probe holds in the kernel. BPF objects and
// targets that wait for "go" come from tests/helpers.ts, re-exported under the names these import.
import { existsSync } from "node:fs";
import { buildC, probeBinary, start, type Running } from "./helpers.ts";
import { kernelView } from "../lib/kernel-view.ts";

export { clangBpf, clangFixture, startTarget, type Target } from "./helpers.ts";

/** The binary the tests run: $PROBE_BIN when set (an older build, to show a test failing before its fix), else dist/probe. */
export function bin(): string {
  const b = process.env.PROBE_BIN;
  if (b) {
    if (!existsSync(b)) throw new Error(`PROBE_BIN=${b} does not exist`);
    return b;
  }
  return probeBinary();
}

export interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs probe to completion, killed (SIGKILL) after `timeoutMs`. */
export function probe(args: string[], o: { timeoutMs?: number; env?: Record<string, string>; cwd?: string; stdin?: Uint8Array } = {}): Result {
  return runCmd([bin(), ...args], o);
}

export function runCmd(argv: string[], o: { timeoutMs?: number; env?: Record<string, string>; cwd?: string; stdin?: Uint8Array } = {}): Result {
  const t0 = performance.now();
  const r = Bun.spawnSync(argv, {
    stdin: o.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "pipe",
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    timeout: o.timeoutMs ?? 30_000,
    killSignal: "SIGKILL",
  });
  const ms = performance.now() - t0;
  return {
    code: r.exitCode,
    signal: (r.signalCode as string | null) ?? null,
    stdout: r.stdout.toString(),
    stderr: r.stderr.toString(),
    ms,
    timedOut: r.signalCode === "SIGKILL" && ms >= (o.timeoutMs ?? 30_000) - 50,
  };
}

/** Runs probe in the background. */
export function startProbe(args: string[], env: Record<string, string> = {}, cwd?: string): Running {
  return start([bin(), ...args], env, cwd);
}

/** Runs probe in the background and waits for its "Tracing ..." / "Ctrl-C to stop" line (every probe attached). */
export async function startAttached(args: string[], env: Record<string, string> = {}, cwd?: string, ms = 30_000): Promise<Running> {
  const r = startProbe(args, env, cwd);
  try {
    await r.err.waitFor(/Tracing|Ctrl-C to stop/, ms);
  } catch (e) {
    r.proc.kill("SIGKILL");
    throw e;
  }
  return r;
}

/** Ends a background probe with `sig` and returns its exit code and output. */
export async function stop(r: Running, sig: NodeJS.Signals = "SIGINT", ms = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  r.proc.kill(sig);
  const code = await Promise.race([r.proc.exited, Bun.sleep(ms).then(() => "timeout" as const)]);
  if (code === "timeout") {
    r.proc.kill("SIGKILL");
    throw new Error(`probe did not exit within ${ms} ms of ${sig}; stderr:\n${r.err.all.join("\n")}`);
  }
  const [out, err] = await Promise.all([r.out.done(), r.err.done()]);
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** A C fixture of tests/fixtures/reliab (built once per source change into tests/.work). */
export function fixture(name: string, flags: string[] = []): string {
  return buildC(`reliab-${name}`, `reliab/${name}.c`, flags);
}

/** Every BPF program, map and link a process holds an fd to, by id (what must be gone once it has exited). */
export function heldBy(pid: number): { progs: number[]; maps: number[]; links: number[] } {
  const v = kernelView();
  const held = (h: { holders: { pid: number }[] }) => h.holders.some((x) => x.pid === pid);
  return { progs: v.programs.filter(held).map((p) => p.id), maps: v.maps.filter(held).map((m) => m.id), links: v.links.filter(held).map((l) => l.id) };
}

/** Which of these objects the kernel still has (none may be left once their holder exited). */
export function stillThere(ids: { progs: number[]; maps: number[]; links: number[] }): string[] {
  const v = kernelView();
  const p = new Set(v.programs.map((x) => x.id));
  const m = new Set(v.maps.map((x) => x.id));
  const l = new Set(v.links.map((x) => x.id));
  return [...ids.progs.filter((i) => p.has(i)).map((i) => `prog ${i}`), ...ids.maps.filter((i) => m.has(i)).map((i) => `map ${i}`), ...ids.links.filter((i) => l.has(i)).map((i) => `link ${i}`)];
}

/** Kernel objects go away after their last reference (RCU, deferred work): polls for a while. */
export async function eventually<T>(f: () => T | undefined | false, ms = 5000, every = 50): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await Bun.sleep(every);
  }
}

/** What probe printed must never be a runtime's own words (an uncaught exception, a crash banner). */
export const RAW_EXCEPTION = /Bun v\d|panic|Segmentation fault|TypeError|RangeError|ReferenceError|SyntaxError|undefined is not|is not a function|Out of bounds access|at .*\(.*:\d+:\d+\)|internal error/;

/** A seeded PRNG's floats in [0, 1) (mulberry32, as the fuzz tests use). */
export { randomFloats as rng } from "./fixtures/fuzz/mutate.ts";
