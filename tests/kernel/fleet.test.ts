// Container discovery, selection and tracking against real engines (root): a private containerd
// (Debian's, its own socket under tests/.work) whose CRI plugin runs pods as kubelet asks for them
// (RunPodSandbox, CreateContainer, StartContainer over gRPC: tests/fixtures/fleet/cri.ts), and
// the machine's dockerd. cri-dockerd is not in Debian, so its pods are docker containers
// labelled as it labels them (io.kubernetes.docker.type=podsandbox, annotation.* labels).
// Containers are busybox `sleep`s; PIDs are compared with `ctr task ls` and `docker inspect`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Discovery, sourceKey, type FleetContainer } from "../../lib/fleet/discovery.ts";
import { parsePodRef, select, SelectionError, SelectorError } from "../../lib/fleet/selector.ts";
import { ContainerTracker } from "../../lib/fleet/tracker.ts";
import { CriClient } from "../fixtures/fleet/cri.ts";
import { APP_IMAGE, kubeletLabels, startContainerd, startDocker, type Containerd, type DockerEngine } from "../fixtures/fleet/engines.ts";
import { WORK } from "../fixtures/fleet/prometheus.ts";

if (process.getuid?.() !== 0) throw new Error("tests/kernel/fleet.test.ts runs containers: it must run as root");

const S = Math.random().toString(36).slice(2, 8);
const SHOP = `shop-${S}`;
const BILLING = `billing-${S}`;
const OURS = `io.kubernetes.pod.namespace in (${SHOP},${BILLING})`;

let ctrd: Containerd;
let cri: CriClient;
let docker: DockerEngine;
/** Expected host PIDs by a short name. */
const pid: Record<string, number> = {};
const criId: Record<string, string> = {};
const dockerId: Record<string, string> = {};
const sandboxes: string[] = [];

interface Pod {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  config: Uint8Array;
  sandbox: string;
}
const pods: Record<string, Pod> = {};

async function runPod(key: string, name: string, namespace: string, labels: Record<string, string>): Promise<Pod> {
  const p = { name, namespace, uid: `uid-${key}-${S}`, labels, annotations: { "kubernetes.io/config.source": "api" } };
  const config = cri.podSandboxConfig(p);
  const sandbox = await cri.runPodSandbox(config);
  sandboxes.push(sandbox);
  return (pods[key] = { ...p, config, sandbox });
}

/** A container in `pod` through CRI; returns its id, its host PID and when StartContainer returned. */
async function runCriContainer(pod: Pod, name: string): Promise<{ id: string; pid: number; runningAt: number }> {
  const id = await cri.runContainer(pod.sandbox, pod.config, pod, name, APP_IMAGE, ["/bin/sleep", "1000"]);
  const runningAt = performance.now();
  return { id, pid: await ctrd.pidOf("k8s.io", id), runningAt };
}

