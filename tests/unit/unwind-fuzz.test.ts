// Malformed call-frame information never crashes or hangs the unwinder: mutations (fixed seed) of
// the real .eh_frame/.eh_frame_hdr of the gcc fixture, of libc's .eh_frame, of a Go binary's
// .gopclntab, and random DWARF expressions. Each case ends in a clean error naming the file, or in
// an unwind that stops (with the same or fewer frames for CFI); never an exception escaping, never
// an error text that is a JavaScript exception's. (A mutated .gopclntab can give wrong frames:
// Go's tables carry no redundancy that would tell.)
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../../lib/elf.ts";
import { AddressSpace, type Mapping } from "../../lib/unwind/address-space.ts";
import { evaluate } from "../../lib/unwind/dwarf-expr.ts";
import { Malformed } from "../../lib/unwind/errors.ts";
import { FileCfi } from "../../lib/unwind/file-cfi.ts";
import { FrameSection } from "../../lib/unwind/frame-section.ts";
import { unwind, type UnwindResult } from "../../lib/unwind/unwinder.ts";
import { buildChain, buildGoChain, gdbSnapshot, WORK, type GdbSnapshot } from "./unwind-fixtures.ts";
import { goFunction } from "../../lib/go-functions.ts";
import { randomFloats } from "../fixtures/fuzz/mutate.ts";

const JS_ERROR_TEXT = /RangeError|TypeError|ReferenceError|is not a function|Cannot read|undefined|NaN|\n\s+at /;

function assertCleanMessage(msg: string, path: string): void {
  expect(msg).not.toMatch(JS_ERROR_TEXT);
  expect(msg.startsWith(path)).toBe(true);
}

/** Byte ranges of the named sections in a file image, plus their section header entries. */
function regions(image: Uint8Array, path: string, names: string[]): { data: [number, number][]; headers: [number, number][] } {
  const fd = openSync(path, "r");
  try {
    const elf = new ElfFile(fd, path);
    const dv = new DataView(image.buffer, image.byteOffset);
    const shoff = Number(dv.getBigUint64(40, true));
    const data: [number, number][] = [];
    const headers: [number, number][] = [];
    for (const n of names) {
      const s = elf.section(n);
      if (!s) continue;
      data.push([s.offset, s.offset + s.size]);
      headers.push([shoff + s.index * 64, shoff + s.index * 64 + 64]);
    }
    return { data, headers };
  } finally {
    closeSync(fd);
  }
}

/** readelf's interpretation of a file's .eh_frame (the reference for what its rules say). */
function readelfFrames(path: string): string {
  const r = Bun.spawnSync(["readelf", "--debug-dump=frames-interp", path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode === null) throw new Error(`readelf did not run (is binutils installed?)`);
  return r.stdout.toString().replaceAll(path, "FILE") + r.stderr.toString().replaceAll(path, "FILE");
}

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** One mutation of `base` inside `ranges`: byte flips, boundary words, or zeroed/0xff runs. */
function mutate(base: Uint8Array, ranges: [number, number][], rand: () => number): Uint8Array {
  const out = base.slice();
  const [lo, hi] = ranges[Math.floor(rand() * ranges.length)]!;
  const at = lo + Math.floor(rand() * (hi - lo));
  const kind = Math.floor(rand() * 4);
  const dv = new DataView(out.buffer);
  if (kind === 0) {
    for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++) {
      const p = lo + Math.floor(rand() * (hi - lo));
      out[p] = out[p]! ^ (1 << Math.floor(rand() * 8));
    }
  } else if (kind === 1 && at + 4 <= hi) {
    dv.setUint32(at, BOUNDARY[Math.floor(rand() * BOUNDARY.length)]!, true);
  } else if (kind === 2) {
    out.fill(rand() < 0.5 ? 0 : 0xff, at, Math.min(hi, at + 1 + Math.floor(rand() * 16)));
  } else {
    out[at] = Math.floor(rand() * 256);
  }
  return out;
}

interface Outcome {
  same: number;
  fewer: number;
  /** Walks that are not the unmutated one or a prefix of it. */
  other: number;
  /** Of those, the ones `rules` says the mutation did not change the rules for. */
  unexplained: number;
  errors: number;
  openFailed: number;
  maxMs: number;
}

