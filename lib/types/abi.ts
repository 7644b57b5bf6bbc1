// Where each argument and result of a parsed prototype is at the probe point (x86-64), and a flat
// descriptor telling a BPF program what to read: registers by their index in struct pt_regs, or
// 8-byte-or-smaller words above the stack pointer, and memory to copy through pointers found there.
//
// locate() picks the calling convention (C: System V x86-64, abi-sysv.ts; Go: ABIInternal,
// abi-go.ts), then numbers the words to record as descriptor slots and adds the captures that
// copy what pointers point at. The layout model is function-layout.ts.
import { ProbeError } from "../errors.ts";
import { locateGo } from "./abi-go.ts";
import { locateSysv } from "./abi-sysv.ts";
import {
  CAPTURE_BYTES,
  CAPTURE_CSTRING,
  DEFAULT_BUFFER_MAX,
  DEFAULT_STRING_MAX,
  LEN_CONST,
  LEN_NONE,
  LEN_SLOT,
  PHASE_ENTRY,
  PHASE_RETURN,
  PT_REGS_INDEX,
  SLOT_STACK,
  type CaptureRecord,
  type Descriptor,
  type FunctionLayout,
  type LocateOptions,
  type SlotRecord,
  type ValueKind,
  type ValueLayout,
} from "./function-layout.ts";
import type { Prototype } from "./prototype-model.ts";

/** Whether part `part` of a value is a signed integer (Go lengths are: a negative one copies nothing). */
function partSigned(v: ValueKind, part: number): boolean {
  if (v.kind === "gostring" || v.kind === "goslice") return part >= 1;
  return (v.kind === "int" && v.signed) || v.kind === "enum" || (v.kind === "array" && v.elem.kind === "int" && v.elem.signed);
}

/** Largest capture accepted: far above any sane limit, low enough to never size a huge buffer. */
const MAX_CAPTURE = 1 << 20;

function captureLimit(what: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1 || v > MAX_CAPTURE) throw new ProbeError(`${what} must be a whole number of bytes from 1 to ${MAX_CAPTURE}, not ${v}`);
  return v;
}

/**
 * Places every argument and result of `proto` and builds the descriptor. Throws PrototypeError
 * (pointing at the parameter) for values that cannot be placed: structs and unknown types by value.
 * Floating-point and 128-bit values are placed but unreadable, so the others are still right.
 */
export function locate(proto: Prototype, opts: LocateOptions = {}): FunctionLayout {
  const stringMax = captureLimit("the string limit", opts.stringMax, DEFAULT_STRING_MAX);
  const bufferMax = captureLimit("the buffer limit", opts.bufferMax, DEFAULT_BUFFER_MAX);
  const placed = proto.lang === "go" ? locateGo(proto) : locateSysv(proto);
  const slots: SlotRecord[] = [];
  const withSlots = (v: Omit<ValueLayout, "slots">, phase: SlotRecord["phase"]): ValueLayout => {
    const readable = v.value.kind !== "unreadable" && v.value.kind !== "empty";
    const ids = readable
      ? v.parts.map((part, i) => {
          slots.push({
            phase,
            reg: "reg" in part.loc ? PT_REGS_INDEX[part.loc.reg] : SLOT_STACK,
            off: "stack" in part.loc ? part.loc.stack : 0,
            size: part.size as SlotRecord["size"],
            signed: partSigned(v.value, i) ? 1 : 0,
          });
          return slots.length - 1;
        })
      : [];
    return { ...v, slots: ids };
  };
  const args = placed.args.map((v) => withSlots(v, PHASE_ENTRY));
  const entrySlots = slots.length;
  const results = placed.results.map((v) => withSlots(v, PHASE_RETURN));

  const entry: CaptureRecord[] = [];
  const ret: { rec: CaptureRecord; owner: ValueLayout }[] = [];
  const entryOwners: ValueLayout[] = [];
  const saveAtEntry = new Set<number>();
  const capture = (v: ValueLayout, phase: CaptureRecord["phase"]) => {
    const k = v.value;
    let rec: CaptureRecord | undefined;
    if (k.kind === "cstring") rec = { phase, kind: CAPTURE_CSTRING, ptrSlot: v.slots[0]!, lenFrom: LEN_NONE, len: 0, len2: -1, scale: 1, max: stringMax };
    else if (k.kind === "gostring") rec = { phase, kind: CAPTURE_BYTES, ptrSlot: v.slots[0]!, lenFrom: LEN_SLOT, len: v.slots[1]!, len2: -1, scale: 1, max: stringMax };
    else if (k.kind === "goslice" && k.bytes) rec = { phase, kind: CAPTURE_BYTES, ptrSlot: v.slots[0]!, lenFrom: LEN_SLOT, len: v.slots[1]!, len2: -1, scale: 1, max: bufferMax };
    else if (k.kind === "buffer") {
      const base = { kind: CAPTURE_BYTES, ptrSlot: v.slots[0]!, scale: k.elemSize * k.count.factor, max: bufferMax } as const;
      const lens = [...(k.count.ret ? [results[0]!.slots[0]!] : []), ...k.count.params.map((q) => args[q.index]!.slots[0]!)];
      if (!lens.length) rec = { ...base, phase, lenFrom: LEN_CONST, len: k.count.factor, len2: -1, scale: k.elemSize };
      else if (!k.count.ret) rec = { ...base, phase, lenFrom: LEN_SLOT, len: lens[0]!, len2: lens[1] ?? -1 };
      else {
        // [ret]: the pointer (and any parameter in the length) is known at entry, the return
        // value and the bytes only at return.
        saveAtEntry.add(v.slots[0]!);
        for (const s of lens.slice(1)) saveAtEntry.add(s);
        ret.push({ rec: { ...base, phase: PHASE_RETURN, lenFrom: LEN_SLOT, len: lens[0]!, len2: lens[1] ?? -1 }, owner: v });
        return;
      }
    }
    if (!rec) return;
    if (phase === PHASE_ENTRY) {
      entry.push(rec);
      entryOwners.push(v);
    } else ret.push({ rec, owner: v });
  };
  for (const v of args) capture(v, PHASE_ENTRY);
  for (const v of results) capture(v, PHASE_RETURN);
  entryOwners.forEach((v, i) => (v.capture = i));
  ret.forEach(({ owner }, i) => (owner.capture = entry.length + i));
  const descriptor: Descriptor = {
    slots,
    captures: [...entry, ...ret.map((r) => r.rec)],
    entrySlots,
    entryCaptures: entry.length,
    saveAtEntry: [...saveAtEntry].sort((a, b) => a - b),
  };
  return { proto, abi: proto.lang === "go" ? "go" : "sysv", args, results, descriptor };
}

/** The one-line reasons some values will not be shown ("x: double is passed in xmm0, ..."). */
export function unreadableValues(layout: FunctionLayout): string[] {
  return [...layout.args, ...layout.results].flatMap((v) => (v.value.kind === "unreadable" ? [`${v.name}: ${v.value.reason}`] : []));
}
