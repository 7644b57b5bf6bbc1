// The .BTF and .BTF.ext sections of a user's BPF object, validated from their raw bytes before
// libbpf 1.1 reads them (it trusts them and crashes on offsets out of range): header, every type
// record inside the type section, every name inside the string section, every referenced type id
// defined; .BTF.ext's subsections and record blocks inside their bounds. Also reads the map types
// a BTF-defined `.maps` entry declares, which bpf-object-check.ts needs to refuse struct_ops maps.

const BTF_MAGIC = 0xeb9f;

export const KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

interface RawType {
  kind: number;
  nameOff: number;
  vlen: number;
  /** size, or the referenced type for PTR/TYPEDEF/modifiers/FUNC/VAR/DECL_TAG/TYPE_TAG. */
  ref: number;
  array?: { elem: number; index: number; nelems: number };
  members: { nameOff: number; type: number }[];
  vars: { type: number; offset: number; size: number }[];
}

export interface RawBtf {
  types: (RawType | undefined)[];
  strings: Uint8Array;
  name(t: RawType): string;
}

/** Kinds whose `ref` field is a type id (the others hold a size). */
const REF_KINDS: Set<number> = new Set([KIND.PTR, KIND.TYPEDEF, KIND.VOLATILE, KIND.CONST, KIND.RESTRICT, KIND.FUNC, KIND.VAR, KIND.DECL_TAG, KIND.TYPE_TAG]);
/** Upper bound on type records: the smallest is 12 bytes, so the section size bounds it anyway. */
const MAX_BTF_BYTES = 64 << 20;

