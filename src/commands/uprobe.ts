// `probe uprobe <target> <function>`: every call (and with --ret every return) of a function.
import { UPROBE_CONFIG } from "../../lib/layouts.ts";
import { inspectGo } from "../../lib/go.ts";
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
import { fleetRequested, parseCount, parseRingSize } from "../options.ts";
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
// What only some runs use is imported by those runs (start-up time: a plain trace loads none of
// it): histograms, stacks, metrics, containers selected by label, --list-functions.
import type { StackOptionValues } from "../stacks.ts";
import { ProbeError } from "../errors.ts";
import type { OpenTarget } from "../../lib/proc/target.ts";
import type { Closable } from "../../lib/scope.ts";
import { writeStderr } from "../stderr.ts";

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
  /** `--buffer-size`: the events ring buffer's bytes. */
  bufferSize?: unknown;
}

/**
 * The ring buffer for call and return records (~100 bytes each): the kernel writes ~1M a second at
 * most (a probe hit costs ~1 µs), and the reader takes them every millisecond while they come
 * (every 10 ms once quiet): 2 MiB holds 20 ms of that. Its pages count in probe's memory once read.
 */
const EVENT_RING_BYTES = 2 << 20;
/** Typed records carry strings and buffers (up to --string-size each): as before, 8 MiB. */
const TYPED_RING_BYTES = 8 << 20;
/** Frame-pointer stacks: a record is ~0.6 KiB. */
const FP_RING_BYTES = 8 << 20;
/** A ring buffer the programs never write to (--summary, --hist): the least the kernel takes. */
const UNUSED_RING_BYTES = 4096;

const HUMAN_ARGS = 4;

