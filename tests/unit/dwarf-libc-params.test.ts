// One function's parameters through the lookup path probe uses (functionAt on an address, in
// libc6-dbg's zlib-compressed debug file): for ~300 exported libc functions spread over the whole
// library, against gdb's view of the same addresses (its Python API: the arguments of the function
// block at each pc, with gdb's type names); and for every function of libc, against the reader's
// other path (every unit parsed whole, as `functions()` does), locations, return types and
// declarations included; and the same for libstdc++'s debug build (C++: names qualified by their
// namespaces and classes), plain and compressed. A faster lookup must find what a full read finds.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { buildId, findDebugInfo, hostOpener, type DebugFunction, type DebugInfo } from "../../lib/dwarf/index.ts";
import { sh } from "../fixtures/dwarf/build.ts";

// gdb reading libc's debug info is slow on a loaded 2-CPU machine.
setDefaultTimeout(120_000);

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
const opened: ElfFile[] = [];
const tmp = mkdtempSync(join(tmpdir(), "dwarf-libc-params-"));
afterAll(() => {
  for (const e of opened) hostOpener.release(e);
  rmSync(tmp, { recursive: true, force: true });
});

function open(path: string): ElfFile {
  const e = hostOpener.open(path);
  if (!e) throw new Error(`cannot open ${path}`);
  opened.push(e);
  return e;
}

/** A fresh reader of libc's debug file (nothing cached from another test). */
function libcInfo(): DebugInfo {
  const elf = open(LIBC);
  const id = buildId(elf)!;
  const path = `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
  if (!existsSync(path)) throw new Error(`${path} is missing: install Debian's libc6-dbg (apt-get install -y libc6-dbg)`);
  const r = findDebugInfo(elf, LIBC, { open: (p) => { const e = hostOpener.open(p); if (e) opened.push(e); return e; } });
  if (!r.info) throw new Error(`no debug info found for ${LIBC}: ${r.notes.join("; ")}`);
  return r.info;
}

/** Every 8th distinct address of libc's exported functions, in address order: ~300 over the whole library. */
function sampleAddresses(): number[] {
  const addrs = [...new Set(open(LIBC).functions().map((s) => s.value).filter((v) => v > 0))].sort((a, b) => a - b);
  return addrs.filter((_, i) => i % 8 === 0);
}

type Params = [string, string][];

/** gdb's arguments of the function whose block holds each pc; null where gdb knows no function there. */
function gdbParams(pcs: number[]): Map<number, Params | null> {
  const script = join(tmp, "params.py");
  writeFileSync(
    script,
    [
      "import gdb, json",
      `for pc in ${JSON.stringify(pcs)}:`,
      "    b = gdb.block_for_pc(pc)",
      "    while b is not None and b.function is None:",
      "        b = b.superblock",
      "    args = None if b is None else [[s.name, str(s.type)] for s in b if s.is_argument]",
      "    print('PARAMS ' + json.dumps([pc, args]))",
    ].join("\n"),
  );
  const out = sh(["gdb", "-batch", "-nx", "-ex", `source ${script}`, LIBC]);
  const result = new Map<number, Params | null>();
  for (const line of out.split("\n")) {
    if (!line.startsWith("PARAMS ")) continue;
    const [pc, args] = JSON.parse(line.slice(7)) as [number, Params | null];
    result.set(pc, args);
  }
  return result;
}

function ours(f: DebugFunction | undefined): Params | null {
  return f ? f.params.map((p) => [p.name, p.type.name]) : null;
}

describe("libc with libc6-dbg: parameters of functions found by address", () => {
  const pcs = sampleAddresses();

  test("~300 exported functions spread over libc: names and type names equal gdb's", () => {
    expect(pcs.length).toBeGreaterThanOrEqual(250);
    const info = libcInfo();
    const gdb = gdbParams(pcs);
    expect(gdb.size).toBe(pcs.length);
    const mine = new Map(pcs.map((pc) => [pc, ours(info.functionAt(pc))]));
    expect(info.warnings).toEqual([]);
    // Compared one address at a time, so that a difference names its function.
    for (const pc of pcs) expect({ pc: pc.toString(16), params: mine.get(pc) }).toEqual({ pc: pc.toString(16), params: gdb.get(pc) });
    // Most exported functions are C with DWARF (the rest: assembler, which gives no signature).
    const withDwarf = pcs.filter((pc) => mine.get(pc) !== null);
    expect(withDwarf.length).toBeGreaterThanOrEqual(200);
    expect(withDwarf.reduce((n, pc) => n + mine.get(pc)!.length, 0)).toBeGreaterThanOrEqual(400);
  });

  test("every function of libc: found by its address as a read of every unit whole finds it, locations included", () => {
    const fast = libcInfo();
    const whole = libcInfo();
    // functions() parses each unit whole and lists its functions in DIE order.
    const all = [...whole.functions()];
    expect(whole.warnings).toEqual([]);
    expect(all.length).toBeGreaterThanOrEqual(3000);
    const byUnit = Map.groupBy(all, (f) => f.unitOffset);
    for (const f of all) {
      // What functionAt promises: of the unit's functions holding the address, the smallest.
      const want = smallestHolding(byUnit.get(f.unitOffset)!, f.lowPc)!;
      const got = fast.functionAt(f.lowPc);
      expect(got && describeFn(got)).toEqual(describeFn(want));
    }
    expect(fast.warnings).toEqual([]);
  });
});

