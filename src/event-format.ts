// Turning uprobe_event records into output lines fast enough for a million events a second:
// 64-bit fields are read as two 32-bit halves (no BigInt), JSON is written by hand (no objects),
// and a thread's comm is decoded once and reused while its bytes stay the same.
import { UPROBE_EVENT, EV_CALL } from "../lib/layouts.ts";
import { formatDuration, pad, type Out, type WallClock } from "./output.ts";

const TWO32 = 4294967296;
const ENC = new TextEncoder();
/** The constant pieces of a JSON event, encoded once. */
const J = {
  call: ENC.encode('{"event":"call","ts":'),
  ret: ENC.encode('{"event":"return","ts":'),
  args: ENC.encode(',"args":["'),
  sep: ENC.encode('","'),
  argsEnd: ENC.encode('"]}\n'),
  retVal: ENC.encode(',"ret":'),
  retHex: ENC.encode(',"ret_hex":"'),
  latency: ENC.encode('","latency_ns":'),
  results: ENC.encode(',"results":["'),
  resultsEnd: ENC.encode('"]'),
  end: ENC.encode("}\n"),
};

interface Comm {
  w: number[];
  text: string;
  json: string;
}
const latin1 = new TextDecoder("latin1");

function hex64(lo: number, hi: number): string {
  return hi ? `0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")}` : `0x${lo.toString(16)}`;
}

/** A 64-bit field as a JSON value: a number while exact, else a decimal string. */
function u64Json(lo: number, hi: number): string {
  return hi < 0x200000 ? String(hi * TWO32 + lo) : `"${(BigInt(hi) * 4294967296n + BigInt(lo)).toString()}"`;
}

function i64Json(lo: number, hi: number): string {
  if (hi < 0x80000000) return u64Json(lo, hi);
  if (hi >= 0xffe00000) return String((hi - TWO32) * TWO32 + lo); // small negatives are exact
  return `"${BigInt.asIntN(64, BigInt(hi) * 4294967296n + BigInt(lo)).toString()}"`;
}

function i64Text(lo: number, hi: number): string {
  const j = i64Json(lo, hi);
  return j.startsWith('"') ? j.slice(1, -1) : j;
}

