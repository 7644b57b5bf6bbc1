// The x86-64 instruction-length decoder against objdump, instruction boundary by boundary, over
// whole binaries (Go, cgo, libc with AVX2/AVX-512) and hand-written assembly.
import { describe, test, expect, beforeAll } from "bun:test";
import { join } from "node:path";
import { findReturns, decodeRange, instructionStarts, instructionLength } from "../../lib/x86/decoder.ts";
import { GoError } from "../../lib/go-error.ts";
import { goFunction } from "../../lib/go-functions.ts";
import type { GoFunction } from "../../lib/go-pclntab.ts";
import { returnOffsets } from "../../lib/go-returns.ts";
import { buildGoFixtures, withElf, objdump, isObjdumpRet, compareWithObjdump, textRegions, type GoBins } from "../fixtures/go-bins.ts";
import { run } from "../fixtures/go.ts";

const fixtures = join(import.meta.dir, "..", "fixtures", "go");
const work = join(import.meta.dir, "..", ".work", "go");
let bins: GoBins;
beforeAll(() => {
  bins = buildGoFixtures();
}, 600_000);

describe("x86-64 decoder", () => {
  test("agrees with objdump on every instruction boundary of a whole Go binary's .text", () => {
    const r = compareWithObjdump(bins.server!);
    console.log(
      `decoder: Go server .text ${(r.bytes / 1e6).toFixed(2)} MB, ${r.linear} instructions in ${r.ms.toFixed(1)} ms (${(r.bytes / 1e3 / r.ms).toFixed(0)} MB/s); ` +
        `${r.compared} boundaries agree with objdump; ${r.rets} RETs vs ${r.c3} C3 bytes; skipped (objdump: (bad)): ${r.skipped.join(", ") || "none"}`,
    );
    expect(r.mismatches.slice(0, 20)).toEqual([]);
    expect(r.compared).toBeGreaterThan(100_000);
    expect(r.compared).toBeGreaterThan(r.objdumpCount * 0.999);
    // The only region objdump cannot decode is data behind a jump; our refusal covers it.
    expect(r.skipped.length).toBeLessThanOrEqual(2);
    withElf(bins.server!, (elf) => {
      for (const name of r.skipped) expect(() => returnOffsets(elf, goFunction(elf, name))).toThrow(GoError);
    });
    expect(r.rets).toBeGreaterThanOrEqual(r.objdumpRets - 2); // objdump also counts the data region's lret
    expect(r.c3).toBeGreaterThan(r.rets * 1.3);
  });

  test("agrees with objdump over a cgo binary and over libc (AVX2 and AVX-512 string functions)", () => {
    for (const path of [bins.cgo!, "/lib/x86_64-linux-gnu/libc.so.6"]) {
      const r = compareWithObjdump(path);
      console.log(`decoder: ${path}: ${r.compared} of ${r.objdumpCount} boundaries agree with objdump in ${(r.bytes / 1e6).toFixed(2)} MB`);
      expect(r.mismatches.slice(0, 20)).toEqual([]);
      expect(r.skipped).toEqual([]);
      expect(r.compared).toBe(r.objdumpCount);
    }
  });

  test("agrees with objdump on hand-written assembly (VEX, EVEX, prefixes, moffs, C3 in operands)", () => {
    withElf(bins.rets!, (elf) => {
      const text = elf.section(".text")!;
      const code = elf.sectionBytes(text);
      const theirs = objdump(bins.rets!);
      const theirStarts = new Set(theirs.map((i) => i.addr));
      for (const r of textRegions(elf)) {
        if (r.name === "data_in_text") continue; // objdump shows (bad) there; checked below
        const mine = instructionStarts(code, r.start - text.addr, r.end - text.addr, text.addr);
        const theirsHere = theirs.filter((i) => i.addr >= r.start && i.addr < r.end).map((i) => i.addr);
        expect({ fn: r.name, starts: mine }).toEqual({ fn: r.name, starts: theirsHere });
        for (const a of mine) expect(theirStarts.has(a)).toBe(true);
      }
    });
  });

  test("finds RET, RET imm16, REP RET and far RET, and no C3 inside other instructions", () => {
    withElf(bins.rets!, (elf) => {
      const theirs = objdump(bins.rets!);
      const fn = (name: string): GoFunction => {
        const s = elf.symbols().find((x) => x.name === name)!;
        return { name, entry: s.value, end: s.value + s.size, offset: elf.vaddrToOffset(s.value)!, source: "symtab" };
      };
      const objdumpRets = (f: GoFunction) => theirs.filter((i) => i.addr >= f.entry && i.addr < f.end && isObjdumpRet(i.text)).map((i) => elf.vaddrToOffset(i.addr)!);
      const kinds = (f: GoFunction) => [...decodeRange(elf.readAt(f.offset, f.end - f.entry), 0, f.end - f.entry, f.offset)].filter((i) => i.ret).map((i) => i.ret);

      const c3 = fn("c3_inside");
      const c3Bytes = [...elf.readAt(c3.offset, c3.end - c3.entry)].filter((b) => b === 0xc3).length;
      expect(c3Bytes).toBeGreaterThan(40);
      expect(returnOffsets(elf, c3).offsets).toEqual(objdumpRets(c3));
      expect(returnOffsets(elf, c3).offsets).toEqual([c3.offset + c3.end - c3.entry - 1]);

      const vex = fn("vex_ret");
      expect(returnOffsets(elf, vex).offsets).toEqual(objdumpRets(vex));
      expect(kinds(vex)).toEqual(["ret"]);

      const rep = fn("rep_ret");
      expect(returnOffsets(elf, rep).offsets).toEqual(objdumpRets(rep));
      expect(kinds(rep)).toEqual(["rep-ret", "rep-ret"]);

      const imm = fn("ret_imm");
      expect(returnOffsets(elf, imm).offsets).toEqual(objdumpRets(imm));
      expect(kinds(imm)).toEqual(["ret-imm", "ret-imm"]);

      const many = fn("many_rets");
      expect(returnOffsets(elf, many).offsets).toEqual(objdumpRets(many));
      expect(returnOffsets(elf, many).offsets.length).toBe(5);

      // Refusals: no RET, a far RET (data, not compiled code), a byte that is no instruction,
      // and bounds that decoding does not land on.
      expect(() => returnOffsets(elf, fn("tail_call_only"))).toThrow(/no RET instruction/);
      const far = fn("far_ret");
      expect(findReturns(elf.readAt(far.offset, far.end - far.entry), 0, far.end - far.entry, far.offset)).toEqual([far.offset]);
      expect(kinds(far)).toEqual(["far-ret"]);
      expect(() => returnOffsets(elf, far)).toThrow(/far return/);
      expect(() => returnOffsets(elf, fn("data_in_text"))).toThrow(/undecodable instruction/);
      expect(() => returnOffsets(elf, { ...c3, end: c3.end - 2 })).toThrow(/did not land on the end/);
    });
  });
});

// ---------------------------------------------------------------------------------------------

