// Type names as C and C++ write them, the way gdb prints them: declarators around a name
// ("int (*cb)(int)", "char *[4]": pointers bind to the name, arrays and functions follow it, with
// parentheses where C needs them), gcc's base type names in the order people write them
// ("unsigned long"), and C++ names with their namespaces and classes.
import { AT, TAG } from "./constants.ts";
import type { Die } from "./die.ts";
import type { DebugType } from "./types.ts";

/** C++ names carry their namespaces and classes: shop::Item. */
export function cxxScoped(die: Die, name: string): string {
  const scopes: string[] = [];
  for (let p = die.parent; p && scopes.length < 64; p = p.parent) {
    if (p.tag === TAG.namespace || p.tag === TAG.structure_type || p.tag === TAG.class_type || p.tag === TAG.union_type) {
      scopes.unshift(p.unit.str(p, AT.name) ?? "(anonymous namespace)");
    }
  }
  return [...scopes, name].join("::");
}

/**
 * A C declaration of `t` around the declarator `inner` ("" for an abstract type name):
 * pointers bind to the declarator, arrays and functions follow it, parentheses where C needs them.
 */
export function cDeclare(t: DebugType, inner: string): string {
  const quals = t.kind === "pointer" || t.kind === "reference" || t.kind === "func" ? (t.qualifiers ?? []).join(" ") : "";
  switch (t.kind) {
    case "pointer":
    case "reference": {
      const star = t.kind === "pointer" ? "*" : t.rvalue ? "&&" : "&";
      let d = quals ? `${star} ${quals}${inner ? " " + inner : ""}` : star + inner;
      const target = t.target!;
      if (target.kind === "func" || target.kind === "array") d = `(${d})`;
      return withBase(target, d);
    }
    case "array":
      return withBase(t.target!, `${inner}[${t.count ?? ""}]`);
    case "func": {
      const ps = (t.params ?? []).map((p) => p.name);
      if (t.variadic) ps.push("...");
      const list = ps.length ? ps.join(", ") : t.prototyped ? "void" : "";
      return withBase(t.target!, `${inner}(${list})`);
    }
    default:
      return inner ? `${t.name} ${inner}` : t.name;
  }
}

/**
 * A C declaration of `t` naming `declarator`: ("int (*)(int)", "cb") -> "int (*cb)(int)";
 * with a function declarator it builds a prototype: (char **, "f(int)") -> "char **f(int)".
 */
export function declareC(t: DebugType, declarator: string): string {
  if (!declarator) return t.name;
  if (t.kind === "pointer" || t.kind === "reference" || t.kind === "array" || t.kind === "func") return cDeclare(t, declarator);
  return `${t.name} ${declarator}`;
}

/** The name of `t` with a declarator: composite types recurse, named ones prefix it. */
function withBase(t: DebugType, d: string): string {
  if (t.kind === "pointer" || t.kind === "reference" || t.kind === "array" || t.kind === "func") {
    // Rebuild through the target so "int *" + "[4]" reads "int *[4]", not "int * [4]".
    return cDeclare(t, d);
  }
  return `${t.name} ${d}`;
}

/** gcc names base types "long unsigned int"; C programmers and gdb write "unsigned long". */
export function normalizeCBase(name: string): string {
  const words = name.split(/\s+/).filter(Boolean);
  if (!words.length) return name;
  const has = (w: string) => words.includes(w);
  if (!(has("int") || has("unsigned") || has("signed")) || words.some((w) => !["unsigned", "signed", "short", "long", "int", "char", "__int128"].includes(w))) return name;
  let out = words.filter((w) => w !== "unsigned" && w !== "signed");
  if (out.length > 1 && out.includes("int") && (out.includes("short") || out.includes("long"))) out = out.filter((w) => w !== "int");
  if (has("unsigned")) out.unshift("unsigned");
  else if (has("signed") && out.includes("char")) out.unshift("signed");
  if (!out.length || (out.length === 1 && out[0] === "unsigned")) out.push("int");
  return out.join(" ");
}
