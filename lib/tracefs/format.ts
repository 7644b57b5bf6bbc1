// A tracepoint's record layout, from tracefs `events/CAT/NAME/format`:
//
//   name: sched_process_exec
//   ID: 365
//   format:
//   	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
//   	...                                   (blank line: end of the common header)
//   	field:__data_loc char[] filename;	offset:8;	size:4;	signed:0;
//   print fmt: "filename=%s pid=%d ...", __get_str(filename), ...
//
// compileDecoder turns the parsed layout into one function that decodes a raw record (what a BPF
// program copies from the tracepoint's context, or a ring-buffer event's payload) into named
// values, so the per-record work is only the reads.
import { ProbeError } from "../errors.ts";

export class TraceFormatError extends ProbeError {}

export type FieldKind =
  /** An integer (also bool, enum, and the syscall arguments stored in 8 bytes). */
  | "int"
  /** A pointer: an address in the traced context, decoded as hex text. */
  | "pointer"
  /** A fixed `char x[N]`: text up to the first NUL. */
  | "string"
  /** A fixed array of integers: a list. */
  | "array"
  /** `__data_loc T[] x`: a u32 (offset in the record: low 16 bits; length in bytes: high 16). */
  | "data_loc"
  /** `__rel_loc T[] x`: like data_loc, offset counted from the end of this field. */
  | "rel_loc"
  /** Anything else (a struct by value): its bytes as hex text. */
  | "bytes";

export interface TraceField {
  /** The declared type as the file writes it (`const char *`, `__data_loc char[]`, `pid_t`). */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  /** One of the common_* header fields every record of every event starts with. */
  common: boolean;
  kind: FieldKind;
  /** Arrays, data_loc and rel_loc: the element type (`char`, `u8`, `unsigned long`). */
  elementType?: string;
  /** Arrays, data_loc and rel_loc: bytes per element (1 when unknown). */
  elementSize?: number;
  /** Fixed arrays: element count (size / elementSize when the file writes a macro). 0 for `x[]`. */
  length?: number;
  /**
   * How an integer field (or array element) is read: bytes and signedness. Narrower than `size`
   * when the declared C type is: syscall arguments are stored as 8-byte longs whatever their type
   * (`int dfd; size:8; signed:0` holds AT_FDCWD as 0xffffffffffffff9c, read as int: -100).
   */
  valueSize: number;
  valueSigned: boolean;
}

export interface TraceFormat {
  /** The event's name (`sched_process_exec`). */
  name: string;
  /** The event id: `common_type` of its records, and perf_event_attr.config. */
  id: number;
  fields: TraceField[];
  /** The `print fmt:` text, verbatim. */
  printFmt: string;
  /** Bytes up to the end of the last fixed field: a record is at least this long. */
  fixedSize: number;
}

const MAX_FORMAT = 1 << 20;
const MAX_FIELDS = 4096;

/** Parses a format file's text. `source` (its path) names it in errors. */
export function parseTraceFormat(text: string, source: string): TraceFormat {
  if (text.length > MAX_FORMAT) throw new TraceFormatError(`${source}: format file too large (${text.length} bytes)`);
  const lines = text.split("\n");
  let name: string | undefined;
  let id: number | undefined;
  let printFmt = "";
  const fields: TraceField[] = [];
  let inFormat = false;
  let commonBlock = true;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = raw.trim();
    const where = `${source}:${i + 1}`;
    if (line.startsWith("print fmt:")) {
      printFmt = raw.slice(raw.indexOf("print fmt:") + 10).trim();
      break;
    }
    if (!inFormat) {
      if (line.startsWith("name:")) name = line.slice(5).trim();
      else if (line.startsWith("ID:")) {
        const v = line.slice(3).trim();
        if (!/^\d{1,9}$/.test(v)) throw new TraceFormatError(`${where}: malformed ID '${clip(v)}'`);
        id = Number(v);
      } else if (line === "format:") inFormat = true;
      continue;
    }
    if (line === "") {
      if (fields.length) commonBlock = false;
      continue;
    }
    if (!line.startsWith("field:")) throw new TraceFormatError(`${where}: expected a field line, found '${clip(line)}'`);
    if (fields.length >= MAX_FIELDS) throw new TraceFormatError(`${source}: more than ${MAX_FIELDS} fields`);
    const f = parseFieldLine(line, where);
    f.common = commonBlock && f.name.startsWith("common_");
    fields.push(f);
  }
  if (name === undefined) throw new TraceFormatError(`${source}: no 'name:' line (not a tracepoint format file)`);
  if (id === undefined) throw new TraceFormatError(`${source}: no 'ID:' line`);
  if (!inFormat) throw new TraceFormatError(`${source}: no 'format:' section`);
  let fixedSize = 0;
  for (const f of fields) fixedSize = Math.max(fixedSize, f.offset + f.size);
  return { name, id, fields, printFmt, fixedSize };
}

