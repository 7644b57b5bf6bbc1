// `probe uprobe <target> <function>`: every call (and with --ret every return) of a function.
import { UPROBE_CONFIG } from "../../lib/layouts.ts";
import { demangle } from "../../lib/demangle.ts";
import { inspectGo } from "../../lib/go.ts";
import { listGoFunctions } from "../../lib/go-functions.ts";
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
import { fleetRequested, parseCount } from "../options.ts";
import { resolveSpecs } from "../function-specs.ts";
import { TypedEventPrinter } from "../typed-format.ts";
import { MapReader } from "../../lib/maps.ts";
import { encodeFunction, fromDescriptor } from "../../lib/args/describe.ts";
import { locate } from "../../lib/types/abi.ts";
import { parsePrototype } from "../../lib/types/prototype.ts";
import { withSession, type Session, type SessionOptions } from "../session.ts";
import { targetProcess, NsPidCache } from "../targets.ts";
import { Out, WallClock, hex, pad } from "../output.ts";
import { CountTable } from "../count-table.ts";
import { EventFormatter } from "../event-format.ts";
import { DROP, HIST, STACK } from "../../lib/layouts.ts";
import { HistReport, configureHist, histSlot, parseHistOptions } from "../hist.ts";
import { histPublisher, summaryPublisher } from "../uprobe-metrics.ts";
import { FP_STACK_IDS, STACK_RING_BYTES, StackMappings, configureStacks, countStacks, stackKindOf } from "../stack-follow.ts";
import { StackUnwinder, parseStackOptions, type StackOptionValues } from "../stacks.ts";
import { streamWithStacks } from "../stack-stream.ts";
import { firstInFleet, followInFleet } from "../fleet-target.ts";
import { ProbeError } from "../errors.ts";
import type { OpenTarget } from "../../lib/proc/target.ts";
import type { Closable } from "../../lib/scope.ts";

export interface UprobeOptions extends SessionOptions, StackOptionValues {
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
  /** `--hist [latency|ARG|ret]` (true: latency). */
  hist?: unknown;
  linear?: unknown;
  perProcess?: boolean;
}


const HUMAN_ARGS = 4;

