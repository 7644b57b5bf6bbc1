// The options several commands share, declared once, and the validation of every value a user
// types: numbers finite, in range and not empty, said back as typed.
import type { Command } from "cac";
import { UsageError } from "./errors.ts";
import type { AttachMode } from "../lib/uprobe.ts";

/** Which process(es): --pid, --container and their companions. */
export function processOptions(cmd: Command, what: string): Command {
  return cmd
    .option("-p, --pid <pid>", `Only this process (host PID); ${what} is looked up in its view (its mappings, its root)`)
    .option("-c, --container <name>", "Only the processes of this container (all of them: docker, podman, containerd); files as its main process sees them")
    .option("--children", "With -p: the process's descendants too, those started later included")
    .option("--any-process", "With -p/-c: every process using the same file (all containers sharing the image layer)")
    .option("--wait", `Wait (until Ctrl-C) for the process to map ${what}, or for the container to run`);
}

/** Many containers, chosen by what Kubernetes (or the engine) says about them, followed live. */
export function fleetOptions(cmd: Command): Command {
  return cmd
    .option("--selector <labels>", "Containers of pods with these labels (k=v,k!=v,k in (a,b),k,!k), now and as they start")
    .option("--pod <ns/name>", "The containers of this pod")
    .option("--namespace <ns>", "Containers of pods in this Kubernetes namespace")
    .option("--container-name <name>", "Containers of this name (Kubernetes' container name, else the engine's)")
    .option("--all-containers", "Every container the runtimes report");
}

/** Whether any of fleetOptions' selections was given. */
export function fleetRequested(o: { selector?: unknown; pod?: unknown; namespace?: unknown; containerName?: unknown; allContainers?: boolean }): boolean {
  return o.selector !== undefined || o.pod !== undefined || o.namespace !== undefined || o.containerName !== undefined || !!o.allContainers;
}

/** What Prometheus scrapes. */
export function metricsOptions(cmd: Command): Command {
  return cmd
    .option("--metrics <addr>", "Serve Prometheus/OpenMetrics at http://ADDR/metrics and /healthz (:9464, 127.0.0.1:9464); no tables then, unless --json")
    .option("--metrics-max-series <n>", "Series served at most; label sets beyond are folded into one overflow series (default 10000)");
}

/** How long, how often, in what form. */
export function runOptions(cmd: Command, interval = "Seconds between reports"): Command {
  return cmd
    .option("-d, --duration <seconds>", "Stop after this many seconds (0: until Ctrl-C)")
    .option("-i, --interval <seconds>", interval)
    .option("--json", "One JSON object per line (errors too, on stderr)");
}

export function attachModeOption(cmd: Command): Command {
  return cmd.option("--attach-mode <mode>", "multi (uprobe_multi links) or perf (perf-event uprobes)");
}

/**
 * Option values exactly as typed, by long option name (set by normalizeArgv). cac's parser turns
 * what looks like a number into one before we see it: ' ' becomes 0 (which would mean "until
 * Ctrl-C" for -d) and '0x10' becomes 16; validation reads the text instead.
 */
const typedValues = new Map<string, string>();

function raw(v: unknown, name?: string): string {
  const typed = name === undefined ? undefined : typedValues.get(name);
  if (typed !== undefined) return typed;
  return Array.isArray(v) ? String(v.at(-1)) : String(v);
}

/** A decimal number as people write seconds: 5, 0.5, .5, 1e3 (not hex, not 'Infinity'). */
const DECIMAL = /^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A number of seconds: decimal, finite, >= min, <= max; '' and text are refused as typed. */
export function parseSeconds(name: string, v: unknown, dflt: number, min = 0, max = 1e12): number {
  if (v === undefined) return dflt;
  const text = raw(v, name).trim();
  const n = Number(text);
  if (!DECIMAL.test(text) || typeof v === "boolean" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} takes a number of seconds from ${min} to ${max}, not '${raw(v, name)}'`);
  }
  return n;
}

/** A process id: a whole number > 0, as typed. */
export function parsePid(v: unknown): number | undefined {
  if (v === undefined || v === false) return undefined;
  const text = raw(v, "pid").trim();
  const n = Number(text);
  if (text === "" || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0 || n > 4194304) throw new UsageError(`--pid takes a process id, not '${raw(v, "pid")}'`);
  return n;
}

/** A whole number in [min, max], in decimal. */
export function parseCount(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const text = raw(v, name).trim();
  const n = Number(text);
  if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, not '${raw(v, name)}'`);
  return n;
}

