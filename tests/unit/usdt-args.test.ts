// USDT argument specs: every form sdt.h writes on x86-64, parsed to pt_regs descriptors, then
// evaluated at the real probe sites of the fixtures under gdb (registers and memory read from the
// stopped process) and compared with the values the fixture passed and with gdb's own
// $_probe_argN where gdb can parse the spec.
import { describe, expect, test } from "bun:test";
import {
  ARG_CONST, ARG_MEM, ARG_REG, PT_REGS, PT_REG_INDEX, describeArg, evaluateArg, flattenArg, parseUsdtArg, parseUsdtArgs,
  UsdtArgError, type UsdtArg,
} from "../../lib/usdt/args.ts";
import { FIXTURE_NAMES, Gdb, sitesOf, usdtFixture } from "./usdt-fixture.ts";

const R = PT_REG_INDEX;

describe("parsing each spec form", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["-4@%edi", { kind: "register", size: 4, signed: true, reg: { full: "rdi", index: R.rdi, width: 4, shift: 0 } }],
    ["8@%rax", { kind: "register", size: 8, signed: false, reg: { full: "rax", index: R.rax, width: 8 } }],
    ["1@%al", { kind: "register", size: 1, signed: false, reg: { full: "rax", width: 1, shift: 0 } }],
    ["-1@%ah", { kind: "register", size: 1, signed: true, reg: { full: "rax", width: 1, shift: 8 } }],
    ["1@%bh", { kind: "register", reg: { full: "rbx", shift: 8 } }],
    ["1@%ch", { kind: "register", reg: { full: "rcx", shift: 8 } }],
    ["1@%dh", { kind: "register", reg: { full: "rdx", shift: 8 } }],
    ["2@%r8w", { kind: "register", size: 2, reg: { full: "r8", index: R.r8, width: 2 } }],
    ["-1@%r15b", { kind: "register", size: 1, signed: true, reg: { full: "r15", index: R.r15, width: 1 } }],
    ["1@%r11l", { kind: "register", reg: { full: "r11", width: 1 } }],
    ["%r9d", { kind: "register", size: 4, signed: false, reg: { full: "r9", index: R.r9, width: 4 } }],
    ["%rsp", { kind: "register", size: 8, reg: { full: "rsp", index: R.rsp } }],
    ["1@%sil", { kind: "register", reg: { full: "rsi", width: 1 } }],
    ["1@%dil", { kind: "register", reg: { full: "rdi", width: 1 } }],
    ["1@%spl", { kind: "register", reg: { full: "rsp", width: 1 } }],
    ["1@%bpl", { kind: "register", reg: { full: "rbp", width: 1 } }],
    ["2@%si", { kind: "register", reg: { full: "rsi", width: 2 } }],
    ["-4@$5", { kind: "constant", size: 4, signed: true, value: 5n }],
    ["-4@$-1", { kind: "constant", value: -1n }],
    ["2@$-1", { kind: "constant", size: 2, signed: false, value: 65535n }],
    ["4@$-1", { kind: "constant", value: 4294967295n }],
    ["-8@$9223372036854775807", { kind: "constant", value: 9223372036854775807n }],
    ["8@$0x10", { kind: "constant", value: 16n }],
    ["$7", { kind: "constant", size: 8, value: 7n }],
    ["-4@-1204(%rbp)", { kind: "memory", size: 4, signed: true, base: { full: "rbp" }, offset: -1204, scale: 1 }],
    ["8@16(%rax,%rbx,8)", { kind: "memory", base: { full: "rax" }, index: { full: "rbx", index: R.rbx }, scale: 8, offset: 16 }],
    ["8@(%rdx)", { kind: "memory", base: { full: "rdx" }, offset: 0 }],
    ["-8@(%rsi,%rdx,8)", { kind: "memory", signed: true, base: { full: "rsi" }, index: { full: "rdx" }, scale: 8, offset: 0 }],
    ["4@(,%rcx,4)", { kind: "memory", index: { full: "rcx" }, scale: 4, offset: 0 }],
    ["8@0x10(%rsp)", { kind: "memory", base: { full: "rsp" }, offset: 16 }],
    ["8f@-8(%rbp)", { kind: "memory", float: true, size: 8 }],
    ["-4@%fs:8", { kind: "unsupported" }],
    ["8@%fs:0x28", { kind: "unsupported" }],
    ["8f@%xmm0", { kind: "unsupported" }],
    ["16@%rax", { kind: "unsupported" }],
    ["8@(%eax)", { kind: "unsupported" }],
    ["8@counter(%rip)", { kind: "unsupported" }], // no symbol table given
    ["8@counter", { kind: "unsupported" }], // absolute address in a PIE
  ];
  for (const [spec, want] of cases) {
    test(spec, () => {
      const a = parseUsdtArg(spec);
      expect(a).toMatchObject(want);
      if (a.kind === "unsupported") expect(a.reason.length).toBeGreaterThan(10);
    });
  }

  test("rip-relative: symbol, symbol+offset and a number, relative to the probe's address", () => {
    const ctx = { pc: 0x1200, symbolAddress: (n: string) => (n === "counter" ? 0x4010 : undefined) };
    expect(parseUsdtArg("8@counter(%rip)", ctx)).toMatchObject({ kind: "rip", address: 0x4010, offset: 0x4010 - 0x1200, symbol: "counter" });
    expect(parseUsdtArg("-4@counter+8(%rip)", ctx)).toMatchObject({ kind: "rip", address: 0x4018, offset: 0x4018 - 0x1200, signed: true, size: 4 });
    expect(parseUsdtArg("8@counter-0x10(%rip)", ctx)).toMatchObject({ kind: "rip", address: 0x4000 });
    expect(parseUsdtArg("8@0x1234(%rip)", ctx)).toMatchObject({ kind: "rip", address: 0x1200 + 0x1234, offset: 0x1234 });
    const missing = parseUsdtArg("8@nosuch(%rip)", ctx);
    expect(missing.kind).toBe("unsupported");
    expect((missing as { reason: string }).reason).toContain("nosuch");
  });

  test("absolute addresses and $symbol constants only in non-PIE files", () => {
    const ctx = { pc: 0x401000, fixedAddresses: true, symbolAddress: (n: string) => (n === "counter" ? 0x404010 : undefined) };
    expect(parseUsdtArg("8@counter", ctx)).toMatchObject({ kind: "memory", offset: 0x404010 });
    expect(parseUsdtArg("8@0x404010", ctx)).toMatchObject({ kind: "memory", offset: 0x404010 });
    expect(parseUsdtArg("8@$counter", ctx)).toMatchObject({ kind: "constant", value: 0x404010n });
    expect(parseUsdtArg("8@counter(,%rax,8)", ctx)).toMatchObject({ kind: "memory", offset: 0x404010, index: { full: "rax" }, scale: 8 });
    expect(parseUsdtArg("8@$counter", { ...ctx, fixedAddresses: false }).kind).toBe("unsupported");
  });

  test("a whole argument string", () => {
    const args = parseUsdtArgs("8@%rbp 8@%r12 -4@%eax");
    expect(args.map((a) => a.kind)).toEqual(["register", "register", "register"]);
    expect(parseUsdtArgs("")).toEqual([]);
    expect(parseUsdtArgs("  ")).toEqual([]);
  });

  test("malformed specs are UsdtArgErrors naming the spec", () => {
    for (const bad of ["8@", "8@%", "8@%foo", "8@(%rax", "8@16(%rax,%rbx,3)", "8@(%rax,%rbx,8,1)", "8@()", "8@$", "8@$zz!", "8@1(%rax,%rip)", "8@(%rax,%rsp)", "8@%rax)", "@%rax"]) {
      let err: unknown;
      try {
        const a = parseUsdtArg(bad);
        err = a;
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(UsdtArgError);
      expect((err as Error).message, bad).toContain(bad.length > 3 ? bad.slice(0, 3) : bad);
    }
  });

  test("describeArg writes the normalised spec back", () => {
    expect(describeArg(parseUsdtArg("-4@-1204(%rbp)"))).toBe("-4@-1204(%rbp)");
    expect(describeArg(parseUsdtArg("8@16(%rax,%rbx,8)"))).toBe("8@16(%rax,%rbx,8)");
    expect(describeArg(parseUsdtArg("%r9d"))).toBe("4@%r9d");
    expect(describeArg(parseUsdtArg("2@$-1"))).toBe("2@$65535");
  });
});

