// Our /metrics scraped by a real Prometheus (Debian's 2.42, started here with a 1 s scrape
// interval): counter sums and a histogram quantile read back through its HTTP API. Prometheus
// 2.42 asks for OpenMetrics first, so the server's negotiated answer is parsed by Prometheus's
// OpenMetrics parser; a second target serves the 0.0.4 text format to its text parser.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { render } from "../../lib/metrics/exposition.ts";
import { Registry } from "../../lib/metrics/registry.ts";
import { startMetricsServer, type MetricsServer } from "../../lib/metrics/server.ts";
import { startPrometheus, type Prometheus } from "../fixtures/fleet/prometheus.ts";

const registry = new Registry();
const reads = registry.counter("probe_test_total", "Test counter.", ["pod", "container"]);
const latency = registry.histogram("probe_test_latency_seconds", "Test latency.", ["pod"], [0.01, 0.1, 1, 10], { unit: "seconds" });
reads.inc({ pod: "web", container: "nginx" }, 40);
reads.inc({ pod: "web", container: "sidecar" }, 2);
reads.inc({ pod: 'db"\\\n', container: "pg" }, 7); // escaping must survive the round trip
// 10 observations: median in the (0.1, 1] bucket.
for (const v of [0.005, 0.05, 0.05, 0.5, 0.5, 0.5, 0.5, 0.5, 5, 5]) latency.observe({ pod: "web" }, v);

let server: MetricsServer;
let textOnly: ReturnType<typeof Bun.serve>;
let prom: Prometheus;

beforeAll(async () => {
  server = startMetricsServer({ address: "127.0.0.1:0", registry });
  // The same registry in the 0.0.4 format whatever the scraper asks (Prometheus 2.42 has no
  // setting to ask for it).
  textOnly = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(render(registry, "prometheus"), { headers: { "content-type": "text/plain; version=0.0.4" } }) });
  const t0 = performance.now();
  prom = await startPrometheus([`127.0.0.1:${server.port}`, `127.0.0.1:${textOnly.port}`]);
  console.log(`prometheus ready in ${(performance.now() - t0).toFixed(0)} ms`);
}, 300_000);

afterAll(async () => {
  await prom?.stop();
  await server?.close();
  textOnly?.stop(true);
}, 60_000);

test("both targets are scraped without error (OpenMetrics and text parsers)", async () => {
  const t0 = performance.now();
  await prom.waitFor("up", (r) => (r.length === 2 && r.every((s) => s.value[1] === "1") ? true : undefined));
  console.log(`both targets up after ${(performance.now() - t0).toFixed(0)} ms`);
  const targets = await prom.targets();
  expect(targets.map((t) => [t.health, t.lastError])).toEqual([["up", ""], ["up", ""]]);
  expect(server.scrapes).toBeGreaterThan(0);
  expect(server.lastFormat).toBe("openmetrics"); // what Prometheus negotiated
}, 60_000);

test("counter values read back exactly through PromQL, per target and summed", async () => {
  const sum = await prom.waitFor(`sum by (instance) (probe_test_total{pod="web"})`, (r) => (r.length === 2 ? r : undefined));
  expect(sum.map((s) => s.value[1])).toEqual(["42", "42"]);
  const escaped = await prom.query(`probe_test_total{container="pg"}`);
  expect(escaped.map((s) => s.metric.pod)).toEqual(['db"\\\n', 'db"\\\n']);
  expect(escaped.map((s) => s.value[1])).toEqual(["7", "7"]);
  // A later increment is seen at the next scrape.
  reads.inc({ pod: "web", container: "nginx" }, 8);
  await prom.waitFor(`sum(probe_test_total{pod="web"})`, (r) => (r[0]?.value[1] === "100" ? true : undefined));
}, 60_000);

test("histogram_quantile(0.5) falls inside the bucket that holds the median", async () => {
  const q = await prom.waitFor(`histogram_quantile(0.5, sum by (le, instance) (probe_test_latency_seconds_bucket{pod="web"}))`, (r) => (r.length === 2 ? r : undefined));
  for (const s of q) {
    const v = Number(s.value[1]);
    expect(v).toBeGreaterThan(0.1);
    expect(v).toBeLessThanOrEqual(1);
  }
  // Cumulative count at le=1 is 8 of 10; _count and _sum made it too.
  const atOne = await prom.query(`probe_test_latency_seconds_bucket{pod="web",le="1"}`);
  expect(atOne.map((s) => s.value[1])).toEqual(["8", "8"]);
  const count = await prom.query(`probe_test_latency_seconds_count{pod="web"}`);
  expect(count.map((s) => s.value[1])).toEqual(["10", "10"]);
  const sum = await prom.query(`probe_test_latency_seconds_sum{pod="web"}`);
  for (const s of sum) expect(Number(s.value[1])).toBeCloseTo(12.605, 9);
}, 60_000);

test("the fold counter is exposed (0 here)", async () => {
  const r = await prom.query("probe_metrics_series_folded_total");
  expect(r.map((s) => s.value[1])).toEqual(["0", "0"]);
}, 60_000);
