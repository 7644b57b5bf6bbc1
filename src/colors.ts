// Colour only on a terminal. picocolors on its own also colours whenever CI is set, even into
// pipes and files, where escape codes only get in the way of grep and of the reader.
import { isatty } from "node:tty";
import picocolors from "picocolors";

function wanted(): boolean {
  const env = process.env;
  if ("NO_COLOR" in env) return false;
  if ("FORCE_COLOR" in env) return true;
  // Tables go to stdout and messages to stderr; both must be a terminal to colour either.
  return isatty(1) && isatty(2) && env.TERM !== "dumb";
}

export const pc = picocolors.createColors(wanted());
