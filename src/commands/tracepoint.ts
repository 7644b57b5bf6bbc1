// `probe tracepoint CAT:NAME...`: any kernel tracepoint, its records decoded by the event's tracefs
// format. One precompiled program copies each raw record (and, for syscall entries, the user
// strings their path arguments point to) to the ring buffer; nothing is compiled at run time.
import { TP_CONFIG, TP_COUNT, TP_COUNT_KEY, TP_EVENT, TP_INFO, TP_LIMITS, commAt } from "../../lib/layouts.ts";
import { attachTracepoint } from "../../lib/tracepoint.ts";
import { tracefsRoot } from "../../lib/tracefs/root.ts";
import { eventKey, isEventGlob, listEvents, matchEvents, readEventFormat, TracefsError, type EventId } from "../../lib/tracefs/events.ts";
import { compileDecoder, type TraceDecoder, type TraceFormat, type TraceValue } from "../../lib/tracefs/format.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { MapReader } from "../../lib/maps.ts";
import { pc } from "../colors.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { withSession, type Session, type SessionOptions } from "../session.ts";
import { Out, WallClock, jsonInt, pad } from "../output.ts";
import { writeStderr } from "../stderr.ts";

export interface TracepointOptions extends SessionOptions {
  list?: string | boolean;
  summary?: boolean;
}

/** One attached tracepoint: its name, format, decoder and which pointer fields carry user strings. */
interface Traced {
  id: EventId;
  key: string;
  format: TraceFormat;
  decode: TraceDecoder;
  strings: string[];
}

export async function run(specs: string[] | undefined, o: TracepointOptions): Promise<number> {
  if (o.list !== undefined && o.list !== false) return list(typeof o.list === "string" ? o.list : specs?.[0], o);
  if (!specs?.length) throw new UsageError("missing argument <CAT:NAME>: the tracepoint to trace (like sched:sched_process_exec; globs allowed; --list shows them)");
  if (o.anyProcess) throw new UsageError("--any-process does not apply to tracepoints (they are not in a file)");
  return withSession(o, async (s) => {
    const root = tracefsRoot((m) => s.note(`probe: ${m}`));
    const events = selectEvents(root, specs);
    const traced: Traced[] = events.map((id) => {
      const format = readEventFormat(root, id);
      return { id, key: eventKey(id), format, decode: compileDecoder(format), strings: userStringFields(id, format) };
    });

    const proc = s.filter.proc;
    const wantNspid = s.wantsNspid;
    const { bytes: cfg, view: cv } = s.config(TP_CONFIG.size);
    cv.setUint8(TP_CONFIG.emit_events, o.summary ? 0 : 1);
    cv.setUint8(TP_CONFIG.count, o.summary ? 1 : 0);
    cv.setUint8(TP_CONFIG.want_nspid, wantNspid ? 1 : 0);
    const obj = s.load("tracepoint", cfg, ["tp_record"]);
    const infos = new MapReader(obj.mapFd("infos"));
    traced.forEach((t, i) => infos.update(u32(i), tpInfo(t)));
    attachEach(s, obj.progFd("tp_record"), traced, specs.some(isEventGlob));
    s.confirm();
    for (const t of traced) {
      if (t.format.fixedSize > TP_LIMITS.rawMax) s.warn(`${t.key} records are ${t.format.fixedSize} bytes; fields past byte ${TP_LIMITS.rawMax} are not shown`);
    }
    const shown = traced.length <= 4 ? traced.map((t) => t.key).join(", ") : `${traced.length} tracepoints (${traced.slice(0, 3).map((t) => t.key).join(", ")}, ...)`;
    s.note(`Tracing ${shown}${s.label}${o.summary ? `, counts every ${s.intervalSec} s` : ""}. Ctrl-C to stop.`);

    const out = s.out;
    if (o.summary) {
      const counts = new MapReader(obj.mapFd("counts"));
      const report = () => printCounts(counts, traced, out, s.json);
      await s.run({ report });
      report();
      return 0;
    }
    const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
    s.watchLosses(obj.mapFd("dropped"), [{ index: 0, kind: "events", what: "records lost (ring buffer full: the reader fell behind)" }]);
    const printer = new RecordPrinter(s, traced, wantNspid);
    if (!s.json) out.line(pc.bold(printer.header()));
    out.flush();
    const onRecord = (v: DataView, off: number, len: number) => printer.record(v, off, len);
    await s.run({
      poll: () => {
        const n = rb.consume(onRecord);
        out.flush();
        return n;
      },
    });
    out.flush();
    return 0;
  });
}

