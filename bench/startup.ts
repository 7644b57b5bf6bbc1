// Start-up and memory against the floor: how long probe takes from exec to its probes attached,
// and how much memory it holds, beside a libbpf C loader doing the same job (bench/floor.c, the
// floor), bpftrace, and a bare compiled Bun program (what Bun itself costs) — all in one run, cases
// interleaved, medians of 10, so that the ratios compare like with like on a noisy machine.
// Part of `bun run bench` (bench/run.ts); `bun bench/startup.ts` runs it alone (BENCH_MD=1 also
// prints the README's table).
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Lines } from "../tests/helpers.ts";
import { kernelView } from "../lib/kernel-view.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
/** probe's plain uprobe object, as build.ts compiled it (the floor loads the same bytes). */
const UPROBE_OBJ = join(ROOT, "bpf", ".out", "uprobe.bpf.o");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const STREAM_CALLS = Number(process.env.BENCH_STREAM_CALLS ?? 2_000_000);
/**
 * The sizes probe gives the object's maps for `uprobe --ret` on one process (src/commands/uprobe.ts,
 * src/session.ts): the floor's second row does the same, so that the two differ only in what runs
 * them. The first row keeps the sizes the object declares, as a plain libbpf loader would.
 */
const PROBE_SIZES = ["counts", "stack_counts", "proc_hists", "filter_tgids", "filter_pidns", "filter_pending"].flatMap((m) => ["--size", `${m}=1`]).concat(["--ring", String(2 << 20)]);

type Row = (what: string, value: string, note?: string) => void;

