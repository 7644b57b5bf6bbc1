// `probe uprobe <target> <function>`: every call (and with --ret every return) of a function.
import { UPROBE_CONFIG } from "../../lib/layouts.ts";
import { listGoFunctions, inspectGo } from "../../lib/go.ts";
import { planProbes, entryPoints, returnPoints } from "../../lib/plan.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { openTarget } from "../../lib/proc/target.ts";
import { Scope } from "../../lib/scope.ts";
import { pc } from "../colors.ts";
import { UsageError } from "../errors.ts";
import { withSession, type SessionOptions } from "../session.ts";
import { targetProcess, NsPidCache } from "../targets.ts";
import { Out, WallClock, hex, pad } from "../output.ts";
import { CountTable } from "../count-table.ts";
import { EventFormatter } from "../event-format.ts";

export interface UprobeOptions extends SessionOptions {
  ret?: boolean;
  summary?: boolean;
  listFunctions?: string | boolean;
  unsafeUretprobe?: boolean;
  forceOffset?: boolean;
}

const HUMAN_ARGS = 4;

export async function run(target: string | undefined, fn: string | undefined, o: UprobeOptions): Promise<number> {
  if (!target) throw new UsageError("missing argument <target>: the binary or library to probe (a path, or a name like 'libc')");
  if (o.listFunctions !== undefined && o.listFunctions !== false) return listFunctions(target, o);
  if (!fn) throw new UsageError(`missing argument <function>: the function to probe in ${target} (a symbol, symbol+0x10, or an offset)`);
  return withSession(o, async (s) => {
    const t = await s.openTarget(target, o.wait);
    const plan = planProbes(t.elf, [fn], { ret: o.ret, unsafeUretprobe: o.unsafeUretprobe, forceOffset: o.forceOffset });
    const names = plan.functions.map((f) => f.name);

    const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
    cv.setUint8(UPROBE_CONFIG.emit_events, o.summary ? 0 : 1);
    cv.setUint8(UPROBE_CONFIG.count_calls, o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.track_latency, o.ret && !o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.go_abi, plan.goAbi ? 1 : 0);
    // The PID inside a container, read by the program: a process that exits at once has no /proc left.
    cv.setUint8(UPROBE_CONFIG.want_nspid, s.filter.proc && (o.anyProcess || s.filter.proc.nspid.length > 1) ? 1 : 0);
    const obj = s.load("uprobe", cfg, o.ret ? ["probe_entry", "probe_return"] : ["probe_entry"]);
    s.attach(obj.progFd("probe_entry"), t, entryPoints(plan), false, names);
    if (o.ret) s.attach(obj.progFd("probe_return"), t, returnPoints(plan), plan.retprobe, names);
    s.confirm();

    for (const n of plan.notes) s.note(n);
    s.note(
      `Tracing ${names.join(", ")}${o.ret ? " (calls and returns)" : ""} in ${t.display} at offset ${hex(BigInt(plan.functions[0]!.entry))}` +
        `${s.label} [${s.modeName}]. Ctrl-C to stop.`,
    );
    const out = s.out;
    const json = s.json;
    let poll: (() => number) | undefined;
    let report: (() => void) | undefined;
    const proc = s.filter.proc;
    // Processes in containers get their PIDs at every namespace level (looked up once per PID).
    const nsPids = proc && (o.anyProcess || proc.nspid.length > 1) ? new NsPidCache([[proc.pid, proc.nspid]]) : undefined;
    s.watchLosses(obj.mapFd("dropped"));
    let counts: CountTable | undefined;
    if (o.summary) {
      counts = new CountTable(obj.mapFd("counts"), names, !!o.ret, (pid, inner) => nsPids?.get(pid, inner) ?? [pid]);
      report = () => counts!.print(out, json, false);
    } else {
      if (!json) out.line(pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}FUNCTION`));
      const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
      const fmt = new EventFormatter(names, new WallClock(), HUMAN_ARGS, plan.goAbi, nsPids && ((pid, inner) => nsPids.get(pid, inner)));
      const onEvent = json ? (v: DataView, off: number) => fmt.json(out, v, off) : (v: DataView, off: number) => out.line(fmt.human(v, off));
      poll = () => {
        const n = rb.consume(onEvent);
        out.flush();
        return n;
      };
    }
    out.flush();
    await s.run({ poll, report });
    counts?.print(out, json, true);
    out.flush();
    return 0;
  });
}

/** `--list-functions [PATTERN]`: the target's functions, Go names from .gopclntab for Go binaries. */
async function listFunctions(target: string, o: UprobeOptions): Promise<number> {
  const scope = new Scope();
  try {
    const proc = await targetProcess(o);
    if (proc) scope.add(proc);
    const t = scope.add(openTarget(target, proc ? { pid: proc.pid } : {}));
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
    if (out.pos === 0) process.stderr.write(`probe: no function of ${t.display} matches '${pattern}'\n`);
    out.flush();
    return 0;
  } finally {
    scope.close();
  }
}
