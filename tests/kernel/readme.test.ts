// Every `probe ...` command line of README.md, run on the built binary with its placeholders made
// real: PIDs 6575 (a TLS server in a container: nginx in a namespace container), 1234 (a process
// that mallocs, opens and exits: tests/fixtures/reliab/workload.c), 4242 and ./server (the Go
// server with main.(*Handler).ServeHTTP: tests/fixtures/reliab/goserver), container names nx and
// web (nginx in docker), app.bpf.o (the bpfman report's SSL_read app, tests/fixtures/bpf/
// ssl_count.bpf.c with SEC names), /sys/fs/bpf/myapp (a directory of this run), durations
// shortened. Each example gets one test asserting its exit and what it is about. An example
// without a substitution here fails, naming itself: whoever adds one to the README adds its runner.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, rmSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { WORK, Lines, buildC, start, testCert, type Running } from "../helpers.ts";
import { allReadmeExamples } from "../readme.ts";
import { probe, startProbe, stop, fixture, startTarget, clangFixture, eventually, RAW_EXCEPTION, type Target } from "../reliab-helpers.ts";
import { startNginxContainer, httpsGet, type NsContainer } from "../fixtures/container.ts";
import { ensureDocker, startDockerNginx, type DockerContainer } from "../fixtures/docker.ts";
import { goBuild } from "../fixtures/go.ts";
import { kernelView } from "../../lib/kernel-view.ts";
import { unpinDir } from "../../lib/bpffs.ts";

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

