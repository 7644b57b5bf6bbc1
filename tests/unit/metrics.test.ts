// The metrics registry and its exposition, checked against promtool (Prometheus's own linter and
// text-format parser), plus the cardinality cap, render time at 10,000 series, content
// negotiation, listen-address parsing and the HTTP server's routes.
import { describe, expect, test } from "bun:test";
import { CONTENT_TYPES, negotiateFormat, render } from "../../lib/metrics/exposition.ts";
import { FOLDED_METRIC, MetricsError, Registry } from "../../lib/metrics/registry.ts";
import { ListenAddressError, parseListenAddress, startMetricsServer } from "../../lib/metrics/server.ts";
import { ensurePackages } from "../fixtures/fleet/prometheus.ts";

function promtool(text: string): { ok: boolean; out: string } {
  ensurePackages([{ bin: "promtool", pkg: "prometheus" }]);
  const r = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(text), stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return { ok: r.exitCode === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

/** A registry with one of everything, awkward label values included. */
function sample(): Registry {
  const r = new Registry();
  const reads = r.counter("probe_ssl_reads_total", 'SSL_read calls, by "pod".\nSecond line \\ backslash.', ["pod", "namespace"]);
  reads.inc({ pod: "web", namespace: "shop" }, 3);
  reads.inc({ pod: 'we"ird\\pod\nname', namespace: "shop" });
  const up = r.gauge("probe_targets", "Targets attached.");
  up.set(undefined, 2);
  const lat = r.histogram("probe_call_duration_seconds", "Call latency.", ["pod"], [0.001, 0.01, 0.1, 1], { unit: "seconds" });
  for (const v of [0.0005, 0.002, 0.05, 0.05, 3]) lat.observe({ pod: "web" }, v);
  return r;
}

describe("exposition", () => {
  test("text format 0.0.4: exact lines, escaping, cumulative buckets, and promtool accepts it", () => {
    const text = render(sample(), "prometheus");
    expect(text).toContain('# HELP probe_ssl_reads_total SSL_read calls, by "pod".\\nSecond line \\\\ backslash.\n# TYPE probe_ssl_reads_total counter\n');
    expect(text).toContain('probe_ssl_reads_total{pod="web",namespace="shop"} 3\n');
    expect(text).toContain('probe_ssl_reads_total{pod="we\\"ird\\\\pod\\nname",namespace="shop"} 1\n');
    expect(text).toContain("# TYPE probe_targets gauge\nprobe_targets 2\n");
    // Buckets are cumulative and end with +Inf == _count.
    const buckets = [...text.matchAll(/^probe_call_duration_seconds_bucket\{pod="web",le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]);
    expect(buckets).toEqual([["0.001", 1], ["0.01", 2], ["0.1", 4], ["1", 4], ["+Inf", 5]]);
    expect(text).toContain('probe_call_duration_seconds_sum{pod="web"} 3.1025\nprobe_call_duration_seconds_count{pod="web"} 5\n');
    expect(text).not.toContain("# EOF");
    expect(text).not.toContain("# UNIT");
    expect(text).toContain(`# TYPE ${FOLDED_METRIC} counter\n${FOLDED_METRIC} 0\n`);
    const lint = promtool(text);
    expect(lint.out).toBe("");
    expect(lint.ok).toBe(true);
  });

  test("OpenMetrics 1.0.0: family without _total, HELP quotes escaped, UNIT, # EOF last", () => {
    const text = render(sample(), "openmetrics");
    expect(text).toContain('# HELP probe_ssl_reads SSL_read calls, by \\"pod\\".\\nSecond line \\\\ backslash.\n# TYPE probe_ssl_reads counter\n');
    expect(text).toContain('probe_ssl_reads_total{pod="web",namespace="shop"} 3\n');
    expect(text).toContain("# TYPE probe_call_duration_seconds histogram\n# UNIT probe_call_duration_seconds seconds\n");
    expect(text.endsWith("\n# EOF\n")).toBe(true);
    expect(text.indexOf("# EOF")).toBe(text.length - "# EOF\n".length);
    // promtool check metrics reads only the 0.0.4 text format (it rejects OpenMetrics' \" in HELP);
    // the OpenMetrics output is checked by a real Prometheus scraping it (metrics-prometheus.test.ts).
  });

  test("content negotiation follows the Accept header's weights", () => {
    // What Prometheus 2.42 sends by default.
    expect(negotiateFormat("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")).toBe("openmetrics");
    expect(negotiateFormat("application/openmetrics-text")).toBe("openmetrics");
    expect(negotiateFormat("text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5")).toBe("prometheus");
    expect(negotiateFormat("application/openmetrics-text;version=0.0.1")).toBe("prometheus"); // a version we do not write
    expect(negotiateFormat("application/openmetrics-text;q=0")).toBe("prometheus");
    expect(negotiateFormat(undefined)).toBe("prometheus");
    expect(negotiateFormat("*/*")).toBe("prometheus");
    expect(negotiateFormat(";;;,=,q=x")).toBe("prometheus");
  });

  test("registration refuses bad names, reserved labels, unit mismatches and clashes", () => {
    const r = new Registry();
    expect(() => r.counter("9bad", "x")).toThrow(MetricsError);
    expect(() => r.counter("ok_total", "x", ["__x"])).toThrow(/invalid label name/);
    expect(() => r.counter("ok_total", "x", ["overflow"])).toThrow(/reserved/);
    expect(() => r.counter("ok_total", "x", ["a", "a"])).toThrow(/repeated/);
    expect(() => r.histogram("h_seconds", "x", ["le"])).toThrow(/le/);
    expect(() => r.histogram("h_seconds", "x", [], [1, 0.5])).toThrow(/increase/);
    expect(() => r.gauge("g_bytes", "x", [], { unit: "seconds" })).toThrow(/_seconds/);
    r.histogram("req_seconds", "x");
    expect(() => r.gauge("req_seconds_count", "x")).toThrow(/already registered|clashes/);
    expect(() => r.counter(FOLDED_METRIC, "x")).toThrow(/already registered|clashes/);
    const c = r.counter("c_total", "x", ["pod"]);
    expect(() => c.inc({ node: "n" })).toThrow(/has no label node/);
    expect(() => c.inc({ pod: "p" }, -1)).toThrow(/cannot be increased/);
    expect(c.get({ pod: "never" })).toBe(0); // reading makes no series
    expect(render(r)).not.toContain('pod="never"');
  });
});

describe("cardinality cap", () => {
  test("20,000 label sets give at most maxSeries series plus the fold counter; the overflow series holds the rest", () => {
    const r = new Registry({ maxSeries: 10_000 });
    const c = r.counter("probe_test_total", "x", ["pod", "container"]);
    const h = r.histogram("probe_test_seconds", "x", ["pod"], [0.1, 1]); // 5 series per label set
    for (let i = 0; i < 20_000; i++) c.inc({ pod: `p${i}`, container: "c" }, 2);
    for (let i = 0; i < 10; i++) h.observe({ pod: `p${i}` }, 0.5);
    const text = render(r);
    const series = text.split("\n").filter((l) => l && !l.startsWith("#"));
    const folded = series.filter((l) => l.startsWith(FOLDED_METRIC));
    expect(folded).toHaveLength(1);
    expect(series.length - 1).toBeLessThanOrEqual(10_000);
    expect(r.seriesUsed).toBeLessThanOrEqual(10_000);
    // Room: 10,000 - 1 (counter's overflow reserve) - 5 (histogram's) = 9,994 counter series, then folds.
    const regular = series.filter((l) => l.startsWith("probe_test_total{pod="));
    expect(regular).toHaveLength(9_994);
    const overflow = series.find((l) => l.startsWith('probe_test_total{overflow="true"}'));
    expect(overflow).toBe(`probe_test_total{overflow="true"} ${(20_000 - 9_994) * 2}`);
    // The histogram, registered with room reserved for its overflow, folds whole label sets too.
    expect(series.filter((l) => l.startsWith('probe_test_seconds_bucket{overflow="true",le="+Inf"}'))).toEqual(['probe_test_seconds_bucket{overflow="true",le="+Inf"} 10']);
    expect(r.foldedUpdates).toBe(20_000 - 9_994 + 10);
    expect(folded[0]).toBe(`${FOLDED_METRIC} ${20_000 - 9_994 + 10}`);
    // Existing series keep counting after the cap is reached.
    c.inc({ pod: "p0", container: "c" });
    expect(c.get({ pod: "p0", container: "c" })).toBe(3);
    expect(promtool(text).ok).toBe(true);
  });

  test("rendering 10,000 series takes < 50 ms (both formats)", () => {
    const r = new Registry({ maxSeries: 20_000 });
    const c = r.counter("probe_ssl_read_bytes_total", "x", ["namespace", "pod", "container"]);
    const h = r.histogram("probe_ssl_read_duration_seconds", "x", ["namespace", "pod"], [0.0001, 0.001, 0.01, 0.1, 1]); // 8 series each
    for (let i = 0; i < 6_000; i++) c.inc({ namespace: `ns${i % 17}`, pod: `web-${i}`, container: "nginx" }, i);
    for (let i = 0; i < 500; i++) h.observe({ namespace: `ns${i % 17}`, pod: `web-${i}` }, i / 1000);
    const count = (t: string) => t.split("\n").filter((l) => l && !l.startsWith("#")).length;
    render(r); // first render builds the cached bucket prefixes
    for (const format of ["prometheus", "openmetrics"] as const) {
      const times: number[] = [];
      let text = "";
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        text = render(r, format);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const n = count(text);
      console.log(`render ${format}: ${n} series, ${(text.length / 1e6).toFixed(2)} MB, median ${times[2]!.toFixed(2)} ms, max ${times[4]!.toFixed(2)} ms`);
      expect(n).toBeGreaterThanOrEqual(10_000);
      expect(times[2]!).toBeLessThan(50);
    }
  });
});

describe("listen addresses", () => {
  test("accepted forms", () => {
    expect(parseListenAddress(":9464")).toEqual({ hostname: "0.0.0.0", port: 9464 });
    expect(parseListenAddress("9464")).toEqual({ hostname: "0.0.0.0", port: 9464 });
    expect(parseListenAddress("127.0.0.1:9464")).toEqual({ hostname: "127.0.0.1", port: 9464 });
    expect(parseListenAddress("[::1]:0")).toEqual({ hostname: "::1", port: 0 });
    expect(parseListenAddress("localhost:80")).toEqual({ hostname: "localhost", port: 80 });
  });

  test("refused forms say what is wrong", () => {
    const cases: [string, RegExp][] = [
      ["", /empty/],
      ["127.0.0.1", /no port/],
      ["127.0.0.1:", /no port/],
      [":http", /not a number/],
      [":65536", /above 65535/],
      ["::1:9464", /brackets/],
      ["[::1]9464", /after a colon/],
      ["[1.2.3.4]:80", /not an IPv6/],
      ["[::1:80", /closing/],
      ["bad host:80", /not an IP address or host name/],
      [":-1", /not a number/],
    ];
    for (const [text, why] of cases) {
      let err: unknown;
      try {
        parseListenAddress(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ListenAddressError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).toContain(JSON.stringify(text));
    }
  });
});

describe("server", () => {
  test("/metrics in both formats, /healthz, 404, 405, a busy port refused, close() stops it", async () => {
    const registry = sample();
    let unhealthy: string | undefined;
    const s = startMetricsServer({ address: "127.0.0.1:0", registry, unhealthy: () => unhealthy });
    try {
      expect(s.port).toBeGreaterThan(0);
      const plain = await fetch(`${s.url}/metrics`);
      expect(plain.status).toBe(200);
      expect(plain.headers.get("content-type")).toBe(CONTENT_TYPES.prometheus);
      expect(await plain.text()).toBe(render(registry, "prometheus"));
      const om = await fetch(`${s.url}/metrics`, { headers: { accept: "application/openmetrics-text; version=1.0.0" } });
      expect(om.headers.get("content-type")).toBe(CONTENT_TYPES.openmetrics);
      expect((await om.text()).endsWith("# EOF\n")).toBe(true);
      expect(s.scrapes).toBe(2);
      expect(await (await fetch(`${s.url}/healthz`)).text()).toBe("ok\n");
      unhealthy = "no engine answered";
      const sick = await fetch(`${s.url}/healthz`);
      expect(sick.status).toBe(503);
      expect(await sick.text()).toBe("no engine answered\n");
      expect((await fetch(`${s.url}/nope`)).status).toBe(404);
      expect((await fetch(`${s.url}/metrics`, { method: "POST" })).status).toBe(405);
      expect(() => startMetricsServer({ address: `127.0.0.1:${s.port}`, registry })).toThrow(/in use/);
    } finally {
      await s.close();
    }
    const after = await fetch(`${s.url}/healthz`).then(() => "answered", (e: Error) => e.message);
    expect(after).not.toBe("answered");
  });
});
