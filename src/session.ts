// One tracing session, the path every tracing command runs through: options -> which processes
// -> capabilities -> attach mode -> targets opened -> programs loaded -> probes attached (errors
// explained) -> the PID re-checked -> a loop that polls, reports, watches for lost events and
// stops on Ctrl-C, SIGTERM, SIGHUP, the duration or the target's exit -> everything closed.
import { closeSync, fstatSync, statSync, writeSync } from "node:fs";
import type { Subprocess } from "bun";
import { pc } from "./colors.ts";
import { mark } from "./timing.ts";
import { writeStderr } from "./stderr.ts";
import { ProbeError, UsageError } from "./errors.ts";
import { fleetRequested, parseAttachMode, parseCount, parseSeconds } from "./options.ts";
import { processFilter, type ProcessFilter } from "./targets.ts";
// Fleet and metrics code is loaded only by the runs that use it (start-up time).
import type { Fleet, FleetOptions, TracedContainer } from "./fleet.ts";
import { containerName } from "./fleet-labels.ts";
import type { Registry, Counter } from "../lib/metrics/registry.ts";
import { Out } from "./output.ts";
import { Scope, type Closable } from "../lib/scope.ts";
import { missingTracingCaps } from "../lib/caps.ts";
import { bestAttachMode, attachUprobe, AttachError, type AttachMode, type ProbePoint, type UprobeLink } from "../lib/uprobe.ts";
import { loadEmbedded } from "../lib/programs.ts";
import { rawTracepointOpen } from "../lib/kernel/bpf.ts";
import { closeFd } from "../lib/ffi/libc.ts";
import { PROC_FILTER, DROP } from "../lib/layouts.ts";
import type { BpfObject } from "../lib/object.ts";
import { MapReader } from "../lib/maps.ts";
import { openTarget as openTargetIn, openHostFile, type OpenTarget } from "../lib/proc/target.ts";
import { findMappedLibrary, executablePath, waitForLibrary } from "../lib/proc/maps.ts";
import { looksLikeLibrary } from "../lib/libname.ts";
import { nameCulprit } from "../lib/plan.ts";
import { resolveFunction } from "../lib/symbols.ts";
import { ProcessError } from "../lib/proc/identity.ts";
import { kernelView } from "../lib/kernel-view.ts";

export interface SessionOptions extends FleetOptions {
  /** Serve Prometheus/OpenMetrics at this address (`:9464`, `127.0.0.1:9464`). */
  metrics?: unknown;
  metricsMaxSeries?: unknown;
  /** `-- CMD ARGS`: a command probe starts, traced from its first instruction. */
  command?: string[];
  followChildren?: boolean;
  pid?: unknown;
  container?: unknown;
  anyProcess?: boolean;
  children?: boolean;
  wait?: boolean;
  duration?: unknown;
  interval?: unknown;
  json?: boolean;
  attachMode?: unknown;
}

export type StopReason = "signal" | "duration" | "target-exit" | "done";

export interface LoopHooks {
  /** Drains ring buffers; returns how many records it took. Polled every 10 ms while quiet, at once while busy. */
  poll?: () => number;
  /** Called every interval (summaries, tables). */
  report?: () => void;
  /** Stop when this settles (the demo's clients are done). */
  until?: Promise<unknown>;
  /**
   * Called once Ctrl-C, SIGTERM and SIGHUP are handled: the place for the "Tracing ..." line,
   * since whoever waits for it may signal at once (Bun's first signal listener takes a while to
   * install, and a signal meanwhile kills the process without any cleanup or final report).
   */
  started?: () => void;
}

const DEFAULT_LOSSES = [
  { index: DROP.RING, kind: "events", what: "events lost (ring buffer full: the reader fell behind)" },
  { index: DROP.COUNTS, kind: "counts", what: "calls not counted (the per-process table was full)" },
  { index: DROP.STARTS, kind: "pairing", what: "calls not paired with their return (the pairing table was full)" },
];

const ENOTSUPP = 524, EOPNOTSUPP = 95, EINVAL = 22, ESRCH = 3;

/** Refuses early, before anything is loaded, when the process lacks what tracing needs. */
export function requireTracingCaps(): void {
  const missing = missingTracingCaps();
  if (missing.length) throw new ProbeError(`probe needs root, or ${missing.join(" and ")} (missing from this process)`, "run it with sudo");
}

