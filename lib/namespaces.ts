// Files as another process sees them: its mount namespace and root, its mapped libraries, its
// loader cache, its PIDs at every namespace level, and the races of a process that can exit or be
// replaced between looking and attaching.
//
// The fd returned by openInProcessView is what gets parsed (ElfFile) and attached to (through
// /proc/self/fd/N), so the probed inode is the parsed one even if the container later replaces the
// file or the process exits.
import { fstatSync, readFileSync, readSync, readdirSync, readlinkSync, statSync } from "node:fs";
import {
  closeFd, cstr, fchdir, chroot, OsError, openPath, ptr, setns, syscallErr, unshare, CLONE, O, SYS,
} from "./ffi/libc.ts";
import { libraryNameMatches } from "./libname.ts";
import { libraryCandidates, STANDARD_LIB_DIRS, type LibraryCandidate, type LibraryView } from "./ldcache.ts";

/** openat2(2) RESOLVE_* flags. */
export const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08, IN_ROOT: 0x10 } as const;

export type OpenMethod = "openat2" | "setns" | "map_files" | "proc_exe";

export interface InodeId {
  dev: number;
  ino: number;
}

export interface OpenedFile {
  /** Owned by the caller: close it (closeFd) once attached and parsed. */
  fd: number;
  /** The path inside the process's view, as asked (or as maps names it). */
  path: string;
  /** A host path that names the same file, for messages only (never re-opened: it can be swapped). */
  hostPathHint: string;
  /** fstat of the opened fd (on overlayfs: the overlay mount's st_dev, differing per container). */
  inode: InodeId;
  /**
   * The inode the kernel registers the uprobe on (d_real_inode): for a file on overlayfs, the
   * layer's own file, so two containers from one image give the same key. Dedupe by inodeKey(realInode).
   */
  realInode: RealInode;
  method: OpenMethod;
}

export interface RealInode extends InodeId {
  /** "fstat": the file is not on overlayfs; "overlay": found in a layer (realPath); "overlay-unresolved": layers not reachable, fstat kept. */
  via: "fstat" | "overlay" | "overlay-unresolved";
  /** The layer file, as a path in the view of the mounter (host paths for docker/containerd). */
  realPath?: string;
}

/** The path that makes the kernel open exactly this fd's file (uprobe attach, ElfFile messages). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

export class ProcessError extends Error {
  constructor(
    message: string,
    readonly pid: number,
    readonly reason: "gone" | "permission" | "reused" | "not-found" | "timeout" | "invalid",
    readonly hint?: string,
  ) {
    super(message);
  }
}

const ENOENT = 2, ESRCH = 3, EACCES = 13, EPERM = 1, EINVAL = 22, ENOSYS = 38, E2BIG = 7;

/** Whether the PID names a live process (a zombie has exited: no root, no maps). */
export function processExists(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function gone(pid: number, doing: string): ProcessError {
  return new ProcessError(`process ${pid} does not exist (or has exited) ${doing}`, pid, "gone", "check the PID with `ps -p PID`; a container's host PID is what `docker inspect -f {{.State.Pid}}` prints");
}

function permission(pid: number, doing: string, cap: string): ProcessError {
  return new ProcessError(`permission denied ${doing} of process ${pid}: needs ${cap}`, pid, "permission", `run as root, or grant ${cap} (in a container: --pid=host and --cap-add for it)`);
}

/** Turns an errno from a /proc/PID/... access into the error a user can act on. */
function procErrno(pid: number, errno: number, doing: string, cap = "CAP_SYS_PTRACE"): Error {
  if (errno === ENOENT || errno === ESRCH) return gone(pid, doing);
  if (errno === EPERM || errno === EACCES) return permission(pid, doing, cap);
  return new OsError(doing, errno, `pid ${pid}`);
}

function validPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new ProcessError(`invalid PID ${pid}`, pid, "invalid");
}

// ---------------------------------------------------------------------------------------------
// Process identity: PID reuse shows up as a different start time for the same PID.

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat, in clock ticks since boot. */
  startTime: bigint;
}

