// USDT argument specs as <sys/sdt.h> writes them on x86-64 (`-4@%edi`, `8@-8(%rbp)`,
// `8@16(%rax,%rbx,8)`, `-4@$5`, `8@counter(%rip)`): each is "[-]SIZE[f]@OPERAND", the operand in
// AT&T syntax exactly as gcc printed it for the probe's inline asm. Parsed once into descriptors
// that name struct pt_regs slots, so a precompiled BPF program (or evaluateArg, its reference in
// JS) can fetch every argument without knowing any assembler.
import { ProbeError } from "../errors.ts";

/** struct pt_regs on x86-64, in memory order: an argument's register is an index into this. */
export const PT_REGS = [
  "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
  "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
] as const;
export type PtRegName = (typeof PT_REGS)[number];
export const PT_REG_INDEX: Readonly<Record<PtRegName, number>> = Object.fromEntries(PT_REGS.map((r, i) => [r, i])) as Record<PtRegName, number>;
export const RIP_INDEX = PT_REG_INDEX.rip;

export type ArgSize = 1 | 2 | 4 | 8;

/** A register as an operand named it: which pt_regs slot, and which bytes of it. */
export interface RegisterRef {
  /** The name as written (`r8w`, `ah`, `edi`). */
  name: string;
  /** The 64-bit register holding it (`r8`, `rax`, `rdi`). */
  full: PtRegName;
  /** Index into struct pt_regs (PT_REGS). */
  index: number;
  /** Width of the named sub-register in bytes. */
  width: ArgSize;
  /** Bit position of the sub-register inside the 64-bit one: 8 for ah/bh/ch/dh, else 0. */
  shift: 0 | 8;
}

interface Sized {
  /** The spec as written in the note. */
  text: string;
  size: ArgSize;
  signed: boolean;
  /** The `f` marker newer sdt.h adds for floating-point arguments: the value is the raw bits. */
  float: boolean;
}

/** The argument is (part of) a register. */
export interface RegisterArg extends Sized {
  kind: "register";
  reg: RegisterRef;
}

/** The argument is in memory at base + index*scale + offset (any part may be absent). */
export interface MemoryArg extends Sized {
  kind: "memory";
  base?: RegisterRef;
  index?: RegisterRef;
  scale: ArgSize;
  /** Displacement (an absolute address when there is no base and no index). */
  offset: number;
  /** Symbol the displacement was written with, if any (`counter+8`). */
  symbol?: string;
}

/** The argument is a constant the compiler folded into the note (`$5`, `$-1`). */
export interface ConstantArg extends Sized {
  kind: "constant";
  /** Already truncated to `size` and sign-extended when signed. */
  value: bigint;
}

/**
 * The argument is in memory addressed relative to the instruction pointer (`counter(%rip)`):
 * gcc writes the object's link-time address as a symbol. At the probe's breakpoint the kernel has
 * set regs->ip to the probe's own address, so the object is at regs->ip + `offset` whatever the
 * load address: a memory argument whose base register is rip.
 */
export interface RipArg extends Sized {
  kind: "rip";
  /** Distance from the probe's address (the note's pc) to the object. */
  offset: number;
  /** The object's link-time address. */
  address: number;
  symbol?: string;
}

/** A spec that is valid but that probe cannot fetch (an SSE register, a segment override...). */
export interface UnsupportedArg {
  kind: "unsupported";
  text: string;
  reason: string;
}

export type UsdtArg = RegisterArg | MemoryArg | ConstantArg | RipArg | UnsupportedArg;

/** What a spec may refer to outside itself: needed only for symbolic or rip-relative operands. */
export interface ArgContext {
  /** The probe's link-time address (the note's pc, adjusted by .stapsdt.base). */
  pc?: number;
  /** Link-time address of a symbol of the same file, or undefined. */
  symbolAddress?(name: string): number | undefined;
  /** True for ET_EXEC files: absolute addresses in them are run-time addresses. */
  fixedAddresses?: boolean;
}

export class UsdtArgError extends ProbeError {}

