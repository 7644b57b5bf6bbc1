// Validation of the options every tracing command shares.
import { existsSync } from "node:fs";
import { UsageError, ProbeError } from "./errors.ts";
import { missingTracingCaps } from "../lib/caps.ts";
import type { AttachMode } from "../lib/uprobe.ts";

export function parsePid(v: unknown): number | undefined {
  if (v === undefined || v === false) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--pid takes a process id, not '${v}'`);
  if (!existsSync(`/proc/${n}`)) throw new ProbeError(`pid ${n} does not exist`, "check the process id with 'ps' or 'pgrep'");
  return n;
}

export function parseSeconds(name: string, v: unknown, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} takes a number of seconds${min ? ` >= ${min}` : ""}, not '${v}'`);
  return n;
}

export function parseAttachMode(v: unknown): AttachMode | undefined {
  if (v === undefined) return undefined;
  if (v === "multi" || v === "perf") return v;
  throw new UsageError(`--attach-mode is 'multi' or 'perf', not '${v}'`);
}

/** Refuses early, before anything is loaded, when the process lacks what tracing needs. */
export function requireTracingCaps(): void {
  const missing = missingTracingCaps();
  if (missing.length) {
    throw new ProbeError(`probe needs root, or ${missing.join(" and ")} (missing from this process)`, "run it with sudo");
  }
}

/** What every tracing command reads from its options, checked before anything is opened. */
export function parseTracingOptions(o: { duration?: unknown; interval?: unknown; attachMode?: unknown }): {
  durationSec: number;
  intervalSec: number;
  requestedMode: AttachMode | undefined;
} {
  return {
    durationSec: parseSeconds("duration", o.duration ?? 0),
    intervalSec: parseSeconds("interval", o.interval ?? 1, 0.01),
    requestedMode: parseAttachMode(o.attachMode),
  };
}
