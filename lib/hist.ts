// Histograms of integer values (latencies in ns, argument and return values): the bucket
// arithmetic bpf/uprobe.bpf.c counts with, the rows it keeps in its maps, and what is estimated
// from buckets (percentiles). Exact where the program keeps it (count, sum, min, max). Also the
// reference for tests (a histogram built from known values) and, through cumulative(), the shape
// Prometheus histograms take.
import { HIST_LOG2_BUCKETS, HIST_ROW, commAt } from "./layouts.ts";
import { ProbeError } from "./errors.ts";

/**
 * log2: bucket 0 holds negative values, 1 holds 0, 2 + k holds [2^k, 2^(k+1)).
 * linear: bucket 0 holds values below `start`, 1..steps hold [start + (i-1)*step, start + i*step),
 * steps + 1 holds values at or above start + steps*step.
 */
export type BucketScheme = { kind: "log2" } | { kind: "linear"; start: bigint; step: bigint; steps: number };

/** A bucket's values: [lo, hi); undefined for an open end. */
export interface BucketRange {
  lo?: bigint;
  hi?: bigint;
}

const TWO63 = 1n << 63n;
const TWO64 = 1n << 64n;
const MASK64 = TWO64 - 1n;

export function bucketCount(s: BucketScheme): number {
  return s.kind === "log2" ? HIST_LOG2_BUCKETS : s.steps + 2;
}

/** The values of 64-bit `raw` (as the program read it), signed or not. */
export function valueOf(raw: bigint, signed: boolean): bigint {
  return signed ? BigInt.asIntN(64, raw) : BigInt.asUintN(64, raw);
}

/** The bucket of `value` (a signed or unsigned 64-bit value): the program's own arithmetic. */
export function bucketIndex(s: BucketScheme, value: bigint, signed: boolean): number {
  const v = valueOf(value, signed);
  if (s.kind === "log2") {
    if (v < 0n) return 0;
    if (v === 0n) return 1;
    return v.toString(2).length - 1 + 2;
  }
  if (v < s.start) return 0;
  // The program divides the unsigned difference; for values >= start it is the true difference.
  const i = (v - s.start) / s.step + 1n;
  return i < BigInt(s.steps + 1) ? Number(i) : s.steps + 1;
}

export function bucketRange(s: BucketScheme, i: number): BucketRange {
  if (s.kind === "log2") {
    if (i === 0) return { hi: 0n };
    if (i === 1) return { lo: 0n, hi: 1n };
    const k = BigInt(i - 2);
    return { lo: 1n << k, hi: 1n << (k + 1n) };
  }
  if (i === 0) return { hi: s.start };
  if (i >= s.steps + 1) return { lo: s.start + BigInt(s.steps) * s.step };
  return { lo: s.start + BigInt(i - 1) * s.step, hi: s.start + BigInt(i) * s.step };
}

/** Linear buckets from START,STEP,END (END rounded up to a whole number of steps); throws on nonsense. */
export function linearScheme(start: bigint, step: bigint, end: bigint, maxSteps: number): BucketScheme {
  if (step <= 0n) throw new ProbeError(`the step of linear buckets must be above 0, not ${step}`);
  if (end <= start) throw new ProbeError(`linear buckets must end above their start (${start}), not at ${end}`);
  const steps = (end - start + step - 1n) / step;
  if (steps > BigInt(maxSteps)) throw new ProbeError(`${steps} linear buckets from ${start} to ${end} by ${step}: at most ${maxSteps}`);
  return { kind: "linear", start, step, steps: Number(steps) };
}

export class Histogram {
  constructor(
    readonly scheme: BucketScheme,
    /** Values compared as signed 64-bit integers. */
    readonly signed: boolean,
    /** Calls per bucket (bucketCount(scheme) of them). */
    readonly counts: number[],
    /** Sum of the values (exact: the program keeps 128 bits). */
    readonly sum: bigint,
    /** Smallest and largest value, when known (an interval's difference does not know them). */
    readonly min?: bigint,
    readonly max?: bigint,
  ) {}

  static empty(scheme: BucketScheme, signed: boolean): Histogram {
    return new Histogram(scheme, signed, new Array(bucketCount(scheme)).fill(0), 0n);
  }

  /** The exact histogram of `values`: what the program should have counted. */
  static of(scheme: BucketScheme, signed: boolean, values: Iterable<bigint>): Histogram {
    const counts = new Array(bucketCount(scheme)).fill(0);
    let sum = 0n;
    let min: bigint | undefined;
    let max: bigint | undefined;
    for (const raw of values) {
      const v = valueOf(raw, signed);
      counts[bucketIndex(scheme, v, signed)]++;
      sum += v;
      if (min === undefined || v < min) min = v;
      if (max === undefined || v > max) max = v;
    }
    return new Histogram(scheme, signed, counts, sum, min, max);
  }