/**
 * Unwinds `snap` with the file at `victim` replaced by each mutation; returns how the results
 * compare with the unmutated one. `rules(path)`: a reference's reading of a file's unwind rules;
 * a walk that differs where the reference reads the same rules is `unexplained`.
 */
function fuzzFile(victim: string, snap: GdbSnapshot, ranges: [number, number][], cases: number, seed: number, rules?: (path: string) => string): Outcome {
  const base = new Uint8Array(readFileSync(victim));
  const rand = randomFloats(seed);
  const mutated = join(WORK, `fuzz-${seed}.elf`);
  const real = new Map<string, ElfFile>();
  const openReal = (p: string) => {
    if (!real.has(p)) real.set(p, new ElfFile(openSync(p, "r"), p));
    return real.get(p)!;
  };
  const input = { regs: { rip: snap.regs.rip!, rsp: snap.regs.rsp!, rbp: snap.regs.rbp, rbx: snap.regs.rbx }, stack: snap.stack, stackAddr: snap.stackAddr };
  const baseline = unwind(new AddressSpace(snap.mappings, (m) => (m.path.startsWith("/") ? openReal(m.path) : undefined)), input);
  const o: Outcome = { same: 0, fewer: 0, other: 0, unexplained: 0, errors: 0, openFailed: 0, maxMs: 0 };
  const baseRules = rules?.(victim);
  for (let i = 0; i < cases; i++) {
    writeFileSync(mutated, mutate(base, ranges, rand));
    const fd = openSync(mutated, "r");
    try {
      const t = performance.now();
      let victimElf: ElfFile | undefined;
      try {
        victimElf = new ElfFile(fd, victim);
      } catch (e) {
        // lib/elf.ts refuses the file as a whole: a clean error of its own.
        expect((e as Error).message).not.toMatch(JS_ERROR_TEXT);
        o.openFailed++;
      }
      const open = (m: Mapping) => (m.path === victim ? victimElf : m.path.startsWith("/") ? openReal(m.path) : undefined);
      let r: UnwindResult;
      try {
        r = unwind(new AddressSpace(snap.mappings, open), input);
      } catch (e) {
        throw new Error(`case ${i} (seed ${seed}): unwind threw ${(e as Error).stack}`);
      }
      o.maxMs = Math.max(o.maxMs, performance.now() - t);
      expect(r.pcs.length).toBeGreaterThanOrEqual(1);
      expect(r.pcs.length).toBeLessThanOrEqual(128);
      expect(r.pcs[0]).toBe(baseline.pcs[0]!);
      if (r.error) {
        o.errors++;
        assertCleanMessage(r.error, victim);
      }
      for (const p of victimElf ? FileCfi.of(victimElf).problems : []) assertCleanMessage(p, victim);
      const prefix = r.pcs.every((pc, k) => pc === baseline.pcs[k]);
      if (prefix && r.pcs.length === baseline.pcs.length) o.same++;
      else if (prefix) o.fewer++;
      else {
        o.other++;
        if (rules && rules(mutated) === baseRules) o.unexplained++;
      }
    } finally {
      closeSync(fd);
    }
  }
  for (const f of real.values()) closeSync(f.fd);
  return o;
}

