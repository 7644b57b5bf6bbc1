// probe usdt's user-space pieces on real notes (Debian's python3.11, OpenJDK's libjvm, the USDT
// fixture): argument types as prototypes, layouts whose slot i is argument i, the BPF slot of every
// spec form, probe selection, entry/return pairing, and the formatter on values the way the BPF
// program records them.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { closeSync, existsSync, openSync } from "node:fs";
import { ElfFile } from "../../lib/elf.ts";
import { readUsdtProbes, type UsdtProbe } from "../../lib/usdt/notes.ts";
import { parseUsdtArg } from "../../lib/usdt/args.ts";
import { defaultDeclarations, groupByArgCount, typedProbeName, usdtLayout, usdtPrototypeText, usdtSiteValues, usdtSlot } from "../../lib/usdt/values.ts";
import { selectUsdtProbes } from "../../lib/usdt/select.ts";
import { CallStacks, pairUsdtProbes } from "../../lib/usdt/pairs.ts";
import { kernelRaisesSemaphores, guardedProbes } from "../../lib/usdt/semaphore.ts";
import { ValueFormatter } from "../../lib/types/format.ts";
import { PT_REGS_INDEX } from "../../lib/types/function-layout.ts";
import { usdtFixture } from "./usdt-fixture.ts";

setDefaultTimeout(60000);

const PYTHON = "/usr/bin/python3.11";
const LIBJVM = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

function probesOf(path: string): UsdtProbe[] {
  if (!existsSync(path)) throw new Error(`${path} is missing (apt-get install python3.11 openjdk-17-jre-headless)`);
  const fd = openSync(path, "r");
  try {
    return readUsdtProbes(new ElfFile(fd, path));
  } finally {
    closeSync(fd);
  }
}

const python = () => probesOf(PYTHON);
const find = (ps: UsdtProbe[], name: string) => ps.find((p) => `${p.provider}:${p.name}` === name)!;

describe("argument types", () => {
  test("documented probes get their documented names and types, sized by the note", () => {
    const ps = python();
    expect(usdtPrototypeText(find(ps, "python:function__entry"))).toBe("void function__entry(char *filename, char *funcname, int32_t lineno)");
    expect(usdtPrototypeText(find(ps, "python:import__find__load__done"))).toBe("void import__find__load__done(char *module, bool found)");
    expect(usdtPrototypeText(find(ps, "python:gc__done"))).toBe("void gc__done(int64_t collected)");
    // HotSpot strings are (pointer, length): a buffer whose length is the next argument.
    const jvm = probesOf(LIBJVM);
    expect(defaultDeclarations(find(jvm, "hotspot:thread__start"))).toEqual([
      "char *thread_name[thread_name_len]", "uint32_t thread_name_len", "uint64_t java_thread_id", "uint64_t os_thread_id", "bool daemon",
    ]);
  });

  test("probes not in the table: integers of the note's size and sign, named argN", () => {
    const fx = probesOf(usdtFixture("usdt-O2").path);
    expect(usdtPrototypeText(find(fx, "fx:sizes"))).toBe(
      "void sizes(int8_t arg0, uint8_t arg1, int16_t arg2, uint16_t arg3, int32_t arg4, uint32_t arg5, int64_t arg6, uint64_t arg7)",
    );
  });

  test("a type list (short names sized by the note, or C), a prototype (C as written), the rest by default", () => {
    const entry = find(python(), "python:function__entry");
    expect(usdtPrototypeText(entry, "str,str,int")).toBe("void function__entry(char *filename, char *funcname, int32_t lineno)");
    expect(usdtPrototypeText(entry, "str file, ptr")).toBe("void function__entry(char *file, void *funcname, int32_t lineno)");
    expect(usdtPrototypeText(entry, "const char *f, unsigned long")).toBe("void function__entry(const char *f, unsigned long, int32_t lineno)");
    expect(usdtPrototypeText(entry, "function__entry(char *file, char *func, int line)")).toBe("void function__entry(char *file, char *func, int line)");
    expect(usdtPrototypeText(entry, "void function__entry(char *file)")).toBe("void function__entry(char *file, char *funcname, int32_t lineno)");
    expect(typedProbeName("function__entry(char *file)")).toBe("function__entry");
    expect(typedProbeName("str, str, int")).toBeUndefined();
    expect(() => usdtPrototypeText(entry, "int,int,int,int")).toThrow("python:function__entry has 3 arguments, but 4 types were given");
    expect(() => usdtPrototypeText(entry, "function__return(char *f)")).toThrow("names function__return, not the probe python:function__entry");
    expect(() => usdtPrototypeText(entry, "str,,int")).toThrow("empty type");
  });
});

