// One function's parameters from a separate debug file, timed the way bench/typed.ts times it
// (open the binary, find its debug file, resolve the symbol, functionAt), in fresh processes:
// each run is a new `bun` so that nothing is cached in the process or JIT-warmed. Reports the
// median wall and CPU time of N runs, and what the reader read and inflated.
//
//   bun bench/dwarf-lookup.ts [binary] [function] [runs]
//   bun bench/dwarf-lookup.ts /lib/x86_64-linux-gnu/libc.so.6 malloc 9
//   DWARF_ROOT=/other/checkout bun bench/dwarf-lookup.ts ...   (time another checkout's lib/)
//   DWARF_BEFORE=/work/main bun bench/dwarf-lookup.ts ...      (that checkout and this one, alternating)
//
// Cold page cache: run as root with DROP_CACHES=1 (writes 3 to /proc/sys/vm/drop_caches first).
import { openSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = process.env.DWARF_ROOT ?? join(import.meta.dir, "..");

if (process.argv[2] === "--child") {
  const [, , , path, fn] = process.argv as string[];
  const { ElfFile } = await import(join(ROOT, "lib/elf.ts"));
  const { resolveFunction } = await import(join(ROOT, "lib/symbols.ts"));
  const { findDebugInfo, hostOpener } = await import(join(ROOT, "lib/dwarf/index.ts"));
  // CPU time of this thread alone: on a busy machine, what the lookup itself costs (the JIT's
  // compiler threads and the waits for a CPU are left out).
  const { clockNs } = await import(join(ROOT, "lib/ffi/libc.ts"));
  const CLOCK_THREAD_CPUTIME_ID = 3;
  const th0 = clockNs(CLOCK_THREAD_CPUTIME_ID);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const fd = openSync(path!, "r");
  const elf = new ElfFile(fd, path!);
  const found = findDebugInfo(elf, path!, hostOpener);
  const f = found.info ? found.info.functionAt(resolveFunction(elf, fn!).vaddr) : undefined;
  const ms = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  const thread = Number(clockNs(CLOCK_THREAD_CPUTIME_ID) - th0) / 1e6;
  const st = found.info?.stats;
  closeSync(fd);
  console.log(JSON.stringify({ ms, thread, cpu: (c.user + c.system) / 1000, read: st?.bytesRead, inflated: st?.bytesInflated, name: f?.name, params: f?.params.map((p: { type: { name: string }; name: string }) => `${p.type.name} ${p.name}`) }));
  process.exit(0);
}

const path = process.argv[2] ?? "/lib/x86_64-linux-gnu/libc.so.6";
const fn = process.argv[3] ?? "malloc";
const runs = Number(process.argv[4] ?? 9);
// DWARF_BEFORE=/other/checkout: its runs alternate with this checkout's, so both see the same load.
const roots = process.env.DWARF_BEFORE ? [process.env.DWARF_BEFORE, ROOT] : [ROOT];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
type Run = { ms: number; thread: number; cpu: number; read: number; inflated: number; name: string; params: string[] };
const rows = new Map<string, Run[]>(roots.map((r) => [r, []]));
for (let i = 0; i < runs; i++) {
  for (const root of roots) {
    if (process.env.DROP_CACHES) writeFileSync("/proc/sys/vm/drop_caches", "3");
    const p = Bun.spawnSync([process.execPath, import.meta.path, "--child", path, fn], { env: { ...process.env, DWARF_ROOT: root } });
    if (p.exitCode !== 0) throw new Error(p.stderr.toString());
    rows.get(root)!.push(JSON.parse(p.stdout.toString()));
  }
}
for (const [root, rs] of rows) {
  const r = rs[0]!;
  console.log(`${fn} in ${path} (${root}): ${r.name}(${r.params?.join(", ")})`);
  console.log(`  median of ${runs}${process.env.DROP_CACHES ? " (cold page cache)" : ""}: ${median(rs.map((x) => x.ms)).toFixed(1)} ms wall, ${median(rs.map((x) => x.thread)).toFixed(1)} ms CPU of the thread, ${median(rs.map((x) => x.cpu)).toFixed(1)} ms CPU of the process; ${((r.read ?? 0) / 1e6).toFixed(2)} MB read, ${((r.inflated ?? 0) / 1e6).toFixed(2)} MB inflated`);
  console.log(`  wall: ${rs.map((x) => x.ms.toFixed(0)).join(" ")}`);
}
