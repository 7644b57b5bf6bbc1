// Running a command: its exit code, and the one-line error a user sees when it fails.
import { pc } from "./colors.ts";
import { ProbeError, UsageError } from "./errors.ts";

interface HelpSource {
  matchedCommand?: { name: string };
}

/** Prints `probe: error: ...` (and a hint) on stderr and exits: 2 for usage, 1 otherwise. */
export function fail(e: unknown, cli?: HelpSource | string): never {
  const err = e as Error & { hint?: string; name?: string };
  const usage = e instanceof UsageError;
  const msg = (err?.message ?? String(e)).replace(/`/g, "'").split("\n")[0];
  process.stderr.write(`${pc.red("probe: error:")} ${msg}\n`);
  if (err?.hint) process.stderr.write(`${pc.dim("hint:")} ${err.hint}\n`);
  if (usage) {
    const name = typeof cli === "string" ? cli : cli?.matchedCommand?.name;
    process.stderr.write(`Run 'probe ${name ? `${name} ` : ""}--help' for usage.\n`);
  }
  if (process.env.PROBE_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(usage ? 2 : 1);
}

export async function runCommand(name: string, run: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await run();
  } catch (e) {
    fail(e, name);
  }
  process.exit(code);
}

export { ProbeError, UsageError };
