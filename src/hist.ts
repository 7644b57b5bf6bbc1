// `--hist`: the histograms the program counts in its maps (per function in `hists`, per process
// and function in `proc_hists`), printed every interval (the calls of that interval) and at exit
// (all calls). Processes that exit are folded out of the kernel's bounded per-process table into
// totals kept here (src/process-rows.ts), as the --summary table does.
import { HIST, HIST_BUCKETS, HIST_KEY, HIST_ROW, NO_REG, SLOT, SLOT_DESC, UPROBE_CONFIG } from "../lib/layouts.ts";
import { Histogram, bucketCount, decodeHistRow, linearScheme, type BucketScheme } from "../lib/hist.ts";
import { MapReader } from "../lib/maps.ts";
import { PT_REGS_INDEX, SLOT_STACK, type FunctionLayout, type ValueLayout } from "../lib/types/function-layout.ts";
import { ProbeError } from "../lib/errors.ts";
import { pc } from "./colors.ts";
import { UsageError } from "./errors.ts";
import type { Out } from "./output.ts";
import { histogramJson, histogramLines, summaryText } from "./hist-format.ts";
import { ProcessRows, type ProcessRow } from "./process-rows.ts";

/** What `--hist [latency|ARG|ret]` and `--linear START,STEP,END` ask for. */
export interface HistRequest {
  kind: typeof HIST.LATENCY | typeof HIST.ENTRY | typeof HIST.RETURN;
  /** "latency", "ret", or the parameter's name. */
  what: string;
  scheme: BucketScheme;
}

/** Validates --hist and --linear (usage errors before anything is loaded); undefined without --hist. */
export function parseHistOptions(hist: unknown, linear: unknown): HistRequest | undefined {
  if (hist === undefined || hist === false) {
    if (linear !== undefined) throw new UsageError("--linear goes with --hist (the buckets of the histogram)");
    return undefined;
  }
  const what = hist === true || hist === "" ? "latency" : String(Array.isArray(hist) ? hist.at(-1) : hist);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(what)) throw new UsageError(`--hist takes latency, ret or a parameter's name, not '${what}'`);
  const kind = what === "latency" ? HIST.LATENCY : what === "ret" ? HIST.RETURN : HIST.ENTRY;
  let scheme: BucketScheme = { kind: "log2" };
  if (linear !== undefined) {
    const text = String(Array.isArray(linear) ? linear.at(-1) : linear);
    const parts = text.split(",").map((p) => p.trim());
    if (parts.length !== 3 || parts.some((p) => !/^-?\d+$/.test(p))) throw new UsageError(`--linear takes START,STEP,END (whole numbers, like 0,512,8192), not '${text}'`);
    const [start, step, end] = parts.map((p) => BigInt(p)) as [bigint, bigint, bigint];
    try {
      scheme = linearScheme(start, step, end, HIST_BUCKETS - 2);
    } catch (e) {
      throw new UsageError(`--linear ${text}: ${(e as Error).message}`);
    }
  }
  return { kind, what, scheme };
}

/** Writes the histogram's part of struct uprobe_config. */
export function configureHist(cv: DataView, req: HistRequest, signed: boolean, perProcess: boolean): void {
  if (req.scheme.kind === "linear" && req.scheme.start < 0n && !signed) throw new UsageError(`--linear: ${req.what} is never negative here (unsigned): start at 0 or above`);
  cv.setUint8(UPROBE_CONFIG.hist, req.kind);
  cv.setUint8(UPROBE_CONFIG.hist_linear, req.scheme.kind === "linear" ? 1 : 0);
  cv.setUint8(UPROBE_CONFIG.hist_per_process, perProcess ? 1 : 0);
  cv.setUint8(UPROBE_CONFIG.hist_signed, signed ? 1 : 0);
  cv.setUint32(UPROBE_CONFIG.hist_buckets, bucketCount(req.scheme), true);
  if (req.scheme.kind === "linear") {
    cv.setBigInt64(UPROBE_CONFIG.linear_start, req.scheme.start, true);
    cv.setBigUint64(UPROBE_CONFIG.linear_step, req.scheme.step, true);
  }
}

