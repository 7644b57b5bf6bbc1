// Shared by the tests: fixture builds (cached under tests/.work: C with gcc, BPF with clang), the
// built binary, processes driven step by step (a target that waits for "go", a probe that says
// when it is attached), and what a test file starts and stops around its tests.
import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
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

const BPF_FLAGS = ["-O2", "-g", "-Wall", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu"];

/** Compiles BPF C source text with clang into tests/.work/NAME.bpf.o. */
export function clangBpf(name: string, source: string, defines: string[] = []): string {
  const src = join(WORK, `${name}.bpf.c`);
  const out = join(WORK, `${name}.bpf.o`);
  writeFileSync(src, source);
  const r = Bun.spawnSync(["clang", ...BPF_FLAGS, ...defines, "-c", src, "-o", out], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`clang ${name} failed (clang and libbpf-dev are needed):\n${r.stderr}`);
  return out;
}

/** Compiles a BPF fixture of tests/fixtures/bpf into tests/.work/NAME.bpf.o (warnings are errors: the fixtures have none). */
export function clangFixture(name: string, src: string, defines: string[] = []): string {
  const out = join(WORK, `${name}.bpf.o`);
  const r = Bun.spawnSync(["clang", ...BPF_FLAGS, "-Werror", ...defines, "-c", join(FIXTURES, "bpf", src), "-o", out], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`clang ${src} failed (clang and libbpf-dev are needed):\n${r.stderr}`);
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

export function start(cmd: string[], env: Record<string, string> = {}, cwd?: string): Running {
  const proc = Bun.spawn(cmd, { stdin: "pipe", stdout: "pipe", stderr: "pipe", cwd, env: { ...process.env, ...env } });
  return { proc, out: new Lines(proc.stdout), err: new Lines(proc.stderr) };
}

/** A target process (a fixture) that prints "ready PID" and waits for a line before doing its work. */
export interface Target {
  r: Running;
  pid: number;
  /** Sends the line that starts its work. */
  go(): Promise<void>;
}

export async function startTarget(argv: string[], env: Record<string, string> = {}): Promise<Target> {
  const r = start(argv, env);
  const pid = Number((await r.out.waitFor(/^ready (\d+)/))[1]);
  return {
    r,
    pid,
    go: async () => {
      r.proc.stdin.write("go\n");
      await r.proc.stdin.flush();
    },
  };
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

export interface Stoppable {
  stop(): unknown;
}

/**
 * What a test file starts and must stop after its tests (containers, docker runs): `first` is
 * started before the tests, once the built binary is known to be there; it and whatever the tests
 * push on the returned list are stopped after them, last first.
 */
export function stoppedAfterAll(first: () => Promise<Stoppable>): Stoppable[] {
  const started: Stoppable[] = [];
  beforeAll(async () => {
    probeBinary();
    started.push(await first());
  });
  afterAll(async () => {
    for (const c of started.reverse()) await c.stop();
  });
  return started;
}

/** A free TCP port on 127.0.0.1 (the test containers share the host's network namespace). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (the demo's own wait). */
export { waitForPort } from "../src/commands/demo.ts";
