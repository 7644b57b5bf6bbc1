// Metrics published from totals counted elsewhere: a BPF map's counters, with the rows of exited
// processes folded into totals by the command that reads it. Prometheus counters must only go up,
// and a series folded into the overflow series (registry.ts) must add to it, not overwrite it: so
// what is published is each total's growth since the last publication, remembered per key.
import type { Counter, Histogram, Labels } from "./registry.ts";

export class PublishedTotals {
  private readonly counters = new Map<string, number>();
  private readonly hists = new Map<string, { counts: number[]; sum: number }>();

  /**
   * Brings `counter`'s series for `labels` up to `total` (the count of what `key` names, since
   * the start). A total lower than the one published (a process's row read again after a reset)
   * adds nothing. The first publication makes the series, even at 0.
   */
  counter(c: Counter, key: string, labels: Labels, total: number): void {
    const k = `${c.name}\u0000${key}`;
    const last = this.counters.get(k);
    if (last !== undefined && total <= last) return;
    this.counters.set(k, total);
    c.inc(labels, total - (last ?? 0));
  }

  /** The same for a histogram: `counts` per bucket (non-cumulative, +Inf last) and `sum` since the start. */
  histogram(h: Histogram, key: string, labels: Labels, counts: number[], sum: number): void {
    const k = `${h.name}\u0000${key}`;
    const last = this.hists.get(k);
    const delta = counts.map((n, i) => Math.max(0, n - (last?.counts[i] ?? 0)));
    if (last && delta.every((d) => d === 0)) return;
    this.hists.set(k, { counts: [...counts], sum });
    h.addCounts(labels, delta, Math.max(0, sum - (last?.sum ?? 0)));
  }
}
