// Address ranges: .debug_aranges (address -> unit, without touching .debug_info), and a DIE's
// DW_AT_low_pc/high_pc or DW_AT_ranges (.debug_ranges in DWARF 4, .debug_rnglists in DWARF 5).
import { AT, FORM } from "./constants.ts";
import { DwarfError } from "./errors.ts";
import type { DebugSections, SectionData } from "./sections.ts";
import type { Unit } from "./unit.ts";
import type { Die } from "./die.ts";
import { toAddr } from "./forms.ts";

export interface Range {
  start: number;
  /** First address past the range. */
  end: number;
}

/** Bounds the work on one range or location list, however it is corrupted. */
export const MAX_LIST_ENTRIES = 1 << 20;

export interface ArangeEntry extends Range {
  unit: number;
}

/** Every .debug_aranges tuple, sorted by start address. */
export function readAranges(secs: DebugSections): ArangeEntry[] {
  const out: ArangeEntry[] = [];
  const sec = secs.get(".debug_aranges");
  if (!sec) return out;
  const v = sectionView(sec);
  for (let set = new ArangeSet(sec, v); set.next(); ) {
    const a = set.addrSize;
    for (let t = set.tuples; t + 2 * a <= set.end; t += 2 * a) {
      const start = a === 8 ? u64(v, t) : v.getUint32(t, true);
      const len = a === 8 ? u64(v, t + 8) : v.getUint32(t + 4, true);
      if (start === 0 && len === 0) break;
      if (start > 0 && len > 0) out.push({ start, end: start + len, unit: set.unit });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * Units whose .debug_aranges tuples hold `vaddr`, in the order of their sets, by a pass over the
 * section's bytes that builds nothing (cheaper than readAranges for one lookup), one unit at a
 * time: the caller stops at the first unit that has the function.
 */
export function* arangeUnitsAt(secs: DebugSections, vaddr: number): Generator<number> {
  const sec = secs.get(".debug_aranges");
  if (!sec) return;
  const v = sectionView(sec);
  for (let set = new ArangeSet(sec, v); set.next(); ) {
    const start = set.addrSize === 8 ? holding64(v, set.tuples, set.end, vaddr) : holding32(v, set.tuples, set.end, vaddr);
    if (start >= 0) yield set.unit;
  }
}

function sectionView(sec: SectionData): DataView {
  const b = sec.slice(0, sec.size);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** An unsigned 64-bit value as a number; -1 past 2^53 (a tombstone of discarded code, or garbage). */
function u64(v: DataView, p: number): number {
  const hi = v.getUint32(p + 4, true);
  return hi < 0x200000 ? hi * 0x100000000 + v.getUint32(p, true) : -1;
}

// The tuple loops run thousands of times per lookup: kept small, so that the JIT compiles them fast.

/** Start of the first 64-bit tuple in [t, end) holding `vaddr`, else -1. */
function holding64(v: DataView, t: number, end: number, vaddr: number): number {
  for (; t + 16 <= end; t += 16) {
    const start = u64(v, t);
    const len = u64(v, t + 8);
    if (start === 0 && len === 0) break;
    if (start > 0 && len > 0 && vaddr >= start && vaddr - start < len) return start;
  }
  return -1;
}

/** Start of the first 32-bit tuple in [t, end) holding `vaddr`, else -1. */
function holding32(v: DataView, t: number, end: number, vaddr: number): number {
  for (; t + 8 <= end; t += 8) {
    const start = v.getUint32(t, true);
    const len = v.getUint32(t + 4, true);
    if (start === 0 && len === 0) break;
    if (start > 0 && len > 0 && vaddr >= start && vaddr - start < len) return start;
  }
  return -1;
}

/**
 * Steps through the address range sets of .debug_aranges: after next() returns true, the set's
 * unit, address size, and where its tuples start and end. Sets of a layout not understood
 * (another version, segments) are passed over: aranges only speed lookups up.
 */
class ArangeSet {
  unit = 0;
  addrSize = 8;
  tuples = 0;
  end = 0;
  private off = 0;
  private sets = 0;

  constructor(
    private readonly sec: SectionData,
    private readonly v: DataView,
  ) {}

  next(): boolean {
    const v = this.v;
    const size = v.byteLength;
    while (this.off < size) {
      const off = this.off;
      if (++this.sets > MAX_LIST_ENTRIES) this.fail("too many address range sets", off);
      if (off + 4 > size) this.fail("truncated address range set header", off);
      let length = v.getUint32(off, true);
      let offsetSize = 4;
      let p = off + 4;
      if (length === 0xffffffff) {
        if (p + 8 > size) this.fail("truncated address range set header", off);
        length = u64(v, p);
        offsetSize = 8;
        p += 8;
      }
      const end = p + length;
      if (length < 0 || end > size) this.fail("address range set runs past the section", off);
      if (p + 4 + offsetSize > end) this.fail("truncated address range set header", off);
      this.off = end;
      const version = v.getUint16(p, true);
      const unit = offsetSize === 8 ? u64(v, p + 2) : v.getUint32(p + 2, true);
      const addrSize = v.getUint8(p + 2 + offsetSize);
      const segSize = v.getUint8(p + 3 + offsetSize);
      if (version !== 2 || (addrSize !== 4 && addrSize !== 8) || segSize !== 0 || unit < 0) continue;
      // Tuples start at a multiple of twice the address size from the set's start.
      const tuple = 2 * addrSize;
      this.tuples = off + Math.ceil((p + 4 + offsetSize - off) / tuple) * tuple;
      this.end = end;
      this.unit = unit;
      this.addrSize = addrSize;
      return true;
    }
    return false;
  }

  private fail(what: string, at: number): never {
    return this.sec.fail(`${what} at offset 0x${at.toString(16)}`);
  }
}

/** The address ranges a DIE covers (unit, subprogram, lexical block), in the order DWARF lists them. */
export function dieRanges(unit: Unit, die: Die): Range[] {
  const low = unit.addr(die, AT.low_pc);
  if (die.has(AT.high_pc) && low !== undefined) {
    const high = unit.isConstant(die, AT.high_pc) ? add(low, unit.num(die, AT.high_pc)) : unit.addr(die, AT.high_pc);
    return high !== undefined && high > low && low !== 0 ? [{ start: low, end: high }] : [];
  }
  const r = unit.attr(die, AT.ranges);
  if (!r || typeof r.val !== "number") return [];
  // The base for offset-relative entries is the unit's low_pc (0 when it has none).
  const root = unit.root();
  return rangeList(unit, r.form, r.val, root === die ? (low ?? 0) : (unit.addr(root, AT.low_pc) ?? 0));
}

/** The ranges a DW_AT_ranges value (`form`, `val`) lists; `base` is the unit's low_pc. */
export function rangeList(unit: Unit, form: number, val: number, base: number): Range[] {
  if (unit.h.version >= 5) {
    const sec = unit.secs.need(".debug_rnglists", "DW_AT_ranges");
    const off = form === FORM.rnglistx ? listIndex(unit, ".debug_rnglists", unit.rnglistsBase, val) : val;
    return readRnglist(unit, sec.where, off, base);
  }
  return readRanges(unit, val, base);
}

function add(a: number, b: number | undefined): number | undefined {
  return b === undefined ? undefined : a + b;
}

/** Resolves a DW_FORM_rnglistx/loclistx index through the offsets table at `base`. */
export function listIndex(unit: Unit, section: string, base: number | undefined, index: number): number {
  const sec = unit.secs.need(section, `${section} index`);
  const b = base ?? (unit.h.offsetSize === 8 ? 20 : 12);
  const c = sec.cursor(b + index * unit.h.offsetSize, unit.h.offsetSize);
  return b + c.offsetOf(unit.h.offsetSize);
}

const RLE = { end_of_list: 0, base_addressx: 1, startx_endx: 2, startx_length: 3, offset_pair: 4, base_address: 5, start_end: 6, start_length: 7 };

function readRnglist(unit: Unit, where: string, off: number, base: number): Range[] {
  return unit.secs.need(".debug_rnglists", "DW_AT_ranges").read(off, (c) => {
    const out: Range[] = [];
    const a = unit.h.addrSize;
    let b: number | undefined = base;
    for (let n = 0; n < MAX_LIST_ENTRIES; n++) {
      const kind = c.u8();
      let s: number | undefined;
      let e: number | undefined;
      switch (kind) {
        case RLE.end_of_list:
          return out;
        case RLE.base_addressx:
          b = unit.addrx(c.uleb());
          continue;
        case RLE.base_address:
          b = toAddr(c.uSizedBig(a));
          continue;
        case RLE.startx_endx:
          s = unit.addrx(c.uleb());
          e = unit.addrx(c.uleb());
          break;
        case RLE.startx_length:
          s = unit.addrx(c.uleb());
          e = add(s ?? 0, c.uleb());
          break;
        case RLE.offset_pair: {
          const o1 = c.uleb();
          const o2 = c.uleb();
          if (b !== undefined) {
            s = b + o1;
            e = b + o2;
          }
          break;
        }
        case RLE.start_end:
          s = toAddr(c.uSizedBig(a));
          e = toAddr(c.uSizedBig(a));
          break;
        case RLE.start_length:
          s = toAddr(c.uSizedBig(a));
          e = add(s ?? 0, c.uleb());
          break;
        default:
          c.fail(`unknown range list entry kind ${kind}`);
      }
      if (s !== undefined && e !== undefined && e > s && s !== 0) out.push({ start: s, end: e });
    }
    throw new DwarfError(`${where}: range list at 0x${off.toString(16)} has too many entries`);
  });
}

function readRanges(unit: Unit, off: number, base: number): Range[] {
  return unit.secs.need(".debug_ranges", "DW_AT_ranges").read(off, (c) => {
    const a = unit.h.addrSize;
    const all = a === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    const out: Range[] = [];
    let b: number | undefined = base;
    for (let n = 0; n < MAX_LIST_ENTRIES; n++) {
      const s = c.uSizedBig(a);
      const e = c.uSizedBig(a);
      if (s === 0n && e === 0n) return out;
      if (s === all) {
        b = toAddr(e);
        continue;
      }
      if (b === undefined) continue;
      const start = toAddr(BigInt(b) + s);
      const end = toAddr(BigInt(b) + e);
      if (start !== undefined && end !== undefined && end > start && start !== 0) out.push({ start, end });
    }
    return c.fail("range list has too many entries");
  });
}