const REGS = new Map<string, RegisterRef>();
function defReg(name: string, full: PtRegName, width: ArgSize, shift: 0 | 8 = 0): void {
  REGS.set(name, { name, full, index: PT_REG_INDEX[full], width, shift });
}
for (const [r, e, w, b, h] of [
  ["rax", "eax", "ax", "al", "ah"],
  ["rbx", "ebx", "bx", "bl", "bh"],
  ["rcx", "ecx", "cx", "cl", "ch"],
  ["rdx", "edx", "dx", "dl", "dh"],
  ["rsi", "esi", "si", "sil", ""],
  ["rdi", "edi", "di", "dil", ""],
  ["rbp", "ebp", "bp", "bpl", ""],
  ["rsp", "esp", "sp", "spl", ""],
] as const) {
  defReg(r, r, 8);
  defReg(e, r, 4);
  defReg(w, r, 2);
  defReg(b, r, 1);
  if (h) defReg(h, r, 1, 8);
}
for (let n = 8; n <= 15; n++) {
  const r = `r${n}` as PtRegName;
  defReg(r, r, 8);
  defReg(`${r}d`, r, 4);
  defReg(`${r}w`, r, 2);
  defReg(`${r}b`, r, 1);
  defReg(`${r}l`, r, 1); // Intel's spelling of r8b
}
defReg("rip", "rip", 8);

/** The register an AT&T name (without `%`) refers to, or undefined. */
export function registerByName(name: string): RegisterRef | undefined {
  return REGS.get(name.toLowerCase());
}

/** Longest spec accepted: real ones are under 40 characters; this bounds work on hostile notes. */
const MAX_SPEC = 256;
const MAX_ARGS = 32;

/** Parses a note's whole argument string (specs separated by spaces). */
export function parseUsdtArgs(text: string, ctx: ArgContext = {}): UsdtArg[] {
  const specs = text.trim() ? text.trim().split(/\s+/) : [];
  if (specs.length > MAX_ARGS) throw new UsdtArgError(`USDT argument list has ${specs.length} arguments (at most ${MAX_ARGS} expected): '${clip(text)}'`);
  return specs.map((s) => parseUsdtArg(s, ctx));
}

/**
 * Parses one spec. Throws UsdtArgError when it is not a spec at all; returns an `unsupported`
 * descriptor when it is a valid operand that cannot be fetched from pt_regs and user memory.
 */
export function parseUsdtArg(spec: string, ctx: ArgContext = {}): UsdtArg {
  if (spec.length > MAX_SPEC) throw new UsdtArgError(`USDT argument spec too long (${spec.length} characters): '${clip(spec)}'`);
  const m = /^(?:(-?)(\d+)(f?)@)?(.+)$/.exec(spec);
  if (!m) throw new UsdtArgError(`malformed USDT argument spec '${clip(spec)}'`);
  const [, minus, sizeText, f, operand] = m as unknown as [string, string, string | undefined, string, string];
  let size: ArgSize | undefined;
  if (sizeText !== undefined) {
    const n = Number(sizeText);
    if (n !== 1 && n !== 2 && n !== 4 && n !== 8) {
      return { kind: "unsupported", text: spec, reason: `argument size ${n} (only 1, 2, 4 and 8 bytes are fetched)` };
    }
    size = n;
  }
  const signed = minus === "-";
  const float = f === "f";
  return parseOperand(spec, operand, size, signed, float, ctx);
}

