// The loader cache parser on this machine's real /etc/ld.so.cache (against `ldconfig -p`) and on
// mutants of it: success or an LdCacheError naming the file, in bounded time, never another
// exception. A cache bigger than any real one is refused by size.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ProbeError } from "../../lib/errors.ts";
import { isX8664Entry, LDCACHE_MAX_BYTES, LdCacheError, parseLdCache } from "../../lib/ldcache.ts";
import { put, Rng } from "../fixtures/fuzz/mutate.ts";

const CACHE = "/etc/ld.so.cache";
const HEADER = 48;
const ENTRY = 24;

describe("ld.so.cache", () => {
  const real = new Uint8Array(readFileSync(CACHE));

  test("this machine's cache parses like ldconfig -p lists it", () => {
    const r = Bun.spawnSync(["ldconfig", "-p"], { stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    // "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
    const expected = r.stdout.toString().split("\n").filter((l) => l.includes(" => ")).map((l) => {
      const m = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(l)!;
      return `${m[1]} ${m[2]!.includes("x86-64") ? "x86-64" : "other"} ${m[3]}`;
    });
    const ours = parseLdCache(real).map((e) => `${e.name} ${isX8664Entry(e) ? "x86-64" : "other"} ${e.path}`);
    expect(ours.length).toBeGreaterThan(10);
    expect(ours).toEqual(expected);
  });

  test("a cache bigger than the cap is refused by size, naming the file", () => {
    const big = new Uint8Array(LDCACHE_MAX_BYTES + 1);
    big.set(real);
    const t0 = performance.now();
    expect(() => parseLdCache(big, "/proc/42/root/etc/ld.so.cache")).toThrow(/^\/proc\/42\/root\/etc\/ld\.so\.cache: 16777217 bytes is more than/);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  for (const [what, len] of [["unterminated", (8 << 20) - 1024], ["4095-byte", 4095]] as const) {
    test(`350,000 entries all naming one ${what} string end quickly`, () => {
      // Without bounds this is 350,000 scans of the same long string.
      const b = new Uint8Array(LDCACHE_MAX_BYTES).fill(0x41);
      b.set(real.subarray(0, HEADER));
      const n = Math.floor(b.length / 2 / ENTRY);
      put(b, 20, 4, n);
      const str = b.length - len - 1;
      b[b.length - 1] = len < 8 << 20 ? 0 : 0x41;
      for (let i = 0; i < n; i++) {
        put(b, HEADER + i * ENTRY, 4, 0x303);
        put(b, HEADER + i * ENTRY + 4, 4, str);
        put(b, HEADER + i * ENTRY + 8, 4, str);
      }
      const t0 = performance.now();
      expect(() => parseLdCache(b)).toThrow(LdCacheError);
      expect(performance.now() - t0).toBeLessThan(1000);
    });
  }

  test("2,000 mutants: entries or an LdCacheError naming the file", () => {
    const rng = new Rng(0x1dca);
    const nlibs = new DataView(real.buffer, real.byteOffset).getUint32(20, true);
    const fields = [20, 24, 28, 32]; // nlibs, len_strings, flags..., extension offset
    for (let i = 0; i < Math.min(nlibs, 64); i++) fields.push(HEADER + i * ENTRY, HEADER + i * ENTRY + 4, HEADER + i * ENTRY + 8);
    const values = [0, 1, 0x7fffffff, 0xffffffff, real.length, real.length - 1, real.length + 1, 0xffff];
    const outcomes = { ok: 0, clean: 0, other: [] as string[] };
    const t0 = performance.now();
    for (let k = 0; k < 2000; k++) {
      let b: Uint8Array = real.slice();
      const r = rng.int(10);
      if (r < 5) put(b, rng.pick(fields), 4, rng.pick(values));
      else if (r < 8) for (let j = 0; j < 1 + rng.int(8); j++) b[rng.int(Math.min(b.length, HEADER + nlibs * ENTRY + 64))] = rng.int(256);
      else b = b.slice(0, rng.int(b.length));
      try {
        parseLdCache(b, "/x/etc/ld.so.cache");
        outcomes.ok++;
      } catch (e) {
        if (e instanceof LdCacheError && e instanceof ProbeError && e.message.startsWith("/x/etc/ld.so.cache: ")) outcomes.clean++;
        else outcomes.other.push(`${k}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      }
    }
    const ms = performance.now() - t0;
    console.log(`ld.so.cache fuzz: 2000 mutants in ${ms.toFixed(0)} ms: ${outcomes.ok} parsed, ${outcomes.clean} clean errors, ${outcomes.other.length} other`);
    expect(outcomes.other.slice(0, 10)).toEqual([]);
    expect(outcomes.clean).toBeGreaterThan(100);
    expect(ms).toBeLessThan(20_000);
  });
});
