// Every `probe ...` command line of README.md, run on the built binary with its placeholders made
// real: PIDs 6575 (a TLS server in a container: nginx in a namespace container), 1234 (a process
// that mallocs, reads its stdin, opens and exits: tests/fixtures/reliab/workload.c), 4242 and
// ./server (the Go server with main.(*Handler).ServeHTTP: tests/fixtures/reliab/goserver),
// container names nx and web (nginx in docker), app.bpf.o (the bpfman report's SSL_read app,
// tests/fixtures/bpf/ssl_count.bpf.c with SEC names), /sys/fs/bpf/myapp (a directory of this run),
// durations shortened. Where a placeholder cannot stand for what an example needs, the runner says
// what stands in for it and why. Each example gets one test asserting its exit and what it is about.
//
// The sections whose every example another test file runs with heavy fixtures of its own (USDT,
// TLS, tracepoints, opensnoop) are not run twice: RUN_ELSEWHERE names, per example, the file and
// the code in it that runs it, and a test checks that code is there and selects that example.
// An example with neither a runner here nor a file there fails, naming itself: whoever adds one to
// the README adds its runner.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { ROOT, WORK, Lines, buildC, start, testCert, type Running } from "../helpers.ts";
import { allReadmeExamples, exampleKey, readmeExamples } from "../readme.ts";
import { probe, startProbe, stop, fixture, startTarget, clangFixture, eventually, RAW_EXCEPTION, type Target } from "../reliab-helpers.ts";
import { startNginxContainer, httpsGet, type NsContainer } from "../fixtures/container.ts";
import { ensureDocker, startDockerNginx, type DockerContainer } from "../fixtures/docker.ts";
import { goBuild } from "../fixtures/go.ts";
import { kernelView } from "../../lib/kernel-view.ts";
import { unpinDir } from "../../lib/bpffs.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

// ---------------------------------------------------------------------------------------------
// The fixtures behind the placeholders, started on first use and stopped at the end.

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}

/** 6575: nginx on a private libssl, PID 1 of a namespace container. */
const tlsContainer = once(async (): Promise<NsContainer> => {
  const c = await startNginxContainer();
  cleanups.push(() => c.stop());
  return c;
});

/** nx and web: nginx in docker. */
const docker = once(async (): Promise<DockerContainer> => {
  await ensureDocker();
  const d = await startDockerNginx(`probe-readme-${process.pid}`);
  cleanups.push(() => d.stop());
  return d;
});

