// Fixtures of the unwinder tests: the C and Go programs (built into tests/.work/unwind), and gdb
// as the reference: it stops a program at a breakpoint and hands back what probe's BPF side would
// copy (registers, the stack from rsp upward), the mappings, and its own backtrace.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { goEnv, run } from "../fixtures/go.ts";

export const WORK = join(import.meta.dir, "..", ".work", "unwind");
mkdirSync(WORK, { recursive: true });
const FIXTURES = join(import.meta.dir, "..", "fixtures", "unwind");

function upToDate(out: string, src: string): boolean {
  return existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs;
}

/** tests/fixtures/unwind/chain.c, built -O2 -fomit-frame-pointer (once per source change). */
export function buildChain(): string {
  const out = join(WORK, "chain");
  if (upToDate(out, join(FIXTURES, "chain.c"))) return out;
  const r = Bun.spawnSync(["gcc", "-O2", "-fomit-frame-pointer", "-g", "-o", out, join(FIXTURES, "chain.c")], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`gcc failed (is gcc installed?): ${r.stderr}`);
  return out;
}

/** tests/fixtures/unwind/go/main.go, stripped (-ldflags='-s -w') or not, PIE or not. */
export function buildGoChain(strip: boolean, pie = false): string {
  const out = join(WORK, `go-chain${strip ? "-stripped" : ""}${pie ? "-pie" : ""}`);
  if (upToDate(out, join(FIXTURES, "go", "main.go"))) return out;
  run(["go", "build", "-o", out, ...(pie ? ["-buildmode=pie"] : []), ...(strip ? ["-ldflags=-s -w"] : []), "main.go"], { ...goEnv, CGO_ENABLED: "0" }, join(FIXTURES, "go"));
  return out;
}

export interface GdbFrame {
  level: number;
  /** The frame's pc: the return address for callers, rip for frame 0. */
  pc: number;
  /** Function names of this physical frame, innermost inlined first (gdb shows inlined calls as frames of their own). */
  names: string[];
  /** Start address of the (outermost, not inlined) function holding the pc, from gdb's debug info; -1 without. */
  functionStart: number;
}

export interface GdbTailCall {
  level: number;
  pc: number;
  name: string;
}

export interface GdbSnapshot {
  regs: Record<string, number>;
  stack: Uint8Array;
  stackAddr: number;
  mappings: { start: number; end: number; offset: number; perms: string; path: string }[];
  /** Physical frames (inlined frames folded into the frame that holds them; no tail-call frames). */
  frames: GdbFrame[];
  /**
   * Frames gdb rebuilt from DWARF call-site information for functions that left by a tail jump
   * (glibc's qsort jumps to qsort_r): they are not on the machine stack, so no unwinder sees them.
   */
  tailCalls: GdbTailCall[];
  /** gdb's own `bt` text, for messages. */
  bt: string;
  /** Program output after `continue` (for fixtures that print a reference themselves). */
  output: string;
}

/**
 * Runs `argv` under gdb until `breakpoint` (a function name or `*0xaddr`, run-time address), then dumps up to
 * `stackBytes` of stack from rsp (page by page, stopping at the end of the mapping), the
 * registers, the mappings and a full backtrace (past main), and lets the program finish.
 */
