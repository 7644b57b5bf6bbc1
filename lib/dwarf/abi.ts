// Where the x86-64 System V calling convention puts a C function's arguments at its first
// instruction. Used when DWARF describes a parameter by a frame slot that the prologue has not
// written yet at the entry (gcc -O0: DW_OP_fbreg -20 for a parameter that arrives in rdi).
// Scalars, pointers and C structs/unions (classified eightbyte by eightbyte, psABI 3.2.3) are
// placed; the first argument the classifier does not handle (C++ classes, complex, vectors)
// stops the assignment, and it and every later argument get no ABI location.
import { registerName } from "./constants.ts";
import type { ParamLocation } from "./locations.ts";
import type { DebugType } from "./types.ts";

const INT_REGS = [5, 4, 1, 2, 8, 9]; // rdi rsi rdx rcx r8 r9 (DWARF numbers)
const SSE_FIRST = 17; // xmm0

type Eightbyte = "integer" | "sse";

/** Classes of an aggregate's eightbytes, "memory" when passed on the stack, undefined when unknown. */
function classifyAggregate(t: DebugType): Eightbyte[] | "memory" | undefined {
  const r = t.resolved;
  if (r.size === 0) return undefined;
  if (r.size > 16) return "memory";
  const classes: (Eightbyte | undefined)[] = new Array(Math.ceil(r.size / 8)).fill(undefined);
  const ok = fields(r, 0, classes, 0);
  if (ok === "memory") return "memory";
  if (!ok) return undefined;
  return classes.map((c) => c ?? "sse");
}

/** Merges the class of every scalar inside `t` (at byte `base`) into `classes`. */
function fields(t: DebugType, base: number, classes: (Eightbyte | undefined)[], depth: number): boolean | "memory" {
  if (depth > 16) return false;
  const r = t.resolved;
  const scalar = classify(r);
  if (scalar !== "other") {
    if (base % Math.max(1, r.size) !== 0) return "memory"; // unaligned field
    const i = Math.floor(base / 8);
    if (i >= classes.length) return false;
    classes[i] = scalar === "integer" || classes[i] === "integer" ? "integer" : "sse";
    return true;
  }
  if (r.kind === "float" && r.size === 16) return "memory"; // long double: X87 class
  if (r.kind === "array" && r.target) {
    const n = r.count ?? 0;
    const es = r.target.resolved.size;
    for (let k = 0; k < n && es > 0; k++) {
      const x = fields(r.target, base + k * es, classes, depth + 1);
      if (x !== true) return x;
    }
    return true;
  }
  if (r.kind === "struct" || r.kind === "union") {
    for (const m of r.members ?? []) {
      const x = fields(m.type, base + m.offset, classes, depth + 1);
      if (x !== true) return x;
    }
    return true;
  }
  return false;
}

function classify(t: DebugType): "integer" | "sse" | "other" {
  const r = t.resolved;
  switch (r.kind) {
    case "int": case "uint": case "char": case "bool": case "enum": case "pointer": case "reference":
      return r.size >= 1 && r.size <= 8 ? "integer" : "other";
    case "float":
      return r.size === 4 || r.size === 8 ? "sse" : "other";
    default:
      return "other";
  }
}

/**
 * Entry locations of `params` (in order), undefined where the ABI placement is not computed.
 * `returnType`: a struct returned in memory takes rdi for its hidden pointer.
 */
export function sysvEntryLocations(params: DebugType[], returnType: DebugType | undefined, language: string): (ParamLocation | undefined)[] {
  const out: (ParamLocation | undefined)[] = [];
  let nextInt = 0;
  let nextSse = 0;
  let stack = 0;
  if (returnType) {
    const r = returnType.resolved;
    if (r.kind === "struct" || r.kind === "union" || r.kind === "class" || r.kind === "array") {
      // C++ may pass any class result through memory (non-trivial copy): not decided here.
      if (language !== "c" || r.size <= 16) {
        if (language !== "c") return params.map(() => undefined);
        // C structs of at most 16 bytes come back in registers: no hidden argument.
      } else {
        nextInt = 1;
      }
    } else if (classify(returnType) === "other" && r.kind !== "void") {
      if (r.kind !== "float" && r.kind !== "complex") return params.map(() => undefined);
    }
  }
  for (const t of params) {
    const cls = classify(t);
    const r = t.resolved;
    if (cls === "other") {
      if (language !== "c" || (r.kind !== "struct" && r.kind !== "union" && !(r.kind === "float" && r.size === 16))) break;
      const agg = r.kind === "float" ? "memory" : classifyAggregate(t);
      if (agg === undefined) break;
      const ints = agg === "memory" ? 0 : agg.filter((c) => c === "integer").length;
      const sses = agg === "memory" ? 0 : agg.length - ints;
      if (agg !== "memory" && nextInt + ints <= INT_REGS.length && nextSse + sses <= 8) {
        const regs = agg.map((c) => (c === "integer" ? INT_REGS[nextInt++]! : SSE_FIRST + nextSse++));
        if (regs.length === 1) {
          out.push({ kind: "register", reg: regs[0]!, name: registerName(regs[0]!) });
        } else {
          out.push({
            kind: "pieces",
            pieces: regs.map((reg, i) => ({ size: i === regs.length - 1 ? r.size - 8 * i : 8, location: { kind: "register" as const, reg, name: registerName(reg) } })),
          });
        }
        continue;
      }
      // In memory: on the stack, aligned to 16 when the type needs it (long double).
      if (r.size >= 16 && r.kind === "float") stack = (stack + 15) & ~15;
      out.push({ kind: "stack", base: "cfa", offset: stack });
      stack += (r.size + 7) & ~7;
      continue;
    }
    if (cls === "integer" && nextInt < INT_REGS.length) {
      const reg = INT_REGS[nextInt++]!;
      out.push({ kind: "register", reg, name: registerName(reg) });
    } else if (cls === "sse" && nextSse < 8) {
      const reg = SSE_FIRST + nextSse++;
      out.push({ kind: "register", reg, name: registerName(reg) });
    } else {
      // Each stack argument takes an eightbyte, from the CFA (just above the return address).
      out.push({ kind: "stack", base: "cfa", offset: stack });
      stack += 8;
    }
  }
  while (out.length < params.length) out.push(undefined);
  return out;
}

/** True when a location describes a slot that only exists once the prologue has run. */
export function builtByPrologue(loc: ParamLocation): boolean {
  if (loc.kind !== "stack") return false;
  if (loc.base === "cfa") return loc.offset < 0;
  return loc.reg === 6; // rbp-relative: rbp is still the caller's at the entry
}
