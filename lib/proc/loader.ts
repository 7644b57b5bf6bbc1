// Where the dynamic linker would find a library by name, in a given view of the filesystem: the
// host's, or a process's root (its own /etc/ld.so.cache and library directories).
import { readFileSync, readdirSync } from "node:fs";
import { libraryCandidates, LDCACHE_MAX_BYTES, type LibraryCandidate, type LibraryView } from "../ldcache.ts";
import { readRegularCapped } from "../files.ts";
import { ProcessError } from "./identity.ts";
import { readInProcessView, listInProcessView } from "./view.ts";

/** This process's own files. */
export const HOST_VIEW: LibraryView = {
  read: (path) => readRegularCapped(path, LDCACHE_MAX_BYTES),
  list(dir) {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  },
};

/**
 * The process's LD_LIBRARY_PATH as it started (what its loader, dlopen included, searches first):
 * absolute directories only, the loader's own rule for a secure (setuid) process aside.
 */
export function processLibraryPath(pid: number): string[] {
  let text: string;
  try {
    // Our own procfs (not a path a container controls); the kernel bounds its size.
    text = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return []; // not ours to read: the cache and directories still apply
  }
  const v = text.split("\0").find((e) => e.startsWith("LD_LIBRARY_PATH="));
  if (!v) return [];
  return v.slice("LD_LIBRARY_PATH=".length).split(/[:;]/).filter((d) => d.startsWith("/")).map((d) => d.replace(/\/+$/, "") || "/");
}

/** The process's own files, inside its root. */
export function processLibraryView(pid: number): LibraryView {
  return {
    firstDirs: processLibraryPath(pid),
    read(path) {
      try {
        return readInProcessView(pid, path, LDCACHE_MAX_BYTES);
      } catch (e) {
        if (e instanceof ProcessError && e.reason === "not-found") return undefined;
        throw e;
      }
    },
    list: (dir) => listInProcessView(pid, dir),
  };
}

/** Every host file that could be library `name`, the loader's choice first. */
export function hostLibraryCandidates(name: string): LibraryCandidate[] {
  return libraryCandidates(name, HOST_VIEW);
}

/** Where process `pid` would find library `name` when it has not mapped it, in preference order. */
export function processLibraryCandidates(pid: number, name: string): LibraryCandidate[] {
  return libraryCandidates(name, processLibraryView(pid));
}
