// probe's benchmarks, all in one run so that ratios compare like with like (a uprobe hit costs
// ~0.7 µs here, but the machine's speed drifts between runs). Prints a table; `bun run bench`.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Lines, testCert } from "../tests/helpers.ts";
import { loadEmbedded } from "../lib/programs.ts";
import { attachUprobe, bestAttachMode } from "../lib/uprobe.ts";
import { openHostFile } from "../lib/proc/target.ts";
import { resolveFunction } from "../lib/symbols.ts";
import { RingBuffer } from "../lib/ringbuf.ts";
import { Scope } from "../lib/scope.ts";
import { UPROBE_CONFIG } from "../lib/layouts.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
const CALLS = Number(process.env.BENCH_CALLS ?? 2_000_000);
mkdirSync(WORK, { recursive: true });

const LOOP = join(WORK, "loop");
const build = Bun.spawnSync(["gcc", "-O0", "-o", LOOP, join(ROOT, "bench", "loop.c")], { stderr: "pipe" });
if (build.exitCode !== 0) throw new Error(`gcc failed: ${build.stderr}`);

const rows: [string, string, string][] = [];
function row(what: string, value: string, note = "") {
  rows.push([what, value, note]);
  console.error(`  ${what}: ${value} ${note}`);
}

/** Runs the loop; `attach(pid)` sets up tracing before the loop starts and returns a cleanup. */
async function loopNs(attach?: (pid: number) => Promise<() => Promise<void> | void>): Promise<number> {
  const p = Bun.spawn([LOOP, String(CALLS)], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(p.stdout);
  const [, pid] = await out.waitFor(/^ready (\d+)/);
  const cleanup = attach ? await attach(Number(pid)) : undefined;
  p.stdin.write("go\n");
  p.stdin.end();
  const [, ns] = await out.waitFor(/^([\d.]+) /, 120000);
  await p.exited;
  await cleanup?.();
  return Number(ns);
}

/** Starts dist/probe and resolves when it reports being attached. */
async function probeRun(args: string[], stdoutFile?: string) {
  const t0 = performance.now();
  const p = Bun.spawn([PROBE, ...args], { stdout: stdoutFile ? Bun.file(stdoutFile) : "ignore", stderr: "pipe" });
  const err = new Lines(p.stderr);
  await err.waitFor(/Ctrl-C/, 20000);
  return { p, err, attachMs: performance.now() - t0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function vmHwmKb(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

// --- TLS plaintext capture: sslsniff against its peers --------------------------------------------
// A client and a server SSL in one thread (tests/fixtures/tls/tls_loop.c): each iteration the server
// writes SIZE bytes and the client reads them with SSL_read. What a tracer adds per read shows whole
// in the time per iteration. Only reads are traced (--read): the cost per read, and the rate of
// plaintext captured into a file with nothing lost.
async function tlsCase(): Promise<void> {
  const READS = Number(process.env.BENCH_TLS_READS ?? 100_000);
  const loopBin = join(WORK, "tls_loop");
  const b = Bun.spawnSync(["gcc", "-O2", "-o", loopBin, join(ROOT, "tests", "fixtures", "tls", "tls_loop.c"), "-lssl", "-lcrypto"], { stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`gcc tls_loop failed (libssl-dev?): ${b.stderr}`);
  const { cert, key } = testCert();
  const LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

  /** ns per write+read iteration; `attach(pid)` sets a tracer up first and returns its cleanup. */
  async function tlsLoop(size: number, n: number, attach?: (pid: number) => Promise<() => Promise<string> | string>, mbPerS = 0): Promise<{ ns: number; note: string }> {
    const p = Bun.spawn([loopBin, cert, key, String(n), String(size), ...(mbPerS ? [String(mbPerS)] : [])], { stdin: "pipe", stdout: "pipe" });
    const out = new Lines(p.stdout);
    const [, pid] = await out.waitFor(/^ready (\d+)/);
    const cleanup = attach ? await attach(Number(pid)) : undefined;
    p.stdin.write("go\n");
    p.stdin.end();
    const [, ns] = await out.waitFor(/^([\d.]+) /, 600_000);
    await p.exited;
    return { ns: Number(ns), note: cleanup ? await cleanup() : "" };
  }

  /** sslsniff --read into a file; after the loop: the records and bytes written, and any loss or cut. */
  const sniff = (format: string[], file: string, size: number, n: number) => async (pid: number) => {
    const { p, err } = await probeRun(["sslsniff", "--pid", String(pid), "--read", ...format], file);
    return async () => {
      await p.exited; // the loop has exited: probe drains the ring and stops
      const e = (await err.done()).join("\n");
      const lost = /lost|cut \(flagged\)|not copied/.test(e) ? ` LOSS: ${e.split("\n").filter((l) => /lost|cut|not copied/.test(l)).join(" ")}` : "";
      const summary = /probe: (\d+) reads? \((\d+) bytes\)/.exec(e);
      const whole = summary && Number(summary[1]) === n && Number(summary[2]) === n * size;
      const bytes = Bun.file(file).size;
      rmSync(file, { force: true });
      return `${summary?.[1] ?? "?"} of ${n} reads captured${whole ? ", every byte" : " (NOT all)"}${lost || ", zero loss"}; ${(bytes / 1e6).toFixed(1)} MB written`;
    };
  };

  const bpftraceRun = (file: string) => async (pid: number) => {
    // bpftrace 0.17 keeps strings on the 512-byte BPF stack: buf() copies at most BPFTRACE_STRLEN = 200 bytes.
    const script = `BEGIN { printf("attached\\n"); } uprobe:${LIBSSL}:SSL_read /pid == ${pid}/ { @buf[tid] = arg1; } uretprobe:${LIBSSL}:SSL_read /pid == ${pid} && @buf[tid]/ { printf("%d %r\\n", retval, buf(@buf[tid], retval)); delete(@buf[tid]); }`;
    const p = Bun.spawn([Bun.which("bpftrace")!, "-e", script], { stdout: Bun.file(file), stderr: "pipe", env: { ...process.env, BPFTRACE_STRLEN: "200" } });
    const end = Date.now() + 60_000;
    while (!readFileSafe(file).includes("attached") && Date.now() < end) await Bun.sleep(50);
    return async () => {
      p.kill("SIGINT");
      await p.exited;
      const lines = readFileSafe(file).split("\n").filter((l) => /^\d+ /.test(l)).length;
      rmSync(file, { force: true });
      return `${lines} reads printed, 200 of each 1024 bytes (bpftrace 0.17's buf() limit)`;
    };
  };

  // bcc's sslsniff compiles its program at start against the running kernel's headers.
  let bccWhy = "not installed (apt-get install bpfcc-tools)";
  const bcc = Bun.which("sslsniff-bpfcc");
  if (bcc) {
    const r = Bun.spawnSync([bcc, "-p", "1"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    const text = `${r.stdout}${r.stderr}`;
    bccWhy = /kernel headers/i.test(text) ? `cannot run here: no headers for kernel ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()} (/lib/modules/*/build missing, no CONFIG_IKHEADERS), which bcc compiles against` : `did not start: ${text.trim().split("\n").slice(-1)[0]}`;
  }

  const base: number[] = [];
  const sniffed: number[] = [];
  const peer: number[] = [];
  let sniffNote = "";
  let peerNote = "";
  const btAvailable = !!Bun.which("bpftrace");
  for (let i = 0; i < 3; i++) {
    base.push((await tlsLoop(1024, READS)).ns);
    const s = await tlsLoop(1024, READS, sniff(["--json"], join(WORK, "sniff.json"), 1024, READS));
    sniffed.push(s.ns);
    sniffNote = s.note;
    if (btAvailable) {
      const t = await tlsLoop(1024, READS, bpftraceRun(join(WORK, "bpftrace.out")));
      peer.push(t.ns);
      peerNote = t.note;
    }
  }
  const b0 = median(base);
  row("TLS: 1 KiB SSL_write + SSL_read, no tracer", `${b0.toFixed(0)} ns/iteration`, `median of 3, ${READS} iterations each`);
  const s0 = median(sniffed);
  row("TLS: sslsniff --read --json to a file", `+${(s0 - b0).toFixed(0)} ns per 1 KiB read`, `${sniffNote}; median of 3`);
  if (btAvailable) {
    const p0 = median(peer);
    row("TLS: bpftrace buf() printf to a file (peer)", `+${(p0 - b0).toFixed(0)} ns per 1 KiB read`, `${peerNote}; sslsniff costs ${((s0 - b0) / (p0 - b0)).toFixed(2)}x the peer [target < 1]`);
  } else row("TLS: bpftrace (peer)", "not installed", "apt-get install bpftrace");
  row("TLS: bcc sslsniff-bpfcc (peer)", "-", bccWhy);

  // The rate of plaintext captured into a file with nothing lost: 16 KiB reads at a set pace,
  // doubled from 25 MB/s until something is lost (or the loop cannot go faster), ~2 s each.
  for (const [what, fmt, file] of [["--json", ["--json"], "rate.json"], ["text", [] as string[], "rate.txt"]] as const) {
    let best = 0;
    let bestNote = "";
    let lastNote = "";
    for (let rate = 25; rate <= 3200; rate *= 2) {
      const n = Math.ceil((rate * 2e6) / 16384);
      const r = await tlsLoop(16384, n, sniff([...fmt], join(WORK, file), 16384, n), rate);
      const achieved = (16384 / r.ns) * 1e3;
      lastNote = `${rate} MB/s asked, ${achieved.toFixed(0)} MB/s ran: ${r.note}`;
      if (!/zero loss/.test(r.note) || !/every byte/.test(r.note)) break;
      best = achieved;
      bestNote = r.note;
      if (achieved < rate * 0.9) break; // the loop itself (with the probe's cost) goes no faster
    }
    row(`TLS: sslsniff ${what} to a file, 16 KiB reads`, `${best.toFixed(0)} MB/s`, `highest zero-loss rate tried (${bestNote}); next: ${lastNote}`);
  }
}

function readFileSafe(f: string): string {
  try {
    return readFileSync(f, "utf8");
  } catch {
    return "";
  }
}

function printTable(): void {
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  console.log(`\n${"measure".padEnd(w[0]!)}  ${"value".padEnd(w[1]!)}  note`);
  console.log(`${"-".repeat(w[0]!)}  ${"-".repeat(w[1]!)}  ----`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0]!)}  ${b.padEnd(w[1]!)}  ${c}`);
}

// BENCH_ONLY=tls: just the TLS case.
if (process.env.BENCH_ONLY === "tls") {
  await tlsCase();
  printTable();
  process.exit(0);
}

console.error(`probe benchmarks: ${CALLS} calls of a push-first function per case, ${bestAttachMode()} attach mode`);

// --- per-call overhead -------------------------------------------------------------------------
const base = await loopNs();
row("no probe (baseline)", `${base.toFixed(1)} ns/call`);

// (a) and (b) alternate three times and report medians: the VM's speed drifts by several percent
// between runs, as much as the difference being measured.
const emptyProbe = (pid: number) => {
  const scope = new Scope();
  const mode = bestAttachMode();
  const obj = scope.add(loadEmbedded("uprobe", mode, new Uint8Array(UPROBE_CONFIG.size), ["probe_empty"]));
  const t = scope.add(openHostFile(LOOP));
  scope.add(attachUprobe(obj.progFd("probe_empty"), t.kernelPath, [{ offset: resolveFunction(t.elf, "bench_fn").offset, cookie: 0n }], { retprobe: false, pid, mode }));
  return Promise.resolve(() => scope.close());
};
const countingProbe = async (pid: number) => {
  const { p } = await probeRun(["uprobe", LOOP, "bench_fn", "--pid", String(pid), "--summary", "-i", "100"]);
  return async () => {
    p.kill("SIGINT");
    await p.exited;
  };
};
const emptyRuns: number[] = [];
const countingRuns: number[] = [];
for (let i = 0; i < 3; i++) {
  emptyRuns.push(await loopNs(emptyProbe));
  countingRuns.push(await loopNs(countingProbe));
}
const empty = median(emptyRuns);
const counting = median(countingRuns);
row("(a) empty BPF program", `${empty.toFixed(1)} ns/call`, `${(empty / base).toFixed(1)}x baseline; median of 3`);
row("(b) probe counting (--summary)", `${counting.toFixed(1)} ns/call`, `${(counting / empty).toFixed(3)}x (a) [target <= 1.10x]; median of 3, interleaved with (a)`);

const entryRet = await loopNs(async (pid) => {
  const { p } = await probeRun(["uprobe", LOOP, "bench_fn", "--pid", String(pid), "--summary", "--ret", "-i", "100"]);
  return async () => {
    p.kill("SIGINT");
    await p.exited;
  };
});
row("(c) entry+return counting (--ret --summary)", `${entryRet.toFixed(1)} ns/call`, `${(entryRet / empty).toFixed(2)}x (a)`);

const jsonFile = join(WORK, "events.json");
let rss = 0;
let lost = "";
const stream = await loopNs(async (pid) => {
  const { p, err } = await probeRun(["uprobe", LOOP, "bench_fn", "--pid", String(pid), "--ret", "--json"], jsonFile);
  const sampler = setInterval(() => {
    try {
      rss = Math.max(rss, vmHwmKb(p.pid));
    } catch {}
  }, 100);
  return async () => {
    // The loop has exited: probe drains the ring buffer and stops on its own.
    await p.exited;
    clearInterval(sampler);
    lost = (await err.done()).filter((l) => /lost/.test(l)).join(" ");
  };
});
const lines = Number(Bun.spawnSync(["wc", "-l", jsonFile], { stdout: "pipe" }).stdout.toString().trim().split(" ")[0]);
row("(d) full event stream, --ret --json to a file", `${stream.toFixed(1)} ns/call`, `${(stream / entryRet).toFixed(2)}x (c) [target <= 1.5x]; ${lines} of ${2 * CALLS} events written${lost ? `; ${lost}` : ", zero loss"}`);
row("peak RSS during (d)", `${(rss / 1024).toFixed(1)} MB`, "[target < 40 MB]");
rmSync(jsonFile, { force: true });

// --- ring buffer consumption ------------------------------------------------------------------
{
  // Fill the ring buffer from the kernel without consuming, then time one drain of it in JS.
  const scope = new Scope();
  const mode = bestAttachMode();
  const cfg = new Uint8Array(UPROBE_CONFIG.size);
  new DataView(cfg.buffer).setUint8(UPROBE_CONFIG.emit_events, 1);
  const obj = scope.add(loadEmbedded("uprobe", mode, cfg, ["probe_entry"]));
  const t = scope.add(openHostFile(LOOP));
  const rb = scope.add(new RingBuffer(obj.mapFd("events")));
  let total = 0;
  let ns = 0;
  for (let round = 0; round < 5; round++) {
    await loopNs(async (pid) => {
      const link = attachUprobe(obj.progFd("probe_entry"), t.kernelPath, [{ offset: resolveFunction(t.elf, "bench_fn").offset, cookie: 0n }], { retprobe: false, pid, mode });
      return () => link.close();
    }).catch(() => 0);
    let sink = 0;
    const t0 = Bun.nanoseconds();
    const n = rb.consume((v, off) => {
      sink += v.getUint32(off + 4, true) + v.getUint32(off + 8, true);
    });
    ns += Bun.nanoseconds() - t0;
    total += n;
    if (sink < 0) console.log(sink);
  }
  scope.close();
  row("ring buffer drain (mmap, parse pid/tid per record)", `${((total / ns) * 1e3).toFixed(2)} M records/s`, `${(ns / total).toFixed(1)} ns CPU per record over ${total} records [target >= 1 M/s at < 50 ns]`);
}

// --- start and stop -------------------------------------------------------------------------
{
  const target = Bun.spawn([LOOP, "1"], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(target.stdout);
  const [, pid] = await out.waitFor(/^ready (\d+)/);
  const attach: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { p, attachMs } = await probeRun(["uprobe", LOOP, "bench_fn", "--pid", pid!, "--ret"]);
    attach.push(attachMs);
    p.kill("SIGINT");
    await p.exited;
  }
  row("probe start to probes attached (uprobe --ret)", `${median(attach).toFixed(1)} ms`, "median of 10 [target <= 40 ms]");
  target.kill();

  for (const mode of ["multi", "perf"]) {
    const exits: number[] = [];
    for (let i = 0; i < 5; i++) {
      // ssl-read attaches 4 probes: SSL_read and SSL_read_ex, entry and return.
      const { p } = await probeRun(["ssl-read", "--attach-mode", mode]);
      const t0 = performance.now();
      p.kill("SIGINT");
      await p.exited;
      exits.push(performance.now() - t0);
    }
    row(`SIGINT to exit, 4 probes, ${mode === "multi" ? "2 uprobe_multi links" : "4 perf-event uprobes"}`, `${median(exits).toFixed(1)} ms`, "median of 5 [target <= 100 ms]");
  }
}

// --- bpftrace beside us, where installed ------------------------------------------------------
const bpftrace = Bun.which("bpftrace");
if (bpftrace) {
  const bt = await loopNs(async (pid) => {
    const p = Bun.spawn([bpftrace, "-p", String(pid), "-e", `uprobe:${LOOP}:bench_fn { @[pid] = count(); }`], { stdout: "pipe", stderr: "pipe" });
    const o = new Lines(p.stdout);
    await o.waitFor(/Attaching/, 30000);
    await Bun.sleep(1500); // "Attaching" is printed before the probes are in place
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  });
  row("bpftrace @[pid] = count()", `${bt.toFixed(1)} ns/call`, `${(bt / empty).toFixed(3)}x (a)`);
  const btPrintf = await loopNs(async (pid) => {
    const script = `uprobe:${LOOP}:bench_fn { printf("call %d %d %d\\n", pid, tid, arg0); } uretprobe:${LOOP}:bench_fn { printf("ret %d %d %d\\n", pid, tid, retval); }`;
    const p = Bun.spawn([bpftrace, "-p", String(pid), "-e", script], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
    await Bun.sleep(1500); // bpftrace says "Attaching" on stdout, which goes to /dev/null here
    return async () => {
      p.kill("SIGINT");
      await p.exited;
    };
  });
  row("bpftrace printf per call and return (to /dev/null)", `${btPrintf.toFixed(1)} ns/call`, `${(btPrintf / stream).toFixed(2)}x probe's (d)`);
} else {
  row("bpftrace", "not installed", "(apt-get install bpftrace to compare in the same run)");
}

await tlsCase();

printTable();
