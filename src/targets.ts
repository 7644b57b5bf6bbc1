// Which process(es) a command traces, from --pid / --container / --any-process / --wait: the
// process whose view resolves the target's files, and the filters the programs and the kernel
// apply. Finding and opening the files themselves is lib/proc/target.ts's job.
import { pc } from "./colors.ts";
import { ProbeError, UsageError } from "./errors.ts";
import { parsePid } from "./options.ts";
import { containerPid, ContainerError, type ContainerPid } from "../lib/containers.ts";
import { nsPids, pidNamespace, processExists, processIdentity, assertSameProcess, procIsOurPidNamespace, ProcessWatch, type PidNamespace, type ProcessIdentity } from "../lib/proc/identity.ts";
import { writeStderr } from "./stderr.ts";

/** The process a command traces: its host PID, its PID at every namespace level, its identity. */
export class TargetProcess {
  readonly nspid: number[];
  readonly watch: ProcessWatch;

  constructor(
    readonly identity: ProcessIdentity,
    readonly container?: ContainerPid & { name: string },
  ) {
    this.nspid = nsPids(identity.pid);
    this.watch = new ProcessWatch(identity);
  }

  get pid(): number {
    return this.identity.pid;
  }

  /** "pid 6575 (container pid 1)"; nested namespaces: "pid 6575 (container pids 2 > 1)". */
  get label(): string {
    return `pid ${this.pid}${nsPidNote(this.nspid)}`;
  }

  /**
   * The PID for the kernel's own filter (uprobe_multi, perf_event_open), which reads PIDs in
   * probe's PID namespace: undefined when /proc shows another namespace's PIDs (probe in a
   * container with the host's /proc mounted). The BPF programs' tgid filter, on host PIDs, stays.
   */
  get kernelPid(): number | undefined {
    return procIsOurPidNamespace() ? this.pid : undefined;
  }

  /** Throws unless the PID still names the process identified at the start. */
  confirm(doing = "while attaching"): void {
    assertSameProcess(this.identity, doing);
  }

  close(): void {
    this.watch.close();
  }
}

/** " (container pid 1)" for a PID seen differently inside namespaces; "" on the host. */
export function nsPidNote(nspid: number[]): string {
  if (nspid.length < 2) return "";
  if (nspid.length === 2) return ` (container pid ${nspid[1]})`;
  // Nested PID namespaces: the PID at each level below the host, outermost first.
  return ` (container pids ${nspid.slice(1).join(" > ")})`;
}

/** The PIDs of `pid` at each namespace level, cached: a process that has exited keeps its last answer. */
export class NsPidCache {
  private readonly known = new Map<number, number[]>();

  /** Starts from chains already read (the target's, read before attach: it may exit before its
   * last events are printed, and /proc then has nothing to say). */
  constructor(known: [pid: number, chain: number[]][] = []) {
    for (const [pid, chain] of known) this.known.set(pid, chain);
  }

  /** Records a chain seen by the programs themselves (a process that exits at once has no /proc left). */
  set(pid: number, chain: number[]): void {
    this.known.set(pid, chain);
  }

  /** `inner`: the PID in its innermost namespace as a program saw it (0: unknown), for a process already gone. */
  get(pid: number, inner = 0): number[] {
    let v = this.known.get(pid);
    if (!v) {
      try {
        v = nsPids(pid);
      } catch {
        // Exited before we looked: what the program saw, else only the host PID.
        v = inner && inner !== pid ? [pid, inner] : [pid];
      }
      if (this.known.size > 65536) this.known.clear();
      this.known.set(pid, v);
    }
    return v;
  }
}

const CONTAINER_POLL_MS = 1000;

/**
 * The process given by --pid or --container (undefined for neither). With --wait, a container
 * that is not running yet is waited for (until Ctrl-C).
 */