/** Where one function's counted value is: the bytes of its `hist_slots` entry (struct slot_desc), and whether it is signed. */
export interface HistSlot {
  bytes: Uint8Array;
  signed: boolean;
}

const SCALARS = new Set(["int", "bool", "pointer", "enum"]);

function encodeSlot(kind: "reg" | "mem", reg: number, offset: number, width: number, signed: boolean): Uint8Array {
  const b = new Uint8Array(SLOT_DESC.size);
  const v = new DataView(b.buffer);
  v.setUint8(SLOT_DESC.kind, kind === "reg" ? SLOT.REG : SLOT.MEM);
  v.setUint8(SLOT_DESC.width, width);
  v.setUint8(SLOT_DESC.is_signed, signed ? 1 : 0);
  v.setUint8(SLOT_DESC.reg, reg);
  v.setUint8(SLOT_DESC.index_reg, NO_REG);
  v.setUint8(SLOT_DESC.scale, 1);
  v.setBigInt64(SLOT_DESC.offset, BigInt(offset), true);
  return b;
}

function slotOfValue(layout: FunctionLayout, v: ValueLayout, what: string, fn: string): HistSlot {
  if (!SCALARS.has(v.value.kind) || v.slots.length !== 1) {
    throw new ProbeError(`--hist ${what}: ${fn}'s ${v.name} is ${v.typeText}, not a number`, "count a parameter that is an integer, a pointer, a bool or an enum");
  }
  const s = layout.descriptor.slots[v.slots[0]!]!;
  const bytes = s.reg === SLOT_STACK ? encodeSlot("mem", PT_REGS_INDEX.rsp, s.off, s.size, !!s.signed) : encodeSlot("reg", s.reg, 0, s.size, !!s.signed);
  return { bytes, signed: !!s.signed };
}

/**
 * The slot holding what `req` counts for one function: the named parameter (from its prototype or
 * debug info), or its first result (typed, else the whole return register as a signed number).
 */
export function histSlot(req: HistRequest, fn: string, layout: FunctionLayout | undefined, goAbi: boolean): HistSlot | undefined {
  if (req.kind === HIST.LATENCY) return undefined;
  if (req.kind === HIST.RETURN) {
    const r = layout?.results[0];
    if (r) return slotOfValue(layout!, r, req.what, fn);
    if (layout) throw new ProbeError(`--hist ret: ${fn} returns nothing (${layout.proto.text})`);
    return { bytes: encodeSlot("reg", PT_REGS_INDEX.rax, 0, 8, true), signed: true };
  }
  if (!layout) {
    throw new ProbeError(
      `--hist ${req.what}: the parameters of ${fn} are not known (no prototype given, no debug info found)`,
      goAbi ? `give its prototype: 'func ${fn}(${req.what} int)'` : `give its prototype: 'long ${fn}(long ${req.what})'`,
    );
  }
  const arg = layout.args.find((a) => a.name === req.what);
  if (!arg) {
    const names = layout.args.map((a) => a.name).join(", ");
    throw new ProbeError(`--hist ${req.what}: ${fn} has no parameter named '${req.what}'`, names ? `its parameters: ${names}` : "it takes no parameters");
  }
  return slotOfValue(layout, arg, req.what, fn);
}

export interface HistSpec {
  scheme: BucketScheme;
  signed: boolean;
  /** What is counted, as output names it: "latency", a parameter's name, "ret". */
  what: string;
  /** Values are latencies in ns. */
  durations: boolean;
  perProcess: boolean;
}

export interface HistEntry extends ProcessRow {
  /** The selected container's PID namespace the process is in (0 without a selection of containers). */
  pidns: number;
  hist: Histogram;
}

/**
 * Histogram rows printed every interval (the calls since the last print, of the rows that changed)
 * and at exit (all calls): the rows are counted by the program (HistReport) or elsewhere.
 */
export abstract class HistPrinter {
  /** What the last interval print saw, per row: the next one prints the difference. */
  private readonly shown = new Map<string, Histogram>();

  constructor(
    protected readonly names: string[],
    protected readonly spec: HistSpec,
    protected readonly nspidOf: (pid: number, inner: number) => number[],
  ) {}

  /** Every row, totals since the start: per function, or per process and function. */
  abstract rows(): HistEntry[];

