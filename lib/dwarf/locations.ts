// Where a parameter's value is at one pc: picks the expression that applies (a single DW_AT_location
// expression, or the entry of a location list covering the pc) and describes it as a register, a
// stack slot, register pieces (Go strings and slices), a constant, or unavailable.
import { FORM, OP, registerName } from "./constants.ts";
import { Cursor } from "./cursor.ts";
import { DwarfError } from "./errors.ts";
import { listIndex, MAX_LIST_ENTRIES } from "./ranges.ts";
import type { Unit } from "./unit.ts";
import { toAddr } from "./forms.ts";

export type ParamLocation =
  /** The whole value is in a register. `reg` is the DWARF number, `name` the x86-64 name. */
  | { kind: "register"; reg: number; name: string }
  /**
   * The value is in memory at `base + offset`: `base` "cfa" is the canonical frame address
   * (at a function's first instruction, rsp + 8 on x86-64); otherwise it names a register.
   */
  | { kind: "stack"; base: "cfa" | string; reg?: number; offset: number }
  /** The value is split (DW_OP_piece): each piece's size in bytes and where it is. */
  | { kind: "pieces"; pieces: { size: number; location: ParamLocation }[] }
  /** The value is known and constant here (DW_AT_const_value, DW_OP_lit/const + stack_value, implicit_value). */
  | { kind: "constant"; value: bigint | Uint8Array }
  /** The value is at a fixed address (a static). */
  | { kind: "address"; address: number }
  /** A DWARF expression that is computed rather than a place (shown as readelf would). */
  | { kind: "expression"; text: string }
  /** Optimized out, or not described at this pc. */
  | { kind: "unavailable"; reason: string };

export interface LocationContext {
  unit: Unit;
  /** The function's DW_AT_frame_base expression, for DW_OP_fbreg. */
  frameBase?: Uint8Array;
  /** The pc at which the location is wanted (a function's entry). */
  pc: number;
}

/** The location of the DIE attribute `{form, val}` (DW_AT_location) at `ctx.pc`. */
export function locationAt(attr: { form: number; val: unknown }, ctx: LocationContext): ParamLocation {
  const { unit } = ctx;
  if (attr.val instanceof Uint8Array) return describe(attr.val, ctx);
  if (typeof attr.val !== "number") return { kind: "unavailable", reason: "location in an unsupported form" };
  let off = attr.val;
  const v5 = unit.h.version >= 5;
  if (attr.form === FORM.loclistx) off = listIndex(unit, ".debug_loclists", unit.loclistsBase, attr.val);
  const expr = v5 ? findInLoclists(unit, off, ctx.pc) : findInLoc(unit, off, ctx.pc);
  if (!expr) return { kind: "unavailable", reason: "not described at this address" };
  return describe(expr, ctx);
}

function unitBase(unit: Unit): number | undefined {
  return unit.addr(unit.root(), 0x11 /* low_pc */) ?? 0;
}

/** DWARF 5 .debug_loclists: the expression of the entry covering pc. */
function findInLoclists(unit: Unit, off: number, pc: number): Uint8Array | undefined {
  return unit.secs.need(".debug_loclists", "a location list").read(off, (c) => {
    const a = unit.h.addrSize;
    let base = unitBase(unit);
    let found: Uint8Array | undefined;
    let dflt: Uint8Array | undefined;
    for (let n = 0; n < MAX_LIST_ENTRIES; n++) {
      const kind = c.u8();
      let s: number | undefined;
      let e: number | undefined;
      switch (kind) {
        case 0: // end_of_list
          return found ?? dflt;
        case 1: // base_addressx
          base = unit.addrx(c.uleb());
          continue;
        case 2: // startx_endx
          s = unit.addrx(c.uleb());
          e = unit.addrx(c.uleb());
          break;
        case 3: { // startx_length
          s = unit.addrx(c.uleb());
          const len = c.uleb();
          e = s === undefined ? undefined : s + len;
          break;
        }
        case 4: { // offset_pair
          const o1 = c.uleb();
          const o2 = c.uleb();
          if (base !== undefined) {
            s = base + o1;
            e = base + o2;
          }
          break;
        }
        case 5: // default_location
          dflt = c.bytesOf(c.uleb());
          continue;
        case 6: // base_address
          base = toAddr(c.uSizedBig(a));
          continue;
        case 7: // start_end
          s = toAddr(c.uSizedBig(a));
          e = toAddr(c.uSizedBig(a));
          break;
        case 8: { // start_length
          s = toAddr(c.uSizedBig(a));
          const len = c.uleb();
          e = s === undefined ? undefined : s + len;
          break;
        }
        case 9: // GNU view pair: two view numbers, no expression
          c.uleb();
          c.uleb();
          continue;
        default:
          c.fail(`unknown location list entry kind ${kind}`);
      }
      const expr = c.bytesOf(c.uleb());
      if (!found && s !== undefined && e !== undefined && pc >= s && pc < e) found = expr;
    }
    throw new DwarfError(`${c.where}: location list at 0x${off.toString(16)} has too many entries`);
  });
}