/** `--list [PATTERN]`: the kernel's tracepoints (available_events), filtered by a glob. */
function list(pattern: string | undefined, o: TracepointOptions): number {
  const root = tracefsRoot((m) => writeStderr(`${pc.dim(`probe: ${m}`)}\n`));
  const all = listEvents(root);
  const events = pattern ? matchEvents(pattern, all) : all;
  const out = new Out();
  for (const e of events) out.line(o.json ? JSON.stringify({ tracepoint: eventKey(e), category: e.category, name: e.name }) : eventKey(e));
  out.flush();
  if (pattern && !events.length) throw new ProbeError(`no tracepoint matches '${pattern}'`, `'probe tracepoint --list' shows all ${all.length}`);
  return 0;
}

/** The events the specs name, each once, in the order given. A name that does not exist gets the closest ones. */
function selectEvents(root: string, specs: string[]): EventId[] {
  const seen = new Set<string>();
  const out: EventId[] = [];
  let all: EventId[] | undefined;
  for (const spec of specs) {
    let picked: EventId[];
    if (isEventGlob(spec) || !spec.includes(":")) {
      all ??= listEvents(root);
      picked = matchEvents(spec, all);
      if (!picked.length) {
        if (!isEventGlob(spec)) throw new TracefsError(`tracepoint '${spec}' is not category:name`, "for example sched:sched_process_exec ('probe tracepoint --list' shows them)");
        throw new TracefsError(`no tracepoint matches '${spec}'`, "'probe tracepoint --list' shows them");
      }
    } else {
      const [category, name] = [spec.slice(0, spec.indexOf(":")), spec.slice(spec.indexOf(":") + 1)];
      picked = [{ category, name }];
    }
    for (const e of picked) {
      const k = eventKey(e);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(e);
    }
  }
  if (out.length > TP_LIMITS.maxEvents) throw new UsageError(`${out.length} tracepoints selected; probe attaches at most ${TP_LIMITS.maxEvents} at once`, "narrow the pattern");
  return out;
}

/** Each tracepoint with its attach cookie (its index); with a glob, those the kernel refuses are skipped. */
function attachEach(s: Session, progFd: number, traced: Traced[], glob: boolean): void {
  let attached = 0;
  const refused: string[] = [];
  traced.forEach((t, i) => {
    try {
      s.scope.add(attachTracepoint(progFd, t.id.category, t.id.name, (m) => s.note(`probe: ${m}`), BigInt(i)));
      attached++;
    } catch (e) {
      if (!glob) throw new ProbeError(`cannot attach to tracepoint ${t.key}: ${(e as Error).message}`, (e as ProbeError).hint);
      refused.push(t.key);
    }
  });
  if (refused.length) s.warn(`${refused.length} tracepoint(s) refused by the kernel, not traced: ${refused.slice(0, 5).join(", ")}${refused.length > 5 ? ", ..." : ""}`);
  if (!attached) throw new ProbeError("the kernel refused every tracepoint selected");
}

/**
 * The pointer arguments of a syscall entry that point to a string the caller passed (a path, a
 * name): read from user memory next to the record. Buffers (`buf`, `optval`) are data, not text.
 */
const NOT_STRINGS = new Set(["buf", "ubuf", "list", "shmaddr", "optval", "u_msg_ptr", "_callout_info"]);
function userStringFields(id: EventId, f: TraceFormat): string[] {
  if (id.category !== "syscalls" || !id.name.startsWith("sys_enter_")) return [];
  return f.fields
    .filter((x) => x.kind === "pointer" && x.size === 8 && /^(const )?char \*$/.test(x.type.replace(/\s+/g, " ")) && !NOT_STRINGS.has(x.name))
    .slice(0, TP_LIMITS.maxStrs)
    .map((x) => x.name);
}

/** struct tp_info for one tracepoint: its fixed size, where its __data_loc words are, which strings to read. */
function tpInfo(t: Traced): Uint8Array {
  const b = new Uint8Array(TP_INFO.size);
  const v = new DataView(b.buffer);
  v.setUint16(TP_INFO.fixed_size, Math.min(t.format.fixedSize, TP_LIMITS.rawMax), true);
  const locs = t.format.fields.filter((f) => f.kind === "data_loc" || f.kind === "rel_loc").slice(0, TP_LIMITS.maxLocs);
  v.setUint16(TP_INFO.nlocs, locs.length, true);
  locs.forEach((f, i) => v.setUint16(TP_INFO.loc + 2 * i, f.offset | (f.kind === "rel_loc" ? TP_LIMITS.locRel : 0), true));
  const strs = t.strings.map((name) => t.format.fields.find((f) => f.name === name)!);
  v.setUint16(TP_INFO.nstrs, strs.length, true);
  strs.forEach((f, i) => v.setUint16(TP_INFO.str + 2 * i, f.offset, true));
  return b;
}

const utf8 = new TextDecoder("utf-8");

class RecordPrinter {
  private readonly clock = new WallClock();

