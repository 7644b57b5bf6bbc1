// DebugFunction: a subprogram DIE as probe needs it: name, entry, parameters with their types
// and where each is at the entry pc, results (Go), return type (C), and where it was declared.
// Inlined-elsewhere and cloned functions (.isra/.constprop) take names and types from their
// abstract origin and keep the concrete DIE's locations.
import { AT, TAG } from "./constants.ts";
import { DwarfError } from "./errors.ts";
import { readFileTable, type FileTable } from "./lines.ts";
import { builtByPrologue, sysvEntryLocations } from "./abi.ts";
import { locationAt, type ParamLocation } from "./locations.ts";
import { dieRanges, type Range } from "./ranges.ts";
import { cxxScoped } from "./c-names.ts";
import { unitLanguage, type DebugType, type DieSource, type TypeReader } from "./types.ts";
import type { Unit } from "./unit.ts";
import type { Die } from "./die.ts";

export interface DebugParam {
  name: string;
  type: DebugType;
  /** Where the value is at the function's entry pc. */
  location: ParamLocation;
  /**
   * "dwarf" when `location` is what DWARF says for the entry pc; "abi" when DWARF only names a
   * frame slot the prologue fills (gcc -O0) and `location` is the calling convention's register
   * or stack slot instead; the DWARF slot (valid after the prologue) is then in `frameLocation`.
   */
  locationSource: "dwarf" | "abi";
  frameLocation?: ParamLocation;
  /** Compiler-made (C++ `this`). */
  artificial?: boolean;
}

export interface DebugFunction {
  /** As the source names it ("malloc" may be "__libc_malloc"; Go: "main.(*T).Read"). */
  name: string;
  /** The mangled or linkage name when DWARF gives one (C++). */
  linkageName?: string;
  /** The range holding the entry (a hot/cold split function has more in `ranges`). */
  lowPc: number;
  highPc: number;
  /** The address locations are evaluated at (DW_AT_entry_pc, else the first range's start). */
  entryPc: number;
  ranges: Range[];
  params: DebugParam[];
  /** Go's named or numbered results (~r0, ~r1): DW_AT_variable_parameter. */
  results: DebugParam[];
  /**
   * C/C++: the declared return type (void included); undefined for Go, whose results are listed,
   * and for assembler units, which give no signature.
   */
  returnType?: DebugType;
  /** Ends with `...`. */
  variadic: boolean;
  /** "c", "c++", "go", "rust", "asm", "other" or "unknown", from the unit. */
  language: string;
  /** Source file of the declaration (read from .debug_line on first access). */
  readonly declFile?: string;
  declLine?: number;
  /** Visible outside its unit (not `static`). */
  external: boolean;
  /** .debug_info offsets of the unit and of the subprogram DIE. */
  unitOffset: number;
  dieOffset: number;
}

const MAX_ORIGINS = 8;

/** The DIE and what it refers to through DW_AT_abstract_origin and DW_AT_specification. */
export function originChain(die: Die, dies: DieSource): Die[] {
  const chain = [die];
  let cur = die;
  for (let i = 0; i < MAX_ORIGINS; i++) {
    const at = cur.has(AT.abstract_origin) ? AT.abstract_origin : cur.has(AT.specification) ? AT.specification : undefined;
    if (at === undefined) break;
    const off = cur.unit.ref(cur, at);
    const next = off === undefined ? undefined : dies.dieAt(off);
    if (!next || chain.includes(next)) break;
    chain.push(next);
    cur = next;
  }
  return chain;
}

function firstWith(chain: Die[], at: number): Die | undefined {
  return chain.find((d) => d.has(at));
}

export function nameOf(chain: Die[]): string | undefined {
  const d = firstWith(chain, AT.name);
  if (!d) return undefined;
  const name = d.unit.str(d, AT.name);
  // C++: qualified with the namespaces and classes the declaration sits in, as gdb does.
  return name === undefined || unitLanguage(d.unit) !== "c++" ? name : cxxScoped(d, name);
}

const fileTables = new WeakMap<Unit, FileTable | null>();

function declFile(d: Die): string | undefined {
  const u = d.unit;
  const index = u.num(d, AT.decl_file);
  if (index === undefined) return undefined;
  let table = fileTables.get(u);
  if (table === undefined) {
    const root = u.root();
    const stmt = u.num(root, AT.stmt_list);
    try {
      table = stmt === undefined ? null : readFileTable(u.secs, stmt, u.str(root, AT.comp_dir));
    } catch (e) {
      if (!(e instanceof DwarfError)) throw e;
      table = null;
    }
    fileTables.set(u, table);
  }
  return table?.files.get(index);
}

