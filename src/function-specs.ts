// From what the user typed after the target (names, globs, offsets, C or Go prototypes) to the
// functions to probe and, where types are known, the layout of their values: from a prototype on
// the command line, from `--ret=TYPE`, or from the binary's debug info (its own DWARF or a debug
// file found by build-id in the target's view).
import { STT, type ElfFile } from "../lib/elf.ts";
import { ProbeError } from "../lib/errors.ts";
import { inspectGo } from "../lib/go.ts";
import { pclntabFunctions } from "../lib/go-pclntab.ts";
import { compileGlob, isGlob } from "../lib/glob.ts";
import { parsePrototype, isPrototype, prototypeNotes } from "../lib/types/prototype.ts";
import { locate, unreadableValues } from "../lib/types/abi.ts";
import type { FunctionLayout } from "../lib/types/function-layout.ts";
import { confirmPlacement } from "../lib/types/debug-placement.ts";
import { findDebugInfo, formatSignature, declareC, type DebugFunction, type DebugInfoResult, type DebugType } from "../lib/dwarf/index.ts";
import { C_INT_TYPEDEFS, C_POINTER_TYPEDEFS } from "../lib/types/known.ts";
import { resolveFunction } from "../lib/symbols.ts";
import { UsageError } from "./errors.ts";

export interface ProbedFunction {
  /** What lib/plan.ts resolves: a symbol, a Go name, `sym+0x10`, an offset. */
  name: string;
  /** Chosen by a glob, not named: left out (with a note) when the kernel cannot probe it. */
  fromGlob?: boolean;
  /** Where the values are, when their types are known. */
  layout?: FunctionLayout;
  /** Names of enum values by enum tag (from debug info). */
  enums?: Map<string, Map<number, string>>;
}

export interface SpecOptions {
  /** `--ret=TYPE`: the return type of names given without a prototype. */
  retType?: string;
  stringMax: number;
  /** Look for debug info (default yes). */
  debugInfo: boolean;
  /** Opens a file in the target's view (debug files by build-id), or undefined. */
  openDebugFile?: (path: string) => ElfFile | undefined;
  releaseDebugFile?: (elf: ElfFile) => void;
  /** The target as the user knows it, for messages. */
  display: string;
}

export interface ResolvedSpecs {
  functions: ProbedFunction[];
  /** Lines for the user: where types came from, what could not be typed. */
  notes: string[];
}

/** Debug info is looked up for this many functions at most (a glob over a whole library is not). */
const DEBUG_INFO_MAX_FUNCTIONS = 64;

/** `str` (and friends) for --ret=TYPE; else a C type as written. */
function retTypeText(t: string): string {
  const short: Record<string, string> = { str: "char *", string: "char *", int: "int", long: "long", uint: "unsigned int", ulong: "unsigned long", ptr: "void *", bool: "_Bool", u64: "uint64_t", s64: "int64_t" };
  return short[t] ?? t;
}

function layoutOf(text: string, stringMax: number): { layout: FunctionLayout; notes: string[] } {
  const proto = parsePrototype(text);
  const layout = locate(proto, { stringMax, bufferMax: stringMax });
  return { layout, notes: [...prototypeNotes(proto), ...unreadableValues(layout)] };
}

/**
 * The names a glob selects among the file's functions (Go names for Go binaries), sorted. IFUNC
 * symbols are left out: their address is the resolver, run once at load, not the function.
 */
function expandGlob(elf: ElfFile, pattern: string): string[] {
  const match = compileGlob(pattern);
  const names = inspectGo(elf) ? pclntabFunctions(elf).map((f) => f.name) : elf.functions().filter((s) => s.value !== 0 && s.type === STT.FUNC).map((s) => s.name);
  return [...new Set(names.filter((n) => match(n)))].sort();
}

/**
 * Functions a glob chose that share an address with another function probed (libc's strtol,
 * strtoll, strtoq and strtoimax are one function): one name each, or every call would be
 * reported once per name. The name kept is the one with the fewest leading underscores, then
 * the shortest, then the first alphabetically; named functions are always kept.
 */