/** DWARF 2-4 .debug_loc: the expression of the entry covering pc. */
function findInLoc(unit: Unit, off: number, pc: number): Uint8Array | undefined {
  return unit.secs.need(".debug_loc", "a location list").read(off, (c) => {
    const a = unit.h.addrSize;
    const all = a === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    let base = unitBase(unit);
    for (let n = 0; n < MAX_LIST_ENTRIES; n++) {
      const s = c.uSizedBig(a);
      const e = c.uSizedBig(a);
      if (s === 0n && e === 0n) return undefined;
      if (s === all) {
        base = toAddr(e);
        continue;
      }
      const expr = c.bytesOf(c.u16());
      if (base === undefined) continue;
      const start = BigInt(base) + s;
      const end = BigInt(base) + e;
      if (BigInt(pc) >= start && BigInt(pc) < end) return expr;
    }
    return c.fail("location list has too many entries");
  });
}

interface Op {
  op: number;
  /** Operands as numbers or bigints; blocks as bytes. */
  args: (number | bigint | Uint8Array)[];
}

const MAX_OPS = 4096;

/** Splits a DWARF expression into operations (every operand's encoding checked). */
export function parseOps(expr: Uint8Array, unit: Unit): Op[] {
  const c = new Cursor(expr, 0, `${unit.where}: DWARF expression`);
  const ops: Op[] = [];
  const a = unit.h.addrSize;
  const refSize = unit.h.version <= 2 ? a : unit.h.offsetSize;
  while (!c.atEnd) {
    if (ops.length >= MAX_OPS) c.fail("expression too long");
    const op = c.u8();
    const args: (number | bigint | Uint8Array)[] = [];
    if (op >= OP.lit0 && op <= OP.reg31) {
      // literals and registers: no operand
    } else if (op >= OP.breg0 && op <= OP.breg31) {
      args.push(c.slebBig());
    } else {
      switch (op) {
        case OP.addr: args.push(c.uSizedBig(a)); break;
        case OP.const1u: case 0x94: case 0x95: case 0x15: args.push(c.u8()); break;
        case OP.const1s: args.push(BigInt.asIntN(8, BigInt(c.u8()))); break;
        case OP.const2u: case 0x98: args.push(c.u16()); break;
        case OP.const2s: case 0x28: case 0x2f: args.push(BigInt.asIntN(16, BigInt(c.u16()))); break;
        case OP.const4u: case 0x99: case OP.GNU_parameter_ref: args.push(c.u32()); break;
        case OP.const4s: args.push(BigInt.asIntN(32, BigInt(c.u32()))); break;
        case OP.const8u: args.push(c.u64big()); break;
        case OP.const8s: args.push(BigInt.asIntN(64, c.u64big())); break;
        case OP.constu: case OP.plus_uconst: case OP.regx: case OP.piece: case OP.addrx: case OP.constx:
        case 0xa8: case 0xa9: case 0xf7: case 0xf9: case 0xfb: case 0xfc:
          args.push(c.ulebBig()); break;
        case OP.consts: case OP.fbreg: args.push(c.slebBig()); break;
        case OP.bregx: args.push(c.ulebBig(), c.slebBig()); break;
        case 0x9d: args.push(c.ulebBig(), c.ulebBig()); break; // bit_piece
        case OP.implicit_value: args.push(c.bytesOf(c.uleb())); break;
        case OP.implicit_pointer: case OP.GNU_implicit_pointer: args.push(c.uSizedBig(refSize), c.slebBig()); break;
        case OP.entry_value: case OP.GNU_entry_value: args.push(c.bytesOf(c.uleb())); break;
        case 0xa4: case 0xf4: { args.push(c.ulebBig()); args.push(c.bytesOf(c.u8())); break; } // const_type
        case 0xa5: case 0xf5: args.push(c.ulebBig(), c.ulebBig()); break; // regval_type
        case 0xa6: case 0xa7: case 0xf6: args.push(c.u8(), c.ulebBig()); break; // deref_type
        case 0x9a: case 0xfd: args.push(c.uSizedBig(unit.h.offsetSize)); break; // call_ref, GNU_variable_value
        case 0x06: case 0x12: case 0x13: case 0x14: case 0x16: case 0x17: case 0x18: case 0x19: case 0x1a:
        case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f: case 0x20: case 0x21: case 0x22: case 0x24:
        case 0x25: case 0x26: case 0x27: case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e:
        case 0x96: case 0x97: case 0x9b: case OP.call_frame_cfa: case OP.stack_value: case 0xe0: case 0xf0:
          break;
        default:
          c.fail(`unknown DWARF operation 0x${op.toString(16)}`);
      }
    }
    ops.push({ op, args });
  }
  return ops;
}

