// A registry as text: the Prometheus text format 0.0.4, or OpenMetrics 1.0.0 when the scraper's
// Accept header prefers it. The two differ in: counter family names (OpenMetrics names the family
// without `_total`, its sample keeps it), HELP escaping (OpenMetrics also escapes `"`), `# UNIT`
// (OpenMetrics only) and the closing `# EOF` (OpenMetrics only).
import { formatValue, type Child, type Histogram, type Metric, type Registry } from "./registry.ts";

export type ExpositionFormat = "prometheus" | "openmetrics";

export const CONTENT_TYPES: Record<ExpositionFormat, string> = {
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/**
 * The format to answer an Accept header with: OpenMetrics when `application/openmetrics-text`
 * (version 1.0.0, or no version) is acceptable with a weight at least that of the plain text
 * format; the 0.0.4 text format otherwise (also for a missing or unparsable header).
 */
export function negotiateFormat(accept: string | null | undefined): ExpositionFormat {
  if (!accept) return "prometheus";
  let om = -1;
  let text = -1;
  for (const part of accept.split(",").slice(0, 64)) {
    const [type, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    let q = 1;
    let version: string | undefined;
    for (const p of params) {
      const [k, v] = p.split("=").map((s) => s.trim());
      if (k === "q") q = Number(v);
      else if (k === "version") version = v;
    }
    if (!Number.isFinite(q)) q = 0;
    if (type === "application/openmetrics-text" && (version === undefined || version === "1.0.0")) om = Math.max(om, q);
    else if (type === "text/plain" || type === "*/*" || type === "text/*") text = Math.max(text, q);
  }
  return om > 0 && om >= text ? "openmetrics" : "prometheus";
}

function escapeHelp(help: string, format: ExpositionFormat): string {
  let s = help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
  if (format === "openmetrics") s = s.replace(/"/g, '\\"');
  return s;
}

/** Cached `_bucket{...,le="x"} ` prefixes of a histogram child: the labels never change. */
const bucketPrefixes = new WeakMap<Child, string[]>();

function histogramBucketPrefixes(h: Histogram, c: Child): string[] {
  let p = bucketPrefixes.get(c);
  if (!p) {
    const bounds = [...h.buckets.map(formatValue), "+Inf"];
    const head = c.labelText ? `${c.labelText.slice(0, -1)},` : "{";
    p = bounds.map((b) => `${h.name}_bucket${head}le="${b}"} `);
    bucketPrefixes.set(c, p);
  }
  return p;
}

function renderMetric(m: Metric, format: ExpositionFormat, out: string[]): void {
  const family = m.type === "counter" && format === "prometheus" ? `${m.name}_total` : m.name;
  out.push(`# HELP ${family} ${escapeHelp(m.help, format)}\n# TYPE ${family} ${m.type}\n`);
  if (format === "openmetrics" && m.unit) out.push(`# UNIT ${family} ${m.unit}\n`);
  const children = m.allChildren();
  if (m.type === "histogram") {
    const h = m as Histogram;
    for (const c of children) {
      const prefixes = histogramBucketPrefixes(h, c);
      const counts = c.bucketCounts!;
      let cum = 0;
      for (let i = 0; i < prefixes.length; i++) {
        cum += counts[i]!;
        out.push(prefixes[i]!, String(cum), "\n");
      }
      out.push(`${h.name}_sum${c.labelText} `, formatValue(c.sum), "\n", `${h.name}_count${c.labelText} `, String(c.count), "\n");
    }
    return;
  }
  const sample = m.type === "counter" ? `${m.name}_total` : m.name;
  for (const c of children) out.push(sample, c.labelText, " ", formatValue(c.value), "\n");
}

/** Every metric of `registry` in `format`; empty families (labelled, never updated) are still described. */
export function render(registry: Registry, format: ExpositionFormat = "prometheus"): string {
  const out: string[] = [];
  for (const m of registry.exposed()) renderMetric(m, format, out);
  if (format === "openmetrics") out.push("# EOF\n");
  return out.join("");
}
