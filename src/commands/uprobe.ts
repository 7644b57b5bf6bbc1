// `probe uprobe <target> <function>`: every call (and with --ret every return) of one function.
import { pc } from "../colors.ts";
import { Scope } from "../../lib/scope.ts";
import { OpenTarget } from "../../lib/target.ts";
import { listGoFunctions, inspectGo } from "../../lib/go.ts";
import { attachUprobe, defaultAttachMode, type ProbePoint } from "../../lib/uprobe.ts";
import { loadEmbedded } from "../../lib/programs.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { MapReader } from "../../lib/maps.ts";
import { UPROBE_CONFIG, UPROBE_COUNTS, commAt } from "../../lib/layouts.ts";
import { UsageError } from "../errors.ts";
import { parseTracingOptions, requireTracingCaps } from "../options.ts";
import { openTargetFor, processFilter, targetProcess, NsPidCache } from "../targets.ts";
import { Out, WallClock, hex, jsonInt, pad } from "../output.ts";
import { EventFormatter } from "../event-format.ts";
import { runLoop } from "../run-loop.ts";
import { planProbes } from "../probe-plan.ts";

export interface UprobeOptions {
  pid?: number | string;
  container?: string;
  duration?: number | string;
  ret?: boolean;
  summary?: boolean;
  interval?: number | string;
  json?: boolean;
  listFunctions?: string | boolean;
  unsafeUretprobe?: boolean;
  wait?: boolean;
  anyProcess?: boolean;
  attachMode?: string;
}

const HUMAN_ARGS = 4;