function parseOperand(text: string, op: string, size: ArgSize | undefined, signed: boolean, float: boolean, ctx: ArgContext): UsdtArg {
  const unsupported = (reason: string): UnsupportedArg => ({ kind: "unsupported", text, reason });

  if (op.startsWith("%")) {
    const name = op.slice(1);
    if (/^[a-z]s:/i.test(name)) return unsupported(`segment-relative operand ${op} (thread-local storage is not read)`);
    if (/^[xyz]mm\d+$/i.test(name) || /^st(\(\d\))?$/i.test(name)) return unsupported(`value in ${op}, a floating-point/vector register that pt_regs does not hold`);
    const reg = registerByName(name);
    if (!reg) throw new UsdtArgError(`unknown register ${op} in USDT argument spec '${clip(text)}'`);
    if (reg.full === "rip") return unsupported("the instruction pointer itself as an argument");
    // Old notes without a size: the register's width, as bcc does.
    return { kind: "register", text, size: size ?? reg.width, signed, float, reg };
  }

  if (op.startsWith("$")) {
    const imm = parseExpression(op.slice(1), text);
    const sz = size ?? 8;
    if (imm.symbol !== undefined) {
      const addr = ctx.symbolAddress?.(imm.symbol);
      if (addr === undefined) return unsupported(`address of symbol ${imm.symbol}, which the file does not define`);
      if (!ctx.fixedAddresses) return unsupported(`address of ${imm.symbol} as a constant in a position-independent file (its run-time value depends on the load address)`);
      return { kind: "constant", text, size: sz, signed, float, value: fit(BigInt(addr) + imm.value, sz, signed) };
    }
    return { kind: "constant", text, size: sz, signed, float, value: fit(imm.value, sz, signed) };
  }

  const sz = size ?? 8;
  if (/^[a-z]s:/i.test(op) || /^%[a-z]s:/i.test(op)) return unsupported(`segment-relative operand ${op} (thread-local storage is not read)`);
  const mem = /^([^(]*)\(([^)]*)\)$/.exec(op);
  const dispText = mem ? mem[1]! : op;
  const disp = dispText === "" ? { value: 0n, symbol: undefined } : parseExpression(dispText, text);

  if (!mem) {
    // A bare displacement: an absolute address (non-PIE code only).
    const addr = absolute(disp, ctx, text);
    if (typeof addr === "string") return unsupported(addr);
    return { kind: "memory", text, size: sz, signed, float, scale: 1, offset: addr, symbol: disp.symbol };
  }

  const parts = mem[2]!.split(",").map((p) => p.trim());
  if (parts.length > 3) throw new UsdtArgError(`malformed memory operand in USDT argument spec '${clip(text)}'`);
  const reg = (p: string | undefined, what: string): RegisterRef | undefined => {
    if (p === undefined || p === "") return undefined;
    if (!p.startsWith("%")) throw new UsdtArgError(`malformed ${what} register '${clip(p)}' in USDT argument spec '${clip(text)}'`);
    const r = registerByName(p.slice(1));
    if (!r) throw new UsdtArgError(`unknown register ${clip(p)} in USDT argument spec '${clip(text)}'`);
    return r;
  };
  const base = reg(parts[0], "base");
  const index = reg(parts[1], "index");
  let scale: ArgSize = 1;
  if (parts[2] !== undefined && parts[2] !== "") {
    const s = Number(parts[2]);
    if (s !== 1 && s !== 2 && s !== 4 && s !== 8) throw new UsdtArgError(`scale ${clip(parts[2])} in USDT argument spec '${clip(text)}' (1, 2, 4 or 8)`);
    scale = s;
  }
  if (!base && !index && (mem[2]!.trim() !== "" || dispText === "")) throw new UsdtArgError(`malformed memory operand in USDT argument spec '${clip(text)}'`);

  if (base?.full === "rip") {
    if (index) throw new UsdtArgError(`rip-relative operand with an index register in USDT argument spec '${clip(text)}'`);
    return ripRelative(text, sz, signed, float, disp, ctx);
  }
  if (index?.full === "rip") throw new UsdtArgError(`rip as an index register in USDT argument spec '${clip(text)}'`);
  for (const r of [base, index]) {
    if (r && r.width !== 8) return unsupported(`${r.width * 8}-bit address register %${r.name}`);
  }
  if (index?.full === "rsp") throw new UsdtArgError(`rsp as an index register in USDT argument spec '${clip(text)}'`);
  if (!base && !index) {
    const addr = absolute(disp, ctx, text);
    if (typeof addr === "string") return unsupported(addr);
    return { kind: "memory", text, size: sz, signed, float, scale: 1, offset: addr, symbol: disp.symbol };
  }
  if (disp.symbol !== undefined) {
    // sym(%reg): the symbol's link-time address only means something in non-PIE code.
    const addr = absolute(disp, ctx, text);
    if (typeof addr === "string") return unsupported(addr);
    return { kind: "memory", text, size: sz, signed, float, base, index, scale, offset: addr, symbol: disp.symbol };
  }
  return { kind: "memory", text, size: sz, signed, float, base, index, scale, offset: toSafe(disp.value, text) };
}

