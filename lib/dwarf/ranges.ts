// Address ranges: .debug_aranges (address -> unit, without touching .debug_info), and a DIE's
// DW_AT_low_pc/high_pc or DW_AT_ranges (.debug_ranges in DWARF 4, .debug_rnglists in DWARF 5).
import { AT, FORM } from "./constants.ts";
import { DwarfError } from "./errors.ts";
import type { DebugSections } from "./sections.ts";
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
  forEachArange(secs, (start, end, unit) => {
    out.push({ start, end, unit });
    return false;
  });
  return out.sort((a, b) => a.start - b.start);
}

/**
 * The units whose .debug_aranges tuples hold `vaddr` (in the order of their tuples' starts), by
 * one pass over the section's bytes that builds nothing: cheaper than readAranges for one lookup.
 */
export function arangeUnitsAt(secs: DebugSections, vaddr: number): number[] {
  const hits: ArangeEntry[] = [];
  forEachArange(secs, (start, end, unit) => {
    if (vaddr >= start && vaddr < end) hits.push({ start, end, unit });
    return false;
  });
  return hits.sort((a, b) => a.start - b.start).map((h) => h.unit);
}

/**
 * Calls `f` with every .debug_aranges tuple (tombstones and empty ones left out) until it returns
 * true. Reads the section's bytes with a DataView: a Cursor per tuple costs more than the lookup.
 */
function forEachArange(secs: DebugSections, f: (start: number, end: number, unit: number) => boolean): void {
  const sec = secs.get(".debug_aranges");
  if (!sec) return;
  const b = sec.slice(0, sec.size);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fail: (what: string, at: number) => never = (what, at) => sec.fail(`${what} at offset 0x${at.toString(16)}`);
  const u64 = (p: number): number | undefined => {
    const hi = v.getUint32(p + 4, true);
    // Past 2^53: a tombstone of discarded code (or garbage), never a user-space address.
    return hi < 0x200000 ? hi * 0x100000000 + v.getUint32(p, true) : undefined;
  };
  let sets = 0;
  for (let off = 0; off < b.length; ) {
    if (++sets > MAX_LIST_ENTRIES) fail("too many address range sets", off);
    if (off + 4 > b.length) fail("truncated address range set header", off);
    let length = v.getUint32(off, true);
    let offsetSize = 4;
    let p = off + 4;
    if (length === 0xffffffff) {
      if (p + 8 > b.length) fail("truncated address range set header", off);
      const l = u64(p);
      if (l === undefined) fail("address range set length too large", off);
      length = l;
      offsetSize = 8;
      p += 8;
    }
    const setEnd = p + length;
    if (setEnd > b.length) fail("address range set runs past the section", off);
    if (p + 2 + offsetSize + 2 > setEnd) fail("truncated address range set header", off);
    const version = v.getUint16(p, true);
    const unit = offsetSize === 8 ? u64(p + 2) : v.getUint32(p + 2, true);
    if (unit === undefined) fail("unit offset too large", off);
    p += 2 + offsetSize;
    const addrSize = v.getUint8(p);
    const segSize = v.getUint8(p + 1);
    p += 2;
    // Unknown layouts are skipped: aranges only speed lookups up, units are scanned otherwise.
    if (version === 2 && (addrSize === 4 || addrSize === 8) && segSize === 0) {
      // Tuples start at a multiple of twice the address size from the set's start.
      const tuple = 2 * addrSize;
      for (let t = off + Math.ceil((p - off) / tuple) * tuple; t + tuple <= setEnd; t += tuple) {
        const start = addrSize === 8 ? u64(t) : v.getUint32(t, true);
        const len = addrSize === 8 ? u64(t + 8) : v.getUint32(t + 4, true);
        if (start === 0 && len === 0) break;
        if (start !== undefined && len !== undefined && start !== 0 && len > 0 && f(start, start + len, unit)) return;
      }
    }
    off = setEnd;
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
  const base = root === die ? (low ?? 0) : (unit.addr(root, AT.low_pc) ?? 0);
  if (unit.h.version >= 5) {
    const sec = unit.secs.need(".debug_rnglists", "DW_AT_ranges");
    let off = r.val;
    if (r.form === FORM.rnglistx) off = listIndex(unit, ".debug_rnglists", unit.rnglistsBase, r.val);
    return readRnglist(unit, sec.where, off, base);
  }
  return readRanges(unit, r.val, base);
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
