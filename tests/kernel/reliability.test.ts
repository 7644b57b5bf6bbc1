// Issue 9 ("hold every promise under hostile input, faults and load"): one test per defect, on the
// built binary, with real processes: FIFOs and sparse files in namespace containers, struct_ops
// objects, 20,000 short-lived processes, SIGHUP, a stdout nobody reads, a PID handed to another
// process (ns_last_pid), reduced capabilities, an instruction uprobes refuse, a Go server under a
// user's uretprobe program, probe in a PID namespace of its own.
// PROBE_BIN=/path/to/older/probe runs the same checks against an older build (see tests/reliab-helpers.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { WORK, FIXTURES, Lines, buildC, start, type Running } from "../helpers.ts";
import { bin, probe, runCmd, startProbe, startAttached, stop, fixture, startTarget, clangBpf, eventually, rng, RAW_EXCEPTION } from "../reliab-helpers.ts";
import { startNsContainer, childPids, type NsContainer } from "../fixtures/container.ts";
import { structOpsObject } from "../fixtures/fuzz/bpf-seeds.ts";
import { put, shdrOffset, SH } from "../fixtures/fuzz/mutate.ts";
import { goBuild } from "../fixtures/go.ts";

const COUNT_SRC = readFileSync(join(FIXTURES, "reliab", "bpf", "count.bpf.c"), "utf8");
let countObj: string;
let countPrintkObj: string;

beforeAll(() => {
  countObj = clangBpf("reliab-count", COUNT_SRC);
  countPrintkObj = clangBpf("reliab-count-printk", COUNT_SRC, ["-DPRINTK"]);
});

// ---------------------------------------------------------------------------------------------
// Minimal container roots: /bin/sleep and its libraries, plus whatever a test plants in them.

const roots: string[] = [];
const containers: NsContainer[] = [];
afterAll(async () => {
  for (const c of containers) await c.stop();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function lddPaths(binary: string): string[] {
  const r = Bun.spawnSync(["ldd", binary], { stdout: "pipe" });
  return [...r.stdout.toString().matchAll(/(\/[^\s]+)/g)].map((m) => m[1]!);
}

/** A root holding /bin/sleep and its libraries; `plant` adds the hostile parts. */
function miniRoot(name: string, plant: (root: string) => void): string {
  const root = join(WORK, `reliab-root-${name}-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  for (const f of ["/bin/sleep", ...lddPaths("/bin/sleep")]) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    copyFileSync(f, join(root, f));
  }
  chmodSync(join(root, "bin/sleep"), 0o755);
  for (const d of ["proc", "dev", "tmp", "etc"]) mkdirSync(join(root, d), { recursive: true });
  plant(root);
  roots.push(root);
  return root;
}

async function sleeperIn(root: string): Promise<NsContainer> {
  const c = await startNsContainer(["/bin/sleep", "600"], { root });
  containers.push(c);
  return c;
}

function mkfifo(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const r = Bun.spawnSync(["mkfifo", path], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}

/** One clean error line (and a hint), never a runtime's own words. */
function expectCleanError(r: { code: number | null; stderr: string; timedOut?: boolean }, re: RegExp, code = 1): void {
  expect(r.timedOut ?? false).toBe(false);
  expect(r.stderr).not.toMatch(RAW_EXCEPTION);
  expect(r.stderr).toMatch(re);
  expect(r.code).toBe(code);
}

// ---------------------------------------------------------------------------------------------

describe("issue 9: hangs and crashes", () => {
  test("9.1 a FIFO as target, object or map path on the host: 'not a regular file' at once, never a hang", () => {
    const dir = join(WORK, `reliab-fifo-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkfifo(join(dir, "f"));
    mkfifo(join(dir, "app.bpf.o"));
    roots.push(dir);
    for (const args of [["uprobe", "./f", "fn"], ["uprobe", `${dir}/f`, "fn", "--list-functions"], ["load", "./app.bpf.o"]]) {
      const r = probe(args, { cwd: dir, timeoutMs: 10_000 });
      expectCleanError(r, /not a regular file/);
      expect(r.ms).toBeLessThan(5000);
    }
    // A FIFO given as a pinned map: refused by the bpf filesystem check, without opening it.
    const m = probe(["map", "dump", join(dir, "f")], { timeoutMs: 10_000 });
    expectCleanError(m, /\/f/);
  });

  test("9.1 FIFOs a container plants (its libssl at /opt/ssl and /usr/lib, its /etc/ld.so.cache): uprobe --pid, ssl-read --pid, uprobe libssl --pid refuse them within 5 s", async () => {
    const everywhere = await sleeperIn(miniRoot("fifo", (r) => {
      mkfifo(join(r, "opt/ssl/libssl.so.3"));
      mkfifo(join(r, "usr/lib/x86_64-linux-gnu/libssl.so.3"));
      mkfifo(join(r, "etc/ld.so.cache"));
    }));
    // No cache: the loader's search reaches the library directories, where the FIFO is.
    const inDir = await sleeperIn(miniRoot("fifo-dir", (r) => mkfifo(join(r, "usr/lib/x86_64-linux-gnu/libssl.so.3"))));
    const cases: [string[], RegExp][] = [
      [["uprobe", "/opt/ssl/libssl.so.3", "SSL_read", "--pid", String(everywhere.pid)], /\/opt\/ssl\/libssl\.so\.3.*not a regular file/],
      [["ssl-read", "--pid", String(everywhere.pid), "--lib", "/opt/ssl/libssl.so.3"], /\/opt\/ssl\/libssl\.so\.3.*not a regular file/],
      // Without --wait, ssl-read looks only at what the process maps (a sleeper: no TLS); with
      // --wait it probes the libssl the process's loader would load, through the planted cache.
      [["ssl-read", "--pid", String(everywhere.pid)], /no TLS found in pid \d+/],
      [["ssl-read", "--pid", String(everywhere.pid), "--wait"], /\/etc\/ld\.so\.cache.*not a regular file/],
      [["uprobe", "libssl", "SSL_read", "--pid", String(everywhere.pid)], /\/etc\/ld\.so\.cache.*not a regular file/],
      [["uprobe", "libssl", "SSL_read", "--pid", String(inDir.pid)], /libssl\.so\.3.*not a regular file/],
      [["ssl-read", "--pid", String(inDir.pid), "--wait"], /libssl\.so\.3.*not a regular file/],
    ];
    for (const [args, re] of cases) {
      const r = probe([...args, "-d", "1"], { timeoutMs: 10_000 });
      expectCleanError(r, re);
      expect(r.ms).toBeLessThan(5000);
    }
  }, 120_000);

  test("9.2 a container's 3 GiB sparse /etc/ld.so.cache (and a 3 GiB object file): one error naming the file and its size, in under 5 s and 300 MB", async () => {
    const big = 3 * 2 ** 30;
    const c = await sleeperIn(miniRoot("bigcache", (r) => {
      writeFileSync(join(r, "etc/ld.so.cache"), "");
      truncateSync(join(r, "etc/ld.so.cache"), big);
    }));
    const obj = join(WORK, `reliab-sparse-${process.pid}.bpf.o`);
    writeFileSync(obj, "");
    truncateSync(obj, big);
    try {
      for (const args of [["uprobe", "libssl", "SSL_read", "--pid", String(c.pid), "-d", "1"], ["load", obj, "-d", "1"]]) {
        const r = runCmd(["/usr/bin/time", "-f", "maxrss_kb=%M", bin(), ...args], { timeoutMs: 15_000 });
        const rss = Number(/maxrss_kb=(\d+)/.exec(r.stderr)?.[1] ?? "NaN");
        expectCleanError({ ...r, stderr: r.stderr.replace(/^Command exited.*\n/m, "") }, new RegExp(`${String(big)} bytes`));
        expect(r.stderr).toMatch(args[0] === "load" ? /reliab-sparse-\d+\.bpf\.o/ : /\/etc\/ld\.so\.cache/);
        expect(r.ms).toBeLessThan(5000);
        expect(rss).toBeLessThan(300_000);
      }
    } finally {
      rmSync(obj, { force: true });
    }
  }, 60_000);

  test("9.3 an object with a BPF_MAP_TYPE_STRUCT_OPS map is refused before libbpf sees it: exit 1, no crash", () => {
    const obj = structOpsObject("maps");
    const r = probe(["load", obj, "-d", "0.5"], { timeoutMs: 20_000 });
    expect(r.signal).toBeNull();
    expectCleanError(r, /struct_ops|STRUCT_OPS/i);
  }, 60_000);
});

