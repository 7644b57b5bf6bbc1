// Turns what a user typed as a function (`SSL_read`, `SSL_read@@OPENSSL_3.0.0`, `main+0x10`,
// `0x35430`) into a file offset that the kernel's uprobe API takes.
import { ProbeError } from "./errors.ts";
import { closestNames } from "./closest.ts";
import { ElfFile, SHN_UNDEF, STT, versionedName, type ElfSymbol } from "./elf.ts";

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
  const all = elf.symbolsNamed(name).filter((s) => !fs.version || s.version === fs.version);
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

/** Up to three defined function names closest to `name` (typos first, then names containing it). */
export function suggest(elf: ElfFile, name: string, max = 3): string[] {
  return closestNames(name, elf.functions().map((s) => s.name), max);
}

export { versionedName };
