// The running containers of every engine on this host, with their labels, main PIDs and, for
// Kubernetes pods, the pod they belong to and the pod's own labels.
//
// Engines are asked through their CLIs, all at once:
//   containerd  `ctr -a SOCK namespaces ls -q` (reused for 30 s, or until an event names a new
//               namespace), then per namespace `ctr -n NS task ls` (PIDs of running tasks) and,
//               once per new container, `ctr -n NS containers info ID` (labels). Every socket found
//               is asked (its own, dockerd's private one, k3s's, extra ones given), every
//               namespace, k8s.io first; namespace moby (dockerd's) is left to docker when docker
//               is asked too.
//   docker      `docker ps -q --no-trunc`, then one `docker inspect` of them all, formatted down to
//               id, PID, name and labels.
//   podman      the same as docker.
//   crictl      `crictl pods -o json` (pod labels), `crictl ps -o json` (containers), and once per
//               new container `crictl inspect -o json ID` (its PID).
// A failing engine is reported in the result and the others still answer.
// Where a pod's labels live, and how a container gets its pod's: pod-labels.ts.
import { existsSync } from "node:fs";
import { runCommand, type CommandResult } from "./exec.ts";
import { K8S_LABELS, labelsOf, podLabelsFromSandbox, toContainer, withPodLabels, type Found, type PodInfo } from "./pod-labels.ts";
export { K8S_LABELS, isSandbox, podLabelsFromSandbox, type PodInfo } from "./pod-labels.ts";

export type FleetEngine = "docker" | "podman" | "containerd" | "crictl";

export interface FleetContainer {
  engine: FleetEngine;
  /** The engine's full container id. */
  id: string;
  /** docker/podman name, crictl's container name, or the id for containerd. */
  name: string;
  /** containerd namespace (k8s.io, default, moby...). */
  namespace?: string;
  /** containerd socket the container was found through. */
  address?: string;
  labels: Record<string, string>;
  /** Host PID of the container's main process. */
  pid: number;
  pod?: PodInfo;
  /** io.kubernetes.container.name. */
  containerName?: string;
  /** The pod's own labels, where the runtime keeps them (see above). */
  podLabels?: Record<string, string>;
}

export interface EngineStatus {
  engine: FleetEngine;
  /** Which endpoint: a containerd socket, or the CLI name. */
  source: string;
  ok: boolean;
  /** Why it failed (ok false), or the partial failures (some namespaces) when ok. */
  error?: string;
  ms: number;
  /** Containers it reported (before de-duplication across engines). */
  containers: number;
}

export interface DiscoveryResult {
  containers: FleetContainer[];
  engines: EngineStatus[];
  ms: number;
}

/** containerd sockets looked for: its own, dockerd's private one, k3s's. */
export const CONTAINERD_SOCKETS = ["/run/containerd/containerd.sock", "/run/docker/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock"];
const DOCKER_SOCKET = "/var/run/docker.sock";

export interface DiscoveryOptions {
  /** Engines to ask (default: every one whose CLI is installed). */
  engines?: FleetEngine[];
  /** More containerd sockets, asked before the standard ones (and $CONTAINERD_ADDRESS). */
  containerdAddresses?: string[];
  /** Per-command time limit (default 5 s). */
  timeoutMs?: number;
  /** How long a containerd socket's namespace list is reused (default 30 s; see noteNamespace). */
  namespaceTtlMs?: number;
}

/** Names one endpoint of one engine: a containerd socket, or docker/podman/crictl. */
export function sourceKey(engine: FleetEngine, source: string): string {
  return `${engine}:${source}`;
}

/** The endpoint a container was listed through. */
export function sourceOf(c: FleetContainer): string {
  return sourceKey(c.engine, c.engine === "containerd" ? c.address ?? "" : c.engine);
}

const ENGINE_ORDER: readonly FleetEngine[] = ["docker", "podman", "containerd", "crictl"];

/**
 * One entry per container id. A container can be seen twice: CRI containers by ctr and crictl,
 * docker's by docker and (namespace moby of dockerd's containerd) by ctr. The engine first in
 * the order docker, podman, containerd, crictl keeps it.
 */
