// Which version of a TLS library a file carries, from the strings its read-only data holds
// ("OpenSSL 3.0.19 27 Jan 2026", "BoringSSL", "GnuTLS 3.7.9", "Version: NSS 3.87.1"). Read in
// bounded slices: node's .rodata is 47 MB.
import type { ElfFile } from "../elf.ts";

const SLICE = 4 << 20;
/** Read-only data past this is not searched. */
const MAX_SCAN = 128 << 20;

/** The first match of `re` (ASCII, under 64 bytes) in the file's .rodata, or undefined. */
export function rodataMatch(elf: ElfFile, needle: string, re: RegExp): string | undefined {
  const sec = elf.section(".rodata");
  if (!sec || sec.type === 8 /* NOBITS */) return undefined;
  const end = sec.offset + Math.min(sec.size, MAX_SCAN);
  const n = Buffer.from(needle, "latin1");
  // Slices overlap by 64 bytes so that a string across a boundary is seen whole.
  for (let at = sec.offset; at < end; at += SLICE - 64) {
    const b = Buffer.from(elf.readAt(at, Math.min(SLICE, end - at)));
    for (let i = b.indexOf(n); i >= 0; i = b.indexOf(n, i + 1)) {
      const m = re.exec(b.toString("latin1", i, Math.min(b.length, i + 64)));
      if (m) return m[1] ?? m[0];
    }
    if (b.length < SLICE) break;
  }
  return undefined;
}

/** "OpenSSL 3.0.19", "BoringSSL", or undefined when the file does not say. */
export function opensslVersion(elf: ElfFile): string | undefined {
  const v = rodataMatch(elf, "OpenSSL ", /^OpenSSL (\d+\.\d+\.\d+[a-z]?)/);
  if (v) return `OpenSSL ${v}`;
  return rodataMatch(elf, "BoringSSL", /^BoringSSL/) ? "BoringSSL" : undefined;
}

/** "GnuTLS 3.7.9", or undefined. */
export function gnutlsVersion(elf: ElfFile): string | undefined {
  const v = rodataMatch(elf, "GnuTLS ", /^GnuTLS (\d+\.\d+\.\d+)/);
  return v ? `GnuTLS ${v}` : undefined;
}

/** "NSS 3.87.1", from the string NSS's libraries carry ("Version: NSS 3.87.1"), or undefined. */
export function nssVersion(elf: ElfFile): string | undefined {
  const v = rodataMatch(elf, "Version: NSS ", /^Version: NSS (\d+\.\d+(?:\.\d+)*)/);
  return v ? `NSS ${v}` : undefined;
}