describe("issue 9: silent loss", () => {
  test("9.4 20,000 short-lived processes calling the function once: --summary counts 20,000 processes and 20,000 calls", async () => {
    const forker = fixture("forker", ["-ldl"]);
    const N = 20_000;
    const p = await startAttached(["uprobe", forker, "counted_fn", "--summary", "-i", "0.5"]);
    const t = await startTarget([forker, String(N)]);
    await t.go();
    expect(Number((await t.r.out.waitFor(/^done (\d+)/, 120_000))[1])).toBe(N);
    await Bun.sleep(600);
    const r = await stop(p);
    expect(r.code).toBe(0);
    const m = /^\s+(\d+) processes, (\d+) calls/m.exec(r.stdout);
    expect(m, r.stdout.slice(-500)).not.toBeNull();
    expect(Number(m![2])).toBe(N);
    expect(Number(m![1])).toBe(N);
    expect(r.stderr).not.toMatch(/not counted/);
  }, 180_000);

  // ssl-read's stats map (bpf/ssl_read.bpf.c, read by src/commands/ssl-read.ts, both another
  // engineer's) still holds 16,384 processes and keeps exited ones: the same silent loss. This
  // test fails until it folds exited processes out as src/count-table.ts does (see the report).
  test("9.4 ssl-read: 20,000 short-lived processes reading once each are all counted (or the rest said dropped)", async () => {
    const forker = fixture("forker", ["-ldl"]);
    const libDir = join(WORK, `reliab-ssl-${process.pid}`);
    mkdirSync(libDir, { recursive: true });
    roots.push(libDir);
    // A private copy: only this test's processes run it.
    for (const l of ["libssl.so.3", "libcrypto.so.3"]) copyFileSync(`/usr/lib/x86_64-linux-gnu/${l}`, join(libDir, l));
    const N = 20_000;
    const p = await startAttached(["ssl-read", "--lib", join(libDir, "libssl.so.3"), "--json", "-i", "0.5"]);
    const t = await startTarget([forker, String(N), "ssl"], { LD_LIBRARY_PATH: libDir });
    await t.go();
    await t.r.out.waitFor(/^done/, 120_000);
    await Bun.sleep(600);
    const r = await stop(p);
    const finals = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((o) => o.final);
    const calls = finals.filter((o) => o.pid !== t.pid).reduce((s, o) => s + Number(o.calls), 0);
    const dropped = /(\d+) .*(not counted|dropped)/.exec(r.stderr);
    expect(calls + (dropped ? Number(dropped[1]) : 0)).toBe(N);
  }, 180_000);

  test("9.5 SIGHUP is handled like SIGTERM: the final report, every event already in the ring printed, exit 0", async () => {
    const calls = buildC("reliab-calls", "calls.c");
    // Events: every call the target made is printed, none lost to the exit.
    let t = await startTarget([calls, "20000"]);
    let p = await startAttached(["uprobe", calls, "target_fn", "--pid", String(t.pid)]);
    await t.go();
    await t.r.out.waitFor(/^done/);
    let r = await stop(p, "SIGHUP");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter((l) => /target_fn\(/.test(l)).length).toBe(20_000);
    // A summary: its TOTAL table.
    t = await startTarget([calls, "1000"]);
    p = await startAttached(["uprobe", calls, "target_fn", "--summary", "-i", "60", "--pid", String(t.pid)]);
    await t.go();
    await t.r.out.waitFor(/^done/);
    await Bun.sleep(100);
    r = await stop(p, "SIGHUP");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^TOTAL/m);
    expect(r.stdout).toMatch(/1 processes, 1000 calls/);
  }, 60_000);

  test("9.5 a stdout nobody reads: the loss line appears while probe runs, SIGINT still ends it, with the total", async () => {
    const calls = buildC("reliab-calls", "calls.c");
    const fifo = join(WORK, `reliab-stdout-${process.pid}.fifo`);
    rmSync(fifo, { force: true });
    mkfifo(fifo);
    // The reader end is held open and never read.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, "w");
    try {
      const proc = Bun.spawn([bin(), "uprobe", calls, "target_fn"], { stdin: "ignore", stdout: writer, stderr: "pipe" });
      const p = { proc, err: new Lines(proc.stderr) };
      await p.err.waitFor(/Tracing/, 20_000);
      const t = await startTarget([calls, "300000"]);
      await t.go();
      await t.r.out.waitFor(/^done/, 60_000);
      const lost = await p.err.waitFor(/warning: (\d+) events lost/, 10_000);
      expect(proc.exitCode).toBeNull(); // said while running
      expect(Number(lost[1])).toBeGreaterThan(0);
      proc.kill("SIGINT");
      const code = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => "hang")]);
      expect(code).toBe(0);
      const err = (await p.err.done()).join("\n");
      // The total at exit, and what could not be written said too.
      expect(err).toMatch(/warning: \d+ events lost \(ring buffer full: the reader fell behind\)$/m);
    } finally {
      closeSync(writer);
      closeSync(reader);
      rmSync(fifo, { force: true });
    }
  }, 90_000);

  test("9.5 --json: a {\"event\":\"lost\"} record in the stream while running, its counts adding up to the total", async () => {
    const calls = buildC("reliab-calls", "calls.c");
    const fifo = join(WORK, `reliab-json-${process.pid}.fifo`);
    rmSync(fifo, { force: true });
    mkfifo(fifo);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, "w");
    try {
      const proc = Bun.spawn([bin(), "uprobe", calls, "target_fn", "--json"], { stdin: "ignore", stdout: writer, stderr: "pipe" });
      closeSync(writer);
      const t = await startTarget([calls, "300000"]);
      await Bun.sleep(1500); // attached (under --json there is no "Tracing" line to wait for)
      await t.go();
      await t.r.out.waitFor(/^done/, 60_000);
      await Bun.sleep(1500); // at least one loss check while running
      // Read what is there (the backlog first), then stop probe and read the rest.
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(1 << 20);
      const readAll = async (ms: number) => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          let n = 0;
          try {
            n = readSync(reader, buf);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
          }
          if (n > 0) chunks.push(Buffer.from(buf.subarray(0, n)));
          else if (proc.exitCode !== null) return;
          else await Bun.sleep(5);
        }
      };
      await readAll(2000);
      proc.kill("SIGINT");
      await readAll(20_000);
      expect(await proc.exited).toBe(0);
      const recs = Buffer.concat(chunks).toString().split("\n").filter((l) => l.includes('"event":"lost"')).map((l) => JSON.parse(l));
      expect(recs.length).toBeGreaterThan(0);
      const running = recs.filter((x) => !x.final);
      expect(running.length).toBeGreaterThan(0);
      expect(running[0].kind).toBe("events");
      expect(recs.reduce((s, x) => s + x.count, 0)).toBe(recs.at(-1).total);
    } finally {
      closeSync(reader);
      rmSync(fifo, { force: true });
    }
  }, 90_000);

  test("9.6 PID reuse while tracing: the target exits and its PID goes to another process; probe says it exited and stops (uprobe and load)", async () => {
    const reuse = fixture("reuse_pid");
    for (const mode of ["uprobe", "load"] as const) {
      const target = start(["sleep", "600"]);
      const pid = target.proc.pid;
      const args = mode === "uprobe" ? ["uprobe", "libc", "getpid", "--pid", String(pid)] : ["load", countObj, "--pid", String(pid), "--attach", "count_calls=uprobe:libc:getpid"];
      const p = await startAttached(args);
      // Frozen while the PID changes hands, so that it cannot see the gap in between.
      p.proc.kill("SIGSTOP");
      target.proc.kill("SIGKILL");
      await target.proc.exited;
      const reuser = start([reuse, String(pid), "sleep", "600"]);
      await reuser.out.waitFor(new RegExp(`^reused ${pid}$`), 30_000);
      p.proc.kill("SIGCONT");
      const code = await Promise.race([p.proc.exited, Bun.sleep(5000).then(() => "still running")]);
      killTree(reuser);
      if (code === "still running") p.proc.kill("SIGKILL");
      expect(code).toBe(0);
      expect((await p.err.done()).join("\n")).toContain(`probe: pid ${pid} exited`);
    }
  }, 90_000);

  test("9.6 PID reuse before attaching: a process waited for (--wait) is replaced under its PID by one that maps the library: refused, never traced", async () => {
    const reuse = fixture("reuse_pid");
    const mapper = fixture("mapper", ["-ldl"]);
    const libDir = join(WORK, `reliab-late-${process.pid}`);
    rmSync(libDir, { recursive: true, force: true });
    mkdirSync(libDir, { recursive: true });
    roots.push(libDir);
    const lib = join(libDir, "libfoo.so");
    const target = start(["sleep", "600"]);
    const pid = target.proc.pid;
    const p = startProbe(["uprobe", lib, "libfoo_fn", "--pid", String(pid), "--wait"]);
    await p.err.waitFor(/waiting for/);
    p.proc.kill("SIGSTOP");
    const cc = Bun.spawnSync(["gcc", "-shared", "-fPIC", "-o", lib, join(FIXTURES, "reliab", "libfoo.c")], { stderr: "pipe" });
    expect(cc.exitCode).toBe(0);
    target.proc.kill("SIGKILL");
    await target.proc.exited;
    const reuser = start([reuse, String(pid), mapper, lib]);
    await reuser.out.waitFor(new RegExp(`^reused ${pid}$`), 30_000);
    await reuser.out.waitFor(/^mapped/);
    p.proc.kill("SIGCONT");
    const code = await Promise.race([p.proc.exited, Bun.sleep(5000).then(() => "still running")]);
    killTree(reuser);
    if (code === "still running") p.proc.kill("SIGKILL");
    const err = (await p.err.done()).join("\n");
    expect(err).not.toMatch(/Tracing libfoo_fn/);
    expect(code).toBe(1);
    expect(err).toMatch(new RegExp(`process ${pid} (exited and its PID was reused|does not exist \\(or has exited\\))`));
  }, 60_000);
  test("9.6 PID reuse while attaching: the PID changes hands between the programs' load and the attach; uprobe and load refuse, never trace the newcomer", async () => {
    const reuse = fixture("reuse_pid");
    for (const mode of ["uprobe", "load"] as const) {
      let caught = false;
      for (let attempt = 0; attempt < 8 && !caught; attempt++) {
        const target = start(["sleep", "600"]);
        const pid = target.proc.pid;
        const args = mode === "uprobe" ? ["uprobe", "libc", "getpid", "--pid", String(pid)] : ["load", countObj, "--pid", String(pid), "--attach", "count_calls=uprobe:libc:getpid"];
        const p = startProbe(args);
        // Frozen once its program is loaded and before any link exists: past the identity check
        // at the start, before the attach.
        caught = freezeBeforeAttach(p.proc.pid);
        if (caught) {
          target.proc.kill("SIGKILL");
          await target.proc.exited;
          const reuser = start([reuse, String(pid), "sleep", "600"]);
          await reuser.out.waitFor(new RegExp(`^reused ${pid}$`), 30_000);
          p.proc.kill("SIGCONT");
          const code = await Promise.race([p.proc.exited, Bun.sleep(5000).then(() => "still running")]);
          killTree(reuser);
          if (code === "still running") p.proc.kill("SIGKILL");
          const err = (await p.err.done()).join("\n");
          expect(err, `${mode}: attached to the process that took PID ${pid}`).not.toMatch(/Tracing|Loaded/);
          expect(code).toBe(1);
          expect(err).toMatch(new RegExp(`process ${pid} exited and its PID was reused`));
        } else {
          p.proc.kill("SIGKILL");
          target.proc.kill("SIGKILL");
        }
      }
      expect(caught, `${mode}: never caught probe between load and attach`).toBe(true);
    }
  }, 120_000);
});

