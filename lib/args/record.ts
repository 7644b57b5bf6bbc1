// A typed record from the ring buffer (bpf/args.h struct typed_event), decoded into what the value
// formatters read: the values (slot i at byte 8*i) and the memory each capture copied.
import { BLOB_FAULT, BLOB_HDR, BLOB_TRUNCATED, CAPTURES, TYPED_BLOBS_AT, TYPED_EVENT as TE } from "../layouts.ts";
import type { Captured, RawValues } from "../types/format.ts";

export interface TypedRecord extends RawValues {
  kind: number;
  pid: number;
  tid: number;
  func: number;
  /** Kernel CLOCK_MONOTONIC ns as two halves (no BigInt per event). */
  tsLo: number;
  tsHi: number;
  nspid: number;
  latencyLo: number;
  latencyHi: number;
  /** Bytes a buffer capture's length asked for (indexed like captures). */
  wanted: (number | undefined)[];
}

/**
 * Decodes the record at `off` of `v` (`len` bytes). The values are a view into the record: use
 * them before the ring buffer moves on. Captures are indexed by the function's capture number.
 */
export function decodeTypedRecord(v: DataView, off: number, len: number): TypedRecord {
  const captures: (Captured | undefined)[] = new Array(CAPTURES);
  const wanted: (number | undefined)[] = new Array(CAPTURES);
  const nblobs = v.getUint16(off + TE.nblobs, true);
  let at = off + TYPED_BLOBS_AT;
  const end = off + len;
  for (let i = 0; i < nblobs && at + BLOB_HDR.size <= end; i++) {
    const ci = v.getUint8(at + BLOB_HDR.capture);
    const flags = v.getUint8(at + BLOB_HDR.flags);
    const n = Math.min(v.getUint32(at + BLOB_HDR.len, true), end - at - BLOB_HDR.size);
    const bytes = new Uint8Array(v.buffer, v.byteOffset + at + BLOB_HDR.size, n);
    if (ci < CAPTURES) {
      captures[ci] = { bytes, truncated: (flags & BLOB_TRUNCATED) !== 0, fault: (flags & BLOB_FAULT) !== 0 };
      wanted[ci] = Number(v.getBigUint64(at + BLOB_HDR.want, true));
    }
    at += BLOB_HDR.size + ((n + 7) & ~7);
  }
  return {
    kind: v.getUint32(off + TE.kind, true),
    pid: v.getUint32(off + TE.pid, true),
    tid: v.getUint32(off + TE.tid, true),
    func: v.getUint32(off + TE.func, true),
    tsLo: v.getUint32(off + TE.ts, true),
    tsHi: v.getUint32(off + TE.ts + 4, true),
    nspid: v.getUint32(off + TE.nspid, true),
    latencyLo: v.getUint32(off + TE.latency, true),
    latencyHi: v.getUint32(off + TE.latency + 4, true),
    words: new DataView(v.buffer, v.byteOffset + off + TE.size, TYPED_BLOBS_AT - TE.size),
    captures,
    wanted,
  };
}
