// DebugInfo: the functions of one ELF file's DWARF, found lazily. An address goes to its unit
// through .debug_aranges (else the unit DIEs' ranges), and only that unit's DIEs are parsed; a
// name goes through the symbol tables to an address, and only then through a scan of every unit.
import type { ElfFile } from "../elf.ts";
import { readAbbrevTable, type AbbrevTable } from "./abbrev.ts";
import { AT, TAG } from "./constants.ts";
import { DwarfError } from "./errors.ts";
import { buildFunction, nameOf, originChain, type DebugFunction } from "./functions.ts";
import { arangeUnitsAt, dieRanges, readAranges, type ArangeEntry, type Range } from "./ranges.ts";
import { DebugSections, type ReadStats } from "./sections.ts";
import { TypeReader, type DieSource } from "./types.ts";
import { Unit, WALK } from "./unit.ts";
import type { Die } from "./die.ts";
import { readUnitHeader, type UnitHeader } from "./unit-header.ts";

/** Parsed units kept at once; older ones are dropped and re-parsed when needed again. */
const MAX_CACHED_UNITS = 64;
const MAX_UNITS = 1 << 22;
const MAX_FUNCTION_NESTING = 64;
/** DIEs whose children may hold functions with code (subprograms themselves aside). */
const WALKED_INTO = new Set<number>([TAG.namespace, TAG.structure_type, TAG.class_type, TAG.union_type, TAG.lexical_block]);

interface UnitFunction {
  die: Die;
  ranges: Range[];
}

/** Of `fns`, the first with the smallest range holding `vaddr`. */
function smallestHolding(fns: UnitFunction[], vaddr: number): UnitFunction | undefined {
  let best: UnitFunction | undefined;
  let bestSize = Infinity;
  for (const uf of fns) {
    for (const r of uf.ranges) {
      if (vaddr >= r.start && vaddr < r.end && r.end - r.start < bestSize) {
        best = uf;
        bestSize = r.end - r.start;
      }
    }
  }
  return best;
}

const perFile = new WeakMap<ElfFile, DebugInfo | null>();

export class DebugInfo implements DieSource {
  readonly sections: DebugSections;
  readonly types: TypeReader;
  /** Problems met while listing (units or functions skipped), one line each. */
  readonly warnings: string[] = [];
  private units = new Map<number, Unit>();
  private abbrevTables = new Map<number, AbbrevTable>();
  private headers: UnitHeader[] | undefined;
  private aranges: ArangeEntry[] | undefined;
  private arangeLookups = 0;
  private unitRanges: { unit: number; ranges: Range[] }[] | undefined;
  private unitFunctions = new WeakMap<Unit, UnitFunction[]>();
  private names: Map<string, { unit: number; die: number }> | undefined;
  private symbolSources: ElfFile[] = [];

  private constructor(readonly elf: ElfFile) {
    this.sections = new DebugSections(elf);
    this.types = new TypeReader(this);
  }

  /**
   * The DWARF of `elf` (cached per ElfFile), or undefined when it has no .debug_info.
   * Nothing is read beyond the section headers until a lookup asks.
   */
  static fromElf(elf: ElfFile): DebugInfo | undefined {
    const hit = perFile.get(elf);
    if (hit !== undefined) return hit ?? undefined;
    const secs = new DebugSections(elf);
    const info = secs.has(".debug_info") && secs.has(".debug_abbrev") ? new DebugInfo(elf) : undefined;
    perFile.set(elf, info ?? null);
    return info;
  }

  /** The file the DWARF is read from (a separate debug file's path when it came from one). */
  get path(): string {
    return this.elf.path;
  }

  get stats(): ReadStats {
    return this.sections.stats;
  }

  /**
   * Another ELF file whose symbols name the same addresses (the stripped binary of a separate
   * debug file): functionByName looks there too.
   */
  addSymbolSource(elf: ElfFile): void {
    if (elf !== this.elf && !this.symbolSources.includes(elf)) this.symbolSources.push(elf);
  }

  /** The function whose code holds `vaddr` (an address as in the ELF file, before load bias). */
  functionAt(vaddr: number): DebugFunction | undefined {
    const tried = new Set<number>();
    for (const off of this.unitsForAddress(vaddr)) {
      if (tried.has(off)) continue;
      tried.add(off);
      const f = this.functionInUnit(this.unit(off), vaddr);
      if (f) return f;
    }
    return undefined;
  }

