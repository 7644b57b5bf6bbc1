// The call-frame information of one ELF file: `.eh_frame` found through `.eh_frame_hdr`'s sorted
// table when there is one (else by walking `.eh_frame`), then `.debug_frame` for what `.eh_frame`
// does not cover. Built on first use and cached per ElfFile; rows are cached per FDE, so a hot pc
// costs two binary searches.
import type * as Zlib from "node:zlib";
import { ElfFile, PT_LOAD, SHT, type Section } from "../elf.ts";
import { ByteReader, PE } from "./byte-reader.ts";
import { rowAt, type CfaRow, type FdeRows } from "./cfa-row.ts";
import { Malformed, cfiError } from "./errors.ts";
import { FrameSection, type FrameKind } from "./frame-section.ts";

const PT_GNU_EH_FRAME = 0x6474e550;
const SHF_COMPRESSED = 0x800;
const ELFCOMPRESS_ZLIB = 1;
/** No unwind section is read beyond this: a header claiming more is corrupt. */
const MAX_SECTION_BYTES = 256 << 20;
/** FDE row tables kept per file before the cache starts over. */
const MAX_CACHED_FDES = 20_000;

interface FdeIndex {
  section: FrameSection;
  /** Start address of each FDE, sorted. */
  starts: Float64Array;
  /** From a scan: each FDE's end; from .eh_frame_hdr: undefined (the FDE itself says). */
  ends?: Float64Array;
  /** Section offset of each FDE. */
  offsets: Float64Array;
}

export interface CfiLookup {
  rows: FdeRows;
  row: CfaRow;
  source: FrameKind;
}

const cache = new WeakMap<ElfFile, FileCfi>();

export class FileCfi {
  /** What was wrong with the file's tables (each part that could not be used says why). */
  readonly problems: string[] = [];
  private eh: FdeIndex | null | undefined;
  private debug: FdeIndex | null | undefined;
  private readonly rowCache = new Map<number, FdeRows>();

  private constructor(readonly elf: ElfFile) {}

  static of(elf: ElfFile): FileCfi {
    let c = cache.get(elf);
    if (!c) {
      c = new FileCfi(elf);
      cache.set(elf, c);
    }
    return c;
  }

  /** True when the file has any call-frame section at all. */
  get present(): boolean {
    return this.ehIndex() !== null || this.debugIndex() !== null;
  }

  /**
   * The row for virtual address `vaddr` (before load bias), or undefined when no FDE covers it.
   * Throws CfiError when the FDE that covers it is malformed.
   */
  lookup(vaddr: number): CfiLookup | undefined {
    const eh = this.ehIndex();
    if (eh) {
      const rows = this.rowsIn(eh, vaddr);
      const row = rows && rowAt(rows, vaddr);
      if (row) return { rows: rows!, row, source: "eh_frame" };
    }
    const dbg = this.debugIndex();
    if (dbg) {
      const rows = this.rowsIn(dbg, vaddr);
      const row = rows && rowAt(rows, vaddr);
      if (row) return { rows: rows!, row, source: "debug_frame" };
    }
    return undefined;
  }

