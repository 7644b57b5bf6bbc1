// Go functions by the names Go writes (`main.(*T).M`, `net/http.(*conn).serve`): one looked up
// (through .symtab for exact sizes, else .gopclntab, telling an ABI wrapper from the function it
// wraps), or all those matching a pattern, listed by the names the symbol table gives them.
import { ElfFile, STT, SHN_UNDEF } from "./elf.ts";
import { ProbeError } from "./errors.ts";
import { GoError } from "./go-error.ts";
import { pclntabFunctions, type GoFunction } from "./go-pclntab.ts";
import { directBranchTargets } from "./x86/decoder.ts";

/** Go function by its full name (`main.(*T).M`, `net/http.(*conn).serve`). */
export function goFunction(elf: ElfFile, name: string): GoFunction {
  // .symtab gives exact sizes (without the alignment padding); pclntab still works when stripped.
  const sym = elf.symbols().find((s) => s.name === name && s.shndx !== SHN_UNDEF && s.type === STT.FUNC && s.size > 0);
  if (sym) {
    const offset = elf.vaddrToOffset(sym.value);
    if (offset === undefined) throw new GoError(`${name} at 0x${sym.value.toString(16)} is in no loadable segment of ${elf.path}`);
    return { name, entry: sym.value, end: sym.value + sym.size, offset, source: "symtab" };
  }
  const all = pclntabFunctions(elf);
  const same = all.filter((f) => sameGoName(f.name, name));
  if (same.length === 1) return same[0]!;
  if (same.length > 1) return abiInternalOf(elf, same);
  // `name.abi0` as --list-functions shows it in a stripped binary: the wrapper among `name`s.
  if (name.endsWith(".abi0")) {
    const base = all.filter((f) => sameGoName(f.name, name.slice(0, -".abi0".length)));
    const wrappers = base.length > 1 ? base.filter((f) => wrapperEntries(elf, base).has(f.entry)) : [];
    if (wrappers.length === 1) return { ...wrappers[0]!, name };
  }
  const close = suggestGo(all, name);
  throw new GoError(
    `Go function ${name} not found in ${elf.path}`,
    close.length ? `did you mean ${close.join(", ")}?` : "list the functions of the binary to find the name (Go names look like main.(*T).M)",
  );
}

/** Larger "functions" are corrupt bounds, not code worth reading to tell wrappers apart. */
const MAX_DECODED_FUNCTION = 16 << 20;

/**
 * .gopclntab names an ABI wrapper like the function it wraps (the symbol table calls one of them
 * `name.abi0`). The wrapper is the one that calls or jumps to the other; the register-ABI
 * function is the one left.
 */
function abiInternalOf(elf: ElfFile, same: GoFunction[]): GoFunction {
  const wrappers = wrapperEntries(elf, same);
  const left = same.filter((f) => !wrappers.has(f.entry));
  if (left.length === 1) return left[0]!;
  throw new GoError(
    `${same.length} functions are named ${same[0]!.name} in ${elf.path} (at ${same.map((f) => `0x${f.entry.toString(16)}`).join(", ")}) and probe cannot tell which is the Go one`,
    "give its address instead of its name",
  );
}

/** Entries of the ABI wrappers among functions .gopclntab names alike: those that call or jump to another of them. */
function wrapperEntries(elf: ElfFile, same: GoFunction[]): Set<number> {
  const entries = new Set(same.map((f) => f.entry));
  const wrappers = new Set<number>();
  for (const f of same) {
    if (!(f.end - f.entry > 0 && f.end - f.entry <= MAX_DECODED_FUNCTION)) continue;
    try {
      const targets = directBranchTargets(elf.readAt(f.offset, f.end - f.entry), 0, f.end - f.entry, f.entry);
      if (targets.some((t) => t !== f.entry && entries.has(t))) wrappers.add(f.entry);
    } catch (e) {
      // Not decodable (or not in the file): cannot be told apart this way.
      if (!(e instanceof ProbeError)) throw e;
    }
  }
  return wrappers;
}

/**
 * The `name.abi0` of functions .gopclntab names like a register-ABI function: from the symbol
 * table when there is one, else the wrappers among same-named functions (stripped binaries).
 */
function abi0Names(elf: ElfFile, all: GoFunction[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const s of elf.symbols()) {
    if (s.name.endsWith(".abi0") && s.type === STT.FUNC && s.shndx !== SHN_UNDEF) out.set(s.value, s.name);
  }
  if (out.size) return out;
  const byName = new Map<string, GoFunction[]>();
  for (const f of all) byName.set(f.name, [...(byName.get(f.name) ?? []), f]);
  for (const [name, same] of byName) {
    if (same.length < 2) continue;
    for (const e of wrapperEntries(elf, same)) out.set(e, `${name}.abi0`);
  }
  return out;
}

/**
 * Go functions whose name matches `pattern`, sorted by name: a whole-name glob when it has a `*`
 * or `?` wildcard, else a substring. `(*` is Go's pointer-receiver spelling, never a wildcard:
 * `(*conn).serve` is a substring, `main.(*T).*` a glob. ABI0 functions and wrappers are listed
 * by their own name (`runtime.args.abi0`), as the symbol table has them, never as a second line
 * with the register-ABI function's name.
 */
export function listGoFunctions(elf: ElfFile, pattern = ""): GoFunction[] {
  const match = matcher(pattern);
  const all = pclntabFunctions(elf);
  const abi0 = abi0Names(elf, all);
  return all
    .map((f) => (abi0.has(f.entry) ? { ...f, name: abi0.get(f.entry)! } : f))
    .filter((f) => match(f.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.entry - b.entry));
}

function matcher(pattern: string): (name: string) => boolean {
  const parts = pattern.split("(*");
  if (!parts.some((p) => /[*?]/.test(p))) return (n) => n.includes(pattern);
  const glob = (p: string) => p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  const re = new RegExp(`^${parts.map(glob).join("\\(\\*")}$`);
  return (n) => re.test(n);
}

function suggestGo(all: GoFunction[], name: string): string[] {
  // Users often type the method without the package or the receiver decoration.
  const tail = name.replace(/^.*\./, "");
  const hits = all.filter((f) => f.name.endsWith(`.${tail}`) || f.name.endsWith(`.${tail}-fm`));
  return hits.slice(0, 3).map((f) => f.name);
}

/** The linker writes `·` (in compiler-generated names) as `.` in the symbol table: accept both. */
function sameGoName(a: string, b: string): boolean {
  return a === b || a.replaceAll("·", ".") === b.replaceAll("·", ".");
}