/** A directory of this run where `bin` is ./server. */
function asServer(bin: string, name: string): string {
  const dir = join(WORK, `readme-${name}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(bin, join(dir, "server"));
  chmodSync(join(dir, "server"), 0o755);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 4242 and ./server: the Go server, run from a directory where it is ./server. */
const goServer = once(async (): Promise<{ dir: string; pid: number; port: number }> => {
  const dir = asServer(goBuild("../reliab/goserver", "reliab-goserver"), "go");
  const proc = Bun.spawn([join(dir, "server")], { cwd: dir, stdout: "pipe", stderr: "ignore" });
  cleanups.push(() => proc.kill("SIGKILL"));
  const port = Number((await new Lines(proc.stdout).waitFor(/^listening (\d+)/))[1]);
  return { dir, pid: proc.pid, port };
});

/** The Go fixture with main.demo(n, seed int) int (tests/fixtures/go/typed), as ./server of its own directory. */
const goTypedDir = once(async () => asServer(goBuild("typed", "typed"), "gotyped"));

/** app.bpf.o: the SSL_read app with SEC("uprobe/libssl.so.3:SSL_read") names (explicit --attach overrides them). */
const appObject = once(async () => {
  const dir = join(WORK, `readme-app-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(clangFixture("reliab-ssl_count_sec", "ssl_count.bpf.c", ["-DSEC_LIBSSL"]), join(dir, "app.bpf.o"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
});

const pinDir = `/sys/fs/bpf/probe-readme-${process.pid}`;
cleanups.push(() => {
  if (existsSync(pinDir)) unpinDir(pinDir, { quiet: true });
});

/** A process of this run that prints "ready PID" and waits for lines on stdin; killed at the end. */
async function target(argv: string[], env: Record<string, string> = {}): Promise<Target> {
  const t = await startTarget(argv, env);
  cleanups.push(() => t.r.proc.kill("SIGKILL"));
  return t;
}

/** 1234: a process that mallocs, opens and calls getppid on each "go" (read from stdin), exits on "exit". */
const workload = () => target([fixture("workload")]);

async function goAndWait(t: Target): Promise<void> {
  await t.go();
  await t.r.out.waitFor(/^done/);
}

/** HTTPS requests to a container's nginx, each on its own connection. */
function requests(port: number, n: number): void {
  for (let i = 0; i < n; i++) expect(httpsGet(port, "/").ok).toBe(true);
}

/** Function symbols as readelf lists them (the reference for --list-functions and globs), with file offsets from its LOAD segments. */
function readelfFunctions(file: string): { name: string; type: string; vaddr: number; size: number; offset: number }[] {
  const text = (args: string[]) => Bun.spawnSync(["readelf", ...args, "--wide", file], { stdout: "pipe" }).stdout.toString();
  const loads = text(["-l"]).split("\n").filter((l) => /^\s+LOAD\s/.test(l)).map((l) => l.trim().split(/\s+/).slice(1, 5).map((x) => parseInt(x, 16)));
  const out = [];
  for (const line of text(["-s"]).split("\n")) {
    // Num: Value Size Type Bind Vis Ndx Name
    const f = line.trim().split(/\s+/);
    if ((f[3] !== "FUNC" && f[3] !== "IFUNC") || f[6] === "UND" || !f[7]) continue;
    const vaddr = parseInt(f[1]!, 16);
    const seg = loads.find(([, va, , filesz]) => vaddr >= va! && vaddr < va! + filesz!);
    if (vaddr === 0 || !seg) continue;
    out.push({ name: f[7].replace(/@.*$/, ""), type: f[3], vaddr, size: Number(f[2]), offset: vaddr - seg[1]! + seg[0]! });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running an example: its words with the placeholders replaced, until it ends or is stopped.

type Subst = Record<string, string>;

function substitute(argv: string[], subst: Subst): string[] {
  return argv.map((w) => {
    for (const [from, to] of Object.entries(subst)) if (w === from) return to;
    for (const [from, to] of Object.entries(subst)) if (from.startsWith("/") && w.startsWith(`${from}/`)) return to + w.slice(from.length);
    return w;
  });
}

/**
 * Starts the example, waits for it to be attached, runs `drive`, then stops it with Ctrl-C
 * (SIGINT); with `endsItself` (its process exits, or -d) it must end on its own within 10 s.
 */
async function attachedRun(
  argv: string[],
  drive: () => Promise<void> | void,
  o: { cwd?: string; ready?: RegExp; env?: Record<string, string>; endsItself?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p: Running = startProbe(argv, o.env ?? {}, o.cwd);
  try {
    await p.err.waitFor(o.ready ?? /Tracing|Ctrl-C to stop/, 30_000);
  } catch (e) {
    p.proc.kill("SIGKILL");
    throw e;
  }
  await drive();
  let r;
  if (o.endsItself) {
    const ended = await Promise.race([p.proc.exited, Bun.sleep(10_000).then(() => "running" as const)]);
    if (ended === "running") p.proc.kill("SIGKILL");
    expect(ended).not.toBe("running");
    const [out, err] = await Promise.all([p.out.done(), p.err.done()]);
    r = { code: ended === "running" ? null : ended, stdout: out.join("\n"), stderr: err.join("\n") };
  } else {
    await Bun.sleep(400);
    r = await stop(p);
  }
  expect(r.stderr).not.toMatch(RAW_EXCEPTION);
  return r;
}

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** The `TOTAL` table a `--summary` run prints at exit: calls per (pid, function). */
function summaryTotals(stdout: string): { pid: number; comm: string; function: string; calls: number }[] {
  const lines = plain(stdout).split("\n");
  const at = lines.findIndex((l) => /^TOTAL\s+PID\s+COMM\s+FUNCTION\s+CALLS/.test(l));
  expect(at).toBeGreaterThanOrEqual(0);
  return lines
    .slice(at + 1)
    .map((l) => /^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s/.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), comm: m[2]!, function: m[3]!, calls: Number(m[4]) }));
}

// ---------------------------------------------------------------------------------------------
// One runner per README command line (as written, after `probe`).

/** Runs an example: its words after `probe`, and the program it pipes into, if any. */
type Runner = (argv: string[], pipeTo?: string[]) => Promise<void>;

async function mapDump(argv: string[]): Promise<void> {
  await ensurePinnedApp();
  const pinned = kernelView().maps.find((m) => m.name === "rcount" && m.pins.includes(`${pinDir}/rcount`));
  expect(pinned).toBeDefined();
  const args = substitute(argv, { "<id>": String(pinned!.id), "/sys/fs/bpf/myapp": pinDir });
  const r = probe(args);
  expect(r.stderr).not.toMatch(RAW_EXCEPTION);
  if (args[2] === "rcount" && r.code !== 0) {
    // By name it must be the only rcount in the kernel: other tests' objects may hold one too.
    const all = kernelView().maps.filter((m) => m.name === "rcount");
    expect(all.length).toBeGreaterThan(1);
    expect(r.stderr).toMatch(/maps are named 'rcount' \(ids /);
    return;
  }
  expect(r.code).toBe(0);
  if (argv.includes("--json")) {
    const o = JSON.parse(r.stdout.split("\n")[0]!);
    expect(o.map).toBe("rcount");
    expect(o.entries.length).toBeGreaterThan(0);
  } else {
    expect(plain(r.stdout)).toMatch(/^rcount \(id \d+, hash __u32 -> __u32, [1-9]\d* entr/m);
  }
}

/** The pinned app of `load app.bpf.o --pin /sys/fs/bpf/myapp`, with SSL_read calls counted. */
async function ensurePinnedApp(): Promise<void> {
  if (existsSync(`${pinDir}/rcount`)) return;
  const dir = await appObject();
  const r = probe(["load", "app.bpf.o", "--pin", pinDir], { cwd: dir });
  expect(r.code).toBe(0);
  const { cert, key } = testCert();
  const tls = start([buildC("tls_pair", "tls_pair.c", ["-lssl", "-lcrypto"]), cert, key, "read", "3", "100"]);
  await tls.out.waitFor(/^ready/);
  tls.proc.stdin.write("go\n");
  await tls.proc.stdin.flush();
  await tls.out.waitFor(/^done/);
  await tls.proc.exited;
}

/**
 * For `list`: the pinned app (held by its pins) and a running `probe uprobe libc malloc --ret`
 * (held by that process), so the kernel holds uprobes of both kinds whatever else runs.
 */
async function withKnownUprobes(check: (held: { pid: number; traced: number; malloc: number; libssl: RegExp }) => void): Promise<void> {
  await ensurePinnedApp();
  const t = await workload();
  const p = startProbe(["uprobe", "libc", "malloc", "--ret", "--pid", String(t.pid)]);
  try {
    await p.err.waitFor(/Tracing/, 30_000);
    const malloc = readelfFunctions(LIBC).find((f) => f.name === "malloc")!.offset;
    check({ pid: p.proc.pid, traced: t.pid, malloc, libssl: /^\/(usr\/)?lib\/x86_64-linux-gnu\/libssl\.so\.3$/ });
  } finally {
    expect((await stop(p)).code).toBe(0);
  }
}

const RUNNERS: Record<string, Runner> = {
  "uprobe libc ssize_t read(int fd, void *buf[ret], size_t count) --ret --pid 1234": async (argv) => {
    const t = await workload();
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), async () => {
      // The workload is blocked in read(0, ...) when the probes attach: that call's entry was not
      // seen, so its return is not either. The next one, entered while attached, is seen whole.
      await goAndWait(t);
      await goAndWait(t);
    });
    expect(r.code).toBe(0);
    const out = r.stdout.split("\n");
    expect(out.filter((l) => / read\(/.test(l)).every((l) => new RegExp(`^\\S+\\s+${t.pid}\\s+${t.pid}\\s+reliab-workload\\s+read\\(fd=0, buf=0x[0-9a-f]+, count=\\d+\\)$`).test(l))).toBe(true);
    // The buffer at the return: what was written to its stdin, 3 bytes.
    expect(out.filter((l) => / read returned /.test(l)).map((l) => / read returned (.*) in [\d.]+ (ns|µs|ms|s)$/.exec(l)?.[1])).toEqual(['ret=3, buf="go\\n"']);
  },

  "uprobe /bin/bash readline --ret=str --pid 4242": async (argv) => {
    // 4242 is an interactive bash here (the Go server has no readline): bash reads its commands
    // with readline only on a terminal, which script(1) gives it.
    // `exec`: script runs the command with $SHELL -c (or /bin/sh where SHELL is unset, as in CI),
    // and dash would keep itself between script and bash.
    const sh = start(["script", "-qfec", "exec bash --norc --noprofile -i", "/dev/null"], { PS1: "$ ", TERM: "dumb" });
    cleanups.push(() => sh.proc.kill("SIGKILL"));
    let bash = 0;
    for (let i = 0; i < 100 && !bash; i++) {
      await Bun.sleep(50);
      bash = Number(Bun.spawnSync(["pgrep", "-P", String(sh.proc.pid), "-x", "bash"], { stdout: "pipe" }).stdout.toString().split("\n")[0]) || 0;
    }
    expect(bash).toBeGreaterThan(0);
    const lines = ["true warm-up", "echo readme-line-one", "true readme-line-two", "exit"];
    const r = await attachedRun(substitute(argv, { "4242": String(bash) }), async () => {
      for (const l of lines) {
        sh.proc.stdin.write(`${l}\n`);
        await sh.proc.stdin.flush();
        await Bun.sleep(150);
      }
      await sh.proc.exited;
    }, { endsItself: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`probe: pid ${bash} exited`);
    // The readline bash was blocked in when the probes attached has no return (its entry was not
    // seen); every later line comes back as text.
    const typed = [...r.stdout.matchAll(/\sbash\s+readline returned "((?:[^"\\]|\\.)*)" in /g)].map((m) => m[1]);
    expect(typed.filter((l) => l !== lines[0])).toEqual(lines.slice(1));
  },

  "uprobe libc int openat(int dirfd, const char *path, int flags, ...) --pid 1234": async (argv) => {
    // 1234 is tests/fixtures/typed.c here: the workload opens with open(), which glibc makes the
    // openat system call without calling openat(); typed.c calls openat() on a list of paths and
    // prints what each returned.
    const paths = join(WORK, `readme-paths-${process.pid}`);
    writeFileSync(paths, "/etc/hostname\n/nonexistent/probe-readme\n");
    cleanups.push(() => rmSync(paths, { force: true }));
    const t = await target([buildC("typed", "typed.c"), paths]);
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), () => goAndWait(t), { endsItself: true });
    expect(r.code).toBe(0);
    const said = t.r.out.all.filter((l) => l.startsWith("openat ")).map((l) => l.split(" "));
    expect(said.map((s) => s[1])).toEqual(["/etc/hostname", "/nonexistent/probe-readme"]);
    // AT_FDCWD sign-extended, the path as text, the flags the program passed.
    const calls = r.stdout.split("\n").filter((l) => / openat\(/.test(l)).map((l) => / (openat\(.*\))$/.exec(l)![1]);
    expect(calls).toEqual(said.map((s) => `openat(dirfd=-100, path="${s[1]}", flags=${s[2]})`));
  },

  "uprobe libc malloc free calloc --summary --pid 1234": async (argv) => {
    const t = await workload();
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), async () => {
      await goAndWait(t);
      await goAndWait(t);
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Tracing 3 functions of \S+\/libc\.so\.6, pid \d+/);
    // Each "go": ten mallocs and ten frees, no calloc.
    expect(summaryTotals(r.stdout)).toEqual([
      { pid: t.pid, comm: "reliab-workload", function: "malloc", calls: 20 },
      { pid: t.pid, comm: "reliab-workload", function: "free", calls: 20 },
    ]);
  },

  "uprobe libc str* mem* --summary -d 5 --pid 1234": async (argv) => {
    // 1234 is tests/fixtures/readme/strmem.c here: the workload's only str/mem call is strncmp, an
    // IFUNC, whose symbol is the resolver that globs leave out. strmem.c calls strdup and memmem
    // (FUNC symbols) and strlen (an IFUNC: not counted).
    const t = await target([buildC("readme-strmem", "readme/strmem.c")]);
    const t0 = performance.now();
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), async () => {
      await goAndWait(t);
      await goAndWait(t);
    }, { endsItself: true });
    expect(r.code).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(4500); // -d 5
    // Every FUNC symbol the globs match (readelf's), one name per address (aliases such as
    // strtol/strtoll/strtoq are one function, counted once), in one link.
    const matched = readelfFunctions(LIBC).filter((f) => f.type === "FUNC" && /^(str|mem)/.test(f.name));
    const names = new Set(matched.map((f) => f.name));
    const addresses = new Set(matched.map((f) => f.offset));
    expect(r.stderr).toMatch(new RegExp(`Tracing ${addresses.size} functions of \\S+/libc\\.so\\.6, pid ${t.pid} \\[uprobe_multi\\]`));
    expect(r.stderr).toContain(`left out ${names.size - addresses.size} aliases of functions already probed: `);
    expect(summaryTotals(r.stdout)).toEqual([
      { pid: t.pid, comm: "readme-strmem", function: "strdup", calls: 10 },
      { pid: t.pid, comm: "readme-strmem", function: "memmem", calls: 4 },
    ]);
  },

  "uprobe ./server func main.demo(n int, seed int) int --ret --pid 4242": async (argv) => {
    // ./server and 4242 are the typed Go fixture here (tests/fixtures/go/typed, which has
    // main.demo; the README's server does not), as ./server of its own directory.
    const dir = await goTypedDir();
    const t = await target([join(dir, "server")]);
    const r = await attachedRun(substitute(argv, { "4242": String(t.pid) }), () => goAndWait(t), { cwd: dir, endsItself: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/returns probed at \d+ RET instructions?, not with a uretprobe/);
    // The program printed demo(64, 1) = 65 itself.
    expect(t.r.out.all[1]).toBe("65");
    expect(r.stdout).toMatch(/\sserver\s+main\.demo\(n=64, seed=1\)$/m);
    expect(r.stdout).toMatch(/\sserver\s+main\.demo returned 65 in [\d.]+ (ns|µs|ms)$/m);
  },

  "uprobe libc getenv --ret=str -- env -i FOO=1 /bin/sh -c true": async (argv) => {
    // env reads LC_ALL in setlocale before it clears the environment: the value comes back.
    const r = probe(argv, { env: { LC_ALL: "probe-readme-locale" } });
    expect(r.code).toBe(0); // the command's status
    const pid = /, command env -i FOO=1 \/bin\/sh -c true \(pid (\d+)\)/.exec(r.stderr)?.[1];
    expect(pid).toBeDefined();
    const rows = r.stdout.split("\n").slice(1).filter(Boolean);
    expect(rows.every((l) => new RegExp(`^\\S+\\s+${pid}\\s+${pid}\\s+env\\s+getenv`).test(l))).toBe(true);
    // The argument from libc's debug info, the return typed by --ret=str.
    // A name in a page of libc not yet touched reads as <fault 0x...> (a BPF program cannot page
    // it in; bpftrace prints "" there): still a call.
    const calls = rows.filter((l) => /getenv\(name=(?:"[^"]*"|<fault 0x[0-9a-f]+>)\)$/.test(l));
    expect(calls.some((l) => l.endsWith('getenv(name="LC_ALL")'))).toBe(true);
    const rets = rows.map((l) => /getenv returned (.*) in [\d.]+ (ns|µs|ms)$/.exec(l)?.[1]).filter((x) => x !== undefined);
    expect(calls.length).toBe(rets.length);
    expect(rets).toContain('"probe-readme-locale"');
    expect(rets.every((x) => x === "NULL" || x === '"probe-readme-locale"')).toBe(true);
  },

  "uprobe libc --list-functions mallo*": async (argv) => {
    const r = probe(argv);
    expect(r.code).toBe(0);
    const rows = plain(r.stdout).split("\n").filter(Boolean).map((l) => /^(0x[0-9a-f]+)\s+(\d+)\s+(\S+)(?:\s{2}(.*))?$/.exec(l)!);
    const ref = readelfFunctions(LIBC).filter((f) => f.name.startsWith("mallo"));
    expect(rows.map((m) => m[3]).sort()).toEqual([...new Set(ref.map((f) => f.name))].sort());
    for (const m of rows) {
      const f = ref.find((x) => x.name === m[3])!;
      expect([m[3], Number(m[1]), Number(m[2])]).toEqual([f.name, f.offset, f.size]);
    }
    // Signatures from Debian's libc6-dbg, found by build-id.
    if (!rows.every((m) => m[4])) throw new Error(`no signatures in 'probe ${argv.join(" ")}': is libc6-dbg installed? (apt-get install -y libc6-dbg)\n${r.stdout}`);
    expect(rows.find((m) => m[3] === "malloc")![4]).toBe("void *__libc_malloc(size_t bytes)");
  },

  "uprobe ./server main.(*Handler).ServeHTTP --ret": async (argv) => {
    const g = await goServer();
    const r = await attachedRun(argv, async () => {
      for (let i = 0; i < 3; i++) expect((await (await fetch(`http://127.0.0.1:${g.port}/?n=5`)).text()).trim()).toBe("11");
    }, { cwd: g.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/returns probed at \d+ RET instructions?, not with a uretprobe/);
    expect(r.stdout.match(/main\.\(\*Handler\)\.ServeHTTP returned/g)?.length).toBe(3);
    expect(existsSync(`/proc/${g.pid}`)).toBe(true);
  },

  "load app.bpf.o --container nx --maps rcount": async (argv) => {
    const d = await docker();
    const dir = await appObject();
    const r = await attachedRun(substitute(argv, { nx: d.name }), () => requests(d.port, 3), { cwd: dir });
    expect(r.code).toBe(0);
    expect(plain(r.stdout)).toMatch(/attached entry_ssl_read\s+uprobe\s+\/opt\/ssl\/libssl\.so\.3 SSL_read/);
    expect(plain(r.stdout)).toMatch(/^final rcount \(id \d+, hash __u32 -> __u32, [1-9]\d* entr/m);
  },

  list: async (argv) => {
    await withKnownUprobes(({ pid, traced, malloc, libssl }) => {
      const r = probe(argv);
      expect(r.code).toBe(0);
      const out = plain(r.stdout);
      for (const h of ["PROGRAMS", "MAPS", "LINKS", "PERF EVENTS WITH BPF"]) expect(out).toMatch(new RegExp(`^${h} \\(\\d+\\)`, "m"));
      // ID TYPE PROG-ID PROG-NAME  KIND FILE OFFSETS [pid N]  HELD-BY
      const links = out.split("\n").map((l) => /^\s+\d+\s+(?:uprobe_multi|perf_event)\s+\d+ \S+\s+(uprobe|uretprobe) (\S+) (\S+)(?: pid (\d+))?\s+(.*)$/.exec(l)).filter((m) => m !== null);
      const mine = links.filter((m) => m[5] === `probe[${pid}]`).map((m) => [m[1], m[2]!.replace(/^\/usr/, ""), m[3], Number(m[4])]);
      const at = `0x${malloc.toString(16)}`;
      expect(mine.sort()).toEqual([["uprobe", LIBC, at, traced], ["uretprobe", LIBC, at, traced]]);
      const pinned = links.filter((m) => m[5]!.startsWith(`pinned ${pinDir}/links/`));
      expect(pinned.map((m) => m[1]).sort()).toEqual(["uprobe", "uretprobe"]);
      expect(pinned.every((m) => libssl.test(m[2]!))).toBe(true);
      expect(out).toMatch(new RegExp(`^\\s+\\d+\\s+hash\\s+rcount\\s+4\\s+4\\s+1024\\s+pinned ${pinDir}/rcount$`, "m"));
    });
  },

  "list --json": async (argv) => {
    await withKnownUprobes(({ pid, traced, malloc, libssl }) => {
      const r = probe(argv);
      expect(r.code).toBe(0);
      const recs = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const links = recs.filter((x) => x.kind === "link" && x.probe);
      const mine = links.filter((x) => x.holders.some((h: { pid: number }) => h.pid === pid));
      expect(mine.map((x) => [x.probe, x.path.replace(/^\/usr/, ""), x.offsets, x.pid]).sort()).toEqual([["uprobe", LIBC, [malloc], traced], ["uretprobe", LIBC, [malloc], traced]]);
      const pinned = links.filter((x) => x.pins.some((p: string) => p.startsWith(`${pinDir}/links/`)));
      expect(pinned.map((x) => x.probe).sort()).toEqual(["uprobe", "uretprobe"]);
      expect(pinned.every((x) => libssl.test(x.path))).toBe(true);
      expect(recs.filter((x) => x.kind === "map" && x.pins.includes(`${pinDir}/rcount`)).map((x) => [x.name, x.type, x.key_size, x.value_size])).toEqual([["rcount", "hash", 4, 4]]);
      expect(recs.filter((x) => x.kind === "prog" && x.pins.some((p: string) => p.startsWith(`${pinDir}/progs/`))).map((x) => x.name).sort()).toEqual(["entry_ssl_read", "ret_ssl_read"]);
    });
  },

  "ssl-read --container nx": async (argv) => {
    const d = await docker();
    const r = await attachedRun(substitute(argv, { nx: d.name }), () => requests(d.port, 3));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Tracing SSL_read, SSL_read_ex in \/opt\/ssl\/libssl\.so\.3, pid \d+ \(container pid 1\) and every other process of container/);
    expect(plain(r.stdout)).toMatch(/^\s+\d+\s+1\s+nginx\s+[1-9]\d*\s/m);
  },

  "uprobe libssl SSL_write --ret --pid 6575": async (argv) => {
    const c = await tlsContainer();
    const r = await attachedRun(substitute(argv, { "6575": String(c.pid) }), () => requests(c.port!, 2));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/in \/opt\/ssl\/libssl\.so\.3/);
    expect(r.stdout).toMatch(/SSL_write returned [1-9]\d*/);
  },

  "uprobe /usr/sbin/nginx ngx_http_process_request --container nx": async (argv) => {
    const d = await docker();
    const r = await attachedRun(substitute(argv, { nx: d.name }), () => requests(d.port, 2));
    expect(r.code).toBe(0);
    expect(r.stdout.match(/nginx\s+ngx_http_process_request\(/g)?.length).toBe(2);
  },

  "uprobe ./server main.recurse --ret": async (argv) => {
    const g = await goServer();
    const r = await attachedRun(argv, async () => {
      expect((await (await fetch(`http://127.0.0.1:${g.port}/?n=3`)).text()).trim()).toBe("7");
    }, { cwd: g.dir });
    expect(r.code).toBe(0);
    // recurse(3) .. recurse(0): four calls, four returns (2n+1 each).
    expect(r.stdout.match(/main\.recurse\(/g)?.length).toBe(4);
    expect([...r.stdout.matchAll(/main\.recurse returned (?:ret=)?(\d+)/g)].map((m) => Number(m[1]))).toEqual([1, 3, 5, 7]);
  },

  "uprobe ./server main.(*Handler).ServeHTTP --pid 4242 --json": async (argv) => {
    const g = await goServer();
    const r = await attachedRun(substitute(argv, { "4242": String(g.pid) }), async () => {
      await (await fetch(`http://127.0.0.1:${g.port}/?n=1`)).text();
    }, { cwd: g.dir });
    expect(r.code).toBe(0);
    const calls = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((x) => x.event === "call");
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0].function).toBe("main.(*Handler).ServeHTTP");
    expect(calls[0].pid).toBe(g.pid);
  },

  "uprobe ./server --list-functions (*conn).serve": async (argv) => {
    const g = await goServer();
    const r = probe(argv, { cwd: g.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\.\/server: Go go1\.\d+(\.\d+)?, register ABI$/m);
    // Every function whose name contains it (a Go receiver, not a glob), at the offset readelf's
    // symbol gives; the size runs to the next function (.gopclntab), alignment padding included.
    const rows = plain(r.stdout).split("\n").filter(Boolean).map((l) => /^(0x[0-9a-f]+)\s+(\d+)\s+(\S+)(?:\s{2}(.*))?$/.exec(l)!);
    const ref = readelfFunctions(join(g.dir, "server")).filter((f) => f.name.includes("(*conn).serve"));
    expect(rows.map((m) => m[3])).toEqual(ref.map((f) => f.name).sort());
    for (const m of rows) {
      const f = ref.find((x) => x.name === m[3])!;
      expect(Number(m[1])).toBe(f.offset);
      expect(Number(m[2])).toBeGreaterThanOrEqual(f.size);
      expect(Number(m[2])).toBeLessThan(f.size + 32);
    }
    // The signature from the binary's DWARF: Go's `func (c *conn) serve(ctx context.Context)`.
    expect(rows.find((m) => m[3] === "net/http.(*conn).serve")![4]).toBe("func net/http.(*conn).serve(c *net/http.conn, ctx context.Context)");
  },

  "load app.bpf.o --pid 6575 --attach entry_ssl_read=uprobe:libssl:SSL_read --attach ret_ssl_read=uretprobe:libssl:SSL_read --maps rcount -i 1": async (argv) => {
    const c = await tlsContainer();
    const dir = await appObject();
    const r = await attachedRun(substitute(argv, { "6575": String(c.pid) }), async () => {
      requests(c.port!, 2);
      await Bun.sleep(1200); // one interval's print
    }, { cwd: dir });
    expect(r.code).toBe(0);
    const out = plain(r.stdout);
    expect(out).toMatch(/attached entry_ssl_read\s+uprobe\s+\/opt\/ssl\/libssl\.so\.3 SSL_read/);
    expect(out).toMatch(/attached ret_ssl_read\s+uretprobe\s+\/opt\/ssl\/libssl\.so\.3 SSL_read/);
    expect(out).toMatch(/^\d\d:\d\d:\d\d rcount /m); // every interval
    expect(out).toMatch(new RegExp(`^\\s+${c.pid} \\(0x[0-9a-f]+\\)\\s+[1-9]`, "m")); // calls of the nginx process
    expect(out).toMatch(/^\s+3200174846 \(0xbebecafe\)\s+[1-9]/m); // returns
  },

  "load app.bpf.o --container nx": async (argv) => {
    const d = await docker();
    const dir = await appObject();
    const r = await attachedRun(substitute(argv, { nx: d.name }), () => requests(d.port, 1), { cwd: dir });
    expect(r.code).toBe(0);
    expect(plain(r.stdout)).toMatch(/attached entry_ssl_read\s+uprobe\s+\/opt\/ssl\/libssl\.so\.3 SSL_read .*\[SEC; link \d+ uprobe_multi\]/);
    expect(plain(r.stdout)).toMatch(/attached ret_ssl_read\s+uretprobe\s+\/opt\/ssl\/libssl\.so\.3/);
  },

  "load app.bpf.o --pin /sys/fs/bpf/myapp": async (argv) => {
    if (existsSync(pinDir)) unpinDir(pinDir, { quiet: true });
    const dir = await appObject();
    const r = probe(substitute(argv, { "/sys/fs/bpf/myapp": pinDir }), { cwd: dir });
    expect(r.code).toBe(0);
    expect(plain(r.stdout)).toContain(`pinned ${pinDir}/rcount`);
    expect(plain(r.stdout)).toContain(`Stays attached after probe exits; remove with: probe unload ${pinDir}`);
    expect(kernelView().links.some((l) => l.pins.some((p) => p.startsWith(`${pinDir}/links/`)))).toBe(true);
  },

  "unload /sys/fs/bpf/myapp": async (argv) => {
    await ensurePinnedApp();
    const r = probe(substitute(argv, { "/sys/fs/bpf/myapp": pinDir }));
    expect(r.code).toBe(0);
    expect(existsSync(pinDir)).toBe(false);
    expect(await eventually(() => !kernelView().links.some((l) => l.pins.some((p) => p.startsWith(pinDir))) || undefined)).toBe(true);
  },

  "map dump rcount": mapDump,
  "map dump <id>": mapDump,
  "map dump /sys/fs/bpf/myapp/rcount": mapDump,
  "map dump rcount --json": mapDump,
  "map dump <id> --json": mapDump,
  "map dump /sys/fs/bpf/myapp/rcount --json": mapDump,
};

// ---------------------------------------------------------------------------------------------
// Sections another test file runs, every example: per example, the file and the code in it that
// runs it (whitespace aside, as written there). The code selects the example from
// `readmeExamples(...)` by index (`LIST[i]`, or a helper `NAME(i` that returns
// `readmeExamples(...)[i]`) or by `.find((e) => e.includes("X"))` / `.find((e) => e.length === N)`;
// `runElsewhere` evaluates that selection against the README and checks it is this example.

const TLS_CONTAINERS = "tests/kernel/tls-containers.test.ts";
const TLS_READ = "tests/kernel/tls-read.test.ts";
const USDT = "tests/kernel/usdt.test.ts";
const TRACEPOINT = "tests/kernel/tracepoint.test.ts";
const OPENSNOOP = "tests/kernel/opensnoop.test.ts";
const HIST = "tests/kernel/hist-readme.test.ts";
const FLEET = "tests/kernel/fleet-metrics.test.ts";

interface RunBy {
  file: string;
  code: string;
}

const RUN_ELSEWHERE: Record<string, Record<string, RunBy>> = {
  "`probe ssl-read`": {
    "ssl-read --pid 6575": { file: TLS_CONTAINERS, code: 'startProbe(sub(READ[0]!, { "6575": String(nginx.pid) }))' },
    "ssl-read --container web --json": { file: TLS_CONTAINERS, code: "startProbe(sub(READ[1]!, { web: d.name }))" },
    "ssl-read -d 10": { file: TLS_READ, code: 'startProbe(readmeExamples("`probe ssl-read`").find((e) => e.includes("-d"))!)' },
  },
  "`probe sslsniff`": {
    "sslsniff --pid 6575": { file: TLS_CONTAINERS, code: 'startProbe(sub(SNIFF[0]!, { "6575": String(nginx.pid) }))' },
    "sslsniff --container web --hexdump --max-bytes 1M": { file: TLS_CONTAINERS, code: "startProbe(sub(SNIFF[1]!, { web: d.name }))" },
    "sslsniff -c web --json | jq .": {
      file: TLS_CONTAINERS,
      code: 'const words = sub(SNIFF[2]!, { web: d.name }); const bar = words.indexOf("|"); const sh = Bun.spawn(["sh", "-c", `${probeBinary()} ${words.slice(0, bar).join(" ")} 2>${errFile} | ${words.slice(bar + 1).join(" ")}`]',
    },
    sslsniff: { file: TLS_READ, code: 'startProbe(readmeExamples("`probe sslsniff`").find((e) => e.length === 1)!)' },
  },
  "`probe opensnoop`": {
    opensnoop: { file: OPENSNOOP, code: "startProbe(examples[0]!)" },
    "opensnoop -p 1234 -x": { file: OPENSNOOP, code: 'startProbe(sub(examples[1]!, { "1234": String(f.pid) }))' },
    // With --resolve added (the test checks the host paths it gives too).
    "opensnoop --container web -e -T --json": {
      file: OPENSNOOP,
      code: 'const readme = readmeExamples("`probe opensnoop`").find((e) => e.includes("--container"))!; const p = await startProbe([...readme.map((a) => (a === "web" ? name : a)), "--resolve"]);',
    },
    "opensnoop -n nginx -u 33 -d 10": { file: OPENSNOOP, code: "startProbe(examples[3]!)" },
  },
  "`probe tracepoint CAT:NAME`": {
    "tracepoint syscalls:sys_enter_execve": { file: TRACEPOINT, code: "startProbe(examples[0]!)" },
    "tracepoint sched:sched_process_exit -p 1234 --json": { file: TRACEPOINT, code: 'startProbe(examples[1]!.map((a) => (a === "1234" ? String(f.pid) : a)))' },
    "tracepoint --list syscalls:*open*": { file: TRACEPOINT, code: "runProbe(examples[2]!)" },
  },
  // Through the file's example(), which substitutes the PID and output files and calls startProbe.
  "Histograms, stacks, flame graphs": {
    "uprobe libssl SSL_read --hist -d 10 --pid 6575": { file: HIST, code: "example(EXAMPLES[0]!, tls, Number(pid))" },
    "uprobe libc void *malloc(size_t size) --hist size --pid 6575": { file: HIST, code: "example(EXAMPLES[1]!, target, pid)" },
    "uprobe libc ssize_t read(int fd, void *buf, size_t n) --hist ret --linear 0,512,8192 --pid 6575": { file: HIST, code: "example(EXAMPLES[2]!, target, pid)" },
    "uprobe libc malloc --stack --pid 6575": { file: HIST, code: "example(EXAMPLES[3]!, target, pid)" },
    "uprobe libc malloc --stacks -d 10 --pid 6575": { file: HIST, code: "example(EXAMPLES[4]!, target, pid)" },
    "uprobe libc malloc --stacks --folded --pid 6575 > out.folded": { file: HIST, code: "example(EXAMPLES[5]!, target, pid)" },
    "uprobe libc malloc --stacks --flamegraph malloc.svg --pid 6575": { file: HIST, code: 'example(EXAMPLES[6]!, target, pid, { "malloc.svg": svg })' },
  },
  // Some with --json (or another --args) added, to compare values.
  "`probe usdt <target> <probe>`": {
    "usdt --list /usr/bin/python3": { file: USDT, code: "runProbe(readme(0))" },
    "usdt --list --pid 4242": { file: USDT, code: "runProbe(readme(1, { pid }))" },
    "usdt python3 python:function__entry --pid 4242": { file: USDT, code: "startProbe(readme(2, { pid }))" },
    "usdt python3 python:function__* --ret-pairs --summary --pid 4242": { file: USDT, code: 'startProbe(summary ? readme(3, { pid }, "-i", "60", "--json")' },
    "usdt libstdc++ libstdcxx:throw --pid 4242": {
      file: USDT,
      code: 'startProbe(summary ? ["usdt", "libstdc++", "libstdcxx:*", "--pid", pid!, "--json", "--summary", "-i", "60"] : readme(4, { pid: Number(pid) }, "--json"))',
    },
    "usdt ./server fx:* --args through_pointer(int value, long element, struct rec *r)": { file: USDT, code: 'startProbe(readme(5, { server: exe }, "--args", "uint", "--json"))' },
    "usdt /usr/lib/x86_64-linux-gnu/libstdc++.so.6 libstdcxx:throw --stack -- ./thrower": {
      file: USDT,
      code: 'runProbe(withOptions(readme(6, { thrower: exe }, String(n)), "--json", "--attach-mode", mode))',
    },
  },
  // Pods of a private containerd and dockerd, a real Prometheus; ports made free ones.
  "Fleet: Kubernetes and Prometheus": {
    "ssl-read --selector app=web": { file: FLEET, code: "startProbe(EX[0]!)" },
    "ssl-read --pod shop/web-7d9f --container-name nginx": { file: FLEET, code: "startProbe(EX[1]!)" },
    "uprobe libc malloc --summary --selector tier=db --namespace prod": { file: FLEET, code: "startProbe(EX[2]!)" },
    "ssl-read --all-containers --metrics :9464 -d 0": { file: FLEET, code: 'startProbe(sub(EX[3]!, { ":9464": `:${port}` }))' },
    "uprobe libssl SSL_read --hist --selector app=web --metrics 127.0.0.1:9464": { file: FLEET, code: 'startProbe([...sub(EX[4]!, { "127.0.0.1:9464": `127.0.0.1:${port}` }), "--json"])' },
  },
};

const squeeze = (s: string) => s.replace(/\s+/g, " ").trim();
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The `readmeExamples("...")` argument a name is bound to in `src`: `NAME = readmeExamples(P)`, or `function NAME(i` returning `readmeExamples(P)[i]`. */
function boundHeading(src: string, name: string, asFunction: boolean): string {
  const re = asFunction
    ? new RegExp(`function ${escapeRe(name)}\\((\\w+)[^]*?readmeExamples\\("([^"]+)"\\)\\[\\1\\]`, "g")
    : new RegExp(`\\b${escapeRe(name)} = readmeExamples\\("([^"]+)"\\)`, "g");
  const found = new Set([...src.matchAll(re)].map((m) => m[asFunction ? 2 : 1]!));
  if (found.size !== 1) throw new Error(`'${name}' is bound to ${found.size ? [...found].join(", ") : "no"} readmeExamples(...) in the file`);
  return [...found][0]!;
}

/** The README example `code` selects (its words), reading bindings from the file's text `src`. */
function selectedExample(code: string, src: string): { heading: string; words: string[] } {
  const pick = (heading: string, how: (list: string[][]) => string[][] | string[] | undefined) => {
    const list = readmeExamples(heading);
    const e = how(list);
    if (!e || !Array.isArray(e)) throw new Error(`'${code}' selects no README example`);
    return { heading, words: e as string[] };
  };
  const byPredicate = (pred: string) => (list: string[][]) => {
    const inc = /^e\.includes\("([^"]*)"\)$/.exec(pred);
    const len = /^e\.length === (\d+)$/.exec(pred);
    if (inc) return list.find((e) => e.includes(inc[1]!));
    if (len) return list.find((e) => e.length === Number(len[1]));
    throw new Error(`cannot tell which example '.find((e) => ${pred})' selects: add its form to selectedExample`);
  };
  let m = /readmeExamples\("([^"]+)"\)\.find\(\(e\) => (.+?)\)!/.exec(code);
  if (m) return pick(m[1]!, byPredicate(m[2]!));
  m = /\b(\w+)\.find\(\(e\) => (.+?)\)!/.exec(code);
  if (m) return pick(boundHeading(src, m[1]!, false), byPredicate(m[2]!));
  m = /\b(\w+)\[(\d+)\]/.exec(code);
  if (m) return pick(boundHeading(src, m[1]!, false), (list) => list[Number(m![2])]);
  m = /\b(\w+)\((\d+)\b/.exec(code);
  if (m) return pick(boundHeading(src, m[1]!, true), (list) => list[Number(m![2])]);
  throw new Error(`cannot tell which README example '${code}' selects`);
}

/** Checks that `by.file` runs the README example `key` of section `section` with `by.code`. */
function checkRunElsewhere(section: string, key: string, by: RunBy): void {
  const path = join(ROOT, by.file);
  if (!existsSync(path)) throw new Error(`${by.file} (said to run 'probe ${key}') does not exist`);
  const src = readFileSync(path, "utf8");
  if (!squeeze(src).includes(squeeze(by.code))) throw new Error(`${by.file} no longer has the code said to run 'probe ${key}':\n  ${by.code}\nupdate RUN_ELSEWHERE in tests/kernel/readme.test.ts (or add a runner here)`);
  expect(by.code).toMatch(/\b(startProbe|runProbe|Bun\.spawn|example)\(/);
  // A file's own example() runner counts when it starts probe itself.
  if (/^example\(/.test(by.code)) expect(src).toMatch(/async function example\([^]*?startProbe\(/);
  const sel = selectedExample(by.code, src);
  // The heading it reads is this section's (readmeExamples takes the first heading it prefixes).
  if (JSON.stringify(readmeExamples(sel.heading)) !== JSON.stringify(readmeExamples(section))) {
    throw new Error(`'${by.code}' in ${by.file} reads the examples of the README's first '### ${sel.heading}...' section, not of '### ${section}'`);
  }
  if (sel.words.join(" ") !== key) throw new Error(`'${by.code}' in ${by.file} runs 'probe ${sel.words.join(" ")}', not 'probe ${key}'`);
}

const elsewhere = new Map(Object.entries(RUN_ELSEWHERE).flatMap(([section, runs]) => Object.entries(runs).map(([key, by]) => [key, { section, by }] as const)));

// ---------------------------------------------------------------------------------------------

const examples = allReadmeExamples();

describe("README examples, each run", () => {
  test("the README shows examples (the parser finds them)", () => {
    expect(examples.length).toBeGreaterThan(20);
  });

  test("every runner here is for an example the README shows", () => {
    const keys = new Set(examples.map(exampleKey));
    expect(Object.keys(RUNNERS).filter((k) => !keys.has(k))).toEqual([]);
  });

  for (const [section, runs] of Object.entries(RUN_ELSEWHERE)) {
    test(`section ${section}: every example is one another test file runs`, () => {
      const shown = examples.filter((e) => e.section === section).map(exampleKey);
      expect(shown.length).toBeGreaterThan(0);
      expect([...new Set(shown)].sort()).toEqual(Object.keys(runs).sort());
    });
  }

  const seen = new Set<string>();
  for (const e of examples) {
    const key = exampleKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    const other = elsewhere.get(key);
    if (other) {
      test(`probe ${key}: run by ${other.by.file}`, () => {
        if (RUNNERS[key]) throw new Error(`'probe ${key}' has a runner here and is run by ${other.by.file}: remove one, it needs heavy fixtures`);
        checkRunElsewhere(other.section, key, other.by);
      });
      continue;
    }
    test(`probe ${key}`, async () => {
      const run = RUNNERS[key];
      if (!run) {
        throw new Error(
          `README example 'probe ${key}' (section "${e.section}") has no substitution in tests/kernel/readme.test.ts: add a runner to RUNNERS that makes its placeholders real (fixtures), runs it and checks what it prints`,
        );
      }
      await run(e.argv, e.pipeTo);
    }, 120_000);
  }
});
