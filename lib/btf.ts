// BTF, parsed from its raw bytes: what a map's keys and values (and an object's globals) are, so
// they can be shown as `3200174846 (0xbebecafe)`, `{pid: 12, comm: "curl"}` instead of hex.
// One parser serves both sources: a map's BTF object in the kernel and a libbpf object's own BTF.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { libbpf } from "./ffi/libbpf.ts";
import { OsError, closeFd, errno, ptr } from "./ffi/libc.ts";
import { objInfo } from "./kernel/bpf.ts";
import { ProbeError } from "./errors.ts";

export const BTF_KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

const INT_SIGNED = 1;
const INT_CHAR = 2;
const INT_BOOL = 4;

export class BtfError extends ProbeError {}

export interface BtfMember {
  name: string;
  type: number;
  bitOffset: number;
  /** Non-zero for bitfields. */
  bitSize: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  vlen: number;
  kflag: boolean;
  /** size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT, referenced type for the others. */
  sizeOrType: number;
  int?: { encoding: number; offset: number; bits: number };
  array?: { type: number; indexType: number; nelems: number };
  members?: BtfMember[];
  enumValues?: { name: string; value: bigint }[];
  /** DATASEC: the variables in the section. */
  vars?: { type: number; offset: number; size: number }[];
}

