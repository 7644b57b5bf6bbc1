// Errors of the unwinder's readers. Call-frame information and Go tables come from files we do not
// trust: every malformation becomes a CfiError naming the file and what is wrong, never a
// RangeError from a DataView or an endless loop.
import { ProbeError } from "../errors.ts";

export class CfiError extends ProbeError {}

/** Raised by the byte readers without a file name; the table that owns the bytes adds it. */
export class Malformed extends Error {}

/** A CfiError naming `path` for whatever a reader threw. */
export function cfiError(path: string, what: string, e: unknown): CfiError {
  if (e instanceof CfiError) return e;
  const detail = e instanceof Malformed || e instanceof ProbeError ? e.message : e instanceof RangeError ? "an offset points outside the data" : String(e);
  return new CfiError(`${path}: malformed ${what}: ${detail}`, undefined, { cause: e });
}