describe("layouts: slot i is argument i", () => {
  test("strings are copied through their argument's slot", () => {
    const l = usdtLayout(find(python(), "python:function__entry")).layout;
    expect(l.args.map((a) => [a.name, a.slots, a.capture])).toEqual([["filename", [0], 0], ["funcname", [1], 1], ["lineno", [2], undefined]]);
    expect(l.descriptor.captures.map((c) => c.ptrSlot)).toEqual([0, 1]);
    expect(l.descriptor.slots.map((s) => [s.size, s.signed])).toEqual([[8, 0], [8, 0], [4, 1]]);
  });

  test("a length-delimited string takes its length from the length argument's slot", () => {
    const l = usdtLayout(find(probesOf(LIBJVM), "hotspot:method__entry")).layout;
    // (thread id, class, class_len, method, method_len, signature, signature_len)
    expect(l.descriptor.captures.map((c) => [c.ptrSlot, c.lenFrom, c.len])).toEqual([[1, 2, 2], [3, 2, 4], [5, 2, 6]]);
    expect(l.args.map((a) => a.capture)).toEqual([undefined, 0, undefined, 1, undefined, 2, undefined]);
  });

  test("arguments that cannot be fetched or shown are '?', the others keep their slots", () => {
    const probe: UsdtProbe = {
      provider: "t", name: "mixed",
      sites: [{
        provider: "t", name: "mixed", pc: 0x1000, offset: 0x1000, base: 0, semaphore: 0, semaphoreOffset: 0, semaphoreSection: "",
        note: { pc: 0x1000, base: 0, semaphore: 0 }, argsText: "8@%rdi 8@%xmm0 8f@-8(%rbp) -4@%esi",
        args: ["8@%rdi", "8@%xmm0", "8f@-8(%rbp)", "-4@%esi"].map((s) => parseUsdtArg(s)),
      }],
    };
    const { layout, unreadable } = usdtLayout(probe, "str");
    expect(layout.args.map((a) => [a.name, a.value.kind, a.slots])).toEqual([
      ["arg0", "cstring", [0]], ["arg1", "unreadable", []], ["arg2", "unreadable", []], ["arg3", "int", [3]],
    ]);
    expect(unreadable[0]).toContain("arg1: value in %xmm0");
    expect(unreadable[1]).toBe("arg2: a floating-point value (not shown)");
    const v = usdtSiteValues(probe.sites[0]!, layout);
    expect(v.entry.map((s) => s.kind)).toEqual(["reg", "const", "const", "reg"]);
    expect(v.entryCaptures).toEqual([{ kind: "str", ptrSlot: 0, lenFrom: "none", lenSlot: undefined, len2Slot: undefined, lenConst: undefined, scale: 1, max: 128 }]);
  });

  test("one probe name with two argument lists is typed per list", () => {
    const fx = probesOf(usdtFixture("usdt-O2").path);
    const groups = groupByArgCount(find(fx, "fx:sem_enabled"));
    expect(groups.map((g) => g.sites.map((s) => s.args.length))).toEqual([[1], [2]]);
    expect(() => usdtLayout(find(fx, "fx:sem_enabled"))).toThrow("sites with different argument counts");
    expect(groups.map((g) => usdtPrototypeText(g))).toEqual(["void sem_enabled(int32_t arg0)", "void sem_enabled(int32_t arg0, uint16_t arg1)"]);
  });
});

