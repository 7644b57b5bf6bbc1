// `probe uprobe --hist`: the buckets the kernel counted equal a histogram computed here from the
// same calls' exact values (the fixture prints every value it passed, got back and measured), per
// bucket, in log2 and linear modes; for a parameter named by a prototype or by debug info, signed
// and unsigned, the return value, and latency (sleeps in the middle of buckets). No event per call.
import { describe, expect, test } from "bun:test";
import { Histogram, bucketIndex, type BucketScheme } from "../../lib/hist.ts";
import { startProbe, runProbe, type Running } from "../helpers.ts";
import { buildGoChain, buildValues, startGoChain, startValues, type Call, type Held } from "../fixtures/hist/fixtures.ts";

const PROTO = "long hist_target(long value, unsigned long size, long sleep_us)";

interface HistJson {
  event: string;
  function: string;
  value: string;
  unit?: string;
  pid?: number;
  comm?: string;
  final?: boolean;
  interval?: boolean;
  count: number;
  sum: number | string;
  min?: number | string;
  max?: number | string;
  avg: number;
  p50: number;
  p90: number;
  p99: number;
  buckets: { lo: number | string | null; hi: number | string | null; count: number }[];
}

/** Runs probe on a held fixture process: attach, let the fixture run, stop probe, return its output. */
async function traced(h: Held, args: string[]): Promise<{ calls: Call[]; stdout: string[]; stderr: string[]; code: number }> {
  const p = await startProbe(["uprobe", buildValues(), ...args, "--pid", String(h.pid)]);
  const calls = await h.go();
  const r = await stop(p);
  return { calls, ...r };
}

async function stop(p: Running): Promise<{ stdout: string[]; stderr: string[]; code: number }> {
  p.proc.kill("SIGINT");
  const code = await p.proc.exited;
  return { stdout: await p.out.done(), stderr: await p.err.done(), code };
}

function jsonHists(lines: string[]): HistJson[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as HistJson).filter((e) => e.event === "hist");
}

function big(v: number | string | null | undefined): bigint | undefined {
  return v === null || v === undefined ? undefined : BigInt(v);
}

/** The kernel's buckets, as (bucket index, count) pairs of the scheme. */
function kernelBuckets(h: HistJson, scheme: BucketScheme, signed: boolean): Map<number, number> {
  const out = new Map<number, number>();
  for (const b of h.buckets) {
    // A bucket's lower bound lies in it (the open "below" bucket is identified by its upper bound).
    const i = b.lo === null ? 0 : bucketIndex(scheme, big(b.lo)!, signed);
    out.set(i, b.count);
  }
  return out;
}

function referenceBuckets(ref: Histogram): Map<number, number> {
  const out = new Map<number, number>();
  ref.counts.forEach((c, i) => c && out.set(i, c));
  return out;
}

function expectSame(h: HistJson, scheme: BucketScheme, signed: boolean, values: bigint[]) {
  const ref = Histogram.of(scheme, signed, values);
  expect(kernelBuckets(h, scheme, signed)).toEqual(referenceBuckets(ref));
  expect(h.count).toBe(values.length);
  expect(big(h.sum)).toBe(ref.sum);
  expect(big(h.min)).toBe(ref.min!);
  expect(big(h.max)).toBe(ref.max!);
}

const LOG2: BucketScheme = { kind: "log2" };

/**
 * Whether each call can be put in one of its two possible buckets ([lower, upper], equal or
 * adjacent) so that the counts are exactly `kernel`'s: greedily, lowest buckets first.
 */
function fitsWithSlack(kernel: Map<number, number>, calls: [number, number][]): boolean {
  const last = Math.max(...calls.map((c) => c[1]), ...kernel.keys());
  let carried = 0; // flexible calls of the bucket below that must come here
  for (let i = 0; i <= last; i++) {
    const fixed = calls.filter(([lo, hi]) => lo === i && hi === i).length;
    const flexible = calls.filter(([lo, hi]) => lo === i && hi === i + 1).length;
    const want = kernel.get(i) ?? 0;
    const room = want - fixed - carried;
    if (room < 0 || room > flexible) return false;
    carried = flexible - room;
  }
  return carried === 0;
}

