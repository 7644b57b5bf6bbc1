// Where each argument and result of a parsed prototype is at the probe point (x86-64), and a flat
// descriptor telling a BPF program what to read: registers by their index in struct pt_regs, or
// 8-byte-or-smaller words above the stack pointer, and memory to copy through pointers found there.
//
// C follows the System V x86-64 psABI: integer class arguments in rdi, rsi, rdx, rcx, r8, r9, then
// eightbyte stack slots at rsp+8, rsp+16... (at function entry [rsp] is the return address);
// results in rax. Floating-point values go to xmm registers, which a uprobe does not see: they are
// placed (so later arguments are right) but marked unreadable.
//
// Go follows ABIInternal (Go >= 1.17, amd64; src/cmd/compile/abi-internal.md): integer registers
// RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; each argument goes entirely into registers if all its
// parts fit in the registers left, else entirely onto the stack, and later arguments may still take
// registers. Results restart at RAX and are read at the RET instruction, where rsp points at the
// return address just as at entry, so stack results are also at rsp+8+offset. Shape-instantiated
// generic functions take a dictionary pointer first (RAX), which the prototype does not name.
import { ProbeError } from "../errors.ts";
import { PrototypeError, elementSize, paramName, resultName, type Count, type Param, type Prototype, type Type } from "./prototype-model.ts";

/** struct pt_regs of x86-64, in memory order: a register's index is its u64 slot in the struct. */
export const PT_REGS = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss"] as const;
export type PtReg = (typeof PT_REGS)[number];
export const PT_REGS_INDEX: Readonly<Record<PtReg, number>> = Object.fromEntries(PT_REGS.map((r, i) => [r, i])) as Record<PtReg, number>;

export const SYSV_INT_ARGS: readonly PtReg[] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];
export const GO_INT_REGS: readonly PtReg[] = ["rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11"];
const SYSV_SSE_REGS = 8;
const GO_FP_REGS = 15;

/** A register, or a byte offset above the stack pointer at the probe point. */
export type Location = { reg: PtReg } | { stack: number };

/** One machine word (or less) of a value: read `size` bytes; the value is in the low bytes. */
export interface Part {
  loc: Location;
  size: number;
}

export type ScalarKind = { kind: "int"; size: 1 | 2 | 4 | 8; signed: boolean } | { kind: "bool" } | { kind: "pointer" };

/** What a value is, for reading and formatting. Parts are listed per kind. */
export type ValueKind =
  | ScalarKind
  /** C enum: a 4-byte int shown by name when names are known. */
  | { kind: "enum"; tag: string }
  /** C `char *`: [pointer]; the text is copied up to its NUL. */
  | { kind: "cstring" }
  /** C `T *p[LEN]`: [pointer]; count elements of elemSize bytes are copied. */
  | { kind: "buffer"; elemSize: number; count: Count }
  /** Go string: [pointer, length]. */
  | { kind: "gostring" }
  /** Go slice: [pointer, length, capacity]; the elements are copied when `bytes` ([]byte). */
  | { kind: "goslice"; elemSize: number; bytes: boolean }
  /** Go interface: [itab (or type, when empty), data]. */
  | { kind: "interface"; empty: boolean }
  /** Go [N]T of scalars: one part per element. */
  | { kind: "array"; len: number; elem: ScalarKind }
  /** Zero-size Go values (struct{}, [0]T): nothing to read. */
  | { kind: "empty" }
  /** Placed (parts say where, when known) but not shown; `reason` is one line. */
  | { kind: "unreadable"; reason: string };

export interface ValueLayout {
  /** As written, or arg0.., recv, ret, ret0.. */
  name: string;
  /** The type as shown ("const char *", "[]byte"). */
  typeText: string;
  role: "receiver" | "arg" | "result";
  /** Position in Prototype.params or Prototype.results. */
  index: number;
  value: ValueKind;
  parts: Part[];
  /** Descriptor slots holding `parts`, in the same order (none when unreadable or empty). */
  slots: number[];
  /** Descriptor capture copying what the value points at. */
  capture?: number;
}

