// The DWARF reader on a gcc-built C fixture, against gdb (prototypes, type names, ptype) and
// readelf (parameter names, enumerators, location lists at each function's entry), for -O0 and
// -O2, DWARF 5 and 4, plain and compressed (SHF_COMPRESSED zlib and zstd, Go-style .zdebug_*).
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { DebugInfo, formatSignature, type DebugFunction } from "../../lib/dwarf/index.ts";
import { buildCart, buildParams, compressed, sh } from "../fixtures/dwarf/build.ts";
import { blockExpr, canonicalExpr, canonicalLocation, frameBaseOf, gdbEntryRegisters, gdbFunctions, hexOf, inherited, readelfDies, readelfLocLists, refOf, type RDie } from "../fixtures/dwarf/readelf.ts";

// gdb, readelf and go builds are slow on a loaded 2-CPU machine.
setDefaultTimeout(60_000);

const fds: number[] = [];
afterAll(() => fds.forEach((fd) => closeSync(fd)));

function open(path: string): DebugInfo {
  const fd = openSync(path, "r");
  fds.push(fd);
  const info = DebugInfo.fromElf(new ElfFile(fd, path));
  if (!info) throw new Error(`${path} has no DWARF`);
  return info;
}

function all(info: DebugInfo): DebugFunction[] {
  const fns = [...info.functions()];
  expect(info.warnings).toEqual([]);
  return fns;
}

/** Concrete subprograms (with code) of readelf's dump, by name. */
function readelfFunctions(dies: Map<number, RDie>): Map<string, RDie> {
  const out = new Map<string, RDie>();
  for (const d of dies.values()) {
    if (d.tag !== "DW_TAG_subprogram" || !(d.attrs.has("DW_AT_low_pc") || d.attrs.has("DW_AT_ranges"))) continue;
    out.set(inherited(dies, d, "DW_AT_name")!.value, d);
  }
  return out;
}

/** [what, build, readelf prints location list addresses as absolute] (not for clang's offset pairs). */
const builds: [string, () => string, boolean?][] = [
  ["gcc -O0 (DWARF 5)", () => buildParams("params-O0", ["-O0"])],
  ["gcc -O2 (DWARF 5)", () => buildParams("params-O2", ["-O2"])],
  ["gcc -O2 -gdwarf-4", () => buildParams("params-O2-dwarf4", ["-O2", "-gdwarf-4"])],
  ["gcc -O0 -gdwarf-4", () => buildParams("params-O0-dwarf4", ["-O0", "-gdwarf-4"])],
  ["gcc -O2, sections compressed (zlib)", () => compressed(buildParams("params-O2", ["-O2"]), "zlib")],
  ["gcc -O2, sections compressed (.zdebug_*)", () => compressed(buildParams("params-O2", ["-O2"]), "zlib-gnu")],
  ["gcc -O2, sections compressed (zstd)", () => compressed(buildParams("params-O2", ["-O2"]), "zstd")],
  ["clang -O0 (DWARF 5, indexed forms)", () => buildParams("params-clang-O0", ["-O0"], "clang"), false],
  ["clang -O2 (DWARF 5, indexed forms)", () => buildParams("params-clang-O2", ["-O2"], "clang"), false],
];

