// The reused-buffer record reader against lib/args/record.ts decodeTypedRecord (the reference), on
// records laid out as bpf/uprobe.bpf.c emit_typed writes them: same fields, values and copies;
// keys equal exactly when the formatted values are.
import { describe, expect, test } from "bun:test";
import { decodeTypedRecord } from "../../lib/args/record.ts";
import { BLOB_HDR, BLOB_TRUNCATED, TYPED_BLOBS_AT, TYPED_EVENT as TE } from "../../lib/layouts.ts";
import { TypedRecordReader } from "../../lib/usdt/record.ts";

const enc = new TextEncoder();

/** A record at `off` of a fresh 64 KiB buffer: header, values, then one blob per string. */
function record(off: number, o: { pid: number; tid: number; func: number; ts: bigint; values: bigint[]; blobs: { ci: number; text: string; flags?: number; want?: number }[] }): { v: DataView; len: number } {
  const buf = new ArrayBuffer(64 << 10);
  const v = new DataView(buf);
  v.setUint32(off + TE.kind, 1, true);
  v.setUint32(off + TE.pid, o.pid, true);
  v.setUint32(off + TE.tid, o.tid, true);
  v.setUint32(off + TE.func, o.func, true);
  v.setBigUint64(off + TE.ts, o.ts, true);
  v.setUint16(off + TE.nvals, o.values.length, true);
  v.setUint16(off + TE.nblobs, o.blobs.length, true);
  o.values.forEach((x, i) => v.setBigUint64(off + TE.size + i * 8, BigInt.asUintN(64, x), true));
  let at = off + TYPED_BLOBS_AT;
  for (const b of o.blobs) {
    const bytes = enc.encode(b.text);
    v.setUint8(at + BLOB_HDR.capture, b.ci);
    v.setUint8(at + BLOB_HDR.flags, b.flags ?? 0);
    v.setUint32(at + BLOB_HDR.len, bytes.length, true);
    v.setBigUint64(at + BLOB_HDR.want, BigInt(b.want ?? 0), true);
    new Uint8Array(buf, at + BLOB_HDR.size, bytes.length).set(bytes);
    at += BLOB_HDR.size + ((bytes.length + 7) & ~7);
  }
  return { v, len: at - off };
}

function plain(r: ReturnType<typeof decodeTypedRecord>, nvals: number) {
  return {
    head: [r.kind, r.pid, r.tid, r.func, r.tsLo, r.tsHi, r.nspid],
    values: Array.from({ length: nvals }, (_, i) => r.words.getBigUint64(i * 8, true)),
    captures: r.captures.map((c) => (c ? { text: new TextDecoder().decode(c.bytes), truncated: c.truncated, fault: c.fault } : undefined)),
    wanted: [...r.wanted],
  };
}

describe("TypedRecordReader", () => {
  test("reads what decodeTypedRecord reads, into buffers of its own", () => {
    const reader = new TypedRecordReader();
    const a = record(8, { pid: 4242, tid: 4243, func: 1, ts: 0x1234_5678_9abcn, values: [0x7f00n, 0x7f01n, -42n], blobs: [{ ci: 0, text: "/app/x.py" }, { ci: 1, text: "handle", flags: BLOB_TRUNCATED, want: 9 }] });
    const got = plain(reader.read(a.v, 8, a.len), 3);
    expect(got).toEqual(plain(decodeTypedRecord(a.v, 8, a.len), 3));
    expect(got.captures[1]).toEqual({ text: "handle", truncated: true, fault: false });
    // The copies do not change when the ring's bytes do.
    new Uint8Array(a.v.buffer).fill(0);
    expect(new TextDecoder().decode(reader.record.captures[0]!.bytes)).toBe("/app/x.py");
    // The next record replaces everything, including captures the previous one had.
    const b = record(0, { pid: 1, tid: 2, func: 0, ts: 5n, values: [7n], blobs: [] });
    const next = plain(reader.read(b.v, 0, b.len), 3);
    expect(next).toEqual({ ...plain(decodeTypedRecord(b.v, 0, b.len), 1), values: [7n, 0n, 0n] });
  });

  test("keys: equal for the same values and bytes, different when any differs", () => {
    const reader = new TypedRecordReader();
    const keyOf = (values: bigint[], texts: string[], flags = 0) => {
      const r = record(0, { pid: 1, tid: 1, func: 0, ts: 1n, values, blobs: texts.map((text, ci) => ({ ci, text, flags })) });
      reader.read(r.v, 0, r.len);
      return [...reader.keyBytes.subarray(0, reader.key(values.length))].join(",");
    };
    const base = keyOf([1n, 2n, 3n], ["a.py", "f"]);
    expect(keyOf([1n, 2n, 3n], ["a.py", "f"])).toBe(base);
    expect(keyOf([1n, 2n, 4n], ["a.py", "f"])).not.toBe(base);
    expect(keyOf([1n, 2n, 3n], ["a.py", "g"])).not.toBe(base);
    expect(keyOf([1n, 2n, 3n], ["a.p", "yf"])).not.toBe(base);
    expect(keyOf([1n, 2n, 3n], ["a.py", "f"], BLOB_TRUNCATED)).not.toBe(base);
  });

  test("a record shorter than its header reads as nothing", () => {
    const reader = new TypedRecordReader();
    const a = record(0, { pid: 1, tid: 1, func: 0, ts: 1n, values: [1n], blobs: [] });
    expect(reader.read(a.v, 0, 40).kind).toBe(0);
  });
});