function ripRelative(text: string, size: ArgSize, signed: boolean, float: boolean, disp: Expr, ctx: ArgContext): UsdtArg {
  if (ctx.pc === undefined) return { kind: "unsupported", text, reason: "rip-relative operand without the probe's address" };
  let address: number;
  if (disp.symbol !== undefined) {
    const a = ctx.symbolAddress?.(disp.symbol);
    if (a === undefined) return { kind: "unsupported", text, reason: `rip-relative operand on symbol ${disp.symbol}, which the file's symbol tables do not define` };
    address = a + toSafe(disp.value, text);
  } else {
    // A numeric displacement has no instruction to be relative to: take it from the probe's address.
    address = ctx.pc + toSafe(disp.value, text);
  }
  return { kind: "rip", text, size, signed, float, offset: address - ctx.pc, address, symbol: disp.symbol };
}

function absolute(disp: Expr, ctx: ArgContext, text: string): number | string {
  let addr = toSafe(disp.value, text);
  if (disp.symbol !== undefined) {
    const a = ctx.symbolAddress?.(disp.symbol);
    if (a === undefined) return `symbol ${disp.symbol}, which the file's symbol tables do not define`;
    addr += a;
  }
  if (!ctx.fixedAddresses) return `absolute address operand in a position-independent file (its run-time value depends on the load address)`;
  return addr;
}

interface Expr {
  value: bigint;
  symbol?: string;
}

/** `5`, `-1`, `0x1f`, `counter`, `counter+8`, `counter-0x10`, `.LC0+4`. */
function parseExpression(s: string, text: string): Expr {
  const num = parseNumber(s);
  if (num !== undefined) return { value: num };
  const m = /^([A-Za-z_.$][\w.$@]*)(?:([+-])(.+))?$/.exec(s);
  if (!m) throw new UsdtArgError(`malformed operand '${clip(s)}' in USDT argument spec '${clip(text)}'`);
  let value = 0n;
  if (m[2]) {
    const n = parseNumber(m[3]!);
    if (n === undefined) throw new UsdtArgError(`malformed offset '${clip(m[3]!)}' in USDT argument spec '${clip(text)}'`);
    value = m[2] === "-" ? -n : n;
  }
  return { value, symbol: m[1]! };
}

/** A GNU as integer: decimal, 0x hex, 0b binary, leading-0 octal, with an optional minus. */
function parseNumber(s: string): bigint | undefined {
  const m = /^(-?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9]\d*)$/.exec(s);
  if (!m || m[2]!.length > 24) return undefined;
  const d = m[2]!;
  let v: bigint;
  if (/^0[xXbB]/.test(d)) v = BigInt(d.toLowerCase());
  else if (d.length > 1 && d[0] === "0") v = BigInt(`0o${d.slice(1)}`);
  else v = BigInt(d);
  return m[1] ? -v : v;
}

function toSafe(v: bigint, text: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new UsdtArgError(`displacement out of range in USDT argument spec '${clip(text)}'`);
  }
  return Number(v);
}

/** Truncates to `size` bytes, then sign-extends (signed) or leaves it non-negative (unsigned). */
export function fit(v: bigint, size: number, signed: boolean): bigint {
  const bits = size * 8;
  return signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
}

function clip(s: string): string {
  const t = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, "?");
}

/** Reads `size` bytes of the target's memory at `addr`, little-endian, as an unsigned value. */
export type ReadMemory = (addr: bigint, size: number) => bigint;

/**
 * The value of an argument at the probe, given the registers there (in PT_REGS order, as
 * unsigned 64-bit values) and a way to read the target's memory. The reference for the BPF code:
 * same steps, same truncation and extension. Unsigned results are in [0, 2^(8*size)).
 */
export function evaluateArg(arg: UsdtArg, regs: readonly bigint[], readMemory: ReadMemory): bigint {
  switch (arg.kind) {
    case "constant":
      return arg.value;
    case "register": {
      const raw = regValue(regs, arg.reg.index) >> BigInt(arg.reg.shift);
      // A narrower register than the argument: its own bytes, extended as the argument says.
      return fit(fit(raw, Math.min(arg.size, arg.reg.width), arg.signed), arg.size, arg.signed);
    }
    case "memory": {
      let addr = BigInt(arg.offset);
      if (arg.base) addr += regValue(regs, arg.base.index);
      if (arg.index) addr += regValue(regs, arg.index.index) * BigInt(arg.scale);
      return fit(readMemory(BigInt.asUintN(64, addr), arg.size), arg.size, arg.signed);
    }
    case "rip": {
      const addr = BigInt.asUintN(64, regValue(regs, RIP_INDEX) + BigInt(arg.offset));
      return fit(readMemory(addr, arg.size), arg.size, arg.signed);
    }
    case "unsupported":
      throw new UsdtArgError(`cannot fetch USDT argument '${clip(arg.text)}': ${arg.reason}`);
  }
}

