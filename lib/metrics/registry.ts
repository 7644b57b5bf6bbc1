// Counters, gauges and histograms with labels, held for exposition (exposition.ts renders them).
//
// Every label set of every metric is a "child" holding its values and its label text, escaped
// once when the child is made: rendering 10,000 series is then string concatenation only.
//
// Cardinality is bounded for the whole registry: at most `maxSeries` exposed series (a counter or
// gauge child is one series; a histogram child is one per bucket, +Inf included, plus _sum and
// _count). Each labelled metric reserves room for one overflow child (`{overflow="true"}`) when it
// is registered, so the bound holds even after every metric has folded. An update whose new label
// set does not fit goes to that overflow child instead, and probe_metrics_series_folded_total
// counts such updates (updates, not distinct label sets: remembering the folded sets would itself
// be unbounded).
import { ProbeError } from "../errors.ts";

export type MetricType = "counter" | "gauge" | "histogram";
export type Labels = Record<string, string | number>;

export const DEFAULT_MAX_SERIES = 10_000;
export const FOLDED_METRIC = "probe_metrics_series_folded_total";
/** The label set updates are folded into once the registry is full. */
export const OVERFLOW_LABEL = "overflow";

/** Prometheus's default buckets (seconds), for latencies. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const UNIT = /^[a-zA-Z0-9_]+$/;

export class MetricsError extends ProbeError {}

/** A label value as the text format wants it inside double quotes. */
export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value: integers exactly, NaN and infinities spelled as the format wants. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** `{a="x",b="y"}` for the given pairs (empty values dropped: Prometheus treats them as absent). */
function labelText(pairs: [string, string][]): string {
  const kept = pairs.filter(([, v]) => v !== "");
  if (kept.length === 0) return "";
  return `{${kept.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/** What one label set of a metric holds. */
export interface Child {
  /** `{...}` ready to print after the sample name, or "" for no labels. */
  readonly labelText: string;
  /** The same pairs, for histograms that add `le`. */
  readonly pairs: [string, string][];
  value: number;
  /** Histograms only: per-bucket (non-cumulative) counts, the last one for +Inf. */
  bucketCounts?: Float64Array;
  sum: number;
  count: number;
}

export interface MetricOptions {
  /** OpenMetrics unit (e.g. "seconds", "bytes"); the name must end in `_<unit>` (before `_total`). */
  unit?: string;
}

export abstract class Metric {
  /** Children by joined label values, in creation order (which is the exposition order). */
  readonly children = new Map<string, Child>();
  overflowChild: Child | undefined;

  constructor(
    protected readonly registry: Registry,
    readonly type: MetricType,
    /** The family name: for counters without `_total` (exposition adds it back). */
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly unit: string | undefined,
  ) {}

  /** Exposed series per child. */
  abstract get seriesPerChild(): number;

  /** The child for `labels`, made if new and if the registry has room, else the overflow child. */
  protected child(labels: Labels | undefined): Child {
    const values = this.labelValues(labels);
    const key = values.join("\u0000");
    const existing = this.children.get(key);
    if (existing) return existing;
    if (!this.registry.admit(this.seriesPerChild)) {
      this.registry.noteFold();
      return (this.overflowChild ??= this.makeChild([[OVERFLOW_LABEL, "true"]]));
    }
    const made = this.makeChild(this.labelNames.map((n, i): [string, string] => [n, values[i]!]));
    this.children.set(key, made);
    return made;
  }

  /** The value held for `labels` (0 when that label set was never updated): reading never makes a series. */
  get(labels?: Labels): number {
    return this.children.get(this.labelValues(labels).join("\u0000"))?.value ?? 0;
  }

  private labelValues(labels: Labels | undefined): string[] {
    const given = labels ? Object.keys(labels) : [];
    for (const k of given) {
      if (!this.labelNames.includes(k)) {
        throw new MetricsError(`metric ${this.name} has no label ${k} (its labels: ${this.labelNames.join(", ") || "none"})`);
      }
    }
    return this.labelNames.map((n) => {
      const v = labels?.[n];
      return v === undefined ? "" : String(v);
    });
  }

  /** A new child (not counted against the registry: callers admit it first). */
  makeChild(pairs: [string, string][]): Child {
    return { labelText: labelText(pairs), pairs, value: 0, sum: 0, count: 0 };
  }

  /** Children in exposition order, the overflow child last. */
  allChildren(): Child[] {
    const list = [...this.children.values()];
    if (this.overflowChild) list.push(this.overflowChild);
    return list;
  }
}

export class Counter extends Metric {
  get seriesPerChild(): number {
    return 1;
  }

  /** Adds `by` (>= 0: a counter only goes up) to the series for `labels`. */
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new MetricsError(`counter ${this.name} cannot be increased by ${by}`);
    this.child(labels).value += by;
  }
}

export class Gauge extends Metric {
  get seriesPerChild(): number {
    return 1;
  }

  /** Sets the series for `labels` (in the overflow series: the last value set wins). */
  set(labels: Labels | undefined, v: number): void {
    this.child(labels).value = v;
  }

  inc(labels?: Labels, by = 1): void {
    this.child(labels).value += by;
  }

  dec(labels?: Labels, by = 1): void {
    this.child(labels).value -= by;
  }
}

export class Histogram extends Metric {
  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    unit: string | undefined,
    /** Finite upper bounds, ascending; +Inf is implicit. */
    readonly buckets: readonly number[],
  ) {
    super(registry, "histogram", name, help, labelNames, unit);
  }

  get seriesPerChild(): number {
    return this.buckets.length + 3;
  }

  override makeChild(pairs: [string, string][]): Child {
    const c = super.makeChild(pairs);
    c.bucketCounts = new Float64Array(this.buckets.length + 1);
    return c;
  }

  observe(labels: Labels | undefined, v: number): void {
    if (Number.isNaN(v)) return; // NaN would poison _sum forever
    const c = this.child(labels);
    const b = this.buckets;
    // Bucket bounds are inclusive (le = "less than or equal").
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    c.bucketCounts![i]! += 1;
    c.sum += v;
    c.count += 1;
  }

  /**
   * Adds observations counted elsewhere (a kernel histogram's growth since the last call):
   * `counts[i]` more in bucket i (non-cumulative; the last one is +Inf), their values summing to `sum`.
   */
  addCounts(labels: Labels | undefined, counts: ArrayLike<number>, sum: number): void {
    if (counts.length !== this.buckets.length + 1) throw new MetricsError(`histogram ${this.name}: ${counts.length} bucket counts given for ${this.buckets.length + 1} buckets`);
    let n = 0;
    for (let i = 0; i < counts.length; i++) {
      if (!(counts[i]! >= 0)) throw new MetricsError(`histogram ${this.name}: a bucket cannot shrink (by ${counts[i]})`);
      n += counts[i]!;
    }
    if (n === 0 && sum === 0) return; // nothing new: no series made for it
    const c = this.child(labels);
    for (let i = 0; i < counts.length; i++) c.bucketCounts![i]! += counts[i]!;
    c.sum += sum;
    c.count += n;
  }
}

export interface RegistryOptions {
  /** Upper bound on exposed series over all metrics (default 10,000). */
  maxSeries?: number;
}

export class Registry {
  readonly maxSeries: number;
  readonly metrics: Metric[] = [];
  private readonly byName = new Map<string, Metric>();
  /** Series held or reserved (overflow children and unlabelled metrics count when registered). */
  private used = 0;
  private readonly folded: Counter;

  constructor(opts: RegistryOptions = {}) {
    const max = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    if (!Number.isInteger(max) || max < 1) throw new MetricsError(`maxSeries must be a positive integer, not ${max}`);
    this.maxSeries = max;
    // The fold counter is the registry's own and is not counted against maxSeries.
    this.folded = new Counter(this, "counter", FOLDED_METRIC.replace(/_total$/, ""), "Metric updates whose new label set was folded into an overflow series because the registry held its maximum number of series.", [], undefined);
    this.folded.children.set("", this.folded.makeChild([]));
  }

  /** Series currently held or reserved, the fold counter excluded. */
  get seriesUsed(): number {
    return this.used;
  }

  /** Updates folded so far. */
  get foldedUpdates(): number {
    return this.folded.children.get("")!.value;
  }

  /** Reserves `n` series if they fit. */
  admit(n: number): boolean {
    if (this.used + n > this.maxSeries) return false;
    this.used += n;
    return true;
  }

  noteFold(): void {
    this.folded.children.get("")!.value += 1;
  }

  counter(name: string, help: string, labelNames: readonly string[] = [], opts: MetricOptions = {}): Counter {
    const family = name.endsWith("_total") ? name.slice(0, -"_total".length) : name;
    return this.add(new Counter(this, "counter", family, help, this.checkLabels(family, labelNames), this.checkUnit(family, opts.unit)));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], opts: MetricOptions = {}): Gauge {
    return this.add(new Gauge(this, "gauge", name, help, this.checkLabels(name, labelNames), this.checkUnit(name, opts.unit)));
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_BUCKETS, opts: MetricOptions = {}): Histogram {
    const labels = this.checkLabels(name, labelNames);
    if (labels.includes("le")) throw new MetricsError(`histogram ${name} cannot have a label named le (it names the buckets)`);
    const finite = buckets.filter((b) => b !== Infinity);
    if (finite.length === 0) throw new MetricsError(`histogram ${name} needs at least one finite bucket`);
    for (let i = 0; i < finite.length; i++) {
      if (!Number.isFinite(finite[i]!)) throw new MetricsError(`histogram ${name}: bucket ${finite[i]} is not a number`);
      if (i > 0 && !(finite[i]! > finite[i - 1]!)) throw new MetricsError(`histogram ${name}: buckets must increase (${finite[i - 1]} then ${finite[i]})`);
    }
    return this.add(new Histogram(this, name, help, labels, this.checkUnit(name, opts.unit), finite));
  }

  private checkLabels(name: string, labelNames: readonly string[]): readonly string[] {
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new MetricsError(`metric ${name}: invalid label name ${JSON.stringify(l)}`);
      if (l === OVERFLOW_LABEL) throw new MetricsError(`metric ${name}: the label name ${OVERFLOW_LABEL} is reserved for folded series`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new MetricsError(`metric ${name}: a label name is repeated (${labelNames.join(", ")})`);
    return [...labelNames];
  }

  private checkUnit(name: string, unit: string | undefined): string | undefined {
    if (unit === undefined) return undefined;
    if (!UNIT.test(unit)) throw new MetricsError(`metric ${name}: invalid unit ${JSON.stringify(unit)}`);
    if (!name.endsWith(`_${unit}`)) throw new MetricsError(`metric ${name}: a metric with unit ${unit} must have a name ending in _${unit}`);
    return unit;
  }

  private add<M extends Metric>(m: M): M {
    if (!METRIC_NAME.test(m.name)) throw new MetricsError(`invalid metric name ${JSON.stringify(m.name)}`);
    // Families clash with each other's sample names too (a histogram foo owns foo_bucket, foo_sum, foo_count).
    const owned = sampleNames(m);
    for (const other of [...this.metrics, this.folded]) {
      const theirs = sampleNames(other);
      if (other.name === m.name || owned.some((n) => theirs.includes(n))) throw new MetricsError(`metric ${m.name} is already registered (or clashes with ${other.name})`);
    }
    // Reserved now: the unlabelled metric's one child, or the labelled metric's overflow child.
    if (!this.admit(m.seriesPerChild)) throw new MetricsError(`cannot register ${m.name}: the registry's ${this.maxSeries} series are all used`);
    if (m.labelNames.length === 0) {
      // An unlabelled metric is exposed from the start (as 0), and can never fold.
      m.children.set("", m.makeChild([]));
    }
    this.metrics.push(m);
    this.byName.set(m.name, m);
    return m;
  }

  get(name: string): Metric | undefined {
    return this.byName.get(name) ?? this.byName.get(name.replace(/_total$/, ""));
  }

  /** The metrics to expose, the fold counter last. */
  exposed(): Metric[] {
    return [...this.metrics, this.folded];
  }
}

function sampleNames(m: Metric): string[] {
  if (m.type === "counter") return [`${m.name}_total`, m.name];
  if (m.type === "histogram") return [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`];
  return [m.name];
}