// ---------------------------------------------------------------------------------------------
// The descriptor a BPF program follows

export const PHASE_ENTRY = 0;
export const PHASE_RETURN = 1;
/** SlotRecord.reg for a stack word. */
export const SLOT_STACK = -1;
export const CAPTURE_CSTRING = 1;
export const CAPTURE_BYTES = 2;
export const LEN_NONE = 0;
export const LEN_CONST = 1;
export const LEN_SLOT = 2;

/**
 * One word to record. Entry slots are read by the entry program, return slots by the return
 * program. `reg` >= 0: the u64 at index `reg` of struct pt_regs. `reg` = -1: `size` bytes at
 * sp + `off`, into the low bytes of a zeroed u64. Slots are numbered entry first, then return.
 */
export interface SlotRecord {
  phase: typeof PHASE_ENTRY | typeof PHASE_RETURN;
  reg: number;
  off: number;
  size: 1 | 2 | 4 | 8;
  /** Only a length's sign matters to BPF: a negative length (ret -1) copies nothing. */
  signed: 0 | 1;
}

/**
 * Memory to copy, in the phase given, through the pointer in slot `ptrSlot`.
 * CSTRING: up to `max` bytes, stopping at NUL (truncated when no NUL is within `max`).
 * BYTES: n bytes, at most `max`, where n is `len` * `scale` for LEN_CONST, and for LEN_SLOT the
 * value of slot `len`, times the value of slot `len2` when `len2` >= 0, times `scale` (each slot
 * value taken as `size` bytes, signed per the slot; a negative or zero value copies nothing).
 * A return-phase capture may use entry slots (the pointer of `buf[ret]`, the `size` of
 * `[ret * size]`): those are listed in Descriptor.saveAtEntry, to keep from entry to return.
 */
export interface CaptureRecord {
  phase: typeof PHASE_ENTRY | typeof PHASE_RETURN;
  kind: typeof CAPTURE_CSTRING | typeof CAPTURE_BYTES;
  ptrSlot: number;
  lenFrom: typeof LEN_NONE | typeof LEN_CONST | typeof LEN_SLOT;
  len: number;
  /** A second length slot multiplied in, or -1. */
  len2: number;
  scale: number;
  max: number;
}

export interface Descriptor {
  slots: SlotRecord[];
  captures: CaptureRecord[];
  /** slots[0..entrySlots) are entry slots, the rest return slots. */
  entrySlots: number;
  /** captures[0..entryCaptures) are copied at entry, the rest at return. */
  entryCaptures: number;
  /** Entry slots that return-phase captures need: save them at entry, per call. */
  saveAtEntry: number[];
}

export interface FunctionLayout {
  proto: Prototype;
  abi: "sysv" | "go";
  /** Receiver and arguments, in order. */
  args: ValueLayout[];
  results: ValueLayout[];
  descriptor: Descriptor;
}

export interface LocateOptions {
  /** Bytes copied at most from a C string or a Go string (default 128). */
  stringMax?: number;
  /** Bytes copied at most from a buffer or a Go []byte (default 256). */
  bufferMax?: number;
}

export const DEFAULT_STRING_MAX = 128;
export const DEFAULT_BUFFER_MAX = 256;

/** "rdi", "rsp+16": a location as a person reads it. */
export function locationText(loc: Location): string {
  return "reg" in loc ? loc.reg : `rsp+${loc.stack}`;
}

// ---------------------------------------------------------------------------------------------

function align(n: number, a: number): number {
  return a <= 1 ? n : Math.ceil(n / a) * a;
}

function refuse(proto: Prototype, p: Param, what: string, hint?: string): never {
  throw new PrototypeError(what, p.column, proto.text, hint);
}

