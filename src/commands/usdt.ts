// `probe usdt <target> <provider:name>`: statically defined probes (USDT, `.note.stapsdt`) with
// their arguments typed and shown, semaphores raised through the kernel while attached; or paired
// into calls (`--ret-pairs`, their latency in a histogram with `--hist`), or counted (`--summary`);
// with each hit's user stack (`--stack`), or hits counted per stack (`--stacks`).
import { basename } from "node:path";
import { UPROBE_CONFIG, TYPED_EVENT as TE, EV_CALL, HIST, STACK, commAt } from "../../lib/layouts.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { MapReader } from "../../lib/maps.ts";
import { TargetNotFound, type OpenTarget } from "../../lib/proc/target.ts";
import { executablePath } from "../../lib/proc/maps.ts";
import { encodeFunction } from "../../lib/args/describe.ts";
import type { TypedRecord } from "../../lib/args/record.ts";
import { TypedRecordReader } from "../../lib/usdt/record.ts";
import { ValueFormatter } from "../../lib/types/format.ts";
import { jsonString } from "../../lib/types/bytes-text.ts";
import { readUsdtProbes, assertAttachable, type UsdtProbe, type UsdtSite } from "../../lib/usdt/notes.ts";
import { selectUsdtProbes, usdtProbeName } from "../../lib/usdt/select.ts";
import { pairUsdtProbes, CallStacks, type UsdtPair } from "../../lib/usdt/pairs.ts";
import { usdtLayout, usdtSiteValues, typedProbeName, groupByArgCount, type UsdtLayout } from "../../lib/usdt/values.ts";
import { kernelRaisesSemaphores, guardedProbes } from "../../lib/usdt/semaphore.ts";
import type { ProbePoint } from "../../lib/uprobe.ts";
import { pc } from "../colors.ts";
import { UsageError } from "../errors.ts";
import { list } from "../options.ts";
import { withSession, type Session, type SessionOptions } from "../session.ts";
import { NsPidCache } from "../targets.ts";
import { WallClock, formatDuration, pad } from "../output.ts";
import { CountTable } from "../count-table.ts";
import { table } from "../table.ts";
import { HistPrinter, parseHistOptions, type HistEntry, type HistRequest, type HistSpec } from "../hist.ts";
import { Histogram, bucketCount, bucketIndex } from "../../lib/hist.ts";
import { StackUnwinder, parseStackOptions, type StackOptionValues, type StackRequest } from "../stacks.ts";
import { FP_STACK_IDS, STACK_LOSSES, STACK_RING_BYTES, StackMappings, configureStacks, countStacks } from "../stack-follow.ts";
import { stackStream } from "../stack-stream.ts";

export interface UsdtOptions extends SessionOptions, StackOptionValues {
  list?: boolean;
  args?: unknown;
  retPairs?: boolean;
  summary?: boolean;
  /** `--hist [latency]`: the latency of the calls --ret-pairs pairs. */
  hist?: unknown;
  linear?: unknown;
  perProcess?: boolean;
}