/** A timer that also works past setTimeout's 2^31 ms (24.8 days): long durations are chained. */
function longTimeout(ms: number, f: () => void): () => void {
  const MAX = 2 ** 31 - 1;
  let t: Timer;
  const arm = (left: number) => {
    t = setTimeout(() => (left > MAX ? arm(left - MAX) : f()), Math.min(left, MAX));
  };
  arm(ms);
  return () => clearTimeout(t);
}

export class Session implements Closable {
  readonly scope = new Scope();
  /** stdout; never waits for a reader while tracing (see Out). */
  readonly out = new Out(true);
  readonly json: boolean;
  readonly durationSec: number;
  readonly intervalSec: number;
  readonly mode: AttachMode;
  private readonly lossCounters: { map: MapReader; index: number; kind: string; what: string; seen: bigint }[] = [];
  private lossWarned = false;

  /** The containers selected by label, pod or name, followed as they come and go. */
  fleet?: Fleet;
  /** What --metrics serves; commands add their metrics to it. */
  metrics?: Registry;
  private lostCounter?: Counter;
  private readonly pidnsMaps: MapReader[] = [];
  /** The command probe started (`-- CMD`), held at its exec until the probes are attached. */
  private child?: { proc: Subprocess; gate: number };
  /** The command's exit status, once it has exited. */
  exitCode?: number;

