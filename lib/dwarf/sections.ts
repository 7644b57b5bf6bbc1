// The debug sections of one ELF file, loaded on demand. Plain sections are read through the file's
// fd in 4 KiB pages (only the pages a lookup touches). zlib-compressed ones (SHF_COMPRESSED, and
// Go's `.zdebug_*`: "ZLIB" + big-endian size) are inflated by one resumable stream that keeps only
// the pages a lookup asks for (zlib-section.ts); zstd ones are inflated whole.
import type * as Zlib from "node:zlib";
import type { ElfFile, Section } from "../elf.ts";
import { Cursor, decodeString, TruncatedError } from "./cursor.ts";
import { DwarfError } from "./errors.ts";
import { copyFromPages, untilNulInPages, type Pages } from "./pages.ts";
import { ZlibSection, zlibEngine } from "./zlib-section.ts";

/** node:zlib when a compressed section is met: importing it loads Node's streams, milliseconds of every start otherwise. */
const zlib = (): typeof Zlib => require("node:zlib");

const SHF_COMPRESSED = 0x800;
const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;
/** Page of the read cache: small, so that sparse reads (unit headers, lists) stay cheap. */
const PAGE = 4096;
/** Above this many cached pages of one section, the cache starts over (bounded memory). */
const MAX_PAGES = 16384;
/** Reads longer than this bypass the page cache. */
const DIRECT = 64 * 1024;
/** Largest decompressed section accepted: far above real DWARF (a 150 MB Go binary has ~60 MB). */
export const MAX_DECOMPRESSED = 1 << 30;
const MAX_STRING = 1 << 16;

/** What the reader cost: the measure of "reading only what is needed". */
export interface ReadStats {
  /** Bytes read from the file through its fd. */
  bytesRead: number;
  /** The same, per section. */
  bytesReadBySection: Record<string, number>;
  /** Bytes produced by decompressing sections. */
  bytesInflated: number;
  /** Sections opened, in order (compressed ones marked `(zlib)`/`(zstd)`). */
  sections: string[];
  /** Units whose DIEs were parsed whole. */
  unitsParsed: number;
  /** DIEs decoded alone (types in units not parsed whole), children not counted. */
  diesDecodedAlone: number;
}

/** Random access to a section's bytes, however they are stored. */
interface Backing {
  /** Exactly `len` bytes at `off` (the caller has checked the range against the section). */
  get(off: number, len: number): Uint8Array;
  /** The bytes from `off` to a NUL (exclusive), at most `max` long; undefined when none is found. */
  until0(off: number, max: number): Uint8Array | undefined;
}

class MemoryBacking implements Backing {
  constructor(private readonly b: Uint8Array) {}
  get(off: number, len: number): Uint8Array {
    return this.b.subarray(off, off + len);
  }
  until0(off: number, max: number): Uint8Array | undefined {
    const end = this.b.subarray(off, off + max + 1).indexOf(0);
    return end < 0 ? undefined : this.b.subarray(off, off + end);
  }
}

class FileBacking implements Backing {
  private pages = new Map<number, Uint8Array>();
  private readonly asPages: Pages = { size: PAGE, page: (i) => this.page(i) };

  constructor(
    private readonly elf: ElfFile,
    private readonly base: number,
    private readonly size: number,
    private readonly count: (n: number) => void,
    private readonly fail: (what: string) => never,
  ) {}

  get(off: number, len: number): Uint8Array {
    const first = Math.floor(off / PAGE);
    const last = Math.floor((off + Math.max(len, 1) - 1) / PAGE);
    if (first === last) return this.page(first).subarray(off - first * PAGE, off - first * PAGE + len);
    // Large ranges (a whole unit) are read directly rather than through the page cache.
    if (len > DIRECT) return this.read(off, len);
    return copyFromPages(this.asPages, off, len);
  }

  until0(off: number, max: number): Uint8Array | undefined {
    return untilNulInPages(this.asPages, off, max, this.size);
  }

  private page(i: number): Uint8Array {
    let p = this.pages.get(i);
    if (!p) {
      if (this.pages.size >= MAX_PAGES) this.pages.clear();
      p = this.read(i * PAGE, Math.min(PAGE, this.size - i * PAGE));
      this.pages.set(i, p);
    }
    return p;
  }