export function dedupeContainers(containers: readonly FleetContainer[]): FleetContainer[] {
  const sorted = [...containers].sort((a, b) => ENGINE_ORDER.indexOf(a.engine) - ENGINE_ORDER.indexOf(b.engine));
  const seen = new Set<string>();
  const keep = new Set<FleetContainer>();
  for (const c of sorted) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    keep.add(c);
  }
  return containers.filter((c) => keep.has(c));
}

const ENGINE_CLI: Record<FleetEngine, string> = { docker: "docker", podman: "podman", containerd: "ctr", crictl: "crictl" };

/** Engines whose CLI is on PATH, in the order they are asked and preferred. */
export function installedFleetEngines(): FleetEngine[] {
  return (["docker", "podman", "containerd", "crictl"] as const).filter((e) => Bun.which(ENGINE_CLI[e]));
}

/** `ctr containers info` calls run at once per namespace. */
const INFO_CONCURRENCY = 4;

/** `fn` over `items`, at most `limit` at a time, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

interface EngineAnswer {
  status: EngineStatus;
  containers: FleetContainer[];
}

/**
 * Lists containers. One instance keeps what does not change per container (containerd labels,
 * crictl PIDs) between calls, so polling costs one CLI call per containerd namespace plus two
 * per docker-like engine; use a fresh instance to forget.
 */
export class Discovery {
  /** Engines asked, in order of preference. */
  readonly engines: FleetEngine[];
  private readonly timeoutMs: number;
  private readonly extraAddresses: string[];
  /** containerd labels by address/namespace/id (labels are fixed when a container is made). */
  private ctrLabels = new Map<string, Record<string, string>>();
  /** crictl PIDs by container id (a CRI container is never restarted under the same id). */
  private crictlPids = new Map<string, number>();
  /** containerd namespaces by socket, and when they were listed. */
  private namespaces = new Map<string, { names: string[]; at: number }>();
  private readonly namespaceTtlMs: number;

  constructor(opts: DiscoveryOptions = {}) {
    this.engines = opts.engines ?? installedFleetEngines();
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.extraAddresses = opts.containerdAddresses ?? [];
    this.namespaceTtlMs = opts.namespaceTtlMs ?? 30_000;
  }

  /** A namespace seen in the socket's events: listed from the next listing on, whatever the cache's age. */
  noteNamespace(address: string, namespace: string): void {
    const cached = this.namespaces.get(address);
    if (cached && !cached.names.includes(namespace)) this.namespaces.delete(address);
  }

  /** containerd sockets that exist now, extra ones first. */
  containerdAddresses(): string[] {
    return [...new Set([...this.extraAddresses, process.env.CONTAINERD_ADDRESS, ...CONTAINERD_SOCKETS].filter((a): a is string => !!a && existsSync(a)))];
  }

  private run(argv: string[]): Promise<CommandResult> {
    return runCommand(argv, { timeoutMs: this.timeoutMs });
  }

  /**
   * Lists every engine's containers, or only those of the endpoints named in `only` (sourceKey
   * values: the tracker re-lists just the engine whose events fired).
   */
  async list(only?: ReadonlySet<string>): Promise<DiscoveryResult> {
    const t0 = performance.now();
    const jobs: Promise<EngineAnswer>[] = [];
    const wanted = (engine: FleetEngine, source: string) => !only || only.has(sourceKey(engine, source));
    for (const e of this.engines) {
      if (e === "containerd") {
        for (const addr of this.containerdAddresses()) if (wanted(e, addr)) jobs.push(this.containerd(addr));
      } else if (wanted(e, e)) {
        jobs.push(e === "crictl" ? this.crictl() : this.dockerLike(e));
      }
    }
    if (!only && this.engines.includes("containerd") && this.containerdAddresses().length === 0) {
      jobs.push(Promise.resolve({ status: { engine: "containerd", source: "ctr", ok: false, error: `no containerd socket (${[...this.extraAddresses, ...CONTAINERD_SOCKETS].join(", ")})`, ms: 0, containers: 0 }, containers: [] }));
    }
    const answers = await Promise.all(jobs);
    return { containers: dedupeContainers(answers.flatMap((a) => a.containers)), engines: answers.map((a) => a.status), ms: performance.now() - t0 };
  }

