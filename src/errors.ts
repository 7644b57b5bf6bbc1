// The two kinds of failure a user sees: bad input (exit 2, with usage) and everything else (exit 1).

export class UsageError extends Error {}

export class ProbeError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}
