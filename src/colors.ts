// Colour only on a terminal: stdout and stderr both (tables go to one, messages to the other),
// unless NO_COLOR or FORCE_COLOR say otherwise. Escape codes in pipes and files only get in the way
// of grep and of the reader.
// Written here rather than taken from a package: picocolors reads process.stdout.isTTY as it is
// imported, which builds Node's stdout stream (tens of milliseconds of every start), and it also
// colours whenever CI is set. isatty comes from libc for the same reason (node:tty loads streams),
// asked the first time something is styled (`probe --version` never loads bun:ffi).
import type * as Libc from "../lib/ffi/libc.ts";

let on: boolean | undefined;

function wanted(): boolean {
  const env = process.env;
  if ("NO_COLOR" in env) return false;
  if ("FORCE_COLOR" in env) return true;
  const { isTerminal } = require("../lib/ffi/libc.ts") as typeof Libc;
  return isTerminal(1) && isTerminal(2) && env.TERM !== "dumb";
}

type Style = (s: string | number) => string;

/** SGR `open`...`close` around a text; a `close` inside it (a nested style ending) reopens ours. */
function style(open: number, close: number): Style {
  const o = `\x1b[${open}m`;
  const c = `\x1b[${close}m`;
  return (s) => ((on ??= wanted()) ? `${o}${String(s).replaceAll(c, c + o)}${c}` : String(s));
}

export const pc = {
  bold: style(1, 22),
  dim: style(2, 22),
  red: style(31, 39),
  green: style(32, 39),
  yellow: style(33, 39),
  magenta: style(35, 39),
  cyan: style(36, 39),
};
