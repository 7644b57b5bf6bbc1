// Typed records (bpf/args.h struct typed_event) read at the rate a busy USDT probe fires: the same
// fields as lib/args/record.ts decodeTypedRecord, but into one reused object, with the values and
// the copied bytes moved into buffers of its own. A typed-array view costs several hundred ns to
// create, and decodeTypedRecord makes one per value block and per string, over the ring buffer's
// memory; here views are made once per (capture, length) and reused.
import { ALL_SLOTS, BLOB_FAULT, BLOB_HDR, BLOB_TRUNCATED, CAPTURES, TYPED_BLOBS_AT, TYPED_EVENT as TE } from "../layouts.ts";
import type { TypedRecord } from "../args/record.ts";
import type { Captured } from "../types/format.ts";

/** Bytes one capture can bring (the BPF program's BLOB_MAX). */
const ROOM = 12 << 10;

export class TypedRecordReader {
  private readonly values = new DataView(new ArrayBuffer(ALL_SLOTS * 8));
  private readonly bytes = new Uint8Array(CAPTURES * ROOM);
  /** Views of `bytes` per capture, by length (at most ROOM + 1 each, made as lengths appear). */
  private readonly views: Map<number, Uint8Array>[] = Array.from({ length: CAPTURES }, () => new Map());
  private readonly captured: Captured[] = Array.from({ length: CAPTURES }, () => ({ bytes: new Uint8Array(0), truncated: false, fault: false }));
  private ring?: DataView;
  private ringBytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);

  /** The record, valid until the next read: values and bytes are copies, the object is reused. */
  readonly record: TypedRecord = {
    kind: 0, pid: 0, tid: 0, func: 0, tsLo: 0, tsHi: 0, nspid: 0, latencyLo: 0, latencyHi: 0,
    words: this.values,
    captures: new Array<Captured | undefined>(CAPTURES),
    wanted: new Array<number | undefined>(CAPTURES),
  };

  read(v: DataView, off: number, len: number): TypedRecord {
    const r = this.record;
    const end = Math.min(off + len, v.byteLength);
    if (len < TYPED_BLOBS_AT) {
      r.kind = 0;
      return r;
    }
    r.kind = v.getUint32(off + TE.kind, true);
    r.pid = v.getUint32(off + TE.pid, true);
    r.tid = v.getUint32(off + TE.tid, true);
    r.func = v.getUint32(off + TE.func, true);
    r.tsLo = v.getUint32(off + TE.ts, true);
    r.tsHi = v.getUint32(off + TE.ts + 4, true);
    r.nspid = v.getUint32(off + TE.nspid, true);
    r.latencyLo = v.getUint32(off + TE.latency, true);
    r.latencyHi = v.getUint32(off + TE.latency + 4, true);
    const nvals = Math.min(v.getUint16(off + TE.nvals, true), ALL_SLOTS);
    const words = this.values;
    for (let i = 0, at = off + TE.size; i < nvals * 2; i++, at += 4) words.setUint32(i * 4, v.getUint32(at, true), true);
    for (let i = nvals * 2; i < ALL_SLOTS * 2; i++) words.setUint32(i * 4, 0, true);

    const caps = r.captures as (Captured | undefined)[];
    const wanted = r.wanted;
    caps.fill(undefined);
    wanted.fill(undefined);
    const src = this.bytesOf(v);
    const nblobs = v.getUint16(off + TE.nblobs, true);
    let at = off + TYPED_BLOBS_AT;
    for (let i = 0; i < nblobs && at + BLOB_HDR.size <= end; i++) {
      const ci = v.getUint8(at + BLOB_HDR.capture);
      const flags = v.getUint8(at + BLOB_HDR.flags);
      const n = Math.min(v.getUint32(at + BLOB_HDR.len, true), end - at - BLOB_HDR.size, ROOM);
      if (ci < CAPTURES) {
        const base = ci * ROOM;
        const from = at + BLOB_HDR.size;
        for (let k = 0; k < n; k++) this.bytes[base + k] = src[from + k]!;
        let view = this.views[ci]!.get(n);
        if (!view) {
          view = new Uint8Array(this.bytes.buffer, base, n);
          this.views[ci]!.set(n, view);
        }
        const c = this.captured[ci]!;
        c.bytes = view;
        c.truncated = (flags & BLOB_TRUNCATED) !== 0;
        c.fault = (flags & BLOB_FAULT) !== 0;
        caps[ci] = c;
        wanted[ci] = v.getUint32(at + BLOB_HDR.want, true) + v.getUint32(at + BLOB_HDR.want + 4, true) * 4294967296;
      }
      at += BLOB_HDR.size + ((n + 7) & ~7);
    }
    return r;
  }

  /** See key(). */
  readonly keyBytes = new Uint8Array(ALL_SLOTS * 8 + CAPTURES * (ROOM + 4));
  private readonly valueBytes = new Uint8Array(this.values.buffer);

  /**
   * Writes what the last record's first `nslots` values and its copies are into keyBytes and
   * returns how many bytes that is: two records with equal keys format the same way.
   */
  key(nslots: number): number {
    const k = this.keyBytes;
    const vb = this.valueBytes;
    const n = Math.min(nslots, ALL_SLOTS) * 8;
    for (let i = 0; i < n; i++) k[i] = vb[i]!;
    let at = n;
    const caps = this.record.captures;
    for (let ci = 0; ci < CAPTURES; ci++) {
      const c = caps[ci];
      if (!c) continue;
      const b = c.bytes;
      const len = b.length;
      k[at] = ci;
      k[at + 1] = (c.truncated ? 1 : 0) | (c.fault ? 2 : 0);
      k[at + 2] = len & 0xff;
      k[at + 3] = len >> 8;
      at += 4;
      for (let i = 0; i < len; i++) k[at + i] = b[i]!;
      at += len;
    }
    return at;
  }

  /** The bytes behind `v`, as one view made once per ring buffer (and per wrapped-record copy). */
  private bytesOf(v: DataView): Uint8Array<ArrayBufferLike> {
    if (v !== this.ring || this.ringBytes.byteOffset !== v.byteOffset || this.ringBytes.buffer !== v.buffer) {
      this.ring = v;
      this.ringBytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
    return this.ringBytes;
  }
}
