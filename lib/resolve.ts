// Where a target argument (`/usr/sbin/nginx`, `libssl`, `libc.so.6`, `python3`) lives on the host:
// for a process, the library it really has mapped; otherwise the dynamic linker's cache, then the
// standard directories; an executable name without a slash is looked up on PATH.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, resolve as resolvePath } from "node:path";
import { parseLdCache } from "./ldcache.ts";
import { libraryNameMatches, looksLikeLibrary } from "./libname.ts";

export class TargetNotFound extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface ResolvedTarget {
  /** A path that opens the file from this process. */
  path: string;
  /** How to show it to the user. */
  display: string;
  /** How it was found. */
  via: "path" | "maps" | "ld.so.cache" | "libdir" | "PATH";
}

const LIB_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"];

export interface MappedFile {
  path: string;
  deleted: boolean;
  start: string;
  end: string;
  inode: number;
}

/** Files a process has mapped, from /proc/PID/maps, first mapping of each path. */
export function mappedFiles(pid: number): MappedFile[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch (e) {
    throw new TargetNotFound(`cannot read the mappings of pid ${pid}: ${(e as Error).message}`);
  }
  const seen = new Set<string>();
  const out: MappedFile[] = [];
  for (const line of text.split("\n")) {
    // start-end perms offset dev inode path
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\/.*)$/.exec(line);
    if (!m) continue;
    let path = m[4]!;
    const deleted = path.endsWith(" (deleted)");
    if (deleted) path = path.slice(0, -" (deleted)".length);
    if (seen.has(path)) continue;
    seen.add(path);
    out.push({ path, deleted, start: m[1]!, end: m[2]!, inode: Number(m[3]) });
  }
  return out;
}

export function findInLdCache(name: string, root = ""): string[] {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(`${root}/etc/ld.so.cache`);
  } catch {
    return [];
  }
  return parseLdCache(bytes)
    .filter((e) => libraryNameMatches(name, e.name))
    .map((e) => e.path);
}

export function findInLibDirs(name: string, root = ""): string[] {
  const out: string[] = [];
  for (const dir of LIB_DIRS) {
    let entries: string[];
    try {
      entries = readdirSync(`${root}${dir}`);
    } catch {
      continue;
    }
    for (const f of entries.sort()) if (libraryNameMatches(name, f)) out.push(`${dir}/${f}`);
  }
  return out;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    const p = `${dir || "."}/${name}`;
    try {
      if (statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}

/** Resolves a target on the host (or, with `pid`, among what that host process has mapped). */
export function resolveTarget(target: string, opts: { pid?: number } = {}): ResolvedTarget {
  if (target.includes("/")) {
    const p = resolvePath(target);
    if (!existsSync(p)) throw new TargetNotFound(`${target}: file not found`, "give an existing path, or a library name like 'libc'");
    return { path: p, display: target, via: "path" };
  }
  if (opts.pid !== undefined) {
    const hit = mappedFiles(opts.pid).find((m) => libraryNameMatches(target, basename(m.path)) || basename(m.path) === target);
    if (hit) {
      // The process's own view: its root, or the mapped inode itself if the file was replaced.
      const path = hit.deleted ? `/proc/${opts.pid}/map_files/${hit.start}-${hit.end}` : `/proc/${opts.pid}/root${hit.path}`;
      return { path, display: hit.path, via: "maps" };
    }
    if (looksLikeLibrary(target)) {
      throw new TargetNotFound(
        `pid ${opts.pid} has no library matching '${target}' mapped`,
        `see which it has in /proc/${opts.pid}/maps`,
      );
    }
  }
  if (looksLikeLibrary(target)) {
    const cached = findInLdCache(target);
    const found = cached.length ? cached : findInLibDirs(target);
    if (found.length === 0) {
      throw new TargetNotFound(`library '${target}' not found in /etc/ld.so.cache or ${LIB_DIRS.slice(0, 2).join(", ")}`, "give the library's full path");
    }
    return { path: found[0]!, display: found[0]!, via: cached.length ? "ld.so.cache" : "libdir" };
  }
  const exe = onPath(target);
  if (!exe) throw new TargetNotFound(`${target}: not found (not a path, a library name, or a program on PATH)`, "give the full path to the binary");
  return { path: exe, display: exe, via: "PATH" };
}
