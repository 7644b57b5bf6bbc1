// A histogram as people read it (bpftrace's hist() and bcc's funclatency bar charts: one line per
// bucket from the first non-empty one to the last, `[lo, hi)  count |@@@@|`) and as JSON (every
// non-empty bucket with its exact bounds). Latencies read as durations (ns, µs, ms, s), values as
// numbers (powers of two with K/M/G suffixes, as bpftrace prints them).
import { bucketRange, type BucketRange, type Histogram } from "../lib/hist.ts";
import { jsonInt } from "./output.ts";

const BAR = 52;

/** A duration in ns with three significant digits: 512ns, 1.02µs, 10.2µs, 102µs, 1.05ms, 2.5s. */
export function durationText(ns: number): string {
  const units: [number, string][] = [[1e9, "s"], [1e6, "ms"], [1e3, "µs"]];
  const sign = ns < 0 ? "-" : "";
  const a = Math.abs(ns);
  for (const [scale, unit] of units) {
    if (a >= scale) return `${sign}${significant(a / scale)}${unit}`;
  }
  return `${sign}${significant(a)}ns`;
}

function significant(x: number): string {
  if (x >= 100 || Number.isInteger(x)) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

const SUFFIXES = ["", "K", "M", "G", "T", "P", "E"];

/** An integer bucket bound: 1024 as 1K, 3145728 as 3M (exact multiples of powers of 1024 only). */
export function boundText(v: bigint, suffixes: boolean): string {
  if (!suffixes || v === 0n) return v.toString();
  let i = 0;
  let x = v < 0n ? -v : v;
  while (i < SUFFIXES.length - 1 && x % 1024n === 0n) {
    x /= 1024n;
    i++;
  }
  return `${v < 0n ? "-" : ""}${x}${SUFFIXES[i]}`;
}

/** A number for a summary: integers as they are, estimates rounded to what they can claim. */
function numberText(x: number): string {
  if (Number.isInteger(x) || Math.abs(x) >= 100) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

export function bucketLabel(r: BucketRange, durations: boolean, suffixes: boolean): string {
  const t = (v: bigint) => (durations ? durationText(Number(v)) : boundText(v, suffixes));
  if (r.lo === undefined) return `(..., ${t(r.hi!)})`;
  if (r.hi === undefined) return `[${t(r.lo)}, ...)`;
  return `[${t(r.lo)}, ${t(r.hi)})`;
}

export interface HistFormat {
  /** Values are latencies in ns. */
  durations: boolean;
}

/** The bar chart: one line per bucket from the first non-empty one to the last (none when empty). */
export function histogramLines(h: Histogram, f: HistFormat): string[] {
  const span = h.span;
  if (!span) return [];
  const suffixes = h.scheme.kind === "log2";
  const rows: [string, number][] = [];
  for (let i = span[0]; i <= span[1]; i++) rows.push([bucketLabel(bucketRange(h.scheme, i), f.durations, suffixes), h.counts[i]!]);
  const top = Math.max(...rows.map((r) => r[1]));
  const lw = Math.max(...rows.map((r) => r[0].length));
  const cw = Math.max(...rows.map((r) => String(r[1]).length));
  return rows.map(([label, c]) => {
    const n = top ? Math.round((c / top) * BAR) : 0;
    return `${label.padEnd(lw)} ${String(c).padStart(cw)} |${"@".repeat(c && !n ? 1 : n).padEnd(BAR)}|`;
  });
}

/** "200 calls, min 1.43ms, avg 8.53ms, max 22.7ms, p50 5.83ms, p90 21.1ms, p99 22.6ms". */
export function summaryText(h: Histogram, f: HistFormat): string {
  const n = h.count;
  const v = (x: number) => (f.durations ? durationText(x) : numberText(x));
  // min and max are exact: as integers, not through a double.
  const exact = (x: bigint) => (f.durations ? durationText(Number(x)) : x.toString());
  const parts = [`${n} call${n === 1 ? "" : "s"}`];
  if (!n) return parts[0]!;
  if (h.min !== undefined) parts.push(`min ${exact(h.min)}`);
  parts.push(`avg ${v(h.mean!)}`);
  if (h.max !== undefined) parts.push(`max ${exact(h.max)}`);
  for (const p of [50, 90, 99]) parts.push(`p${p} ${v(h.percentile(p)!)}`);
  return parts.join(", ");
}

function bound(v: bigint | undefined): number | string | null {
  return v === undefined ? null : jsonInt(v);
}

function estimate(x: number | undefined): number | null {
  return x === undefined ? null : Math.round(x * 1000) / 1000;
}

/** The histogram's JSON fields: count, sum, min, max (when known), avg, percentiles, non-empty buckets. */
export function histogramJson(h: Histogram): Record<string, unknown> {
  const buckets: { lo: number | string | null; hi: number | string | null; count: number }[] = [];
  h.counts.forEach((count, i) => {
    if (!count) return;
    const r = bucketRange(h.scheme, i);
    buckets.push({ lo: bound(r.lo), hi: bound(r.hi), count });
  });
  return {
    count: h.count,
    sum: jsonInt(h.sum),
    ...(h.min !== undefined ? { min: jsonInt(h.min) } : {}),
    ...(h.max !== undefined ? { max: jsonInt(h.max) } : {}),
    avg: estimate(h.mean),
    p50: estimate(h.percentile(50)),
    p90: estimate(h.percentile(90)),
    p99: estimate(h.percentile(99)),
    buckets,
  };
}
