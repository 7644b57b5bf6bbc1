// The fleet case of the benchmarks: (1) how long `probe ssl-read --selector` takes to attach to 50
// containers of one image (50 processes sharing one libssl file, in a private containerd:
// Debian's, as tests/fixtures/fleet/engines.ts starts it), and that it makes one link per file;
// (2) how long a scrape of /metrics takes with 10,000 series: the registry rendered by probe's
// server in this process, and the built binary serving `uprobe --summary` counts of 10,000
// short-lived processes. Part of `bun run bench` (bench/run.ts); `bun bench/fleet.ts` runs it alone.
import { join } from "node:path";
import { kernelView } from "../lib/kernel-view.ts";
import { Registry } from "../lib/metrics/registry.ts";
import { startMetricsServer } from "../lib/metrics/server.ts";
import { buildC, freePort, Lines } from "../tests/helpers.ts";
import { kubeletLabels, startContainerd } from "../tests/fixtures/fleet/engines.ts";
import { WORK } from "../tests/fixtures/fleet/prometheus.ts";
import { CONTAINER_LIB, WEB_IMAGE, webImageArchive } from "../tests/fixtures/fleet/web.ts";

const PROBE = join(import.meta.dir, "..", "dist", "probe");
const CONTAINERS = Number(process.env.BENCH_FLEET_CONTAINERS ?? 50);
const SERIES = 10_000;

type Row = (what: string, value: string, note?: string) => void;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** One run of probe ssl-read on the selection: start to attached, the attach phase alone (PROBE_TIMING), links made. */
async function attachRun(address: string): Promise<{ totalMs: number; attachMs: number; listedMs: number; links: number; files: number }> {
  const t0 = performance.now();
  const p = Bun.spawn([PROBE, "ssl-read", "--selector", "app=bench"], { stdout: "ignore", stderr: "pipe", env: { ...process.env, CONTAINERD_ADDRESS: address, PROBE_TIMING: "1" } });
  const err = new Lines(p.stderr);
  await err.waitFor(/Ctrl-C to stop/, 120_000);
  const totalMs = performance.now() - t0;
  const at = (re: RegExp) => Number(err.all.map((l) => re.exec(l)).find(Boolean)?.[1] ?? NaN);
  const selected = at(/^probe: timing: fleet: \d+ containers selected at ([\d.]+) ms/);
  const attached = at(/^probe: timing: fleet: \d+ files attached at ([\d.]+) ms/);
  const files = Number(/fleet: (\d+) files attached/.exec(err.all.join("\n"))?.[1] ?? NaN);
  const links = kernelView().links.filter((l) => l.uprobe && l.holders.some((h) => h.pid === p.pid) && l.uprobe.path.endsWith(CONTAINER_LIB)).length;
  const n = Number(/Tracing TLS read calls in (\d+) containers/.exec(err.all.join("\n"))?.[1] ?? 0);
  if (n !== CONTAINERS) throw new Error(`probe selected ${n} containers, not ${CONTAINERS}:\n${err.all.join("\n")}`);
  p.kill("SIGINT");
  await p.exited;
  return { totalMs, attachMs: attached - selected, listedMs: selected, links, files };
}

async function attachBench(row: Row): Promise<void> {
  const ctrd = await startContainerd();
  try {
    await ctrd.importImage("k8s.io", webImageArchive(join(WORK, `web-bench-${process.pid}.tar`)));
    const t0 = performance.now();
    for (let i = 0; i < CONTAINERS; i++) {
      await ctrd.runImage("k8s.io", `bench-${i}`, WEB_IMAGE, { ...kubeletLabels("bench", `web-${i}`, `uid-bench-${i}`, "web"), app: "bench" });
    }
    console.error(`  (${CONTAINERS} containers started in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await attachRun(ctrd.address));
    const last = runs.at(-1)!;
    row(`fleet: attach, --selector matching ${CONTAINERS} containers of one image`, `${median(runs.map((r) => r.attachMs)).toFixed(0)} ms`,
      `median of 3 [target < 500 ms]: from the selection known to every container's TLS found and attached; ${last.files} file, ${last.links} links (entry + return) for ${CONTAINERS} processes [target: one link per file]`);
    row("fleet: start to attached, the same run", `${median(runs.map((r) => r.totalMs)).toFixed(0)} ms`,
      `median of 3; of which listing the runtimes (ctr: namespaces, tasks, ${CONTAINERS} containers' labels) ${median(runs.map((r) => r.listedMs)).toFixed(0)} ms`);
  } finally {
    await ctrd.stop();
  }
}

/** Scrape time, median and worst of `n`, of a server's /metrics. */
async function scrapeMs(url: string, n = 20, accept?: string): Promise<{ median: number; max: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const text = await (await fetch(url, accept ? { headers: { accept } } : {})).text();
    times.push(performance.now() - t0);
    bytes = text.length;
  }
  return { median: median(times), max: Math.max(...times), bytes };
}

