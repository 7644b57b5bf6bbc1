// GNU symbol versions of `.dynsym` entries: `.gnu.version` (one index per symbol) names a
// version defined in `.gnu.version_d` or required in `.gnu.version_r` (SSL_read@@OPENSSL_3.0.0).
// The records are untrusted: every offset is checked and the walks only move forward.
import type { ElfFile } from "./elf.ts";
import { SHT, hexOf, sectionLabel, view } from "./elf-format.ts";

export interface SymbolVersion {
  name: string;
  /** Hidden (`@`, not the default `@@`): bit 15 of the versym entry. */
  hidden: boolean;
}

/** A lookup of the version of each `.dynsym` index, reading the version sections once. */
export function readSymbolVersions(elf: ElfFile): (index: number) => SymbolVersion | undefined {
  const versym = elf.sections.find((s) => s.type === SHT.VERSYM);
  if (!versym) return () => undefined;
  const names = new Map<number, string>();
  for (const sec of elf.sections) {
    if (sec.type !== SHT.VERDEF && sec.type !== SHT.VERNEED) continue;
    const d = elf.sectionBytes(sec);
    if (d.length === 0) continue;
    const dv = view(d);
    const strs = elf.linkedStrings(sec);
    const label = sectionLabel(sec);
    const strName = sectionLabel(elf.sections[sec.link]!);
    const str = (off: number) => elf.stringAt(strs, off, () => `a version name in ${label}`, strName);
    const bad = (off: number, what: string) => elf.error(`${label}: the entry at offset ${hexOf(off)} ${what}`);
    // Records only ever move forward (offsets are unsigned), so these loops end with the section.
    let off = 0;
    for (let n = 0; n < sec.info; n++) {
      if (sec.type === SHT.VERDEF) {
        // Elf64_Verdef: version, flags, ndx, cnt (u16 each), hash, aux, next (u32 each)
        if (off + 20 > d.length) throw bad(off, "runs past the end of the section");
        const ndx = dv.getUint16(off + 4, true);
        const aux = off + dv.getUint32(off + 12, true);
        if (aux + 8 > d.length) throw bad(off, "has its name record outside the section");
        if (ndx > 1) names.set(ndx, str(dv.getUint32(aux, true)));
      } else {
        // Elf64_Verneed: version, cnt (u16), file, aux, next (u32); Elf64_Vernaux: hash, flags, other, name, next
        if (off + 16 > d.length) throw bad(off, "runs past the end of the section");
        const cnt = dv.getUint16(off + 2, true);
        let a = off + dv.getUint32(off + 8, true);
        for (let k = 0; k < cnt; k++) {
          if (a + 16 > d.length) throw bad(off, "has a dependency record outside the section");
          names.set(dv.getUint16(a + 6, true) & 0x7fff, str(dv.getUint32(a + 8, true)));
          const next = dv.getUint32(a + 12, true);
          if (!next) break;
          a += next;
        }
      }
      const next = dv.getUint32(off + (sec.type === SHT.VERDEF ? 16 : 12), true);
      if (!next) break;
      off += next;
      if (off >= d.length) break;
    }
  }
  const vsBytes = elf.sectionBytes(versym);
  const vs = view(vsBytes);
  return (i) => {
    if (i * 2 + 2 > vsBytes.length) return undefined;
    const raw = vs.getUint16(i * 2, true);
    const idx = raw & 0x7fff;
    return idx > 1 && names.has(idx) ? { name: names.get(idx)!, hidden: (raw & 0x8000) !== 0 } : undefined;
  };
}