/** The parsed BTF, or what is wrong with it. */
export function validateBtf(raw: Uint8Array): RawBtf | string {
  if (raw.length < 24) return `${raw.length} bytes is too short for a BTF header`;
  if (raw.length > MAX_BTF_BYTES) return `${raw.length} bytes is more than any object's BTF`;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (v.getUint16(0, true) !== BTF_MAGIC) return "bad magic";
  if (raw[2] !== 1) return `unsupported version ${raw[2]}`;
  const hdrLen = v.getUint32(4, true);
  if (hdrLen < 24 || hdrLen > raw.length) return `header length ${hdrLen} is outside 24..${raw.length}`;
  const typeOff = v.getUint32(8, true);
  const typeLen = v.getUint32(12, true);
  const strOff = v.getUint32(16, true);
  const strLen = v.getUint32(20, true);
  const data = raw.length - hdrLen;
  if (typeOff % 4) return `type section offset ${typeOff} is not 4-byte aligned`;
  if (typeOff + typeLen > data || strOff + strLen > data) return `type (${typeOff}+${typeLen}) or string (${strOff}+${strLen}) section past the ${data} data bytes`;
  if (typeOff < strOff + strLen && strOff < typeOff + typeLen) return "the type and string sections overlap";
  const strings = raw.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  if (strLen === 0 || strings[0] !== 0 || strings[strLen - 1] !== 0) return "the string section does not start and end with a NUL";
  const types: (RawType | undefined)[] = [undefined];
  const end = hdrLen + typeOff + typeLen;
  let p = hdrLen + typeOff;
  while (p < end) {
    if (p + 12 > end) return `type ${types.length} is cut short at the end of the type section`;
    const info = v.getUint32(p + 4, true);
    const t: RawType = { kind: (info >>> 24) & 0x1f, nameOff: v.getUint32(p, true), vlen: info & 0xffff, ref: v.getUint32(p + 8, true), members: [], vars: [] };
    p += 12;
    let extra: number;
    switch (t.kind) {
      case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: extra = 4; break;
      case KIND.ARRAY: extra = 12; break;
      case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: extra = 12 * t.vlen; break;
      case KIND.ENUM: case KIND.FUNC_PROTO: extra = 8 * t.vlen; break;
      case KIND.PTR: case KIND.FWD: case KIND.TYPEDEF: case KIND.VOLATILE: case KIND.CONST: case KIND.RESTRICT:
      case KIND.FUNC: case KIND.FLOAT: case KIND.TYPE_TAG: extra = 0; break;
      default: return `type ${types.length} has unknown kind ${t.kind}`;
    }
    if (p + extra > end) return `type ${types.length} (kind ${t.kind}, ${t.vlen} entries) runs past the end of the type section`;
    if (t.kind === KIND.ARRAY) t.array = { elem: v.getUint32(p, true), index: v.getUint32(p + 4, true), nelems: v.getUint32(p + 8, true) };
    if (t.kind === KIND.STRUCT || t.kind === KIND.UNION) {
      for (let i = 0; i < t.vlen; i++) t.members.push({ nameOff: v.getUint32(p + i * 12, true), type: v.getUint32(p + i * 12 + 4, true) });
    }
    if (t.kind === KIND.DATASEC) {
      for (let i = 0; i < t.vlen; i++) t.vars.push({ type: v.getUint32(p + i * 12, true), offset: v.getUint32(p + i * 12 + 4, true), size: v.getUint32(p + i * 12 + 8, true) });
    }
    if (t.kind === KIND.FUNC_PROTO) {
      // Parameters: name, type. The return type is in `ref`.
      for (let i = 0; i < t.vlen; i++) t.members.push({ nameOff: v.getUint32(p + i * 8, true), type: v.getUint32(p + i * 8 + 4, true) });
    }
    if (t.kind === KIND.ENUM || t.kind === KIND.ENUM64) {
      const step = t.kind === KIND.ENUM ? 8 : 12;
      for (let i = 0; i < t.vlen; i++) t.members.push({ nameOff: v.getUint32(p + i * step, true), type: 0 });
    }
    p += extra;
    types.push(t);
  }
  const n = types.length;
  const nameOk = (off: number) => off < strLen;
  for (let id = 1; id < n; id++) {
    const t = types[id]!;
    if (!nameOk(t.nameOff)) return `type ${id}'s name is at ${t.nameOff}, past the ${strLen}-byte string section`;
    if (t.members.some((m) => !nameOk(m.nameOff))) return `a member name of type ${id} is past the ${strLen}-byte string section`;
    const refs: number[] = [];
    if (REF_KINDS.has(t.kind) || (t.kind === KIND.FUNC_PROTO)) refs.push(t.ref);
    if (t.array) refs.push(t.array.elem, t.array.index);
    for (const m of t.members) if (t.kind !== KIND.ENUM && t.kind !== KIND.ENUM64) refs.push(m.type);
    for (const x of t.vars) refs.push(x.type);
    const bad = refs.find((r) => r >= n);
    if (bad !== undefined) return `type ${id} refers to type ${bad}, but there are only ${n - 1}`;
    if (t.kind === KIND.DATASEC && t.vars.some((x) => x.type === 0)) return `section type ${id} has a variable of type 0 (void)`;
  }
  const dec = new TextDecoder("latin1");
  return {
    types,
    strings,
    name: (t) => {
      const e = strings.indexOf(0, t.nameOff);
      return dec.decode(strings.subarray(t.nameOff, e < 0 ? strings.length : e));
    },
  };
}

