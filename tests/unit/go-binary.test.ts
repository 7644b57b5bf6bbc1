// Go binaries: detection, version and ABI, and function tables from .gopclntab (plain, stripped,
// PIE, cgo) against the symbol table and objdump's RETs.
import { describe, test, expect, beforeAll } from "bun:test";
import { inspectGo, requireRegisterAbi, type GoInfo } from "../../lib/go.ts";
import { readBuildInfo } from "../../lib/go-buildinfo.ts";
import { GoError } from "../../lib/go-error.ts";
import { goFunction, listGoFunctions } from "../../lib/go-functions.ts";
import { pclntabFunctions, type GoFunction } from "../../lib/go-pclntab.ts";
import { returnOffsets } from "../../lib/go-returns.ts";
import { STT, SHN_UNDEF } from "../../lib/elf.ts";
import { buildGoFixtures, withElf, objdump, isObjdumpRet, type GoBins } from "../fixtures/go-bins.ts";
import { goEnv } from "../fixtures/go.ts";

let bins: GoBins;
beforeAll(() => {
  bins = buildGoFixtures();
}, 600_000);

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