  private read(off: number, len: number): Uint8Array {
    let b: Uint8Array;
    try {
      b = this.elf.readAt(this.base + off, len);
    } catch (e) {
      return this.fail(`cannot read: ${(e as Error).message}`);
    }
    this.count(b.length);
    if (b.length !== len) this.fail("section data is cut short by the end of the file");
    return b;
  }
}

export class SectionData {
  constructor(
    /** Section name as asked (`.debug_info`), whatever its name in the file. */
    readonly name: string,
    readonly size: number,
    readonly where: string,
    private readonly backing: Backing,
    /** Whole in memory: parse without windows. */
    private readonly inMemory: boolean,
  ) {}

  static inMemory(name: string, where: string, bytes: Uint8Array): SectionData {
    return new SectionData(name, bytes.length, where, new MemoryBacking(bytes), true);
  }

  fail(what: string): never {
    throw new DwarfError(`${this.where}: ${what}`);
  }

  /** `len` bytes at section offset `off`; throws when the range leaves the section. */
  slice(off: number, len: number): Uint8Array {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.size) {
      this.fail(`range 0x${off.toString(16)}+0x${len.toString(16)} is outside the section (size 0x${this.size.toString(16)})`);
    }
    return this.backing.get(off, len);
  }

  /** A cursor over `[off, off + len)`, or to the section's end when `len` is omitted. */
  cursor(off: number, len?: number): Cursor {
    const n = len ?? this.size - off;
    return new Cursor(this.slice(off, n), off, this.where);
  }

  /**
   * Runs `parse` on a cursor at `off` whose extent is not known in advance (a list, a table):
   * sections not in memory are read in growing windows, so a short list costs a page, not the
   * rest of the section.
   */
  read<T>(off: number, parse: (c: Cursor) => T, limit?: number, firstWindow = 4096): T {
    if (!Number.isSafeInteger(off) || off < 0 || off > this.size) this.fail(`offset 0x${off.toString(16)} is outside the section`);
    const rest = Math.min(this.size - off, limit ?? Infinity);
    if (this.inMemory) return parse(this.cursor(off, rest));
    for (let window = firstWindow; ; window *= 2) {
      const len = Math.min(window, rest);
      try {
        return parse(this.cursor(off, len));
      } catch (e) {
        if (!(e instanceof TruncatedError) || len === rest) throw e;
      }
    }
  }

  /** The NUL-terminated string at `off` (.debug_str and friends). */
  cstrAt(off: number): string {
    if (!Number.isSafeInteger(off) || off < 0 || off >= this.size) this.fail(`string offset 0x${off.toString(16)} is outside the section`);
    const b = this.backing.until0(off, MAX_STRING);
    if (!b) this.fail(`unterminated string at 0x${off.toString(16)}`);
    return decodeString(b);
  }
}


/** Finds and opens debug sections of one file; each is opened once. */
export class DebugSections {
  private cache = new Map<string, SectionData | null>();
  readonly stats: ReadStats = { bytesRead: 0, bytesReadBySection: {}, bytesInflated: 0, sections: [], unitsParsed: 0, diesDecodedAlone: 0 };

  constructor(readonly elf: ElfFile) {}

