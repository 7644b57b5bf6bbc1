// A few named functions of an ELF file, found without decoding every symbol: node's executable
// has ~185,000 of them (ElfFile.symbols() takes over a second there). The names are searched as
// bytes in the string tables first; only symbols whose name offset is one of the hits are read.
import { type ElfFile, type Section, SHT, STT, SHN_UNDEF, view } from "../elf.ts";

export interface FoundFunction {
  name: string;
  /** Virtual address in the ELF (before load bias). */
  vaddr: number;
  /** File offset: where a uprobe goes. */
  offset: number;
  size: number;
  table: "symtab" | "dynsym";
}

/** Symbol tables larger than this are not read (the largest real ones are tens of MB). */
const MAX_TABLE_BYTES = 256 << 20;

/**
 * The defined function symbols named in `names` (exact names, without versions), from `.symtab`
 * and `.dynsym`; the first definition of each name wins (`.symtab` first: same address either way).
 */
export function findFunctions(elf: ElfFile, names: readonly string[]): Map<string, FoundFunction> {
  const found = new Map<string, FoundFunction>();
  const tables = [...elf.sections.filter((s) => s.type === SHT.SYMTAB), ...elf.sections.filter((s) => s.type === SHT.DYNSYM)];
  for (const sec of tables) {
    if (names.every((n) => found.has(n))) break;
    searchTable(elf, sec, names.filter((n) => !found.has(n)), found);
  }
  return found;
}

function searchTable(elf: ElfFile, sec: Section, names: string[], found: Map<string, FoundFunction>): void {
  const strSec = elf.sections[sec.link];
  if (!strSec || sec.size > MAX_TABLE_BYTES || strSec.size > MAX_TABLE_BYTES) return;
  const strs = Buffer.from(elf.sectionBytes(strSec));
  // Every place each name ends a string (tables share suffixes: "SSL_read" may end "x_SSL_read").
  const byOffset = new Map<number, string>();
  for (const name of names) {
    const needle = Buffer.from(`${name}\0`, "latin1");
    for (let at = strs.indexOf(needle); at >= 0; at = strs.indexOf(needle, at + 1)) byOffset.set(at, name);
  }
  if (!byOffset.size) return;
  const data = elf.sectionBytes(sec);
  const v = view(data);
  const ent = sec.entsize || 24;
  if (ent < 24) return;
  const table = sec.type === SHT.SYMTAB ? "symtab" : "dynsym";
  for (let o = ent; o + 24 <= data.length; o += ent) {
    const name = byOffset.get(v.getUint32(o, true));
    if (name === undefined || found.has(name)) continue;
    const type = v.getUint8(o + 4) & 0xf;
    const shndx = v.getUint16(o + 6, true);
    if (shndx === SHN_UNDEF || (type !== STT.FUNC && type !== STT.GNU_IFUNC)) continue;
    const value = Number(v.getBigUint64(o + 8, true));
    const offset = elf.vaddrToOffset(value);
    if (value === 0 || offset === undefined) continue;
    found.set(name, { name, vaddr: value, offset, size: Number(v.getBigUint64(o + 16, true)), table });
  }
}
