// The DWARF expression subset that call-frame information uses (DW_CFA_def_cfa_expression,
// DW_CFA_expression, DW_CFA_val_expression): constants, register-relative values, arithmetic,
// comparisons, branches and dereferences of the copied stack. glibc's PLT entries compute their
// CFA as rsp + 8 + ((rip & 15) >= 11 ? 8 : 0); its signal trampoline reads registers from the
// ucontext on the stack. Arithmetic is 64-bit (BigInt); the rare expression is not the hot path.
import { Malformed } from "./errors.ts";
import { ByteReader } from "./byte-reader.ts";

const MASK = (1n << 64n) - 1n;
const MAX_STEPS = 10_000;
const MAX_STACK = 256;

/** Register values (NaN = unknown) and a reader of target memory (undefined = not readable). */
export interface ExprContext {
  reg(n: number): number;
  read(addr: number, size: number): number | undefined;
}

/** Evaluates `expr` with `initial` pushed first; the top of the stack as a number, or undefined if it needs something unknown. */
export function evaluate(expr: Uint8Array, ctx: ExprContext, initial?: number): number | undefined {
  const st: bigint[] = [];
  const push = (v: bigint) => {
    if (st.length >= MAX_STACK) throw new Malformed("DWARF expression stack overflow");
    st.push(v & MASK);
  };
  const pop = (): bigint => {
    const v = st.pop();
    if (v === undefined) throw new Malformed("DWARF expression stack underflow");
    return v;
  };
  const signed = (v: bigint) => BigInt.asIntN(64, v);
  const regValue = (n: number): bigint | undefined => {
    const v = ctx.reg(n);
    return Number.isFinite(v) ? BigInt(v) : undefined;
  };
  if (initial !== undefined) push(BigInt(initial));
  const r = new ByteReader(expr);
  for (let steps = 0; r.remaining > 0; steps++) {
    if (steps >= MAX_STEPS) throw new Malformed(`DWARF expression runs more than ${MAX_STEPS} steps`);
    const op = r.u8();
    if (op >= 0x30 && op <= 0x4f) { push(BigInt(op - 0x30)); continue; } // lit0-31
    if (op >= 0x70 && op <= 0x8f) { // breg0-31
      const base = regValue(op - 0x70);
      const off = r.sleb();
      if (base === undefined) return undefined;
      push(base + BigInt(off));
      continue;
    }
    switch (op) {
      case 0x08: push(BigInt(r.u8())); break; // const1u
      case 0x09: push(BigInt(r.s8())); break;
      case 0x0a: push(BigInt(r.u16())); break;
      case 0x0b: push(BigInt(r.s16())); break;
      case 0x0c: push(BigInt(r.u32())); break;
      case 0x0d: push(BigInt(r.s32())); break;
      case 0x0e: { const lo = BigInt(r.u32()); push(lo | (BigInt(r.u32()) << 32n)); break; } // const8u
      case 0x0f: { const lo = BigInt(r.u32()); push(lo | (BigInt(r.s32()) << 32n)); break; }
      case 0x10: push(BigInt(r.uleb())); break; // constu
      case 0x11: push(BigInt(r.sleb())); break; // consts
      case 0x12: push(st[st.length - 1] ?? pop()); break; // dup
      case 0x13: pop(); break; // drop
      case 0x14: push(st[st.length - 2] ?? (pop(), pop())); break; // over
      case 0x15: { const i = r.u8(); if (i >= st.length) throw new Malformed("DW_OP_pick past the stack"); push(st[st.length - 1 - i]!); break; }
      case 0x16: { const a = pop(); const b = pop(); push(a); push(b); break; } // swap
      case 0x17: { const a = pop(); const b = pop(); const c = pop(); push(a); push(c); push(b); break; } // rot
      case 0x06: case 0x94: { // deref, deref_size
        const size = op === 0x06 ? 8 : r.u8();
        if (size < 1 || size > 8) throw new Malformed(`DW_OP_deref_size ${size}`);
        const v = ctx.read(Number(pop()), size);
        if (v === undefined) return undefined;
        push(BigInt(v));
        break;
      }
      case 0x19: { const a = signed(pop()); push(a < 0n ? -a : a); break; } // abs
      case 0x1a: { const b = pop(); push(pop() & b); break; } // and
      case 0x1b: { const b = signed(pop()); const a = signed(pop()); if (b === 0n) return undefined; push(a / b); break; } // div
      case 0x1c: { const b = pop(); push(pop() - b); break; } // minus
      case 0x1d: { const b = pop(); const a = pop(); if (b === 0n) return undefined; push(a % b); break; } // mod
      case 0x1e: { const b = pop(); push(pop() * b); break; } // mul
      case 0x1f: push(-pop()); break; // neg
      case 0x20: push(~pop()); break; // not
      case 0x21: { const b = pop(); push(pop() | b); break; } // or
      case 0x22: { const b = pop(); push(pop() + b); break; } // plus
      case 0x23: push(pop() + BigInt(r.uleb())); break; // plus_uconst
      case 0x24: { const b = pop(); const a = pop(); push(b >= 64n ? 0n : a << b); break; } // shl
      case 0x25: { const b = pop(); const a = pop(); push(b >= 64n ? 0n : a >> b); break; } // shr
      case 0x26: { const b = pop(); const a = signed(pop()); push(a >> (b >= 64n ? 63n : b)); break; } // shra
      case 0x27: { const b = pop(); push(pop() ^ b); break; } // xor
      case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e: { // eq ge gt le lt ne (signed)
        const b = signed(pop());
        const a = signed(pop());
        const t = op === 0x29 ? a === b : op === 0x2a ? a >= b : op === 0x2b ? a > b : op === 0x2c ? a <= b : op === 0x2d ? a < b : a !== b;
        push(t ? 1n : 0n);
        break;
      }
      case 0x2f: case 0x28: { // skip, bra
        const delta = r.s16();
        if (op === 0x28 && pop() === 0n) break;
        const to = r.pos + delta;
        if (to < 0 || to > expr.length) throw new Malformed("DWARF expression branches outside itself");
        r.pos = to;
        break;
      }
      case 0x92: { // bregx
        const base = regValue(r.uleb());
        const off = r.sleb();
        if (base === undefined) return undefined;
        push(base + BigInt(off));
        break;
      }
      case 0x96: break; // nop
      default:
        throw new Malformed(`DWARF expression operation 0x${op.toString(16)} is not supported in call-frame information`);
    }
  }
  const top = st.pop();
  return top === undefined ? undefined : Number(top);
}