describe("mutated unwind tables", () => {
  test("gcc fixture: 1,200 mutations of .eh_frame, .eh_frame_hdr and their section headers", () => {
    const chain = buildChain();
    const snap = gdbSnapshot([chain, "qsort"], "target", "fuzz-qsort");
    const image = new Uint8Array(readFileSync(chain));
    const { data, headers } = regions(image, chain, [".eh_frame", ".eh_frame_hdr"]);
    expect(data.length).toBe(2);
    const inData = fuzzFile(chain, snap, data, 1000, 1, readelfFrames);
    const inHeaders = fuzzFile(chain, snap, headers, 200, 2, readelfFrames);
    console.log("section bytes:", inData, "\nsection headers:", inHeaders);
    for (const o of [inData, inHeaders]) expect(o.maxMs).toBeLessThan(1000);
    // The mutations do reach the parser: some walks end in an error, some end early.
    expect(inData.errors).toBeGreaterThan(50);
    expect(inData.fewer).toBeGreaterThan(50);
    // CFI errors never lead to made-up frames: a walk is the unmutated one, a prefix of it, or what
    // the mutated tables say as readelf reads them too (a mutation may leave valid rules that
    // differ, such as a return address saved at CFA+0 rather than CFA-8).
    expect(inData.unexplained + inHeaders.unexplained).toBe(0);
  }, 120_000);

  test("stripped Go binary: 300 mutations of .gopclntab", () => {
    const bin = buildGoChain(true);
    const fd = openSync(bin, "r");
    const entry = goFunction(new ElfFile(fd, bin), "main.target").entry;
    closeSync(fd);
    const snap = gdbSnapshot([bin], `*0x${entry.toString(16)}`, "fuzz-go");
    const image = new Uint8Array(readFileSync(bin));
    const { data } = regions(image, bin, [".gopclntab"]);
    // The header and function table, where a mutation changes what is read, and some pcsp data.
    const [lo, hi] = data[0]!;
    const o = fuzzFile(bin, snap, [[lo, lo + 72], [lo, Math.min(hi, lo + 64 * 1024)]], 300, 3);
    console.log(".gopclntab:", o);
    expect(o.maxMs).toBeLessThan(1000);
    expect(o.same + o.fewer + o.other).toBe(300);
  }, 120_000);

  test("libc's .eh_frame: 500 mutations, walked and every nearby FDE's rows computed", () => {
    const path = "/lib/x86_64-linux-gnu/libc.so.6";
    const fd = openSync(path, "r");
    const elf = new ElfFile(fd, path);
    const sec = elf.section(".eh_frame")!;
    const base = elf.sectionBytes(sec);
    closeSync(fd);
    const rand = randomFloats(4);
    let malformed = 0;
    let rows = 0;
    for (let i = 0; i < 500; i++) {
      const bytes = mutate(base, [[0, base.length]], rand);
      const fs = new FrameSection(bytes, sec.addr, "eh_frame");
      const walk = fs.scan();
      if (walk.problem) {
        malformed++;
        expect(walk.problem).not.toMatch(JS_ERROR_TEXT);
      }
      // The FDEs the walk found (a sample around the middle and the ends).
      const n = walk.offsets.length;
      for (const k of [0, 1, n >> 1, (n >> 1) + 1, n - 2, n - 1, Math.floor(rand() * n)]) {
        if (k < 0 || k >= n) continue;
        try {
          rows += fs.rows(fs.fdeAt(walk.offsets[k]!)).rows.length;
        } catch (e) {
          if (!(e instanceof Malformed)) throw e;
          expect(e.message).not.toMatch(JS_ERROR_TEXT);
          malformed++;
        }
      }
    }
    console.log(`libc .eh_frame: ${malformed} malformed entries met, ${rows} rows computed`);
    expect(malformed).toBeGreaterThan(0);
  }, 120_000);

  test("2,000 random DWARF expressions: a value, undefined, or a Malformed error", () => {
    const rand = randomFloats(5);
    let values = 0;
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      const expr = new Uint8Array(1 + Math.floor(rand() * 24));
      // Mostly the operations CFI uses, so that programs get past their first byte.
      const common = [0x70, 0x77, 0x86, 0x30, 0x3f, 0x1a, 0x22, 0x24, 0x2a, 0x28, 0x2f, 0x06, 0x12, 0x92, 0x08, 0x23];
      for (let k = 0; k < expr.length; k++) expr[k] = rand() < 0.6 ? common[Math.floor(rand() * common.length)]! : Math.floor(rand() * 256);
      try {
        const v = evaluate(expr, { reg: (n) => (n === 7 ? 0x7ffc1000 : n === 16 ? 0x401234 : NaN), read: (a) => (a >= 0x7ffc0000 && a < 0x7ffc2000 ? a ^ 0x55 : undefined) }, 0x7ffc1100);
        if (v !== undefined) values++;
      } catch (e) {
        if (!(e instanceof Malformed)) throw e;
        expect(e.message).not.toMatch(JS_ERROR_TEXT);
        errors++;
      }
    }
    console.log(`expressions: ${values} values, ${errors} malformed`);
    expect(values).toBeGreaterThan(20);
    expect(errors).toBeGreaterThan(100);
  });
});