function smallestHolding(fns: DebugFunction[], pc: number): DebugFunction | undefined {
  let best: DebugFunction | undefined;
  let size = Infinity;
  for (const f of fns) {
    for (const r of f.ranges) {
      if (pc >= r.start && pc < r.end && r.end - r.start < size) {
        best = f;
        size = r.end - r.start;
      }
    }
  }
  return best;
}

describe("C++: libstdc++'s debug build (libstdc++6-12-dbg), plain and zlib-compressed", () => {
  const plain = "/usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6.0.30";

  function reader(path: string): DebugInfo {
    if (!existsSync(path)) throw new Error(`${path} is missing: install Debian's libc++ debug build (apt-get install -y libstdc++6-12-dbg)`);
    const info = findDebugInfo(open(path), path, { open: () => undefined }).info;
    if (!info) throw new Error(`${path} has no DWARF`);
    return info;
  }

  function zlibCopy(): string {
    const out = join(tmp, "libstdc++-zlib.so");
    if (!existsSync(out)) sh(["objcopy", "--compress-debug-sections=zlib", reader(plain).path, out]);
    return out;
  }

  test("compressed, looked up in a scrambled order (back and forth across the sections): what the plain file gives", () => {
    const fromPlain = reader(plain);
    const fromZlib = reader(zlibCopy());
    const addrs = [...new Set(open(plain).functions().map((s) => s.value).filter((v) => v > 0))].sort((a, b) => a - b);
    // A fixed scramble: every 5th address, visited by a stride that jumps across the library.
    const some = addrs.filter((_, i) => i % 5 === 0);
    const order = some.map((_, i) => some[(i * 97) % some.length]!);
    expect(new Set(order).size).toBe(some.length);
    let found = 0;
    for (const pc of order) {
      const want = fromPlain.functionAt(pc);
      const got = fromZlib.functionAt(pc);
      expect(got && describeFn(got)).toEqual(want && describeFn(want));
      if (got) found++;
    }
    expect(found).toBeGreaterThanOrEqual(500);
    expect(fromZlib.warnings).toEqual([]);
  });

  test.each([
    ["plain", () => plain],
    ["compressed (zlib)", zlibCopy],
  ])("%s: every function found by its address as a read of every unit whole finds it, C++ names and scopes included", (_what, path) => {
    const file = path();
    const whole = reader(file);
    const fast = reader(file);
    const all = [...whole.functions()];
    expect(whole.warnings).toEqual([]);
    expect(all.length).toBeGreaterThanOrEqual(5000);
    expect(all.filter((f) => f.language === "c++" && f.name.includes("::")).length).toBeGreaterThanOrEqual(3000);
    const byUnit = Map.groupBy(all, (f) => f.unitOffset);
    // Every 8th function: ~1400 lookups. An inline function from a header is described by every
    // unit that used it, at the one address the linker kept: the lookup may take another unit's
    // copy (the first .debug_aranges names), which must then be what that unit's read finds.
    let sameUnit = 0;
    const sample = all.filter((_, i) => i % 8 === 0);
    for (const f of sample) {
      const got = fast.functionAt(f.lowPc);
      expect(got).toBeDefined();
      const want = smallestHolding(byUnit.get(got!.unitOffset) ?? [], f.lowPc);
      expect(want).toBeDefined();
      expect(describeFn(got!)).toEqual(describeFn(want!));
      if (got!.unitOffset === f.unitOffset) sameUnit++;
    }
    // (About two thirds in libstdc++: the rest are such shared copies.)
    expect(sameUnit).toBeGreaterThanOrEqual(sample.length / 2);
    expect(fast.warnings).toEqual([]);
  });
});

/** What a lookup returns, as plain data (the declaration file is read on access: included). */
function describeFn(f: DebugFunction) {
  return {
    name: f.name,
    linkageName: f.linkageName,
    lowPc: f.lowPc,
    highPc: f.highPc,
    entryPc: f.entryPc,
    ranges: f.ranges,
    params: f.params.map((p) => ({ name: p.name, type: p.type.name, resolved: p.type.resolved.name, size: p.type.resolved.size, location: p.location, source: p.locationSource, artificial: p.artificial })),
    returnType: f.returnType?.name,
    variadic: f.variadic,
    language: f.language,
    declFile: f.declFile,
    declLine: f.declLine,
    external: f.external,
    unitOffset: f.unitOffset,
    dieOffset: f.dieOffset,
  };
}