/** Describes an expression as a place, evaluated at the function's entry (see ParamLocation). */
export function describe(expr: Uint8Array, ctx: LocationContext): ParamLocation {
  if (expr.length === 0) return { kind: "unavailable", reason: "optimized out" };
  const ops = parseOps(expr, ctx.unit);
  if (!ops.some((o) => o.op === OP.piece)) return simple(ops, ctx);
  const pieces: { size: number; location: ParamLocation }[] = [];
  let cur: Op[] = [];
  for (const o of ops) {
    if (o.op !== OP.piece) {
      cur.push(o);
      continue;
    }
    const size = Number(o.args[0]);
    if (!Number.isSafeInteger(size) || size > 1 << 20) return { kind: "expression", text: opsText(ops) };
    pieces.push({ size, location: cur.length ? simple(cur, ctx) : { kind: "unavailable", reason: "optimized out" } });
    cur = [];
  }
  if (cur.length) return { kind: "expression", text: opsText(ops) };
  return { kind: "pieces", pieces };
}

function simple(ops: Op[], ctx: LocationContext): ParamLocation {
  const [o, o2, o3] = ops;
  const n = ops.length;
  if (!o) return { kind: "unavailable", reason: "optimized out" };
  // DW_OP_regN / DW_OP_regx N
  if (n === 1 && o.op >= OP.reg0 && o.op <= OP.reg31) return reg(o.op - OP.reg0);
  if (n === 1 && o.op === OP.regx) return reg(Number(o.args[0]));
  // DW_OP_fbreg N: relative to the function's frame base.
  if (n === 1 && o.op === OP.fbreg) return fbreg(Number(o.args[0]), ctx);
  // DW_OP_bregN off: memory at register + offset
  if (n === 1 && o.op >= OP.breg0 && o.op <= OP.breg31) return mem(o.op - OP.breg0, Number(o.args[0]));
  if (n === 1 && o.op === OP.bregx) return mem(Number(o.args[0]), Number(o.args[1]));
  // DW_OP_call_frame_cfa [+ N]: Go's stack-passed values.
  if (o.op === OP.call_frame_cfa) {
    if (n === 1) return { kind: "stack", base: "cfa", offset: 0 };
    if (n === 2 && o2!.op === OP.plus_uconst) return { kind: "stack", base: "cfa", offset: Number(o2!.args[0]) };
    if (n === 3 && isConst(o2!) && o3!.op === 0x22 /* plus */) return { kind: "stack", base: "cfa", offset: Number(constOf(o2!)) };
  }
  if (n === 1 && o.op === OP.addr) {
    const a = toAddr(o.args[0] as bigint);
    if (a !== undefined) return { kind: "address", address: a };
  }
  // DW_OP_entry_value(DW_OP_regN) DW_OP_stack_value: "what regN held on entry", which at the
  // entry is regN itself.
  if (n === 2 && (o.op === OP.entry_value || o.op === OP.GNU_entry_value) && o2!.op === OP.stack_value) {
    const inner = parseOps(o.args[0] as Uint8Array, ctx.unit);
    if (inner.length === 1 && inner[0]!.op >= OP.reg0 && inner[0]!.op <= OP.reg31) return reg(inner[0]!.op - OP.reg0);
    if (inner.length === 1 && inner[0]!.op === OP.regx) return reg(Number(inner[0]!.args[0]));
  }
  // clang: DW_OP_bregN 0, then only truncations (and 0xff/0xffff/0xffffffff, convert), then
  // DW_OP_stack_value: the value is regN's low bits, which is how a register argument is read.
  const truncated = registerValue(ops);
  if (truncated !== undefined) return reg(truncated);
  // A constant: DW_OP_litN / constN DW_OP_stack_value
  if (n === 2 && isConst(o) && o2!.op === OP.stack_value) return { kind: "constant", value: constOf(o) };
  if (n === 1 && o.op === OP.implicit_value) return { kind: "constant", value: o.args[0] as Uint8Array };
  if (o.op === OP.implicit_pointer || o.op === OP.GNU_implicit_pointer) {
    return { kind: "unavailable", reason: "implicit pointer (the pointed-to value was optimized into constants)" };
  }
  return { kind: "expression", text: opsText(ops) };
}

const MASKS = new Set([0xffn, 0xffffn, 0xffffffffn]);

