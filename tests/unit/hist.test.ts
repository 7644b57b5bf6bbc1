// Bucket arithmetic (lib/hist.ts) against a direct reference, percentiles against values whose
// percentiles are known, a struct hist_row decoded from bytes laid out as the C header says, and
// the bar chart and labels people read (src/hist-format.ts).
import { describe, expect, test } from "bun:test";
import { Histogram, bucketCount, bucketIndex, bucketRange, decodeHistRow, linearScheme, type BucketScheme } from "../../lib/hist.ts";
import { HIST_BUCKETS, HIST_ROW } from "../../lib/layouts.ts";
import { boundText, durationText, histogramLines, summaryText } from "../../src/hist-format.ts";

const LOG2: BucketScheme = { kind: "log2" };

/** floor(log2(v)) by repeated halving: an independent reference for the program's shifts. */
function log2Ref(v: bigint): number {
  let k = -1;
  while (v > 0n) {
    v >>= 1n;
    k++;
  }
  return k;
}

describe("log2 buckets", () => {
  test("every power of two and its neighbours, signed and unsigned", () => {
    for (let k = 0; k < 64; k++) {
      for (const d of [-1n, 0n, 1n]) {
        const v = (1n << BigInt(k)) + d;
        if (v <= 0n) continue;
        const u = BigInt.asUintN(64, v);
        expect(bucketIndex(LOG2, u, false)).toBe(log2Ref(u) + 2);
        const r = bucketRange(LOG2, bucketIndex(LOG2, u, false));
        expect(r.lo! <= u && u < r.hi!).toBe(true);
      }
    }
    expect(bucketIndex(LOG2, 0n, false)).toBe(1);
    expect(bucketIndex(LOG2, -1n, true)).toBe(0);
    expect(bucketIndex(LOG2, -(1n << 63n), true)).toBe(0);
    // Unsigned: the same 64 bits are a huge value, in the last bucket.
    expect(bucketIndex(LOG2, -1n, false)).toBe(65);
    expect(bucketCount(LOG2)).toBe(66);
  });
});

describe("linear buckets", () => {
  test("below start, each step, at or above end; END rounded up to whole steps", () => {
    const s = linearScheme(0n, 512n, 8192n, 254);
    expect(s).toEqual({ kind: "linear", start: 0n, step: 512n, steps: 16 });
    expect(bucketIndex(s, -1n, true)).toBe(0);
    expect(bucketIndex(s, 0n, true)).toBe(1);
    expect(bucketIndex(s, 511n, true)).toBe(1);
    expect(bucketIndex(s, 512n, true)).toBe(2);
    expect(bucketIndex(s, 8191n, true)).toBe(16);
    expect(bucketIndex(s, 8192n, true)).toBe(17);
    expect(bucketIndex(s, 1n << 62n, true)).toBe(17);
    expect(bucketRange(s, 0)).toEqual({ hi: 0n });
    expect(bucketRange(s, 16)).toEqual({ lo: 7680n, hi: 8192n });
    expect(bucketRange(s, 17)).toEqual({ lo: 8192n });
    expect(linearScheme(-100n, 30n, 100n, 254)).toEqual({ kind: "linear", start: -100n, step: 30n, steps: 7 });
    expect(() => linearScheme(0n, 0n, 10n, 254)).toThrow(/above 0/);
    expect(() => linearScheme(10n, 1n, 10n, 254)).toThrow(/end above/);
    expect(() => linearScheme(0n, 1n, 255n, 254)).toThrow(/255 linear buckets .* at most 254/);
  });
});