/** Lossless JSON: numbers that fit a double exactly, bigger integers as decimal strings. */
export type JsonValue = number | string | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export class Btf {
  private constructor(readonly types: (BtfType | undefined)[]) {}

  /** Parses raw BTF (untrusted: a user's object, or the kernel's): a malformed one is a BtfError. */
  static parse(raw: Uint8Array): Btf {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (raw.length < 24 || v.getUint16(0, true) !== 0xeb9f) throw new BtfError("not BTF data (bad magic)");
    const hdrLen = v.getUint32(4, true);
    const typeOff = hdrLen + v.getUint32(8, true);
    const typeLen = v.getUint32(12, true);
    const strOff = hdrLen + v.getUint32(16, true);
    const strLen = v.getUint32(20, true);
    if (hdrLen < 24 || typeOff + typeLen > raw.length || strOff + strLen > raw.length) {
      throw new BtfError(`malformed BTF: header (${hdrLen} bytes), types (${typeLen} at ${typeOff}) or strings (${strLen} at ${strOff}) outside its ${raw.length} bytes`);
    }
    const strings = raw.subarray(strOff, strOff + strLen);
    const dec = new TextDecoder();
    const str = (off: number): string => {
      if (off >= strings.length) return "";
      const end = strings.indexOf(0, off);
      return dec.decode(strings.subarray(off, end < 0 ? strings.length : end));
    };
    const types: (BtfType | undefined)[] = [undefined]; // id 0 is void
    let p = typeOff;
    const end = typeOff + typeLen;
    // Each record's trailer (members, values, variables) must fit before it is read.
    const need = (n: number, id: number) => {
      if (p + n > end) throw new BtfError(`malformed BTF: type ${id} runs past the end of the type section`);
    };
    while (p + 12 <= end) {
      const info = v.getUint32(p + 4, true);
      const t: BtfType = {
        id: types.length,
        name: str(v.getUint32(p, true)),
        vlen: info & 0xffff,
        kind: (info >>> 24) & 0x1f,
        kflag: (info >>> 31) === 1,
        sizeOrType: v.getUint32(p + 8, true),
      };
      p += 12;
      const vlen = t.vlen;
      switch (t.kind) {
        case BTF_KIND.INT: case BTF_KIND.VAR: case BTF_KIND.DECL_TAG: need(4, t.id); break;
        case BTF_KIND.ARRAY: need(12, t.id); break;
        case BTF_KIND.STRUCT: case BTF_KIND.UNION: case BTF_KIND.DATASEC: case BTF_KIND.ENUM64: need(12 * vlen, t.id); break;
        case BTF_KIND.ENUM: case BTF_KIND.FUNC_PROTO: need(8 * vlen, t.id); break;
      }
      switch (t.kind) {
        case BTF_KIND.INT: {
          const x = v.getUint32(p, true);
          t.int = { encoding: (x >>> 24) & 0xf, offset: (x >>> 16) & 0xff, bits: x & 0xff };
          p += 4;
          break;
        }
        case BTF_KIND.ARRAY:
          t.array = { type: v.getUint32(p, true), indexType: v.getUint32(p + 4, true), nelems: v.getUint32(p + 8, true) };
          p += 12;
          break;
        case BTF_KIND.STRUCT:
        case BTF_KIND.UNION:
          t.members = [];
          for (let i = 0; i < t.vlen; i++, p += 12) {
            const off = v.getUint32(p + 8, true);
            t.members.push({
              name: str(v.getUint32(p, true)),
              type: v.getUint32(p + 4, true),
              bitOffset: t.kflag ? off & 0xffffff : off,
              bitSize: t.kflag ? off >>> 24 : 0,
            });
          }
          break;
        case BTF_KIND.ENUM:
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, p += 8) {
            const val = t.kflag ? BigInt(v.getInt32(p + 4, true)) : BigInt(v.getUint32(p + 4, true));
            t.enumValues.push({ name: str(v.getUint32(p, true)), value: val });
          }
          break;
        case BTF_KIND.ENUM64:
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, p += 12) {
            const u = (BigInt(v.getUint32(p + 8, true)) << 32n) | BigInt(v.getUint32(p + 4, true));
            t.enumValues.push({ name: str(v.getUint32(p, true)), value: t.kflag ? BigInt.asIntN(64, u) : u });
          }
          break;
        case BTF_KIND.FUNC_PROTO:
          p += 8 * t.vlen;
          break;
        case BTF_KIND.VAR:
        case BTF_KIND.DECL_TAG:
          p += 4;
          break;
        case BTF_KIND.DATASEC:
          t.vars = [];
          for (let i = 0; i < t.vlen; i++, p += 12) {
            t.vars.push({ type: v.getUint32(p, true), offset: v.getUint32(p + 4, true), size: v.getUint32(p + 8, true) });
          }
          break;
        default:
          break; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG: nothing more
      }
      types.push(t);
    }
    return new Btf(types);
  }

  /** The BTF object a map (or program) was loaded with, read back from the kernel by its id. */
  static fromKernel(btfId: number): Btf {
    const fd = libbpf().bpf_btf_get_fd_by_id(btfId);
    if (fd < 0) throw new OsError("bpf(BTF_GET_FD_BY_ID)", errno(), `BTF id ${btfId}`);
    try {
      // struct bpf_btf_info { u64 btf; u32 btf_size; u32 id; u64 name; u32 name_len; u32 kernel_btf; }
      const size = objInfo(fd, 32).getUint32(8, true);
      const raw = new Uint8Array(size);
      objInfo(fd, 32, (w) => {
        w.setBigUint64(0, BigInt(ptr(raw)), true);
        w.setUint32(8, size, true);
      });
      return Btf.parse(raw);
    } finally {
      closeFd(fd);
    }
  }

  /** The BTF of an opened libbpf object (`struct btf *` from bpf_object__btf), copied out. */
  static fromLibbpf(btf: Pointer): Btf {
    const size = new Uint32Array(1);
    const data = libbpf().btf__raw_data(btf, size);
    if (!data) throw new BtfError("libbpf has no raw BTF data for this object");
    return Btf.parse(new Uint8Array(toArrayBuffer(data, 0, size[0]!)).slice());
  }

  type(id: number): BtfType | undefined {
    return this.types[id];
  }

  find(name: string, kind?: number): BtfType | undefined {
    return this.types.find((t) => t !== undefined && t.name === name && (kind === undefined || t.kind === kind));
  }

  /** Follows typedef/const/volatile/restrict/type_tag (and VAR) to the type that has a shape. */
  resolve(id: number): BtfType | undefined {
    let t = this.types[id];
    for (let hops = 0; t && hops < 64; hops++) {
      if (t.kind === BTF_KIND.TYPEDEF || t.kind === BTF_KIND.VOLATILE || t.kind === BTF_KIND.CONST ||
          t.kind === BTF_KIND.RESTRICT || t.kind === BTF_KIND.TYPE_TAG || t.kind === BTF_KIND.VAR) {
        t = this.types[t.sizeOrType];
      } else return t;
    }
    return t;
  }

  sizeOf(id: number, depth = 0): number {
    const t = this.resolve(id);
    if (depth > 32) return 0; // arrays of arrays this deep are a loop in hostile BTF
    if (!t) return 0;
    switch (t.kind) {
      case BTF_KIND.INT: case BTF_KIND.STRUCT: case BTF_KIND.UNION: case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
      case BTF_KIND.DATASEC: case BTF_KIND.FLOAT:
        return t.sizeOrType;
      case BTF_KIND.PTR:
        return 8;
      case BTF_KIND.ARRAY:
        return t.array!.nelems * this.sizeOf(t.array!.type, depth + 1);
      default:
        return 0;
    }
  }

  /** The C-ish name of a type, for messages: `struct key`, `__u32`, `char[16]`. */
  typeName(id: number, depth = 0): string {
    const t = this.types[id];
    if (!t) return "void";
    if (depth > 16) return "...";
    switch (t.kind) {
      case BTF_KIND.STRUCT: return `struct ${t.name || "(anon)"}`;
      case BTF_KIND.UNION: return `union ${t.name || "(anon)"}`;
      case BTF_KIND.ENUM: case BTF_KIND.ENUM64: return `enum ${t.name || "(anon)"}`;
      case BTF_KIND.PTR: return `${this.typeName(t.sizeOrType, depth + 1)} *`;
      case BTF_KIND.ARRAY: return `${this.typeName(t.array!.type, depth + 1)}[${t.array!.nelems}]`;
      case BTF_KIND.CONST: return `const ${this.typeName(t.sizeOrType, depth + 1)}`;
      case BTF_KIND.VOLATILE: return `volatile ${this.typeName(t.sizeOrType, depth + 1)}`;
      default: return t.name || "(anon)";
    }
  }

  /** Human text for the bytes of a value of type `id`. */
  format(id: number, bytes: Uint8Array): string {
    return this.render(id, bytes, 0, false) as string;
  }

  /** JSON for the bytes of a value of type `id` (integers beyond 2^53 as strings). */
  toJson(id: number, bytes: Uint8Array): JsonValue {
    return this.render(id, bytes, 0, true) as JsonValue;
  }

  private render(id: number, b: Uint8Array, depth: number, json: boolean): string | JsonValue {
    const t = this.resolve(id);
    if (!t || depth > 32) return hexBytes(b);
    switch (t.kind) {
      case BTF_KIND.INT: {
        if (t.int!.encoding & INT_BOOL) {
          const on = readUint(b, 0, t.sizeOrType) !== 0n;
          return json ? on : String(on);
        }
        const bits = t.int!.bits;
        let raw = readUint(b, 0, t.sizeOrType) >> BigInt(t.int!.offset);
        if (bits < 64) raw &= (1n << BigInt(bits)) - 1n;
        const signed = (t.int!.encoding & INT_SIGNED) !== 0;
        const val = signed ? BigInt.asIntN(bits, raw) : raw;
        return json ? jsonInt(val) : intText(val, raw);
      }
      case BTF_KIND.ENUM:
      case BTF_KIND.ENUM64: {
        const raw = readUint(b, 0, t.sizeOrType);
        const val = t.kflag ? BigInt.asIntN(t.sizeOrType * 8, raw) : raw;
        const e = t.enumValues!.find((x) => x.value === val || BigInt.asUintN(t.sizeOrType * 8, x.value) === raw);
        if (e) return e.name;
        return json ? jsonInt(val) : intText(val, raw);
      }
      case BTF_KIND.PTR: {
        const raw = readUint(b, 0, 8);
        return `0x${raw.toString(16)}`;
      }
      case BTF_KIND.FLOAT: {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        const x = t.sizeOrType === 4 ? v.getFloat32(0, true) : t.sizeOrType === 8 ? v.getFloat64(0, true) : NaN;
        return json ? (Number.isFinite(x) ? x : String(x)) : String(x);
      }
      case BTF_KIND.ARRAY: {
        const a = t.array!;
        const elem = this.resolve(a.type);
        const esize = this.sizeOf(a.type);
        if (elem && isCharType(elem)) {
          const s = cString(b.subarray(0, a.nelems));
          return json ? s : JSON.stringify(s);
        }
        const out: (string | JsonValue)[] = [];
        // No more elements than the bytes hold: a hostile nelems must not drive the loop.
        const count = esize > 0 ? Math.min(a.nelems, Math.ceil(b.length / esize)) : 0;
        for (let i = 0; i < count; i++) out.push(this.render(a.type, b.subarray(i * esize, (i + 1) * esize), depth + 1, json));
        return json ? (out as JsonValue[]) : `[${out.join(", ")}]`;
      }
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION: {
        const obj: Record<string, JsonValue> = {};
        const parts: string[] = [];
        let anon = 0;
        for (const m of t.members!) {
          const name = m.name || `_${anon++}`;
          let val: string | JsonValue;
          if (m.bitSize > 0 || m.bitOffset % 8 !== 0) {
            val = this.bitfield(m, b, json);
          } else {
            const off = m.bitOffset / 8;
            val = this.render(m.type, b.subarray(off, off + this.sizeOf(m.type)), depth + 1, json);
          }
          obj[name] = val as JsonValue;
          parts.push(`${name}: ${val as string}`);
        }
        return json ? obj : `{${parts.join(", ")}}`;
      }
      case BTF_KIND.DATASEC: {
        // A global data section (.rodata/.bss/.data map value): its variables by name.
        const obj: Record<string, JsonValue> = {};
        const parts: string[] = [];
        for (const v of t.vars!) {
          const name = this.types[v.type]?.name ?? `@${v.offset}`;
          const val = this.render(v.type, b.subarray(v.offset, v.offset + v.size), depth + 1, json);
          obj[name] = val as JsonValue;
          parts.push(`${name}: ${val as string}`);
        }
        return json ? obj : `{${parts.join(", ")}}`;
      }
      default:
        return hexBytes(b);
    }
  }

  private bitfield(m: BtfMember, b: Uint8Array, json: boolean): string | JsonValue {
    const t = this.resolve(m.type);
    const bits = m.bitSize || (t ? this.sizeOf(m.type) * 8 : 8);
    const shift = m.bitOffset % 8;
    const whole = readUint(b, Math.floor(m.bitOffset / 8), Math.ceil((shift + bits) / 8));
    const raw = (whole >> BigInt(shift)) & ((1n << BigInt(bits)) - 1n);
    const signed = t?.kind === BTF_KIND.INT && (t.int!.encoding & INT_SIGNED) !== 0;
    const val = signed ? BigInt.asIntN(bits, raw) : raw;
    if (t?.kind === BTF_KIND.ENUM || t?.kind === BTF_KIND.ENUM64) {
      const e = t.enumValues!.find((x) => x.value === val);
      if (e) return e.name;
    }
    return json ? jsonInt(val) : intText(val, raw);
  }
}