async function scrapeBench(row: Row): Promise<void> {
  // In this process: ssl-read's four counters for 2,500 processes, 10,000 series.
  const r = new Registry();
  const names = ["pod", "namespace", "container", "pid", "comm", "library"];
  const metrics = ["probe_ssl_read_calls_total", "probe_ssl_read_bytes_total", "probe_ssl_read_errors_total", "probe_ssl_read_order_violations_total"].map((m) => r.counter(m, "bench", names));
  for (let i = 0; i < SERIES / metrics.length - 1; i++) {
    const labels = { pod: `web-${i % 97}`, namespace: "shop", container: "nginx", pid: 100_000 + i, comm: "nginx", library: "/opt/ssl/libssl.so.3" };
    for (const m of metrics) m.inc(labels, i);
  }
  const server = startMetricsServer({ address: "127.0.0.1:0", registry: r });
  try {
    const text = await scrapeMs(`${server.url}/metrics`);
    const om = await scrapeMs(`${server.url}/metrics`, 20, "application/openmetrics-text; version=1.0.0");
    row(`fleet: scrape of /metrics, ${r.seriesUsed} series (lib/metrics in-process)`, `${text.median.toFixed(1)} ms`, `median of 20, max ${text.max.toFixed(1)}; ${(text.bytes / 1024).toFixed(0)} KiB [target < 50 ms]; OpenMetrics ${om.median.toFixed(1)} ms`);
  } finally {
    await server.close();
  }

  // The built binary: uprobe --summary --metrics over 10,000 short-lived processes (one series each).
  const forks = buildC("forks", "fleet/forks.c");
  const port = freePort();
  const p = Bun.spawn([PROBE, "uprobe", forks, "fleet_tick", "--summary", "--metrics", `127.0.0.1:${port}`, "-i", "0.5"], { stdout: "ignore", stderr: "pipe" });
  const err = new Lines(p.stderr);
  await err.waitFor(/Ctrl-C/, 30_000);
  const f = Bun.spawn([forks, String(SERIES - 10)], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(f.stdout);
  await out.waitFor(/^ready/);
  f.stdin.write("go\n");
  f.stdin.end();
  await out.waitFor(/^done/, 300_000);
  await Bun.sleep(1_200); // an interval: exited processes folded out of the kernel's table
  const s = await scrapeMs(`http://127.0.0.1:${port}/metrics`, 10);
  const series = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).split("\n").filter((l) => l && !l.startsWith("#")).length;
  p.kill("SIGINT");
  await p.exited;
  row(`fleet: scrape of dist/probe's /metrics, ${series} series (uprobe --summary, ${SERIES - 10} processes)`, `${s.median.toFixed(1)} ms`, `median of 10, max ${s.max.toFixed(1)} (each scrape reads the kernel's table first) [target < 50 ms]`);
}

export async function fleetBench(row: Row): Promise<void> {
  await scrapeBench(row);
  if (process.getuid?.() !== 0) {
    row("fleet: attach", "-", "needs root (containers, BPF)");
    return;
  }
  await attachBench(row);
}

if (import.meta.main) {
  const rows: [string, string, string][] = [];
  await fleetBench((a, b, c = "") => {
    rows.push([a, b, c]);
    console.error(`  ${a}: ${b} ${c}`);
  });
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0]!)}  ${b.padEnd(w[1]!)}  ${c}`);
}