describe("issue 9: orphans and errors", () => {
  test("9.7 load --printk leaves no process behind after SIGKILL or SIGHUP (none left reading trace_pipe)", async () => {
    const target = fixture("retvals");
    for (const sig of ["SIGKILL", "SIGHUP"] as const) {
      const p = await startAttached(["load", countPrintkObj, "--printk", "--attach", `count_calls=uprobe:${target}:ret_int_pos`]);
      const kids = childPids(p.proc.pid);
      p.proc.kill(sig);
      await p.proc.exited;
      const left = await eventually(() => kids.every((k) => !existsSync(`/proc/${k}`)) || undefined, 3000);
      // An older build's `cat trace_pipe` outlives it: end it here, it would eat other tools' lines.
      for (const k of kids) {
        try {
          process.kill(k, "SIGKILL");
        } catch {
          /* gone, as it should be */
        }
      }
      expect(left, `children of probe still alive after ${sig}: ${kids.join(", ")}`).toBe(true);
    }
  }, 60_000);

  test("9.8 durations and numbers: -d 1e12 runs, -i 1e10 -d 0.5 prints one table, '', -1 and unknown options are named as typed", async () => {
    // A long duration neither overflows the timer nor ends at once.
    const p = await startAttached(["uprobe", "libc", "getppid", "-d", "1e12"]);
    await Bun.sleep(1500);
    expect(p.proc.exitCode).toBeNull();
    const r = await stop(p);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/TimeoutOverflowWarning|Warning:/);
    // An interval longer than the run: the final table only.
    const s = probe(["uprobe", "libc", "getppid", "--summary", "-i", "1e10", "-d", "0.5"], { timeoutMs: 10_000 });
    expect(s.code).toBe(0);
    expect(s.stdout.split("\n").filter((l) => /^(TOTAL|\d\d:\d\d:\d\d)\s/.test(l)).length).toBe(1);
    expect(s.ms).toBeLessThan(5000);
    const usage: [string[], RegExp][] = [
      [["-d", ""], /-d|--duration/],
      [["-d", "-1"], /--duration .*'-1'/],
      [["-d", "abc"], /--duration .*'abc'/],
      // What the option parser would have read as a number: ' ' as 0 (until Ctrl-C), hex as 16.
      [["-d", " "], /--duration .*' '/],
      [["-d", "0x10"], /--duration .*'0x10'/],
      [["--pid", "0x10"], /--pid .*'0x10'/],
      [["-i", "0"], /--interval/],
      [["--pid", "-1"], /--pid .*'-1'/],
      [["--pid", ""], /--pid|-p/],
      [["--bogus-opt"], /'--bogus-opt'/],
    ];
    for (const [args, re] of usage) {
      const u = probe(["uprobe", "libc", "getppid", ...args], { timeoutMs: 10_000 });
      expect(u.timedOut).toBe(false);
      expect(u.code).toBe(2);
      const first = u.stderr.split("\n")[0]!;
      expect(first).toMatch(/^probe: error: /);
      expect(first).toMatch(re);
      expect(first).not.toMatch(/bogusOpt|Unknown option '-1'/);
      if (args[0] === "--pid" && args[1] === "") expect(first).not.toContain("'0'");
    }
  }, 60_000);

  test("9.9 malformed ELF targets (truncated section headers, e_shnum 65535, e_phentsize 1, .symtab entsize 3, a version section's sh_link out of range): 'probe: error: PATH: ...', never an exception's text", () => {
    const seed = new Uint8Array(readFileSync(buildC("reliab-calls", "calls.c")));
    const dir = join(WORK, `reliab-elf-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    roots.push(dir);
    const v = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const cases: [string, (b: Uint8Array) => Uint8Array][] = [
      ["truncated-shdrs", (b) => b.slice(0, Number(v(b).getBigUint64(40, true)) + 100)],
      ["shnum-65535", (b) => (put(b, 60, 2, 0xffff), b)],
      ["phentsize-1", (b) => (put(b, 54, 2, 1), b)],
      ["symtab-entsize-3", (b) => (put(b, shdrOffset(b, ".symtab") + SH.entsize, 8, 3), b)],
      ["verneed-link", (b) => (put(b, shdrOffset(b, ".gnu.version_r") + SH.link, 4, 0xfff), b)],
    ];
    for (const [name, f] of cases) {
      const path = join(dir, name);
      writeFileSync(path, f(seed.slice()), { mode: 0o755 });
      for (const args of [["uprobe", path, "target_fn", "-d", "0.2"], ["uprobe", path, "--list-functions"]]) {
        const r = probe(args, { timeoutMs: 10_000 });
        expect(r.timedOut).toBe(false);
        expect(r.stderr).not.toMatch(RAW_EXCEPTION);
        if (r.code !== 0) {
          expect(r.code).toBe(1);
          expect(r.stderr.split("\n")[0]).toStartWith(`probe: error: ${path}`);
        }
      }
    }
  }, 60_000);

  test("9.10 load failures carry libbpf's reason: unknown SEC, a map that cannot be created, a map without a type", () => {
    const cases: [string, string, RegExp][] = [
      ["badsec", `SEC("foo/bar") int prog(void *ctx) { return 0; }`, /foo\/bar/],
      ["badmap", `struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 0); __type(key, int); __type(value, int); } relbm SEC(".maps");
SEC("uprobe") int prog(void *ctx) { int k = 0; return bpf_map_lookup_elem(&relbm, &k) != 0; }`, /map 'relbm': failed to create/],
      ["notype", `struct { __uint(max_entries, 4); __type(key, int); __type(value, int); } untyped SEC(".maps");
SEC("uprobe") int prog(void *ctx) { int k = 0; return bpf_map_lookup_elem(&untyped, &k) != 0; }`, /map type isn't specified/],
    ];
    for (const [name, body, re] of cases) {
      const obj = clangBpf(`reliab-${name}`, `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n${body}\n`);
      const r = probe(["load", obj, "-d", "0.2"], { timeoutMs: 20_000 });
      expectCleanError(r, re);
      expect(r.stderr.split("\n")[0]).toMatch(re);
    }
  }, 60_000);

  test("9.11 with CAP_BPF and CAP_PERFMON only (uid nobody): list, load and map dump say which capability or file is missing", () => {
    const tp = clangBpf("reliab-tp", `#include <linux/types.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";
SEC("tracepoint/syscalls/sys_enter_getppid") int on_getppid(void *ctx) { return 0; }\n`);
    chmodSync(tp, 0o644);
    const asNobody = (args: string[]) =>
      runCmd(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=-all,+bpf,+perfmon", "--", bin(), ...args], { timeoutMs: 20_000 });
    const list = asNobody(["list"]);
    expect(list.stderr).not.toMatch(RAW_EXCEPTION);
    // It cannot list them: it says so instead of printing empty sections as if there were none.
    expect(list.stderr).toMatch(/CAP_SYS_ADMIN/);
    const load = asNobody(["load", tp, "-d", "0.2"]);
    expectCleanError(load, /permission denied .*tracing|tracefs/);
    expect(load.stderr).not.toMatch(/no tracepoint/);
    const dump = asNobody(["map", "dump", "1"]);
    expectCleanError(dump, /CAP_SYS_ADMIN/);
  }, 60_000);

  test("9.12 an instruction uprobes refuse: uprobe says so and names the next instruction; load with 1,001 --attach specs names the one function, in a short line", async () => {
    // pthread_spin_lock starts with `lock decl (%rdi)`: the kernel cannot probe it.
    const r = probe(["uprobe", "libc", "pthread_spin_lock", "-d", "0.2"], { timeoutMs: 20_000 });
    expectCleanError(r, /cannot probe the instruction at pthread_spin_lock/);
    const next = objdumpNext("/lib/x86_64-linux-gnu/libc.so.6", "pthread_spin_lock");
    expect(r.stderr).toContain(`pthread_spin_lock+0x${next.toString(16)}`);

    // The kernel checks an instruction only when it writes the breakpoint into a process that
    // maps the file: with nobody running the fixture it would accept the probe, which then never
    // fires. Refused either way, before and while the fixture runs.
    const many = fixture("many_fns");
    const specs = [...Array.from({ length: 1000 }, (_, i) => `count_calls=uprobe:${many}:fn_${String(i).padStart(3, "0")}`), `count_calls=uprobe:${many}:spin_locked`];
    const u = probe(["uprobe", many, "spin_locked", "-d", "0.2"], { timeoutMs: 20_000 });
    expectCleanError(u, /cannot probe the instruction at spin_locked/);
    for (const mapped of [false, true]) {
      const running = mapped ? start([many]) : undefined;
      if (running) await running.out.waitFor(/^ready/);
      const l = probe(["load", countObj, ...specs.flatMap((s) => ["--attach", s]), "-d", "0.2"], { timeoutMs: 60_000 });
      running?.proc.kill("SIGKILL");
      expectCleanError(l, /spin_locked/);
      const lines = l.stderr.split("\n").filter(Boolean);
      expect(lines.length).toBeLessThanOrEqual(3);
      for (const line of lines) expect(line.length).toBeLessThan(400);
      expect(l.stderr).toContain("spin_locked+0x3");
      expect(l.ms).toBeLessThan(10_000);
    }
  }, 90_000);

  test("9.13 --pid 2 (a kernel thread), offsets 0x0 and outside code, SEC names that do not attach, a magic link in a container, a closed stderr pipe", async () => {
    let r = probe(["uprobe", "libc", "getpid", "--pid", "2", "-d", "0.5"]);
    expectCleanError(r, /kernel thread.*no user space/);
    const calls = buildC("reliab-calls", "calls.c");
    r = probe(["uprobe", calls, "0x0", "-d", "0.5"]);
    expectCleanError(r, /not in an executable segment/);
    // .rodata's file offset: data, not code.
    const rodata = Number.parseInt(/\.rodata\s+PROGBITS\s+\S+\s+([0-9a-f]+)/.exec(runCmd(["readelf", "-SW", calls]).stdout)![1]!, 16);
    r = probe(["uprobe", calls, `0x${rodata.toString(16)}`, "-d", "0.5"]);
    expectCleanError(r, /not in an executable segment/);

    const tpMissing = clangBpf("reliab-tp-missing", `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\nSEC("tracepoint/syscalls/sys_enter_no_such_call") int p(void *ctx) { return 0; }\n`);
    r = probe(["load", tpMissing, "-d", "0.2"]);
    expectCleanError(r, /no tracepoint syscalls:sys_enter_no_such_call/);
    const kprobe = clangBpf("reliab-kprobe", `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\nSEC("kprobe/do_sys_openat2") int p(void *ctx) { return 0; }\n`);
    r = probe(["load", kprobe, "-d", "0.2"]);
    expect(r.stdout + r.stderr).toMatch(/kprobes are not supported/);

    const c = await sleeperIn(miniRoot("magic", (root) => symlinkSync("/proc/1/root/lib/x86_64-linux-gnu/libc.so.6", join(root, "etc/magic.so"))));
    r = probe(["uprobe", "/etc/magic.so", "getpid", "--pid", String(c.pid), "-d", "0.5"]);
    expectCleanError(r, /link probe will not follow out of its root/);
    expect(r.stderr).not.toMatch(/Too many levels of symbolic links/);

    // stderr a pipe whose reader is gone: probe still runs and writes its events.
    const out = join(WORK, `reliab-closed-stderr-${process.pid}.out`);
    const sh = runCmd(["bash", "-c", `{ "$0" uprobe libc getppid -d 1 > "$1"; echo "rc=$?" >> "$1"; } 2>&1 | true; cat "$1"`, bin(), out], { timeoutMs: 20_000 });
    rmSync(out, { force: true });
    expect(sh.stdout).toMatch(/rc=0/);
    expect(sh.stdout).toMatch(/TIME\s+PID/);
  }, 90_000);

  test("9.13 a target exiting while probe attaches: 'exited while probe was attaching', never a raw LINK_CREATE/ESRCH line (uprobe, ssl-read, load)", async () => {
    const forker = fixture("forker", ["-ldl"]);
    for (const mode of ["uprobe", "ssl-read", "load"] as const) {
      let caught = false;
      for (let attempt = 0; attempt < 8 && !caught; attempt++) {
        // A process with libssl mapped (what ssl-read --pid looks for), waiting.
        const { r: target, pid } = await startTarget([forker, "1", "ssl"]);
        const args = {
          uprobe: ["uprobe", "libc", "getpid", "--pid", String(pid)],
          "ssl-read": ["ssl-read", "--pid", String(pid)],
          load: ["load", countObj, "--pid", String(pid), "--attach", "count_calls=uprobe:libc:getpid"],
        }[mode];
        const p = startProbe(args);
        caught = freezeBeforeAttach(p.proc.pid);
        target.proc.kill("SIGKILL");
        await target.proc.exited;
        p.proc.kill("SIGCONT");
        if (!caught) {
          p.proc.kill("SIGKILL");
          continue;
        }
        const code = await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => "still running")]);
        if (code === "still running") p.proc.kill("SIGKILL");
        const err = (await p.err.done()).join("\n");
        expect(err).not.toMatch(/LINK_CREATE|ESRCH|perf_event_open|No such process/);
        expect(err).not.toMatch(RAW_EXCEPTION);
        expect(code).toBe(1);
        expect(err).toMatch(new RegExp(`process ${pid} (exited while probe was attaching|does not exist \\(or has exited\\))`));
      }
      expect(caught, `${mode}: never caught probe between load and attach`).toBe(true);
    }
  }, 120_000);
});

describe("issue 9: trials", () => {
  test("hostile container roots (12 kinds × uprobe libssl and ssl-read): a clean error or a file of the container's own, within 5 s; never a host file", async () => {
    // A host file no container has: a root that reaches it has escaped.
    const secret = join(WORK, `reliab-host-only-${process.pid}.so.3`);
    copyFileSync("/usr/lib/x86_64-linux-gnu/libssl.so.3", secret);
    roots.push(secret);
    const LIB = "usr/lib/x86_64-linux-gnu/libssl.so.3";
    const sock = (path: string) => {
      mkdirSync(dirname(path), { recursive: true });
      const r = Bun.spawnSync(["python3", "-c", `import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])`, path]);
      if (r.exitCode !== 0) throw new Error(`cannot make a socket at ${path}`);
    };
    const link = (target: string, path: string) => {
      mkdirSync(dirname(path), { recursive: true });
      symlinkSync(target, path);
    };
    const kinds: [string, (r: string) => void][] = [
      ["cache -> /dev/zero", (r) => link("/dev/zero", join(r, "etc/ld.so.cache"))],
      ["cache a directory", (r) => mkdirSync(join(r, "etc/ld.so.cache"))],
      ["cache a symlink loop", (r) => (link("/etc/b", join(r, "etc/ld.so.cache")), link("/etc/ld.so.cache", join(r, "etc/b")))],
      ["cache -> /proc/1/mem", (r) => link("/proc/1/mem", join(r, "etc/ld.so.cache"))],
      ["cache with 2^31 entries", (r) => writeFileSync(join(r, "etc/ld.so.cache"), Buffer.concat([Buffer.from("glibc-ld.so.cache1.1"), Buffer.from([0, 0, 0, 0x80]), Buffer.alloc(40)]))],
      ["libssl -> the host-only file (absolute)", (r) => link(secret, join(r, LIB))],
      ["libssl -> ../../../.. escape", (r) => link(`../../../../../../../..${secret}`, join(r, LIB))],
      ["libssl a socket", (r) => sock(join(r, LIB))],
      ["libssl a directory", (r) => mkdirSync(join(r, LIB), { recursive: true })],
      ["libssl empty", (r) => (mkdirSync(dirname(join(r, LIB)), { recursive: true }), writeFileSync(join(r, LIB), ""))],
      ["libssl 3 GiB sparse", (r) => (mkdirSync(dirname(join(r, LIB)), { recursive: true }), writeFileSync(join(r, LIB), ""), truncateSync(join(r, LIB), 3 * 2 ** 30))],
      ["libssl cut in half", (r) => {
        mkdirSync(dirname(join(r, LIB)), { recursive: true });
        const b = readFileSync("/usr/lib/x86_64-linux-gnu/libssl.so.3");
        writeFileSync(join(r, LIB), b.subarray(0, b.length >> 1));
      }],
    ];
    const tally = { roots: 0, runs: 0, cleanErrors: 0, attached: 0, hangs: 0, crashes: 0, escapes: 0 };
    const bad: string[] = [];
    for (const [i, [name, plant]] of kinds.entries()) {
      const c = await sleeperIn(miniRoot(`hostile${i}`, plant));
      tally.roots++;
      for (const args of [["uprobe", "libssl", "SSL_read", "--pid", String(c.pid), "-d", "0.3"], ["ssl-read", "--pid", String(c.pid), "-d", "0.3"]]) {
        const r = probe(args, { timeoutMs: 10_000 });
        tally.runs++;
        const what = `${name}: ${args[0]}`;
        if (r.timedOut || r.ms > 5000) (tally.hangs++, bad.push(`${what}: ${r.ms.toFixed(0)} ms`));
        if (r.signal || RAW_EXCEPTION.test(r.stderr)) (tally.crashes++, bad.push(`${what}: ${r.signal ?? r.stderr.match(RAW_EXCEPTION)![0]}`));
        // The container has no libssl of its own: anything attached came from outside its root.
        if (/Tracing/.test(r.stderr)) (tally.escapes++, bad.push(`${what}: attached: ${r.stderr.split("\n").find((l) => l.includes("Tracing"))}`));
        else if (r.code === 1 && /^probe: error: /.test(r.stderr)) tally.cleanErrors++;
        else bad.push(`${what}: exit ${r.code}: ${r.stderr.slice(0, 200)}`);
      }
      await c.stop();
    }
    console.log(`  hostile roots: ${JSON.stringify(tally)}`);
    expect(bad).toEqual([]);
  }, 180_000);

  test("malformed command lines (seeded): one 'probe: error:' line and exit 2, within 5 s each", () => {
    const random = rng(0xc0ffee);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    const commands = [["uprobe", "libc", "getpid"], ["ssl-read"], ["opensnoop"], ["tracepoint", "sched:sched_switch"], ["load", countObj]];
    const badValues: [string, string[]][] = [
      ["-d", ["", "-1", "abc", "1e400", "NaN", "Infinity", "0x10", "1e13", " "]],
      ["-i", ["", "0", "-0.5", "x", "1e13"]],
      ["--pid", ["", "-1", "0", "abc", "1.5", "99999999999", "0x10"]],
      ["--attach-mode", ["", "fast", "MULTI"]],
    ];
    const unknown = ["--bogus-opt", "--pid-", "-Z", "--dur", "--JSON", "---pid"];
    const tally = { lines: 0, usageErrors: 0, other: 0 };
    const bad: string[] = [];
    for (let i = 0; i < 100; i++) {
      const cmd = pick(commands);
      const argv = random() < 0.7 ? (() => {
        const [flag, values] = pick(badValues);
        return [...cmd, flag, pick(values)];
      })() : [...cmd, pick(unknown)];
      const r = probe(argv, { timeoutMs: 10_000 });
      tally.lines++;
      const first = r.stderr.split("\n")[0] ?? "";
      if (r.code === 2 && /^probe: error: /.test(first) && !RAW_EXCEPTION.test(r.stderr) && r.ms < 5000) tally.usageErrors++;
      else {
        tally.other++;
        bad.push(`${JSON.stringify(argv)}: exit ${r.code} in ${r.ms.toFixed(0)} ms: ${r.stderr.slice(0, 200)}${r.stdout.slice(0, 100)}`);
      }
    }
    console.log(`  malformed command lines: ${JSON.stringify(tally)}`);
    expect(bad).toEqual([]);
  }, 120_000);
});

describe("issue 9: load keeps uprobe's guarantees", () => {
  test("9.14 a uretprobe program on a Go function (a Go name): attached at its RET instructions as entry probes, the server survives", async () => {
    const server = goBuild("../reliab/goserver", "reliab-goserver");
    const proc = Bun.spawn([server], { stdout: "pipe", stderr: "pipe" });
    try {
      const port = Number((await new Lines(proc.stdout).waitFor(/^listening (\d+)/))[1]);
      const p = startProbe(["load", countObj, "--json", "--attach", `count_calls=uretprobe:${server}:main.(*Handler).ServeHTTP`, "--attach", `count_calls=uretprobe:${server}:main.recurse`, "--maps", "calls", "-i", "60"]);
      await p.out.waitFor(/"attached"/, 30_000);
      for (let i = 0; i < 20; i++) expect((await (await fetch(`http://127.0.0.1:${port}/?n=30`)).text()).trim()).toBe("61");
      expect(proc.exitCode).toBeNull();
      const r = await stop(p);
      expect(r.code).toBe(0);
      const recs = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const att = recs.filter((x) => x.attached).map((x) => x.attached);
      expect(att.length).toBe(1); // one link for the file's returns
      expect(att[0].at_returns).toBe(true);
      for (const l of att[0].links) expect(l.retprobe).toBe(false);
      expect(att[0].function).toContain("main.(*Handler).ServeHTTP");
      // 20 ServeHTTP returns and 20 × 31 recurse returns.
      const counted = JSON.stringify(recs.filter((x) => x.map === "calls" || x.entries));
      expect(counted).toContain(String(20 + 20 * 31));
    } finally {
      proc.kill("SIGKILL");
    }
  }, 120_000);

  test("9.15 load --pid with probe in a PID namespace of its own (the host's /proc): the link filters on the right process", async () => {
    const target = buildC("reliab-load_target", "load_target.c", ["-O2"]);
    const t = await startTarget([target, "50"]);
    // unshare without --mount-proc: probe's /proc is the host's, its PID namespace is not.
    const p = start(["unshare", "--pid", "--fork", "--kill-child", bin(), "load", countObj, "--json", "--pid", String(t.pid), "--attach", `count_calls=uprobe:${target}:probe_target_fn`, "--maps", "calls", "-i", "60"]);
    try {
      await p.out.waitFor(/"attached"/, 30_000);
      await t.go();
      await t.r.out.waitFor(/^done/);
      const inner = childPids(p.proc.pid)[0]!;
      process.kill(inner, "SIGINT");
      expect(await p.proc.exited).toBe(0);
      const final = (await p.out.done()).filter((l) => l.includes('"map":"calls"')).map((l) => JSON.parse(l)).at(-1);
      expect(JSON.stringify(final.entries)).toMatch(new RegExp(`^\\[\\{"key":${t.pid},"value":50\\}\\]$`));
    } finally {
      killTree(p);
      t.r.proc.kill("SIGKILL");
    }
  }, 60_000);
});

