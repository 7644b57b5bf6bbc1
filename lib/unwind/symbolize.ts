// pc -> function name. Per ELF file, one address-sorted table of functions from `.symtab` and
// `.dynsym` (and a separate debug file's `.symtab` when the caller supplies one: Debian's
// libraries keep their static functions only there), or from `.gopclntab` for stripped Go
// binaries; lookups are binary searches. Tables are built once per file and cached.
import { basename } from "node:path";
import { demangle } from "../demangle.ts";
import { ElfFile, SHT, STT, view, type ElfSymbol } from "../elf.ts";
import { pclntabFunctions } from "../go-pclntab.ts";
import type { AddressSpace, Mapping } from "./address-space.ts";

export interface SymbolizedFrame {
  pc: number;
  /** The function's name as the symbol table has it, or "[unknown]" when no symbol covers the pc. */
  symbol: string;
  /** A C++ symbol's name as people read it (`thrower(int)` for `_Z7throweri`), when it demangles. */
  demangled?: string;
  known: boolean;
  /** pc minus the function's start; for unknown frames, the pc's offset in the file (or 0). */
  offset: number;
  /** The mapping's path ("" when the pc is in no mapping, "[vdso]"-style names for special ones). */
  file: string;
  /** The pc as an offset in that file, when it is in a file mapping. */
  fileOffset?: number;
}

/** A separate debug file (same build id) for an ELF file, or undefined. Called once per file. */
export type DebugFileOpener = (elf: ElfFile, mapping: Mapping) => ElfFile | undefined;

// Among aliases, the name users know: a sized symbol, without leading underscores (getpid, not
// __getpid), exported (GLOBAL or WEAK) rather than LOCAL, then the shortest.
const BIND_RANK = [1, 0, 0];
const BACKWARD_SCAN = 16;

export class SymbolTable {
  // Demangled names by index, filled as frames need them (null: not a mangled name).
  private readonly demangledNames: (string | null | undefined)[] = [];

  private constructor(
    readonly starts: Float64Array,
    readonly ends: Float64Array,
    readonly names: string[],
  ) {}

  get size(): number {
    return this.names.length;
  }

  /** Builds the table of `elf` (plus `debug`'s symbols, which are in the same address space). */
  static build(elf: ElfFile, debug?: ElfFile): SymbolTable {
    // end: exact from a symbol's size; for sizeless symbols (hand-written assembly) the end of
    // their section, cut at the next symbol below; for .gopclntab the next function's entry
    // (alignment padding included), replaced by .symtab's exact size where there is one.
    type Fn = { start: number; end: number; exact: boolean; name: string; rank: number; bind: number };
    const fns: Fn[] = [];
    const add = (f: ElfFile, s: ElfSymbol) => {
      if (s.value === 0 || !s.name) return;
      const rank = (s.size > 0 ? 0 : 10) + (s.type === STT.GNU_IFUNC ? 1 : 0);
      const sec = f.sections[s.shndx];
      const sectionEnd = sec && s.value >= sec.addr && s.value < sec.addr + sec.size ? sec.addr + sec.size : s.value + 1;
      fns.push({ start: s.value, end: s.size > 0 ? s.value + s.size : sectionEnd, exact: s.size > 0, name: s.name, rank, bind: BIND_RANK[s.bind] ?? 2 });
    };
    for (const f of [elf, debug]) {
      if (!f) continue;
      try {
        for (const s of f.functions()) add(f, s);
      } catch {
        // an unreadable symbol table names nothing; the other one may still
      }
    }
    // Go: .gopclntab names functions as Go prints them (runtime.goexit, where .symtab says
    // runtime.goexit.abi0), and is all a stripped binary has.
    if (elf.section(".gopclntab") || elf.section(".data.rel.ro.gopclntab")) {
      try {
        for (const g of pclntabFunctions(elf)) fns.push({ start: g.entry, end: g.end, exact: false, name: g.name, rank: -1, bind: 0 });
      } catch {
        // not readable: the .dynsym names (if any) are all there is
      }
    }
    fns.sort((a, b) => a.start - b.start || a.rank - b.rank || underscores(a.name) - underscores(b.name) || a.bind - b.bind || a.name.length - b.name.length);
    const starts: number[] = [];
    const ends: number[] = [];
    const exact: boolean[] = [];
    const names: string[] = [];
    for (const f of fns) {
      const i = starts.length - 1;
      if (i >= 0 && starts[i] === f.start) {
        // An alias: the best name came first; an exact size beats an estimate.
        if (f.exact && !exact[i]) {
          ends[i] = f.end;
          exact[i] = true;
        }
        continue;
      }
      starts.push(f.start);
      ends.push(f.end);
      exact.push(f.exact);
      names.push(f.name);
    }
    for (let i = 0; i + 1 < starts.length; i++) {
      if (!exact[i] && ends[i]! > starts[i + 1]!) ends[i] = starts[i + 1]!;
    }
    return new SymbolTable(Float64Array.from(starts), Float64Array.from(ends), names);
  }

  /** The demangled name of function `i` (C++ symbols), or undefined. */
  demangled(i: number): string | undefined {
    let d = this.demangledNames[i];
    if (d === undefined) {
      const name = this.names[i];
      d = (name !== undefined && demangle(name)) || null;
      this.demangledNames[i] = d;
    }
    return d ?? undefined;
  }

