// The lookup path on malformed debug info: a fresh reader asked functionAt first (the walk that
// steps over DIEs by DW_AT_sibling, ranges read in place, the C++ scope index, compressed sections
// inflated in pieces with restart points), never the whole-unit parse dwarf-fuzz.test.ts reaches
// first. Every case must end in a result or a DwarfError naming the file, never a raw JavaScript
// error or a hang. Fixed-seed mutations of real fixtures: bytes flipped, overwritten, zeroed.
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElfFile, type Section } from "../../lib/elf.ts";
import { DebugInfo, DwarfError, formatLocation, formatSignature } from "../../lib/dwarf/index.ts";
import { buildCart, buildGo, buildParams, compressed } from "../fixtures/dwarf/build.ts";
import { Rng } from "../fixtures/fuzz/mutate.ts";

const tmp = mkdtempSync(join(tmpdir(), "dwarf-lookup-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Entry addresses of the fixture's functions, from the unmutated file. */
function entries(path: string): number[] {
  const fd = openSync(path, "r");
  try {
    return [...DebugInfo.fromElf(new ElfFile(fd, path))!.functions()].map((f) => f.lowPc);
  } finally {
    closeSync(fd);
  }
}

/** functionAt for every address, by a reader that has parsed nothing, every lazy part touched. */
function lookups(path: string, pcs: number[]): "result" | "error" {
  const fd = openSync(path, "r");
  try {
    const info = DebugInfo.fromElf(new ElfFile(fd, path));
    if (!info) return "result";
    for (const pc of pcs) {
      const f = info.functionAt(pc) ?? info.functionAt(pc + 1);
      if (!f) continue;
      formatSignature(f);
      void f.declFile;
      for (const p of [...f.params, ...f.results]) {
        void p.type.resolved.name;
        void p.type.members;
        formatLocation(p.location);
      }
    }
    return "result";
  } catch (e) {
    if (!(e instanceof DwarfError)) throw e;
    if (!e.message.startsWith(`${path}: `) || /out of bounds|undefined|NaN/i.test(e.message)) throw new Error(`unclear message: ${e.message}`);
    return "error";
  } finally {
    closeSync(fd);
  }
}

test("mutated debug sections, looked up by address first: a result or a DwarfError, within 20 s", () => {
  const targets = [
    { what: "gcc -O2 DWARF 5", path: buildParams("params-O2", ["-O2"]), cases: 150 },
    { what: "gcc -O2 zlib-compressed", path: compressed(buildParams("params-O2", ["-O2"]), "zlib"), cases: 150 },
    { what: "gcc -O2 .zdebug", path: compressed(buildParams("params-O2", ["-O2"]), "zlib-gnu"), cases: 60 },
    { what: "clang -O2 DWARF 5 (no DW_AT_sibling)", path: buildParams("params-clang-O2", ["-O2"], "clang"), cases: 80 },
    { what: "g++ -O2 (C++ scopes)", path: buildCart(), cases: 120 },
    { what: "g++ -O2 zlib-compressed", path: compressed(buildCart(), "zlib"), cases: 80 },
    { what: "Go, zlib-compressed .zdebug", path: buildGo("plain"), cases: 30 },
  ];
  const t0 = performance.now();
  const report: string[] = [];
  let total = 0;
  targets.forEach((t, ti) => {
    const original = readFileSync(t.path);
    const pcs = entries(t.path).slice(0, 150);
    expect(pcs.length).toBeGreaterThan(5);
    const fd = openSync(t.path, "r");
    const sections: Section[] = new ElfFile(fd, t.path).sections.filter((s) => /^\.z?debug_/.test(s.name) && s.size > 0);
    closeSync(fd);
    const rng = new Rng(0xf00d + ti);
    const out = join(tmp, t.what.replace(/\W+/g, "-"));
    let results = 0;
    let errors = 0;
    for (let i = 0; i < t.cases; i++) {
      const b = new Uint8Array(original);
      const log: string[] = [];
      for (let m = 0, n = 1 + rng.int(4); m < n; m++) {
        const s = rng.pick(sections);
        const at = s.offset + (rng.chance(0.3) ? rng.int(Math.min(s.size, 64)) : rng.int(s.size));
        const kind = rng.int(3);
        if (kind === 0) b[at] ^= 1 << rng.int(8);
        else if (kind === 1) b[at] = rng.pick([0, 0xff, 0x80, 0x7f]);
        else for (let k = 0; k < 2 + rng.int(16) && at + k < s.offset + s.size; k++) b[at + k] = 0;
        log.push(`${s.name}@${at}/${kind}`);
      }
      writeFileSync(out, b);
      try {
        if (lookups(out, pcs) === "result") results++;
        else errors++;
      } catch (e) {
        throw new Error(`${t.what} case ${i} (${log.join(" ")}): raw ${(e as Error).constructor.name}: ${(e as Error).message}\n${(e as Error).stack}`);
      }
    }
    total += t.cases;
    report.push(`${t.what}: ${t.cases} cases, ${results} results, ${errors} DwarfErrors`);
    // Both outcomes occur: the mutations reach the reader, and most do not stop it.
    expect(errors).toBeGreaterThan(0);
    expect(results).toBeGreaterThan(0);
  });
  const ms = performance.now() - t0;
  console.log(`DWARF lookup fuzz (${total} cases, ${(ms / 1000).toFixed(1)} s):\n  ${report.join("\n  ")}`);
  expect(total).toBeGreaterThanOrEqual(600);
  expect(ms).toBeLessThan(20_000);
}, 60_000);
