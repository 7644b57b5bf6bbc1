// Where a DIE's attributes lie, worked out once per abbreviation: the steps that pass over them
// (runs of fixed-size forms merged into one skip) and, for each attribute after only fixed-size
// ones, its offset from the first. A walk over a unit passes over thousands of DIEs it does not
// want and reads one or two attributes of a few: this keeps both to a handful of operations.
import type { Abbrev } from "./abbrev.ts";
import { AT, FORM } from "./constants.ts";
import type { Cursor } from "./cursor.ts";
import { formSize, readForm, skipForm, type AttrVal } from "./forms.ts";
import type { UnitHeader } from "./unit-header.ts";

export interface AbbrevLayout {
  abbrev: Abbrev;
  /** Bytes the attributes always take when all have fixed sizes and none is DW_AT_sibling; else -1. */
  fixed: number;
  /** n >= 0: skip n bytes; SIBLING: read DW_AT_sibling; else a variable-size form, -(form + 1). */
  steps: number[];
  sibForm: number;
  /** Per attribute (in the abbreviation's order): offset from the first attribute, or -1. */
  offsets: Int32Array;
  /** Index of DW_AT_low_pc, DW_AT_high_pc, DW_AT_ranges among the attributes, or -1. */
  lowPc: number;
  highPc: number;
  ranges: number;
}

const SIBLING = -0x100000;

export function layoutOf(abbrev: Abbrev, h: UnitHeader): AbbrevLayout {
  const specs = abbrev.specs;
  const steps: number[] = [];
  const offsets = new Int32Array(specs.length);
  let sibForm = 0;
  let run = 0;
  let at = 0; // offset of the current attribute, -1 once a variable-size one was passed
  let lowPc = -1;
  let highPc = -1;
  let ranges = -1;
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!;
    if (s.at === AT.low_pc) lowPc = i;
    else if (s.at === AT.high_pc) highPc = i;
    else if (s.at === AT.ranges) ranges = i;
    offsets[i] = at;
    const n = formSize(s.form, h);
    if (n >= 0 && s.at !== AT.sibling) {
      run += n;
      if (at >= 0) at += n;
      continue;
    }
    if (run) steps.push(run);
    run = 0;
    if (s.at === AT.sibling) {
      steps.push(SIBLING);
      sibForm = s.form;
    } else {
      steps.push(-(s.form + 1));
    }
    at = n >= 0 && at >= 0 ? at + n : -1;
  }
  if (run) steps.push(run);
  const fixed = steps.length === 0 ? 0 : steps.length === 1 && steps[0]! >= 0 ? steps[0]! : -1;
  return { abbrev, fixed, steps, sibForm, offsets, lowPc, highPc, ranges };
}

const REF_FORMS = new Set<number>([FORM.ref1, FORM.ref2, FORM.ref4, FORM.ref8, FORM.ref_udata]);

/** Passes over a DIE's attributes; returns its DW_AT_sibling (a .debug_info offset) when it has one. */
export function skipAttrs(c: Cursor, h: UnitHeader, l: AbbrevLayout): number | undefined {
  let sib: number | undefined;
  for (const s of l.steps) {
    if (s >= 0) {
      c.skip(s);
    } else if (s === SIBLING) {
      const v = readForm(c, h, l.sibForm, undefined, 0);
      if (typeof v === "number" && REF_FORMS.has(l.sibForm)) sib = v;
    } else {
      skipForm(c, h, -s - 1);
    }
  }
  return sib;
}

/**
 * The value and form of the attribute at index `i` of a DIE whose attributes start at the cursor,
 * decoding only that one (the cursor is left anywhere inside the DIE).
 */
export function peekAttr(c: Cursor, h: UnitHeader, abbrev: Abbrev, l: AbbrevLayout, i: number): { form: number; val: AttrVal } {
  const specs = abbrev.specs;
  const fixed = l.offsets[i]!;
  if (fixed >= 0) {
    c.skip(fixed);
  } else {
    for (let j = 0; j < i; j++) skipForm(c, h, specs[j]!.form);
  }
  const s = specs[i]!;
  return { form: s.form, val: readForm(c, h, s.form, s.implicit, 0) };
}