  private rowsIn(index: FdeIndex, vaddr: number): FdeRows | undefined {
    const { starts } = index;
    let lo = 0;
    let hi = starts.length - 1;
    if (hi < 0 || vaddr < starts[0]!) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= vaddr) lo = mid;
      else hi = mid - 1;
    }
    if (index.ends && vaddr >= index.ends[lo]!) return undefined;
    // .eh_frame offsets are below 2^32 and .debug_frame's are kept apart by the sign.
    const off = index.offsets[lo]!;
    const key = index.section.kind === "eh_frame" ? off : -1 - off;
    let rows = this.rowCache.get(key);
    if (!rows) {
      try {
        const section = index.section;
        rows = section.rows(section.fdeAt(off));
      } catch (e) {
        throw cfiError(this.elf.path, index.section.kind, e);
      }
      if (this.rowCache.size >= MAX_CACHED_FDES) this.rowCache.clear();
      this.rowCache.set(key, rows);
    }
    return rows;
  }

  private ehIndex(): FdeIndex | null {
    if (this.eh !== undefined) return this.eh;
    this.eh = null;
    try {
      this.eh = this.buildEhIndex();
    } catch (e) {
      this.problems.push(cfiError(this.elf.path, ".eh_frame", e).message);
    }
    return this.eh;
  }

  private debugIndex(): FdeIndex | null {
    if (this.debug !== undefined) return this.debug;
    this.debug = null;
    try {
      const sec = this.elf.section(".debug_frame");
      if (sec && sec.type !== SHT.NOBITS && sec.size > 0) {
        const section = new FrameSection(this.sectionData(sec), 0, "debug_frame");
        const s = section.scan();
        if (s.problem) this.problems.push(`${this.elf.path}: malformed .debug_frame: ${s.problem}`);
        this.debug = { section, starts: s.starts, ends: s.ends, offsets: s.offsets };
      }
    } catch (e) {
      this.problems.push(cfiError(this.elf.path, ".debug_frame", e).message);
    }
    return this.debug;
  }

  private buildEhIndex(): FdeIndex | null {
    const elf = this.elf;
    const hdr = this.ehFrameHdr();
    let header: { ehFramePtr?: number; table?: { starts: Float64Array; fdeAddrs: Float64Array } } = {};
    if (hdr) {
      try {
        header = parseEhFrameHdr(hdr.bytes, hdr.vaddr);
      } catch (e) {
        this.problems.push(cfiError(elf.path, ".eh_frame_hdr", e).message);
      }
    }
    let bytes: Uint8Array;
    let vaddr: number;
    const sec = elf.section(".eh_frame");
    if (sec && sec.type !== SHT.NOBITS && sec.size > 0) {
      bytes = this.sectionData(sec);
      vaddr = sec.addr;
    } else if (header.ehFramePtr !== undefined) {
      // No section headers (a stripped or in-memory image): .eh_frame runs to the end of its segment.
      const seg = elf.segments.find((s) => s.type === PT_LOAD && header.ehFramePtr! >= s.vaddr && header.ehFramePtr! < s.vaddr + s.filesz);
      if (!seg) throw new Malformed(`.eh_frame_hdr points at 0x${header.ehFramePtr.toString(16)}, in no loaded segment`);
      vaddr = header.ehFramePtr;
      bytes = elf.readAt(seg.offset + (vaddr - seg.vaddr), Math.min(seg.vaddr + seg.filesz - vaddr, MAX_SECTION_BYTES));
    } else {
      return null;
    }
    // datarel in .eh_frame is GOT-relative (what libgcc takes from DT_PLTGOT); x86-64 compilers
    // rarely use it, but the bases cost nothing to give.
    const dataBase = (elf.section(".got.plt") ?? elf.section(".got"))?.addr;
    const section = new FrameSection(bytes, vaddr, "eh_frame", { dataBase, textBase: elf.section(".text")?.addr, deref: (a) => this.readPointer(a) });
    if (header.table) {
      const offsets = new Float64Array(header.table.fdeAddrs.length);
      for (let i = 0; i < offsets.length; i++) offsets[i] = header.table.fdeAddrs[i]! - vaddr;
      return { section, starts: header.table.starts, offsets };
    }
    const s = section.scan();
    if (s.problem) this.problems.push(`${elf.path}: malformed .eh_frame: ${s.problem}`);
    return { section, starts: s.starts, ends: s.ends, offsets: s.offsets };
  }

  private ehFrameHdr(): { bytes: Uint8Array; vaddr: number } | undefined {
    const sec = this.elf.section(".eh_frame_hdr");
    if (sec && sec.type !== SHT.NOBITS && sec.size > 0) return { bytes: this.sectionData(sec), vaddr: sec.addr };
    const seg = this.elf.segments.find((s) => s.type === PT_GNU_EH_FRAME);
    if (seg && seg.filesz > 0) return { bytes: this.elf.readAt(seg.offset, Math.min(seg.filesz, MAX_SECTION_BYTES)), vaddr: seg.vaddr };
    return undefined;
  }

  private sectionData(sec: Section): Uint8Array {
    if (sec.size > MAX_SECTION_BYTES) throw new Malformed(`section ${sec.name} claims ${sec.size} bytes`);
    const raw = this.elf.sectionBytes(sec);
    if (!(sec.flags & SHF_COMPRESSED)) return raw;
    const r = new ByteReader(raw);
    const type = r.u32();
    r.u32();
    const size = r.u64();
    r.u64();
    if (type !== ELFCOMPRESS_ZLIB) throw new Malformed(`section ${sec.name} is compressed with type ${type} (only zlib is read)`);
    if (size > MAX_SECTION_BYTES) throw new Malformed(`section ${sec.name} claims ${size} bytes uncompressed`);
    try {
      // node:zlib only when needed: importing it loads Node's streams, ~10 ms of every start.
      const { inflateSync } = require("node:zlib") as typeof Zlib;
      return new Uint8Array(inflateSync(raw.subarray(24), { maxOutputLength: Math.max(size, 1) }));
    } catch (e) {
      throw new Malformed(`section ${sec.name} does not decompress (${(e as Error).message})`);
    }
  }

  /** An 8-byte pointer stored in the file at `vaddr` (DW_EH_PE_indirect), if it is in the file. */
  private readPointer(vaddr: number): number | undefined {
    const off = this.elf.vaddrToOffset(vaddr);
    if (off === undefined) return undefined;
    const b = this.elf.readAt(off, 8);
    return b.length === 8 ? new ByteReader(b).u64() : undefined;
  }
}

/** `.eh_frame_hdr`: version 1, three encodings, eh_frame_ptr, fde_count, then (initial_loc, fde) pairs. */
function parseEhFrameHdr(bytes: Uint8Array, vaddr: number): { ehFramePtr?: number; table?: { starts: Float64Array; fdeAddrs: Float64Array } } {
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version !== 1) throw new Malformed(`version ${version}`);
  const ptrEnc = r.u8();
  const countEnc = r.u8();
  const tableEnc = r.u8();
  const ctx = { vaddr, dataBase: vaddr };
  const ehFramePtr = r.pointer(ptrEnc, ctx);
  if (countEnc === PE.omit || tableEnc === PE.omit) return { ehFramePtr };
  const count = r.pointer(countEnc, ctx) ?? 0;
  const entry = 2 * ByteReader.encodingSize(tableEnc);
  // A table in LEB128 cannot be binary-searched; walking .eh_frame gives the same FDEs.
  if (entry === 0) return { ehFramePtr };
  if (count > Math.floor(r.remaining / entry)) throw new Malformed(`table of ${count} entries does not fit in ${r.remaining} bytes`);
  const starts = new Float64Array(count);
  const fdeAddrs = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    starts[i] = r.pointer(tableEnc, ctx)!;
    fdeAddrs[i] = r.pointer(tableEnc, ctx)!;
    if (i > 0 && starts[i]! < starts[i - 1]!) throw new Malformed("table is not sorted");
  }
  return { ehFramePtr, table: { starts, fdeAddrs } };
}
