// What `probe load` reads from its command line and from an object's SEC names.
import { describe, expect, test } from "bun:test";
import { parseSection } from "../../lib/user-object.ts";
import { parseAttachSpec, parseSetting } from "../../src/commands/load.ts";
import { verifierReason, verifierSummary, libbpfReason } from "../../lib/verifier.ts";

describe("attach specs and SEC names", () => {
  test("PROG=KIND:TARGET:FUNCTION", () => {
    expect(parseAttachSpec("entry_ssl_read=uprobe:libssl:SSL_read")).toMatchObject({ prog: "entry_ssl_read", kind: "uprobe", target: "libssl", func: "SSL_read" });
    expect(parseAttachSpec("r=uretprobe:/usr/lib/x86_64-linux-gnu/libssl.so.3:SSL_read+0x4")).toMatchObject({ kind: "uretprobe", target: "/usr/lib/x86_64-linux-gnu/libssl.so.3", func: "SSL_read+0x4" });
    expect(parseAttachSpec("t=tracepoint:sched:sched_switch")).toMatchObject({ kind: "tracepoint", target: "sched", func: "sched_switch" });
    expect(() => parseAttachSpec("x=kprobe:foo:bar")).toThrow(/bad --attach/);
    expect(() => parseAttachSpec("nospec")).toThrow(/bad --attach/);
  });

  test("libbpf SEC names", () => {
    expect(parseSection("p", "uprobe/libssl.so.3:SSL_read")).toMatchObject({ kind: "uprobe", target: "libssl.so.3", func: "SSL_read" });
    expect(parseSection("p", "uretprobe//usr/lib/x86_64-linux-gnu/libssl.so.3:SSL_read")).toMatchObject({ kind: "uretprobe", target: "/usr/lib/x86_64-linux-gnu/libssl.so.3", func: "SSL_read" });
    expect(parseSection("p", "tracepoint/syscalls/sys_enter_openat")).toMatchObject({ kind: "tracepoint", target: "syscalls", func: "sys_enter_openat" });
    expect(parseSection("p", "tp/sched/sched_switch")).toMatchObject({ kind: "tracepoint", target: "sched", func: "sched_switch" });
    expect(parseSection("p", "uprobe")).toEqual({ prog: "p", kind: "uprobe", bare: true });
    expect(parseSection("p", "xdp")).toBeUndefined();
  });
});


describe("load failures in one line", () => {
  // A verifier log as libbpf 1.1 prints it (the shape of tests/fixtures/bpf/rejected.bpf.c's).
  const verifierLog = [
    "libbpf: prog 'unchecked': BPF program load failed: Permission denied",
    "libbpf: prog 'unchecked': -- BEGIN PROG LOAD LOG --",
    "0: R1=ctx(off=0,imm=0) R10=fp0",
    "; int unchecked(void *ctx)",
    "5: (61) r0 = *(u32 *)(r0 +0)",
    "R0 invalid mem access 'map_value_or_null'",
    "processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
    "-- END PROG LOAD LOG --",
    "libbpf: failed to load program 'unchecked'",
    "libbpf: failed to load object 'rejected'",
  ].join("\n");

  test("the verifier's reason is its last meaningful line", () => {
    expect(verifierReason(verifierLog)).toBe("R0 invalid mem access 'map_value_or_null'");
    expect(verifierSummary(verifierLog)).toContain("R0 invalid mem access");
    expect(verifierSummary(verifierLog)).not.toContain("processed 6 insns");
  });

  test("without a verifier log, libbpf's own first complaint", () => {
    expect(libbpfReason("libbpf: elf: skipping unrecognized data section(7) .comment\nlibbpf: prog 'p': failed to guess program type from ELF section 'foo/bar'\nlibbpf: failed to open object: -22\n")).toBe("prog 'p': failed to guess program type from ELF section 'foo/bar'");
    expect(libbpfReason("libbpf: map 'relbm': failed to create: Invalid argument(-22)\nlibbpf: failed to load object 'x'\n")).toBe("map 'relbm': failed to create: Invalid argument(-22)");
    expect(libbpfReason("")).toBe("");
  });
});
