// The processes whose stacks are shown, each in ITS view: its mappings from /proc/PID/maps (read
// at the first stack seen, again when a pc falls outside every mapping: a library loaded since),
// completed by the executable mappings the kernel reports as they are made (lib/proc/mmap-events.ts),
// so that a process that exits before probe reads its maps keeps them; its files opened as it
// maps them (its root, or /proc/PID/map_files for a deleted one; once it is gone, the path it
// mapped if the inode is still the one mapped), and the separate debug file of each by build id
// (in its view first, then the host's: a build id names one build wherever its file is found).
// Files are opened once per inode and kept open by the session's scope.
import { fstatSync } from "node:fs";
import { closeFd } from "../lib/ffi/libc.ts";
import { ElfFile } from "../lib/elf.ts";
import { openRegular } from "../lib/files.ts";
import { processExists } from "../lib/proc/identity.ts";
import { openMappedFile, readMaps, type MappedFileRef, type MapsEntry } from "../lib/proc/maps.ts";
import { openTarget } from "../lib/proc/target.ts";
import type { Scope } from "../lib/scope.ts";
import { AddressSpace, Symbolizer, buildId, debugFilePaths, mappingsFromMapsEntries, type Mapping } from "../lib/unwind/index.ts";
import type { MmapRecord } from "../lib/proc/mmap-events.ts";

/** A process's maps are read again at most this often (a pc outside every mapping asks for it). */
const REFRESH_MS = 200;

interface View {
  mappings: Mapping[];
  /** What opens each file, by its mappings' key (dev:inode). */
  files: Map<string, MappedFileRef>;
  space?: AddressSpace;
  /** /proc/PID/maps was read (or tried) since the process started or exec'd. */
  procRead: boolean;
  readAt: number;
  /** A stack of it was looked at: kept until the end. */
  used: boolean;
}

function emptyView(): View {
  return { mappings: [], files: new Map(), procRead: false, readAt: 0, used: false };
}

/** `list` with `m` mapped over whatever it overlaps (as mmap does). */
export function mapOver(list: Mapping[], m: Mapping): Mapping[] {
  const out: Mapping[] = [];
  for (const x of list) {
    if (x.end <= m.start || x.start >= m.end) out.push(x);
    else {
      if (x.start < m.start) out.push({ ...x, end: m.start });
      if (x.end > m.end) out.push({ ...x, start: m.end, offset: x.offset + (m.end - x.start) });
    }
  }
  out.push(m);
  return out.sort((a, b) => a.start - b.start);
}

export class ProcessViews {
  private readonly views = new Map<number, View>();
  /** Files by dev:inode, shared by every process mapping them (null: could not be opened). */
  private readonly files = new Map<string, ElfFile | null>();
  /** Which process a file was opened through: its debug file is looked for in that view. */
  private readonly openedBy = new WeakMap<ElfFile, number>();
  readonly symbolizer: Symbolizer;
  /** Why files could not be opened, by path. */
  readonly failures = new Map<string, string>();

  constructor(private readonly scope: Scope) {
    this.symbolizer = new Symbolizer({ debugFile: (elf) => this.debugFile(elf) });
  }

  /** The address space of process `pid`, or undefined when nothing is known of its mappings. */
  space(pid: number): AddressSpace | undefined {
    let v = this.views.get(pid);
    if (!v) {
      v = emptyView();
      this.views.set(pid, v);
    }
    v.used = true;
    if (!v.procRead) this.readProc(pid, v);
    if (!v.mappings.length) return undefined;
    v.space ??= new AddressSpace(v.mappings, (m) => this.open(pid, m, v!), this.files);
    return v.space;
  }

  /** Reads the maps again (a library mapped since); returns whether anything new may be known. */
  refresh(pid: number): boolean {
    const v = this.views.get(pid);
    if (!v || performance.now() - v.readAt < REFRESH_MS) return false;
    return this.readProc(pid, v);
  }

  /**
   * Reads the maps of a process not seen yet and opens its executable files, while it lives:
   * stacks counted in BPF are only named at the end.
   */
  remember(pid: number): void {
    if (this.views.get(pid)?.used) return;
    const space = this.space(pid);
    for (const m of space?.mappings ?? []) if (m.perms?.includes("x") && m.path.startsWith("/")) space!.locate(m.start);
  }

