// `probe uprobe --stack / --stacks`: user stacks copied in BPF and unwound with call-frame
// information, against gdb's backtrace of the same binary (built -O2 -fomit-frame-pointer, where a
// frame-pointer walk stops after the caller), through libc (qsort -> comparator), for a stripped
// Go binary against Go's own runtime.Callers, and inside a namespace container whose binary exists
// only there. Counted stacks: exact counts, folded lines, and a flame graph that is valid XML with
// one rectangle per frame at the width its count gives, rendered by headless Chromium.
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { FoldedStacks } from "../../lib/flamegraph.ts";
import { runProbe, startProbe, type Running } from "../helpers.ts";
import { gdbSnapshot, type GdbSnapshot } from "../unit/unwind-fixtures.ts";
import { buildChain, buildGoChain, startChain, startGoChain, WORK, type Held } from "../fixtures/hist/fixtures.ts";
import { ensureRootfs, startNsContainer } from "../fixtures/container.ts";

interface Frame {
  pc: string;
  function: string;
  offset?: number;
  file: string;
  file_offset?: string;
}

interface StackEvent {
  event: string;
  pid: number;
  nspid?: number[];
  tid: number;
  function: string;
  args?: unknown;
  stack: Frame[];
  stack_end?: string;
}

interface CountedStack {
  event: "stack";
  count: number;
  comm: string;
  pid?: number;
  function: string;
  frames: { function: string; file: string }[];
}

async function stop(p: Running): Promise<{ stdout: string[]; stderr: string[]; code: number }> {
  p.proc.kill("SIGINT");
  const code = await p.proc.exited;
  return { stdout: await p.out.done(), stderr: await p.err.done(), code };
}

/** probe on a held fixture: attach, let it run, stop probe. */
async function traced(h: Held, bin: string, fn: string, args: string[]) {
  const p = await startProbe(["uprobe", bin, fn, ...args, "--pid", String(h.pid)]);
  await h.go();
  const r = await stop(p);
  await h.end();
  expect(r.code).toBe(0);
  return r;
}

const json = <T>(lines: string[]) => lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as T);

/** gdb's frames as (file, offset in it) and the file offset of the function holding each. */
function gdbFrames(s: GdbSnapshot) {
  return s.frames.map((f) => {
    const m = s.mappings.find((x) => f.pc >= x.start && f.pc < x.end)!;
    const fm = f.functionStart >= 0 ? s.mappings.find((x) => f.functionStart >= x.start && f.functionStart < x.end) : undefined;
    return {
      file: basename(m.path),
      offset: f.pc - m.start + m.offset,
      functionStart: fm ? f.functionStart - fm.start + fm.offset : -1,
      name: f.names[f.names.length - 1]!,
    };
  });
}

function ours(frames: Frame[]) {
  return frames.map((f) => ({
    file: basename(f.file),
    offset: parseInt(f.file_offset!, 16),
    functionStart: f.offset !== undefined ? parseInt(f.file_offset!, 16) - f.offset : -1,
    name: f.function,
  }));
}

