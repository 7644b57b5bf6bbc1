// Signals at random moments of probe's life (a fixed seed: the same runs every time): SIGINT,
// SIGTERM, SIGHUP and SIGKILL to uprobe, ssl-read, load, opensnoop and tracepoint, from its first
// milliseconds (still starting, loading, attaching) to its loop. Each run must end (no hang) with
// the signal's exit: 0 after tracing started (with exactly one final report where the command has
// one), the signal's own status before; and nothing it created may stay in the kernel.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES } from "../helpers.ts";
import { bin, fixture, startTarget, clangBpf, rng, RAW_EXCEPTION, type Target } from "../reliab-helpers.ts";
import { kernelView, type KernelView } from "../../lib/kernel-view.ts";

const SEED = 0x5eed_0009;
const RUNS = 40;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"] as const;
const SIGNO = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15, SIGKILL: 9 } as const;

let target: Target;
let feeder: Timer;
let countObj: string;

beforeAll(async () => {
  countObj = clangBpf("reliab-count", readFileSync(join(FIXTURES, "reliab", "bpf", "count.bpf.c"), "utf8"));
  // A process that mallocs, opens and calls getppid every 20 ms: every command has events.
  target = await startTarget([fixture("workload")]);
  feeder = setInterval(() => {
    target.r.proc.stdin.write("go\n");
    void target.r.proc.stdin.flush();
  }, 20);
});

afterAll(() => {
  clearInterval(feeder);
  target.r.proc.kill("SIGKILL");
});

interface Command {
  name: string;
  args: (pid: number) => string[];
  /** What the final report starts with, for commands that print one at exit. */
  report?: RegExp;
}

const COMMANDS: Command[] = [
  { name: "uprobe events", args: (p) => ["uprobe", "libc", "getppid", "--pid", String(p)] },
  { name: "uprobe --summary", args: (p) => ["uprobe", "libc", "malloc", "--ret", "--summary", "-i", "0.1", "--pid", String(p)], report: /^TOTAL\s/gm },
  { name: "load --maps", args: (p) => ["load", countObj, "--pid", String(p), "--attach", "count_calls=uprobe:libc:getppid", "--maps", "calls", "-i", "0.1"], report: /^final calls /gm },
  { name: "ssl-read", args: (p) => ["ssl-read", "--lib", "libssl", "--pid", String(p), "-i", "0.1"], report: /^TOTAL\s/gm },
  { name: "opensnoop", args: (p) => ["opensnoop", "-p", String(p)] },
  { name: "tracepoint", args: (p) => ["tracepoint", "syscalls:sys_enter_getppid", "-p", String(p)] },
];

/** Programs, maps and links with no process, pin or live link behind them: left by a probe that is gone. */
function orphans(v: KernelView, after: { prog: number; map: number; link: number }): string[] {
  const liveProgs = new Set<number>();
  for (const l of v.links) if (l.holders.length || l.pins.length) liveProgs.add(l.progId);
  for (const p of v.perfEvents) liveProgs.add(p.progId);
  const liveMaps = new Set<number>();
  for (const p of v.programs) if (p.holders.length || p.pins.length || liveProgs.has(p.id)) for (const m of p.mapIds) liveMaps.add(m);
  return [
    ...v.programs.filter((p) => p.id > after.prog && !p.holders.length && !p.pins.length && !liveProgs.has(p.id)).map((p) => `prog ${p.id} ${p.name}`),
    ...v.links.filter((l) => l.id > after.link && !l.holders.length && !l.pins.length).map((l) => `link ${l.id}`),
    ...v.maps.filter((m) => m.id > after.map && !m.holders.length && !m.pins.length && !liveMaps.has(m.id)).map((m) => `map ${m.id} ${m.name}`),
  ];
}

function maxIds(v: KernelView): { prog: number; map: number; link: number } {
  const max = (xs: { id: number }[]) => xs.reduce((m, x) => Math.max(m, x.id), 0);
  return { prog: max(v.programs), map: max(v.maps), link: max(v.links) };
}

describe("signals at random moments", () => {
  test(`${RUNS} runs (seed 0x${SEED.toString(16)}): the signal's exit, one final report, nothing left in the kernel`, async () => {
    const random = rng(SEED);
    const before = maxIds(kernelView());
    const tally = { runs: 0, beforeTracing: 0, afterTracing: 0, killed: 0, hangs: 0, leaks: 0, reports: 0 };
    const failures: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < RUNS; i++) {
      const cmd = COMMANDS[Math.floor(random() * COMMANDS.length)]!;
      const sig = SIGNALS[Math.floor(random() * SIGNALS.length)]!;
      // Half the runs in the first 150 ms (starting, loading, attaching), half in the loop.
      const delay = random() < 0.5 ? random() * 150 : 150 + random() * 450;
      const proc = Bun.spawn([bin(), ...cmd.args(target.pid)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const out = new Response(proc.stdout).text();
      const err = new Response(proc.stderr).text();
      await Bun.sleep(delay);
      proc.kill(sig);
      const ended = await Promise.race([proc.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
      const what = `run ${i}: ${cmd.name}, ${sig} at ${delay.toFixed(0)} ms`;
      tally.runs++;
      if (!ended) {
        tally.hangs++;
        failures.push(`${what}: still running 10 s later`);
        proc.kill("SIGKILL");
        await proc.exited;
        continue;
      }
      const [stdout, stderr] = await Promise.all([out, err]);
      const tracing = /Tracing|Loaded|Ctrl-C to stop/.test(stderr);
      if (stderr.match(RAW_EXCEPTION)) failures.push(`${what}: ${stderr.match(RAW_EXCEPTION)![0]} in stderr`);
      if (sig === "SIGKILL") {
        tally.killed++;
        if (proc.signalCode !== "SIGKILL") failures.push(`${what}: ended with ${proc.exitCode}/${proc.signalCode}, not by SIGKILL`);
      } else if (tracing) {
        tally.afterTracing++;
        if (proc.exitCode !== 0) failures.push(`${what}: exit ${proc.exitCode}/${proc.signalCode} after tracing started, not 0; stderr: ${stderr.slice(-300)}`);
        if (cmd.report) {
          const n = stdout.match(cmd.report)?.length ?? 0;
          tally.reports += n;
          if (n !== 1) failures.push(`${what}: ${n} final reports`);
        }
      } else {
        // Before tracing started: the signal's own status (killed by it, or 128 + its number).
        tally.beforeTracing++;
        const byItself = proc.signalCode === sig || proc.exitCode === 128 + SIGNO[sig];
        if (!byItself) failures.push(`${what}: ended with ${proc.exitCode}/${proc.signalCode} before tracing; stderr: ${stderr.slice(-300)}`);
      }
    }
    // Objects go away after the last reference (RCU): give them a moment.
    let left: string[] = [];
    for (let k = 0; k < 30; k++) {
      left = orphans(kernelView(), before);
      if (!left.length) break;
      await Bun.sleep(100);
    }
    tally.leaks = left.length;
    const seconds = (performance.now() - t0) / 1000;
    console.log(`  signal runs: ${JSON.stringify(tally)} in ${seconds.toFixed(1)} s`);
    expect(failures).toEqual([]);
    expect(left).toEqual([]);
    expect(tally.hangs).toBe(0);
    expect(seconds).toBeLessThan(60);
  }, 120_000);
});