function leaveOutAliases(elf: ElfFile, fns: ProbedFunction[], notes: string[]): ProbedFunction[] {
  if (!fns.some((f) => f.fromGlob) || inspectGo(elf)) return fns;
  const addressOf = new Map<string, number>();
  for (const s of elf.functions()) if (s.value !== 0 && !addressOf.has(s.name)) addressOf.set(s.name, s.value);
  const rank = (n: string) => [n.length - n.replace(/^_+/, "").length, n.length] as const;
  const better = (a: ProbedFunction, b: ProbedFunction) => {
    if (!a.fromGlob !== !b.fromGlob) return !a.fromGlob;
    const [ua, la] = rank(a.name);
    const [ub, lb] = rank(b.name);
    return ua !== ub ? ua < ub : la !== lb ? la < lb : a.name < b.name;
  };
  const keep = new Map<number, ProbedFunction>();
  for (const f of fns) {
    const at = addressOf.get(f.name);
    if (at === undefined || f.layout) continue;
    const k = keep.get(at);
    if (!k || better(f, k)) keep.set(at, f);
  }
  const out: ProbedFunction[] = [];
  const left: string[] = [];
  for (const f of fns) {
    const at = addressOf.get(f.name);
    const k = at === undefined ? undefined : keep.get(at);
    if (!k || k === f || !f.fromGlob) out.push(f);
    else left.push(`${f.name} (= ${k.name})`);
  }
  if (left.length) notes.push(`left out ${left.length} alias${left.length === 1 ? "" : "es"} of functions already probed: ${left.slice(0, 5).join(", ")}${left.length > 5 ? ", ..." : ""}`);
  return out;
}

export function resolveSpecs(elf: ElfFile, specs: string[], o: SpecOptions): ResolvedSpecs {
  const functions: ProbedFunction[] = [];
  const notes: string[] = [];
  for (const spec of specs) {
    if (isPrototype(spec)) {
      const { layout, notes: n } = layoutOf(spec, o.stringMax);
      notes.push(...n.map((x) => `${layout.proto.name}: ${x}`));
      functions.push({ name: layout.proto.name, layout });
      continue;
    }
    if (isGlob(spec)) {
      const names = expandGlob(elf, spec);
      if (!names.length) {
        const tail = spec.replace(/[*?[\]]/g, "");
        const close = tail ? elf.functions().map((s) => s.name).filter((n) => n.includes(tail)).slice(0, 3) : [];
        throw new ProbeError(`no function of ${o.display} matches '${spec}'`, close.length ? `functions with '${tail}' in their name: ${close.join(", ")}` : "list them with --list-functions");
      }
      for (const name of names) functions.push({ name, fromGlob: true });
      continue;
    }
    functions.push({ name: spec });
  }
  const seen = new Set<string>();
  const unique = leaveOutAliases(elf, functions.filter((f) => !seen.has(f.name) && seen.add(f.name)), notes);
  // Debug info first: --ret=TYPE then only replaces the return type of what it finds.
  if (o.debugInfo && unique.some((f) => !f.layout) && unique.length <= DEBUG_INFO_MAX_FUNCTIONS) typeFromDebugInfo(elf, unique, o, notes);
  if (o.retType) {
    for (const f of unique) {
      if (f.layout) continue;
      const ret = retTypeText(o.retType);
      const text = inspectGo(elf) ? `func ${f.name}() ${o.retType}` : `${ret}${ret.endsWith("*") ? "" : " "}${f.name}(...)`;
      try {
        f.layout = layoutOf(text, o.stringMax).layout;
      } catch (e) {
        throw new UsageError(`--ret=${o.retType}: ${(e as Error).message}`, "give a type like str, int, long, 'char *', or a whole prototype");
      }
    }
  }
  return { functions: unique, notes };
}

