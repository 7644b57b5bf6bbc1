// `probe load` and friends with users' own BPF objects, compiled here with clang: the two-program
// SSL_read app of the bpfman report on the host's libssl, SEC-name attach, --set, tracepoints,
// pinning and unload, a verifier rejection, BTF formatting, the kernel's view, bpf_printk.
// Every probe filters to a process only this test runs (target_tgid + the link's pid filter).
// The container case uses the namespace container of tests/fixtures/container.ts through --pid
// (--container resolves an engine's name to that same PID with lib/containers.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { ROOT, WORK, buildC, clangFixture, testCert, start, startTarget, probeBinary, type Target } from "../helpers.ts";
import { loadUserObject, parseSection, type UserObject } from "../../lib/user-object.ts";
import { parseAttachSpec, parseSetting } from "../../src/commands/load.ts";
import { PrintkReader, cStrings, formatToRegExp } from "../../lib/tracefs/trace-pipe.ts";
import { verifierSummary } from "../../lib/verifier.ts";
import { unpinDir } from "../../lib/bpffs.ts";
import { LoadError } from "../../lib/object.ts";
import { MapReader } from "../../lib/maps.ts";
import { Btf, MapFormatter, hexBytes } from "../../lib/btf.ts";
import { kernelView } from "../../lib/kernel-view.ts";
import { OpenTarget } from "../../lib/proc/target.ts";
import { ElfFile } from "../../lib/elf.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { openPath, closeFd } from "../../lib/ffi/libc.ts";
import { openLibraryInProcess } from "../../lib/proc/target.ts";
import { startNginxContainer, httpsGet } from "../fixtures/container.ts";

const CLI = [probeBinary()];
const RET_KEY = 0xbebecafe;
const CONTAINER_LIBSSL = "/opt/ssl/libssl.so.3";

let target: string;
let tlsPair: string;
const obj: Record<string, string> = {};

beforeAll(() => {
  target = buildC("load_target", "load_target.c", ["-O2"]);
  tlsPair = buildC("tls_pair", "tls_pair.c", ["-lssl", "-lcrypto"]);
  obj.ssl = clangFixture("ssl_count", "ssl_count.bpf.c");
  obj.sslPin = clangFixture("ssl_count_pin", "ssl_count.bpf.c", ["-DPIN_BY_NAME"]);
  obj.sslSec = clangFixture("ssl_count_sec", "ssl_count.bpf.c", ["-DSEC_LIBSSL"]);
  obj.sec = clangFixture("sec_attach", "sec_attach.bpf.c", [`-DTARGET_PATH="${target}"`]);
  obj.rejected = clangFixture("rejected", "rejected.bpf.c");
});

const pinDirs: string[] = [];
afterAll(() => {
  for (const d of pinDirs) if (existsSync(d)) unpinDir(d, { quiet: true });
});

/** The test target: prints "ready PID", then on "go" calls probe_target_fn(i) and getppid() n times; `go` returns once it has exited. */
async function startLoadTarget(n: number): Promise<Target> {
  const t = await startTarget([target, String(n)]);
  return {
    ...t,
    go: async () => {
      await t.go();
      await t.r.out.waitFor(/^done/);
      await t.r.proc.exited;
    },
  };
}

function u32(n: number): Uint8Array {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

function readU64(r: MapReader, key: number): bigint | undefined {
  const v = r.lookup(u32(key));
  return v ? new DataView(v[0]!.buffer, v[0]!.byteOffset).getBigUint64(0, true) : undefined;
}

function readU32(r: MapReader, key: number): number | undefined {
  const v = r.lookup(u32(key));
  return v ? new DataView(v[0]!.buffer, v[0]!.byteOffset).getUint32(0, true) : undefined;
}

function runCli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([...CLI, ...args], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function progIdsOf(uo: UserObject): number[] {
  return uo.attachments.flatMap((a) => a.link.info().map((i) => i.progId));
}

/** Kernel objects go away after the last reference drops (RCU): poll briefly. */
async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await Bun.sleep(50);
  }
  return check();
}

