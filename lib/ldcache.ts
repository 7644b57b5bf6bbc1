// glibc's /etc/ld.so.cache ("glibc-ld.so.cache1.1" format): the library names the dynamic linker
// knows and where they are, read from bytes so that a container's own cache can be parsed too.

const MAGIC_NEW = "glibc-ld.so.cache1.1";
const MAGIC_OLD = "ld.so-1.7.0";
const HEADER = 48; // magic+version (20), nlibs, len_strings, flags+pad, extension_offset, unused[3]
const ENTRY = 24; // flags, key, value, osversion, hwcap (u64)
const FLAG_X86_64 = 0x0300; // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64

export interface LdCacheEntry {
  name: string;
  path: string;
}

export function parseLdCache(b: Uint8Array): LdCacheEntry[] {
  const text = new TextDecoder("latin1");
  let base = 0;
  // Old caches carry the new format after the old table; find the new magic wherever it is.
  if (text.decode(b.subarray(0, MAGIC_OLD.length)) === MAGIC_OLD) {
    const at = indexOf(b, MAGIC_NEW);
    if (at < 0) return [];
    base = at;
  } else if (text.decode(b.subarray(0, MAGIC_NEW.length)) !== MAGIC_NEW) {
    return [];
  }
  const v = new DataView(b.buffer, b.byteOffset + base, b.byteLength - base);
  const n = v.getUint32(20, true);
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < n; i++) {
    const e = HEADER + i * ENTRY;
    if (e + ENTRY > v.byteLength) break;
    const flags = v.getInt32(e, true);
    if ((flags & 0xff00) !== FLAG_X86_64 && (flags & 0xff00) !== 0) continue;
    // String offsets in the new format are relative to the start of the new-format header.
    out.push({ name: cstring(b, base + v.getUint32(e + 4, true)), path: cstring(b, base + v.getUint32(e + 8, true)) });
  }
  return out;
}

function cstring(b: Uint8Array, off: number): string {
  let end = off;
  while (end < b.length && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(off, end));
}

function indexOf(b: Uint8Array, s: string): number {
  const needle = new TextEncoder().encode(s);
  outer: for (let i = 0; i + needle.length <= b.length; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