/** The column titles over call lines (with or without their stacks). */
const eventHeader = () => pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}FUNCTION`);

export async function run(target: string | undefined, fns: string[], o: UprobeOptions): Promise<number> {
  mark("command module loaded");
  if (!target) throw new UsageError("missing argument <target>: the binary or library to probe (a path, or a name like 'libc')");
  if (o.listFunctions !== undefined && o.listFunctions !== false) return listFunctions(target, o);
  if (!fns.length) throw new UsageError(`missing argument <function>: the function to probe in ${target} (a symbol, a glob, symbol+0x10, an offset, or a prototype)`);
  const stringMax = parseCount("string-size", o.stringSize, 256, 1, 12287);
  const histMod = o.hist !== undefined || o.linear !== undefined ? await import("../hist.ts") : undefined;
  const hist = histMod?.parseHistOptions(o.hist, o.linear);
  const stackMod = stackOptionsGiven(o) ? await loadStackModules() : undefined;
  const stacks = stackMod?.parseStackOptions(o);
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
    const fleetMod = s.fleet ? await import("../fleet-target.ts") : undefined;
    const first = fleetMod ? await fleetMod.firstInFleet(s, target) : undefined;
    const t = first?.target ?? (await s.openTarget(target, o.wait));
    mark("target opened");
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
    const histSlots = hist ? specs.functions.map((f, i) => histMod!.histSlot(hist, names[i]!, f.layout, plan.goAbi)) : [];
    const stackKind = !stacks ? STACK.NONE : stackMod!.stackKindOf(stacks);
    const events = !o.summary && !hist && stackKind !== STACK.FP_COUNT;
    if (o.bufferSize !== undefined && !events) throw new UsageError(`--buffer-size sizes the ring buffer of events; --${o.summary ? "summary" : hist ? "hist" : "stacks --unwind fp"} sends none`);
    const ringBytes = parseRingSize(o.bufferSize, stackKind === STACK.COPY ? stackMod!.STACK_RING_BYTES : stackKind === STACK.FP ? FP_RING_BYTES : typed ? TYPED_RING_BYTES : EVENT_RING_BYTES);

    const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
    cv.setUint8(UPROBE_CONFIG.emit_events, events && !stacks?.aggregate ? 1 : 0);
    cv.setUint8(UPROBE_CONFIG.count_calls, o.summary ? 1 : 0);
    // Pairing: latency, and for Go (calls paired per goroutine and frame) whenever returns are probed.
    const trackLatency = (ret && !hist && (!o.summary || plan.goAbi)) || hist?.kind === HIST.LATENCY;
    cv.setUint8(UPROBE_CONFIG.track_latency, trackLatency ? 1 : 0);
    if (hist) histMod!.configureHist(cv, hist, histSlots.some((h) => h?.signed), !!o.perProcess);
    if (stacks) stackMod!.configureStacks(cv, stacks);
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
    // Every table sized for the job: one the programs never touch gets one entry (creating a
    // 64K-entry hash table costs the kernel ~4 ms, at every start).
    const pairing = trackLatency || plan.goAbi || typed; // the programs' wants_pairing()
    const obj = s.load("uprobe", cfg, programs, {
      funcs: Math.max(1, layouts.length),
      hists: n,
      hist_slots: n,
      stack_ids: stackKind === STACK.FP_COUNT ? stackMod!.FP_STACK_IDS : 1,
      // No records at all with a histogram or stacks counted in the program.
      events: events ? ringBytes : UNUSED_RING_BYTES,
      ...(o.summary ? {} : { counts: 1 }),
      ...(pairing ? {} : { starts: 1 }),
      ...(stackKind === STACK.FP_COUNT ? {} : { stack_counts: 1 }),
      ...(hist && o.perProcess ? {} : { proc_hists: 1 }),
    });
    if (typed) {
      const descs = new MapReader(obj.mapFd("funcs"));
      layouts.forEach((l, i) => descs.update(new Uint8Array(new Uint32Array([i]).buffer), encodeFunction(fromDescriptor(l.descriptor), names[i]!)));
    }
    if (histSlots.length) {
      const slots = new MapReader(obj.mapFd("hist_slots"));
      histSlots.forEach((h, i) => h && slots.update(new Uint8Array(new Uint32Array([i]).buffer), h.bytes));
    }
    // Stacks are named from each process's mappings: followed from before the probes fire (and a
    // held command starts), so that a process gone before its maps are read keeps them.
    const mappings = stacks ? new stackMod!.StackMappings(s) : undefined;
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
    if (first && fleetMod) {
      // Another file (another build of the library in another image): the same functions, found again by name.
      await fleetMod.followInFleet(s, target, first, (file) => {
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
    const metricsMod = s.metrics && (hist || o.summary) ? await import("../uprobe-metrics.ts") : undefined;
    if (hist && histMod) {
      const spec = { scheme: hist.scheme, signed: histSlots.some((h) => h?.signed), what: hist.what, durations: hist.kind === HIST.LATENCY, perProcess: !!o.perProcess };
      const report = new histMod.HistReport(obj.mapFd("hists"), obj.mapFd("proc_hists"), names, spec, nsOf);
      const publish = s.metrics && metricsMod?.histPublisher(s.metrics, report, names, spec, podOf);
      if (publish) s.onCollect(publish);
      // Like funclatency and bpftrace: at exit, and every interval only when one is asked for.
      if (s.printing) {
        if (o.interval !== undefined) reportEvery = () => report.print(out, json, false);
        finish = () => report.print(out, json, true);
      } else if (publish) {
        // Serving only: published every interval too, which folds exited processes out of the kernel's table.
        reportEvery = publish;
      }
    } else if (stacks && mappings && views && stackMod) {
      const { StackUnwinder, countStacks, streamWithStacks } = stackMod;
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
      const publish = s.metrics && metricsMod?.summaryPublisher(s.metrics, table, names, ret, podOf);
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
    // The C++ demangler (~60 KB of code) is for this listing only.
    const { demangle } = await import("../../lib/demangle.ts");
    const rows: { offset: number; size: number; name: string; vaddr: number }[] = [];
    if (go) {
      writeStderr(pc.dim(`${t.display}: Go ${go.version?.raw ?? "(version unknown)"}, ${go.abi} ABI${go.stripped ? ", stripped (names from .gopclntab)" : ""}\n`));
      const glob = isGlob(pattern) ? compileGlob(pattern) : undefined;
      const { listGoFunctions } = await import("../../lib/go-functions.ts");
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
    if (!rows.length) writeStderr(`probe: no function of ${t.display} matches '${pattern}'\n`);
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

/** Whether any stack option was given (parseStackOptions says undefined without one: nothing to load). */
function stackOptionsGiven(o: StackOptionValues): boolean {
  return o.stack !== undefined || o.stacks !== undefined || o.folded !== undefined || o.flamegraph !== undefined || o.unwind !== undefined || o.stackSize !== undefined;
}

/** The stack code (unwinding, naming, flame graphs), loaded by the runs that ask for stacks. */
async function loadStackModules() {
  const [stacks, follow, stream] = await Promise.all([import("../stacks.ts"), import("../stack-follow.ts"), import("../stack-stream.ts")]);
  return { ...stacks, ...follow, streamWithStacks: stream.streamWithStacks };
}
