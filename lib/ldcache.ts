// Where the dynamic linker finds a library by name: glibc's /etc/ld.so.cache
// ("glibc-ld.so.cache1.1", optionally after the old "ld.so-1.7.0" table), then the standard
// directories. Reads go through a `LibraryView` so the same search runs on the host's files or
// inside another process's root.
import { libraryNameMatches } from "./libname.ts";
import { ProbeError } from "./errors.ts";

export interface LdCacheEntry {
  /** The soname ("libssl.so.3"). */
  name: string;
  path: string;
  flags: number;
}

const FLAG_ELF_LIBC6 = 0x0003;
const FLAG_TYPE_MASK = 0x00ff;
const FLAG_ARCH_MASK = 0xff00;
const FLAG_X8664_LIB64 = 0x0300;

export class LdCacheError extends ProbeError {}

export function parseLdCache(buf: Uint8Array): LdCacheEntry[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const td = new TextDecoder();
  const ascii = (o: number, n: number) => td.decode(buf.subarray(o, o + n));
  let base = 0;
  if (ascii(0, 11) === "ld.so-1.7.0") {
    // Old format first: 12-byte magic (with padding), u32 count, 12-byte entries; the new
    // table follows, aligned to its 8-byte alignment.
    const n = v.getUint32(12, true);
    base = (16 + n * 12 + 7) & ~7;
  }
  const NEW_MAGIC = "glibc-ld.so.cache";
  if (ascii(base, NEW_MAGIC.length) !== NEW_MAGIC) throw new LdCacheError("not a glibc ld.so.cache (no glibc-ld.so.cache magic)");
  const version = ascii(base + 17, 3);
  if (version !== "1.1") throw new LdCacheError(`unsupported ld.so.cache version ${version}`);
  const nlibs = v.getUint32(base + 20, true);
  const HEADER = 48; // magic 17 + version 3 + nlibs 4 + len_strings 4 + flags 1 + pad 3 + extension_offset 4 + unused 12
  const ENTRY = 24; // int32 flags, u32 key, u32 value, u32 osversion, u64 hwcap
  if (base + HEADER + nlibs * ENTRY > buf.length) throw new LdCacheError(`truncated ld.so.cache (${nlibs} entries, ${buf.length} bytes)`);
  const str = (off: number) => {
    // String offsets count from the new header's start.
    const s = base + off;
    let e = s;
    while (e < buf.length && buf[e] !== 0) e++;
    return td.decode(buf.subarray(s, e));
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const o = base + HEADER + i * ENTRY;
    out.push({ flags: v.getInt32(o, true), name: str(v.getUint32(o + 4, true)), path: str(v.getUint32(o + 8, true)) });
  }
  return out;
}

/** A 64-bit x86 ELF library (the cache also lists i386 and x32 ones on multiarch systems). */
export function isX8664Entry(e: LdCacheEntry): boolean {
  return (e.flags & FLAG_TYPE_MASK) === FLAG_ELF_LIBC6 && (e.flags & FLAG_ARCH_MASK) === FLAG_X8664_LIB64;
}

/** The standard directories the loader searches, in its order, when the cache does not list a library. */
export const STANDARD_LIB_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"];

/** A file tree to search: the host's, or another process's root. */
export interface LibraryView {
  /** The file's bytes, or undefined when it does not exist. */
  read(path: string): Uint8Array | undefined;
  /** A directory's entries; [] when it does not exist. */
  list(dir: string): string[];
}

export interface LibraryCandidate {
  path: string;
  source: "ld.so.cache" | "dir";
}

/** Files that could be library `name`, in the loader's order of preference: cache, then directories. */
export function libraryCandidates(name: string, view: LibraryView): LibraryCandidate[] {
  const out: LibraryCandidate[] = [];
  const seen = new Set<string>();
  const add = (path: string, source: LibraryCandidate["source"]) => {
    if (seen.has(path)) return;
    seen.add(path);
    out.push({ path, source });
  };
  const bytes = view.read("/etc/ld.so.cache");
  let cache: LdCacheEntry[] = [];
  try {
    if (bytes) cache = parseLdCache(bytes);
  } catch (e) {
    if (!(e instanceof LdCacheError)) throw e;
    // An unreadable cache: the directories below still apply, as for the loader.
  }
  for (const e of cache) if (isX8664Entry(e) && libraryNameMatches(name, e.name)) add(e.path, "ld.so.cache");
  for (const dir of STANDARD_LIB_DIRS) {
    for (const n of view.list(dir).filter((f) => libraryNameMatches(name, f)).sort(preferSoname)) add(`${dir}/${n}`, "dir");
  }
  return out;
}

// Shorter names first (libssl.so.3 before libssl.so.3.0.2): the soname is what the loader opens.
function preferSoname(a: string, b: string): number {
  return a.length - b.length || a.localeCompare(b);
}
