// Attaching a loaded program to offsets in a file, as entry or return probes.
// One uprobe_multi link per (file, entry|return) where the kernel has it; perf-event uprobes
// (one per offset) otherwise. Either way the result is a UprobeLink that closes what it made.
import { readFileSync } from "node:fs";
import { closeFd, cstr, ptr, syscallErr, SYS, OsError } from "./ffi/libc.ts";
import { kernelHasUprobeMulti, linkCreatePerfEvent, linkCreateUprobeMulti } from "./bpf-syscall.ts";
import { LinkSet } from "./link.ts";

export type AttachMode = "multi" | "perf";

export interface ProbePoint {
  offset: number;
  /** Read by the program with bpf_get_attach_cookie(): which function this is. */
  cookie: bigint;
}

export interface AttachOptions {
  retprobe: boolean;
  /** Host PID to restrict the probe to (kernel-side filter; programs filter by tgid too). */
  pid?: number;
  mode?: AttachMode;
  /** The name the user knows the file by, for messages (the kernel may get /proc/self/fd/N). */
  displayPath?: string;
}

/** The mode to load programs for: uprobe_multi when the kernel has it, unless PROBE_ATTACH says otherwise. */
export function defaultAttachMode(): AttachMode {
  const forced = process.env.PROBE_ATTACH;
  if (forced === "perf" || forced === "multi") return forced;
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

export class AttachError extends Error {}

export function attachUprobe(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  if (points.length === 0) throw new AttachError(`nothing to attach in ${opts.displayPath ?? path}`);
  const mode = opts.mode ?? defaultAttachMode();
  const what = `${opts.retprobe ? "uretprobe" : "uprobe"} on ${opts.displayPath ?? path}`;
  try {
    if (mode === "multi") {
      const fd = linkCreateUprobeMulti({
        progFd,
        path,
        offsets: points.map((p) => p.offset),
        cookies: points.map((p) => p.cookie),
        retprobe: opts.retprobe,
        pid: opts.pid,
      });
      return new UprobeLink(mode, opts.retprobe, path, points, [fd], []);
    }
    return attachPerf(progFd, path, points, opts);
  } catch (e) {
    if (e instanceof OsError) {
      const at = points.map((p) => `0x${p.offset.toString(16)}`).join(",");
      throw new AttachError(`cannot attach ${what} at ${at}: ${e.message}`);
    }
    throw e;
  }
}

function attachPerf(progFd: number, path: string, points: ProbePoint[], opts: AttachOptions): UprobeLink {
  const pmu = uprobePmu();
  const pathBuf = cstr(path);
  const perfFds: number[] = [];
  const linkFds: number[] = [];
  try {
    for (const p of points) {
      const attr = new Uint8Array(128);
      const v = new DataView(attr.buffer);
      v.setUint32(0, pmu.type, true); // type
      v.setUint32(4, 128, true); // size: >= 72 or config2 (the offset) is ignored
      v.setBigUint64(8, opts.retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n, true); // config
      v.setBigUint64(56, BigInt(ptr(pathBuf)), true); // config1: path
      v.setBigUint64(64, BigInt(p.offset), true); // config2: file offset
      // One process: (pid, cpu -1); every process: (-1, cpu 0), as the kernel requires.
      const pid = opts.pid ?? -1;
      const cpu = opts.pid ? -1 : 0;
      const PERF_FLAG_FD_CLOEXEC = 8;
      const fd = syscallErr(SYS.perf_event_open, ptr(attr), BigInt.asUintN(64, BigInt(pid)), BigInt.asUintN(64, BigInt(cpu)), BigInt.asUintN(64, -1n), PERF_FLAG_FD_CLOEXEC);
      if (fd < 0) throw new OsError("perf_event_open(uprobe)", -fd, `offset 0x${p.offset.toString(16)}`);
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

let pmuCache: { type: number; retprobeBit: number } | undefined;
export function uprobePmu(): { type: number; retprobeBit: number } {
  if (pmuCache) return pmuCache;
  const base = "/sys/bus/event_source/devices/uprobe";
  let type: number, bit: number;
  try {
    type = Number(readFileSync(`${base}/type`, "utf8").trim());
    const fmt = readFileSync(`${base}/format/retprobe`, "utf8").trim(); // "config:0"
    bit = Number(/config:(\d+)/.exec(fmt)?.[1] ?? 0);
  } catch {
    throw new AttachError(`this kernel has no uprobe PMU (${base}); it needs CONFIG_UPROBE_EVENTS`);
  }
  pmuCache = { type, retprobeBit: bit };
  return pmuCache;
}
