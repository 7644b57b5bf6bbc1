// The DWARF reader on a Go 1.19 binary (DWARF 4, SHF_COMPRESSED zlib sections, register ABI)
// against readelf: every function's parameters and results, their type names and where each is
// at the entry. Variants: uncompressed DWARF, no symbol table (lookups through the DWARF name
// index), and the -s / -w builds that carry no DWARF.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { DebugInfo, findDebugInfo, formatSignature, hostOpener, type DebugFunction } from "../../lib/dwarf/index.ts";
import { buildGo, sh } from "../fixtures/dwarf/build.ts";
import { blockExpr, canonicalExpr, canonicalLocation, hexOf, inherited, readelfDies, readelfLocLists, refOf, type RDie } from "../fixtures/dwarf/readelf.ts";

// gdb, readelf and go builds are slow on a loaded 2-CPU machine.
setDefaultTimeout(60_000);

const fds: number[] = [];
afterAll(() => fds.forEach((fd) => closeSync(fd)));

function elfOf(path: string): ElfFile {
  const fd = openSync(path, "r");
  fds.push(fd);
  return new ElfFile(fd, path);
}

test("Go 1.19 writes DWARF 4 in SHF_COMPRESSED zlib sections (not .zdebug_*)", () => {
  const sections = sh(["readelf", "-SW", buildGo("plain")]);
  expect(sections).toMatch(/\.debug_info\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+\S+\s+C\s/);
  expect(sections).not.toMatch(/\.zdebug_/);
  expect(sh(["readelf", "--debug-dump=info", buildGo("plain")])).toMatch(/Version:\s+4\n/);
});

describe.each([
  ["plain build (compressed DWARF)", "plain"],
  ["-ldflags=-compressdwarf=false", "uncompressed"],
] as const)("%s: every function as readelf describes it", (_what, variant) => {
  const bin = buildGo(variant);
  const info = DebugInfo.fromElf(elfOf(bin))!;
  const fns = [...info.functions()];
  const dies = readelfDies(bin);
  const lists = readelfLocLists(bin);
  const concrete = [...dies.values()].filter((d) => d.tag === "DW_TAG_subprogram" && d.attrs.has("DW_AT_low_pc"));
  const byPc = new Map(concrete.map((d) => [hexOf(d.attrs.get("DW_AT_low_pc"))!, d]));

  test("names, parameters, results and type names", () => {
    expect(info.warnings).toEqual([]);
    expect(fns.length).toBe(concrete.length);
    expect(fns.length).toBeGreaterThan(1000);
    const typeName = (c: RDie) => {
      const t = inherited(dies, c, "DW_AT_type");
      return t ? (refOf(dies, t.die, "DW_AT_type")?.attrs.get("DW_AT_name") ?? "?") : "void";
    };
    for (const f of fns) {
      const d = byPc.get(f.lowPc)!;
      const params = d.children.filter((c) => c.tag === "DW_TAG_formal_parameter");
      const isResult = (c: RDie) => inherited(dies, c, "DW_AT_variable_parameter")?.value === "1";
      const describe = (cs: RDie[]) => cs.map((c) => `${inherited(dies, c, "DW_AT_name")?.value} ${typeName(c)}`);
      expect({ name: f.name, params: f.params.map((p) => `${p.name} ${p.type.name}`), results: f.results.map((p) => `${p.name} ${p.type.name}`) }).toEqual({
        name: inherited(dies, d, "DW_AT_name")!.value,
        params: describe(params.filter((c) => !isResult(c))),
        results: describe(params.filter(isResult)),
      });
      expect(f.language).toBe("go");
    }
  });

  test("where each parameter is at the entry", () => {
    let registers = 0;
    let pieces = 0;
    for (const f of fns) {
      const d = byPc.get(f.lowPc)!;
      const params = d.children.filter((c) => c.tag === "DW_TAG_formal_parameter");
      const ours = [...f.params, ...f.results];
      // Our list is params then results; readelf's is DIE order. Match by name.
      for (const c of params) {
        const name = inherited(dies, c, "DW_AT_name")?.value;
        const p = ours.find((x) => x.name === name)!;
        const loc = c.attrs.get("DW_AT_location");
        let expected = "?";
        if (loc && /location list/.test(loc)) {
          const e = lists.get(hexOf(loc)!)?.find((x) => f.entryPc >= x.start && f.entryPc < x.end);
          if (e) expected = canonicalExpr(e.expr, "cfa");
        } else if (loc) {
          expected = canonicalExpr(blockExpr(loc) ?? "unparsed", "cfa");
        }
        if (expected === "other") continue;
        expect(`${f.name}(${name}) ${canonicalLocation(p.location)}`).toBe(`${f.name}(${name}) ${expected}`);
        if (p.location.kind === "register") registers++;
        if (p.location.kind === "pieces") pieces++;
      }
    }
    expect(registers).toBeGreaterThan(500);
    expect(pieces).toBeGreaterThan(100);
  });
});