  /** An executable mapping the kernel reported (lib/proc/mmap-events.ts). */
  onMmap(r: MmapRecord): void {
    let v = this.views.get(r.pid);
    if (!v) {
      v = emptyView();
      this.views.set(r.pid, v);
    }
    const key = `${r.dev}:${r.inode}`;
    v.mappings = mapOver(v.mappings, { start: r.start, end: r.end, offset: r.offset, path: r.path, key, perms: "r-xp" });
    v.files.set(key, { path: r.path, inode: r.inode, dev: r.dev, deleted: false, start: BigInt(r.start), end: BigInt(r.end) });
    v.space = undefined;
  }

  /** The process exec'd: its mappings are the new program's from now on. */
  onExec(pid: number): void {
    const v = this.views.get(pid);
    this.views.set(pid, { ...emptyView(), used: v?.used ?? false });
  }

  /** A new process: the same mappings as its parent, as far as they are known. */
  onFork(pid: number, ppid: number): void {
    const parent = this.views.get(ppid);
    if (!parent?.mappings.length) return;
    this.views.set(pid, { ...emptyView(), mappings: [...parent.mappings], files: new Map(parent.files) });
  }

  /** The process exited: forgotten unless one of its stacks was looked at. */
  onExit(pid: number): void {
    if (!this.views.get(pid)?.used) this.views.delete(pid);
  }

  private readProc(pid: number, v: View): boolean {
    v.procRead = true;
    v.readAt = performance.now();
    let maps: MapsEntry[];
    try {
      maps = readMaps(pid);
    } catch {
      return false;
    }
    // An exiting process (or a zombie) shows no mappings: what was recorded stays.
    if (!maps.some((e) => e.perms.includes("x"))) return false;
    v.mappings = mappingsFromMapsEntries(maps).filter((m) => m.end > m.start);
    for (const e of maps) if (e.inode) v.files.set(`${e.dev}:${e.inode}`, { path: e.path, inode: e.inode, dev: e.dev, deleted: e.deleted, start: e.start, end: e.end });
    v.space = undefined;
    return true;
  }

  private open(pid: number, m: Mapping, v: View): ElfFile | undefined {
    const f = m.key ? v.files.get(m.key) : undefined;
    if (!f || !f.path.startsWith("/")) return undefined;
    try {
      let fd: number | undefined;
      let why: unknown;
      if (processExists(pid)) {
        try {
          fd = openMappedFile(pid, f).fd;
        } catch (e) {
          why = e;
        }
      }
      if (fd === undefined) {
        // Gone (or going): the path it mapped, if that still names the inode it mapped.
        try {
          fd = openRegular(f.path);
        } catch (e) {
          throw why ?? e;
        }
        if (fstatSync(fd).ino !== f.inode) {
          closeFd(fd);
          throw why ?? new Error(`${f.path} is not the file process ${pid} mapped (replaced, or a path in another root)`);
        }
      }
      const opened = fd;
      this.scope.add({ close: () => closeFd(opened) });
      const elf = new ElfFile(opened, f.path);
      this.openedBy.set(elf, pid);
      return elf;
    } catch (err) {
      this.failures.set(f.path, (err as Error).message);
      return undefined;
    }
  }

  private debugFile(elf: ElfFile): ElfFile | undefined {
    const id = buildId(elf);
    if (!id) return undefined;
    const pid = this.openedBy.get(elf);
    for (const path of debugFilePaths(elf)) {
      for (const inView of pid !== undefined && processExists(pid) ? [true, false] : [false]) {
        try {
          const d = inView ? this.scope.add(openTarget(path, { pid: pid! })).elf : this.openHost(path);
          if (buildId(d) === id) return d;
        } catch {
          // not installed there
        }
      }
    }
    return undefined;
  }

  private openHost(path: string): ElfFile {
    const fd = openRegular(path);
    this.scope.add({ close: () => closeFd(fd) });
    return new ElfFile(fd, path);
  }
}