  private heading(e: HistEntry): string {
    const name = this.names[e.func] ?? `#${e.func}`;
    if (!this.spec.perProcess) return `${name} ${this.spec.what}`;
    const chain = this.nspidOf(e.pid, e.nspid);
    const inner = chain.length > 1 ? ` (container pid ${chain.slice(1).join("/")})` : "";
    return `${name} ${this.spec.what}, pid ${e.pid}${inner} ${e.comm}`;
  }

  /** Interval: the calls since the last print, of the rows that changed. Final: all calls of every row. */
  print(out: Out, json: boolean, final: boolean): void {
    const rows = this.rows();
    const shown: [HistEntry, Histogram][] = [];
    for (const e of rows) {
      const id = `${e.pid}:${e.func}`;
      const before = this.shown.get(id);
      if (!final) {
        this.shown.set(id, e.hist);
        const delta = before ? e.hist.since(before) : new Histogram(e.hist.scheme, e.hist.signed, e.hist.counts, e.hist.sum);
        if (delta.count > 0) shown.push([e, delta]);
      } else if (e.hist.count > 0 || !this.spec.perProcess) shown.push([e, e.hist]);
    }
    if (json) {
      for (const [e, h] of shown) {
        const chain = this.spec.perProcess ? this.nspidOf(e.pid, e.nspid) : [];
        out.line(JSON.stringify({
          event: "hist",
          function: this.names[e.func] ?? `#${e.func}`,
          value: this.spec.what,
          ...(this.spec.durations ? { unit: "ns" } : {}),
          ...(this.spec.perProcess ? { pid: e.pid, ...(chain.length > 1 ? { nspid: chain } : {}), comm: e.comm } : {}),
          ...(final ? { final: true } : { interval: true }),
          ...histogramJson(h),
        }));
      }
      out.flush();
      return;
    }
    if (!shown.length) return;
    if (!final) out.line(pc.bold(new Date().toTimeString().slice(0, 8)));
    for (const [e, h] of shown) {
      out.line(`${pc.bold(this.heading(e))}: ${summaryText(h, this.spec)}`);
      for (const l of histogramLines(h, this.spec)) out.line(l);
      out.line("");
    }
    out.flush();
  }
}

export class HistReport extends HistPrinter {
  private readonly perFunction: MapReader;
  private readonly perProcess: ProcessRows<HistEntry>;

  constructor(
    histsFd: number,
    procHistsFd: number,
    names: string[],
    spec: HistSpec,
    nspidOf: (pid: number, inner: number) => number[],
  ) {
    super(names, spec, nspidOf);
    this.perFunction = new MapReader(histsFd);
    this.perProcess = new ProcessRows(
      new MapReader(procHistsFd),
      (key, value) => {
        const k = new DataView(key.buffer, key.byteOffset, HIST_KEY.size);
        const row = this.decode(value);
        const pidns = new DataView(value.buffer, value.byteOffset, HIST_ROW.size).getUint32(HIST_ROW.pidns, true);
        return { pid: k.getUint32(HIST_KEY.pid, true), func: k.getUint32(HIST_KEY.func, true), comm: row.comm, nspid: row.nspid, pidns, hist: row.hist };
      },
      (kept, e) => (kept ? { ...kept, hist: kept.hist.plus(e.hist) } : e),
      nspidOf,
    );
  }

  private decode(bytes: Uint8Array): ReturnType<typeof decodeHistRow> {
    return decodeHistRow(new DataView(bytes.buffer, bytes.byteOffset, HIST_ROW.size), 0, this.spec.scheme, this.spec.signed);
  }

  /** Every row, totals since the start: per function, or per process (live and exited) and function. */
  rows(): HistEntry[] {
    if (!this.spec.perProcess) {
      return this.names.map((_, func) => {
        const [v] = this.perFunction.lookup(new Uint8Array(new Uint32Array([func]).buffer)) ?? [];
        return { pid: 0, func, comm: "", nspid: 0, pidns: 0, hist: v ? this.decode(v).hist : Histogram.empty(this.spec.scheme, this.spec.signed) };
      });
    }
    return this.perProcess.read();
  }
}
