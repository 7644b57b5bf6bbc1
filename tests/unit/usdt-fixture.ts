// Shared by the USDT tests: the fixture programs (tests/fixtures/usdt, built once per source
// change under tests/.work), readelf's view of their notes, and gdb driven command by command.
import { existsSync, openSync, statSync, closeSync } from "node:fs";
import type { Subprocess } from "bun";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { readUsdtSites, type UsdtSite } from "../../lib/usdt/notes.ts";
import { FIXTURES, WORK } from "../helpers.ts";

const SOURCES = ["args.c", "sema.c"].map((s) => join(FIXTURES, "usdt", s));

export interface FixtureBuild {
  name: string;
  path: string;
  /** Runnable under gdb (not the shared library). */
  runnable: boolean;
}

const VARIANTS: [string, string[], boolean][] = [
  ["usdt-O0", ["-O0"], true],
  ["usdt-O2", ["-O2"], true],
  ["usdt-nopie", ["-O2", "-no-pie"], true],
  ["libusdt-fx.so", ["-O2", "-shared", "-fPIC"], false],
];

/** Names of the fixture builds (for declaring tests before building anything). */
export const FIXTURE_NAMES = VARIANTS.map(([name, , runnable]) => ({ name, runnable }));

/** Builds one fixture variant when its sources changed; returns its path. */
export function usdtFixture(name: string): FixtureBuild {
  if (!existsSync("/usr/include/x86_64-linux-gnu/sys/sdt.h") && !existsSync("/usr/include/sys/sdt.h")) {
    throw new Error("<sys/sdt.h> is missing: apt-get install -y systemtap-sdt-dev");
  }
  const v = VARIANTS.find(([n]) => n === name);
  if (!v) throw new Error(`no USDT fixture named ${name}`);
  const [, flags, runnable] = v;
  const out = join(WORK, name);
  const fresh = existsSync(out) && SOURCES.every((s) => statSync(s).mtimeMs <= statSync(out).mtimeMs);
  if (!fresh) {
    const r = Bun.spawnSync(["gcc", "-g", ...flags, "-o", out, ...SOURCES], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`gcc ${flags.join(" ")} ${SOURCES.join(" ")} failed:\n${r.stderr}`);
  }
  return { name, path: out, runnable };
}

export function sitesOf(path: string): { elf: ElfFile; sites: UsdtSite[]; close(): void } {
  const fd = openSync(path, "r");
  const elf = new ElfFile(fd, path);
  return { elf, sites: readUsdtSites(elf), close: () => closeSync(fd) };
}

export interface ReadelfNote {
  provider: string;
  name: string;
  location: number;
  base: number;
  semaphore: number;
  args: string;
}

/** The stapsdt notes as `readelf -n --wide` prints them, in file order. */
export function readelfNotes(path: string): ReadelfNote[] {
  const r = Bun.spawnSync(["readelf", "-n", "--wide", path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`readelf -n ${path} failed: ${r.stderr}`);
  const out: ReadelfNote[] = [];
  let cur: Partial<ReadelfNote> | undefined;
  for (const line of r.stdout.toString().split("\n")) {
    let m = /Provider: (\S+)/.exec(line);
    if (m && /stapsdt/.test(line)) {
      cur = { provider: m[1]! };
      continue;
    }
    if (!cur) continue;
    if ((m = /^\s+Name: (\S+)/.exec(line))) cur.name = m[1]!;
    else if ((m = /^\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)/.exec(line))) {
      cur.location = Number(m[1]);
      cur.base = Number(m[2]);
      cur.semaphore = Number(m[3]);
    } else if ((m = /^\s+Arguments:(.*)$/.exec(line))) {
      cur.args = m[1]!.trim();
      out.push(cur as ReadelfNote);
      cur = undefined;
    }
  }
  return out;
}

/** gdb on a pipe: each command's output (stdout and stderr) up to a marker echoed after it. */
export class Gdb {
  private buf = "";
  private waiters: (() => void)[] = [];
  private ended = false;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private static readonly MARK = "@@probe-test-done@@";

  constructor(program: string) {
    const proc = Bun.spawn(["sh", "-c", 'exec gdb -q -nx -nh --args "$0" 2>&1', program], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    this.proc = proc;
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stdout) {
        this.buf += dec.decode(chunk, { stream: true });
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
      this.ended = true;
      for (const f of this.waiters) f();
    })();
  }

  async cmd(command: string, ms = 20000): Promise<string> {
    this.proc.stdin.write(`${command}\necho ${Gdb.MARK}\\n\n`);
    await this.proc.stdin.flush();
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.buf.indexOf(Gdb.MARK);
      if (i >= 0) {
        const out = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + Gdb.MARK.length + 1);
        return out.replace(/\(gdb\) /g, "");
      }
      if (this.ended) throw new Error(`gdb exited during '${command}':\n${this.buf}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`gdb did not answer '${command}' within ${ms} ms:\n${this.buf}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async close(): Promise<void> {
    try {
      this.proc.stdin.write("kill\nquit\n");
      await this.proc.stdin.end();
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => this.proc.kill(), 5000);
    await this.proc.exited;
    clearTimeout(timer);
  }
}