describe("--hist of values: the kernel's buckets equal the values' own histogram", () => {
  test("a signed parameter named by a prototype, log2 buckets (negatives, zero, 2^k - 1, 2^k, 2^k + 1, the extremes)", async () => {
    const h = await startValues("values");
    const r = await traced(h, [PROTO, "--hist", "value", "--json"]);
    await h.end();
    expect(r.code).toBe(0);
    expect(r.calls.length).toBe(27);
    const [final] = jsonHists(r.stdout);
    expect(final!.final).toBe(true);
    expect(final!.value).toBe("value");
    expectSame(final!, LOG2, true, r.calls.map((c) => c.value));
    // No event per call: the histogram is the only output.
    expect(r.stdout.filter((l) => l.trim()).length).toBe(1);
    // The extremes sit in the "< 0" bucket and in [2^62, 2^63).
    expect(final!.buckets[0]).toEqual({ lo: null, hi: 0, count: 3 });
    expect(final!.buckets.at(-1)).toEqual({ lo: String(1n << 62n), hi: String(1n << 63n), count: 2 });
  });

  test("an unsigned parameter typed from the binary's debug info (no prototype given)", async () => {
    const h = await startValues("values");
    const r = await traced(h, ["hist_target", "--hist", "size", "--json"]);
    await h.end();
    expect(r.stderr.join("\n")).toMatch(/types from .*values/);
    const [final] = jsonHists(r.stdout);
    // size = value * 3 as unsigned long: the negatives become huge values, never a "< 0" bucket.
    expectSame(final!, LOG2, false, r.calls.map((c) => c.size));
    expect(final!.buckets.some((b) => b.lo === null)).toBe(false);
  });

  test("linear buckets: below START, each STEP, at or above END", async () => {
    const scheme: BucketScheme = { kind: "linear", start: 0n, step: 512n, steps: 16 };
    const h = await startValues("values");
    const r = await traced(h, [PROTO, "--hist", "value", "--linear", "0,512,8192", "--json"]);
    await h.end();
    const [final] = jsonHists(r.stdout);
    expectSame(final!, scheme, true, r.calls.map((c) => c.value));
    expect(final!.buckets[0]).toEqual({ lo: null, hi: 0, count: 3 });
    expect(final!.buckets.at(-1)!.lo).toBe(8192);
    expect(final!.buckets.at(-1)!.hi).toBe(null);
  });

  test("--hist ret: the return value, read at the return (from --ret=long)", async () => {
    const h = await startValues("values");
    const r = await traced(h, ["hist_target", "--hist", "ret", "--ret=long", "--no-debuginfo", "--json"]);
    await h.end();
    const [final] = jsonHists(r.stdout);
    expect(final!.value).toBe("ret");
    expectSame(final!, LOG2, true, r.calls.map((c) => c.ret));
    const linear = { kind: "linear", start: -100n, step: 25n, steps: 8 } as const;
    const h2 = await startValues("values");
    const r2 = await traced(h2, [PROTO, "--hist", "ret", "--linear", "-100,25,100", "--json"]);
    await h2.end();
    expectSame(jsonHists(r2.stdout)[0]!, linear, true, r2.calls.map((c) => c.ret));
  });

  test("--per-process: one histogram per process, each equal to that process's values", async () => {
    const one = await startValues("values", 1);
    const two = await startValues("values", 2);
    const p = await startProbe(["uprobe", buildValues(), PROTO, "--hist", "value", "--per-process", "--json"]);
    const [c1, c2] = await Promise.all([one.go(), two.go()]);
    const r = await stop(p);
    await Promise.all([one.end(), two.end()]);
    const hists = jsonHists(r.stdout).filter((x) => x.pid === one.pid || x.pid === two.pid);
    expect(hists.map((x) => x.pid).sort()).toEqual([one.pid, two.pid].sort());
    for (const [held, calls] of [[one, c1!], [two, c2!]] as const) {
      const mine = hists.find((x) => x.pid === held.pid)!;
      expect(mine.comm).toBe("values");
      expect(calls.length).toBe(held === one ? 27 : 54);
      expectSame(mine, LOG2, true, calls.map((c) => c.value));
    }
  });

  test("the bar chart a person reads: bpftrace's layout, summary line with exact min and max", async () => {
    const h = await startValues("values");
    const r = await traced(h, [PROTO, "--hist", "value"]);
    await h.end();
    const text = r.stdout.join("\n");
    console.log(text);
    expect(r.stdout[0]).toMatch(/^hist_target value: 27 calls, min -9223372036854775808, avg \S+, max 9223372036854775807, p50 \S+, p90 \S+, p99 \S+$/);
    expect(text).toMatch(/^\(\.\.\., 0\) +3 \|@{52}\|$/m);
    expect(text).toMatch(/^\[512, 1K\) +3 \|@{52}\|$/m);
    expect(text).toMatch(/^\[1K, 2K\) +2 \|@{35} {17}\|$/m);
    expect(text).toMatch(/^\[16, 32\) +0 \| {52}\|$/m);
  });
});

