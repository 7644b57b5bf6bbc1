// Malformed debug info must end in a DwarfError (a message naming file and section) or in a
// result, never in a raw JavaScript error (RangeError, TypeError, stack overflow) nor a hang.
// Fixed-seed mutations of the debug sections of real fixtures: bytes flipped, overwritten, runs
// zeroed or copied from elsewhere, and now and then a section header pointing past the file.
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile, type Section } from "../../lib/elf.ts";
import { DebugInfo, DwarfError, formatLocation, formatSignature, type DebugType } from "../../lib/dwarf/index.ts";
import { buildGo, buildParams, compressed } from "../fixtures/dwarf/build.ts";
import { randomFloats } from "../fixtures/fuzz/mutate.ts";

const tmp = mkdtempSync(join(tmpdir(), "dwarf-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function touchType(t: DebugType, depth = 0): void {
  void t.name;
  void t.resolved.name;
  if (depth > 2) return;
  for (const m of t.members ?? []) touchType(m.type, depth + 1);
  if (t.target) touchType(t.target, depth + 1);
}

const messages = new Set<string>();

/** Every lookup a caller can make, with every lazy part touched. */
function exercise(path: string, names: string[], maxFunctions: number): "result" | "error" {
  const fd = openSync(path, "r");
  try {
    const elf = new ElfFile(fd, path);
    const info = DebugInfo.fromElf(elf);
    if (!info) return "result";
    let n = 0;
    for (const f of info.functions()) {
      formatSignature(f);
      void f.declFile;
      for (const p of [...f.params, ...f.results]) {
        touchType(p.type);
        formatLocation(p.location);
      }
      if (++n > maxFunctions) break;
      if (n % 7 === 0) info.functionAt(f.lowPc + 1);
    }
    for (const name of names) info.functionByName(name);
    info.functionAt(0x1000);
    return "result";
  } catch (e) {
    if (!(e instanceof DwarfError)) throw e;
    // A message a user can act on: the file first, then what is malformed where.
    if (!e.message.startsWith(`${path}: `) || /out of bounds|undefined|NaN/i.test(e.message)) throw new Error(`unclear message: ${e.message}`);
    messages.add(e.message.slice(path.length).replace(/0x[0-9a-f]+|\d+/g, "N"));
    return "error";
  } finally {
    closeSync(fd);
  }
}

interface Target {
  what: string;
  path: string;
  cases: number;
  names: string[];
  maxFunctions?: number;
}

function fuzz(t: Target, seed: number): { results: number; errors: number; slowest: number; ms: number } {
  const start = performance.now();
  const original = readFileSync(t.path);
  const fd = openSync(t.path, "r");
  const sections: Section[] = new ElfFile(fd, t.path).sections.filter((s) => /^\.z?debug_/.test(s.name) && s.size > 0);
  closeSync(fd);
  expect(sections.length).toBeGreaterThan(3);
  const random = randomFloats(seed);
  const int = (n: number) => Math.floor(random() * n);
  const out = join(tmp, t.what.replace(/\W+/g, "-"));
  let results = 0;
  let errors = 0;
  let slowest = 0;
  for (let i = 0; i < t.cases; i++) {
    const b = new Uint8Array(original); // a copy
    const mutations = 1 + int(6);
    const log: string[] = [];
    for (let m = 0; m < mutations; m++) {
      const s = sections[int(sections.length)]!;
      // Bias towards the start of a section: headers and first units.
      const at = s.offset + (random() < 0.5 ? int(Math.min(s.size, 64)) : int(s.size));
      const kind = int(10);
      if (kind < 4) {
        b[at] ^= 1 << int(8);
      } else if (kind < 6) {
        b[at] = [0, 0xff, 0x80, 0x7f][int(4)]!;
      } else if (kind < 8) {
        for (let k = 0; k < 4 + int(12) && at + k < s.offset + s.size; k++) b[at + k] = int(256);
      } else if (kind < 9) {
        const from = s.offset + int(s.size);
        b.copyWithin(at, from, Math.min(from + 1 + int(32), s.offset + s.size));
      } else {
        // A section header whose size or offset runs past the file.
        const shoff = Number(new DataView(b.buffer).getBigUint64(40, true));
        const hdr = shoff + s.index * 64;
        new DataView(b.buffer).setBigUint64(hdr + (random() < 0.5 ? 32 : 24), BigInt(b.length + int(1 << 20)), true);
      }
      log.push(`${s.name}@${at}/${kind}`);
    }
    writeFileSync(out, b);
    const t0 = performance.now();
    let r: "result" | "error";
    try {
      r = exercise(out, t.names, t.maxFunctions ?? 400);
    } catch (e) {
      throw new Error(`${t.what} case ${i} (seed ${seed}; ${log.join(" ")}): raw ${(e as Error).constructor.name}: ${(e as Error).message}\n${(e as Error).stack}`);
    }
    slowest = Math.max(slowest, performance.now() - t0);
    if (r === "result") results++;
    else errors++;
  }
  return { results, errors, slowest, ms: performance.now() - start };
}

test("1,000+ mutated debug sections end in a result or a DwarfError, within 20 s", () => {
  const targets: Target[] = [
    { what: "gcc -O2 DWARF 5", path: buildParams("params-O2", ["-O2"]), cases: 420, names: ["f_many", "f_clone", "main"] },
    { what: "clang -O2 DWARF 5 (indexed forms)", path: buildParams("params-clang-O2", ["-O2"], "clang"), cases: 150, names: ["f_many", "f_struct_value"] },
    { what: "gcc -O2 DWARF 4", path: buildParams("params-O2-dwarf4", ["-O2", "-gdwarf-4"]), cases: 300, names: ["f_many", "f_typedefs"] },
    { what: "gcc -O0 DWARF 5", path: buildParams("params-O0", ["-O0"]), cases: 150, names: ["f_list", "f_callback"] },
    { what: "gcc -O2 zlib-compressed", path: compressed(buildParams("params-O2", ["-O2"]), "zlib"), cases: 100, names: ["f_many"] },
    { what: "gcc -O2 .zdebug", path: compressed(buildParams("params-O2", ["-O2"]), "zlib-gnu"), cases: 50, names: ["f_many"] },
    { what: "Go, uncompressed DWARF 4", path: buildGo("uncompressed"), cases: 40, names: ["main.Basic", "main.Many"], maxFunctions: 150 },
  ];
  const t0 = performance.now();
  const report: string[] = [];
  let total = 0;
  targets.forEach((t, i) => {
    const r = fuzz(t, 0x5eed + i);
    total += t.cases;
    report.push(`${t.what}: ${t.cases} cases, ${r.results} results, ${r.errors} DwarfErrors, slowest ${r.slowest.toFixed(0)} ms, ${(r.ms / 1000).toFixed(1)} s`);
    // Both outcomes occur: the mutations reach the parser, and most do not stop it.
    expect(r.errors).toBeGreaterThan(0);
    expect(r.results).toBeGreaterThan(0);
  });
  const ms = performance.now() - t0;
  console.log(`DWARF fuzz (${total} cases, ${(ms / 1000).toFixed(1)} s):\n  ${report.join("\n  ")}`);
  console.log(`${messages.size} kinds of DwarfError, e.g.:\n  ${[...messages].slice(0, 12).join("\n  ")}`);
  expect(total).toBeGreaterThanOrEqual(1000);
  expect(ms).toBeLessThan(20_000);
}, 60_000);