  private constructor(
    readonly filter: ProcessFilter,
    o: SessionOptions,
    parsed: { durationSec: number; intervalSec: number; mode: AttachMode | undefined },
  ) {
    this.json = !!o.json;
    this.durationSec = parsed.durationSec;
    this.intervalSec = parsed.intervalSec;
    this.mode = parsed.mode ?? attachModeFromEnv() ?? bestAttachMode();
    if (filter.proc) this.scope.add(filter.proc);
    if (o.wait && !filter.proc) throw new UsageError("--wait goes with --pid or --container (the process to wait for)");
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => this.onSignal(sig));
  }

  /** Ends the running loop (see run()); set while it runs. */
  private stopLoop?: () => void;
  /** A signal came after tracing started (confirm()) but before the loop ran: run() stops at once. */
  private stopRequested = false;
  private tracing = false;

  /**
   * SIGINT, SIGTERM and SIGHUP (a closed terminal) alike: the loop stops, drains and reports. One
   * that comes once tracing has started but before the loop runs (the "Tracing ..." line is out, the
   * reader not set up yet) is kept for the loop; before tracing starts there is nothing to report,
   * and probe exits as the signal's default would.
   */
  private onSignal(sig: "SIGINT" | "SIGTERM" | "SIGHUP"): void {
    if (this.stopLoop) this.stopLoop();
    else if (this.tracing) this.stopRequested = true;
    else {
      try {
        this.scope.close();
      } finally {
        process.exit(128 + { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[sig]);
      }
    }
  }

  /** Validates the shared options, finds the process(es), and checks capabilities. */
  static async start(o: SessionOptions, defaults: { interval?: number } = {}): Promise<Session> {
    const parsed = {
      durationSec: parseSeconds("duration", o.duration, 0),
      intervalSec: parseSeconds("interval", o.interval, defaults.interval ?? 1, 0.01),
      mode: parseAttachMode(o.attachMode),
    };
    if (o.command?.length) {
      if (o.pid !== undefined || o.container !== undefined || fleetRequested(o)) throw new UsageError("-- CMD starts the process to trace: no --pid, --container or container selection with it");
      requireTracingCaps();
      const s = new Session({ bpf: { tgids: [], pending: [], followForks: !!o.followChildren }, watchExit: false, label: "" }, o, parsed);
      s.spawnHeld(o.command);
      return s;
    }
    if (o.followChildren) throw new UsageError("--follow-children goes with -- CMD (use --children with --pid)");
    mark("session: options");
    if (fleetRequested(o)) {
      if (o.pid !== undefined || o.container !== undefined) throw new UsageError("--pid/--container name one process or container; --selector, --pod, --namespace, --container-name and --all-containers select many: give one kind");
      requireTracingCaps();
      const { Fleet } = await import("./fleet.ts");
      const fleet = await Fleet.start(o);
      const n = fleet.current().length;
      const s = new Session({ bpf: { pidns: fleet.current().map((c) => c.pidns) }, watchExit: false, label: `, ${n} container${n === 1 ? "" : "s"} now (${fleet.description}) and those that start later` }, o, parsed);
      s.fleet = s.scope.add(fleet);
      fleet.onRemoved((c) => {
        // Not while another selected container shares the namespace (a pod's shared PID namespace).
        if (fleet.tracesPidns(c.pidns.inum)) return;
        for (const m of s.pidnsMaps) m.delete(u32(c.pidns.inum));
      });
      try {
        await s.startMetrics(o);
      } catch (e) {
        s.close();
        throw e;
      }
      return s;
    }
    const filter = await processFilter(o);
    mark("session: processes");
    const s = new Session(filter, o, parsed);
    try {
      requireTracingCaps();
      await s.startMetrics(o);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** --metrics: a registry the commands fill and a server Prometheus scrapes, closed with the session. */
  private async startMetrics(o: SessionOptions): Promise<void> {
    if (o.metrics === undefined) {
      if (o.metricsMaxSeries !== undefined) throw new UsageError("--metrics-max-series goes with --metrics (the series served)");
      return;
    }
    if (typeof o.metrics !== "string" || !o.metrics.trim()) throw new UsageError(`--metrics takes an address like :9464 or 127.0.0.1:9464, not '${String(o.metrics)}'`);
    const [{ Registry, DEFAULT_MAX_SERIES }, { startMetricsServer }] = await Promise.all([import("../lib/metrics/registry.ts"), import("../lib/metrics/server.ts")]);
    const registry = new Registry({ maxSeries: parseCount("metrics-max-series", o.metricsMaxSeries, DEFAULT_MAX_SERIES, 10, 10_000_000) });
    this.metrics = registry;
    this.lostCounter = registry.counter("probe_lost_total", "What the programs could not record, by kind (events: ring buffer full; counts, pairing: tables full)", ["kind"]);
    this.attachErrors = registry.counter("probe_attach_errors_total", "Files of selected containers (or the target) probe could not attach to, by container", ["pod", "namespace", "container"]);
    const server = startMetricsServer({ address: o.metrics, registry, collect: () => this.collect() });
    this.scope.add({ close: () => void server.close() });
    this.note(`probe: serving metrics at ${server.url}/metrics`);
  }

  private attachErrors?: Counter;
  private readonly collectors: (() => void)[] = [];

  /**
   * Registers what brings the metrics up to date (reads the programs' maps into the registry):
   * run before each scrape, so that Prometheus sees what was counted up to its request.
   */
  onCollect(f: () => void): void {
    this.collectors.push(f);
  }

  private collect(): void {
    for (const f of this.collectors) f();
    this.checkLosses(false);
  }

  /** A file of a selected container probe could not attach to (or open): said, and counted for --metrics. */
  attachFailed(c: TracedContainer | undefined, what: string): void {
    const name = c ? containerName(c) : "";
    this.warn(name ? `${name}: ${what}` : what);
    const pod = c?.container.pod;
    this.attachErrors?.inc({ pod: pod?.name ?? "", namespace: pod?.namespace ?? "", container: c ? (c.container.containerName ?? c.container.name) : "" });
  }

  /** Whether tables go to stdout: not when serving metrics, unless --json asked for lines. */
  get printing(): boolean {
    return !this.metrics || this.json;
  }

  /**
   * Runs `f` for each view targets are opened in: the traced process's (or the host's) once; with
   * a selection of containers, each container's main process's, now and for every container
   * selected later (its processes are already traced through the PID-namespace filter).
   */
  async eachView(f: (view: { pid?: number }, container?: TracedContainer) => Promise<void>): Promise<void> {
    if (!this.fleet) return f(this.filter.proc ? { pid: this.filter.proc.pid } : {});
    await this.fleet.onAdded(async (c) => {
      for (const m of this.pidnsMaps) m.update(u32(c.pidns.inum), u32(c.pidns.level));
      try {
        await f({ pid: c.container.pid }, c);
      } catch (e) {
        this.attachFailed(c, (e as Error).message);
      }
    });
  }

  /**
   * Starts `argv` held before its exec: a shell waits on a pipe, then execs the command, which
   * the filter starts tracing at that exec (the shell's own calls are not the command's).
   */
  private spawnHeld(argv: string[]): void {
    let proc: Subprocess;
    try {
      proc = Bun.spawn(["/bin/sh", "-c", 'read _ <&3; exec 3<&-; exec "$@"', "probe-cmd", ...argv], { stdio: ["inherit", "inherit", "inherit", "pipe"] });
    } catch (e) {
      throw new ProbeError(`cannot start ${argv[0]}: ${(e as Error).message}`);
    }
    const gate = (proc as unknown as { stdio: number[] }).stdio[3]!;
    this.child = { proc, gate };
    this.filter.bpf.pending = [proc.pid];
    this.filter.label = `, command ${argv.join(" ")} (pid ${proc.pid})`;
    this.scope.add({ close: () => this.releaseChild(true) });
  }

  /** Lets the held command run (after attaching); with `kill`, ends it instead (attaching failed). */
  private releaseChild(kill = false): void {
    const c = this.child;
    if (!c || c.gate < 0) return;
    if (kill && this.exitCode === undefined) c.proc.kill("SIGKILL");
    try {
      if (!kill) writeSync(c.gate, "go\n");
    } catch {
      // the shell is gone: its exit says why
    }
    closeSync(c.gate);
    c.gate = -1;
  }

  /** ", pid 6575 (container pid 1)" or "". */
  get label(): string {
    return this.filter.label;
  }

  /**
   * A config for one of probe's programs, `size` bytes, with the process filter (the first
   * member of every program's config, bpf/proc_filter.h) already written.
   */
  config(size: number): { bytes: Uint8Array; view: DataView } {
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    const f = this.filter.bpf;
    view.setUint32(PROC_FILTER.tgid, f.tgid ?? 0, true);
    view.setUint8(PROC_FILTER.use_tgids, f.tgids || f.pending ? 1 : 0);
    view.setUint8(PROC_FILTER.use_pidns, f.pidns ? 1 : 0);
    view.setUint8(PROC_FILTER.follow_forks, f.followForks ? 1 : 0);
    return { bytes, view };
  }

  /**
   * Whether records should carry each process's PID inside its container: a container is traced,
   * or a process in one, or every process of a shared image layer.
   */
  get wantsNspid(): boolean {
    const f = this.filter;
    return !!(f.bpf.pidns || f.anyProcess || (f.proc && f.proc.nspid.length > 1) || this.fleet);
  }

  get modeName(): string {
    return this.mode === "multi" ? "uprobe_multi" : "perf_event";
  }

  /** A line for the user on stderr (dimmed), out of the way of the data on stdout. */
  note(text: string): void {
    writeStderr(`${pc.dim(text)}\n`);
  }

  warn(text: string): void {
    writeStderr(`${pc.yellow(`probe: warning: ${text}`)}\n`);
  }

  /**
   * Opens what `spec` names, in the traced process's view or on the host. A library the process
   * has not mapped is the file its own loader would load (said on stderr: a process with the code
   * built in, or using another library, makes no calls there). It is probed at once, --wait or
   * not: a uprobe is on the file, so calls made right after the process maps it are seen, where
   * waiting for the mapping and then attaching would miss the first tens of milliseconds. Once the
   * process maps it, the run loop checks that it is that file, and moves the probes to the file it
   * did map if not (see checkUnmapped). Only with --wait is a library found nowhere in its view
   * waited for (until Ctrl-C).
   */
  async openTarget(spec: string, wait = false): Promise<OpenTarget> {
    const proc = this.filter.proc;
    const library = proc && (spec.startsWith("/") || looksLikeLibrary(spec)) && spec !== executablePath(proc.pid);
    if (!proc || !library || findMappedLibrary(proc.pid, spec)) return this.scope.add(openTargetIn(spec, proc ? { pid: proc.pid } : {}));
    const t = this.openBeforeMapped(spec, wait);
    if (!t) {
      if (!wait) return this.scope.add(openTargetIn(spec, { pid: proc.pid })); // throws: not found, said why
      this.note(`probe: waiting for ${proc.label} to map ${spec}... (Ctrl-C to stop)`);
      await waitForLibrary(proc.pid, spec, Number.POSITIVE_INFINITY, 2);
      return this.scope.add(openTargetIn(spec, { pid: proc.pid }));
    }
    const what = `${proc.label} has not mapped ${spec}${wait ? " yet" : ""} (/proc/${proc.pid}/maps): probing ${t.display}, the file its loader would load`;
    if (wait) this.note(`probe: ${what}; its calls are seen from the moment it maps it`);
    else this.warn(`${what}, which sees its calls only if it loads it (a program with the code built in, or using another library, makes none there)`);
    return t;
  }

  /**
   * The file the traced process's loader would load for library `spec`, which it has not mapped
   * (yet), opened and registered so that the run loop moves what is attached to it if the process
   * maps another file (see openTarget); undefined when the library is nowhere in its view. Errors
   * other than "not found" (a FIFO where the loader's cache should be) are thrown.
   */
  openBeforeMapped(spec: string, soon = false): OpenTarget | undefined {
    const proc = this.filter.proc!;
    let t: OpenTarget;
    try {
      t = this.scope.add(openTargetIn(spec, { pid: proc.pid }));
    } catch (e) {
      if (e instanceof ProcessError && e.reason === "not-found") return undefined;
      throw e;
    }
    this.unmapped.push({ spec, target: t, ino: fstatSync(t.fd).ino, attached: [] });
    if (soon) this.unmappedPollMs = 10;
    return t;
  }

  /** How often the run loop looks for those mappings: often when --wait says one is coming. */
  private unmappedPollMs = 100;

  /** Libraries probed before the process mapped them, and what was attached to each (see openTarget). */
  private readonly unmapped: { spec: string; target: OpenTarget; ino: number; attached: { progFd: number; points: ProbePoint[]; retprobe: boolean; names?: string[] }[] }[] = [];

  /**
   * Once the process maps a library probed early: when it is another file than the one probed
   * (another build under LD_LIBRARY_PATH, a process that exec'd into another root), the probes
   * move there, found again by function name. False when they cannot (said on stderr).
   */
  private checkUnmapped(pid: number): boolean {
    for (let i = this.unmapped.length - 1; i >= 0; i--) {
      const u = this.unmapped[i]!;
      let f;
      try {
        f = findMappedLibrary(pid, u.spec);
      } catch {
        return true; // gone: the exit watch says so
      }
      if (!f) continue;
      this.unmapped.splice(i, 1);
      if (f.inode === u.ino) continue;
      try {
        this.retarget(u, pid);
      } catch (e) {
        this.warn(`pid ${pid} mapped ${f.path}, not ${u.target.display} which probe attached to, and the probes cannot move there: ${(e as Error).message}; run probe again now that it is mapped`);
        return false;
      }
    }
    return true;
  }

  private retarget(u: (typeof this.unmapped)[number], pid: number): void {
    const t = this.scope.add(openTargetIn(u.spec, { pid }));
    for (const a of u.attached) {
      const points = a.points.map((p) => {
        const name = a.names?.[Number(p.cookie)];
        // Only a function's entry is found again by name: not an offset in it, not a Go RET.
        if (!name || name.includes("+") || resolveFunction(u.target.elf, name).offset !== p.offset) {
          throw new ProbeError(`offset 0x${p.offset.toString(16)} is not a function's entry it can find by name`);
        }
        return { ...p, offset: resolveFunction(t.elf, name).offset };
      });
      this.attach(a.progFd, t, points, a.retprobe, a.names);
    }
    this.note(`probe: pid ${pid} mapped ${t.display}, not ${u.target.display} its loader's search pointed to: the probes moved there (calls before this moment were not seen)`);
  }

  /** Opens what `spec` names in a given view (a container's, from eachView); owned by the session. */
  openTargetIn(spec: string, view: { pid?: number }): OpenTarget {
    return this.scope.add(openTargetIn(spec, view));
  }

  /** A host file by path (a library found on the host). */
  openHostFile(path: string): OpenTarget {
    return this.scope.add(openHostFile(path));
  }

  /**
   * Loads one of probe's embedded objects with its config (see config()), for this session's
   * attach mode, and sets up its process filter: the processes and namespaces to trace, and the
   * fork and exit tracepoints that keep a process's descendants in the set.
   */
  load(name: string, config: Uint8Array, only?: string[], sizes?: Record<string, number>): BpfObject {
    const f = this.filter.bpf;
    // The CO-RE build (bpf/filter.h) only where namespaces or a process's children are followed.
    const core = !!(f.pidns || f.followForks || this.wantsNspid);
    mark(`loading ${name}${core ? ".core" : ""}`);
    // The filter's tables only where used (a 64K-entry hash table costs the kernel ~4 ms to make).
    const filterSizes = { ...(f.tgids || f.followForks || f.pending ? {} : { filter_tgids: 1 }), ...(f.pidns ? {} : { filter_pidns: 1 }), ...(f.pending ? {} : { filter_pending: 1 }) };
    const obj = this.scope.add(loadEmbedded(core ? `${name}.core` : name, this.mode, config, only, !!(f.followForks || f.pending), { ...filterSizes, ...sizes }));
    mark(`loaded ${name}`);
    const one = new Uint8Array([1]);
    if (f.tgids) {
      const m = new MapReader(obj.mapFd("filter_tgids"));
      for (const t of f.tgids) m.update(u32(t), one);
    }
    if (f.pidns) {
      const m = new MapReader(obj.mapFd("filter_pidns"));
      for (const ns of f.pidns) m.update(u32(ns.inum), u32(ns.level));
      this.pidnsMaps.push(m);
    }
    if (f.pending) {
      const m = new MapReader(obj.mapFd("filter_pending"));
      for (const t of f.pending) m.update(u32(t), one);
    }
    const tracepoints: [string, string][] = [];
    if (f.followForks) tracepoints.push(["filter_fork", "sched_process_fork"]);
    if (f.pending) tracepoints.push(["filter_exec", "sched_process_exec"]);
    if (f.followForks || f.pending) tracepoints.push(["filter_exit", "sched_process_exit"]);
    for (const [prog, tp] of tracepoints) this.scope.add(new FdOwner(rawTracepointOpen(tp, obj.progFd(prog))));
    return obj;
  }

  /**
   * Attaches `progFd` at `points` of `t`, filtered to the traced process; kernel refusals
   * explained. Points whose cookie is in `droppable` (functions a glob chose, not the user by name)
   * are left out when the kernel refuses their instruction, with a note, and the rest attached.
   */
  attach(progFd: number, t: OpenTarget, points: ProbePoint[], retprobe: boolean, names?: string[], droppable?: Set<number>): UprobeLink {
    const skipped: string[] = [];
    let link: UprobeLink;
    for (;;) {
      try {
        link = this.scope.add(attachUprobe(progFd, t.kernelPath, points, { retprobe, pid: this.filter.kernelPid, mode: this.mode, displayPath: t.display }));
        mark(`attached ${points.length} ${retprobe ? "return" : "entry"} probe(s)`);
        if (skipped.length) this.note(`probe: left out ${skipped.length} function${skipped.length === 1 ? "" : "s"} whose first instruction the kernel cannot probe: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? ", ..." : ""}`);
        break;
      } catch (e) {
        const c = e instanceof AttachError ? e.culprit : undefined;
        if (!c || !droppable?.has(Number(c.cookie)) || points.length <= 1 || skipped.length >= 100) throw this.explainAttach(e, t, retprobe, names);
        skipped.push(names?.[Number(c.cookie)] ?? `0x${c.offset.toString(16)}`);
        points = points.filter((p) => p !== c);
      }
    }
    this.unmapped.find((u) => u.target === t)?.attached.push({ progFd, points, retprobe, names });
    return link;
  }

  private explainAttach(e: unknown, t: OpenTarget, retprobe: boolean, names?: string[]): unknown {
    if (!(e instanceof AttachError)) return e;
    const proc = this.filter.proc;
    if (e.errno === ESRCH && proc) return new ProbeError(`process ${proc.pid} exited while probe was attaching`, "start probe again once it runs (--wait waits for it)");
    return explainAttachError(nameCulprit(e, t.elf, t.display, names), retprobe);
  }

  /** Re-checks, after attaching, that the PID still names the process looked at (not a reused PID); lets a held command run. */
  confirm(): void {
    this.filter.proc?.confirm();
    mark("confirmed");
    this.releaseChild();
    this.tracing = true;
  }

  /**
   * Reports, while running, what a program could not record: the counters of its `dropped` array
   * (bpf/uprobe.h enum drop_kind: events the ring buffer had no room for, processes the count
   * table had no room for, calls the pairing table had no room for).
   */
  watchLosses(mapFd: number, kinds: { index: number; kind: string; what: string }[] = DEFAULT_LOSSES): void {
    const map = new MapReader(mapFd);
    for (const k of kinds) if (k.index < map.info.maxEntries) this.lossCounters.push({ map, ...k, seen: 0n });
  }

  private checkLosses(final: boolean): void {
    for (const c of this.lossCounters) {
      const [v] = c.map.lookup(new Uint8Array(new Uint32Array([c.index]).buffer)) ?? [];
      const total = v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0, true) : 0n;
      if (total === c.seen) continue;
      const delta = total - c.seen;
      c.seen = total;
      this.lostCounter?.inc({ kind: c.kind }, Number(delta));
      if (this.json) {
        this.out.line(JSON.stringify({ event: "lost", kind: c.kind, count: Number(delta), total: Number(total), ...(final ? { final: true } : {}) }));
        this.out.flush();
      } else if (!this.lossWarned || final) {
        this.warn(`${total} ${c.what}${final ? "" : " so far; a total is printed at exit"}`);
        this.lossWarned = true;
      }
    }
  }

  /** Runs until a signal, the duration, the target's exit, or `until`; then drains and reports once more. */
  async run(hooks: LoopHooks = {}): Promise<StopReason> {
    const why = await new Promise<StopReason>((resolve) => {
      const cancels: (() => void)[] = [];
      let done = false;
      const stop = (reason: StopReason) => {
        if (done) return;
        done = true;
        for (const c of cancels) c();
        resolve(reason);
      };
      // The handlers stay installed (see onSignal): a second Ctrl-C while the final report is
      // written must not cut it short.
      this.stopLoop = () => stop("signal");
      mark("running");
      // The executable starts with the JIT reluctant (build.ts: start-up code runs once); the
      // loop that drains events is what runs hot from here on.
      Bun.unsafe.setJITPolicy(1);
      hooks.started?.();
      // Signal handlers alone do not keep the runtime's event loop alive: with no other timer,
      // a run without -d would end at once.
      const keepAlive = setInterval(() => {}, 2 ** 30);
      cancels.push(() => clearInterval(keepAlive));
      if (hooks.poll) {
        const poll = hooks.poll;
        let t: Timer;
        const tick = () => {
          if (done) return;
          // stdout's reader is far behind: leave the events in the kernel's buffer, which counts
          // what it then drops (reported as lost), rather than hold them all here.
          if (this.out.pending) this.out.flush();
          if (this.out.backlogged) {
            t = setTimeout(tick, 10);
            return;
          }
          const n = poll();
          t = setTimeout(tick, n > 0 ? 1 : 10);
        };
        t = setTimeout(tick, 10);
        cancels.push(() => clearTimeout(t));
      }
      const every = (ms: number, f: () => void) => {
        let cancel = () => {};
        const again = () => {
          f();
          if (!done) cancel = longTimeout(ms, again);
        };
        cancel = longTimeout(ms, again);
        cancels.push(() => cancel());
      };
      if (hooks.report) every(this.intervalSec * 1000, hooks.report);
      if (this.lossCounters.length) every(Math.min(1000, this.intervalSec * 1000), () => this.checkLosses(false));
      hooks.until?.finally(() => stop("done"));
      void this.child?.proc.exited.then((code) => {
        this.exitCode = code;
        stop("target-exit");
      });
      if (this.durationSec > 0) cancels.push(longTimeout(this.durationSec * 1000, () => stop("duration")));
      this.tracing = true;
      if (this.stopRequested) stop("signal");
      const proc = this.filter.watchExit ? this.filter.proc : undefined;
      if (proc && this.unmapped.length) {
        // Often with --wait (a mapping is expected: probes that must move miss little).
        every(this.unmappedPollMs, () => {
          if (this.unmapped.length && !this.checkUnmapped(proc.pid)) {
            this.exitCode = 1;
            stop("done");
          }
        });
      }
      if (proc) {
        every(100, () => {
          if (!proc.watch.exited()) return;
          writeStderr(`probe: pid ${proc.pid} exited\n`);
          stop("target-exit");
        });
      }
    });
    hooks.poll?.();
    this.checkLosses(true);
    return why;
  }

  close(): void {
    try {
      this.scope.close();
    } finally {
      // Detached first: the output's reader may take its time.
      const left = this.out.drain();
      if (left) this.warn(`stdout is not being read: the last ${left} bytes of output were not written`);
    }
  }
}

function u32(n: number): Uint8Array {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

/** A kernel object held by an fd only (a raw tracepoint attachment): closing the fd detaches it. */
class FdOwner implements Closable {
  constructor(private fd: number) {}
  close(): void {
    closeFd(this.fd);
    this.fd = -1;
  }
}

/** A kernel refusal in words a user can act on: which function, and why it is likely refused. */
export function explainAttachError(e: AttachError, retprobe: boolean): ProbeError {
  const c = e.culprit;
  const where = c ? `${e.culpritName ?? `0x${c.offset.toString(16)}`} (offset 0x${c.offset.toString(16)} of ${e.display ?? "the file"})` : (e.display ?? "the file");
  if ((e.errno === ENOTSUPP || e.errno === EOPNOTSUPP) && c) {
    return new ProbeError(`the kernel cannot probe the instruction at ${where}: uprobes refuse some instructions (lock-prefixed, some jumps)`, e.nextInstruction ? `probe the next instruction instead: ${e.nextInstruction}` : "probe a caller of it instead");
  }
  if (e.errno === EINVAL) {
    // The kernel keeps one uprobe per (file, offset): another tool's with a USDT semaphore
    // (ref_ctr_offset) there refuses ours without one ('ref_ctr_offset mismatch' in its log).
    const others = c && e.file ? otherProbeHolders(e.file, c.offset) : [];
    const msg = e.message.replace(/^.*: /, "");
    if (others.length) {
      return new ProbeError(
        `the kernel refused a ${retprobe ? "uretprobe" : "uprobe"} at ${where}: ${msg}: ${others.join(", ")} already ${others.length === 1 ? "holds a probe" : "hold probes"} there, likely with a USDT semaphore (the kernel log says 'ref_ctr_offset mismatch')`,
        "the kernel allows one semaphore setting per offset: stop that tool, or probe another instruction of the function (FUNC+OFFSET)",
      );
    }
    return new ProbeError(
      `the kernel refused a ${retprobe ? "uretprobe" : "uprobe"} at ${where}: ${msg}`,
      "another tool may hold a probe there with a different USDT semaphore (the kernel log says 'ref_ctr_offset mismatch'); 'probe list' shows who holds probes on that file",
    );
  }
  return new ProbeError(`cannot attach to ${where}: ${e.message.replace(/^cannot attach [^:]*: /, "")}`);
}

/** Who else (`comm[pid]`, or a pin) holds a uprobe at `offset` of this file, as the kernel lists them. */
function otherProbeHolders(file: { dev: number; ino: number }, offset: number): string[] {
  const same = (path: string) => {
    try {
      const st = statSync(path);
      return st.dev === file.dev && st.ino === file.ino;
    } catch {
      return false;
    }
  };
  const out = new Set<string>();
  try {
    const v = kernelView();
    for (const l of v.links) {
      if (!l.uprobe || !l.uprobe.offsets.includes(offset) || !same(l.uprobe.path)) continue;
      for (const h of l.holders) if (h.pid !== process.pid) out.add(`${h.comm}[${h.pid}]`);
      for (const p of l.pins) out.add(`pinned ${p}`);
    }
    for (const p of v.perfEvents) {
      if ((p.kind === "uprobe" || p.kind === "uretprobe") && p.offset === offset && p.pid !== process.pid && same(p.path)) out.add(`${p.comm}[${p.pid}]`);
    }
  } catch {
    // the kernel's view is a hint here, not a requirement
  }
  return [...out];
}

/** PROBE_ATTACH=perf|multi forces an attach mode everywhere (tests compare both). */
function attachModeFromEnv(): AttachMode | undefined {
  const v = process.env.PROBE_ATTACH;
  return v === "perf" || v === "multi" ? v : undefined;
}

/** Runs `f` with a started session and closes it, whatever happens. */
export async function withSession<T>(o: SessionOptions, f: (s: Session) => Promise<T>, defaults?: { interval?: number }): Promise<T> {
  const s = await Session.start(o, defaults);
  mark("session started");
  try {
    return await f(s);
  } finally {
    s.close();
  }
}
