// The ELF64 format's constants, header shapes and small helpers, shared by the reader (elf.ts)
// and its parts (elf-versions.ts, elf-gnu-hash.ts) without an import cycle.

export const ET = { EXEC: 2, DYN: 3 } as const;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PF_X = 1;
export const SHT = { SYMTAB: 2, STRTAB: 3, NOTE: 7, NOBITS: 8, DYNSYM: 11, VERDEF: 0x6ffffffd, VERNEED: 0x6ffffffe, VERSYM: 0x6fffffff } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, TLS: 6, GNU_IFUNC: 10 } as const;
export const SHN_UNDEF = 0;

/**
 * The most bytes one section may have to be read whole. Real symbol tables stay far below it
 * (node's .symtab and .strtab together are ~10 MB); a larger one is a corrupt or hostile header.
 */
export const MAX_SECTION_BYTES = 512 << 20;
/** More section headers than any linked program has (object files with one section per function stay below). */
export const MAX_SECTIONS = 1 << 18;

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
export const SYM_SIZE = 24;
export const PN_XNUM = 0xffff;
export const SHN_XINDEX = 0xffff;

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

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function hexOf(n: number): string {
  return Number.isFinite(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}

export function sectionLabel(s: Section): string {
  return s.name ? `section ${s.name}` : `section ${s.index}`;
}
