// Shared by the tests: fixture builds (cached under tests/.work), the built binary, and processes
// driven step by step (a target that waits for "go", a probe that says when it is attached).
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { kernelView, type LinkView } from "../lib/kernel-view.ts";

export const ROOT = join(import.meta.dir, "..");
export const WORK = join(ROOT, "tests", ".work");
export const FIXTURES = join(ROOT, "tests", "fixtures");
export const PROBE = join(ROOT, "dist", "probe");
mkdirSync(WORK, { recursive: true });

/** The built binary: tests exercise what users run. `bun run test` builds it first. */
export function probeBinary(): string {
  if (!existsSync(PROBE)) throw new Error(`${PROBE} is missing: run 'bun run build' (bun run test does)`);
  return PROBE;
}

function newer(out: string, src: string[]): boolean {
  if (!existsSync(out)) return false;
  const t = statSync(out).mtimeMs;
  return src.every((s) => statSync(s).mtimeMs <= t);
}

/** Compiles a C fixture with gcc (once per source change). */
export function buildC(name: string, src: string, flags: string[] = []): string {
  const out = join(WORK, name);
  const srcPath = join(FIXTURES, src);
  if (newer(out, [srcPath])) return out;
  const r = Bun.spawnSync(["gcc", "-O0", "-g", "-pthread", ...flags.filter((f) => !f.startsWith("-l")), "-o", out, srcPath, ...flags.filter((f) => f.startsWith("-l"))], {
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`gcc ${src} failed (is gcc installed? libssl-dev for TLS fixtures):\n${r.stderr}`);
  return out;
}

/** A self-signed certificate for TLS fixtures. */
export function testCert(): { cert: string; key: string } {
  const cert = join(WORK, "cert.pem");
  const key = join(WORK, "key.pem");
  if (!existsSync(cert) || !existsSync(key)) {
    const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=localhost", "-keyout", key, "-out", cert], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  }
  return { cert, key };
}

/** Reads a child's stdout line by line. */
export class Lines {
  private buf = "";
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly all: string[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of stream) {
        this.buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = this.buf.indexOf("\n")) >= 0) {
          const l = this.buf.slice(0, i);
          this.buf = this.buf.slice(i + 1);
          this.lines.push(l);
          this.all.push(l);
        }
        this.wake();
      }
      if (this.buf) {
        this.lines.push(this.buf);
        this.all.push(this.buf);
      }
      this.ended = true;
      this.wake();
    })();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next line matching `re` (earlier lines are consumed), or an error after `ms`. */
  async waitFor(re: RegExp, ms = 15000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.lines.length) {
        const l = this.lines.shift()!;
        const m = re.exec(l);
        if (m) return m;
      }
      if (this.ended) throw new Error(`stream ended before a line matching ${re}; saw:\n${this.all.slice(-20).join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line matching ${re} within ${ms} ms; saw:\n${this.all.slice(-20).join("\n")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async done(): Promise<string[]> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
    return this.all;
  }
}

export interface Running {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  out: Lines;
  err: Lines;
}

export function start(cmd: string[], env: Record<string, string> = {}): Running {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { proc, out: new Lines(proc.stdout), err: new Lines(proc.stderr) };
}

/** Runs probe with args and waits until it says it is tracing (printed after every attach). */
export async function startProbe(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const r = start([probeBinary(), ...args], env);
  await r.err.waitFor(/Tracing|Ctrl-C/, 20000);
  return r;
}

/** Runs probe to completion. */
export function runProbe(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([probeBinary(), ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Program ids of everything probe loads (its program names), as the kernel lists them. */
export function probePrograms(): string[] {
  const r = Bun.spawnSync(["bpftool", "prog", "list", "--json"], { stdout: "pipe" });
  const progs = JSON.parse(r.stdout.toString() || "[]") as { id: number; name?: string }[];
  const ours = new Set(["probe_entry", "probe_return", "probe_empty", "ssl_read_entry", "ssl_read_return"]);
  return progs.filter((p) => p.name && ours.has(p.name)).map((p) => `${p.id}:${p.name}`);
}

export function sh(cmd: string): string {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout.toString();
}


/** The BPF links a process holds, as the kernel describes them (what `probe list` shows). */
export function linksHeldBy(pid: number): LinkView[] {
  return kernelView().links.filter((l) => l.holders.some((h) => h.pid === pid));
}

/** A free TCP port on 127.0.0.1 (the test containers share the host's network namespace). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (or throws after ~5 s). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      sock.end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}
