// How events and numbers look: aligned columns for people, one JSON object a line for programs.
import { writeSync } from "node:fs";
import { clockNs, CLOCK, setNonBlocking, writableWithin } from "../lib/ffi/libc.ts";

/** Bytes waiting for a stdout that is not being read, past which the reader stops taking events. */
const BACKLOG_BYTES = 4 << 20;

/**
 * Buffered stdout as bytes: one write per poll, not per event, and no string per event on the hot
 * path (JSON events are written digit by digit; a string per event is what fills the heap).
 * A tracing session's Out (`nonBlocking`) never waits for a reader (stdout made non-blocking
 * while it runs): what the pipe does not take stays here, and past BACKLOG_BYTES the session stops
 * taking events from the kernel, whose ring buffer then counts what it drops (reported as lost).
 * Waiting in a write would stop everything else: signals, loss reports, the duration. Other
 * commands' flushes wait for the reader, as any program writing to a pipe does.
 */
export class Out {
  private buf = new Uint8Array(1 << 20);
  pos = 0;
  private readonly enc = new TextEncoder();
  /** Whether the last flush left bytes the reader did not take. */
  private stalled = false;

  constructor(private readonly nonBlocking = false) {
    // Not left to the runtime: Bun makes stdout and stderr non-blocking only when their streams are
    // built, which probe avoids (start-up time); a blocking write to a pipe nobody reads would stop
    // everything (src/stderr.ts waits a bounded time for a full stderr).
    if (nonBlocking) for (const fd of [1, 2]) process.once("exit", setNonBlocking(fd));
  }

  line(s: string): void {
    this.room(s.length * 3 + 1);
    this.pos += this.enc.encodeInto(s, this.buf.subarray(this.pos)).written!;
    this.buf[this.pos++] = 10;
  }

  /** Makes room for `n` more bytes, flushing when the buffer is past half full. */
  room(n: number): Uint8Array {
    if (this.pos + n > this.buf.length >> 1) this.flush();
    if (this.pos + n > this.buf.length) {
      // The reader is behind (or one line is huge): grow, keeping what is waiting.
      const grown = new Uint8Array(Math.max(this.buf.length * 2, (this.pos + n) * 2));
      grown.set(this.buf.subarray(0, this.pos));
      this.buf = grown;
    }
    return this.buf;
  }

  /** Bytes written but not yet taken by stdout's reader. */
  get pending(): number {
    return this.pos;
  }

  /** Whether stdout's reader is so far behind that no more events should be taken for now. */
  get backlogged(): boolean {
    return this.stalled && this.pos > BACKLOG_BYTES;
  }

  bytes(b: Uint8Array): void {
    const buf = this.buf;
    let p = this.pos;
    // A loop beats TypedArray.set for the few bytes a JSON fragment has.
    if (b.length < 16) for (let i = 0; i < b.length; i++) buf[p++] = b[i]!;
    else {
      buf.set(b, p);
      p += b.length;
    }
    this.pos = p;
  }

  ascii(s: string): void {
    const buf = this.buf;
    for (let i = 0; i < s.length; i++) buf[this.pos++] = s.charCodeAt(i);
  }

  /** A non-negative integer below 2^53, in decimal (digits written in place: no allocation). */
  uint(n: number): void {
    if (n >= 1e9) {
      const high = Math.floor(n / 1e9);
      this.uint(high);
      this.digits(n - high * 1e9, 9);
      return;
    }
    let width = 1;
    for (let p = 10; p <= n && width < 9; p *= 10) width++;
    this.digits(n, width);
  }

  /** `x` (< 1e9) as exactly `width` decimal digits, zero-padded. */
  private digits(x: number, width: number): void {
    const buf = this.buf;
    let v = x | 0;
    for (let i = this.pos + width - 1; i >= this.pos; i--) {
      buf[i] = 48 + (v % 10);
      v = (v / 10) | 0;
    }
    this.pos += width;
  }

  /** `0x` and the hex digits of the 64-bit value hi:lo, without leading zeros. */
  hex64(lo: number, hi: number): void {
    const buf = this.buf;
    buf[this.pos++] = 48;
    buf[this.pos++] = 120;
    if (hi) {
      this.hex32(hi, 8 - (Math.clz32(hi) >> 2));
      this.hex32(lo, 8);
    } else {
      this.hex32(lo, lo ? 8 - (Math.clz32(lo) >> 2) : 1);
    }
  }

  private hex32(x: number, width: number): void {
    const buf = this.buf;
    for (let i = width - 1, shift = 0; i >= 0; i--, shift += 4) buf[this.pos + i] = HEX[(x >>> shift) & 15]!;
    this.pos += width;
  }

  /** Writes what stdout takes; non-blocking: the rest waits for the next flush, else waits for the reader. */
  flush(): void {
    if (this.nonBlocking) this.writeNow();
    else this.drain(-1);
  }

  private writeNow(): void {
    let off = 0;
    this.stalled = false;
    while (off < this.pos) {
      try {
        off += writeSync(1, this.buf, off, this.pos - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") {
          this.stalled = true;
          break;
        }
        // The reader is gone (`probe ... | head`): nothing more is wanted.
        if (code === "EPIPE") process.exit(0);
        throw e;
      }
    }
    if (off > 0) this.buf.copyWithin(0, off, this.pos);
    this.pos -= off;
  }

  /**
   * Writes everything, waiting for the reader; gives up once it has taken nothing for `stallMs`
   * (a reader that never reads must not keep probe from exiting; -1: wait as long as it takes).
   * Returns the bytes not written.
   */
  drain(stallMs = 3000): number {
    this.writeNow();
    while (this.pos > 0) {
      if (!writableWithin(1, stallMs)) return this.pos;
      this.writeNow();
    }
    return 0;
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