  /**
   * The function named `name` (a symbol name, `@VERSION` ignored, or the name DWARF gives it):
   * through the symbol tables first (an alias such as malloc finds __libc_malloc's DWARF); for a
   * name no symbol has (a stripped binary, a .constprop clone's DWARF name), through an index of
   * every unit's subprograms, built once (that parses every unit: seconds for libc).
   */
  functionByName(name: string): DebugFunction | undefined {
    const base = name.replace(/@.*$/, "");
    let symbol = false;
    for (const elf of [this.elf, ...this.symbolSources]) {
      let syms;
      try {
        syms = elf.functions();
      } catch {
        continue; // a broken symbol table only costs the fast path
      }
      for (const s of syms) {
        if (s.name !== base || s.value === 0) continue;
        symbol = true;
        const f = this.functionAt(s.value);
        if (f) return f;
      }
    }
    // A symbol whose code DWARF does not describe (assembler) has no entry to find by scanning.
    if (symbol) return undefined;
    const hit = this.nameIndex().get(base);
    if (!hit) return undefined;
    const die = this.unit(hit.unit).dieAt(hit.die);
    if (!die) return undefined;
    const ranges = dieRanges(die.unit, die);
    return ranges.length ? buildFunction(die, ranges, this, this.types) : undefined;
  }

  /**
   * Every function with code, unit by unit, parsed as the caller iterates. Malformed units and
   * functions are skipped and described in `warnings`.
   */
  *functions(): Generator<DebugFunction> {
    for (const h of this.unitHeaders()) {
      let list: UnitFunction[];
      let unit: Unit;
      try {
        unit = this.unit(h.offset);
        list = this.functionsOf(unit);
      } catch (e) {
        if (!(e instanceof DwarfError)) throw e;
        this.warnings.push(`unit at 0x${h.offset.toString(16)} skipped: ${e.message}`);
        continue;
      }
      for (const uf of list) {
        let f: DebugFunction;
        try {
          f = buildFunction(uf.die, uf.ranges, this, this.types);
        } catch (e) {
          if (!(e instanceof DwarfError)) throw e;
          this.warnings.push(`function at 0x${uf.die.offset.toString(16)} skipped: ${e.message}`);
          continue;
        }
        yield f;
      }
    }
  }

