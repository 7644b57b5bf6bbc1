// One tracing session, the path every tracing command runs through: options -> which processes
// -> capabilities -> attach mode -> targets opened -> programs loaded -> probes attached (errors
// explained) -> the PID re-checked -> a loop that polls, reports, watches for lost events and
// stops on Ctrl-C, SIGTERM, SIGHUP, the duration or the target's exit -> everything closed.
import { closeSync, writeSync } from "node:fs";
import type { Subprocess } from "bun";
import { pc } from "./colors.ts";
import { mark } from "./timing.ts";
import { ProbeError, UsageError } from "./errors.ts";
import { parseAttachMode, parseCount, parseSeconds } from "./options.ts";
import { processFilter, type ProcessFilter } from "./targets.ts";
import { Fleet, fleetRequested, type FleetOptions, type TracedContainer } from "./fleet.ts";
import { Registry, DEFAULT_MAX_SERIES, type Counter } from "../lib/metrics/registry.ts";
import { startMetricsServer } from "../lib/metrics/server.ts";
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
  readonly out = new Out();
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
  }

  /** Validates the shared options, finds the process(es), and checks capabilities. */
  static async start(o: SessionOptions, defaults: { interval?: number } = {}): Promise<Session> {
    const parsed = {
      durationSec: parseSeconds("duration", o.duration, 0),
      intervalSec: parseSeconds("interval", o.interval, defaults.interval ?? 1, 0.01),
      mode: parseAttachMode(o.attachMode),
    };
    if (o.command?.length) {
      if (o.pid !== undefined || o.container !== undefined) throw new UsageError("-- CMD starts the process to trace: no --pid or --container with it");
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
      const fleet = await Fleet.start(o);
      const n = fleet.current().length;
      const s = new Session({ bpf: { pidns: fleet.current().map((c) => c.pidns) }, watchExit: false, label: `, ${n} container${n === 1 ? "" : "s"} now (${fleet.description}) and those that start later` }, o, parsed);
      s.fleet = s.scope.add(fleet);
      fleet.onRemoved((c) => {
        for (const m of s.pidnsMaps) m.delete(u32(c.pidns.inum));
      });
      await s.startMetrics(o);
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
    if (o.metrics === undefined) return;
    if (typeof o.metrics !== "string" || !o.metrics.trim()) throw new UsageError(`--metrics takes an address like :9464 or 127.0.0.1:9464, not '${String(o.metrics)}'`);
    const registry = new Registry({ maxSeries: parseCount("metrics-max-series", o.metricsMaxSeries, DEFAULT_MAX_SERIES, 10, 10_000_000) });
    const server = startMetricsServer({ address: o.metrics, registry });
    this.metrics = registry;
    this.lostCounter = registry.counter("probe_lost_total", "What the programs could not record, by kind (events: ring buffer full; counts, pairing: tables full)", ["kind"]);
    this.scope.add({ close: () => void server.close() });
    this.note(`probe: serving metrics at ${server.url}/metrics`);
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
        this.warn(`${c.container.name}: ${(e as Error).message}`);
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
    process.stderr.write(`${pc.dim(text)}\n`);
  }

  warn(text: string): void {
    process.stderr.write(`${pc.yellow(`probe: warning: ${text}`)}\n`);
  }

  /**
   * Opens what `spec` names, in the traced process's view or on the host. With --wait and a
   * library the process has not mapped yet, waits (until Ctrl-C) for it to map it.
   */
  async openTarget(spec: string, wait = false): Promise<OpenTarget> {
    const proc = this.filter.proc;
    if (proc && wait && (spec.startsWith("/") || looksLikeLibrary(spec)) && spec !== executablePath(proc.pid)) {
      if (!findMappedLibrary(proc.pid, spec)) {
        this.note(`probe: waiting for ${proc.label} to map ${spec}... (Ctrl-C to stop)`);
        await waitForLibrary(proc.pid, spec, Number.POSITIVE_INFINITY, 2);
      }
    }
    const t = this.scope.add(openTargetIn(spec, proc ? { pid: proc.pid } : {}));
    mark(`target ${t.display} opened`);
    return t;
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
    const obj = this.scope.add(loadEmbedded(core ? `${name}.core` : name, this.mode, config, only, !!(f.followForks || f.pending), sizes));
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
    for (;;) {
      try {
        const link = this.scope.add(attachUprobe(progFd, t.kernelPath, points, { retprobe, pid: this.filter.kernelPid, mode: this.mode, displayPath: t.display }));
        mark(`attached ${points.length} ${retprobe ? "return" : "entry"} probe(s)`);
        if (skipped.length) this.note(`probe: left out ${skipped.length} function${skipped.length === 1 ? "" : "s"} whose first instruction the kernel cannot probe: ${skipped.slice(0, 5).join(", ")}${skipped.length > 5 ? ", ..." : ""}`);
        return link;
      } catch (e) {
        const c = e instanceof AttachError ? e.culprit : undefined;
        if (!c || !droppable?.has(Number(c.cookie)) || points.length <= 1 || skipped.length >= 100) throw this.explainAttach(e, t, retprobe, names);
        skipped.push(names?.[Number(c.cookie)] ?? `0x${c.offset.toString(16)}`);
        points = points.filter((p) => p !== c);
      }
    }
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
        // Stay installed: a second Ctrl-C while the final report is written must not cut it short.
        resolve(reason);
      };
      const onSig = () => stop("signal");
      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, onSig);
      // Signal handlers alone do not keep the runtime's event loop alive: with no other timer,
      // a run without -d would end at once.
      const keepAlive = setInterval(() => {}, 2 ** 30);
      cancels.push(() => clearInterval(keepAlive));
      if (hooks.poll) {
        const poll = hooks.poll;
        let t: Timer;
        const tick = () => {
          if (done) return;
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
      const proc = this.filter.watchExit ? this.filter.proc : undefined;
      if (proc) {
        every(100, () => {
          if (!proc.watch.exited()) return;
          process.stderr.write(`probe: pid ${proc.pid} exited\n`);
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
      this.out.flush();
    } finally {
      this.scope.close();
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
    return new ProbeError(
      `the kernel refused a ${retprobe ? "uretprobe" : "uprobe"} at ${where}: ${e.message.replace(/^.*: /, "")}`,
      "another tool may hold a probe there with a different USDT semaphore (the kernel log says 'ref_ctr_offset mismatch'); 'probe list' shows who holds probes on that file",
    );
  }
  return new ProbeError(`cannot attach to ${where}: ${e.message.replace(/^cannot attach [^:]*: /, "")}`);
}

/** PROBE_ATTACH=perf|multi forces an attach mode everywhere (tests compare both). */
function attachModeFromEnv(): AttachMode | undefined {
  const v = process.env.PROBE_ATTACH;
  return v === "perf" || v === "multi" ? v : undefined;
}

/** Runs `f` with a started session and closes it, whatever happens. */
export async function withSession<T>(o: SessionOptions, f: (s: Session) => Promise<T>, defaults?: { interval?: number }): Promise<T> {
  const s = await Session.start(o, defaults);
  try {
    return await f(s);
  } finally {
    s.close();
  }
}
