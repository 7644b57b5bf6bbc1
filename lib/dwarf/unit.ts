// One unit of .debug_info: its DIE tree (parsed on first use, whole unit at once, into plain
// objects; or single DIEs decoded alone when another unit refers to them), and typed access to
// attribute values, which may live in other sections (.debug_str, .debug_str_offsets,
// .debug_addr, .debug_line_str) at bases the unit DIE gives.
import type { Abbrev, AbbrevTable } from "./abbrev.ts";
import { AT, FORM } from "./constants.ts";
import { Cursor, decodeString } from "./cursor.ts";
import { Die } from "./die.ts";
import { DwarfError } from "./errors.ts";
import { readForm, toAddr, type AttrVal } from "./forms.ts";
import { layoutOf, peekAttr, skipAttrs, type AbbrevLayout } from "./layout.ts";
import { rangeList, type Range } from "./ranges.ts";
import { ScopeIndex } from "./scopes.ts";
import type { DebugSections } from "./sections.ts";
import type { UnitHeader } from "./unit-header.ts";

const MAX_DEPTH = 256;
const MAX_SHAPE_CODE = 1 << 16;

/** What a walk does after visiting a DIE: go into its children, step over them, or end. */
export const WALK = { descend: 0, skip: 1, stop: 2 } as const;
export type WalkStep = (typeof WALK)[keyof typeof WALK];

/**
 * One DIE met by Unit.walk: its offset, abbreviation, DW_AT_sibling (when it has one), and the
 * offsets of the DIEs it sits in (the unit DIE first).
 */
/** What Unit.stepDie tells of one DIE. */
export interface DieStep {
  offset: number;
  abbrev: Abbrev | undefined;
  sibling: number | undefined;
}

export type WalkVisitor = (offset: number, abbrev: Abbrev, sibling: number | undefined, path: readonly number[]) => WalkStep;

export class Unit {
  /** DIEs by .debug_info offset, filled by parse(). */
  private byOffset: Map<number, Die> | undefined;
  private rootDie: Die | undefined;
  private broken: DwarfError | undefined;
  /** DIEs decoded alone, by offset, while the unit is not parsed whole. */
  private single = new Map<number, Die>();
  private readDepth = 0;
  /** How to pass over each abbreviation's attributes (walks). */
  private layouts = new Map<Abbrev, AbbrevLayout>();
  /** The same by abbreviation code, for the codes below MAX_SHAPE_CODE (nearly all). */
  private shapes: (AbbrevLayout | undefined)[] = [];
  /** The unit's DIE bytes, once a walk read them. */
  private body: Cursor | undefined;
  private scopes: ScopeIndex | undefined;
  private peekCursor: Cursor | undefined;
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
    die.parent = undefined;
    this.setRoot(die);
    this.single.set(die.offset, die);
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
    root.parent = undefined;
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
        const child = this.single.get(pos) ?? this.decodeAt(pos);
        if (!child) {
          die.subtreeEnd = pos + 1; // the null entry is one byte (ULEB 0)
          return out;
        }
        if (!this.single.has(pos)) this.single.set(pos, child);
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

  /**
   * Visits the unit's DIEs in order without building them (a DIE the visitor wants is built with
   * dieAt). A subtree the visitor skips is stepped over through DW_AT_sibling when the DIE has
   * one, else read through unseen. Reads the unit's bytes once; every step moves forward, so a
   * malformed unit ends in a DwarfError, never a loop.
   */
  walk(visit: WalkVisitor): void {
    if (this.broken) throw this.broken;
    const c: Cursor = this.bodyCursor(this.h.dieOffset);
    const step: DieStep = { offset: 0, abbrev: undefined, sibling: undefined };
    const path: number[] = [];
    let unseen = 0; // depth inside a subtree stepped over without DW_AT_sibling
    let seenRoot = false;
    while (!c.atEnd) {
      this.stepDie(c, step);
      const { offset: off, abbrev, sibling: jump } = step;
      if (!abbrev) {
        // A null entry ends a sibling list; padding after the tree is allowed.
        if (unseen) unseen--;
        else if (path.length) path.pop();
        continue;
      }
      if (unseen) {
        if (!abbrev.hasChildren) continue;
        if (jump !== undefined) c.seek(jump - c.base);
        else if (++unseen > MAX_DEPTH) c.fail(`DIEs nested deeper than ${MAX_DEPTH}`, off);
        continue;
      }
      if (!path.length && seenRoot) c.fail("DIE after the end of the unit's tree", off);
      seenRoot = true;
      const next = visit(off, abbrev, jump, path);
      if (next === WALK.stop) return;
      if (!abbrev.hasChildren) continue;
      if (next === WALK.descend) {
        if (path.length >= MAX_DEPTH) c.fail(`DIEs nested deeper than ${MAX_DEPTH}`, off);
        path.push(off);
      } else if (jump !== undefined) {
        c.seek(jump - c.base);
      } else {
        unseen = 1;
      }
    }
  }

  /**
   * Steps over the DIE at the cursor without building it: `out` gets its offset, abbreviation
   * (undefined for a null entry) and DW_AT_sibling when that points forward inside the unit.
   */
  stepDie(c: Cursor, out: DieStep): void {
    out.offset = c.offset;
    out.sibling = undefined;
    const code = c.uleb();
    if (code === 0) {
      out.abbrev = undefined;
      return;
    }
    const layout = (code < MAX_SHAPE_CODE ? this.shapes[code] : undefined) ?? this.shape(code, out.offset, c);
    out.abbrev = layout.abbrev;
    if (layout.fixed >= 0) {
      c.skip(layout.fixed);
      return;
    }
    const sib = skipAttrs(c, this.h, layout);
    if (sib !== undefined && sib > c.offset && sib <= this.h.end) out.sibling = sib;
  }