describe("--hist latency", () => {
  test("log2 and linear: the kernel's buckets equal those of the latencies the caller measured", async () => {
    for (const linear of [false, true]) {
      const scheme: BucketScheme = linear ? { kind: "linear", start: 0n, step: 1_000_000n, steps: 25 } : LOG2;
      const h = await startValues("sleeps", 2);
      const r = await traced(h, ["hist_target", "--hist", "--json", ...(linear ? ["--linear", "0,1000000,25000000"] : [])]);
      await h.end();
      const [final] = jsonHists(r.stdout);
      expect(final!.value).toBe("latency");
      expect(final!.unit).toBe("ns");
      const measured = r.calls.map((c) => c.latencyNs);
      const kernel = kernelBuckets(final!, scheme, false);
      const exact = referenceBuckets(Histogram.of(scheme, false, measured));
      if (!Bun.deepEquals(kernel, exact)) {
        // The program's measure is the caller's less the two probe hits (and whatever preempted the
        // caller there): a call just above a bucket bound by the caller's clock may be just below it
        // by the program's. Only such calls may be one bucket lower.
        const slack = 200_000n;
        expect(fitsWithSlack(kernel, measured.map((v) => [bucketIndex(scheme, v - slack, false), bucketIndex(scheme, v, false)]))).toBe(true);
        console.log(`latency ${linear ? "linear" : "log2"}: calls within ${slack} ns above a bucket bound counted one bucket lower (the caller's clock runs around the probes)`);
      }
      // The probe sees a little less than the caller around the call, never less than the sleep asked.
      expect(Number(big(final!.min))).toBeGreaterThanOrEqual(1_200_000);
      expect(big(final!.max)! <= measured.reduce((a, b) => (a > b ? a : b))).toBe(true);
      const sum = measured.reduce((a, b) => a + b, 0n);
      expect(big(final!.sum)! <= sum).toBe(true);
      expect(Number(sum - big(final!.sum)!) / r.calls.length).toBeLessThan(200_000);
      // Percentiles: estimated inside the bucket that holds them.
      const ref = Histogram.of(scheme, false, measured);
      for (const p of [50, 90, 99] as const) {
        const i = bucketIndex(scheme, BigInt(Math.floor(final![`p${p}`])), false);
        const j = bucketIndex(scheme, BigInt(Math.floor(ref.percentile(p)!)), false);
        expect(Math.abs(i - j)).toBeLessThanOrEqual(1);
      }
    }
  });

  test("-i prints each interval's calls; they add up to the total printed at exit", async () => {
    const h = await startValues("sleeps", 8);
    const p = await startProbe(["uprobe", buildValues(), "hist_target", "--hist", "-i", "0.15", "--json", "--pid", String(h.pid)]);
    await h.go();
    // One more interval, so that the last calls are in one too.
    await Bun.sleep(400);
    const r = await stop(p);
    await h.end();
    const all = jsonHists(r.stdout);
    const intervals = all.filter((x) => x.interval);
    const final = all.find((x) => x.final)!;
    expect(intervals.length).toBeGreaterThanOrEqual(2);
    expect(final.count).toBe(80);
    expect(intervals.reduce((n, x) => n + x.count, 0)).toBe(80);
    // Intervals do not know min and max (only the total does).
    expect(intervals.every((x) => x.min === undefined)).toBe(true);
  });

  test("human output: bounds as durations (ns, µs, ms), bars scaled to the fullest bucket", async () => {
    const h = await startValues("sleeps");
    const r = await traced(h, ["hist_target", "--hist"]);
    await h.end();
    console.log(r.stdout.join("\n"));
    expect(r.stdout[0]).toMatch(/^hist_target latency: 10 calls, min \S+ms, avg \S+ms, max \S+ms, p50 \S+ms, p90 \S+ms, p99 \S+ms$/);
    const rows = r.stdout.slice(1).filter((l) => l.trim());
    for (const l of rows) expect(l).toMatch(/^\[\d+(\.\d+)?ms, \d+(\.\d+)?ms\) +\d+ \|@* *\|$/);
    // Rows are log2 buckets [2^k, 2^(k+1)) ns shown in ms; the first is where the shortest call fell
    // ([1.05ms, 2.1ms) on a quiet machine: the sleeps start at 1.2 ms).
    const lowest = Number(/^\[([\d.]+)ms,/.exec(rows[0]!)![1]) * 1e6;
    const k = Math.round(Math.log2(lowest));
    expect(Math.abs(2 ** k - lowest) / lowest).toBeLessThan(0.01);
    expect(k).toBeGreaterThanOrEqual(20);
    // The same counts as the caller's own measurements give, bucket by bucket from the first
    // non-empty one (the first row); a call just above a bound by the caller's
    // clock may be one bucket lower by the program's (see the log2 test).
    const counts = rows.map((l) => Number(/\) +(\d+) \|/.exec(l)![1]));
    const base = bucketIndex(LOG2, 1n << BigInt(k), false);
    const shown = new Map<number, number>();
    counts.forEach((c, i) => c && shown.set(base + i, c));
    const measured = r.calls.map((c) => c.latencyNs);
    if (!Bun.deepEquals(shown, referenceBuckets(Histogram.of(LOG2, false, measured)))) {
      expect(fitsWithSlack(shown, measured.map((v) => [bucketIndex(LOG2, v - 200_000n, false), bucketIndex(LOG2, v, false)]))).toBe(true);
    }
    const top = Math.max(...counts);
    for (const l of rows) {
      const n = Number(/\) +(\d+) \|/.exec(l)![1]);
      expect(/\|(@*) *\|$/.exec(l)![1]!.length).toBe(Math.round((n / top) * 52));
      expect(l.length).toBe(rows[0]!.length);
    }
  });

  test("Go: latency paired per goroutine; every call counted", async () => {
    const g = await startGoChain(50);
    const p = await startProbe(["uprobe", buildGoChain(), "main.target", "--hist", "--json", "--pid", String(g.pid)]);
    await g.go();
    const r = await stop(p);
    await g.end();
    const [final] = jsonHists(r.stdout);
    expect(final!.count).toBe(50);
  });
});

describe("--hist refusals", () => {
  const bin = () => buildValues();
  const cases: [string[], RegExp][] = [
    [["hist_target", "--linear", "0,1,10"], /--linear goes with --hist/],
    [["hist_target", "--hist", "--linear", "0,0,10"], /step of linear buckets must be above 0/],
    [["hist_target", "--hist", "--linear", "5,1"], /START,STEP,END/],
    [["hist_target", "--hist", "--linear", "0,1,1000"], /1000 linear buckets .* at most 254/],
    [[PROTO, "--hist", "nosuch"], /hist_target has no parameter named 'nosuch'.*its parameters: value, size, sleep_us/s],
    [["hist_target", "--hist", "value", "--no-debuginfo"], /parameters of hist_target are not known.*long hist_target\(long value\)/s],
    [["hist_target", "--hist", "--stack"], /choose one/],
    [["hist_target", "--hist", "--summary"], /choose one/],
    [["hist_target", "--per-process"], /--per-process goes with --hist or --stacks/],
  ];
  for (const [args, re] of cases) {
    test(args.join(" "), () => {
      const r = runProbe(["uprobe", bin(), ...args, "-d", "0.1"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