  /** Index of the function holding `vaddr`, or -1. */
  find(vaddr: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || vaddr < s[0]!) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= vaddr) lo = mid;
      else hi = mid - 1;
    }
    // Usually the nearest start; a function nested in a bigger one (rare) needs a look back.
    for (let i = lo; i >= 0 && i > lo - BACKWARD_SCAN; i--) {
      if (vaddr < this.ends[i]!) return i;
    }
    return -1;
  }
}

function underscores(name: string): number {
  let n = 0;
  while (n < name.length && name[n] === "_") n++;
  return n;
}

export class Symbolizer {
  private readonly tables = new WeakMap<ElfFile, SymbolTable>();

  constructor(private readonly opts: { debugFile?: DebugFileOpener } = {}) {}

  /** The function table of `elf`, built on first use. */
  table(elf: ElfFile, mapping?: Mapping): SymbolTable {
    let t = this.tables.get(elf);
    if (!t) {
      let debug: ElfFile | undefined;
      try {
        debug = mapping && this.opts.debugFile?.(elf, mapping);
      } catch {
        debug = undefined;
      }
      t = SymbolTable.build(elf, debug);
      this.tables.set(elf, t);
    }
    return t;
  }

  /**
   * Names the function holding `pc`. `returnAddress`: the pc is where a call returns to (every
   * unwound frame but the first), so the call instruction before it is looked up.
   */
  symbolize(space: AddressSpace, pc: number, returnAddress = false): SymbolizedFrame {
    const at = returnAddress ? pc - 1 : pc;
    const loc = space.locate(at);
    if (!loc) return { pc, symbol: "[unknown]", known: false, offset: 0, file: "" };
    const fileOffset = loc.fileOffset + (pc - at);
    const unknown: SymbolizedFrame = { pc, symbol: "[unknown]", known: false, offset: fileOffset, file: loc.mapping.path, fileOffset };
    if (!loc.elf || Number.isNaN(loc.vaddr)) return unknown;
    const t = this.table(loc.elf, loc.mapping);
    let i = t.find(loc.vaddr);
    // A return address at a function's very start is a signal trampoline's (__restore_rt):
    // the handler "returns" to its first instruction, and pc - 1 lies before it.
    if (i < 0 && at !== pc) i = t.find(loc.vaddr + 1);
    if (i < 0) return unknown;
    const demangled = t.demangled(i);
    return { pc, symbol: t.names[i]!, ...(demangled ? { demangled } : {}), known: true, offset: loc.vaddr + (pc - at) - t.starts[i]!, file: loc.mapping.path, fileOffset };
  }

  /**
   * Every frame of an unwound stack (pcs innermost first, as unwind() returns them). `exact`
   * (unwind()'s) says which pcs are not return addresses; without it, all but the first are.
   */
  symbolizeStack(space: AddressSpace, pcs: readonly number[], exact?: readonly boolean[]): SymbolizedFrame[] {
    return pcs.map((pc, i) => this.symbolize(space, pc, exact ? !exact[i] : i > 0));
  }
}

/**
 * A frame's display name: the function, demangled (`+0x1a` with offsets), or `[unknown]
 * (libfoo.so)` (`libfoo.so+0x1234` with offsets) so that unknown code still says where it is.
 */
export function frameLabel(f: SymbolizedFrame, opts: { offsets?: boolean } = {}): string {
  const name = f.demangled ?? f.symbol;
  if (f.known) return opts.offsets && f.offset ? `${name}+0x${f.offset.toString(16)}` : name;
  if (!f.file) return opts.offsets ? `[unknown] (0x${f.pc.toString(16)})` : "[unknown]";
  const where = basename(f.file) || f.file;
  return opts.offsets && f.fileOffset !== undefined ? `[unknown] (${where}+0x${f.fileOffset.toString(16)})` : `[unknown] (${where})`;
}

/** The GNU build id of an ELF file (hex), from its `.note.gnu.build-id` (or any note section). */
export function buildId(elf: ElfFile): string | undefined {
  for (const s of elf.sections) {
    if (s.type !== SHT.NOTE || s.size > 1 << 16) continue;
    const b = elf.sectionBytes(s);
    const v = view(b);
    for (let o = 0; o + 12 <= b.length; ) {
      const namesz = v.getUint32(o, true);
      const descsz = v.getUint32(o + 4, true);
      const type = v.getUint32(o + 8, true);
      const nameOff = o + 12;
      const descOff = nameOff + ((namesz + 3) & ~3);
      const next = descOff + ((descsz + 3) & ~3);
      if (next > b.length || next <= o) break;
      if (type === 3 && namesz === 4 && b[nameOff] === 0x47 && b[nameOff + 1] === 0x4e && b[nameOff + 2] === 0x55) {
        return Array.from(b.subarray(descOff, descOff + descsz), (x) => x.toString(16).padStart(2, "0")).join("");
      }
      o = next;
    }
  }
  return undefined;
}

/** Where Debian (and most distributions) install the separate debug file of `elf`, by build id. */
export function debugFilePaths(elf: ElfFile, root = "/usr/lib/debug"): string[] {
  const id = buildId(elf);
  return id && id.length > 2 ? [`${root}/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`] : [];
}
