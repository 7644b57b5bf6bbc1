// Many containers at once, as they come and go: the containers the user selected (--selector,
// --pod, --namespace, --container-name, --all-containers) among those the runtimes report
// (lib/fleet), followed live. The session traces every process of their PID namespaces; commands
// open their files in each container's view as it appears.
import { ContainerTracker, containerKey } from "../lib/fleet/tracker.ts";
import { parsePodRef, parseSelector, select, type SelectionCriteria } from "../lib/fleet/selector.ts";
import type { FleetContainer } from "../lib/fleet/discovery.ts";
import { readdirSync, statSync } from "node:fs";
import { pidNamespace, type PidNamespace } from "../lib/proc/identity.ts";
import { ProbeError } from "../lib/errors.ts";
import type { Closable } from "../lib/scope.ts";
import { UsageError } from "./errors.ts";
import { containerLabels, type ContainerLabels } from "./fleet-labels.ts";

export interface FleetOptions {
  selector?: unknown;
  pod?: unknown;
  namespace?: unknown;
  containerName?: unknown;
  allContainers?: boolean;
}

function text(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !v.trim()) throw new UsageError(`--${name} takes a value, not '${String(v)}'`);
  return v;
}

/** A selected container with the PID namespace its processes live in. */
export interface TracedContainer {
  container: FleetContainer;
  pidns: PidNamespace;
}

/** Stopped containers remembered for naming their processes' rows. */
const GONE_KEPT = 4096;

/** Every process by the inode of its PID namespace (processes that go away meanwhile are left out). */
function pidsByNamespace(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const d of names) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    let ino: number;
    try {
      ino = statSync(`/proc/${d}/ns/pid`).ino;
    } catch {
      continue;
    }
    const list = out.get(ino);
    if (list) list.push(Number(d));
    else out.set(ino, [Number(d)]);
  }
  return out;
}

export class Fleet implements Closable {
  private readonly byKey = new Map<string, TracedContainer>();
  /**
   * By PID namespace: usually one container each, several for a pod whose containers share one
   * (shareProcessNamespace, or a runtime asked for the pod's namespace).
   */
  private readonly byInum = new Map<number, TracedContainer[]>();
  /** Containers that have stopped, kept for naming the rows of their processes. */
  private readonly gone = new Map<number, TracedContainer>();
  private readonly addedListeners: ((c: TracedContainer) => void | Promise<void>)[] = [];
  private readonly removedListeners: ((c: TracedContainer) => void)[] = [];
  private readonly pidContainer = new Map<number, TracedContainer | null>();

  private constructor(
    private readonly tracker: ContainerTracker,
    private readonly criteria: SelectionCriteria,
    readonly description: string,
  ) {}

  /** Lists the runtimes' containers once, selects, and starts following them. */
  static async start(o: FleetOptions): Promise<Fleet> {
    const criteria: SelectionCriteria = {
      selector: text("selector", o.selector) !== undefined ? parseSelector(text("selector", o.selector)!) : undefined,
      pod: text("pod", o.pod) !== undefined ? parsePodRef(text("pod", o.pod)!) : undefined,
      namespace: text("namespace", o.namespace),
      containerName: text("container-name", o.containerName),
      allContainers: o.allContainers,
    };
    const said = [
      o.allContainers ? "all containers" : "",
      criteria.pod ? `pod ${criteria.pod.namespace ? `${criteria.pod.namespace}/` : ""}${criteria.pod.name}` : "",
      criteria.namespace ? `namespace ${criteria.namespace}` : "",
      o.selector ? `selector ${String(o.selector)}` : "",
      criteria.containerName ? `container ${criteria.containerName}` : "",
    ].filter(Boolean).join(", ");
    const tracker = new ContainerTracker();
    const fleet = new Fleet(tracker, criteria, said);
    tracker.on("added", (c) => void fleet.consider(c));
    tracker.on("removed", (c) => fleet.drop(c));
    await tracker.start();
    if (tracker.discovery.engines.length === 0) {
      void tracker.stop();
      throw new ProbeError("no container runtime CLI here (docker, podman, ctr, crictl)", "run probe on a node with its runtime's CLI (the image needs ctr), or trace a process with --pid");
    }
    return fleet;
  }

