// Follows the host's containers as they start and stop: lists them (discovery.ts) periodically and
// whenever an engine's event stream says something started or died, and reports the difference as
// added/removed. A container is identified by engine, endpoint, namespace and id; a new PID under
// the same id (a restart) is a removal and an addition.
//
// Why events and not only polling: a listing runs engine CLIs, and each run costs tens of ms of
// CPU (Go binaries starting up; see tests/kernel/fleet.test.ts for this machine's numbers), so
// listing every engine every second would keep a good part of a core busy on an idle node. With
// the event streams (the default) an event re-lists only the engine it came from, within
// `debounceMs`, and the full periodic listing only backs the streams up, every `resyncMs`. Where
// an engine that answers has no live stream (crictl never has one; a stream that died), the full
// listing runs every `intervalMs` instead.
//
// An engine whose listing fails keeps its previously known containers (no removal storm when a
// daemon is briefly unreachable); they are removed once it answers again without them.
import { dedupeContainers, Discovery, sourceKey, sourceOf, type DiscoveryOptions, type DiscoveryResult, type FleetContainer, type FleetEngine } from "./discovery.ts";
import { watchEngineEvents, type EventWatch } from "./events.ts";

export interface TrackerOptions extends DiscoveryOptions {
  /** Full listing period while some answering engine has no live event stream (default 1000 ms). */
  intervalMs?: number;
  /** Full listing period while every answering engine has a live event stream (default 10,000 ms). */
  resyncMs?: number;
  /** Watch engine events and re-list at once on a change (default true). */
  watchEvents?: boolean;
  /** Events within this window are answered by one listing (default 50 ms). */
  debounceMs?: number;
}

export interface TrackerListeners {
  added: (c: FleetContainer) => void;
  removed: (c: FleetContainer) => void;
  /** After each listing, with what each engine asked said (failures included). */
  sync: (r: DiscoveryResult, partial: boolean) => void;
  /** An event stream ended (it is restarted); full listings run every intervalMs meanwhile. */
  streamEnded: (engine: FleetEngine, source: string, why: string) => void;
}

/** The identity a container keeps across listings. */
export function containerKey(c: FleetContainer): string {
  return `${c.engine}\u0000${c.address ?? ""}\u0000${c.namespace ?? ""}\u0000${c.id}`;
}

export class ContainerTracker {
  readonly discovery: Discovery;
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
  /** Endpoints whose events asked for a listing not yet done. */
  private pending = new Set<string>();
  private fullPending = false;
  private stopped = false;
  private lastFull = 0;
  /** Endpoints that answered the last time they were asked. */
  private answering = new Set<string>();
  /** Listings done (full and partial). */
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
        onEvent: (engine, source, namespace) => {
          if (engine === "containerd" && namespace) this.discovery.noteNamespace(source, namespace);
          this.pending.add(sourceKey(engine, source));
          this.wakeIn(this.debounceMs);
        },
        onStreamEnd: (engine, source, why) => this.emit("streamEnded", engine, source, why),
      });
    }
    await this.syncNow();
  }

  /** Lists every engine now (or right after a listing in progress) and applies the difference. */
  syncNow(): Promise<void> {
    this.fullPending = true;
    return this.drain();
  }

  private drain(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      try {
        while (!this.stopped && (this.fullPending || this.pending.size > 0)) {
          const full = this.fullPending;
          const only = full ? undefined : new Set(this.pending);
          this.fullPending = false;
          this.pending.clear();
          await this.syncOnce(only);
        }
      } finally {
        this.running = undefined;
        this.schedule();
      }
    })();
    return this.running;
  }

  private async syncOnce(only: Set<string> | undefined): Promise<void> {
    // Periods run from the start of one full listing to the start of the next.
    const began = performance.now();
    const r = await this.discovery.list(only);
    if (this.stopped) return;
    this.syncs++;
    if (!only) this.lastFull = began;
    this.lastResult = r;
    const listedOk = new Set<string>();
    for (const e of r.engines) {
      const k = sourceKey(e.engine, e.source);
      if (e.ok) {
        listedOk.add(k);
        this.answering.add(k);
      } else {
        this.answering.delete(k);
      }
    }
    // Containers of endpoints not listed, or whose listing failed, stay as they were.
    const carried = [...this.known.values()].filter((c) => !listedOk.has(sourceOf(c)));
    const next = new Map<string, FleetContainer>();
    for (const c of dedupeContainers([...r.containers, ...carried])) next.set(containerKey(c), c);
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
    this.emit("sync", r, only !== undefined);
  }

  /** Whether every answering endpoint has a live event stream (then full listings can be rare). */
  private allStreamsLive(): boolean {
    if (!this.watch || this.answering.size === 0) return false;
    const live = new Set(this.watch.live().map((s) => sourceKey(s.engine, s.source)));
    return [...this.answering].every((k) => live.has(k));
  }

  /** Wakes in `delayMs`, unless a wake-up is already due sooner (a stream of events cannot starve it). */
  private wakeIn(delayMs: number): void {
    if (this.stopped) return;
    const due = performance.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (performance.now() - this.lastFull >= this.period() - 5) this.fullPending = true;
      void this.drain();
    }, delayMs);
  }

  private period(): number {
    return this.allStreamsLive() ? this.resyncMs : this.intervalMs;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.pending.size > 0) return this.wakeIn(this.debounceMs);
    this.wakeIn(Math.max(0, this.lastFull + this.period() - performance.now()));
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
