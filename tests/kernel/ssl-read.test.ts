// `probe ssl-read` against real TLS: a client that makes exactly N SSL_read or SSL_read_ex calls of
// known sizes (its server writes one record per call), counted by probe per process.
import { describe, expect, test } from "bun:test";
import { buildC, start, startProbe, testCert, runProbe } from "../helpers.ts";
import { loadEmbedded } from "../../lib/programs.ts";
import { attachUprobe, bestAttachMode } from "../../lib/uprobe.ts";
import { OpenTarget } from "../../lib/proc/target.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { MapReader } from "../../lib/maps.ts";
import { Scope } from "../../lib/scope.ts";
import { readSslStats } from "../../src/commands/ssl-read.ts";
import { openLibraryInProcess } from "../../lib/proc/target.ts";

function tlsPair() {
  return buildC("tls_pair", "tls_pair.c", ["-lssl", "-lcrypto"]);
}

async function clientReady(fn: "read" | "read_ex", n: number, size: number) {
  const { cert, key } = testCert();
  const c = start([tlsPair(), cert, key, fn, String(n), String(size)]);
  const [, pid] = await c.out.waitFor(/^ready (\d+)/);
  return { c, pid: Number(pid) };
}

async function go(c: ReturnType<typeof start>) {
  c.proc.stdin.write("go\n");
  c.proc.stdin.end();
  const [, calls, bytes] = await c.out.waitFor(/^done (\d+) (\d+)/);
  return { calls: Number(calls), bytes: Number(bytes) };
}

describe("probe ssl-read", () => {
  for (const fn of ["read", "read_ex"] as const) {
    test(`counts exactly the client's SSL_${fn} calls, returns and bytes (--pid)`, async () => {
      const { c, pid } = await clientReady(fn, 25, 1000);
      const p = await startProbe(["ssl-read", "--pid", String(pid), "--json", "-i", "0.2", "--verify-order"]);
      const said = await go(c);
      expect(said).toEqual({ calls: 25, bytes: 25000 });
      const rows = (await p.out.done()).map((l) => JSON.parse(l));
      expect(await p.proc.exited).toBe(0);
      const final = rows.filter((r) => r.final);
      expect(final).toEqual([{ event: "ssl-read", pid, comm: "tls_pair", library: "/usr/lib/x86_64-linux-gnu/libssl.so.3", tls: expect.stringMatching(/^OpenSSL 3\.\d+\.\d+$/), calls: 25, returns: 25, bytes: 25000, errors: 0, orphan_returns: 0, final: true }]);
      expect(p.err.all.join("\n")).toMatch(/kernel reports uprobe \+ uretprobe/);
    });
  }

  test("without --pid it traces every process; the client's row is exact", async () => {
    const { c, pid } = await clientReady("read", 10, 4096);
    const p = await startProbe(["ssl-read", "--json", "-i", "0.2"]);
    await go(c);
    await Bun.sleep(300);
    p.proc.kill("SIGINT");
    const rows = (await p.out.done()).map((l) => JSON.parse(l));
    const mine = rows.filter((r) => r.final && r.pid === pid);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ calls: 10, returns: 10, bytes: 40960, errors: 0, orphan_returns: 0 });
  });

  test("a return program attached at function entry without the retprobe flag is caught: returns seen before entries", async () => {
    // Reproduce the failure on purpose, with probe's own programs: the return program attached
    // as an entry probe runs before the entry program (newest consumer first).
    const scope = new Scope();
    try {
      const { c, pid } = await clientReady("read", 5, 100);
      const mode = bestAttachMode();
      const cfg = new Uint8Array(8);
      new DataView(cfg.buffer).setUint32(0, pid, true);
      const obj = scope.add(loadEmbedded("ssl_read", mode, cfg));
      const opened = openLibraryInProcess(pid, "libssl");
      const lib = scope.add(new OpenTarget(opened.fd, opened.path));
      const points = [{ offset: resolveFunction(lib.elf, "SSL_read").offset, cookie: 0n }];
      scope.add(attachUprobe(obj.progFd("ssl_read_entry"), lib.kernelPath, points, { retprobe: false, mode, pid }));
      const wrong = scope.add(attachUprobe(obj.progFd("ssl_read_return"), lib.kernelPath, points, { retprobe: false, mode, pid }));
      expect(wrong.info()[0]!.uprobe!.retprobe).toBe(false); // what the kernel says gives it away
      await go(c);
      const [row] = readSslStats(new MapReader(obj.mapFd("stats")));
      expect(row!.calls).toBe(5n);
      expect(row!.orphanReturns).toBe(5n);
    } finally {
      scope.close();
    }
  });

  test("--lib that is not a libssl fails naming the function", () => {
    const r = runProbe(["ssl-read", "--lib", "/lib/x86_64-linux-gnu/libc.so.6", "-d", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: function SSL_read not found in \/lib\/x86_64-linux-gnu\/libc.so.6/m);
  });

  test("probe demo runs the main job on its built-in target", () => {
    const r = runProbe(["demo", "-n", "3", "--json"]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((x) => x.final);
    // Three s_client processes, each with reads that all returned, in order.
    const clients = rows.filter((x) => x.comm === "openssl" && x.calls > 0);
    expect(clients.length).toBeGreaterThanOrEqual(3);
    for (const x of clients) {
      expect(x.returns).toBe(x.calls);
      expect(x.orphan_returns).toBe(0);
      expect(x.bytes).toBeGreaterThan(0);
    }
  });
});
