// Go return probes in the kernel: entry probes at every RET of functions of a live Go HTTP server
// pair with their calls under load; a real uretprobe on the same function crashes it.
import { describe, test, expect, beforeAll } from "bun:test";
import { inspectGo, requireRegisterAbi } from "../../lib/go.ts";
import { goFunction } from "../../lib/go-functions.ts";
import { returnOffsets } from "../../lib/go-returns.ts";
import type { BpfObject } from "../../lib/object.ts";
import { loadEmbedded } from "../../lib/programs.ts";
import { attachUprobe, type UprobeLink } from "../../lib/uprobe.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { MapReader } from "../../lib/maps.ts";
import { UPROBE_EVENT, UPROBE_CONFIG, PROC_FILTER, EV_CALL, EV_RETURN } from "../../lib/layouts.ts";
import { startServer, load, type Server } from "../fixtures/go.ts";
import { buildGoFixtures, withElf, type GoBins } from "../fixtures/go-bins.ts";

let bins: GoBins;
beforeAll(() => {
  bins = buildGoFixtures();
}, 600_000);

function config(tgid: number, emit: boolean, count: boolean, latency: boolean, goAbi: boolean): Uint8Array {
  const c = new Uint8Array(UPROBE_CONFIG.size);
  new DataView(c.buffer).setUint32(UPROBE_CONFIG.filter + PROC_FILTER.tgid, tgid, true);
  c[UPROBE_CONFIG.emit_events] = emit ? 1 : 0;
  c[UPROBE_CONFIG.count_calls] = count ? 1 : 0;
  c[UPROBE_CONFIG.track_latency] = latency ? 1 : 0;
  c[UPROBE_CONFIG.go_abi] = goAbi ? 1 : 0;
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
      const rawCalls = new DataView(new MapReader(raw.mapFd("counts")).lookup(new Uint8Array(new Uint32Array([server.pid, 0]).buffer))![0]!.buffer).getBigUint64(0, true); // key: (tgid, function)
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


