// Typed call and return events (bpf/args.h records) as lines: for people, `name(fd=3,
// path="/etc/hosts")` and `name returned 3`; as JSON, {"args":[{"name","type","value"}...]} and
// {"ret":{...}}, with Go's further results in "results" and buffers copied at return in "args".
import { decodeTypedRecord, type TypedRecord } from "../lib/args/record.ts";
import { EV_CALL } from "../lib/layouts.ts";
import { ValueFormatter } from "../lib/types/format.ts";
import type { FunctionLayout } from "../lib/types/function-layout.ts";
import { formatDuration, pad, type WallClock } from "./output.ts";

const TWO32 = 4294967296;

function u64(lo: number, hi: number): string {
  return hi < 0x200000 ? String(hi * TWO32 + lo) : (BigInt(hi) * 4294967296n + BigInt(lo)).toString();
}

export class TypedEventPrinter {
  private readonly formatters: ValueFormatter[];
  private readonly jsonNames: string[];
  private readonly latin1 = new TextDecoder("latin1");

  constructor(
    private readonly names: string[],
    layouts: FunctionLayout[],
    private readonly clock: WallClock,
    opts: { hexdump?: boolean; enums?: (Map<string, Map<number, string>> | undefined)[] },
    /** A process's PIDs from the host's namespace inward (with the program's innermost PID as a fallback). */
    private readonly nsPids?: (pid: number, inner: number) => number[],
  ) {
    this.formatters = layouts.map((l, i) => new ValueFormatter(l, { hexdump: opts.hexdump, enumNames: (tag) => opts.enums?.[i]?.get(tag) }));
    this.jsonNames = names.map((n) => JSON.stringify(n));
  }

  private comm(v: DataView, off: number): string {
    const b = new Uint8Array(v.buffer, v.byteOffset + off + 24, 16);
    const end = b.indexOf(0);
    return this.latin1.decode(b.subarray(0, end < 0 ? 16 : end));
  }

  human(v: DataView, off: number, len: number): string {
    const r = decodeTypedRecord(v, off, len);
    const f = this.formatters[r.func];
    const name = this.names[r.func] ?? "?";
    const head = `${pad(this.clock.format(BigInt(u64(r.tsLo, r.tsHi))), 13)}${pad(r.pid, 8)}${pad(r.tid, 8)}${pad(this.comm(v, off), 16)}`;
    if (!f) return `${head}${name}`;
    if (r.kind === EV_CALL) return `${head}${name}(${f.callText(r)})`;
    const lat = r.latencyLo || r.latencyHi ? ` in ${formatDuration(BigInt(u64(r.latencyLo, r.latencyHi)))}` : "";
    return `${head}${name} returned ${f.returnValueText(r) || "(void)"}${lat}`;
  }

  json(v: DataView, off: number, len: number): string {
    const r: TypedRecord = decodeTypedRecord(v, off, len);
    const f = this.formatters[r.func];
    const chain = this.nsPids?.(r.pid, r.nspid) ?? [r.pid];
    let s = `{"event":"${r.kind === EV_CALL ? "call" : "return"}","ts":${u64(r.tsLo, r.tsHi)},"pid":${r.pid}${chain.length > 1 ? `,"nspid":[${chain.join(",")}]` : ""},"tid":${r.tid},"comm":${JSON.stringify(this.comm(v, off))},"function":${this.jsonNames[r.func] ?? '"?"'}`;
    if (f) {
      if (r.kind === EV_CALL) s += `,"args":${f.callJson(r)}`;
      else {
        const p = f.returnJsonParts(r);
        if (p.results.length) s += `,"ret":${p.results[0]}`;
        if (p.results.length > 1) s += `,"results":[${p.results.join(",")}]`;
        if (p.copies.length) s += `,"args":[${p.copies.join(",")}]`;
        s += `,"latency_ns":${u64(r.latencyLo, r.latencyHi)}`;
      }
    }
    return `${s}}`;
  }
}
