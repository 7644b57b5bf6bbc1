// Go targets: the x86-64 decoder against objdump, Go binary detection and function tables
// (plain, stripped, PIE, cgo), and return probes at RET instructions on a live Go HTTP server.
import { describe, test, expect, beforeAll } from "bun:test";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { ElfFile, STT, SHN_UNDEF } from "../lib/elf.ts";
import { findReturns, decodeRange, instructionStarts, instructionLength } from "../lib/x86/decoder.ts";
import { inspectGo, requireRegisterAbi, goFunction, listGoFunctions, pclntabFunctions, readBuildInfo, GoError, type GoFunction, type GoInfo } from "../lib/go.ts";
import { returnOffsets } from "../lib/go-returns.ts";
import type { BpfObject } from "../lib/object.ts";
import { loadEmbedded } from "../lib/programs.ts";
import { attachUprobe, type UprobeLink } from "../lib/uprobe.ts";
import { RingBuffer } from "../lib/ringbuf.ts";
import { MapReader } from "../lib/maps.ts";
import { UPROBE_EVENT, EV_CALL, EV_RETURN } from "../lib/layouts.ts";
import { goBuild, goEnv, run, startServer, load, type Server } from "./fixtures/go.ts";

const fixtures = join(import.meta.dir, "fixtures", "go");
const work = join(import.meta.dir, ".work", "go");

// ---------------------------------------------------------------------------------------------
// Building the fixtures (Go toolchain and gcc); caches live under tests/.work so a fresh clone
// builds as root without a HOME.

const bins: Record<string, string> = {};

beforeAll(() => {
  mkdirSync(work, { recursive: true });
  if (Bun.spawnSync(["which", "go"]).exitCode !== 0) throw new Error("the Go toolchain is needed for these tests: apt-get install golang-go");
  bins.server = goBuild("server", "server");
  bins.serverStripped = goBuild("server", "server-stripped", { strip: true });
  bins.serverPie = goBuild("server", "server-pie", { pie: true });
  bins.serverPieStripped = goBuild("server", "server-pie-stripped", { pie: true, strip: true });
  bins.funcs = goBuild("funcs", "funcs");
  bins.funcsStripped = goBuild("funcs", "funcs-stripped", { strip: true });
  bins.cgo = goBuild("cgo", "cgo", { cgo: true });
  bins.cgoPieStripped = goBuild("cgo", "cgo-pie-stripped", { cgo: true, pie: true, strip: true });
  bins.cgoPie = goBuild("cgo", "cgo-pie", { cgo: true, pie: true });
  bins.rets = join(work, "rets");
  run(["gcc", "-O1", "-o", bins.rets, join(fixtures, "decoder", "rets.c")], process.env, work);
}, 600_000);

