// Many containers at once, as they come and go: the containers the user selected (--selector,
// --pod, --namespace, --container-name, --all-containers) among those the runtimes report
// (lib/fleet), followed live. The session traces every process of their PID namespaces; commands
// open their files in each container's view as it appears.
import { ContainerTracker, containerKey } from "../lib/fleet/tracker.ts";
import { parsePodRef, parseSelector, select, type SelectionCriteria } from "../lib/fleet/selector.ts";
import type { FleetContainer } from "../lib/fleet/discovery.ts";
import { pidNamespace, type PidNamespace } from "../lib/proc/identity.ts";
import { ProbeError } from "../lib/errors.ts";
import type { Closable } from "../lib/scope.ts";
import { UsageError } from "./errors.ts";

export interface FleetOptions {
  selector?: unknown;
  pod?: unknown;
  namespace?: unknown;
  containerName?: unknown;
  allContainers?: boolean;
}

export function fleetRequested(o: FleetOptions): boolean {
  return o.selector !== undefined || o.pod !== undefined || o.namespace !== undefined || o.containerName !== undefined || !!o.allContainers;
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

export class Fleet implements Closable {
  private readonly byKey = new Map<string, TracedContainer>();
  private readonly byInum = new Map<number, TracedContainer>();
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
    this.byInum.set(pidns.inum, t);
    this.pidContainer.clear();
    for (const l of this.addedListeners) void l(t);
  }

  private drop(c: FleetContainer): void {
    const t = this.byKey.get(containerKey(c));
    if (!t) return;
    this.byKey.delete(containerKey(c));
    this.byInum.delete(t.pidns.inum);
    this.gone.set(t.pidns.inum, t);
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
        t = this.byInum.get(inum) ?? this.gone.get(inum) ?? null;
      } catch {
        t = null;
      }
      if (this.pidContainer.size > 65536) this.pidContainer.clear();
      this.pidContainer.set(pid, t);
    }
    return t ?? undefined;
  }

  /** Labels for a process's rows and metrics: pod, namespace, container. */
  labelsOf(pid: number): { pod: string; namespace: string; container: string } {
    const c = this.containerOf(pid)?.container;
    return { pod: c?.pod?.name ?? "", namespace: c?.pod?.namespace ?? "", container: c?.containerName ?? c?.name ?? "" };
  }

  close(): void {
    void this.tracker.stop();
  }
}
