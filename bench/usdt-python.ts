// The USDT case of the benchmarks: cost per Python function call when its function__entry probe
// is traced, by probe (counting in the kernel, and streaming every call's file and function) and
// by bpftrace (`@[str(arg1)] = count()`), in one run. CPython 3.11 fires the probe only under a
// profile function (gh-98894), so every traced case runs under cProfile and is compared with
// cProfile alone. `bun bench/usdt-python.ts` runs this case by itself.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lines } from "../tests/helpers.ts";
import { runAlone, median, type Row } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const PROBE = join(ROOT, "dist", "probe");
const PYTHON = "/usr/bin/python3.11";
const SCRIPT = join(import.meta.dir, "pycalls.py");
const CALLS = Number(process.env.BENCH_PY_CALLS ?? 200_000);

type Attach = (pid: number) => Promise<() => Promise<void> | void>;

/** ns per call of the script's loop, with `attach` tracing it first. */
async function pyNs(profiled: boolean, attach?: Attach): Promise<number> {
  const p = Bun.spawn([PYTHON, SCRIPT, String(CALLS), profiled ? "1" : "0"], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(p.stdout);
  await out.waitFor(/^ready/);
  const cleanup = attach ? await attach(p.pid) : undefined;
  p.stdin.write("go\n");
  p.stdin.end();
  const [, ns] = await out.waitFor(/^([\d.]+) ns\/call/, 300_000);
  await p.exited;
  await cleanup?.();
  return Number(ns);
}

async function probeAttach(args: string[], stdoutFile?: string): Promise<Attach> {
  return async (pid) => {
    const p = Bun.spawn([PROBE, ...args, "--pid", String(pid)], { stdout: stdoutFile ? Bun.file(stdoutFile) : "ignore", stderr: "pipe" });
    await new Lines(p.stderr).waitFor(/Ctrl-C/, 20000);
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  };
}

const BPFTRACE_SCRIPT = `usdt:${PYTHON}:python:function__entry { @[str(arg1)] = count(); }`;

function bpftraceAttach(bpftrace: string): Attach {
  return async (pid) => {
    const p = Bun.spawn([bpftrace, "-p", String(pid), "-e", BPFTRACE_SCRIPT], { stdout: "pipe", stderr: "pipe" });
    await new Lines(p.stdout).waitFor(/Attaching/, 30000);
    await Bun.sleep(1500); // "Attaching" is printed before the probe is in place
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  };
}

export async function benchPythonUsdt(row: Row, workDir: string): Promise<void> {
  if (!existsSync(PYTHON)) {
    row("python function__entry", "skipped", `${PYTHON} is missing (apt-get install python3.11)`);
    return;
  }
  const counting = await probeAttach(["usdt", PYTHON, "python:function__entry", "--summary", "-i", "100"]);
  const bpftrace = Bun.which("bpftrace");
  const plain = await pyNs(false);
  row("python call, no profiler, no tracing", `${plain.toFixed(1)} ns/call`, `${CALLS} calls of an empty function per case`);
  // Interleaved three times, medians: the VM's speed drifts as much as the differences measured.
  const base: number[] = [];
  const probe: number[] = [];
  const bt: number[] = [];
  for (let i = 0; i < 3; i++) {
    base.push(await pyNs(true));
    probe.push(await pyNs(true, counting));
    if (bpftrace) bt.push(await pyNs(true, bpftraceAttach(bpftrace)));
  }
  const b = median(base);
  const pr = median(probe);
  row("python call under cProfile (no tracing)", `${b.toFixed(1)} ns/call`, "the baseline: 3.11 fires function__entry only under a profile function");
  row("probe usdt python:function__entry --summary", `${pr.toFixed(1)} ns/call`, `+${(pr - b).toFixed(0)} ns per call over cProfile; median of 3`);
  const file = join(workDir, "usdt-events.json");
  const stream = await pyNs(true, await probeAttach(["usdt", PYTHON, "python:function__entry", "--json"], file));
  const lines = Number(Bun.spawnSync(["wc", "-l", file], { stdout: "pipe" }).stdout.toString().trim().split(" ")[0]);
  rmSync(file, { force: true });
  row("probe usdt python:function__entry --json to a file", `${stream.toFixed(1)} ns/call`, `+${(stream - b).toFixed(0)} ns per call; file and function copied per call; ${lines} events written`);
  if (bpftrace) {
    const t = median(bt);
    row("bpftrace usdt function__entry @[str(arg1)] = count()", `${t.toFixed(1)} ns/call`, `+${(t - b).toFixed(0)} ns per call; probe --summary adds ${((pr - b) / (t - b)).toFixed(2)}x, --json ${((stream - b) / (t - b)).toFixed(2)}x bpftrace's [target < 1]`);
  } else {
    row("bpftrace", "not installed", "(apt-get install bpftrace to compare in the same run)");
  }
}

if (import.meta.main) await runAlone((row) => benchPythonUsdt(row, join(import.meta.dir, ".work")));
