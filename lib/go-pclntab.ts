// Go's function table, `.gopclntab`, which Go keeps even in binaries stripped with
// `-ldflags='-s -w'`: found (by name, or by its header inside read-only data when the linker left
// no section for it), its layout told by its magic, and every function it lists with its name,
// entry and end. The table is untrusted bytes: every offset and count is checked against it
// before use, and a malformed one is a GoError naming the file.
import { ElfFile, SHT, SHN_UNDEF, view } from "./elf.ts";
import { GoError } from "./go-error.ts";

export interface GoFunction {
  name: string;
  /** Entry virtual address (before load bias). */
  entry: number;
  /** First address past the function (its size is end - entry). */
  end: number;
  /** File offset of the entry: where a uprobe goes. */
  offset: number;
  /** Where the bounds came from. */
  source: "symtab" | "pclntab";
}

// .gopclntab: a header, a table of (entry, _func offset) sorted by entry with one extra entry
// for the end of the text, and the function names. Layouts by magic:
//   0xfffffffb Go 1.2-1.15   0xfffffffa Go 1.16-1.17   0xfffffff0 Go 1.18-1.19   0xfffffff1 Go 1.20+

/** Layouts of .gopclntab, named by the first Go version that wrote each. */
export type PclntabVersion = "1.2" | "1.16" | "1.18" | "1.20";

export interface Pclntab {
  /** The section it is (or lies in, for external-linked PIEs that fold it into .data.rel.ro). */
  sectionName: string;
  vaddr: number;
  bytes: Uint8Array;
}

const pclntabCache = new WeakMap<ElfFile, Pclntab | null>();

export function findPclntab(elf: ElfFile): Pclntab | undefined {
  const cached = pclntabCache.get(elf);
  if (cached !== undefined) return cached ?? undefined;
  let found: Pclntab | undefined;
  const named = elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab");
  if (named && named.size >= 16) {
    found = { sectionName: named.name, vaddr: named.addr, bytes: elf.sectionBytes(named) };
  } else {
    // gcc-linked stripped PIEs keep no section for it: look for a valid header in the read-only data.
    for (const name of [".data.rel.ro", ".rodata", ".noptrdata"]) {
      const sec = elf.section(name);
      if (!sec || sec.type === SHT.NOBITS) continue;
      const data = elf.sectionBytes(sec);
      const at = scanForPclntab(data);
      if (at >= 0) {
        found = { sectionName: name, vaddr: sec.addr + at, bytes: data.subarray(at) };
        break;
      }
    }
  }
  pclntabCache.set(elf, found ?? null);
  return found;
}

/** Index of a plausible .gopclntab header in `data`, or -1. */
function scanForPclntab(data: Uint8Array): number {
  const v = view(data);
  for (let i = 0; i + 72 <= data.length; i += 8) {
    if (data[i + 3] !== 0xff || data[i + 4] !== 0 || data[i + 5] !== 0 || data[i + 6] !== 1 || data[i + 7] !== 8) continue;
    const version = pclntabVersion(data.subarray(i));
    if (!version) continue;
    const nfunc = Number(v.getBigUint64(i + 8, true));
    if (nfunc === 0 || nfunc > 10_000_000) continue;
    // The header's table offsets must all fall inside what follows.
    const offs = version === "1.2" ? [] : version === "1.16" ? [24, 32, 40, 48, 56] : [32, 40, 48, 56, 64];
    if (offs.every((o) => Number(v.getBigUint64(i + o, true)) < data.length - i)) return i;
  }
  return -1;
}

export function pclntabVersion(b: Uint8Array): PclntabVersion | undefined {
  if (b.length < 8) return undefined;
  const magic = view(b).getUint32(0, true);
  switch (magic) {
    case 0xfffffffb:
      return "1.2";
    case 0xfffffffa:
      return "1.16";
    case 0xfffffff0:
      return "1.18";
    case 0xfffffff1:
      return "1.20";
  }
  return undefined;
}

const functionsCache = new WeakMap<ElfFile, GoFunction[]>();

/** Every function `.gopclntab` lists, in address order, with end = next function's entry. */
export function pclntabFunctions(elf: ElfFile): GoFunction[] {
  let fns = functionsCache.get(elf);
  if (!fns) {
    fns = readPclntabFunctions(elf);
    functionsCache.set(elf, fns);
  }
  return fns;
}

