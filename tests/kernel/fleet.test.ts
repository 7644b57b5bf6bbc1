// Container discovery, selection and tracking against real engines (root): a private containerd
// (Debian's, its own socket under tests/.work) and the machine's dockerd. Containers are busybox
// `sleep`s labelled as kubelet labels them; each pod also gets a sandbox container labelled as
// containerd's CRI plugin (io.cri-containerd.kind=sandbox, the pod's labels) or cri-dockerd
// (io.kubernetes.docker.type=podsandbox, annotation.* labels) stores it, since neither kubelet nor
// a CRI client (crictl is not in Debian 12) runs here. PIDs are compared with `ctr task ls` and
// `docker inspect`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Discovery, sourceKey, type FleetContainer } from "../../lib/fleet/discovery.ts";
import { parsePodRef, select, SelectionError, SelectorError } from "../../lib/fleet/selector.ts";
import { ContainerTracker } from "../../lib/fleet/tracker.ts";
import { kubeletLabels, startContainerd, startDocker, type Containerd, type DockerEngine } from "../fixtures/fleet/engines.ts";
import { WORK } from "../fixtures/fleet/prometheus.ts";

if (process.getuid?.() !== 0) throw new Error("tests/kernel/fleet.test.ts runs containers: it must run as root");

const S = Math.random().toString(36).slice(2, 8);
const SHOP = `shop-${S}`;
const BILLING = `billing-${S}`;
const OURS = `io.kubernetes.pod.namespace in (${SHOP},${BILLING})`;

let ctrd: Containerd;
let docker: DockerEngine;
/** Expected host PIDs by a short name. */
const pid: Record<string, number> = {};
const dockerId: Record<string, string> = {};

const CRI_SANDBOX = { "io.cri-containerd.kind": "sandbox" };
const CRI_CONTAINER = { "io.cri-containerd.kind": "container" };

beforeAll(async () => {
  const t0 = performance.now();
  ctrd = await startContainerd();
  // Pod SHOP/web: app=web,tier=front; containers nginx and sidecar.
  pid.webSandbox = await ctrd.runSleep("k8s.io", `web-sandbox-${S}`, { ...kubeletLabels(SHOP, "web", `uid-web-${S}`), app: "web", tier: "front", ...CRI_SANDBOX });
  pid.webNginx = await ctrd.runSleep("k8s.io", `web-nginx-${S}`, { ...kubeletLabels(SHOP, "web", `uid-web-${S}`, "nginx"), ...CRI_CONTAINER });
  pid.webSidecar = await ctrd.runSleep("k8s.io", `web-sidecar-${S}`, { ...kubeletLabels(SHOP, "web", `uid-web-${S}`, "sidecar"), ...CRI_CONTAINER });
  // Pod SHOP/db: app=db,tier=back.
  await ctrd.runSleep("k8s.io", `db-sandbox-${S}`, { ...kubeletLabels(SHOP, "db", `uid-db-${S}`), app: "db", tier: "back", ...CRI_SANDBOX });
  pid.dbPostgres = await ctrd.runSleep("k8s.io", `db-postgres-${S}`, { ...kubeletLabels(SHOP, "db", `uid-db-${S}`, "postgres"), ...CRI_CONTAINER });
  // Pod BILLING/web: same pod name in another namespace, no tier label.
  await ctrd.runSleep("k8s.io", `bweb-sandbox-${S}`, { ...kubeletLabels(BILLING, "web", `uid-bweb-${S}`), app: "web", ...CRI_SANDBOX });
  pid.billingNginx = await ctrd.runSleep("k8s.io", `bweb-nginx-${S}`, { ...kubeletLabels(BILLING, "web", `uid-bweb-${S}`, "nginx"), ...CRI_CONTAINER });
  // Outside Kubernetes, in another containerd namespace.
  pid.plain = await ctrd.runSleep("default", `plain-${S}`, { team: `t-${S}` });

  docker = await startDocker();
  // Pod SHOP/api as cri-dockerd makes it.
  const sb = await docker.runSleep(`k8s_POD_api_${SHOP}_uid-api-${S}_0`, {
    ...kubeletLabels(SHOP, "api", `uid-api-${S}`),
    app: "api",
    tier: "front",
    "annotation.kubernetes.io/config.source": "api",
    "io.kubernetes.docker.type": "podsandbox",
  });
  const api = await docker.runSleep(`k8s_api_api_${SHOP}_uid-api-${S}_0`, {
    ...kubeletLabels(SHOP, "api", `uid-api-${S}`, "api"),
    "io.kubernetes.docker.type": "container",
    "io.kubernetes.sandbox.id": sb.id,
    "annotation.io.kubernetes.container.restartCount": "0",
  });
  pid.dockerApi = api.pid;
  dockerId.api = api.id;
  pid.dockerPlain = (await docker.runSleep(`probe-fleet-plain-${S}`, { team: `t-${S}` })).pid;
  console.log(`engines and 11 containers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (containerd answered after ${ctrd.startSeconds.toFixed(2)} s)`);
}, 300_000);

