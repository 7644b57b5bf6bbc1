// Unit headers of .debug_info (DWARF 2 to 5, 32- and 64-bit): where a unit ends, its version,
// address size and abbreviation table, and where its first DIE starts. Checked against the section
// before any DIE of the unit is read.
import { UT } from "./constants.ts";
import type { SectionData } from "./sections.ts";

export interface UnitHeader {
  /** Offset of the unit header in .debug_info. */
  offset: number;
  /** First byte past the unit. */
  end: number;
  version: number;
  unitType: number;
  offsetSize: 4 | 8;
  addrSize: number;
  abbrevOffset: number;
  /** Offset of the first DIE. */
  dieOffset: number;
}

const MAX_UNIT_SIZE = 1 << 30;

/** Reads the header of the unit at `offset` (DWARF 2 to 5, 32- and 64-bit). */
export function readUnitHeader(info: SectionData, offset: number): UnitHeader {
  const c = info.cursor(offset, Math.min(32, info.size - offset));
  let length = c.u32();
  let offsetSize: 4 | 8 = 4;
  if (length === 0xffffffff) {
    length = c.u64();
    offsetSize = 8;
  } else if (length >= 0xfffffff0) {
    c.fail(`reserved unit length 0x${length.toString(16)}`, offset);
  }
  const end = offset + (offsetSize === 8 ? 12 : 4) + length;
  if (end > info.size || length > MAX_UNIT_SIZE) c.fail(`unit length 0x${length.toString(16)} runs past the section`, offset);
  const version = c.u16();
  if (version < 2 || version > 5) c.fail(`unsupported DWARF version ${version}`, offset);
  let unitType: number = UT.compile;
  let addrSize: number;
  let abbrevOffset: number;
  if (version >= 5) {
    unitType = c.u8();
    addrSize = c.u8();
    abbrevOffset = c.offsetOf(offsetSize);
    if (unitType === UT.skeleton || unitType === UT.split_compile) c.skip(8);
    else if (unitType === UT.type || unitType === UT.split_type) c.skip(8 + offsetSize);
  } else {
    abbrevOffset = c.offsetOf(offsetSize);
    addrSize = c.u8();
  }
  if (addrSize !== 4 && addrSize !== 8) c.fail(`unsupported address size ${addrSize}`, offset);
  const dieOffset = c.offset;
  if (dieOffset > end) c.fail("unit header runs past the unit", offset);
  return { offset, end, version, unitType, offsetSize, addrSize, abbrevOffset, dieOffset };
}
