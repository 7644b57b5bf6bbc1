// A function's layout: where each argument and result is at the probe point (a register of struct
// pt_regs, or bytes above the stack pointer), what kind of value it is, and the flat descriptor a
// BPF program follows to record it. The model locate() (abi.ts) returns and the formatters and
// program descriptions read; the calling conventions that fill it are abi-sysv.ts and abi-go.ts.
import { PrototypeError, type Count, type Param, type Prototype } from "./prototype-model.ts";

/** struct pt_regs of x86-64, in memory order: a register's index is its u64 slot in the struct. */
export const PT_REGS = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss"] as const;
export type PtReg = (typeof PT_REGS)[number];
export const PT_REGS_INDEX: Readonly<Record<PtReg, number>> = Object.fromEntries(PT_REGS.map((r, i) => [r, i])) as Record<PtReg, number>;

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
// Shared by the calling conventions

/** `n` rounded up to a multiple of `a`. */
export function align(n: number, a: number): number {
  return a <= 1 ? n : Math.ceil(n / a) * a;
}

/** A value that cannot be placed: the error points at its parameter in the prototype. */
export function refuse(proto: Prototype, p: Param, what: string, hint?: string): never {
  throw new PrototypeError(what, p.column, proto.text, hint);
}