afterAll(async () => {
  await docker?.stop();
  await ctrd?.stop();
}, 120_000);

/** CPU time (user + system) of this process's children that have been waited for, in ms (clock ticks of 10 ms). */
function childCpuMs(): number {
  const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (Number(f[13]) + Number(f[14])) * 10; // cutime, cstime: fields 16 and 17
}

const discovery = () => new Discovery({ containerdAddresses: [ctrd.address], engines: ["docker", "containerd"] });
const pids = (cs: FleetContainer[]) => cs.map((c) => c.pid).sort((a, b) => a - b);
const expectPids = (cs: FleetContainer[], names: string[]) => expect(pids(cs)).toEqual(names.map((n) => pid[n]!).sort((a, b) => a - b));

describe("discovery", () => {
  test("every running app container of both engines, with PIDs, pods and pod labels; sandboxes left out", async () => {
    const r = await discovery().list();
    for (const e of r.engines) expect([e.engine, e.source, e.ok, e.error]).toEqual([e.engine, e.source, true, undefined]);
    expect(r.engines.map((e) => e.source)).toContain(ctrd.address);
    const mine = r.containers.filter((c) => c.id.includes(S) || c.name.includes(S));
    const byId = new Map(mine.map((c) => [c.engine === "docker" ? c.name : c.id, c]));
    expect(byId.get(`web-nginx-${S}`)).toEqual({
      engine: "containerd",
      id: `web-nginx-${S}`,
      name: `web-nginx-${S}`,
      namespace: "k8s.io",
      address: ctrd.address,
      labels: { ...kubeletLabels(SHOP, "web", `uid-web-${S}`, "nginx"), ...CRI_CONTAINER },
      pid: pid.webNginx!,
      pod: { name: "web", namespace: SHOP, uid: `uid-web-${S}` },
      containerName: "nginx",
      podLabels: { app: "web", tier: "front" },
    });
    expect(byId.get(`plain-${S}`)).toMatchObject({ engine: "containerd", namespace: "default", pid: pid.plain, labels: { team: `t-${S}` } });
    expect(byId.get(`plain-${S}`)?.pod).toBeUndefined();
    const api = byId.get(`k8s_api_api_${SHOP}_uid-api-${S}_0`)!;
    expect(api).toMatchObject({ engine: "docker", id: dockerId.api, pid: pid.dockerApi, pod: { name: "api", namespace: SHOP, uid: `uid-api-${S}` }, containerName: "api" });
    expect(api.podLabels).toEqual({ app: "api", tier: "front" }); // annotation.* and io.kubernetes.* dropped
    // 5 app containers in containerd + 2 in docker; the 4 sandboxes are not listed.
    expect(mine).toHaveLength(7);
    expect(mine.some((c) => c.pid === pid.webSandbox)).toBe(false);
    // docker's containers are also tasks of dockerd's containerd (namespace moby): listed once.
    expect(r.containers.filter((c) => c.id === dockerId.api)).toHaveLength(1);
  }, 60_000);

  test("an engine that fails is reported, the others still answer", async () => {
    const notASocket = join(WORK, `not-a-socket-${S}`);
    writeFileSync(notASocket, "");
    const r = await new Discovery({ containerdAddresses: [notASocket, ctrd.address], engines: ["containerd", "podman"] }).list().finally(() => rmSync(notASocket, { force: true }));
    const bad = r.engines.find((e) => e.source === notASocket)!;
    expect(bad.ok).toBe(false);
    expect(bad.error).toBeTruthy();
    expect(r.engines.find((e) => e.source === ctrd.address)?.ok).toBe(true);
    expect(r.containers.some((c) => c.pid === pid.webNginx)).toBe(true);
    if (!Bun.which("podman")) expect(r.engines.find((e) => e.engine === "podman")).toMatchObject({ ok: false });
    console.log(`failed engines: ${r.engines.filter((e) => !e.ok).map((e) => `${e.engine}@${e.source}: ${e.error}`).join("; ")}`);
  }, 60_000);

  test("cost of a listing: wall time, and CPU of the CLIs it runs (full, and one engine as after an event)", async () => {
    const d = discovery();
    await d.list(); // fill the label and namespace caches
    const measure = async (only?: Set<string>) => {
      const N = 8;
      const c0 = childCpuMs();
      const walls: number[] = [];
      for (let i = 0; i < N; i++) walls.push((await d.list(only)).ms);
      walls.sort((a, b) => a - b);
      return { wall: walls[N >> 1]!, max: walls[N - 1]!, cpu: (childCpuMs() - c0) / N };
    };
    const full = await measure();
    const ctrOnly = await measure(new Set([sourceKey("containerd", ctrd.address)]));
    const dockerOnly = await measure(new Set([sourceKey("docker", "docker")]));
    const sources = (await d.list()).engines.map((e) => `${e.engine}@${e.source}`).join(", ");
    console.log(`listing, full (${sources}): median ${full.wall.toFixed(0)} ms wall (max ${full.max.toFixed(0)}), ${full.cpu.toFixed(0)} ms CLI CPU`);
    console.log(`listing, our containerd only (2 namespaces): median ${ctrOnly.wall.toFixed(0)} ms wall, ${ctrOnly.cpu.toFixed(0)} ms CLI CPU`);
    console.log(`listing, docker only: median ${dockerOnly.wall.toFixed(0)} ms wall, ${dockerOnly.cpu.toFixed(0)} ms CLI CPU`);
    expect(full.wall).toBeLessThan(1_500);
  }, 120_000);
});