describe.each(builds)("%s", (_what, build, absoluteLists = true) => {
  const bin = build();
  const info = open(bin);
  const fns = all(info);
  const byName = new Map(fns.map((f) => [f.name, f]));
  const dies = readelfDies(bin);

  test("every function gdb lists, with gdb's prototype (type names included)", () => {
    const gdb = gdbFunctions(bin);
    expect(gdb.size).toBeGreaterThanOrEqual(30);
    expect([...byName.keys()].sort()).toEqual([...gdb.keys()].sort());
    for (const [name, proto] of gdb) expect(`${name}: ${formatSignature(byName.get(name)!, { names: false })}`).toBe(`${name}: ${proto}`);
  });

  test("parameter names as readelf shows them, in DIE order", () => {
    const re = readelfFunctions(dies);
    expect(re.size).toBe(fns.length);
    for (const f of fns) {
      const d = re.get(f.name)!;
      const names = d.children.filter((c) => c.tag === "DW_TAG_formal_parameter").map((c) => inherited(dies, c, "DW_AT_name")?.value ?? "");
      expect({ f: f.name, names: f.params.map((p) => p.name) }).toEqual({ f: f.name, names });
      if (d.attrs.has("DW_AT_low_pc")) expect(f.lowPc).toBe(hexOf(d.attrs.get("DW_AT_low_pc"))!);
      expect(f.variadic).toBe(d.children.some((c) => c.tag === "DW_TAG_unspecified_parameters"));
    }
  });

  test("where each parameter is at the entry: readelf's expression or location list entry covering low_pc", () => {
    const lists = readelfLocLists(bin);
    const re = readelfFunctions(dies);
    let registers = 0;
    let checked = 0;
    for (const f of fns) {
      const d = re.get(f.name)!;
      const frameBase = frameBaseOf(d.attrs.get("DW_AT_frame_base"));
      const params = d.children.filter((c) => c.tag === "DW_TAG_formal_parameter");
      params.forEach((c, i) => {
        const p = f.params[i]!;
        const loc = c.attrs.get("DW_AT_location");
        let expected: string;
        if (loc === undefined) {
          const cv = c.attrs.get("DW_AT_const_value");
          expected = cv !== undefined && /^-?\d+$/.test(cv) ? `const ${cv}` : "?";
        } else if (/location list/.test(loc)) {
          if (!absoluteLists) return; // checked against gdb below
          const entry = lists.get(hexOf(loc)!)?.find((e) => f.entryPc >= e.start && f.entryPc < e.end);
          expected = entry ? canonicalExpr(entry.expr, frameBase) : "?";
        } else {
          expected = canonicalExpr(blockExpr(loc) ?? "unparsed", frameBase);
        }
        // A frame slot below the CFA is filled by the prologue: at the entry the value is still
        // where the ABI put it, which is what the reader reports (checked against -O2 below).
        const ours = p.locationSource === "abi" ? canonicalLocation(p.frameLocation!) : canonicalLocation(p.location);
        if (expected === "other") return;
        expect(`${f.name}(${p.name}) ${ours}`).toBe(`${f.name}(${p.name}) ${expected}`);
        checked++;
        if (p.location.kind === "register") registers++;
      });
    }
    expect(checked).toBeGreaterThan(absoluteLists ? 50 : 20);
    expect(registers).toBeGreaterThan(absoluteLists ? 20 : 10);
  });

  test("the register gdb's info scope names at the entry, for every parameter it places in one", () => {
    const gdb = gdbEntryRegisters(bin, fns.map((f) => ({ name: f.name, pc: f.entryPc })));
    let registers = 0;
    for (const f of fns) {
      const syms = gdb.get(f.name)!;
      for (const p of f.params) {
        const g = syms.get(p.name);
        if (g === undefined || g === "other") continue;
        // gdb reads the DWARF: compare with what DWARF said, before any ABI placement.
        const ours = p.locationSource === "abi" ? "other" : canonicalLocation(p.location);
        expect(`${f.name}(${p.name}) ${ours}`).toBe(`${f.name}(${p.name}) ${g}`);
        if (g !== "?") registers++;
      }
    }
    expect(registers).toBeGreaterThanOrEqual(/O2/.test(_what) ? 40 : 0);
  });
});

