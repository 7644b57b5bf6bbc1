// `probe sslsniff`: the plaintext of TLS reads and writes, one record per call, whole: the data is
// copied at the return in chunks until the call's real length (up to --max-bytes), and every cut
// is flagged with the real length. Text with non-printables escaped, a hexdump, or JSON.
import { pc } from "../colors.ts";
import { SNIFF_CONFIG, SNIFF_DROP, SNIFF_EVENT, SNIFF_FLAG, SNIFF_KIND, commAt } from "../../lib/layouts.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { TLS_FUNCTIONS, functionOfCode, type TlsRole } from "../../lib/tls/stacks.ts";
import { escapeC, hexdump, jsonText } from "../../lib/types/bytes-text.ts";
import { UsageError } from "../errors.ts";
import { parseBytes } from "../options.ts";
import { withSession, type SessionOptions } from "../session.ts";
import { NsPidCache, nsPidNote } from "../targets.ts";
import { Out, WallClock, formatDuration } from "../output.ts";
import { attachTls, attachTlsInFleet, findTls, type TlsTarget } from "./tls-attach.ts";

export interface SslSniffOptions extends SessionOptions {
  lib?: string;
  maxBytes?: unknown;
  bufferSize?: unknown;
  hexdump?: boolean;
  read?: boolean;
  write?: boolean;
  handshake?: boolean;
}

const DEFAULT_MAX_BYTES = 64 << 10;
const MIN_RING = 16 << 20;
const MAX_RING = 1 << 30;
/** A call whose chunks stop coming (a record the ring refused) is shown with what arrived after this long. */
const STALE_MS = 500;

/** The ring buffer's size: room for a few calls of --max-bytes, a power of two (the kernel's rule). */
function ringSize(maxBytes: number, asked: number | undefined): number {
  if (asked !== undefined) {
    if (asked < 4096 || asked > MAX_RING || asked & (asked - 1)) throw new UsageError(`--buffer-size takes a power of two from 4K to 1G, not ${asked}`);
    return asked;
  }
  const want = maxBytes === 0 ? 64 << 20 : maxBytes * 4;
  let size = MIN_RING;
  while (size < want && size < MAX_RING) size *= 2;
  return size;
}

