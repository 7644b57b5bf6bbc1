// The error of everything that reads a Go executable (build info, .gopclntab, functions by name,
// return points): a GoError names the file and what in it is missing or malformed. Its own module
// so that each of those readers can throw it without depending on the others.
import { ProbeError } from "./errors.ts";

export class GoError extends ProbeError {}