describe("types", () => {
  const bin = buildParams("params-O0", ["-O0"]);
  const info = open(bin);
  const fn = (n: string) => info.functionByName(n)!;

  test("typedefs keep their name and expose the base type; enums carry readelf's enumerators", () => {
    const n = fn("f_typedefs").params[0]!.type;
    expect([n.kind, n.name, n.size, n.resolved.kind, n.resolved.name, n.resolved.signed]).toEqual(["typedef", "size_t", 8, "uint", "unsigned long", false]);
    const acct = fn("f_typedefs").params[2]!.type;
    expect([acct.name, acct.target!.name, acct.resolved.name]).toEqual(["account_t", "my_id_t", "unsigned int"]);
    const color = fn("f_enum").params[0]!.type;
    const dies = readelfDies(bin);
    const enumDie = [...dies.values()].find((d) => d.tag === "DW_TAG_enumeration_type" && d.attrs.get("DW_AT_name") === "color")!;
    const expected = enumDie.children.map((e) => ({ name: e.attrs.get("DW_AT_name")!, value: BigInt(e.attrs.get("DW_AT_const_value")!) }));
    expect(color.enumerators).toEqual(expected);
    expect(color.enumerators!.find((e) => e.name === "BLUE")!.value).toBe(-1n);
    expect(color.signed).toBe(true);
    expect(fn("f_big_enum").params[0]!.type.enumerators!.find((e) => e.name === "HUGE_VALUE")!.value).toBe(0x7fffffffffffn);
  });

  test("strings, struct pointers, function pointers", () => {
    expect(fn("f_string").params[0]!.type.isString).toBe(true);
    expect(fn("f_const_string").params[0]!.type.isString).toBe(true);
    expect(fn("f_uint8").params[3]!.type.isString).toBe(false); // unsigned char *: bytes
    expect(fn("f_int").params[0]!.type.isString).toBe(false);
    const p = fn("f_struct_ptr").params[0]!.type;
    expect([p.kind, p.name, p.target!.kind, p.target!.name, p.target!.size]).toEqual(["pointer", "struct point *", "struct", "struct point", 8]);
    const cb = fn("f_callback").params[0]!.type;
    expect([cb.name, cb.resolved.kind, cb.resolved.target!.kind, cb.resolved.target!.params!.map((t) => t.name)]).toEqual(["callback_t", "pointer", "func", ["int", "const char *"]]);
    expect(fn("f_bool").params[0]!.type.kind).toBe("bool");
  });

  test("struct members as gdb's ptype /o shows them", () => {
    const l = fn("f_list").params[0]!.type.target!;
    const ptype = sh(["gdb", "-batch", "-nx", "-ex", "ptype /o struct list", bin]);
    // "/*      0      |       8 */    struct list *next;" and "/*     16: 0   |       4 */    unsigned int flags : 3;"
    const rows = [...ptype.matchAll(/\/\*\s+(\d+)(?::\s*(\d+))?\s+\|\s+(\d+) \*\/\s+(.*?)\s*(\w+)(\[\d+\])?(?: : (\d+))?;/g)].map((m) => ({
      offset: Number(m[1]),
      name: m[5]!,
      size: Number(m[3]),
      bitSize: m[7] ? Number(m[7]) : undefined,
    }));
    expect(rows.length).toBe(4);
    expect(l.members!.map((m) => ({ offset: m.offset, name: m.name, size: m.type.size, bitSize: m.bitSize }))).toEqual(rows);
    expect(l.members![0]!.type.target).toBe(l); // struct list *next: the same object, no endless nesting
  });
});

test("-O0: parameters in frame slots are placed by the ABI at the entry, as -O2's own DWARF places them", () => {
  const o0 = new Map(all(open(buildParams("params-O0", ["-O0"]))).map((f) => [f.name, f]));
  const o2 = all(open(buildParams("params-O2", ["-O2"])));
  let compared = 0;
  for (const f2 of o2) {
    const f0 = o0.get(f2.name)!;
    // Static functions may be cloned with another signature at -O2; the ABI binds external ones.
    if (!f2.external) continue;
    f2.params.forEach((p2, i) => {
      if (p2.location.kind !== "register" && p2.location.kind !== "pieces" && p2.location.kind !== "stack") return;
      const p0 = f0.params[i]!;
      expect(`${f2.name}(${p0.name}) ${canonicalLocation(p0.location)}`).toBe(`${f2.name}(${p2.name}) ${canonicalLocation(p2.location)}`);
      compared++;
    });
  }
  expect(compared).toBeGreaterThan(50);
  const many = o0.get("f_many")!;
  expect(many.params.filter((p) => p.locationSource === "abi").length).toBeGreaterThan(5);
  expect(many.params[0]!.frameLocation).toEqual({ kind: "stack", base: "cfa", offset: -20 });
});

