// The TLS case of the benchmarks: what `probe sslsniff` adds to a TLS read, against bpftrace's
// buf() capture (bcc's sslsniff-bpfcc when it runs here), and the rate of plaintext it captures
// into a file with nothing lost. Part of `bun run bench` (bench/run.ts); `bun bench/tls.ts` runs
// this case alone.
import { join } from "node:path";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Lines, testCert } from "../tests/helpers.ts";
import { runAlone, median, type Row } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
mkdirSync(WORK, { recursive: true });

/** Starts dist/probe (stdout to `stdoutFile`) and resolves when it reports being attached. */
async function probeRun(args: string[], stdoutFile: string) {
  const p = Bun.spawn([PROBE, ...args], { stdout: Bun.file(stdoutFile), stderr: "pipe" });
  const err = new Lines(p.stderr);
  await err.waitFor(/Ctrl-C/, 30_000);
  return { p, err };
}

// A client and a server SSL in one thread (bench/tls_loop.c): each iteration the server
// writes SIZE bytes and the client reads them with SSL_read. What a tracer adds per read shows whole
// in the time per iteration. Only reads are traced (--read): the cost per read, and the rate of
// plaintext captured into a file with nothing lost.
export async function tlsBench(row: Row): Promise<void> {
  const READS = Number(process.env.BENCH_TLS_READS ?? 100_000);
  const loopBin = join(WORK, "tls_loop");
  const b = Bun.spawnSync(["gcc", "-O2", "-o", loopBin, join(ROOT, "bench", "tls_loop.c"), "-lssl", "-lcrypto"], { stderr: "pipe" });
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

  /** sslsniff --read into a file; after the loop: the reads and bytes captured, and what was lost. */
  const sniff = (format: string[], file: string, size: number, n: number) => async (pid: number) => {
    const { p, err } = await probeRun(["sslsniff", "--pid", String(pid), "--read", ...format], file);
    return async () => {
      await p.exited; // the loop has exited: probe drains the ring and stops
      const e = (await err.done()).join("\n");
      const summary = /probe: (\d+) reads? \((\d+) bytes\)/.exec(e);
      const whole = summary && Number(summary[1]) === n && Number(summary[2]) === n * size;
      // Losses: warnings on stderr, or {"event":"lost"} lines in the JSON output.
      const lost: Record<string, number> = {};
      for (const m of e.matchAll(/(\d+) (records lost|bytes not copied)/g)) lost[m[2]!.split(" ")[0]!] = Number(m[1]);
      for (const m of readFileSafe(file).matchAll(/^\{"event":"lost","kind":"(\w+)","count":\d+,"total":(\d+)/gm)) lost[m[1]!] = Number(m[2]);
      const loss = Object.entries(lost).map(([k, v]) => `${v} ${k}`).join(", ");
      const bytes = Bun.file(file).size;
      rmSync(file, { force: true });
      return `${summary?.[1] ?? "?"} of ${n} reads captured${whole ? ", every byte" : ""}${loss ? `, LOST: ${loss}` : ", zero loss"}; ${(bytes / 1e6).toFixed(1)} MB written`;
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
  // The programs' own part of a read, from the kernel's run-time statistics: sslsniff on the
  // library (not --pid: it must outlive the loop to be asked), the loop under it.
  const programNs = await programCost(tlsLoop, LIBSSL, READS);
  const b0 = median(base);
  row("TLS: 1 KiB SSL_write + SSL_read, no tracer", `${b0.toFixed(0)} ns/iteration`, `median of 3, ${READS} iterations each`);
  const s0 = median(sniffed);
  row("TLS: sslsniff --read --json to a file", `+${(s0 - b0).toFixed(0)} ns per 1 KiB read`, `${sniffNote}; median of 3`);
  if (btAvailable) {
    const p0 = median(peer);
    row("TLS: bpftrace buf() printf to a file (peer)", `+${(p0 - b0).toFixed(0)} ns per 1 KiB read`, `${peerNote}; sslsniff costs ${((s0 - b0) / (p0 - b0)).toFixed(2)}x the peer [target < 1]`);
  } else row("TLS: bpftrace (peer)", "not installed", "apt-get install bpftrace");
  row("TLS: bcc sslsniff-bpfcc (peer)", "-", bccWhy);
  row("TLS: sslsniff's programs per 1 KiB read, in the kernel", programNs, "entry + return program run time (kernel.bpf_stats_enabled); the uprobe and uretprobe come on top");

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

type Loop = (size: number, n: number, attach?: (pid: number) => Promise<() => Promise<string> | string>) => Promise<{ ns: number; note: string }>;

/** Mean run time of sslsniff's entry and return programs over a loop of 1 KiB reads. */
async function programCost(tlsLoop: Loop, lib: string, n: number): Promise<string> {
  const sysctl = "/proc/sys/kernel/bpf_stats_enabled";
  const was = readFileSafe(sysctl).trim() || "0";
  writeFileSync(sysctl, "1");
  try {
    let result = "";
    await tlsLoop(1024, n, async () => {
      const { p } = await probeRun(["sslsniff", "--lib", lib, "--read", "--json"], "/dev/null");
      return async () => {
        const progs = JSON.parse(Bun.spawnSync(["bpftool", "prog", "show", "--json"], { stdout: "pipe" }).stdout.toString() || "[]") as { name?: string; run_cnt?: number; run_time_ns?: number }[];
        const per = (name: string) => {
          const x = progs.find((q) => q.name === name && q.run_cnt);
          return x ? x.run_time_ns! / x.run_cnt! : NaN;
        };
        result = `${per("sniff_entry").toFixed(0)} + ${per("sniff_return").toFixed(0)} ns`;
        p.kill("SIGINT");
        await p.exited;
        return "";
      };
    });
    return result;
  } finally {
    writeFileSync(sysctl, was);
  }
}

function readFileSafe(f: string): string {
  try {
    return readFileSync(f, "utf8");
  } catch {
    return "";
  }
}

if (import.meta.main) await runAlone(tlsBench);
