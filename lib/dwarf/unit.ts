// One unit of .debug_info: its header, its DIE tree (parsed on first use, whole unit at once, into
// plain objects), and typed access to attribute values, which may live in other sections
// (.debug_str, .debug_str_offsets, .debug_addr, .debug_line_str).
import type { AbbrevTable, Abbrev } from "./abbrev.ts";
import { AT, FORM, UT } from "./constants.ts";
import { Cursor, decodeString } from "./cursor.ts";
import { DwarfError } from "./errors.ts";
import type { DebugSections, SectionData } from "./sections.ts";

/** A decoded attribute value: numbers where they fit, bigints past 2^53, bytes for blocks. */
export type AttrVal = number | bigint | string | Uint8Array;

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

export class Die {
  /** Known for DIEs of a parsed unit and for children read through `children`. */
  parent: Die | undefined;
  private kids: Die[] | undefined;

  constructor(
    readonly unit: Unit,
    readonly offset: number,
    readonly abbrev: Abbrev,
    readonly vals: AttrVal[],
    /** Offset just past the DIE's attributes: where its first child starts. */
    readonly attrsEnd: number,
  ) {}

  /** Offset past the DIE's subtree, once its children were read alone. */
  subtreeEnd: number | undefined;

  /**
   * The DIE's children. A DIE of a parsed unit has them already; one decoded alone (a type
   * another unit refers to) reads them on first access, without parsing the rest of its unit.
   */
  get children(): Die[] {
    this.kids ??= this.abbrev.hasChildren ? this.unit.readChildren(this) : [];
    return this.kids;
  }

  /** Used while parsing a whole unit. */
  adopt(child: Die): void {
    (this.kids ??= []).push(child);
    child.parent = this;
  }

  /** Used while parsing a whole unit: a DIE whose children list is complete (maybe empty). */
  sealChildren(): void {
    this.kids ??= [];
  }

  get tag(): number {
    return this.abbrev.tag;
  }

  /** Index of attribute `at` in vals, or -1. */
  index(at: number): number {
    const s = this.abbrev.specs;
    for (let i = 0; i < s.length; i++) if (s[i]!.at === at) return i;
    return -1;
  }

  has(at: number): boolean {
    return this.index(at) >= 0;
  }

  form(at: number): number | undefined {
    const i = this.index(at);
    return i < 0 ? undefined : this.abbrev.specs[i]!.form;
  }
}

const MAX_DEPTH = 256;
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

export class Unit {
  /** DIEs by .debug_info offset, filled by parse(). */
  private byOffset: Map<number, Die> | undefined;
  private rootDie: Die | undefined;
  private broken: DwarfError | undefined;
  /** DIEs decoded alone, by offset, while the unit is not parsed whole. */
  private single = new Map<number, Die>();
  private readDepth = 0;
  // Bases that DWARF 5 indexed forms are relative to (from the unit DIE; DWARF's defaults otherwise).
  private strOffsetsBase: number | undefined;
  private addrBase: number | undefined;
  rnglistsBase: number | undefined;
  loclistsBase: number | undefined;

  constructor(
    readonly h: UnitHeader,
    readonly secs: DebugSections,
    readonly abbrevs: AbbrevTable,
    readonly where: string,
  ) {}

  get offset(): number {
    return this.h.offset;
  }

  contains(offset: number): boolean {
    return offset >= this.h.dieOffset && offset < this.h.end;
  }

  /** The unit DIE alone, decoded without parsing the rest of the unit. */
  root(): Die {
    if (this.rootDie) return this.rootDie;
    const info = this.secs.need(".debug_info", "debug info");
    // Only the first DIE is wanted: read a small window, not the unit.
    const die = info.read(this.h.dieOffset, (c) => this.decode(c), this.h.end - this.h.dieOffset, 256);
    if (!die) throw new DwarfError(`${this.where}: unit has no unit DIE`);
    this.setRoot(die);
    return die;
  }

  private setRoot(die: Die): void {
    this.rootDie = die;
    this.strOffsetsBase = this.optNum(die, AT.str_offsets_base);
    this.addrBase = this.optNum(die, AT.addr_base) ?? this.optNum(die, AT.GNU_addr_base);
    this.rnglistsBase = this.optNum(die, AT.rnglists_base);
    this.loclistsBase = this.optNum(die, AT.loclists_base);
  }

  /** Parses every DIE of the unit (once) and returns the unit DIE with its children. */
  tree(): Die {
    if (this.byOffset) return this.rootDie!;
    // A unit that failed once fails the same way again: say so without parsing it again.
    if (this.broken) throw this.broken;
    try {
      return this.parseTree();
    } catch (e) {
      if (e instanceof DwarfError) this.broken = e;
      throw e;
    }
  }