describe("--stack on C built -O2 -fomit-frame-pointer", () => {
  const chain = buildChain();
  const gdb = {
    chain: gdbSnapshot([chain, "chain", "1", "once"], "target", "hist-chain"),
    qsort: gdbSnapshot([chain, "qsort", "1", "once"], "target", "hist-qsort"),
  };

  test("every frame, in order, as gdb's backtrace of the same binary: main -> a -> b -> c -> target, and qsort -> compare -> target", async () => {
    const r = await traced(await startChain("both", 1), chain, "target", ["--stack", "--json"]);
    const events = json<StackEvent>(r.stdout);
    expect(events.map((e) => e.event)).toEqual(["call", "call"]);
    for (const [i, path] of (["chain", "qsort"] as const).entries()) {
      const g = gdbFrames(gdb[path]);
      const o = ours(events[i]!.stack);
      console.log(`${path}: gdb ${g.map((f) => f.name).join(" <- ")}\n${" ".repeat(path.length + 2)}probe ${o.map((f) => f.name).join(" <- ")} (${events[i]!.stack_end})`);
      // The same pcs (as file offsets: this run has its own address layout) in the same files...
      expect(o.map((f) => `${f.file}+0x${f.offset.toString(16)}`)).toEqual(g.map((f) => `${f.file}+0x${f.offset.toString(16)}`));
      // ...in the same functions (gdb names clones and aliases by their source names).
      for (const [k, f] of g.entries()) if (f.functionStart >= 0) expect(o[k]!.functionStart).toBe(f.functionStart);
      expect(events[i]!.stack_end).toBe("outermost");
      const names = o.map((f) => f.name);
      if (path === "chain") expect(names.slice(0, 4)).toEqual(["target", "c", "b", "a"]);
      else expect(names.slice(0, 3)).toEqual(["target", "compare", "msort_with_tmp.part.0"]);
      expect(names).toContain("main");
      expect(names).toContain(path === "qsort" ? "qsort_r" : "main");
      expect(names.at(-1)).toBe("_start");
    }
  });

  test("as a person reads it: the call line, then one frame a line with its offset and file", async () => {
    const r = await traced(await startChain("chain", 1), chain, "target", ["--stack"]);
    console.log(r.stdout.join("\n"));
    expect(r.stdout[0]).toMatch(/^TIME +PID +TID +COMM +FUNCTION/);
    expect(r.stdout[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +\d+ +\d+ +chain +target\(x=9\)$/);
    expect(r.stdout.slice(2, 7)).toEqual([
      "        target (chain)",
      expect.stringMatching(/^ {8}c\+0x[0-9a-f]+ \(chain\)$/),
      expect.stringMatching(/^ {8}b\+0x[0-9a-f]+ \(chain\)$/),
      expect.stringMatching(/^ {8}a\+0x[0-9a-f]+ \(chain\)$/),
      expect.stringMatching(/^ {8}round_of\.constprop\.0\+0x[0-9a-f]+ \(chain\)$/),
    ]);
    expect(r.stdout).toContainEqual(expect.stringMatching(/^ {8}__libc_start_call_main\+0x[0-9a-f]+ \(libc\.so\.6\)$/));
    expect(r.stdout.filter((l) => l.trim()).at(-1)).toMatch(/^ {8}_start\+0x[0-9a-f]+ \(chain\)$/);
  });

  test("--unwind fp: the frame-pointer walk stops after the caller (taken from rsp at the entry); cfi finds what auto finds", async () => {
    const fp = json<StackEvent>((await traced(await startChain("both", 1), chain, "target", ["--stack", "--json", "--unwind", "fp"])).stdout);
    expect(fp.map((e) => e.stack.map((f) => f.function))).toEqual([["target", "c"], ["target", "compare"]]);
    const cfi = json<StackEvent>((await traced(await startChain("both", 1), chain, "target", ["--stack", "--json", "--unwind", "cfi"])).stdout);
    const auto = json<StackEvent>((await traced(await startChain("both", 1), chain, "target", ["--stack", "--json"])).stdout);
    expect(cfi.map((e) => e.stack.map((f) => `${f.function}+${f.file_offset}`))).toEqual(auto.map((e) => e.stack.map((f) => `${f.function}+${f.file_offset}`)));
  });

  test("a stack copy too short for the whole stack ends where the copy ends, and says so", async () => {
    const r = await traced(await startChain("qsort", 1), chain, "target", ["--stack", "--json", "--stack-size", "512"]);
    const [e] = json<StackEvent>(r.stdout);
    expect(e!.stack_end).toBe("stack-end");
    expect(e!.stack.length).toBeGreaterThan(2);
    expect(e!.stack.map((f) => f.function)).not.toContain("main");
    const human = await traced(await startChain("qsort", 1), chain, "target", ["--stack", "--stack-size", "512"]);
    expect(human.stdout).toContain("        -- the rest is beyond the 512 bytes of stack copied (--stack-size)");
  });
});

describe("processes gone before their maps are read", () => {
  test("-- CMD that exits right after its calls: named from the mappings the kernel reported as they were made", async () => {
    const chain = buildChain();
    for (let i = 0; i < 3; i++) {
      const r = runProbe(["uprobe", chain, "target", "--stack", "--json", "--", chain, "both", "1", "once"]);
      expect(r.code).toBe(0);
      const events = json<StackEvent>(r.stdout.split("\n"));
      expect(events.length).toBe(2);
      for (const e of events) {
        expect(e.stack_end).toBe("outermost");
        expect(e.stack.map((f) => f.function)).toContain("main");
        expect(e.stack.at(-1)!.function).toBe("_start");
        expect(e.stack.every((f) => f.function !== "[unknown]")).toBe(true);
      }
    }
  });

  test("a forked child that exits at once (no exec, no mapping of its own): its parent's mappings", () => {
    const chain = buildChain();
    const r = runProbe(["uprobe", chain, "target", "--stack", "--json", "--follow-children", "--", chain, "both", "1", "fork"]);
    expect(r.code).toBe(0);
    const events = json<StackEvent>(r.stdout.split("\n"));
    expect(events.length).toBe(2);
    for (const e of events) {
      expect(e.stack.at(-1)!.function).toBe("_start");
      expect(e.stack.map((f) => f.function)).toContain("main");
    }
  });
});

describe("--stacks: calls per unique stack", () => {
  const chain = buildChain();
  const CHAIN = ["chain", "_start", "__libc_start_main", "__libc_start_call_main", "main", "round_of.constprop.0", "a", "b", "c", "target"];
  const QSORT = ["chain", "_start", "__libc_start_main", "__libc_start_call_main", "main", "round_of.constprop.0", "qsort_r", ...Array(6).fill("msort_with_tmp.part.0"), "compare", "target"];

  test("exact counts per stack, as JSON and as the top stacks", async () => {
    const r = await traced(await startChain("both", 7), chain, "target", ["--stacks", "--json"]);
    const stacks = json<CountedStack>(r.stdout);
    expect(stacks.map((s) => [s.count, s.comm, s.function, ["chain", ...s.frames.map((f) => f.function).reverse()].join(";")]).sort()).toEqual([
      [7, "chain", "target", CHAIN.join(";")],
      [7, "chain", "target", QSORT.join(";")],
    ]);
    const human = await traced(await startChain("both", 3), chain, "target", ["--stacks"]);
    console.log(human.stdout.join("\n"));
    expect(human.stdout[0]).toBe("chain: 3 calls");
    expect(human.stdout.slice(1, 4)).toEqual(expect.arrayContaining(["    target"]));
    expect(human.stdout.at(-1)).toBe("6 calls, 2 distinct stacks");
  });

  test("--folded: Brendan Gregg's folded lines; --per-process names the process", async () => {
    const r = await traced(await startChain("both", 5), chain, "target", ["--folded"]);
    expect(r.stdout.filter((l) => l)).toEqual([`${CHAIN.join(";")} 5`, `${QSORT.join(";")} 5`]);
    const h = await startChain("chain", 2);
    const pp = await traced(h, chain, "target", ["--folded", "--per-process"]);
    expect(pp.stdout.filter((l) => l)).toEqual([`chain [${h.pid}];${CHAIN.slice(1).join(";")} 2`]);
  });

  test("--unwind fp counts in the kernel (a BPF stack map): the same counts, two frames each", async () => {
    const r = await traced(await startChain("both", 9), chain, "target", ["--folded", "--unwind", "fp"]);
    expect(r.stdout.filter((l) => l)).toEqual(["chain;c;target 9", "chain;compare;target 9"]);
  });

  test("--flamegraph: valid XML, one rectangle per frame of the folded stacks at its width, rendered by Chromium", async () => {
    const svg = join(WORK, "stacks.svg");
    rmSync(svg, { force: true });
    const r = await traced(await startChain("both", 6), chain, "target", ["--folded", "--flamegraph", svg]);
    expect(r.stderr.join("\n")).toContain(`flame graph of 12 calls (2 stacks) written to ${svg}`);
    const text = readFileSync(svg, "utf8");
    const lint = Bun.spawnSync(["xmllint", "--noout", svg], { stderr: "pipe" });
    if (lint.exitCode !== 0) throw new Error(`xmllint: ${lint.stderr} (is libxml2-utils installed?)`);

    // The tree of the folded stacks probe printed in the same run: one rectangle per node.
    const folded = FoldedStacks.parse(r.stdout.join("\n"));
    type N = { count: number; children: Map<string, N> };
    const root: N = { count: 0, children: new Map() };
    for (const s of folded.entries()) {
      root.count += s.count;
      let n = root;
      for (const f of s.frames) {
        if (!n.children.has(f)) n.children.set(f, { count: 0, children: new Map() });
        n = n.children.get(f)!;
        n.count += s.count;
      }
    }
    const expected: [string, number][] = [];
    const walk = (name: string, n: N) => {
      expected.push([name, n.count]);
      for (const k of [...n.children.keys()].sort()) walk(k, n.children.get(k)!);
    };
    walk("all", root);
    const rects = [...text.matchAll(/<g class="f" data-name="([^"]*)" data-count="(\d+)"><title>[^<]*<\/title><rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [m[1]!, Number(m[2]), Number(m[3])] as const);
    expect(rects.map(([name, count]) => [name, count])).toEqual(expected);
    for (const [, count, width] of rects) expect(Math.abs(width - (count / root.count) * 1180)).toBeLessThan(0.01);

    const dirs = [0, 1].map(() => mkdtempSync(join(WORK, "chromium-")));
    const png = join(WORK, "stacks.png");
    rmSync(png, { force: true });
    const args = (dir: string) => ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${dir}`];
    const runs = [
      Bun.spawn([...args(dirs[0]!), "--dump-dom", `file://${svg}`], { stdout: "pipe", stderr: "pipe" }),
      Bun.spawn([...args(dirs[1]!), `--screenshot=${png}`, "--window-size=1200,600", `file://${svg}`], { stdout: "pipe", stderr: "pipe" }),
    ];
    const timer = setTimeout(() => runs.forEach((x) => x.kill()), 90_000);
    const dom = await new Response(runs[0]!.stdout).text();
    const codes = await Promise.all(runs.map((x) => x.exited));
    clearTimeout(timer);
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    if (codes.some((c) => c !== 0)) throw new Error(`chromium failed (is Debian's chromium installed?): exit codes ${codes.join(", ")}`);
    for (const name of new Set([...CHAIN, ...QSORT])) expect(dom).toContain(`data-name="${name}"`);
    expect(dom).toContain(">msort_with_tmp.part.0</text>");
    expect(existsSync(png) && statSync(png).size).toBeGreaterThan(5000);
    console.log(`flame graph: ${svg}, screenshot: ${png}`);
  }, 120_000);
});

