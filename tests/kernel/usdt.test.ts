// `probe usdt` against real programs: Debian's CPython 3.11 (function calls under cProfile, garbage
// collections), a C fixture with a probe for every argument form and semaphores, libstdc++'s
// exception probes, and the same Python inside a namespace container. References: the fixtures'
// own known values, `readelf -n` for the notes, and the semaphores read from /proc/PID/mem at the
// address the process maps them (from readelf's .probes section and /proc/PID/maps).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES, WORK, linksHeldBy, probeBinary, runProbe, start, startProbe, type Running } from "../helpers.ts";
import { readelfNotes } from "../unit/usdt-fixture.ts";
import { startNsContainer, type NsContainer } from "../fixtures/container.ts";
import { readmeExamples } from "../readme.ts";
import { ensurePythonRootfs, HOST_PYTHON } from "../fixtures/usdt/python-rootfs.ts";

setDefaultTimeout(90_000);

const SCRIPT = join(FIXTURES, "usdt", "calls.py");
const LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

// ---------------------------------------------------------------------------------------------
// References

/** Line of `def name` in the fixture script: function__entry reports a new frame at its def line. */
function defLine(name: string): number {
  const i = readFileSync(SCRIPT, "utf8").split("\n").findIndex((l) => new RegExp(`^\\s*def ${name}\\(`).test(l));
  if (i < 0) throw new Error(`no def ${name} in ${SCRIPT}`);
  return i + 1;
}

interface SectionInfo {
  name: string;
  addr: number;
  offset: number;
  size: number;
}

function sections(path: string): SectionInfo[] {
  const r = Bun.spawnSync(["readelf", "-S", "--wide", path], { stdout: "pipe" });
  const out: SectionInfo[] = [];
  for (const m of r.stdout.toString().matchAll(/\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)/g)) {
    out.push({ name: m[1]!, addr: parseInt(m[2]!, 16), offset: parseInt(m[3]!, 16), size: parseInt(m[4]!, 16) });
  }
  return out;
}

/**
 * Where process `pid` has the semaphore of `provider:name`: the note's semaphore address (readelf),
 * turned into a file offset through the .probes section (readelf -S), then into an address
 * through the mapping of that file offset in /proc/PID/maps.
 */
function semaphoreAddress(pid: number, file: string, mappedPath: string, provider: string, name: string): number {
  const note = readelfNotes(file).find((n) => n.provider === provider && n.name === name);
  if (!note?.semaphore) throw new Error(`${file}: no semaphore for ${provider}:${name}`);
  const probes = sections(file).find((s) => s.name === ".probes");
  if (!probes || note.semaphore < probes.addr || note.semaphore >= probes.addr + probes.size) throw new Error(`${file}: semaphore 0x${note.semaphore.toString(16)} is not in .probes`);
  const fileOff = note.semaphore - probes.addr + probes.offset;
  for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (!m || m[4] !== mappedPath) continue;
    const start = parseInt(m[1]!, 16);
    const off = parseInt(m[3]!, 16);
    if (fileOff >= off && fileOff < off + (parseInt(m[2]!, 16) - start)) return start + (fileOff - off);
  }
  throw new Error(`process ${pid} maps no part of ${mappedPath} holding file offset 0x${fileOff.toString(16)}`);
}

/** The u16 counter at `addr` in process `pid`'s memory. */
function readU16(pid: number, addr: number): number {
  const fd = openSync(`/proc/${pid}/mem`, "r");
  try {
    const b = Buffer.alloc(2);
    if (readSync(fd, b, 0, 2, addr) !== 2) throw new Error(`short read of /proc/${pid}/mem at 0x${addr.toString(16)}`);
    return b.readUInt16LE(0);
  } finally {
    closeSync(fd);
  }
}

async function stop(p: Running): Promise<{ code: number; rows: Record<string, any>[]; out: string[]; err: string[] }> {
  p.proc.kill("SIGINT");
  const out = await p.out.done();
  const code = await p.proc.exited;
  if (code !== 0) console.error(`probe exited with ${code}; its stderr:\n${(await p.err.done()).join("\n")}`);
  return { code, out, rows: out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), err: await p.err.done() };
}

type Arg = { name: string; type: string; value: unknown };
const argsOf = (row: Record<string, any>): Record<string, any> => Object.fromEntries((row.args as Arg[]).map((a) => [a.name, a.value]));

/** A multiset as sorted "key x count" strings. */
function tally(keys: string[]): string[] {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m].map(([k, n]) => `${k} x${n}`).sort();
}

// ---------------------------------------------------------------------------------------------
// Fixture builds