describe("BPF slots from specs", () => {
  const R = PT_REGS_INDEX;
  test("register, narrower register, high byte, memory, SIB, constant, rip-relative", () => {
    expect(usdtSlot(parseUsdtArg("-4@%edi"))).toEqual({ kind: "reg", width: 4, signed: true, reg: R.rdi, shift: 0 });
    // -2@%dil: the register's one byte, sign-extended (the upper bytes of rdi are not the value's).
    expect(usdtSlot(parseUsdtArg("-2@%dil"))).toEqual({ kind: "reg", width: 1, signed: true, reg: R.rdi, shift: 0 });
    expect(usdtSlot(parseUsdtArg("-1@%ch"))).toEqual({ kind: "reg", width: 1, signed: true, reg: R.rcx, shift: 8 });
    expect(usdtSlot(parseUsdtArg("-4@-20(%rbp)"))).toEqual({ kind: "mem", width: 4, signed: true, reg: R.rbp, indexReg: undefined, scale: 1, offset: -20n });
    expect(usdtSlot(parseUsdtArg("8@16(%rax,%rbx,8)"))).toEqual({ kind: "mem", width: 8, signed: false, reg: R.rax, indexReg: R.rbx, scale: 8, offset: 16n });
    expect(usdtSlot(parseUsdtArg("-4@$-5"))).toEqual({ kind: "const", width: 4, signed: true, offset: -5n });
    const rip = usdtSlot(parseUsdtArg("8@0x40(%rip)", { pc: 0x1000 }));
    expect(rip).toEqual({ kind: "mem", width: 8, signed: false, reg: R.rip, indexReg: undefined, scale: 1, offset: 0x40n });
  });
});

describe("selection and pairs", () => {
  test("provider:name, bare name, globs, and what is said when nothing matches", () => {
    const ps = python();
    expect(selectUsdtProbes(ps, "python:gc__start", PYTHON).probes.map((p) => p.name)).toEqual(["gc__start"]);
    expect(selectUsdtProbes(ps, "gc__start", PYTHON).probes.map((p) => p.name)).toEqual(["gc__start"]);
    expect(selectUsdtProbes(ps, "python:function__*", PYTHON).probes.map((p) => p.name).sort()).toEqual(["function__entry", "function__return"]);
    expect(selectUsdtProbes(ps, "gc__*", PYTHON).probes.length).toBe(2);
    expect(selectUsdtProbes(ps, "*", PYTHON).probes.length).toBe(8);
    expect(() => selectUsdtProbes(ps, "python:nothing*", PYTHON)).toThrow(`no USDT probe of ${PYTHON} matches python:nothing*`);
    expect(() => selectUsdtProbes(ps, "python:function_entry", PYTHON)).toThrow("not found");
    expect(guardedProbes(ps).length).toBe(8);
  });

  test("entry/return, start/done and begin/end pairs; the other end is found in the file", () => {
    const ps = python();
    const p = pairUsdtProbes([find(ps, "python:function__entry"), find(ps, "python:gc__done"), find(ps, "python:audit")], ps);
    expect(p.pairs.map((x) => [x.name, x.entry.name, x.ret.name])).toEqual([
      ["python:function", "function__entry", "function__return"], ["python:gc", "gc__start", "gc__done"],
    ]);
    expect(p.unpaired.map((x) => x.name)).toEqual(["audit"]);
    const jvm = probesOf(LIBJVM);
    expect(pairUsdtProbes([find(jvm, "hotspot:gc__begin")], jvm).pairs.map((x) => x.ret.name)).toEqual(["gc__end"]);
  });

  test("call stacks: nesting and recursion innermost first, identities, skipped and orphan returns", () => {
    const s = new CallStacks<string>();
    s.enter(1, 0, "a", 10n, "outer");
    s.enter(1, 0, "a", 20n, "inner"); // recursion
    s.enter(2, 0, "a", 25n, "other thread");
    expect(s.leave(1, 0, "a", 30n)).toEqual({ value: "inner", latencyNs: 10n, dropped: 0 });
    expect(s.leave(1, 0, "a", 50n)).toEqual({ value: "outer", latencyNs: 40n, dropped: 0 });
    expect(s.leave(1, 0, "a", 60n)).toBeUndefined();
    expect(s.orphans).toBe(1);
    // A return whose call is below another: the one above lost its return.
    s.enter(3, 0, "f", 100n, "f");
    s.enter(3, 0, "g", 110n, "g");
    expect(s.leave(3, 0, "f", 130n)).toEqual({ value: "f", latencyNs: 30n, dropped: 1 });
    expect(s.leave(3, 0, "h", 140n)).toBeUndefined(); // nothing open on thread 3
    // Pairs keep separate stacks; '' matches any call.
    s.enter(4, 1, "", 1n, "gc");
    expect(s.leave(4, 0, "", 2n)).toBeUndefined();
    expect(s.leave(4, 1, "", 5n)?.value).toBe("gc");
    expect(s.open).toBe(1); // thread 2's call
    expect(s.dropped).toBe(1);
  });
});

