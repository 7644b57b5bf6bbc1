// Unwinds a user stack after the fact, as perf's `--call-graph dwarf` does: from the registers at
// the probe and a copy of the stack from rsp upward, it walks the frames with each mapped file's
// call-frame information (.eh_frame, .debug_frame, Go's pcsp), falling back to the frame-pointer
// chain where a file has none. Nothing is read from the target at unwind time: what is not in the
// copy ends the walk.
import { AddressSpace } from "./address-space.ts";
import { NREGS, REG, RULE, type CfaRow, type FdeRows } from "./cfa-row.ts";
import { evaluate, type ExprContext } from "./dwarf-expr.ts";
import { CfiError, Malformed, cfiError } from "./errors.ts";
import { FileCfi } from "./file-cfi.ts";
import { GoFrameTable, type GoFrame } from "./go-frames.ts";

/** `cfi`: call-frame information only (eh_frame, debug_frame, Go pcsp); `fp`: the rbp chain only; `auto`: CFI, and the rbp chain where no CFI covers a pc. */
export type UnwindMode = "auto" | "cfi" | "fp";

/** Register values at the probe. Unknown ones may be left out (rbx, r12-r15 help only where CFI bases a CFA on them). */
export interface UnwindRegisters {
  rip: number;
  rsp: number;
  rbp?: number;
  rbx?: number;
  r12?: number;
  r13?: number;
  r14?: number;
  r15?: number;
}

export interface StackSnapshot {
  regs: UnwindRegisters;
  /** Bytes of the target's stack, copied from `stackAddr` upward. */
  stack: Uint8Array;
  /** Address of stack[0]; default regs.rsp. */
  stackAddr?: number;
}

export interface UnwindOptions {
  mode?: UnwindMode;
  /** Frames returned at most (default 128). */
  maxFrames?: number;
}

/** How a frame's pc was found: from the registers (frame 0), or by unwinding its callee with CFI, Go's pcsp table or the frame pointer. */
export type FrameMethod = "regs" | "cfi" | "go" | "fp";

export type UnwindEnd =
  /** The CFI says there is no caller (undefined return address: _start, thread entry, goexit); or rbp is 0. */
  | "outermost"
  /** The return address is 0. */
  | "zero-pc"
  /** The next return address lies beyond the copied stack. */
  | "stack-end"
  /** The next pc would be in no executable mapping. */
  | "no-mapping"
  /** No CFI covers the pc and the frame pointer cannot be followed (or the mode forbids it). */
  | "no-unwind-info"
  /** The frame pointer does not point into the copied stack. */
  | "no-frame-pointer"
  /** The CFI that covers the pc is malformed (see `error`). */
  | "bad-unwind-info"
  /** A rule needs a register whose value is unknown at this frame. */
  | "unknown-register"
  /** The caller's stack pointer is not above the callee's. */
  | "no-progress"
  | "max-frames";

export interface UnwindResult {
  /** Frame pcs, innermost first: regs.rip, then return addresses. */
  pcs: number[];
  /** How each pc was found (methods[0] is "regs"). */
  methods: FrameMethod[];
  /**
   * True where the pc is where the code stopped rather than a return address: frame 0, and a
   * frame a signal interrupted. Symbolizers look up pc - 1 for the others.
   */
  exact: boolean[];
  end: UnwindEnd;
  /** The first malformed table met, with the file named (the walk may have gone on with frame pointers). */
  error?: string;
}

const CALLEE_SAVED = new Set<number>([REG.RBX, REG.RBP, REG.R12, REG.R13, REG.R14, REG.R15]);
const DEFAULT_MAX_FRAMES = 128;
const TWO32 = 2 ** 32;

type Step = { ok: true; exact: boolean; method: FrameMethod } | { ok: false; end: UnwindEnd };

