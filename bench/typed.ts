// The typed-values and many-functions cases of the benchmarks (issue: typed arguments): a stream
// of calls with one string shown, against bpftrace's printf of str(arg0); attaching to every
// function of libc and detaching, against bpftrace's uprobe:libc:*; resolving a function in a
// 100+ MB binary; a function's parameters from debug info. Part of `bun run bench`
// (bench/run.ts); `bun bench/typed.ts` runs these cases alone.
import { mkdirSync, openSync, closeSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Lines } from "../tests/helpers.ts";
import { ElfFile } from "../lib/elf.ts";
import { resolveFunction } from "../lib/symbols.ts";
import { findDebugInfo, hostOpener } from "../lib/dwarf/index.ts";
import { loadEmbedded } from "../lib/programs.ts";
import { attachUprobe, bestAttachMode } from "../lib/uprobe.ts";
import { openHostFile } from "../lib/proc/target.ts";
import { Scope } from "../lib/scope.ts";
import { UPROBE_CONFIG } from "../lib/layouts.ts";
import { runAlone, median, type Row } from "./harness.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = join(ROOT, "bench", ".work");
const PROBE = join(ROOT, "dist", "probe");
const CALLS = Number(process.env.BENCH_STR_CALLS ?? 300_000);
const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";

async function strLoop(bin: string, attach?: (pid: number) => Promise<() => Promise<void>>): Promise<number> {
  const p = Bun.spawn([bin, String(CALLS)], { stdin: "pipe", stdout: "pipe" });
  const out = new Lines(p.stdout);
  const [, pid] = await out.waitFor(/^ready (\d+)/);
  const stop = attach ? await attach(Number(pid)) : undefined;
  p.stdin.write("go\n");
  p.stdin.end();
  const [, ns] = await out.waitFor(/^([\d.]+) /, 300_000);
  await p.exited;
  await stop?.();
  return Number(ns);
}

/** A sleeping process for attaching to all of libc with a PID filter (the rest of the machine unaffected). */
function sleeper() {
  return Bun.spawn(["sleep", "300"], { stdout: "ignore", stderr: "ignore" });
}