export async function run(o: SslSniffOptions): Promise<number> {
  const maxBytes = parseBytes("max-bytes", o.maxBytes, DEFAULT_MAX_BYTES);
  const ring = ringSize(maxBytes, o.bufferSize === undefined ? undefined : parseBytes("buffer-size", o.bufferSize, 0));
  const both = !o.read && !o.write;
  const roles: TlsRole[] = [...(both || o.read ? ["read" as const] : []), ...(both || o.write ? ["write" as const] : []), ...(o.handshake ? ["handshake" as const] : [])];
  if (o.hexdump && o.json) throw new UsageError("--hexdump and --json are two output formats: give one");

  return withSession(o, async (s) => {
    // A selection of containers: each container's TLS once it appears (attachTlsInFleet, below).
    const fleet = !!s.fleet && !o.lib;
    let targets: TlsTarget[] = fleet ? [] : await findTls(s, { lib: o.lib, wait: o.wait });
    const { bytes: cfg, view: cv } = s.config(SNIFF_CONFIG.size);
    cv.setBigUint64(SNIFF_CONFIG.max_bytes, BigInt(maxBytes), true);
    cv.setUint8(SNIFF_CONFIG.want_read, roles.includes("read") ? 1 : 0);
    cv.setUint8(SNIFF_CONFIG.want_write, roles.includes("write") ? 1 : 0);
    cv.setUint8(SNIFF_CONFIG.want_handshake, roles.includes("handshake") ? 1 : 0);
    const proc = s.filter.proc;
    cv.setUint8(SNIFF_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
    const obj = s.load("sslsniff", cfg, undefined, { events: ring });
    const progs = { entry: obj.progFd("sniff_entry"), ret: obj.progFd("sniff_return") };
    // In a fleet the array grows as containers bring new files: the printer looks it up per record.
    if (fleet) targets = await attachTlsInFleet(s, progs, roles);
    else attachTls(s, targets, progs, roles);
    s.watchLosses(obj.mapFd("dropped"), [
      { index: SNIFF_DROP.RECORDS, kind: "records", what: "records lost (ring buffer full: the reader fell behind); those calls show what arrived, flagged" },
      { index: SNIFF_DROP.BYTES, kind: "bytes", what: "bytes not copied for lack of ring buffer room (those calls are flagged truncated)" },
      { index: SNIFF_DROP.PAIRING, kind: "pairing", what: "calls not captured (the table of calls in progress was full)" },
    ]);
    s.note(`Capturing ${roles.join(", ")} data${maxBytes ? `, up to ${maxBytes} bytes per call` : ", whole calls (as much as the ring buffer holds)"}; ring buffer ${ring >= 1 << 20 ? `${ring >> 20} MiB` : `${ring >> 10} KiB`}. Ctrl-C to stop.`);

    const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
    const printer = new SniffPrinter(s.out, targets, s.json ? "json" : o.hexdump ? "hexdump" : "text", new NsPidCache(proc ? [[proc.pid, proc.nspid]] : []));
    const asm = new CallAssembler((c) => printer.print(c));
    const poll = () => {
      const n = rb.consume((v, off, len) => asm.record(v, off, len));
      asm.flushStale(Date.now());
      s.out.flush();
      return n;
    };
    await s.run({ poll });
    asm.flushAll();
    s.out.flush();
    if (asm.malformed) s.warn(`${asm.malformed} records did not add up and were left out`);
    s.note(printer.summary());
    return 0;
  });
}

/** One call, its data assembled from its chunks. */
export interface SniffCall {
  kind: number;
  pid: number;
  tid: number;
  cookie: number;
  /** CLOCK_MONOTONIC ns at the return. */
  ts: number;
  latency: number;
  /** The return value's low 32 bits, signed (the C functions' int). */
  ret: number;
  /** The whole return register is 0 (Go: a nil error). */
  retZero: boolean;
  /** Bytes the call really moved. */
  len: number;
  /** The bytes copied (captured of len). */
  data: Uint8Array;
  flags: number;
  comm: string;
  nspid: number;
  /** Chunks never came (a record the ring buffer refused). */
  lost: boolean;
}

interface Pending {
  call: SniffCall;
  captured: number;
  got: number;
  since: number;
}

/** The size a call's data may claim before a record is taken for garbage (the ring is at most 1 GiB). */
const MAX_CALL_BYTES = MAX_RING;

/**
 * Puts each call's chunks back together (records of one call share its id; other CPUs' records
 * may come between them) and hands over every call once: when its chunks add up to what was
 * copied, when a chunk says the copy failed, or when the rest never comes.
 */
export class CallAssembler {
  private readonly pending = new Map<bigint, Pending>();
  malformed = 0;

  /** `done` must use the call's data before it returns: it may be a view of the ring buffer. */
  constructor(private readonly done: (c: SniffCall) => void) {}

  record(v: DataView, off: number, len: number): void {
    const E = SNIFF_EVENT;
    if (len < E.size) {
      this.malformed++;
      return;
    }
    const u64 = (f: number) => v.getBigUint64(off + f, true);
    const captured = Number(u64(E.captured));
    const offset = Number(u64(E.offset));
    const chunk = v.getUint32(off + E.chunk, true);
    const total = Number(u64(E.len));
    if (chunk > len - E.size || offset + chunk > captured || captured > total || captured > MAX_CALL_BYTES) {
      this.malformed++;
      return;
    }
    const flags = v.getUint32(off + E.flags, true);
    const bytes = new Uint8Array(v.buffer, v.byteOffset + off + E.size, chunk);
    // The usual call: one record with all of its data, handed over in place (printed before the
    // ring buffer's space is given back).
    if (offset === 0 && chunk === captured) {
      this.done(this.header(v, off, total, flags, bytes));
      return;
    }
    const id = u64(E.call);
    let p = this.pending.get(id);
    if (!p) {
      p = { call: this.header(v, off, total, flags, new Uint8Array(captured)), captured, got: 0, since: Date.now() };
      this.pending.set(id, p);
    }
    p.call.data.set(bytes, offset);
    p.got += chunk;
    p.call.flags |= flags;
    if (p.got >= p.captured || flags & SNIFF_FLAG.FAULT) this.finish(id, p);
  }

  private header(v: DataView, off: number, len: number, flags: number, data: Uint8Array): SniffCall {
    const E = SNIFF_EVENT;
    return {
      kind: v.getUint32(off + E.kind, true),
      pid: v.getUint32(off + E.pid, true),
      tid: v.getUint32(off + E.tid, true),
      cookie: v.getUint32(off + E.cookie, true),
      ts: u53(v, off + E.ts),
      latency: u53(v, off + E.latency),
      ret: v.getInt32(off + E.ret, true),
      retZero: v.getUint32(off + E.ret, true) === 0 && v.getUint32(off + E.ret + 4, true) === 0,
      len,
      data,
      flags,
      comm: commAt(v, off + E.comm),
      nspid: v.getUint32(off + E.nspid, true),
      lost: false,
    };
  }

  private finish(id: bigint, p: Pending): void {
    this.pending.delete(id);
    if (p.got < p.captured) {
      p.call.lost = !(p.call.flags & SNIFF_FLAG.FAULT);
      // One program run writes a call's chunks in order and stops at the first the ring refuses:
      // what arrived is the start of the data.
      p.call.data = p.call.data.subarray(0, p.got);
    }
    this.done(p.call);
  }

  /** Calls whose missing chunks will not come (lost for lack of ring room). */
  flushStale(now: number): void {
    for (const [id, p] of this.pending) if (now - p.since > STALE_MS) this.finish(id, p);
  }

  flushAll(): void {
    for (const [id, p] of this.pending) this.finish(id, p);
  }
}

/** A u64 that is below 2^53 (nanoseconds since boot), as a number: no BigInt per record. */
function u53(v: DataView, off: number): number {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 2 ** 32;
}

type Format = "text" | "json" | "hexdump";

/** Prints calls as text, hexdump or JSON lines; keeps the totals for the summary. */
export class SniffPrinter {
  private readonly clock = new WallClock();
  private readonly counts = { read: [0, 0], write: [0, 0], handshake: [0, 0], cut: 0 };

  constructor(
    private readonly out: Out,
    private readonly targets: TlsTarget[],
    private readonly format: Format,
    private readonly nspids: NsPidCache,
  ) {}

  print(c: SniffCall): void {
    const kind = c.kind === SNIFF_KIND.READ ? "read" : c.kind === SNIFF_KIND.WRITE ? "write" : "handshake";
    this.counts[kind][0]!++;
    this.counts[kind][1]! += c.len;
    const cut = c.data.length < c.len;
    if (cut) this.counts.cut++;
    const t = this.targets[c.cookie >>> 8];
    const fn = functionOfCode(c.cookie & 0xff)?.name ?? "?";
    const nspid = this.nspids.get(c.pid, c.nspid);
    if (this.format === "json") {
      if (kind === "handshake") {
        const o: Record<string, unknown> = { event: kind, ts: c.ts, pid: c.pid, tid: c.tid, comm: c.comm, ...(nspid.length > 1 ? { nspid } : {}),
          function: fn, library: t?.lib.target.display ?? null, tls: t?.stack.name ?? null, latency_ns: c.latency };
        // Go returns an error (RAX: its type word, nil when done), C an int.
        if (!isGoCode(c.cookie & 0xff)) o.ret = c.ret;
        o.ok = handshakeOk(c);
        this.out.line(JSON.stringify(o));
        return;
      }
      this.writeJson(c, kind, nspid, cut, fn, t);
      return;
    }
    const who = `${c.comm} ${c.pid}/${c.tid}${nsPidNote(nspid)}`;
    const where = t ? `${fn}, ${t.stack.name} in ${t.lib.target.display}` : fn;
    const time = this.clock.format(BigInt(c.ts));
    if (kind === "handshake") {
      const result = handshakeOk(c) ? "done" : isGoCode(c.cookie & 0xff) ? "failed" : `returned ${c.ret}`;
      this.out.line(`${pc.bold("HANDSHAKE")} ${time} ${who} ${result} ${formatDuration(BigInt(c.latency))}  ${pc.dim(where)}`);
      return;
    }
    this.out.line(`${pc.bold(kind === "read" ? "READ " : "WRITE")} ${time} ${who} ${c.len} byte${c.len === 1 ? "" : "s"} ${formatDuration(BigInt(c.latency))}  ${pc.dim(where)}`);
    if (this.format === "hexdump") for (const l of hexdump(c.data, c.data.length, Number.MAX_SAFE_INTEGER)) this.out.line(`  ${l}`);
    else writeTextLines(this.out, c.data);
    if (cut) this.out.line(pc.yellow(`  [cut: ${c.data.length} of ${c.len} bytes shown: ${reason(c)}]`));
  }

  /** Fragments that repeat from record to record, as bytes: per library and function, per comm. */
  private readonly byCookie = new Map<number, Uint8Array>();
  private readonly byComm = new Map<string, Uint8Array>();

  /**
   * A read or write as one JSON line, written into the output buffer field by field: the only
   * string made per record is its comm (short), so a busy capture does not churn the heap.
   */
  private writeJson(c: SniffCall, kind: "read" | "write", nspid: number[], cut: boolean, fn: string, t: TlsTarget | undefined): void {
    let lib = this.byCookie.get(c.cookie);
    if (!lib) {
      lib = bytesOf(`,"function":${JSON.stringify(fn)},"library":${JSON.stringify(t?.lib.target.display ?? null)},"tls":${JSON.stringify(t?.stack.name ?? null)},"latency_ns":`);
      this.byCookie.set(c.cookie, lib);
    }
    let comm = this.byComm.get(c.comm);
    if (!comm) {
      comm = utf8.encode(`,"comm":${JSON.stringify(c.comm)}`);
      if (this.byComm.size > 4096) this.byComm.clear();
      this.byComm.set(c.comm, comm);
    }
    const out = this.out;
    out.room(lib.length + comm.length + 256 + c.data.length * 8);
    out.bytes(kind === "read" ? F.READ : F.WRITE);
    out.uint(c.ts);
    out.bytes(F.PID);
    out.uint(c.pid);
    out.bytes(F.TID);
    out.uint(c.tid);
    out.bytes(comm);
    if (nspid.length > 1) {
      out.bytes(F.NSPID);
      nspid.forEach((n, i) => {
        if (i) out.bytes(F.COMMA);
        out.uint(n);
      });
      out.bytes(F.CLOSE);
    }
    out.bytes(lib);
    out.uint(c.latency);
    out.bytes(F.BYTES);
    out.uint(c.len);
    if (cut) {
      out.bytes(F.CAPTURED);
      out.uint(c.data.length);
      out.bytes(bytesOf(`,"reason":${JSON.stringify(reason(c))}`));
    }
    writeJsonTail(out, c.data, cut);
  }

  summary(): string {
    const c = this.counts;
    const parts = [`${c.read[0]} read${c.read[0] === 1 ? "" : "s"} (${c.read[1]} bytes)`, `${c.write[0]} write${c.write[0] === 1 ? "" : "s"} (${c.write[1]} bytes)`];
    if (c.handshake[0]) parts.push(`${c.handshake[0]} handshake call${c.handshake[0] === 1 ? "" : "s"}`);
    return `probe: ${parts.join(", ")}${c.cut ? `; ${c.cut} cut (flagged)` : ", none cut"}`;
  }
}

function isGoCode(fn: number): boolean {
  return TLS_FUNCTIONS.go.some((d) => d.fn === fn);
}

function handshakeOk(c: SniffCall): boolean {
  const fn = c.cookie & 0xff;
  const def = functionOfCode(fn);
  if (!def) return false;
  if (def.name === "SSL_do_handshake") return c.ret === 1;
  if (def.name === "gnutls_handshake" || def.name === "SSL_ForceHandshake") return c.ret === 0; // SECSuccess
  return c.retZero; // Go: a nil error's type word
}

function reason(c: SniffCall): string {
  if (c.lost) return "records lost: the ring buffer was full";
  if (c.flags & SNIFF_FLAG.FAULT) return "the buffer could not be read";
  if (c.flags & SNIFF_FLAG.NO_ROOM) return "the ring buffer had no room for more";
  return "--max-bytes";
}

// Data is written into the output buffer byte by byte, not built as strings: at hundreds of MB/s
// of plaintext, a string per line (or per record) is what the reader would spend its time on.
// ASCII, nearly all of HTTP, goes through tables; a run of other bytes through lib/types'
// escapers (UTF-8 as characters, anything else as \xNN or \ufffd).

const utf8 = new TextEncoder();
const bytesOf = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
/** Per ASCII byte: its escape in a C string (text output), or undefined when shown as is. */
const C_ESCAPE: (Uint8Array | undefined)[] = [];
/** Per ASCII byte: its escape in a JSON string, or undefined. */
const JSON_ESCAPE: (Uint8Array | undefined)[] = [];
for (let c = 0; c < 128; c++) {
  const named: Record<number, string> = { 0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
  const hex = c.toString(16).padStart(2, "0");
  C_ESCAPE.push(named[c] ? bytesOf(named[c]!) : c < 0x20 || c === 0x7f ? bytesOf(`\\x${hex}`) : undefined);
  const jnamed: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
  JSON_ESCAPE.push(jnamed[c] ? bytesOf(jnamed[c]!) : c < 0x20 || c === 0x7f ? bytesOf(`\\u00${hex}`) : undefined);
}
const INDENT = 2;

/** The end of the run of non-ASCII bytes starting at `i`. */
function nonAsciiEnd(b: Uint8Array, i: number): number {
  let j = i + 1;
  while (j < b.length && b[j]! >= 0x80) j++;
  return j;
}

/** A short ASCII literal. */
function putAscii(buf: Uint8Array, p: number, s: string): number {
  for (let k = 0; k < s.length; k++) buf[p++] = s.charCodeAt(k);
  return p;
}

/**
 * The data as lines of C-escaped text, indented: each line of the data ends with a visible `\n`
 * and then a real line break, so the output reads like the data and still says every byte exactly.
 */
export function writeTextLines(out: Out, b: Uint8Array): void {
  if (!b.length) return;
  const buf = out.room(b.length * 5 + 2 * INDENT + 2);
  let p = out.pos;
  buf[p++] = 32;
  buf[p++] = 32;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) {
      const e = C_ESCAPE[c];
      if (!e) buf[p++] = c;
      else {
        for (let k = 0; k < e.length; k++) buf[p++] = e[k]!;
        if (c === 10) {
          buf[p++] = 10;
          if (i + 1 < b.length) {
            buf[p++] = 32;
            buf[p++] = 32;
          }
        }
      }
      i++;
      continue;
    }
    const j = nonAsciiEnd(b, i);
    // escapeC shows well-formed UTF-8 as characters: encode them back as UTF-8.
    p += utf8.encodeInto(escapeC(b.subarray(i, j)), buf.subarray(p)).written!;
    i = j;
  }
  if (b[b.length - 1] !== 10) buf[p++] = 10;
  out.pos = p;
}

