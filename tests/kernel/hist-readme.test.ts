// Every example of README.md's "Histograms, stacks, flame graphs" runs as written (the PID and the
// output files aside) against real processes: an OpenSSL client reading over a socketpair, and a
// program calling malloc (directly and inside libc's strdup) and read with known sizes. What they
// print is checked against what those processes did.
import { describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { readmeExamples } from "../readme.ts";
import { join } from "node:path";
import { FoldedStacks } from "../../lib/flamegraph.ts";
import { buildC, start, startProbe, testCert, type Running } from "../helpers.ts";
import { WORK } from "../fixtures/hist/fixtures.ts";

/** The section's example command lines, as argv after `probe`. */
const EXAMPLES = readmeExamples("Histograms, stacks, flame graphs");

const N = 100;
const WORKLOAD = () => {
  const out = join(WORK, "workload");
  const r = Bun.spawnSync(["gcc", "-O2", "-o", out, join(import.meta.dir, "..", "fixtures", "hist", "workload.c")], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`gcc workload.c failed: ${r.stderr}`);
  return out;
};

/** Runs one example against `target` (which waits for "go"), until the target exits. */
async function example(argv: string[], target: Running, pid: number, files: Record<string, string> = {}): Promise<{ stdout: string[]; stderr: string[] }> {
  let args = argv.map((w) => (w === "6575" ? String(pid) : files[w] ?? w));
  const redirect = args.indexOf(">");
  if (redirect >= 0) args = args.slice(0, redirect);
  const p = await startProbe(args);
  target.proc.stdin.write("go\n");
  target.proc.stdin.flush();
  await target.out.waitFor(/^done/, 30_000);
  target.proc.stdin.end();
  // The target's exit ends probe (--pid), which prints its report.
  const code = await p.proc.exited;
  expect(code).toBe(0);
  return { stdout: await p.out.done(), stderr: await p.err.done() };
}

async function workload(): Promise<{ target: Running; pid: number }> {
  const target = start([WORKLOAD(), String(N)]);
  const [, pid] = await target.out.waitFor(/^ready (\d+)/);
  return { target, pid: Number(pid) };
}

describe("README: histograms, stacks, flame graphs", () => {
  test("the section has its seven examples", () => {
    expect(EXAMPLES.length).toBe(7);
  });

  test(EXAMPLES[0]?.join(" ") ?? "SSL_read latency", async () => {
    const { cert, key } = testCert();
    const tls = start([buildC("tls_pair", "tls_pair.c", ["-lssl", "-lcrypto"]), cert, key, "read", "50", "1000"]);
    const [, pid] = await tls.out.waitFor(/^ready (\d+)/);
    const r = await example(EXAMPLES[0]!, tls, Number(pid));
    console.log(r.stdout.join("\n"));
    expect(r.stdout[0]).toMatch(/^SSL_read latency: 50 calls, min \S+s, avg \S+s, max \S+s, p50 \S+s, p90 \S+s, p99 \S+s$/);
    const counts = r.stdout.slice(1).filter((l) => l.includes("|")).map((l) => Number(/\) +(\d+) \|/.exec(l)![1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(50);
  });

  test(EXAMPLES[1]?.join(" ") ?? "malloc size", async () => {
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[1]!, target, pid);
    console.log(r.stdout.join("\n"));
    // N mallocs of 24, 100, 1000, 5000, 1M in turn, and N of 6 bytes inside strdup("probe").
    expect(r.stdout[0]).toBe(`malloc size: ${2 * N} calls, min 6, avg ${String(Math.round((N * 6 + (N / 5) * (24 + 100 + 1000 + 5000 + 1048576)) / (2 * N)))}, max 1048576, p50 8, p90 8192, p99 1048576`);
    const rows = Object.fromEntries(r.stdout.slice(1).filter((l) => l.includes("|")).map((l) => [l.split(")")[0] + ")", Number(/\) +(\d+) \|/.exec(l)![1])]));
    expect(rows).toMatchObject({ "[4, 8)": N, "[16, 32)": N / 5, "[64, 128)": N / 5, "[512, 1K)": N / 5, "[4K, 8K)": N / 5, "[1M, 2M)": N / 5 });
  });

  test(EXAMPLES[2]?.join(" ") ?? "read ret, linear", async () => {
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[2]!, target, pid);
    console.log(r.stdout.join("\n"));
    const rows = Object.fromEntries(r.stdout.slice(1).filter((l) => l.includes("|")).map((l) => [l.split(")")[0] + ")", Number(/\) +(\d+) \|/.exec(l)![1])]));
    // Reads of 1, 600, 4096 and 9000 bytes of /dev/zero in turn, and the read that sees stdin close (0).
    expect(rows).toEqual({
      "[0, 512)": N / 4 + 1, "[512, 1024)": N / 4, "[1024, 1536)": 0, "[1536, 2048)": 0, "[2048, 2560)": 0, "[2560, 3072)": 0, "[3072, 3584)": 0, "[3584, 4096)": 0,
      "[4096, 4608)": N / 4, "[4608, 5120)": 0, "[5120, 5632)": 0, "[5632, 6144)": 0, "[6144, 6656)": 0, "[6656, 7168)": 0, "[7168, 7680)": 0, "[7680, 8192)": 0, "[8192, ...)": N / 4,
    });
  });

  const MAIN = ["work", "main", "__libc_start_call_main", "__libc_start_main", "_start"];

  test(EXAMPLES[3]?.join(" ") ?? "malloc --stack", async () => {
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[3]!, target, pid);
    const calls = r.stdout.filter((l) => /^\d\d:/.test(l));
    expect(calls.length).toBe(2 * N);
    expect(calls[0]).toMatch(/ workload +malloc\(bytes=24\)$/);
    const first = r.stdout.indexOf(calls[1]!);
    const frames = r.stdout.slice(first + 1, r.stdout.indexOf(calls[2]!)).map((l) => l.trim().replace(/\+0x[0-9a-f]+/, ""));
    expect(frames).toEqual(["malloc (libc.so.6)", "strdup (libc.so.6)", "work (workload)", "main (workload)", "__libc_start_call_main (libc.so.6)", "__libc_start_main (libc.so.6)", "_start (workload)"]);
  });

  test(EXAMPLES[4]?.join(" ") ?? "malloc --stacks", async () => {
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[4]!, target, pid);
    console.log(r.stdout.join("\n"));
    expect(r.stdout).toEqual([
      `workload: ${N} calls`, ...["malloc", ...MAIN].map((f) => `    ${f}`), "",
      `workload: ${N} calls`, ...["malloc", "strdup", ...MAIN].map((f) => `    ${f}`), "",
      `${2 * N} calls, 2 distinct stacks`,
    ]);
  });

  test(EXAMPLES[5]?.join(" ") ?? "malloc --folded", async () => {
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[5]!, target, pid);
    const folded = FoldedStacks.parse(r.stdout.join("\n"));
    expect(folded.toString()).toBe(
      `workload;${[...MAIN].reverse().join(";")};malloc ${N}\n` + `workload;${[...MAIN].reverse().join(";")};strdup;malloc ${N}\n`,
    );
  });

  test(EXAMPLES[6]?.join(" ") ?? "malloc --flamegraph", async () => {
    const svg = join(WORK, "malloc.svg");
    rmSync(svg, { force: true });
    const { target, pid } = await workload();
    const r = await example(EXAMPLES[6]!, target, pid, { "malloc.svg": svg });
    expect(r.stderr.join("\n")).toContain(`flame graph of ${2 * N} calls (2 stacks) written to ${svg}`);
    const text = readFileSync(svg, "utf8");
    expect(Bun.spawnSync(["xmllint", "--noout", svg]).exitCode).toBe(0);
    for (const f of ["workload", "malloc", "strdup", ...MAIN]) expect(text).toContain(`data-name="${f}"`);
  });
});
