// Go's own call-frame information: for each function, `.gopclntab` keeps a pc -> SP-delta table
// (pcsp) that Go's runtime unwinds with. Stripped Go binaries (`-ldflags='-s -w'`) have neither
// .eh_frame nor .debug_frame, and a uprobe at a function's entry sits before the frame-pointer
// push, where a frame-pointer walk skips the caller; pcsp is exact at every pc.
// Layouts read: Go 1.16-1.17 (magic 0xfffffffa), 1.18-1.19 (0xfffffff0), 1.20+ (0xfffffff1).
import { ElfFile, SHT } from "../elf.ts";
import { pclntabFunctions } from "../go-pclntab.ts";
import { ByteReader } from "./byte-reader.ts";
import { Malformed, cfiError } from "./errors.ts";

export interface GoFrame {
  /** Function entry (virtual address). */
  entry: number;
  /** Bytes between the stack pointer and the return address at this pc. */
  spDelta: number;
  /** Go marks the outermost functions of a goroutine (goexit, mstart, rt0_go): nothing calls them. */
  topFrame: boolean;
}

interface GoFunc {
  entry: number;
  /** pcsp rows: value holds for pcs below ends[i]. */
  ends: number[];
  values: number[];
  topFrame: boolean;
}

const MAX_FUNCS = 10_000_000;
const MAX_TABLE_BYTES = 1 << 20;
const MAX_CACHED = 50_000;
const TOP_FRAME_NAMES = new Set(["runtime.goexit", "runtime.mstart", "runtime.rt0_go"]);

const cache = new WeakMap<ElfFile, GoFrameTable | null>();

export class GoFrameTable {
  private readonly funcs = new Map<number, GoFunc | null>();
  private entryOffs?: Float64Array;
  private funcOffs?: Float64Array;

  private constructor(
    readonly elf: ElfFile,
    private readonly base: number,
    private readonly size: number,
    private readonly version: "1.16" | "1.18" | "1.20",
    private readonly quantum: number,
    private readonly textStart: number,
    private readonly nfunc: number,
    private readonly pctab: number,
    private readonly functab: number,
    private readonly funcnametab: number,
  ) {}

  /** The table of a Go binary, or undefined for other files and unreadable tables. */
  static of(elf: ElfFile): GoFrameTable | undefined {
    let t = cache.get(elf);
    if (t === undefined) {
      t = null;
      try {
        t = GoFrameTable.open(elf) ?? null;
      } catch {
        // A file that is not Go, or whose table we cannot read, simply has no Go frames.
      }
      cache.set(elf, t);
    }
    return t ?? undefined;
  }

  private static open(elf: ElfFile): GoFrameTable | undefined {
    const sec = elf.section(".gopclntab") ?? elf.section(".data.rel.ro.gopclntab");
    if (!sec || sec.type === SHT.NOBITS || sec.size < 72) return undefined;
    const h = new ByteReader(elf.readAt(sec.offset, 72));
    const magic = h.u32();
    const version = magic === 0xfffffffa ? "1.16" : magic === 0xfffffff0 ? "1.18" : magic === 0xfffffff1 ? "1.20" : undefined;
    if (!version) return undefined;
    h.u16();
    const quantum = h.u8();
    if (h.u8() !== 8 || quantum < 1) return undefined;
    const nfunc = h.u64();
    if (nfunc === 0 || nfunc > MAX_FUNCS) return undefined;
    h.u64(); // nfiles
    let textStart = 0;
    let funcnametab: number;
    let pctab: number;
    let functab: number;
    if (version === "1.16") {
      funcnametab = h.u64();
      h.u64(); // cu
      h.u64(); // filetab
      pctab = h.u64();
      functab = h.u64();
    } else {
      textStart = h.u64();
      funcnametab = h.u64();
      h.u64();
      h.u64();
      pctab = h.u64();
      functab = h.u64();
      // A PIE's runtime.text is filled in by a relocation: lib/go-pclntab.ts knows where to find it.
      if (textStart === 0) {
        const first = pclntabFunctions(elf)[0];
        const off0 = new ByteReader(elf.readAt(sec.offset + functab, 4)).u32();
        if (!first) return undefined;
        textStart = first.entry - off0;
      }
    }
    return new GoFrameTable(elf, sec.offset, sec.size, version, quantum, textStart, nfunc, pctab, functab, funcnametab);
  }

