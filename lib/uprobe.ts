// Attaching a loaded program to offsets in a file, as entry or return probes.
// One uprobe_multi link per (file, entry|return) where the kernel has it; perf-event uprobes
// (one per offset) otherwise. Either way the result is a UprobeLink that closes what it made.
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
}

export function attachUprobe(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  if (points.length === 0) throw new ProbeError(`nothing to attach in ${opts.displayPath ?? path}`);
  const what = `${opts.retprobe ? "uretprobe" : "uprobe"} on ${opts.displayPath ?? path}`;
  try {
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
  } catch (e) {
    if (e instanceof OsError) {
      // One uprobe_multi link for many offsets fails as a whole: find the one the kernel refuses.
      const culprit = points.length === 1 ? points[0] : refused(progFd, path, points, opts);
      const at = culprit ? `0x${culprit.offset.toString(16)}` : `${points.length} offsets`;
      throw new AttachError(`cannot attach ${what} at ${at}: ${e.message.replace(/^[^:]*: /, "")}`, e.errno, points, culprit);
    }
    throw e;
  }
}

function attachable(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): boolean {
  try {
    attachUprobe(progFd, path, points, opts).close();
    return true;
  } catch {
    return false;
  }
}

/** A point the kernel refuses among `points` (which it refuses together), by halving: ~log2(n) tries. */
function refused(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): ProbePoint | undefined {
  let set = points;
  while (set.length > 1) {
    const half = set.slice(0, set.length >> 1);
    set = attachable(progFd, path, half, opts) ? set.slice(half.length) : half;
  }
  return set.length === 1 && !attachable(progFd, path, set, opts) ? set[0] : undefined;
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
