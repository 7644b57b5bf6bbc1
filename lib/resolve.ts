// Where a target argument (`/usr/sbin/nginx`, `libssl`, `libc.so.6`, `python3`) lives on the host:
// for a process, the library it really has mapped; otherwise the dynamic linker's cache, then the
// standard directories; an executable name without a slash is looked up on PATH.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { libraryCandidates, STANDARD_LIB_DIRS, type LibraryView } from "./ldcache.ts";
import { looksLikeLibrary } from "./libname.ts";

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
  via: "path" | "ld.so.cache" | "libdir" | "PATH";
}

/** This process's own files, for the loader's search. */
export const HOST_VIEW: LibraryView = {
  read(path) {
    try {
      return readFileSync(path);
    } catch {
      return undefined;
    }
  },
  list(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
};

/** Every host file that could be library `name`, the loader's choice first. */
export function hostLibraryCandidates(name: string) {
  return libraryCandidates(name, HOST_VIEW);
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

/**
 * Resolves a target on the host to a path. A process's own view is lib/namespaces.ts's
 * (openLibraryInProcess); commands open targets once through src/targets.ts.
 */
export function resolveTarget(target: string): ResolvedTarget {
  if (target.includes("/")) {
    const p = resolvePath(target);
    if (!existsSync(p)) throw new TargetNotFound(`${target}: file not found`, "give an existing path, or a library name like 'libc'");
    return { path: p, display: target, via: "path" };
  }
  if (looksLikeLibrary(target)) {
    const found = hostLibraryCandidates(target);
    if (found.length === 0) {
      throw new TargetNotFound(`library '${target}' not found in /etc/ld.so.cache or ${STANDARD_LIB_DIRS.slice(0, 2).join(", ")}`, "give the library's full path");
    }
    return { path: found[0]!.path, display: found[0]!.path, via: found[0]!.source === "dir" ? "libdir" : "ld.so.cache" };
  }
  const exe = onPath(target);
  if (!exe) throw new TargetNotFound(`${target}: not found (not a path, a library name, or a program on PATH)`, "give the full path to the binary");
  return { path: exe, display: exe, via: "PATH" };
}
