// probe across a fleet, end to end on the built binary (root): containers of a private containerd
// (Debian's) run as kubelet runs them (pods through its real CRI plugin: tests/fixtures/fleet/cri.ts;
// and `ctr run` in namespace k8s.io with kubelet's labels) and of the machine's dockerd (labelled as
// cri-dockerd labels them), all from one image holding a private libssl (/opt/ssl) and tls_pair,
// which makes exactly N SSL_read calls (tests/fixtures/fleet/web.ts). Checked: --selector, --pod,
// --namespace, --container-name and --all-containers count exactly the reads of the containers they
// select and none other; a container started later is attached within 2 s and its reads counted
// exactly; one that stops is detached (the kernel's own list of links) with its counts kept; a real
// Prometheus (Debian's) scraping probe every second reads the counts back through PromQL, and
// histogram_quantile on `uprobe --hist` falls in the bucket the kernel's histogram puts the median
// in; promtool accepts the endpoints; 20,000 short-lived processes stay under the series cap. The
// README section's examples are the command lines run here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { kernelView } from "../../lib/kernel-view.ts";
import { buildC, freePort, probeBinary, start, type Running } from "../helpers.ts";
import { readmeExamples } from "../readme.ts";
import { CriClient } from "../fixtures/fleet/cri.ts";
import { kubeletLabels, run, startContainerd, startDocker, type Containerd, type DockerEngine } from "../fixtures/fleet/engines.ts";
import { startPrometheus, WORK, type Prometheus } from "../fixtures/fleet/prometheus.ts";
import { CONTAINER_LIB, dockerWebImage, tlsReads, WEB_IMAGE, webImageArchive } from "../fixtures/fleet/web.ts";

if (process.getuid?.() !== 0) throw new Error("tests/kernel/fleet-metrics.test.ts runs containers and probe: it must run as root");

const EX = readmeExamples("Fleet: Kubernetes and Prometheus");
const S = Math.random().toString(36).slice(2, 8);

let ctrd: Containerd;
let cri: CriClient;
let docker: DockerEngine;
let dockerImage: string;
const sandboxes: string[] = [];
const dockerNames: string[] = [];

/** A test container: how to run a command in it, and what probe should call it. */
interface Box {
  exec: string[];
  /** The POD column: ns/pod/container, or the engine's name outside Kubernetes. */
  pod: string;
  labels: { pod: string; namespace: string; container: string };
}
const box: Record<string, Box> = {};

function k8sBox(namespace: string, pod: string, container: string, exec: string[]): Box {
  return { exec, pod: `${namespace}/${pod}/${container}`, labels: { pod, namespace, container } };
}

async function criPod(name: string, namespace: string, labels: Record<string, string>) {
  const p = { name, namespace, uid: `uid-${name}-${S}`, labels };
  const config = cri.podSandboxConfig(p);
  const sandbox = await cri.runPodSandbox(config);
  sandboxes.push(sandbox);
  return { ...p, config, sandbox };
}

async function criContainer(pod: Awaited<ReturnType<typeof criPod>>, name: string): Promise<{ id: string; runningAt: number }> {
  const id = await cri.runContainer(pod.sandbox, pod.config, pod, name, WEB_IMAGE, ["/bin/tls_idle"]);
  return { id, runningAt: performance.now() };
}

let webPod: Awaited<ReturnType<typeof criPod>>;

