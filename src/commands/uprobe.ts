// `probe uprobe <target> <function>`: every call (and with --ret every return) of a function.
import { UPROBE_CONFIG } from "../../lib/layouts.ts";
import { listGoFunctions, inspectGo } from "../../lib/go.ts";
import { planProbes, entryPoints, returnPoints, unprobeableInstruction } from "../../lib/plan.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { openTarget } from "../../lib/proc/target.ts";
import { Scope } from "../../lib/scope.ts";
import { pc } from "../colors.ts";
import { UsageError } from "../errors.ts";
import { mark } from "../timing.ts";
import { compileGlob, isGlob } from "../../lib/glob.ts";
import { findDebugInfo, formatSignature } from "../../lib/dwarf/index.ts";
import type { ElfFile } from "../../lib/elf.ts";
import { parseCount } from "../options.ts";
import { resolveSpecs } from "../function-specs.ts";
import { TypedEventPrinter } from "../typed-format.ts";
import { MapReader } from "../../lib/maps.ts";
import { encodeFunction, fromDescriptor } from "../../lib/args/describe.ts";
import { locate } from "../../lib/types/abi.ts";
import { parsePrototype } from "../../lib/types/prototype.ts";
import { withSession, type SessionOptions } from "../session.ts";
import { targetProcess, NsPidCache } from "../targets.ts";
import { Out, WallClock, hex, pad } from "../output.ts";
import { CountTable } from "../count-table.ts";
import { EventFormatter } from "../event-format.ts";

export interface UprobeOptions extends SessionOptions {
  ret?: boolean;
  /** `--ret=TYPE` (the command line turns it into this): the return type of names given bare. */
  retType?: string;
  summary?: boolean;
  listFunctions?: string | boolean;
  unsafeUretprobe?: boolean;
  forceOffset?: boolean;
  stringSize?: unknown;
  hexdump?: boolean;
  debuginfo?: boolean;
}

const HUMAN_ARGS = 4;