describe("evaluateArg and its flat form", () => {
  // Registers in pt_regs order with recognisable values; memory where each byte is its address's low byte.
  const regs = PT_REGS.map((_, i) => 0x1111_0000_0000_0000n * BigInt(i % 15) + 0x8070_6050_4030_2010n + BigInt(i) * 0x100n);
  const mem = (addr: bigint, size: number): bigint => {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | ((addr + BigInt(i)) & 0xffn);
    return v;
  };
  const reg = (n: keyof typeof R) => BigInt.asUintN(64, regs[R[n]]!);

  test("registers: width, high bytes, sign", () => {
    const v = (s: string) => evaluateArg(parseUsdtArg(s), regs, mem);
    expect(v("8@%rax")).toBe(reg("rax"));
    expect(v("4@%eax")).toBe(reg("rax") & 0xffffffffn);
    expect(v("-4@%eax")).toBe(BigInt.asIntN(32, reg("rax")));
    expect(v("1@%ah")).toBe((reg("rax") >> 8n) & 0xffn);
    expect(v("-1@%ah")).toBe(BigInt.asIntN(8, reg("rax") >> 8n));
    expect(v("2@%r8w")).toBe(reg("r8") & 0xffffn);
    // A narrower register than the argument: its own bytes, extended.
    expect(v("-8@%al")).toBe(BigInt.asIntN(8, reg("rax")));
    expect(v("8@%al")).toBe(reg("rax") & 0xffn);
  });

  test("memory: base + index*scale + offset, wrapping at 2^64", () => {
    const addr = BigInt.asUintN(64, reg("rax") + reg("rbx") * 8n + 16n);
    expect(evaluateArg(parseUsdtArg("8@16(%rax,%rbx,8)"), regs, mem)).toBe(mem(addr, 8));
    expect(evaluateArg(parseUsdtArg("-2@-2(%rbp)"), regs, mem)).toBe(BigInt.asIntN(16, mem(reg("rbp") - 2n, 2)));
  });

  test("rip-relative: regs[rip] + offset", () => {
    const a = parseUsdtArg("4@counter(%rip)", { pc: 0x1000, symbolAddress: () => 0x3000 });
    expect(evaluateArg(a, regs, mem)).toBe(mem(BigInt.asUintN(64, reg("rip") + 0x2000n), 4));
  });

  test("unsupported arguments refuse to evaluate or flatten", () => {
    const a = parseUsdtArg("8f@%xmm1");
    expect(() => evaluateArg(a, regs, mem)).toThrow(UsdtArgError);
    expect(() => flattenArg(a)).toThrow(UsdtArgError);
  });

  test("the flat descriptor computes what evaluateArg computes", () => {
    const specs = ["-4@%edi", "8@%rax", "-1@%ah", "2@%r8w", "%r9d", "-4@$-1", "2@$-1", "-4@-1204(%rbp)", "8@16(%rax,%rbx,8)", "8@(%rdx)", "-8@%al"];
    for (const s of specs) {
      const a = parseUsdtArg(s);
      const f = flattenArg(a);
      let v: bigint;
      if (f.kind === ARG_CONST) v = f.offset;
      else if (f.kind === ARG_REG) v = reg(PT_REGS[f.reg]!) >> BigInt(f.shift);
      else {
        expect(f.kind).toBe(ARG_MEM);
        const base = f.reg >= 0 ? regs[f.reg]! : 0n;
        const idx = f.index >= 0 ? regs[f.index]! * BigInt(f.scale) : 0n;
        v = mem(BigInt.asUintN(64, base + idx + f.offset), f.size);
      }
      const keep = f.kind === ARG_REG ? Math.min(f.size, f.width) : f.size;
      v = f.signed ? BigInt.asIntN(keep * 8, v) : BigInt.asUintN(keep * 8, v);
      v = f.signed ? BigInt.asIntN(f.size * 8, v) : BigInt.asUintN(f.size * 8, v);
      expect(v, s).toBe(evaluateArg(a, regs, mem));
    }
  });
});