function build(out: string, cmds: string[][], sources: string[]): string {
  const path = join(WORK, out);
  if (existsSync(path) && sources.every((s) => statSync(s).mtimeMs <= statSync(path).mtimeMs)) return path;
  for (const c of cmds) {
    const r = Bun.spawnSync(c, { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${c.join(" ")} failed (gcc, g++ and systemtap-sdt-dev are needed):\n${r.stderr}`);
  }
  return path;
}

/** tests/fixtures/usdt/args.c + sema.c driven by driver.c (args.c's main renamed). */
function cFixture(variant: "O0" | "O2" | "nopie"): string {
  if (!existsSync("/usr/include/x86_64-linux-gnu/sys/sdt.h")) throw new Error("<sys/sdt.h> is missing: apt-get install -y systemtap-sdt-dev");
  const dir = join(FIXTURES, "usdt");
  const srcs = ["args.c", "sema.c", "driver.c"].map((s) => join(dir, s));
  const opt = variant === "O0" ? ["-O0"] : ["-O2"];
  const pie = variant === "nopie" ? ["-no-pie"] : [];
  const obj = join(WORK, `usdt-args-${variant}.o`);
  const out = `usdt-driver-${variant}`;
  return build(out, [
    ["gcc", "-g", ...opt, ...(variant === "nopie" ? ["-fno-pie"] : []), "-Dmain=args_main", "-c", "-o", obj, join(dir, "args.c")],
    ["gcc", "-g", ...opt, ...pie, "-o", join(WORK, out), obj, join(dir, "sema.c"), join(dir, "driver.c")],
  ], srcs);
}

/** tests/fixtures/usdt/thrower.cc: N exceptions thrown by thrower(), called by main (-O0 -g). */
function throwerFixture(): string {
  const src = join(FIXTURES, "usdt", "thrower.cc");
  return build("usdt-thrower", [["g++", "-O0", "-g", "-o", join(WORK, "usdt-thrower"), src]], [src]);
}

/** tests/fixtures/usdt/pairs.c: calls of known length between lat:op__entry and lat:op__return. */
function pairsFixture(): string {
  if (!existsSync("/usr/include/x86_64-linux-gnu/sys/sdt.h")) throw new Error("<sys/sdt.h> is missing: apt-get install -y systemtap-sdt-dev");
  const src = join(FIXTURES, "usdt", "pairs.c");
  return build("usdt-pairs", [["gcc", "-O0", "-g", "-o", join(WORK, "usdt-pairs"), src]], [src]);
}

function throwFixture(): string {
  const src = join(FIXTURES, "usdt", "throw.cc");
  return build("usdt-throw", [["g++", "-O1", "-g", "-o", join(WORK, "usdt-throw"), src]], [src]);
}

/** The Python fixture on the host, waiting for "go" on stdin. */
async function startPython(): Promise<{ r: Running; pid: number }> {
  if (!existsSync(HOST_PYTHON)) throw new Error(`${HOST_PYTHON} is missing: apt-get install -y python3.11`);
  const r = start([HOST_PYTHON, SCRIPT]);
  const [, pid] = await r.out.waitFor(/^ready (\d+)/);
  return { r, pid: Number(pid) };
}

/** The README's example `i`, for process `pid` (its 4242), the C fixture (its ./server) and the thrower (its ./thrower), with `extra` words at the end. */
function readme(i: number, o: { pid?: number; server?: string; thrower?: string } = {}, ...extra: string[]): string[] {
  const ex = readmeExamples("`probe usdt")[i];
  if (!ex) throw new Error(`README.md's probe usdt section has no example ${i}`);
  return [...ex.map((w) => (w === "4242" && o.pid ? String(o.pid) : w === "./server" && o.server ? o.server : w === "./thrower" && o.thrower ? o.thrower : w)), ...extra];
}

/** `argv` with `opts` put before its `-- command` (which takes the words after it). */
function withOptions(argv: string[], ...opts: string[]): string[] {
  const dd = argv.indexOf("--");
  return dd < 0 ? [...argv, ...opts] : [...argv.slice(0, dd), ...opts, ...argv.slice(dd)];
}

test("the README shows the examples run here", () => {
  expect(readmeExamples("`probe usdt").map((e) => e.join(" "))).toEqual([
    "usdt --list /usr/bin/python3",
    "usdt --list --pid 4242",
    "usdt python3 python:function__entry --pid 4242",
    "usdt python3 python:function__* --ret-pairs --summary --pid 4242",
    "usdt libstdc++ libstdcxx:throw --pid 4242",
    "usdt ./server fx:* --args through_pointer(int value, long element, struct rec *r)",
    `usdt ${LIBSTDCXX} libstdcxx:throw --stack -- ./thrower`,
  ]);
});

const running: { kill(): void }[] = [];
afterAll(() => {
  for (const p of running) {
    try {
      p.kill();
    } catch {}
  }
});

// ---------------------------------------------------------------------------------------------

describe("probe usdt --list", () => {
  const files = () => [HOST_PYTHON, LIBSTDCXX, cFixture("O2"), cFixture("nopie")];
  test("equals readelf -n's stapsdt notes: provider, name, location, base, semaphore, arguments", () => {
    probeBinary();
    for (const f of files()) {
      const r = runProbe(["usdt", "--list", f, "--json"]);
      expect(r.code).toBe(0);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const mine = rows.map((x) => ({ provider: x.provider, name: x.name, location: Number(x.note.pc), base: Number(x.note.base), semaphore: Number(x.note.semaphore), args: x.args_text }));
      // readelf lists notes in file order; --list groups sites by probe in order of first appearance.
      const key = (n: { provider: string; name: string; location: number }) => `${n.provider}:${n.name}@${n.location}`;
      const ref = readelfNotes(f);
      expect(ref.length).toBeGreaterThan(0);
      expect([...mine].sort((a, b) => (key(a) < key(b) ? -1 : 1))).toEqual([...ref].sort((a, b) => (key(a) < key(b) ? -1 : 1)));
    }
  });

  test("human: one line per probe with typed arguments and the semaphore", () => {
    const r = runProbe(readme(0));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("/usr/bin/python3: 8 USDT probes, 8 sites");
    const entry = readelfNotes(HOST_PYTHON).find((n) => n.name === "function__entry")!;
    expect(r.stdout).toMatch(new RegExp(`python:function__entry\\s+1\\s+0x${entry.semaphore.toString(16)}\\s+char \\*filename = 8@%rbp, char \\*funcname = 8@%r12, int32_t lineno = -4@%eax`));
    const l = runProbe(["usdt", "--list", "libstdc++", "libstdcxx:*"]);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/libstdcxx:throw\s+1\s+-\s+void \*obj = 8@%rdi, void \*tinfo = 8@%rsi/);
  });

  test("--pid: every mapped file that has notes (readelf's view of each mapped file)", async () => {
    const { r, pid } = await startPython();
    running.push(r.proc);
    const l = runProbe(["usdt", "--list", "--pid", String(pid), "--json"]);
    expect(l.code).toBe(0);
    const listed = new Set(l.stdout.trim().split("\n").map((x) => JSON.parse(x).file));
    const mapped = new Set(readFileSync(`/proc/${pid}/maps`, "utf8").split("\n").map((x) => /\s(\/\S+)$/.exec(x)?.[1]).filter((x): x is string => !!x && existsSync(x)));
    const withNotes = [...mapped].filter((f) => Bun.spawnSync(["readelf", "-n", f], { stdout: "pipe", stderr: "pipe" }).stdout.toString().includes("stapsdt"));
    expect([...listed].sort()).toEqual(withNotes.sort());
    expect(listed.has(HOST_PYTHON)).toBe(true);
    const h = runProbe(readme(1, { pid }));
    expect(h.code).toBe(0);
    expect(h.stdout).toContain(`${HOST_PYTHON}: 8 USDT probes, 8 sites`);
    r.proc.kill();
  });
});

describe("probe usdt on CPython 3.11", () => {
  test("function__entry: exactly the script's calls (file, function, def line), only while probe runs: the semaphore", async () => {
    const { r, pid } = await startPython();
    running.push(r.proc);
    const sem = semaphoreAddress(pid, HOST_PYTHON, HOST_PYTHON, "python", "function__entry");
    expect(readU16(pid, sem)).toBe(0);
    const p = await startProbe(["usdt", HOST_PYTHON, "python:function__entry", "--pid", String(pid), "--json"]);
    expect(p.err.all.join("\n")).toContain(`Tracing python:function__entry (1 site, with semaphore) in ${HOST_PYTHON}, pid ${pid} [`);
    expect(readU16(pid, sem)).toBe(1); // raised by the kernel while attached
    r.proc.stdin.write("go\n");
    await r.proc.stdin.flush();
    await r.out.waitFor(/^done/);
    const { code, rows } = await stop(p);
    expect(code).toBe(0);
    expect(readU16(pid, sem)).toBe(0); // and dropped once probe is gone
    const ours = rows.filter((e) => argsOf(e).filename === SCRIPT);
    expect(tally(ours.map((e) => `${argsOf(e).funcname}:${argsOf(e).lineno}`))).toEqual(tally([
      ...Array(5).fill(`alpha:${defLine("alpha")}`), ...Array(7).fill(`beta:${defLine("beta")}`), ...Array(3).fill(`delta:${defLine("delta")}`),
    ]));
    for (const e of rows) {
      expect(e.event).toBe("usdt");
      expect(e.probe).toBe("python:function__entry");
      expect(e.pid).toBe(pid);
      expect((e.args as Arg[]).map((a) => `${a.type} ${a.name}`)).toEqual(["char * filename", "char * funcname", "int32_t lineno"]);
    }
    r.proc.stdin.write("bye\n");
    await r.proc.stdin.flush();
    expect(await r.proc.exited).toBe(0);
  });

  test("gc__start/gc__done without a profiler: generations 0 1 2 0, in order", async () => {
    const { r, pid } = await startPython();
    running.push(r.proc);
    const p = await startProbe(["usdt", HOST_PYTHON, "python:gc__*", "--pid", String(pid), "--json"]);
    r.proc.stdin.write("go\n");
    await r.out.waitFor(/^done/);
    const { code, rows } = await stop(p);
    expect(code).toBe(0);
    const starts = rows.filter((e) => e.probe === "python:gc__start");
    expect(starts.map((e) => argsOf(e).generation)).toEqual([0, 1, 2, 0]);
    expect(rows.filter((e) => e.probe === "python:gc__done").map((e) => typeof argsOf(e).collected)).toEqual(["number", "number", "number", "number"]);
    // Each collection's start comes before its done.
    expect(rows.map((e) => e.probe.slice(-5))).toEqual(["start", "_done", "start", "_done", "start", "_done", "start", "_done"]);
    r.proc.kill();
  });

  test("--ret-pairs --summary: calls per function with latency; --ret-pairs alone: one line per call", async () => {
    for (const summary of [true, false]) {
      const { r, pid } = await startPython();
      running.push(r.proc);
      // Naming one end is enough; the README's form names both.
      const p = await startProbe(summary ? readme(3, { pid }, "-i", "60", "--json") : ["usdt", "python3", "python:function__entry", "--ret-pairs", "--pid", String(pid), "--json"]);
      expect(p.err.all.join("\n")).toContain("Tracing python:function calls");
      r.proc.stdin.write("go\n");
      await r.out.waitFor(/^done/);
      const { code, rows } = await stop(p);
      expect(code).toBe(0);
      if (summary) {
        const finals = rows.filter((x) => x.event === "calls" && x.final && argsOf(x).filename === SCRIPT);
        expect(finals.map((x) => `${argsOf(x).funcname}:${argsOf(x).lineno}=${x.calls}`).sort()).toEqual([`alpha:${defLine("alpha")}=5`, `beta:${defLine("beta")}=7`, `delta:${defLine("delta")}=3`]);
        for (const x of finals) {
          expect(x.pid).toBe(pid);
          expect(x.probe).toBe("python:function");
          expect(x.total_ns).toBeGreaterThan(0);
          expect(x.max_ns).toBeGreaterThanOrEqual(x.avg_ns);
          expect(x.avg_ns * x.calls).toBeLessThanOrEqual(x.total_ns);
        }
      } else {
        const calls = rows.filter((x) => x.event === "call" && argsOf(x).filename === SCRIPT);
        expect(tally(calls.map((x) => argsOf(x).funcname))).toEqual(tally([...Array(5).fill("alpha"), ...Array(7).fill("beta"), ...Array(3).fill("delta")]));
        for (const c of calls) {
          expect(c.latency_ns).toBeGreaterThan(0);
          // The return carries the same file and function, at the line it returns from.
          const ret = Object.fromEntries((c.return_args as Arg[]).map((a) => [a.name, a.value]));
          expect([ret.filename, ret.funcname]).toEqual([SCRIPT, argsOf(c).funcname]);
          expect(ret.lineno).toBe(defLine(argsOf(c).funcname) + 1);
        }
      }
      r.proc.kill();
    }
  });

  test("human output (the README's example), and --args typing the same probe", async () => {
    const { r, pid } = await startPython();
    running.push(r.proc);
    // `python3`: the process runs /usr/bin/python3.11, a versioned name of it.
    const p = await startProbe(readme(2, { pid }));
    expect(p.err.all.join("\n")).toContain(`in ${HOST_PYTHON}, pid ${pid} [`);
    const q = await startProbe(["usdt", HOST_PYTHON, "python:function__entry", "--pid", String(pid), "--json", "--args", "function__entry(char *file, char *func, int line)"]);
    r.proc.stdin.write("go\n");
    await r.out.waitFor(/^done/);
    const h = await stop(p);
    const j = await stop(q);
    expect(h.code).toBe(0);
    expect(h.out[0]).toMatch(/^TIME\s+PID\s+TID\s+COMM\s+PROBE/);
    const line = new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\s+${pid}\\s+${pid}\\s+python3\\.11\\s+python:function__entry filename="${SCRIPT}", funcname="alpha", lineno=${defLine("alpha")}$`);
    expect(h.out.filter((l) => line.test(l)).length).toBe(5);
    expect(j.code).toBe(0);
    const alpha = j.rows.filter((e) => argsOf(e).func === "alpha");
    expect(alpha.length).toBe(5);
    expect((alpha[0]!.args as Arg[]).map((a) => `${a.type} ${a.name}`)).toEqual(["char * file", "char * func", "int line"]);
    r.proc.kill();
  });
});

describe("probe usdt on the C fixture: every argument form, exact", () => {
  // Values from tests/fixtures/usdt/args.c and sema.c (driver.c calls args_main(1, argv)).
  const expected: Record<string, (string | number)[][]> = {
    "fx:sizes": [[-8, 250, -1234, 54321, -123456789, 3000000000, -1234567890123, "18364758544493064720"]],
    "fx:globals": [[-100, 200, -30000, 60000, -2000000000, 4000000000, "-9000000000000000000", "18000000000000000000"]],
    "fx:constants": [[5, -1, -7, 65535, "9223372036854775807", 4294967295]],
    "fx:two_sites": [[21], [42]],
    // 8@16(%rax,%rbx,8) g_arr[5]; 8@(%rdx) g_arr[1]; -1@%ch 0xf6; 1@%cl 0xaa; 2@%r8w; %r9d (4 bytes,
    // unsigned); -1@%sil 0xff; -8@%rdi; 8@g_arr+8(%rip); -4@-4(%rdx,%rbx,4) g_arr[2]; 2@%r8; -2@%dil.
    "fx:asm_forms": [[105, 101, -10, 170, 0x4444, 0x80000001, -1, -3, 101, 102, 0x4444, -3]],
    // Both sites fire only because the semaphore is raised; the second reports the semaphore itself:
    // the kernel counts once per site, and the probe has two.
    "fx:sem_enabled": [[7], [8, 2]],
    "fx:sem_second": [[9]],
  };

  for (const [variant, mode] of [["O2", "multi"], ["O0", "multi"], ["nopie", "multi"], ["O2", "perf"]] as const) {
    test(`[-${variant}, ${mode}] fx:* values, sites and semaphores`, async () => {
      const exe = cFixture(variant);
      const t = start([exe]);
      running.push(t.proc);
      const [, pidText] = await t.out.waitFor(/^ready (\d+)/);
      const pid = Number(pidText);
      const sem = semaphoreAddress(pid, exe, exe, "fx", "sem_enabled");
      expect(readU16(pid, sem)).toBe(0);
      const p = await startProbe(["usdt", exe, "fx:*", "--pid", String(pid), "--json", "--attach-mode", mode]);
      expect(readU16(pid, sem)).toBe(2); // one count per site of fx:sem_enabled
      // Every site of every probe: one uprobe_multi link, or one perf-event uprobe per site.
      const siteOffsets = runProbe(["usdt", "--list", exe, "--json"]).stdout.trim().split("\n").map((l) => Number(JSON.parse(l).offset)).sort((a, b) => a - b);
      const links = linksHeldBy(p.proc.pid!);
      expect(siteOffsets.length).toBe(10);
      if (mode === "multi") {
        expect(links.map((l) => [l.type, l.uprobe?.kind, l.uprobe?.pid])).toEqual([["uprobe_multi", "uprobe", pid]]);
        expect([...links[0]!.uprobe!.offsets].sort((a, b) => a - b)).toEqual(siteOffsets);
      } else {
        expect(links.length).toBe(10);
        expect(links.map((l) => l.uprobe!.offsets[0]!).sort((a, b) => a - b)).toEqual(siteOffsets);
      }
      t.proc.stdin.write("go\n");
      await t.out.waitFor(/^done/);
      const { code, rows } = await stop(p);
      expect(code).toBe(0);
      expect(readU16(pid, sem)).toBe(0);
      const got: Record<string, (string | number)[][]> = {};
      for (const e of rows) (got[e.probe] ??= []).push((e.args as Arg[]).map((a) => a.value as string | number));
      const ptr = got["fx:through_pointer"];
      delete got["fx:through_pointer"];
      expect(got).toEqual(expected);
      // r->values[2], arr[argc + 5], and r itself (a stack address).
      expect(ptr!.map((v) => v.slice(0, 2))).toEqual([[-33, 106]]);
      expect(BigInt(ptr![0]![2]!)).toBeGreaterThan(0x7f0000000000n);
      t.proc.stdin.write("bye\n");
      expect(await t.proc.exited).toBe(0);
    });
  }

  test("--args: a type list and a prototype with names", async () => {
    const exe = cFixture("O2");
    const t = start([exe]);
    running.push(t.proc);
    const [, pid] = await t.out.waitFor(/^ready (\d+)/);
    // Without --pid: every process running the file (only this one).
    const p = await startProbe(readme(5, { server: exe }, "--args", "uint", "--json"));
    t.proc.stdin.write("go\n");
    await t.out.waitFor(/^done/);
    const { code, rows } = await stop(p);
    expect(code).toBe(0);
    const tp = rows.find((e) => e.probe === "fx:through_pointer")!;
    expect((tp.args as Arg[]).map((a) => `${a.type}|${a.name}`)).toEqual(["int|value", "long|element", "struct rec *|r"]);
    expect(argsOf(tp).value).toBe(-33);
    expect(argsOf(tp).r).toMatch(/^0x7f[0-9a-f]+$/);
    // 'uint' types the first argument of every other probe: -8 as an unsigned byte.
    const sizes = rows.find((e) => e.probe === "fx:sizes")!;
    expect((sizes.args as Arg[])[0]).toEqual({ name: "arg0", type: "uint8_t", value: 248 });
    t.proc.stdin.write("bye\n");
  });
});

describe("probe usdt on libstdc++", () => {
  test("libstdcxx:throw: one event per exception thrown, libstdcxx:catch per catch, --summary counts", async () => {
    const exe = throwFixture();
    const n = 25;
    for (const summary of [false, true]) {
      const t = start([exe, String(n)]);
      running.push(t.proc);
      const [, pid] = await t.out.waitFor(/^ready (\d+)/);
      const p = await startProbe(summary ? ["usdt", "libstdc++", "libstdcxx:*", "--pid", pid!, "--json", "--summary", "-i", "60"] : readme(4, { pid: Number(pid) }, "--json"));
      expect(p.err.all.join("\n")).toContain(`in ${realpathSync(LIBSTDCXX)}, pid ${pid}`);
      t.proc.stdin.write("go\n");
      await t.out.waitFor(new RegExp(`^done ${n}`));
      await t.proc.exited;
      const { code, rows } = await p.proc.exited.then(async (c) => ({ code: c, rows: (await p.out.done()).map((l) => JSON.parse(l)) }));
      expect(code).toBe(0);
      if (summary) {
        // The last count row of each probe (the table printed at exit).
        const last = new Map(rows.filter((r) => r.event === "count").map((r) => [r.function, r.calls]));
        expect([...last].map(([f, c]) => `${f}=${c}`).sort()).toEqual([`libstdcxx:catch=${n}`, `libstdcxx:throw=${n}`]);
      } else {
        expect(rows.length).toBe(n);
        // Every throw is of the same type: one std::type_info, and a new exception object each time.
        expect(new Set(rows.map((r) => argsOf(r).tinfo)).size).toBe(1);
        for (const r of rows) expect(r.comm).toBe("usdt-throw");
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Stacks: the thrower's frames against gdb's backtrace at __cxa_throw (the function that fires
// libstdcxx:throw), names demangled by c++filt.

type Frame = { pc: string; function: string; demangled?: string; offset?: number; file: string; file_offset?: string };

/** gdb's frames 0..2 at __cxa_throw in the thrower (one exception): `function + offset` as `info symbol` gives it. */
function gdbFrames(exe: string): { bt: string; symbols: string[] } {
  const r = Bun.spawnSync(["gdb", "-nx", "-batch", "-ex", "set debuginfod enabled off", "-ex", "break __cxa_throw", "-ex", "run", "-ex", "bt",
    "-ex", "frame 1", "-ex", "info symbol $pc", "-ex", "frame 2", "-ex", "info symbol $pc", "-ex", "kill", "--args", exe, "1"], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  if (!out.includes("Breakpoint 1, ")) throw new Error(`gdb did not stop at __cxa_throw (apt-get install -y gdb):\n${out}\n${r.stderr}`);
  const symbols = [...out.matchAll(/^(\S.*?) \+ (\d+) in section \.text/gm)].map((m) => `${m[1]} + ${m[2]}`);
  return { bt: out, symbols };
}

function demangle(names: string[]): string[] {
  const r = Bun.spawnSync(["c++filt"], { stdin: Buffer.from(names.join("\n") + "\n"), stdout: "pipe" });
  return r.stdout.toString().trim().split("\n");
}

describe("probe usdt --stack, --stacks: who throws", () => {
  for (const mode of ["multi", "perf"] as const) {
    test(`[${mode}] libstdcxx:throw --stack (the README's example): N hits, each __cxa_throw <- thrower <- main as gdb's bt has them`, () => {
      const exe = throwerFixture();
      const n = 7;
      const r = runProbe(withOptions(readme(6, { thrower: exe }, String(n)), "--json", "--attach-mode", mode));
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("libstdcxx:throw (1 site; hits with their stacks, unwound from 16384 bytes of stack)");
      expect(r.stdout).toContain(`thrown ${n}`); // the command's own stdout
      const rows = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      expect(rows.length).toBe(n);
      const ref = gdbFrames(exe);
      expect(ref.bt).toMatch(/#1 .* in thrower \(i=0\) at .*thrower\.cc:\d+/);
      expect(ref.bt).toMatch(/#2 .* in main \(/);
      expect(ref.symbols).toEqual([expect.stringMatching(/^thrower\(int\) \+ \d+$/), expect.stringMatching(/^main \+ \d+$/)]);
      for (const e of rows) {
        expect(e.event).toBe("usdt");
        expect(e.probe).toBe("libstdcxx:throw");
        expect(e.comm).toBe("usdt-thrower");
        const stack = e.stack as Frame[];
        expect(e.stack_end).toBe("outermost");
        expect(stack[0]!.function).toBe("__cxa_throw");
        expect(realpathSync(stack[0]!.file)).toBe(realpathSync(LIBSTDCXX));
        // The thrower's frames: the same functions at the same return addresses as gdb's.
        const ours = stack.slice(1, 3);
        expect(ours.map((f) => f.file)).toEqual([exe, exe]);
        expect(demangle(ours.map((f) => f.function)).map((name, i) => `${name} + ${ours[i]!.offset}`)).toEqual(ref.symbols);
        // the symbol as it is, and its demangled name as gdb shows it
        expect(ours.map((f) => [f.function, f.demangled])).toEqual([["_Z7throweri", "thrower(int)"], ["main", undefined]]);
        expect(stack.map((f) => f.function)).toContain("__libc_start_main");
      }
    });
  }

  test("human --stack lines: the hit, then its frames indented", () => {
    const exe = throwerFixture();
    const r = runProbe(readme(6, { thrower: exe }, "2"));
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^TIME\s+PID\s+TID\s+COMM\s+PROBE/);
    const hits = lines.flatMap((l, i) => (/^\d\d:\d\d:\d\d\.\d{3}\s+\d+\s+\d+\s+usdt-thrower\s+libstdcxx:throw obj=0x[0-9a-f]+, tinfo=0x[0-9a-f]+$/.test(l) ? [i] : []));
    expect(hits.length).toBe(2);
    for (const i of hits) {
      expect(lines[i + 1]).toMatch(/^ {8}__cxa_throw\+0x[0-9a-f]+ \(libstdc\+\+\.so\.6[.\d]*\)$/);
      // the C++ frame demangled, as gdb's bt names it (the symbol is _Z7throweri)
      expect(lines[i + 2]).toMatch(/^ {8}thrower\(int\)\+0x[0-9a-f]+ \(usdt-thrower\)$/);
      expect(lines[i + 3]).toMatch(/^ {8}main\+0x[0-9a-f]+ \(usdt-thrower\)$/);
    }
  });

  test("--stacks: hits counted per probe and stack (throws from thrower, catches in main)", () => {
    const exe = throwerFixture();
    const n = 9;
    for (const unwind of ["auto", "fp"]) {
      const r = runProbe(["usdt", "libstdc++", "libstdcxx:*", "--stacks", "--unwind", unwind, "--json", "--", exe, String(n)]);
      expect(r.code).toBe(0);
      const rows = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const by = (p: string) => rows.filter((x) => x.function === p);
      // One stack per probe (every throw comes from the same place), counted n times.
      expect(by("libstdcxx:throw").map((x) => x.count)).toEqual([n]);
      expect(by("libstdcxx:catch").map((x) => x.count)).toEqual([n]);
      if (unwind === "auto") {
        expect(by("libstdcxx:throw")[0].frames.slice(0, 3).map((f: { function: string }) => f.function)).toEqual(["__cxa_throw", "_Z7throweri", "main"]);
        expect(by("libstdcxx:catch")[0].frames.slice(0, 2).map((f: { function: string }) => f.function)).toEqual(["__cxa_begin_catch", "main"]);
      } else {
        // libstdc++ keeps no frame pointers: the walk from its frame cannot be trusted, but counts can.
        expect(by("libstdcxx:throw")[0].frames[0].function).toBe("__cxa_throw");
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// --ret-pairs --hist: calls of known length (the fixture spins, and measures each call itself).

/**
 * Whether every call can be given a bucket between the one of its spin (what it lasted at least)
 * and the one of its measured length (what it lasted at most, probes included) so that the buckets'
 * counts are `counts`: intervals matched to points, earliest-ending first.
 */
function consistent(counts: number[], calls: { lo: number; hi: number }[]): boolean {
  const left = [...calls].sort((a, b) => a.hi - b.hi);
  const used = new Array(left.length).fill(false);
  for (let b = 0; b < counts.length; b++) {
    for (let k = 0; k < counts[b]!; k++) {
      const i = left.findIndex((c, j) => !used[j] && c.lo <= b && b <= c.hi);
      if (i < 0) return false;
      used[i] = true;
    }
  }
  return used.every((u) => u);
}

describe("probe usdt --ret-pairs --hist", () => {
  const cases = [
    // Spins in the middle of power-of-two buckets (1.5 x 2^k ns).
    { opts: [] as string[], spins: [[98304, 6], [786432, 4], [3145728, 3]] as const },
    { opts: ["--linear", "0,1000000,5000000", "--per-process"], spins: [[1500000, 3], [2500000, 2], [3500000, 1]] as const },
  ];
  for (const c of cases) {
    test(`lat:op ${c.opts.join(" ") || "log2"}: as many calls as made, each in a bucket between its spin and its measured length`, () => {
      const exe = pairsFixture();
      const measuredFile = join(WORK, `usdt-pairs-${process.pid}.txt`);
      const r = runProbe(["usdt", exe, "lat:op__entry", "--ret-pairs", "--hist", ...c.opts, "--json", "--", exe, measuredFile, ...c.spins.map(([ns, k]) => `${ns}:${k}`)]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("Tracing lat:op calls: lat:op__entry, lat:op__return (2 sites; latency histogram)");
      const measured = readFileSync(measuredFile, "utf8").trim().split("\n").map(Number);
      rmSync(measuredFile, { force: true });
      const spins = c.spins.flatMap(([ns, k]) => Array<number>(k).fill(ns));
      expect(measured.length).toBe(spins.length);
      const rows = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      expect(rows.length).toBe(1);
      const h = rows[0]!;
      expect([h.event, h.function, h.value, h.unit, h.final]).toEqual(["hist", "lat:op", "latency", "ns", true]);
      if (c.opts.includes("--per-process")) expect(h.comm).toBe("usdt-pairs");
      expect(h.count).toBe(spins.length);
      // Exact: each call lasted at least its spin and at most what the program measured around it.
      expect(Number(h.min)).toBeGreaterThanOrEqual(Math.min(...spins));
      expect(Number(h.max)).toBeLessThanOrEqual(Math.max(...measured));
      expect(Number(h.sum)).toBeGreaterThanOrEqual(spins.reduce((a, b) => a + b, 0));
      expect(Number(h.sum)).toBeLessThanOrEqual(measured.reduce((a, b) => a + b, 0));
      // Buckets by their bounds, computed here (log2: [2^k, 2^(k+1)) is bucket k + 2; linear: 1 ms steps from 0, bucket 0 below).
      const linear = c.opts.includes("--linear");
      const bucketOf = (ns: number) => (linear ? Math.min(Math.floor(ns / 1e6) + 1, 6) : Math.floor(Math.log2(ns)) + 2);
      const boundOf = (b: { lo: number | string | null }) => bucketOf(Number(b.lo ?? 0));
      const counts = new Array(70).fill(0);
      for (const b of h.buckets as { lo: number; hi: number; count: number }[]) counts[boundOf(b)] += b.count;
      const calls = spins.map((ns, i) => ({ lo: bucketOf(ns), hi: bucketOf(measured[i]!) }));
      expect(consistent(counts, calls)).toBe(true);
      // Where no call was stretched past its spin's bucket (spins are mid-bucket), each bucket holds exactly its spins.
      if (calls.every((x) => x.lo === x.hi)) expect(counts.filter((x) => x)).toEqual(c.spins.map(([, k]) => k));
    });
  }
});

describe("probe usdt in a namespace container", () => {
  let c: NsContainer | undefined;
  afterAll(async () => {
    await c?.stop();
  });

  test("python3 in the container's view: its own copy of python, exact calls, NSpid, the semaphore", async () => {
    const root = ensurePythonRootfs();
    const go = `/tmp/go-${process.pid}`;
    const bye = `/tmp/bye-${process.pid}`;
    for (const f of [go, bye]) rmSync(join(root, f), { force: true });
    c = await startNsContainer(["/usr/bin/python3.11", "/app/calls.py", go, bye], { root, stdout: "pipe" });
    const pid = c.pid;
    const sem = semaphoreAddress(pid, join(root, "usr/bin/python3.11"), "/usr/bin/python3.11", "python", "function__entry");
    expect(readU16(pid, sem)).toBe(0);
    const p = await startProbe(["usdt", "python3", "python:function__entry", "--pid", String(pid), "--json"]);
    expect(p.err.all.join("\n")).toContain(`in /usr/bin/python3.11, pid ${pid} (container pid 1)`);
    expect(readU16(pid, sem)).toBe(1);
    // One link, on the container's own copy of python (another inode than the host's: a uprobe on
    // the host's file would never fire in it): probe holds that file open, not the host's.
    const links = linksHeldBy(p.proc.pid!);
    expect(links.map((l) => [l.type, l.uprobe?.path])).toEqual([["uprobe_multi", "/usr/bin/python3.11"]]);
    const held = readdirSync(`/proc/${p.proc.pid}/fd`).map((fd) => {
      try {
        return statSync(`/proc/${p.proc.pid}/fd/${fd}`).ino;
      } catch {
        return 0;
      }
    });
    expect(held).toContain(statSync(join(root, "usr/bin/python3.11")).ino);
    expect(held).not.toContain(statSync(HOST_PYTHON).ino);
    writeFileSync(join(root, go), "");
    // The script prints "done" to the container's stdout; wait for its events instead.
    const deadline = Date.now() + 20000;
    while (p.out.all.filter((l) => l.includes('"funcname"')).length < 15 && Date.now() < deadline) await Bun.sleep(50);
    await Bun.sleep(300);
    const { code, rows } = await stop(p);
    expect(code).toBe(0);
    expect(readU16(pid, sem)).toBe(0);
    const ours = rows.filter((e) => argsOf(e).filename === "/app/calls.py");
    expect(tally(ours.map((e) => `${argsOf(e).funcname}:${argsOf(e).lineno}`))).toEqual(tally([
      ...Array(5).fill(`alpha:${defLine("alpha")}`), ...Array(7).fill(`beta:${defLine("beta")}`), ...Array(3).fill(`delta:${defLine("delta")}`),
    ]));
    for (const e of rows) expect(e.nspid).toEqual([pid, 1]);
    writeFileSync(join(root, bye), "");
  });
});

describe("probe usdt errors", () => {
  test("another probe at the site without the semaphore: the kernel refuses, and probe says why", async () => {
    // A plain uprobe at function__entry's own offset (no ref_ctr_offset) holds the site first.
    const site = JSON.parse(runProbe(["usdt", "--list", HOST_PYTHON, "python:function__entry", "--json"]).stdout) as { offset: string };
    const u = await startProbe(["uprobe", HOST_PYTHON, site.offset, "--force-offset"]);
    try {
      const r = runProbe(["usdt", HOST_PYTHON, "python:function__entry", "-d", "1"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`the kernel refused a uprobe at python:function__entry (offset ${site.offset} of ${HOST_PYTHON})`);
      expect(r.stderr).toContain("ref_ctr_offset mismatch");
    } finally {
      u.proc.kill("SIGINT");
      await u.proc.exited;
    }
  });

  test("unknown probe, no probes, no pair, too many types, --list without a file", () => {
    let r = runProbe(["usdt", HOST_PYTHON, "python:function_entry"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`probe: error: USDT probe python:function_entry not found in ${HOST_PYTHON}`);
    expect(r.stderr).toContain("did you mean python:function__entry");
    r = runProbe(["usdt", "/bin/true", "x:y"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/bin/true has no USDT probes");
    r = runProbe(["usdt", HOST_PYTHON, "python:audit", "--ret-pairs"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no probe of python:audit is one end of a pair");
    r = runProbe(["usdt", HOST_PYTHON, "python:gc__start", "--args", "int,int"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("python:gc__start has 1 argument, but 2 types were given");
    r = runProbe(["usdt", "--list"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--list needs a file");
  });

  test("--stack, --stacks and --hist refuse what they cannot do, as uprobe does: exit 2, before attaching", () => {
    const refusals: [string[], string][] = [
      [["--hist"], "probe: error: --hist counts the latency of calls: add --ret-pairs"],
      [["--ret-pairs", "--hist", "lineno"], "probe: error: --hist counts the latency of the calls --ret-pairs pairs: 'latency' (the default), not 'lineno'"],
      [["--ret-pairs", "--hist", "--stack"], "probe: error: --hist counts values and --stack/--stacks record stacks: choose one"],
      [["--stack", "--ret-pairs"], "probe: error: --stack shows each probe hit with its stack, --ret-pairs each call at its return: choose one"],
      [["--stacks", "--ret-pairs"], "probe: error: --stacks counts probe hits by stack: pairing adds nothing to it (no --ret-pairs)"],
      [["--stacks", "--summary"], "probe: error: --summary counts calls per process; --stacks is another report: choose one"],
      [["--stack", "--summary"], "probe: error: --summary counts calls per process; --stack is another report: choose one"],
      [["--per-process"], "probe: error: --per-process goes with --hist or --stacks"],
      [["--stack", "--stacks"], "probe: error: --stack prints each call's stack, --stacks (--folded, --flamegraph) counts calls per stack: choose one"],
      [["--unwind", "fp"], "probe: error: --unwind goes with --stack or --stacks"],
      [["--stack", "--unwind", "fp", "--stack-size", "4K"], "probe: error: --stack-size is the stack copied for --unwind cfi/auto; --unwind fp copies none"],
      [["--ret-pairs", "--hist", "--linear", "5,0,1"], "probe: error: --linear 5,0,1:"],
    ];
    for (const [opts, text] of refusals) {
      const r = runProbe(["usdt", HOST_PYTHON, "python:function__entry", ...opts]);
      expect([opts.join(" "), r.code]).toEqual([opts.join(" "), 2]);
      expect(r.stderr).toContain(text);
    }
  });
});
