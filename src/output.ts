// How events and numbers look: aligned columns for people, one JSON object a line for programs.
import { writeSync } from "node:fs";
import { clockNs, CLOCK } from "../lib/ffi/libc.ts";

/**
 * Buffered stdout as bytes: one write per poll, not per event, and no string per event on the hot
 * path (JSON events are written digit by digit; a string per event is what fills the heap).
 */
export class Out {
  private buf = new Uint8Array(1 << 20);
  pos = 0;
  private readonly enc = new TextEncoder();

  line(s: string): void {
    this.room(s.length * 3 + 1);
    this.pos += this.enc.encodeInto(s, this.buf.subarray(this.pos)).written!;
    this.buf[this.pos++] = 10;
  }

  /** Makes room for `n` more bytes, flushing when the buffer is past half full. */
  room(n: number): Uint8Array {
    if (this.pos + n > this.buf.length >> 1) this.flush();
    if (n > this.buf.length) this.buf = new Uint8Array(n * 2);
    return this.buf;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  ascii(s: string): void {
    const buf = this.buf;
    for (let i = 0; i < s.length; i++) buf[this.pos++] = s.charCodeAt(i);
  }

  /** A non-negative integer below 2^53, in decimal. */
  uint(n: number): void {
    if (n >= 1e9) {
      const high = Math.floor(n / 1e9);
      let low = n - high * 1e9;
      this.uint(high);
      for (let d = 1e8; d >= 1; d /= 10) {
        const digit = Math.floor(low / d);
        this.buf[this.pos++] = 48 + digit;
        low -= digit * d;
      }
      return;
    }
    let x = n | 0;
    const start = this.pos;
    do {
      this.buf[this.pos++] = 48 + (x % 10);
      x = (x / 10) | 0;
    } while (x);
    this.buf.subarray(start, this.pos).reverse();
  }

  /** `0x` and the hex digits of the 64-bit value hi:lo. */
  hex64(lo: number, hi: number): void {
    const buf = this.buf;
    buf[this.pos++] = 48;
    buf[this.pos++] = 120;
    let started = false;
    for (let shift = 28; shift >= 0; shift -= 4) {
      const d = (hi >>> shift) & 15;
      if (d || started) {
        buf[this.pos++] = HEX[d]!;
        started = true;
      }
    }
    for (let shift = 28; shift >= 0; shift -= 4) {
      const d = (lo >>> shift) & 15;
      if (d || started || shift === 0) {
        buf[this.pos++] = HEX[d]!;
        started = true;
      }
    }
  }

  flush(): void {
    let off = 0;
    while (off < this.pos) {
      try {
        off += writeSync(1, this.buf, off, this.pos - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") continue;
        if (code === "EPIPE") process.exit(0);
        throw e;
      }
    }
    this.pos = 0;
  }
}

const HEX = new TextEncoder().encode("0123456789abcdef");

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
