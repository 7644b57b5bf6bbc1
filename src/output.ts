// How events and numbers look: aligned columns for people, one JSON object a line for programs.
import { writeSync } from "node:fs";
import { clockNs, CLOCK } from "../lib/ffi/libc.ts";

/** Buffered stdout: one write per poll, not per event. */
export class Out {
  private chunks: string[] = [];
  private size = 0;
  line(s: string): void {
    this.chunks.push(s, "\n");
    this.size += s.length + 1;
    if (this.size > 1 << 16) this.flush();
  }
  flush(): void {
    if (!this.chunks.length) return;
    const s = this.chunks.join("");
    this.chunks = [];
    this.size = 0;
    const b = Buffer.from(s);
    let off = 0;
    while (off < b.length) {
      try {
        off += writeSync(1, b, off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
        if ((e as NodeJS.ErrnoException).code === "EPIPE") process.exit(0);
        throw e;
      }
    }
  }
}

/** Kernel timestamps (CLOCK_MONOTONIC ns) to wall-clock `HH:MM:SS.mmm`. */
export class WallClock {
  private readonly offsetNs: bigint;
  constructor() {
    this.offsetNs = clockNs(CLOCK.REALTIME) - clockNs(CLOCK.MONOTONIC);
  }
  format(monoNs: bigint): string {
    const ms = Number((monoNs + this.offsetNs) / 1_000_000n);
    const d = new Date(ms);
    const p = (n: number, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }
}

export function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/** A JSON number where exact, else a decimal string (values past 2^53 lose digits as numbers). */
export function jsonInt(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
}

export function formatDuration(ns: bigint): string {
  const n = Number(ns);
  if (n < 1_000) return `${n} ns`;
  if (n < 1_000_000) return `${(n / 1_000).toFixed(1)} µs`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(2)} ms`;
  return `${(n / 1_000_000_000).toFixed(3)} s`;
}

export function pad(s: string | number, w: number): string {
  return String(s).padEnd(w);
}
