// The opensnoop case of the benchmarks: what tracing every open costs a process that opens
// /dev/null in a loop — untraced, under probe opensnoop, under bpftrace's one-liner equivalent,
// and under opensnoop-bpfcc when it runs here — all in one run, tracers interleaved, medians of 3.
// Part of `bun run bench` (bench/run.ts); `bun bench/opens.ts` runs this case alone.
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { Lines } from "../tests/helpers.ts";
import { kernelView } from "../lib/kernel-view.ts";
import { runAlone, type Row } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
const OPENS = Number(process.env.BENCH_OPENS ?? 200_000);

type Tracer = { name: string; start: () => Promise<{ stop: () => Promise<void> }> };

/** Runs the loop once; `tracer` attached before it starts and stopped after. Returns ns per open. */
async function loopNs(bin: string, tracer?: Tracer): Promise<number> {
  const t = tracer ? await tracer.start() : undefined;
  try {
    const p = Bun.spawn([bin, String(OPENS)], { stdin: "pipe", stdout: "pipe" });
    const out = new Lines(p.stdout);
    await out.waitFor(/^ready (\d+)/);
    p.stdin.write("go\n");
    p.stdin.end();
    const [, ns] = await out.waitFor(/^([\d.]+) /, 300_000);
    await p.exited;
    return Number(ns);
  } finally {
    await t?.stop();
  }
}

/** Resolves once `pid` holds BPF on `n` tracepoints (bpftrace prints "Attaching" before it is done). */
async function tracepointsHeld(pid: number, n: number, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const v = kernelView();
    const held = v.perfEvents.filter((e) => e.pid === pid && e.kind === "tracepoint").length + v.links.filter((l) => l.perfEvent?.kind === "tracepoint" && l.holders.some((h) => h.pid === pid)).length;
    if (held >= n) return;
    if (Date.now() > end) throw new Error(`pid ${pid} did not attach ${n} tracepoints within ${ms} ms`);
    await Bun.sleep(100);
  }
}

async function stopProcess(p: ReturnType<typeof Bun.spawn>): Promise<void> {
  p.kill("SIGINT");
  await p.exited;
}

/** probe's warnings about events it could not keep up with, over all its runs. */
const probeLosses: string[] = [];

