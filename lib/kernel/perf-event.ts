// perf_event_open(2) for the kinds of event probe opens: uprobes (the fallback where
// uprobe_multi is missing, and --attach-mode perf) and tracepoints, which BPF is attached to; and
// software events whose rings are read (lib/kernel/perf-ring.ts).
import { readFileSync } from "node:fs";
import { ptr, syscallErr, SYS, OsError, cstr } from "../ffi/libc.ts";
import { ProbeError } from "../errors.ts";
import { PERF_EVENT_ATTR as A, PERF_FLAG_FD_CLOEXEC, PERF_TYPE_TRACEPOINT } from "./abi.ts";

export interface PerfEventSpec {
  type: number;
  config: bigint;
  config1?: bigint;
  config2?: bigint;
  sampleType?: bigint;
  /** The attr's one-bit fields: 1n << BigInt(PERF_ATTR_FLAG.x) for each one set. */
  flags?: bigint;
  wakeupEvents?: number;
  /** One process (its PID in our namespace), or every process (-1). */
  pid: number;
  /** Default: every CPU for one process (-1), CPU 0 for every process (which BPF events take as all). */
  cpu?: number;
}

/**
 * Opens a perf event and returns its fd. One process: (pid, cpu -1); every process: (-1, cpu 0),
 * which for uprobes and tracepoints with BPF covers every CPU. `keep` holds buffers config1/2
 * point at until the call returns.
 */
export function perfEventOpen(spec: PerfEventSpec, what: string, keep?: unknown): number {
  const attr = new Uint8Array(A.size);
  const v = new DataView(attr.buffer);
  v.setUint32(A.type, spec.type, true);
  v.setUint32(A.attr_size, A.size, true);
  v.setBigUint64(A.config, spec.config, true);
  v.setBigUint64(A.config1, spec.config1 ?? 0n, true);
  v.setBigUint64(A.config2, spec.config2 ?? 0n, true);
  v.setBigUint64(A.sample_type, spec.sampleType ?? 0n, true);
  v.setBigUint64(A.flags, spec.flags ?? 0n, true);
  v.setUint32(A.wakeup_events, spec.wakeupEvents ?? 0, true);
  const cpu = spec.cpu ?? (spec.pid > 0 ? -1 : 0);
  const fd = syscallErr(SYS.perf_event_open, ptr(attr), BigInt.asUintN(64, BigInt(spec.pid)), BigInt.asUintN(64, BigInt(cpu)), BigInt.asUintN(64, -1n), PERF_FLAG_FD_CLOEXEC);
  void keep;
  if (fd < 0) throw new OsError(`perf_event_open(${what})`, -fd);
  return fd;
}

let pmuCache: { type: number; retprobeBit: number } | undefined;
/** The kernel's uprobe PMU: its perf type and which config bit makes a uretprobe. */
export function uprobePmu(): { type: number; retprobeBit: number } {
  if (pmuCache) return pmuCache;
  const base = "/sys/bus/event_source/devices/uprobe";
  try {
    const type = Number(readFileSync(`${base}/type`, "utf8").trim());
    const fmt = readFileSync(`${base}/format/retprobe`, "utf8").trim(); // "config:0"
    pmuCache = { type, retprobeBit: Number(/config:(\d+)/.exec(fmt)?.[1] ?? 0) };
    return pmuCache;
  } catch {
    throw new ProbeError(`this kernel has no uprobe PMU (${base})`, "it needs CONFIG_UPROBE_EVENTS");
  }
}

/**
 * A uprobe perf event at `offset` of the file `path` (config1 = path, config2 = offset; the
 * USDT semaphore's file offset goes in config's upper 32 bits).
 */
export function openUprobeEvent(path: string, offset: number, o: { retprobe: boolean; pid?: number; refCtrOffset?: number }): number {
  const pmu = uprobePmu();
  const pathBuf = cstr(path);
  let config = o.retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n;
  if (o.refCtrOffset) config |= BigInt(o.refCtrOffset) << 32n;
  return perfEventOpen({ type: pmu.type, config, config1: BigInt(ptr(pathBuf)), config2: BigInt(offset), pid: o.pid ?? -1 }, `uprobe at 0x${offset.toString(16)}`, pathBuf);
}

/** A tracepoint perf event by its tracefs id, for every process. */
export function openTracepointEvent(id: number, name: string): number {
  return perfEventOpen({ type: PERF_TYPE_TRACEPOINT, config: BigInt(id), pid: -1 }, `tracepoint ${name}`);
}