beforeAll(async () => {
  probeBinary();
  const t0 = performance.now();
  ctrd = await startContainerd();
  cri = new CriClient(ctrd.address);
  await ctrd.importImage("k8s.io", webImageArchive(join(WORK, `web-${process.pid}.tar`)));
  // Pods through the CRI plugin: their labels are on their sandboxes, as kubelet puts them.
  webPod = await criPod("web-7d9f", "shop", { app: "web", tier: "front" });
  for (const c of ["nginx", "sidecar"]) {
    const { id } = await criContainer(webPod, c);
    box[`web-${c}`] = k8sBox("shop", "web-7d9f", c, ctrd.execArgv("k8s.io", id, []));
  }
  const db = await criPod("db-0", "prod", { app: "db", tier: "db" });
  box.db = k8sBox("prod", "db-0", "postgres", ctrd.execArgv("k8s.io", (await criContainer(db, "postgres")).id, []));
  // `ctr run` with kubelet's labels and the pod's label on the container itself (no sandbox).
  await ctrd.runImage("k8s.io", `billing-${S}`, WEB_IMAGE, { ...kubeletLabels("billing", "web-5c4b", `uid-b-${S}`, "nginx"), app: "web" });
  box.billing = k8sBox("billing", "web-5c4b", "nginx", ctrd.execArgv("k8s.io", `billing-${S}`, []));
  // Outside Kubernetes: named by its id.
  await ctrd.runImage("k8s.io", `plain-${S}`, WEB_IMAGE, { team: `t-${S}` });
  box.plain = { exec: ctrd.execArgv("k8s.io", `plain-${S}`, []), pod: `plain-${S}`, labels: { pod: "", namespace: "", container: `plain-${S}` } };
  // dockerd, as cri-dockerd makes pod shop/api: a sandbox container with the pod's labels, then the app container.
  docker = await startDocker();
  dockerImage = dockerWebImage();
  const sb = await docker.runSleep(`k8s_POD_api_shop_uid-api-${S}_0`, { ...kubeletLabels("shop", "api", `uid-api-${S}`), app: "api", "io.kubernetes.docker.type": "podsandbox" });
  const apiName = `k8s_api_api_shop_uid-api-${S}_0`;
  await docker.runImage(apiName, dockerImage, { ...kubeletLabels("shop", "api", `uid-api-${S}`, "api"), "io.kubernetes.docker.type": "container", "io.kubernetes.sandbox.id": sb.id });
  dockerNames.push(apiName);
  box.api = k8sBox("shop", "api", "api", ["docker", "exec", "-i", apiName]);
  console.log(`containerd, dockerd, 3 CRI pods and 6 TLS containers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 300_000);

afterAll(async () => {
  for (const sb of sandboxes) await cri?.removePodSandbox(sb).catch((e: Error) => console.log(`removing pod ${sb}: ${e.message}`));
  cri?.close();
  await docker?.stop();
  await ctrd?.stop();
}, 120_000);

/** Probes still running (a failed test leaves none behind). */
const running = new Set<Running>();
afterAll(() => {
  for (const r of running) r.proc.kill("SIGKILL");
});

/** probe, finding containers in the private containerd (and the machine's dockerd); resolves once it is tracing. */
async function startProbe(args: string[]): Promise<Running> {
  const r = start([probeBinary(), ...args], { CONTAINERD_ADDRESS: ctrd.address });
  running.add(r);
  void r.proc.exited.then(() => running.delete(r));
  await r.err.waitFor(/Ctrl-C to stop/, 60_000);
  return r;
}

async function stop(r: Running): Promise<{ code: number; out: string[]; err: string[] }> {
  r.proc.kill("SIGINT");
  const [out, err, code] = await Promise.all([r.out.done(), r.err.done(), r.proc.exited]);
  return { code, out, err };
}

/** The final table (after "TOTAL"): one object per row, by column title. */
function totalRows(lines: string[]): Record<string, string>[] {
  const at = lines.findIndex((l) => /^TOTAL\s/.test(l));
  if (at < 0) throw new Error(`no TOTAL table in:\n${lines.join("\n")}`);
  const titles = lines[at]!.trim().split(/\s+/).slice(1);
  return lines.slice(at + 1).map((l) => l.trim().split(/\s+/)).filter((c) => c.length === titles.length).map((c) => Object.fromEntries(titles.map((t, i) => [t, c[i]!])));
}

/** README lines with their placeholders replaced by this test's values. */
const sub = (args: string[], map: Record<string, string>) => args.map((a) => map[a] ?? a);

describe("which containers: --selector, --pod, --container-name, --namespace, --all-containers", () => {
  test("each probe counts exactly the reads of the containers it selects, rows named by pod, namespace and container", async () => {
    const runs = {
      selector: await startProbe(EX[0]!), // ssl-read --selector app=web (a table)
      pod: await startProbe(EX[1]!), // ssl-read --pod shop/web-7d9f --container-name nginx
      namespace: await startProbe(["ssl-read", "--namespace", "prod", "--json"]),
      name: await startProbe(["ssl-read", "--container-name", "sidecar", "--json"]),
      api: await startProbe(["ssl-read", "--selector", "app=api", "--json"]),
      all: await startProbe(["ssl-read", "--all-containers", "--json"]),
      sniff: await startProbe(["sslsniff", "--pod", "shop/web-7d9f", "--container-name", "sidecar", "--read", "--json"]),
    };
    // Distinct counts per container: every row says whose reads it counted.
    const n: Record<string, number> = { "web-nginx": 3, "web-sidecar": 4, db: 5, billing: 6, plain: 7, api: 8 };
    for (const [k, calls] of Object.entries(n)) expect(await tlsReads(box[k]!.exec, calls)).toEqual({ calls, bytes: calls * 1000 });
    await Bun.sleep(300);
    const done = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([k, r]) => [k, await stop(r)] as const)));
    for (const [k, d] of Object.entries(done)) expect([k, d.code]).toEqual([k, 0]);

    // The README's lines print tables: the POD column names each row's container.
    const table = (k: string) => totalRows(done[k]!.out).map((r) => ({ POD: r.POD, COMM: r.COMM, CALLS: r.CALLS, BYTES: r.BYTES, LIBRARY: r.LIBRARY }));
    const row = (k: string) => ({ POD: box[k]!.pod, COMM: "tls_pair", CALLS: String(n[k]), BYTES: String(n[k]! * 1000), LIBRARY: CONTAINER_LIB });
    const byPod = (a: { POD: string }, b: { POD: string }) => a.POD.localeCompare(b.POD);
    expect(table("selector").sort(byPod)).toEqual(["billing", "web-nginx", "web-sidecar"].map(row).sort(byPod));
    expect(table("pod")).toEqual([row("web-nginx")]);

    // JSON rows carry pod, namespace and container.
    const json = (k: string) =>
      done[k]!.out.map((l) => JSON.parse(l)).filter((r) => r.final && r.comm === "tls_pair").map((r) => ({ pod: r.pod, namespace: r.namespace, container: r.container, calls: r.calls, bytes: r.bytes, library: r.library }));
    const jrow = (k: string) => ({ ...box[k]!.labels, pod: box[k]!.labels.pod || null, namespace: box[k]!.labels.namespace || null, calls: n[k], bytes: n[k]! * 1000, library: CONTAINER_LIB });
    expect(json("namespace")).toEqual([jrow("db")]);
    expect(json("name")).toEqual([jrow("web-sidecar")]);
    expect(json("api")).toEqual([jrow("api")]);
    // Every container: ours among them (other containers of this machine may be there too).
    const all = json("all");
    for (const k of Object.keys(n)) expect(all.filter((r) => r.container === box[k]!.labels.container && r.pod === (box[k]!.labels.pod || null))).toEqual([jrow(k)]);
    // sslsniff on the same selection: the sidecar's reads, whole, and nothing else.
    const reads = done.sniff!.out.map((l) => JSON.parse(l)).filter((r) => r.event === "read");
    expect(reads).toHaveLength(n["web-sidecar"]!);
    expect(new Set(reads.map((r) => `${r.comm} ${r.library} ${r.bytes}`))).toEqual(new Set([`tls_pair ${CONTAINER_LIB} 1000`]));
  }, 180_000);
});

/**
 * The uprobe links probe process `pid` holds on a container's /opt/ssl/libssl.so.3, as the kernel
 * lists them (it names every copy by its path in the container: links are told apart by id).
 */
function libsslLinks(pid: number): { id: number; kind: string }[] {
  return kernelView()
    .links.filter((l) => l.uprobe && l.holders.some((h) => h.pid === pid) && l.uprobe.path.endsWith(CONTAINER_LIB))
    .map((l) => ({ id: l.id, kind: l.uprobe!.kind }));
}

/** The metric lines of an exposition, without comments. */
function samples(text: string): string[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#"));
}

function promtool(text: string): { ok: boolean; out: string } {
  const r = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(text), stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  return { ok: r.exitCode === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

describe("the agent: every container, followed live, served to a real Prometheus", () => {
  let prom: Prometheus | undefined;
  afterAll(async () => {
    await prom?.stop();
  });

  test("ssl-read --all-containers --metrics: late containers attached within 2 s and counted exactly, a stopped one detached with its counts kept, PromQL sums exact", async () => {
    const port = freePort();
    prom = await startPrometheus([`127.0.0.1:${port}`]);
    const agent = await startProbe(sub(EX[3]!, { ":9464": `:${port}` })); // ssl-read --all-containers --metrics :PORT -d 0
    const url = `http://127.0.0.1:${port}/metrics`;
    await prom.waitFor("up", (r) => (r.some((x) => x.value[1] === "1") ? true : undefined));
    const q = (expr: string, want: number) => prom!.waitFor(expr, (r) => (r.length === 1 && Number(r[0]!.value[1]) === want ? want : undefined), 15_000);

    // N reads in the pod's two containers: sum(...{pod="web-7d9f"}) through Prometheus is N.
    await tlsReads(box["web-nginx"]!.exec, 10);
    await tlsReads(box["web-sidecar"]!.exec, 15);
    expect(await q('sum(probe_ssl_read_calls_total{pod="web-7d9f"})', 25)).toBe(25);
    expect(await q('sum(probe_ssl_read_bytes_total{pod="web-7d9f",container="sidecar"})', 15_000)).toBe(15_000);

    // A container started now in the same pod (the same image: its libssl is the file already probed).
    const late = await criContainer(webPod, "late");
    const m = await agent.err.waitFor(/^probe: shop\/web-7d9f\/late uses /, 10_000);
    const lateMs = performance.now() - late.runningAt;
    expect(m[0]).toBeTruthy();
    expect(lateMs).toBeLessThan(2_000);
    await tlsReads(ctrd.execArgv("k8s.io", late.id, []), 7);
    expect(await q('sum(probe_ssl_read_calls_total{pod="web-7d9f",container="late"})', 7)).toBe(7);
    expect(await q('sum(probe_ssl_read_calls_total{pod="web-7d9f"})', 32)).toBe(32);

    // A docker container started now (another file: docker's copy of the layer): attached on its own.
    const before = libsslLinks(agent.proc.pid);
    const cacheName = `k8s_cache_cache-1_shop_uid-cache-${S}_0`;
    const d = await docker.runImage(cacheName, dockerWebImage("cache"), { ...kubeletLabels("shop", "cache-1", `uid-cache-${S}`, "cache"), "io.kubernetes.docker.type": "container" });
    await agent.err.waitFor(/^probe: shop\/cache-1\/cache uses /, 10_000);
    const dockerMs = performance.now() - d.runningAt;
    expect(dockerMs).toBeLessThan(2_000);
    const during = libsslLinks(agent.proc.pid);
    const added = during.filter((l) => !before.some((b) => b.id === l.id));
    // One uprobe_multi link for the entries and one for the returns, on the new file.
    expect(added.map((l) => l.kind).sort()).toEqual(["uprobe", "uretprobe"]);
    await tlsReads(["docker", "exec", "-i", cacheName], 9);
    expect(await q('sum(probe_ssl_read_calls_total{pod="cache-1"})', 9)).toBe(9);

    // Stopped: detached (no other container uses that file), its counts kept.
    const t0 = performance.now();
    await docker.remove(cacheName);
    await agent.err.waitFor(/^probe: shop\/cache-1\/cache stopped; detached /, 10_000);
    const detachMs = performance.now() - t0;
    const after = libsslLinks(agent.proc.pid);
    expect(after.filter((l) => added.some((a) => a.id === l.id))).toEqual([]);
    // (The other links may change meanwhile: --all-containers follows this machine's other containers too.)
    await Bun.sleep(2_500); // more scrapes after the stop
    expect(await q('sum(probe_ssl_read_calls_total{pod="cache-1"})', 9)).toBe(9);
    // The late containerd container stops too: its file is still used by the pod's others (not detached).
    await cri.removeContainer(late.id);
    const stopLine = await agent.err.waitFor(/^probe: shop\/web-7d9f\/late stopped/, 10_000);
    expect(stopLine[0]).not.toContain("detached");
    expect(await q('sum(probe_ssl_read_calls_total{pod="web-7d9f"})', 32)).toBe(32);

    // The endpoint passes promtool, in the format Prometheus negotiated (OpenMetrics) and in text 0.0.4.
    const text = await (await fetch(url)).text();
    const check = promtool(text);
    expect(check).toEqual({ ok: true, out: "" });
    const om = await fetch(url, { headers: { accept: "application/openmetrics-text; version=1.0.0" } });
    expect(om.headers.get("content-type")).toStartWith("application/openmetrics-text");
    expect(await om.text()).toEndWith("# EOF\n");
    expect(samples(text).filter((l) => l.startsWith("probe_ssl_read_calls_total{") && l.includes('pod="web-7d9f"'))).toHaveLength(3);
    expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text()).toBe("ok\n");
    const done = await stop(agent);
    expect(done.code).toBe(0);
    expect(done.out).toEqual([]); // serving metrics: no table without --json
    console.log(`agent: containerd container attached ${lateMs.toFixed(0)} ms after StartContainer returned, docker container ${dockerMs.toFixed(0)} ms after docker run returned; docker's file detached ${detachMs.toFixed(0)} ms after docker rm began`);
  }, 180_000);

  test("uprobe --hist --metrics: Prometheus histogram buckets; histogram_quantile falls in the bucket the kernel's histogram holds the median in", async () => {
    const port = freePort();
    const p2 = await startPrometheus([`127.0.0.1:${port}`]);
    try {
      // uprobe libssl SSL_read --hist --selector app=web --metrics 127.0.0.1:PORT (and --json: the kernel's histogram at exit)
      const h = await startProbe([...sub(EX[4]!, { "127.0.0.1:9464": `127.0.0.1:${port}` }), "--json"]);
      await p2.waitFor("up", (r) => (r.some((x) => x.value[1] === "1") ? true : undefined));
      let n = 0;
      for (const k of ["web-nginx", "web-sidecar", "billing"]) n += (await tlsReads(box[k]!.exec, 20)).calls;
      await tlsReads(box.db!.exec, 11); // not app=web: not counted
      const count = await p2.waitFor("sum(probe_uprobe_latency_seconds_count)", (r) => (r.length === 1 && Number(r[0]!.value[1]) === n ? n : undefined), 15_000);
      expect(count).toBe(60);
      const q50 = Number((await p2.query("histogram_quantile(0.5, sum by (le) (probe_uprobe_latency_seconds_bucket))"))[0]!.value[1]);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(promtool(text)).toEqual({ ok: true, out: "" });
      const done = await stop(h);
      expect(done.code).toBe(0);
      const final = done.out.map((l) => JSON.parse(l)).find((r) => r.event === "hist" && r.final);
      expect(final.count).toBe(60);
      // The bucket holding the 30th of 60 values, from the kernel's own counts (ns, [lo, hi)).
      let seen = 0;
      const bucket = (final.buckets as { lo: number; hi: number; count: number }[]).find((b) => (seen += b.count) >= 30)!;
      // Prometheus's le bounds are each bucket's largest value (hi - 1 ns), in seconds.
      expect(q50).toBeGreaterThan((bucket.lo - 1) / 1e9);
      expect(q50).toBeLessThanOrEqual((bucket.hi - 1) / 1e9);
      console.log(`histogram_quantile(0.5) = ${q50} s; kernel's median bucket [${bucket.lo}, ${bucket.hi}) ns; p50 by probe ${final.p50} ns`);
    } finally {
      await p2.stop();
    }
  }, 120_000);
});

