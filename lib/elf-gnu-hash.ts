// A name's `.dynsym` entries through the file's `.gnu.hash` table, as the dynamic loader finds
// them: a few small reads instead of reading (and page-faulting in) whole symbol and string tables
// — node's are ~15 MB, which costs ~100 ms on a VM where each fresh page is expensive.
// The table's bytes are untrusted: every index is checked, and chain walks are bounded.
import type { ElfFile, Section } from "./elf.ts";

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

export const SHT_GNU_HASH = 0x6ffffff6;

/** GNU's hash of a symbol name (dl_new_hash): h = h * 33 + c, from 5381, in 32 bits. */
export function gnuHash(name: string): number {
  let h = 5381;
  for (const c of Buffer.from(name)) h = (h * 33 + c) >>> 0;
  return h;
}

/**
 * The `.dynsym` indexes whose hash is `name`'s (the caller compares names: hashes collide), or
 * undefined when the file has no usable `.gnu.hash` for its `.dynsym`.
 */
export function gnuHashCandidates(elf: ElfFile, dynsym: Section, name: string): number[] | undefined {
  const sec = elf.sections.find((s) => s.type === SHT_GNU_HASH && elf.sections[s.link] === dynsym);
  if (!sec || sec.size < 16 || sec.size > 64 << 20) return undefined;
  const count = Math.floor(dynsym.size / 24);
  const head = view(elf.readAt(sec.offset, 16));
  const nbuckets = head.getUint32(0, true);
  const symoffset = head.getUint32(4, true);
  const bloomWords = head.getUint32(8, true);
  const bucketsAt = 16 + bloomWords * 8;
  if (nbuckets === 0 || bucketsAt + nbuckets * 4 > sec.size || symoffset > count) return undefined;
  const h = gnuHash(name);
  const start = view(elf.readAt(sec.offset + bucketsAt + (h % nbuckets) * 4, 4)).getUint32(0, true);
  if (start === 0) return [];
  if (start < symoffset || start >= count) return undefined;
  const chainAt = bucketsAt + nbuckets * 4;
  // The chain from `start` to its end marker (low bit set); read in one piece, capped.
  const left = Math.min(count - start, Math.floor((sec.size - chainAt) / 4) - (start - symoffset), 4096);
  if (left <= 0) return undefined;
  const chain = view(elf.readAt(sec.offset + chainAt + (start - symoffset) * 4, left * 4));
  const out: number[] = [];
  for (let k = 0; k * 4 + 4 <= chain.byteLength; k++) {
    const v = chain.getUint32(k * 4, true);
    if ((v | 1) === (h | 1)) out.push(start + k);
    if (v & 1) return out;
  }
  return undefined; // no end marker within the cap: not a table to trust
}
