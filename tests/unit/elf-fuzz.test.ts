// Hostile ELF files: mutants of real binaries (a C PIE, a non-PIE, a stripped one, a Go program,
// a stripped Go PIE, libc) through everything probe parses before it attaches: the ELF reader,
// symbols and versions, PT_LOAD translation, Go detection, .gopclntab, function lookup and the
// x86 decoder. Every case must end in success or a ProbeError (an ElfError's message starting
// with the file's path), quickly and without unbounded memory.
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { put, SH, seedSections, shdrOffset } from "../fixtures/fuzz/mutate.ts";
import { classify, dir, elfMutants, elfSeeds, exerciseElf, type Outcome } from "../fixtures/fuzz/elf-seeds.ts";

const CASES_PER_SEED = 360;

describe("mutated ELF files", () => {
  test("every mutant parses or fails with a clean error naming the file", () => {
    const seeds = elfSeeds();
    for (const s of seeds) exerciseElf(s.path); // the seeds themselves parse
    Bun.gc(true);
    // Memory is bounded per input: the most one mutant grew the process (a file claiming
    // gigabytes must not get them). Growth over the whole loop is the garbage collector's timing,
    // and in a process shared with other test files, theirs.
    let maxStep = 0;
    const counts: Record<Outcome, number> = { ok: 0, clean: 0, "lib-error-not-probe-error": 0, "lib-error-without-path": 0, "raw-exception": 0 };
    const bySeed: Record<string, Record<string, number>> = {};
    const bad: string[] = [];
    const messages = new Map<string, number>();
    let slowest = { ms: 0, what: "" };
    const t0 = performance.now();
    let n = 0;
    for (const m of elfMutants(seeds, CASES_PER_SEED)) {
      const path = join(dir, `${m.seed}.mutant`);
      writeFileSync(path, m.bytes);
      const r0 = process.memoryUsage().rss;
      const c0 = performance.now();
      let err: unknown;
      try {
        exerciseElf(path);
      } catch (e) {
        err = e;
      }
      const ms = performance.now() - c0;
      maxStep = Math.max(maxStep, process.memoryUsage().rss - r0);
      const r = classify(path, err);
      const label = `${m.seed}#${m.index} [${m.what.join("; ")}]`;
      if (ms > slowest.ms) slowest = { ms, what: label };
      counts[r.outcome]++;
      (bySeed[m.seed] ??= {})[r.outcome] = (bySeed[m.seed]![r.outcome] ?? 0) + 1;
      if (r.outcome !== "ok") {
        const key = r.message.replaceAll(path, "PATH").replace(/0x[0-9a-f]+|\d+/g, "N");
        messages.set(key, (messages.get(key) ?? 0) + 1);
      }
      if (r.outcome !== "ok" && r.outcome !== "clean") {
        bad.push(`${label}: ${r.message}`);
        writeFileSync(join(dir, `fail-${m.seed}-${m.index}`), m.bytes);
      }
      n++;
    }
    const totalMs = performance.now() - t0;
    console.log(`ELF fuzz: ${n} cases in ${(totalMs / 1000).toFixed(1)} s, slowest ${slowest.ms.toFixed(0)} ms (${slowest.what}), most rss one case added ${(maxStep / 1e6).toFixed(0)} MB`);
    console.log(`outcomes: ${JSON.stringify(counts)}`);
    console.log(`by seed: ${JSON.stringify(bySeed)}`);
    const top = [...messages].sort((a, b) => b[1] - a[1]).slice(0, 40);
    console.log(`error messages (most frequent first):\n${top.map(([k, v]) => `  ${v}\t${k}`).join("\n")}`);
    if (bad.length) console.log(`not clean (${bad.length}), first 30:\n${bad.slice(0, 30).join("\n")}`);
    expect(n).toBeGreaterThanOrEqual(2000);
    expect(bad).toEqual([]);
    expect(totalMs).toBeLessThan(30_000);
    expect(slowest.ms).toBeLessThan(10_000);
    expect(maxStep).toBeLessThan(200e6);
  }, 300_000);
});

