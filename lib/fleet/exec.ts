// Engine CLIs run without blocking the event loop, each bounded in time and in output size: an
// engine that hangs or floods must cost one timeout, never the session.

export interface CommandResult {
  ok: boolean;
  stdout: string;
  /** Why it failed, in one line: stderr's first line, the exit status, or the timeout. */
  error: string;
  ms: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
export const MAX_COMMAND_OUTPUT = 32 << 20;

async function readCapped(stream: ReadableStream<Uint8Array>, max: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream) {
    if (size + chunk.length > max) {
      truncated = true;
      break;
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { text: Buffer.concat(chunks).toString("utf8"), truncated };
}

function firstLine(s: string): string {
  return s.split("\n").find((l) => l.trim())?.trim().slice(0, 300) ?? "";
}

/** Runs argv; never throws (a missing binary or a timeout is a failed result). */
export async function runCommand(argv: string[], opts: { timeoutMs?: number; maxOutput?: number; env?: Record<string, string> } = {}): Promise<CommandResult> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: opts.env ? { ...process.env, ...opts.env } : undefined });
  } catch (e) {
    return { ok: false, stdout: "", error: `cannot run ${argv[0]}: ${(e as Error).message}`, ms: performance.now() - t0 };
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  try {
    const [out, err] = await Promise.all([
      readCapped(proc.stdout as ReadableStream<Uint8Array>, opts.maxOutput ?? MAX_COMMAND_OUTPUT),
      readCapped(proc.stderr as ReadableStream<Uint8Array>, 64 << 10),
    ]);
    if (out.truncated) proc.kill("SIGKILL");
    const code = await proc.exited;
    const ms = performance.now() - t0;
    if (timedOut) return { ok: false, stdout: "", error: `${argv[0]} did not answer within ${timeoutMs} ms`, ms };
    if (out.truncated) return { ok: false, stdout: "", error: `${argv[0]} printed more than ${opts.maxOutput ?? MAX_COMMAND_OUTPUT} bytes`, ms };
    if (code !== 0) return { ok: false, stdout: out.text, error: firstLine(err.text) || `${argv[0]} exited with status ${code}`, ms };
    return { ok: true, stdout: out.text, error: "", ms };
  } finally {
    clearTimeout(timer);
  }
}