export function gdbSnapshot(argv: string[], breakpoint: string, tag: string, stackBytes = 16384): GdbSnapshot {
  const stackFile = join(WORK, `${tag}.stack`);
  const script = join(WORK, `${tag}.py`);
  writeFileSync(
    script,
    `import gdb
sp = int(gdb.parse_and_eval("$rsp")) & 0xffffffffffffffff
inf = gdb.selected_inferior()
data = b""
addr = sp
while len(data) < ${stackBytes}:
    n = min(${stackBytes} - len(data), 4096 - addr % 4096)
    try:
        data += bytes(inf.read_memory(addr, n))
    except gdb.MemoryError:
        break
    addr += n
open(${JSON.stringify(stackFile)}, "wb").write(data)
print("STACK 0x%x %d" % (sp, len(data)))
gdb.execute("set backtrace past-main on")
gdb.execute("set backtrace past-entry on")
kinds = {gdb.NORMAL_FRAME: "normal", gdb.INLINE_FRAME: "inline", gdb.TAILCALL_FRAME: "tailcall", gdb.SIGTRAMP_FRAME: "sigtramp"}
f = gdb.newest_frame()
level = 0
def function_start(f):
    # The outermost function block holding the pc: where the (possibly cloned) function starts.
    try:
        b = f.block()
    except RuntimeError:
        return -1
    start = -1
    while b is not None:
        if b.function is not None:
            start = b.start
        b = b.superblock
    return start
while f is not None and level < 200:
    print("FRAME %d 0x%x %s %d %s" % (level, f.pc(), kinds.get(f.type(), "other"), function_start(f), f.name()))
    f = f.older()
    level += 1
`,
  );
  const r = Bun.spawnSync(
    [
      "gdb", "-batch", "-nx",
      "-ex", "set debuginfod enabled off", "-ex", "set pagination off", "-ex", "set confirm off",
      "-ex", "handle SIGURG nostop noprint pass", "-ex", "handle SIGUSR1 nostop noprint pass",
      // Started first, so that a raw address in a PIE (mapped only once it runs) can be broken at.
      "-ex", "starti", "-ex", `break ${breakpoint}`, "-ex", "continue",
      "-ex", "echo @@REGS\\n", "-ex", "info registers",
      "-ex", `source ${script}`,
      "-ex", "echo @@MAPS\\n", "-ex", "info proc mappings",
      "-ex", "set backtrace past-main on", "-ex", "set backtrace past-entry on",
      "-ex", "echo @@BT\\n", "-ex", "bt",
      "-ex", "echo @@END\\n", "-ex", "delete", "-ex", "continue",
      "--args", ...argv,
    ],
    { stdout: "pipe", stderr: "pipe", timeout: 60_000 },
  );
  const out = r.stdout.toString();
  if (!out.includes("@@END")) throw new Error(`gdb did not reach the breakpoint ${breakpoint} in ${argv[0]} (exit ${r.exitCode}):\n${out}\n${r.stderr.toString()}`);
  const section = (name: string) => out.split(`@@${name}\n`)[1]!.split("@@")[0]!;

  const regs: Record<string, number> = {};
  for (const line of section("REGS").split("\n")) {
    const m = /^(\w+)\s+(0x[0-9a-f]+)/.exec(line);
    if (m) regs[m[1]!] = Number(BigInt(m[2]!));
  }
  const sm = /STACK 0x([0-9a-f]+) (\d+)/.exec(out);
  if (!sm) throw new Error(`gdb did not dump the stack:\n${out}`);

  const mappings: GdbSnapshot["mappings"] = [];
  for (const line of section("MAPS").split("\n")) {
    const m = /^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S+)\s*(.*)$/.exec(line);
    if (m) mappings.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), offset: parseInt(m[3]!, 16), perms: m[4]!, path: m[5]!.trim() });
  }

  const frames: GdbFrame[] = [];
  const tailCalls: GdbTailCall[] = [];
  let inlined: string[] = [];
  for (const m of out.matchAll(/^FRAME (\d+) 0x([0-9a-f]+) (\w+) (-?\d+) (.*)$/gm)) {
    const level = Number(m[1]);
    const pc = parseInt(m[2]!, 16);
    const functionStart = Number(m[4]);
    const name = m[5]!;
    if (m[3] === "tailcall") tailCalls.push({ level, pc, name });
    else if (m[3] === "inline") inlined.push(name);
    else {
      frames.push({ level, pc, names: [...inlined, name], functionStart });
      inlined = [];
    }
  }
  return { regs, stack: new Uint8Array(readFileSync(stackFile)), stackAddr: parseInt(sm[1]!, 16), mappings, frames, tailCalls, bt: section("BT"), output: out.split("@@END\n")[1] ?? "" };
}