export async function run(target: string | undefined, spec: string | undefined, o: UsdtOptions): Promise<number> {
  if (o.list) return (await import("./usdt-list.ts")).run(target, spec, o);
  if (!target) throw new UsageError("missing argument <target>: the program or library with the probes (a path, a library name like 'libstdc++', or a program on PATH)");
  if (!spec) throw new UsageError(`missing argument <probe>: provider:name, a name, or a glob like 'python:function__*' ('probe usdt --list ${target}' shows them)`);
  const hist = parseHistOptions(o.hist, o.linear);
  const stacks = parseStackOptions(o);
  if (hist && stacks) throw new UsageError("--hist counts values and --stack/--stacks record stacks: choose one");
  if ((hist || stacks) && o.summary) throw new UsageError(`--summary counts calls per process; --${hist ? "hist" : stacks!.aggregate ? "stacks" : "stack"} is another report: choose one`);
  if (o.perProcess && !hist && !stacks?.aggregate) throw new UsageError("--per-process goes with --hist or --stacks");
  if (hist && hist.kind !== HIST.LATENCY) throw new UsageError(`--hist counts the latency of the calls --ret-pairs pairs: 'latency' (the default), not '${hist.what}'`);
  if (hist && !o.retPairs) throw new UsageError("--hist counts the latency of calls: add --ret-pairs (which pairs *__entry/*__return probes into calls)");
  if (stacks?.aggregate && o.retPairs) throw new UsageError("--stacks counts probe hits by stack: pairing adds nothing to it (no --ret-pairs)");
  if (stacks && o.retPairs) throw new UsageError("--stack shows each probe hit with its stack, --ret-pairs each call at its return: choose one");
  return withSession(o, async (s) => {
    const t = await openUsdtTarget(s, target, o.wait);
    const all = readUsdtProbes(t.elf);
    const sel = selectUsdtProbes(all, spec, t.display);
    for (const k of sel.skipped) s.warn(`skipping ${usdtProbeName(k.probe)}: ${k.reason}`);
    let probes = sel.probes;
    let pairs: UsdtPair[] = [];
    if (o.retPairs) {
      const p = pairUsdtProbes(probes, all);
      if (!p.pairs.length) {
        throw new UsageError(`--ret-pairs: no probe of ${spec} is one end of a pair (*__entry/*__return, *__start/*__done, *__begin/*__end) in ${t.display}`);
      }
      for (const u of p.unpaired) s.note(`${usdtProbeName(u)} is no end of a pair: left out with --ret-pairs`);
      pairs = p.pairs;
      probes = [...new Set(pairs.flatMap((x) => [x.entry, x.ret]))];
      for (const x of probes) assertAttachable(x);
    }
    const guarded = guardedProbes(probes);
    if (guarded.length && !kernelRaisesSemaphores(s.mode)) {
      s.warn(
        `this kernel's perf-event uprobes cannot raise USDT semaphores (no ref_ctr_offset in the uprobe PMU, Linux < 4.20): ` +
          `${guarded.map(usdtProbeName).join(", ")} fire only while another tool enables them`,
      );
    }
    for (const n of pythonNotes(t, probes)) s.note(n);
    if (stacks?.aggregate) return countByStack(s, t, probes, stacks, o);
    if (o.summary && !o.retPairs) return countProbes(s, t, probes, o);
    return traceProbes(s, t, probes, pairs, o, hist, stacks);
  });
}

/**
 * The target as uprobe resolves it; with a process, a versioned name of its executable too
 * (`python3` for a process running /usr/bin/python3.11).
 */
async function openUsdtTarget(s: Session, spec: string, wait?: boolean): Promise<OpenTarget> {
  try {
    return await s.openTarget(spec, wait);
  } catch (e) {
    const proc = s.filter.proc;
    if (!(e instanceof TargetNotFound) || !proc || spec.includes("/")) throw e;
    const exe = executablePath(proc.pid);
    const base = basename(exe);
    if (!exe || !base.startsWith(spec) || !/^[.\d-]+$/.test(base.slice(spec.length))) throw e;
    return s.openTarget(exe);
  }
}

/** CPython 3.11 fires its function and line probes only while a trace or profile function is set. */
function pythonNotes(t: OpenTarget, probes: UsdtProbe[]): string[] {
  const affected = probes.filter((p) => p.provider === "python" && /^(function__entry|function__return|line)$/.test(p.name));
  if (!affected.length || !/python3\.11|libpython3\.11/.test(t.display)) return [];
  return [`note: CPython 3.11 fires ${affected.map(usdtProbeName).join(", ")} only while a profile or trace function is set (sys.setprofile, cProfile): CPython issue gh-98894`];
}

/** `doing`: what is made of the hits, said in the same parentheses. */
function describeProbes(probes: UsdtProbe[], doing?: string): string {
  const names = probes.map(usdtProbeName);
  const shown = names.length > 6 ? `${names.slice(0, 6).join(", ")} and ${names.length - 6} more` : names.join(", ");
  const sites = probes.reduce((n, p) => n + p.sites.length, 0);
  const sems = guardedProbes(probes).length;
  return `${shown} (${sites} site${sites === 1 ? "" : "s"}${sems ? `, ${sems === probes.length ? "" : `${sems} `}with semaphore${sems === 1 ? "" : "s"}` : ""}${doing ? `; ${doing}` : ""})`;
}

function point(site: UsdtSite, cookie: number): ProbePoint {
  return { offset: site.offset, cookie: BigInt(cookie), ...(site.semaphoreOffset ? { refCtrOffset: site.semaphoreOffset } : {}) };
}

