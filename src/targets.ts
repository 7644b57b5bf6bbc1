// From a target argument (and maybe a process or container) to one open file we can parse and
// probe. With a process, everything is looked up in ITS view: the library it has mapped, its own
// loader cache and directories, paths inside its root; without one, on the host.
import { readlinkSync } from "node:fs";
import { basename } from "node:path";
import { pc } from "./colors.ts";
import { OpenTarget } from "../lib/target.ts";
import { resolveTarget, TargetNotFound } from "../lib/resolve.ts";
import { looksLikeLibrary } from "../lib/libname.ts";
import * as ns from "../lib/namespaces.ts";
import { containerPid, ContainerError, type ContainerPid } from "../lib/containers.ts";
import { openPath, O } from "../lib/ffi/libc.ts";
import { ProbeError, UsageError } from "./errors.ts";
import { parsePid } from "./options.ts";

/** The process a command traces: its host PID, its PID at every namespace level, its identity. */
export class TargetProcess {
  readonly nspid: number[];

  constructor(
    readonly identity: ns.ProcessIdentity,
    readonly container?: ContainerPid & { name: string },
  ) {
    this.nspid = probeErrors(() => ns.nsPids(identity.pid));
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
    return procMatchesOurPidNamespace() ? this.pid : undefined;
  }

  /** Throws ProbeError unless the PID still names the process identified at the start. */
  confirm(doing = "while attaching"): void {
    probeErrors(() => ns.assertSameProcess(this.identity, doing));
  }
}

function procMatchesOurPidNamespace(): boolean {
  try {
    return readlinkSync("/proc/self") === String(process.pid);
  } catch {
    return false;
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

  get(pid: number): number[] {
    let v = this.known.get(pid);
    if (!v) {
      try {
        v = ns.nsPids(pid);
      } catch {
        v = [pid]; // exited before we looked: only the host PID is known
      }
      if (this.known.size > 65536) this.known.clear();
      this.known.set(pid, v);
    }
    return v;
  }
}

/** Library errors carry a hint for users: the one-line `probe: error:` form. */
function toProbeError(e: unknown): unknown {
  if (e instanceof ns.ProcessError || e instanceof ContainerError || e instanceof TargetNotFound) return new ProbeError(e.message, e.hint);
  return e;
}

function probeErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toProbeError(e);
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
    if (typeof o.container !== "string" || !o.container) throw new UsageError("--container takes a container name or id");
    const name = o.container;
    let c: ContainerPid;
    let said = false;
    for (;;) {
      try {
        c = containerPid(name);
        break;
      } catch (e) {
        if (!(e instanceof ContainerError) || !o.wait || e.attempts.length === 0) throw toProbeError(e);
        if (!said) process.stderr.write(pc.dim(`probe: waiting for container ${name} to run... (Ctrl-C to stop)\n`));
        said = true;
        await Bun.sleep(CONTAINER_POLL_MS);
      }
    }
    const found = c;
    return new TargetProcess(probeErrors(() => ns.processIdentity(found.pid)), { ...found, name });
  }
  const pid = parsePid(o.pid);
  if (pid === undefined) return undefined;
  return new TargetProcess(probeErrors(() => ns.processIdentity(pid)));
}

/** Which processes a tracing command counts, from --pid / --container / --any-process. */
export interface ProcessFilter {
  /** The process that says which file to probe (and, unless --any-process, the only one traced). */
  proc?: TargetProcess;
  /** For the BPF programs' tgid filter and watching for exit; undefined: every process. */
  pid?: number;
  /** For the kernel's own filter on the link (see TargetProcess.kernelPid). */
  kernelPid?: number;
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
export async function processFilter(o: { pid?: unknown; container?: unknown; wait?: boolean; anyProcess?: boolean }): Promise<ProcessFilter> {
  const proc = await targetProcess(o);
  if (!proc) {
    if (o.anyProcess) throw new UsageError("--any-process goes with --pid or --container (the process that says which file)");
    return { label: "" };
  }
  if (o.anyProcess) return { proc, label: `, ${proc.label} and every process using that file` };
  return { proc, pid: proc.pid, kernelPid: proc.kernelPid, label: `, ${proc.label}` };
}

/** Opens what `target` names: in the process's view with `proc`, else on the host. */
export async function openTargetFor(target: string, o: { proc?: TargetProcess; wait?: boolean }): Promise<OpenTarget> {
  if (o.proc) return openInProcess(target, o.proc, !!o.wait);
  return openHostTarget(target);
}

/** `target` on the host: resolved like the dynamic linker (or PATH) would, opened once. */
export function openHostTarget(target: string): OpenTarget {
  let r;
  try {
    r = resolveTarget(target);
  } catch (e) {
    if (e instanceof TargetNotFound) throw new ProbeError(e.message, e.hint);
    throw e;
  }
  return openHostFile(r.path, r.display);
}

/** A host file, keyed by the inode the kernel probes (the layer file when on overlayfs). */
export function openHostFile(path: string, display = path): OpenTarget {
  let fd: number;
  try {
    fd = openPath(path, O.RDONLY | O.CLOEXEC);
  } catch (e) {
    throw new ProbeError(`${display}: ${(e as Error).message}`);
  }
  return wrap(fd, display, () => ns.inodeKey(ns.realInodeOfFd(fd)));
}

function wrap(fd: number, display: string, key: () => string): OpenTarget {
  try {
    return new OpenTarget(fd, display, key());
  } catch (e) {
    const msg = (e as Error).message;
    throw new ProbeError(msg.includes(display) ? msg : `${display}: ${msg}`);
  }
}

function executablePath(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch {
    return undefined;
  }
}

async function openInProcess(target: string, proc: TargetProcess, wait: boolean): Promise<OpenTarget> {
  const pid = proc.pid;
  if (wait && (target.includes("/") || looksLikeLibrary(target)) && target !== executablePath(pid)) {
    await probeErrorsAsync(async () => {
      if (ns.findMappedLibrary(pid, target)) return;
      process.stderr.write(pc.dim(`probe: waiting for ${proc.label} to map ${target}... (Ctrl-C to stop)\n`));
      await ns.waitForLibrary(pid, target, Number.POSITIVE_INFINITY);
    });
  }
  return openForProcess(target, proc);
}

/**
 * `target` as process `proc` sees it: its executable (by path or bare name: exactly the running
 * inode), the library it has mapped, else its own loader cache and directories, or a path in its root.
 */
export function openForProcess(target: string, proc: TargetProcess): OpenTarget {
  const pid = proc.pid;
  const exe = executablePath(pid);
  const isPath = target.includes("/");
  const opened = probeErrors(() => {
    if (exe && (target === exe || (!isPath && target === basename(exe)))) return ns.openExecutable(pid);
    if (!isPath && !looksLikeLibrary(target)) {
      throw new ProbeError(`${target}: neither the executable of ${proc.label} (${exe ?? "unknown"}) nor a library name`, "give a path as the process sees it, or a library name like 'libssl'");
    }
    return ns.openLibraryInProcess(pid, target);
  });
  return wrap(opened.fd, opened.path, () => ns.inodeKey(opened.realInode));
}

async function probeErrorsAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw toProbeError(e);
  }
}
