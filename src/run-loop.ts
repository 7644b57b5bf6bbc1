// The life of a tracing command after attach: poll on a timer, report every interval, stop on
// SIGINT/SIGTERM, the duration, or when the target process is gone, then close everything.
import { processExists } from "../lib/namespaces.ts";

export interface LoopOptions {
  durationSec: number;
  /** Drains ring buffers; returns how many records it took. Polled every `pollMs` (10 ms) while
   * quiet, and again at once while busy. */
  poll?: () => number;
  pollMs?: number;
  /** Called every interval with the interval in seconds (summaries). */
  report?: () => void;
  intervalSec?: number;
  /** Stop when this process exits. */
  watchPid?: number;
  onTargetExit?: () => void;
  /** Stop when this settles (the demo's clients are done). */
  until?: Promise<unknown>;
}

export type StopReason = "signal" | "duration" | "target-exit" | "done";

export function runLoop(o: LoopOptions): Promise<StopReason> {
  return new Promise((resolve) => {
    const timers: Timer[] = [];
    let done = false;
    let cancelPoll = () => {};
    const stop = (why: StopReason) => {
      if (done) return;
      done = true;
      cancelPoll();
      for (const t of timers) clearInterval(t);
      process.off("SIGINT", onSig);
      process.off("SIGTERM", onSig);
      resolve(why);
    };
    const onSig = () => stop("signal");
    process.on("SIGINT", onSig);
    process.on("SIGTERM", onSig);
    if (o.poll) {
      const poll = o.poll;
      const quietMs = o.pollMs ?? 10;
      let t: Timer;
      const tick = () => {
        if (done) return;
        const n = poll();
        t = setTimeout(tick, n > 0 ? 1 : quietMs);
      };
      t = setTimeout(tick, quietMs);
      cancelPoll = () => clearTimeout(t);
    }
    if (o.report) timers.push(setInterval(o.report, (o.intervalSec ?? 1) * 1000));
    o.until?.finally(() => stop("done"));
    if (o.durationSec > 0) timers.push(setTimeout(() => stop("duration"), o.durationSec * 1000));
    if (o.watchPid) {
      const pid = o.watchPid;
      timers.push(
        setInterval(() => {
          if (!processExists(pid)) {
            o.onTargetExit?.();
            stop("target-exit");
          }
        }, 200),
      );
    }
  });
}