/** A pointer's kind: a C string, a counted buffer, or just an address. */
function pointerKind(t: Extract<Type, { kind: "pointer" }>, p: Param): ValueKind {
  if (p.count) return { kind: "buffer", elemSize: elementSize(t.to) ?? 1, count: p.count };
  if (t.to.kind === "int" && t.to.char) return { kind: "cstring" };
  return { kind: "pointer" };
}

// ---------------------------------------------------------------------------------------------
// System V x86-64

type SysvClass = "int" | "int2" | "sse" | "memory";

function sysvValue(proto: Prototype, p: Param, what: string): { value: ValueKind; cls: SysvClass; size: number; align: number } {
  const t = p.type;
  switch (t.kind) {
    case "int":
      if (t.size === 16) return { value: { kind: "unreadable", reason: "128-bit integers are not shown" }, cls: "int2", size: 16, align: 16 };
      return { value: { kind: "int", size: t.size, signed: t.signed }, cls: "int", size: t.size, align: 8 };
    case "bool":
      return { value: { kind: "bool" }, cls: "int", size: 1, align: 8 };
    case "enum":
      return { value: { kind: "enum", tag: t.tag }, cls: "int", size: 4, align: 8 };
    case "pointer":
      return { value: pointerKind(t, p), cls: "int", size: 8, align: 8 };
    case "float":
      if (t.size === 16) return { value: { kind: "unreadable", reason: "long double values are not shown" }, cls: "memory", size: 16, align: 16 };
      return { value: { kind: "unreadable", reason: "" }, cls: "sse", size: 8, align: 8 };
    case "record":
      refuse(proto, p, `${what} is a ${t.text} passed by value, which probe cannot place or show`, "pass a pointer to it instead ('struct X *') if that is what the function takes");
    case "named":
      refuse(
        proto,
        p,
        `${what} has type ${t.text}, which probe does not know: by value its size and where it is passed are unknown`,
        `behind a pointer it is fine (${t.text} *); for a typedef of an integer or a pointer, write that type instead (e.g. 'unsigned long', 'void *')`,
      );
    default:
      refuse(proto, p, `${what} has type ${t.text}, which cannot be passed by value`);
  }
}

function locateSysv(proto: Prototype): { args: Omit<ValueLayout, "slots">[]; results: Omit<ValueLayout, "slots">[] } {
  let gp = 0;
  let sse = 0;
  let stack = 0; // bytes used in the argument area, which starts at rsp+8 and is 16-aligned
  const args = proto.params.map((p, i) => {
    const name = paramName(p, i);
    const { value, cls, size, align: a } = sysvValue(proto, p, `parameter '${name}'`);
    const onStack = (): Part[] => {
      stack = align(stack, a);
      const parts: Part[] = [];
      for (let o = 0; o < size; o += 8) parts.push({ loc: { stack: 8 + stack + o }, size: Math.min(8, size - o) });
      stack += align(size, 8);
      return parts;
    };
    let parts: Part[];
    let v = value;
    if (cls === "int" && gp < SYSV_INT_ARGS.length) parts = [{ loc: { reg: SYSV_INT_ARGS[gp++]! }, size }];
    else if (cls === "int2" && gp + 2 <= SYSV_INT_ARGS.length) parts = [SYSV_INT_ARGS[gp++]!, SYSV_INT_ARGS[gp++]!].map((reg) => ({ loc: { reg }, size: 8 }));
    else if (cls === "sse" && sse < SYSV_SSE_REGS) {
      v = { kind: "unreadable", reason: `${p.type.text} is passed in xmm${sse++}, which a uprobe does not record` };
      parts = [];
    } else {
      parts = onStack();
      if (cls === "sse") v = { kind: "unreadable", reason: "floating-point values are not shown" };
    }
    return { name, typeText: p.type.text, role: "arg" as const, index: i, value: v, parts };
  });
  const results = proto.results.map((p, i) => {
    const name = resultName(p, i, proto.results.length);
    const t = p.type;
    if (t.kind === "record" || t.kind === "named") {
      refuse(
        proto,
        p,
        `returning ${t.text} by value is not supported: probe cannot tell where it is, and a large one is returned through a hidden pointer that moves every argument`,
        t.kind === "named" ? "if it is a typedef of an integer or a pointer, write that type instead (e.g. 'long', 'void *')" : undefined,
      );
    }
    let value: ValueKind;
    let parts: Part[];
    if (t.kind === "float") {
      value = { kind: "unreadable", reason: `${t.text} is returned in ${t.size === 16 ? "st(0)" : "xmm0"}, which a uprobe does not record` };
      parts = [];
    } else if (t.kind === "int" && t.size === 16) {
      value = { kind: "unreadable", reason: "128-bit results (rax:rdx) are not shown" };
      parts = [
        { loc: { reg: "rax" }, size: 8 },
        { loc: { reg: "rdx" }, size: 8 },
      ];
    } else {
      value = sysvValue(proto, p, `the result`).value;
      parts = [{ loc: { reg: "rax" }, size: t.kind === "int" ? t.size : t.kind === "bool" ? 1 : t.kind === "enum" ? 4 : 8 }];
    }
    return { name, typeText: t.text, role: "result" as const, index: i, value, parts };
  });
  return { args, results };
}