describe("--stack on a stripped Go binary", () => {
  test("the chain as Go's runtime.Callers sees it, names from .gopclntab; every call has its stack", async () => {
    const bin = buildGoChain();
    const g = await startGoChain(3);
    const r = await traced(g, bin, "main.target", ["--stack", "--json"]);
    const callers = g.callers();
    expect(callers.map((c) => c.name)).toEqual(["main.target", "main.c", "main.b", "main.a", "main.main", "runtime.main", "runtime.goexit"]);
    const events = json<StackEvent>(r.stdout);
    expect(events.length).toBe(3);
    for (const e of events) {
      expect(e.stack.map((f) => f.function)).toEqual(callers.map((c) => c.name));
      // Go's callers are return addresses (non-PIE: as in the file); frame 0 is the probe at the entry.
      expect(e.stack.slice(1).map((f) => f.pc)).toEqual(callers.slice(1).map((c) => `0x${c.pc.toString(16)}`));
      expect(e.stack_end).toBe("outermost");
    }
  });
});

describe("--stack in a namespace container whose binary exists only there", () => {
  test("files opened in the container's view; the same frames as on the host", async () => {
    const { root } = ensureRootfs();
    const inside = "/opt/probe-hist/chain";
    expect(existsSync(inside)).toBe(false);
    mkdirSync(join(root, "opt/probe-hist"), { recursive: true });
    copyFileSync(buildChain(), join(root, inside));
    const c = await startNsContainer([inside, "both", "0", "loop"], { root });
    try {
      const r = runProbe(["uprobe", inside, "target", "--stack", "--json", "--pid", String(c.pid), "-d", "1"]);
      expect(r.code).toBe(0);
      const events = json<StackEvent>(r.stdout.split("\n"));
      expect(events.length).toBeGreaterThanOrEqual(4);
      const chainCall = events.find((e) => e.stack[1]?.function === "c")!;
      const qsortCall = events.find((e) => e.stack[1]?.function === "compare")!;
      expect(chainCall.nspid).toEqual([c.pid, 1]);
      expect(chainCall.stack.map((f) => f.function)).toEqual(["target", "c", "b", "a", "round_of.constprop.0", "main", "__libc_start_call_main", "__libc_start_main", "_start"]);
      expect(qsortCall.stack.map((f) => f.function)).toEqual(["target", "compare", ...Array(6).fill("msort_with_tmp.part.0"), "qsort_r", "round_of.constprop.0", "main", "__libc_start_call_main", "__libc_start_main", "_start"]);
      // Paths as the container sees them.
      expect(chainCall.stack[0]!.file).toBe(inside);
      expect(chainCall.stack.find((f) => f.function === "__libc_start_main")!.file).toMatch(/^\/(usr\/)?lib\/x86_64-linux-gnu\/libc\.so\.6$/);
      const folded = runProbe(["uprobe", inside, "target", "--folded", "--pid", String(c.pid), "-d", "1"]);
      const lines = folded.stdout.split("\n").filter((l) => l);
      expect(lines.map((l) => l.replace(/ \d+$/, ""))).toEqual([
        "chain;_start;__libc_start_main;__libc_start_call_main;main;round_of.constprop.0;a;b;c;target",
        "chain;_start;__libc_start_main;__libc_start_call_main;main;round_of.constprop.0;qsort_r;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;compare;target",
      ]);
    } finally {
      await c.stop();
      rmSync(join(root, "opt/probe-hist"), { recursive: true, force: true });
    }
  }, 60_000);
});

describe("--stack refusals", () => {
  const cases: [string[], RegExp][] = [
    [["--stack", "--stacks"], /choose one/],
    [["--unwind", "fp"], /--unwind goes with --stack or --stacks/],
    [["--stack", "--unwind", "dwarf"], /--unwind is auto, cfi or fp/],
    [["--stack", "--unwind", "fp", "--stack-size", "4K"], /--unwind fp copies none/],
    [["--stack", "--stack-size", "1M"], /--stack-size takes a size/],
    [["--stack", "--stack-size", "100"], /at least 512 bytes/],
    [["--folded", "--json"], /choose one/],
    [["--stacks", "--ret"], /no --ret/],
    [["--flamegraph", "/nonexistent-dir/x.svg", "-d", "0.1"], /cannot write the flame graph to \/nonexistent-dir\/x\.svg/],
  ];
  for (const [args, re] of cases) {
    test(args.join(" "), () => {
      const r = runProbe(["uprobe", buildChain(), "target", ...args, ...(args.includes("-d") ? [] : ["-d", "0.1"])]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