  /** The DIE at a .debug_info offset, parsing its unit if needed (DieSource). */
  dieAt(offset: number): Die | undefined {
    for (const u of this.units.values()) if (u.contains(offset)) return u.dieAt(offset);
    const hs = this.unitHeaders();
    let lo = 0;
    let hi = hs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const h = hs[mid]!;
      if (offset < h.offset) hi = mid - 1;
      else if (offset >= h.end) lo = mid + 1;
      else return this.unit(h.offset).dieAt(offset);
    }
    return undefined;
  }

  /** The unit whose header is at `offset` (parsed header and abbreviations; DIEs on demand). */
  unit(offset: number): Unit {
    const hit = this.units.get(offset);
    if (hit) {
      this.units.delete(offset);
      this.units.set(offset, hit);
      return hit;
    }
    const info = this.sections.need(".debug_info", "debug info");
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= info.size) {
      throw new DwarfError(`${info.where}: no unit at offset 0x${offset.toString(16)}`);
    }
    const h = readUnitHeader(info, offset);
    let abbrevs = this.abbrevTables.get(h.abbrevOffset);
    if (!abbrevs) {
      abbrevs = readAbbrevTable(this.sections.need(".debug_abbrev", "debug info"), h.abbrevOffset);
      this.abbrevTables.set(h.abbrevOffset, abbrevs);
    }
    const u = new Unit(h, this.sections, abbrevs, `${this.elf.path}: unit at 0x${offset.toString(16)}`);
    if (this.units.size >= MAX_CACHED_UNITS) this.units.delete(this.units.keys().next().value!);
    this.units.set(offset, u);
    return u;
  }

  /** Every unit header, read by hopping from one to the next (no DIEs parsed). */
  unitHeaders(): UnitHeader[] {
    if (this.headers) return this.headers;
    const info = this.sections.need(".debug_info", "debug info");
    const out: UnitHeader[] = [];
    for (let off = 0; off < info.size; ) {
      if (out.length >= MAX_UNITS) throw new DwarfError(`${info.where}: more than ${MAX_UNITS} units`);
      const h = readUnitHeader(info, off);
      out.push(h);
      off = h.end;
    }
    this.headers = out;
    return out;
  }

  /** Units that may hold `vaddr`, best first, found as the caller asks for the next one. */
  private *unitsForAddress(vaddr: number): Generator<number> {
    // One lookup scans the section's bytes, stopping where the caller finds the function; a
    // second one builds the sorted table.
    let any = false;
    if (!this.aranges && this.arangeLookups++ === 0) {
      for (const u of arangeUnitsAt(this.sections, vaddr)) {
        any = true;
        yield u;
      }
    } else {
      this.aranges ??= readAranges(this.sections);
      for (const r of this.aranges) {
        if (vaddr < r.start || vaddr >= r.end) continue;
        any = true;
        yield r.unit;
      }
    }
    if (any) return;
    // No aranges (Go), or an address they leave out: the unit DIEs' own ranges.
    if (!this.unitRanges) {
      this.unitRanges = [];
      for (const h of this.unitHeaders()) {
        try {
          const u = this.unit(h.offset);
          this.unitRanges.push({ unit: h.offset, ranges: dieRanges(u, u.root()) });
        } catch (e) {
          if (!(e instanceof DwarfError)) throw e;
          this.warnings.push(`unit at 0x${h.offset.toString(16)} skipped: ${e.message}`);
        }
      }
    }
    for (const r of this.unitRanges) if (r.ranges.some((x) => vaddr >= x.start && vaddr < x.end)) yield r.unit;
  }

  /**
   * The smallest function of `unit` whose code holds `vaddr`: from its function list when the
   * unit was parsed whole, else by a walk that reads only what it must (walkForFunction).
   */
  private functionInUnit(unit: Unit, vaddr: number): DebugFunction | undefined {
    const parsed = this.unitFunctions.get(unit);
    const found = parsed ? smallestHolding(parsed, vaddr) : this.walkForFunction(unit, vaddr);
    return found ? buildFunction(found.die, found.ranges, this, this.types) : undefined;
  }

  /**
   * A walk over the unit that decodes no DIE but the function it finds: each subprogram's ranges
   * are read in place, everything else is stepped over. First only the unit's and its
   * namespaces' own functions: compilers put a function's code there (a member function's
   * declaration stays in its class), and a GNU C nested function's code lies outside its
   * parent's. Only when none holds vaddr are class and function bodies read too.
   */
  private walkForFunction(unit: Unit, vaddr: number): UnitFunction | undefined {
    let best: UnitFunction | undefined;
    let bestSize = Infinity;
    let bestPath: number[] = [];
    for (const nested of [false, true]) {
      unit.walk((off, abbrev, _sib, path) => {
        if (!path.length) return WALK.descend; // the unit DIE
        const tag = abbrev.tag;
        const deep = path.length > MAX_FUNCTION_NESTING;
        if (tag !== TAG.subprogram) return !deep && (tag === TAG.namespace || (nested && WALKED_INTO.has(tag))) ? WALK.descend : WALK.skip;
        const ranges = unit.pcRange(off, abbrev);
        let size = Infinity;
        for (const r of ranges) if (vaddr >= r.start && vaddr < r.end) size = Math.min(size, r.end - r.start);
        if (size < bestSize) {
          const die = unit.dieAt(off);
          if (die && !unit.flag(die, AT.declaration)) {
            best = { die, ranges };
            bestSize = size;
            bestPath = [...path];
          }
        }
        return nested && !deep ? WALK.descend : WALK.skip;
      });
      if (best) break;
    }
    // The scopes the function sits in name it (C++), as a parsed unit would have linked them.
    if (best) best.die.parent = unit.linkPath(bestPath);
    return best;
  }

  /** The unit's subprograms that have code, with their ranges (namespaces and classes included). */
  private functionsOf(unit: Unit): UnitFunction[] {
    const hit = this.unitFunctions.get(unit);
    if (hit) return hit;
    const out: UnitFunction[] = [];
    const walk = (d: Die, depth: number) => {
      for (const c of d.children) {
        const tag = c.tag;
        if (tag === TAG.subprogram) {
          if (!unit.flag(c, AT.declaration)) {
            const ranges = dieRanges(unit, c);
            if (ranges.length) out.push({ die: c, ranges });
          }
          // GNU C nested functions sit inside their parent.
          if (depth < MAX_FUNCTION_NESTING && c.children.length) walk(c, depth + 1);
        } else if (tag === TAG.namespace || tag === TAG.structure_type || tag === TAG.class_type || tag === TAG.union_type || tag === TAG.lexical_block) {
          if (depth < MAX_FUNCTION_NESTING) walk(c, depth + 1);
        }
      }
    };
    walk(unit.tree(), 0);
    this.unitFunctions.set(unit, out);
    return out;
  }

  /** Name (and linkage name) -> first function with code of that name, over every unit. */
  private nameIndex(): Map<string, { unit: number; die: number }> {
    if (this.names) return this.names;
    const names = new Map<string, { unit: number; die: number }>();
    for (const h of this.unitHeaders()) {
      try {
        const unit = this.unit(h.offset);
        for (const uf of this.functionsOf(unit)) {
          const chain = originChain(uf.die, this);
          const entry = { unit: h.offset, die: uf.die.offset };
          const n = nameOf(chain);
          if (n && !names.has(n)) names.set(n, entry);
          for (const d of chain) {
            const l = d.unit.str(d, AT.linkage_name);
            if (l && !names.has(l)) names.set(l, entry);
          }
        }
      } catch (e) {
        if (!(e instanceof DwarfError)) throw e;
        this.warnings.push(`unit at 0x${h.offset.toString(16)} skipped: ${e.message}`);
      }
    }
    this.names = names;
    return names;
  }
}
