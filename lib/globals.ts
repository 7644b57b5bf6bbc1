// Setting a BPF object's global variables (.rodata, .bss, .data) before load, from text, typed by
// the object's BTF: integers and enums in range, booleans, char arrays.
import type { Pointer } from "bun:ffi";
import { ProbeError } from "./errors.ts";
import { Btf, BTF_KIND, type BtfType } from "./btf.ts";
import type { BpfObject } from "./object.ts";

/** The global's name or value does not fit the object: the caller's input was wrong. */
export class GlobalError extends ProbeError {}

export interface GlobalSetting {
  name: string;
  value: string;
}

/** Sets a global variable of .rodata/.bss/.data from text, typed by the object's BTF. */
export function setGlobal(obj: BpfObject, s: GlobalSetting): void {
  const btfPtr = obj.btfHandle();
  if (!btfPtr) throw new GlobalError(`global ${s.name}: ${obj.name} has no BTF`, "compile it with -g");
  const btf = Btf.fromLibbpf(btfPtr as Pointer);
  const known: string[] = [];
  for (const sec of btf.types) {
    if (!sec || sec.kind !== BTF_KIND.DATASEC || !/^\.(rodata|bss|data)/.test(sec.name)) continue;
    for (const v of sec.vars!) {
      const varType = btf.type(v.type);
      if (!varType || varType.kind !== BTF_KIND.VAR) continue;
      known.push(varType.name);
      if (varType.name !== s.name) continue;
      obj.setGlobalData(sec.name, v.offset, encodeValue(btf, varType.sizeOrType, v.size, s));
      return;
    }
  }
  throw new GlobalError(
    `no global variable '${s.name}' in ${obj.name}`,
    known.length ? `its globals: ${known.join(", ")}` : "the object has no .rodata/.bss/.data globals",
  );
}

function encodeValue(btf: Btf, typeId: number, size: number, s: GlobalSetting): Uint8Array {
  const t = btf.resolve(typeId) as BtfType | undefined;
  const out = new Uint8Array(size);
  const bad = (why: string) => new GlobalError(`${s.name}=${s.value}: ${why}`, `${s.name} is ${btf.typeName(typeId)}`);
  if (!t) throw bad("unknown type");
  if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) {
    let v: bigint;
    const text = s.value.trim();
    const e = t.enumValues?.find((x) => x.name === text);
    if (e) v = e.value;
    else if (text === "true" || text === "false") v = text === "true" ? 1n : 0n;
    else if (/^-?(0x[0-9a-f]+|0o[0-7]+|0b[01]+|\d+)$/i.test(text)) v = text.startsWith("-") ? -BigInt(text.slice(1)) : BigInt(text);
    else throw bad("not a number");
    const bits = BigInt(t.sizeOrType * 8);
    const signed = t.kind === BTF_KIND.INT ? (t.int!.encoding & 1) !== 0 : t.kflag;
    const min = signed ? -(1n << (bits - 1n)) : 0n;
    const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
    if (v < min || v > max) throw bad(`out of range for ${t.sizeOrType * 8}-bit ${signed ? "signed" : "unsigned"} integer`);
    let u = BigInt.asUintN(Number(bits), v);
    for (let i = 0; i < t.sizeOrType && i < size; i++, u >>= 8n) out[i] = Number(u & 0xffn);
    return out;
  }
  if (t.kind === BTF_KIND.ARRAY) {
    const elem = btf.resolve(t.array!.type);
    if (elem?.kind === BTF_KIND.INT && elem.sizeOrType === 1) {
      const bytes = new TextEncoder().encode(s.value);
      if (bytes.length > size) throw bad(`longer than ${size} bytes`);
      out.set(bytes);
      return out;
    }
  }
  throw bad("only integers, enums, booleans and char arrays can be set");
}
