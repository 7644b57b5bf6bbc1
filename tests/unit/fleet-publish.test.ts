// What the fleet's metrics are published from and how: totals read again and again becoming
// monotonic counters (also when folded into the overflow series), kernel histograms becoming
// Prometheus buckets (checked against lib/hist.ts's own cumulative() and against promtool), and
// files shared by containers attached once and detached with their last user.
import { describe, expect, test } from "bun:test";
import { Histogram, linearScheme } from "../../lib/hist.ts";
import { render } from "../../lib/metrics/exposition.ts";
import { Registry } from "../../lib/metrics/registry.ts";
import { PublishedTotals } from "../../lib/metrics/totals.ts";
import { SharedFiles } from "../../src/fleet-files.ts";
import type { TracedContainer } from "../../src/fleet.ts";
import { prometheusBuckets } from "../../src/uprobe-metrics.ts";
import { ensurePackages } from "../fixtures/fleet/prometheus.ts";

function promtool(text: string): { ok: boolean; out: string } {
  ensurePackages([{ bin: "promtool", pkg: "prometheus" }]);
  const r = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(text), stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  return { ok: r.exitCode === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

describe("PublishedTotals", () => {
  test("counters follow totals read again and again, never go back, and make the series at 0", () => {
    const r = new Registry();
    const c = r.counter("probe_x_total", "x", ["pid"]);
    const t = new PublishedTotals();
    t.counter(c, "1", { pid: 1 }, 0);
    expect(render(r)).toContain('probe_x_total{pid="1"} 0\n');
    t.counter(c, "1", { pid: 1 }, 5);
    t.counter(c, "1", { pid: 1 }, 5);
    t.counter(c, "1", { pid: 1 }, 3); // a lower total adds nothing
    t.counter(c, "1", { pid: 1 }, 9);
    expect(c.get({ pid: 1 })).toBe(9);
  });

  test("totals folded into the overflow series add up there", () => {
    const r = new Registry({ maxSeries: 4 });
    const c = r.counter("probe_x_total", "x", ["pid"]); // reserves its overflow series
    const t = new PublishedTotals();
    for (let pid = 1; pid <= 10; pid++) t.counter(c, String(pid), { pid }, pid);
    for (let pid = 1; pid <= 10; pid++) t.counter(c, String(pid), { pid }, pid * 2);
    const values = render(r).split("\n").filter((l) => l.startsWith("probe_x_total{")).map((l) => Number(l.split(" ")[1]));
    expect(values.reduce((a, b) => a + b, 0)).toBe(110);
    expect(render(r)).toContain('probe_x_total{overflow="true"}');
  });

  test("histograms: bucket growth added, sum too", () => {
    const r = new Registry();
    const h = r.histogram("probe_h", "h", ["f"], [1, 2]);
    const t = new PublishedTotals();
    t.histogram(h, "a", { f: "a" }, [1, 0, 0], 0.5);
    t.histogram(h, "a", { f: "a" }, [1, 2, 1], 9.5);
    expect(render(r)).toContain('probe_h_bucket{f="a",le="1"} 1\nprobe_h_bucket{f="a",le="2"} 3\nprobe_h_bucket{f="a",le="+Inf"} 4\nprobe_h_sum{f="a"} 9.5\nprobe_h_count{f="a"} 4\n');
  });
});

describe("prometheusBuckets", () => {
  /** The registry's cumulative buckets for kernel counts `h`, as (le, count) pairs. */
  function published(h: Histogram, durations: boolean): [string, number][] {
    const { le, index } = prometheusBuckets(h.scheme, h.signed, durations);
    const r = new Registry();
    const m = r.histogram(durations ? "probe_l_seconds" : "probe_v", "t", [], le, durations ? { unit: "seconds" } : {});
    const counts = new Array<number>(le.length + 1).fill(0);
    h.counts.forEach((c, i) => (counts[index[i]!]! += c));
    m.addCounts(undefined, counts, Number(h.sum) / (durations ? 1e9 : 1));
    const text = render(r);
    expect(promtool(text)).toEqual({ ok: true, out: "" });
    return [...text.matchAll(/_bucket\{le="([^"]+)"\} (\d+)/g)].map((x) => [x[1]!, Number(x[2])]);
  }

  test("log2, unsigned: every bound is lib/hist.ts's cumulative() bound, counts equal", () => {
    const h = Histogram.of({ kind: "log2" }, false, [0n, 1n, 5n, 100n, 100n, 4096n, 70000n].map(BigInt));
    const mine = published(h, false);
    const ref = h.cumulative().filter((b) => b.le === undefined || b.le < 2n ** 53n);
    for (const b of ref) expect(mine).toContainEqual([b.le === undefined ? "+Inf" : String(b.le), b.count]);
    expect(mine.at(-1)).toEqual(["+Inf", 7]);
  });

  test("log2 latencies: le in seconds, each bucket's largest ns", () => {
    const h = Histogram.of({ kind: "log2" }, false, [30_000n, 30_001n, 1_000_000n]);
    const mine = published(h, true);
    expect(mine).toContainEqual(["0.000032767", 2]);
    expect(mine).toContainEqual(["0.001048575", 3]);
    expect(mine.find(([le]) => le === "0.000016383")).toEqual(["0.000016383", 0]);
  });

  test("signed and linear schemes keep negative and underflow buckets", () => {
    const signed = Histogram.of({ kind: "log2" }, true, [-5n, 0n, 3n]);
    expect(published(signed, false).slice(0, 3)).toEqual([["-1", 1], ["0", 2], ["1", 2]]);
    const lin = Histogram.of(linearScheme(0n, 10n, 50n, 254), true, [-1n, 0n, 9n, 10n, 49n, 50n, 1000n]);
    expect(published(lin, false)).toEqual([["-1", 1], ["9", 3], ["19", 4], ["29", 4], ["39", 4], ["49", 5], ["+Inf", 7]]);
  });
});

describe("SharedFiles", () => {
  const c = (n: number) => ({ pidns: { inum: n, level: 1 }, container: { name: `c${n}` } }) as unknown as TracedContainer;

  test("one attachment per file whatever the number of containers; detached with the last; attached again for a new user", () => {
    const f = new SharedFiles<{ close(): void }>();
    let attached = 0;
    let closed = 0;
    const attach = () => (attached++, { close: () => void closed++ });
    const [a, b, d] = [c(1), c(2), c(3)];
    expect(f.use("ino", a, attach)).toBeDefined();
    expect(f.use("ino", b, attach)).toBeUndefined();
    expect([attached, f.users("ino"), f.attachedCount]).toEqual([1, 2, 1]);
    expect(f.release(a)).toEqual([]);
    expect(f.release(b)).toEqual(["ino"]);
    expect([closed, f.attachedCount]).toEqual([1, 0]);
    f.use("ino", d, attach);
    expect(attached).toBe(2);
    expect(() => f.use("other", a, () => { throw new Error("refused"); })).toThrow("refused");
    expect(f.uses("other", a)).toBe(false);
    f.close();
    expect(closed).toBe(2);
  });
});
