// The processes whose stacks are shown, each in ITS view: its mappings from /proc/PID/maps (read
// at the first stack seen, again when a pc falls outside every mapping: a library loaded since),
// its files opened as it maps them (its root, or /proc/PID/map_files for a deleted one), and the
// separate debug file of each by build id (in its view first, then the host's: a build id names
// one build wherever its file is found). Files are opened once per inode and kept open by the
// session's scope, so that stacks of a process that exited still get names.
import { closeFd } from "../lib/ffi/libc.ts";
import { ElfFile } from "../lib/elf.ts";
import { openRegular } from "../lib/files.ts";
import { openMappedFile, readMaps, type MapsEntry } from "../lib/proc/maps.ts";
import { openTarget } from "../lib/proc/target.ts";
import type { Scope } from "../lib/scope.ts";
import { AddressSpace, Symbolizer, buildId, debugFilePaths, mappingsFromMapsEntries, type Mapping } from "../lib/unwind/index.ts";

/** A process's maps are read again at most this often (a pc outside every mapping asks for it). */
const REFRESH_MS = 200;

interface View {
  space: AddressSpace;
  entries: Map<string, MapsEntry>;
  readAt: number;
}

export class ProcessViews {
  private readonly views = new Map<number, View | null>();
  /** Files by dev:inode, shared by every process mapping them (null: could not be opened). */
  private readonly files = new Map<string, ElfFile | null>();
  /** Which process a file was opened through: its debug file is looked for in that view. */
  private readonly openedBy = new WeakMap<ElfFile, number>();
  readonly symbolizer: Symbolizer;
  /** Why files could not be opened, by path (said once at the end). */
  readonly failures = new Map<string, string>();

  constructor(private readonly scope: Scope) {
    this.symbolizer = new Symbolizer({ debugFile: (elf) => this.debugFile(elf) });
  }

  /** The address space of process `pid`, or undefined when its maps cannot be read (it exited). */
  space(pid: number): AddressSpace | undefined {
    let v = this.views.get(pid);
    if (v === undefined) {
      v = this.read(pid);
      this.views.set(pid, v);
    }
    return v?.space;
  }

  /** Reads the maps again (a library mapped since); returns whether they could be read. */
  refresh(pid: number): boolean {
    const v = this.views.get(pid);
    if (v && performance.now() - v.readAt < REFRESH_MS) return false;
    const fresh = this.read(pid);
    if (fresh) this.views.set(pid, fresh);
    return !!fresh;
  }

  /**
   * Reads the maps of a process not seen yet and opens its executable files, while it lives:
   * stacks counted in BPF are only named at the end.
   */
  remember(pid: number): void {
    if (this.views.has(pid)) return;
    const space = this.space(pid);
    for (const m of space?.mappings ?? []) if (m.perms?.includes("x") && m.path.startsWith("/")) space!.locate(m.start);
  }

  private read(pid: number): View | null {
    let maps: MapsEntry[];
    try {
      maps = readMaps(pid);
    } catch {
      return null;
    }
    const entries = new Map<string, MapsEntry>();
    for (const e of maps) if (e.inode) entries.set(`${e.dev}:${e.inode}`, e);
    const space = new AddressSpace(mappingsFromMapsEntries(maps), (m) => this.open(pid, m, entries), this.files);
    return { space, entries, readAt: performance.now() };
  }

  private open(pid: number, m: Mapping, entries: Map<string, MapsEntry>): ElfFile | undefined {
    const e = m.key ? entries.get(m.key) : undefined;
    if (!e || !e.path.startsWith("/")) return undefined;
    try {
      const o = openMappedFile(pid, { path: e.path, inode: e.inode, dev: e.dev, deleted: e.deleted, start: e.start, end: e.end, executable: e.perms.includes("x") });
      this.scope.add({ close: () => closeFd(o.fd) });
      const elf = new ElfFile(o.fd, e.path);
      this.openedBy.set(elf, pid);
      return elf;
    } catch (err) {
      this.failures.set(e.path, (err as Error).message);
      return undefined;
    }
  }

  private debugFile(elf: ElfFile): ElfFile | undefined {
    const id = buildId(elf);
    if (!id) return undefined;
    const pid = this.openedBy.get(elf);
    for (const path of debugFilePaths(elf)) {
      for (const inView of pid !== undefined ? [true, false] : [false]) {
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
