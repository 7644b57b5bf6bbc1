// An ELF64 reader that works on an open fd: it reads headers and the sections it is asked for,
// never the whole file, so that a 100 MB Go binary or a library inside a container costs little.
import { readSync, fstatSync } from "node:fs";
import { ProbeError } from "./errors.ts";

export const ET = { EXEC: 2, DYN: 3 } as const;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PF_X = 1;
export const SHT = { SYMTAB: 2, STRTAB: 3, NOTE: 7, NOBITS: 8, DYNSYM: 11, VERDEF: 0x6ffffffd, VERNEED: 0x6ffffffe, VERSYM: 0x6fffffff } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, TLS: 6, GNU_IFUNC: 10 } as const;
export const SHN_UNDEF = 0;

export class ElfError extends ProbeError {}

export interface Segment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface Section {
  index: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  /** Version for `.dynsym` entries (`OPENSSL_3.0.0`), empty when the symbol has none. */
  version: string;
  /** `@@` (default), `@` (hidden or undefined), or `` (no version). */
  versionSep: "" | "@" | "@@";
  value: number;
  size: number;
  type: number;
  bind: number;
  shndx: number;
  table: "symtab" | "dynsym";
}

export function versionedName(s: ElfSymbol): string {
  return s.version ? `${s.name}${s.versionSep}${s.version}` : s.name;
}

const dec = new TextDecoder("latin1");

export class ElfFile {
  readonly type: number;
  readonly machine: number;
  readonly entry: number;
  readonly segments: Segment[];
  readonly sections: Section[];
  readonly size: number;
  private symbolCache?: ElfSymbol[];

  /** `fd` stays owned by the caller; `path` is only for messages. */
  constructor(
    readonly fd: number,
    readonly path: string,
  ) {
    this.size = fstatSync(fd).size;
    const h = this.readAt(0, 64);
    if (h.length < 64 || h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46) {
      throw new ElfError(`${path} is not an ELF file`);
    }
    if (h[4] !== 2 || h[5] !== 1) throw new ElfError(`${path} is not a 64-bit little-endian ELF file`);
    const v = view(h);
    this.type = v.getUint16(16, true);
    this.machine = v.getUint16(18, true);
    if (this.machine !== EM_X86_64) {
      throw new ElfError(`${path} is built for another architecture (e_machine ${this.machine}, not x86-64)`);
    }
    this.entry = num(v.getBigUint64(24, true));
    const phoff = num(v.getBigUint64(32, true));
    const shoff = num(v.getBigUint64(40, true));
    const phentsize = v.getUint16(54, true);
    const phnum = v.getUint16(56, true);
    const shentsize = v.getUint16(58, true);
    let shnum = v.getUint16(60, true);
    let shstrndx = v.getUint16(62, true);

    this.segments = [];
    if (phnum) {
      const pv = view(this.readAt(phoff, phentsize * phnum));
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        this.segments.push({
          type: pv.getUint32(o, true),
          flags: pv.getUint32(o + 4, true),
          offset: num(pv.getBigUint64(o + 8, true)),
          vaddr: num(pv.getBigUint64(o + 16, true)),
          filesz: num(pv.getBigUint64(o + 32, true)),
          memsz: num(pv.getBigUint64(o + 40, true)),
        });
      }
    }