// What the fixture passes at each probe (tests/fixtures/usdt/args.c and sema.c), site by site;
// null where the value is an address only gdb can tell.
const EXPECTED: Record<string, (bigint | null)[][]> = {
  "fx:sizes": [[-8n, 250n, -1234n, 54321n, -123456789n, 3000000000n, -1234567890123n, 0xfedcba9876543210n]],
  "fx:globals": [[-100n, 200n, -30000n, 60000n, -2000000000n, 4000000000n, -9000000000000000000n, 18000000000000000000n]],
  "fx:constants": [[5n, -1n, -7n, 65535n, 9223372036854775807n, 4294967295n]],
  "fx:through_pointer": [[-33n, 106n, null]],
  "fx:two_sites": [[21n], [42n]],
  "fx:asm_forms": [[105n, 101n, -10n, 170n, 0x4444n, 0x80000001n, -1n, -3n, 101n, 102n, 0x4444n, -3n]],
  // The first site is guarded by its semaphore: it fires only because the test sets it to 1.
  "fx:sem_enabled": [[7n], [8n, 1n]],
  "fx:sem_second": [[9n]],
};

describe("arguments evaluated at the fixtures' probe sites under gdb", () => {
  for (const { name } of FIXTURE_NAMES.filter((f) => f.runnable)) {
    test(name, async () => {
      const fx = usdtFixture(name);
      const { elf, sites, close } = sitesOf(fx.path);
      close();
      const gdb = new Gdb(fx.path);
      try {
        for (const c of ["set pagination off", "set confirm off", "set width 0", "set height 0"]) await gdb.cmd(c);
        await gdb.cmd("starti");
        const maps = await gdb.cmd("info proc mappings");
        const first = maps.split("\n").find((l) => l.trim().endsWith(fx.path) && /\s0x0\s/.test(l));
        expect(first, maps).toBeDefined();
        const start = BigInt(first!.trim().split(/\s+/)[0]!);
        const lowest = Math.min(...elf.segments.filter((s) => s.type === 1).map((s) => s.vaddr)) & ~0xfff;
        const bias = start - BigInt(lowest);
        if (!elf.isPie) expect(bias).toBe(0n);

        for (const s of sites) expect(await gdb.cmd(`break *0x${(bias + BigInt(s.pc)).toString(16)}`)).toContain("Breakpoint");
        // Enable every semaphore through the address probe computed: the guarded site must fire.
        for (const sem of new Set(sites.map((s) => s.semaphore).filter((x) => x))) {
          await gdb.cmd(`set var *(unsigned short *)0x${(bias + BigInt(sem)).toString(16)} = 1`);
        }

        const seen = new Map<string, number>();
        let compared = 0;
        let gdbCompared = 0;
        for (let stop = 0; stop < sites.length + 2; stop++) {
          const out = await gdb.cmd("continue");
          if (/exited normally|exited with code/.test(out)) break;
          expect(out).toContain("Breakpoint");
          const pc = BigInt(/= (0x[0-9a-f]+)/.exec(await gdb.cmd("p/x $pc"))![1]!);
          const site = sites.find((s) => bias + BigInt(s.pc) === pc);
          expect(site, `stopped at 0x${pc.toString(16)}, not at a probe`).toBeDefined();
          const key = `${site!.provider}:${site!.name}`;
          const nth = seen.get(key) ?? 0;
          seen.set(key, nth + 1);

          const regs = parseRegisters(await gdb.cmd("info registers"));
          // Memory reads are served by gdb: record what evaluateArg asks for, fetch, evaluate again.
          const cache = new Map<string, bigint>();
          const values: bigint[] = [];
          for (const a of site!.args) {
            const wanted: [bigint, number][] = [];
            evaluateArg(a, regs, (addr, size) => {
              wanted.push([addr, size]);
              return 0n;
            });
            for (const [addr, size] of wanted) cache.set(`${addr}:${size}`, await readMemory(gdb, addr, size));
            values.push(evaluateArg(a, regs, (addr, size) => cache.get(`${addr}:${size}`)!));
          }

          const expected = EXPECTED[key]?.[nth];
          expect(expected, `no expected values for ${key} site ${nth}`).toBeDefined();
          expect(values.length).toBe(expected!.length);
          for (let i = 0; i < values.length; i++) {
            if (expected![i] === null) continue;
            expect(values[i], `${key} arg ${i} (${site!.args[i]!.kind === "unsupported" ? "" : describeArg(site!.args[i]!)})`).toBe(expected![i]!);
            compared++;
          }
          // gdb's own SDT parser, where it accepts the spec (it refuses `sym+8(%rip)`, and reads a
          // sizeless `%r9d` as 64 bits).
          for (let i = 0; i < values.length; i++) {
            const a = site!.args[i]!;
            if (a.kind === "unsupported" || !/^-?\d/.test(a.text)) continue;
            const g = /^\$\d+ = (-?\d+)$/m.exec(await gdb.cmd(`p $_probe_arg${i}`));
            if (!g) continue;
            expect(values[i], `${key} arg ${i} vs gdb`).toBe(BigInt(g[1]!) & (a.signed ? -1n : (1n << BigInt(a.size * 8)) - 1n));
            gdbCompared++;
          }
        }
        expect([...seen.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
        for (const [k, sitesExpected] of Object.entries(EXPECTED)) expect(seen.get(k), k).toBe(sitesExpected.length);
        expect(compared).toBeGreaterThanOrEqual(40);
        expect(gdbCompared).toBeGreaterThanOrEqual(20);
      } finally {
        await gdb.close();
      }
    }, 60000);
  }
});

function parseRegisters(text: string): bigint[] {
  const regs = PT_REGS.map(() => 0n);
  for (const line of text.split("\n")) {
    const m = /^(\w+)\s+(0x[0-9a-f]+)/.exec(line.trim());
    if (!m) continue;
    const name = m[1] === "eflags" ? "eflags" : m[1]!;
    const i = (PT_REG_INDEX as Record<string, number>)[name];
    if (i !== undefined) regs[i] = BigInt(m[2]!);
  }
  for (const r of ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r15", "rip"]) {
    if (!/0x/.test(text) || !new RegExp(`^${r}\\s`, "m").test(text)) throw new Error(`gdb 'info registers' lacks ${r}:\n${text}`);
  }
  return regs;
}

async function readMemory(gdb: Gdb, addr: bigint, size: number): Promise<bigint> {
  const out = await gdb.cmd(`x/${size}xb 0x${addr.toString(16)}`);
  const bytes = [...out.slice(out.indexOf(":") + 1).matchAll(/0x([0-9a-f]{2})\b/g)].map((m) => BigInt(parseInt(m[1]!, 16)));
  if (bytes.length !== size) throw new Error(`gdb x/${size}xb 0x${addr.toString(16)}: ${out}`);
  return bytes.reduceRight((v, b) => (v << 8n) | b, 0n);
}

export type { UsdtArg };