describe("uprobe across containers", () => {
  test("uprobe libc malloc --summary --selector tier=db --namespace prod: only the selected container's processes", async () => {
    const r = await startProbe(EX[2]!);
    await tlsReads(box.db!.exec, 2);
    await tlsReads(box["web-nginx"]!.exec, 2); // tier=front: not selected
    await Bun.sleep(1_200); // a summary interval
    const done = await stop(r);
    expect(done.code).toBe(0);
    const rows = totalRows(done.out);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((x) => x.POD))).toEqual(new Set([box.db!.pod]));
    expect(rows.some((x) => x.COMM === "tls_pair" && Number(x.CALLS) > 0)).toBe(true);
  }, 60_000);
});

describe("the series cap", () => {
  test("20,000 short-lived processes: at most --metrics-max-series series (default 10,000), the rest folded, every call counted", async () => {
    const forks = buildC("forks", "fleet/forks.c");
    const N = 20_000;
    const port = freePort();
    const p = start([probeBinary(), "uprobe", forks, "fleet_tick", "--summary", "--metrics", `127.0.0.1:${port}`, "-i", "0.2"]);
    await p.err.waitFor(/Ctrl-C/, 30_000);
    const f = start([forks, String(N)]);
    await f.out.waitFor(/^ready/);
    f.proc.stdin.write("go\n");
    f.proc.stdin.end();
    const [, done] = await f.out.waitFor(/^done (\d+)/, 300_000);
    expect(Number(done)).toBe(N);
    const t0 = performance.now();
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const scrapeMs = performance.now() - t0;
    const lines = samples(text);
    const calls = lines.filter((l) => l.startsWith("probe_uprobe_calls_total"));
    const sum = calls.reduce((a, l) => a + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    const folded = Number(lines.find((l) => l.startsWith("probe_metrics_series_folded_total"))!.split(" ")[1]);
    expect(lines.length).toBeLessThanOrEqual(10_000 + 1); // + the fold counter, which is not capped
    expect(calls.some((l) => l.includes('overflow="true"'))).toBe(true);
    expect(folded).toBeGreaterThan(0);
    expect(sum).toBe(N); // folded, not lost: the counts are exact
    expect(promtool(text).ok).toBe(true);
    const st = await stop(p);
    expect(st.code).toBe(0);
    console.log(`${N} processes: ${lines.length} series served (${calls.length} of probe_uprobe_calls_total), ${folded} updates folded; a scrape took ${scrapeMs.toFixed(0)} ms`);
  }, 400_000);
});

test("the README's Fleet examples are the command lines run here", () => {
  expect(EX.map((e) => e.join(" "))).toEqual([
    "ssl-read --selector app=web",
    "ssl-read --pod shop/web-7d9f --container-name nginx",
    "uprobe libc malloc --summary --selector tier=db --namespace prod",
    "ssl-read --all-containers --metrics :9464 -d 0",
    "uprobe libssl SSL_read --hist --selector app=web --metrics 127.0.0.1:9464",
  ]);
});
