// Checks a user's BPF object (an EM_BPF ELF relocatable file) before it is handed to the system
// libbpf (1.1 on Debian 12), which trusts the file's structure and crashes on some of it:
//   - struct_ops maps: a BPF_MAP_TYPE_STRUCT_OPS map declared in `.maps` segfaults
//     bpf_object__load (`bpftool prog loadall` crashes the same way), and probe attaches no
//     struct_ops anyway (`.struct_ops`, `.struct_ops.link` sections, legacy `maps` entries too);
//   - structure libbpf dereferences before checking it, the classes of its fuzzing reports fixed
//     after 1.1: relocation sections whose target has no data (NULL Elf_Data in
//     bpf_object__collect_prog_relos), a NOBITS .BTF, program symbols past their section
//     (heap overflow in bpf_object__init_prog), indexes and offsets out of range in the section
//     table, the symbol table, relocations, .BTF and .BTF.ext.
// Nothing here is a special case for one input: each rule states a structural invariant that
// every object clang and libbpf produce satisfies, checked against the bytes.
// The ELF structure is checked here; .BTF and .BTF.ext are validated by bpf-object-btf.ts.
import { KIND, mapTypes, validateBtf, validateBtfExt, type RawBtf } from "./bpf-object-btf.ts";
import { ProbeError } from "./errors.ts";

export class BpfObjectError extends ProbeError {}

export const EM_BPF = 247;
/**
 * The largest object probe hands to libbpf (real ones are kilobytes; one compiled against a whole
 * vmlinux.h with -g is under a megabyte). Readers of a user's object should stop at this size.
 */
export const BPF_OBJECT_MAX_BYTES = 256 << 20;
export const BPF_MAP_TYPE_STRUCT_OPS = 26;

const ET_REL = 1;
const SHT = { PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOBITS: 8, REL: 9, SYMTAB_SHNDX: 18 } as const;
const SHF_EXECINSTR = 4;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const BPF_INSN = 8;
const MAX_SECTIONS = 1 << 16;

/** Sections whose bytes libbpf reads by name: they must be in the file, not NOBITS. */
const DATA_SECTIONS = /^(\.BTF|\.BTF\.ext|\.maps|maps|license|version|\.struct_ops.*)$/;

export interface BpfObjectSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface BpfObjectProblem {
  /** "unsupported": valid, but libbpf 1.1 crashes on it or probe cannot run it; "malformed": a broken file. */
  kind: "unsupported" | "malformed";
  /** What is wrong, without the path. */
  what: string;
}

/** Thrown inside the checks when the structure is too broken to look further. */
class Stop extends Error {}

/**
 * Everything found wrong with the object, in file order; [] when libbpf can be given it.
 * Structural problems stop the check at the first one (later checks depend on that structure).
 */
export function bpfObjectProblems(bytes: Uint8Array, path: string): BpfObjectProblem[] {
  const c = new Checker(bytes, path);
  try {
    c.run();
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
  }
  return c.problems;
}

/** Throws a BpfObjectError (with a hint) unless the object is safe to hand to libbpf 1.1. */
export function checkBpfObject(bytes: Uint8Array, path: string): void {
  const problems = bpfObjectProblems(bytes, path);
  if (problems.length === 0) return;
  const first = problems.find((p) => p.kind === "unsupported") ?? problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
  if (first.kind === "unsupported") {
    throw new BpfObjectError(
      `${path}: ${first.what}${more}`,
      "probe loads tracing objects (uprobes, uretprobes, tracepoints); load struct_ops with a tool built on libbpf >= 1.2",
    );
  }
  throw new BpfObjectError(`${path}: not a valid BPF object: ${first.what}${more}`, "rebuild it with 'clang -O2 -g -target bpf -c'");
}

/** The sections of a BPF object, after checking that the object's structure is sound. */
export function bpfObjectSections(bytes: Uint8Array, path: string): BpfObjectSection[] {
  checkBpfObject(bytes, path);
  const c = new Checker(bytes, path);
  c.readSections();
  return c.sections;
}

class Checker {
  readonly problems: BpfObjectProblem[] = [];
  sections: BpfObjectSection[] = [];
  private readonly v: DataView;
  private symtab?: BpfObjectSection;
  private symbols: { name: string; value: number; size: number; type: number; shndx: number }[] = [];
  private btf?: RawBtf;

  constructor(
    private readonly b: Uint8Array,
    readonly path: string,
  ) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private fatal(what: string): never {
    this.problems.push({ kind: "malformed", what });
    throw new Stop(what);
  }

