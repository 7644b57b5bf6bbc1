// Attribute values as .debug_info encodes them: each DW_FORM read from the cursor into a plain
// value (numbers where they fit, bigints past 2^53, bytes for blocks, offsets for strings kept in
// other sections). Which section an offset or index points into is the Unit's business (unit.ts).
import { FORM } from "./constants.ts";
import type { Cursor } from "./cursor.ts";
import type { UnitHeader } from "./unit-header.ts";

/** A decoded attribute value: numbers where they fit, bigints past 2^53, bytes for blocks. */
export type AttrVal = number | bigint | string | Uint8Array;

/**
 * The value of one attribute in form `form` at the cursor. `implicit`: DW_FORM_implicit_const's
 * value, which the abbreviation holds; `depth` stops DW_FORM_indirect from nesting.
 */
export function readForm(c: Cursor, h: UnitHeader, form: number, implicit: bigint | undefined, depth: number): AttrVal {
  switch (form) {
    case FORM.addr:
      return h.addrSize === 8 ? c.u64num() : c.u32();
    case FORM.block1:
      return c.bytesOf(c.u8());
    case FORM.block2:
      return c.bytesOf(c.u16());
    case FORM.block4:
      return c.bytesOf(c.u32());
    case FORM.block:
    case FORM.exprloc:
      return c.bytesOf(c.uleb());
    case FORM.data1:
    case FORM.flag:
    case FORM.strx1:
    case FORM.addrx1:
      return c.u8();
    case FORM.data2:
    case FORM.strx2:
    case FORM.addrx2:
      return c.u16();
    case FORM.strx3:
    case FORM.addrx3:
      return c.u24();
    case FORM.data4:
    case FORM.strx4:
    case FORM.addrx4:
    case FORM.ref_sup4:
      return c.u32();
    case FORM.data8:
      return c.u64num();
    case FORM.ref_sig8:
      return c.u64big();
    case FORM.data16:
      return c.bytesOf(16);
    case FORM.sdata:
      return c.slebNum();
    case FORM.udata:
      return c.ulebNum();
    case FORM.string:
      // Kept as bytes: most names are never asked for.
      return c.cstrBytes();
    case FORM.strp:
    case FORM.line_strp:
    case FORM.strp_sup:
    case FORM.GNU_strp_alt:
    case FORM.sec_offset:
    case FORM.GNU_ref_alt:
      return c.offsetOf(h.offsetSize);
    case FORM.ref_addr:
      return h.version <= 2 ? c.offsetOf(h.addrSize) : c.offsetOf(h.offsetSize);
    case FORM.ref1:
      return h.offset + c.u8();
    case FORM.ref2:
      return h.offset + c.u16();
    case FORM.ref4:
      return h.offset + c.u32();
    case FORM.ref8:
      return h.offset + c.u64();
    case FORM.ref_udata:
      return h.offset + c.uleb();
    case FORM.ref_sup8:
      return c.u64();
    case FORM.strx:
    case FORM.addrx:
    case FORM.loclistx:
    case FORM.rnglistx:
    case FORM.GNU_addr_index:
    case FORM.GNU_str_index:
      return c.uleb();
    case FORM.flag_present:
      return 1;
    case FORM.implicit_const:
      return small(implicit ?? 0n);
    case FORM.indirect: {
      if (depth > 0) return c.fail("DW_FORM_indirect pointing at DW_FORM_indirect");
      const f = c.uleb();
      // The real form is needed to interpret the value later; indirect forms are rare enough
      // (no current producer) that only their value, not their class, is kept.
      return readForm(c, h, f, undefined, depth + 1);
    }
    default:
      return c.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

function small(x: bigint): number | bigint {
  return x >= -MAX && x <= MAX ? Number(x) : x;
}

/** An address as a number, or undefined when it cannot be a user-space address. */
export function toAddr(x: bigint): number | undefined {
  return x <= MAX ? Number(x) : undefined;
}

/**
 * Bytes an attribute of form `form` takes whatever its value (0 for forms whose value lives in the
 * abbreviation), or -1 when the size is in the data (blocks, LEB128s, inline strings, indirect).
 * Lets a scan step over a DIE without decoding it.
 */
export function formSize(form: number, h: UnitHeader): number {
  switch (form) {
    case FORM.flag_present:
    case FORM.implicit_const:
      return 0;
    case FORM.data1:
    case FORM.flag:
    case FORM.strx1:
    case FORM.addrx1:
    case FORM.ref1:
      return 1;
    case FORM.data2:
    case FORM.strx2:
    case FORM.addrx2:
    case FORM.ref2:
      return 2;
    case FORM.strx3:
    case FORM.addrx3:
      return 3;
    case FORM.data4:
    case FORM.strx4:
    case FORM.addrx4:
    case FORM.ref_sup4:
    case FORM.ref4:
      return 4;
    case FORM.data8:
    case FORM.ref_sig8:
    case FORM.ref8:
    case FORM.ref_sup8:
      return 8;
    case FORM.data16:
      return 16;
    case FORM.addr:
      return h.addrSize;
    case FORM.strp:
    case FORM.line_strp:
    case FORM.strp_sup:
    case FORM.GNU_strp_alt:
    case FORM.sec_offset:
    case FORM.GNU_ref_alt:
      return h.offsetSize;
    case FORM.ref_addr:
      return h.version <= 2 ? h.addrSize : h.offsetSize;
    default:
      return -1;
  }
}

/** Steps the cursor over one attribute of form `form` without building its value. */
export function skipForm(c: Cursor, h: UnitHeader, form: number, depth = 0): void {
  const n = formSize(form, h);
  if (n >= 0) return c.skip(n);
  switch (form) {
    case FORM.block1:
      return c.skip(c.u8());
    case FORM.block2:
      return c.skip(c.u16());
    case FORM.block4:
      return c.skip(c.u32());
    case FORM.block:
    case FORM.exprloc:
      return c.skip(c.uleb());
    case FORM.sdata:
    case FORM.udata:
    case FORM.ref_udata:
    case FORM.strx:
    case FORM.addrx:
    case FORM.loclistx:
    case FORM.rnglistx:
    case FORM.GNU_addr_index:
    case FORM.GNU_str_index:
      return c.skipLeb();
    case FORM.string:
      c.cstrBytes();
      return;
    case FORM.indirect:
      if (depth > 0) return c.fail("DW_FORM_indirect pointing at DW_FORM_indirect");
      return skipForm(c, h, c.uleb(), depth + 1);
    default:
      return c.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}