/** `field:TYPE NAME;	offset:N;	size:N;	signed:N;` (signed is absent on old kernels). */
function parseFieldLine(line: string, where: string): TraceField {
  const parts = line.split(";").map((p) => p.trim()).filter((p) => p !== "");
  const decl = parts[0]!.slice("field:".length).trim();
  const attrs = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const c = p.indexOf(":");
    if (c < 0) throw new TraceFormatError(`${where}: malformed attribute '${clip(p)}'`);
    attrs.set(p.slice(0, c).trim(), p.slice(c + 1).trim());
  }
  const num = (key: string, required: boolean): number | undefined => {
    const v = attrs.get(key);
    if (v === undefined) {
      if (required) throw new TraceFormatError(`${where}: field has no ${key}`);
      return undefined;
    }
    if (!/^\d{1,7}$/.test(v)) throw new TraceFormatError(`${where}: malformed ${key} '${clip(v)}'`);
    return Number(v);
  };
  const offset = num("offset", true)!;
  const size = num("size", true)!;
  const signedAttr = num("signed", false);

  // "TYPE NAME", "TYPE NAME[LEN]"; data_loc/rel_loc write "__data_loc TYPE[] NAME".
  const m = /^(.*?)([A-Za-z_]\w*)\s*(?:\[\s*([^\]]*?)\s*\])?$/.exec(decl);
  if (!m || m[1]!.trim() === "") throw new TraceFormatError(`${where}: malformed field declaration '${clip(decl)}'`);
  const type = m[1]!.trim();
  const name = m[2]!;
  const arrayText = m[3];
  const signed = signedAttr === undefined ? defaultSigned(type) : signedAttr !== 0;
  const base: Omit<TraceField, "kind" | "valueSize" | "valueSigned"> = { type, name, offset, size, signed, common: false };

  const loc = /^__(data|rel)_loc\s+(.*?)\s*(\[\s*\])?$/.exec(type);
  if (loc) {
    if (size !== 4) throw new TraceFormatError(`${where}: ${loc[1]}_loc field ${name} has size ${size}, not 4`);
    const elementType = loc[2]!;
    const elementSize = loc[3] ? (scalarSize(elementType) ?? 1) : 1;
    return {
      ...base,
      kind: loc[1] === "data" ? "data_loc" : "rel_loc",
      elementType,
      elementSize,
      valueSize: elementSize,
      valueSigned: loc[3] ? (scalarSigned(elementType) ?? signed) : false,
    };
  }

  if (arrayText !== undefined) {
    const elementType = type;
    let length: number;
    let elementSize: number;
    if (/^\d{1,7}$/.test(arrayText)) {
      length = Number(arrayText);
      elementSize = length > 0 ? size / length : (scalarSize(elementType) ?? 1);
      if (length > 0 && !Number.isInteger(elementSize)) throw new TraceFormatError(`${where}: array ${name}[${length}] of ${size} bytes`);
    } else {
      // `char comm[TASK_COMM_LEN]` on old kernels, `u32 buf[]` (flexible): size from the type.
      elementSize = scalarSize(elementType) ?? 1;
      length = Math.floor(size / elementSize);
    }
    const kind: FieldKind = isChar(elementType) && elementSize === 1 ? "string" : elementSize <= 8 ? "array" : "bytes";
    return {
      ...base,
      kind,
      elementType,
      elementSize,
      length,
      valueSize: elementSize,
      valueSigned: scalarSigned(elementType) ?? signed,
    };
  }

  if (type.includes("*")) {
    if (size !== 4 && size !== 8) throw new TraceFormatError(`${where}: pointer field ${name} has size ${size}`);
    return { ...base, kind: "pointer", valueSize: size, valueSigned: false };
  }

  if (size === 1 || size === 2 || size === 4 || size === 8) {
    const natural = scalarSize(type);
    if (natural !== undefined && natural < size) {
      return { ...base, kind: "int", valueSize: natural, valueSigned: scalarSigned(type) ?? signed };
    }
    return { ...base, kind: "int", valueSize: size, valueSigned: signed };
  }
  return { ...base, kind: "bytes", valueSize: size, valueSigned: false };
}

