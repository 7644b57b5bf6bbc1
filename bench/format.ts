// What formatting one typed call costs the reader (no kernel involved): openat's string and
// write's 64-byte buffer, as text and as JSON, after the JIT has warmed up. Runs alone too:
// `bun bench/format.ts`.
import { parsePrototype } from "../lib/types/prototype.ts";
import { locate } from "../lib/types/abi.ts";
import { ValueFormatter, type Captured, type RawValues } from "../lib/types/format.ts";

type Row = (what: string, value: string, note?: string) => void;

function event(words: (bigint | number)[], captures: (Captured | undefined)[]): RawValues {
  const dv = new DataView(new ArrayBuffer(8 * Math.max(1, words.length)));
  words.forEach((w, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, BigInt(w)), true));
  return { words: dv, captures };
}

const captured = (text: string): Captured => ({ bytes: new TextEncoder().encode(text), truncated: false, fault: false });

/** ns per call of `fn`, after 200,000 warm-up calls (the JIT tiers up over ~10^5). */
function nsPerCall(fn: () => string, n = 200_000): number {
  let len = 0;
  for (let i = 0; i < 200_000; i++) len += fn().length;
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) len += fn().length;
  if (len <= n) throw new Error("formatter produced nothing");
  return (Bun.nanoseconds() - t0) / n;
}

export function formatBench(row: Row): void {
  const ptr = 0x7ffd12345678n;
  const open = new ValueFormatter(locate(parsePrototype("int openat(int dirfd, const char *path, int flags, ...)")), {});
  const write = new ValueFormatter(locate(parsePrototype("ssize_t write(int fd, const void *buf[count], size_t count)")), {});
  const openEv = event([-100, ptr, 0x80000], [captured("/etc/ld.so.cache")]);
  const writeEv = event([1, ptr, 64], [captured("GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: probe\r\n\r\n".slice(0, 64))]);
  const cases: [string, () => string][] = [
    ["openat(dirfd, path, flags), text", () => open.callText(openEv)],
    ["openat(dirfd, path, flags), JSON", () => open.callJson(openEv)],
    ["write(fd, buf[64], count), text", () => write.callText(writeEv)],
    ["write(fd, buf[64], count), JSON", () => write.callJson(writeEv)],
  ];
  for (const [what, fn] of cases) row(`format one typed call: ${what}`, `${Math.round(nsPerCall(fn))} ns`, "reader CPU per event, no kernel");
}

if (import.meta.main) formatBench((what, value, note = "") => console.log(`${what.padEnd(50)} ${value.padEnd(10)} ${note}`));