/** PIDs at every namespace level, for processes in containers (looked up once per PID). */
function nsPidsFor(s: Session): NsPidCache | undefined {
  const proc = s.filter.proc;
  return s.wantsNspid ? new NsPidCache(proc ? [[proc.pid, proc.nspid]] : []) : undefined;
}

/** `--summary`: calls per process and probe, counted in the kernel (no arguments read). */
async function countProbes(s: Session, t: OpenTarget, probes: UsdtProbe[], o: UsdtOptions): Promise<number> {
  const names = probes.map(usdtProbeName);
  const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
  cv.setUint8(UPROBE_CONFIG.count_calls, 1);
  cv.setUint8(UPROBE_CONFIG.per_function, probes.length > 1 ? 1 : 0);
  cv.setUint8(UPROBE_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
  const obj = s.load("uprobe", cfg, ["probe_entry"]);
  // The cookie is the probe's index: all its sites count together.
  s.attach(obj.progFd("probe_entry"), t, probes.flatMap((p, i) => p.sites.map((site) => point(site, i))), false, names);
  s.confirm();
  s.watchLosses(obj.mapFd("dropped"));
  const nsPids = nsPidsFor(s);
  const counts = new CountTable(obj.mapFd("counts"), names, false, (pid, inner) => nsPids?.get(pid, inner) ?? [pid]);
  s.out.flush();
  await s.run({
    report: () => counts.print(s.out, s.json, false),
    started: () => s.note(`Tracing ${describeProbes(probes)} in ${t.display}${s.label} [${s.modeName}], counting. Ctrl-C to stop.`),
  });
  counts.print(s.out, s.json, true);
  s.out.flush();
  return 0;
}

/** "hits with their stacks, unwound from 16384 bytes of stack", for the Tracing line. */
function stackDoing(req: StackRequest): string {
  return `${req.aggregate ? "hits per stack" : "hits with their stacks"}, ${req.mode === "fp" ? "frame pointers" : `unwound from ${req.stackSize} bytes of stack`}`;
}

/** A USDT site is inside a function (its frame made): no return address at rsp to add to a frame-pointer walk. */
const notAtEntry = (n: number): boolean[] => new Array<boolean>(n).fill(false);

/** `--stacks`: hits per probe and user stack (no arguments read); the top stacks, folded lines or a flame graph at exit. */
async function countByStack(s: Session, t: OpenTarget, probes: UsdtProbe[], req: StackRequest, o: UsdtOptions): Promise<number> {
  const names = probes.map(usdtProbeName);
  const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
  const kind = configureStacks(cv, req);
  cv.setUint8(UPROBE_CONFIG.per_function, probes.length > 1 ? 1 : 0);
  cv.setUint8(UPROBE_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
  const obj = s.load("uprobe", cfg, ["probe_entry"], { stack_ids: kind === STACK.FP_COUNT ? FP_STACK_IDS : 1, events: kind === STACK.COPY ? STACK_RING_BYTES : 4096 });
  // Followed from before the probes fire: a process gone before its maps are read keeps them.
  const mappings = new StackMappings(s);
  // The cookie is the probe's index: all its sites count together.
  s.attach(obj.progFd("probe_entry"), t, probes.flatMap((p, i) => p.sites.map((site) => point(site, i))), false, names);
  s.confirm();
  if (s.filter.proc) mappings.views.remember(s.filter.proc.pid);
  s.watchLosses(obj.mapFd("dropped"), STACK_LOSSES);
  const atEntry = notAtEntry(names.length);
  const unwinder = new StackUnwinder(mappings.views, req.mode, atEntry);
  const { poll, finish } = countStacks(s, obj, mappings, unwinder, req, { kind, names, atEntry, perProcess: !!o.perProcess, title: `probe usdt ${t.display} ${names.join(" ")}` });
  s.out.flush();
  await s.run({
    poll,
    started: () => s.note(`Tracing ${describeProbes(probes, stackDoing(req))} in ${t.display}${s.label} [${s.modeName}]. Ctrl-C to stop.`),
  });
  finish();
  s.out.flush();
  return 0;
}

/** Sites of one probe with one argument list: typed and shown together. */
interface Group {
  probe: number;
  sites: UsdtProbe;
}

interface SiteInfo {
  group: number;
  site: UsdtSite;
}

interface ProbeView {
  name: string;
  /** Its index in the views, and its number of values (for ArgsMemo). */
  index: number;
  nslots: number;
  fmt: ValueFormatter;
  jsonName: string;
  /** Captures that identify a call (the strings a return carries too), or none. */
  identity: number[];
  /** Pair index and end, with --ret-pairs. */
  pair?: { index: number; entry: boolean };
}

/** The types given for `probe` by --args: a prototype naming it, else a type list, else none. */
function typesFor(probe: UsdtProbe, given: string[]): string | undefined {
  return given.find((g) => typedProbeName(g) === probe.name) ?? given.find((g) => typedProbeName(g) === undefined);
}

function layouts(probes: UsdtProbe[], groups: Group[], given: string[], s: Session): UsdtLayout[] {
  for (const g of given) {
    const n = typedProbeName(g);
    if (n !== undefined && !probes.some((p) => p.name === n)) {
      throw new UsageError(`--args '${g}' gives the types of ${n}, which is not among the probes traced (${probes.map(usdtProbeName).join(", ")})`);
    }
  }
  return groups.map((g) => {
    const l = usdtLayout(g.sites, typesFor(g.sites, given));
    for (const u of l.unreadable) s.note(`${usdtProbeName(g.sites)}: ${u}`);
    return l;
  });
}

/** Events with typed arguments, one per probe hit; or, with --ret-pairs, one per completed call. */
async function traceProbes(s: Session, t: OpenTarget, probes: UsdtProbe[], pairs: UsdtPair[], o: UsdtOptions, hist?: HistRequest, stacks?: StackRequest): Promise<number> {
  const groups: Group[] = probes.flatMap((p, probe) => groupByArgCount(p).map((sites) => ({ probe, sites })));
  const lay = layouts(probes, groups, list(o.args), s);
  const sites: SiteInfo[] = groups.flatMap((g, group) => g.sites.sites.map((site) => ({ group, site })));
  const views: ProbeView[] = groups.map((g, i) => ({
    name: usdtProbeName(g.sites),
    index: i,
    nslots: lay[i]!.layout.descriptor.entrySlots,
    fmt: new ValueFormatter(lay[i]!.layout),
    jsonName: jsonString(usdtProbeName(g.sites)),
    identity: [],
  }));
  pairs.forEach((pair, index) => {
    const ends = groups.flatMap((g, gi) => (probes[g.probe] === pair.entry || probes[g.probe] === pair.ret ? [gi] : []));
    for (const gi of ends) views[gi]!.pair = { index, entry: probes[groups[gi]!.probe] === pair.entry };
    // Both ends typed alike with strings (Python: file and function): the strings tell which call returns.
    const types = new Set(ends.map((gi) => lay[gi]!.layout.args.map((a) => a.typeText).join(",")));
    if (types.size === 1) for (const gi of ends) views[gi]!.identity = lay[gi]!.layout.descriptor.captures.map((_, ci) => ci);
  });

  const { bytes: cfg, view: cv } = s.config(UPROBE_CONFIG.size);
  cv.setUint8(UPROBE_CONFIG.typed, 1);
  cv.setUint8(UPROBE_CONFIG.emit_events, 1);
  cv.setUint8(UPROBE_CONFIG.want_nspid, s.wantsNspid ? 1 : 0);
  const stackKind = stacks ? configureStacks(cv, stacks) : STACK.NONE;
  const obj = s.load("uprobe", cfg, ["probe_entry_typed"], { funcs: sites.length, ...(stackKind === STACK.COPY ? { events: STACK_RING_BYTES } : {}) });
  // Stacks are named from each process's mappings, followed from before the probes fire.
  const mappings = stacks ? new StackMappings(s) : undefined;
  // One description per site (the cookie): sites of one probe may keep an argument in different places.
  const funcs = new MapReader(obj.mapFd("funcs"));
  sites.forEach((x, i) => funcs.update(u32(i), encodeFunction(usdtSiteValues(x.site, lay[x.group]!.layout), views[x.group]!.name)));
  s.attach(obj.progFd("probe_entry_typed"), t, sites.map((x, i) => point(x.site, i)), false, sites.map((x) => views[x.group]!.name));
  s.confirm();
  if (mappings && s.filter.proc) mappings.views.remember(s.filter.proc.pid);
  const doing = hist ? "latency histogram" : stacks ? stackDoing(stacks) : undefined;
  const what = pairs.length ? `${pairs.map((p) => p.name).join(", ")} calls: ${describeProbes(probes, doing)}` : describeProbes(probes, doing);
  s.watchLosses(obj.mapFd("dropped"), stacks ? STACK_LOSSES : undefined);

  const nsPids = nsPidsFor(s);
  const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
  const reader = new TypedRecordReader();
  const args = new ArgsMemo(reader);
  const printer = new EventPrinter(s, views, sites, new WallClock(), args, nsPids);
  let onRecord: (v: DataView, off: number, len: number) => void;
  let report: (() => void) | undefined;
  let calls: CallSummary | undefined;
  let hists: PairHists | undefined;
  let finish: (() => void) | undefined;
  const open = new CallStacks<OpenCall>();
  if (pairs.length) {
    if (o.summary) {
      const summary = new CallSummary(pairs, nsPids);
      calls = summary;
      report = () => summary.print(s, false);
    } else if (hist) {
      const spec: HistSpec = { scheme: hist.scheme, signed: false, what: hist.what, durations: true, perProcess: !!o.perProcess };
      const h = new PairHists(pairs.map((p) => p.name), spec, (pid, inner) => nsPids?.get(pid, inner) ?? [pid]);
      hists = h;
      // Like uprobe --hist: at exit, and every interval only when one is asked for.
      if (o.interval !== undefined) report = () => h.print(s.out, s.json, false);
    }
    const counted = !!(calls || hists);
    onRecord = (v, off, len) => {
      const r = reader.read(v, off, len);
      const site = sites[r.func];
      if (!site) return;
      const view = views[site.group]!;
      const ts = tsOf(r);
      const id = identityOf(r, view);
      if (view.pair!.entry) {
        // A histogram needs neither the call's arguments nor its line.
        const value = hists ? { group: site.group, args: "", argsJson: "" } : { group: site.group, args: args.text(view, r), argsJson: s.json ? args.json(view, r) : "", record: counted ? undefined : printer.head(r, v, off) };
        open.enter(r.tid, view.pair!.index, id, ts, value);
        return;
      }
      const got = open.leave(r.tid, view.pair!.index, id, ts);
      if (!got) return;
      if (calls) calls.add(r.pid, commAt(v, off + TE.comm), r.nspid, view.pair!.index, got.value, got.latencyNs);
      else if (hists) hists.add(r.pid, commAt(v, off + TE.comm), r.nspid, view.pair!.index, got.latencyNs);
      else printer.call(r, v, off, got.value, got.latencyNs, view);
    };
  } else if (mappings && stacks) {
    // Each hit's line waits (per thread) for its stack record, which the program sends right after it.
    const unwinder = new StackUnwinder(mappings.views, stacks.mode, notAtEntry(sites.length));
    const siteNames = sites.map((x) => views[x.group]!.name);
    const stream = stackStream(unwinder, siteNames, (v, off, len) => printer.eventLine(reader.read(v, off, len), v, off) ?? "", s.json, s.out, "probe");
    onRecord = stream.onRecord;
    finish = () => stream.flush();
  } else {
    onRecord = (v, off, len) => printer.event(reader.read(v, off, len), v, off);
  }
  if (!s.json && !calls && !hists) s.out.line(pc.bold(`${pad("TIME", 13)}${pad("PID", 8)}${pad("TID", 8)}${pad("COMM", 16)}PROBE`));
  s.out.flush();
  await s.run({
    started: () => s.note(`Tracing ${what} in ${t.display}${s.label} [${s.modeName}]. Ctrl-C to stop.`),
    poll: () => {
      mappings?.sync();
      const n = rb.consume(onRecord);
      // Exits are applied after the stacks read in the same round (those were recorded before them).
      mappings?.forgetExited();
      s.out.flush();
      return n;
    },
    report,
  });
  finish?.();
  calls?.print(s, true);
  hists?.print(s.out, s.json, true);
  if (hists?.overflow) s.note(`${hists.overflow} calls not counted (more than ${PairHists.MAX_ROWS} processes)`);
  if (pairs.length && (open.orphans || open.dropped || open.open)) {
    s.note(`pairing: ${open.open} calls still open at exit, ${open.orphans} returns without a call, ${open.dropped} calls whose return was not seen`);
  }
  s.out.flush();
  return 0;
}

function u32(n: number): Uint8Array {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

function tsOf(r: TypedRecord): bigint {
  return (BigInt(r.tsHi) << 32n) | BigInt(r.tsLo);
}

const latin1 = new TextDecoder("latin1");

/** The strings that say which call a record belongs to ('' when the probe has none). */
function identityOf(r: TypedRecord, view: ProbeView): string {
  let id = "";
  for (const ci of view.identity) {
    const c = r.captures[ci];
    id += `${c ? latin1.decode(c.bytes) : ""}\0`;
  }
  return id;
}

interface OpenCall {
  group: number;
  /** The call's arguments as text (for the summary's rows). */
  args: string;
  argsJson: string;
  /** The call's event head, for the line printed at its return. */
  record?: EventHead;
}

/**
 * Arguments as text and JSON, remembered by their bytes: a busy probe repeats itself (the same
 * Python function, file and line), and formatting is most of what a record costs the reader.
 */
class ArgsMemo {
  private static readonly MAX_ENTRIES = 4096;
  private static readonly MAX_KEY = 1024;
  private readonly texts = new Map<number, { group: number; key: Uint8Array; out: string }[]>();
  private readonly jsons = new Map<number, { group: number; key: Uint8Array; out: string }[]>();
  private size = 0;

  constructor(private readonly reader: TypedRecordReader) {}

  text(view: ProbeView, r: TypedRecord): string {
    return this.get(this.texts, view, () => view.fmt.callText(r));
  }

  json(view: ProbeView, r: TypedRecord): string {
    return this.get(this.jsons, view, () => view.fmt.callJson(r));
  }

  /** For the record the reader read last. */
  private get(map: Map<number, { group: number; key: Uint8Array; out: string }[]>, view: ProbeView, make: () => string): string {
    const len = this.reader.key(view.nslots);
    if (len > ArgsMemo.MAX_KEY) return make();
    const k = this.reader.keyBytes;
    let h = 0x811c9dc5 ^ view.index;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ k[i]!, 16777619);
    const bucket = map.get(h);
    if (bucket) {
      for (const e of bucket) {
        if (e.group !== view.index || e.key.length !== len) continue;
        let same = true;
        for (let i = 0; i < len && same; i++) same = e.key[i] === k[i];
        if (same) return e.out;
      }
    }
    const out = make();
    if (this.size >= ArgsMemo.MAX_ENTRIES) {
      this.texts.clear();
      this.jsons.clear();
      this.size = 0;
    }
    const entry = { group: view.index, key: k.slice(0, len), out };
    const b = map.get(h);
    if (b) b.push(entry);
    else map.set(h, [entry]);
    this.size++;
    return out;
  }
}

/** A thread's part of every line, built once and reused while its process and comm stay the same. */
interface Thread {
  pid: number;
  comm: string;
  /** The comm's bytes as four words, to see it change without decoding it. */
  w: [number, number, number, number];
  /** `,"pid":P[,"nspid":[..]],"tid":T,"comm":C` */
  json: string;
  /** PID, TID and COMM columns. */
  human: string;
}

interface EventHead {
  ts: bigint;
  tsText: string;
  thread: Thread;
}

const TWO32 = 4294967296;

/** Lines and JSON objects for events and paired calls. */
class EventPrinter {
  private readonly threads = new Map<number, Thread>();

  constructor(
    private readonly s: Session,
    private readonly views: ProbeView[],
    private readonly sites: SiteInfo[],
    private readonly clock: WallClock,
    private readonly args: ArgsMemo,
    private readonly nsPids?: NsPidCache,
  ) {}

  private thread(r: TypedRecord, v: DataView, off: number): Thread {
    const o = off + TE.comm;
    const w0 = v.getUint32(o, true);
    const w1 = v.getUint32(o + 4, true);
    const w2 = v.getUint32(o + 8, true);
    const w3 = v.getUint32(o + 12, true);
    const t = this.threads.get(r.tid);
    if (t && t.pid === r.pid && t.w[0] === w0 && t.w[1] === w1 && t.w[2] === w2 && t.w[3] === w3) return t;
    const comm = commAt(v, o);
    const chain = this.nsPids?.get(r.pid, r.nspid);
    const nspid = chain && chain.length > 1 ? `,"nspid":[${chain.join(",")}]` : "";
    const made: Thread = {
      pid: r.pid, comm, w: [w0, w1, w2, w3],
      json: `,"pid":${r.pid}${nspid},"tid":${r.tid},"comm":${jsonString(comm)}`,
      human: `${pad(r.pid, 8)}${pad(r.tid, 8)}${pad(comm, 16)}`,
    };
    if (this.threads.size > 65536) this.threads.clear();
    this.threads.set(r.tid, made);
    return made;
  }

  head(r: TypedRecord, v: DataView, off: number): EventHead {
    // The timestamp as text without a BigInt while it is exact as a double (104 days of uptime).
    const tsText = r.tsHi < 0x200000 ? String(r.tsHi * TWO32 + r.tsLo) : String(tsOf(r));
    return { ts: tsOf(r), tsText, thread: this.thread(r, v, off) };
  }

  event(r: TypedRecord, v: DataView, off: number): void {
    const line = this.eventLine(r, v, off);
    if (line !== undefined) this.s.out.line(line);
  }

  /** A probe hit's line (JSON: its object), or undefined for a record that is no hit of a known site. */
  eventLine(r: TypedRecord, v: DataView, off: number): string | undefined {
    const site = this.sites[r.func];
    if (!site || r.kind !== EV_CALL) return undefined;
    const view = this.views[site.group]!;
    if (this.s.json) {
      const ts = r.tsHi < 0x200000 ? String(r.tsHi * TWO32 + r.tsLo) : String(tsOf(r));
      return `{"event":"usdt","ts":${ts}${this.thread(r, v, off).json},"probe":${view.jsonName},"args":${this.args.json(view, r)}}`;
    }
    return `${pad(this.clock.format(tsOf(r)), 13)}${this.thread(r, v, off).human}${view.name} ${this.args.text(view, r)}`;
  }

  /** A call completed: printed at its return, with the call's arguments and its latency. */
  call(r: TypedRecord, v: DataView, off: number, call: OpenCall, latencyNs: bigint, retView: ProbeView): void {
    const entry = this.views[call.group]!;
    const h = call.record ?? this.head(r, v, off);
    const name = entry.name.replace(/__(entry|start|begin)$/, "");
    if (this.s.json) {
      this.s.out.line(`{"event":"call","ts":${h.tsText}${h.thread.json},"probe":${jsonString(name)},"args":${call.argsJson},"return_args":${this.args.json(retView, r)},"latency_ns":${latencyNs}}`);
    } else {
      this.s.out.line(`${pad(this.clock.format(h.ts), 13)}${h.thread.human}${name}${call.args ? ` ${call.args}` : ""} ${pc.dim("in")} ${formatDuration(latencyNs)}`);
    }
  }
}

interface CallRow {
  pid: number;
  comm: string;
  nspid: number;
  pair: number;
  args: string;
  argsJson: string;
  calls: number;
  totalNs: bigint;
  maxNs: bigint;
  shownCalls: number;
}

/** `--ret-pairs --summary`: calls and latency per process and call (its arguments: the Python function). */
class CallSummary {
  private readonly rows = new Map<string, CallRow>();
  private static readonly MAX_ROWS = 100000;
  overflow = 0;

  constructor(
    private readonly pairs: UsdtPair[],
    private readonly nsPids?: NsPidCache,
  ) {}

  add(pid: number, comm: string, nspid: number, pair: number, call: OpenCall, latencyNs: bigint): void {
    const key = `${pid}\0${pair}\0${call.args}`;
    let row = this.rows.get(key);
    if (!row) {
      if (this.rows.size >= CallSummary.MAX_ROWS) {
        this.overflow++;
        return;
      }
      row = { pid, comm, nspid, pair, args: call.args, argsJson: call.argsJson, calls: 0, totalNs: 0n, maxNs: 0n, shownCalls: 0 };
      this.rows.set(key, row);
    }
    row.calls++;
    row.totalNs += latencyNs;
    if (latencyNs > row.maxNs) row.maxNs = latencyNs;
  }

  print(s: Session, final: boolean): void {
    const all = [...this.rows.values()].sort((a, b) => a.pid - b.pid || (b.totalNs > a.totalNs ? 1 : b.totalNs < a.totalNs ? -1 : 0));
    const changed = final ? all : all.filter((r) => r.calls !== r.shownCalls);
    for (const r of all) r.shownCalls = r.calls;
    const chainOf = (r: CallRow) => this.nsPids?.get(r.pid, r.nspid) ?? [r.pid];
    if (s.json) {
      for (const r of changed) {
        const chain = chainOf(r);
        s.out.line(
          `{"event":"calls","pid":${r.pid}${chain.length > 1 ? `,"nspid":[${chain.join(",")}]` : ""},"comm":${jsonString(r.comm)},"probe":${jsonString(this.pairs[r.pair]!.name)},` +
            `"args":${r.argsJson || "[]"},"calls":${r.calls},"total_ns":${r.totalNs},"avg_ns":${r.totalNs / BigInt(r.calls)},"max_ns":${r.maxNs}${final ? ',"final":true' : ""}}`,
        );
      }
      s.out.flush();
      return;
    }
    if (!changed.length && !final) return;
    const many = this.pairs.length > 1;
    const withNs = changed.some((r) => chainOf(r).length > 1);
    const cells = changed.map((r) => [
      "", String(r.pid), ...(withNs ? [chainOf(r).slice(1).join("/") || "-"] : []), r.comm, String(r.calls),
      formatDuration(r.totalNs), formatDuration(r.totalNs / BigInt(r.calls)), formatDuration(r.maxNs), `${many ? `${this.pairs[r.pair]!.name} ` : ""}${r.args}`,
    ]);
    const cols = [
      { title: final ? "TOTAL" : new Date().toTimeString().slice(0, 8) }, { title: "PID", right: true }, ...(withNs ? [{ title: "NSPID", right: true }] : []), { title: "COMM" },
      { title: "CALLS", right: true }, { title: "TIME", right: true }, { title: "AVG", right: true }, { title: "MAX", right: true }, { title: "CALL" },
    ];
    for (const l of table(cols, cells)) s.out.line(l);
    if (final && this.overflow) s.out.line(`  ${this.overflow} calls not summed (more than ${CallSummary.MAX_ROWS} distinct calls)`);
    s.out.flush();
  }
}

interface PairHistRow {
  pid: number;
  func: number;
  comm: string;
  nspid: number;
  counts: number[];
  sum: bigint;
  min: bigint;
  max: bigint;
}

/**
 * `--ret-pairs --hist`: the latency of paired calls counted here, per pair (or per process and
 * pair), as the events arrive: USDT ends are two probes, paired in user space (lib/usdt/pairs.ts),
 * so the program's own latency histograms (one function's entry and return) do not apply.
 */
class PairHists extends HistPrinter {
  static readonly MAX_ROWS = 100000;
  private readonly byKey = new Map<string, PairHistRow>();
  /** Calls not counted: more than MAX_ROWS processes. */
  overflow = 0;

  add(pid: number, comm: string, nspid: number, pair: number, latencyNs: bigint): void {
    const key = this.spec.perProcess ? `${pid}:${pair}` : `${pair}`;
    let row = this.byKey.get(key);
    if (!row) {
      if (this.byKey.size >= PairHists.MAX_ROWS) {
        this.overflow++;
        return;
      }
      const one = this.spec.perProcess;
      row = { pid: one ? pid : 0, func: pair, comm: one ? comm : "", nspid: one ? nspid : 0, counts: new Array<number>(bucketCount(this.spec.scheme)).fill(0), sum: 0n, min: latencyNs, max: latencyNs };
      this.byKey.set(key, row);
    }
    row.counts[bucketIndex(this.spec.scheme, latencyNs, false)]!++;
    row.sum += latencyNs;
    if (latencyNs < row.min) row.min = latencyNs;
    if (latencyNs > row.max) row.max = latencyNs;
  }

  rows(): HistEntry[] {
    const made = (r: PairHistRow): HistEntry => ({ pid: r.pid, func: r.func, comm: r.comm, nspid: r.nspid, pidns: 0, hist: new Histogram(this.spec.scheme, false, [...r.counts], r.sum, r.min, r.max) });
    if (this.spec.perProcess) return [...this.byKey.values()].sort((a, b) => a.pid - b.pid || a.func - b.func).map(made);
    return this.names.map((_, func) => {
      const r = this.byKey.get(`${func}`);
      return r ? made(r) : { pid: 0, func, comm: "", nspid: 0, pidns: 0, hist: Histogram.empty(this.spec.scheme, false) };
    });
  }
}
