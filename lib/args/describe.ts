// What the typed programs (bpf/args.h) are told about one probed function: the values to read at
// its call and return (a register, memory at base + index*scale + offset, a constant) and the
// memory to copy through them (C strings, buffers of a length given by other values). Built from a
// prototype's layout (lib/types/abi.ts), debug info, or USDT argument specs; encoded into the
// bytes of one `funcs` map entry.
import { ProbeError } from "../errors.ts";
import {
  ALL_SLOTS, CAPTURES, CAPTURE_DESC as CD, COPY, ENTRY_SLOTS, FUNC_DESC as FD, LEN, NO_REG, RET_SLOTS, SAVED_PTRS, SLOT, SLOT_DESC as SD,
} from "../layouts.ts";
import { PHASE_ENTRY, SLOT_STACK, CAPTURE_CSTRING, LEN_CONST, LEN_SLOT, PT_REGS_INDEX, type Descriptor } from "../types/function-layout.ts";

export interface SlotSpec {
  kind: "reg" | "mem" | "const";
  width: 1 | 2 | 4 | 8;
  signed: boolean;
  /** pt_regs index: the register (reg), the base (mem; undefined for none). */
  reg?: number;
  indexReg?: number;
  scale?: number;
  /** reg: bits to shift right first (%ah). */
  shift?: number;
  /** mem: displacement; const: the value. */
  offset?: bigint;
}

export interface CaptureSpec {
  kind: "str" | "buf";
  /** The slot (entry slots, then return slots, numbered together) holding the pointer. */
  ptrSlot: number;
  lenFrom: "none" | "const" | "slot";
  lenSlot?: number;
  len2Slot?: number;
  lenConst?: number;
  scale?: number;
  max: number;
}

/** One function's values. Return slots are numbered after the entry slots. */
export interface FunctionValues {
  entry: SlotSpec[];
  ret: SlotSpec[];
  entryCaptures: CaptureSpec[];
  retCaptures: CaptureSpec[];
  /** Entry slots kept from the call to its return (the pointer of `buf[ret]`). */
  saved: number[];
}

/** Too many values for the program's fixed room: said before anything is loaded. */
export class TooManyValues extends ProbeError {}

const RSP = PT_REGS_INDEX.rsp;

/** A prototype's layout (lib/types/abi.ts) as the program's description. */
export function fromDescriptor(d: Descriptor): FunctionValues {
  const slot = (s: Descriptor["slots"][number]): SlotSpec =>
    s.reg === SLOT_STACK
      ? { kind: "mem", width: s.size, signed: !!s.signed, reg: RSP, offset: BigInt(s.off) }
      : { kind: "reg", width: s.size, signed: !!s.signed, reg: s.reg };
  const capture = (c: Descriptor["captures"][number]): CaptureSpec => ({
    kind: c.kind === CAPTURE_CSTRING ? "str" : "buf",
    ptrSlot: c.ptrSlot,
    lenFrom: c.lenFrom === LEN_SLOT ? "slot" : c.lenFrom === LEN_CONST ? "const" : "none",
    lenSlot: c.lenFrom === LEN_SLOT ? c.len : undefined,
    len2Slot: c.len2 >= 0 ? c.len2 : undefined,
    lenConst: c.lenFrom === LEN_CONST ? c.len : undefined,
    scale: c.scale,
    max: c.max,
  });
  return {
    entry: d.slots.slice(0, d.entrySlots).map(slot),
    ret: d.slots.slice(d.entrySlots).map(slot),
    entryCaptures: d.captures.filter((c) => c.phase === PHASE_ENTRY).map(capture),
    retCaptures: d.captures.filter((c) => c.phase !== PHASE_ENTRY).map(capture),
    saved: d.saveAtEntry,
  };
}

/** The bytes of one `funcs` entry (struct func_desc). `what` names the function in errors. */
export function encodeFunction(v: FunctionValues, what: string): Uint8Array {
  if (v.entry.length > ENTRY_SLOTS || v.ret.length > RET_SLOTS || v.entry.length + v.ret.length > ALL_SLOTS) {
    throw new TooManyValues(`${what}: ${v.entry.length} values at the call and ${v.ret.length} at the return; probe records at most ${ENTRY_SLOTS} and ${RET_SLOTS}`, "name fewer parameters (or give the rest as a pointer)");
  }
  if (v.entryCaptures.length + v.retCaptures.length > CAPTURES) throw new TooManyValues(`${what}: more than ${CAPTURES} strings and buffers to copy`, "show some of them as pointers");
  if (v.saved.length > SAVED_PTRS) throw new TooManyValues(`${what}: more than ${SAVED_PTRS} values kept for the return`);
  const out = new Uint8Array(FD.size);
  const dv = new DataView(out.buffer);
  dv.setUint8(FD.nentry, v.entry.length);
  dv.setUint8(FD.nret, v.ret.length);
  dv.setUint8(FD.ncap_entry, v.entryCaptures.length);
  dv.setUint8(FD.ncap_ret, v.retCaptures.length);
  dv.setUint8(FD.nsaved, v.saved.length);
  v.saved.forEach((s, i) => dv.setUint8(FD.saved + i, s));
  [...v.entry, ...v.ret].forEach((s, i) => {
    const o = FD.slots + i * SD.size;
    dv.setUint8(o + SD.kind, s.kind === "reg" ? SLOT.REG : s.kind === "mem" ? SLOT.MEM : SLOT.CONST);
    dv.setUint8(o + SD.width, s.width);
    dv.setUint8(o + SD.is_signed, s.signed ? 1 : 0);
    dv.setUint8(o + SD.reg, s.reg ?? NO_REG);
    dv.setUint8(o + SD.index_reg, s.indexReg ?? NO_REG);
    dv.setUint8(o + SD.scale, s.scale ?? 1);
    dv.setUint8(o + SD.shift, s.shift ?? 0);
    dv.setBigInt64(o + SD.offset, s.offset ?? 0n, true);
  });
  [...v.entryCaptures, ...v.retCaptures].forEach((c, i) => {
    const o = FD.caps + i * CD.size;
    dv.setUint8(o + CD.kind, c.kind === "str" ? COPY.STR : COPY.BUF);
    dv.setUint8(o + CD.ptr_slot, c.ptrSlot);
    dv.setUint8(o + CD.len_from, c.lenFrom === "slot" ? LEN.SLOT : c.lenFrom === "const" ? LEN.CONST : LEN.NONE);
    dv.setUint8(o + CD.len_slot, c.lenSlot ?? 0);
    dv.setUint8(o + CD.len2_slot, c.len2Slot ?? NO_REG);
    dv.setUint32(o + CD.scale, c.scale ?? 1, true);
    dv.setUint32(o + CD.max, c.max, true);
    dv.setBigUint64(o + CD.len_const, BigInt(c.lenConst ?? 0), true);
  });
  return out;
}
