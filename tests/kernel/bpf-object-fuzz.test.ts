// Mutated BPF objects through checkBpfObject and then through the system libbpf (1.1), the way
// `probe load` uses them: every mutant the check accepts must open in libbpf (and, as root, load
// or fail to load) without crashing it. libbpf runs in child processes, so a crash is seen as the
// child dying by a signal, and the file it was working on is named.
// The same run also hands libbpf the mutants the check refused, and reports how many of those
// crash it: what the check protects probe from.
import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectProblems } from "../../lib/bpf-object-check.ts";
import { readFileSync } from "node:fs";
import { bpfMutants, BPF_WORK, fixtureObjects, NAMED_BPF, probeObjects, structOpsObject } from "../fixtures/fuzz/bpf-seeds.ts";

const PER_SEED = 80;
const CHILD = join(import.meta.dir, "..", "fixtures", "fuzz", "libbpf-open.ts");
const dir = join(BPF_WORK, "fuzz-kernel");

interface Run {
  crashed: { path: string; signal: string }[];
  results: Map<string, string>;
}

/** Runs libbpf on every file in child processes, restarting after each crash. */
function libbpfOn(files: string[], load: boolean): Run {
  const crashed: Run["crashed"] = [];
  const results = new Map<string, string>();
  let rest = files;
  while (rest.length) {
    const r = Bun.spawnSync(["bun", CHILD, ...(load ? ["--load"] : []), ...rest], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
    for (const line of r.stdout.toString().split("\n")) {
      const m = /^(\S+) (.*)$/.exec(line);
      if (m) results.set(m[1]!, m[2]!);
    }
    if (r.exitCode === 0) break;
    const started = [...r.stderr.toString().matchAll(/^start (\S+)$/gm)].map((m) => m[1]!);
    const last = started[started.length - 1];
    if (!last) throw new Error(`libbpf child failed before its first file (exit ${r.exitCode}, ${r.signalCode}): ${r.stderr.toString().slice(0, 500)}`);
    crashed.push({ path: last, signal: String(r.signalCode ?? `exit ${r.exitCode}`) });
    rest = rest.slice(rest.indexOf(last) + 1);
  }
  return { crashed, results };
}

describe("mutated BPF objects and libbpf 1.1", () => {
  test("libbpf never crashes on an object checkBpfObject accepts", () => {
    const seeds = [...fixtureObjects(), ...probeObjects(), structOpsObject("plain"), structOpsObject("maps")];
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const accepted: string[] = [];
    const refused: string[] = [];
    const label = new Map<string, string>();
    for (const m of bpfMutants(seeds, PER_SEED)) {
      const path = join(dir, `${m.seed}-${m.index}.o`);
      writeFileSync(path, m.bytes);
      label.set(path, `${m.seed}#${m.index} [${m.what.join("; ")}]`);
      (bpfObjectProblems(m.bytes, path).length ? refused : accepted).push(path);
    }
    const load = process.getuid?.() === 0;
    const t0 = performance.now();
    const onAccepted = libbpfOn(accepted, load);
    const onRefused = libbpfOn(refused, load);
    const describe = (r: Run) => r.crashed.map((c) => `${label.get(c.path)} (${c.signal})`);
    console.log(
      `BPF objects: ${accepted.length + refused.length} mutants of ${seeds.length} objects; checkBpfObject accepted ${accepted.length}, refused ${refused.length}. ` +
        `libbpf ${load ? "open+load" : "open"} (${((performance.now() - t0) / 1000).toFixed(1)} s): ` +
        `${onAccepted.crashed.length} crashes on accepted, ${onRefused.crashed.length} on refused`,
    );
    const outcomes = new Map<string, number>();
    for (const v of onAccepted.results.values()) {
      const k = v.replace(/-?\d+/g, "N");
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
    console.log(`libbpf on accepted mutants: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    const bySeed = new Map<string, number>();
    for (const c of describe(onRefused)) bySeed.set(c.split("#")[0]!, (bySeed.get(c.split("#")[0]!) ?? 0) + 1);
    console.log(`refused mutants that crash libbpf, by seed object: ${JSON.stringify(Object.fromEntries(bySeed))}`);
    const others = describe(onRefused).filter((c) => !c.startsWith("struct_ops-maps#"));
    if (others.length) console.log(`  besides struct_ops maps:\n  ${others.join("\n  ")}`);
    for (const c of onRefused.crashed.filter((x) => !x.path.includes("struct_ops-maps"))) {
      console.log(`  ${label.get(c.path)}: ${bpfObjectProblems(new Uint8Array(readFileSync(c.path)), c.path)[0]?.what}`);
    }
    expect(accepted.length + refused.length).toBeGreaterThanOrEqual(300);
    expect(describe(onAccepted)).toEqual([]);
  }, 600_000);

  test("what libbpf 1.1 does with the named malformations and struct_ops objects, all refused by the check", () => {
    const named = join(BPF_WORK, "named-kernel");
    rmSync(named, { recursive: true, force: true });
    mkdirSync(named, { recursive: true });
    const base = new Uint8Array(readFileSync(fixtureObjects()[0]!));
    const files: string[] = [];
    const label = new Map<string, string>();
    for (const [i, [what, edits]] of NAMED_BPF.entries()) {
      let b: Uint8Array = base.slice();
      for (const e of edits) b = e(b) ?? b;
      const path = join(named, `${i}.o`);
      writeFileSync(path, b);
      files.push(path);
      label.set(path, what);
    }
    for (const v of ["plain", "maps", "link"] as const) {
      files.push(structOpsObject(v));
      label.set(structOpsObject(v), `struct_ops (${v})`);
    }
    const load = process.getuid?.() === 0;
    const r = libbpfOn(files, load);
    const crashes = r.crashed.map((c) => `${label.get(c.path)} (${c.signal})`);
    console.log(`libbpf ${load ? "open+load" : "open"} on ${files.length} named cases: ${crashes.length} crash it:\n  ${crashes.join("\n  ")}`);
    console.log(`the others: ${files.filter((f) => r.results.has(f)).map((f) => `${label.get(f)}: ${r.results.get(f)}`).join("; ")}`);
    for (const f of files) expect(bpfObjectProblems(new Uint8Array(readFileSync(f)), f).length).toBeGreaterThan(0);
    if (load) expect(crashes).toContain("struct_ops (maps) (SIGSEGV)");
  }, 600_000);
});