  private parseTree(): Die {
    const info = this.secs.need(".debug_info", "debug info");
    const c: Cursor = info.cursor(this.h.dieOffset, this.h.end - this.h.dieOffset);
    const map = new Map<number, Die>();
    const stack: Die[] = [];
    let root: Die | undefined;
    while (!c.atEnd) {
      const die = this.decode(c);
      if (!die) {
        // A null entry ends the current sibling list; padding after the tree is allowed.
        if (stack.length) stack.pop();
        continue;
      }
      map.set(die.offset, die);
      die.sealChildren();
      if (!root) {
        root = die;
      } else {
        const parent = stack[stack.length - 1];
        if (!parent) c.fail("DIE after the end of the unit's tree", die.offset);
        parent.adopt(die);
      }
      if (die.abbrev.hasChildren) {
        if (stack.length >= MAX_DEPTH) c.fail(`DIEs nested deeper than ${MAX_DEPTH}`, die.offset);
        stack.push(die);
      }
    }
    if (!root) c.fail("unit has no unit DIE", this.h.dieOffset);
    this.setRoot(root);
    this.byOffset = map;
    this.secs.stats.unitsParsed++;
    return root;
  }

  /**
   * The DIE at `offset`: from the parsed tree when the unit was parsed, else decoded alone (a
   * type referred to from another unit: Go keeps its types in one big unit).
   */
  dieAt(offset: number): Die | undefined {
    if (this.byOffset) return this.byOffset.get(offset);
    if (this.broken) throw this.broken;
    if (offset < this.h.dieOffset || offset >= this.h.end) return undefined;
    let die = this.single.get(offset);
    if (!die) {
      die = this.decodeAt(offset);
      if (!die) return undefined;
      this.single.set(offset, die);
      this.secs.stats.diesDecodedAlone++;
    }
    return die;
  }

  private decodeAt(offset: number): Die | undefined {
    const info = this.secs.need(".debug_info", "debug info");
    return info.read(offset, (c) => this.decode(c), this.h.end - offset, 256);
  }

  /**
   * Children of a DIE decoded alone: the DIEs that follow it up to the null entry, each
   * subtree skipped through DW_AT_sibling when it has one, else by reading it.
   */
  readChildren(die: Die): Die[] {
    if (++this.readDepth > MAX_DEPTH) {
      this.readDepth--;
      throw new DwarfError(`${this.where}: DIEs nested deeper than ${MAX_DEPTH} (DIE at 0x${die.offset.toString(16)})`);
    }
    try {
      const out: Die[] = [];
      let pos = die.attrsEnd;
      for (;;) {
        if (pos >= this.h.end) throw new DwarfError(`${this.where}: children of the DIE at 0x${die.offset.toString(16)} run past the unit`);
        const child = this.decodeAt(pos);
        if (!child) {
          die.subtreeEnd = pos + 1; // the null entry is one byte (ULEB 0)
          return out;
        }
        child.parent = die;
        out.push(child);
        pos = this.nextSibling(child);
      }
    } finally {
      this.readDepth--;
    }
  }

  private nextSibling(d: Die): number {
    if (!d.abbrev.hasChildren) return d.attrsEnd;
    const sib = this.ref(d, AT.sibling);
    if (sib !== undefined && sib > d.offset && sib <= this.h.end) return sib;
    void d.children;
    return d.subtreeEnd!;
  }

  /** Decodes the DIE at the cursor; undefined for a null entry. */
  private decode(c: Cursor): Die | undefined {
    const offset = c.offset;
    const code = c.uleb();
    if (code === 0) return undefined;
    const abbrev = this.abbrevs.get(code);
    if (!abbrev) c.fail(`unknown abbreviation code ${code}`, offset);
    const specs = abbrev.specs;
    const vals: AttrVal[] = new Array(specs.length);
    for (let i = 0; i < specs.length; i++) {
      const s = specs[i]!;
      vals[i] = this.readForm(c, s.form, s.implicit, 0);
    }
    return new Die(this, offset, abbrev, vals, c.offset);
  }

