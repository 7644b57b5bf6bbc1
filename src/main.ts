// Running a command: its exit code, and the one-line error a user sees when it fails
// (`probe: error: ...` and a hint on stderr; with --json, one JSON object there instead).
import { pc } from "./colors.ts";
import { writeStderr } from "./stderr.ts";
import { ProbeError, UsageError } from "./errors.ts";
import { mark } from "./timing.ts";

interface HelpSource {
  matchedCommand?: { name: string };
}

function jsonWanted(): boolean {
  return process.argv.includes("--json");
}

/** Prints the error on stderr and exits: 2 for usage, 1 otherwise. */
export function fail(e: unknown, cli?: HelpSource | string): never {
  const err = e as Error & { hint?: string };
  const usage = e instanceof UsageError;
  // Only our own errors are worded for users; anything else is a bug, shown as one line too.
  const known = e instanceof ProbeError;
  let msg = (err?.message ?? String(e)).replace(/`/g, "'").split("\n")[0]!;
  if (!known) msg = `internal error: ${msg}`;
  if (msg.length > 600) msg = `${msg.slice(0, 600)}...`;
  const hint = known ? err.hint : "this is a bug in probe; PROBE_DEBUG=1 shows where";
  const name = typeof cli === "string" ? cli : cli?.matchedCommand?.name;
  try {
    if (jsonWanted()) {
      writeStderr(`${JSON.stringify({ event: "error", message: msg, ...(hint ? { hint } : {}), exit: usage ? 2 : 1 })}\n`);
    } else {
      writeStderr(`${pc.red("probe: error:")} ${msg}\n`);
      if (hint) writeStderr(`${pc.dim("hint:")} ${hint}\n`);
      if (usage) writeStderr(`Run 'probe ${name ? `${name} ` : ""}--help' for usage.\n`);
    }
    if (process.env.PROBE_DEBUG && err?.stack) writeStderr(`${err.stack}\n`);
  } catch {
    // stderr is gone: the exit code still says it.
  }
  process.exit(usage ? 2 : 1);
}

export async function runCommand(name: string, run: () => Promise<number>): Promise<void> {
  let code: number;
  mark(`command ${name}`);
  try {
    code = await run();
  } catch (e) {
    fail(e, name);
  }
  process.exit(code);
}