  /** The socket's namespaces, k8s.io first; docker's own (moby) left to docker when docker is asked. */
  private async containerdNamespaces(ctr: string[], addr: string): Promise<string[] | CommandResult> {
    const cached = this.namespaces.get(addr);
    if (cached && performance.now() - cached.at < this.namespaceTtlMs) return cached.names;
    const r = await this.run([...ctr, "namespaces", "ls", "-q"]);
    if (!r.ok) return r;
    let names = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
    if (this.engines.includes("docker")) names = names.filter((n) => n !== "moby" && n !== "plugins.moby");
    names.sort((a, b) => (a === "k8s.io" ? -1 : b === "k8s.io" ? 1 : a.localeCompare(b)));
    this.namespaces.set(addr, { names, at: performance.now() });
    return names;
  }

  private async containerd(addr: string): Promise<EngineAnswer> {
    const t0 = performance.now();
    const ctr = ["ctr", "-a", addr, "--connect-timeout", "2s"];
    const status = (ok: boolean, containers: FleetContainer[], error?: string): EngineAnswer => ({
      status: { engine: "containerd", source: addr, ok, ...(error ? { error } : {}), ms: performance.now() - t0, containers: containers.length },
      containers,
    });
    const namespaces = await this.containerdNamespaces(ctr, addr);
    if (!Array.isArray(namespaces)) {
      this.namespaces.delete(addr);
      return status(false, [], namespaces.error);
    }
    const errors: string[] = [];
    const live = new Set<string>();
    const perNs = await Promise.all(
      namespaces.map(async (ns): Promise<Found[]> => {
        const tasks = await this.run([...ctr, "-n", ns, "task", "ls"]);
        if (!tasks.ok) {
          errors.push(`${ns}: ${tasks.error}`);
          return [];
        }
        // TASK  PID  STATUS; a task's id is its container's id.
        const running = tasks.stdout
          .split("\n")
          .slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((c) => c.length >= 3 && /^\d+$/.test(c[1]!) && Number(c[1]) > 0 && (c[2] === "RUNNING" || c[2] === "PAUSED" || c[2] === "PAUSING"));
        const labelsOfTask = async ([id]: string[]): Promise<Record<string, string> | undefined> => {
          const key = `${addr}\u0000${ns}\u0000${id}`;
          live.add(key);
          const cached = this.ctrLabels.get(key);
          if (cached) return cached;
          const info = await this.run([...ctr, "-n", ns, "containers", "info", id!]);
          if (!info.ok) {
            // Gone between the two calls, most likely: the next listing settles it.
            errors.push(`${ns}/${id}: ${info.error}`);
            return undefined;
          }
          try {
            const labels = labelsOf((JSON.parse(info.stdout) as { Labels?: unknown }).Labels);
            this.ctrLabels.set(key, labels);
            return labels;
          } catch {
            errors.push(`${ns}/${id}: ctr containers info printed something that is not JSON`);
            return undefined;
          }
        };
        // New containers (all of them at the first listing) are asked about a few at a time.
        const labels = await mapLimit(running, INFO_CONCURRENCY, labelsOfTask);
        const found: Found[] = [];
        running.forEach(([id, pid], i) => {
          const l = labels[i];
          if (l) found.push({ engine: "containerd", id: id!, name: id!, namespace: ns, address: addr, labels: l, pid: Number(pid) });
        });
        return found;
      }),
    );
    for (const key of this.ctrLabels.keys()) if (key.startsWith(`${addr}\u0000`) && !live.has(key)) this.ctrLabels.delete(key);
    if (errors.length) this.namespaces.delete(addr); // a namespace may have gone: list them again next time
    // Pods do not span namespaces: sandboxes are matched within each one.
    const containers = perNs.flatMap((found) => withPodLabels(found));
    return status(true, containers, errors.length ? errors.join("; ") : undefined);
  }