export function processIdentity(pid: number): ProcessIdentity {
  validPid(pid);
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (e) {
    throw procErrno(pid, errnoOf(e), "reading /proc/PID/stat");
  }
  // comm (field 2) can hold spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // A zombie has exited: no maps, no root, nothing to probe; it only waits for its parent.
  if (rest[0] === "Z" || rest[0] === "X") throw gone(pid, "(it is a zombie)");
  return { pid, startTime: BigInt(rest[19]!) }; // field 22 = index 19 after state (field 3)
}

/** Whether the process is still the one identified (same PID, same start time). */
export function isSameProcess(id: ProcessIdentity): boolean {
  try {
    return processIdentity(id.pid).startTime === id.startTime;
  } catch {
    return false;
  }
}

/**
 * Resolves when the identified process has exited (or its PID was reused); polls /proc, which
 * works for any process (pidfd needs the PID to still be the same process when opened). `signal`
 * stops the wait (the promise then resolves with false).
 */
export async function waitForProcessExit(id: ProcessIdentity, opts: { pollMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
  const poll = opts.pollMs ?? 200;
  while (!opts.signal?.aborted) {
    if (!isSameProcess(id)) return true;
    await Bun.sleep(poll);
  }
  return false;
}

/** Throws ProcessError "gone" or "reused" unless `id` still names the same running process. */
export function assertSameProcess(id: ProcessIdentity, doing = "while attaching"): void {
  let now: ProcessIdentity;
  try {
    now = processIdentity(id.pid);
  } catch (e) {
    if (e instanceof ProcessError && e.reason === "gone") throw gone(id.pid, doing);
    throw e;
  }
  if (now.startTime !== id.startTime) {
    throw new ProcessError(`process ${id.pid} exited and its PID was reused by another process ${doing}`, id.pid, "reused", "the target restarted: run probe again with its new PID");
  }
}

function errnoOf(e: unknown): number {
  const code = (e as { code?: string }).code;
  return code === "ENOENT" ? ENOENT : code === "ESRCH" ? ESRCH : code === "EACCES" ? EACCES : code === "EPERM" ? EPERM : (e as { errno?: number }).errno ? Math.abs((e as { errno: number }).errno) : EINVAL;
}

// ---------------------------------------------------------------------------------------------
// NSpid

/** The PID at every PID namespace level, host first, innermost last (`NSpid:` of /proc/PID/status). */
export function nsPids(pid: number): number[] {
  validPid(pid);
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch (e) {
    throw procErrno(pid, errnoOf(e), "reading /proc/PID/status");
  }
  const m = /^NSpid:\s*(.*)$/m.exec(status);
  // Kernels before 4.1 have no NSpid: one level.
  return m ? m[1]!.trim().split(/\s+/).map(Number) : [pid];
}

// ---------------------------------------------------------------------------------------------
// Opening a path in the process's view.

let openat2Works: boolean | undefined;

/** open_how {u64 flags; u64 mode; u64 resolve} */
function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const how = new BigUint64Array([BigInt(flags), 0n, BigInt(resolve)]);
  const p = cstr(path);
  return syscallErr(SYS.openat2, dirfd, ptr(p), ptr(how), 24);
}

function inodeOf(fd: number): InodeId {
  const st = fstatSync(fd);
  return { dev: st.dev, ino: st.ino };
}

export interface OpenOptions {
  /** Force one method (tests compare both); default: openat2, falling back to setns. */
  method?: "openat2" | "setns";
  /** Extra open flags (O_DIRECTORY to list a directory through /proc/self/fd/N). */
  flags?: number;
}

/**
 * Opens `path` as process `pid` resolves it: inside its root, with absolute symlinks staying in
 * that root. Throws ProcessError (gone / permission / not-found) naming the PID.
 */
export function openInProcessView(pid: number, path: string, opts: OpenOptions = {}): OpenedFile {
  validPid(pid);
  if (!path.startsWith("/")) throw new ProcessError(`${path}: a path in the view of process ${pid} must be absolute`, pid, "invalid");
  const flags = O.RDONLY | O.CLOEXEC | (opts.flags ?? 0);
  const method = opts.method ?? (openat2Works === false ? "setns" : "openat2");
  let fd: number;
  if (method === "openat2") {
    const r = openViaOpenat2(pid, path, flags);
    if (r === "unsupported") {
      if (opts.method) throw new ProcessError("this kernel has no openat2(RESOLVE_IN_ROOT) (Linux 5.6+)", pid, "invalid");
      return openInProcessView(pid, path, { ...opts, method: "setns" });
    }
    fd = r;
  } else {
    fd = openViaSetns(pid, path, flags);
  }
  const inode = inodeOf(fd);
  return { fd, path, hostPathHint: `/proc/${pid}/root${path}`, inode, realInode: realInodeOf(pid, fd, inode), method };
}

