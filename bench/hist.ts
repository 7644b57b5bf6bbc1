// The --hist and --stack(s) cases of the benchmarks (issue 13): the cost per call of a latency
// histogram counted in BPF against probe's own counting programs and bpftrace's
// `@ = hist(nsecs - @start[tid])`; of a parameter's histogram; of counted stacks through Debian's
// libc against bpftrace's `@[ustack] = count()`, with the frames each reaches; and symbolizing
// 100,000 distinct addresses. Ratios compare cases of this same run. Part of `bun run bench`
// (bench/run.ts); `bun bench/hist.ts` runs these cases alone.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lines } from "../tests/helpers.ts";
import { Scope } from "../lib/scope.ts";
import { kernelView } from "../lib/kernel-view.ts";
import { ProcessViews } from "../src/stack-views.ts";
import { runAlone, median, type Row } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
const CALLS = Number(process.env.BENCH_HIST_CALLS ?? 1_000_000);
const STACK_CALLS = Number(process.env.BENCH_STACK_CALLS ?? 20_000);

function gcc(out: string, src: string, flags: string[]): string {
  const r = Bun.spawnSync(["gcc", ...flags, "-o", out, src], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`gcc ${src} failed: ${r.stderr}`);
  return out;
}

/** Starts dist/probe and resolves when it reports being attached. */
async function probeRun(args: string[], stdoutFile?: string) {
  const p = Bun.spawn([PROBE, ...args], { stdout: stdoutFile ? Bun.file(stdoutFile) : "ignore", stderr: "pipe" });
  const err = new Lines(p.stderr);
  await err.waitFor(/Ctrl-C/, 30000);
  return { p, err };
}

type Attach = (pid: number) => Promise<() => Promise<void> | void>;

/** Resolves once `pid` holds `n` uprobes or uretprobes (bpftrace prints "Attaching" before it is done). */
async function uprobesHeld(pid: number, n: number, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const v = kernelView();
    const held = v.perfEvents.filter((e) => e.pid === pid && (e.kind === "uprobe" || e.kind === "uretprobe")).length + v.links.filter((l) => l.uprobe && l.holders.some((h) => h.pid === pid)).length;
    if (held >= n) return;
    if (Date.now() > end) throw new Error(`pid ${pid} did not attach ${n} uprobes within ${ms} ms`);
    await Bun.sleep(100);
  }
}

/**
 * Runs `argv` (a loop that prints "ready PID", waits for a line, prints "NS_PER_CALL ...", then
 * waits for stdin to close when `stay`), with a tracer attached before the loop and stopped after
 * it; with `stay`, the tracer stops (and names stacks) while the process still runs.
 */
async function loopNs(argv: string[], attach?: Attach, stay = false): Promise<number> {
  const p = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(p.stdout);
  const [, pid] = await out.waitFor(/^ready (\d+)/);
  const cleanup = attach ? await attach(Number(pid)) : undefined;
  p.stdin.write("go\n");
  if (stay) p.stdin.flush();
  else p.stdin.end();
  const [, ns] = await out.waitFor(/^([\d.]+) /, 300000);
  if (!stay) await p.exited;
  await cleanup?.();
  if (stay) {
    p.stdin.end();
    await p.exited;
  }
  return Number(ns);
}

