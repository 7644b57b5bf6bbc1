// The x86-64 length decoder on garbage: random bytes, libc's real code with bytes flipped, and
// ranges that do not fit the buffer. Every call ends in instructions or a DecodeError (a
// ProbeError); instructionLength always returns a length of 1..15 or a negative reason code.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { ProbeError } from "../../lib/errors.ts";
import { ElfFile } from "../../lib/elf.ts";
import { decodeRange, DecodeError, directBranchTargets, findReturns, instructionLength, instructionStarts } from "../../lib/x86/decoder.ts";
import { Rng } from "../fixtures/fuzz/mutate.ts";

const CASES = 20_000;

function libcText(): Uint8Array {
  const path = "/lib/x86_64-linux-gnu/libc.so.6";
  const fd = openSync(path, "r");
  try {
    const elf = new ElfFile(fd, path);
    return elf.sectionBytes(elf.section(".text")!);
  } finally {
    closeSync(fd);
  }
}

describe("x86-64 decoder on garbage", () => {
  test(`${CASES} random and mutated buffers, in and out of range`, () => {
    const rng = new Rng(0x86);
    const text = libcText();
    const bad: string[] = [];
    const outcomes = { decoded: 0, decodeError: 0 };
    const info = new Int32Array(2);
    const t0 = performance.now();
    for (let k = 0; k < CASES; k++) {
      let code: Uint8Array;
      if (rng.chance(0.5)) {
        code = new Uint8Array(1 + rng.int(64));
        for (let i = 0; i < code.length; i++) code[i] = rng.int(256);
      } else {
        const at = rng.int(text.length - 256);
        code = text.slice(at, at + 1 + rng.int(256));
        for (let i = 0; i < 1 + rng.int(4); i++) code[rng.int(code.length)] = rng.int(256);
      }
      // Mostly the whole buffer; sometimes a range that runs past it or is reversed.
      const r = rng.int(10);
      const start = r < 7 ? 0 : r < 9 ? rng.int(code.length + 8) : -rng.int(4);
      const end = r < 7 ? code.length : code.length + rng.int(16) - 4;
      const fns = [
        () => [...decodeRange(code, start, end, 0x1000)],
        () => findReturns(code, start, end),
        () => directBranchTargets(code, start, end, 0x400000),
        () => instructionStarts(code, start, end),
      ];
      try {
        fns[k % 4]!();
        outcomes.decoded++;
      } catch (e) {
        if (e instanceof DecodeError && e instanceof ProbeError) outcomes.decodeError++;
        else bad.push(`case ${k}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      }
      for (let pos = 0; pos < code.length; pos++) {
        const n = instructionLength(code, pos, code.length + rng.int(3), info);
        if (!(Number.isInteger(n) && ((n >= 1 && n <= 15) || n === -1 || n === -2 || n === -3))) bad.push(`case ${k}: instructionLength returned ${n} at ${pos}`);
      }
    }
    const ms = performance.now() - t0;
    console.log(`x86 decoder fuzz: ${CASES} cases in ${ms.toFixed(0)} ms: ${JSON.stringify(outcomes)}`);
    expect(bad.slice(0, 20)).toEqual([]);
    expect(outcomes.decodeError).toBeGreaterThan(100);
    expect(outcomes.decoded).toBeGreaterThan(100);
    expect(ms).toBeLessThan(20_000);
  }, 60_000);
});