  private unsupported(what: string): void {
    this.problems.push({ kind: "unsupported", what });
  }

  private u64(o: number): number {
    return this.v.getUint32(o, true) + this.v.getUint32(o + 4, true) * 0x1_0000_0000;
  }

  run(): void {
    this.readSections();
    this.checkSections();
    this.readSymbols();
    this.checkPrograms();
    this.checkRelocations();
    this.readBtf();
    this.checkBtfExt();
    this.checkStructOps();
  }

  readSections(): void {
    const b = this.b;
    if (b.length > BPF_OBJECT_MAX_BYTES) this.fatal(`${b.length} bytes is more than any BPF object (probe takes at most ${BPF_OBJECT_MAX_BYTES >> 20} MiB)`);
    if (b.length < 64 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) this.fatal("not an ELF file");
    if (b[4] !== 2 || b[5] !== 1) this.fatal("not a 64-bit little-endian ELF file");
    const type = this.v.getUint16(16, true);
    const machine = this.v.getUint16(18, true);
    if (type !== ET_REL) this.fatal(`ELF type ${type} is not a relocatable object (ET_REL), which is what clang -c makes`);
    if (machine !== EM_BPF && machine !== 0) this.fatal(`built for machine ${machine}, not BPF (EM_BPF ${EM_BPF})`);
    const shoff = this.u64(40);
    const shentsize = this.v.getUint16(58, true);
    let shnum = this.v.getUint16(60, true);
    let shstrndx = this.v.getUint16(62, true);
    if (shoff === 0) this.fatal("no section header table");
    if (shentsize !== 64) this.fatal(`section header size e_shentsize ${shentsize}, not 64`);
    if (!(shoff + 64 <= b.length)) this.fatal(`the section header table at offset ${shoff} is past the end of the file (${b.length} bytes)`);
    if (shnum === 0) shnum = this.u64(shoff + 32);
    if (shstrndx === SHN_XINDEX) shstrndx = this.v.getUint32(shoff + 40, true);
    if (shnum > MAX_SECTIONS) this.fatal(`${shnum} sections, more than any BPF object has`);
    if (!(shoff + shnum * 64 <= b.length)) this.fatal(`the section header table (${shnum} × 64 bytes at offset ${shoff}) runs past the end of the file (${b.length} bytes)`);
    const nameOffs: number[] = [];
    this.sections = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * 64;
      nameOffs.push(this.v.getUint32(o, true));
      this.sections.push({
        index: i,
        name: "",
        type: this.v.getUint32(o + 4, true),
        flags: this.u64(o + 8),
        offset: this.u64(o + 24),
        size: this.u64(o + 32),
        link: this.v.getUint32(o + 40, true),
        info: this.v.getUint32(o + 44, true),
        entsize: this.u64(o + 56),
      });
    }
    const strSec = this.sections[shstrndx];
    if (shstrndx === 0 || !strSec) this.fatal(`the section name table index e_shstrndx ${shstrndx} is not a section (there are ${shnum})`);
    if (strSec.type !== SHT.STRTAB) this.fatal(`the section name table (section ${shstrndx}) is not a string table`);
    const names = this.sectionData(strSec, `the section name table (section ${shstrndx})`);
    for (const s of this.sections) {
      if (s.index === 0) continue;
      s.name = this.str(names, nameOffs[s.index]!, `the name of section ${s.index}`, "the section name table");
    }
  }

  /** The bytes of a section that must be in the file. */
  private sectionData(s: BpfObjectSection, what = `section ${s.name || s.index}`): Uint8Array {
    if (s.type === SHT.NOBITS) this.fatal(`${what} has no bytes in the file (NOBITS)`);
    if (!(s.offset + s.size <= this.b.length)) this.fatal(`${what} (${s.size} bytes at offset ${s.offset}) runs past the end of the file (${this.b.length} bytes)`);
    return this.b.subarray(s.offset, s.offset + s.size);
  }

  /** A NUL-terminated string inside `table` (libbpf passes these to strcmp and printf). */
  private str(table: Uint8Array, off: number, what: string, tableName: string): string {
    if (off >= table.length) this.fatal(`${what} is at offset ${off}, past the end of ${tableName} (${table.length} bytes)`);
    const end = table.indexOf(0, off);
    if (end < 0) this.fatal(`${what} at offset ${off} is not NUL-terminated in ${tableName}`);
    return new TextDecoder("latin1").decode(table.subarray(off, end));
  }

  private checkSections(): void {
    for (const s of this.sections) {
      if (s.index === 0) continue;
      if (s.type !== SHT.NOBITS && s.size > 0) this.sectionData(s);
      if (DATA_SECTIONS.test(s.name) && s.type === SHT.NOBITS) this.fatal(`section ${s.name} has no bytes in the file (NOBITS), which libbpf reads`);
      if (s.type === SHT.SYMTAB_SHNDX) this.fatal(`section ${s.name || s.index} holds extended symbol section indexes (SHT_SYMTAB_SHNDX), which libbpf does not read`);
    }
  }

  private readSymbols(): void {
    const tables = this.sections.filter((s) => s.type === SHT.SYMTAB);
    if (tables.length !== 1) this.fatal(tables.length ? `${tables.length} symbol tables (libbpf reads one)` : "no symbol table");
    const sec = tables[0]!;
    this.symtab = sec;
    if (sec.entsize !== 24) this.fatal(`the symbol table ${sec.name} has entries of ${sec.entsize} bytes, not 24 (Elf64_Sym)`);
    const data = this.sectionData(sec);
    if (data.length % 24 !== 0) this.fatal(`the symbol table ${sec.name} is ${data.length} bytes, not a whole number of 24-byte symbols`);
    const strSec = this.sections[sec.link];
    if (sec.link === 0 || !strSec || strSec.type !== SHT.STRTAB) this.fatal(`the symbol table links to section ${sec.link} for its names, which is not a string table`);
    const strs = this.sectionData(strSec);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < data.length / 24; i++) {
      const o = i * 24;
      const sym = {
        name: this.str(strs, v.getUint32(o, true), `the name of symbol ${i}`, `string table ${strSec.name}`),
        type: data[o + 4]! & 0xf,
        shndx: v.getUint16(o + 6, true),
        value: v.getUint32(o + 8, true) + v.getUint32(o + 12, true) * 0x1_0000_0000,
        size: v.getUint32(o + 16, true) + v.getUint32(o + 20, true) * 0x1_0000_0000,
      };
      this.symbols.push(sym);
      if (sym.shndx === SHN_XINDEX) this.fatal(`symbol ${i} (${sym.name}) uses an extended section index, which libbpf does not read`);
      if (sym.shndx >= SHN_LORESERVE || sym.shndx === 0) continue;
      const target = this.sections[sym.shndx];
      if (!target) this.fatal(`symbol ${i} (${sym.name}) is in section ${sym.shndx}, which does not exist (there are ${this.sections.length})`);
      // STT_SECTION and STT_FILE symbols carry no extent; the others must lie in their section.
      if (sym.type !== 3 && sym.type !== 4 && !(sym.value + sym.size <= target.size)) {
        this.fatal(`symbol ${i} (${sym.name}) spans ${sym.value}-${sym.value + sym.size}, past the end of section ${target.name} (${target.size} bytes)`);
      }
    }
  }

  private checkPrograms(): void {
    for (const s of this.sections) {
      if (!(s.flags & SHF_EXECINSTR) || s.type !== SHT.PROGBITS) continue;
      if (s.size % BPF_INSN !== 0) this.fatal(`program section ${s.name} is ${s.size} bytes, not a whole number of 8-byte BPF instructions`);
    }
    for (const [i, sym] of this.symbols.entries()) {
      const sec = sym.shndx > 0 && sym.shndx < SHN_LORESERVE ? this.sections[sym.shndx] : undefined;
      if (!sec || !(sec.flags & SHF_EXECINSTR) || sym.type !== 2) continue;
      if (sym.value % BPF_INSN || sym.size % BPF_INSN) {
        this.fatal(`function ${sym.name} (symbol ${i}) at ${sym.value}, ${sym.size} bytes, does not start and end on BPF instructions`);
      }
    }
  }

  private checkRelocations(): void {
    const nsyms = this.symbols.length;
    for (const s of this.sections) {
      if (s.type !== SHT.REL && s.type !== SHT.RELA) continue;
      const entsize = s.type === SHT.REL ? 16 : 24;
      if (s.entsize !== entsize) this.fatal(`relocation section ${s.name} has entries of ${s.entsize} bytes, not ${entsize}`);
      const target = this.sections[s.info];
      if (s.info === 0 || !target) this.fatal(`relocation section ${s.name} applies to section ${s.info}, which does not exist`);
      // libbpf reads the entries only for programs, .maps and .struct_ops; it skips the others
      // (debug info, .BTF), whose entries then cannot hurt it.
      if (!(target.flags & SHF_EXECINSTR) && target.name !== ".maps" && !target.name.startsWith(".struct_ops")) continue;
      const data = this.sectionData(s);
      if (data.length % entsize !== 0) this.fatal(`relocation section ${s.name} is ${data.length} bytes, not a whole number of ${entsize}-byte entries`);
      if (s.link !== this.symtab!.index) this.fatal(`relocation section ${s.name} links to section ${s.link}, not the symbol table (section ${this.symtab!.index})`);
      if (target.type !== SHT.PROGBITS || target.size === 0) {
        this.fatal(`relocation section ${s.name} applies to section ${target.name}, which has no bytes to relocate`);
      }
      const exec = (target.flags & SHF_EXECINSTR) !== 0;
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let o = 0; o < data.length; o += entsize) {
        const offset = v.getUint32(o, true) + v.getUint32(o + 4, true) * 0x1_0000_0000;
        const sym = v.getUint32(o + 12, true);
        const at = `relocation ${o / entsize} of ${s.name}`;
        if (sym >= nsyms) this.fatal(`${at} names symbol ${sym}, but the symbol table has ${nsyms}`);
        if (!(offset + (exec ? BPF_INSN : 4) <= target.size)) this.fatal(`${at} is at offset ${offset}, past the end of section ${target.name} (${target.size} bytes)`);
        if (exec && offset % BPF_INSN !== 0) this.fatal(`${at} is at offset ${offset}, not on a BPF instruction of ${target.name}`);
      }
    }
  }

  private readBtf(): void {
    const sec = this.sections.find((s) => s.name === ".BTF");
    if (!sec) return;
    if (sec.type !== SHT.PROGBITS) this.fatal(`section .BTF is not PROGBITS (type ${sec.type})`);
    const r = validateBtf(this.sectionData(sec));
    if (typeof r === "string") this.fatal(`.BTF: ${r}`);
    this.btf = r;
  }

  private checkBtfExt(): void {
    const sec = this.sections.find((s) => s.name === ".BTF.ext");
    if (!sec) return;
    if (!this.btf) this.fatal("section .BTF.ext without a .BTF section");
    const problem = validateBtfExt(this.sectionData(sec), this.btf.strings.length);
    if (problem) this.fatal(`.BTF.ext: ${problem}`);
  }

  private checkStructOps(): void {
    for (const s of this.sections) {
      if (s.name === ".struct_ops" || s.name.startsWith(".struct_ops.")) {
        this.unsupported(`section ${s.name} declares struct_ops maps (BPF_MAP_TYPE_STRUCT_OPS), which libbpf 1.1 mishandles and probe does not attach`);
      }
    }
    // Legacy `struct bpf_map_def` entries: type is the first u32 of each map symbol's definition.
    const legacy = this.sections.find((s) => s.name === "maps");
    if (legacy && legacy.type === SHT.PROGBITS) {
      const data = this.sectionData(legacy);
      for (const sym of this.symbols) {
        if (sym.shndx !== legacy.index || sym.type === 3 || !(sym.value + 4 <= data.length)) continue;
        const type = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(sym.value, true);
        if (type === BPF_MAP_TYPE_STRUCT_OPS) this.unsupported(`map ${sym.name} (legacy maps section) is a BPF_MAP_TYPE_STRUCT_OPS map, which libbpf 1.1 crashes on`);
      }
    }
    // BTF-defined maps: `.maps` DATASEC variables whose struct has `int (*type)[N]`, N the map type.
    const btf = this.btf;
    if (!btf) return;
    const mapsSec = this.sections.find((s) => s.name === ".maps");
    for (const t of btf.types) {
      if (!t || t.kind !== KIND.DATASEC || btf.name(t) !== ".maps") continue;
      if (!mapsSec && t.vars.length) this.fatal(".BTF describes .maps variables, but the object has no .maps section");
      for (const v of t.vars) {
        if (mapsSec && !(v.offset + v.size <= mapsSec.size)) this.fatal(`.maps variable at ${v.offset} (${v.size} bytes) is past the end of section .maps (${mapsSec.size} bytes)`);
        const variable = btf.types[v.type];
        if (!variable || variable.kind !== KIND.VAR) this.fatal(`.maps entry type ${v.type} is not a variable`);
        for (const { path, type } of mapTypes(btf, variable.ref)) {
          if (type === BPF_MAP_TYPE_STRUCT_OPS) {
            this.unsupported(`map ${btf.name(variable)}${path} is a BPF_MAP_TYPE_STRUCT_OPS map, which libbpf 1.1 crashes on when loading`);
          }
        }
      }
    }
  }
}
