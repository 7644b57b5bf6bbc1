// `probe opensnoop`, the built binary, against a C program that opens a known list of paths
// (tests/fixtures/opens.c: found, missing, created with O_CREAT|O_TRUNC, openat2, the open(2)
// syscall itself, a relative path, a directory opened for writing): exactly those opens, with
// their fds, errors and flags, under -p/-t/-n/-x/-u; the same program in namespace containers
// (--pid of its PID 1, --children) and in a docker container (--container); the same opens as
// strace shows (opensnoop-bpfcc where it runs); nothing left in the kernel after SIGINT.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WORK, buildC, linksHeldBy, probeBinary, runProbe, start, startProbe, type Running } from "../helpers.ts";
import { ensureRootfs, startNsContainer, type NsContainer } from "../fixtures/container.ts";
import { ensureDocker, ensureImage } from "../fixtures/docker.ts";
import { readmeExamples } from "../readme.ts";

const ROUNDS = 3;
let FIXTURE: string;
let DIR: string;

beforeAll(() => {
  probeBinary();
  FIXTURE = buildC("opens-fixture", "opens.c");
  DIR = join(WORK, "opens-dir");
  mkdirSync(DIR, { recursive: true });
  chmodSync(DIR, 0o777);
  writeFileSync(join(DIR, "exists.txt"), "hello\n");
  chmodSync(join(DIR, "exists.txt"), 0o644);
  rmSync(join(DIR, "created.txt"), { force: true });
});

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Expected {
  pid: number;
  syscall: string;
  path: string;
  flags: number;
  ret: number; // fd or -errno
}

/** The fixture, started and waiting for "go". */
async function fixture(args: string[], prefix: string[] = []): Promise<{ r: Running; pid: number }> {
  const r = start([...prefix, FIXTURE, ...args]);
  const [, pid] = await r.out.waitFor(/^ready (\d+)/);
  return { r, pid: Number(pid) };
}

/** Sends "go", waits for "done", and returns what each open returned (child lines carry the child's pid). */
async function go(f: { r: Running; pid: number }): Promise<Expected[]> {
  f.r.proc.stdin.write("go\n");
  f.r.proc.stdin.flush();
  await f.r.out.waitFor(/^done/, 20000);
  await f.r.proc.exited;
  return parseOpens(f.r.out.all, f.pid);
}

function parseOpens(lines: string[], parent: number): Expected[] {
  const out: Expected[] = [];
  let pid = parent;
  for (const l of lines) {
    const c = /^child (\d+)/.exec(l);
    if (c) pid = Number(c[1]);
    const m = /^open (\S+) (\S+) ([0-7]+) (-?\d+)$/.exec(l);
    if (m) out.push({ pid, syscall: m[1]!, path: m[2]!, flags: parseInt(m[3]!, 8), ret: Number(m[4]) });
    // After a child's block, the parent's own opens follow.
    if (m && out.filter((e) => e.pid === pid).length % 7 === 0) pid = parent;
  }
  return out;
}

/** probe after its target exited: it says so and ends by itself (no SIGINT: one arriving while it closes would kill it). */
async function ended(p: Running, pid: number): Promise<{ code: number; events: Record<string, any>[]; stderr: string }> {
  const code = await p.proc.exited;
  const lines = await p.out.done();
  const stderr = (await p.err.done()).join("\n");
  expect(stderr).toContain(`probe: pid ${pid} exited`);
  return { code, events: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr };
}

async function stop(p: Running): Promise<{ code: number; events: Record<string, any>[]; stderr: string }> {
  await Bun.sleep(300);
  p.proc.kill("SIGINT");
  const lines = await p.out.done();
  const code = await p.proc.exited;
  return { code, events: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr: (await p.err.done()).join("\n") };
}

/** The fixture's flags (octal, from its own <fcntl.h>) as strace and the lab's tools spell them. */
const FLAG_TEXT: Record<number, string> = { 0: "O_RDONLY", 1: "O_WRONLY", 0o2000000: "O_RDONLY|O_CLOEXEC", 0o1101: "O_WRONLY|O_CREAT|O_TRUNC" };
const ERRNO: Record<number, string> = { 2: "ENOENT", 21: "EISDIR" };

