// The bpf filesystem: where it is mounted (mounting it at /sys/fs/bpf if needed), what is pinned
// under it, pinning an object, and removing a pinned directory.
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, statSync, unlinkSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { libbpf } from "./ffi/libbpf.ts";
import { closeFd, cstr, errno, mount, OsError } from "./ffi/libc.ts";
import { ProbeError } from "./errors.ts";
import { fdKind } from "./kernel/abi.ts";
import { objectId } from "./kernel/bpf.ts";
import { selfMounts } from "./mounts.ts";

/** Mount points of bpf filesystems. */
export function bpffsMounts(): string[] {
  return selfMounts().filter((m) => m.fsType === "bpf").map((m) => m.target);
}

function under(path: string, mountPoint: string): boolean {
  return path === mountPoint || path.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`);
}

/** Makes sure `dir` is on a bpf filesystem, mounting one at /sys/fs/bpf if that is where it goes. */
export function ensureBpffs(dir: string, onNote?: (m: string) => void): void {
  const abs = resolvePath(dir);
  if (bpffsMounts().some((m) => under(abs, m))) return;
  if (under(abs, "/sys/fs/bpf")) {
    mount("bpf", "/sys/fs/bpf", "bpf");
    onNote?.("mounted a bpf filesystem at /sys/fs/bpf");
    return;
  }
  throw new ProbeError(`${dir} is not on a bpf filesystem`, "pin under /sys/fs/bpf (or mount -t bpf bpf DIR)");
}

/** bpffs refuses names with dots (`.rodata`, `app.bss`). */
export function bpffsName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** Pins a BPF object fd at `path` (creating its directory). */
export function pinObject(fd: number, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const r = libbpf().bpf_obj_pin(fd, cstr(path));
  if (r < 0) throw new OsError("bpf(OBJ_PIN)", -r || errno(), path);
}

/** An empty (or new) directory on a bpf filesystem for a load's pins. */
export function preparePinDir(dir: string, onNote?: (m: string) => void): void {
  ensureBpffs(dir, onNote);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ProbeError(`${dir} exists and is not a directory`, "choose a new pin directory");
    if (readdirSync(dir).length > 0) throw new PinDirInUse(`${dir} already holds a load`, "unload it first, or pin somewhere else");
  }
  mkdirSync(dir, { recursive: true });
}

export class PinDirInUse extends ProbeError {}

export function removeEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty or gone
  }
}

/** What a pinned file is: its kind and id (opened with bpf_obj_get and closed again). */
export function pinnedObject(path: string): { kind: "prog" | "map" | "link"; id: number } | undefined {
  const fd = libbpf().bpf_obj_get(cstr(path));
  if (fd < 0) return undefined;
  try {
    const kind = fdKind(readlinkSync(`/proc/self/fd/${fd}`));
    if (!kind || kind === "perf") return undefined;
    return { kind, id: objectId(fd) };
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}

/** Every pinned object under the bpf filesystems (or under `root`), by kind:id. */
export function pinnedObjects(root?: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string, depth: number) => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        continue;
      }
      if (isDir) walk(p, depth + 1);
      else {
        const o = pinnedObject(p);
        if (o) {
          const k = `${o.kind}:${o.id}`;
          out.set(k, [...(out.get(k) ?? []), p]);
        }
      }
    }
  };
  for (const m of root ? [root] : bpffsMounts()) walk(m, 0);
  return out;
}

export interface Unpinned {
  path: string;
  kind: "prog" | "map" | "link";
  id: number;
}

/**
 * Removes every pinned BPF object under `dir` and the directories, `dir` included. Refuses a
 * directory that is not on a bpf filesystem or is a mount point; leaves anything that is not a
 * BPF object (and so the directory holding it).
 */
export function unpinDir(dir: string, opts: { quiet?: boolean } = {}): Unpinned[] {
  const abs = resolvePath(dir);
  const mounts = bpffsMounts();
  if (mounts.includes(abs)) throw new ProbeError(`${dir} is a bpf filesystem's root`, "give the directory a load was pinned into");
  if (!mounts.some((m) => abs !== m && under(abs, m))) {
    if (opts.quiet) return [];
    throw new ProbeError(`${dir} is not on a bpf filesystem`, "give the directory a load was pinned into");
  }
  if (!existsSync(abs)) {
    if (opts.quiet) return [];
    throw new ProbeError(`${dir} does not exist`, "nothing is pinned there");
  }
  const found: Unpinned[] = [];
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        walk(p);
        dirs.push(p);
        continue;
      }
      const o = pinnedObject(p);
      if (o) found.push({ path: p, ...o });
    }
  };
  walk(abs);
  // Links first: the probes stop firing before their programs and maps go.
  const order = { link: 0, prog: 1, map: 2 };
  found.sort((a, b) => order[a.kind] - order[b.kind]);
  for (const f of found) unlinkSync(f.path);
  for (const d of dirs) removeEmptyDir(d);
  removeEmptyDir(abs);
  return found;
}
