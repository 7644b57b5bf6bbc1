// The file-name table of a unit's line program header (.debug_line, versions 2 to 5): what
// DW_AT_decl_file numbers mean. The line program itself is not read.
import { FORM } from "./constants.ts";
import type { Cursor } from "./cursor.ts";
import type { DebugSections } from "./sections.ts";

const LNCT_path = 1;
const LNCT_directory_index = 2;
const MAX_ENTRIES = 1 << 20;

export interface FileTable {
  /** Index as used by DW_AT_decl_file (DWARF 5 counts from 0, earlier versions from 1). */
  files: Map<number, string>;
}

export function readFileTable(secs: DebugSections, offset: number, compDir: string | undefined): FileTable {
  const sec = secs.need(".debug_line", "file names");
  return sec.read(offset, (c) => {
    let length = c.u32();
    let offsetSize = 4;
    if (length === 0xffffffff) {
      length = c.u64();
      offsetSize = 8;
    }
    const version = c.u16();
    if (version < 2 || version > 5) c.fail(`unsupported line table version ${version}`, offset);
    if (version >= 5) c.skip(2); // address_size, segment_selector_size
    c.offsetOf(offsetSize); // header_length
    c.skip(version >= 4 ? 5 : 4); // min_inst_length, [max_ops], default_is_stmt, line_base, line_range
    const opcodeBase = c.u8();
    c.skip(Math.max(0, opcodeBase - 1));
    const files = new Map<number, string>();
    const join = (dir: string | undefined, name: string): string => {
      if (name.startsWith("/") || !dir) return name;
      return `${dir.replace(/\/+$/, "")}/${name}`;
    };
    if (version < 5) {
      const dirs: string[] = [compDir ?? ""];
      for (let i = 0; i < MAX_ENTRIES; i++) {
        const d = c.cstr();
        if (!d) break;
        dirs.push(d.startsWith("/") || !compDir ? d : join(compDir, d));
      }
      for (let i = 1; i < MAX_ENTRIES; i++) {
        const name = c.cstr();
        if (!name) break;
        const dir = c.uleb();
        c.uleb();
        c.uleb();
        files.set(i, join(dirs[dir], name));
      }
      return { files };
    }
    const readEntries = (): { path?: string; dir?: number }[] => {
      const formatCount = c.u8();
      const formats: [number, number][] = [];
      for (let i = 0; i < formatCount; i++) formats.push([c.uleb(), c.uleb()]);
      const count = c.uleb();
      if (count > MAX_ENTRIES) c.fail("too many line table entries");
      const out: { path?: string; dir?: number }[] = [];
      for (let i = 0; i < count; i++) {
        const e: { path?: string; dir?: number } = {};
        for (const [type, form] of formats) {
          const v = readLineForm(c, form, offsetSize, secs);
          if (type === LNCT_path && typeof v === "string") e.path = v;
          if (type === LNCT_directory_index && typeof v === "number") e.dir = v;
        }
        out.push(e);
      }
      return out;
    };
    const dirs = readEntries().map((d, i) => {
      const p = d.path ?? "";
      return i === 0 || p.startsWith("/") || !compDir ? p || compDir || "" : join(compDir, p);
    });
    readEntries().forEach((f, i) => {
      if (f.path !== undefined) files.set(i, join(dirs[f.dir ?? 0], f.path));
    });
    return { files };
  });
}

function readLineForm(c: Cursor, form: number, offsetSize: number, secs: DebugSections): string | number | undefined {
  switch (form) {
    case FORM.string:
      return c.cstr();
    case FORM.line_strp:
      return secs.need(".debug_line_str", "DW_FORM_line_strp").cstrAt(c.offsetOf(offsetSize));
    case FORM.strp:
      return secs.need(".debug_str", "DW_FORM_strp").cstrAt(c.offsetOf(offsetSize));
    case FORM.udata:
      return c.uleb();
    case FORM.data1:
      return c.u8();
    case FORM.data2:
      return c.u16();
    case FORM.data4:
      return c.u32();
    case FORM.data8:
      c.skip(8);
      return undefined;
    case FORM.data16:
      c.skip(16);
      return undefined;
    case FORM.block:
      c.skip(c.uleb());
      return undefined;
    default:
      return c.fail(`unsupported form 0x${form.toString(16)} in the line table header`);
  }
}