  private readForm(c: Cursor, form: number, implicit: bigint | undefined, depth: number): AttrVal {
    const h = this.h;
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
        return this.readForm(c, f, undefined, depth + 1);
      }
      default:
        return c.fail(`unknown attribute form 0x${form.toString(16)}`);
    }
  }

  // ---- typed attribute access --------------------------------------------------------------

  private raw(die: Die, at: number): { form: number; val: AttrVal } | undefined {
    const i = die.index(at);
    return i < 0 ? undefined : { form: die.abbrev.specs[i]!.form, val: die.vals[i]! };
  }

  fail(what: string, die?: Die): never {
    throw new DwarfError(`${this.where}: ${what}${die ? ` (DIE at 0x${die.offset.toString(16)})` : ""}`);
  }

  /** A string attribute, wherever the string lives. */
  str(die: Die, at: number): string | undefined {
    const r = this.raw(die, at);
    if (!r) return undefined;
    const { form, val } = r;
    if (form === FORM.string) return val instanceof Uint8Array ? decodeString(val) : undefined;
    if (typeof val !== "number") return undefined;
    switch (form) {
      case FORM.strp:
        return this.secs.need(".debug_str", "DW_FORM_strp").cstrAt(val);
      case FORM.line_strp:
        return this.secs.need(".debug_line_str", "DW_FORM_line_strp").cstrAt(val);
      case FORM.strx:
      case FORM.strx1:
      case FORM.strx2:
      case FORM.strx3:
      case FORM.strx4:
      case FORM.GNU_str_index:
        return this.strx(val);
      default:
        // Strings in a supplementary (dwz) file are not followed.
        return undefined;
    }
  }

  private strx(index: number): string {
    const offs = this.secs.need(".debug_str_offsets", "DW_FORM_strx");
    // Without DW_AT_str_offsets_base, the unit's contribution starts after a DWARF 5 header.
    const base = this.strOffsetsBase ?? (this.h.version >= 5 ? (this.h.offsetSize === 8 ? 16 : 8) : 0);
    const c = offs.cursor(base + index * this.h.offsetSize, this.h.offsetSize);
    return this.secs.need(".debug_str", "DW_FORM_strx").cstrAt(c.offsetOf(this.h.offsetSize));
  }

  /** Address at index `index` of the unit's .debug_addr contribution. */
  addrx(index: number): number | undefined {
    const sec = this.secs.need(".debug_addr", "DW_FORM_addrx");
    const base = this.addrBase ?? 8;
    const c = sec.cursor(base + index * this.h.addrSize, this.h.addrSize);
    return toAddr(c.uSizedBig(this.h.addrSize));
  }

  /** An address attribute (DW_FORM_addr or addrx); undefined for tombstones (0 or ~0 past 2^53). */
  addr(die: Die, at: number): number | undefined {
    const r = this.raw(die, at);
    if (!r) return undefined;
    switch (r.form) {
      case FORM.addr:
        return typeof r.val === "number" ? r.val : undefined;
      case FORM.addrx:
      case FORM.addrx1:
      case FORM.addrx2:
      case FORM.addrx3:
      case FORM.addrx4:
      case FORM.GNU_addr_index:
        return typeof r.val === "number" ? this.addrx(r.val) : undefined;
      default:
        return undefined;
    }
  }

  /** True when the attribute is of constant class (DW_AT_high_pc as an offset, say). */
  isConstant(die: Die, at: number): boolean {
    const f = die.form(at);
    return f === FORM.data1 || f === FORM.data2 || f === FORM.data4 || f === FORM.data8 || f === FORM.udata || f === FORM.sdata || f === FORM.implicit_const;
  }

  /** An unsigned constant (or flag, or section offset) that fits in a number. */
  num(die: Die, at: number): number | undefined {
    const r = this.raw(die, at);
    return r ? this.optNumVal(r.val) : undefined;
  }

  private optNum(die: Die, at: number): number | undefined {
    return this.num(die, at);
  }

  private optNumVal(v: AttrVal): number | undefined {
    if (typeof v === "number") return v >= 0 ? v : undefined;
    if (typeof v === "bigint") return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
    return undefined;
  }

  /** A constant as a bigint; dataN forms are sign-extended when `signed` (DWARF leaves it to the type). */
  constant(die: Die, at: number, signed: boolean): bigint | undefined {
    const r = this.raw(die, at);
    if (!r) return undefined;
    const { form, val } = r;
    if (typeof val === "string" || val instanceof Uint8Array) return undefined;
    const b = BigInt(val);
    switch (form) {
      case FORM.data1:
        return signed ? BigInt.asIntN(8, b) : b;
      case FORM.data2:
        return signed ? BigInt.asIntN(16, b) : b;
      case FORM.data4:
        return signed ? BigInt.asIntN(32, b) : b;
      case FORM.data8:
        return signed ? BigInt.asIntN(64, b) : BigInt.asUintN(64, b);
      default:
        return b; // sdata and implicit_const are signed, udata unsigned: already decoded so
    }
  }

  flag(die: Die, at: number): boolean {
    const r = this.raw(die, at);
    return r !== undefined && r.val !== 0;
  }

  /** Absolute .debug_info offset of a reference attribute; undefined for references into other files. */
  ref(die: Die, at: number): number | undefined {
    const r = this.raw(die, at);
    if (!r) return undefined;
    switch (r.form) {
      case FORM.ref1:
      case FORM.ref2:
      case FORM.ref4:
      case FORM.ref8:
      case FORM.ref_udata:
      case FORM.ref_addr:
        return typeof r.val === "number" ? r.val : undefined;
      default:
        return undefined; // ref_sig8 (type units), dwz's ref_alt and ref_sup: not followed
    }
  }

  /** Bytes of a block or exprloc attribute. */
  block(die: Die, at: number): Uint8Array | undefined {
    const r = this.raw(die, at);
    return r && r.val instanceof Uint8Array ? r.val : undefined;
  }

  /** The attribute's form and raw value, for callers that branch on the form class. */
  attr(die: Die, at: number): { form: number; val: AttrVal } | undefined {
    return this.raw(die, at);
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
