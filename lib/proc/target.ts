// The one answer to "where is a target found?": from what the user typed (`/usr/sbin/nginx`,
// `./server`, `libssl`, `libc.so.6`, `python3`) to one open file that is both parsed and probed.
// On the host it is resolved like the dynamic linker (or PATH) would; for a process, in ITS
// view: its executable, the library it has mapped, else its own loader cache and directories, or
// a path inside its root. The kernel is handed /proc/self/fd/N, so the inode probed is the inode
// parsed even if the file is replaced meanwhile.
import { fstatSync, statSync } from "node:fs";
import { basename, resolve as resolvePath } from "node:path";
import { closeFd } from "../ffi/libc.ts";
import { ElfFile } from "../elf.ts";
import { ProbeError } from "../errors.ts";
import { openRegular } from "../files.ts";
import { looksLikeLibrary } from "../libname.ts";
import { STANDARD_LIB_DIRS } from "../ldcache.ts";
import { ProcessError } from "./identity.ts";
import { openInProcessView, fdPath, inodeOf, type OpenedFile } from "./view.ts";
import { executablePath, findMappedLibrary, mappedFiles, openExecutable, openMappedFile } from "./maps.ts";
import { hostLibraryCandidates, processLibraryCandidates } from "./loader.ts";
import { inodeKey, realInodeOf } from "./overlay.ts";

/** A target file opened once: its ELF, the inode the kernel probes, and how to show it. */
export class OpenTarget {
  readonly elf: ElfFile;
  /** Equal for two targets exactly when the kernel probes one inode (the overlay layer's file). */
  readonly inodeKey: string;
  private closed = false;

  /** Takes ownership of `fd`; `display` is the name the user knows the file by. */
  constructor(
    readonly fd: number,
    readonly display: string,
    inodeKeyText?: string,
  ) {
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new ProbeError(`${display}: not a regular file`);
      this.inodeKey = inodeKeyText ?? `${st.dev}:${st.ino}`;
      this.elf = new ElfFile(fd, display);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /** The path the kernel resolves to exactly this open file, in our own mount namespace. */
  get kernelPath(): string {
    return fdPath(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }
}

function fromOpened(o: OpenedFile, display = o.path): OpenTarget {
  return new OpenTarget(o.fd, display, inodeKey(o.realInode));
}

export class TargetNotFound extends ProbeError {}

/** Where to look: the host (relative paths against `cwd`), or the view of process `pid`. */
export type TargetView = { pid?: undefined; cwd?: string } | { pid: number; cwd?: string };

/** Opens what `target` names, on the host or in a process's view. */
export function openTarget(target: string, view: TargetView = {}): OpenTarget {
  return view.pid === undefined ? openHostTarget(target, view.cwd) : openProcessTarget(target, view.pid, view.cwd);
}

/** A host file by path, keyed by the inode the kernel probes. */
export function openHostFile(path: string, display = path): OpenTarget {
  const fd = openRegular(path, display);
  let key: string;
  try {
    key = inodeKey(realInodeOf("self", fd, inodeOf(fd)));
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return new OpenTarget(fd, display, key);
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

function openHostTarget(target: string, cwd = process.cwd()): OpenTarget {
  if (target.includes("/")) return openHostFile(resolvePath(cwd, target), target);
  if (looksLikeLibrary(target)) {
    const found = hostLibraryCandidates(target);
    if (found.length === 0) {
      throw new TargetNotFound(`library '${target}' not found in /etc/ld.so.cache or ${STANDARD_LIB_DIRS.slice(0, 2).join(", ")}`, "give the library's full path");
    }
    return openHostFile(found[0]!.path);
  }
  const exe = onPath(target);
  if (!exe) throw new TargetNotFound(`${target}: not found (not a path, a library name, or a program on PATH)`, "give the full path to the binary");
  return openHostFile(exe);
}

function openProcessTarget(target: string, pid: number, cwd = process.cwd()): OpenTarget {
  const exe = executablePath(pid);
  if (exe && (target === exe || (!target.includes("/") && target === basename(exe)))) return fromOpened(openExecutable(pid));
  if (target.includes("/") && !target.startsWith("/")) return openRelativeInProcess(target, pid, cwd, exe);
  if (!target.includes("/") && !looksLikeLibrary(target)) {
    throw new TargetNotFound(`${target}: neither the executable of process ${pid} (${exe || "unknown"}) nor a library name`, "give a path as the process sees it, or a library name like 'libssl'");
  }
  return fromOpened(openLibraryInProcess(pid, target));
}

/**
 * `./server` with a process: the caller means a file on the host, relative to its own directory.
 * It is the process's executable or one of its mapped files when the inode is the same; else the
 * same absolute path in its view, if that is the same file.
 */
function openRelativeInProcess(target: string, pid: number, cwd: string, exe: string): OpenTarget {
  const hostPath = resolvePath(cwd, target);
  let st;
  try {
    st = statSync(hostPath);
  } catch {
    throw new TargetNotFound(`${target}: file not found (relative paths are taken from the current directory, ${cwd})`, `give the path as process ${pid} sees it, starting with /`);
  }
  const same = (o: OpenedFile) => o.inode.dev === st.dev && o.inode.ino === st.ino;
  if (exe) {
    const o = openExecutable(pid);
    if (same(o)) return fromOpened(o, target);
    closeFd(o.fd);
  }
  for (const f of mappedFiles(pid)) {
    if (f.inode !== st.ino) continue;
    const o = openMappedFile(pid, f);
    if (same(o)) return fromOpened(o, target);
    closeFd(o.fd);
  }
  try {
    const o = openInProcessView(pid, hostPath);
    if (same(o)) return fromOpened(o, target);
    closeFd(o.fd);
  } catch (e) {
    if (!(e instanceof ProcessError && e.reason === "not-found")) throw e;
  }
  throw new TargetNotFound(`${target} (${hostPath} on the host) is not a file process ${pid} runs or sees at that path`, `give the path as process ${pid} sees it, starting with / (its executable is ${exe || "unknown"})`);
}

export interface OpenedLibrary extends OpenedFile {
  /** maps: the mapped file; path: a path given as is; ld.so.cache / dir: found for a bare name. */
  source: "maps" | "path" | "LD_LIBRARY_PATH" | "ld.so.cache" | "dir";
}

/**
 * Opens library `name` (bare name, soname or absolute path) as process `pid` uses it: the mapped
 * one when there is one, else what its own ld.so.cache / standard directories point at.
 */
export function openLibraryInProcess(pid: number, name: string): OpenedLibrary {
  const mapped = findMappedLibrary(pid, name);
  if (mapped) return { ...openMappedFile(pid, mapped), source: "maps" };
  if (name.includes("/")) return { ...openInProcessView(pid, name), source: "path" };
  for (const c of processLibraryCandidates(pid, name)) {
    try {
      return { ...openInProcessView(pid, c.path), source: c.source };
    } catch (e) {
      if (!(e instanceof ProcessError && e.reason === "not-found")) throw e;
    }
  }
  throw new ProcessError(
    `process ${pid} has no ${name} mapped, and none was found in its ld.so.cache or ${STANDARD_LIB_DIRS.join(", ")}`,
    pid,
    "not-found",
    `check the name against /proc/${pid}/maps, or wait until the process loads it`,
  );
}
