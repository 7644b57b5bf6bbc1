// The symbolizer against gdb's `info symbol` (ELF symbol tables, the separate debug file of libc
// found by build id) and `go tool addr2line` (Go's pclntab, for a stripped Go binary), at the
// first and last byte of every function and at random addresses, with the files placed in memory
// the way ld.so maps them. Then 100,000 distinct addresses, timed.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile, PT_LOAD, STT, SHN_UNDEF } from "../../lib/elf.ts";
import { AddressSpace, mappingsFromMapsEntries, type Mapping } from "../../lib/unwind/address-space.ts";
import { parseMaps, readMaps } from "../../lib/proc/maps.ts";
import { Symbolizer, buildId, debugFilePaths, frameLabel } from "../../lib/unwind/symbolize.ts";
import { buildChain, buildGoChain, WORK } from "./unwind-fixtures.ts";
import { goEnv } from "../fixtures/go.ts";
import { randomFloats } from "../fixtures/fuzz/mutate.ts";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
const LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";

/** The mappings ld.so (or the kernel) makes for `elf` loaded at `base` (0 for a non-PIE executable). */
function loadedMappings(elf: ElfFile, base: number): Mapping[] {
  const page = 4096;
  return elf.segments
    .filter((s) => s.type === PT_LOAD)
    .map((s) => {
      const start = base + Math.floor(s.vaddr / page) * page;
      return { start, end: base + Math.ceil((s.vaddr + s.memsz) / page) * page, offset: Math.floor(s.offset / page) * page, path: elf.path, perms: s.flags & 1 ? "r-xp" : "r--p" };
    });
}

function openDebug(elf: ElfFile): ElfFile | undefined {
  for (const p of debugFilePaths(elf)) {
    try {
      const d = new ElfFile(openSync(p, "r"), p);
      if (buildId(d) === buildId(elf)) return d;
      closeSync(d.fd);
    } catch {
      // not installed
    }
  }
  return undefined;
}

/** Addresses to look up: each function's first and last byte, the byte after it, and random ones in .text. */
function probeAddresses(elf: ElfFile, extra: ElfFile | undefined, random: number, seed: number): number[] {
  const set = new Set<number>();
  for (const f of [elf, extra]) {
    if (!f) continue;
    for (const s of f.symbols()) {
      if (s.shndx === SHN_UNDEF || (s.type !== STT.FUNC && s.type !== STT.GNU_IFUNC) || s.value === 0) continue;
      set.add(s.value);
      if (s.size > 0) {
        set.add(s.value + s.size - 1);
        set.add(s.value + s.size);
      }
    }
  }
  const text = elf.section(".text")!;
  const rand = randomFloats(seed);
  for (let i = 0; i < random; i++) set.add(text.addr + Math.floor(rand() * text.size));
  return [...set].sort((a, b) => a - b);
}

interface GdbSymbol {
  name?: string;
  offset: number;
}