describe("selection", () => {
  let all: FleetContainer[];
  beforeAll(async () => {
    all = (await discovery().list()).containers;
  }, 60_000);

  test("--selector against pod labels (=, ==, !=, in, notin, exists, !exists)", () => {
    expectPids(select(all, { selector: `app=web,${OURS}` }), ["webNginx", "webSidecar", "billingNginx"]);
    expectPids(select(all, { selector: `app==web,tier,${OURS}` }), ["webNginx", "webSidecar"]);
    expectPids(select(all, { selector: `tier!=front,${OURS}` }), ["dbPostgres", "billingNginx"]); // != matches a missing key
    expectPids(select(all, { selector: `app in (db, api),${OURS}` }), ["dbPostgres", "dockerApi"]);
    expectPids(select(all, { selector: `app notin (web),${OURS}` }), ["dbPostgres", "dockerApi"]);
    expectPids(select(all, { selector: `!tier,${OURS}` }), ["billingNginx"]);
    expectPids(select(all, { selector: `io.kubernetes.container.name=nginx,${OURS}` }), ["webNginx", "billingNginx"]);
    // Outside Kubernetes a selector sees the container's own labels.
    expectPids(select(all, { selector: `team=t-${S}` }), ["plain", "dockerPlain"]);
  });

  test("--pod NS/NAME, --pod NAME with --namespace, --pod NAME alone (any namespace)", () => {
    expectPids(select(all, { pod: parsePodRef(`${SHOP}/web`) }), ["webNginx", "webSidecar"]);
    expectPids(select(all, { pod: parsePodRef("web"), namespace: BILLING }), ["billingNginx"]);
    expectPids(select(all, { pod: parsePodRef("web"), selector: OURS }), ["webNginx", "webSidecar", "billingNginx"]);
    expectPids(select(all, { pod: parsePodRef(`${SHOP}/api`) }), ["dockerApi"]);
    expect(select(all, { pod: parsePodRef(`${SHOP}/nope`) })).toEqual([]);
    expect(() => select(all, { pod: parsePodRef(`${SHOP}/web`), namespace: BILLING })).toThrow(SelectionError);
  });

  test("--namespace, --container-name, --all-containers, and combinations", () => {
    expectPids(select(all, { namespace: SHOP }), ["webNginx", "webSidecar", "dbPostgres", "dockerApi"]);
    expectPids(select(all, { namespace: SHOP, containerName: "sidecar" }), ["webSidecar"]);
    expectPids(select(all, { containerName: "nginx", selector: OURS }), ["webNginx", "billingNginx"]);
    expectPids(select(all, { containerName: `plain-${S}` }), ["plain"]); // the engine's name outside Kubernetes
    const everything = select(all, { allContainers: true });
    expect(everything).toHaveLength(all.length);
    for (const n of Object.keys(pid).filter((k) => k !== "webSandbox")) expect(pids(everything)).toContain(pid[n]!);
    expect(pids(everything)).not.toContain(pid.webSandbox!);
    expectPids(select(all, { allContainers: true, namespace: BILLING }), ["billingNginx"]);
    expect(() => select(all, {})).toThrow(SelectionError);
    expect(() => select(all, { selector: "app in (web" })).toThrow(SelectorError);
  });
});

