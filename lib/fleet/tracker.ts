// Follows the host's containers as they start and stop: lists them (discovery.ts) periodically and
// whenever an engine's event stream says something started or died, and reports the difference as
// added/removed. A container is identified by engine, endpoint, namespace and id; a new PID under
// the same id (a restart) is a removal and an addition.
//
// Timeliness and cost: with event streams (the default) a change is listed within ~0.1-0.3 s of the
// engine's event, and the periodic listing only backs them up (every `resyncMs`, default 10 s);
// where an engine has no live stream, the tracker lists every `intervalMs` (default 1 s).
// A listing costs one CLI call per containerd namespace plus two per docker/podman (about 35 ms
// of CPU each for ctr here; see the tests' measurements).
//
// An engine whose listing fails keeps its previously known containers (no removal storm when a
// daemon is briefly unreachable); they are removed once it answers again without them.
import { Discovery, type DiscoveryOptions, type DiscoveryResult, type EngineStatus, type FleetContainer, type FleetEngine } from "./discovery.ts";
import { watchEngineEvents, type EventWatch } from "./events.ts";

export interface TrackerOptions extends DiscoveryOptions {
  /** Listing period when some engine has no event stream (default 1000 ms). */
  intervalMs?: number;
  /** Listing period when every engine has a live event stream (default 10,000 ms). */
  resyncMs?: number;
  /** Watch engine events to list at once on a change (default true). */
  watchEvents?: boolean;
  /** Events within this window are answered by one listing (default 50 ms). */
  debounceMs?: number;
}

export interface TrackerListeners {
  added: (c: FleetContainer) => void;
  removed: (c: FleetContainer) => void;
  /** After each listing, with what each engine said (failures included). */
  sync: (r: DiscoveryResult) => void;
  /** An event stream ended (it is restarted); listing goes on at intervalMs meanwhile. */
  streamEnded: (engine: FleetEngine, source: string, why: string) => void;
}

/** The identity a container keeps across listings. */
export function containerKey(c: FleetContainer): string {
  return `${c.engine}\u0000${c.address ?? ""}\u0000${c.namespace ?? ""}\u0000${c.id}`;
}

function sourceKey(engine: FleetEngine, source: string): string {
  return `${engine}\u0000${source}`;
}

function sourceOf(c: FleetContainer): string {
  return sourceKey(c.engine, c.engine === "containerd" ? c.address ?? "" : c.engine);
}

export class ContainerTracker {
  private readonly discovery: Discovery;
  private readonly intervalMs: number;
  private readonly resyncMs: number;
  private readonly debounceMs: number;
  private readonly watchEvents: boolean;
  private readonly known = new Map<string, FleetContainer>();
  private readonly listeners: { [K in keyof TrackerListeners]: TrackerListeners[K][] } = { added: [], removed: [], sync: [], streamEnded: [] };
  private watch: EventWatch | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastSync = 0;
  /** Listings done, and when the last one finished (performance.now()). */
  syncs = 0;
  lastResult: DiscoveryResult | undefined;

  constructor(opts: TrackerOptions = {}, discovery?: Discovery) {
    this.discovery = discovery ?? new Discovery(opts);
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.resyncMs = opts.resyncMs ?? 10_000;
    this.debounceMs = opts.debounceMs ?? 50;
    this.watchEvents = opts.watchEvents ?? true;
  }

  on<K extends keyof TrackerListeners>(event: K, fn: TrackerListeners[K]): this {
    this.listeners[event].push(fn);
    return this;
  }

  private emit<K extends keyof TrackerListeners>(event: K, ...args: Parameters<TrackerListeners[K]>): void {
    for (const fn of this.listeners[event]) (fn as (...a: Parameters<TrackerListeners[K]>) => void)(...args);
  }

  /** Containers known now. */
  current(): FleetContainer[] {
    return [...this.known.values()];
  }

  /** Lists once (emitting `added` for every container found), then keeps following. */
  async start(): Promise<void> {
    if (this.watchEvents) {
      const engines = this.discovery.engines;
      this.watch = watchEngineEvents({
        containerdAddresses: engines.includes("containerd") ? this.discovery.containerdAddresses() : [],
        docker: engines.includes("docker"),
        podman: engines.includes("podman"),
        onEvent: () => this.poke(this.debounceMs),
        onStreamEnd: (engine, source, why) => this.emit("streamEnded", engine, source, why),
      });
    }
    await this.syncNow();
  }

  /** Lists now (or right after a listing in progress) and applies the difference. */
  syncNow(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.syncOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
        this.schedule();
      }
    })();
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const r = await this.discovery.list();
    if (this.stopped) return;
    this.syncs++;
    this.lastSync = performance.now();
    this.lastResult = r;
    const failed = new Set(r.engines.filter((e) => !e.ok).map((e) => sourceKey(e.engine, e.source)));
    const next = new Map<string, FleetContainer>();
    for (const c of r.containers) next.set(containerKey(c), c);
    for (const [k, c] of this.known) if (!next.has(k) && failed.has(sourceOf(c))) next.set(k, c);
    const removed: FleetContainer[] = [];
    const added: FleetContainer[] = [];
    for (const [k, c] of this.known) {
      const n = next.get(k);
      if (!n || n.pid !== c.pid) removed.push(c);
    }
    for (const [k, c] of next) {
      const o = this.known.get(k);
      if (!o || o.pid !== c.pid) added.push(c);
    }
    this.known.clear();
    for (const [k, c] of next) this.known.set(k, c);
    for (const c of removed) this.emit("removed", c);
    for (const c of added) this.emit("added", c);
    this.emit("sync", r);
  }

  /** Whether every engine that answered has a live event stream (then periodic listing can be slow). */
  private allStreamsLive(): boolean {
    if (!this.watch || !this.lastResult) return false;
    const live = new Set(this.watch.live().map((s) => sourceKey(s.engine, s.source)));
    const answering = (this.lastResult.engines as EngineStatus[]).filter((e) => e.ok).map((e) => sourceKey(e.engine, e.source));
    // crictl has no stream here.
    return answering.length > 0 && answering.every((k) => live.has(k));
  }

  /** Lists in `delayMs`, unless a listing is already due sooner (a stream of events cannot starve it). */
  private poke(delayMs: number): void {
    if (this.stopped) return;
    const due = performance.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.syncNow();
    }, delayMs);
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const period = this.allStreamsLive() ? this.resyncMs : this.intervalMs;
    this.poke(Math.max(0, this.lastSync + period - performance.now()));
  }

  /** Stops listing and watching; waits for a listing in progress. No events are emitted after. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watch?.close();
    await this.running;
  }
}