/** A size like 4096, 64K, 1M ('0' allowed where it means no limit). */
export function parseBytes(name: string, v: unknown, dflt: number, max = 1 << 30): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)([kKmMgG]?)(i?[bB])?$/.exec(raw(v, name).trim());
  const n = m ? Number(m[1]) * ({ "": 1, k: 1024, m: 1 << 20, g: 1 << 30 } as Record<string, number>)[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new UsageError(`--${name} takes a size in bytes (like 4096, 64K, 1M; at most ${max}), not '${raw(v, name)}'`);
  return n;
}

/** `--buffer-size`: a ring buffer's bytes, a power of two from 4K to 1G (the kernel's rule). */
export function parseRingSize(v: unknown, dflt: number): number {
  const n = parseBytes("buffer-size", v, dflt);
  if (n < 4096 || n & (n - 1)) throw new UsageError(`--buffer-size takes a power of two from 4K to 1G, not '${raw(v, "buffer-size")}'`);
  return n;
}

export function parseAttachMode(v: unknown): AttachMode | undefined {
  if (v === undefined) return undefined;
  if (v === "multi" || v === "perf") return v;
  throw new UsageError(`--attach-mode is 'multi' or 'perf', not '${raw(v)}'`);
}

/** Repeatable options arrive as a string or a list. */
export function list(v: unknown): string[] {
  if (v === undefined || v === false) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

interface FlagSpec {
  flags: string[];
  takesValue: boolean;
}

function flagSpecs(cmd: { options: { rawName: string }[] }): FlagSpec[] {
  return cmd.options.map((o) => ({
    flags: o.rawName.replace(/[<[].*$/, "").split(",").map((f) => f.trim()).filter(Boolean),
    takesValue: /[<[]/.test(o.rawName),
  }));
}

/**
 * Checks a command line against a command's options before cac sees it, so that unknown options
 * are named as typed (cac says '--bogusOpt'), and rewrites `-d -1` to `-d=-1` so that a negative
 * number reaches the validation instead of reading as an option.
 */
export function normalizeArgv(argv: string[], cmd: { options: { rawName: string }[] } | undefined, global: { options: { rawName: string }[] }): string[] {
  if (!cmd) return argv;
  const specs = [...flagSpecs(cmd), ...flagSpecs(global)];
  const find = (flag: string) => specs.find((s) => s.flags.includes(flag));
  const out = argv.slice(0, 2);
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) {
      out.push(a);
      continue;
    }
    const name = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    // `--ret=TYPE`: --ret stays a flag (so `--ret libc` never swallows the target), the type rides along.
    if (name === "--ret" && a.includes("=") && find("--ret-type")) {
      out.push("--ret", `--ret-type=${a.slice(a.indexOf("=") + 1)}`);
      continue;
    }
    // Bundled short flags (-rs) are cac's business when each one is known.
    const known = find(name) ?? (/^-[a-zA-Z]{2,}$/.test(name) && [...name.slice(1)].every((c) => find(`-${c}`)) ? { flags: [name], takesValue: false } : undefined);
    if (!known) throw new UsageError(`Unknown option '${name}'`);
    out.push(a);
    if (!known.takesValue) continue;
    const long = known.flags.find((f) => f.startsWith("--"))?.slice(2);
    if (a.includes("=")) {
      if (long) typedValues.set(long, a.slice(a.indexOf("=") + 1));
    } else if (i + 1 < argv.length) {
      const next = argv[i + 1]!;
      if (long) typedValues.set(long, next);
      if (next === "" || /^-\d|^-\.\d/.test(next)) {
        out[out.length - 1] = `${name}=${next}`;
        i++;
      }
    }
  }
  return out;
}
