// `probe uprobe` with types: prototypes typed on the command line, `--ret=TYPE`, several functions
// and globs, Go's register ABI, debug info, strings and buffers, and `-- CMD` (traced from its first
// instruction). Every value is compared with what the traced program itself did or printed, or
// with a reference that is not ours (readelf, the request curl sends).
import { describe, expect, test, beforeAll, afterAll } from "bun:test";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WORK, buildC, probeBinary, runProbe, start, startProbe, testCert, linksHeldBy, freePort, waitForPort } from "../helpers.ts";
import { goBuild } from "../fixtures/go.ts";
import { ElfFile } from "../../lib/elf.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
let typed: string;
let goTyped: string;
let goTypedStripped: string;
const paths = join(WORK, "typed-paths");
const created = join(WORK, "typed-created");

type Ev = Record<string, any>;

beforeAll(() => {
  typed = buildC("typed", "typed.c");
  goTyped = goBuild("typed", "typed");
  goTypedStripped = goBuild("typed", "typed-stripped", { strip: true });
  writeFileSync(paths, ["/etc/hostname", "/nonexistent/probe-test", `+${created}`, "/etc/os-release"].join("\n") + "\n");
}, 300_000);

afterAll(() => rmSync(created, { force: true }));

/** Runs probe on `-- CMD`, feeding the command `input`; returns probe's exit code, events and stderr. */
function runCmd(args: string[], cmd: string[], input = "go\n"): { code: number; events: Ev[]; stderr: string; stdout: string } {
  const r = Bun.spawnSync([probeBinary(), ...args, "--json", "--", ...cmd], { stdin: Buffer.from(input), stdout: "pipe", stderr: "pipe" });
  const stdout = r.stdout.toString();
  const events = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Ev);
  return { code: r.exitCode ?? -1, events, stderr: r.stderr.toString(), stdout };
}

const arg = (e: Ev, name: string): Ev => (e.args as Ev[]).find((a) => a.name === name)!;