  private async dockerLike(engine: "docker" | "podman"): Promise<EngineAnswer> {
    const t0 = performance.now();
    const status = (ok: boolean, containers: FleetContainer[], error?: string): EngineAnswer => ({
      status: { engine, source: engine, ok, ...(error ? { error } : {}), ms: performance.now() - t0, containers: containers.length },
      containers,
    });
    if (engine === "docker" && !process.env.DOCKER_HOST && !existsSync(DOCKER_SOCKET)) return status(false, [], `no docker socket (${DOCKER_SOCKET})`);
    const ps = await this.run([engine, "ps", "-q", "--no-trunc"]);
    if (!ps.ok) return status(false, [], ps.error);
    const ids = ps.stdout.split("\n").map((l) => l.trim()).filter((l) => /^[0-9a-f]{12,64}$/.test(l));
    if (ids.length === 0) return status(true, []);
    // One JSON array per line; labels stay JSON, so no character in them can break the split.
    const format = "[{{json .Id}},{{json .State.Pid}},{{json .Name}},{{json .Config.Labels}}]";
    const inspect = await this.run([engine, "inspect", "--type", "container", "--format", format, ...ids]);
    // A container that stopped between ps and inspect makes inspect fail for it alone and print the others.
    const found: Found[] = [];
    for (const line of inspect.stdout.split("\n")) {
      if (!line.startsWith("[")) continue;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        continue;
      }
      if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "number" || row[1] <= 0) continue;
      const name = typeof row[2] === "string" ? row[2].replace(/^\//, "") : row[0];
      found.push({ engine, id: row[0], name, labels: labelsOf(row[3]), pid: row[1] });
    }
    if (!inspect.ok && found.length === 0) return status(false, [], inspect.error);
    return status(true, withPodLabels(found), inspect.ok ? undefined : inspect.error);
  }

  private async crictl(): Promise<EngineAnswer> {
    const t0 = performance.now();
    const status = (ok: boolean, containers: FleetContainer[], error?: string): EngineAnswer => ({
      status: { engine: "crictl", source: "crictl", ok, ...(error ? { error } : {}), ms: performance.now() - t0, containers: containers.length },
      containers,
    });
    const [pods, ps] = await Promise.all([this.run(["crictl", "pods", "-o", "json"]), this.run(["crictl", "ps", "-o", "json"])]);
    if (!ps.ok) return status(false, [], ps.error);
    const podLabelsById = new Map<string, Record<string, string>>();
    if (pods.ok) {
      try {
        const items = (JSON.parse(pods.stdout) as { items?: unknown }).items;
        for (const p of Array.isArray(items) ? items : []) {
          if (typeof p?.id === "string") podLabelsById.set(p.id, podLabelsFromSandbox(labelsOf(p.labels)));
        }
      } catch {
        // Pod labels are a bonus: containers are still listed without them.
      }
    }
    let list: unknown[];
    try {
      const parsed = (JSON.parse(ps.stdout) as { containers?: unknown }).containers;
      list = Array.isArray(parsed) ? parsed : [];
    } catch {
      return status(false, [], "crictl ps printed something that is not JSON");
    }
    const errors: string[] = [];
    const containers: FleetContainer[] = [];
    const live = new Set<string>();
    for (const item of list) {
      const c = item as { id?: unknown; podSandboxId?: unknown; metadata?: { name?: unknown }; labels?: unknown; state?: unknown };
      if (typeof c.id !== "string" || c.state !== "CONTAINER_RUNNING") continue;
      live.add(c.id);
      let pid = this.crictlPids.get(c.id);
      if (pid === undefined) {
        const info = await this.run(["crictl", "inspect", "-o", "json", c.id]);
        const p = info.ok ? (() => {
          try {
            return (JSON.parse(info.stdout) as { info?: { pid?: unknown } }).info?.pid;
          } catch {
            return undefined;
          }
        })() : undefined;
        if (typeof p !== "number" || p <= 0) {
          errors.push(`${c.id}: ${info.ok ? "no pid in crictl inspect" : info.error}`);
          continue;
        }
        pid = p;
        this.crictlPids.set(c.id, pid);
      }
      const name = typeof c.metadata?.name === "string" ? c.metadata.name : c.id;
      const podLabels = typeof c.podSandboxId === "string" ? podLabelsById.get(c.podSandboxId) : undefined;
      containers.push(toContainer({ engine: "crictl", id: c.id, name, labels: labelsOf(c.labels), pid }, podLabels));
    }
    for (const id of this.crictlPids.keys()) if (!live.has(id)) this.crictlPids.delete(id);
    if (!pods.ok) errors.push(`crictl pods: ${pods.error}`);
    return status(true, containers, errors.length ? errors.join("; ") : undefined);
  }
}

/** One listing with a fresh Discovery. */
export function discoverContainers(opts: DiscoveryOptions = {}): Promise<DiscoveryResult> {
  return new Discovery(opts).list();
}
