// A process's mappings as the unwinder and symbolizer need them: which mapping holds a pc, the
// ELF file behind it (opened by the caller, in the target's own view, once per file), and the pc
// converted to that file's virtual addresses through the PT_LOAD segment that maps it.
import { ElfFile, PT_LOAD, type Segment } from "../elf.ts";

export interface Mapping {
  start: number;
  /** First address past the mapping. */
  end: number;
  /** File offset mapped at `start`. */
  offset: number;
  /** The path as the process sees it; "" for anonymous memory, `[vdso]`, `[stack]`... */
  path: string;
  /** Identifies the file across mappings (e.g. "dev:inode"); default: the path. */
  key?: string;
  /** Permissions as /proc/PID/maps prints them ("r-xp"); optional. */
  perms?: string;
}

/**
 * Opens the ELF file a mapping shows, or returns undefined when it cannot (anonymous memory, a
 * file gone, no access). Called at most once per file key. The caller owns the returned file
 * (and its fd) and must keep it open while the AddressSpace is used.
 */
export type ElfOpener = (m: Mapping) => ElfFile | undefined;

/** A mapping resolved to its file, for one pc. */
export interface Located {
  mapping: Mapping;
  elf: ElfFile | undefined;
  /** The pc as a virtual address of the ELF file (what symbols and FDEs use); NaN without a file. */
  vaddr: number;
  /** The pc as a file offset. */
  fileOffset: number;
}

interface Entry {
  m: Mapping;
  /** The file, opened on first use; null when the opener gave none. */
  elf?: ElfFile | null;
  /** The PT_LOAD segment that mapped this range, found on first use. */
  seg?: Segment | null;
}

export class AddressSpace {
  private readonly entries: Entry[];
  private readonly starts: Float64Array;
  private readonly files: Map<string, ElfFile | null>;
  /** Why the opener failed, by file key (its exceptions are caught: one unreadable file must not end every stack). */
  readonly openErrors = new Map<string, string>();

  /**
   * `mappings` in any order, not overlapping (as /proc/PID/maps lists them). `files` may be passed from an earlier AddressSpace of the same process so that
   * a refreshed maps list reuses what was opened.
   */
  constructor(
    mappings: Mapping[],
    private readonly open: ElfOpener,
    files?: Map<string, ElfFile | null>,
  ) {
    this.entries = mappings.filter((m) => m.end > m.start).sort((a, b) => a.start - b.start).map((m) => ({ m }));
    this.starts = new Float64Array(this.entries.map((e) => e.m.start));
    this.files = files ?? new Map();
  }

  /** The files opened so far, by key (null: the opener had none); pass to the next AddressSpace. */
  get openedFiles(): Map<string, ElfFile | null> {
    return this.files;
  }

  get mappings(): Mapping[] {
    return this.entries.map((e) => e.m);
  }

  private entryFor(pc: number): Entry | undefined {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || pc < s[0]!) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= pc) lo = mid;
      else hi = mid - 1;
    }
    const e = this.entries[lo]!;
    return pc < e.m.end ? e : undefined;
  }

  mappingOf(pc: number): Mapping | undefined {
    return this.entryFor(pc)?.m;
  }

  /** The mapping, file and file-relative address of `pc`, or undefined outside every mapping. */
  locate(pc: number): Located | undefined {
    const e = this.entryFor(pc);
    if (!e) return undefined;
    const fileOffset = pc - e.m.start + e.m.offset;
    const elf = this.elfOf(e);
    if (!elf) return { mapping: e.m, elf: undefined, vaddr: NaN, fileOffset };
    if (e.seg === undefined) e.seg = segmentFor(elf, fileOffset) ?? null;
    let seg = e.seg;
    if (seg && (fileOffset < seg.offset || fileOffset >= seg.offset + seg.filesz)) seg = segmentFor(elf, fileOffset) ?? null;
    return { mapping: e.m, elf, vaddr: seg ? fileOffset - seg.offset + seg.vaddr : NaN, fileOffset };
  }

  private elfOf(e: Entry): ElfFile | undefined {
    if (e.elf !== undefined) return e.elf ?? undefined;
    const key = e.m.key ?? e.m.path;
    let f = this.files.get(key);
    if (f === undefined) {
      try {
        f = this.open(e.m) ?? null;
      } catch (err) {
        // The frames in it go unnamed and unwound by frame pointers; the caller can say why.
        this.openErrors.set(key, err instanceof Error ? err.message : String(err));
        f = null;
      }
      this.files.set(key, f);
    }
    e.elf = f;
    return f ?? undefined;
  }
}

/** The PT_LOAD segment whose file bytes include `fileOffset`. */
function segmentFor(elf: ElfFile, fileOffset: number): Segment | undefined {
  for (const s of elf.segments) {
    if (s.type === PT_LOAD && fileOffset >= s.offset && fileOffset < s.offset + s.filesz) return s;
  }
  return undefined;
}

/** Mappings from lib/proc/maps.ts `MapsEntry`s (bigint addresses), or entries shaped like them. */
export function mappingsFromMapsEntries(entries: { start: bigint | number; end: bigint | number; offset: bigint | number; path: string; perms?: string; dev?: string; inode?: number }[]): Mapping[] {
  return entries.map((e) => ({
    start: Number(e.start),
    end: Number(e.end),
    offset: Number(e.offset),
    path: e.path,
    perms: e.perms,
    key: e.inode ? `${e.dev}:${e.inode}` : e.path,
  }));
}