/**
 * A debug-info function as a prototype probe's parser can place: typedefs it does not know, passed
 * by value, are spelt as what they stand for (`count_t n` -> `unsigned long n`); behind a pointer,
 * and known ones (`size_t`), they keep their names.
 */
function parseableSignature(fn: DebugFunction, retType?: string): string {
  // Go's results are exact in its debug info: --ret=TYPE does not replace them.
  if (fn.language === "go") return formatSignature(fn);
  const known = (t: DebugType) => C_INT_TYPEDEFS.has(t.name) || C_POINTER_TYPEDEFS.has(t.name);
  const spell = (t: DebugType, name: string) => {
    if (t.kind !== "typedef" || known(t)) return declareC(t, name);
    const r = t.resolved;
    if (r.kind === "pointer" || r.kind === "func") return `void *${name}`;
    return declareC(r, name);
  };
  const ps = fn.params.filter((p) => !p.artificial).map((p, i) => spell(p.type, p.name || `arg${i}`));
  if (fn.variadic) ps.push("...");
  const list = ps.length ? ps.join(", ") : "void";
  if (retType) return `${retType}${retType.endsWith("*") ? "" : " "}${fn.name}(${list})`;
  return fn.returnType ? spell(fn.returnType, `${fn.name}(${list})`) : `void ${fn.name}(${list})`;
}

/** The enums among a function's parameter types, by tag: value -> name. */
function enumNames(fn: DebugFunction): Map<string, Map<number, string>> {
  const out = new Map<string, Map<number, string>>();
  for (const p of fn.params) {
    const r = p.type.resolved;
    if (r.kind !== "enum" || !r.enumerators) continue;
    out.set(r.name.replace(/^enum\s+/, ""), new Map(r.enumerators.map((e) => [Number(e.value), e.name])));
  }
  return out;
}

/** Layouts from DWARF for the functions still without one; notes say where they came from. */
function typeFromDebugInfo(elf: ElfFile, fns: ProbedFunction[], o: SpecOptions, notes: string[]): void {
  let found: DebugInfoResult;
  try {
    found = findDebugInfo(elf, o.display, { open: (p) => o.openDebugFile?.(p), release: (e) => o.releaseDebugFile?.(e) });
  } catch (e) {
    notes.push(`no types from debug info: ${(e as Error).message}`);
    return;
  }
  const info = found.info;
  for (const n of found.notes) if (/ignored|mismatch/.test(n)) notes.push(n);
  if (!info) {
    notes.push(`no debug info for ${o.display} (in it, or by build-id under /usr/lib/debug): values in hex; give a prototype to type them`);
    return;
  }
  let typed = 0;
  for (const f of fns) {
    if (f.layout) continue;
    try {
      const vaddr = inspectGo(elf) ? undefined : resolveFunction(elf, f.name).vaddr;
      const fn = vaddr !== undefined ? info.functionAt(vaddr) : info.functionByName(f.name);
      if (!fn || fn.language === "asm") continue;
      const layout = layoutOf(parseableSignature(fn, o.retType && retTypeText(o.retType)), o.stringMax).layout;
      // What debug info says is elsewhere at the entry (optimized copies: .constprop, .isra) or not
      // there at all is shown as unavailable with the reason, never guessed. Go's debug info
      // describes its register ABI's own placement, which layoutOf already follows.
      const locations = fn.params.filter((p) => !p.artificial).map((p) => p.location);
      if (fn.language !== "go") confirmPlacement(layout, locations);
      else {
        layout.args.forEach((a, i) => {
          const loc = locations[i];
          if (loc?.kind === "unavailable") a.value = { kind: "unreadable", reason: loc.reason };
        });
      }
      f.layout = layout;
      f.enums = enumNames(fn);
      for (const n of unreadableValues(layout)) notes.push(`${f.name}: argument ${n}`);
      typed++;
    } catch {
      // A type the prototype parser cannot place (a struct by value...): this function stays untyped.
    }
  }
  if (typed) notes.push(`types from ${found.path}${found.source === "binary" ? "" : ` (${found.source})`}`);
}
