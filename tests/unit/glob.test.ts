// Function-name globs (lib/glob.ts): the libc functions a pattern selects are exactly those the
// shell's `case` selects (dash, POSIX pattern matching) and Bun.Glob selects, over every FUNC
// symbol readelf lists in the system libc; plus the Go names whose `(*T)` and `[...]` are literal.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { compileGlob, filterGlob, isGlob } from "../../lib/glob.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

/** FUNC symbol names of libc as readelf prints them (versioned: strlen@@GLIBC_2.2.5), deduplicated. */
function libcFunctions(): string[] {
  if (!existsSync(LIBC)) throw new Error(`${LIBC} is missing (this test needs x86-64 glibc)`);
  const r = Bun.spawnSync(["readelf", "-Ws", "--wide", LIBC], { stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error("readelf failed: apt-get install binutils");
  const names = new Set<string>();
  for (const line of r.stdout.toString().split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[3] === "FUNC" && f[7]) names.add(f[7]);
  }
  return [...names].sort();
}

/** The names `case` in sh matches with the pattern. */
function shellSelect(pattern: string, names: string[]): string[] {
  const script = `while IFS= read -r n; do case "$n" in ${pattern}) printf '%s\\n' "$n";; esac; done`;
  const r = Bun.spawnSync(["sh", "-c", script], { stdin: Buffer.from(names.join("\n") + "\n"), stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`sh failed on ${pattern}`);
  return r.stdout.toString().split("\n").filter(Boolean).sort();
}

describe("against sh's case and Bun.Glob on libc's functions", () => {
  const names = libcFunctions();
  const bare = [...new Set(names.map((n) => n.replace(/@.*/, "")))].sort();
  test("libc has many functions", () => {
    expect(names.length).toBeGreaterThan(2000);
  });
  const patterns = ["str*", "mem*", "*printf", "pthread_[ms]*", "?etenv*", "str[!c]*", "*_[rR]", "[a-c]*time*", "__*chk", "*[0-9]", "s?t*id", "*@GLIBC_2.2.5", "*", "malloc"];
  for (const pattern of patterns) {
    test(pattern, () => {
      for (const set of [names, bare]) {
        const mine = filterGlob(pattern, set).sort();
        expect(mine).toEqual(shellSelect(pattern, set));
        const bun = new Bun.Glob(pattern);
        expect(mine).toEqual(set.filter((n) => bun.match(n)).sort());
      }
      if (pattern !== "*") expect(filterGlob(pattern, bare).length).toBeLessThan(bare.length);
    });
  }
  test("the sets are what one expects", () => {
    const printf = filterGlob("*printf", bare);
    for (const n of ["printf", "fprintf", "snprintf", "vsnprintf", "dprintf"]) expect(printf).toContain(n);
    expect(printf).not.toContain("__printf_chk");
    const ms = filterGlob("pthread_[ms]*", bare);
    expect(ms).toContain("pthread_mutex_lock");
    expect(ms).toContain("pthread_self");
    expect(ms.some((n) => n.startsWith("pthread_c"))).toBe(false);
  });
});

describe("glob syntax", () => {
  test("isGlob", () => {
    for (const t of ["str*", "foo?", "pthread_[ms]*", "[abc]", "main.(*T).*", "*.M"]) expect([t, isGlob(t)]).toEqual([t, true]);
    for (const t of ["malloc", "main.(*T).M", "net/http.(*conn).serve", "main.Map[go.shape.int]", "a\\*b", "[", "SSL_read+0x10", "0x1234", "memcpy@GLIBC_2.14"]) {
      expect([t, isGlob(t)]).toEqual([t, false]);
    }
  });

  test("classes: negation, ranges, ] first, - last, empty ranges", () => {
    const m = (p: string, n: string) => compileGlob(p)(n);
    expect(m("[]a]x", "]x")).toBe(true);
    expect(m("[]a]x", "ax")).toBe(true);
    expect(m("[!]a]x", "bx")).toBe(true);
    expect(m("[!]a]x", "]x")).toBe(false);
    expect(m("[^a]", "b")).toBe(true);
    expect(m("[a-]", "-")).toBe(true);
    expect(m("[z-a]", "m")).toBe(false);
    expect(m("[!z-a]", "m")).toBe(true);
    expect(m("a\\*b", "a*b")).toBe(true);
    expect(m("a\\*b", "axb")).toBe(false);
    expect(m("a[", "a[")).toBe(true);
    expect(m("?", "é")).toBe(true);
    expect(m("Str*", "strlen")).toBe(false);
    expect(m("*", "")).toBe(true);
    expect(m("a.c", "abc")).toBe(false); // regex characters are literal
    expect(m("a+b(c)", "a+b(c)")).toBe(true);
  });

  test("Go names: (*T) and [type args] are literal", () => {
    const names = ["main.(*T).M", "main.(*T).N", "main.(*U).M", "main.T.M", "main.Map[go.shape.int]", "main.Map[go.shape.string]", "main.main.func1"];
    expect(filterGlob("main.(*T).*", names)).toEqual(["main.(*T).M", "main.(*T).N"]);
    expect(filterGlob("main.(*T).M", names)).toEqual(["main.(*T).M"]);
    expect(filterGlob("main.Map[go.shape.int]", names)).toEqual(["main.Map[go.shape.int]"]);
    expect(filterGlob("main.Map*", names)).toEqual(["main.Map[go.shape.int]", "main.Map[go.shape.string]"]);
    expect(filterGlob("*.M", names)).toEqual(["main.(*T).M", "main.(*U).M", "main.T.M"]);
    expect(filterGlob("main.main.func?", names)).toEqual(["main.main.func1"]);
  });
});
