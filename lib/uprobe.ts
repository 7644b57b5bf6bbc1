// Attaching a loaded program to offsets in a file, as entry or return probes.
// One uprobe_multi link per (file, entry|return) where the kernel has it; perf-event uprobes
// (one per offset) otherwise. Either way the result is a UprobeLink that closes what it made.
import { statSync } from "node:fs";
import { closeFd, OsError } from "./ffi/libc.ts";
import { ProbeError } from "./errors.ts";
import { kernelHasUprobeMulti, linkCreatePerfEvent, linkCreateUprobeMulti } from "./kernel/bpf.ts";
import { openUprobeEvent } from "./kernel/perf-event.ts";
import { LinkSet } from "./link.ts";

export type AttachMode = "multi" | "perf";

export interface ProbePoint {
  offset: number;
  /** Read by the program with bpf_get_attach_cookie(): which function (or site) this is. */
  cookie: bigint;
  /** USDT semaphore: file offset of the reference counter the kernel raises while attached. */
  refCtrOffset?: number;
}

export interface AttachOptions {
  retprobe: boolean;
  /** PID (in our namespace) to restrict the probe to; programs filter by tgid too. */
  pid?: number;
  mode: AttachMode;
  /** The name the user knows the file by, for messages (the kernel may get /proc/self/fd/N). */
  displayPath?: string;
}

/** uprobe_multi (Linux 6.6+) where the kernel has it, else perf-event uprobes. */
export function bestAttachMode(): AttachMode {
  return kernelHasUprobeMulti() ? "multi" : "perf";
}

/** Uprobes attached to one file: one uprobe_multi link, or one perf-event link per offset. */
export class UprobeLink extends LinkSet {
  constructor(
    readonly mode: AttachMode,
    readonly retprobe: boolean,
    readonly path: string,
    readonly points: ProbePoint[],
    linkFds: number[],
    perfFds: number[],
  ) {
    super(linkFds, perfFds);
  }
}

/** The kernel refused the attachment; `errno` says why (EINVAL, ENOTSUPP, ESRCH...). */
export class AttachError extends ProbeError {
  constructor(
    message: string,
    readonly errno: number,
    readonly points: ProbePoint[],
    /** The point the kernel refuses on its own, when one of several is the cause. */
    readonly culprit?: ProbePoint,
  ) {
    super(message);
  }

  /** The culprit as the user knows it (set by whoever knows the names: lib/plan.ts nameCulprit). */
  culpritName?: string;
  /** Where the next instruction starts, when the kernel refuses the culprit's instruction. */
  nextInstruction?: string;
  /** The file as the user knows it. */
  display?: string;
  /** The probed file's identity (to find who else probes it). */
  file?: { dev: number; ino: number };
}

export function attachUprobe(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  if (points.length === 0) throw new ProbeError(`nothing to attach in ${opts.displayPath ?? path}`);
  const what = `${opts.retprobe ? "uretprobe" : "uprobe"} on ${opts.displayPath ?? path}`;
  try {
    return attachAll(progFd, path, points, opts);
  } catch (e) {
    if (e instanceof OsError) {
      // One uprobe_multi link for many offsets fails as a whole: find the one the kernel refuses.
      const culprit = points.length === 1 ? points[0] : findCulprit(progFd, path, points, opts);
      const at = culprit ? `0x${culprit.offset.toString(16)}` : `${points.length} offsets`;
      // The kernel was given /proc/self/fd/N: messages name the file as the user knows it.
      const why = e.message.replace(/^[^:]*: /, "").replaceAll(path, opts.displayPath ?? path);
      const err = new AttachError(`cannot attach ${what} at ${at}: ${why}`, e.errno, points, culprit);
      try {
        const st = statSync(path);
        err.file = { dev: st.dev, ino: st.ino };
      } catch {
        // the file is gone: nobody else's probes to look for
      }
      throw err;
    }
    throw e;
  }
}

function attachAll(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  if (opts.mode === "multi") {
    const fd = linkCreateUprobeMulti({
      progFd,
      path,
      offsets: points.map((p) => p.offset),
      cookies: points.map((p) => p.cookie),
      refCtrOffsets: points.some((p) => p.refCtrOffset) ? points.map((p) => p.refCtrOffset ?? 0) : undefined,
      retprobe: opts.retprobe,
      pid: opts.pid,
    });
    return new UprobeLink("multi", opts.retprobe, path, points, [fd], []);
  }
  return attachPerf(progFd, path, points, opts);
}

function attachable(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): boolean {
  try {
    attachAll(progFd, path, points, opts).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The first point the kernel refuses on its own, by halving (a thousand offsets take ten attempts,
 * not a thousand: each detach waits for an RCU grace period); undefined when each one alone attaches.
 */
function findCulprit(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): ProbePoint | undefined {
  let lo = 0;
  let hi = points.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (attachable(progFd, path, points.slice(lo, mid), opts)) lo = mid;
    else hi = mid;
  }
  return attachable(progFd, path, [points[lo]!], opts) ? undefined : points[lo];
}

function attachPerf(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  const perfFds: number[] = [];
  const linkFds: number[] = [];
  try {
    for (const p of points) {
      const fd = openUprobeEvent(path, p.offset, { retprobe: opts.retprobe, pid: opts.pid, refCtrOffset: p.refCtrOffset });
      perfFds.push(fd);
      linkFds.push(linkCreatePerfEvent(progFd, fd, p.cookie));
    }
  } catch (e) {
    for (const fd of linkFds) closeFd(fd);
    for (const fd of perfFds) closeFd(fd);
    throw e;
  }
  return new UprobeLink("perf", opts.retprobe, path, points, linkFds, perfFds);
}