  private layout(abbrev: Abbrev): AbbrevLayout {
    let l = this.layouts.get(abbrev);
    if (!l) {
      l = layoutOf(abbrev, this.h);
      this.layouts.set(abbrev, l);
    }
    return l;
  }

  /** The layout of abbreviation `code` (met at `offset`), worked out once. */
  private shape(code: number, offset: number, c: Cursor): AbbrevLayout {
    const abbrev = this.abbrevs.get(code);
    if (!abbrev) return c.fail(`unknown abbreviation code ${code}`, offset);
    const l = this.layout(abbrev);
    if (code < MAX_SHAPE_CODE) this.shapes[code] = l;
    return l;
  }

  /** A new cursor over the unit's DIE bytes (read once, kept with the unit), at .debug_info offset `at`. */
  private bodyCursor(at: number): Cursor {
    const b = this.bodyBytes();
    const c = new Cursor(b.bytes, b.base, b.where);
    c.seek(at - c.base);
    return c;
  }

  private bodyBytes(): Cursor {
    if (!this.body) {
      const info = this.secs.need(".debug_info", "debug info");
      this.body = info.cursor(this.h.dieOffset, this.h.end - this.h.dieOffset);
    }
    return this.body;
  }

  /**
   * The code ranges of the DIE at `offset` (abbreviation `abbrev`, met in a walk), from
   * DW_AT_low_pc/high_pc or DW_AT_ranges read in place, without decoding the DIE: what dieRanges
   * gives for it ([] when it has no code).
   */
  pcRange(offset: number, abbrev: Abbrev): Range[] {
    const l = this.layout(abbrev);
    let low: number | undefined;
    if (l.lowPc >= 0) {
      const a = peekAttr(this.attrCursor(offset), this.h, abbrev, l, l.lowPc);
      low = this.addrValue(a.form, a.val);
    }
    if (l.highPc >= 0 && low !== undefined) {
      const { form, val } = peekAttr(this.attrCursor(offset), this.h, abbrev, l, l.highPc);
      const high = isConstantForm(form) ? (typeof val === "number" && val >= 0 ? low + val : undefined) : this.addrValue(form, val);
      return high !== undefined && high > low && low !== 0 ? [{ start: low, end: high }] : [];
    }
    if (l.ranges < 0) return [];
    const { form, val } = peekAttr(this.attrCursor(offset), this.h, abbrev, l, l.ranges);
    if (typeof val !== "number") return [];
    const base = offset === this.h.dieOffset ? (low ?? 0) : (this.addr(this.root(), AT.low_pc) ?? 0);
    return rangeList(this, form, val, base);
  }

  /** The unit's one cursor for reading attributes in place, at the attributes of the DIE at `offset`. */
  private attrCursor(offset: number): Cursor {
    const b = this.bodyBytes();
    const c = (this.peekCursor ??= new Cursor(b.bytes, b.base, b.where));
    c.seek(offset - c.base);
    c.uleb();
    return c;
  }

  /**
   * The DIE `die` is a child of, for a DIE decoded alone: the innermost DIE whose subtree holds
   * it, from an index of the unit's scopes (scopes.ts). The DIEs on the way up are linked to
   * their parents too.
   */
  parentOf(die: Die): Die | undefined {
    if (this.byOffset) return this.byOffset.get(die.offset)?.parent;
    this.scopes ??= new ScopeIndex(this);
    const path = this.scopes.pathTo(die.offset);
    return path.length ? this.linkPath(path) : undefined;
  }

  /** A new cursor over the unit's DIE bytes at .debug_info offset `at` (for scans). */
  cursorAt(at: number): Cursor {
    return this.bodyCursor(at);
  }

  /** Decodes the DIEs at `path` (the unit DIE first), links each to the one before; returns the last. */
  linkPath(path: readonly number[]): Die | undefined {
    let up: Die | undefined;
    for (const off of path) {
      const d = off === this.h.dieOffset ? this.root() : this.dieAt(off);
      if (!d) return undefined;
      d.parent = up;
      up = d;
    }
    return up;
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
      vals[i] = readForm(c, this.h, s.form, s.implicit, 0);
    }
    return new Die(this, offset, abbrev, vals, c.offset);
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
    return r ? this.addrValue(r.form, r.val) : undefined;
  }

  private addrValue(form: number, val: AttrVal): number | undefined {
    switch (form) {
      case FORM.addr:
        return typeof val === "number" ? val : undefined;
      case FORM.addrx:
      case FORM.addrx1:
      case FORM.addrx2:
      case FORM.addrx3:
      case FORM.addrx4:
      case FORM.GNU_addr_index:
        return typeof val === "number" ? this.addrx(val) : undefined;
      default:
        return undefined;
    }
  }

  /** True when the attribute is of constant class (DW_AT_high_pc as an offset, say). */
  isConstant(die: Die, at: number): boolean {
    const f = die.form(at);
    return f !== undefined && isConstantForm(f);
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

function isConstantForm(f: number): boolean {
  return f === FORM.data1 || f === FORM.data2 || f === FORM.data4 || f === FORM.data8 || f === FORM.udata || f === FORM.sdata || f === FORM.implicit_const;
}