/** 4242 and ./server: the Go server, run from a directory where it is ./server. */
const goServer = once(async (): Promise<{ dir: string; pid: number; port: number }> => {
  const dir = join(WORK, `readme-go-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(goBuild("../reliab/goserver", "reliab-goserver"), join(dir, "server"));
  chmodSync(join(dir, "server"), 0o755);
  const proc = Bun.spawn([join(dir, "server")], { cwd: dir, stdout: "pipe", stderr: "ignore" });
  cleanups.push(() => {
    proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const port = Number((await new Lines(proc.stdout).waitFor(/^listening (\d+)/))[1]);
  return { dir, pid: proc.pid, port };
});

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

/** 1234: a process that mallocs, opens and calls getppid on each "go", exits on "exit". */
async function workload(): Promise<Target> {
  const t = await startTarget([fixture("workload")]);
  cleanups.push(() => t.r.proc.kill("SIGKILL"));
  return t;
}

async function goAndWait(t: Target): Promise<void> {
  await t.go();
  await t.r.out.waitFor(/^done/);
}

/** HTTPS requests to a container's nginx, each on its own connection. */
function requests(port: number, n: number): void {
  for (let i = 0; i < n; i++) expect(httpsGet(port, "/").ok).toBe(true);
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

/** Starts the example, waits for it to be attached, runs `drive`, then stops it with Ctrl-C (SIGINT). */
async function attachedRun(argv: string[], drive: () => Promise<void> | void, o: { cwd?: string; ready?: RegExp } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p: Running = startProbe(argv, {}, o.cwd);
  try {
    await (o.ready?.test("stdout") ? p.out : p.err).waitFor(o.ready ?? /Tracing|Ctrl-C to stop/, 30_000);
  } catch (e) {
    p.proc.kill("SIGKILL");
    throw e;
  }
  await drive();
  await Bun.sleep(400);
  const r = await stop(p);
  expect(r.stderr).not.toMatch(RAW_EXCEPTION);
  return r;
}

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

// ---------------------------------------------------------------------------------------------
// One runner per README command line (as written, after `probe`).

type Runner = (argv: string[]) => Promise<void>;

async function sslReadPid(argv: string[]): Promise<void> {
  const c = await tlsContainer();
  const r = await attachedRun(substitute(argv, { "6575": String(c.pid) }), () => requests(c.port!, 3));
  expect(r.code).toBe(0);
  const row = plain(r.stdout).split("\n").find((l) => l.startsWith("TOTAL") === false && new RegExp(`^\\s+${c.pid}\\s+1\\s+nginx\\s+(\\d+)`).test(l));
  expect(row, r.stdout).toBeDefined();
  expect(Number(/nginx\s+(\d+)/.exec(row!)![1])).toBeGreaterThan(0);
}

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

const RUNNERS: Record<string, Runner> = {
  "ssl-read --pid 6575": sslReadPid,

  "uprobe libc malloc --ret --pid 1234": async (argv) => {
    const t = await workload();
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), () => goAndWait(t));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/workload\s+malloc\(/);
    expect(r.stdout).toMatch(/malloc returned (0x[0-9a-f]+|\d+)/);
    expect(r.stdout).toMatch(/ in [\d.]+ (ns|µs|ms)/);
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
    const r = probe(argv);
    expect(r.code).toBe(0);
    for (const h of ["PROGRAMS", "MAPS", "LINKS", "PERF EVENTS WITH BPF"]) expect(plain(r.stdout)).toMatch(new RegExp(`^${h} \\(\\d+\\)`, "m"));
  },

  "list --json": async (argv) => {
    const r = probe(argv);
    expect(r.code).toBe(0);
    const kinds = new Set(r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l).kind));
    for (const k of ["prog", "map"]) expect(kinds.has(k)).toBe(true);
  },

  opensnoop: async (argv) => {
    const t = await workload();
    const r = await attachedRun(argv, () => goAndWait(t));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${t.pid}\\s+\\S+\\s+-1\\s+ENOENT\\s+/nonexistent/reliab-workload$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^${t.pid}\\s+\\S+\\s+\\d+\\s+0\\s+/etc/hostname$`, "m"));
  },

  "opensnoop -p 1234 -x": async (argv) => {
    const t = await workload();
    const r = await attachedRun(substitute(argv, { "1234": String(t.pid) }), () => goAndWait(t));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ENOENT\s+\/nonexistent\/reliab-workload$/m);
    expect(r.stdout).not.toMatch(/\/etc\/hostname/); // -x: failed opens only
  },

  "opensnoop --container web -e -T --json": async (argv) => {
    const d = await docker();
    const r = await attachedRun(substitute(argv, { web: d.name }), () => requests(d.port, 2));
    expect(r.code).toBe(0);
    const recs = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const index = recs.filter((x) => x.event === "open" && String(x.path).endsWith("index.html"));
    expect(index.length).toBeGreaterThan(0);
    expect(index[0].nspid?.length).toBe(2);
    expect(index[0].flags_text).toMatch(/O_RDONLY/);
  },

  "opensnoop -n nginx -u 33 -d 10": async (argv) => {
    // uid 33 (www-data) stands for the uid nginx serves as: root in the test image.
    const d = await docker();
    const p = startProbe(substitute(argv, { "33": "0", "10": "3" }));
    await p.err.waitFor(/Tracing/, 20_000);
    requests(d.port, 2);
    const code = await p.proc.exited;
    expect(code).toBe(0);
    const out = (await p.out.done()).join("\n");
    expect(out).toMatch(/^\d+\s+nginx\s+\d+\s+0\s+\/var\/www\/html\/index\.html$/m);
    expect(out.split("\n").filter((l) => /^\d+\s/.test(l)).every((l) => /^\d+\s+\S*nginx/.test(l))).toBe(true);
  },

  "tracepoint syscalls:sys_enter_execve": async (argv) => {
    const r = await attachedRun(argv, () => void Bun.spawnSync(["/bin/true"]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/syscalls:sys_enter_execve\s+.*filename=0x[0-9a-f]+ "\/bin\/true"/);
  },

  "tracepoint sched:sched_process_exit -p 1234 --json": async (argv) => {
    const t = await workload();
    const p = startProbe(substitute(argv, { "1234": String(t.pid) }));
    await p.err.waitFor(/Tracing/, 20_000);
    t.r.proc.stdin.write("exit\n");
    await t.r.proc.stdin.flush();
    expect(await t.r.proc.exited).toBe(3);
    // The traced process is gone: probe ends by itself.
    const code = await Promise.race([p.proc.exited, Bun.sleep(5000).then(() => "running")]);
    if (code === "running") await stop(p);
    const recs = (await p.out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(recs.some((x) => x.tracepoint === "sched:sched_process_exit" && x.pid === t.pid)).toBe(true);
  },

  "tracepoint --list syscalls:*open*": async (argv) => {
    const r = probe(argv);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toContain("syscalls:sys_enter_openat");
    expect(r.stdout.split("\n").filter(Boolean).every((l) => /^syscalls:.*open/.test(l))).toBe(true);
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
    expect(r.stdout).toMatch(/^0x[0-9a-f]+\s+\d+\s+net\/http\.\(\*conn\)\.serve$/m);
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

const examples = allReadmeExamples();
const seen = new Set<string>();

/**
 * Sections whose examples need a container runtime running pods and a Prometheus: their own test
 * file runs each of them, read from the README itself with readmeExamples(section).
 */
const RUN_ELSEWHERE: Record<string, string> = { "Fleet: Kubernetes and Prometheus": "tests/kernel/fleet-metrics.test.ts" };

describe("README examples, each run", () => {
  test("the README shows examples (the parser finds them)", () => {
    expect(examples.length).toBeGreaterThan(20);
  });
  for (const e of examples) {
    const key = e.argv.join(" ");
    if (seen.has(key)) continue;
    seen.add(key);
    test(`probe ${key}`, async () => {
      const elsewhere = RUN_ELSEWHERE[e.section];
      if (elsewhere) {
        const text = await Bun.file(join(import.meta.dir, "..", "..", elsewhere)).text();
        expect(text).toContain(`readmeExamples(${JSON.stringify(e.section)})`);
        expect(text).toContain(JSON.stringify(key));
        return;
      }
      const run = RUNNERS[key];
      if (!run) {
        throw new Error(
          `README example 'probe ${key}' (section "${e.section}") has no substitution in tests/kernel/readme.test.ts: add a runner to RUNNERS that makes its placeholders real (fixtures), runs it and checks what it prints`,
        );
      }
      await run(e.argv);
    }, 120_000);
  }
});
