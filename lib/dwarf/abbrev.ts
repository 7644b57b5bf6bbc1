// Abbreviation tables (.debug_abbrev): the shape of every DIE of a unit. Read from the table's
// offset in growing windows, so a lookup reads only the table its unit uses.
import { Cursor } from "./cursor.ts";
import { DwarfError } from "./errors.ts";
import { FORM } from "./constants.ts";
import type { SectionData } from "./sections.ts";

export interface AttrSpec {
  at: number;
  form: number;
  /** DW_FORM_implicit_const: the value lives here, not in the DIE. */
  implicit?: bigint;
}

export interface Abbrev {
  code: number;
  tag: number;
  hasChildren: boolean;
  specs: AttrSpec[];
}

export type AbbrevTable = Map<number, Abbrev>;

const MAX_ABBREVS = 100_000;
const MAX_SPECS = 512;

export function readAbbrevTable(sec: SectionData, offset: number): AbbrevTable {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= sec.size) {
    throw new DwarfError(`${sec.where}: abbreviation table offset 0x${offset.toString(16)} is outside the section`);
  }
  return sec.read(offset, parse);
}

function parse(c: Cursor): AbbrevTable {
  const table: AbbrevTable = new Map();
  for (;;) {
    const code = c.uleb();
    if (code === 0) return table;
    if (table.size >= MAX_ABBREVS) c.fail(`more than ${MAX_ABBREVS} abbreviations in one table`);
    const tag = c.uleb();
    const hasChildren = c.u8() !== 0;
    const specs: AttrSpec[] = [];
    for (;;) {
      const at = c.uleb();
      const form = c.uleb();
      if (at === 0 && form === 0) break;
      if (specs.length >= MAX_SPECS) c.fail(`abbreviation ${code} has more than ${MAX_SPECS} attributes`);
      const spec: AttrSpec = { at, form };
      if (form === FORM.implicit_const) spec.implicit = c.slebBig();
      specs.push(spec);
    }
    if (table.has(code)) c.fail(`abbreviation code ${code} defined twice`);
    table.set(code, { code, tag, hasChildren, specs });
  }
}