function notFound(pid: number, path: string): ProcessError {
  return new ProcessError(`${path} does not exist in the view of process ${pid}`, pid, "not-found", "paths are resolved inside the target's mount namespace and root, not on the host");
}

function openViaOpenat2(pid: number, path: string, flags: number): number | "unsupported" {
  let root: number;
  try {
    root = openPath(`/proc/${pid}/root`, O.PATH | O.DIRECTORY | O.CLOEXEC);
  } catch (e) {
    throw procErrno(pid, (e as OsError).errno ?? EINVAL, "opening the root directory (/proc/PID/root)");
  }
  try {
    const fd = openat2(root, path, flags, RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS);
    if (fd >= 0) {
      openat2Works = true;
      return fd;
    }
    const e = -fd;
    if (e === ENOSYS || e === E2BIG) {
      openat2Works = false;
      return "unsupported";
    }
    if (e === ENOENT) throw processExists(pid) ? notFound(pid, path) : gone(pid, `while opening ${path}`);
    if (e === EPERM || e === EACCES) throw permission(pid, `opening ${path} in the view`, "CAP_SYS_PTRACE (or CAP_DAC_READ_SEARCH)");
    throw new OsError("openat2(RESOLVE_IN_ROOT)", e, `${path} in the view of pid ${pid}`);
  } finally {
    closeFd(root);
  }
}

/**
 * Enters the target's mount namespace on this (the JS) thread, opens the path with a synchronous
 * open(2), and comes back through an fd of our own namespace opened before leaving, restoring our
 * root and cwd from saved fds (setns resets both to the namespace's root).
 */
/**
 * setns(CLONE_NEWNS) on this thread. It is EINVAL while the thread's fs struct is shared, and any
 * thread the runtime starts from the JS thread (GC and JIT helpers start on demand) shares it
 * again, even between our unshare(CLONE_FS) and the setns: so unshare and retry.
 */
function enterMountNs(fd: number, what: string): void {
  for (let attempt = 1; ; attempt++) {
    unshare(CLONE.FS);
    try {
      setns(fd, CLONE.NEWNS, what);
      return;
    } catch (e) {
      if ((e as OsError).errno !== EINVAL || attempt === 20) throw e;
    }
  }
}

function openViaSetns(pid: number, path: string, flags: number): number {
  let target: number;
  try {
    target = openPath(`/proc/${pid}/ns/mnt`, O.RDONLY | O.CLOEXEC);
  } catch (e) {
    throw procErrno(pid, (e as OsError).errno ?? EINVAL, "opening the mount namespace (/proc/PID/ns/mnt)");
  }
  const own = openPath("/proc/thread-self/ns/mnt", O.RDONLY | O.CLOEXEC);
  const ownRoot = openPath("/", O.PATH | O.DIRECTORY | O.CLOEXEC);
  const ownCwd = openPath(".", O.PATH | O.DIRECTORY | O.CLOEXEC);
  let fd = -1;
  let openErr: OsError | undefined;
  try {
    try {
      enterMountNs(target, `mount namespace of pid ${pid}`);
    } catch (e) {
      const errno = (e as OsError).errno;
      if (errno === EPERM) throw permission(pid, "entering the mount namespace", "CAP_SYS_ADMIN and CAP_SYS_CHROOT");
      throw e;
    }
    try {
      // Inside: only synchronous calls on this thread until we are back.
      fd = openPath(path, flags);
    } catch (e) {
      openErr = e as OsError;
    } finally {
      // Coming back must not fail silently: a thread stuck in the container's namespace would
      // resolve every later path there.
      enterMountNs(own, "back to probe's own mount namespace");
      fchdir(ownRoot);
      chroot(".");
      fchdir(ownCwd);
    }
  } finally {
    closeFd(target);
    closeFd(own);
    closeFd(ownRoot);
    closeFd(ownCwd);
  }
  if (openErr) {
    if (openErr.errno === ENOENT) throw processExists(pid) ? notFound(pid, path) : gone(pid, `while opening ${path}`);
    if (openErr.errno === EACCES || openErr.errno === EPERM) throw permission(pid, `opening ${path} in the mount namespace`, "CAP_DAC_READ_SEARCH");
    throw openErr;
  }
  return fd;
}