function regValue(regs: readonly bigint[], i: number): bigint {
  const v = regs[i];
  if (v === undefined) throw new UsdtArgError(`register ${PT_REGS[i] ?? i} missing from the register set`);
  return BigInt.asUintN(64, v);
}

/** Descriptor kinds of FlatArg, for a C enum on the BPF side. */
export const ARG_CONST = 0;
export const ARG_REG = 1;
export const ARG_MEM = 2;

/**
 * One argument as fixed-width numbers for a BPF map value. Fetch:
 *   CONST: value = offset
 *   REG:   value = regs[reg] >> shift
 *   MEM:   addr = (reg >= 0 ? regs[reg] : 0) + (index >= 0 ? regs[index] * scale : 0) + offset;
 *          value = read `size` bytes at addr (rip-relative: reg is rip, which the kernel has set to
 *          the probe's address)
 * then keep the low `size` bytes (REG: min(size, width)) and sign-extend if `signed`.
 */
export interface FlatArg {
  kind: typeof ARG_CONST | typeof ARG_REG | typeof ARG_MEM;
  size: ArgSize;
  signed: boolean;
  /** pt_regs index of the register (REG) or base register (MEM), -1 for none. */
  reg: number;
  /** Width in bytes of the register (REG only; 8 otherwise). */
  width: ArgSize;
  shift: 0 | 8;
  /** pt_regs index of the index register (MEM), -1 for none. */
  index: number;
  scale: ArgSize;
  /** Constant (CONST) or displacement (MEM), as a signed 64-bit value. */
  offset: bigint;
}

export function flattenArg(arg: UsdtArg): FlatArg {
  const none = { reg: -1, width: 8 as ArgSize, shift: 0 as const, index: -1, scale: 1 as ArgSize };
  switch (arg.kind) {
    case "constant":
      return { kind: ARG_CONST, size: arg.size, signed: arg.signed, ...none, offset: BigInt.asIntN(64, arg.value) };
    case "register":
      return { kind: ARG_REG, size: arg.size, signed: arg.signed, ...none, reg: arg.reg.index, width: arg.reg.width, shift: arg.reg.shift, offset: 0n };
    case "memory":
      return {
        kind: ARG_MEM, size: arg.size, signed: arg.signed, ...none,
        reg: arg.base?.index ?? -1, index: arg.index?.index ?? -1, scale: arg.scale, offset: BigInt(arg.offset),
      };
    case "rip":
      return { kind: ARG_MEM, size: arg.size, signed: arg.signed, ...none, reg: RIP_INDEX, offset: BigInt(arg.offset) };
    case "unsupported":
      throw new UsdtArgError(`cannot fetch USDT argument '${clip(arg.text)}': ${arg.reason}`);
  }
}

/** The spec back as text in sdt.h's syntax (normalised: no symbols, sizes always written). */
export function describeArg(arg: UsdtArg): string {
  if (arg.kind === "unsupported") return `${arg.text} (unsupported: ${arg.reason})`;
  const prefix = `${arg.signed ? "-" : ""}${arg.size}${arg.float ? "f" : ""}@`;
  switch (arg.kind) {
    case "constant":
      return `${prefix}$${arg.value}`;
    case "register":
      return `${prefix}%${arg.reg.name}`;
    case "memory": {
      if (!arg.base && !arg.index) return `${prefix}0x${arg.offset.toString(16)}`;
      const idx = arg.index ? `,%${arg.index.name},${arg.scale}` : "";
      return `${prefix}${arg.offset || ""}(${arg.base ? `%${arg.base.name}` : ""}${idx})`;
    }
    case "rip":
      return `${prefix}${arg.offset}(%rip)`;
  }
}
