// The inode the kernel really probes. A uprobe is registered on d_real_inode: for a file on
// overlayfs, the layer's own file, shared by every container of one image although each
// container's overlay mount shows it with its own st_dev. Attachments are deduplicated by it.
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { fsType, FS_MAGIC } from "../ffi/libc.ts";

export interface InodeId {
  dev: number;
  ino: number;
}

export interface RealInode extends InodeId {
  /** "fstat": the file is not on overlayfs; "overlay": found in a layer (realPath); "overlay-unresolved": layers not reachable, fstat kept. */
  via: "fstat" | "overlay" | "overlay-unresolved";
  /** The layer file, as a path in the view of the mounter (host paths for docker/containerd). */
  realPath?: string;
}

/** A key that is equal for two opened files exactly when they are one inode. */
export function inodeKey(i: InodeId): string {
  return `${i.dev}:${i.ino}`;
}

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
 * filesystem). Layer paths are the mounter's; they are looked up in our view, then in PID 1's.
 * Files elsewhere (statfs says so, without reading mountinfo) are their own real inode.
 */
export function realInodeOf(pid: number | "self", fd: number, inode: InodeId): RealInode {
  const plain: RealInode = { ...inode, via: "fstat" };
  try {
    if (fsType(fd) !== FS_MAGIC.OVERLAYFS) return plain;
  } catch {
    return plain;
  }
  const mntId = fdMountId(fd);
  if (mntId === undefined) return { ...inode, via: "overlay-unresolved" };
  let mounts: MountInfo[];
  try {
    mounts = parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, "utf8"));
  } catch {
    return { ...inode, via: "overlay-unresolved" };
  }
  const mnt = mounts.find((m) => m.id === mntId);
  if (!mnt || mnt.fsType !== "overlay") return { ...inode, via: "overlay-unresolved" };
  let inView: string;
  try {
    inView = readlinkSync(`/proc/self/fd/${fd}`);
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
