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

/** probe, finding containers in the private containerd (and the machine's dockerd); resolves once it is tracing. */
async function probe(args: string[]): Promise<Running> {
  const r = start([probeBinary(), ...args], { CONTAINERD_ADDRESS: ctrd.address });
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
      selector: await probe(EX[0]!), // ssl-read --selector app=web (a table)
      pod: await probe(EX[1]!), // ssl-read --pod shop/web-7d9f --container-name nginx
      namespace: await probe(["ssl-read", "--namespace", "prod", "--json"]),
      name: await probe(["ssl-read", "--container-name", "sidecar", "--json"]),
      api: await probe(["ssl-read", "--selector", "app=api", "--json"]),
      all: await probe(["ssl-read", "--all-containers", "--json"]),
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
    // One link per file: the containerd containers share their image's libssl (one inode), docker's is another file.
    const said = done.all.err.join("\n");
    console.log(said.split("\n").filter((l) => /Tracing|uses/.test(l)).join("\n"));
  }, 180_000);
});
