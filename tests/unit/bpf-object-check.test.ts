// checkBpfObject on real objects: struct_ops objects compiled here against this kernel's BTF are
// refused (libbpf 1.1 segfaults loading a .maps struct_ops map); probe's own objects and the test
// fixtures pass; each named malformation (the classes of libbpf's fuzzing reports) is refused
// with a message naming the file. tests/kernel/bpf-object-fuzz.test.ts runs libbpf itself on them.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ProbeError } from "../../lib/errors.ts";
import { BpfObjectError, bpfObjectProblems, bpfObjectSections, checkBpfObject } from "../../lib/bpf-object-check.ts";
import { fixtureObjects, NAMED_BPF, probeObjects, structOpsObject } from "../fixtures/fuzz/bpf-seeds.ts";

const read = (p: string) => new Uint8Array(readFileSync(p));

describe("checkBpfObject", () => {
  for (const variant of ["plain", "maps", "link"] as const) {
    test(`a struct_ops object (${variant}) is refused with a hint`, () => {
      const path = structOpsObject(variant);
      let err: unknown;
      try {
        checkBpfObject(read(path), path);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BpfObjectError);
      expect(err).toBeInstanceOf(ProbeError);
      const e = err as BpfObjectError;
      expect(e.message.startsWith(`${path}: `)).toBe(true);
      expect(e.message).toMatch(variant === "maps" ? /map probe_cc_map is a BPF_MAP_TYPE_STRUCT_OPS map/ : /section \.struct_ops(\.link)? declares struct_ops maps/);
      expect(e.hint).toMatch(/libbpf >= 1\.2/);
      expect(bpfObjectProblems(read(path), path).every((p) => p.kind === "unsupported")).toBe(true);
    });
  }

  test("probe's own objects and the test fixtures pass", () => {
    const all = [...probeObjects(), ...fixtureObjects()];
    expect(all.length).toBe(6);
    for (const p of all) {
      expect(bpfObjectProblems(read(p), p)).toEqual([]);
      const sections = bpfObjectSections(read(p), p).map((s) => s.name);
      expect(sections).toContain(".BTF");
      expect(sections).toContain("license");
    }
  });

  test("an x86-64 program and a text file are refused", () => {
    for (const p of ["/usr/bin/true", "/etc/passwd"]) expect(() => checkBpfObject(read(p), p)).toThrow(BpfObjectError);
  });

  const base = read(fixtureObjects()[0]!);
  for (const [what, edits] of NAMED_BPF) {
    test(`refused: ${what}`, () => {
      let b: Uint8Array = base.slice();
      for (const e of edits) b = e(b) ?? b;
      const path = `/objects/${what.replace(/[^a-z0-9]+/gi, "-")}.o`;
      const problems = bpfObjectProblems(b, path);
      expect(problems.length).toBeGreaterThan(0);
      expect(problems[0]!.kind).toBe("malformed");
      expect(() => checkBpfObject(b, path)).toThrow(new RegExp(`^${path.replace(/[.]/g, "\\.")}: not a valid BPF object: `));
    });
  }
});
