// `uprobe --metrics`: what --summary counts (calls, returns per process and function) and what
// --hist counts (a Prometheus histogram per function, or per process and function) published from
// the tables the command already keeps, exited processes' totals included, before each scrape.
import { bucketCount, bucketRange, type BucketScheme } from "../lib/hist.ts";
import type { Registry } from "../lib/metrics/registry.ts";
import { PublishedTotals } from "../lib/metrics/totals.ts";
import type { CountTable } from "./count-table.ts";
import type { ContainerLabels } from "./fleet-labels.ts";
import type { HistReport, HistSpec } from "./hist.ts";

type PodOf = ((pid: number, pidns: number) => ContainerLabels) | undefined;

const PROCESS_LABELS = ["pod", "namespace", "container", "pid", "comm"];

function processLabels(podOf: PodOf, pid: number, pidns: number, comm: string): Record<string, string | number> {
  const pod = podOf?.(pid, pidns);
  return { pod: pod?.pod ?? "", namespace: pod?.namespace ?? "", container: pod?.container ?? "", pid, comm };
}

/** --summary: `probe_uprobe_calls_total` (and `probe_uprobe_returns_total` with --ret) per process and function. */
export function summaryPublisher(registry: Registry, table: CountTable, names: string[], returns: boolean, podOf: PodOf): () => void {
  const labelNames = [...PROCESS_LABELS, "function"];
  const calls = registry.counter("probe_uprobe_calls_total", "Calls of a probed function, per process", labelNames);
  const rets = returns ? registry.counter("probe_uprobe_returns_total", "Returns of a probed function, per process", labelNames) : undefined;
  const totals = new PublishedTotals();
  return () => {
    for (const r of table.rows()) {
      const labels = { ...processLabels(podOf, r.pid, r.pidns, r.comm), function: names[r.func] ?? `#${r.func}` };
      const key = `${r.pid}/${r.func}`;
      totals.counter(calls, key, labels, Number(r.calls));
      if (rets) totals.counter(rets, key, labels, Number(r.returns));
    }
  };
}

/** Latencies at most this long get buckets of their own (longer ones count in +Inf): 2^40 ns, 18 minutes. */
const LATENCY_MAX_NS = 2n ** 40n;
/** Values beyond what a float64 holds exactly count in +Inf. */
const VALUE_MAX = 2n ** 53n;

/**
 * The Prometheus buckets for a kernel histogram's scheme: each kernel bucket's largest value (the
 * values are integers: [lo, hi) is <= hi - 1) as `le`, in seconds for latencies; and for each
 * kernel bucket, the index of the Prometheus bucket it counts in (the last one is +Inf).
 */
export function prometheusBuckets(scheme: BucketScheme, signed: boolean, durations: boolean): { le: number[]; index: number[] } {
  const max = durations ? LATENCY_MAX_NS : VALUE_MAX;
  const le: number[] = [];
  const index: number[] = [];
  const n = bucketCount(scheme);
  for (let i = 0; i < n; i++) {
    const hi = bucketRange(scheme, i).hi;
    // Unsigned values are never negative: log2's bucket 0 stays empty and needs no bound.
    if (!signed && scheme.kind === "log2" && i === 0) {
      index.push(0);
      continue;
    }
    if (hi === undefined || hi > max) {
      index.push(-1); // +Inf, fixed below
      continue;
    }
    le.push(durations ? Number(hi - 1n) / 1e9 : Number(hi - 1n));
    index.push(le.length - 1);
  }
  return { le, index: index.map((j) => (j < 0 ? le.length : j)) };
}

/**
 * --hist: `probe_uprobe_latency_seconds` (latency) or `probe_uprobe_value` (a parameter or the
 * return value, label `variable`), per function, or per process and function with --per-process.
 */
export function histPublisher(registry: Registry, report: HistReport, names: string[], spec: HistSpec, podOf: PodOf): () => void {
  const { le, index } = prometheusBuckets(spec.scheme, spec.signed, spec.durations);
  const labelNames = [...(spec.perProcess ? PROCESS_LABELS : []), "function", ...(spec.durations ? [] : ["variable"])];
  const h = spec.durations
    ? registry.histogram("probe_uprobe_latency_seconds", "Time from a probed function's entry to its return", labelNames, le, { unit: "seconds" })
    : registry.histogram("probe_uprobe_value", "Values of a probed function's parameter or return value (label variable)", labelNames, le);
  const totals = new PublishedTotals();
  const counts = new Array<number>(le.length + 1);
  return () => {
    for (const e of report.rows()) {
      if (e.hist.count === 0) continue;
      counts.fill(0);
      e.hist.counts.forEach((c, i) => {
        counts[index[i]!]! += c;
      });
      const labels = {
        ...(spec.perProcess ? processLabels(podOf, e.pid, e.pidns, e.comm) : {}),
        function: names[e.func] ?? `#${e.func}`,
        ...(spec.durations ? {} : { variable: spec.what }),
      };
      totals.histogram(h, `${e.pid}/${e.func}`, labels, counts, spec.durations ? Number(e.hist.sum) / 1e9 : Number(e.hist.sum));
    }
  };
}
