// The tracepoints a kernel offers, under a tracefs mount the caller names (`/sys/kernel/tracing`,
// or `/sys/kernel/debug/tracing` on old systems): listing them, selecting them with a glob
// (`syscalls:*open*`), suggesting names for a typo, and reading one's record format.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ProbeError } from "../errors.ts";
import { closestNames } from "../closest.ts";
import { parseTraceFormat, type TraceFormat } from "./format.ts";

export class TracefsError extends ProbeError {}

/** A tracepoint as `category:name` (`sched:sched_process_exec`). */
export interface EventId {
  category: string;
  name: string;
}

/** Bounds on what a tracefs listing may hold: this kernel has ~2,300 events. */
const MAX_EVENTS = 200_000;
const MAX_FILE = 16 << 20;

export function eventKey(e: EventId): string {
  return `${e.category}:${e.name}`;
}

/** Splits `category:name`; throws on anything else (a glob is not an event name). */
export function parseEventId(spec: string): EventId {
  const c = spec.indexOf(":");
  if (c <= 0 || c === spec.length - 1 || spec.indexOf(":", c + 1) >= 0) {
    throw new TracefsError(`tracepoint '${clip(spec)}' is not category:name`, "for example sched:sched_process_exec");
  }
  const e = { category: spec.slice(0, c), name: spec.slice(c + 1) };
  checkComponent(e.category, spec);
  checkComponent(e.name, spec);
  return e;
}

/** Names become path components under events/: refuse anything that could leave that directory. */
function checkComponent(part: string, spec: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(part)) {
    throw new TracefsError(`tracepoint '${clip(spec)}' has an invalid name part '${clip(part)}'`);
  }
}

/**
 * Every event under `root`, sorted by category then name: from `available_events`, or by walking
 * `events/` when that file cannot be read.
 */
export function listEvents(root: string): EventId[] {
  let text: string | undefined;
  try {
    text = readBounded(join(root, "available_events"));
  } catch {
    text = undefined;
  }
  const out = text !== undefined ? parseAvailableEvents(text) : walkEvents(root);
  return out.sort((a, b) => cmp(a.category, b.category) || cmp(a.name, b.name));
}

/** `available_events` lines are `category:name`. */
export function parseAvailableEvents(text: string): EventId[] {
  const out: EventId[] = [];
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l) continue;
    const c = l.indexOf(":");
    if (c <= 0) continue;
    out.push({ category: l.slice(0, c), name: l.slice(c + 1) });
    if (out.length > MAX_EVENTS) throw new TracefsError(`available_events lists more than ${MAX_EVENTS} events`);
  }
  return out;
}

/**
 * Every event directory under `root/events` (unsorted). Unlike available_events this includes
 * the ftrace category's internal events (function, print...), which cannot be enabled.
 */
export function walkEvents(root: string): EventId[] {
  const dir = join(root, "events");
  let cats: string[];
  try {
    cats = readdirSync(dir);
  } catch (e) {
    throw tracefsReadError(dir, e);
  }
  const out: EventId[] = [];
  for (const category of cats) {
    const cdir = join(dir, category);
    if (!isDir(cdir)) continue; // enable, filter, header_page, header_event
    let names: string[];
    try {
      names = readdirSync(cdir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!isDir(join(cdir, name))) continue;
      out.push({ category, name });
      if (out.length > MAX_EVENTS) throw new TracefsError(`${dir} holds more than ${MAX_EVENTS} events`);
    }
  }
  return out;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A matcher for shell-style globs: `*` (any run of characters), `?` (one), `[abc]`, `[a-z]`,
 * `[!abc]`. With a colon, category and name are matched separately (`*` never spans the colon);
 * without one, the pattern is matched against the name in every category.
 */
export function eventMatcher(pattern: string): (e: EventId) => boolean {
  if (pattern.length > 512) throw new TracefsError(`tracepoint pattern is too long (${pattern.length} characters)`);
  const c = pattern.indexOf(":");
  if (c < 0) {
    const name = globRegExp(pattern);
    return (e) => name.test(e.name);
  }
  const cat = globRegExp(pattern.slice(0, c));
  const name = globRegExp(pattern.slice(c + 1));
  return (e) => cat.test(e.category) && name.test(e.name);
}

/** True when `pattern` has glob characters (so it selects events rather than naming one). */
export function isEventGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** The events `pattern` selects, in the order given. */
export function matchEvents(pattern: string, events: readonly EventId[]): EventId[] {
  const m = eventMatcher(pattern);
  return events.filter(m);
}

/** A glob as an anchored RegExp. An unterminated `[` is a literal, as in the shell. */
export function globRegExp(glob: string): RegExp {
  let re = "^";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else if (ch === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body[0] === "!" || body[0] === "^";
      if (negate) body = body.slice(1);
      re += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = close;
    } else re += ch.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`${re}$`);
}

/** Up to three `category:name` closest to `spec`, for an unknown tracepoint. */
export function closestEvents(spec: string, events: readonly EventId[], max = 3): string[] {
  return closestNames(spec, events.map(eventKey), max);
}

/** `root/events/CATEGORY/NAME/format`, checked to stay inside `root/events`. */
export function eventFormatPath(root: string, e: EventId): string {
  checkComponent(e.category, eventKey(e));
  checkComponent(e.name, eventKey(e));
  return join(root, "events", e.category, e.name, "format");
}

/**
 * Reads and parses one event's format. An event that does not exist is a TracefsError whose hint
 * names the closest existing ones.
 */
export function readEventFormat(root: string, e: EventId): TraceFormat {
  const path = eventFormatPath(root, e);
  let text: string;
  try {
    text = readBounded(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      let close: string[] = [];
      try {
        close = closestEvents(eventKey(e), listEvents(root));
      } catch {
        // No listing either: say what is missing without suggestions.
      }
      throw new TracefsError(
        `tracepoint ${eventKey(e)} does not exist in ${root}`,
        close.length ? `did you mean ${close.join(", ")}?` : undefined,
      );
    }
    throw tracefsReadError(path, err);
  }
  return parseTraceFormat(text, path);
}

function readBounded(path: string): string {
  const buf = readFileSync(path);
  if (buf.length > MAX_FILE) throw new TracefsError(`${path} is larger than ${MAX_FILE} bytes`);
  return buf.toString("latin1");
}

function tracefsReadError(path: string, err: unknown): TracefsError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") {
    return new TracefsError(`cannot read ${path}: permission denied`, "tracefs is readable by root only", { cause: err });
  }
  if (code === "ENOENT") return new TracefsError(`${path} does not exist (is tracefs mounted there?)`, undefined, { cause: err });
  return new TracefsError(`cannot read ${path}: ${(err as Error).message}`, undefined, { cause: err });
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function clip(s: string): string {
  const t = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, "?");
}