export async function run(target: string | undefined, fn: string | undefined, o: UprobeOptions): Promise<number> {
  if (!target) throw new UsageError("missing argument <target>: the binary or library to probe (a path, or a name like 'libc')");
  if (o.listFunctions !== undefined && o.listFunctions !== false) return listFunctions(target, o);
  if (!fn) throw new UsageError(`missing argument <function>: the function to probe in ${target} (a symbol, symbol+0x10, or an offset)`);
  const { durationSec, intervalSec, requestedMode } = parseTracingOptions(o);
  const { proc, pid, kernelPid, label } = await processFilter(o);

  const scope = new Scope();
  try {
    const t = scope.add(await openTargetFor(target, { proc, wait: o.wait }));
    const plan = planProbes(t.elf, fn, o);
    requireTracingCaps();
    const mode = requestedMode ?? defaultAttachMode();

    const cfg = new Uint8Array(UPROBE_CONFIG.size);
    const cv = new DataView(cfg.buffer);
    cv.setUint32(UPROBE_CONFIG.target_tgid, pid ?? 0, true);
    cv.setUint8(UPROBE_CONFIG.emit_events, o.summary ? 0 : 1);
    cv.setUint8(UPROBE_CONFIG.count_calls, o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.track_latency, o.ret && !o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.go_abi, plan.goAbi ? 1 : 0);
    const obj = scope.add(loadEmbedded("uprobe", mode, cfg, o.ret ? ["probe_entry", "probe_return"] : ["probe_entry"]));

    const common = { pid: kernelPid, mode, displayPath: t.display };
    scope.add(attachUprobe(obj.progFd("probe_entry"), t.kernelPath, plan.entry, { ...common, retprobe: false }));
    if (plan.returns) scope.add(attachUprobe(obj.progFd("probe_return"), t.kernelPath, plan.returns.points, { ...common, retprobe: plan.returns.retprobe }));
    proc?.confirm(); // the PID still names the process we looked at (not a reused PID)

    const names = [plan.name];
    if (plan.note) process.stderr.write(`${pc.dim(plan.note)}\n`);
    const out = new Out();
    const clock = new WallClock();
    const json = !!o.json;
    process.stderr.write(
      `${pc.dim(`Tracing ${plan.name}${o.ret ? " (calls and returns)" : ""} in ${t.display} at offset ${hex(BigInt(plan.entry[0]!.offset))}` +
        `${label} [${mode === "multi" ? "uprobe_multi" : "perf_event"}]. Ctrl-C to stop.`)}\n`,
    );

    let poll: (() => number) | undefined;
    let report: (() => void) | undefined;
    if (o.summary) {
      const counts = new MapReader(obj.mapFd("counts"));
      report = () => printCounts(counts, out, json);
    } else {
      if (!json) out.line(pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}FUNCTION`));
      const rb = scope.add(new RingBuffer(obj.mapFd("events")));
      // Processes in containers get their PIDs at every namespace level (looked up once per PID).
      const nsPids = proc && (o.anyProcess || proc.nspid.length > 1) ? new NsPidCache([[proc.pid, proc.nspid]]) : undefined;
      const fmt = new EventFormatter(names, clock, HUMAN_ARGS, plan.goAbi, nsPids && ((pid) => nsPids.get(pid)));
      const onEvent = json ? (v: DataView, off: number) => fmt.json(out, v, off) : (v: DataView, off: number) => out.line(fmt.human(v, off));
      poll = () => {
        const n = rb.consume(onEvent);
        out.flush();
        return n;
      };
    }
    out.flush();
    await runLoop({
      durationSec,
      poll,
      report,
      intervalSec,
      watchPid: pid,
      onTargetExit: () => process.stderr.write(`probe: pid ${pid} exited\n`),
    });
    poll?.();
    if (o.summary) report?.();
    out.flush();
    const lost = droppedEvents(obj.mapFd("dropped"));
    if (lost > 0) process.stderr.write(`probe: warning: ${lost} events lost (ring buffer full)\n`);
    return 0;
  } finally {
    scope.close();
  }
}

function printCounts(counts: MapReader, out: Out, json: boolean): void {
  const rows = counts.entries().map(({ key, values }) => {
    const v = new DataView(values[0]!.buffer, values[0]!.byteOffset, values[0]!.byteLength);
    return {
      pid: new DataView(key.buffer).getUint32(0, true),
      comm: commAt(v, UPROBE_COUNTS.comm),
      calls: v.getBigUint64(UPROBE_COUNTS.calls, true),
      returns: v.getBigUint64(UPROBE_COUNTS.returns, true),
    };
  });
  rows.sort((a, b) => a.pid - b.pid);
  if (json) {
    for (const r of rows) out.line(JSON.stringify({ event: "count", pid: r.pid, comm: r.comm, calls: jsonInt(r.calls), returns: jsonInt(r.returns) }));
  } else {
    out.line(pc.bold(`${pad(new Date().toTimeString().slice(0, 8), 10)}${pad("PID", 8)}${pad("COMM", 16)}${pad("CALLS", 12)}RETURNS`));
    for (const r of rows) out.line(`${pad("", 10)}${pad(r.pid, 8)}${pad(r.comm, 16)}${pad(String(r.calls), 12)}${r.returns}`);
  }
  out.flush();
}

/** Events the programs found no room for in the ring buffer (counted in the `dropped` array). */
function droppedEvents(fd: number): number {
  const [v] = new MapReader(fd).lookup(new Uint8Array(4)) ?? [];
  return v ? Number(new DataView(v.buffer, v.byteOffset).getBigUint64(0, true)) : 0;
}

/** `--list-functions [PATTERN]`: the target's functions, Go names from .gopclntab for Go binaries. */
async function listFunctions(target: string, o: UprobeOptions): Promise<number> {
  const scope = new Scope();
  try {
    const proc = await targetProcess(o);
    const t = scope.add(await openTargetFor(target, { proc, wait: false }));
    const pattern = typeof o.listFunctions === "string" ? o.listFunctions : "";
    const go = inspectGo(t.elf);
    const out = new Out();
    if (go) {
      process.stderr.write(pc.dim(`${t.display}: Go ${go.version?.raw ?? "(version unknown)"}, ${go.abi} ABI${go.stripped ? ", stripped (names from .gopclntab)" : ""}\n`));
      for (const f of listGoFunctions(t.elf, pattern)) {
        out.line(o.json ? JSON.stringify({ function: f.name, offset: hex(BigInt(f.offset)), size: f.end - f.entry }) : `${hex(BigInt(f.offset)).padEnd(12)} ${String(f.end - f.entry).padStart(7)}  ${f.name}`);
      }
    } else {
      const needle = pattern.toLowerCase();
      const seen = new Set<string>();
      for (const s of t.elf.functions()) {
        if (seen.has(s.name) || (needle && !s.name.toLowerCase().includes(needle))) continue;
        seen.add(s.name);
        const off = t.elf.vaddrToOffset(s.value);
        if (off === undefined) continue;
        out.line(o.json ? JSON.stringify({ function: s.name, offset: hex(BigInt(off)), size: s.size }) : `${hex(BigInt(off)).padEnd(12)} ${String(s.size).padStart(7)}  ${s.name}`);
      }
    }
    out.flush();
    return 0;
  } finally {
    scope.close();
  }
}