describe("the fixture's functions", () => {
  const info = DebugInfo.fromElf(elfOf(buildGo("plain")))!;
  const fn = (n: string) => info.functionByName(n)!;
  const sig = (n: string) => formatSignature(fn(n));

  test("int, string, []byte, bool, error, pointer; two results", () => {
    expect(sig("main.Basic")).toBe("func main.Basic(n int, s string, b []uint8, ok bool, err error, p *main.Point) (int, error)");
    const [n, s, b, ok, err, p] = fn("main.Basic").params;
    expect([n!.type.kind, n!.type.size, n!.type.signed]).toEqual(["int", 8, true]);
    expect([s!.type.kind, s!.type.isString, s!.type.size, s!.type.members!.map((m) => m.name)]).toEqual(["go-string", true, 16, ["str", "len"]]);
    expect([b!.type.kind, b!.type.target!.name, b!.type.members!.map((m) => m.name)]).toEqual(["go-slice", "uint8", ["array", "len", "cap"]]);
    expect([ok!.type.kind, err!.type.kind, err!.type.size]).toEqual(["bool", "go-interface", 16]);
    expect([p!.type.kind, p!.type.target!.name, p!.type.target!.members!.map((m) => m.name)]).toEqual(["pointer", "main.Point", ["X", "Y"]]);
    expect(s!.location).toEqual({ kind: "pieces", pieces: [{ size: 8, location: { kind: "register", reg: 3, name: "rbx" } }, { size: 8, location: { kind: "register", reg: 2, name: "rcx" } }] });
    expect(fn("main.Basic").results.map((r) => r.name)).toEqual(["~r0", "~r1"]);
    expect(fn("main.Basic").returnType).toBeUndefined();
  });

  test("named results, methods, stack-passed arguments, maps, channels, funcs, interfaces", () => {
    expect(sig("main.Named")).toBe("func main.Named(a int, b int) (sum int, msg string)");
    expect(sig("main.(*Counter).Add")).toBe("func main.(*Counter).Add(c *main.Counter, delta int64, label string) int64");
    expect(sig("main.Point.Scaled")).toBe("func main.Point.Scaled(p main.Point, f float64) main.Point");
    const many = fn("main.Many").params;
    expect(many.slice(8).map((p) => canonicalLocation(p.location))).toEqual(["r11", "[cfa+0]", "[cfa+8]"]);
    const c = fn("main.Containers").params.map((p) => p.type.kind);
    expect(c).toEqual(["go-map", "go-chan", "go-func", "go-interface", "array", "uint"]);
    expect(fn("main.Containers").params[4]!.type.count).toBe(4);
    expect(fn("main.Floats").params.map((p) => canonicalLocation(p.location))).toEqual(["xmm0", "xmm1", "rax", "rbx", "rcx"]);
  });
});

test("no symbol table: functions are found through the DWARF's own names, with the same answers", () => {
  const plain = DebugInfo.fromElf(elfOf(buildGo("plain")))!;
  const stripped = elfOf(buildGo("nosymtab"));
  expect(stripped.section(".symtab")).toBeUndefined();
  const info = DebugInfo.fromElf(stripped)!;
  for (const name of ["main.Basic", "main.(*Counter).Add", "main.Many", "runtime.mallocgc"]) {
    const a = plain.functionByName(name)!;
    const b = info.functionByName(name)!;
    expect(b).toBeDefined();
    expect(formatSignature(b)).toBe(formatSignature(a));
    expect(b.params.map((p) => canonicalLocation(p.location))).toEqual(a.params.map((p) => canonicalLocation(p.location)));
    expect(info.functionAt(a.lowPc + 1)!.name).toBe(name);
  }
});

test.each([
  ["-ldflags=-w", "w"],
  ["-ldflags=-s (Go 1.19 drops DWARF with the symbol table on ELF)", "s"],
] as const)("%s: no DWARF, so no DebugInfo, and the lookup says why", (_what, variant) => {
  const bin = buildGo(variant);
  expect(sh(["readelf", "-SW", bin])).not.toMatch(/debug_info/);
  const elf = elfOf(bin);
  expect(DebugInfo.fromElf(elf)).toBeUndefined();
  const r = findDebugInfo(elf, bin, hostOpener);
  expect(r.info).toBeUndefined();
  expect(r.notes).toEqual([`${bin} has no debug info of its own`, `${bin} has no GNU build-id`, `${bin} has no .gnu_debuglink`]);
});