export async function targetProcess(o: { pid?: unknown; container?: unknown; wait?: boolean }): Promise<TargetProcess | undefined> {
  if (o.pid !== undefined && o.container !== undefined) throw new UsageError("--pid and --container both name the process: give one");
  if (o.container !== undefined) {
    if (typeof o.container !== "string" || !o.container.trim()) throw new UsageError(`--container takes a container name or id, not '${String(o.container)}'`);
    const name = o.container;
    let c: ContainerPid;
    let said = false;
    for (;;) {
      try {
        c = containerPid(name);
        break;
      } catch (e) {
        if (!(e instanceof ContainerError) || !o.wait || e.attempts.length === 0) throw withHint(e, "or give its host PID with --pid");
        if (!said) writeStderr(pc.dim(`probe: waiting for container ${name} to run... (Ctrl-C to stop)\n`));
        said = true;
        await Bun.sleep(CONTAINER_POLL_MS);
      }
    }
    return new TargetProcess(processIdentity(c.pid), { ...c, name });
  }
  const pid = parsePid(o.pid);
  if (pid === undefined) return undefined;
  if (!processExists(pid)) throw new ProbeError(`pid ${pid} does not exist`, "check the process id with 'ps' or 'pgrep'");
  return new TargetProcess(processIdentity(pid));
}

function withHint(e: unknown, extra: string): unknown {
  if (e instanceof ContainerError && e.attempts.length === 0) return new ProbeError(e.message, "give the container's host PID with --pid");
  if (e instanceof ContainerError) return new ProbeError(e.message, `${e.hint ?? ""} ${extra}`.trim());
  return e;
}

/** What the programs' process filter (bpf/filter.h) is set to. */
export interface FilterSpec {
  /** One process, by host tgid. */
  tgid?: number;
  /** A set of processes (seeded; with followForks, their children join). */
  tgids?: number[];
  followForks?: boolean;
  /** Processes that join the set at their next exec (a command probe starts). */
  pending?: number[];
  /** Every process of these PID namespaces (containers). */
  pidns?: PidNamespace[];
}

/** Which processes a tracing command counts, from --pid / --container / --children / --any-process. */
export interface ProcessFilter {
  /** The process that says which file to probe (a container's main process for --container). */
  proc?: TargetProcess;
  /** One process only: its host PID (the programs' tgid filter); undefined for a container or every process. */
  pid?: number;
  /** For the kernel's own filter on the link (see TargetProcess.kernelPid). */
  kernelPid?: number;
  /** For the programs. */
  bpf: FilterSpec;
  /** Stop when `proc` exits (its container stopped, or the one process traced is gone). */
  watchExit: boolean;
  /** Every process using the file (--any-process): containers sharing an image layer. */
  anyProcess?: boolean;
  /** ", pid 6575 (container pid 1)" for the "Tracing ..." line; "" without a process. */
  label: string;
}

/**
 * --any-process keeps the process only to find the file: a uprobe is on an inode, so it then
 * fires in every process (every container sharing the image layer) that runs that file.
 * A target that exits ends the run (`probe: pid N exited`, exit 0), --wait or not: --wait only
 * covers the time before attaching, and a PID never comes back (for a restarted container, run
 * probe again with --container NAME --wait).
 */
export async function processFilter(o: { pid?: unknown; container?: unknown; wait?: boolean; anyProcess?: boolean; children?: boolean }): Promise<ProcessFilter> {
  const proc = await targetProcess(o);
  if (!proc) {
    if (o.anyProcess) throw new UsageError("--any-process goes with --pid or --container (the process that says which file)");
    if (o.children) throw new UsageError("--children goes with --pid (the process whose descendants to trace)");
    return { bpf: {}, watchExit: false, label: "" };
  }
  if (o.anyProcess) return { proc, bpf: {}, watchExit: false, anyProcess: true, label: `, ${proc.label} and every process using that file` };
  if (proc.container) {
    if (o.children) throw new UsageError("--children goes with --pid: a container is all of its processes already");
    const ns = pidNamespace(proc.pid);
    // A container on the host itself (no PID namespace of its own) is its main process only.
    if (ns.level === 0) return { proc, pid: proc.pid, kernelPid: proc.kernelPid, bpf: { tgid: proc.pid }, watchExit: true, label: `, ${proc.label}` };
    return { proc, bpf: { pidns: [ns] }, watchExit: true, label: `, ${proc.label} and every other process of container ${proc.container.name}` };
  }
  if (o.children) return { proc, bpf: { tgids: [proc.pid], followForks: true }, watchExit: true, label: `, ${proc.label} and its descendants` };
  return { proc, pid: proc.pid, kernelPid: proc.kernelPid, bpf: { tgid: proc.pid }, watchExit: true, label: `, ${proc.label}` };
}