// ---------------------------------------------------------------------------------------------
// Named malformations: each one a hostile-input report, on a real binary.

type Edit = (b: Uint8Array) => Uint8Array | void;
const sh = (name: string, field: keyof typeof SH, width: 1 | 2 | 4 | 8, value: bigint | number): Edit => (b) => put(b, shdrOffset(b, name) + SH[field], width, value);
const eh = (offset: number, width: 1 | 2 | 4 | 8, value: bigint | number): Edit => (b) => put(b, offset, width, value);
const cut = (at: (b: Uint8Array) => number): Edit => (b) => b.slice(0, at(b));
const secOff = (b: Uint8Array, name: string) => seedSections(b).find((s) => s.name === name)!.offset;
const shoffOf = (b: Uint8Array) => Number(new DataView(b.buffer, b.byteOffset).getBigUint64(40, true));

export const NAMED: [string, "c" | "go", Edit[]][] = [
  ["e_phentsize 1", "c", [eh(54, 2, 1)]],
  ["e_phentsize 0", "c", [eh(54, 2, 0)]],
  ["e_shentsize 1", "c", [eh(58, 2, 1)]],
  ["e_shentsize 0", "c", [eh(58, 2, 0)]],
  ["e_shnum 65535", "c", [eh(60, 2, 0xffff)]],
  ["e_phnum 65535", "c", [eh(56, 2, 0xffff)]],
  ["extended numbering with a huge count in section 0", "c", [eh(60, 2, 0), (b) => put(b, shoffOf(b) + SH.size, 8, 1n << 40n)]],
  ["extended numbering with count 2^64-1", "c", [eh(60, 2, 0), (b) => put(b, shoffOf(b) + SH.size, 8, (1n << 64n) - 1n)]],
  ["e_shstrndx out of range", "c", [eh(62, 2, 0xfff0)]],
  ["e_shstrndx SHN_XINDEX with a huge sh_link in section 0", "c", [eh(62, 2, 0xffff), (b) => put(b, shoffOf(b) + SH.link, 4, 0xffffffff)]],
  ["e_phoff past the end", "c", [eh(32, 8, 1n << 40n)]],
  ["e_phoff 2^64-1", "c", [eh(32, 8, (1n << 64n) - 1n)]],
  ["e_shoff past the end", "c", [eh(40, 8, 1n << 40n)]],
  ["e_shoff 2^64-1", "c", [eh(40, 8, (1n << 64n) - 1n)]],
  ["e_shoff inside the last bytes", "c", [(b) => put(b, 40, 8, b.length - 10)]],
  ["section headers cut short", "c", [cut((b) => shoffOf(b) + 64 * 5 + 30)]],
  ["program headers cut short", "c", [cut(() => 64 + 56 * 2 + 7)]],
  ["only the ELF header", "c", [cut(() => 64)]],
  ["half the ELF header", "c", [cut(() => 40)]],
  [".symtab entsize 3", "c", [sh(".symtab", "entsize", 8, 3)]],
  [".symtab entsize 1", "c", [sh(".symtab", "entsize", 8, 1)]],
  [".symtab entsize 0", "c", [sh(".symtab", "entsize", 8, 0)]],
  [".symtab entsize 25 (does not divide)", "c", [sh(".symtab", "entsize", 8, 25)]],
  [".dynsym entsize 2^63", "c", [sh(".dynsym", "entsize", 8, 1n << 63n)]],
  [".symtab sh_link out of range", "c", [sh(".symtab", "link", 4, 0xffff)]],
  [".symtab sh_link 0xffffffff", "c", [sh(".symtab", "link", 4, 0xffffffff)]],
  [".dynsym sh_link to itself", "c", [(b) => put(b, shdrOffset(b, ".dynsym") + SH.link, 4, seedSections(b).find((s) => s.name === ".dynsym")!.index)]],
  [".gnu.version_r sh_link out of range", "c", [sh(".gnu.version_r", "link", 4, 0xfff)]],
  [".gnu.version_r sh_info huge", "c", [sh(".gnu.version_r", "info", 4, 0xffffffff)]],
  [".gnu.version_r vn_aux past the section", "c", [(b) => put(b, secOff(b, ".gnu.version_r") + 8, 4, 0xfffffff0)]],
  [".gnu.version_r vn_cnt 65535", "c", [(b) => put(b, secOff(b, ".gnu.version_r") + 2, 2, 0xffff)]],
  [".gnu.version shorter than .dynsym", "c", [sh(".gnu.version", "size", 8, 3)]],
  [".gnu.version size past the end", "c", [sh(".gnu.version", "size", 8, 1n << 40n)]],
  ["symbol name offset past .strtab", "c", [(b) => put(b, secOff(b, ".symtab") + 24 * 5, 4, 0xffffffff)]],
  ["section name offset past .shstrtab", "c", [sh(".text", "name", 4, 0xfffffff0)]],
  [".symtab size past the end", "c", [sh(".symtab", "size", 8, 1n << 32n)]],
  [".symtab size 2^63", "c", [sh(".symtab", "size", 8, 1n << 63n)]],
  [".symtab offset past the end", "c", [sh(".symtab", "offset", 8, 1n << 40n)]],
  [".symtab offset 2^64-8", "c", [sh(".symtab", "offset", 8, (1n << 64n) - 8n)]],
  [".strtab NOBITS", "c", [sh(".strtab", "type", 4, 8)]],
  [".symtab NOBITS", "c", [sh(".symtab", "type", 4, 8)]],
  [".shstrtab NOBITS", "c", [sh(".shstrtab", "type", 4, 8)]],
  [".bss (NOBITS) with a size past the end (legal)", "c", [sh(".bss", "size", 8, 1n << 40n)]],
  ["PT_LOAD filesz 2^63", "c", [eh(64 + 56 * 3 + 32, 8, 1n << 63n)]],
  ["PT_LOAD vaddr 2^64-1", "c", [eh(64 + 56 * 3 + 16, 8, (1n << 64n) - 1n)]],
  ["e_entry 2^64-1", "c", [eh(24, 8, (1n << 64n) - 1n)]],
  ["symbol value 2^64-1", "c", [(b) => put(b, secOff(b, ".symtab") + 24 * 30 + 8, 8, (1n << 64n) - 1n)]],
  ["symbol size 2^64-1", "c", [(b) => { for (let i = 1; i < 48; i++) put(b, secOff(b, ".symtab") + 24 * i + 16, 8, (1n << 64n) - 1n); }]],
  [".gopclntab nfunc 2^32-1", "go", [(b) => put(b, secOff(b, ".gopclntab") + 8, 8, 0xffffffff)]],
  [".gopclntab nfunc 2^53", "go", [(b) => put(b, secOff(b, ".gopclntab") + 8, 8, 1n << 53n)]],
  [".gopclntab functab offset past the table", "go", [(b) => put(b, secOff(b, ".gopclntab") + 64, 8, 0xffffffff)]],
  [".gopclntab funcname offset past the table", "go", [(b) => put(b, secOff(b, ".gopclntab") + 32, 8, (1n << 62n))]],
  [".gopclntab textStart 2^64-1", "go", [(b) => put(b, secOff(b, ".gopclntab") + 24, 8, (1n << 64n) - 1n)]],
  [".gopclntab cut to 16 bytes", "go", [sh(".gopclntab", "size", 8, 16)]],
  [".gopclntab size 2^40", "go", [sh(".gopclntab", "size", 8, 1n << 40n)]],
  [".gopclntab magic of Go 1.2", "go", [(b) => put(b, secOff(b, ".gopclntab"), 4, 0xfffffffb)]],
  [".gopclntab magic of Go 1.16", "go", [(b) => put(b, secOff(b, ".gopclntab"), 4, 0xfffffffa)]],
  [".go.buildinfo varint length huge", "go", [(b) => { const o = secOff(b, ".go.buildinfo") + 32; b.set([0xff, 0xff, 0xff, 0xff, 0x7f], o); }]],
  [".go.buildinfo pointer format, wild pointers", "go", [(b) => { const o = secOff(b, ".go.buildinfo"); b[o + 15] = 0; put(b, o + 16, 8, (1n << 64n) - 1n); put(b, o + 24, 8, 0x400000); }]],
  [".go.buildinfo size 2^40", "go", [sh(".go.buildinfo", "size", 8, 1n << 40n)]],
];