/** What is wrong with a .BTF.ext section, or undefined. `strLen`: the .BTF string section size. */
export function validateBtfExt(raw: Uint8Array, strLen: number): string | undefined {
  if (raw.length < 8) return `${raw.length} bytes is too short for a header`;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (v.getUint16(0, true) !== BTF_MAGIC) return "bad magic";
  if (raw[2] !== 1) return `unsupported version ${raw[2]}`;
  if (raw[3] !== 0) return `unsupported flags ${raw[3]}`;
  const hdrLen = v.getUint32(4, true);
  if (hdrLen < 24 || hdrLen > raw.length) return `header length ${hdrLen} is outside 24..${raw.length}`;
  const data = raw.length - hdrLen;
  // func_info, line_info, then (headers of 32 bytes and more) CO-RE relocations.
  const subsections: [string, number, number][] = [
    ["func_info", 8, 8],
    ["line_info", 16, 16],
  ];
  if (hdrLen >= 32) subsections.push(["core_relo", 24, 16]);
  for (const [name, at, minRec] of subsections) {
    const off = v.getUint32(at, true);
    const len = v.getUint32(at + 4, true);
    if (len === 0) continue;
    if (off % 4 || off + len > data) return `${name} (${len} bytes at ${off}) is outside the ${data} data bytes`;
    const sub = new DataView(raw.buffer, raw.byteOffset + hdrLen + off, len);
    if (len < 4) return `${name} is too short for its record size`;
    const rec = sub.getUint32(0, true);
    if (rec < minRec || rec % 4 || rec > 1024) return `${name} record size ${rec} is not a plausible size (at least ${minRec}, a multiple of 4)`;
    let p = 4;
    while (p < len) {
      if (p + 8 > len) return `${name} has a section header cut short at ${p}`;
      const secName = sub.getUint32(p, true);
      const num = sub.getUint32(p + 4, true);
      if (secName >= strLen) return `${name} names a section at string ${secName}, past the ${strLen}-byte string section`;
      if (num === 0) return `${name} has an empty section block at ${p}`;
      p += 8;
      if (num * rec > len - p) return `${name} block at ${p - 8} claims ${num} records of ${rec} bytes, more than the ${len - p} bytes left`;
      p += num * rec;
    }
  }
  return undefined;
}

/** Map types in a `.maps` struct: its `type` member (`int (*type)[N]`) and, for maps of maps, the inner map's. */
export function mapTypes(btf: RawBtf, id: number, depth = 0): { path: string; type: number }[] {
  const s = skipModifiers(btf, id);
  if (!s || (s.kind !== KIND.STRUCT && s.kind !== KIND.UNION) || depth > 2) return [];
  const out: { path: string; type: number }[] = [];
  for (const m of s.members) {
    const name = nameAt(btf, m.nameOff);
    if (name === "type") {
      const n = pointerArraySize(btf, m.type);
      if (n !== undefined) out.push({ path: "", type: n });
    } else if (name === "values") {
      // `struct inner *values[]`: an array of pointers to the inner map's definition.
      const arr = skipModifiers(btf, m.type);
      if (arr?.array) {
        const ptr = skipModifiers(btf, arr.array.elem);
        if (ptr?.kind === KIND.PTR) for (const x of mapTypes(btf, ptr.ref, depth + 1)) out.push({ path: ` (inner map${x.path})`, type: x.type });
      }
    }
  }
  return out;
}

/** N of a `int (*)[N]` member, the way libbpf's __uint() encodes numbers. */
function pointerArraySize(btf: RawBtf, id: number): number | undefined {
  const ptr = skipModifiers(btf, id);
  if (!ptr || ptr.kind !== KIND.PTR) return undefined;
  const arr = skipModifiers(btf, ptr.ref);
  return arr?.array?.nelems;
}

function skipModifiers(btf: RawBtf, id: number): RawType | undefined {
  let t = btf.types[id];
  for (let hops = 0; t && hops < 32; hops++) {
    if (t.kind === KIND.TYPEDEF || t.kind === KIND.VOLATILE || t.kind === KIND.CONST || t.kind === KIND.RESTRICT || t.kind === KIND.TYPE_TAG) {
      t = btf.types[t.ref];
    } else {
      return t;
    }
  }
  return undefined;
}

function nameAt(btf: RawBtf, off: number): string {
  const e = btf.strings.indexOf(0, off);
  return new TextDecoder("latin1").decode(btf.strings.subarray(off, e < 0 ? btf.strings.length : e));
}
