// An ELF64 reader that works on an open fd: it reads headers and the sections it is asked for,
// never the whole file, so that a 100 MB Go binary or a library inside a container costs little.
// The file is untrusted (any file a container holds): every offset, size, count and index is
// checked against the file and its tables before use, and anything malformed is an ElfError
// whose message starts with the path and says what is wrong.
import { readSync, fstatSync } from "node:fs";
import { ProbeError } from "./errors.ts";
import { gnuHashCandidates } from "./elf-gnu-hash.ts";
import { readSymbolVersions, type SymbolVersion } from "./elf-versions.ts";
import { EHDR_SIZE, PHDR_SIZE, SHDR_SIZE, SYM_SIZE, PN_XNUM, SHN_XINDEX, ET, EM_X86_64, PT_LOAD, PF_X, SHT, STT, SHN_UNDEF, MAX_SECTION_BYTES, MAX_SECTIONS, view, hexOf, sectionLabel, type Segment, type Section, type ElfSymbol } from "./elf-format.ts";
export { ET, EM_X86_64, PT_LOAD, PF_X, SHT, STT, SHN_UNDEF, MAX_SECTION_BYTES, MAX_SECTIONS, view, type Segment, type Section, type ElfSymbol } from "./elf-format.ts";

export class ElfError extends ProbeError {}

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
  /** symbolCache by name, built on the first lookup after it (a glob's thousands of names). */
  private symbolsByName?: Map<string, ElfSymbol[]>;
  private versionsCache?: (index: number) => SymbolVersion | undefined;

  /** `fd` stays owned by the caller; `path` is only for messages. */
  constructor(
    readonly fd: number,
    readonly path: string,
  ) {
    try {
      this.size = fstatSync(fd).size;
    } catch (e) {
      throw new ElfError(`${path}: cannot stat the file: ${(e as Error).message}`, undefined, { cause: e });
    }
    const h = this.size >= 4 ? this.readAt(0, EHDR_SIZE) : new Uint8Array();
    if (h.length < 4 || h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46) {
      throw new ElfError(`${path} is not an ELF file`);
    }
    if (h.length < EHDR_SIZE) throw this.error(`the ELF header is cut short (${h.length} of ${EHDR_SIZE} bytes)`);
    if (h[4] !== 2 || h[5] !== 1) throw new ElfError(`${path} is not a 64-bit little-endian ELF file`);
    const v = view(h);
    this.type = v.getUint16(16, true);
    this.machine = v.getUint16(18, true);
    if (this.machine !== EM_X86_64) {
      throw new ElfError(`${path} is built for another architecture (e_machine ${this.machine}, not x86-64)`);
    }
    // Only informational: a wild entry point makes no offset wrong, so it is kept approximate.
    this.entry = u64(v, 24);
    const phoff = u64(v, 32);
    const shoff = u64(v, 40);
    const phentsize = v.getUint16(54, true);
    let phnum = v.getUint16(56, true);
    const shentsize = v.getUint16(58, true);
    let shnum = v.getUint16(60, true);
    let shstrndx = v.getUint16(62, true);

    // Extended numbering: counts that do not fit the ELF header live in section header 0.
    if (shoff !== 0 && (shnum === 0 || shstrndx === SHN_XINDEX || phnum === PN_XNUM)) {
      this.checkEntrySize(shentsize, SHDR_SIZE, "section header", "e_shentsize");
      this.checkTable(shoff, 1, shentsize, "section header 0, which holds the extended counts,");
      const s0 = view(this.readAt(shoff, SHDR_SIZE));
      if (shnum === 0) shnum = u64(s0, 32);
      if (shstrndx === SHN_XINDEX) shstrndx = s0.getUint32(40, true);
      if (phnum === PN_XNUM) phnum = s0.getUint32(44, true);
    }

    this.segments = [];
    if (phnum) {
      this.checkEntrySize(phentsize, PHDR_SIZE, "program header", "e_phentsize");
      this.checkTable(phoff, phnum, phentsize, "the program header table");
      const pv = view(this.readAt(phoff, phentsize * phnum));
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        const seg: Segment = {
          type: pv.getUint32(o, true),
          flags: pv.getUint32(o + 4, true),
          offset: u64(pv, o + 8),
          vaddr: u64(pv, o + 16),
          filesz: u64(pv, o + 32),
          memsz: u64(pv, o + 40),
        };
        // Loadable segments turn addresses into file offsets: their numbers must be exact.
        if (seg.type === PT_LOAD && !(seg.offset + seg.filesz <= Number.MAX_SAFE_INTEGER && seg.vaddr + Math.max(seg.filesz, seg.memsz) <= Number.MAX_SAFE_INTEGER)) {
          throw this.error(`PT_LOAD program header ${i} has an impossible offset, address or size (p_offset 0x${seg.offset.toString(16)}, p_vaddr 0x${seg.vaddr.toString(16)}, p_filesz 0x${seg.filesz.toString(16)})`);
        }
        this.segments.push(seg);
      }
    }

    this.sections = [];
    if (shoff !== 0 && shnum !== 0) {
      this.checkEntrySize(shentsize, SHDR_SIZE, "section header", "e_shentsize");
      if (shnum > MAX_SECTIONS) throw this.error(`${shnum} section headers is more than any real program has (at most ${MAX_SECTIONS})`);
      this.checkTable(shoff, shnum, shentsize, "the section header table");
      const sv = view(this.readAt(shoff, shentsize * shnum));
      const nameOffs = new Uint32Array(shnum);
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        nameOffs[i] = sv.getUint32(o, true);
        // Sizes and offsets stay as read (approximate when beyond 2^53): they are checked against
        // the file when a section is read, so one odd section does not make the file unreadable.
        this.sections.push({
          index: i,
          name: "",
          type: sv.getUint32(o + 4, true),
          flags: u64(sv, o + 8),
          addr: u64(sv, o + 16),
          offset: u64(sv, o + 24),
          size: u64(sv, o + 32),
          link: sv.getUint32(o + 40, true),
          info: sv.getUint32(o + 44, true),
          entsize: u64(sv, o + 56),
        });
      }
      if (shstrndx !== SHN_UNDEF) {
        const strSec = this.sections[shstrndx];
        if (!strSec) throw this.error(`the section name table index e_shstrndx ${shstrndx} is not a section (there are ${shnum})`);
        const strtab = this.sectionBytes(strSec);
        for (const s of this.sections) s.name = this.stringAt(strtab, nameOffs[s.index]!, () => `the name of section ${s.index}`, "the section name table");
      }
    }
  }

  /** Reads `length` bytes at file offset `offset` (short at end of file). */
  readAt(offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.size) {
      throw this.error(`read at offset ${hexOf(offset)} is past the end of the file (${this.size} bytes)`);
    }
    if (!(length >= 0)) throw this.error(`read of ${length} bytes at offset ${hexOf(offset)}`);
    const n = Math.min(Math.floor(length), this.size - offset);
    if (n > MAX_SECTION_BYTES) throw this.error(`read of ${n} bytes at offset ${hexOf(offset)} is more than probe reads at once (${MAX_SECTION_BYTES >> 20} MiB)`);
    const buf = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      let r: number;
      try {
        r = readSync(this.fd, buf, got, n - got, offset + got);
      } catch (e) {
        throw new ElfError(`${this.path}: cannot read ${n} bytes at offset ${hexOf(offset)}: ${(e as Error).message}`, undefined, { cause: e });
      }
      if (r <= 0) break;
      got += r;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The bytes of a section; empty for NOBITS. A section that is not wholly in the file is an ElfError. */
  sectionBytes(s: Section): Uint8Array {
    if (s.type === SHT.NOBITS || s.size === 0) return new Uint8Array();
    const what = sectionLabel(s);
    if (s.size > MAX_SECTION_BYTES) throw this.error(`${what} claims ${s.size} bytes, more than probe reads at once (${MAX_SECTION_BYTES >> 20} MiB)`);
    if (!(s.offset + s.size <= this.size)) {
      throw this.error(`${what} (${s.size} bytes at offset ${hexOf(s.offset)}) runs past the end of the file (${this.size} bytes)`);
    }
    const b = this.readAt(s.offset, s.size);
    if (b.length !== s.size) throw this.error(`${what} could only be read in part (${b.length} of ${s.size} bytes): the file is shorter than it says`);
    return b;
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

  /**
   * The symbols named exactly `name` (any version), as symbols() has them, without decoding every
   * name: the name is searched as bytes in each string table, and only the entries pointing at a
   * hit are read (node's executable has 185,000 symbols: ~10 ms instead of ~600).
   */
  symbolsNamed(name: string): ElfSymbol[] {
    if (this.symbolCache) {
      if (!this.symbolsByName) {
        this.symbolsByName = new Map();
        for (const s of this.symbolCache) {
          const list = this.symbolsByName.get(s.name);
          if (list) list.push(s);
          else this.symbolsByName.set(s.name, [s]);
        }
      }
      return [...(this.symbolsByName.get(name) ?? [])];
    }
    // An exported definition is found through .gnu.hash without reading the tables.
    const hashed = this.dynamicSymbolsNamed(name);
    if (hashed?.some((s) => s.shndx !== SHN_UNDEF)) return hashed;
    const out: ElfSymbol[] = [];
    for (const table of ["symtab", "dynsym"] as const) {
      for (const s of this.sections) {
        if (s.type === (table === "symtab" ? SHT.SYMTAB : SHT.DYNSYM)) this.readSymbols(s, table, out, name);
      }
    }
    return out;
  }

  /** `.dynsym` entries named `name` found through `.gnu.hash`, or undefined without one. */
  private dynamicSymbolsNamed(name: string): ElfSymbol[] | undefined {
    const dynsym = this.sections.find((s) => s.type === SHT.DYNSYM);
    if (!dynsym || dynsym.entsize !== SYM_SIZE) return undefined;
    const indexes = gnuHashCandidates(this, dynsym, name);
    if (!indexes) return undefined;
    const strSec = this.sections[dynsym.link];
    if (!strSec || strSec.type !== SHT.STRTAB) return undefined;
    const want = Buffer.from(`${name}\0`);
    const out: ElfSymbol[] = [];
    let versions: ReturnType<ElfFile["symbolVersions"]> | undefined;
    for (const i of indexes) {
      const e = this.readAt(dynsym.offset + i * SYM_SIZE, SYM_SIZE);
      if (e.length < SYM_SIZE) continue;
      const v = view(e);
      const nameOff = v.getUint32(0, true);
      if (nameOff + want.length > strSec.size) continue;
      if (!Buffer.from(this.readAt(strSec.offset + nameOff, want.length)).equals(want)) continue;
      const shndx = v.getUint16(6, true);
      const ver = (versions ??= this.symbolVersions())(i);
      out.push({
        name,
        version: ver?.name ?? "",
        versionSep: ver ? (ver.hidden || shndx === SHN_UNDEF ? "@" : "@@") : "",
        value: u64(v, 8),
        size: u64(v, 16),
        type: e[4]! & 0xf,
        bind: e[4]! >> 4,
        shndx,
        table: "dynsym",
      });
    }
    return out;
  }

  /** Defined function symbols (FUNC and IFUNC), deduplicated across the two tables. */
  functions(): ElfSymbol[] {
    // Names seen at each address: most addresses have one, aliases a few.
    const seen = new Map<number, string | string[]>();
    const out: ElfSymbol[] = [];
    for (const s of this.symbols()) {
      if (s.shndx === SHN_UNDEF || (s.type !== STT.FUNC && s.type !== STT.GNU_IFUNC)) continue;
      const at = seen.get(s.value);
      if (at === undefined) seen.set(s.value, s.name);
      else if (at === s.name || (typeof at !== "string" && at.includes(s.name))) continue;
      else seen.set(s.value, typeof at === "string" ? [at, s.name] : (at.push(s.name), at));
      out.push(s);
    }
    return out;
  }

  /** An ElfError whose message starts with the path (for this file's readers, like elf-versions.ts). */
  error(what: string): ElfError {
    return new ElfError(`${this.path}: ${what}`);
  }

  private checkEntrySize(entsize: number, min: number, what: string, field: string): void {
    if (entsize < min) throw this.error(`${field} ${entsize} is smaller than a ${what} (${min} bytes)`);
  }

  /** A table of `count` entries of `entsize` bytes at `offset` lies wholly inside the file. */
  private checkTable(offset: number, count: number, entsize: number, what: string): void {
    if (!(offset + count * entsize <= this.size)) {
      throw this.error(`${what} (${count} × ${entsize} bytes at offset ${hexOf(offset)}) runs past the end of the file (${this.size} bytes)`);
    }
  }

  /** The string table `sec` links to (sh_link), checked: a section in range, a string table, in the file. */
  linkedStrings(sec: Section): Buffer {
    const linked = sec.link === SHN_UNDEF ? undefined : this.sections[sec.link];
    if (!linked) throw this.error(`${sectionLabel(sec)} links to section ${sec.link} for its strings, which does not exist (there are ${this.sections.length})`);
    if (linked.type !== SHT.STRTAB) throw this.error(`${sectionLabel(sec)} links to ${sectionLabel(linked)} for its strings, which is not a string table (type ${hexOf(linked.type)})`);
    const b = this.sectionBytes(linked);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength); // cstrAt decodes a Buffer natively
  }

  /** The NUL-terminated string at `off` (ended by the table's end at worst); an offset past the table is an ElfError. */
  stringAt(table: Uint8Array, off: number, what: () => string, tableName: string): string {
    if (off >= table.length) {
      if (off === 0) return "";
      throw this.error(`${what()} is at offset ${hexOf(off)}, past the end of ${tableName} (${table.length} bytes)`);
    }
    return cstrAt(table, off);
  }

  /** Appends the symbols of table `sec` to `out`: all of them, or only those named `only`. */
  private readSymbols(sec: Section, table: "symtab" | "dynsym", out: ElfSymbol[], only?: string): void {
    const label = sectionLabel(sec);
    if (sec.type !== SHT.NOBITS && sec.size !== 0 && sec.entsize !== SYM_SIZE) {
      throw this.error(`${label} has entries of ${sec.entsize} bytes, not ${SYM_SIZE} (Elf64_Sym)`);
    }
    const data = this.sectionBytes(sec);
    if (data.length % SYM_SIZE !== 0) throw this.error(`${label} is ${data.length} bytes, not a whole number of ${SYM_SIZE}-byte symbols`);
    const count = data.length / SYM_SIZE;
    if (count === 0) return;
    const strs = this.linkedStrings(sec);
    const strName = sectionLabel(this.sections[sec.link]!);
    const v = view(data);
    // With `only`: every offset where that name ends a string (tables share suffixes).
    let wanted: Set<number> | undefined;
    if (only !== undefined) {
      wanted = new Set();
      const needle = Buffer.from(`${only}\0`);
      for (let at = strs.indexOf(needle); at >= 0; at = strs.indexOf(needle, at + 1)) wanted.add(at);
      if (!wanted.size) return;
    }
    let versions: ReturnType<ElfFile["symbolVersions"]> | undefined;
    for (let i = 1; i < count; i++) {
      const o = i * SYM_SIZE;
      const nameOff = v.getUint32(o, true);
      if (wanted && !wanted.has(nameOff)) continue;
      const info = data[o + 4]!;
      const shndx = v.getUint16(o + 6, true);
      if (table === "dynsym") versions ??= this.symbolVersions();
      const ver = versions?.(i);
      out.push({
        name: nameOff < strs.length ? cstrAt(strs, nameOff) : this.stringAt(strs, nameOff, () => `the name of symbol ${i} in ${label}`, strName),
        version: ver?.name ?? "",
        versionSep: ver ? (ver.hidden || shndx === SHN_UNDEF ? "@" : "@@") : "",
        // Absolute symbols may hold any 64-bit value; only code addresses need to be exact.
        value: u64(v, o + 8),
        size: u64(v, o + 16),
        type: info & 0xf,
        bind: info >> 4,
        shndx,
        table,
      });
    }
  }

  /** The GNU symbol version of a `.dynsym` index (versym + verdef + verneed), read once per file. */
  private symbolVersions(): (index: number) => SymbolVersion | undefined {
    return (this.versionsCache ??= readSymbolVersions(this));
  }
}


export function cstrAt(b: Uint8Array, off: number): string {
  if (!(off >= 0) || off >= b.length) return "";
  // Buffer's native search and decode: node's 185,000 symbol names take ~40 ms, not ~140.
  const buf = b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const end = buf.indexOf(0, off);
  return buf.toString("utf8", off, end < 0 ? buf.length : end);
}

/** A u64 as a number: exact up to 2^53, rounded beyond (callers range-check what they use). */
function u64(v: DataView, o: number): number {
  return v.getUint32(o, true) + v.getUint32(o + 4, true) * 0x1_0000_0000;
}


