// `probe uprobe` against a real C target: exact counts, return values, entry-before-return per
// thread, the kernel's own view of the return attachment, and nothing left after SIGINT.
import { describe, expect, test } from "bun:test";
import { openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { buildC, start, startProbe, probePrograms, runProbe, probeBinary, Lines, WORK } from "../helpers.ts";
import { ElfFile } from "../../lib/elf.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { kernelView } from "../../lib/kernel-view.ts";

function offsetOf(path: string, fn: string): number {
  const fd = openSync(path, "r");
  try {
    return resolveFunction(new ElfFile(fd, path), fn).offset;
  } finally {
    closeSync(fd);
  }
}

interface Ev {
  event: string;
  tid: number;
  pid: number;
  ts: number;
  args?: string[];
  ret?: number;
  latency_ns?: number;
}

async function traceCalls(n: number, threads: number, extra: string[] = [], env: Record<string, string> = {}) {
  const calls = buildC("calls", "calls.c");
  const target = start([calls, String(n), String(threads)]);
  const [, pid] = await target.out.waitFor(/^ready (\d+)/);
  const p = await startProbe(["uprobe", calls, "target_fn", "--ret", "--pid", pid!, "--json", "--no-debuginfo", ...extra], env);
  return { calls, target, pid: Number(pid), p };
}

async function finish(t: Awaited<ReturnType<typeof traceCalls>>): Promise<Ev[]> {
  t.target.proc.stdin.write("go\n");
  t.target.proc.stdin.end();
  await t.target.out.waitFor(/^done/);
  const lines = await t.p.out.done();
  expect(await t.p.proc.exited).toBe(0);
  return lines.map((l) => JSON.parse(l) as Ev);
}

describe("probe uprobe --ret on a C function", () => {
  for (const mode of ["multi", "perf"] as const) {
    test(`[${mode}] return values are right, and every return follows its call on the same thread`, async () => {
      const t = await traceCalls(50, 4, ["--attach-mode", mode]);
      const events = await finish(t);
      const callsEv = events.filter((e) => e.event === "call");
      const rets = events.filter((e) => e.event === "return");
      expect(callsEv).toHaveLength(200);
      expect(rets).toHaveLength(200);
      // target_fn(i, 7) returns i*100+7 for i in 0..49, on each of 4 threads.
      const expected = Array.from({ length: 50 }, (_, i) => i * 100 + 7);
      const byTid = new Map<number, Ev[]>();
      for (const e of events) byTid.set(e.tid, [...(byTid.get(e.tid) ?? []), e]);
      expect(byTid.size).toBe(4);
      for (const [, evs] of byTid) {
        // Strict alternation per thread: call, return, call, return...
        evs.forEach((e, i) => expect(e.event).toBe(i % 2 === 0 ? "call" : "return"));
        const r = evs.filter((e) => e.event === "return");
        expect(r.map((e) => e.ret)).toEqual(expected);
        const c = evs.filter((e) => e.event === "call");
        expect(c.map((e) => Number(e.args![0]))).toEqual(expected.map((_, i) => i));
        expect(c.every((e) => e.args![1] === "0x7")).toBe(true);
        for (let i = 0; i < r.length; i++) {
          expect(r[i]!.ts).toBeGreaterThan(c[i]!.ts);
          expect(r[i]!.latency_ns).toBeGreaterThan(0);
        }
      }
    });

    test(`[${mode}] the kernel reports one entry and one return probe at target_fn's offset`, async () => {
      const t = await traceCalls(1, 1, ["--attach-mode", mode]);
      const off = offsetOf(t.calls, "target_fn");
      const ours = kernelView().links.filter((l) => l.uprobe && l.uprobe.offsets.includes(off) && (l.uprobe.path.endsWith("/calls") || l.uprobe.path.startsWith("/proc/self/fd/")));
      expect(ours.map((l) => l.type)).toEqual(mode === "multi" ? ["uprobe_multi", "uprobe_multi"] : ["perf_event", "perf_event"]);
      expect(ours.map((l) => l.uprobe!.kind).sort()).toEqual(["uprobe", "uretprobe"]);
      if (mode === "perf") {
        // bpftool's view (BPF_TASK_FD_QUERY on the probe process's perf fds) agrees.
        const perf = Bun.spawnSync(["bpftool", "perf", "show", "--json"], { stdout: "pipe" }).stdout.toString();
        const mine = (JSON.parse(perf) as { pid: number; fd_type: string; offset: number }[]).filter((x) => x.pid === t.p.proc.pid);
        expect(mine.map((x) => x.fd_type).sort()).toEqual(["uprobe", "uretprobe"]);
        expect(mine.every((x) => x.offset === off)).toBe(true);
      }
      await finish(t);
    });
  }

  test("a long stream wraps the ring buffer several times: nothing lost, every record decoded", async () => {
    // 2 x 100000 events of 96 bytes = 19 MB through an 8 MB ring. Output goes to a file: a test
    // process reading a pipe on a 2-core machine would be the bottleneck being measured.
    const calls = buildC("calls", "calls.c");
    const target = start([calls, "100000", "1"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const file = join(WORK, "stream.json");
    const p = Bun.spawn([probeBinary(), "uprobe", calls, "target_fn", "--ret", "--pid", pid!, "--json", "--no-debuginfo"], { stdout: Bun.file(file), stderr: "pipe" });
    const err = new Lines(p.stderr);
    await err.waitFor(/Ctrl-C/);
    target.proc.stdin.write("go\n");
    target.proc.stdin.end();
    await target.out.waitFor(/^done/);
    expect(await p.exited).toBe(0);
    const events = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Ev);
    rmSync(file);
    const c = events.filter((e) => e.event === "call");
    const r = events.filter((e) => e.event === "return");
    expect(c).toHaveLength(100000);
    expect(r).toHaveLength(100000);
    expect(c.every((e, i) => Number(e.args![0]) === i && e.args![1] === "0x7")).toBe(true);
    expect(r.every((e, i) => e.ret === i * 100 + 7)).toBe(true);
    expect((await err.done()).join("\n")).not.toMatch(/lost/);
  });

  test("after SIGINT nothing of ours is left in the kernel", async () => {
    const calls = buildC("calls", "calls.c");
    const target = start([calls, "1000000"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const before = new Set(probePrograms());
    const p = await startProbe(["uprobe", calls, "target_fn", "--ret", "--pid", pid!, "--json", "--no-debuginfo"]);
    const during = probePrograms().filter((x) => !before.has(x));
    expect(during.length).toBe(2); // probe_entry and probe_return
    const ids = during.map((x) => Number(x.split(":")[0]));
    expect(kernelView().links.filter((l) => ids.includes(l.progId))).toHaveLength(2);
    target.proc.stdin.write("go\n");
    await Bun.sleep(300); // mid-stream
    p.proc.kill("SIGINT");
    expect(await p.proc.exited).toBe(0);
    target.proc.kill("SIGKILL");
    // The kernel frees a program after an RCU grace period once its last fd is closed.
    const left = async () => {
      for (let i = 0; i < 40; i++) {
        const l = probePrograms().filter((x) => ids.includes(Number(x.split(":")[0])));
        if (!l.length) return l;
        await Bun.sleep(50);
      }
      return probePrograms().filter((x) => ids.includes(Number(x.split(":")[0])));
    };
    expect(await left()).toEqual([]);
    expect(kernelView().links.filter((l) => ids.includes(l.progId))).toEqual([]);
    const perf = JSON.parse(Bun.spawnSync(["bpftool", "perf", "show", "--json"], { stdout: "pipe" }).stdout.toString() || "[]") as { pid: number }[];
    expect(perf.filter((x) => x.pid === p.proc.pid)).toEqual([]);
  });

  test("--summary counts calls and returns per process from the map", async () => {
    const calls = buildC("calls", "calls.c");
    const target = start([calls, "250", "2"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const p = await startProbe(["uprobe", calls, "target_fn", "--ret", "--pid", pid!, "--summary", "--json", "-i", "0.2"]);
    target.proc.stdin.write("go\n");
    target.proc.stdin.end();
    await target.out.waitFor(/^done/);
    const lines = (await p.out.done()).map((l) => JSON.parse(l));
    const last = lines.filter((l) => l.event === "count").at(-1);
    expect(last).toEqual({ event: "count", pid: Number(pid), comm: "calls", calls: 500, returns: 500 });
  });

  test("library name with --pid resolves to what the process has mapped; offsets and symbol+off accepted", async () => {
    const calls = buildC("calls", "calls.c");
    const target = start([calls, "3"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const off = offsetOf(calls, "target_fn");
    const p = await startProbe(["uprobe", calls, `0x${off.toString(16)}`, "--pid", pid!, "--json", "--no-debuginfo"]);
    expect((await p.err.all).join("\n")).toContain(`offset 0x${off.toString(16)}`);
    target.proc.stdin.write("go\n");
    target.proc.stdin.end();
    const evs = (await p.out.done()).map((l) => JSON.parse(l));
    expect(evs.filter((e) => e.event === "call")).toHaveLength(3);
    const r = runProbe(["uprobe", "libc", "getenv+0x4", "-d", "0.2"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("getenv+0x4");
  });
});
