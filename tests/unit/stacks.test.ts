// Pure pieces of --stack/--stacks: the caller a frame-pointer walk skips at a function's entry
// (src/stacks.ts fpStack), mappings replaced the way mmap replaces them (src/stack-views.ts
// mapOver), and the option rules (src/stacks.ts parseStackOptions).
import { describe, expect, test } from "bun:test";
import { fpStack, parseStackOptions } from "../../src/stacks.ts";
import { mapOver } from "../../src/stack-views.ts";
import type { Mapping } from "../../lib/unwind/index.ts";

describe("frame-pointer stacks", () => {
  test("the caller at rsp goes back in when probed at a function's entry, and only then", () => {
    expect(fpStack(0x1000, 0x2000, [0x1000, 0x3000, 0x4000, 0], true)).toEqual([0x1000, 0x2000, 0x3000, 0x4000]);
    expect(fpStack(0x1000, 0x2000, [0x1000, 0x3000], false)).toEqual([0x1000, 0x3000]);
    expect(fpStack(0x1000, 0, [], true)).toEqual([0x1000]);
  });
});

describe("mappings", () => {
  const m = (start: number, end: number, offset: number, path: string): Mapping => ({ start, end, offset, path, key: path, perms: "r-xp" });

  test("a new mapping replaces what it overlaps; the rest of a split mapping keeps its file offset", () => {
    const list = [m(0x1000, 0x5000, 0, "/a"), m(0x8000, 0x9000, 0x2000, "/b")];
    expect(mapOver(list, m(0x2000, 0x3000, 0x7000, "/c"))).toEqual([
      m(0x1000, 0x2000, 0, "/a"),
      m(0x2000, 0x3000, 0x7000, "/c"),
      m(0x3000, 0x5000, 0x2000, "/a"),
      m(0x8000, 0x9000, 0x2000, "/b"),
    ]);
    expect(mapOver(list, m(0, 0x10000, 0, "/d"))).toEqual([m(0, 0x10000, 0, "/d")]);
    expect(mapOver([], m(0x1000, 0x2000, 0, "/a"))).toEqual([m(0x1000, 0x2000, 0, "/a")]);
  });
});

describe("stack options", () => {
  test("defaults, implications and refusals", () => {
    expect(parseStackOptions({})).toBeUndefined();
    expect(parseStackOptions({ stack: true })).toEqual({ aggregate: false, mode: "auto", stackSize: 16384, folded: false, flamegraph: undefined });
    expect(parseStackOptions({ folded: true })).toMatchObject({ aggregate: true, folded: true });
    expect(parseStackOptions({ flamegraph: "x.svg" })).toMatchObject({ aggregate: true, flamegraph: "x.svg" });
    expect(parseStackOptions({ stacks: true, unwind: "fp" })).toMatchObject({ mode: "fp" });
    expect(parseStackOptions({ stack: true, stackSize: "4097" })!.stackSize).toBe(4096);
    expect(parseStackOptions({ stack: true, stackSize: "64K" })!.stackSize).toBe(65536);
    expect(() => parseStackOptions({ stack: true, stackSize: "65K" })).toThrow(/--stack-size takes a size/);
    expect(() => parseStackOptions({ stack: true, stacks: true })).toThrow(/choose one/);
    expect(() => parseStackOptions({ unwind: "cfi" })).toThrow(/goes with --stack/);
    expect(() => parseStackOptions({ flamegraph: true })).toThrow(/FILE.svg/);
  });
});