function run(argv: string[], what: string): void {
  const r = Bun.spawnSync(argv, { stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what} failed (${argv.join(" ")}):\n${r.stderr}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function spread(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0]!.toFixed(0)}-${s.at(-1)!.toFixed(0)}`;
}

/** What the bench builds: the floor, the loop target, a BPF object for `probe load`, a bare Bun program. */
function buildAll(): { floor: string; loop: string; userObj: string; bareBun: string } {
  mkdirSync(WORK, { recursive: true });
  if (!existsSync(UPROBE_OBJ)) throw new Error(`${UPROBE_OBJ} is missing: run 'bun run build' first`);
  const floor = join(WORK, "floor");
  run([process.env.CC ?? "cc", "-O2", "-Wall", "-o", floor, join(ROOT, "bench", "floor.c"), "-lbpf", "-lelf"], "building bench/floor.c (gcc, libbpf-dev, libelf-dev)");
  const loop = join(WORK, "loop");
  run(["gcc", "-O0", "-o", loop, join(ROOT, "bench", "loop.c")], "building bench/loop.c");
  // An object like a user's: the SSL_read counter of tests/fixtures/bpf, attached by --attach.
  const userObj = join(WORK, "ssl_count.bpf.o");
  run(["clang", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu", "-c", join(ROOT, "tests", "fixtures", "bpf", "ssl_count.bpf.c"), "-o", userObj], "clang ssl_count.bpf.c");
  // Bun's own cost: an empty script compiled the way build.ts compiles probe.
  const bareBun = join(WORK, "bare-bun");
  const empty = join(WORK, "empty.ts");
  writeFileSync(empty, "");
  run(["bun", "build", "--compile", "--minify", "--bytecode", "--sourcemap=none", empty, "--outfile", bareBun], "bun build --compile of an empty script");
  return { floor, loop, userObj, bareBun };
}

/** A process that waits on stdin ("ready PID" first): the loop, as a target to attach to. */
async function startLoop(loop: string, calls: number) {
  const p = Bun.spawn([loop, String(calls)], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(p.stdout);
  const [, pid] = await out.waitFor(/^ready (\d+)/);
  return {
    p,
    pid: Number(pid),
    out,
    /** Lets it run its calls; resolves with ns per call once it is done. */
    go: async () => {
      p.stdin.write("go\n");
      p.stdin.end();
      const [, ns] = await out.waitFor(/^([\d.]+) /, 300_000);
      await p.exited;
      return Number(ns);
    },
  };
}

/** A process with OpenSSL's libssl mapped, waiting: `openssl dgst` reading a pipe nobody writes. */
async function startSslProcess(): Promise<{ pid: number; stop: () => void }> {
  const p = Bun.spawn(["openssl", "dgst"], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  for (let i = 0; i < 200; i++) {
    try {
      if (readFileSync(`/proc/${p.pid}/maps`, "utf8").includes("libssl.so")) return { pid: p.pid, stop: () => p.kill() };
    } catch {}
    await Bun.sleep(10);
  }
  p.kill();
  throw new Error("openssl dgst never mapped libssl (is the openssl command OpenSSL 3?)");
}

interface Case {
  name: string;
  argv: string[];
  /** Which stream says "attached", and the line that says it. */
  stream: "stdout" | "stderr";
  ready: RegExp;
}

/** ms from spawn to the case's "attached" line; the process is stopped (SIGINT) afterwards. */
async function timeToAttached(c: Case): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(c.argv, { stdout: c.stream === "stdout" ? "pipe" : "ignore", stderr: c.stream === "stderr" ? "pipe" : "ignore", stdin: "ignore" });
  const lines = new Lines(c.stream === "stdout" ? (p.stdout as ReadableStream<Uint8Array>) : (p.stderr as ReadableStream<Uint8Array>));
  try {
    await lines.waitFor(c.ready, 30_000);
  } catch (e) {
    p.kill("SIGKILL");
    throw new Error(`${c.name}: no ${c.ready} within 30 s: ${(e as Error).message}\n${lines.all.join("\n")}`);
  }
  const ms = performance.now() - t0;
  await stop(p);
  return ms;
}

/** SIGINT, and SIGKILL if that is not enough within 5 s (bpftrace sometimes misses a SIGINT that comes right after BEGIN). */
async function stop(p: ReturnType<typeof Bun.spawn>): Promise<void> {
  p.kill("SIGINT");
  const t = setTimeout(() => p.kill("SIGKILL"), 5000);
  await p.exited;
  clearTimeout(t);
}

/** ms from spawn to exit. */
async function timeToExit(argv: string[]): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(argv, { stdout: "ignore", stderr: "ignore" });
  await p.exited;
  return performance.now() - t0;
}

/** Peak resident memory so far (VmHWM), and the private part of what is resident now (RssAnon: heap, JIT code, buffers read), KB. */
function memoryKb(pid: number): { hwm: number; anon: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { hwm: kb("VmHWM"), anon: kb("RssAnon") };
  } catch {
    return { hwm: 0, anon: 0 };
  }
}

/**
 * Resolves once `pid` holds `n` uprobes on `path` as the kernel lists them: for bpftrace writing
 * to a file, whose "attached" line waits in its output buffer.
 */
async function uprobesHeld(pid: number, path: string, n: number, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const v = kernelView();
    const held = v.perfEvents.filter((e) => e.pid === pid && e.path === path).length + v.links.filter((l) => l.uprobe?.path === path && l.holders.some((h) => h.pid === pid)).length;
    if (held >= n) return;
    if (Date.now() > end) throw new Error(`pid ${pid} did not attach ${n} uprobes on ${path} within ${ms} ms`);
    await Bun.sleep(20);
  }
}

const GNU_TIME = ["/usr/bin/time"].find((p) => existsSync(p));

/**
 * Runs `argv` under GNU time; its maxrss (the kernel's peak RSS of the process, in KB) is read
 * from `file` after it exits. (Bun's Subprocess.resourceUsage().maxRSS is the largest of all the
 * children so far, not this one's.)
 */
function timed(argv: string[], file: string): string[] {
  if (!GNU_TIME) throw new Error("GNU time is needed for peak RSS: apt-get install time");
  return [GNU_TIME, "-f", "%M", "-o", file, ...argv];
}

function maxRssMb(file: string): number {
  const kb = Number(readFileSync(file, "utf8").trim().split("\n").pop());
  rmSync(file, { force: true });
  return kb / 1024;
}

/** The process GNU time started (its only child). */
async function childOf(pid: number): Promise<number> {
  for (let i = 0; i < 500; i++) {
    try {
      const c = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      if (c) return Number(c.split(" ")[0]);
    } catch {}
    await Bun.sleep(2);
  }
  throw new Error(`pid ${pid} started no child`);
}

/**
 * Peak RSS (MB) of a tracer while the loop makes its calls, its records written to a file: the
 * kernel's maxrss at its exit (GNU time), and VmHWM sampled while it runs (reported when larger).
 * `anonMb`: the largest private (anonymous) part sampled; the rest is file pages, mostly of the
 * executable (clean, shared with the page cache and with other processes running it).
 * `argv(pid)` starts it on the loop; `ready` on its stderr says attached, or the kernel shows
 * `uprobes` it holds.
 */
async function peakRss(loop: string, c: { argv: (pid: number) => string[]; ready?: RegExp; uprobes?: number }): Promise<{ mb: number; anonMb: number; events: number }> {
  const target = await startLoop(loop, STREAM_CALLS);
  const outFile = join(WORK, "startup-stream.out");
  const rssFile = join(WORK, "startup-rss.txt");
  rmSync(outFile, { force: true });
  const p = Bun.spawn(timed(c.argv(target.pid), rssFile), { stdout: Bun.file(outFile), stderr: c.ready ? "pipe" : "ignore" });
  const tracer = await childOf(p.pid);
  if (c.ready) await new Lines(p.stderr as ReadableStream<Uint8Array>).waitFor(c.ready, 30_000);
  else await uprobesHeld(tracer, loop, c.uprobes ?? 1);
  let hwm = 0;
  let anon = 0;
  const sample = () => {
    const m = memoryKb(tracer);
    hwm = Math.max(hwm, m.hwm);
    anon = Math.max(anon, m.anon);
  };
  sample();
  const sampler = setInterval(sample, 20);
  await target.go();
  // probe and the floor stop when the traced process exits; bpftrace is told to.
  const stopper = setTimeout(() => process.kill(tracer, "SIGINT"), 1500);
  await p.exited;
  clearTimeout(stopper);
  clearInterval(sampler);
  const mb = Math.max(hwm / 1024, maxRssMb(rssFile));
  const events = Number(Bun.spawnSync(["wc", "-l", outFile], { stdout: "pipe" }).stdout.toString().trim().split(" ")[0]);
  rmSync(outFile, { force: true });
  return { mb, anonMb: anon / 1024, events };
}

export interface StartupResults {
  attach: Record<string, number[]>;
  rss: Record<string, number>;
  /** The private (anonymous) part of each peak, where sampled. */
  anon: Record<string, number>;
  versionMs: number;
  bareBunMs: number;
  binaryMb: number;
}

export async function startupBench(row: Row): Promise<StartupResults> {
  const { floor, loop, userObj, bareBun } = buildAll();
  const bpftrace = Bun.which("bpftrace");

  // --- start to attached ---------------------------------------------------------------------------
  const target = await startLoop(loop, 1);
  const ssl = await startSslProcess();
  const pid = String(target.pid);
  const cases: Case[] = [
    { name: "floor", argv: [floor, UPROBE_OBJ, loop, "bench_fn", pid], stream: "stderr", ready: /^attached/ },
    { name: "floor, sized", argv: [floor, UPROBE_OBJ, loop, "bench_fn", pid, ...PROBE_SIZES], stream: "stderr", ready: /^attached/ },
    { name: "uprobe --ret", argv: [PROBE, "uprobe", loop, "bench_fn", "--ret", "--pid", pid], stream: "stderr", ready: /Ctrl-C/ },
    { name: "ssl-read", argv: [PROBE, "ssl-read", "--pid", String(ssl.pid)], stream: "stderr", ready: /Ctrl-C/ },
    {
      name: "load",
      argv: [PROBE, "load", userObj, "--attach", `entry_ssl_read=uprobe:${loop}:bench_fn`, "--attach", `ret_ssl_read=uretprobe:${loop}:bench_fn`, "--pid", pid],
      stream: "stderr",
      ready: /Ctrl-C/,
    },
  ];
  // bpftrace runs BEGIN once every probe is attached; -B none: its stdout is a pipe here.
  if (bpftrace) cases.push({ name: "bpftrace", argv: [bpftrace, "-B", "none", "-p", pid, "-e", `BEGIN { printf("attached\\n"); } uprobe:${loop}:bench_fn {} uretprobe:${loop}:bench_fn {}`], stream: "stdout", ready: /^attached/ });
  const attach: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.name, []]));
  const version: number[] = [];
  const bare: number[] = [];
  try {
    for (const c of cases) await timeToAttached(c); // warm the page cache
    for (let i = 0; i < ROUNDS; i++) {
      for (const c of cases) attach[c.name]!.push(await timeToAttached(c));
      version.push(await timeToExit([PROBE, "--version"]));
      bare.push(await timeToExit([bareBun]));
    }
  } finally {
    target.p.kill();
    ssl.stop();
  }
  const floorMs = median(attach.floor!);
  const sizedMs = median(attach["floor, sized"]!);
  row("start to attached: floor (C, libbpf, same object)", `${floorMs.toFixed(1)} ms`, `median of ${ROUNDS} (${spread(attach.floor!)}), interleaved with the rows below`);
  row("  floor, maps sized as probe sizes them", `${sizedMs.toFixed(1)} ms`, `${spread(attach["floor, sized"]!)}`);
  for (const c of cases.slice(2)) {
    const ms = median(attach[c.name]!);
    const target = c.name === "bpftrace" ? "" : " [target <= 1.5x]";
    row(`  ${c.name === "bpftrace" ? "bpftrace uprobe+uretprobe, BEGIN printed" : `probe ${c.name}`}`, `${ms.toFixed(1)} ms`, `${(ms / floorMs).toFixed(2)}x the floor${target}, ${(ms / sizedMs).toFixed(2)}x the sized floor; ${spread(attach[c.name]!)}`);
  }
  const versionMs = median(version);
  const bareBunMs = median(bare);
  row("probe --version, spawn to exit", `${versionMs.toFixed(1)} ms`, `median of ${ROUNDS}; a bare compiled Bun program: ${bareBunMs.toFixed(1)} ms`);
  const binaryMb = statSync(PROBE).size / 1e6;
  row("dist/probe size", `${binaryMb.toFixed(1)} MB`, `a bare compiled Bun program: ${(statSync(bareBun).size / 1e6).toFixed(1)} MB`);

  // --- peak memory -----------------------------------------------------------------------------------
  const rss: Record<string, number> = {};
  const anon: Record<string, number> = {};
  const bunRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    const file = join(WORK, "startup-rss.txt");
    await Bun.spawn(timed([bareBun], file), { stdout: "ignore" }).exited;
    bunRuns.push(maxRssMb(file));
  }
  rss.bun = median(bunRuns);
  row("peak RSS: a bare compiled Bun program (empty script)", `${rss.bun.toFixed(1)} MB`, "what Bun itself costs");
  const stream = await peakRss(loop, { argv: (p) => [PROBE, "uprobe", loop, "bench_fn", "--ret", "--json", "--pid", String(p)], ready: /Ctrl-C/ });
  rss.stream = stream.mb;
  anon.stream = stream.anonMb;
  // The floor with probe's ring size: its pages count once read, in either.
  const floorStream = await peakRss(loop, { argv: (p) => [floor, UPROBE_OBJ, loop, "bench_fn", String(p), "--drain", ...PROBE_SIZES], ready: /^attached/ });
  rss.floorStream = floorStream.mb;
  anon.floorStream = floorStream.anonMb;
  row("peak RSS: probe uprobe --ret --json (full stream to a file)", `${stream.mb.toFixed(1)} MB`, `${(stream.mb / floorStream.mb).toFixed(1)}x the floor [target <= 40 MB]; private ${stream.anonMb.toFixed(1)} MB, the rest file pages; ${stream.events} of ${2 * STREAM_CALLS} events written`);
  row("  floor, the same stream (ring buffer read with libbpf, printf)", `${floorStream.mb.toFixed(1)} MB`, `private ${floorStream.anonMb.toFixed(1)} MB; ${floorStream.events} of ${2 * STREAM_CALLS} events`);
  const summary = await peakRss(loop, { argv: (p) => [PROBE, "uprobe", loop, "bench_fn", "--ret", "--summary", "--pid", String(p)], ready: /Ctrl-C/ });
  rss.summary = summary.mb;
  anon.summary = summary.anonMb;
  const floorSummary = await peakRss(loop, { argv: (p) => [floor, UPROBE_OBJ, loop, "bench_fn", String(p), "--summary", "--ring", "4096"], ready: /^attached/ });
  rss.floorSummary = floorSummary.mb;
  anon.floorSummary = floorSummary.anonMb;
  row("peak RSS: probe uprobe --ret --summary", `${summary.mb.toFixed(1)} MB`, `${(summary.mb / floorSummary.mb).toFixed(1)}x the floor [target <= 30 MB]; private ${summary.anonMb.toFixed(1)} MB`);
  row("  floor, counting (the --summary config)", `${floorSummary.mb.toFixed(1)} MB`, `private ${floorSummary.anonMb.toFixed(1)} MB`);
  if (bpftrace) {
    const script = `uprobe:${loop}:bench_fn { printf("call %d %d %d\\n", pid, tid, arg0); } uretprobe:${loop}:bench_fn { printf("ret %d %d %d\\n", pid, tid, retval); }`;
    const bt = await peakRss(loop, { argv: (p) => [bpftrace, "-p", String(p), "-e", script], uprobes: 2 });
    rss.bpftraceStream = bt.mb;
    anon.bpftraceStream = bt.anonMb;
    row("  bpftrace printf per call and return", `${bt.mb.toFixed(1)} MB`, `private ${bt.anonMb.toFixed(1)} MB; ${bt.events} of ${2 * STREAM_CALLS} events`);
    const btc = await peakRss(loop, { argv: (p) => [bpftrace, "-p", String(p), "-e", `uprobe:${loop}:bench_fn { @[pid] = count(); } uretprobe:${loop}:bench_fn { @r[pid] = count(); }`], uprobes: 2 });
    rss.bpftraceCount = btc.mb;
    anon.bpftraceCount = btc.anonMb;
    row("  bpftrace count() per call and return", `${btc.mb.toFixed(1)} MB`, `private ${btc.anonMb.toFixed(1)} MB (the --summary job)`);
  }
  return { attach, rss, anon, versionMs, bareBunMs, binaryMb };
}

/** The README's table (Benchmarks: start-up and memory) from one run. */
export function markdownTable(r: StartupResults): string {
  const f = median(r.attach.floor!);
  const ms = (n: string) => (r.attach[n] ? `${median(r.attach[n]!).toFixed(0)} ms (${(median(r.attach[n]!) / f).toFixed(2)}x; ${spread(r.attach[n]!)})` : "-");
  const mb = (n: string) => (r.rss[n] !== undefined ? `${r.rss[n]!.toFixed(0)} MB${r.anon[n] !== undefined ? ` (${r.anon[n]!.toFixed(0)} private)` : ""}` : "-");
  return [
    `| | start to attached, median of ${r.attach.floor!.length} [target <= 1.5x the floor] | peak RSS, \`--ret --json\` stream [target <= 40 MB] | peak RSS, \`--summary\` [target <= 30 MB] |`,
    "|---|---|---|---|",
    `| floor: C, libbpf, same object | ${f.toFixed(0)} ms (1x; ${spread(r.attach.floor!)}) | ${mb("floorStream")} | ${mb("floorSummary")} |`,
    `| floor, maps sized as probe sizes them | ${ms("floor, sized")} | | |`,
    `| probe uprobe --ret | ${ms("uprobe --ret")} | ${mb("stream")} | ${mb("summary")} |`,
    `| probe ssl-read | ${ms("ssl-read")} | | |`,
    `| probe load OBJ | ${ms("load")} | | |`,
    `| bpftrace | ${ms("bpftrace")} | ${mb("bpftraceStream")} (printf) | ${mb("bpftraceCount")} (count()) |`,
    `| bare compiled Bun (empty script) | ${r.bareBunMs.toFixed(0)} ms to exit | ${mb("bun")} | ${mb("bun")} |`,
    "",
    `\`probe --version\`: ${r.versionMs.toFixed(0)} ms; dist/probe: ${r.binaryMb.toFixed(0)} MB.`,
  ].join("\n");
}

if (import.meta.main) {
  const rows: [string, string, string][] = [];
  const r = await startupBench((a, b, c = "") => {
    rows.push([a, b, c]);
    console.error(`  ${a}: ${b} ${c}`);
  });
  const w = [Math.max(...rows.map((x) => x[0].length)), Math.max(...rows.map((x) => x[1].length))];
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0]!)}  ${b.padEnd(w[1]!)}  ${c}`);
  if (process.env.BENCH_MD) console.log(`\n${markdownTable(r)}`);
}