/** Builds the DebugFunction of a concrete subprogram DIE (one with code). */
export function buildFunction(die: Die, ranges: Range[], dies: DieSource, types: TypeReader): DebugFunction {
  const u = die.unit;
  const chain = originChain(die, dies);
  const language = unitLanguage(u);
  const go = language === "go";
  const first = ranges[0]!;
  const entry = entryPc(die, first);
  const frameBase = u.block(die, AT.frame_base);

  const params: DebugParam[] = [];
  const results: DebugParam[] = [];
  let variadic = false;
  const covered = new Set<number>();
  const add = (p: Die, concrete: boolean) => {
    const pc = originChain(p, dies);
    for (const o of pc) covered.add(o.offset);
    const typeDie = firstWith(pc, AT.type);
    const param: DebugParam = {
      name: nameOf(pc) ?? "",
      type: typeDie ? types.typeOf(typeDie) : types.void,
      location: concrete ? paramLocation(p, frameBase, entry, types) : { kind: "unavailable", reason: "optimized out" },
      locationSource: "dwarf",
    };
    const art = firstWith(pc, AT.artificial);
    if (art && art.unit.flag(art, AT.artificial)) param.artificial = true;
    const vp = firstWith(pc, AT.variable_parameter);
    if (go && vp && vp.unit.flag(vp, AT.variable_parameter)) results.push(param);
    else params.push(param);
  };
  for (const c of die.children) {
    if (c.tag === TAG.formal_parameter) add(c, true);
    else if (c.tag === TAG.unspecified_parameters) variadic = true;
  }
  // Parameters the concrete copy leaves out were optimized away: list them as such.
  const abstract = die.has(AT.abstract_origin) ? chain[1] : undefined;
  if (abstract) {
    for (const c of abstract.children) {
      if (c.tag === TAG.formal_parameter && !covered.has(c.offset)) add(c, false);
      else if (c.tag === TAG.unspecified_parameters) variadic = true;
    }
  }

  if (language === "c" || language === "c++") {
    const t = firstWith(chain, AT.type);
    useAbiWherePrologueBuilds(params, t ? types.typeOf(t) : types.void, language);
  }

  const fn: DebugFunction = {
    name: nameOf(chain) ?? `<anonymous at 0x${entry.toString(16)}>`,
    lowPc: first.start,
    highPc: first.end,
    entryPc: entry,
    ranges,
    params,
    results,
    variadic,
    language,
    external: chain.some((d) => d.unit.flag(d, AT.external)),
    unitOffset: u.offset,
    dieOffset: die.offset,
  };
  const linkage = firstWith(chain, AT.linkage_name) ?? firstWith(chain, AT.MIPS_linkage_name);
  if (linkage) fn.linkageName = linkage.unit.str(linkage, linkage.has(AT.linkage_name) ? AT.linkage_name : AT.MIPS_linkage_name);
  // Assembler units describe where a function is, not its signature: no return type to claim.
  if (!go && language !== "asm") {
    const t = firstWith(chain, AT.type);
    fn.returnType = t ? types.typeOf(t) : types.void;
  }
  const fileDie = firstWith(chain, AT.decl_file);
  if (fileDie) {
    // Read on first access: the file table lives in .debug_line, which nothing else needs.
    let file: string | undefined | null = null;
    Object.defineProperty(fn, "declFile", {
      enumerable: true,
      configurable: true,
      get() {
        if (file === null) file = declFile(fileDie);
        return file;
      },
    });
  }
  const lineDie = firstWith(chain, AT.decl_line);
  if (lineDie) {
    const line = lineDie.unit.num(lineDie, AT.decl_line);
    if (line !== undefined) fn.declLine = line;
  }
  return fn;
}

function useAbiWherePrologueBuilds(params: DebugParam[], returnType: DebugType, language: string): void {
  if (!params.some((p) => builtByPrologue(p.location))) return;
  const abi = sysvEntryLocations(params.map((p) => p.type), returnType, language);
  params.forEach((p, i) => {
    const a = abi[i];
    if (!builtByPrologue(p.location)) return;
    p.frameLocation = p.location;
    if (a) {
      p.location = a;
      p.locationSource = "abi";
    } else {
      p.location = { kind: "unavailable", reason: "in a frame slot the prologue fills; its register at entry is not computed" };
    }
  });
}

function entryPc(die: Die, first: Range): number {
  const u = die.unit;
  if (die.has(AT.entry_pc)) {
    // DWARF 5 allows a constant: an offset from the function's low_pc.
    const e = u.isConstant(die, AT.entry_pc) ? add(u.addr(die, AT.low_pc), u.num(die, AT.entry_pc)) : u.addr(die, AT.entry_pc);
    if (e !== undefined && e > 0) return e;
  }
  return first.start;
}

function add(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a + b;
}

function paramLocation(p: Die, frameBase: Uint8Array | undefined, pc: number, types: TypeReader): ParamLocation {
  const u = p.unit;
  try {
    const loc = u.attr(p, AT.location);
    if (loc) return locationAt(loc, { unit: u, frameBase, pc });
    if (p.has(AT.const_value)) {
      const block = u.block(p, AT.const_value);
      if (block) return { kind: "constant", value: block };
      const t = types.typeOf(p);
      const value = u.constant(p, AT.const_value, t.resolved.signed ?? false);
      if (value !== undefined) return { kind: "constant", value };
    }
    return { kind: "unavailable", reason: "optimized out" };
  } catch (e) {
    if (e instanceof DwarfError) return { kind: "unavailable", reason: `malformed location: ${e.message}` };
    throw e;
  }
}
