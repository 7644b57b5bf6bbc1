// Where a path a process opened is, as this (host) process would name it: joined with the
// process's cwd (or the directory fd it passed), then mapped through the process's mount table to
// a mount this process sees (a container's overlay root is also mounted on the host under the
// engine's directory; a bind-mounted rootfs is a directory of a host filesystem). Read after the
// fact from /proc: the process may have moved or exited meanwhile, so it is a hint for people.
// Nothing is opened but /proc's own files.
import { readFileSync, readlinkSync, statSync } from "node:fs";

const AT_FDCWD = -100;

export interface MountEntry {
  /** major:minor of the filesystem. */
  dev: string;
  /** The directory of that filesystem mounted here (`/` for a whole filesystem; a bind mount's source). */
  root: string;
  /** Where it is mounted, as the reading process's root sees it. */
  target: string;
}

const MAX_MOUNTINFO = 8 << 20;
const MAX_MOUNTS = 100_000;

/** /proc/PID/mountinfo lines (`36 35 98:0 /mnt1 /mnt2 rw ... - ext3 /dev/root rw`); malformed lines skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.slice(0, MAX_MOUNTINFO).split("\n")) {
    const f = line.split(" ");
    if (f.length < 5 || !/^\d+:\d+$/.test(f[2]!)) continue;
    out.push({ dev: f[2]!, root: unescapeMount(f[3]!), target: unescapeMount(f[4]!) });
    if (out.length >= MAX_MOUNTS) break;
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** `a/./b/../c` -> `/a/c`: lexical only (symlinks are not followed: nothing is opened). */
export function normalizePath(p: string): string {
  const parts: string[] = [];
  for (const c of p.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") parts.pop();
    else parts.push(c);
  }
  return `/${parts.join("/")}`;
}

/** Whether `path` is `dir` or below it (component-wise). */
function under(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

function rest(path: string, dir: string): string {
  return dir === "/" ? path : path.slice(dir.length) || "/";
}

function join(dir: string, tail: string): string {
  if (tail === "/" || tail === "") return dir;
  return dir === "/" ? tail : `${dir}${tail}`;
}

/**
 * Maps `path` (absolute, in the mount table `theirs`) to a path in the mount table `ours`: the
 * deepest of their mounts holding it, then one of ours showing the same directory of the same
 * filesystem. Undefined when no mount of ours shows it (a container's private tmpfs or procfs).
 */
export function mapThroughMounts(path: string, theirs: readonly MountEntry[], ours: readonly MountEntry[]): string | undefined {
  let m: MountEntry | undefined;
  // The last mount on a mount point is the one that shows (mounts stack in table order).
  for (const t of theirs) if (under(path, t.target) && (!m || t.target.length >= m.target.length)) m = t;
  if (!m) return undefined;
  const inFs = normalizePath(join(m.root, rest(path, m.target)));
  let best: MountEntry | undefined;
  for (const o of ours) {
    if (o.dev !== m.dev || !under(inFs, o.root)) continue;
    // The mount showing the deepest directory; on ties, the shortest name.
    if (!best || o.root.length > best.root.length || (o.root.length === best.root.length && o.target.length < best.target.length)) best = o;
  }
  return best ? normalizePath(join(best.target, rest(inFs, best.root))) : undefined;
}

function readlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function sameInode(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** Host names for the paths processes open; mount tables cached per mount namespace for a moment. */
export class HostPaths {
  private readonly tables = new Map<string, { at: number; mounts: MountEntry[] }>();
  private ours: { at: number; mounts: MountEntry[] } | undefined;
  private readonly selfMnt = readlink("/proc/self/ns/mnt");

  constructor(private readonly maxAgeMs = 2000) {}

  /** The process's path as it passed it, made absolute in its own view (cwd or `dfd`'s directory). */
  absolute(pid: number, path: string, dfd = AT_FDCWD): string | undefined {
    if (path.startsWith("/")) return normalizePath(path);
    const base = readlink(dfd === AT_FDCWD ? `/proc/${pid}/cwd` : `/proc/${pid}/fd/${dfd}`);
    if (!base?.startsWith("/") || base.endsWith(" (deleted)")) return undefined;
    return normalizePath(`${base}/${path}`);
  }

  /**
   * The host's name for `path` opened by `pid`: the same path when the process shares this one's
   * root and mounts; through the mount tables for a container; else under /proc/PID/root.
   * Undefined once the process is gone.
   */
  resolve(pid: number, path: string, dfd = AT_FDCWD): string | undefined {
    const abs = this.absolute(pid, path, dfd);
    if (!abs) return undefined;
    const mnt = readlink(`/proc/${pid}/ns/mnt`);
    if (!mnt) return undefined;
    if (mnt === this.selfMnt && sameInode(`/proc/${pid}/root`, "/proc/self/root")) return abs;
    const theirs = this.table(mnt, pid);
    const mapped = theirs && mapThroughMounts(abs, theirs, this.ownTable());
    return mapped ?? `/proc/${pid}/root${abs === "/" ? "" : abs}`;
  }

  private table(key: string, pid: number): MountEntry[] | undefined {
    const now = Date.now();
    const hit = this.tables.get(key);
    if (hit && now - hit.at < this.maxAgeMs) return hit.mounts;
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/mountinfo`, "utf8");
    } catch {
      return undefined;
    }
    const mounts = parseMountInfo(text);
    if (this.tables.size > 256) this.tables.clear();
    this.tables.set(key, { at: now, mounts });
    return mounts;
  }

  private ownTable(): MountEntry[] {
    const now = Date.now();
    if (!this.ours || now - this.ours.at >= this.maxAgeMs) {
      let text = "";
      try {
        text = readFileSync("/proc/self/mountinfo", "utf8");
      } catch {
        // No /proc: nothing maps.
      }
      this.ours = { at: now, mounts: parseMountInfo(text) };
    }
    return this.ours.mounts;
  }
}