test("-O2: a clone (.constprop) keeps its DWARF name, registers and constants; lookups by both names", () => {
  const bin = buildParams("params-O2", ["-O2"]);
  const info = open(bin);
  const nm = sh(["nm", bin]);
  const clone = /^([0-9a-f]+) t (f_clone\.\w+\.\d+)$/m.exec(nm)!;
  const f = info.functionAt(parseInt(clone[1]!, 16))!;
  expect(f.name).toBe("f_clone");
  expect(info.functionByName(clone[2]!)!.lowPc).toBe(f.lowPc);
  expect(info.functionByName("f_clone")!.lowPc).toBe(f.lowPc); // no symbol of that name: the DWARF index
  expect(f.params.map((p) => [p.name, canonicalLocation(p.location)])).toEqual([["a", "rdi"], ["s", "?"], ["dropped", "const 11"]]);
});

test("-O2: a function split into hot and .cold parts (DW_AT_ranges): both parts find it, the entry is the hot one", () => {
  for (const [bin, dwarf4] of [[buildParams("params-O2", ["-O2"]), false], [buildParams("params-O2-dwarf4", ["-O2", "-gdwarf-4"]), true]] as const) {
    const info = open(bin);
    const nm = sh(["nm", bin]);
    const hot = parseInt(/^([0-9a-f]+) T f_hotcold$/m.exec(nm)![1]!, 16);
    const cold = parseInt(/^([0-9a-f]+) t f_hotcold\.cold$/m.exec(nm)![1]!, 16);
    const f = info.functionAt(cold)!;
    expect([f.name, f.lowPc, f.entryPc, f.ranges.length, dwarf4]).toEqual(["f_hotcold", hot, hot, 2, dwarf4]);
    expect(f.ranges.some((r) => cold >= r.start && cold < r.end)).toBe(true);
    expect(info.functionAt(hot)!.dieOffset).toBe(f.dieOffset);
    expect(f.params.map((p) => canonicalLocation(p.location))).toEqual(["rdi", "rsi"]);
  }
});

test("functionAt inside a function, between functions, and past the code", () => {
  const info = open(buildParams("params-O2", ["-O2"]));
  const f = info.functionByName("f_many")!;
  expect(info.functionAt(f.lowPc + 3)!.name).toBe("f_many");
  expect(info.functionAt(f.highPc)?.name).not.toBe("f_many");
  expect(info.functionAt(0x10)).toBeUndefined();
  expect(info.functionByName("no_such_function")).toBeUndefined();
});

test("C++ (g++ -O2): names qualified as gdb lists them, this, references, lookups by mangled name", () => {
  const bin = buildCart();
  const info = open(bin);
  const ours = new Set(all(info).map((f) => f.name));
  // gdb: "11:	int shop::Cart::add(shop::Item const&, int);" -> "shop::Cart::add"
  const gdb = [...gdbFunctions(bin).values()].map((p) => {
    const n = p.replaceAll("(anonymous namespace)", "@");
    return n.slice(0, n.indexOf("(")).split(/[\s*&]+/).pop()!.replaceAll("@", "(anonymous namespace)");
  });
  expect([...ours].sort()).toEqual(gdb.sort());
  const add = info.functionByName("_ZN4shop4Cart3addERKNS_4ItemEi")!;
  expect(formatSignature(add)).toBe("int shop::Cart::add(const shop::Item &item, int count)");
  expect(add.params.map((p) => [p.name, p.artificial ?? false, canonicalLocation(p.location)])).toEqual([["this", true, "rdi"], ["item", false, "rsi"], ["count", false, "rdx"]]);
  expect(add.params[1]!.type.target!.members!.map((m) => `${m.type.name} ${m.name}`)).toEqual(["int id", "double price"]);
  const hidden = [...info.functions()].find((f) => f.name.endsWith("hidden"))!;
  expect(hidden.name).toBe("shop::(anonymous namespace)::hidden");
  expect(hidden.params.map((p) => p.type.name).sort()).toEqual(["int &", "int &&"]);
});

test("a binary without DWARF gives no DebugInfo", () => {
  const bin = buildParams("params-nodebug", ["-g0"]);
  const fd = openSync(bin, "r");
  fds.push(fd);
  expect(DebugInfo.fromElf(new ElfFile(fd, bin))).toBeUndefined();
});