/** Sizes and signedness of the C scalar types tracepoints declare (x86-64, kernel typedefs). */
const SCALARS = new Map<string, [number, boolean]>([
  ["char", [1, true]], ["signed char", [1, true]], ["unsigned char", [1, false]], ["bool", [1, false]], ["_Bool", [1, false]],
  ["short", [2, true]], ["short int", [2, true]], ["signed short", [2, true]], ["unsigned short", [2, false]], ["unsigned short int", [2, false]],
  ["int", [4, true]], ["signed int", [4, true]], ["signed", [4, true]], ["unsigned int", [4, false]], ["unsigned", [4, false]], ["uint", [4, false]],
  ["long", [8, true]], ["long int", [8, true]], ["signed long", [8, true]], ["unsigned long", [8, false]], ["unsigned long int", [8, false]],
  ["long long", [8, true]], ["long long int", [8, true]], ["unsigned long long", [8, false]], ["unsigned long long int", [8, false]],
  ["s8", [1, true]], ["u8", [1, false]], ["s16", [2, true]], ["u16", [2, false]], ["s32", [4, true]], ["u32", [4, false]], ["s64", [8, true]], ["u64", [8, false]],
  ["__s8", [1, true]], ["__u8", [1, false]], ["__s16", [2, true]], ["__u16", [2, false]], ["__s32", [4, true]], ["__u32", [4, false]], ["__s64", [8, true]], ["__u64", [8, false]],
  ["int8_t", [1, true]], ["uint8_t", [1, false]], ["int16_t", [2, true]], ["uint16_t", [2, false]], ["int32_t", [4, true]], ["uint32_t", [4, false]], ["int64_t", [8, true]], ["uint64_t", [8, false]],
  ["__le16", [2, false]], ["__le32", [4, false]], ["__le64", [8, false]], ["__be16", [2, false]], ["__be32", [4, false]], ["__be64", [8, false]],
  ["pid_t", [4, true]], ["tid_t", [4, true]], ["uid_t", [4, false]], ["gid_t", [4, false]], ["qid_t", [4, false]], ["umode_t", [2, false]], ["mode_t", [4, false]],
  ["size_t", [8, false]], ["ssize_t", [8, true]], ["off_t", [8, true]], ["loff_t", [8, true]], ["time64_t", [8, true]], ["ino_t", [8, false]],
  ["dev_t", [4, false]], ["gfp_t", [4, false]], ["key_t", [4, true]], ["key_serial_t", [4, true]], ["clockid_t", [4, true]], ["timer_t", [4, true]],
  ["mqd_t", [4, true]], ["rwf_t", [4, true]], ["aio_context_t", [8, false]], ["sector_t", [8, false]], ["blkcnt_t", [8, false]],
  ["dma_addr_t", [8, false]], ["phys_addr_t", [8, false]], ["resource_size_t", [8, false]], ["vm_flags_t", [8, false]], ["errseq_t", [4, false]],
  ["__kernel_old_time_t", [8, true]], ["cap_user_header_t", [8, false]], ["cap_user_data_t", [8, false]],
]);

function bareType(type: string): string {
  return type.replace(/\b(const|volatile)\b/g, "").replace(/\s+/g, " ").trim();
}

function scalarSize(type: string): number | undefined {
  return SCALARS.get(bareType(type))?.[0];
}

function scalarSigned(type: string): boolean | undefined {
  return SCALARS.get(bareType(type))?.[1];
}

function defaultSigned(type: string): boolean {
  return scalarSigned(type) ?? false;
}

function isChar(type: string): boolean {
  return bareType(type) === "char" || bareType(type) === "signed char";
}

function clip(s: string): string {
  const t = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, "?");
}

/**
 * A decoded value. Integers of up to 4 bytes are numbers, 8-byte ones bigints (per field, never
 * mixed); pointers and opaque bytes are hex text (`0x7ffd...`); char arrays and `__data_loc char[]`
 * are text; other arrays are lists; a data_loc that points outside the record is null.
 */
export type TraceValue = number | bigint | string | null | TraceValue[];
export type TraceRecord = Record<string, TraceValue>;
export type TraceDecoder = (record: Uint8Array) => TraceRecord;

export interface DecoderOptions {
  /** Include the common_* header fields (default false). */
  common?: boolean;
}

const utf8 = new TextDecoder("utf-8");