describe("formatting recorded values", () => {
  test("a record as the typed program writes it reads as the probe's arguments", () => {
    const l = usdtLayout(find(python(), "python:function__entry")).layout;
    const words = new DataView(new ArrayBuffer(24 * 8));
    words.setBigUint64(0, 0x7f0000001000n, true);
    words.setBigUint64(8, 0x7f0000002000n, true);
    words.setBigInt64(16, -42n, true); // a 4-byte signed value, sign-extended by the program
    const enc = new TextEncoder();
    const fmt = new ValueFormatter(l);
    const ev = { words, captures: [{ bytes: enc.encode("/app/x.py"), truncated: false, fault: false }, { bytes: enc.encode("handle"), truncated: false, fault: false }] };
    expect(fmt.callText(ev)).toBe('filename="/app/x.py", funcname="handle", lineno=-42');
    expect(JSON.parse(fmt.callJson(ev))).toEqual([
      { name: "filename", type: "char *", value: "/app/x.py" }, { name: "funcname", type: "char *", value: "handle" }, { name: "lineno", type: "int32_t", value: -42 },
    ]);
  });
});

describe("semaphores", () => {
  test("uprobe_multi always raises them; perf-event uprobes when the PMU has ref_ctr_offset", () => {
    expect(kernelRaisesSemaphores("multi", "/nonexistent")).toBe(true);
    expect(kernelRaisesSemaphores("perf", "/nonexistent")).toBe(false);
    expect(kernelRaisesSemaphores("perf", "/proc/self/status")).toBe(true);
  });
});

describe("names from notes", () => {
  test("a probe name C would not accept still gets a prototype; no arguments is void", () => {
    const site = (name: string, argsText: string) => ({
      provider: "p", name, pc: 0x1000, offset: 0x1000, base: 0, semaphore: 0, semaphoreOffset: 0, semaphoreSection: "",
      note: { pc: 0x1000, base: 0, semaphore: 0 }, argsText, args: argsText ? argsText.split(" ").map((s) => parseUsdtArg(s)) : [],
    });
    const odd: UsdtProbe = { provider: "p", name: "req-start.v2", sites: [site("req-start.v2", "-4@%edi")] };
    expect(usdtPrototypeText(odd)).toBe("void req_start_v2(int32_t arg0)");
    expect(usdtLayout(odd).layout.args.map((a) => a.name)).toEqual(["arg0"]);
    const none: UsdtProbe = { provider: "p", name: "tick", sites: [site("tick", "")] };
    expect(usdtLayout(none).layout.args).toEqual([]);
  });
});

describe("limits", () => {
  test("more arguments or strings than the program records: the rest are '?' or pointers, the probe still works", () => {
    const specs = Array.from({ length: 20 }, (_, i) => `8@${i % 2 ? "%rsi" : "%rdi"}`);
    const site = {
      provider: "p", name: "wide", pc: 0x1000, offset: 0x1000, base: 0, semaphore: 0, semaphoreOffset: 0, semaphoreSection: "",
      note: { pc: 0x1000, base: 0, semaphore: 0 }, argsText: specs.join(" "), args: specs.map((s) => parseUsdtArg(s)),
    };
    const probe: UsdtProbe = { provider: "p", name: "wide", sites: [site] };
    const { layout, unreadable } = usdtLayout(probe, Array(20).fill("str").join(","));
    expect(layout.args.filter((a) => a.value.kind === "cstring").length).toBe(8);
    expect(layout.args.slice(8, 16).every((a) => a.value.kind === "pointer")).toBe(true);
    expect(layout.args.slice(16).every((a) => a.value.kind === "unreadable")).toBe(true);
    expect(unreadable).toHaveLength(4);
    const v = usdtSiteValues(site, layout);
    expect(v.entry).toHaveLength(16);
    expect(v.entryCaptures).toHaveLength(8);
  });
});
