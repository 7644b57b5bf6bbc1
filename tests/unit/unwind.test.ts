// The unwinder against gdb: a C program built -O2 -fomit-frame-pointer is stopped at `target`
// (called through a -> b -> c, and through libc's qsort), gdb dumps what probe's BPF side copies
// (registers, 16 KiB of stack from rsp, the mappings) and its own backtrace; our unwinder and
// symbolizer, fed only the dump and the files on disk, must find gdb's frames. A frame-pointer walk
// on the same dump stops at once: the reason for CFI. A stripped Go program is checked against
// Go's own runtime.Callers.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { goFunction } from "../../lib/go-functions.ts";
import { AddressSpace, type Mapping } from "../../lib/unwind/address-space.ts";
import { unwind, type StackSnapshot, type UnwindMode } from "../../lib/unwind/unwinder.ts";
import { Symbolizer, debugFilePaths, buildId, frameLabel } from "../../lib/unwind/symbolize.ts";
import { FoldedStacks } from "../../lib/flamegraph.ts";
import { buildChain, buildGoChain, gdbSnapshot, type GdbSnapshot } from "./unwind-fixtures.ts";

/** Files opened from disk, as the caller of lib/unwind would open them in the target's view. */
const opened = new Map<string, ElfFile>();
function openElf(path: string): ElfFile | undefined {
  if (!path.startsWith("/")) return undefined;
  let f = opened.get(path);
  if (!f) {
    f = new ElfFile(openSync(path, "r"), path);
    opened.set(path, f);
  }
  return f;
}
const opener = (m: Mapping) => openElf(m.path);

/** Debian's libc6-dbg: the .symtab of libc lives in /usr/lib/debug/.build-id (same build id). */
const symbolizer = new Symbolizer({
  debugFile: (elf) => {
    for (const p of debugFilePaths(elf)) {
      try {
        const d = new ElfFile(openSync(p, "r"), p);
        if (buildId(d) === buildId(elf)) return d;
      } catch {
        // not installed
      }
    }
    return undefined;
  },
});

function snapshotOf(s: GdbSnapshot, stackBytes = s.stack.length): StackSnapshot {
  const r = s.regs;
  return { regs: { rip: r.rip!, rsp: r.rsp!, rbp: r.rbp, rbx: r.rbx, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15 }, stack: s.stack.subarray(0, stackBytes), stackAddr: s.stackAddr };
}

