// Tables for people: every column as wide as its widest cell, two spaces between columns, numbers
// right-aligned, so that no value ever runs into the next (as bpftool and `column -t` do).
import { pc } from "./colors.ts";

export interface Column {
  title: string;
  /** Right-align (numbers). */
  right?: boolean;
}

/** Visible width: colour escapes take no room on screen. */
function width(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

function padCell(s: string, w: number, right: boolean): string {
  const fill = " ".repeat(Math.max(0, w - width(s)));
  return right ? fill + s : s + fill;
}

/** The table's lines: a bold header, then the rows; the last column is not padded. */
export function table(columns: Column[], rows: string[][], indent = ""): string[] {
  const widths = columns.map((c, i) => Math.max(width(c.title), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 && !columns[i]!.right ? c : padCell(c, widths[i]!, !!columns[i]!.right)))
      .join("  ")
      .trimEnd();
  return [pc.bold(line(columns.map((c) => c.title))), ...rows.map((r) => line(r.map((c) => c ?? "")))];
}
