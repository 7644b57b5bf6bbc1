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
  const sec = secs.get(".debug_aranges");
  if (!sec) return [];
  const out: ArangeEntry[] = [];
  const c = sec.cursor(0, sec.size);
  let sets = 0;
  while (!c.atEnd) {
    if (++sets > MAX_LIST_ENTRIES) c.fail("too many address range sets");
    const off = c.offset;
    let length = c.u32();
    let offsetSize = 4;
    if (length === 0xffffffff) {
      length = c.u64();
      offsetSize = 8;
    }
    const setEnd = c.offset + length;
    if (setEnd > sec.size) c.fail("address range set runs past the section", off);
    const version = c.u16();
    const unit = c.offsetOf(offsetSize);
    const addrSize = c.u8();
    const segSize = c.u8();
    if (version === 2 && (addrSize === 4 || addrSize === 8) && segSize === 0) {
      // Tuples start at a multiple of twice the address size from the set's start.
      const tuple = 2 * addrSize;
      c.seek(off + Math.ceil((c.offset - off) / tuple) * tuple);
      while (c.offset + tuple <= setEnd) {
        const start = addrSize === 8 ? c.u64num() : c.u32();
        const len = addrSize === 8 ? c.u64num() : c.u32();
        if (start === 0 && len === 0) break;
        // Ranges past 2^53 (tombstones of discarded code) come back as bigints: skipped.
        if (typeof start === "number" && typeof len === "number" && start !== 0 && len > 0) out.push({ start, end: start + len, unit });
      }
    }
    // Unknown layouts are skipped: aranges only speed lookups up, units are scanned otherwise.
    c.seek(setEnd);
  }
  return out.sort((a, b) => a.start - b.start);
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