export async function histBench(row: Row): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const LOOP = gcc(join(WORK, "loop"), join(ROOT, "bench", "loop.c"), ["-O0"]);
  // Stacks through Debian's libc (qsort -> compare -> bench_target); the program keeps frame pointers.
  const STACKS = gcc(join(WORK, "stacks"), join(ROOT, "bench", "stacks.c"), ["-O2", "-fno-omit-frame-pointer"]);
  const bpftrace = Bun.which("bpftrace");
  const loop = [LOOP, String(CALLS)];
  console.error(`hist and stacks: ${CALLS} calls per histogram case, ${STACK_CALLS} per stacks case`);

  // --- histograms (--hist): counted in BPF, no event per call ---------------------------------------
  /** Runs probe for the loop until it ends, then stops it (its report at exit is not measured). */
  const probeDuring = (args: string[], stdoutFile?: string) => async (pid: number) => {
    const { p } = await probeRun([...args, "--pid", String(pid)], stdoutFile);
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  };
  const bpftraceDuring = (script: (pid: number) => string, probes: number, stdoutFile?: string) => async (pid: number) => {
    const p = Bun.spawn([bpftrace!, "-p", String(pid), "-e", script(pid)], { stdout: stdoutFile ? Bun.file(stdoutFile) : "ignore", stderr: "pipe" });
    await uprobesHeld(p.pid, probes);
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  };
  {
    const latencyRuns: number[] = [];
    const btRuns: number[] = [];
    const counting: number[] = [];
    const pairs: number[] = [];
    for (let i = 0; i < 3; i++) {
      counting.push(await loopNs(loop, probeDuring(["uprobe", LOOP, "bench_fn", "--summary", "-i", "100"])));
      pairs.push(await loopNs(loop, probeDuring(["uprobe", LOOP, "bench_fn", "--ret", "--summary", "-i", "100"])));
      latencyRuns.push(await loopNs(loop, probeDuring(["uprobe", LOOP, "bench_fn", "--hist"])));
      if (bpftrace) btRuns.push(await loopNs(loop, bpftraceDuring(() => `uprobe:${LOOP}:bench_fn { @start[tid] = nsecs; } uretprobe:${LOOP}:bench_fn /@start[tid]/ { @ = hist(nsecs - @start[tid]); delete(@start[tid]); }`, 2)));
    }
    const lat = median(latencyRuns);
    const count = median(counting);
    const entryRet = median(pairs);
    row("--hist: probe counting (--summary), for reference", `${count.toFixed(1)} ns/call`, "median of 3, interleaved with the rows below");
    row("--hist: entry+return counting (--ret --summary)", `${entryRet.toFixed(1)} ns/call`, "median of 3");
    row("--hist latency (entry+return, log2 in BPF)", `${lat.toFixed(1)} ns/call`, `${(lat / entryRet).toFixed(2)}x entry+return counting, ${(lat / count).toFixed(2)}x counting; median of 3`);
    if (bpftrace) {
      const bt = median(btRuns);
      row("  bpftrace @ = hist(nsecs - @start[tid])", `${bt.toFixed(1)} ns/call`, `probe's --hist latency is ${(lat / bt).toFixed(2)}x this [target <= 1x]; median of 3, interleaved`);
    }
    const arg = await loopNs(loop, probeDuring(["uprobe", LOOP, "long bench_fn(long a, long b)", "--hist", "a"]));
    row("--hist a (a parameter, read at the call)", `${arg.toFixed(1)} ns/call`, `${(arg / count).toFixed(2)}x counting`);
    const lin = await loopNs(loop, probeDuring(["uprobe", LOOP, "long bench_fn(long a, long b)", "--hist", "a", "--linear", "0,4000,1000000"]));
    row("--hist a --linear 0,4000,1000000", `${lin.toFixed(1)} ns/call`, `${(lin / count).toFixed(2)}x counting`);
  }

  // --- stacks through Debian's libc ------------------------------------------------------------------
  {
    const stacksArgv = [STACKS, String(STACK_CALLS)];
    const stacksNs = (attach?: Attach) => loopNs(stacksArgv, attach, true);
    const base = await stacksNs();
    row("--stacks: qsort -> compare -> bench_target, no probe", `${base.toFixed(1)} ns/call`, `${STACK_CALLS} calls per case`);
    /** The folded stacks probe printed: calls seen, and the frames of the most common stack. */
    const folded = (file: string) => {
      const lines = readFileSync(file, "utf8").split("\n").filter((l) => l);
      const parsed = lines.map((l) => ({ frames: l.slice(0, l.lastIndexOf(" ")).split(";").slice(1), count: Number(l.slice(l.lastIndexOf(" ") + 1)) }));
      parsed.sort((a, b) => b.count - a.count);
      return { calls: parsed.reduce((n, x) => n + x.count, 0), top: parsed[0]?.frames ?? [] };
    };
    const out = join(WORK, "stacks.folded");
    for (const mode of ["auto", "fp"] as const) {
      rmSync(out, { force: true });
      const ns = await stacksNs(probeDuring(["uprobe", STACKS, "bench_target", "--folded", "--unwind", mode], out));
      const f = folded(out);
      row(
        `--stacks --unwind ${mode}`,
        `${ns.toFixed(1)} ns/call`,
        `${(ns / base).toFixed(1)}x no probe; ${f.calls} of ${STACK_CALLS} stacks counted; ${f.top.length} frames: ${[...f.top].reverse().join(" <- ")}${mode === "auto" ? ` [target: reaches main: ${f.top.includes("main") ? "yes" : "NO"}]` : ""}`,
      );
    }
    if (bpftrace) {
      const btOut = join(WORK, "bpftrace-ustack.txt");
      rmSync(btOut, { force: true });
      const ns = await stacksNs(bpftraceDuring(() => `uprobe:${STACKS}:bench_target { @[ustack] = count(); }`, 1, btOut));
      const text = readFileSync(btOut, "utf8");
      const blocks = [...text.matchAll(/@\[\n([\s\S]*?)\]: (\d+)/g)].map((m) => ({ frames: m[1]!.split("\n").map((l) => l.trim()).filter(Boolean), count: Number(m[2]) }));
      blocks.sort((a, b) => b.count - a.count);
      const top = blocks[0]?.frames ?? [];
      row("  bpftrace @[ustack] = count()", `${ns.toFixed(1)} ns/call`, `${(ns / base).toFixed(1)}x no probe; ${blocks.reduce((n, b) => n + b.count, 0)} stacks counted; ${top.length} frames: ${top.join(" <- ")}`);
    }
    rmSync(out, { force: true });
  }

  // --- symbolizing: 100,000 distinct addresses of Debian's libc (names from libc6-dbg where installed) --
  {
    const target = Bun.spawn([LOOP, "1"], { stdin: "pipe", stdout: "pipe" });
    const o = new Lines(target.stdout);
    const [, pid] = await o.waitFor(/^ready (\d+)/);
    const scope = new Scope();
    const views = new ProcessViews(scope);
    const space = views.space(Number(pid))!;
    const text = space.mappings.find((m) => /libc\.so/.test(m.path) && m.perms?.includes("x"))!;
    const n = 100_000;
    const step = (text.end - text.start) / n;
    let t = performance.now();
    views.symbolizer.symbolize(space, text.start);
    const cold = performance.now() - t;
    t = performance.now();
    let known = 0;
    for (let i = 0; i < n; i++) if (views.symbolizer.symbolize(space, Math.floor(text.start + i * step)).known) known++;
    const warm = performance.now() - t;
    row("symbolize 100,000 distinct libc addresses", `${(cold + warm).toFixed(0)} ms`, `${cold.toFixed(0)} ms to read libc's and its debug file's symbols, then ${((warm / n) * 1000).toFixed(2)} µs each; ${known} named [target < 1 s]`);
    scope.close();
    target.kill();
  }
}

if (import.meta.main) await runAlone(histBench);