function withElf<T>(path: string, f: (elf: ElfFile) => T): T {
  const fd = openSync(path, "r");
  try {
    return f(new ElfFile(fd, path));
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// objdump as the independent decoder.

interface ObjdumpInsn {
  addr: number;
  text: string;
}

function objdump(path: string, extra: string[] = []): ObjdumpInsn[] {
  const r = Bun.spawnSync(["objdump", "-d", "-z", "-w", "--no-show-raw-insn", "-j", ".text", ...extra, path], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`objdump failed: ${r.stderr.toString()}`);
  const out: ObjdumpInsn[] = [];
  for (const m of r.stdout.toString().matchAll(/^ *([0-9a-f]+):\t(.*)$/gm)) out.push({ addr: parseInt(m[1]!, 16), text: m[2]! });
  return out;
}

const isObjdumpRet = (t: string) => /^(repz |rep |bnd )?(ret|lret)[lqw]?\b/.test(t.trim());

/** Code symbols of .text sorted by address, each region running to the next symbol. */
function textRegions(elf: ElfFile): { name: string; start: number; end: number }[] {
  const text = elf.section(".text")!;
  const starts = new Map<number, string>();
  for (const s of elf.symbols()) {
    if (s.shndx === SHN_UNDEF || s.value < text.addr || s.value >= text.addr + text.size) continue;
    if (s.type !== STT.FUNC && s.type !== STT.NOTYPE) continue;
    if (!starts.has(s.value)) starts.set(s.value, s.name);
  }
  starts.set(text.addr, starts.get(text.addr) ?? ".text");
  const sorted = [...starts].sort((a, b) => a[0] - b[0]);
  return sorted.map(([start, name], i) => ({ name, start, end: sorted[i + 1]?.[0] ?? text.addr + text.size }));
}

interface Comparison {
  bytes: number;
  linear: number;
  ms: number;
  rets: number;
  c3: number;
  compared: number;
  objdumpCount: number;
  objdumpRets: number;
  skipped: string[];
  mismatches: string[];
}

/** Our instruction boundaries against objdump's over a whole .text, symbol by symbol. */
function compareWithObjdump(path: string): Comparison {
  return withElf(path, (elf) => {
    const text = elf.section(".text")!;
    const code = elf.sectionBytes(text);
    const theirs = objdump(path);
    const badAt = theirs.filter((i) => i.text.includes("(bad)")).map((i) => i.addr);

    // Timing: one linear pass over the whole section with the length decoder.
    const t0 = performance.now();
    const kind = new Int32Array(1);
    let pos = 0;
    let linear = 0;
    let rets = 0;
    while (pos < code.length) {
      const n = instructionLength(code, pos, code.length, kind);
      if (n < 0) {
        pos++; // only in data regions, which objdump cannot decode either
        continue;
      }
      linear++;
      if (kind[0]) rets++;
      pos += n;
    }
    const ms = performance.now() - t0;

    // Boundaries, symbol by symbol (objdump restarts its sweep at every symbol too).
    let compared = 0;
    let cursor = 0; // into `theirs`, sorted by address like the regions
    const skipped: string[] = [];
    const mismatches: string[] = [];
    for (const r of textRegions(elf)) {
      if (badAt.some((a) => a >= r.start && a < r.end)) {
        skipped.push(r.name); // data inside the function: objdump has no truth to compare with
        continue;
      }
      let mine: number[];
      try {
        mine = instructionStarts(code, r.start - text.addr, r.end - text.addr, text.addr);
      } catch (e) {
        mismatches.push(`${r.name}: ${(e as Error).message}`);
        continue;
      }
      const mineSet = new Set(mine);
      while (cursor < theirs.length && theirs[cursor]!.addr < r.start) cursor++;
      const theirsHere = new Set<number>();
      for (; cursor < theirs.length && theirs[cursor]!.addr < r.end; cursor++) {
        const a = theirs[cursor]!.addr;
        theirsHere.add(a);
        if (!mineSet.has(a)) mismatches.push(`${r.name}: objdump starts an instruction at 0x${a.toString(16)}, we do not`);
      }
      for (const a of mine) if (!theirsHere.has(a)) mismatches.push(`${r.name}: we start an instruction at 0x${a.toString(16)}, objdump does not`);
      compared += mine.length;
    }
    let c3 = 0;
    for (const b of code) if (b === 0xc3) c3++;
    const objdumpRets = theirs.filter((i) => isObjdumpRet(i.text)).length;
    return { bytes: code.length, linear, ms, rets, c3, compared, objdumpCount: theirs.length, objdumpRets, skipped, mismatches };
  });
}

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

describe("Go binaries", () => {
  test("detects Go, its version and ABI; C programs are not Go", () => {
    const goVersion = /go(\d+\.\d+(\.\d+)?)/.exec(Bun.spawnSync(["go", "version"], { env: goEnv }).stdout.toString())![0];
    for (const b of [bins.server!, bins.serverStripped!, bins.serverPie!, bins.cgo!, bins.cgoPieStripped!]) {
      withElf(b, (elf) => {
        const info = inspectGo(elf)!;
        expect(info).toBeDefined();
        expect(info.version?.raw).toBe(goVersion);
        expect(info.versionSource).toBe("buildinfo");
        expect(info.abi).toBe("register");
        expect(info.pclntabVersion).toBe("1.18");
        expect(info.evidence).toContain(".note.go.buildid");
        expect(info.evidence).toContain(".go.buildinfo");
        expect(info.evidence.some((e) => e.includes("pclntab"))).toBe(true);
        expect(readBuildInfo(elf)?.format).toBe("inline");
        expect(() => requireRegisterAbi(elf, info)).not.toThrow();
      });
    }
    withElf(bins.server!, (elf) => expect(inspectGo(elf)!.stripped).toBe(false));
    withElf(bins.serverStripped!, (elf) => expect(inspectGo(elf)!.stripped).toBe(true));
    withElf(bins.rets!, (elf) => expect(inspectGo(elf)).toBeUndefined());
    withElf("/bin/true", (elf) => expect(inspectGo(elf)).toBeUndefined());
  });

  test("refuses Go older than 1.17 (stack ABI) and unknown versions with a clear message", () => {
    withElf(bins.server!, (elf) => {
      const old: GoInfo = { evidence: [".gopclntab"], abi: "stack", stripped: false, version: { raw: "go1.16.15", major: 1, minor: 16 } };
      expect(() => requireRegisterAbi(elf, old)).toThrow(/go1\.16\.15, which passes Go arguments on the stack.*Go 1\.17/);
      const unknown: GoInfo = { evidence: [".gopclntab"], abi: "unknown", stripped: true };
      expect(() => requireRegisterAbi(elf, unknown)).toThrow(/cannot tell which Go version/);
    });
  });

  test(".gopclntab gives every function's bounds, matching the symbol table (plain, PIE, cgo, cgo PIE)", () => {
    for (const b of [bins.server!, bins.serverPie!, bins.cgo!, bins.cgoPie!]) {
      withElf(b, (elf) => {
        const fns = pclntabFunctions(elf);
        expect(fns.length).toBeGreaterThan(1000);
        // By address: pclntab names ABI wrappers like the function (the symbol table adds `.abi0`)
        // and generic instances by shape (`[...]`).
        const goName = (n: string) => n.replace(/\.abi0$/, "").replace(/\[[^\]]*(\[[^\]]*\][^\]]*)*\]/g, "[...]");
        const byAddr = new Map<string, { name: string; value: number; size: number }>();
        for (const s of elf.symbols()) if (s.type === STT.FUNC && s.shndx !== SHN_UNDEF) byAddr.set(`${goName(s.name)}@${s.value}`, s);
        let checked = 0;
        for (const f of fns) {
          const s = byAddr.get(`${f.name.replaceAll("·", ".")}@${f.entry}`);
          expect({ entry: f.entry, name: f.name, symbol: s !== undefined }).toEqual({ entry: f.entry, name: f.name, symbol: true });
          if (!s) continue;
          // pclntab's end is the next function's entry: the symbol's size plus alignment padding.
          expect(f.end - (s.value + s.size)).toBeGreaterThanOrEqual(0);
          expect(f.end - (s.value + s.size)).toBeLessThan(64);
          checked++;
        }
        expect(checked).toBe(fns.length);
      });
    }
  });

  test("stripped binaries (-s -w), stripped PIE and stripped cgo PIE: same functions, bounds and RETs from .gopclntab", () => {
    const pairs: [string, string, string][] = [
      [bins.server!, bins.serverStripped!, "main.recurse"],
      [bins.serverPie!, bins.serverPieStripped!, "net/http.(*conn).serve"],
      [bins.cgoPie!, bins.cgoPieStripped!, "main.goAdd"],
      [bins.funcs!, bins.funcsStripped!, "main.manyReturns"],
    ];
    for (const [full, stripped, name] of pairs) {
      const a = withElf(full, (elf) => {
        const f = goFunction(elf, name);
        expect(f.source).toBe("symtab");
        return { f, rets: returnOffsets(elf, f).offsets, list: pclntabFunctions(elf).map((x) => `${x.name}@${x.entry}`) };
      });
      const b = withElf(stripped, (elf) => {
        expect(elf.symbols().some((s) => s.name === name)).toBe(false);
        const f = goFunction(elf, name);
        expect(f.source).toBe("pclntab");
        return { f, rets: returnOffsets(elf, f).offsets, list: pclntabFunctions(elf).map((x) => `${x.name}@${x.entry}`) };
      });
      expect(b.f.entry).toBe(a.f.entry);
      expect(b.f.offset).toBe(a.f.offset);
      expect(b.rets).toEqual(a.rets);
      expect(b.list).toEqual(a.list);
    }
  });

  test("RET offsets for Go functions with 0, 1 and many returns; names as Go writes them", () => {
    for (const b of [bins.funcs!, bins.funcsStripped!]) {
      withElf(b, (elf) => {
        const theirs = objdump(bins.funcs!);
        const objdumpRets = (f: GoFunction) => theirs.filter((i) => i.addr >= f.entry && i.addr < f.end && isObjdumpRet(i.text)).map((i) => elf.vaddrToOffset(i.addr)!);
        expect(() => returnOffsets(elf, goFunction(elf, "main.neverReturns"))).toThrow(/main\.neverReturns .* has no RET instruction/);
        const one = goFunction(elf, "main.oneReturn");
        expect(returnOffsets(elf, one).offsets).toEqual(objdumpRets(one));
        expect(returnOffsets(elf, one).offsets.length).toBe(1);
        const many = goFunction(elf, "main.manyReturns");
        expect(returnOffsets(elf, many).offsets).toEqual(objdumpRets(many));
        expect(returnOffsets(elf, many).offsets.length).toBeGreaterThanOrEqual(5);
        const m = goFunction(elf, "main.(*T).M");
        expect(returnOffsets(elf, m).offsets.length).toBe(1);
        expect(listGoFunctions(elf, "main.*").map((f) => f.name)).toEqual(
          expect.arrayContaining(["main.(*T).M", "main.main", "main.manyReturns", "main.neverReturns", "main.oneReturn"]),
        );
        expect(() => goFunction(elf, "main.nope")).toThrow(/Go function main\.nope not found/);
        try {
          goFunction(elf, "oneReturn");
        } catch (e) {
          expect((e as GoError).hint).toContain("main.oneReturn");
        }
      });
    }
    // Stripped: .gopclntab names an ABI wrapper like its function; the register-ABI one is chosen.
    const abiInternal = withElf(bins.server!, (elf) => elf.symbols().find((s) => s.name === "internal/bytealg.countGenericString")!.value);
    withElf(bins.serverStripped!, (elf) => {
      expect(pclntabFunctions(elf).filter((f) => f.name === "internal/bytealg.countGenericString").length).toBe(2);
      expect(goFunction(elf, "internal/bytealg.countGenericString").entry).toBe(abiInternal);
    });
    withElf(bins.server!, (elf) => {
      expect(listGoFunctions(elf, "main.(*T).*")).toEqual([]);
      expect(listGoFunctions(elf, "(*conn).serve").map((f) => f.name)).toContain("net/http.(*conn).serve");
      expect(returnOffsets(elf, goFunction(elf, "net/http.(*conn).serve")).offsets.length).toBeGreaterThan(5);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The real thing: a Go HTTP server under load with entry probes and RET probes.

function config(tgid: number, emit: boolean, count: boolean, latency: boolean, goAbi: boolean): Uint8Array {
  const c = new Uint8Array(8);
  new DataView(c.buffer).setUint32(0, tgid, true);
  c[4] = emit ? 1 : 0;
  c[5] = count ? 1 : 0;
  c[6] = latency ? 1 : 0;
  c[7] = goAbi ? 1 : 0;
  return c;
}

function loadUprobeObject(cfg: Uint8Array): BpfObject {
  return loadEmbedded("uprobe", "multi", cfg);
}

interface Ev {
  kind: number;
  tid: number;
  func: number;
  ts: bigint;
  a: bigint[];
}

describe("Go return probes in the kernel", () => {
  test("RET probes on a Go HTTP server under load: no crash, every return pairs with its call", async () => {
    const server = await startServer(bins.server!);
    const objs: BpfObject[] = [];
    const links: UprobeLink[] = [];
    let rb: RingBuffer | undefined;
    try {
      const { recurse, sleepy, retSites } = withElf(bins.server!, (elf) => {
        requireRegisterAbi(elf, inspectGo(elf)!);
        const recurse = goFunction(elf, "main.recurse");
        const sleepy = goFunction(elf, "main.sleepy");
        return { recurse, sleepy, retSites: [returnOffsets(elf, recurse), returnOffsets(elf, sleepy)] };
      });
      const obj = loadUprobeObject(config(server.pid, true, true, true, true));
      objs.push(obj);
      links.push(
        attachUprobe(obj.progFd("probe_entry"), bins.server!, [{ offset: recurse.offset, cookie: 0n }, { offset: sleepy.offset, cookie: 1n }], { retprobe: false, pid: server.pid, mode: "multi" }),
      );
      // Every RET of both functions in one uprobe_multi link, as plain entry probes.
      const retPoints = retSites.flatMap((s, i) => s.offsets.map((offset) => ({ offset, cookie: BigInt(i) })));
      const retLink = attachUprobe(obj.progFd("probe_return"), bins.server!, retPoints, { retprobe: false, pid: server.pid, mode: "multi" });
      links.push(retLink);
      // The kernel's view: one uprobe_multi link, entry probes (not return probes) at every RET.
      const kernelView = retLink.info();
      expect(kernelView.length).toBe(1);
      expect(kernelView[0]!.type).toBe("uprobe_multi");
      expect(kernelView[0]!.uprobe!.retprobe).toBe(false);
      expect([...kernelView[0]!.uprobe!.offsets].sort((x, y) => x - y)).toEqual(retPoints.map((p) => p.offset).sort((x, y) => x - y));

      // A second, naive counter of raw entry hits (no Go dedupe) shows frames re-entering after morestack.
      const raw = loadUprobeObject(config(server.pid, false, true, false, false));
      objs.push(raw);
      links.push(attachUprobe(raw.progFd("probe_entry"), bins.server!, [{ offset: recurse.offset, cookie: 0n }], { retprobe: false, pid: server.pid, mode: "multi" }));

      rb = new RingBuffer(obj.mapFd("events"));
      const events: Ev[] = [];
      const drain = () =>
        rb!.consume((v, off) => {
          const a: bigint[] = [];
          for (let i = 0; i < 6; i++) a.push(v.getBigUint64(off + UPROBE_EVENT.a + i * 8, true));
          events.push({ kind: v.getUint32(off + UPROBE_EVENT.kind, true), tid: v.getUint32(off + UPROBE_EVENT.tid, true), func: v.getUint32(off + UPROBE_EVENT.func, true), ts: v.getBigUint64(off + UPROBE_EVENT.ts, true), a });
        });
      const timer = setInterval(drain, 5);

      const base = `http://127.0.0.1:${server.port}`;
      const urls: string[] = [];
      let expectedRecurse = 0;
      const sleeps = new Map<number, number>(); // id -> ms
      for (let i = 0; i < 400; i++) {
        const n = 20 + (i % 41);
        if (i % 4 === 3) {
          sleeps.set(i, 1 + (i % 3));
          urls.push(`${base}/sleep?ms=${1 + (i % 3)}&id=${i}`);
        } else if (i % 10 === 3) {
          urls.push(`${base}/gc?n=${n}`);
          expectedRecurse += n + 1;
        } else {
          urls.push(`${base}/recurse?n=${n}`);
          expectedRecurse += n + 1;
        }
      }
      const t0 = performance.now();
      const res = await load(urls, 48);
      const loadMs = performance.now() - t0;
      await Bun.sleep(50);
      drain();
      clearInterval(timer);

      // The server survived and answered everything right.
      expect(res.failed).toBe(0);
      expect(res.ok.length).toBe(urls.length);
      expect(server.proc.exitCode).toBeNull();
      expect((await (await fetch(`${base}/recurse?n=5`)).text()).trim()).toBe("11");
      for (const line of res.ok) {
        const m = /\/(recurse|gc)\?n=(\d+) (\d+)$/.exec(line);
        if (m) expect(Number(m[3])).toBe(2 * Number(m[2]) + 1);
      }

      const calls = events.filter((e) => e.kind === EV_CALL);
      const rets = events.filter((e) => e.kind === EV_RETURN);
      const dropped = [...new MapReader(obj.mapFd("dropped")).lookup(new Uint8Array(4))!].reduce((s, v) => s + new DataView(v.buffer, v.byteOffset).getBigUint64(0, true), 0n);
      expect(dropped).toBe(0n);

      // Counts match the requests exactly, though frames re-entered their entry after stack growth.
      const rawCalls = new DataView(new MapReader(raw.mapFd("counts")).lookup(new Uint8Array(new Uint32Array([server.pid]).buffer))![0]!.buffer).getBigUint64(0, true);
      const recCalls = calls.filter((e) => e.func === 0);
      const recRets = rets.filter((e) => e.func === 0);
      console.log(
        `go e2e: ${urls.length} requests in ${loadMs.toFixed(0)} ms; recurse: ${recCalls.length} calls, ${recRets.length} returns, ${rawCalls} raw entry hits (${Number(rawCalls) - recCalls.length} re-entries after morestack); ` +
          `${retSites[0]!.offsets.length} + ${retSites[1]!.offsets.length} RET sites`,
      );
      expect(recCalls.length).toBe(expectedRecurse);
      expect(recRets.length).toBe(expectedRecurse);
      expect(Number(rawCalls)).toBeGreaterThan(expectedRecurse);

      // Every return found its call (latency 0 means no entry record for its goroutine and frame).
      expect(rets.filter((e) => e.a[1] === 0n).length).toBe(0);
      // Return values: recurse(n) = 2n+1, as a multiset over calls and returns.
      const want = new Map<bigint, number>();
      for (const c of recCalls) want.set(2n * c.a[0]! + 1n, (want.get(2n * c.a[0]! + 1n) ?? 0) + 1);
      const got = new Map<bigint, number>();
      for (const r of recRets) got.set(r.a[0]!, (got.get(r.a[0]!) ?? 0) + 1);
      expect(got).toEqual(want);
      // Frames are told apart by their depth below the top of the goroutine's stack, which
      // survives the stack copies: from one return to the next of the same goroutine (value v,
      // then v+2: one frame up), the depth shrinks by exactly recurse's frame size, every time.
      const goroutines = new Set(recRets.map((r) => r.a[4]));
      expect(goroutines.size).toBeGreaterThan(1);
      const lastByG = new Map<bigint, Ev>();
      const deltas = new Map<bigint, number>();
      for (const r of recRets) {
        const prev = lastByG.get(r.a[4]!);
        if (prev && r.a[0] === prev.a[0]! + 2n) deltas.set(prev.a[5]! - r.a[5]!, (deltas.get(prev.a[5]! - r.a[5]!) ?? 0) + 1);
        lastByG.set(r.a[4]!, r);
      }
      expect(deltas.size).toBe(1);
      expect([...deltas.values()][0]).toBe(expectedRecurse - (urls.length - sleeps.size));

      // sleepy(ms, id): pair by id; all pair, values right, latency >= the sleep, some change thread.
      const sCalls = new Map(calls.filter((e) => e.func === 1).map((e) => [Number(e.a[1]), e]));
      const sRets = rets.filter((e) => e.func === 1);
      expect(sCalls.size).toBe(sleeps.size);
      expect(sRets.length).toBe(sleeps.size);
      let migrated = 0;
      for (const r of sRets) {
        const id = Math.floor(Number(r.a[0]) / 1000);
        const ms = Number(r.a[0]) % 1000;
        expect(sleeps.get(id)).toBe(ms);
        const c = sCalls.get(id)!;
        expect(Number(c.a[0])).toBe(ms);
        expect(Number(r.a[1])).toBeGreaterThanOrEqual(ms * 1e6);
        // The paired call is this one: its timestamp is the return's minus the latency.
        expect(Math.abs(Number(r.ts - r.a[1]! - c.ts))).toBeLessThan(1e6);
        if (r.tid !== c.tid) migrated++;
      }
      console.log(`go e2e: sleepy: ${sRets.length} calls paired, ${migrated} returned on another thread than their call`);
      expect(migrated).toBeGreaterThan(0);
      expect(server.proc.exitCode).toBeNull();
    } finally {
      rb?.close();
      for (const l of links) l.close();
      for (const o of objs) o.close();
      server.proc.kill();
      await server.proc.exited;
    }
  }, 120_000);

  test("a real uretprobe on the same Go function crashes the server (why probe never attaches one)", async () => {
    const server = await startServer(bins.server!);
    const objs: BpfObject[] = [];
    const links: UprobeLink[] = [];
    try {
      const recurse = withElf(bins.server!, (elf) => goFunction(elf, "main.recurse"));
      const obj = loadUprobeObject(config(server.pid, false, true, false, false));
      objs.push(obj);
      links.push(attachUprobe(obj.progFd("probe_return"), bins.server!, [{ offset: recurse.offset, cookie: 0n }], { retprobe: true, pid: server.pid, mode: "multi" }));
      const base = `http://127.0.0.1:${server.port}`;
      await load(Array.from({ length: 60 }, (_, i) => `${base}/recurse?n=${20 + i}`), 8);
      const code = await Promise.race([server.proc.exited, Bun.sleep(5000).then(() => "alive")]);
      const stderr = code === "alive" ? "" : await server.stderr();
      console.log(`go uretprobe: server ${code === "alive" ? "survived" : `exited (${code}, signal ${server.proc.signalCode})`}: ${stderr.split("\n").slice(0, 2).join(" | ")}`);
      expect(code).not.toBe("alive");
      expect(stderr).toMatch(/unexpected return pc|unknown caller pc|SIGILL|fatal error|SIGSEGV/);
    } finally {
      for (const l of links) l.close();
      for (const o of objs) o.close();
      server.proc.kill();
      await server.proc.exited;
    }
  }, 60_000);
});

