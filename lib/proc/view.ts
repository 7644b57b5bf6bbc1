// Files as another process sees them: resolved inside its root, with absolute symlinks staying in
// that root — openat2(RESOLVE_IN_ROOT) on its /proc/PID/root, or, where openat2 is missing, a path
// opened after entering its mount namespace (setns, after unshare(CLONE_FS): setns(CLONE_NEWNS)
// fails with EINVAL while this thread shares its fs struct, and Bun always has other threads).
// Nothing the container controls can stall us: paths open O_PATH and only regular files are
// reopened for reading (lib/files.ts).
import { fstatSync, readdirSync } from "node:fs";
import { closeFd, cstr, fchdir, chroot, OsError, openPath, ptr, setns, syscallErr, unshare, CLONE, O, SYS } from "../ffi/libc.ts";
import { readFdCapped, reopenRegular } from "../files.ts";
import {
  ProcessError, procErrno, processExists, gone, permission, validPid, E2BIG, EACCES, EINVAL, ELOOP, ENOENT, ENOSYS, ENOTDIR, EPERM,
} from "./identity.ts";
import { realInodeOf, type InodeId, type RealInode } from "./overlay.ts";

/** openat2(2) RESOLVE_* flags. */
export const RESOLVE = { NO_XDEV: 0x01, NO_MAGICLINKS: 0x02, NO_SYMLINKS: 0x04, BENEATH: 0x08, IN_ROOT: 0x10 } as const;

export type OpenMethod = "openat2" | "setns" | "map_files" | "proc_exe";

export interface OpenedFile {
  /** Owned by the caller: close it (closeFd) once attached and parsed. */
  fd: number;
  /** The path inside the process's view, as asked (or as maps names it). */
  path: string;
  /** A host path that names the same file, for messages only (never re-opened: it can be swapped). */
  hostPathHint: string;
  /** fstat of the opened fd (on overlayfs: the overlay mount's st_dev, differing per container). */
  inode: InodeId;
  /** The inode the kernel registers the uprobe on (see lib/proc/overlay.ts); dedupe by inodeKey(realInode). */
  realInode: RealInode;
  method: OpenMethod;
}

/** The path that makes the kernel open exactly this fd's file (uprobe attach, messages). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

export function inodeOf(fd: number): InodeId {
  const st = fstatSync(fd);
  return { dev: st.dev, ino: st.ino };
}

let openat2Works: boolean | undefined;

/** open_how {u64 flags; u64 mode; u64 resolve} */
function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const how = new BigUint64Array([BigInt(flags), 0n, BigInt(resolve)]);
  const p = cstr(path);
  return syscallErr(SYS.openat2, dirfd, ptr(p), ptr(how), 24);
}

export interface OpenOptions {
  /** Force one method (tests compare both); default: openat2, falling back to setns. */
  method?: "openat2" | "setns";
  /** Open a directory (to list it through /proc/self/fd/N) instead of a regular file. */
  directory?: boolean;
}

/**
 * Opens `path` as process `pid` resolves it: inside its root, absolute symlinks staying in that
 * root. Throws ProcessError (gone / permission / not-found) naming the PID, or NotRegularFile.
 */
export function openInProcessView(pid: number, path: string, opts: OpenOptions = {}): OpenedFile {
  validPid(pid);
  if (!path.startsWith("/")) throw new ProcessError(`${path}: a path in the view of process ${pid} must be absolute`, pid, "invalid", `write it as process ${pid} sees it, starting with /`);
  const flags = opts.directory ? O.RDONLY | O.DIRECTORY | O.CLOEXEC : O.PATH | O.CLOEXEC;
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
  if (!opts.directory) fd = reopenRegular(fd, `${path} (in the view of process ${pid})`);
  const inode = inodeOf(fd);
  return { fd, path, hostPathHint: `/proc/${pid}/root${path}`, inode, realInode: realInodeOf(pid, fd, inode), method };
}

function notFound(pid: number, path: string): ProcessError {
  return new ProcessError(`${path} does not exist in the view of process ${pid}`, pid, "not-found", "paths are resolved inside the target's mount namespace and root, not on the host");
}

function openError(pid: number, path: string, e: number, op: string): Error {
  if (e === ENOENT) return processExists(pid) ? notFound(pid, path) : gone(pid, `while opening ${path}`);
  if (e === EPERM || e === EACCES) return permission(pid, `opening ${path} in the view`, "CAP_SYS_PTRACE (or CAP_DAC_READ_SEARCH)");
  if (e === ELOOP) {
    return new ProcessError(`${path} in the view of process ${pid} is a link probe will not follow out of its root (a /proc magic link, or a symlink loop)`, pid, "invalid", "give the path of the file itself as the process sees it");
  }
  return new OsError(op, e, `${path} in the view of pid ${pid}`);
}

function openViaOpenat2(pid: number, path: string, flags: number): number | "unsupported" {
  let root: number;
  try {
    root = openPath(`/proc/${pid}/root`, O.PATH | O.DIRECTORY | O.CLOEXEC);
  } catch (e) {
    throw procErrno(pid, (e as OsError).errno ?? EINVAL, `opening /proc/${pid}/root`);
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
    throw openError(pid, path, e, "openat2(RESOLVE_IN_ROOT)");
  } finally {
    closeFd(root);
  }
}

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

/**
 * Enters the target's mount namespace on this (the JS) thread, opens the path with a synchronous
 * open(2), and comes back through an fd of our own namespace opened before leaving, restoring our
 * root and cwd from saved fds (setns resets both to the namespace's root).
 */
function openViaSetns(pid: number, path: string, flags: number): number {
  let target: number;
  try {
    target = openPath(`/proc/${pid}/ns/mnt`, O.RDONLY | O.CLOEXEC);
  } catch (e) {
    throw procErrno(pid, (e as OsError).errno ?? EINVAL, `opening /proc/${pid}/ns/mnt`);
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
      if ((e as OsError).errno === EPERM) throw permission(pid, "entering the mount namespace", "CAP_SYS_ADMIN and CAP_SYS_CHROOT");
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
  if (openErr) throw openError(pid, path, openErr.errno, "open");
  return fd;
}

/** Reads a whole small file in a process's view (ld.so.cache, configs), refusing more than `maxBytes`. */
export function readInProcessView(pid: number, path: string, maxBytes: number, opts: OpenOptions = {}): Uint8Array {
  const f = openInProcessView(pid, path, opts);
  try {
    return readFdCapped(f.fd, maxBytes, `${path} (in the view of process ${pid})`);
  } finally {
    closeFd(f.fd);
  }
}

/** Lists a directory in a process's view; [] when it does not exist there. */
export function listInProcessView(pid: number, dir: string): string[] {
  let f: OpenedFile;
  try {
    f = openInProcessView(pid, dir, { directory: true });
  } catch (e) {
    if (e instanceof ProcessError && e.reason === "not-found") return [];
    if (e instanceof OsError && e.errno === ENOTDIR) return [];
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