  /** The ELF section holding `name` (`.debug_info` or Go's `.zdebug_info`), if any. */
  find(name: string): Section | undefined {
    const s = this.elf.section(name) ?? this.elf.section(".z" + name.slice(1));
    return s && s.type !== 8 /* NOBITS */ && s.size > 0 ? s : undefined;
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  get(name: string): SectionData | undefined {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit ?? undefined;
    const s = this.find(name);
    const data = s ? this.open(name, s) : undefined;
    this.cache.set(name, data ?? null);
    return data;
  }

  /** Like get, but a missing section is an error naming what needed it. */
  need(name: string, forWhat: string): SectionData {
    const s = this.get(name);
    if (!s) throw new DwarfError(`${this.elf.path}: ${forWhat} needs ${name}, which the file does not have`);
    return s;
  }

  private open(name: string, s: Section): SectionData {
    const where = `${this.elf.path}: ${s.name}`;
    const fail = (what: string): never => {
      throw new DwarfError(`${where}: ${what}`);
    };
    const count = (n: number) => {
      this.stats.bytesRead += n;
      this.stats.bytesReadBySection[s.name] = (this.stats.bytesReadBySection[s.name] ?? 0) + n;
    };
    if (s.offset < 0 || s.size < 0 || s.offset + s.size > this.elf.size) fail("section extends past the end of the file");
    if (s.flags & SHF_COMPRESSED) {
      const h = this.readAt(s.offset, 24, fail, count);
      const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
      const type = v.getUint32(0, true);
      const size = checkSize(v.getBigUint64(8, true), fail);
      if (type === ELFCOMPRESS_ZLIB) {
        checkRatio(size, s.size - 24, fail);
        this.stats.sections.push(`${s.name} (zlib)`);
        return this.zlib(name, where, s.offset + 24, s.size - 24, size, fail, count);
      }
      if (type === ELFCOMPRESS_ZSTD) {
        this.stats.sections.push(`${s.name} (zstd)`);
        return SectionData.inMemory(name, where, this.zstd(this.readAt(s.offset + 24, s.size - 24, fail, count), size, fail));
      }
      return fail(`unknown compression type ${type}`);
    }
    if (s.name.startsWith(".zdebug")) {
      const h = this.readAt(s.offset, Math.min(12, s.size), fail, count);
      if (h.length === 12 && String.fromCharCode(...h.subarray(0, 4)) === "ZLIB") {
        const size = checkSize(new DataView(h.buffer, h.byteOffset + 4, 8).getBigUint64(0, false), fail);
        checkRatio(size, s.size - 12, fail);
        this.stats.sections.push(`${s.name} (zlib)`);
        return this.zlib(name, where, s.offset + 12, s.size - 12, size, fail, count);
      }
      // The Go linker leaves a section uncompressed when compression would not shrink it.
    }
    this.stats.sections.push(s.name);
    return new SectionData(name, s.size, where, new FileBacking(this.elf, s.offset, s.size, count, fail), false);
  }

  private readAt(off: number, len: number, fail: (w: string) => never, count: (n: number) => void): Uint8Array {
    let b: Uint8Array;
    try {
      b = this.elf.readAt(off, len);
    } catch (e) {
      return fail(`cannot read: ${(e as Error).message}`);
    }
    count(b.length);
    if (b.length !== len) fail("section is cut short by the end of the file");
    return b;
  }

  /** A zlib stream at file offset `off`: read in pieces (zlib-section.ts), else inflated whole. */
  private zlib(name: string, where: string, off: number, csize: number, size: number, fail: (w: string) => never, count: (n: number) => void): SectionData {
    // Strings are read where each name points, in no order.
    const scattered = name === ".debug_str" || name === ".debug_line_str";
    const engine = zlibEngine();
    if (engine) return new SectionData(name, size, where, new ZlibSection(this.elf, off, csize, size, this.stats, count, fail, scattered, engine), false);
    let out: Uint8Array;
    try {
      out = zlib().inflateSync(this.readAt(off, csize, fail, count), { maxOutputLength: Math.max(size, 1), chunkSize: Math.max(64 * 1024, Math.min(size, 16 << 20)) });
    } catch (e) {
      return fail(`cannot decompress (zlib): ${(e as Error).message}`);
    }
    if (out.length !== size) fail(`decompressed to ${out.length} bytes, header says ${size}`);
    this.stats.bytesInflated += out.length;
    return SectionData.inMemory(name, where, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }

  private zstd(data: Uint8Array, size: number, fail: (w: string) => never): Uint8Array {
    let out: Uint8Array;
    try {
      out = zlib().zstdDecompressSync(data, { maxOutputLength: Math.max(size, 1) });
    } catch (e) {
      return fail(`cannot decompress (zstd): ${(e as Error).message}`);
    }
    if (out.length !== size) fail(`decompressed to ${out.length} bytes, header says ${size}`);
    this.stats.bytesInflated += out.length;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}

/** Deflate cannot expand more than about 1032:1: a larger claim is a corrupt (or hostile) header. */
function checkRatio(size: number, compressed: number, fail: (w: string) => never): void {
  if (size > Math.max(compressed, 1) * 1032 + 1024) fail(`declared decompressed size ${size} is impossible for ${compressed} bytes of zlib data`);
}

function checkSize(declared: bigint, fail: (w: string) => never): number {
  if (declared > BigInt(MAX_DECOMPRESSED)) fail(`declared decompressed size ${declared} is over the ${MAX_DECOMPRESSED}-byte limit`);
  return Number(declared);
}