describe("named malformations", () => {
  const seeds = elfSeeds();
  const byKind = { c: readFileSync(seeds[0]!.path), go: readFileSync(seeds[3]!.path) };
  for (const [what, kind, edits] of NAMED) {
    test(what, () => {
      let b: Uint8Array = new Uint8Array(byKind[kind]);
      for (const e of edits) b = e(b) ?? b;
      const path = join(dir, `named-${what.replace(/[^a-z0-9]+/gi, "-")}`);
      writeFileSync(path, b);
      let err: unknown;
      const t0 = performance.now();
      try {
        exerciseElf(path);
      } catch (e) {
        err = e;
      }
      const r = classify(path, err);
      console.log(`${what}: ${r.outcome}${r.message ? `: ${r.message.replace(path, "PATH")}` : ""}`);
      expect(["ok", "clean"]).toContain(r.outcome);
      expect(performance.now() - t0).toBeLessThan(2000);
    });
  }

  test("extended section numbering (e_shnum 0, count in section 0) parses like the original", () => {
    const orig = readFileSync(seeds[0]!.path);
    const b = new Uint8Array(orig);
    const v = new DataView(b.buffer);
    const shoff = Number(v.getBigUint64(40, true));
    put(b, shoff + SH.size, 8, v.getUint16(60, true));
    put(b, shoff + SH.link, 4, v.getUint16(62, true));
    put(b, 60, 2, 0);
    put(b, 62, 2, 0xffff);
    const path = join(dir, "extended-numbering");
    writeFileSync(path, b);
    const names = (p: string) => {
      const fd = openSync(p, "r");
      try {
        return new ElfFile(fd, p).functions().map((s) => `${s.name} ${s.value}`);
      } finally {
        closeSync(fd);
      }
    };
    expect(names(path)).toEqual(names(seeds[0]!.path));
    expect(names(path).length).toBeGreaterThan(5);
  });
});