/** The fixed parts of a JSON record, as bytes. */
const F = {
  READ: bytesOf('{"event":"read","ts":'),
  WRITE: bytesOf('{"event":"write","ts":'),
  PID: bytesOf(',"pid":'),
  TID: bytesOf(',"tid":'),
  NSPID: bytesOf(',"nspid":['),
  COMMA: bytesOf(","),
  CLOSE: bytesOf("]"),
  BYTES: bytesOf(',"bytes":'),
  CAPTURED: bytesOf(',"truncated":true,"captured":'),
};

const B64 = bytesOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

/** Base64 of `b` written at `p` (no string: a string per record is what churns the heap). */
function putBase64(buf: Uint8Array, p: number, b: Uint8Array): number {
  const whole = b.length - (b.length % 3);
  let i = 0;
  for (; i < whole; i += 3) {
    const x = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    buf[p] = B64[x >>> 18]!;
    buf[p + 1] = B64[(x >>> 12) & 63]!;
    buf[p + 2] = B64[(x >>> 6) & 63]!;
    buf[p + 3] = B64[x & 63]!;
    p += 4;
  }
  if (i < b.length) {
    const x = (b[i]! << 16) | (i + 1 < b.length ? b[i + 1]! << 8 : 0);
    buf[p++] = B64[x >>> 18]!;
    buf[p++] = B64[(x >>> 12) & 63]!;
    buf[p++] = i + 1 < b.length ? B64[(x >>> 6) & 63]! : 61;
    buf[p++] = 61;
  }
  return p;
}

