// Turns what a user typed as a function (`SSL_read`, `SSL_read@@OPENSSL_3.0.0`, `main+0x10`,
// `0x35430`) into a file offset that the kernel's uprobe API takes.
import { ElfFile, SHN_UNDEF, STT, versionedName, type ElfSymbol } from "./elf.ts";
import { ProbeError } from "./errors.ts";

export class SymbolError extends ProbeError {}

export interface ResolvedFunction {
  /** What to call it in output: the symbol name (plus `+0x..`), or the raw offset. */
  name: string;
  /** File offset where the probe goes. */
  offset: number;
  /** Virtual address in the ELF (before load bias). */
  vaddr: number;
  symbol?: ElfSymbol;
}

export interface FunctionSpec {
  symbol?: string;
  version?: string;
  addend: number;
  rawOffset?: number;
}

export function parseFunctionSpec(spec: string): FunctionSpec {
  const s = spec.trim();
  if (/^0x[0-9a-f]+$/i.test(s)) return { addend: 0, rawOffset: parseInt(s, 16) };
  const m = /^(.+?)\+(0x[0-9a-f]+|\d+)$/i.exec(s);
  const base = m ? m[1]! : s;
  const addend = m ? Number(m[2]) : 0;
  const at = base.indexOf("@");
  if (at > 0) {
    return { symbol: base.slice(0, at), version: base.slice(at).replace(/^@@?/, ""), addend };
  }
  return { symbol: base, addend };
}

/** Finds a function in an ELF file and converts it to a file offset through PT_LOAD. */
export function resolveFunction(elf: ElfFile, spec: string): ResolvedFunction {
  const fs = parseFunctionSpec(spec);
  if (fs.rawOffset !== undefined) {
    if (fs.rawOffset >= elf.size) throw new SymbolError(`offset 0x${fs.rawOffset.toString(16)} is past the end of ${elf.path}`);
    return { name: `0x${fs.rawOffset.toString(16)}`, offset: fs.rawOffset, vaddr: elf.offsetToVaddr(fs.rawOffset) ?? fs.rawOffset };
  }
  const name = fs.symbol!;
  const all = elf.symbols().filter((s) => s.name === name && (!fs.version || s.version === fs.version));
  const defined = all.filter((s) => s.shndx !== SHN_UNDEF && s.value !== 0 && isCode(s));
  if (defined.length === 0) {
    if (all.some((s) => s.shndx === SHN_UNDEF)) {
      throw new SymbolError(
        `${name} is imported by ${elf.path}, not defined there`,
        `probe the library that defines it (e.g. 'libc' for malloc), or run 'ldd ${elf.path}'`,
      );
    }
    const close = suggest(elf, name);
    throw new SymbolError(
      `function ${fs.version ? `${name}@${fs.version}` : name} not found in ${elf.path}`,
      close.length ? `did you mean ${close.join(", ")}?` : "list its functions with 'nm -D' or 'readelf -Ws'",
    );
  }
  // Prefer the default version (`@@`), then .symtab over .dynsym (same address either way).
  const sym = defined.find((s) => s.versionSep === "@@") ?? defined[0]!;
  const vaddr = sym.value + fs.addend;
  const offset = elf.vaddrToOffset(vaddr);
  if (offset === undefined) throw new SymbolError(`${name} at 0x${vaddr.toString(16)} is in no loadable segment of ${elf.path}`);
  if (fs.addend && sym.size && fs.addend >= sym.size) {
    throw new SymbolError(`${name}+0x${fs.addend.toString(16)} is past the end of ${name} (size ${sym.size})`);
  }
  return { name: fs.addend ? `${name}+0x${fs.addend.toString(16)}` : name, offset, vaddr, symbol: sym };
}

function isCode(s: ElfSymbol): boolean {
  return s.type === STT.FUNC || s.type === STT.GNU_IFUNC || s.type === STT.NOTYPE;
}

/** Up to three defined function names closest to `name` (edit distance, then shared prefix). */
export function suggest(elf: ElfFile, name: string, max = 3): string[] {
  const lower = name.toLowerCase();
  const names = new Set<string>();
  for (const s of elf.functions()) names.add(s.name);
  const scored: [number, string][] = [];
  for (const n of names) {
    const d = distance(lower, n.toLowerCase(), 6);
    const contains = n.toLowerCase().includes(lower) ? 0 : 1;
    if (d <= Math.max(2, Math.floor(name.length / 3)) || contains === 0) scored.push([d + contains * 3, n]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].length - b[1].length || (a[1] < b[1] ? -1 : 1));
  return scored.slice(0, max).map(([, n]) => n);
}

function distance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const c = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(c);
      if (c < best) best = c;
    }
    if (best > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

export { versionedName };