  private selects(c: FleetContainer): boolean {
    return select([c], this.criteria).length === 1;
  }

  private consider(c: FleetContainer): void {
    if (!this.selects(c)) return;
    let pidns: PidNamespace;
    try {
      pidns = pidNamespace(c.pid);
    } catch {
      return; // gone before we looked: the next listing says so
    }
    const t = { container: c, pidns };
    this.byKey.set(containerKey(c), t);
    this.byInum.set(pidns.inum, [...(this.byInum.get(pidns.inum) ?? []), t]);
    this.pidContainer.clear();
    for (const l of this.addedListeners) void l(t);
  }

  private drop(c: FleetContainer): void {
    const t = this.byKey.get(containerKey(c));
    if (!t) return;
    this.byKey.delete(containerKey(c));
    const left = (this.byInum.get(t.pidns.inum) ?? []).filter((x) => x !== t);
    if (left.length) this.byInum.set(t.pidns.inum, left);
    else this.byInum.delete(t.pidns.inum);
    this.gone.set(t.pidns.inum, t);
    // A node's churn must not grow this without bound: the oldest stopped containers are forgotten.
    if (this.gone.size > GONE_KEPT) this.gone.delete(this.gone.keys().next().value!);
    for (const l of this.removedListeners) l(t);
  }

  /** The containers selected now. */
  current(): TracedContainer[] {
    return [...this.byKey.values()];
  }

  /** Calls `f` for every selected container now, and for each one selected later. */
  async onAdded(f: (c: TracedContainer) => void | Promise<void>): Promise<void> {
    this.addedListeners.push(f);
    for (const t of this.current()) await f(t);
  }

  onRemoved(f: (c: TracedContainer) => void): void {
    this.removedListeners.push(f);
  }

  /** The selected container a process belongs to (by its PID namespace), also after it stopped. */
  containerOf(pid: number): TracedContainer | undefined {
    let t = this.pidContainer.get(pid);
    if (t === undefined) {
      try {
        const inum = pidNamespace(pid).inum;
        t = this.byPidns(inum) ?? null;
      } catch {
        t = null;
      }
      if (this.pidContainer.size > 65536) this.pidContainer.clear();
      this.pidContainer.set(pid, t);
    }
    return t ?? undefined;
  }

  /** The selected container whose PID namespace has inode `inum` (as the programs record it), also after it stopped. */
  byPidns(inum: number): TracedContainer | undefined {
    if (!inum) return undefined;
    const now = this.byInum.get(inum);
    if (!now) return this.gone.get(inum);
    if (now.length === 1) return now[0];
    // Containers of one pod sharing its PID namespace: the pod is known, not which container.
    const c = now[0]!.container;
    return { pidns: now[0]!.pidns, container: { ...c, name: "", containerName: "" } };
  }

  /** Whether a selected container (still running) is in the PID namespace `inum`. */
  tracesPidns(inum: number): boolean {
    return this.byInum.has(inum);
  }

  /**
   * Labels for a process's rows and metrics: pod, namespace, container. `pidns`, when the program
   * recorded it, names the container even after the process is gone.
   */
  labelsOf(pid: number, pidns = 0): ContainerLabels {
    return containerLabels(this.byPidns(pidns) ?? this.containerOf(pid));
  }

  private pass: { at: number; byInum: Map<number, number[]> } | undefined;

  /**
   * The processes of a selected container now: every process of its PID namespace (/proc read
   * once for all containers, again when older than `maxAgeMs`).
   */
  processesOf(c: TracedContainer, maxAgeMs = 100): number[] {
    const now = performance.now();
    if (!this.pass || now - this.pass.at > maxAgeMs) this.pass = { at: now, byInum: pidsByNamespace() };
    return this.pass.byInum.get(c.pidns.inum) ?? [];
  }

  close(): void {
    void this.tracker.stop();
  }
}
