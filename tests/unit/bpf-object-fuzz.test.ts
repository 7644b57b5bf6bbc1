// Mutated BPF objects (probe's own, the test fixtures, struct_ops objects) through checkBpfObject:
// every case is accepted or refused with a BpfObjectError whose message starts with the path,
// quickly and in bounded memory. tests/kernel/bpf-object-fuzz.test.ts hands the accepted ones
// to libbpf itself.
import { describe, expect, test } from "bun:test";
import { ProbeError } from "../../lib/errors.ts";
import { BpfObjectError, checkBpfObject } from "../../lib/bpf-object-check.ts";
import { Btf, BtfError } from "../../lib/btf.ts";
import { seedSections } from "../fixtures/fuzz/mutate.ts";
import { bpfMutants, fixtureObjects, probeObjects, structOpsObject } from "../fixtures/fuzz/bpf-seeds.ts";

// 8 seeds x 260: the >= 2,000 cases issue 9 asks of load's object checks (~7 s here).
const PER_SEED = 260;

describe("mutated BPF objects", () => {
  test("every mutant is accepted or refused with a clean error naming the file", () => {
    const seeds = [...fixtureObjects(), ...probeObjects(), structOpsObject("plain"), structOpsObject("maps")];
    Bun.gc(true);
    // Memory is bounded per input: the most one mutant grew the process (growth over the whole
    // loop is the collector's timing, and in a shared test process other files' too).
    let maxStep = 0;
    const counts = { accepted: 0, refused: 0, unsupported: 0 };
    const bad: string[] = [];
    const messages = new Map<string, number>();
    let slowest = 0;
    let btfParsed = 0;
    let n = 0;
    const t0 = performance.now();
    for (const m of bpfMutants(seeds, PER_SEED)) {
      const path = `/objects/${m.seed}-${m.index}.bpf.o`;
      const r0 = process.memoryUsage().rss;
      const c0 = performance.now();
      try {
        checkBpfObject(m.bytes, path);
        counts.accepted++;
      } catch (e) {
        const ok = e instanceof BpfObjectError && e instanceof ProbeError && e.message.startsWith(`${path}: `);
        if (!ok) bad.push(`${m.seed}#${m.index} [${m.what.join("; ")}]: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        else if (/struct_ops/i.test(e.message)) counts.unsupported++;
        else counts.refused++;
        const key = (e as Error).message.replace(path, "PATH").replace(/\d+/g, "N");
        messages.set(key, (messages.get(key) ?? 0) + 1);
      }
      // lib/btf.ts reads the same .BTF (as probe load shows map values): BtfError or types.
      const btfSec = safeSections(m.bytes).find((x) => x.name === ".BTF");
      if (btfSec && btfSec.offset + btfSec.size <= m.bytes.length) {
        try {
          const btf = Btf.parse(m.bytes.subarray(btfSec.offset, btfSec.offset + btfSec.size));
          for (let id = 1; id < btf.types.length; id++) {
            btf.typeName(id);
            btf.sizeOf(id);
            btf.format(id, new Uint8Array(64));
          }
          btfParsed++;
        } catch (e) {
          if (!(e instanceof BtfError && e instanceof ProbeError)) bad.push(`${m.seed}#${m.index} [${m.what.join("; ")}]: Btf.parse: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        }
      }
      slowest = Math.max(slowest, performance.now() - c0);
      maxStep = Math.max(maxStep, process.memoryUsage().rss - r0);
      n++;
    }
    const ms = performance.now() - t0;
    console.log(`BPF object fuzz: ${n} mutants of ${seeds.length} objects in ${(ms / 1000).toFixed(1)} s (slowest ${slowest.toFixed(0)} ms), most rss one mutant added ${(maxStep / 1e6).toFixed(0)} MB: ${JSON.stringify(counts)}, .BTF parsed by lib/btf.ts in ${btfParsed}`);
    console.log([...messages].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `  ${v}\t${k}`).join("\n"));
    expect(n).toBeGreaterThanOrEqual(2_000);
    expect(ms).toBeLessThan(30_000);
    expect(bad).toEqual([]);
    expect(counts.accepted).toBeGreaterThan(0);
    expect(counts.refused).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(10_000);
    expect(maxStep).toBeLessThan(200e6);
  }, 300_000);
});

/** The seed-layout reader on a mutant: whatever it finds, or nothing when the headers are gone. */
function safeSections(b: Uint8Array): ReturnType<typeof seedSections> {
  try {
    return seedSections(b);
  } catch {
    return [];
  }
}
