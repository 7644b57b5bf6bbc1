// One row of the call-frame table: how to compute the CFA and, for each register the unwinder
// follows, where the caller's value is. x86-64 DWARF numbering; only columns 0-16 are kept
// (RA is 16), the rules for vector registers are parsed and dropped.

/** DWARF register numbers on x86-64 (System V psABI, figure 3.36). */
export const REG = {
  RAX: 0, RDX: 1, RCX: 2, RBX: 3, RSI: 4, RDI: 5, RBP: 6, RSP: 7,
  R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15, RA: 16,
} as const;
export const NREGS = 17;
export const REG_NAMES = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "ra"];

export const RULE = {
  /** No instruction mentioned the register: callee-saved ones keep their value. */
  unspecified: 0,
  undefined: 1,
  sameValue: 2,
  /** Saved at CFA + value. */
  offset: 3,
  /** The value is CFA + value. */
  valOffset: 4,
  /** The value is in register `value`. */
  register: 5,
  /** Saved at the address the expression computes (CFA pushed first). */
  expression: 6,
  /** The value is what the expression computes (CFA pushed first). */
  valExpression: 7,
} as const;

export class CfaRow {
  /** CFA = register + offset, or -1 when cfaExpr computes it. */
  cfaReg = REG.RSP as number;
  cfaOffset = 8;
  cfaExpr: Uint8Array | undefined = undefined;
  readonly rule = new Uint8Array(NREGS);
  readonly value = new Float64Array(NREGS);
  readonly expr: (Uint8Array | undefined)[] = new Array(NREGS).fill(undefined);

  copyFrom(o: CfaRow): this {
    this.cfaReg = o.cfaReg;
    this.cfaOffset = o.cfaOffset;
    this.cfaExpr = o.cfaExpr;
    this.rule.set(o.rule);
    this.value.set(o.value);
    for (let i = 0; i < NREGS; i++) this.expr[i] = o.expr[i];
    return this;
  }

  clone(): CfaRow {
    return new CfaRow().copyFrom(this);
  }

  setRule(reg: number, rule: number, value = 0, expr?: Uint8Array): void {
    if (reg >= NREGS) return;
    this.rule[reg] = rule;
    this.value[reg] = value;
    this.expr[reg] = expr;
  }
}

/** The rows of one FDE: row i holds from locs[i] up to locs[i+1] (the last up to `end`). */
export interface FdeRows {
  locs: number[];
  rows: CfaRow[];
  end: number;
  /** The CIE's return-address column. */
  raReg: number;
  /** "S" augmentation: the frame of a signal handler's trampoline (its pc is exact, not a return address). */
  signalFrame: boolean;
}

/** The row that holds at `pc`, or undefined outside the FDE. */
export function rowAt(t: FdeRows, pc: number): CfaRow | undefined {
  if (t.locs.length === 0 || pc < t.locs[0]! || pc >= t.end) return undefined;
  let lo = 0;
  let hi = t.locs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (t.locs[mid]! <= pc) lo = mid;
    else hi = mid - 1;
  }
  return t.rows[lo];
}
