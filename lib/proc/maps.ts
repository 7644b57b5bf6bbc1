// A process's mapped files (/proc/PID/maps) and opening exactly the inode it maps: by its path in
// the process's view while that still names the same inode, else through /proc/PID/map_files
// (a library replaced or deleted on disk), and its executable through /proc/PID/exe.
import { readFileSync, readlinkSync } from "node:fs";
import { openPath, O, OsError, closeFd } from "../ffi/libc.ts";
import { reopenRegular } from "../files.ts";
import { libraryNameMatches } from "../libname.ts";
import { ProcessError, procErrno, errnoOf, validPid, processExists, processIdentity, assertSameProcess, ENOENT, EINVAL } from "./identity.ts";
import { openInProcessView, inodeOf, type OpenedFile, type OpenOptions } from "./view.ts";
import { realInodeOf, type InodeId } from "./overlay.ts";

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
    throw procErrno(pid, errnoOf(e), `reading /proc/${pid}/maps`);
  }
  return parseMaps(text);
}

/** The lines of a /proc/PID/maps text (lines it does not recognise are skipped). */
export function parseMaps(text: string): MapsEntry[] {
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

/** What openMappedFile needs of a mapped file: the inode, where the process sees it, one mapping of it. */
export interface MappedFileRef {
  path: string;
  inode: number;
  dev: string;
  deleted: boolean;
  /** One mapping of it, to reach the inode through /proc/PID/map_files/START-END. */
  start: bigint;
  end: bigint;
}

export interface MappedFile extends MappedFileRef {
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

/** The library `name` (or absolute path) as mapped by the process; prefers an executable mapping. */
export function findMappedLibrary(pid: number, name: string): MappedFile | undefined {
  const files = mappedFiles(pid);
  let match = name.includes("/") ? files.filter((f) => f.path === name) : files.filter((f) => libraryNameMatches(name, f.path));
  if (!match.length && name.startsWith("/")) match = sameFileMapped(pid, name, files);
  return match.find((f) => f.executable) ?? match[0];
}

/**
 * The mapped files that are the file `path` names in the process's view under another name
 * (`/lib/x86_64-linux-gnu/libc.so.6` where maps says `/usr/lib/...`: a symlinked directory).
 */
function sameFileMapped(pid: number, path: string, files: MappedFile[]): MappedFile[] {
  let id: InodeId;
  try {
    const o = openInProcessView(pid, path);
    id = o.inode;
    closeFd(o.fd);
  } catch {
    return [];
  }
  return files.filter((f) => f.inode === id.ino && mapsDev(f.dev) === id.dev);
}

/** A maps line's device ("fd:01", hex major:minor) as stat numbers it (glibc's makedev). */
function mapsDev(dev: string): number {
  const [maj, min] = dev.split(":").map((x) => parseInt(x, 16));
  if (maj === undefined || min === undefined || Number.isNaN(maj) || Number.isNaN(min)) return -1;
  return Number(((BigInt(maj) & 0xfffff000n) << 32n) | ((BigInt(maj) & 0xfffn) << 8n) | ((BigInt(min) & 0xffffff00n) << 12n) | (BigInt(min) & 0xffn));
}

/** Opens exactly the inode the process has mapped. */
export function openMappedFile(pid: number, f: MappedFileRef, opts: OpenOptions = {}): OpenedFile {
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
    fd = reopenRegular(openPath(mf, O.PATH | O.CLOEXEC), `${f.path} (mapped by process ${pid})`);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    // map_files needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the initial user namespace.
    throw procErrno(pid, e.errno ?? EINVAL, `opening ${f.path}${f.deleted ? " (deleted)" : ""} through /proc/${pid}/map_files`, "CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE)");
  }
  const inode = inodeOf(fd);
  return { fd, path: f.path, hostPathHint: mf, inode, realInode: realInodeOf(pid, fd, inode), method: "map_files" };
}

/** The path of the process's executable as it sees it ("" when unknown). */
export function executablePath(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch {
    return "";
  }
}

/** The process's main executable, exactly the running inode (/proc/PID/exe survives replacement and deletion). */
export function openExecutable(pid: number): OpenedFile {
  validPid(pid);
  let fd: number;
  const path = executablePath(pid);
  try {
    fd = reopenRegular(openPath(`/proc/${pid}/exe`, O.PATH | O.CLOEXEC), `the executable of process ${pid}`);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    // Kernel threads have no executable: ENOENT while the process still exists.
    if (e.errno === ENOENT && processExists(pid)) throw new ProcessError(`process ${pid} has no executable (a kernel thread?)`, pid, "kernel-thread");
    throw procErrno(pid, e.errno, `opening /proc/${pid}/exe`);
  }
  const inode = inodeOf(fd);
  return { fd, path, hostPathHint: `/proc/${pid}/exe`, inode, realInode: realInodeOf(pid, fd, inode), method: "proc_exe" };
}

/**
 * Polls /proc/PID/maps until the process maps library `name`. Rejects with ProcessError "timeout"
 * (or "gone"/"reused" when the process exits meanwhile). Polls every `pollMs` (default 10 ms:
 * a process may start calling the library right after mapping it).
 */
export async function waitForLibrary(pid: number, name: string, timeoutMs: number, pollMs = 10): Promise<MappedFile> {
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
      throw new ProcessError(`process ${pid} did not load ${name} within ${timeoutMs} ms`, pid, "timeout", `is it the right process? /proc/${pid}/maps shows what it has loaded`);
    }
    await Bun.sleep(Math.min(pollMs, Math.max(1, end - Date.now())));
  }
}