// ---------------------------------------------------------------------------------------------
// Go ABIInternal

interface GoShape {
  size: number;
  align: number;
  /** Integer and floating-point registers the value needs when register-assigned. */
  ints: number;
  fps: number;
  /** False for arrays of more than one element: always on the stack. */
  regOk: boolean;
  value: ValueKind;
  /** The value's words in memory order: [offset, size]; in registers, one register each. */
  words: [number, number][];
}

const MAX_GO_ARRAY = 32;

function goScalar(t: Type): ScalarKind | undefined {
  if (t.kind === "int" && t.size <= 8) return { kind: "int", size: t.size as 1 | 2 | 4 | 8, signed: t.signed };
  if (t.kind === "bool") return { kind: "bool" };
  if (t.kind === "pointer" || t.kind === "ref") return { kind: "pointer" };
  return undefined;
}

function goShape(proto: Prototype, p: Param, what: string, t: Type = p.type): GoShape {
  const scalar = goScalar(t);
  if (scalar) {
    const size = t.kind === "int" ? t.size : t.kind === "bool" ? 1 : 8;
    return { size, align: size, ints: 1, fps: 0, regOk: true, value: scalar, words: [[0, size]] };
  }
  switch (t.kind) {
    case "string":
      return { size: 16, align: 8, ints: 2, fps: 0, regOk: true, value: { kind: "gostring" }, words: [[0, 8], [8, 8]] };
    case "slice": {
      const elem = elementSize(t.elem) ?? 0;
      const bytes = t.elem.kind === "int" && t.elem.size === 1;
      return { size: 24, align: 8, ints: 3, fps: 0, regOk: true, value: { kind: "goslice", elemSize: elem, bytes }, words: [[0, 8], [8, 8], [16, 8]] };
    }
    case "interface":
      return { size: 16, align: 8, ints: 2, fps: 0, regOk: true, value: { kind: "interface", empty: t.empty }, words: [[0, 8], [8, 8]] };
    case "float":
      return {
        size: t.size,
        align: t.align,
        ints: 0,
        fps: t.complex ? 2 : 1,
        regOk: true,
        value: { kind: "unreadable", reason: "floating-point values are not shown" },
        words: [[0, t.size]],
      };
    case "record":
      if (t.empty) return { size: 0, align: 1, ints: 0, fps: 0, regOk: true, value: { kind: "empty" }, words: [] };
      refuse(proto, p, `${what} is a struct passed by value, which probe cannot show`, "take a pointer to it in the function instead, or probe where a pointer is passed");
    case "array": {
      const elem = goShape(proto, p, what, t.elem);
      const es = goScalar(t.elem);
      if (t.len === 0) return { size: 0, align: elem.align, ints: 0, fps: 0, regOk: true, value: es ? { kind: "array", len: 0, elem: es } : { kind: "empty" }, words: [] };
      if (t.len === 1) return es ? { ...elem, value: { kind: "array", len: 1, elem: es } } : elem; // registers as its element
      const size = elem.size * t.len;
      if (!es || t.len > MAX_GO_ARRAY) {
        const reason = es ? `arrays longer than ${MAX_GO_ARRAY} elements are not shown` : `arrays of ${t.elem.text} are not shown`;
        return { size, align: elem.align, ints: 0, fps: 0, regOk: false, value: { kind: "unreadable", reason }, words: [] };
      }
      const words: [number, number][] = [];
      for (let i = 0; i < t.len; i++) words.push([i * elem.size, elem.size]);
      return { size, align: elem.align, ints: 0, fps: 0, regOk: false, value: { kind: "array", len: t.len, elem: es }, words };
    }
    case "named":
      if (p.receiver && t === p.type) {
        refuse(
          proto,
          p,
          `the receiver of ${proto.name} is a ${t.text} passed by value, whose layout probe does not know`,
          `give its underlying type in a receiver clause, e.g. 'func (r int) ${proto.name}(...)', or probe a method with a pointer receiver`,
        );
      }
      refuse(
        proto,
        p,
        `${what} has type ${t.text}, which probe does not know: by value it may be a struct whose fields cannot be placed`,
        `write *${t.text} if it is a pointer, 'any' if it is an interface, or its underlying type (int, string...)`,
      );
    default:
      refuse(proto, p, `${what} has type ${t.text}, which cannot be passed by value`);
  }
}

