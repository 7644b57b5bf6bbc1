// PROBE_TIMING=1: where a run's start-up time goes, one stderr line per phase: ms since the
// process started (Bun's clock starts before the first line of JS runs) and the CPU time the
// process has used so far (every thread: the JIT's and the GC's too), which a loaded machine
// changes less than the wall clock, and resident memory. For finding what to make lazy or cheaper.
import { readFileSync, writeSync } from "node:fs";

const on = !!process.env.PROBE_TIMING;
let last = 0;
let lastCpu = 0;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Resident memory now, MB: all of it, and the part that is file pages (mostly the executable's). */
function rss(): string {
  const [, resident, shared] = readFileSync("/proc/self/statm", "utf8").split(" ").map((n) => (Number(n) * 4096) / 1048576);
  return `rss ${resident!.toFixed(1)} MB (files ${shared!.toFixed(1)})`;
}

export function mark(phase: string): void {
  if (!on) return;
  const now = performance.now();
  const cpu = cpuMs();
  writeSync(2, `probe: timing: ${phase} at ${now.toFixed(1)} ms (+${(now - last).toFixed(1)}), cpu ${cpu.toFixed(1)} ms (+${(cpu - lastCpu).toFixed(1)}), ${rss()}\n`);
  last = now;
  lastCpu = cpu;
}