function isCharType(t: BtfType): boolean {
  if (t.kind !== BTF_KIND.INT || t.sizeOrType !== 1) return false;
  return (t.int!.encoding & INT_CHAR) !== 0 || t.name === "char" || t.name === "signed char";
}

function readUint(b: Uint8Array, off: number, size: number): bigint {
  let x = 0n;
  for (let i = Math.min(size, b.length - off) - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[off + i]!);
  return x;
}

/** `3200174846 (0xbebecafe)`; negative numbers show their two's-complement bits in hex. */
function intText(val: bigint, raw: bigint): string {
  return `${val} (0x${raw.toString(16)})`;
}

function jsonInt(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** The string in a char array up to its NUL, with control bytes escaped. */
function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  const s = new TextDecoder("utf-8", { fatal: false }).decode(b.subarray(0, end < 0 ? b.length : end));
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Bytes in memory order: `fe ca be be`. */
export function hexBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}


export interface MapBtfIds {
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

/**
 * Formats one map's keys and values: from its BTF when the map has it, as hex bytes otherwise.
 * The BTF is loaded once per formatter.
 */
export class MapFormatter {
  readonly btf: Btf | undefined;
  readonly keyType: string;
  readonly valueType: string;

  constructor(private readonly ids: MapBtfIds) {
    let btf: Btf | undefined;
    if (ids.btfId) {
      try {
        btf = Btf.fromKernel(ids.btfId);
      } catch {
        btf = undefined; // formatting falls back to hex; the map is still readable
      }
    }
    this.btf = btf;
    this.keyType = btf && ids.btfKeyTypeId ? btf.typeName(ids.btfKeyTypeId) : "";
    this.valueType = btf && ids.btfValueTypeId ? btf.typeName(ids.btfValueTypeId) : "";
  }

  key(b: Uint8Array): string {
    return this.btf && this.ids.btfKeyTypeId ? this.btf.format(this.ids.btfKeyTypeId, b) : hexBytes(b);
  }

  value(b: Uint8Array): string {
    return this.btf && this.ids.btfValueTypeId ? this.btf.format(this.ids.btfValueTypeId, b) : hexBytes(b);
  }

  keyJson(b: Uint8Array): JsonValue {
    return this.btf && this.ids.btfKeyTypeId ? this.btf.toJson(this.ids.btfKeyTypeId, b) : hexBytes(b);
  }

  valueJson(b: Uint8Array): JsonValue {
    return this.btf && this.ids.btfValueTypeId ? this.btf.toJson(this.ids.btfValueTypeId, b) : hexBytes(b);
  }
}