describe("Histogram", () => {
  test("of values: counts, sum, min, max; percentiles estimated inside the right bucket", () => {
    const values = Array.from({ length: 1000 }, (_, i) => BigInt(i + 1));
    const h = Histogram.of(LOG2, false, values);
    expect(h.count).toBe(1000);
    expect(h.sum).toBe(500500n);
    expect([h.min, h.max]).toEqual([1n, 1000n]);
    expect(h.mean).toBe(500.5);
    // Uniform values: linear interpolation inside a bucket is exact up to rounding.
    for (const p of [50, 90, 99]) expect(Math.abs(h.percentile(p)! - p * 10)).toBeLessThanOrEqual(1);
    expect(h.percentile(0)).toBe(1);
    expect(h.percentile(100)).toBe(1000);
    expect(Histogram.empty(LOG2, false).percentile(50)).toBeUndefined();
  });

  test("since and plus: interval differences and totals", () => {
    const a = Histogram.of(LOG2, true, [1n, 2n, 3n]);
    const b = Histogram.of(LOG2, true, [1n, 2n, 3n, 100n, -4n]);
    const d = b.since(a);
    expect(d.count).toBe(2);
    expect(d.sum).toBe(96n);
    expect(d.min).toBeUndefined();
    const t = a.plus(Histogram.of(LOG2, true, [-4n, 100n]));
    expect(t.counts).toEqual(b.counts);
    expect([t.min, t.max, t.sum]).toEqual([-4n, 100n, 102n]);
  });

  test("cumulative: Prometheus `le` buckets (inclusive integer bounds, the last one unbounded)", () => {
    const h = Histogram.of(linearScheme(0n, 10n, 30n, 254), false, [0n, 9n, 10n, 25n, 31n]);
    expect(h.cumulative()).toEqual([
      { le: -1n, count: 0 },
      { le: 9n, count: 2 },
      { le: 19n, count: 3 },
      { le: 29n, count: 4 },
      { le: undefined, count: 5 },
    ]);
  });

  test("decodes struct hist_row: 128-bit sums, min and max in their order-preserving form", () => {
    const buf = new Uint8Array(HIST_ROW.size);
    const v = new DataView(buf.buffer);
    const values = [-(1n << 63n), -5n, 7n, (1n << 63n) - 1n, (1n << 63n) - 1n];
    let sum = 0n;
    let minInv = 0n;
    let max = 0n;
    for (const x of values) {
      const b = bucketIndex(LOG2, x, true);
      v.setBigUint64(HIST_ROW.buckets + b * 8, v.getBigUint64(HIST_ROW.buckets + b * 8, true) + 1n, true);
      sum += x;
      const order = BigInt.asUintN(64, x) ^ (1n << 63n);
      const inv = BigInt.asUintN(64, ~order);
      if (inv > minInv) minInv = inv;
      if (order > max) max = order;
    }
    const sum128 = BigInt.asUintN(128, sum);
    v.setBigUint64(HIST_ROW.sum, BigInt.asUintN(64, sum128), true);
    v.setBigUint64(HIST_ROW.sum_hi, sum128 >> 64n, true);
    v.setBigUint64(HIST_ROW.min_inv, minInv, true);
    v.setBigUint64(HIST_ROW.max, max, true);
    new TextEncoder().encodeInto("values", buf.subarray(HIST_ROW.comm, HIST_ROW.comm + 16));
    v.setUint32(HIST_ROW.nspid, 7, true);
    const row = decodeHistRow(v, 0, LOG2, true);
    expect(row.hist.counts).toEqual(Histogram.of(LOG2, true, values).counts);
    expect(row.hist.sum).toBe(sum);
    expect([row.hist.min, row.hist.max]).toEqual([-(1n << 63n), (1n << 63n) - 1n]);
    expect([row.comm, row.nspid]).toEqual(["values", 7]);
    // A row nothing was counted in has no min or max.
    const empty = decodeHistRow(new DataView(new ArrayBuffer(HIST_ROW.size)), 0, LOG2, false);
    expect([empty.hist.count, empty.hist.min, empty.hist.max]).toEqual([0, undefined, undefined]);
    expect(HIST_ROW.size).toBe(56 + HIST_BUCKETS * 8);
  });
});

describe("what people read", () => {
  test("durations with three significant digits; bounds with bpftrace's K/M/G for exact multiples", () => {
    expect([512, 1024, 10240, 102400, 1048576, 2097152, 1e9, 2.5e9].map(durationText)).toEqual(["512ns", "1.02µs", "10.2µs", "102µs", "1.05ms", "2.1ms", "1s", "2.5s"]);
    expect([0n, 1n, 1000n, 1024n, 3n << 20n, 1n << 62n, -2048n, 1536n].map((v) => boundText(v, true))).toEqual(["0", "1", "1000", "1K", "3M", "4E", "-2K", "1536"]);
    expect(boundText(1024n, false)).toBe("1024");
  });

  test("the bar chart from the first non-empty bucket to the last, bars scaled to the fullest", () => {
    const h = Histogram.of(LOG2, true, [-3n, 0n, 5n, 5n, 6n, 5000n]);
    expect(histogramLines(h, { durations: false })).toEqual([
      "(..., 0)   1 |@@@@@@@@@@@@@@@@@                                   |",
      "[0, 1)     1 |@@@@@@@@@@@@@@@@@                                   |",
      "[1, 2)     0 |                                                    |",
      "[2, 4)     0 |                                                    |",
      "[4, 8)     3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
      "[8, 16)    0 |                                                    |",
      "[16, 32)   0 |                                                    |",
      "[32, 64)   0 |                                                    |",
      "[64, 128)  0 |                                                    |",
      "[128, 256) 0 |                                                    |",
      "[256, 512) 0 |                                                    |",
      "[512, 1K)  0 |                                                    |",
      "[1K, 2K)   0 |                                                    |",
      "[2K, 4K)   0 |                                                    |",
      "[4K, 8K)   1 |@@@@@@@@@@@@@@@@@                                   |",
    ]);
    expect(summaryText(h, { durations: false })).toBe("6 calls, min -3, avg 836, max 5000, p50 5.33, p90 4458, p99 4947");
    expect(histogramLines(Histogram.empty(LOG2, false), { durations: false })).toEqual([]);
    expect(summaryText(Histogram.empty(LOG2, false), { durations: true })).toBe("0 calls");
  });
});