function locateGo(proto: Prototype): { args: Omit<ValueLayout, "slots">[]; results: Omit<ValueLayout, "slots">[] } {
  let stack = 0; // offset in the stack sequence S, which starts at rsp+8
  const assign = (p: Param, name: string, role: ValueLayout["role"], index: number, regs: { i: number; fp: number }): Omit<ValueLayout, "slots"> => {
    const s = goShape(proto, p, role === "result" ? `result '${name}'` : `parameter '${name}'`);
    let parts: Part[];
    let value = s.value;
    if (s.size === 0) {
      stack = align(stack, s.align); // zero-size values go to the stack (ABI step 2)
      parts = [];
    } else if (s.regOk && regs.i + s.ints <= GO_INT_REGS.length && regs.fp + s.fps <= GO_FP_REGS) {
      if (s.fps) {
        // Floating-point values are never mixed with integer words (structs are refused).
        value = { kind: "unreadable", reason: `${p.type.text} is ${role === "result" ? "returned" : "passed"} in X${regs.fp}, which a uprobe does not record` };
        parts = [];
        regs.fp += s.fps;
      } else parts = s.words.map(([, size]) => ({ loc: { reg: GO_INT_REGS[regs.i++]! }, size }));
    } else {
      stack = align(stack, s.align);
      parts = s.words.map(([off, size]) => ({ loc: { stack: 8 + stack + off }, size }));
      stack += s.size;
    }
    return { name, typeText: p.type.text, role, index, value, parts };
  };
  // A generic function compiled for a GC shape (main.Sum[go.shape.int]) takes its dictionary
  // pointer as a hidden first argument, before the receiver: it holds RAX.
  const argRegs = { i: proto.name.includes("[go.shape.") ? 1 : 0, fp: 0 };
  const args = proto.params.map((p, i) => assign(p, paramName(p, i), p.receiver ? "receiver" : "arg", i, argRegs));
  stack = align(stack, 8);
  const resRegs = { i: 0, fp: 0 };
  const results = proto.results.map((p, i) => assign(p, resultName(p, i, proto.results.length), "result", i, resRegs));
  return { args, results };
}

// ---------------------------------------------------------------------------------------------

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