/** Reads a whole file opened in a process's view (small files: ld.so.cache, configs). */
export function readInProcessView(pid: number, path: string, opts: OpenOptions = {}): Uint8Array {
  const f = openInProcessView(pid, path, opts);
  try {
    return readAllFd(f.fd);
  } finally {
    closeFd(f.fd);
  }
}

function readAllFd(fd: number): Uint8Array {
  const size = fstatSync(fd).size;
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n <= 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Lists a directory in a process's view; [] when it does not exist there. */
export function listInProcessView(pid: number, dir: string): string[] {
  let f: OpenedFile;
  try {
    f = openInProcessView(pid, dir, { flags: O.DIRECTORY });
  } catch (e) {
    if (e instanceof ProcessError && e.reason === "not-found") return [];
    throw e;
  }
  try {
    return readdirSync(fdPath(f.fd));
  } catch {
    return [];
  } finally {
    closeFd(f.fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Mapped files

export interface MapsEntry {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  /** "major:minor" in hex, as maps prints it. */
  dev: string;
  inode: number;
  /** The path as the process sees it (without " (deleted)"); "" for anonymous mappings. */
  path: string;
  deleted: boolean;
}

export function readMaps(pid: number): MapsEntry[] {
  validPid(pid);
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch (e) {
    throw procErrno(pid, errnoOf(e), "reading /proc/PID/maps");
  }
  const out: MapsEntry[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    let path = m[7]!;
    const deleted = path.endsWith(" (deleted)");
    if (deleted) path = path.slice(0, -" (deleted)".length);
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3]!, offset: BigInt(`0x${m[4]}`), dev: m[5]!, inode: Number(m[6]), path, deleted });
  }
  return out;
}

export interface MappedFile {
  path: string;
  inode: number;
  dev: string;
  deleted: boolean;
  /** One mapping of it, to reach the inode through /proc/PID/map_files/START-END. */
  start: bigint;
  end: bigint;
  executable: boolean;
}

/** Files mapped by the process (one entry per path+inode), in address order. */
export function mappedFiles(pid: number): MappedFile[] {
  const byKey = new Map<string, MappedFile>();
  for (const e of readMaps(pid)) {
    if (!e.path.startsWith("/") || e.inode === 0) continue;
    const key = `${e.dev}/${e.inode}/${e.path}`;
    const f = byKey.get(key);
    if (f) {
      f.executable ||= e.perms.includes("x");
      continue;
    }
    byKey.set(key, { path: e.path, inode: e.inode, dev: e.dev, deleted: e.deleted, start: e.start, end: e.end, executable: e.perms.includes("x") });
  }
  return [...byKey.values()];
}

function isPathSpec(name: string): boolean {
  return name.includes("/");
}

/** The library `name` (or path) as mapped by the process; prefers an executable mapping. */
export function findMappedLibrary(pid: number, name: string): MappedFile | undefined {
  const files = mappedFiles(pid);
  const match = isPathSpec(name) ? files.filter((f) => f.path === name) : files.filter((f) => libraryNameMatches(name, f.path));
  return match.find((f) => f.executable) ?? match[0];
}

/**
 * Opens exactly the inode the process has mapped: by its path in the process's view when that
 * still names the same inode, else (deleted or replaced on disk) through /proc/PID/map_files.
 */
export function openMappedFile(pid: number, f: MappedFile, opts: OpenOptions = {}): OpenedFile {
  if (!f.deleted) {
    try {
      const o = openInProcessView(pid, f.path, opts);
      if (o.inode.ino === f.inode) return o;
      closeFd(o.fd);
    } catch (e) {
      if (!(e instanceof ProcessError && e.reason === "not-found")) throw e;
    }
  }
  const mf = `/proc/${pid}/map_files/${f.start.toString(16)}-${f.end.toString(16)}`;
  let fd: number;
  try {
    fd = openPath(mf, O.RDONLY | O.CLOEXEC);
  } catch (e) {
    // map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the initial user namespace.
    throw procErrno(pid, (e as OsError).errno ?? EINVAL, `opening ${f.path}${f.deleted ? " (deleted)" : ""} through /proc/PID/map_files`, "CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE)");
  }
  const inode = inodeOf(fd);
  return { fd, path: f.path, hostPathHint: mf, inode, realInode: realInodeOf(pid, fd, inode), method: "map_files" };
}

/**
 * The process's main executable, exactly the running inode (/proc/PID/exe: still there when the
 * file was replaced or deleted); `path` is what the process sees it as.
 */
export function openExecutable(pid: number): OpenedFile {
  validPid(pid);
  let fd: number;
  let path: string;
  try {
    path = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
    fd = openPath(`/proc/${pid}/exe`, O.RDONLY | O.CLOEXEC);
  } catch (e) {
    const errno = e instanceof OsError ? e.errno : errnoOf(e);
    // Kernel threads have no executable: ENOENT while the process still exists.
    if (errno === ENOENT && processExists(pid)) throw new ProcessError(`process ${pid} has no executable (a kernel thread?)`, pid, "not-found");
    throw procErrno(pid, errno, "opening the executable (/proc/PID/exe)");
  }
  const inode = inodeOf(fd);
  return { fd, path, hostPathHint: `/proc/${pid}/exe`, inode, realInode: realInodeOf(pid, fd, inode), method: "proc_exe" };
}

// ---------------------------------------------------------------------------------------------
// Libraries the process has not mapped: its own loader cache and directories.

/** The process's own files, for the loader's search (lib/ldcache.ts) inside its root. */
export function processLibraryView(pid: number): LibraryView {
  return {
    read(path) {
      try {
        return readInProcessView(pid, path);
      } catch (e) {
        if (e instanceof ProcessError && e.reason === "not-found") return undefined;
        throw e;
      }
    },
    list: (dir) => listInProcessView(pid, dir),
  };
}

/**
 * Where process `pid` would find library `name` when it has not mapped it: its own ld.so.cache
 * (read inside its root), then the standard directories there. Candidates in preference order.
 */
export function unmappedLibraryCandidates(pid: number, name: string): LibraryCandidate[] {
  return libraryCandidates(name, processLibraryView(pid));
}

export interface OpenedLibrary extends OpenedFile {
  /** maps: the mapped file; path: a path given as is; ld.so.cache / dir: found for a bare name. */
  source: "maps" | "path" | LibraryCandidate["source"];
  /** The mapping, when the process has the library mapped. */
  mapped?: MappedFile;
}

/**
 * Opens library `name` (bare name, soname or path) as process `pid` uses it: the mapped one when
 * there is one, else what its own ld.so.cache / standard directories point at. Throws ProcessError
 * "not-found" (with what was looked at) when there is none.
 */
export function openLibraryInProcess(pid: number, name: string, opts: OpenOptions = {}): OpenedLibrary {
  const mapped = findMappedLibrary(pid, name);
  if (mapped) return { ...openMappedFile(pid, mapped, opts), source: "maps", mapped };
  if (isPathSpec(name)) return { ...openInProcessView(pid, name, opts), source: "path" };
  for (const c of unmappedLibraryCandidates(pid, name)) {
    try {
      return { ...openInProcessView(pid, c.path, opts), source: c.source };
    } catch (e) {
      if (!(e instanceof ProcessError && e.reason === "not-found")) throw e;
    }
  }
  throw new ProcessError(`process ${pid} has no ${name} mapped, and none was found in its ld.so.cache or ${STANDARD_LIB_DIRS.join(", ")}`, pid, "not-found", "check the name against `cat /proc/PID/maps`; --wait waits until the process loads it");
}

/**
 * Polls /proc/PID/maps until the process maps library `name`. Rejects with ProcessError "timeout"
 * (or "gone"/"reused" when the process exits meanwhile).
 */
export async function waitForLibrary(pid: number, name: string, timeoutMs: number, pollMs = 100): Promise<MappedFile> {
  const id = processIdentity(pid);
  const end = Date.now() + timeoutMs;
  for (;;) {
    assertSameProcess(id, `while waiting for it to load ${name}`);
    let found: MappedFile | undefined;
    try {
      found = findMappedLibrary(pid, name);
    } catch (e) {
      if (!(e instanceof ProcessError && e.reason === "gone")) throw e;
    }
    if (found) return found;
    if (Date.now() >= end) {
      throw new ProcessError(`process ${pid} did not load ${name} within ${timeoutMs} ms`, pid, "timeout", "is it the right process? `cat /proc/PID/maps` shows what it has loaded");
    }
    await Bun.sleep(Math.min(pollMs, Math.max(1, end - Date.now())));
  }
}

/** realInode of a file this process opened itself, on its own mounts (host libraries). */
export function realInodeOfFd(fd: number): RealInode {
  return realInodeOf("self", fd, inodeOf(fd));
}

/** A key that is equal for two opened files exactly when they are one inode (dedupe by realInode). */
export function inodeKey(i: InodeId): string {
  return `${i.dev}:${i.ino}`;
}

// ---------------------------------------------------------------------------------------------
// overlayfs: the real inode behind a container's file.

interface MountInfo {
  id: number;
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const f = pre.split(" ");
    const g = post.split(" ");
    // Super options are comma-separated; overlay escapes commas inside paths with a backslash.
    const superOptions = (g[2] ?? "").split(/(?<!\\),/).map((o) => unescapeMount(o).replace(/\\,/g, ","));
    out.push({ id: Number(f[0]), root: unescapeMount(f[3] ?? "/"), mountPoint: unescapeMount(f[4] ?? "/"), fsType: g[0] ?? "", superOptions });
  }
  return out;
}

