// Where tracefs is: its mount point, mounted at /sys/kernel/tracing when it is nowhere.
import { existsSync, readFileSync } from "node:fs";
import { mount } from "../ffi/libc.ts";
import { selfMounts } from "../mounts.ts";
import { ProbeError } from "../errors.ts";

let cached: string | undefined;

export function tracefsRoot(onNote?: (m: string) => void): string {
  if (cached) return cached;
  const mounts = selfMounts();
  const tfs = mounts.find((m) => m.fsType === "tracefs");
  if (tfs) return (cached = tfs.target);
  const dbg = mounts.find((m) => m.fsType === "debugfs");
  if (dbg && existsSync(`${dbg.target}/tracing/trace_pipe`)) return (cached = `${dbg.target}/tracing`);
  try {
    mount("tracefs", "/sys/kernel/tracing", "tracefs");
  } catch (e) {
    throw new ProbeError(`tracefs is not mounted and mounting it failed: ${(e as Error).message}`, "mount -t tracefs tracefs /sys/kernel/tracing (needs CAP_SYS_ADMIN)");
  }
  onNote?.("mounted tracefs at /sys/kernel/tracing");
  return (cached = "/sys/kernel/tracing");
}

/** A tracepoint's id (for perf_event_open), or undefined when there is no such event. */
export function tracepointId(root: string, category: string, name: string): number | undefined {
  try {
    return Number(readFileSync(`${root}/events/${category}/${name}/id`, "utf8").trim());
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EACCES" || code === "EPERM") {
      throw new ProbeError(`permission denied reading ${root}/events/${category}/${name}/id`, "reading tracefs needs root (CAP_BPF and CAP_PERFMON are not enough for tracefs files)");
    }
    return undefined;
  }
}