function run(s: GdbSnapshot, mode: UnwindMode, stackBytes?: number) {
  const space = new AddressSpace(s.mappings, opener);
  const res = unwind(space, snapshotOf(s, stackBytes), { mode });
  const frames = symbolizer.symbolizeStack(space, res.pcs, res.exact);
  return { ...res, frames, space };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function show(s: GdbSnapshot, r: ReturnType<typeof run>): string {
  return `gdb:\n${s.frames.map((f) => `  ${hex(f.pc)} ${f.names.join(" <- ")}`).join("\n")}\nours (${r.end}):\n${r.frames.map((f, i) => `  ${hex(f.pc)} ${r.methods[i]} ${frameLabel(f, { offsets: true })}`).join("\n")}`;
}

describe("C, -O2 -fomit-frame-pointer, against gdb", () => {
  const chain = buildChain();
  const gdb = {
    chain: gdbSnapshot([chain, "chain"], "target", "chain"),
    qsort: gdbSnapshot([chain, "qsort"], "target", "qsort"),
    signal: gdbSnapshot([chain, "signal"], "target", "signal"),
  };

  for (const path of ["chain", "qsort", "signal"] as const) {
    test(`${path}: CFI unwinding finds gdb's frames, pc for pc, through libc to _start`, () => {
      const s = gdb[path];
      expect(s.stack.length).toBeGreaterThan(1024);
      const r = run(s, "auto");
      console.log(show(s, r));
      expect(r.pcs.map(hex)).toEqual(s.frames.map((f) => hex(f.pc)));
      expect(r.end).toBe("outermost");
      expect(r.methods.slice(1).every((m) => m === "cfi")).toBe(true);
      // Names: the fixture's own frames by name; every frame by the function it lands in (gdb's
      // debug info may name an alias or the source name of a .part clone).
      for (const [i, f] of r.frames.entries()) {
        const g = s.frames[i]!;
        expect(f.known).toBe(true);
        if (g.functionStart >= 0) expect(hex(f.pc - f.offset)).toBe(hex(g.functionStart));
        if (f.file === chain) expect(f.symbol).toBe(g.names[g.names.length - 1]!);
      }
      const names = r.frames.map((f) => f.symbol);
      expect(names.slice(0, 1)).toEqual(["target"]);
      expect(names).toContain("main");
      expect(names[names.length - 1]).toBe("_start");
      if (path === "chain") expect(names.slice(0, 5)).toEqual(["target", "c", "b", "a", "main"]);
      else if (path === "signal") {
        // The kernel's signal frame: __restore_rt's FDE ("zRS") reads every register from the
        // ucontext on the stack, and the interrupted pc is exact, not a return address.
        expect(names.slice(0, 3)).toEqual(["target", "on_signal", "__restore_rt"]);
        expect(r.exact.map((e, i) => (e ? i : -1)).filter((i) => i >= 0)).toEqual([0, 3]);
        expect(names).toContain("raise");
      } else {
        expect(names[1]).toBe("compare");
        expect(names.filter((n) => n.startsWith("msort_with_tmp")).length).toBeGreaterThanOrEqual(2);
        expect(names).toContain("qsort_r");
        // gdb also shows qsort, rebuilt from DWARF call sites: qsort jumps to qsort_r, leaving no frame.
        expect(s.tailCalls.map((t) => t.name)).toEqual(["__GI_qsort"]);
      }
    });

    test(`${path}: a frame-pointer walk of the same snapshot stops early`, () => {
      const s = gdb[path];
      const fp = run(s, "fp");
      const cfi = run(s, "auto");
      console.log(`${path}: frame pointers give ${fp.pcs.length} frame(s) (${fp.end}), CFI ${cfi.pcs.length}`);
      expect(fp.pcs.length).toBeLessThan(cfi.pcs.length);
      expect(fp.pcs.length).toBeLessThanOrEqual(2);
      expect(fp.frames.map((f) => f.symbol)).not.toContain("main");
    });
  }

  test("a shorter stack copy ends the walk where the next return address is beyond it", () => {
    const s = gdb.qsort;
    const full = run(s, "auto");
    for (const bytes of [64, 256, 512, 1024]) {
      const part = run(s, "auto", bytes);
      expect(part.end).toBe("stack-end");
      expect(part.pcs.length).toBeLessThan(full.pcs.length);
      expect(part.pcs).toEqual(full.pcs.slice(0, part.pcs.length));
    }
  });

  test("cfi mode equals auto where every file has CFI; maxFrames caps the walk", () => {
    const s = gdb.qsort;
    expect(run(s, "cfi").pcs).toEqual(run(s, "auto").pcs);
    const space = new AddressSpace(s.mappings, opener);
    const capped = unwind(space, snapshotOf(s), { maxFrames: 4 });
    expect(capped.pcs.length).toBe(4);
    expect(capped.end).toBe("max-frames");
  });

  test("folded stacks from the unwound snapshots (what --stacks and the flame graph count)", () => {
    const folded = new FoldedStacks();
    for (const path of ["chain", "qsort", "chain"] as const) folded.addStack("chain", run(gdb[path], "auto").frames.map((f) => frameLabel(f)));
    expect(folded.toString()).toBe(
      "chain;_start;__libc_start_main;__libc_start_call_main;main;a;b;c;target 2\n" +
        "chain;_start;__libc_start_main;__libc_start_call_main;main;qsort_r;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;msort_with_tmp.part.0;compare;target 1\n",
    );
  });

  test("speed: repeated stacks (warm tables) and first stacks (cold tables)", () => {
    const s = gdb.qsort;
    const space = new AddressSpace(s.mappings, opener);
    const snap = snapshotOf(s);
    let t = performance.now();
    const n = 20_000;
    let frames = 0;
    for (let i = 0; i < n; i++) frames += unwind(space, snap).pcs.length;
    const warm = performance.now() - t;
    t = performance.now();
    const cold = 5;
    for (let i = 0; i < cold; i++) {
      const fresh = new Map<string, ElfFile>();
      const sp = new AddressSpace(s.mappings, (m) => {
        if (!m.path.startsWith("/")) return undefined;
        if (!fresh.has(m.path)) fresh.set(m.path, new ElfFile(openSync(m.path, "r"), m.path));
        return fresh.get(m.path);
      });
      expect(unwind(sp, snap).pcs).toEqual(run(s, "auto").pcs);
      for (const f of fresh.values()) closeSync(f.fd);
    }
    const coldMs = (performance.now() - t) / cold;
    console.log(`unwind: ${Math.round((n / warm) * 1000)} stacks/s warm (${frames / n} frames each), ${coldMs.toFixed(1)} ms for a first stack with files opened and tables read`);
    expect(frames).toBe(n * run(s, "auto").pcs.length);
  });
});

describe("Go, stripped (-ldflags='-s -w'), against runtime.Callers", () => {
  for (const pie of [false, true]) {
    test(`${pie ? "PIE" : "non-PIE"}: auto unwinds with .gopclntab's pcsp tables from the entry probe; frame pointers skip the caller`, () => {
      const bin = buildGoChain(true, pie);
      const elf = openElf(bin)!;
      expect(elf.section(".eh_frame")).toBeUndefined();
      expect(elf.section(".debug_frame")).toBeUndefined();
      expect(elf.section(".symtab")).toBeUndefined();
      const target = goFunction(elf, "main.target");
      // gdb turns address randomization off: a PIE's first segment lands at 0x555555554000.
      const entry = pie ? 0x555555554000 + target.offset : target.entry;
      const s = gdbSnapshot([bin], `*${hex(entry)}`, pie ? "go-stripped-pie" : "go-stripped");
      expect(s.regs.rip).toBe(entry);
      // What Go itself saw from inside target: [pc in target, return into c, b, a, main, runtime.main, goexit].
      const callers = [...s.output.matchAll(/^CALLER 0x([0-9a-f]+) (\S+)$/gm)].map((m) => ({ pc: parseInt(m[1]!, 16), name: m[2]! }));
      expect(callers.map((c) => c.name)).toEqual(["main.target", "main.c", "main.b", "main.a", "main.main", "runtime.main", "runtime.goexit"]);

      const r = run(s, "auto");
      console.log(show(s, r));
      expect(r.pcs.slice(1).map(hex)).toEqual(callers.slice(1).map((c) => hex(c.pc)));
      expect(r.frames.map((f) => f.symbol)).toEqual(callers.map((c) => c.name));
      expect(r.methods.slice(1).every((m) => m === "go")).toBe(true);
      expect(r.end).toBe("outermost");
      expect(run(s, "cfi").pcs).toEqual(r.pcs);

      // Go keeps frame pointers, but at target's entry rbp is still c's: the walk misses c.
      const fp = run(s, "fp");
      console.log(`Go frame pointers: ${fp.frames.map((f) => f.symbol).join(" <- ")}`);
      expect(fp.frames.map((f) => f.symbol)).toEqual(["main.target", "main.b", "main.a", "main.main", "runtime.main", "runtime.goexit"]);
    });
  }

  test("not stripped: .debug_frame gives the same chain, and gdb agrees", () => {
    const bin = buildGoChain(false);
    const s = gdbSnapshot([bin], "main.target", "go-plain");
    const r = run(s, "auto");
    expect(r.methods.slice(1).every((m) => m === "cfi")).toBe(true);
    expect(r.frames.map((f) => f.symbol)).toEqual(["main.target", "main.c", "main.b", "main.a", "main.main", "runtime.main", "runtime.goexit"]);
    expect(r.pcs.map(hex)).toEqual(s.frames.slice(0, r.pcs.length).map((f) => hex(f.pc)));
    expect(r.frames.map((f) => f.symbol)).toEqual(s.frames.slice(0, r.pcs.length).map((f) => f.names[0]!));
  });
});