function fdMountId(fd: number): number | undefined {
  try {
    const m = /^mnt_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Layer directories of an overlay mount, topmost first (upperdir, then lowerdirs in order). */
export function overlayLayers(superOptions: string[]): string[] {
  const upper: string[] = [];
  const lower: string[] = [];
  for (const o of superOptions) {
    const eq = o.indexOf("=");
    const k = o.slice(0, eq), v = o.slice(eq + 1);
    if (k === "upperdir") upper.push(v);
    else if (k === "lowerdir") lower.push(...v.split(/(?<!\\):/).map((d) => d.replace(/\\:/g, ":")));
    else if (k === "lowerdir+" || k === "datadir+") lower.push(v);
  }
  return [...upper, ...lower];
}

/**
 * For a file on overlayfs, the layer file the kernel really probes: the topmost layer holding the
 * file's path (verified by inode number, which overlayfs passes through when all layers share a
 * filesystem). Layer paths are the mounter's; they are looked up on our view, then in PID 1's.
 */
function realInodeOf(pid: number | "self", fd: number, inode: InodeId): RealInode {
  const plain: RealInode = { ...inode, via: "fstat" };
  const mntId = fdMountId(fd);
  if (mntId === undefined) return plain;
  let mounts: MountInfo[];
  try {
    mounts = parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, "utf8"));
  } catch {
    return plain;
  }
  const mnt = mounts.find((m) => m.id === mntId);
  if (!mnt || mnt.fsType !== "overlay") return plain;
  let inView: string;
  try {
    inView = readlinkSync(fdPath(fd));
  } catch {
    return { ...inode, via: "overlay-unresolved" };
  }
  const mp = mnt.mountPoint === "/" ? "" : mnt.mountPoint;
  if (mp && !inView.startsWith(`${mp}/`)) return { ...inode, via: "overlay-unresolved" };
  const rel = `${mnt.root === "/" ? "" : mnt.root}${inView.slice(mp.length)}`;
  let firstExisting: RealInode | undefined;
  for (const layer of overlayLayers(mnt.superOptions)) {
    for (const candidate of [`${layer}${rel}`, `/proc/1/root${layer}${rel}`]) {
      let st;
      try {
        st = statSync(candidate);
      } catch {
        continue;
      }
      const r: RealInode = { dev: st.dev, ino: st.ino, via: "overlay", realPath: `${layer}${rel}` };
      if (st.ino === inode.ino) return r;
      firstExisting ??= r;
      break;
    }
  }
  return firstExisting ?? { ...inode, via: "overlay-unresolved" };
}
