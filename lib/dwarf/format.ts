// Text for people: a function's signature in its language's syntax, and where a parameter is.
import type { DebugFunction, DebugParam } from "./functions.ts";
import type { ParamLocation } from "./locations.ts";
import { declareC } from "./c-names.ts";

/**
 * "char **f_double_ptr(char **argv, int argc)", "int (*signal(int sig, ...))(int)" for C and C++;
 * "func main.f(a int, s string) (int, error)" for Go; "name(?)" for assembler, which has no signature.
 */
export function formatSignature(fn: DebugFunction, opts: { names?: boolean } = {}): string {
  const names = opts.names ?? true;
  if (fn.language === "go") {
    const list = (ps: DebugParam[]) => ps.map((p) => (names && p.name && !p.name.startsWith("~") ? `${p.name} ${p.type.name}` : p.type.name)).join(", ");
    const res = fn.results;
    const results = res.length === 0 ? "" : res.length === 1 && (!names || res[0]!.name.startsWith("~")) ? ` ${res[0]!.type.name}` : ` (${list(res)})`;
    return `func ${fn.name}(${list(fn.params)})${results}`;
  }
  if (fn.language === "asm") return `${fn.name}(?)`;
  const ps = fn.params.filter((p) => !p.artificial).map((p) => (names && p.name ? declareC(p.type, p.name) : p.type.name));
  if (fn.variadic) ps.push("...");
  const list = ps.length ? ps.join(", ") : "void";
  return fn.returnType ? declareC(fn.returnType, `${fn.name}(${list})`) : `${fn.name}(${list})`;
}

/** "rdi", "cfa+8", "rbx:8 rcx:8", "const 11", "unavailable (optimized out)". */
export function formatLocation(loc: ParamLocation): string {
  switch (loc.kind) {
    case "register":
      return loc.name;
    case "stack":
      return `[${loc.base}${loc.offset < 0 ? "-" : "+"}${Math.abs(loc.offset)}]`;
    case "pieces":
      return loc.pieces.map((p) => `${formatLocation(p.location)}:${p.size}`).join(" ");
    case "constant":
      return typeof loc.value === "bigint" ? `const ${loc.value}` : `const [${Array.from(loc.value, (b) => b.toString(16).padStart(2, "0")).join(" ")}]`;
    case "address":
      return `*0x${loc.address.toString(16)}`;
    case "expression":
      return `{${loc.text}}`;
    case "unavailable":
      return `unavailable (${loc.reason})`;
  }
}