beforeAll(async () => {
  const t0 = performance.now();
  ctrd = await startContainerd();
  cri = new CriClient(ctrd.address);
  console.log(`containerd answered after ${ctrd.startSeconds.toFixed(2)} s; CRI runtime API ${await cri.version()}`);
  // Pod SHOP/web: app=web,tier=front; containers nginx and sidecar.
  const web = await runPod("web", "web", SHOP, { app: "web", tier: "front" });
  pid.webSandbox = await ctrd.pidOf("k8s.io", web.sandbox);
  for (const [k, c] of [["webNginx", "nginx"], ["webSidecar", "sidecar"]] as const) ({ id: criId[k], pid: pid[k] } = await runCriContainer(web, c));
  // Pod SHOP/db: app=db,tier=back.
  ({ id: criId.dbPostgres, pid: pid.dbPostgres } = await runCriContainer(await runPod("db", "db", SHOP, { app: "db", tier: "back" }), "postgres"));
  // Pod BILLING/web: same pod name in another namespace, no tier label.
  ({ id: criId.billingNginx, pid: pid.billingNginx } = await runCriContainer(await runPod("bweb", "web", BILLING, { app: "web" }), "nginx"));
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
  console.log(`engines, 3 CRI pods, 9 containers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}, 300_000);

afterAll(async () => {
  for (const sb of sandboxes) await cri.removePodSandbox(sb).catch((e: Error) => console.log(`removing pod ${sb}: ${e.message}`));
  cri?.close();
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
const isMine = (c: FleetContainer) => c.pod?.namespace === SHOP || c.pod?.namespace === BILLING || c.labels.team === `t-${S}`;

describe("discovery", () => {
  test("every running app container of both engines, with PIDs, pods and pod labels; sandboxes left out", async () => {
    const r = await discovery().list();
    for (const e of r.engines) expect([e.engine, e.source, e.ok, e.error]).toEqual([e.engine, e.source, true, undefined]);
    expect(r.engines.map((e) => e.source)).toContain(ctrd.address);
    const mine = r.containers.filter(isMine);
    const byPid = new Map(mine.map((c) => [c.pid, c]));
    // What containerd's CRI plugin stored for the container, as discovery reads it: kubelet's four
    // labels plus io.cri-containerd.kind; the pod's labels come from its sandbox.
    expect(byPid.get(pid.webNginx!)).toEqual({
      engine: "containerd",
      id: criId.webNginx!,
      name: criId.webNginx!,
      namespace: "k8s.io",
      address: ctrd.address,
      labels: { ...kubeletLabels(SHOP, "web", `uid-web-${S}`, "nginx"), "io.cri-containerd.kind": "container" },
      pid: pid.webNginx!,
      pod: { name: "web", namespace: SHOP, uid: `uid-web-${S}` },
      containerName: "nginx",
      podLabels: { app: "web", tier: "front" },
    });
    expect(byPid.get(pid.billingNginx!)?.podLabels).toEqual({ app: "web" });
    expect(byPid.get(pid.plain!)).toMatchObject({ engine: "containerd", namespace: "default", id: `plain-${S}`, labels: { team: `t-${S}` } });
    expect(byPid.get(pid.plain!)?.pod).toBeUndefined();
    const api = byPid.get(pid.dockerApi!)!;
    expect(api).toMatchObject({ engine: "docker", id: dockerId.api, name: `k8s_api_api_${SHOP}_uid-api-${S}_0`, pod: { name: "api", namespace: SHOP, uid: `uid-api-${S}` }, containerName: "api" });
    expect(api.podLabels).toEqual({ app: "api", tier: "front" }); // annotation.* and io.kubernetes.* dropped
    // 5 app containers in containerd + 2 in docker; the 4 sandboxes are not listed.
    expect(pids(mine)).toEqual(pids(Object.keys(pid).filter((k) => k !== "webSandbox").map((k) => ({ pid: pid[k]! }) as FleetContainer)));
    expect(r.containers.some((c) => c.pid === pid.webSandbox)).toBe(false);
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
    // containerd: a new container in pod SHOP/web through CRI, then stopped and removed through
    // CRI. Additions are timed from when the engine said the container runs, removals from the
    // start of the stop.
    let t0 = performance.now();
    const late = await runCriContainer(pods.web!, `late-${tag}`);
    const ctrCmd = late.runningAt - t0;
    const ctrAdded = await waitFor((e) => e.kind === "added" && e.c.pid === late.pid, late.runningAt);
    expect(seen.find((e) => e.c.pid === late.pid)!.c).toMatchObject({ id: late.id, containerName: `late-${tag}`, pod: { name: "web", namespace: SHOP }, podLabels: { app: "web", tier: "front" } });
    t0 = performance.now();
    await cri.removeContainer(late.id);
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
        `containerd (CRI) added ${ms(ctrAdded)} after StartContainer returned (${ms(ctrCmd)} after CreateContainer began), removed ${ms(ctrRemoved)} after StopContainer began; ` +
        `docker added ${ms(dockerAdded)} after docker run returned (${ms(dockerCmd)} after it began), removed ${ms(dockerRemoved)} after docker rm -f began; ${syncs} listings`,
    );
    for (const t of [ctrAdded, ctrRemoved, dockerAdded, dockerRemoved]) expect(t).toBeLessThan(2_000);
  }

  test("with event streams: containers that start later are added, stopped ones removed, within 2 s", () => follow(true), 60_000);
  test("polling only (every 1 s): the same within 2 s", () => follow(false), 60_000);
});
