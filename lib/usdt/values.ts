// What a USDT probe's arguments are, for the typed BPF programs (bpf/args.h) and for people.
// A note says only where each argument is and how many bytes it has; its type comes from the
// built-in table of documented probes (known.ts), from the user ('str,str,int' or a prototype
// 'function__entry(char *file, char *func, int line)'), or else from its size and sign.
//
// The types are written as a C prototype and laid out by lib/types/abi.ts, whose formatter
// (lib/types/format.ts) then shows the values; only the slots change: slot i is argument i,
// fetched where the note's spec says (a register, memory at base + index*scale + offset, a
// constant, or rip-relative memory), instead of where the System V ABI would put parameter i.
// Strings and length-delimited buffers are copied through the argument's slot, as for functions.
import { ProbeError } from "../errors.ts";
import { CAPTURES, ENTRY_SLOTS } from "../layouts.ts";
import { locate } from "../types/abi.ts";
import { CAPTURE_CSTRING, LEN_CONST, LEN_SLOT, PHASE_ENTRY, type CaptureRecord, type FunctionLayout, type LocateOptions, type SlotRecord, type ValueLayout } from "../types/function-layout.ts";
import { parsePrototype } from "../types/prototype.ts";
import type { Param, Prototype } from "../types/prototype-model.ts";
import type { CaptureSpec, FunctionValues, SlotSpec } from "../args/describe.ts";
import { ARG_CONST, ARG_REG, flattenArg, type UsdtArg } from "./args.ts";
import { knownProbe, argNames, type KnownArgType } from "./known.ts";
import type { UsdtProbe, UsdtSite } from "./notes.ts";

export class UsdtTypeError extends ProbeError {}

/** A probe's arguments laid out for formatting: `layout.args[i]` is argument i, in slot i. */
export interface UsdtLayout {
  layout: FunctionLayout;
  /** The prototype the types came from, as text (shown by --list and in notes). */
  prototype: string;
  /** One line per argument that will not be shown, saying why. */
  unreadable: string[];
}

const INT_TYPES: Record<number, [string, string]> = { 1: ["int8_t", "uint8_t"], 2: ["int16_t", "uint16_t"], 4: ["int32_t", "uint32_t"], 8: ["int64_t", "uint64_t"] };

/** The C type of an integer argument of `size` bytes. */
function intType(size: number, signed: boolean): string {
  const t = INT_TYPES[size] ?? INT_TYPES[8]!;
  return signed ? t[0] : t[1];
}

/** An argument's size and sign, from the first site that can fetch it (8 unsigned when none can). */
function argShape(probe: UsdtProbe, i: number): { size: number; signed: boolean; float: boolean } {
  for (const s of probe.sites) {
    const a = s.args[i];
    if (a && a.kind !== "unsupported") return { size: a.size, signed: a.signed, float: a.float };
  }
  return { size: 8, signed: false, float: false };
}

/**
 * A probe's sites grouped by their number of arguments, in order of first appearance: one name may
 * be used by macro calls with different argument lists (`STAP_PROBE1(p, n, a)` here,
 * `STAP_PROBE2(p, n, a, b)` there), and each list is typed and shown on its own.
 */
export function groupByArgCount(probe: UsdtProbe): UsdtProbe[] {
  const groups = new Map<number, UsdtProbe>();
  for (const s of probe.sites) {
    const n = s.error ? -1 : s.args.length;
    let g = groups.get(n);
    if (!g) {
      g = { provider: probe.provider, name: probe.name, sites: [] };
      groups.set(n, g);
    }
    g.sites.push(s);
  }
  return [...groups.values()];
}

/** Number of arguments of a probe whose sites agree on it (see groupByArgCount). */
export function usdtArgCount(probe: UsdtProbe): number {
  const usable = probe.sites.filter((s) => !s.error);
  const n = usable[0]?.args.length ?? 0;
  const odd = usable.find((s) => s.args.length !== n);
  if (odd) {
    throw new UsdtTypeError(`USDT probe ${probe.provider}:${probe.name} has sites with different argument counts (${n} and ${odd.args.length}: '${usable[0]!.argsText}', '${odd.argsText}'): type each group of sites on its own`);
  }
  return n;
}

const KNOWN_C: Record<KnownArgType, (size: number, signed: boolean) => string> = {
  str: () => "char *",
  int: (size) => intType(size, true),
  uint: (size) => intType(size, false),
  ptr: () => "void *",
  bool: () => "bool",
};

/**
 * The declaration of every argument without a type from the user: the documented type (known.ts),
 * else an integer of the spec's size and sign. Floating-point arguments are declared double.
 */
export function defaultDeclarations(probe: UsdtProbe, count = usdtArgCount(probe)): string[] {
  const names = argNames(probe.provider, probe.name, count);
  const known = knownProbe(probe.provider, probe.name);
  const documented = known && known.args.length === count ? known.args : undefined;
  return names.map((name, i) => {
    const shape = argShape(probe, i);
    const k = documented?.[i];
    if (k) {
      if (k.type === "str" && k.lengthArg !== undefined && k.lengthArg < count) return `char *${name}[${names[k.lengthArg]}]`;
      return declare(KNOWN_C[k.type](shape.size, shape.signed), name);
    }
    if (shape.float) return declare(shape.size === 4 ? "float" : "double", name);
    return declare(intType(shape.size, shape.signed), name);
  });
}