describe("C prototypes", () => {
  test("openat: every path, its flags and the fd or -1 exactly as the program saw them; read(buf[ret]) has the file's bytes", () => {
    const r = runCmd(["uprobe", LIBC, "int openat(int dirfd, const char *path, int flags, ...)", "ssize_t read(int fd, void *buf[ret], size_t count)", "--ret", "--no-debuginfo", "--string-size", "4096"], [typed, paths]);
    expect(r.code).toBe(0);
    // The program's own account: "openat PATH FLAGS FD" and "read FD GOT".
    const said = r.stdout.split("\n").filter((l) => l.startsWith("openat ")).map((l) => l.split(" "));
    const calls = r.events.filter((e) => e.function === "openat");
    const opens = calls.filter((e) => e.event === "call").filter((e) => said.some((s) => s[1] === arg(e, "path").value));
    expect(opens.map((e) => arg(e, "path").value)).toEqual(said.map((s) => s[1]));
    expect(opens.map((e) => arg(e, "flags").value)).toEqual(said.map((s) => Number(s[2])));
    expect(opens.every((e) => arg(e, "dirfd").value === -100)).toBe(true); // AT_FDCWD, sign-extended
    // Each call's return follows it on the thread: the fds (and -1 for the missing path).
    const rets = opens.map((c) => calls.find((e) => e.event === "return" && e.ts > c.ts)!);
    expect(rets.map((e) => e.ret.value)).toEqual(said.map((s) => Number(s[3])));
    expect(rets.map((e) => e.ret.type)).toEqual(said.map(() => "int"));
    // read(buf[ret]): the bytes of /etc/hostname and /etc/os-release, exactly.
    for (const file of ["/etc/hostname", "/etc/os-release"]) {
      const fd = Number(said.find((s) => s[1] === file)![3]);
      const readRet = r.events.find((e) => e.event === "return" && e.function === "read" && e.args?.[0]?.value?.text === readFileSync(file, "utf8"));
      expect({ file, fd, found: !!readRet }).toEqual({ file, fd, found: true });
      expect(readRet!.ret.value).toBe(readFileSync(file).length);
      expect(readRet!.args[0].value.len).toBe(readFileSync(file).length);
    }
  });

  test("edge cases: a string at the limit and over it, NULL, an unmapped pointer, escapes, 7th and 8th arguments, sign extension, uint64 max, a buffer with a length argument", () => {
    const r = runCmd(["uprobe", typed, "int takes_str(const char *s)", "long eight(int a, long b, int c, long d, int e, long f, int g, long h)", "int neg(int x)", "uint64_t umax(uint64_t x)", "long buf_sum(const unsigned char *buf[len], size_t len)", "--string-size", "256"], [typed, "-"]);
    expect(r.code).toBe(0);
    const calls = (fn: string) => r.events.filter((e) => e.event === "call" && e.function === fn);
    const strs = calls("takes_str").map((e) => e.args[0]);
    expect(strs[0]).toMatchObject({ value: "a".repeat(255) });
    expect(strs[0].truncated).toBeUndefined();
    expect(strs[1]).toMatchObject({ value: "b".repeat(256) }); // exactly at the limit: whole
    expect(strs[1].truncated).toBeUndefined();
    expect(strs[2]).toMatchObject({ value: "c".repeat(256), truncated: true }); // over: cut and said
    expect(strs[3].value).toBeNull(); // NULL
    expect(strs[4]).toMatchObject({ value: null, fault: "0x1000" });
    expect(strs[5].value).toBe('tab\there "q" \u0001 end');
    expect(calls("eight")[0]!.args.map((a: Ev) => a.value)).toEqual([1, -2, 3, -4, 5, -6, 7, -8]);
    expect(calls("neg")[0]!.args[0].value).toBe(-5);
    expect(calls("umax")[0]!.args[0].value).toBe("18446744073709551615");
    expect(calls("buf_sum")[0]!.args[0].value).toEqual({ len: 6, truncated: false, base64: Buffer.from([0, 1, 2, 65, 66, 255]).toString("base64") });

    // The same for people: a visible truncation mark, NULL, a fault, C escapes.
    const h = Bun.spawnSync([probeBinary(), "uprobe", typed, "int takes_str(const char *s)", "--string-size", "4", "--", typed, "-"], { stdin: Buffer.from("go\n"), stdout: "pipe", stderr: "pipe" });
    const out = h.stdout.toString();
    expect(out).toContain('takes_str(s="aaaa"...)');
    expect(out).toContain("takes_str(s=NULL)");
    expect(out).toContain("takes_str(s=<fault 0x1000>)");
    expect(out).toContain('takes_str(s="tab\\t"...)');
  });

  test("--ret=str types the return of a bare name: bash's readline gives the lines typed into a terminal", async () => {
    // bash reads its commands with readline only on a terminal: script(1) gives it one.
    // `exec`: script runs the command with $SHELL -c (or /bin/sh where SHELL is unset, as in CI),
    // and dash would keep itself between script and bash.
    const sh = start(["script", "-qfec", "exec bash --norc --noprofile -i", "/dev/null"], { PS1: "$ ", TERM: "dumb" });
    let bashPid = 0;
    for (let i = 0; i < 100 && !bashPid; i++) {
      await Bun.sleep(50);
      const kids = Bun.spawnSync(["pgrep", "-P", String(sh.proc.pid), "-x", "bash"], { stdout: "pipe" }).stdout.toString().trim();
      bashPid = Number(kids.split("\n")[0]) || 0;
    }
    expect(bashPid).toBeGreaterThan(0);
    const p = await startProbe(["uprobe", "/bin/bash", "readline", "--ret=str", "--pid", String(bashPid), "--json", "--no-debuginfo"]);
    // The readline bash is blocked in now entered before the probes: its return has no uretprobe
    // (as with any tracer). The first line completes it; every later call is seen.
    for (const line of ["true warm-up", "echo probe-line-one", "true probe-line-two", "exit"]) {
      sh.proc.stdin.write(`${line}\n`);
      await sh.proc.stdin.flush();
      await Bun.sleep(150);
    }
    await sh.proc.exited;
    const events = (await p.out.done()).map((l) => JSON.parse(l) as Ev);
    expect(await p.proc.exited).toBe(0);
    const lines = events.filter((e) => e.event === "return").map((e) => e.ret.value);
    expect(lines.filter((l) => l !== "true warm-up")).toEqual(["echo probe-line-one", "true probe-line-two", "exit"]);
    expect(events.filter((e) => e.event === "return").every((e) => e.ret.type === "char *")).toBe(true);
  }, 30_000);

  test("SSL_write's buffer is the HTTP request curl sent, byte for byte", async () => {
    const { cert, key } = testCert();
    const port = freePort();
    const server = start(["openssl", "s_server", "-accept", `127.0.0.1:${port}`, "-cert", cert, "-key", key, "-www", "-quiet"]);
    try {
      await waitForPort(port);
      const path = `/probe-typed-${process.pid}`;
      const r = runCmd(["uprobe", "libssl", "int SSL_write(SSL *ssl, const void *buf[num], int num)", "--ret", "--string-size", "4096"],
        ["curl", "-sk", "--http1.1", "-H", "User-Agent:", "-H", "Accept:", `https://127.0.0.1:${port}${path}`], "");
      expect(r.code).toBe(0);
      const writes = r.events.filter((e) => e.event === "call" && e.function === "SSL_write");
      expect(writes).toHaveLength(1);
      const buf = writes[0]!.args.find((a: Ev) => a.name === "buf").value;
      expect(buf).toEqual({ len: buf.len, truncated: false, text: `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n` });
      expect(writes[0]!.args.find((a: Ev) => a.name === "num").value).toBe(buf.len);
      expect(r.events.find((e) => e.event === "return")!.ret.value).toBe(buf.len);
    } finally {
      server.proc.kill();
    }
  }, 30_000);
});