export function unwind(space: AddressSpace, snap: StackSnapshot, opts: UnwindOptions = {}): UnwindResult {
  const mode = opts.mode ?? "auto";
  const maxFrames = Math.max(1, opts.maxFrames ?? DEFAULT_MAX_FRAMES);
  const stack = snap.stack;
  const stackAddr = snap.stackAddr ?? snap.regs.rsp;
  const stackEnd = stackAddr + stack.length;
  const dv = new DataView(stack.buffer, stack.byteOffset, stack.byteLength);

  const read = (addr: number, size: number): number | undefined => {
    if (!(addr >= stackAddr && addr + size <= stackEnd)) return undefined;
    const o = addr - stackAddr;
    switch (size) {
      case 8: return dv.getUint32(o + 4, true) * TWO32 + dv.getUint32(o, true);
      case 4: return dv.getUint32(o, true);
      case 2: return dv.getUint16(o, true);
      case 1: return dv.getUint8(o);
      default: {
        let v = 0;
        for (let i = size - 1; i >= 0; i--) v = v * 256 + dv.getUint8(o + i);
        return v;
      }
    }
  };

  let regs = new Float64Array(NREGS).fill(NaN);
  let next = new Float64Array(NREGS);
  const r = snap.regs;
  regs[REG.RA] = r.rip;
  regs[REG.RSP] = r.rsp;
  regs[REG.RBP] = r.rbp ?? NaN;
  regs[REG.RBX] = r.rbx ?? NaN;
  regs[REG.R12] = r.r12 ?? NaN;
  regs[REG.R13] = r.r13 ?? NaN;
  regs[REG.R14] = r.r14 ?? NaN;
  regs[REG.R15] = r.r15 ?? NaN;

  const ctx: ExprContext = { reg: (n) => (n < NREGS ? regs[n]! : NaN), read };
  const pcs: number[] = [r.rip];
  const methods: FrameMethod[] = ["regs"];
  const exacts: boolean[] = [true];
  let error: string | undefined;
  // Frame 0's pc is where it stopped; callers' pcs are return addresses, looked up at pc - 1 so a
  // call that ends a function is not taken for the next function.
  let exact = true;
  let end: UnwindEnd = "max-frames";

  const stepCfi = (rows: FdeRows, row: CfaRow): Step => {
    let cfa: number;
    if (row.cfaReg >= 0) {
      const base = row.cfaReg < NREGS ? regs[row.cfaReg]! : NaN;
      if (Number.isNaN(base)) return { ok: false, end: "unknown-register" };
      cfa = base + row.cfaOffset;
    } else {
      const v = evaluate(row.cfaExpr!, ctx);
      if (v === undefined) return { ok: false, end: "unknown-register" };
      cfa = v;
    }
    const ra = rows.raReg;
    if (ra >= NREGS) return { ok: false, end: "no-unwind-info" };
    const raRule = row.rule[ra]!;
    if (raRule === RULE.undefined || raRule === RULE.unspecified) return { ok: false, end: "outermost" };
    for (let i = 0; i < NREGS; i++) {
      const v = row.value[i]!;
      let out: number | undefined;
      switch (row.rule[i]) {
        case RULE.unspecified: out = CALLEE_SAVED.has(i) ? regs[i] : NaN; break;
        case RULE.undefined: out = NaN; break;
        case RULE.sameValue: out = regs[i]; break;
        case RULE.offset: out = read(cfa + v, 8); break;
        case RULE.valOffset: out = cfa + v; break;
        case RULE.register: out = v < NREGS ? regs[v] : NaN; break;
        case RULE.expression: {
          const addr = evaluate(row.expr[i]!, ctx, cfa);
          out = addr === undefined ? undefined : read(addr, 8);
          break;
        }
        case RULE.valExpression: out = evaluate(row.expr[i]!, ctx, cfa); break;
      }
      next[i] = out ?? NaN;
    }
    const spRule = row.rule[REG.RSP]!;
    if (spRule === RULE.unspecified || spRule === RULE.sameValue || spRule === RULE.undefined || Number.isNaN(next[REG.RSP]!)) next[REG.RSP] = cfa;
    if (ra !== REG.RA) next[REG.RA] = next[ra]!;
    if (Number.isNaN(next[REG.RA]!)) {
      const beyond = raRule === RULE.offset && read(cfa + row.value[ra]!, 8) === undefined;
      return { ok: false, end: beyond ? "stack-end" : "unknown-register" };
    }
    // A signal frame's caller is the interrupted code, whose stack may be anywhere (sigaltstack).
    if (!rows.signalFrame && !(next[REG.RSP]! > regs[REG.RSP]!)) return { ok: false, end: "no-progress" };
    return { ok: true, exact: rows.signalFrame, method: "cfi" };
  };

  const stepGo = (f: GoFrame): Step => {
    if (f.topFrame) return { ok: false, end: "outermost" };
    const sp = regs[REG.RSP]!;
    if (Number.isNaN(sp)) return { ok: false, end: "unknown-register" };
    const raAddr = sp + f.spDelta;
    const ret = read(raAddr, 8);
    if (ret === undefined) return { ok: false, end: "stack-end" };
    next.set(regs);
    next[REG.RA] = ret;
    next[REG.RSP] = raAddr + 8;
    // Go saves the caller's frame pointer just below the return address once its prologue ran;
    // before that (or in frameless functions) rbp still is the caller's.
    if (f.spDelta >= 8) {
      const saved = read(raAddr - 8, 8);
      if (saved !== undefined && (saved === 0 || saved >= raAddr + 8)) next[REG.RBP] = saved;
    }
    if (!(next[REG.RSP]! > sp)) return { ok: false, end: "no-progress" };
    return { ok: true, exact: false, method: "go" };
  };

  const stepFp = (): Step => {
    const bp = regs[REG.RBP]!;
    if (bp === 0) return { ok: false, end: "outermost" };
    if (Number.isNaN(bp) || bp < regs[REG.RSP]! || bp < stackAddr) return { ok: false, end: "no-frame-pointer" };
    const savedBp = read(bp, 8);
    const ret = read(bp + 8, 8);
    if (savedBp === undefined || ret === undefined) return { ok: false, end: "stack-end" };
    next.set(regs);
    next[REG.RA] = ret;
    next[REG.RSP] = bp + 16;
    next[REG.RBP] = savedBp;
    return { ok: true, exact: false, method: "fp" };
  };

  while (pcs.length < maxFrames) {
    const pc = regs[REG.RA]!;
    const loc = space.locate(exact ? pc : pc - 1);
    if (!loc) {
      end = "no-mapping";
      break;
    }
    let step: Step | undefined;
    if (mode !== "fp" && loc.elf && !Number.isNaN(loc.vaddr)) {
      const vaddr = loc.vaddr;
      try {
        const found = FileCfi.of(loc.elf).lookup(vaddr);
        if (found) step = stepCfi(found.rows, found.row);
        else {
          const go = GoFrameTable.of(loc.elf)?.frameAt(vaddr);
          if (go) step = stepGo(go);
        }
      } catch (e) {
        if (!(e instanceof CfiError || e instanceof Malformed)) throw e;
        error ??= cfiError(loc.elf.path, "call-frame information", e).message;
        step = mode === "cfi" ? { ok: false, end: "bad-unwind-info" } : undefined;
      }
    }
    if (!step) step = mode === "cfi" ? { ok: false, end: "no-unwind-info" } : stepFp();
    if (!step.ok) {
      end = step.end;
      break;
    }
    const ra = next[REG.RA]!;
    if (ra === 0) {
      end = "zero-pc";
      break;
    }
    // A return address outside executable memory is garbage read as one (a frame pointer that
    // was not one): it ends the stack rather than becoming a frame.
    const target = space.mappingOf(step.exact ? ra : ra - 1);
    if (!target || (target.perms !== undefined && !target.perms.includes("x"))) {
      end = "no-mapping";
      break;
    }
    pcs.push(ra);
    methods.push(step.method);
    exacts.push(step.exact);
    exact = step.exact;
    const t = regs;
    regs = next;
    next = t;
  }
  return error === undefined ? { pcs, methods, exact: exacts, end } : { pcs, methods, exact: exacts, end, error };
}
