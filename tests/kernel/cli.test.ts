// probe uprobe on the built binary: arguments and help, attaching, exact event counts, and the user errors (wrong path, function, PID, offset, library name).
import { describe, expect, test } from "bun:test";
import { buildC, runProbe, start, startProbe, probeBinary } from "../helpers.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

describe("probe uprobe: arguments, attaching, exact counts and user errors", () => {
  test("--help lists the binary, the function and the duration", () => {
    const r = runProbe(["uprobe", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/<target>\s+the binary or library/);
    expect(r.stdout).toMatch(/<function>\s+the function/);
    expect(r.stdout).toMatch(/-d, --duration/);
  });

  test("a missing binary argument fails naming it", () => {
    const r = runProbe(["uprobe"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^probe: error: missing argument <target>/m);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  test("with --json an error is one JSON object on stderr (message, hint, exit), and the exit code is the same", () => {
    const missing = runProbe(["uprobe", "/nonexistent", "fn", "--json"]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(JSON.parse(missing.stderr.trim())).toEqual({ event: "error", message: "/nonexistent: file not found", hint: expect.stringContaining("libc"), exit: 1 });
    const usage = runProbe(["uprobe", LIBC, "malloc", "--pid", "abc", "--json"]);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr.trim())).toEqual({ event: "error", message: "--pid takes a process id, not 'abc'", exit: 2 });
  });

  test("a missing function argument fails naming it", () => {
    const r = runProbe(["uprobe", LIBC]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^probe: error: missing argument <function>/m);
  });

  test("attaching to libc malloc for 1 s succeeds", () => {
    const t = Date.now();
    const r = runProbe(["uprobe", LIBC, "malloc", "-d", "1", "--summary"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Tracing malloc");
    expect(Date.now() - t).toBeGreaterThanOrEqual(1000);
  });

  test("events appear for a process calling the function: exactly as many as calls", async () => {
    const calls = buildC("calls", "calls.c");
    const target = start([calls, "37"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const p = await startProbe(["uprobe", LIBC, "getenv", "--pid", pid!, "--json"]);
    target.proc.stdin.write("go\n");
    target.proc.stdin.end();
    await target.out.waitFor(/^done/);
    const lines = await p.out.done(); // probe stops by itself when its target exits
    const events = lines.map((l) => JSON.parse(l));
    expect(events.filter((e) => e.event === "call" && e.function === "getenv")).toHaveLength(37);
    expect(new Set(events.map((e) => e.pid))).toEqual(new Set([Number(pid)]));
    expect(await p.proc.exited).toBe(0);
  });

  test("a nonexistent binary fails with 'not found'", () => {
    const r = runProbe(["uprobe", "/no/such/binary", "main"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: \/no\/such\/binary: file not found/m);
  });

  test("a nonexistent function fails naming the function, with suggestions", () => {
    const r = runProbe(["uprobe", LIBC, "mallocc"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: function mallocc not found in/m);
    expect(r.stderr).toMatch(/hint: did you mean malloc/);
  });
});

describe("probe: other bad input", () => {
  test("--version and --help", () => {
    expect(runProbe(["--version"]).stdout.trim()).toMatch(/^probe \d+\.\d+\.\d+$/);
    const h = runProbe(["--help"]);
    expect(h.stdout).toContain("uprobe");
    expect(h.stdout).toContain("ssl-read");
  });

  test("an unknown command or option is a usage error", () => {
    expect(runProbe(["frobnicate"]).code).toBe(2);
    const r = runProbe(["uprobe", LIBC, "malloc", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^probe: error: Unknown option '--bogus'/m);
  });

  test("not an ELF file", () => {
    const r = runProbe(["uprobe", "/etc/passwd", "x"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: \/etc\/passwd is not an ELF file/m);
  });

  test("a function the binary imports is refused with a hint", () => {
    const r = runProbe(["uprobe", "/bin/ls", "malloc"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/malloc is imported by \/bin\/ls/);
    expect(r.stderr).toMatch(/hint: probe the library that defines it/);
  });

  test("a pid that does not exist", () => {
    const r = runProbe(["uprobe", "libc", "malloc", "--pid", "4194303"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: pid 4194303 does not exist/m);
  });

  test("a pid that is not a number, and a bad duration", () => {
    expect(runProbe(["uprobe", "libc", "malloc", "--pid", "abc"]).code).toBe(2);
    expect(runProbe(["uprobe", "libc", "malloc", "-d", "soon"]).code).toBe(2);
  });

  test("a library name that resolves nowhere", () => {
    const r = runProbe(["uprobe", "libnosuchthing", "f"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/library 'libnosuchthing' not found/);
  });

  test("without CAP_BPF/CAP_PERFMON it says which capability is missing", () => {
    // capsh drops the bounding set for the child: a real unprivileged process, not a mock.
    const capsh = Bun.which("capsh");
    if (!capsh) throw new Error("capsh is missing: apt-get install libcap2-bin (the test needs it to drop capabilities)");
    const r = Bun.spawnSync([capsh, "--drop=cap_bpf,cap_perfmon,cap_sys_admin", "--", "-c", `${probeBinary()} uprobe libc malloc -d 1`], { stderr: "pipe" });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toMatch(/probe: error: probe needs root, or CAP_BPF and CAP_PERFMON/);
  });
});