const probeTracer: Tracer = {
  name: "probe opensnoop",
  start: async () => {
    // Every open on the host, printed, as the lab runs it; stdout to /dev/null.
    const p = Bun.spawn([PROBE, "opensnoop"], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
    const err = new Lines(p.stderr);
    await err.waitFor(/Ctrl-C/, 20_000);
    return {
      stop: async () => {
        await stopProcess(p);
        probeLosses.push(...(await err.done()).filter((l) => /lost/.test(l)));
      },
    };
  },
};

/** The tracepoints and programs alone: every open enters them, none passes the filter, nothing is printed. */
const probeFilteredTracer: Tracer = {
  name: "probe opensnoop -p other",
  start: async () => {
    const p = Bun.spawn([PROBE, "opensnoop", "-p", String(process.pid)], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
    await new Lines(p.stderr).waitFor(/Ctrl-C/, 20_000);
    return { stop: () => stopProcess(p) };
  },
};

// The same work as opensnoop: path pointer saved at entry, path read and printed with the result at exit.
const BPFTRACE_SCRIPT =
  "tracepoint:syscalls:sys_enter_openat { @path[tid] = args->filename; } " +
  'tracepoint:syscalls:sys_exit_openat /@path[tid]/ { printf("%d %s %d %s\\n", pid, comm, args->ret, str(@path[tid])); delete(@path[tid]); }';

function bpftraceTracer(bin: string): Tracer {
  return {
    name: "bpftrace",
    start: async () => {
      const p = Bun.spawn([bin, "-e", BPFTRACE_SCRIPT], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
      await tracepointsHeld(p.pid, 2);
      return { stop: () => stopProcess(p) };
    },
  };
}

function bccTracer(bin: string): Tracer {
  return {
    name: "opensnoop-bpfcc",
    start: async () => {
      const p = Bun.spawn([bin], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
      await tracepointsHeld(p.pid, 1, 120_000);
      return { stop: () => stopProcess(p) };
    },
  };
}

/** Why opensnoop-bpfcc cannot run here, or undefined when it can. */
function bccProblem(bin: string | null): string | undefined {
  if (!bin) return "not installed (apt-get install bpfcc-tools)";
  const r = Bun.spawnSync([bin, "-d", "1"], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  const text = `${r.stdout}\n${r.stderr}`;
  const headers = /Unable to find kernel headers/.test(text);
  if (headers) return "cannot run: BCC finds no kernel headers for this kernel (no /lib/modules/$(uname -r)/build, no CONFIG_IKHEADERS)";
  if (r.exitCode !== 0) return `cannot run: ${text.trim().split("\n").pop()}`;
  return undefined;
}

/** A difference in ns with its sign. */
function delta(ns: number): string {
  return `${ns >= 0 ? "+" : ""}${ns.toFixed(0)} ns`;
}

export async function opensBench(row: Row): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const bin = join(WORK, "opens");
  const build = Bun.spawnSync(["gcc", "-O2", "-o", bin, join(ROOT, "bench", "opens.c")], { stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`gcc bench/opens.c failed: ${build.stderr}`);
  const bpftrace = Bun.which("bpftrace");
  const bcc = Bun.which("opensnoop-bpfcc");
  const bccWhy = bccProblem(bcc);
  const tracers: Tracer[] = [probeTracer, probeFilteredTracer];
  if (bpftrace) tracers.push(bpftraceTracer(bpftrace));
  if (!bccWhy) tracers.push(bccTracer(bcc!));
  const runs = new Map<string, number[]>([["none", []], ...tracers.map((t) => [t.name, []] as [string, number[]])]);
  for (let i = 0; i < 3; i++) {
    runs.get("none")!.push(await loopNs(bin));
    for (const t of tracers) runs.get(t.name)!.push(await loopNs(bin, t));
  }
  const med = (name: string) => {
    const s = [...runs.get(name)!].sort((a, b) => a - b);
    return s[1]!;
  };
  const base = med("none");
  const ours = med(probeTracer.name);
  row("openat+close of /dev/null, not traced", `${base.toFixed(0)} ns/open`, `${OPENS} opens per case; median of 3`);
  row("  under probe opensnoop (every open, printed)", `${ours.toFixed(0)} ns/open`, `${delta(ours - base)} per open; median of 3, interleaved with the others; ${probeLosses.length ? probeLosses.at(-1) : "no event lost"}`);
  const filtered = med(probeFilteredTracer.name);
  row("  under probe opensnoop -p (another process)", `${filtered.toFixed(0)} ns/open`, `${delta(filtered - base)}: the kernel's part (tracepoints, programs, filter), no events`);
  const peers: string[] = [];
  if (bpftrace) {
    const bt = med("bpftrace");
    row("  under bpftrace enter/exit printf one-liner", `${bt.toFixed(0)} ns/open`, `${delta(bt - base)}; probe's added cost is ${((ours - base) / (bt - base)).toFixed(2)}x bpftrace's`);
    peers.push(bt < ours ? "bpftrace" : "");
  } else row("  under bpftrace", "not installed", "(apt-get install bpftrace)");
  if (!bccWhy) {
    const b = med("opensnoop-bpfcc");
    row("  under opensnoop-bpfcc", `${b.toFixed(0)} ns/open`, `${delta(b - base)}; probe's added cost is ${((ours - base) / (b - base)).toFixed(2)}x bcc's`);
    peers.push(b < ours ? "opensnoop-bpfcc" : "");
  } else row("  under opensnoop-bpfcc", "-", bccWhy);
  const faster = peers.filter(Boolean);
  row("  target: probe below its peers", faster.length ? `missed (${faster.join(", ")} faster)` : "met", "");
}

if (import.meta.main) await runAlone(opensBench);