/** probe's events for `pids`, checked one by one against what the fixture says it did. */
function expectSame(events: Record<string, any>[], expected: Expected[], pathOf: (e: Expected) => string = (e) => e.path) {
  const pids = new Set(expected.map((e) => e.pid));
  const got = events.filter((e) => e.event === "open" && pids.has(e.pid));
  expect(got.map((e) => [e.pid, e.syscall, e.path, e.fd, e.errno])).toEqual(
    expected.map((e) => [e.pid, e.syscall, pathOf(e), e.ret >= 0 ? e.ret : -1, e.ret < 0 ? -e.ret : 0]),
  );
  got.forEach((g, i) => {
    const x = expected[i]!;
    expect(g.flags).toBe(x.flags);
    expect(g.error).toBe(x.ret < 0 ? ERRNO[-x.ret]! : null);
    expect(g.flags_text).toBe(FLAG_TEXT[x.flags]!);
    if (x.path.endsWith("/created.txt")) expect(g.mode).toBe("0640");
    else expect(g.mode).toBeUndefined();
    if (x.syscall === "openat2") expect(g.resolve).toBe("RESOLVE_NO_SYMLINKS");
    expect(g.tid).toBe(g.pid);
  });
  return got;
}

describe("opensnoop on the host", () => {
  test("-p: exactly the process's opens, with fds, errors by name, flags, mode, openat2 and open(2); probe ends with it, nothing left", async () => {
    const f = await fixture([DIR, String(ROUNDS)]);
    const p = await startProbe(["opensnoop", "-p", String(f.pid), "--json"]);
    expect(p.err.all.join("\n")).toContain(`Tracing openat, openat2, open, pid ${f.pid}. Ctrl-C to stop.`);
    // The kernel's view while running: six perf-event tracepoint links held by probe.
    const links = linksHeldBy(p.proc.pid!);
    expect(links.map((l) => [l.type, l.perfEvent?.kind, l.perfEvent?.name]).sort()).toEqual(
      ["sys_enter_open", "sys_enter_openat", "sys_enter_openat2", "sys_exit_open", "sys_exit_openat", "sys_exit_openat2"].map((n) => ["perf_event", "tracepoint", n]),
    );
    const list = runProbe(["list"]);
    for (const prog of ["snoop_openat", "snoop_openat2", "snoop_open", "snoop_exit"]) expect(list.stdout).toMatch(new RegExp(`\\btracepoint\\s+${prog}\\s`));
    expect(list.stdout).toMatch(/snoop_exit\s+tracepoint sys_exit_openat2/);
    const expected = await go(f);
    expect(expected.length).toBe(7 * ROUNDS);
    const { code, events } = await ended(p, f.pid);
    expect(code).toBe(0);
    expectSame(events, expected);
    expect(events.filter((e) => e.event === "open").every((e) => e.pid === f.pid)).toBe(true);
    // Relative paths as passed; the directory opened for writing is EISDIR.
    expect(events.filter((e) => e.path === "exists.txt").length).toBe(ROUNDS);
    expect(events.filter((e) => e.error === "EISDIR").length).toBe(ROUNDS);
    expect(linksHeldBy(p.proc.pid!)).toEqual([]);
    const left = Bun.spawnSync(["bpftool", "prog", "list"], { stdout: "pipe" }).stdout.toString();
    expect(left).not.toMatch(/snoop_/);
  });

  test("-x: failed opens only; -t: one thread; human output with ERR names, -e flags, -T, -U", async () => {
    const f = await fixture([DIR, "1", "--fork"]);
    const p = await startProbe(["opensnoop", "-t", String(f.pid), "-x", "-e", "-T", "-U"]);
    const expected = await go(f);
    expect(expected.length).toBe(14);
    const { code } = await stop(p);
    expect(code).toBe(0);
    const lines = p.out.all;
    expect(lines[0]).toMatch(/^TIME\(s\)\s+UID\s+PID\s+COMM\s+FD\s+ERR\s+FLAGS\s+PATH$/);
    const rows = lines.slice(1).filter((l) => l.trim());
    // The parent's three failures, not the child's (another thread id), not the successes.
    expect(rows.length).toBe(3);
    expect(rows[0]).toMatch(new RegExp(`^\\d+\\.\\d{3}\\s+0\\s+${f.pid}\\s+opens-fixture\\s+-1\\s+ENOENT\\s+O_RDONLY\\s+${DIR}/missing\\.txt$`));
    expect(rows[1]).toMatch(new RegExp(`^\\d+\\.\\d{3}\\s+0\\s+${f.pid}\\s+opens-fixture\\s+-1\\s+ENOENT\\s+O_RDONLY\\s+${DIR}/nodir/file\\.txt$`));
    expect(rows[2]).toMatch(new RegExp(`^\\d+\\.\\d{3}\\s+0\\s+${f.pid}\\s+opens-fixture\\s+-1\\s+EISDIR\\s+O_WRONLY\\s+${DIR}$`));
  });

  test("-n: by process name (contains), the forked child's name too; --children follows it by pid", async () => {
    const f = await fixture([DIR, "1", "--fork"]);
    const byParentName = await startProbe(["opensnoop", "-n", "fixture", "--json"]);
    const byBoth = await startProbe(["opensnoop", "-n", "opens-", "--json"]);
    const children = await startProbe(["opensnoop", "-p", String(f.pid), "--children", "--json"]);
    const expected = await go(f);
    const parentOnly = expected.filter((e) => e.pid === f.pid);
    expect(parentOnly.length).toBe(7);
    const a = await stop(byParentName);
    const b = await stop(byBoth);
    const c = await ended(children, f.pid);
    // SIGINT: exit 0, every link and program gone.
    expect([a.code, b.code]).toEqual([0, 0]);
    for (const p of [byParentName, byBoth, children]) expect(linksHeldBy(p.proc.pid!)).toEqual([]);
    expect(Bun.spawnSync(["bpftool", "prog", "list"], { stdout: "pipe" }).stdout.toString()).not.toMatch(/snoop_/);
    expectSame(a.events, parentOnly);
    expect(a.events.filter((e) => e.comm === "opens-child")).toEqual([]);
    expectSame(b.events, expected);
    expectSame(c.events, expected);
    expect(new Set(b.events.filter((e) => expected.some((x) => x.pid === e.pid)).map((e) => e.comm))).toEqual(new Set(["opens-fixture", "opens-child"]));
  });

  test("-u: one user's opens only (the fixture run as nobody beside one run as root)", async () => {
    const asRoot = await fixture([DIR, "1"]);
    const asNobody = await fixture([DIR, "1"], ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    const p = await startProbe(["opensnoop", "-u", "65534", "--json"]);
    const rootOpens = await go(asRoot);
    const nobodyOpens = await go(asNobody);
    const { events } = await stop(p);
    expect(events.every((e) => e.event !== "open" || e.uid === 65534)).toBe(true);
    expect(events.some((e) => e.pid === asRoot.pid)).toBe(false);
    expect(rootOpens.length).toBe(7);
    // As nobody, created.txt (made by root, 0640) cannot be opened for writing: EACCES.
    const got = events.filter((e) => e.pid === asNobody.pid);
    expect(got.map((e) => [e.path, e.fd >= 0 ? "fd" : e.error])).toEqual(nobodyOpens.map((x) => [x.path, x.ret >= 0 ? "fd" : { 2: "ENOENT", 13: "EACCES", 21: "EISDIR" }[-x.ret]]));
  });

  test("--resolve on the host: relative paths against the cwd", async () => {
    const f = await fixture([DIR, "1", "--linger", "1500"]);
    const p = await startProbe(["opensnoop", "-p", String(f.pid), "--resolve", "--json"]);
    f.r.proc.stdin.write("go\n");
    f.r.proc.stdin.flush();
    await f.r.out.waitFor(/^done/);
    const { events } = await stop(p);
    await f.r.proc.exited;
    const rel = events.find((e) => e.path === "exists.txt")!;
    expect(rel.host_path).toBe(join(realpathSync(DIR), "exists.txt"));
    expect(events.find((e) => e.path === `${DIR}/missing.txt`)!.host_path).toBe(`${DIR}/missing.txt`);
  });

  test("usage errors: bad --uid, --name too long, --any-process", () => {
    for (const [args, msg] of [
      [["-u", "x"], /--uid takes a whole number/],
      [["-n", "a-very-long-process-name"], /longer than a process name can be/],
      [["-t", "0"], /--tid takes a whole number from 1/],
      [["--any-process", "-p", "1"], /--any-process does not apply/],
    ] as const) {
      const r = runProbe(["opensnoop", ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});

/** strace's record of the same opens: `PID openat(AT_FDCWD, "p", FLAGS[, MODE]) = RET|-1 ENAME (...)`. */
function parseStrace(text: string): { pid: number; syscall: string; path: string; flags: string; result: string }[] {
  const out = [];
  for (const l of text.split("\n")) {
    const m = /^(\d+)\s+(openat2|openat|open)\((?:AT_FDCWD, )?"([^"]*)", (.*)\) = (-?\d+)(?: (E[A-Z0-9]+))?/.exec(l);
    if (!m) continue;
    let flags = m[4]!;
    if (m[2] === "openat2") flags = /flags=([A-Z_|]+)/.exec(flags)![1]!;
    else flags = flags.split(", ")[0]!;
    out.push({ pid: Number(m[1]), syscall: m[2]!, path: m[3]!, flags, result: m[6] ?? m[5]! });
  }
  return out;
}

describe("the lab's view: the same opens as strace (and opensnoop-bpfcc where it runs)", () => {
  test("strace -f -e trace=openat,openat2,open: every open of the process and its child, loader included", async () => {
    if (!Bun.which("strace")) throw new Error("strace is not installed (apt-get install strace): it is this test's reference");
    const p = await startProbe(["opensnoop", "-n", "opens-", "--json", "-e"]);
    const log = join(WORK, "opens.strace");
    const r = Bun.spawnSync(["strace", "-f", "-qq", "-e", "trace=openat,openat2,open", "-o", log, FIXTURE, DIR, "2", "--fork"], { stdin: Buffer.from("go\n"), stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    const { events } = await stop(p);
    const st = parseStrace(readFileSync(log, "utf8"));
    const pids = new Set(st.map((s) => s.pid));
    expect(pids.size).toBe(3); // the parent and one child per round
    const ours = events.filter((e) => e.event === "open" && pids.has(e.pid));
    // The loader's opens (ld.so.cache, libc) come first: they are in both.
    expect(st.some((s) => s.path.endsWith("libc.so.6"))).toBe(true);
    expect(ours.map((e) => [e.pid, e.syscall, e.path, e.fd >= 0 ? String(e.fd) : e.error, e.flags_text])).toEqual(
      st.map((s) => [s.pid, s.syscall, s.path, s.result, s.flags]),
    );
    console.log(`strace and probe opensnoop agree on ${st.length} opens by ${pids.size} processes`);
  });

  test("opensnoop-bpfcc: the same opens where it can run here; else why not", async () => {
    const bcc = Bun.which("opensnoop-bpfcc");
    if (!bcc) {
      console.log("opensnoop-bpfcc is not installed (apt-get install bpfcc-tools); strace is the reference");
      return;
    }
    const probeRun = Bun.spawnSync([bcc, "-d", "1"], { stdout: "pipe", stderr: "pipe", timeout: 30000 });
    const why = `${probeRun.stdout}\n${probeRun.stderr}`;
    if (probeRun.exitCode !== 0 || /Unable to find kernel headers|Failed to compile/.test(why)) {
      const reason = /Unable to find kernel headers[^\n]*/.exec(why)?.[0] ?? why.trim().split("\n").pop();
      console.log(`opensnoop-bpfcc cannot run on this kernel (${reason}); strace is the reference`);
      expect(reason).toBeTruthy();
      return;
    }
    const f = await fixture([DIR, "1"]);
    const b = start([bcc, "-p", String(f.pid), "-d", "6"]);
    await Bun.sleep(4000); // BCC compiles its program first
    const p = await startProbe(["opensnoop", "-p", String(f.pid), "--json"]);
    const expected = await go(f);
    const { events } = await stop(p);
    const bccLines = (await b.out.done()).filter((l) => new RegExp(`^\\s*${f.pid}\\s`).test(l));
    expect(bccLines.map((l) => l.trim().split(/\s+/).slice(2)).map(([fd, err, path]) => [Number(fd), Number(err), path])).toEqual(
      events.map((e) => [e.fd, e.errno, e.path]),
    );
    expect(events.length).toBe(expected.length);
  });
});

describe("opensnoop in containers", () => {
  let root: string;
  let cdir: string; // the fixture's directory as the container sees it
  let c: NsContainer | undefined;

  beforeAll(() => {
    root = ensureRootfs().root;
    const bin = join(root, "usr/local/bin");
    mkdirSync(bin, { recursive: true });
    copyFileSync(FIXTURE, join(bin, "opens-fixture"));
    chmodSync(join(bin, "opens-fixture"), 0o755);
    cdir = `/tmp/opens-${process.pid}`;
    mkdirSync(join(root, cdir), { recursive: true });
    writeFileSync(join(root, cdir, "exists.txt"), "in container\n");
    cleanups.push(() => rmSync(join(root, cdir), { recursive: true, force: true }));
  });

  afterAll(async () => {
    await c?.stop();
  });

  async function startContainer(goFile: string): Promise<NsContainer> {
    rmSync(join(root, goFile), { force: true });
    c = await startNsContainer(["/usr/local/bin/opens-fixture", cdir, "2", "--fork", "--go-file", goFile, "--linger", "1000"], { stdout: "pipe" });
    return c;
  }

  test("--pid of the container's PID 1: its opens with container PIDs and paths; --children adds the processes it starts; --resolve maps them to the host", async () => {
    const goFile = `${cdir}/go1`;
    const ct = await startContainer(goFile);
    const one = await startProbe(["opensnoop", "-p", String(ct.pid), "--json", "--resolve"]);
    const all = await startProbe(["opensnoop", "-p", String(ct.pid), "--children", "--json"]);
    expect(one.err.all.join("\n")).toContain(`pid ${ct.pid} (container pid 1)`);
    writeFileSync(join(root, goFile), "");
    const out = new (await import("../helpers.ts")).Lines(ct.proc.stdout as ReadableStream<Uint8Array>);
    await out.waitFor(/^done/, 20000);
    const [a, b] = await Promise.all([stop(one), stop(all)]);
    // The container's stdout names the child by its container PID.
    const expected = parseOpens(out.all, 1);
    expect(expected.length).toBe(28);
    const hostPid = (e: Expected) => (e.pid === 1 ? ct.pid : undefined);
    const parentEvents = a.events.filter((e) => e.event === "open");
    expect(parentEvents.map((e) => [e.nspid, e.path, e.fd >= 0 ? e.fd : -e.errno])).toEqual(
      expected.filter((e) => e.pid === 1).map((e) => [[hostPid(e), 1], e.path, e.ret]),
    );
    // --resolve: the container root is a bind mount of the rootfs directory: host paths under it.
    const realRoot = realpathSync(root);
    for (const e of parentEvents) {
      const abs = e.path.startsWith("/") ? e.path : `${cdir}/${e.path}`;
      expect(e.host_path).toBe(`${realRoot}${abs}`);
    }
    const withChildren = b.events.filter((e) => e.event === "open");
    expect(withChildren.map((e) => [e.nspid[1], e.path, e.fd >= 0 ? e.fd : -e.errno])).toEqual(expected.map((e) => [e.pid, e.path, e.ret]));
    expect(new Set(withChildren.map((e) => e.pid)).size).toBe(3);
    await ct.stop();
  });

  test("--container (docker): every process of the container, with container PIDs; the volume's paths resolved to the host", async () => {
    await ensureDocker();
    const image = ensureImage();
    const vol = join(WORK, `opens-vol-${process.pid}`);
    mkdirSync(vol, { recursive: true });
    writeFileSync(join(vol, "exists.txt"), "volume\n");
    copyFileSync(FIXTURE, join(vol, "opens-fixture"));
    chmodSync(join(vol, "opens-fixture"), 0o755);
    const name = `probe-opens-${process.pid}`;
    Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" });
    const run = Bun.spawnSync(["docker", "run", "-d", "--name", name, "-v", `${vol}:/opens`, image, "/opens/opens-fixture", "/opens", "2", "--fork", "--go-file", "/opens/go", "--linger", "1000"], { stdout: "pipe", stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    cleanups.push(() => {
      Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" });
      rmSync(vol, { recursive: true, force: true });
    });
    // The README's example, on this container, with --resolve.
    const readme = readmeExamples("`probe opensnoop`").find((e) => e.includes("--container"))!;
    const p = await startProbe([...readme.map((a) => (a === "web" ? name : a)), "--resolve"]);
    expect(p.err.all.join("\n")).toContain(`every other process of container ${name}`);
    writeFileSync(join(vol, "go"), "");
    // The container's main process exits after its opens: probe says so and ends by itself.
    expect(await p.proc.exited).toBe(0);
    const events = (await p.out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((e) => e.event === "open");
    const logs = Bun.spawnSync(["docker", "logs", name], { stdout: "pipe" }).stdout.toString().split("\n");
    const expected = parseOpens(logs, 1);
    expect(expected.length).toBe(28);
    expect(events.map((e) => [e.nspid[1], e.path, e.fd >= 0 ? e.fd : -e.errno])).toEqual(expected.map((e) => [e.pid, e.path, e.ret]));
    const realVol = realpathSync(vol);
    for (const e of events) {
      const abs = e.path.startsWith("/") ? e.path : `/opens/${e.path}`;
      if (e.host_path !== null) expect(e.host_path).toBe(abs.replace(/^\/opens/, realVol));
    }
    expect(events.filter((e) => e.host_path !== null).length).toBeGreaterThan(0);
    expect(existsSync(join(vol, "created.txt"))).toBe(true);
    // -e and -T: flags decoded, and ts in every record.
    expect(events.find((e) => e.path === "/opens/created.txt")).toMatchObject({ flags_text: "O_WRONLY|O_CREAT|O_TRUNC", mode: "0640" });
    expect(events.every((e) => typeof e.ts === "number")).toBe(true);
  });
});

describe("README examples (### `probe opensnoop`)", () => {
  const examples = readmeExamples("`probe opensnoop`");
  const sub = (args: string[], map: Record<string, string>) => args.map((a) => map[a] ?? a);

  test("the README shows the examples run here (the container one runs in the docker test above)", () => {
    expect(examples.map((e) => e.join(" "))).toEqual([
      "opensnoop",
      "opensnoop -p 1234 -x",
      "opensnoop --container web -e -T --json",
      "opensnoop -n nginx -u 33 -d 10",
    ]);
  });

  test("probe opensnoop: every open on the host, the fixture's among them", async () => {
    const f = await fixture([DIR, "1"]);
    const p = await startProbe(examples[0]!);
    await go(f);
    const { code } = await stop(p);
    expect(code).toBe(0);
    const mine = p.out.all.filter((l) => new RegExp(`^${f.pid}\\s`).test(l));
    expect(mine.length).toBe(7);
    expect(mine[1]).toMatch(new RegExp(`^${f.pid}\\s+opens-fixture\\s+-1\\s+ENOENT\\s+${DIR}/missing\\.txt$`));
  });

  test("probe opensnoop -p 1234 -x: one process, failed opens only", async () => {
    const f = await fixture([DIR, "1"]);
    const p = await startProbe(sub(examples[1]!, { "1234": String(f.pid) }));
    await go(f);
    expect((await ended(p, f.pid)).code).toBe(0);
    expect(p.out.all.slice(1).map((l) => l.split(/\s+/).slice(2, 5))).toEqual([
      ["-1", "ENOENT", `${DIR}/missing.txt`],
      ["-1", "ENOENT", `${DIR}/nodir/file.txt`],
      ["-1", "EISDIR", DIR],
    ]);
  });

  test("probe opensnoop -n nginx -u 33 -d 10: a process named nginx running as uid 33, for 10 s", async () => {
    const nginx = join(WORK, "opens-nginx", "nginx");
    mkdirSync(join(WORK, "opens-nginx"), { recursive: true });
    copyFileSync(FIXTURE, nginx);
    chmodSync(nginx, 0o755);
    const t0 = performance.now();
    const p = await startProbe(examples[3]!);
    const asRoot = start([nginx, DIR, "1"]);
    const [, rootPid] = await asRoot.out.waitFor(/^ready (\d+)/);
    const as33 = start(["setpriv", "--reuid=33", "--regid=33", "--clear-groups", nginx, DIR, "1"]);
    const [, pid33] = await as33.out.waitFor(/^ready (\d+)/);
    for (const r of [asRoot, as33]) {
      r.proc.stdin.write("go\n");
      r.proc.stdin.end();
      await r.proc.exited;
    }
    expect(await p.proc.exited).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(9500);
    const lines = (await p.out.done()).slice(1);
    // Its seven opens, after the loader's (ld.so.cache, libc: it was exec'd after probe started).
    const loader = /\/etc\/ld\.so\.cache$|\.so(\.\d+)*$/;
    const own = lines.filter((l) => l.startsWith(`${pid33} `) && !loader.test(l));
    expect(own.length).toBe(7);
    expect(own.filter((l) => /\sENOENT\s/.test(l)).map((l) => l.split(/\s+/).pop())).toEqual([`${DIR}/missing.txt`, `${DIR}/nodir/file.txt`]);

    expect(lines.every((l) => /^\d+\s+nginx\s/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${rootPid} `))).toBe(false);
  });
});
