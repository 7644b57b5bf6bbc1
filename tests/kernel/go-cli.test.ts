// `probe uprobe` on Go programs, through the built binary: --ret becomes RET-instruction probes
// (never a uretprobe), the server survives stack growth, thread migration and GC under load, and
// every return pairs with its call.
import { beforeAll, describe, expect, test } from "bun:test";
import { goBuild, load, startServer } from "../fixtures/go.ts";
import { linksHeldBy, runProbe, startProbe } from "../helpers.ts";

const bins: Record<string, string> = {};
beforeAll(() => {
  if (!Bun.which("go")) throw new Error("the Go toolchain is needed for these tests: apt-get install golang-go");
  bins.server = goBuild("server", "server");
  bins.serverPieStripped = goBuild("server", "server-pie-stripped", { pie: true, strip: true });
  bins.funcs = goBuild("funcs", "funcs");
}, 600_000);

interface Ev {
  event: string;
  tid: number;
  args?: string[];
  ret?: number;
  results?: string[];
  latency_ns?: number;
}

describe("probe uprobe on a Go server", () => {
  for (const which of ["server", "serverPieStripped"] as const) {
    test(`[${which}] --ret under concurrent load with stack growth: alive, exact pairs, no uretprobe`, async () => {
      const srv = await startServer(bins[which]!);
      try {
        const p = await startProbe(["uprobe", bins[which]!, "main.recurse", "--ret", "--pid", String(srv.pid), "--json", "--no-debuginfo"]);
        expect(p.err.all.join("\n")).toMatch(/Go go1\.\d+.*returns probed at \d+ RET instruction/);
        // The kernel's view: every link of ours is an entry probe (RETs), none a uretprobe.
        const links = linksHeldBy(p.proc.pid);
        expect(links.length).toBe(2);
        expect(links.every((l) => l.uprobe?.kind === "uprobe")).toBe(true);

        const depth = 30; // recurse(30): 31 calls per request, 1 KB frames: the stack grows and is copied
        const urls = Array.from({ length: 200 }, () => `http://127.0.0.1:${srv.port}/recurse?n=${depth}`);
        const { ok, failed } = await load(urls, 32);
        expect(failed).toBe(0);
        expect(ok.every((l) => l.endsWith(` ${2 * depth + 1}`))).toBe(true);
        await Bun.sleep(300);
        p.proc.kill("SIGINT");
        const events = (await p.out.done()).map((l) => JSON.parse(l) as Ev);
        expect(await p.proc.exited).toBe(0);
        expect(srv.proc.exitCode).toBeNull(); // still alive
        expect(events.filter((e) => e.event === "call")).toHaveLength(200 * (depth + 1));
        expect(events.filter((e) => e.event === "return")).toHaveLength(200 * (depth + 1));
        // recurse(k) returns 2k+1: every value 1, 3, ..., 61 comes back once per request.
        const rets = new Map<number, number>();
        for (const e of events) if (e.event === "return") rets.set(e.ret!, (rets.get(e.ret!) ?? 0) + 1);
        for (let k = 0; k <= depth; k++) expect(rets.get(2 * k + 1)).toBe(200);
      } finally {
        srv.proc.kill();
      }
    });
  }

  test("a function that sleeps: returns on other threads still pair; results right; GC under load survives", async () => {
    const srv = await startServer(bins.server!);
    try {
      const p = await startProbe(["uprobe", bins.server!, "main.sleepy", "--ret", "--pid", String(srv.pid), "--json", "--no-debuginfo"]);
      const urls = Array.from({ length: 60 }, (_, i) => `http://127.0.0.1:${srv.port}/sleep?ms=3&id=${i + 1}`);
      const gc = Array.from({ length: 40 }, () => `http://127.0.0.1:${srv.port}/gc?n=20`);
      const [a, b] = await Promise.all([load(urls, 16), load(gc, 4)]);
      expect(a.failed + b.failed).toBe(0);
      await Bun.sleep(300);
      p.proc.kill("SIGINT");
      const events = (await p.out.done()).map((l) => JSON.parse(l) as Ev);
      expect(srv.proc.exitCode).toBeNull();
      const calls = events.filter((e) => e.event === "call");
      const rets = events.filter((e) => e.event === "return");
      expect(calls).toHaveLength(60);
      expect(rets).toHaveLength(60);
      // sleepy(ms, id) = id*1000 + ms: arguments in RAX, RBX; every id's return is there once.
      const ids = calls.map((c) => Number(c.args![1])).sort((x, y) => x - y);
      expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(rets.map((r) => r.ret!).sort((x, y) => x - y)).toEqual(ids.map((id) => id * 1000 + 3));
      // Latency comes from the goroutine's own entry: at least the 3 ms it slept.
      expect(rets.every((r) => r.latency_ns! >= 3_000_000)).toBe(true);
      expect(rets.every((r) => r.results!.length === 3)).toBe(true);
    } finally {
      srv.proc.kill();
    }
  });

  test("--list-functions finds Go names, also in a stripped PIE binary", () => {
    const r = runProbe(["uprobe", bins.serverPieStripped!, "--list-functions", "(*conn).serve"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/net\/http\.\(\*conn\)\.serve$/m);
    expect(r.stderr).toMatch(/Go go1\.\d+.*register ABI, stripped/);
  });

  test("a function with no RET is refused with --ret, saying so", () => {
    const r = runProbe(["uprobe", bins.funcs!, "main.neverReturns", "--ret", "-d", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: main\.neverReturns .* has no RET instruction/m);
  });

  test("method names as Go writes them", () => {
    const r = runProbe(["uprobe", bins.funcs!, "main.(*T).M", "--ret", "-d", "0.2"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Tracing main.(*T).M");
  });
});