    this.sections = [];
    if (shoff && shentsize) {
      if (shnum === 0 || shstrndx === 0xffff) {
        // Extended numbering: the real counts live in section 0.
        const s0 = view(this.readAt(shoff, shentsize));
        if (shnum === 0) shnum = num(s0.getBigUint64(32, true));
        if (shstrndx === 0xffff) shstrndx = s0.getUint32(40, true);
      }
      const sv = view(this.readAt(shoff, shentsize * shnum));
      const raw: (Section & { nameOff: number })[] = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          index: i,
          nameOff: sv.getUint32(o, true),
          name: "",
          type: sv.getUint32(o + 4, true),
          flags: num(sv.getBigUint64(o + 8, true)),
          addr: num(sv.getBigUint64(o + 16, true)),
          offset: num(sv.getBigUint64(o + 24, true)),
          size: num(sv.getBigUint64(o + 32, true)),
          link: sv.getUint32(o + 40, true),
          info: sv.getUint32(o + 44, true),
          entsize: num(sv.getBigUint64(o + 56, true)),
        });
      }
      const strtab = raw[shstrndx] ? this.sectionBytes(raw[shstrndx]!) : new Uint8Array();
      for (const { nameOff, ...s } of raw) this.sections.push({ ...s, name: cstrAt(strtab, nameOff) });
    }
  }

  /** Reads `length` bytes at file offset `offset` (short at end of file). */
  readAt(offset: number, length: number): Uint8Array {
    if (offset < 0 || offset > this.size) throw new ElfError(`${this.path}: read past end of file at ${offset}`);
    const n = Math.min(length, this.size - offset);
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, buf, got, n - got, offset + got);
      if (r <= 0) break;
      got += r;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  sectionBytes(s: Section): Uint8Array {
    if (s.type === SHT.NOBITS || s.size === 0) return new Uint8Array();
    return this.readAt(s.offset, s.size);
  }

  get isPie(): boolean {
    return this.type === ET.DYN;
  }

  /** The PT_LOAD segment's file offset for a virtual address, or undefined if none holds it. */
  vaddrToOffset(vaddr: number): number | undefined {
    for (const s of this.segments) {
      if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
    }
    return undefined;
  }

  /** The virtual address a file offset is loaded at (inverse of vaddrToOffset). */
  offsetToVaddr(offset: number): number | undefined {
    for (const s of this.segments) {
      if (s.type === PT_LOAD && offset >= s.offset && offset < s.offset + s.filesz) return offset - s.offset + s.vaddr;
    }
    return undefined;
  }

  /** All symbols of `.symtab` then `.dynsym`, with versions resolved for `.dynsym`. */
  symbols(): ElfSymbol[] {
    if (this.symbolCache) return this.symbolCache;
    const out: ElfSymbol[] = [];
    for (const s of this.sections) {
      if (s.type === SHT.SYMTAB) this.readSymbols(s, "symtab", out);
    }
    for (const s of this.sections) {
      if (s.type === SHT.DYNSYM) this.readSymbols(s, "dynsym", out);
    }
    this.symbolCache = out;
    return out;
  }

  /** Defined function symbols (FUNC and IFUNC), deduplicated across the two tables. */
  functions(): ElfSymbol[] {
    const seen = new Set<string>();
    const out: ElfSymbol[] = [];
    for (const s of this.symbols()) {
      if (s.shndx === SHN_UNDEF || (s.type !== STT.FUNC && s.type !== STT.GNU_IFUNC)) continue;
      const key = `${s.name}@${s.value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(s);
    }
    return out;
  }

  private readSymbols(sec: Section, table: "symtab" | "dynsym", out: ElfSymbol[]): void {
    const data = this.sectionBytes(sec);
    const strs = this.sections[sec.link] ? this.sectionBytes(this.sections[sec.link]!) : new Uint8Array();
    const v = view(data);
    const ent = sec.entsize || 24;
    const count = Math.floor(data.length / ent);
    const versions = table === "dynsym" ? this.symbolVersions(count) : undefined;
    for (let i = 1; i < count; i++) {
      const o = i * ent;
      const info = v.getUint8(o + 4);
      const shndx = v.getUint16(o + 6, true);
      const ver = versions?.[i];
      out.push({
        name: cstrAt(strs, v.getUint32(o, true)),
        version: ver?.name ?? "",
        versionSep: ver ? (ver.hidden || shndx === SHN_UNDEF ? "@" : "@@") : "",
        // Absolute symbols may hold any 64-bit value; only code addresses need to be exact.
        value: Number(v.getBigUint64(o + 8, true)),
        size: Number(v.getBigUint64(o + 16, true)),
        type: info & 0xf,
        bind: info >> 4,
        shndx,
        table,
      });
    }
  }

  /** GNU symbol versions for each `.dynsym` index (versym + verdef + verneed). */
  private symbolVersions(count: number): ({ name: string; hidden: boolean } | undefined)[] {
    const versym = this.sections.find((s) => s.type === SHT.VERSYM);
    if (!versym) return [];
    const names = new Map<number, string>();
    for (const sec of this.sections) {
      if (sec.type !== SHT.VERDEF && sec.type !== SHT.VERNEED) continue;
      const d = this.sectionBytes(sec);
      const dv = view(d);
      const strs = this.sectionBytes(this.sections[sec.link]!);
      let off = 0;
      for (let n = 0; n < sec.info && off + 16 <= d.length; n++) {
        if (sec.type === SHT.VERDEF) {
          const ndx = dv.getUint16(off + 4, true);
          const aux = dv.getUint32(off + 12, true);
          if (ndx > 1 && off + aux + 8 <= d.length) names.set(ndx, cstrAt(strs, dv.getUint32(off + aux, true)));
        } else {
          const cnt = dv.getUint16(off + 2, true);
          let a = off + dv.getUint32(off + 8, true);
          for (let k = 0; k < cnt && a + 16 <= d.length; k++) {
            names.set(dv.getUint16(a + 6, true) & 0x7fff, cstrAt(strs, dv.getUint32(a + 8, true)));
            const next = dv.getUint32(a + 12, true);
            if (!next) break;
            a += next;
          }
        }
        const next = dv.getUint32(off + (sec.type === SHT.VERDEF ? 16 : 12), true);
        if (!next) break;
        off += next;
      }
    }
    const vs = view(this.sectionBytes(versym));
    const out: ({ name: string; hidden: boolean } | undefined)[] = [];
    for (let i = 0; i < count && i * 2 + 2 <= vs.byteLength; i++) {
      const raw = vs.getUint16(i * 2, true);
      const idx = raw & 0x7fff;
      out.push(idx > 1 && names.has(idx) ? { name: names.get(idx)!, hidden: (raw & 0x8000) !== 0 } : undefined);
    }
    return out;
  }
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function cstrAt(b: Uint8Array, off: number): string {
  if (off >= b.length) return "";
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return dec.decode(b.subarray(off, end));
}

function num(x: bigint): number {
  // Offsets and addresses of user-space x86-64 fit in 2^53; larger means a corrupt header.
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`ELF value too large: 0x${x.toString(16)}`);
  return Number(x);
}