export async function typedBench(row: Row): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const bin = join(WORK, "strloop");
  const b = Bun.spawnSync(["gcc", "-O0", "-o", bin, join(ROOT, "bench", "strloop.c")], { stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`gcc failed: ${b.stderr}`);
  const bpftrace = Bun.which("bpftrace");

  // --- typed stream: one const char * (64 bytes) per call, to a file --------------------------------
  // A uprobe hit alone costs several µs on this VM: the programs are compared by what they add to it.
  const base = await strLoop(bin);
  const empty = await strLoop(bin, async (pid) => {
    const scope = new Scope();
    const mode = bestAttachMode();
    const obj = scope.add(loadEmbedded("uprobe", mode, new Uint8Array(UPROBE_CONFIG.size), ["probe_empty"]));
    const t = scope.add(openHostFile(bin));
    scope.add(attachUprobe(obj.progFd("probe_empty"), t.kernelPath, [{ offset: resolveFunction(t.elf, "bench_str").offset, cookie: 0n }], { retprobe: false, pid, mode }));
    return async () => scope.close();
  });
  row("bench_str with an empty BPF program", `${empty.toFixed(1)} ns/call`, `the uprobe itself: +${(empty - base).toFixed(1)} ns over no probe (${base.toFixed(1)})`);
  const file = join(WORK, "typed.json");
  let events = 0;
  const probeNs = await strLoop(bin, async (pid) => {
    const p = Bun.spawn([PROBE, "uprobe", bin, "long bench_str(const char *s)", "--pid", String(pid), "--json"], { stdout: Bun.file(file), stderr: "pipe" });
    const err = new Lines(p.stderr);
    await err.waitFor(/Ctrl-C/, 20_000);
    return async () => {
      await Bun.sleep(300);
      p.kill("SIGINT");
      await p.exited;
      events = readFileSync(file, "utf8").split("\n").filter((l) => l.includes('"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"')).length;
    };
  });
  row("typed stream: 'long bench_str(const char *s)' --json", `${probeNs.toFixed(1)} ns/call`, `+${(probeNs - empty).toFixed(1)} ns over the empty program; ${events} of ${CALLS} calls with their string`);
  if (bpftrace) {
    const btNs = await strLoop(bin, async (pid) => {
      const p = Bun.spawn([bpftrace, "-p", String(pid), "-e", `uprobe:${bin}:bench_str { printf("%s\\n", str(arg0)); }`], { stdout: Bun.file("/dev/null"), stderr: "pipe" });
      await Bun.sleep(1500); // "Attaching" goes to /dev/null with the rest
      return async () => {
        p.kill("SIGINT");
        await p.exited;
      };
    });
    row("bpftrace printf(\"%s\\n\", str(arg0)) to /dev/null", `${btNs.toFixed(1)} ns/call`, `+${(btNs - empty).toFixed(1)} ns over the empty program; probe's program costs ${((probeNs - empty) / (btNs - empty)).toFixed(2)}x bpftrace's [target <= 0.25x]`);
  }

  // --- every function of libc: attach and detach --------------------------------------------------
  const s = sleeper();
  try {
    const attach: number[] = [];
    const exit: number[] = [];
    let count = 0;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const p = Bun.spawn([PROBE, "uprobe", LIBC, "*", "--summary", "--pid", String(s.pid)], { stdout: "ignore", stderr: "pipe" });
      const err = new Lines(p.stderr);
      // Attached: the Tracing line (which says Ctrl-C stops it) comes once the links are made.
      const [, n] = await err.waitFor(/Tracing (\d+) functions.*Ctrl-C/, 60_000);
      count = Number(n);
      attach.push(performance.now() - t0);
      const t1 = performance.now();
      p.kill("SIGINT");
      await p.exited;
      exit.push(performance.now() - t1);
    }
    row(`uprobe libc '*' (${count} functions): start to attached`, `${median(attach).toFixed(0)} ms`, "median of 3 [target < 300 ms]");
    row(`uprobe libc '*': SIGINT to exit`, `${median(exit).toFixed(0)} ms`, "median of 3 [target < 150 ms]");
    if (bpftrace) {
      const t0 = performance.now();
      const p = Bun.spawn([bpftrace, "-p", String(s.pid), "-e", `uprobe:${LIBC}:* { @[probe] = count(); }`], { stdout: "pipe", stderr: "pipe" });
      const out = new Lines(p.stdout);
      const errText = new Response(p.stderr).text();
      let attached = "";
      // bpftrace says "Attaching N probes..." before it attaches, or refuses and exits.
      const said = await Promise.race([out.waitFor(/Attaching (\d+) probes/, 120_000).then(([, n]) => n, () => undefined), p.exited.then(() => undefined)]);
      if (said) {
        attached = `${said} probes`;
        await Bun.sleep(200);
      } else {
        const why = (await Promise.race([errText, Bun.sleep(100).then(() => "")])).split("\n").find((l) => /ERROR: Failed|exceeds/.test(l));
        attached = why ? `refused: ${why.replace(/^ERROR: /, "")}` : "did not say it attached within 120 s";
      }
      const ms = performance.now() - t0;
      const t1 = performance.now();
      p.kill("SIGINT");
      await p.exited;
      row("bpftrace uprobe:libc:* { @[probe] = count(); }", `${ms.toFixed(0)} ms to attach, ${(performance.now() - t1).toFixed(0)} ms to exit`, attached);
    }
  } finally {
    s.kill();
  }

  // --- resolving a function in a large binary ------------------------------------------------------
  for (const [path, fn] of [[PROBE, "napi_create_string_utf8"], ["/usr/bin/node", "SSL_read"]] as const) {
    try {
      const size = statSync(path).size;
      const t0 = performance.now();
      const fd = openSync(path, "r");
      const off = resolveFunction(new ElfFile(fd, path), fn).offset;
      closeSync(fd);
      row(`resolve ${fn} in ${path} (${(size / 1e6).toFixed(0)} MB)`, `${(performance.now() - t0).toFixed(1)} ms`, `offset 0x${off.toString(16)} [target < 100 ms]`);
    } catch (e) {
      row(`resolve in ${path}`, "-", (e as Error).message);
    }
  }

  // --- parameters from debug info --------------------------------------------------------------------
  for (const [path, fn] of [[LIBC, "malloc"]] as const) {
    const t0 = performance.now();
    const fd = openSync(path, "r");
    const elf = new ElfFile(fd, path);
    const found = findDebugInfo(elf, path, hostOpener);
    const f = found.info ? found.info.functionAt(resolveFunction(elf, fn).vaddr) : undefined;
    const ms = performance.now() - t0;
    const st = found.info?.stats;
    row(`parameters of ${fn} from ${found.path ?? "no debug info"}`, `${ms.toFixed(1)} ms`, f ? `${f.params.map((p) => p.name).join(", ")}; ${st ? (st.bytesRead / 1e6).toFixed(2) : "?"} MB read [target < 50 ms]` : "(install libc6-dbg)");
    closeSync(fd);
  }
}

if (import.meta.main) await runAlone(typedBench);