function registerValue(ops: Op[]): number | undefined {
  const first = ops[0];
  if (!first || ops.length < 2 || ops[ops.length - 1]!.op !== OP.stack_value) return undefined;
  let r: number;
  if (first.op >= OP.breg0 && first.op <= OP.breg31 && first.args[0] === 0n) r = first.op - OP.breg0;
  else if (first.op === OP.bregx && first.args[1] === 0n) r = Number(first.args[0]);
  else return undefined;
  for (let i = 1; i < ops.length - 1; i++) {
    const o = ops[i]!;
    if (o.op === 0xa8 || o.op === 0xf7) continue; // convert
    const next = ops[i + 1]!;
    if (isConst(o) && next.op === 0x1a /* and */ && MASKS.has(BigInt.asUintN(64, constOf(o)))) {
      i++;
      continue;
    }
    return undefined;
  }
  return r;
}

function reg(r: number): ParamLocation {
  return { kind: "register", reg: r, name: registerName(r) };
}

function mem(r: number, offset: number): ParamLocation {
  return { kind: "stack", base: registerName(r), reg: r, offset };
}

function fbreg(offset: number, ctx: LocationContext): ParamLocation {
  if (!ctx.frameBase) return { kind: "expression", text: `DW_OP_fbreg ${offset} (no frame base)` };
  const fb = parseOps(ctx.frameBase, ctx.unit);
  const f = fb[0];
  if (fb.length === 1 && f) {
    if (f.op === OP.call_frame_cfa) return { kind: "stack", base: "cfa", offset };
    if (f.op >= OP.breg0 && f.op <= OP.breg31) return mem(f.op - OP.breg0, Number(f.args[0]) + offset);
    if (f.op >= OP.reg0 && f.op <= OP.reg31) return mem(f.op - OP.reg0, offset);
  }
  return { kind: "expression", text: `DW_OP_fbreg ${offset} (frame base: ${opsText(fb)})` };
}

function isConst(o: Op): boolean {
  return (o.op >= OP.lit0 && o.op <= OP.lit31) || (o.op >= OP.const1u && o.op <= OP.consts);
}

function constOf(o: Op): bigint {
  if (o.op >= OP.lit0 && o.op <= OP.lit31) return BigInt(o.op - OP.lit0);
  return BigInt(o.args[0] as number | bigint);
}

const OP_NAMES: Record<number, string> = {
  ...Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, `DW_OP_${k}`])),
  0x12: "DW_OP_dup", 0x13: "DW_OP_drop", 0x14: "DW_OP_over", 0x15: "DW_OP_pick", 0x16: "DW_OP_swap", 0x17: "DW_OP_rot",
  0x19: "DW_OP_abs", 0x1a: "DW_OP_and", 0x1b: "DW_OP_div", 0x1c: "DW_OP_minus", 0x1d: "DW_OP_mod", 0x1e: "DW_OP_mul",
  0x1f: "DW_OP_neg", 0x20: "DW_OP_not", 0x21: "DW_OP_or", 0x22: "DW_OP_plus", 0x24: "DW_OP_shl", 0x25: "DW_OP_shr",
  0x26: "DW_OP_shra", 0x27: "DW_OP_xor", 0x28: "DW_OP_bra", 0x29: "DW_OP_eq", 0x2a: "DW_OP_ge", 0x2b: "DW_OP_gt",
  0x2c: "DW_OP_le", 0x2d: "DW_OP_lt", 0x2e: "DW_OP_ne", 0x2f: "DW_OP_skip", 0x94: "DW_OP_deref_size",
  0x96: "DW_OP_nop", 0x9b: "DW_OP_form_tls_address", 0x9d: "DW_OP_bit_piece", 0xa4: "DW_OP_const_type",
  0xa5: "DW_OP_regval_type", 0xa6: "DW_OP_deref_type", 0xa8: "DW_OP_convert", 0xa9: "DW_OP_reinterpret",
  0xe0: "DW_OP_GNU_push_tls_address",
};

/** readelf-like text of an expression, for locations that are not a simple place. */
export function opsText(ops: Op[]): string {
  return ops
    .map((o) => {
      let name = OP_NAMES[o.op];
      if (!name) {
        if (o.op >= OP.lit0 && o.op <= OP.lit31) name = `DW_OP_lit${o.op - OP.lit0}`;
        else if (o.op >= OP.reg0 && o.op <= OP.reg31) name = `DW_OP_reg${o.op - OP.reg0} (${registerName(o.op - OP.reg0)})`;
        else if (o.op >= OP.breg0 && o.op <= OP.breg31) name = `DW_OP_breg${o.op - OP.breg0} (${registerName(o.op - OP.breg0)})`;
        else name = `DW_OP_0x${o.op.toString(16)}`;
      }
      const args = o.args.map((x) => (x instanceof Uint8Array ? `[${x.length} bytes]` : String(x)));
      return args.length ? `${name}: ${args.join(" ")}` : name;
    })
    .join("; ");
}