  get count(): number {
    let n = 0;
    for (const c of this.counts) n += c;
    return n;
  }

  get mean(): number | undefined {
    const n = this.count;
    return n ? Number(this.sum) / n : undefined;
  }

  /** Indexes of the first and last non-empty buckets, or undefined when empty. */
  get span(): [number, number] | undefined {
    const first = this.counts.findIndex((c) => c > 0);
    if (first < 0) return undefined;
    let last = this.counts.length - 1;
    while (this.counts[last] === 0) last--;
    return [first, last];
  }

  /**
   * The value below which `p` percent of the calls fall, estimated: the bucket holding that rank,
   * interpolated linearly inside it, and kept within the exact min and max where known.
   */
  percentile(p: number): number | undefined {
    const n = this.count;
    if (!n) return undefined;
    const rank = (Math.min(100, Math.max(0, p)) / 100) * n;
    let before = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (!c || before + c < rank) {
        before += c;
        continue;
      }
      // The bucket's values, narrowed to [min, max] where those fall inside it (open buckets need them).
      const r = bucketRange(this.scheme, i);
      let lo = r.lo ?? this.min ?? r.hi!;
      let hi = r.hi ?? (this.max !== undefined ? this.max + 1n : r.lo!);
      if (this.min !== undefined && this.min > lo && this.min < hi) lo = this.min;
      if (this.max !== undefined && this.max + 1n < hi && this.max >= lo) hi = this.max + 1n;
      let v = Number(lo) + ((rank - before) / c) * Number(hi - lo);
      if (this.min !== undefined) v = Math.max(v, Number(this.min));
      if (this.max !== undefined) v = Math.min(v, Number(this.max));
      return v;
    }
    return this.max !== undefined ? Number(this.max) : undefined;
  }

  /** The calls since `earlier` (a snapshot of the same counter): min and max are not known for them. */
  since(earlier: Histogram): Histogram {
    return new Histogram(this.scheme, this.signed, this.counts.map((c, i) => c - (earlier.counts[i] ?? 0)), this.sum - earlier.sum);
  }

  /** Both histograms' calls together. */
  plus(other: Histogram): Histogram {
    const pick = (a: bigint | undefined, b: bigint | undefined, f: (x: bigint, y: bigint) => bigint) => (a === undefined ? b : b === undefined ? a : f(a, b));
    return new Histogram(
      this.scheme,
      this.signed,
      this.counts.map((c, i) => c + (other.counts[i] ?? 0)),
      this.sum + other.sum,
      pick(this.min, other.min, (x, y) => (x < y ? x : y)),
      pick(this.max, other.max, (x, y) => (x > y ? x : y)),
    );
  }

  /**
   * Cumulative counts by inclusive upper bound (values are integers: [lo, hi) is <= hi - 1), the
   * last one unbounded: a Prometheus histogram's `le` buckets.
   */
  cumulative(): { le: bigint | undefined; count: number }[] {
    const out: { le: bigint | undefined; count: number }[] = [];
    let total = 0;
    this.counts.forEach((c, i) => {
      total += c;
      const hi = bucketRange(this.scheme, i).hi;
      if (!this.signed && i === 0 && this.scheme.kind === "log2") return; // no negative unsigned values
      out.push({ le: hi === undefined ? undefined : hi - 1n, count: total });
    });
    return out;
  }
}

/** One row of the program's histogram maps (struct hist_row), decoded. */
export interface HistRow {
  hist: Histogram;
  /** Per-process rows: the process's name and its PID in its innermost namespace (0: not read). */
  comm: string;
  nspid: number;
}

/** Decodes a struct hist_row at `off` of `v`. */
export function decodeHistRow(v: DataView, off: number, scheme: BucketScheme, signed: boolean): HistRow {
  const n = bucketCount(scheme);
  const counts = new Array<number>(n);
  let any = false;
  for (let i = 0; i < n; i++) {
    const o = off + HIST_ROW.buckets + i * 8;
    const c = v.getUint32(o + 4, true) * 4294967296 + v.getUint32(o, true);
    counts[i] = c;
    if (c) any = true;
  }
  const raw = (o: number) => v.getBigUint64(off + o, true);
  const fromOrder = (order: bigint) => valueOf(signed ? order ^ TWO63 : order, signed);
  const min = any ? fromOrder(~raw(HIST_ROW.min_inv) & MASK64) : undefined;
  const max = any ? fromOrder(raw(HIST_ROW.max)) : undefined;
  const sum128 = (raw(HIST_ROW.sum_hi) << 64n) | raw(HIST_ROW.sum);
  const hist = new Histogram(scheme, signed, counts, signed ? BigInt.asIntN(128, sum128) : sum128, min, max);
  return { hist, comm: commAt(v, off + HIST_ROW.comm), nspid: v.getUint32(off + HIST_ROW.nspid, true) };
}