describe("the SSL_read app (entry_ssl_read + ret_ssl_read sharing rcount) on the host's libssl", () => {
  test("library: rcount has N for the client's pid and N for 0xBEBECAFE; the kernel shows one uprobe and one uretprobe at SSL_read", async () => {
    const { cert, key } = testCert();
    const N = 25;
    const client = start([tlsPair, cert, key, "read", String(N), "1000"]);
    const pid = Number((await client.out.waitFor(/^ready (\d+)/))[1]);
    const uo = loadUserObject(obj.ssl!, {
      attach: [parseAttachSpec("entry_ssl_read=uprobe:libssl:SSL_read"), parseAttachSpec("ret_ssl_read=uretprobe:libssl:SSL_read")],
      set: [parseSetting(`target_tgid=${pid}`)],
      pid,
      openTarget: (t) => {
        const lib = openLibraryInProcess(pid, t);
        return new OpenTarget(lib.fd, lib.path);
      },
    });
    try {
      // Where SSL_read is in the libssl the client has mapped: what the kernel must report.
      const lib = openLibraryInProcess(pid, "libssl");
      const offset = resolveFunction(new ElfFile(lib.fd, lib.path), "SSL_read").offset;
      closeFd(lib.fd);

      const ids = progIdsOf(uo);
      const view = kernelView();
      const ours = view.links.filter((l) => ids.includes(l.progId));
      expect(ours.length).toBe(2);
      const entry = ours.find((l) => l.progName === "entry_ssl_read")!;
      const ret = ours.find((l) => l.progName === "ret_ssl_read")!;
      expect(entry.uprobe).toMatchObject({ kind: "uprobe", offsets: [offset] });
      expect(ret.uprobe).toMatchObject({ kind: "uretprobe", offsets: [offset] });
      expect(entry.uprobe!.path).toMatch(/libssl\.so\.3$/);
      expect(entry.holders.map((h) => h.pid)).toContain(process.pid);

      client.proc.stdin.write("go\n");
      await client.proc.stdin.flush();
      const done = await client.out.waitFor(/^done (\d+) (\d+)/);
      expect(Number(done[1])).toBe(N);
      await client.proc.exited;

      const rcount = new MapReader(uo.mapFd("rcount"));
      expect(readU32(rcount, pid)).toBe(N);
      expect(readU32(rcount, RET_KEY)).toBe(N);
      expect(rcount.keys().length).toBe(2);
      // The key 0xBEBECAFE printed the way the report's app printed it, from BTF.
      const f = new MapFormatter(rcount.info);
      expect(f.key(u32(RET_KEY))).toBe("3200174846 (0xbebecafe)");
    } finally {
      uo.close();
      client.proc.kill();
    }
    expect(await eventually(() => !kernelView().links.some((l) => l.progName === "entry_ssl_read" || l.progName === "ret_ssl_read"))).toBe(true);
  }, 30000);

  test("CLI: load --pid --attach ... --maps rcount --json prints N and N, then stops when the client exits", async () => {
    const { cert, key } = testCert();
    const N = 12;
    const client = start([tlsPair, cert, key, "read", String(N), "500"]);
    const pid = Number((await client.out.waitFor(/^ready (\d+)/))[1]);
    const probe = start([...CLI, "load", obj.ssl!, "--pid", String(pid), "--set", `target_tgid=${pid}`,
      "--attach", "entry_ssl_read=uprobe:libssl:SSL_read", "--attach", "ret_ssl_read=uretprobe:libssl:SSL_read",
      "--maps", "rcount", "-i", "0.2", "-d", "20", "--json"]);
    try {
      await probe.out.waitFor(/"attached"/);
      await probe.out.waitFor(/"attached"/);
      client.proc.stdin.write("go\n");
      await client.proc.stdin.flush();
      await client.out.waitFor(/^done/);
      await client.proc.exited;
      const code = await probe.proc.exited; // --pid: stops when the target is gone
      expect(code).toBe(0);
      const lines = (await probe.out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      const final = lines.find((l) => l.time === "final" && l.map === "rcount");
      expect(final).toBeDefined();
      const byKey = new Map(final.entries.map((e: { key: number; value: number }) => [e.key, e.value]));
      expect(byKey.get(pid)).toBe(N);
      expect(byKey.get(RET_KEY)).toBe(N);
      const attached = lines.filter((l) => l.attached).map((l) => l.attached);
      expect(attached.map((a) => [a.prog, a.kind, a.links[0].retprobe])).toEqual([["entry_ssl_read", "uprobe", false], ["ret_ssl_read", "uretprobe", true]]);
    } finally {
      probe.proc.kill();
      client.proc.kill();
    }
  }, 40000);
});

describe("the SSL_read app against a namespace container's nginx (private libssl under /opt/ssl)", () => {
  test("load --pid: rcount has the nginx PID with N calls and 0xBEBECAFE with N returns; list shows one uprobe and one uretprobe at the container library's SSL_read", async () => {
    const nginx = await startNginxContainer();
    const probe = start([...CLI, "load", obj.ssl!, "--pid", String(nginx.pid), "--set", `target_tgid=${nginx.pid}`,
      "--attach", "entry_ssl_read=uprobe:libssl:SSL_read", "--attach", "ret_ssl_read=uretprobe:libssl:SSL_read",
      "--maps", "rcount", "-i", "0.2", "--json"]);
    try {
      const attached: { prog: string; target: string; offsets: number[]; links: { id: number }[] }[] = [];
      for (let i = 0; i < 2; i++) {
        await probe.out.waitFor(/"attached"/);
        attached.push(JSON.parse(probe.out.all.filter((l) => l.includes('"attached"'))[i]!).attached);
      }
      // The library the container's nginx has mapped, not the host's.
      expect(attached.map((a) => a.target)).toEqual([CONTAINER_LIBSSL, CONTAINER_LIBSSL]);
      const lib = openLibraryInProcess(nginx.pid, "libssl");
      const offset = resolveFunction(new ElfFile(lib.fd, lib.path), "SSL_read").offset;
      closeFd(lib.fd);
      expect(attached.map((a) => a.offsets)).toEqual([[offset], [offset]]);

      const linkIds = attached.flatMap((a) => a.links.map((l) => l.id));
      const listed = runCli(["list", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l))
        .filter((x) => x.kind === "link" && linkIds.includes(x.id));
      expect(listed.map((x) => [x.prog_name, x.probe, x.offsets, x.pid]).sort()).toEqual([
        ["entry_ssl_read", "uprobe", [offset], nginx.pid],
        ["ret_ssl_read", "uretprobe", [offset], nginx.pid],
      ]);
      // The kernel names the file by its path in the host's mount namespace.
      expect(listed.every((x) => x.path.endsWith(CONTAINER_LIBSSL))).toBe(true);

      for (let i = 0; i < 3; i++) expect(httpsGet(nginx.port!, "/echo").ok).toBe(true);
      const snap = await probe.out.waitFor(/"map":"rcount".*"value":[1-9]/);
      void snap;
      probe.proc.kill("SIGINT");
      expect(await probe.proc.exited).toBe(0);
      const final = (await probe.out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).find((l) => l.time === "final");
      const byKey = new Map<number, number>(final.entries.map((e: { key: number; value: number }) => [e.key, e.value]));
      const calls = byKey.get(nginx.pid)!;
      expect(calls).toBeGreaterThanOrEqual(3);
      expect(byKey.get(RET_KEY)).toBe(calls);
      expect([...byKey.keys()].sort()).toEqual([nginx.pid, RET_KEY].sort());
      console.log(`container nginx (host pid ${nginx.pid}): ${calls} SSL_read calls and returns for 3 requests`);

      // The same programs attached from SEC("uprobe/libssl.so.3:SSL_read"): the name resolves in the container too.
      const uo = loadUserObject(obj.sslSec!, {
        set: [parseSetting(`target_tgid=${nginx.pid}`)],
        pid: nginx.pid,
        openTarget: (t) => {
          const l = openLibraryInProcess(nginx.pid, t);
          return new OpenTarget(l.fd, l.path);
        },
      });
      try {
        expect(uo.attachments.map((a) => [a.prog, a.kind, a.target, a.offsets, a.from])).toEqual([
          ["entry_ssl_read", "uprobe", CONTAINER_LIBSSL, [offset], "SEC"],
          ["ret_ssl_read", "uretprobe", CONTAINER_LIBSSL, [offset], "SEC"],
        ]);
        for (let i = 0; i < 2; i++) expect(httpsGet(nginx.port!, "/echo").ok).toBe(true);
        const rcount = new MapReader(uo.mapFd("rcount"));
        const n = readU32(rcount, nginx.pid)!;
        expect(n).toBeGreaterThanOrEqual(2);
        expect(readU32(rcount, RET_KEY)).toBe(n);
      } finally {
        uo.close();
      }
    } finally {
      probe.proc.kill();
      await nginx.stop();
    }
  }, 60000);
});

describe("SEC-name attach, --set, tracepoints", () => {
  async function runWith(weight: number, n: number): Promise<{ counts: (bigint | undefined)[]; uo?: UserObject }> {
    const t = await startLoadTarget(n);
    const uo = loadUserObject(obj.sec!, { set: [parseSetting(`target_tgid=${t.pid}`), parseSetting(`weight=${weight}`), parseSetting("label=hi")], pid: t.pid });
    try {
      expect(uo.attachments.map((a) => [a.prog, a.kind, a.from])).toEqual([
        ["on_entry", "uprobe", "SEC"],
        ["on_return", "uretprobe", "SEC"],
        ["on_getppid", "tracepoint", "SEC"],
      ]);
      await t.go();
      const counts = new MapReader(uo.mapFd("counts"));
      return { counts: [1, 2, 3].map((k) => readU64(counts, k)) };
    } finally {
      uo.close();
    }
  }

  test("the programs attach from their SEC names; --set weight (a .rodata global) changes what each call adds", async () => {
    const n = 9;
    const one = await runWith(1, n);
    expect(one.counts).toEqual([BigInt(n), BigInt(n), BigInt(n)]);
    const four = await runWith(4, n);
    expect(four.counts).toEqual([BigInt(4 * n), BigInt(4 * n), BigInt(4 * n)]);
  }, 30000);

  test("--attach refuses a program of the wrong type and an unknown program", () => {
    expect(() => loadUserObject(obj.sec!, { attach: [parseAttachSpec("on_getppid=uprobe:/bin/true:main")] })).toThrow(/is not a uprobe program/);
    expect(() => loadUserObject(obj.sec!, { attach: [parseAttachSpec("on_entry=tracepoint:sched:sched_switch")] })).toThrow(/is not a tracepoint program/);
    expect(() => loadUserObject(obj.sec!, { attach: [parseAttachSpec("nope=uprobe:/bin/true:main")] })).toThrow(/has no program 'nope'/);
  });

  test("--set refuses unknown names and bad values", () => {
    expect(() => loadUserObject(obj.sec!, { set: [parseSetting("nosuch=1")] })).toThrow(/no global variable 'nosuch'.*/);
    expect(() => loadUserObject(obj.sec!, { set: [parseSetting("weight=abc")] })).toThrow(/not a number/);
    expect(() => loadUserObject(obj.sec!, { set: [parseSetting("weight=0x100000000")] })).toThrow(/out of range/);
    expect(() => loadUserObject(obj.sec!, { set: [parseSetting("label=toolongforit")] })).toThrow(/longer than 8 bytes/);
  });

  test("the kernel's view: uprobe and uretprobe at probe_target_fn, a tracepoint link, perf-event uprobes with their holder", async () => {
    const fd = openPath(target);
    const offset = resolveFunction(new ElfFile(fd, target), "probe_target_fn").offset;
    closeFd(fd);
    const t = await startLoadTarget(1);
    for (const mode of ["multi", "perf"] as const) {
      const uo = loadUserObject(obj.sec!, { set: [parseSetting(`target_tgid=${t.pid}`)], pid: t.pid, mode });
      try {
        const ids = progIdsOf(uo);
        const v = kernelView();
        const links = v.links.filter((l) => ids.includes(l.progId));
        const progs = v.programs.filter((p) => ids.includes(p.id));
        expect(progs.map((p) => [p.name, p.type]).sort()).toEqual([["on_entry", "kprobe"], ["on_getppid", "tracepoint"], ["on_return", "kprobe"]]);
        const tp = links.find((l) => l.progName === "on_getppid")!;
        expect(tp.perfEvent).toEqual({ kind: "tracepoint", name: "sys_enter_getppid" });
        // uprobe_multi links report the file's real path; perf-event uprobes the path string they
        // were opened with (lib/uprobe.ts hands the kernel /proc/self/fd/N of the opened target).
        const shownPath = (p: string) => (mode === "perf" && /^\/proc\/self\/fd\/\d+$/.test(p) ? target : p);
        const up = links.filter((l) => l.uprobe).map((l) => [l.progName, l.type, l.uprobe!.kind, l.uprobe!.offsets, shownPath(l.uprobe!.path)]);
        const type = mode === "multi" ? "uprobe_multi" : "perf_event";
        expect(up.sort()).toEqual([["on_entry", type, "uprobe", [offset], target], ["on_return", type, "uretprobe", [offset], target]]);
        if (mode === "perf") {
          const pe = v.perfEvents.filter((p) => ids.includes(p.progId)).map((p) => [p.progName, p.kind, p.offset, shownPath(p.path), p.pid]);
          expect(pe.sort()).toEqual([
            ["on_entry", "uprobe", offset, target, process.pid],
            ["on_getppid", "tracepoint", 0, "sys_enter_getppid", process.pid],
            ["on_return", "uretprobe", offset, target, process.pid],
          ]);
        }
        // The same through `probe list --json`.
        const r = runCli(["list", "--json"]);
        expect(r.code).toBe(0);
        const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
        const listed = rows.filter((x) => x.kind === "link" && ids.includes(x.prog_id) && x.probe).map((x) => [x.prog_name, x.probe, x.offsets]);
        expect(listed.sort()).toEqual([["on_entry", "uprobe", [offset]], ["on_return", "uretprobe", [offset]]]);
      } finally {
        uo.close();
      }
    }
    await t.go();
  }, 30000);
});

describe("BTF formatting", () => {
  test("int, struct and char-array keys and values; enums by name; JSON with big numbers as strings; hex without BTF", async () => {
    const t = await startLoadTarget(3);
    const uo = loadUserObject(obj.sec!, { set: [parseSetting(`target_tgid=${t.pid}`), parseSetting("label=hi")], pid: t.pid });
    try {
      await t.go();
      const calls = new MapReader(uo.mapFd("calls"));
      const f = new MapFormatter(calls.info);
      expect([f.keyType, f.valueType]).toEqual(["struct call_key", "struct call_stats"]);
      const [e] = calls.entries();
      expect(f.key(e!.key)).toBe(`{pid: ${t.pid} (0x${t.pid.toString(16)}), comm: "load_target"}`);
      expect(f.value(e!.values[0]!)).toBe(`{calls: 3 (0x3), last_arg: 2 (0x2), phase: PHASE_ENTRY, label: "hi"}`);
      expect(f.keyJson(e!.key)).toEqual({ pid: t.pid, comm: "load_target" });
      expect(f.valueJson(e!.values[0]!)).toEqual({ calls: 3, last_arg: 2, phase: "PHASE_ENTRY", label: "hi" });

      const counts = new MapReader(uo.mapFd("counts"));
      const cf = new MapFormatter(counts.info);
      const big = new Uint8Array(new BigUint64Array([2n ** 60n + 1n]).buffer);
      expect(cf.key(u32(RET_KEY))).toBe("3200174846 (0xbebecafe)");
      expect(cf.value(big)).toBe("1152921504606846977 (0x1000000000000001)");
      expect(cf.valueJson(big)).toBe("1152921504606846977");
      expect(cf.valueJson(new Uint8Array(new BigUint64Array([42n]).buffer))).toBe(42);

      // A .rodata map's value is its DATASEC: the globals by name, as --set left them.
      const rodata = uo.maps().find((m) => m.name.endsWith(".rodata"))!;
      const rr = new MapReader(rodata.fd);
      const rv = new MapFormatter(rr.info).valueJson(rr.lookup(u32(0))![0]!) as Record<string, unknown>;
      expect(rv).toMatchObject({ target_tgid: t.pid, weight: 1, label: "hi" });

      // Signed ints: decimal with the sign, hex of the bits.
      const btf = Btf.fromKernel(calls.info.btfId);
      const s32 = btf.types.find((x) => x?.name === "int" || x?.name === "__s32");
      expect(s32).toBeDefined();
      expect(btf.format(s32!.id, new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toBe("-1 (0xffffffff)");

      const noBtf = new MapFormatter({ btfId: 0, btfKeyTypeId: 0, btfValueTypeId: 0 });
      expect(noBtf.key(u32(RET_KEY))).toBe("fe ca be be");
      expect(hexBytes(new Uint8Array([1, 0xab]))).toBe("01 ab");
    } finally {
      uo.close();
    }
  }, 20000);
});

describe("pinning", () => {
  test("a pinned load survives the loader's exit, is read back by map dump, refuses a second load, and unload leaves nothing", async () => {
    const dir = `/sys/fs/bpf/probe-test-load-${process.pid}`;
    pinDirs.push(dir);
    const t = await startLoadTarget(6);
    const r = runCli(["load", obj.sec!, "--pin", dir, "--set", `target_tgid=${t.pid}`, "--set", "weight=2", "--json"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const pinned = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((x) => x.pinned).map((x) => x.pinned.slice(dir.length + 1));
    expect(pinned.sort()).toEqual(["calls", "counts", "links/on_entry_uprobe_0", "links/on_getppid_tracepoint_0", "links/on_return_uretprobe_0", "progs/on_entry", "progs/on_getppid", "progs/on_return", "rodata"].sort());

    // The loader is gone; the probes still fire.
    await t.go();
    const dump = runCli(["map", "dump", `${dir}/counts`, "--json"]);
    expect(dump.code).toBe(0);
    const snap = JSON.parse(dump.stdout.trim());
    expect(snap.map).toBe("counts");
    expect(new Map(snap.entries.map((e: { key: number; value: number }) => [e.key, e.value]))).toEqual(new Map([[1, 12], [2, 12], [3, 12]]));
    const human = runCli(["map", "dump", `${dir}/calls`]);
    expect(human.stdout).toContain(`comm: "load_target"`);

    // The kernel's view names the pins as the holders.
    const v = kernelView();
    const links = v.links.filter((l) => l.pins.some((p) => p.startsWith(dir + "/")));
    expect(links.map((l) => l.progName).sort()).toEqual(["on_entry", "on_getppid", "on_return"]);
    expect(links.every((l) => l.holders.length === 0)).toBe(true);
    const progIds = links.map((l) => l.progId);

    const again = runCli(["load", obj.sec!, "--pin", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already holds a load");

    const un = runCli(["unload", dir, "--json"]);
    expect(un.code).toBe(0);
    expect(un.stdout.trim().split("\n").length).toBe(9);
    expect(existsSync(dir)).toBe(false);
    expect(await eventually(() => {
      const after = kernelView();
      return !after.programs.some((p) => progIds.includes(p.id)) && !after.links.some((l) => progIds.includes(l.progId));
    })).toBe(true);
  }, 30000);

  test("LIBBPF_PIN_BY_NAME maps go into the pin directory", () => {
    const dir = `/sys/fs/bpf/probe-test-byname-${process.pid}`;
    pinDirs.push(dir);
    const uo = loadUserObject(obj.sslPin!, { pinDir: dir, attach: [parseAttachSpec("entry_ssl_read=uprobe:/usr/lib/x86_64-linux-gnu/libssl.so.3:SSL_read")], pid: process.pid });
    try {
      expect(readdirSync(dir).sort()).toEqual(["links", "progs", "rcount", "rodata"].sort());
      expect(uo.unattached.map((u) => u.prog)).toEqual(["ret_ssl_read"]);
    } finally {
      uo.close();
    }
    const removed = unpinDir(dir);
    expect(removed.map((x) => x.kind).sort()).toEqual(["link", "map", "map", "prog", "prog"]);
    expect(existsSync(dir)).toBe(false);
  });

  test("unload refuses what is not a pin directory", () => {
    expect(() => unpinDir("/sys/fs/bpf")).toThrow(/root/);
    expect(() => unpinDir("/tmp")).toThrow(/not on a bpf filesystem/);
    const r = runCli(["unload", "/tmp"]);
    expect(r.code).toBe(2);
  });
});

describe("verifier", () => {
  test("a rejected program: the verifier's reason, exit 1, nothing left loaded", async () => {
    let err: unknown;
    try {
      loadUserObject(obj.rejected!, {}).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoadError);
    const summary = verifierSummary((err as LoadError).log);
    expect(summary).toContain("R0 invalid mem access 'map_value_or_null'");
    expect(summary.split("\n").length).toBeLessThanOrEqual(21);

    const r = runCli(["load", obj.rejected!]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("probe: error:");
    expect(r.stderr).toMatch(/error: the verifier rejected program 'unchecked' of .*rejected\.bpf\.o: R0 invalid mem access 'map_value_or_null'/);
    expect(await eventually(() => {
      const v = kernelView();
      return !v.programs.some((p) => p.name === "unchecked" && p.holders.some((h) => h.pid === process.pid)) && !v.maps.some((m) => m.name === "vals" && m.holders.some((h) => h.pid === process.pid));
    })).toBe(true);
    // And nothing from that load is held by anyone (the CLI process has exited).
    expect(kernelView().maps.filter((m) => m.name === "vals" && m.holders.length > 0)).toEqual([]);
  }, 20000);
});

describe("bpf_printk", () => {
  test("lines of our programs only, from trace_pipe", async () => {
    const t = await startLoadTarget(4);
    const uo = loadUserObject(obj.sec!, { set: [parseSetting(`target_tgid=${t.pid}`)], pid: t.pid });
    const reader = new PrintkReader(uo.rodataSections().flatMap(cStrings).map(formatToRegExp), new Set([t.pid]));
    const got: string[] = [];
    try {
      reader.start((l) => got.push(l.message));
      await Bun.sleep(300); // the marker must be through before the target runs
      await t.go();
      const end = Date.now() + 3000;
      while (got.length < 4 && Date.now() < end) await Bun.sleep(50);
    } finally {
      reader.stop((l) => got.push(l.message));
      uo.close();
    }
    expect(got).toEqual(["probe-test entry arg=0", "probe-test entry arg=1", "probe-test entry arg=2", "probe-test entry arg=3"]);
    expect(reader.matches({ comm: "x", pid: t.pid, cpu: 0, timestamp: 0, message: "something else" })).toBe(false);
  }, 20000);
});

test("fixtures are cleaned", () => {
  // tests/.work is scratch space; nothing pinned by this file may remain.
  for (const d of pinDirs) expect(existsSync(d)).toBe(false);
});