/**
 * The end of a JSON record: "data" in base64, "text" when the bytes are UTF-8 (a character cut
 * short at the end of truncated data is left out), the closing brace and the newline.
 */
export function writeJsonTail(out: Out, b: Uint8Array, cut: boolean): void {
  const buf = out.room(b.length * 8 + 32);
  let p = putAscii(buf, out.pos, ',"data":"');
  p = putBase64(buf, p, b);
  p = putAscii(buf, p, '"');
  const beforeText = p;
  p = putAscii(buf, p, ',"text":"');
  let ok = true;
  for (let i = 0; i < b.length && ok; ) {
    const c = b[i]!;
    if (c < 0x80) {
      const e = JSON_ESCAPE[c];
      if (!e) buf[p++] = c;
      else for (let k = 0; k < e.length; k++) buf[p++] = e[k]!;
      i++;
      continue;
    }
    const j = nonAsciiEnd(b, i);
    const t = jsonText(b.subarray(i, j), j - i, cut && j === b.length);
    if (t.lossy) ok = false;
    else p += utf8.encodeInto(t.json.slice(1, -1), buf.subarray(p)).written!;
    i = j;
  }
  p = ok ? putAscii(buf, p, '"') : beforeText;
  buf[p++] = 125; // }
  buf[p++] = 10;
  out.pos = p;
}

/** One JSON record from `head` (an object without its closing brace) and the data. */
export function writeJsonRecord(out: Out, head: string, b: Uint8Array, cut: boolean): void {
  const buf = out.room(head.length * 3 + b.length * 8 + 32);
  out.pos += utf8.encodeInto(head, buf.subarray(out.pos)).written!;
  writeJsonTail(out, b, cut);
}