function declare(type: string, name: string): string {
  return type.endsWith("*") ? `${type}${name}` : `${type} ${name}`;
}

/** Short type names accepted in a type list, for any argument size. */
const SHORT_TYPES: Record<string, (size: number, signed: boolean) => string> = {
  str: KNOWN_C.str,
  string: KNOWN_C.str,
  int: KNOWN_C.int,
  uint: KNOWN_C.uint,
  ptr: KNOWN_C.ptr,
  pointer: KNOWN_C.ptr,
  bool: KNOWN_C.bool,
};

/**
 * The prototype text for `probe` from what the user typed, or from the defaults when `types` is
 * undefined. `types` is a prototype in C (`function__entry(char *file, char *func, int line)`,
 * the name being the probe's) or a comma-separated list of types, each a short name (str, int,
 * uint, ptr, bool: integers sized as the note says) or a C declaration (`unsigned long`,
 * `char *path`), with an optional parameter name. Arguments left untyped keep their default types.
 */
export function usdtPrototypeText(probe: UsdtProbe, types?: string): string {
  const count = usdtArgCount(probe);
  const defaults = defaultDeclarations(probe, count);
  if (types === undefined || !types.trim()) return `void ${cName(probe.name)}(${defaults.join(", ")})`;
  const text = types.trim();
  let decls: string[];
  const proto = prototypeParts(text);
  if (proto) {
    if (proto[1] !== probe.name) throw new UsdtTypeError(`the prototype '${clip(text)}' names ${proto[1]}, not the probe ${probe.provider}:${probe.name}`);
    decls = splitParams(proto[2]!);
  } else {
    decls = splitParams(text);
  }
  if (decls.length === 1 && /^void$/.test(decls[0]!)) decls = [];
  if (decls.length > count) {
    throw new UsdtTypeError(`USDT probe ${probe.provider}:${probe.name} has ${count} argument${count === 1 ? "" : "s"}, but ${decls.length} types were given ('${clip(text)}')`);
  }
  const names = argNames(probe.provider, probe.name, count);
  const all = decls.map((d, i) => {
    // A prototype is C as written; a list may use the short names, sized as the note says.
    const m = proto ? null : /^(\w+)(?:\s+([A-Za-z_]\w*))?$/.exec(d);
    const short = m ? SHORT_TYPES[m[1]!.toLowerCase()] : undefined;
    if (short) {
      const shape = argShape(probe, i);
      return declare(short(shape.size, shape.signed), m![2] ?? names[i]!);
    }
    return d;
  });
  return `void ${cName(probe.name)}(${[...all, ...defaults.slice(all.length)].join(", ")})`;
}

/** A probe name as a C identifier (notes allow `.`, `$` and `-` in names; the prototype's name is only shown). */
function cName(name: string): string {
  return name.replace(/[^\w]/g, "_");
}

/** [text, name, parameters] of a prototype (with or without a return type), or null for a type list. */
function prototypeParts(text: string): RegExpExecArray | null {
  return /^([A-Za-z_]\w*)\s*\(([\s\S]*)\)\s*;?$/.exec(text) ?? /^(?:[\w\s*]+?[\s*])([A-Za-z_]\w*)\s*\(([\s\S]*)\)\s*;?$/.exec(text);
}

/** The probe name a prototype gives types for, or undefined for a type list (which fits any probe). */
export function typedProbeName(types: string): string | undefined {
  return prototypeParts(types.trim())?.[1];
}