  /** The frame of the Go function holding `vaddr`, or undefined when none does. */
  frameAt(vaddr: number): GoFrame | undefined {
    const i = this.funcIndex(vaddr);
    if (i < 0) return undefined;
    const entry = this.entryOf(i);
    let f = this.funcs.get(entry);
    if (f === undefined) {
      try {
        f = this.readFunc(i, entry);
      } catch (e) {
        if (!(e instanceof Malformed)) throw cfiError(this.elf.path, ".gopclntab", e);
        f = null;
      }
      if (this.funcs.size >= MAX_CACHED) this.funcs.clear();
      this.funcs.set(entry, f);
    }
    if (!f) return undefined;
    for (let k = 0; k < f.ends.length; k++) {
      if (vaddr < f.ends[k]!) return { entry, spDelta: f.values[k]!, topFrame: f.topFrame };
    }
    return undefined;
  }

  private read(off: number, len: number): ByteReader {
    if (off < 0 || off >= this.size) throw new Malformed(`offset 0x${off.toString(16)} outside .gopclntab`);
    return new ByteReader(this.elf.readAt(this.base + off, Math.min(len, this.size - off)));
  }

  private loadFunctab(): void {
    if (this.entryOffs) return;
    const wide = this.version === "1.16";
    const entrySize = wide ? 16 : 8;
    const r = this.read(this.functab, (this.nfunc + 1) * entrySize);
    if (r.remaining < (this.nfunc + 1) * entrySize) throw new Malformed("function table is truncated");
    const entries = new Float64Array(this.nfunc + 1);
    const offs = new Float64Array(this.nfunc + 1);
    for (let i = 0; i <= this.nfunc; i++) {
      entries[i] = wide ? r.u64() : this.textStart + r.u32();
      offs[i] = wide ? r.u64() : r.u32();
    }
    this.entryOffs = entries;
    this.funcOffs = offs;
  }

  private funcIndex(vaddr: number): number {
    try {
      this.loadFunctab();
    } catch {
      this.entryOffs = new Float64Array();
      this.funcOffs = new Float64Array();
    }
    const e = this.entryOffs!;
    // The last entry is the end of the text, not a function.
    if (e.length < 2 || vaddr < e[0]! || vaddr >= e[e.length - 1]!) return -1;
    let lo = 0;
    let hi = e.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (e[mid]! <= vaddr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private entryOf(i: number): number {
    return this.entryOffs![i]!;
  }

  private readFunc(i: number, entry: number): GoFunc {
    const funcOff = this.functab + this.funcOffs![i]!;
    const f = this.read(funcOff, 48);
    let pcsp: number;
    let topFrame = false;
    if (this.version === "1.16") {
      f.pos = 20;
      pcsp = f.u32();
      f.pos = 8;
      const nameOff = f.s32();
      topFrame = TOP_FRAME_NAMES.has(this.name(nameOff));
    } else {
      f.pos = 16;
      pcsp = f.u32();
      // funcFlag_TOPFRAME (bit 0 of flag), after funcID: offset 37 (1.18), 41 (1.20: startLine before it).
      f.pos = this.version === "1.18" ? 37 : 41;
      topFrame = (f.u8() & 1) !== 0;
    }
    if (pcsp === 0) throw new Malformed(`function at 0x${entry.toString(16)} has no pcsp table`);
    const ends: number[] = [];
    const values: number[] = [];
    let len = 256;
    for (;;) {
      const r = this.read(this.pctab + pcsp, len);
      const ok = decodePcValue(r, entry, this.quantum, ends, values);
      if (ok) break;
      if (r.end < len || len >= MAX_TABLE_BYTES) throw new Malformed(`pcsp table of 0x${entry.toString(16)} does not end`);
      len *= 4;
      ends.length = 0;
      values.length = 0;
    }
    return { entry, ends, values, topFrame };
  }

  private name(nameOff: number): string {
    const r = this.read(this.funcnametab + nameOff, 256);
    try {
      return r.cstr();
    } catch {
      return "";
    }
  }
}

/**
 * Go's pcvalue encoding: pairs of (zigzag value delta, pc delta / quantum) as varints, value
 * starting at -1 and pc at the entry, ended by a zero value delta. False when `r` ran out first.
 */
function decodePcValue(r: ByteReader, entry: number, quantum: number, ends: number[], values: number[]): boolean {
  let pc = entry;
  let val = -1;
  let first = true;
  while (r.remaining > 0) {
    let uv: number;
    let pcd: number;
    try {
      uv = r.uleb();
      if (uv === 0 && !first) return true;
      pcd = r.uleb();
    } catch {
      return false;
    }
    if (uv > 0xffffffff || pcd > 0xffffffff) throw new Malformed("pcsp varint overflows 32 bits");
    val = (val + (((uv >>> 1) ^ -(uv & 1)) | 0)) | 0;
    pc += pcd * quantum;
    first = false;
    ends.push(pc);
    values.push(val);
    if (ends.length > MAX_TABLE_BYTES) throw new Malformed("pcsp table too long");
  }
  return false;
}