/** The column titles over call lines (with or without their stacks). */
const eventHeader = () => pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}FUNCTION`);

export async function run(target: string | undefined, fns: string[], o: UprobeOptions): Promise<number> {
  if (!target) throw new UsageError("missing argument <target>: the binary or library to probe (a path, or a name like 'libc')");
  if (o.listFunctions !== undefined && o.listFunctions !== false) return listFunctions(target, o);
  if (!fns.length) throw new UsageError(`missing argument <function>: the function to probe in ${target} (a symbol, a glob, symbol+0x10, an offset, or a prototype)`);
  const stringMax = parseCount("string-size", o.stringSize, 256, 1, 12287);
  const hist = parseHistOptions(o.hist, o.linear);
  const stacks = parseStackOptions(o);
  if (hist && stacks) throw new UsageError("--hist counts values and --stack/--stacks record stacks: choose one");
  if ((hist || stacks?.aggregate) && o.summary) throw new UsageError(`--summary counts calls per process; --${hist ? "hist" : "stacks"} is another report: choose one`);
  if (o.perProcess && !hist && !stacks?.aggregate) throw new UsageError("--per-process goes with --hist or --stacks");
  if (stacks?.aggregate && (o.ret || o.retType)) throw new UsageError("--stacks counts calls by stack: returns add nothing to it (no --ret)");
  if (stacks && fleetRequested(o)) throw new UsageError("--stack and --stacks follow one process or container: with a selection of containers, count calls with --summary or --hist");
  if (o.metrics !== undefined && !o.summary && !hist) throw new UsageError("--metrics serves what --summary or --hist counts: add one of them");
  // Latency pairs calls with returns; a result is read at the return only; a parameter at the call only.
  const ret = hist ? hist.kind !== HIST.ENTRY : !!(o.ret || o.retType);
  return withSession(o, async (s) => {
    // A selection of containers: the target as the first container that has it sees it plans the
    // probes; every container's own file is attached below (followInFleet).
    const first = s.fleet ? await firstInFleet(s, target) : undefined;
    const t = first?.target ?? (await s.openTarget(target, o.wait));
    const view = first ? { pid: first.container.container.pid } : s.filter.proc ? { pid: s.filter.proc.pid } : {};
    const specs = resolveSpecs(t.elf, fns, {
      retType: o.retType,
      stringMax,
      // Types are only needed to show values, or to find the parameter a histogram counts.
      debugInfo: o.debuginfo !== false && hist?.kind !== HIST.LATENCY && !stacks?.aggregate,
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
    const globbed = new Set(specs.functions.flatMap((f, i) => (f.fromGlob ? [i] : [])));
    const plan = planProbes(t.elf, specs.functions.map((f) => f.name), { ret, unsafeUretprobe: o.unsafeUretprobe, forceOffset: o.forceOffset, mayLeaveOut: globbed });
    mark("probes planned");
    const names = plan.functions.map((f) => f.name);
    // Histograms and counted stacks send no call events: the typed programs' values are not needed.
    const typed = !o.summary && !hist && !stacks?.aggregate && specs.functions.some((f) => f.layout);
    const layouts = typed ? specs.functions.map((f, i) => f.layout ?? rawLayout(names[i]!, plan.goAbi)) : [];
    const histSlots = hist ? specs.functions.map((f, i) => histSlot(hist, names[i]!, f.layout, plan.goAbi)) : [];
    const stackKind = !stacks ? STACK.NONE : stackKindOf(stacks);
    const events = !o.summary && !hist && stackKind !== STACK.FP_COUNT;

    const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
    cv.setUint8(UPROBE_CONFIG.emit_events, events && !stacks?.aggregate ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.count_calls, o.summary ? 1 : 0);
    // Pairing: latency, and for Go (calls paired per goroutine and frame) whenever returns are probed.
    cv.setUint8(UPROBE_CONFIG.track_latency, (ret && !hist && (!o.summary || plan.goAbi)) || hist?.kind === HIST.LATENCY ? 1 : 0);
    if (hist) configureHist(cv, hist, histSlots.some((h) => h?.signed), !!o.perProcess);
    if (stacks) configureStacks(cv, stacks);
    cv.setUint8(UPROBE_CONFIG.go_abi, plan.goAbi ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.typed, typed ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.per_function, names.length > 1 ? 1 : 0);
    // The PID inside a container, read by the program: a process that exits at once has no /proc left.
    cv.setUint8(UPROBE_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
    const [entryProg, returnProg] = typed ? ["probe_entry_typed", "probe_return_typed"] : ["probe_entry", "probe_return"];
    // A result's histogram needs only the return probe.
    const withEntry = hist?.kind !== HIST.RETURN;
    const programs = [...(withEntry ? [entryProg] : []), ...(ret ? [returnProg] : [])];
    const n = Math.max(1, names.length);
    const obj = s.load("uprobe", cfg, programs, {
      funcs: Math.max(1, layouts.length),
      hists: n,
      hist_slots: n,
      stack_ids: stackKind === STACK.FP_COUNT ? FP_STACK_IDS : 1,
      // No records at all with a histogram or stacks counted in the program; room for copied stacks.
      ...(events ? (stackKind === STACK.COPY ? { events: STACK_RING_BYTES } : {}) : { events: 4096 }),
    });
    if (typed) {
      const descs = new MapReader(obj.mapFd("funcs"));
      layouts.forEach((l, i) => descs.update(new Uint8Array(new Uint32Array([i]).buffer), encodeFunction(fromDescriptor(l.descriptor), names[i]!)));
    }
    if (histSlots.length) {
      const slots = new MapReader(obj.mapFd("hist_slots"));
      histSlots.forEach((h, i) => h && slots.update(new Uint8Array(new Uint32Array([i]).buffer), h.bytes));
    }
    // Stacks are named from each process's mappings: followed from before the probes fire.
    const mappings = stacks ? new StackMappings(s) : undefined;
    const views = mappings?.views;
    /** Attaches the programs at `p`'s points of `file`; what it returns detaches them. */
    const attachTo = (file: OpenTarget, p: typeof plan): Closable => {
      // Functions a glob chose whose first instruction the kernel always refuses are left out before
      // trying (finding them by trying takes a few attaches each).
      const refused = [...globbed].filter((i) => unprobeableInstruction(file.elf, p.functions[i]!.entry));
      if (refused.length) s.note(`probe: left out ${refused.length} function${refused.length === 1 ? "" : "s"} the kernel cannot probe (${refused.map((i) => names[i]).slice(0, 5).join(", ")}${refused.length > 5 ? ", ..." : ""}): their first instruction is lock- or segment-prefixed`);
      const skip = new Set(refused);
      const entries = entryPoints(p).filter((pt) => !skip.has(Number(pt.cookie)));
      const entry = withEntry ? s.attach(obj.progFd(entryProg), file, entries, false, names, globbed) : undefined;
      // Returns only where the entries went: a function left out at its entry is left out entirely.
      const attached = new Set((entry?.points ?? entries).map((pt) => Number(pt.cookie)));
      const retLink = ret ? s.attach(obj.progFd(returnProg), file, returnPoints(p).filter((pt) => attached.has(Number(pt.cookie))), p.retprobe, names, globbed) : undefined;
      return { close: () => (entry?.close(), retLink?.close()) };
    };
    if (first) {
      // Another file (another build of the library in another image): the same functions, found again by name.
      await followInFleet(s, target, first, (file) => {
        if (file.inodeKey === t.inodeKey) return attachTo(file, plan);
        const p = planProbes(file.elf, names, { ret, unsafeUretprobe: o.unsafeUretprobe, forceOffset: o.forceOffset, mayLeaveOut: globbed });
        if (p.goAbi !== plan.goAbi) throw new ProbeError(`${file.display} is ${p.goAbi ? "" : "not "}a Go program, unlike ${t.display} the probes were planned for`);
        return attachTo(file, p);
      });
    } else {
      attachTo(t, plan);
    }
    s.confirm();
    if (views && s.filter.proc) views.remember(s.filter.proc.pid);

    for (const n of [...plan.notes, ...specs.notes]) s.note(n);
    const doing = hist
      ? ` (${hist.what === "latency" ? "latency histogram" : hist.what === "ret" ? "histogram of the return value" : `histogram of ${hist.what}`})`
      : stacks
        ? ` (${stacks.aggregate ? "calls per stack" : "calls with their stacks"}, ${stacks.mode === "fp" ? "frame pointers" : `unwound from ${stacks.stackSize} bytes of stack`})`
        : ret
          ? " (calls and returns)"
          : "";
    const what = names.length === 1 ? `${names[0]}${doing} in ${t.display} at offset ${hex(BigInt(plan.functions[0]!.entry))}` : `${names.length} functions${doing} of ${t.display}`;
    const out = s.out;
    const json = s.json;
    let poll: (() => number) | undefined;
    let reportEvery: (() => void) | undefined;
    const proc = s.filter.proc;
    // Processes in containers get their PIDs at every namespace level (looked up once per PID).
    const nsPids = proc && (o.anyProcess || proc.nspid.length > 1) ? new NsPidCache([[proc.pid, proc.nspid]]) : undefined;
    s.watchLosses(obj.mapFd("dropped"), [
      { index: DROP.RING, kind: "events", what: `${stacks ? "stacks" : "events"} lost (ring buffer full: the reader fell behind)` },
      { index: DROP.COUNTS, kind: "counts", what: "calls not counted (the per-process table was full)" },
      { index: DROP.STARTS, kind: "pairing", what: "calls not paired with their return (the pairing table was full)" },
      { index: DROP.HIST, kind: "hist", what: "calls not counted (the per-process histogram table was full)" },
      { index: DROP.STACKS, kind: "stacks", what: "stacks not counted (the stack table was full)" },
    ]);
    let counts: CountTable | undefined;
    let finish: (() => void) | undefined;
    const nsOf = (pid: number, inner: number) => nsPids?.get(pid, inner) ?? [pid];
    const fleet = s.fleet;
    const podOf = fleet && ((pid: number, pidns: number) => fleet.labelsOf(pid, pidns));
    if (hist) {
      const spec = { scheme: hist.scheme, signed: histSlots.some((h) => h?.signed), what: hist.what, durations: hist.kind === HIST.LATENCY, perProcess: !!o.perProcess };
      const report = new HistReport(obj.mapFd("hists"), obj.mapFd("proc_hists"), names, spec, nsOf);
      const publish = s.metrics && histPublisher(s.metrics, report, names, spec, podOf);
      if (publish) s.onCollect(publish);
      // Like funclatency and bpftrace: at exit, and every interval only when one is asked for.
      if (s.printing) {
        if (o.interval !== undefined) reportEvery = () => report.print(out, json, false);
        finish = () => report.print(out, json, true);
      } else if (publish) {
        // Serving only: published every interval too, which folds exited processes out of the kernel's table.
        reportEvery = publish;
      }
    } else if (stacks && mappings && views) {
      // Probed at a function's first instruction (not `name+0x10` or an offset): its return address is at rsp.
      const atEntry = names.map((nm) => !/\+0x|^0x/.test(nm));
      const unwinder = new StackUnwinder(views, stacks.mode, atEntry);
      if (stacks.aggregate) {
        ({ poll, finish } = countStacks(s, obj, mappings, unwinder, stacks, { kind: stackKind, names, atEntry, perProcess: !!o.perProcess, title: `probe uprobe ${t.display} ${names.join(" ")}` }));
      } else {
        if (!json) out.line(eventHeader());
        const stream = streamWithStacks(unwinder, names, layouts, typed ? "typed" : plan.goAbi ? "go" : "c", nsPids && ((pid: number, inner: number) => nsPids.get(pid, inner)), json, out, { humanArgs: HUMAN_ARGS, hexdump: o.hexdump, enums: specs.functions.map((f) => f.enums) });
        const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
        poll = () => {
          mappings.sync();
          const got = rb.consume(stream.onRecord);
          // Exits are applied after the stacks read in the same round (those were recorded before them).
          mappings.forgetExited();
          out.flush();
          return got;
        };
        finish = () => stream.flush();
      }
    } else if (o.summary) {
      const table = new CountTable(obj.mapFd("counts"), names, ret, nsOf, podOf);
      const publish = s.metrics && summaryPublisher(s.metrics, table, names, ret, podOf);
      if (publish) s.onCollect(publish);
      if (s.printing) {
        counts = table;
        reportEvery = () => table.print(out, json, false);
      } else if (publish) {
        // Serving only: published every interval too, which folds exited processes out of the kernel's table.
        reportEvery = publish;
      }
    } else {
      if (!json) out.line(eventHeader());
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
    // Whoever waits for this line may stop probe at once: the session keeps a signal that comes
    // between here and its loop for the loop (it stops at once, drains and reports).
    s.note(`Tracing ${what}${s.label} [${s.modeName}]. Ctrl-C to stop.`);
    await s.run({ poll, report: reportEvery });
    counts?.print(out, json, true);
    finish?.();
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
      // C++: the demangled name beside the symbol (which is what a probe spec names)
      const demangled = go ? undefined : demangle(r.name);
      const note = sig ?? demangled;
      out.line(o.json
        ? JSON.stringify({ function: r.name, ...(demangled ? { demangled } : {}), offset: hex(BigInt(r.offset)), size: r.size, ...(sig ? { signature: sig } : {}) })
        : `${hex(BigInt(r.offset)).padEnd(12)} ${String(r.size).padStart(7)}  ${r.name}${note ? `  ${pc.dim(note)}` : ""}`);
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
