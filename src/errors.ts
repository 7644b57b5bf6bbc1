// Bad command-line input: exit 2 with a pointer to --help. Everything else a user can act on is a
// lib/ ProbeError (exit 1).
import { ProbeError } from "../lib/errors.ts";

export class UsageError extends ProbeError {}

export { ProbeError };
