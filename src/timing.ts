// PROBE_TIMING=1: where a run's start-up time goes, one stderr line per phase (ms since the
// process started), for finding what to make lazy or cheaper.
const on = !!process.env.PROBE_TIMING;
let last = 0;

export function mark(phase: string): void {
  if (!on) return;
  const now = performance.now();
  process.stderr.write(`probe: timing: ${phase} at ${now.toFixed(1)} ms (+${(now - last).toFixed(1)})\n`);
  last = now;
}