  constructor(
    private readonly s: Session,
    private readonly traced: Traced[],
    private readonly nspidColumn: boolean,
  ) {}

  header(): string {
    return `${pad("TIME", 13)}${pad("PID", 8)}${this.nspidColumn ? pad("NSPID", 8) : ""}${pad("COMM", 16)}${pad("TRACEPOINT", 28)}FIELDS`;
  }

  record(v: DataView, off: number, len: number): void {
    const E = TP_EVENT;
    const cookie = v.getUint32(off + E.cookie, true);
    const t = this.traced[cookie];
    const rawLen = v.getUint16(off + E.raw_len, true);
    if (!t || len < E.size + rawLen) return;
    const ts = v.getBigUint64(off + E.ts, true);
    const pid = v.getUint32(off + E.pid, true);
    const tid = v.getUint32(off + E.tid, true);
    const nspid = v.getUint32(off + E.nspid, true);
    const truncated = v.getUint16(off + E.truncated, true) !== 0;
    const comm = commAt(v, off + E.comm);
    const raw = new Uint8Array(v.buffer, v.byteOffset + off + E.size, rawLen);
    let fields: Record<string, TraceValue>;
    try {
      fields = t.decode(raw);
    } catch {
      fields = {}; // shorter than the format (a record past the copy limit): header only
    }
    // The user strings follow the record, in the order of t.strings.
    const strings: Record<string, string> = {};
    let at = v.byteOffset + off + E.size + rawLen;
    t.strings.forEach((name, i) => {
      const n = v.getUint16(off + E.str_len + 2 * i, true);
      if (!n || at + n > v.byteOffset + off + len) return;
      strings[name] = utf8.decode(new Uint8Array(v.buffer, at, n - 1));
      at += n;
    });
    const out = this.s.out;
    if (this.s.json) {
      const f: Record<string, unknown> = {};
      for (const k in fields) f[k] = jsonValue(fields[k]!);
      out.line(
        JSON.stringify({
          event: "tracepoint",
          tracepoint: t.key,
          ts: jsonInt(ts),
          pid,
          tid,
          comm,
          ...(nspid ? { nspid: [pid, nspid] } : {}),
          fields: f,
          ...(t.strings.length ? { strings } : {}),
          ...(truncated ? { truncated: true } : {}),
        }),
      );
      return;
    }
    let text = "";
    for (const k in fields) {
      text += `${text ? " " : ""}${k}=${humanValue(fields[k]!)}`;
      if (k in strings) text += ` ${JSON.stringify(strings[k])}`;
    }
    if (truncated) text += " (record cut)";
    out.line(`${pad(this.clock.format(ts), 13)}${pad(pid, 8)}${this.nspidColumn ? pad(nspid || "-", 8) : ""}${pad(comm, 16)}${pad(t.key, 28)}${text}`);
  }
}

function jsonValue(v: TraceValue): unknown {
  if (typeof v === "bigint") return jsonInt(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  return v;
}

/** Numbers in decimal, text bare when it is one plain word, quoted otherwise; lists in brackets. */
function humanValue(v: TraceValue): string {
  if (v === null) return "?";
  if (typeof v === "string") return /^[\x21-\x7e]+$/.test(v) && !v.includes('"') ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(humanValue).join(",")}]`;
  return String(v);
}

function printCounts(counts: MapReader, traced: Traced[], out: Out, json: boolean): void {
  const rows = counts.entries().map(({ key, values }) => {
    const k = new DataView(key.buffer, key.byteOffset, key.byteLength);
    const v = new DataView(values[0]!.buffer, values[0]!.byteOffset, values[0]!.byteLength);
    return {
      pid: k.getUint32(TP_COUNT_KEY.pid, true),
      tracepoint: traced[k.getUint32(TP_COUNT_KEY.cookie, true)]?.key ?? "?",
      comm: commAt(v, TP_COUNT.comm),
      count: v.getBigUint64(TP_COUNT.count, true),
    };
  });
  rows.sort((a, b) => a.pid - b.pid || (a.tracepoint < b.tracepoint ? -1 : 1));
  if (json) {
    for (const r of rows) out.line(JSON.stringify({ event: "count", pid: r.pid, comm: r.comm, tracepoint: r.tracepoint, count: jsonInt(r.count) }));
  } else {
    out.line(pc.bold(`${pad(new Date().toTimeString().slice(0, 8), 10)}${pad("PID", 8)}${pad("COMM", 16)}${pad("TRACEPOINT", 36)}COUNT`));
    for (const r of rows) out.line(`${pad("", 10)}${pad(r.pid, 8)}${pad(r.comm, 16)}${pad(r.tracepoint, 36)}${r.count}`);
  }
  out.flush();
}

function u32(n: number): Uint8Array {
  return new Uint8Array(new Uint32Array([n]).buffer);
}
