// Argument names and types from debug info, with no prototype typed: a C binary built with -g at
// -O0 and -O2, Go's own DWARF, libc through Debian's libc6-dbg (found by build-id), a Go binary
// without DWARF (hex, with a note), --no-debuginfo, and --list-functions with signatures.
import { describe, expect, test, beforeAll } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { WORK, FIXTURES, probeBinary, runProbe } from "../helpers.ts";
import { goBuild } from "../fixtures/go.ts";

type Ev = Record<string, any>;
const bins: Record<string, string> = {};

function gcc(out: string, flags: string[]): string {
  const path = join(WORK, out);
  const r = Bun.spawnSync(["gcc", ...flags, "-o", path, join(FIXTURES, "dbg.c")], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`gcc failed: ${r.stderr}`);
  return path;
}

beforeAll(() => {
  bins.o0 = gcc("dbg-O0", ["-g", "-O0"]);
  bins.o2 = gcc("dbg-O2", ["-g", "-O2"]);
  bins.go = goBuild("typed", "typed");
  bins.goNoDwarf = goBuild("typed", "typed-nodwarf", { strip: true });
}, 300_000);

function run(args: string[], cmd: string[]): { code: number; events: Ev[]; stderr: string; stdout: string } {
  const r = Bun.spawnSync([probeBinary(), ...args, "--", ...cmd], { stdin: Buffer.from("go\n"), stdout: "pipe", stderr: "pipe" });
  const stdout = r.stdout.toString();
  return { code: r.exitCode ?? -1, events: stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr: r.stderr.toString(), stdout };
}

describe("C built with -g", () => {
  for (const level of ["o0", "o2"] as const) {
    test(`-${level.toUpperCase()}: names, types and values of a string, int, enum (by name), typedef'd and struct pointer parameters`, () => {
      const r = run(["uprobe", bins[level]!, "parse_header", "unused_arg", "--ret", "--json"], [bins[level]!]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`types from ${bins[level]}`);
      const call = r.events.find((e) => e.event === "call" && e.function === "parse_header")!;
      expect(call.args.map((a: Ev) => [a.name, a.type])).toEqual([["name", "const char *"], ["len", "int"], ["m", "enum mode"], ["n", "unsigned long"], ["c", "struct conf *"]]);
      expect(call.args.map((a: Ev) => a.value).slice(0, 4)).toEqual(["Host", 4, 5, 99]);
      expect(call.args[2].enum).toBe("AUTO");
      expect(call.args[4].value).toMatch(/^0x[0-9a-f]+$/);
      expect(r.events.find((e) => e.event === "return" && e.function === "parse_header")!.ret.value).toBe(115);
      const unused = r.events.find((e) => e.event === "call" && e.function === "unused_arg")!;
      expect(unused.args.map((a: Ev) => [a.name, a.value])).toEqual([["used", 21], ["unused", 77]]);
      const human = run(["uprobe", bins[level]!, "parse_header"], [bins[level]!]).stdout;
      expect(human).toMatch(/parse_header\(name="Host", len=4, m=AUTO, n=99, c=0x[0-9a-f]+\)/);
    });
  }

  test("--no-debuginfo keeps registers in hex; --list-functions shows signatures", () => {
    const hex = run(["uprobe", bins.o0!, "parse_header", "--no-debuginfo"], [bins.o0!]).stdout;
    expect(hex).toMatch(/parse_header\(0x[0-9a-f]+, 0x4, 0x5, 0x63\)/);
    const list = runProbe(["uprobe", bins.o0!, "--list-functions", "parse"]);
    expect(list.stdout).toMatch(/parse_header\s+int parse_header\(const char \*name, int len, enum mode m, count_t n, struct conf \*c\)/);
  });
});

describe("an optimized copy of a function (gcc -O2 .constprop)", () => {
  test("the argument still where the convention puts it is read; those the compiler moved or replaced are unavailable, as readelf's locations say", () => {
    const bin = join(WORK, "clone-O2");
    const b = Bun.spawnSync(["gcc", "-g", "-O2", "-o", bin, join(FIXTURES, "clone.c")], { stderr: "pipe" });
    if (b.exitCode !== 0) throw new Error(`gcc failed: ${b.stderr}`);
    // The reference: readelf's view of the clone's parameters (a location list each for value and
    // unused, the latter only the caller's value; label a propagated address).
    const info = Bun.spawnSync(["readelf", "--debug-dump=info,loc", bin], { stdout: "pipe" }).stdout.toString();
    expect(info).toContain("DW_OP_GNU_parameter_ref");
    expect(info).toMatch(/DW_OP_addr: [0-9a-f]+; DW_OP_stack_value/);
    const sym = Bun.spawnSync(["nm", bin], { stdout: "pipe" }).stdout.toString();
    expect(sym).toMatch(/ t scaled\.constprop\.0$/m);

    const r = run(["uprobe", bin, "scaled.constprop.0", "--json"], [bin, "4"]);
    expect(r.code).toBe(0);
    const calls = r.events.filter((e) => e.event === "call");
    expect(calls.map((c) => c.args.map((a: Ev) => a.name))).toEqual(Array(4).fill(["value", "unused", "label"]));
    expect(calls.map((c) => c.args[0].value)).toEqual([7, 8, 9, 10]);
    for (const c of calls) for (const a of c.args.slice(1)) expect([a.value, a.unreadable]).toEqual([null, true]);
    expect(r.stderr).toContain("scaled.constprop.0: argument unused: computed from what the caller passed");
    expect(r.stderr).toContain("scaled.constprop.0: argument label: a constant address the compiler propagated");
    const human = run(["uprobe", bin, "scaled.constprop.0"], [bin, "1"]).stdout;
    expect(human).toContain("scaled.constprop.0(value=7, unused=?, label=?)");
  });
});

describe("Go's own DWARF", () => {
  test("main.demo(n=64, seed=1) returned 65; --list-functions 'main.*' has signatures", () => {
    const human = run(["uprobe", bins.go!, "main.demo", "--ret"], [bins.go!]).stdout;
    expect(human).toContain("main.demo(n=64, seed=1)");
    expect(human).toMatch(/main\.demo returned 65 in/);
    const list = runProbe(["uprobe", bins.go!, "--list-functions", "main.*"]);
    expect(list.stdout).toMatch(/main\.demo\s+func main\.demo\(n int, seed int\) int/);
    expect(list.stdout).toMatch(/main\.handle\s+func main\.handle\(name string, b \[\]uint8, ok bool, p \*main\.T\) \(int, error\)/);
  });

  test("built with -ldflags='-s -w' (no DWARF): hex as before, and a note saying why", () => {
    const r = run(["uprobe", bins.goNoDwarf!, "main.demo"], [bins.goNoDwarf!]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`no debug info for ${bins.goNoDwarf}`);
    expect(r.stdout).toMatch(/main\.demo\(0x40, 0x1, /);
  });
});

describe("Debian's libc6-dbg", () => {
  test("malloc(bytes=12345): the parameter's name and type from /usr/lib/debug/.build-id, found by libc's build-id", () => {
    expect(existsSync("/usr/lib/debug/.build-id")).toBe(true); // apt-get install libc6-dbg (.ci/setup does)
    const r = run(["uprobe", "libc", "malloc", "--json"], [bins.o0!]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/types from \/usr\/lib\/debug\/\.build-id\/[0-9a-f]{2}\/[0-9a-f]+\.debug \(build-id\)/);
    const call = r.events.find((e) => e.event === "call" && e.args?.[0]?.value === 12345)!;
    expect(call.args[0]).toEqual({ name: "bytes", type: "size_t", value: 12345 });
  });
});