describe("Go", () => {
  const expectGo = (events: Ev[]) => {
    const call = (fn: string, i = 0) => events.filter((e) => e.event === "call" && e.function === fn)[i]!;
    const ret = (fn: string, i = 0) => events.filter((e) => e.event === "return" && e.function === fn)[i]!;
    const vals = (e: Ev, k = "args") => (e[k] as Ev[]).map((a) => a.value);
    expect(vals(call("main.demo"))).toEqual([64, 1]);
    expect(ret("main.demo").ret.value).toBe(65);
    expect(vals(call("main.handle"))).toEqual(["probe", { len: 11, cap: 11, truncated: false, text: "hello\u0000world" }, true, expect.stringMatching(/^0x[0-9a-f]+$/)]);
    expect(vals(ret("main.handle"), "results")).toEqual([23, null]);
    expect(vals(call("main.handle", 1)).slice(0, 3)).toEqual(["x", null, false]);
    expect(ret("main.handle", 1).results[0].value).toBe(0);
    expect(ret("main.handle", 1).results[1].value).not.toBeNull(); // errors.New: an interface that is not nil
    expect(vals(call("main.many"))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // past the nine registers: the stack
    expect(ret("main.many").ret.value).toBe(66);
    expect(vals(call("main.neg"))).toEqual([-3, -70000, "9223372036854775808"]);
    expect(ret("main.neg").ret.value).toBe(-70002);
  };

  test("from the binary's own DWARF: names, types and values of every parameter and result", () => {
    const r = runCmd(["uprobe", goTyped, "main.demo", "main.handle", "main.many", "main.neg", "--ret"], [goTyped]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`types from ${goTyped}`);
    expectGo(r.events);
    const human = Bun.spawnSync([probeBinary(), "uprobe", goTyped, "main.demo", "--ret", "--", goTyped], { stdin: Buffer.from("go\n"), stdout: "pipe" }).stdout.toString();
    expect(human).toContain("main.demo(n=64, seed=1)");
    expect(human).toMatch(/main\.demo returned 65 in /);
  });

  test("stripped of DWARF (-s -w): the same values from Go prototypes typed on the command line", () => {
    const r = runCmd(["uprobe", goTypedStripped, "func main.demo(n int, seed int) int", "func main.handle(name string, b []byte, ok bool, p *T) (int, error)",
      "func main.many(a, b, c, d, e, f, g, h, i, j, k int) int", "func main.neg(x int8, y int32, z uint64) int64", "--ret"], [goTypedStripped]);
    expect(r.code).toBe(0);
    expectGo(r.events);
  });
});

describe("several functions and globs", () => {
  test("a glob probes exactly the FUNC symbols readelf lists for it (the kernel's link says which offsets)", async () => {
    const readelf = Bun.spawnSync(["readelf", "-Ws", "--wide", LIBC], { stdout: "pipe" }).stdout.toString();
    const fd = openSync(LIBC, "r");
    const elf = new ElfFile(fd, LIBC);
    const want = new Set<number>();
    for (const line of readelf.split("\n")) {
      const f = line.trim().split(/\s+/);
      // Num: Value Size Type Bind Vis Ndx Name
      if (f[3] !== "FUNC" || f[6] === "UND" || !f[7]) continue;
      const name = f[7].replace(/@.*$/, "");
      if (!/^str[a-z]*$/.test(name) && !name.startsWith("str")) continue;
      const off = elf.vaddrToOffset(parseInt(f[1]!, 16));
      if (off !== undefined && off !== 0) want.add(off);
    }
    closeSync(fd);
    const p = await startProbe(["uprobe", LIBC, "str*", "--summary", "-d", "20", "--pid", String(process.pid)]);
    try {
      const links = linksHeldBy(p.proc.pid);
      const got = new Set(links.flatMap((l) => l.uprobe?.offsets ?? []));
      expect([...got].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
      expect(got.size).toBeGreaterThan(30);
    } finally {
      p.proc.kill("SIGINT");
      await p.proc.exited;
    }
  }, 60_000);

  test("three functions in one run: --summary counts each exactly; a glob matching nothing is an error with suggestions", () => {
    const r = runCmd(["uprobe", typed, "count_me", "neg", "umax", "--summary"], [typed, "-", "17"], "");
    expect(r.code).toBe(3); // the command's exit status is probe's
    const rows = r.events.filter((e) => e.event === "count");
    const byFn = Object.fromEntries(rows.map((e) => [e.function, e.calls]));
    expect(byFn).toEqual({ count_me: 17 });
    const none = runProbe(["uprobe", typed, "nosuchprefix*"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^probe: error: no function of .* matches 'nosuchprefix\*'/m);
  });

  test("-- CMD: a command that calls a function N times and exits at once: exactly N calls, and its exit status", () => {
    for (const n of [1, 250]) {
      const r = runCmd(["uprobe", typed, "count_me", "--ret"], [typed, "-", String(n)], "");
      expect(r.code).toBe(3);
      expect(r.events.filter((e) => e.event === "call" && e.function === "count_me")).toHaveLength(n);
      expect(r.events.filter((e) => e.event === "return").map((e) => e.ret).slice(0, 3)).toEqual(n === 1 ? [expect.objectContaining({ value: 0 })] : [0, 2, 4].map((v) => expect.objectContaining({ value: v })));
    }
  });
});
