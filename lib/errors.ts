// The one error base of lib/: a message a user can read, an optional hint saying what to do, and
// the cause it wraps. Modules subclass it only where callers branch on the kind (ProcessError's
// reason, OsError's errno); the CLI prints every ProbeError the same way.

export class ProbeError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