/** A JSON string literal in ASCII only (Out.ascii writes char codes as bytes). */
function jsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export class EventFormatter {
  private readonly comms = new Map<number, Comm>();
  private readonly middles = new Map<number, { comm: Comm; func: number; bytes: Uint8Array }>();
  private readonly jsonNames: string[];

  constructor(
    private readonly names: string[],
    private readonly clock: WallClock,
    private readonly humanArgs = 4,
    /** Go register ABI: returns also carry the 2nd and 3rd results (RBX, RCX in a[2], a[3]). */
    private readonly goResults = false,
    /**
     * A process's PIDs from the host's namespace inward; JSON gets `"nspid"` when there are
     * several. `inner` is the PID in its innermost namespace as the program saw it (0: not read),
     * for a process that exited before /proc could be asked.
     */
    private readonly nsPids?: (pid: number, inner: number) => number[],
  ) {
    this.jsonNames = names.map(jsonString);
  }

  private comm(v: DataView, off: number, tid: number) {
    const o = off + UPROBE_EVENT.comm;
    const w0 = v.getUint32(o, true);
    const w1 = v.getUint32(o + 4, true);
    const w2 = v.getUint32(o + 8, true);
    const w3 = v.getUint32(o + 12, true);
    const c = this.comms.get(tid);
    if (c && c.w[0] === w0 && c.w[1] === w1 && c.w[2] === w2 && c.w[3] === w3) return c;
    const bytes = new Uint8Array(v.buffer, v.byteOffset + o, 16);
    const end = bytes.indexOf(0);
    const text = latin1.decode(bytes.subarray(0, end < 0 ? 16 : end));
    const entry = { w: [w0, w1, w2, w3], text, json: jsonString(text) };
    if (this.comms.size > 65536) this.comms.clear();
    this.comms.set(tid, entry);
    return entry;
  }

  /**
   * `,"pid":P[,"nspid":[..]],"tid":T,"comm":C,"function":F` as bytes, cached per thread and function: all that
   * is left per event is the timestamp, the values and a few copies.
   */
  private middle(v: DataView, off: number, tid: number): Uint8Array {
    const func = v.getUint32(off + UPROBE_EVENT.func, true);
    const comm = this.comm(v, off, tid);
    const key = tid * 64 + (func & 63);
    let m = this.middles.get(key);
    if (!m || m.comm !== comm || m.func !== func) {
      const pid = v.getUint32(off + UPROBE_EVENT.pid, true);
      const fn = this.jsonNames[func] ?? '"?"';
      const chain = this.nsPids?.(pid, v.getUint32(off + UPROBE_EVENT.nspid, true)) ?? [pid];
      const nspid = chain.length > 1 ? `,"nspid":[${chain.join(",")}]` : "";
      m = { comm, func, bytes: ENC.encode(`,"pid":${pid}${nspid},"tid":${tid},"comm":${comm.json},"function":${fn}`) };
      if (this.middles.size > 65536) this.middles.clear();
      this.middles.set(key, m);
    }
    return m.bytes;
  }

  /** Writes one event as a JSON line straight into `out`'s bytes. */
  json(out: Out, v: DataView, off: number): void {
    const kind = v.getUint32(off + UPROBE_EVENT.kind, true);
    const tid = v.getUint32(off + UPROBE_EVENT.tid, true);
    const mid = this.middle(v, off, tid);
    out.room(400 + mid.length);
    out.bytes(kind === EV_CALL ? J.call : J.ret);
    this.u64(out, v, off + UPROBE_EVENT.ts);
    out.bytes(mid);
    const a = off + UPROBE_EVENT.a;
    if (kind === EV_CALL) {
      out.bytes(J.args);
      for (let i = 0; i < 6; i++) {
        if (i) out.bytes(J.sep);
        out.hex64(v.getUint32(a + i * 8, true), v.getUint32(a + i * 8 + 4, true));
      }
      out.bytes(J.argsEnd);
      return;
    }
    const lo = v.getUint32(a, true);
    const hi = v.getUint32(a + 4, true);
    out.bytes(J.retVal);
    if (hi === 0 && lo < 0x80000000) out.uint(lo);
    else out.ascii(i64Json(lo, hi));
    out.bytes(J.retHex);
    out.hex64(lo, hi);
    out.bytes(J.latency);
    this.u64(out, v, a + 8);
    if (this.goResults) {
      out.bytes(J.results);
      out.hex64(lo, hi);
      for (const k of [2, 3]) {
        out.bytes(J.sep);
        out.hex64(v.getUint32(a + k * 8, true), v.getUint32(a + k * 8 + 4, true));
      }
      out.bytes(J.resultsEnd);
    }
    out.bytes(J.end);
  }

  private u64(out: Out, v: DataView, off: number): void {
    const lo = v.getUint32(off, true);
    const hi = v.getUint32(off + 4, true);
    if (hi < 0x200000) out.uint(hi * TWO32 + lo);
    else out.ascii(u64Json(lo, hi));
  }

  human(v: DataView, off: number): string {
    const kind = v.getUint32(off + UPROBE_EVENT.kind, true);
    const pid = v.getUint32(off + UPROBE_EVENT.pid, true);
    const tid = v.getUint32(off + UPROBE_EVENT.tid, true);
    const ts = BigInt(v.getUint32(off + UPROBE_EVENT.ts + 4, true)) * 4294967296n + BigInt(v.getUint32(off + UPROBE_EVENT.ts, true));
    const name = this.names[v.getUint32(off + UPROBE_EVENT.func, true)] ?? "?";
    const head = `${pad(this.clock.format(ts), 13)}${pad(pid, 8)}${pad(tid, 8)}${pad(this.comm(v, off, tid).text, 16)}`;
    const a = off + UPROBE_EVENT.a;
    if (kind === EV_CALL) {
      const args: string[] = [];
      for (let i = 0; i < this.humanArgs; i++) args.push(hex64(v.getUint32(a + i * 8, true), v.getUint32(a + i * 8 + 4, true)));
      return `${head}${name}(${args.join(", ")})`;
    }
    const lo = v.getUint32(a, true);
    const hi = v.getUint32(a + 4, true);
    const latLo = v.getUint32(a + 8, true);
    const latHi = v.getUint32(a + 12, true);
    const lat = latLo || latHi ? ` in ${formatDuration(BigInt(latHi) * 4294967296n + BigInt(latLo))}` : "";
    return `${head}${name} returned ${i64Text(lo, hi)} / ${hex64(lo, hi)}${lat}`;
  }
}
