// The kernel struct layouts of lib/kernel/abi.ts against the running kernel's own BTF
// (/sys/kernel/btf/vmlinux): every offset probe writes into bpf_attr or perf_event_attr, and every
// offset it reads from the info structs, found by member name through anonymous unions.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Btf, BTF_KIND, type BtfType } from "../../lib/btf.ts";
import * as ABI from "../../lib/kernel/abi.ts";

const btf = Btf.parse(new Uint8Array(readFileSync("/sys/kernel/btf/vmlinux")));

function composite(name: string): BtfType {
  const t = btf.types.find((x) => x && (x.kind === BTF_KIND.STRUCT || x.kind === BTF_KIND.UNION) && x.name === name);
  if (!t) throw new Error(`no struct or union ${name} in vmlinux BTF`);
  return t;
}

/** Byte offset of `path` (a.b.c) inside `t`, looking through anonymous members as C does. */
function offsetIn(t: BtfType, path: string[]): number | undefined {
  if (path.length === 0) return 0;
  for (const m of t.members ?? []) {
    const mt = btf.resolve(m.type);
    if (m.name === path[0]) {
      if (path.length === 1) return m.bitOffset / 8;
      const inner = mt && offsetIn(mt, path.slice(1));
      if (inner !== undefined) return m.bitOffset / 8 + inner;
    } else if (m.name === "" && mt?.members) {
      const inner = offsetIn(mt, path);
      if (inner !== undefined) return m.bitOffset / 8 + inner;
    }
  }
  return undefined;
}

/** Every field of a layout object (nested objects for nested structs), except sizes. */
function fields(layout: object, prefix: string[] = []): [string[], number][] {
  const out: [string[], number][] = [];
  for (const [k, v] of Object.entries(layout)) {
    if (k === "size") continue;
    if (typeof v === "number") out.push([[...prefix, k], v]);
    else out.push(...fields(v, [...prefix, k]));
  }
  return out;
}

/** Field names in abi.ts that the kernel spells differently (one name for several variants; `type:field` for one struct only). */
const ALIASES: Record<string, string[]> = {
  "perf_event.name": ["perf_event", "uprobe", "file_name"],
  "perf_event.name_len": ["perf_event", "uprobe", "name_len"],
  "perf_event.offset": ["perf_event", "uprobe", "offset"],
  "perf_event.cookie": ["perf_event", "uprobe", "cookie"],
  attr_size: ["size"],
  // The u64 of one-bit fields starts with `disabled`.
  "perf_event_attr:flags": ["disabled"],
};

const CASES: [kernelType: string, base: string[], layout: object][] = [
  ["bpf_attr", [], ABI.PROG_LOAD_ATTR],
  ["bpf_attr", ["raw_tracepoint"], ABI.RAW_TRACEPOINT_ATTR],
  ["bpf_attr", ["link_create"], ABI.LINK_CREATE_ATTR],
  ["bpf_link_info", [], ABI.LINK_INFO],
  ["bpf_prog_info", [], ABI.PROG_INFO],
  ["bpf_map_info", [], ABI.MAP_INFO],
  ["bpf_btf_info", [], ABI.BTF_INFO],
  ["perf_event_attr", [], ABI.PERF_EVENT_ATTR],
];

describe("kernel struct layouts agree with the running kernel's BTF", () => {
  for (const [type, base, layout] of CASES) {
    test(`${type}${base.length ? `.${base.join(".")}` : ""}`, () => {
      const t = composite(type);
      const baseOff = offsetIn(t, base)!;
      expect(baseOff).toBeDefined();
      const got: Record<string, number | undefined> = {};
      const want: Record<string, number> = {};
      for (const [path, off] of fields(layout)) {
        const key = path.join(".");
        const o = offsetIn(t, [...base, ...(ALIASES[`${type}:${key}`] ?? ALIASES[key] ?? path)]);
        got[key] = o === undefined ? undefined : o - baseOff;
        want[key] = off;
      }
      expect(got).toEqual(want);
    });
  }
  test("perf_event_attr one-bit fields", () => {
    const t = composite("perf_event_attr");
    const start = offsetIn(t, ["disabled"])! * 8;
    const got: Record<string, number | undefined> = {};
    for (const name of Object.keys(ABI.PERF_ATTR_FLAG)) {
      const m = t.members?.find((x) => x.name === name);
      got[name] = m && m.bitSize === 1 ? m.bitOffset - start : undefined;
    }
    expect(got).toEqual({ ...ABI.PERF_ATTR_FLAG });
  });
});