function readPclntabFunctions(elf: ElfFile): GoFunction[] {
  const pcln = findPclntab(elf);
  if (!pcln) throw new GoError(`${elf.path} has no .gopclntab: not a Go program, or one whose function table is gone`);
  const b = pcln.bytes;
  const v = view(b);
  const table = pcln.sectionName === ".gopclntab" ? ".gopclntab" : `the .gopclntab in ${pcln.sectionName}`;
  const version = pclntabVersion(b);
  if (!version) throw new GoError(`${elf.path}: ${table} has ${b.length >= 4 ? `an unknown magic 0x${v.getUint32(0, true).toString(16)}` : `only ${b.length} bytes`}`);
  const ptrSize = b[7]!;
  if (ptrSize !== 8 || b[4] !== 0 || b[5] !== 0) throw new GoError(`${elf.path}: ${table} is not for a 64-bit target`);
  const outside = (what: string, off: number) =>
    new GoError(`${elf.path}: ${table} is malformed: ${what} at offset 0x${off.toString(16)} is past its end (${b.length} bytes)`);
  const word = (off: number, what: string): number => {
    if (!(off >= 0 && off + 8 <= b.length)) throw outside(what, off);
    return Number(v.getBigUint64(off, true));
  };
  const u32 = (off: number, what: string): number => {
    if (!(off >= 0 && off + 4 <= b.length)) throw outside(what, off);
    return v.getUint32(off, true);
  };
  const nfunc = word(8, "the function count");
  // Each function has at least one functab entry (8 bytes from Go 1.18, 16 before): a count the
  // table cannot hold is corrupt, and must not size the arrays below.
  const entrySize = version === "1.18" || version === "1.20" ? 8 : 16;
  if (nfunc > b.length / entrySize) {
    throw new GoError(`${elf.path}: ${table} is malformed: it claims ${nfunc} functions, more than its ${b.length} bytes can hold`);
  }

  const entries: number[] = [];
  const nameOffs: number[] = [];
  let names = 0;
  if (version === "1.18" || version === "1.20") {
    // magic, pad, quantum, ptrSize, nfunc, nfiles, textStart, funcname, cu, filetab, pctab, pcln offsets
    const textStart = word(24, "the text start") || textStartFallback(elf, pcln.vaddr);
    names = word(32, "the name table offset");
    const functab = word(64, "the function table offset");
    for (let i = 0; i <= nfunc; i++) {
      entries.push(textStart + u32(functab + i * 8, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(functab + u32(functab + i * 8 + 4, `function table entry ${i}`) + 4, `the record of function ${i}`));
    }
  } else if (version === "1.16") {
    names = word(24, "the name table offset");
    const functab = word(56, "the function table offset");
    for (let i = 0; i <= nfunc; i++) {
      entries.push(word(functab + i * 16, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(functab + word(functab + i * 16 + 8, `function table entry ${i}`) + 8, `the record of function ${i}`));
    }
  } else {
    const functab = 16;
    for (let i = 0; i <= nfunc; i++) {
      entries.push(word(functab + i * 16, `function table entry ${i}`));
      if (i < nfunc) nameOffs.push(u32(word(functab + i * 16 + 8, `function table entry ${i}`) + 8, `the record of function ${i}`));
    }
  }

  const out: GoFunction[] = [];
  for (let i = 0; i < nfunc; i++) {
    const entry = entries[i]!;
    const offset = elf.vaddrToOffset(entry);
    if (offset === undefined) continue;
    const nameAt = names + nameOffs[i]!;
    if (!(nameAt < b.length)) throw outside(`the name of function ${i}`, nameAt);
    out.push({ name: cstr(b, nameAt), entry, end: entries[i + 1]!, offset, source: "pclntab" });
  }
  return out;
}

/**
 * Go 1.18+ records runtime.text in the table header, but a PIE's copy is filled in by a dynamic
 * relocation and reads as 0 in the file. Go's text then starts at runtime.text, which is the
 * start of .text unless C code (cgo, external linking) comes first.
 */
function textStartFallback(elf: ElfFile, pclntabVaddr: number): number {
  const rel = relativeRelocationAt(elf, pclntabVaddr + 24);
  if (rel !== undefined) return rel;
  const sym = elf.symbols().find((s) => s.name === "runtime.text" && s.shndx !== SHN_UNDEF);
  if (sym) return sym.value;
  const text = elf.section(".text");
  if (!text) throw new GoError(`${elf.path} has no .text section`);
  return text.addr;
}

/** The addend of an R_X86_64_RELATIVE relocation that patches `base + delta`, if there is one. */
function relativeRelocationAt(elf: ElfFile, where: number): number | undefined {
  const R_X86_64_RELATIVE = 8;
  for (const s of elf.sections) {
    if (s.name !== ".rela.dyn") continue;
    const d = elf.sectionBytes(s);
    const dv = view(d);
    for (let o = 0; o + 24 <= d.length; o += 24) {
      if (Number(dv.getBigUint64(o, true)) === where && Number(dv.getBigUint64(o + 8, true) & 0xffffffffn) === R_X86_64_RELATIVE) {
        return Number(dv.getBigInt64(o + 16, true));
      }
    }
  }
  return undefined;
}

const utf8 = new TextDecoder("utf-8");
/** Go function names are UTF-8. */
function cstr(b: Uint8Array, off: number): string {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return utf8.decode(b.subarray(off, end));
}