/**
 * Stops (SIGSTOP) process `pid` once it holds a BPF program fd but no link or perf event yet, and
 * says whether it did (false: it got past that point first, or never reached it within 20 s).
 */
function freezeBeforeAttach(pid: number): boolean {
  const kinds = () => {
    const out = new Set<string>();
    try {
      for (const f of readdirSync(`/proc/${pid}/fd`)) {
        try {
          out.add(readlinkSync(`/proc/${pid}/fd/${f}`));
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* not started or gone */
    }
    return out;
  };
  const inWindow = () => {
    const k = kinds();
    return k.has("anon_inode:bpf-prog") && !k.has("anon_inode:bpf_link") && !k.has("anon_inode:[perf_event]");
  };
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    if (inWindow()) {
      process.kill(pid, "SIGSTOP");
      if (inWindow()) return true;
      process.kill(pid, "SIGCONT");
      return false;
    }
    if (kinds().has("anon_inode:bpf_link")) return false;
    Bun.sleepSync(0.2);
  }
  return false;
}

/** Kills a process and its children (a reuse_pid wrapper and the process it runs). */
function killTree(r: Running): void {
  const kids = childPids(r.proc.pid);
  for (const c of [r.proc.pid, ...kids]) {
    try {
      process.kill(c, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

/** Offset of the instruction after the first of `fn` in `file`, from objdump. */
function objdumpNext(file: string, fn: string): number {
  const r = runCmd(["objdump", "-d", `--disassemble=${fn}`, file]);
  const addrs = [...r.stdout.matchAll(/^\s+([0-9a-f]+):\t/gm)].map((m) => Number.parseInt(m[1]!, 16));
  return addrs[1]! - addrs[0]!;
}