/** Compiles `format` into a decoder for its raw records (little-endian, as x86-64 writes them). */
export function compileDecoder(format: TraceFormat, options: DecoderOptions = {}): TraceDecoder {
  const fields = format.fields.filter((f) => options.common || !f.common);
  const readers = fields.map((f) => fieldReader(f));
  const names = fields.map((f) => f.name);
  const need = format.fixedSize;
  const event = format.name;
  return (rec) => {
    if (rec.length < need) throw new TraceFormatError(`${event} record of ${rec.length} bytes is shorter than its format's ${need}`);
    const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    const out: TraceRecord = {};
    for (let i = 0; i < readers.length; i++) out[names[i]!] = readers[i]!(dv, rec);
    return out;
  };
}

type Reader = (dv: DataView, rec: Uint8Array) => TraceValue;

function intReader(size: number, signed: boolean): (dv: DataView, at: number) => number | bigint {
  switch (size) {
    case 1:
      return signed ? (dv, at) => dv.getInt8(at) : (dv, at) => dv.getUint8(at);
    case 2:
      return signed ? (dv, at) => dv.getInt16(at, true) : (dv, at) => dv.getUint16(at, true);
    case 4:
      return signed ? (dv, at) => dv.getInt32(at, true) : (dv, at) => dv.getUint32(at, true);
    case 8:
      return signed ? (dv, at) => dv.getBigInt64(at, true) : (dv, at) => dv.getBigUint64(at, true);
    default:
      throw new TraceFormatError(`integer of ${size} bytes`);
  }
}

function fieldReader(f: TraceField): Reader {
  const at = f.offset;
  switch (f.kind) {
    case "int": {
      const read = intReader(f.valueSize, f.valueSigned);
      return (dv) => read(dv, at);
    }
    case "pointer": {
      const size = f.size;
      return (dv) => `0x${(size === 8 ? dv.getBigUint64(at, true) : dv.getUint32(at, true)).toString(16)}`;
    }
    case "string": {
      // `char buf[]` (size 0) runs to the end of the record.
      if (f.size === 0) return (_dv, rec) => text(rec, at, rec.length);
      const end = at + f.size;
      return (_dv, rec) => text(rec, at, end);
    }
    case "array": {
      if (f.size === 0) {
        // Flexible array: the rest of the record.
        const es = f.elementSize!;
        const read = intReader(es, f.valueSigned);
        return (dv, rec) => list(dv, read, at, Math.floor((rec.length - at) / es), es);
      }
      const n = f.length!;
      const es = f.elementSize!;
      const read = intReader(es, f.valueSigned);
      return (dv) => list(dv, read, at, n, es);
    }
    case "data_loc":
    case "rel_loc": {
      const rel = f.kind === "rel_loc" ? at + f.size : 0;
      const es = f.elementSize!;
      const asText = isChar(f.elementType!) && es === 1;
      const asList = !asText && /\[\s*\]$/.test(f.type);
      const read = asList ? intReader(es, f.valueSigned) : undefined;
      return (dv, rec) => {
        const loc = dv.getUint32(at, true);
        const start = rel + (loc & 0xffff);
        const len = loc >>> 16;
        if (start + len > rec.length) return null;
        if (asText) return text(rec, start, start + len);
        if (read) return list(dv, read, start, Math.floor(len / es), es);
        return hex(rec, start, start + len);
      };
    }
    case "bytes": {
      const end = at + f.size;
      return (_dv, rec) => hex(rec, at, Math.min(end, rec.length));
    }
  }
}

function text(rec: Uint8Array, start: number, end: number): string {
  let e = start;
  let ascii = true;
  for (; e < end; e++) {
    const b = rec[e]!;
    if (b === 0) break;
    if (b >= 0x80) ascii = false;
  }
  // Most strings (comm, paths) are ASCII: far cheaper than a TextDecoder call per field.
  if (ascii && e - start <= 4096) return String.fromCharCode.apply(null, rec.subarray(start, e) as unknown as number[]);
  return utf8.decode(rec.subarray(start, e));
}

function list(dv: DataView, read: (dv: DataView, at: number) => number | bigint, at: number, n: number, es: number): (number | bigint)[] {
  const out: (number | bigint)[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = read(dv, at + i * es);
  return out;
}

function hex(rec: Uint8Array, start: number, end: number): string {
  let s = "0x";
  for (let i = start; i < end; i++) s += rec[i]!.toString(16).padStart(2, "0");
  return s;
}