describe("tracker", () => {
  async function follow(watchEvents: boolean) {
    const tracker = new ContainerTracker({ containerdAddresses: [ctrd.address], engines: ["docker", "containerd"], watchEvents, intervalMs: 1_000 });
    const seen: { kind: "added" | "removed"; c: FleetContainer; at: number }[] = [];
    tracker.on("added", (c) => seen.push({ kind: "added", c, at: performance.now() })).on("removed", (c) => seen.push({ kind: "removed", c, at: performance.now() }));
    await tracker.start();
    const initial = seen.length;
    expect(tracker.current().some((c) => c.pid === pid.webNginx)).toBe(true);
    // Idle cost: what following costs when nothing changes.
    const idle0 = childCpuMs();
    const syncs0 = tracker.syncs;
    await Bun.sleep(4_000);
    const idle = { cpuPerSecond: (childCpuMs() - idle0) / 4, listings: tracker.syncs - syncs0 };
    const waitFor = async (pred: (e: (typeof seen)[number]) => boolean, since: number) => {
      while (performance.now() - since < 5_000) {
        const e = seen.find(pred);
        if (e) return e.at - since;
        await Bun.sleep(20);
      }
      throw new Error(`no matching tracker event within 5 s (events: ${seen.map((e) => `${e.kind} ${e.c.name}`).join(", ")})`);
    };
    const tag = watchEvents ? "ev" : "poll";
    // containerd: a new container in pod SHOP/web, then stopped. Additions are timed from when the
    // engine command returned (the container runs by then), removals from the kill.
    let t0 = performance.now();
    const late = await ctrd.runSleepTimed("k8s.io", `web-late-${tag}-${S}`, { ...kubeletLabels(SHOP, "web", `uid-web-${S}`, "late"), ...CRI_CONTAINER });
    const ctrCmd = late.runningAt - t0;
    const ctrAdded = await waitFor((e) => e.kind === "added" && e.c.pid === late.pid, late.runningAt);
    expect(seen.find((e) => e.c.pid === late.pid)!.c).toMatchObject({ containerName: "late", pod: { name: "web", namespace: SHOP }, podLabels: { app: "web", tier: "front" } });
    t0 = performance.now();
    await ctrd.remove("k8s.io", `web-late-${tag}-${S}`);
    const ctrRemoved = await waitFor((e) => e.kind === "removed" && e.c.pid === late.pid, t0);
    // docker: the same.
    t0 = performance.now();
    const d = await docker.runSleep(`probe-fleet-late-${tag}-${S}`, kubeletLabels(SHOP, "late", `uid-late-${S}`, "late"));
    const dockerCmd = d.runningAt - t0;
    const dockerAdded = await waitFor((e) => e.kind === "added" && e.c.pid === d.pid, d.runningAt);
    t0 = performance.now();
    await docker.remove(`probe-fleet-late-${tag}-${S}`);
    const dockerRemoved = await waitFor((e) => e.kind === "removed" && e.c.pid === d.pid, t0);
    await tracker.stop();
    const syncs = tracker.syncs;
    await Bun.sleep(300);
    expect(tracker.syncs).toBe(syncs); // stopped means stopped
    const ms = (n: number) => `${Math.max(0, n).toFixed(0)} ms`;
    console.log(
      `tracker (${watchEvents ? "events + resync" : "polling every 1 s"}): ${initial} containers at start; idle: ${idle.listings} listings in 4 s, ${idle.cpuPerSecond.toFixed(0)} ms CLI CPU per second; ` +
        `containerd added ${ms(ctrAdded)} after ctr run returned (${ms(ctrCmd)} after it began), removed ${ms(ctrRemoved)} after the kill began; ` +
        `docker added ${ms(dockerAdded)} after docker run returned (${ms(dockerCmd)} after it began), removed ${ms(dockerRemoved)} after docker rm -f began; ${syncs} listings`,
    );
    for (const t of [ctrAdded, ctrRemoved, dockerAdded, dockerRemoved]) expect(t).toBeLessThan(2_000);
  }

  test("with event streams: containers that start later are added, stopped ones removed, within 2 s", () => follow(true), 60_000);
  test("polling only (every 1 s): the same within 2 s", () => follow(false), 60_000);
});