/** Splits a parameter list at its top-level commas. */
function splitParams(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of s) {
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    if (c === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  if (cur.trim() || out.length) out.push(cur.trim());
  if (out.some((p) => !p)) throw new UsdtTypeError(`empty type in '${clip(s)}'`);
  return out;
}

/**
 * Lays out a probe's arguments for the formatter: each argument in its own slot (slot i is
 * argument i), strings and buffers copied through it. Arguments no site can fetch, and
 * floating-point ones, are shown as '?', with the reason in `unreadable`.
 */
export function usdtLayout(probe: UsdtProbe, types?: string, limits: LocateOptions = {}): UsdtLayout {
  const count = usdtArgCount(probe);
  const text = usdtPrototypeText(probe, types);
  const parsed = parsePrototype(text);
  const names = argNames(probe.provider, probe.name, count);
  const params: Param[] = parsed.params.map((p, i) => {
    if (p.count?.ret) throw new UsdtTypeError(`${p.name ?? names[i]}: a USDT probe has no return value to give a length ('[ret]')`);
    return p.name ? p : { ...p, name: names[i] };
  });
  const proto: Prototype = { ...parsed, params, results: [] };
  const located = locate(proto, limits);

  // Arguments whose every site has an unsupported spec cannot be fetched at all; nor those past
  // what the program records (sdt.h allows 12 arguments, a hostile note more).
  const unfetchable = new Map<number, string>();
  for (let i = ENTRY_SLOTS; i < count; i++) unfetchable.set(i, `probe records at most ${ENTRY_SLOTS} arguments of a probe`);
  for (let i = 0; i < Math.min(count, ENTRY_SLOTS); i++) {
    const bad = probe.sites.filter((s) => !s.error).map((s) => s.args[i]).find((a) => a?.kind === "unsupported");
    if (bad && bad.kind === "unsupported") unfetchable.set(i, bad.reason);
  }

  const unreadable: string[] = [];
  const oldToArg = new Map<number, number>();
  const args: ValueLayout[] = located.args.map((v, i) => {
    const shape = argShape(probe, i);
    let reason = unfetchable.get(i);
    if (!reason && v.value.kind === "unreadable") reason = shape.float || /float|double/.test(v.typeText) ? "a floating-point value (not shown)" : v.value.reason.replace(/ is passed in .*$/, " cannot be shown");
    if (!reason && shape.float) reason = "a floating-point value (not shown)";
    if (!reason && v.slots.length !== 1) reason = `${v.typeText} is not one value of at most 8 bytes`;
    if (reason) {
      unreadable.push(`${v.name}: ${reason}`);
      return { ...v, value: { kind: "unreadable", reason }, slots: [], capture: undefined };
    }
    oldToArg.set(v.slots[0]!, i);
    return { ...v, slots: [i], capture: undefined };
  });

  // Captures through an argument (strings, buffers), renumbered: pointer and lengths by argument.
  const captures: CaptureRecord[] = [];
  located.descriptor.captures.forEach((c, ci) => {
    const owner = located.args.findIndex((v) => v.capture === ci);
    const ptr = oldToArg.get(c.ptrSlot);
    if (owner < 0 || ptr === undefined || !args[owner]!.slots.length) return;
    const len = c.lenFrom === LEN_SLOT ? oldToArg.get(c.len) : c.len;
    const len2 = c.lenFrom === LEN_SLOT && c.len2 >= 0 ? oldToArg.get(c.len2) : -1;
    if (len === undefined || len2 === undefined || captures.length >= CAPTURES) {
      // A length no site can fetch, or more strings than the program copies: shown as a pointer.
      args[owner] = { ...args[owner]!, value: { kind: "pointer" } };
      return;
    }
    args[owner]!.capture = captures.length;
    captures.push({ ...c, phase: PHASE_ENTRY, len: c.lenFrom === LEN_CONST ? c.len : len, len2 });
  });

  const slots: SlotRecord[] = Array.from({ length: count }, (_, i) => {
    const shape = argShape(probe, i);
    return { phase: PHASE_ENTRY, reg: -1, off: 0, size: shape.size as SlotRecord["size"], signed: shape.signed ? 1 : 0 };
  });
  const layout: FunctionLayout = {
    proto,
    abi: "sysv",
    args,
    results: [],
    descriptor: { slots, captures, entrySlots: count, entryCaptures: captures.length, saveAtEntry: [] },
  };
  return { layout, prototype: text, unreadable };
}

/** Where the BPF program reads argument `arg` of one site (a constant 0 when it cannot). */
export function usdtSlot(arg: UsdtArg): SlotSpec {
  if (arg.kind === "unsupported") return { kind: "const", width: 8, signed: false, offset: 0n };
  const f = flattenArg(arg);
  if (f.kind === ARG_CONST) return { kind: "const", width: f.size, signed: f.signed, offset: f.offset };
  // A register narrower than the argument (-2@%dil): its own bytes, extended as the argument says.
  if (f.kind === ARG_REG) return { kind: "reg", width: Math.min(f.size, f.width) as SlotSpec["width"], signed: f.signed, reg: f.reg, shift: f.shift };
  return { kind: "mem", width: f.size, signed: f.signed, reg: f.reg < 0 ? undefined : f.reg, indexReg: f.index < 0 ? undefined : f.index, scale: f.scale, offset: f.offset };
}

/** The typed program's description of one site: its argument slots and the layout's copies. */
export function usdtSiteValues(site: UsdtSite, layout: FunctionLayout): FunctionValues {
  const entry = site.args.slice(0, ENTRY_SLOTS).map((a, i) => (layout.args[i]?.slots.length ? usdtSlot(a) : usdtSlot({ kind: "unsupported", text: "", reason: "" })));
  const entryCaptures: CaptureSpec[] = layout.descriptor.captures.map((c) => ({
    kind: c.kind === CAPTURE_CSTRING ? "str" : "buf",
    ptrSlot: c.ptrSlot,
    lenFrom: c.lenFrom === LEN_SLOT ? "slot" : c.lenFrom === LEN_CONST ? "const" : "none",
    lenSlot: c.lenFrom === LEN_SLOT ? c.len : undefined,
    len2Slot: c.lenFrom === LEN_SLOT && c.len2 >= 0 ? c.len2 : undefined,
    lenConst: c.lenFrom === LEN_CONST ? c.len : undefined,
    scale: c.scale,
    max: c.max,
  }));
  return { entry, ret: [], entryCaptures, retCaptures: [], saved: [] };
}

function clip(s: string): string {
  const t = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, "?");
}