/** gdb's `info symbol` for each address (gdb loads libc's debug file by build id itself). */
function gdbInfoSymbol(path: string, addrs: number[]): GdbSymbol[] {
  const cmds = join(WORK, "info-symbol.gdb");
  writeFileSync(cmds, addrs.map((a) => `info symbol 0x${a.toString(16)}\n`).join(""));
  // Linkage names, as the symbol tables hold them (gdb would demangle C++ and rewrite Go names).
  const settings = ["set debuginfod enabled off", "set print demangle off", "set print asm-demangle off"].flatMap((c) => ["-ex", c]);
  const r = Bun.spawnSync(["gdb", "-batch", "-nx", ...settings, "-x", cmds, path], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  const lines = r.stdout.toString().split("\n").filter((l) => / in section |^No symbol matches/.test(l));
  if (lines.length !== addrs.length) throw new Error(`gdb answered ${lines.length} of ${addrs.length} 'info symbol' queries for ${path}: ${r.stderr}`);
  return lines.map((l) => {
    const m = /^(.+?)(?: \+ (\d+))? in section /.exec(l);
    return m ? { name: m[1]!, offset: Number(m[2] ?? 0) } : { offset: 0 };
  });
}

/** Every function name defined at each address, to accept the alias gdb prefers when it is not ours. */
function namesByAddress(files: (ElfFile | undefined)[]): Map<number, Set<string>> {
  const m = new Map<number, Set<string>>();
  for (const f of files) {
    for (const s of f?.functions() ?? []) {
      if (!m.has(s.value)) m.set(s.value, new Set());
      m.get(s.value)!.add(s.name);
    }
  }
  return m;
}

function compareWithGdb(path: string, base: number, withDebug: boolean) {
  const fd = openSync(path, "r");
  const elf = new ElfFile(fd, path);
  const debug = withDebug ? openDebug(elf) : undefined;
  if (withDebug) expect(debug).toBeDefined(); // Debian's libc6-dbg
  const space = new AddressSpace(loadedMappings(elf, base), () => elf);
  const sym = new Symbolizer({ debugFile: () => debug });
  const addrs = probeAddresses(elf, debug, 300, 7);
  const ref = gdbInfoSymbol(path, addrs);
  const aliases = namesByAddress([elf, debug]);
  const sizeless = new Set([elf, debug].flatMap((f) => (f ? f.functions() : [])).filter((s) => s.size === 0).map((s) => `${s.value}:${s.name}`));
  let named = 0;
  let skipped = 0;
  const mismatches: string[] = [];
  addrs.forEach((a, i) => {
    const ours = sym.symbolize(space, base + a);
    const g = ref[i]!;
    if (!g.name) {
      if (ours.known) mismatches.push(`0x${a.toString(16)}: gdb none, ours ${frameLabel(ours, { offsets: true })}`);
      return;
    }
    const gStart = a - g.offset;
    const gName = g.name.replace(/@plt$/, "");
    // gdb also answers with labels that are not functions, and with a sizeless alias of a sized
    // function past that function's end (Go's runtime.text at the first function): not ours to name.
    if (!aliases.get(gStart)?.has(gName) || (sizeless.has(`${gStart}:${gName}`) && aliases.get(gStart)!.size > 1)) {
      skipped++;
      return;
    }
    if (!ours.known || a - ours.offset !== gStart) {
      mismatches.push(`0x${a.toString(16)}: gdb ${g.name}+${g.offset}, ours ${frameLabel(ours, { offsets: true })}`);
      return;
    }
    named++;
  });
  closeSync(fd);
  if (debug) closeSync(debug.fd);
  expect(skipped).toBeLessThan(10);
  return { addrs: addrs.length, named, mismatches };
}

describe("symbolizer against gdb's info symbol", () => {
  const cases: [string, () => string, number, boolean][] = [
    ["gcc fixture (.symtab, PIE)", buildChain, 0x555555554000, false],
    ["libc (.dynsym + libc6-dbg's .symtab by build id)", () => LIBC, 0x7f0012345000, true],
    ["libstdc++ (.dynsym only)", () => LIBSTDCXX, 0x7f1000000000, false],
    ["Go, not stripped (.symtab, non-PIE)", () => buildGoChain(false), 0, false],
  ];
  for (const [name, path, base, withDebug] of cases) {
    test(name, () => {
      const r = compareWithGdb(path(), base, withDebug);
      console.log(`${name}: ${r.addrs} addresses, ${r.named} named alike, ${r.mismatches.length} differ`);
      expect(r.mismatches.slice(0, 15)).toEqual([]);
      expect(r.named).toBeGreaterThan(100);
    }, 120_000);
  }
});

test("stripped Go binary: names from .gopclntab equal `go tool addr2line`", () => {
  const bin = buildGoChain(true);
  const fd = openSync(bin, "r");
  const elf = new ElfFile(fd, bin);
  expect(elf.section(".symtab")).toBeUndefined();
  const space = new AddressSpace(loadedMappings(elf, 0), () => elf);
  const sym = new Symbolizer();
  const text = elf.section(".text")!;
  const rand = randomFloats(11);
  const addrs = Array.from({ length: 2000 }, () => text.addr + Math.floor(rand() * text.size));
  const r = Bun.spawnSync(["go", "tool", "addr2line", bin], { stdin: Buffer.from(addrs.map((a) => `0x${a.toString(16)}\n`).join("")), stdout: "pipe", stderr: "pipe", env: goEnv });
  const lines = r.stdout.toString().split("\n");
  expect(lines.length).toBeGreaterThanOrEqual(addrs.length * 2);
  let named = 0;
  addrs.forEach((a, i) => {
    const ref = lines[i * 2]!;
    const ours = sym.symbolize(space, a);
    if (ref === "?") expect(ours.known).toBe(false);
    else {
      expect(ours.symbol).toBe(ref);
      named++;
    }
  });
  console.log(`Go stripped: ${named} of ${addrs.length} addresses named alike`);
  expect(named).toBeGreaterThan(1900);
  closeSync(fd);
});

test("unknown code: [unknown] with the file and offset; outside every mapping: [unknown]", () => {
  const bin = buildChain();
  const fd = openSync(bin, "r");
  const elf = new ElfFile(fd, bin);
  const maps = mappingsFromMapsEntries(parseMaps(
    `555555554000-555555555000 r--p 00000000 08:01 1234 ${bin}\n555555555000-555555556000 r-xp 00001000 08:01 1234 ${bin}\n7ffff7fc8000-7ffff7fca000 r-xp 00000000 00:00 0 [vdso]\n`,
  ));
  const space = new AddressSpace(maps, (m) => (m.path === bin ? elf : undefined));
  const sym = new Symbolizer();
  // The PLT has no function symbol.
  const plt = elf.section(".plt")!;
  const f = sym.symbolize(space, 0x555555554000 + plt.addr + 4);
  expect(f).toMatchObject({ known: false, symbol: "[unknown]", file: bin, fileOffset: plt.offset + 4 });
  expect(frameLabel(f, { offsets: true })).toBe(`[unknown] (chain+0x${(plt.offset + 4).toString(16)})`);
  expect(frameLabel(f)).toBe("[unknown] (chain)");
  const vdso = sym.symbolize(space, 0x7ffff7fc8010);
  expect(frameLabel(vdso)).toBe("[unknown] ([vdso])");
  const none = sym.symbolize(space, 0x1000);
  expect(none).toMatchObject({ known: false, file: "" });
  expect(frameLabel(none)).toBe("[unknown]");
  // An opener that fails: the file's frames are unknown, and the AddressSpace keeps the reason.
  const failing = new AddressSpace(maps, () => {
    throw new Error(`cannot open ${bin} in the target's view`);
  });
  expect(sym.symbolize(failing, 0x555555555000 + 0x100)).toMatchObject({ known: false, file: bin });
  expect([...failing.openErrors.values()]).toEqual([`cannot open ${bin} in the target's view`]);
  closeSync(fd);
});

test("mappings of a live process: /proc/self/maps as lib/proc/maps.ts reads it", () => {
  const fromEntries = mappingsFromMapsEntries(readMaps(process.pid));
  const libc = fromEntries.find((m) => m.path.endsWith("/libc.so.6") && m.perms?.includes("x"));
  expect(libc).toBeDefined();
  const st = statSync(libc!.path);
  // Its key: the device as maps prints it, and the inode the path names.
  expect(libc!.key).toMatch(new RegExp(`^[0-9a-f]{2,}:[0-9a-f]{2,}:${st.ino}$`));
  // getpid's entry in this very process: the file's symbol, through the mapping's load bias.
  const elf = new ElfFile(openSync(libc!.path, "r"), libc!.path);
  const getpid = elf.functions().find((s) => s.name === "getpid")!;
  const pc = libc!.start - libc!.offset + elf.vaddrToOffset(getpid.value)!;
  const space = new AddressSpace(fromEntries, (m) => (m.path === libc!.path ? elf : undefined));
  expect(new Symbolizer().symbolize(space, pc)).toMatchObject({ known: true, symbol: "getpid", offset: 0 });
  closeSync(elf.fd);
});

test("speed: 100,000 distinct addresses in libc (with its debug symbols)", () => {
  const fd = openSync(LIBC, "r");
  const elf = new ElfFile(fd, LIBC);
  const debug = openDebug(elf);
  const base = 0x7f0012345000;
  const space = new AddressSpace(loadedMappings(elf, base), () => elf);
  const sym = new Symbolizer({ debugFile: () => debug });
  const text = elf.section(".text")!;
  const addrs = new Set<number>();
  const rand = randomFloats(3);
  while (addrs.size < 100_000) addrs.add(base + text.addr + Math.floor(rand() * text.size));
  let t = performance.now();
  sym.table(elf, space.mappings[0]);
  const buildMs = performance.now() - t;
  t = performance.now();
  let known = 0;
  for (const a of addrs) if (sym.symbolize(space, a).known) known++;
  const ms = performance.now() - t;
  console.log(`symbolize: table of ${sym.table(elf).size} functions built in ${buildMs.toFixed(0)} ms; 100,000 distinct addresses in ${ms.toFixed(0)} ms (${known} named)`);
  expect(known).toBeGreaterThan(90_000);
  closeSync(fd);
  if (debug) closeSync(debug.fd);
}, 60_000);