describe("sizes", () => {
  test("a 1 GiB symbol table in a sparse 3 GiB file is refused without reading it", () => {
    const path = join(dir, "sparse-3g");
    const seed = new Uint8Array(readFileSync(elfSeeds()[0]!.path));
    put(seed, shdrOffset(seed, ".symtab") + SH.offset, 8, 1n << 30n);
    put(seed, shdrOffset(seed, ".symtab") + SH.size, 8, 1n << 30n);
    writeFileSync(path, seed);
    truncateSync(path, 3 * 2 ** 30);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const fd = openSync(path, "r");
    try {
      expect(() => new ElfFile(fd, path).symbols()).toThrow(new RegExp(`^${path}: section \\.symtab claims 1073741824 bytes, more than probe reads at once \\(512 MiB\\)`));
    } finally {
      closeSync(fd);
      rmSync(path);
    }
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(100e6);
  });

  test("node's 85k functions still resolve quickly (new ElfFile + functions() on /usr/bin/node)", () => {
    const path = "/usr/bin/node";
    if (!existsSync(path)) throw new Error("/usr/bin/node is missing: apt-get install nodejs (its symbol table is the large real-world case)");
    const times: number[] = [];
    let count = 0;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const fd = openSync(path, "r");
      try {
        count = new ElfFile(fd, path).functions().length;
      } finally {
        closeSync(fd);
      }
      times.push(performance.now() - t0);
    }
    // Measured on this machine before the hardening: 280-460 ms (constructor < 5 ms, functions() the rest).
    console.log(`/usr/bin/node: ${count} functions; new ElfFile + functions(): ${times.map((t) => `${t.toFixed(0)} ms`).join(", ")}`);
    expect(count).toBeGreaterThan(50_000);
    expect(Math.min(...times)).toBeLessThan(2000);
  });
});