export async function run(target: string | undefined, fns: string[], o: UprobeOptions): Promise<number> {
  if (!target) throw new UsageError("missing argument <target>: the binary or library to probe (a path, or a name like 'libc')");
  if (o.listFunctions !== undefined && o.listFunctions !== false) return listFunctions(target, o);
  if (!fns.length) throw new UsageError(`missing argument <function>: the function to probe in ${target} (a symbol, a glob, symbol+0x10, an offset, or a prototype)`);
  const stringMax = parseCount("string-size", o.stringSize, 256, 1, 12287);
  const ret = !!(o.ret || o.retType);
  return withSession(o, async (s) => {
    const t = await s.openTarget(target, o.wait);
    const view = s.filter.proc ? { pid: s.filter.proc.pid } : {};
    const specs = resolveSpecs(t.elf, fns, {
      retType: o.retType,
      stringMax,
      debugInfo: o.debuginfo !== false,
      display: t.display,
      openDebugFile: (path) => {
        try {
          return s.scope.add(openTarget(path, view)).elf;
        } catch {
          return undefined;
        }
      },
    });
    mark("function specs resolved");
    const plan = planProbes(t.elf, specs.functions.map((f) => f.name), { ret, unsafeUretprobe: o.unsafeUretprobe, forceOffset: o.forceOffset });
    mark("probes planned");
    const names = plan.functions.map((f) => f.name);
    const typed = !o.summary && specs.functions.some((f) => f.layout);
    const layouts = typed ? specs.functions.map((f, i) => f.layout ?? rawLayout(names[i]!, plan.goAbi)) : [];

    const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
    cv.setUint8(UPROBE_CONFIG.emit_events, o.summary ? 0 : 1);
    cv.setUint8(UPROBE_CONFIG.count_calls, o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.track_latency, ret && !o.summary ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.go_abi, plan.goAbi ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.typed, typed ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.per_function, names.length > 1 ? 1 : 0);
    // The PID inside a container, read by the program: a process that exits at once has no /proc left.
    cv.setUint8(UPROBE_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
    const [entryProg, returnProg] = typed ? ["probe_entry_typed", "probe_return_typed"] : ["probe_entry", "probe_return"];
    const obj = s.load("uprobe", cfg, ret ? [entryProg, returnProg] : [entryProg], { funcs: Math.max(1, layouts.length) });
    if (typed) {
      const descs = new MapReader(obj.mapFd("funcs"));
      layouts.forEach((l, i) => descs.update(new Uint8Array(new Uint32Array([i]).buffer), encodeFunction(fromDescriptor(l.descriptor), names[i]!)));
    }
    const globbed = new Set(specs.functions.flatMap((f, i) => (f.fromGlob ? [i] : [])));
    // Functions a glob chose whose first instruction the kernel always refuses are left out before
    // trying (finding them by trying takes a few attaches each).
    const refused = [...globbed].filter((i) => unprobeableInstruction(t.elf, plan.functions[i]!.entry));
    if (refused.length) s.note(`probe: left out ${refused.length} function${refused.length === 1 ? "" : "s"} the kernel cannot probe (${refused.map((i) => names[i]).slice(0, 5).join(", ")}${refused.length > 5 ? ", ..." : ""}): their first instruction is lock- or segment-prefixed`);
    const skip = new Set(refused);
    const entry = s.attach(obj.progFd(entryProg), t, entryPoints(plan).filter((p) => !skip.has(Number(p.cookie))), false, names, globbed);
    // Returns only where the entries went: a function left out at its entry is left out entirely.
    const attached = new Set(entry.points.map((p) => Number(p.cookie)));
    if (ret) s.attach(obj.progFd(returnProg), t, returnPoints(plan).filter((p) => attached.has(Number(p.cookie))), plan.retprobe, names, globbed);
    s.confirm();

    for (const n of [...plan.notes, ...specs.notes]) s.note(n);
    const calls = ret ? " (calls and returns)" : "";
    const what = names.length === 1 ? `${names[0]}${calls} in ${t.display} at offset ${hex(BigInt(plan.functions[0]!.entry))}` : `${names.length} functions${calls} of ${t.display}`;
    s.note(`Tracing ${what}${s.label} [${s.modeName}]. Ctrl-C to stop.`);
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
      counts = new CountTable(obj.mapFd("counts"), names, ret, (pid, inner) => nsPids?.get(pid, inner) ?? [pid]);
      report = () => counts!.print(out, json, false);
    } else {
      if (!json) out.line(pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}FUNCTION`));
      const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
      const lookup = nsPids && ((pid: number, inner: number) => nsPids.get(pid, inner));
      let onEvent: (v: DataView, off: number, len: number) => void;
      if (typed) {
        const printer = new TypedEventPrinter(names, layouts, new WallClock(), { hexdump: o.hexdump, enums: specs.functions.map((f) => f.enums) }, lookup);
        onEvent = json ? (v, off, len) => out.line(printer.json(v, off, len)) : (v, off, len) => out.line(printer.human(v, off, len));
      } else {
        const fmt = new EventFormatter(names, new WallClock(), HUMAN_ARGS, plan.goAbi, lookup);
        onEvent = json ? (v, off) => fmt.json(out, v, off) : (v, off) => out.line(fmt.human(v, off));
      }
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
    return s.exitCode ?? 0;
  });
}

/** A function without types in a typed run: its first four registers in hex, its return as a signed 64-bit number. */
function rawLayout(name: string, go: boolean) {
  const text = go ? `func ${name}(a0 uintptr, a1 uintptr, a2 uintptr, a3 uintptr) int` : `long ${name}(void *a0, void *a1, void *a2, void *a3)`;
  return locate(parsePrototype(text));
}

/** Functions listed with their signatures from debug info at most (each is a lookup). */
const SIGNATURES_MAX = 200;

/** `--list-functions [PATTERN]`: the target's functions (Go names from .gopclntab), with signatures where debug info has them. */
async function listFunctions(target: string, o: UprobeOptions): Promise<number> {
  const scope = new Scope();
  try {
    const proc = await targetProcess(o);
    if (proc) scope.add(proc);
    const view = proc ? { pid: proc.pid } : {};
    const t = scope.add(openTarget(target, view));
    const pattern = typeof o.listFunctions === "string" ? o.listFunctions : "";
    const go = inspectGo(t.elf);
    const rows: { offset: number; size: number; name: string; vaddr: number }[] = [];
    if (go) {
      process.stderr.write(pc.dim(`${t.display}: Go ${go.version?.raw ?? "(version unknown)"}, ${go.abi} ABI${go.stripped ? ", stripped (names from .gopclntab)" : ""}\n`));
      const glob = isGlob(pattern) ? compileGlob(pattern) : undefined;
      for (const f of listGoFunctions(t.elf, glob ? "" : pattern)) {
        if (glob && !glob(f.name)) continue;
        rows.push({ offset: f.offset, size: f.end - f.entry, name: f.name, vaddr: f.entry });
      }
    } else {
      const glob = isGlob(pattern) ? compileGlob(pattern) : undefined;
      const needle = pattern.toLowerCase();
      const seen = new Set<string>();
      for (const s of t.elf.functions()) {
        if (seen.has(s.name) || (glob ? !glob(s.name) : needle && !s.name.toLowerCase().includes(needle))) continue;
        seen.add(s.name);
        const off = t.elf.vaddrToOffset(s.value);
        if (off !== undefined) rows.push({ offset: off, size: s.size, name: s.name, vaddr: s.value });
      }
    }
    const signature = rows.length <= SIGNATURES_MAX && o.debuginfo !== false ? signatures(t.elf, t.display, view, scope) : undefined;
    const out = new Out();
    for (const r of rows) {
      const sig = signature?.(r.vaddr, r.name);
      out.line(o.json
        ? JSON.stringify({ function: r.name, offset: hex(BigInt(r.offset)), size: r.size, ...(sig ? { signature: sig } : {}) })
        : `${hex(BigInt(r.offset)).padEnd(12)} ${String(r.size).padStart(7)}  ${r.name}${sig ? `  ${pc.dim(sig)}` : ""}`);
    }
    if (!rows.length) process.stderr.write(`probe: no function of ${t.display} matches '${pattern}'\n`);
    out.flush();
    return 0;
  } finally {
    scope.close();
  }
}

/** A function's signature from debug info (the binary's own, or a debug file in the target's view), or undefined. */
function signatures(elf: ElfFile, display: string, view: { pid?: number }, scope: Scope): ((vaddr: number, name: string) => string | undefined) | undefined {
  let found;
  try {
    found = findDebugInfo(elf, display, {
      open: (p) => {
        try {
          return scope.add(openTarget(p, view)).elf;
        } catch {
          return undefined;
        }
      },
    });
  } catch {
    return undefined;
  }
  const info = found.info;
  if (!info) return undefined;
  return (vaddr, name) => {
    try {
      // By address first: an alias (malloc) is the same code as its debug-info name (__libc_malloc).
      const fn = info.functionAt(vaddr);
      if (fn && fn.lowPc === vaddr) return formatSignature(fn);
      const named = info.functionByName(name);
      return named && (named.name === name || named.linkageName === name) ? formatSignature(named) : undefined;
    } catch {
      return undefined;
    }
  };
}
