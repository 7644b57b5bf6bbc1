// Where the dynamic linker finds a library by name: glibc's /etc/ld.so.cache
// ("glibc-ld.so.cache1.1", optionally after the old "ld.so-1.7.0" table), then the standard
// directories. Reads go through a `LibraryView` so the same search runs on the host's files or
// inside another process's root. The cache is untrusted (a container's own file): its size is
// capped, and every count, offset and string is checked against the bytes.
import { ProbeError } from "./errors.ts";
import { libraryNameMatches } from "./libname.ts";

/**
 * The largest ld.so.cache probe reads. Real caches are tens of kilobytes (~40 KB on Debian 12,
 * a few hundred KB on systems with thousands of libraries); a bigger file is not a loader cache.
 * Readers of the file should stop at this many bytes (+1, to tell a file that is too big).
 */
export const LDCACHE_MAX_BYTES = 16 << 20;
/** glibc's ldconfig writes paths no longer than PATH_MAX. */
const MAX_STRING = 4096;
/** All names and paths together: a real cache has tens of kilobytes of them. */
const MAX_STRING_BYTES = 2 * LDCACHE_MAX_BYTES;

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

/** The entries of a glibc ld.so.cache; `path` only names the file in errors. */
export function parseLdCache(buf: Uint8Array, path = "/etc/ld.so.cache"): LdCacheEntry[] {
  const bad = (what: string) => new LdCacheError(`${path}: ${what}`);
  if (buf.length > LDCACHE_MAX_BYTES) {
    throw bad(`${buf.length} bytes is more than any loader cache holds (probe reads at most ${LDCACHE_MAX_BYTES >> 20} MiB)`);
  }
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const td = new TextDecoder();
  const ascii = (o: number, n: number) => td.decode(buf.subarray(o, o + n));
  let base = 0;
  if (ascii(0, 11) === "ld.so-1.7.0") {
    // Old format first: 12-byte magic (with padding), u32 count, 12-byte entries; the new
    // table follows, aligned to its 8-byte alignment.
    if (buf.length < 16) throw bad(`truncated old-format header (${buf.length} bytes)`);
    const n = v.getUint32(12, true);
    base = Math.ceil((16 + n * 12) / 8) * 8;
    if (base > buf.length) throw bad(`the old-format table (${n} entries) runs past the end of the file (${buf.length} bytes)`);
  }
  const NEW_MAGIC = "glibc-ld.so.cache";
  const HEADER = 48; // magic 17 + version 3 + nlibs 4 + len_strings 4 + flags 1 + pad 3 + extension_offset 4 + unused 12
  const ENTRY = 24; // int32 flags, u32 key, u32 value, u32 osversion, u64 hwcap
  if (ascii(base, NEW_MAGIC.length) !== NEW_MAGIC) throw bad("not a glibc ld.so.cache (no glibc-ld.so.cache magic)");
  const version = ascii(base + 17, 3);
  if (version !== "1.1") throw bad(`unsupported ld.so.cache version ${JSON.stringify(version)}`);
  if (base + HEADER > buf.length) throw bad(`truncated header (${buf.length} bytes)`);
  const nlibs = v.getUint32(base + 20, true);
  if (base + HEADER + nlibs * ENTRY > buf.length) throw bad(`truncated: ${nlibs} entries do not fit in ${buf.length} bytes`);
  // Entries may all point at long strings: the bytes scanned in total are bounded too.
  let scanned = 0;
  const str = (off: number, what: () => string) => {
    // String offsets count from the new header's start.
    const s = base + off;
    if (s >= buf.length) throw bad(`${what()} is at offset ${s}, past the end of the file (${buf.length} bytes)`);
    const len = buf.subarray(s, Math.min(buf.length, s + MAX_STRING)).indexOf(0);
    if (len < 0) throw bad(`${what()} at offset ${s} is not a NUL-terminated string of at most ${MAX_STRING} bytes`);
    scanned += len;
    if (scanned > MAX_STRING_BYTES) throw bad(`its names and paths add up to more than ${MAX_STRING_BYTES >> 20} MiB: not a real loader cache`);
    return td.decode(buf.subarray(s, s + len));
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const o = base + HEADER + i * ENTRY;
    out.push({
      flags: v.getInt32(o, true),
      name: str(v.getUint32(o + 4, true), () => `the name of entry ${i}`),
      path: str(v.getUint32(o + 8, true), () => `the path of entry ${i}`),
    });
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
  /** Directories searched before the cache: the process's LD_LIBRARY_PATH, as its loader read it. */
  firstDirs?: string[];
}

export interface LibraryCandidate {
  path: string;
  source: "LD_LIBRARY_PATH" | "ld.so.cache" | "dir";
}

/** Files that could be library `name`, in the loader's order of preference: LD_LIBRARY_PATH, cache, then directories. */
export function libraryCandidates(name: string, view: LibraryView): LibraryCandidate[] {
  const out: LibraryCandidate[] = [];
  const seen = new Set<string>();
  const add = (path: string, source: LibraryCandidate["source"]) => {
    if (seen.has(path)) return;
    seen.add(path);
    out.push({ path, source });
  };
  for (const dir of view.firstDirs ?? []) {
    for (const n of view.list(dir).filter((f) => libraryNameMatches(name, f)).sort(preferSoname)) add(`${dir}/${n}`, "LD_LIBRARY_PATH");
  }
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
