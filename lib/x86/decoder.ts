// An x86-64 instruction *length* decoder: where each instruction starts and ends, and which ones
// return. It exists so that return probes on Go functions land on real RET instructions: a byte
// scan for 0xC3 also finds C3 bytes inside immediates, displacements and ModRM bytes, and a probe
// there corrupts the instruction. Validated against objdump, instruction by instruction, over a
// whole Go binary's .text, a cgo binary, libc (AVX2/AVX-512) and hand-written edge cases
// (tests/go.test.ts). Only 64-bit mode; an opcode it does not know is an error, never a guess.
// Limit: VEX/EVEX opcodes are sized by map without checking that the opcode exists, so data
// that happens to look like VEX decodes (objdump says "(bad)"); callers refuse far RETs, which
// is how data inside a Go function has shown up.
// The bytes are untrusted: any input ends in instructions or a DecodeError, never another exception.
import { ProbeError } from "../errors.ts";
import { OP, OP_0F, ModRM, Imm, MAP_0F_IMM8_VEX, VALID } from "./tables.ts";

export class DecodeError extends ProbeError {
  constructor(
    message: string,
    /** Offset (in the caller's numbering) of the instruction that could not be decoded. */
    readonly at: number,
  ) {
    super(message);
  }
}

/** The range to decode must lie in the buffer: a caller's wrong bounds are a DecodeError, not a read past it. */
function checkRange(code: Uint8Array, start: number, end: number, base: number): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= code.length)) {
    throw new DecodeError(`range ${start}-${end} to decode is not inside the ${code.length} bytes given`, base + (Number.isFinite(start) ? start : 0));
  }
}

/** How a return instruction returns. */
export type ReturnKind = "ret" | "ret-imm" | "rep-ret" | "far-ret";

export interface Instruction {
  /** Offset in the caller's numbering (`baseOffset` + index into the code). */
  offset: number;
  length: number;
  /** Set for the return instructions. */
  ret?: ReturnKind;
}

const MAX_LENGTH = 15;

/**
 * Length of the instruction at `code[pos]`, or a negative number when it is not a valid 64-bit
 * instruction (-1: unknown opcode, -2: runs past `end`, -3: longer than 15 bytes).
 * `info[0]` receives a ReturnKind code (0 none, 1 ret, 2 ret imm16, 3 rep ret, 4 far ret);
 * `info[1]`, when present, 1 for CALL rel32 and 2 for JMP rel32 (target: end + last 4 bytes).
 */
export function instructionLength(code: Uint8Array, pos: number, end: number, info?: Int32Array): number {
  if (end > code.length) end = code.length;
  const start = pos;
  let opsize16 = false; // 0x66
  let addr32 = false; // 0x67
  let rep = false; // 0xF3
  let rexW = false;
  if (info) {
    info[0] = 0;
    if (info.length > 1) info[1] = 0;
  }

  // Legacy prefixes in any order, then at most one effective REX right before the opcode.
  for (;;) {
    if (pos >= end) return -2;
    const b = code[pos]!;
    if ((b & 0xf0) === 0x40) {
      rexW = (b & 8) !== 0;
      pos++;
      if (pos - start >= MAX_LENGTH) return -3;
      continue;
    }
    if (b === 0x66) opsize16 = true;
    else if (b === 0x67) addr32 = true;
    else if (b === 0xf3) rep = true;
    else if (b === 0xf0 || b === 0xf2 || b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26 || b === 0x64 || b === 0x65) {
      // lock, repne, segment overrides / branch hints: no effect on length
    } else break;
    rexW = false; // a legacy prefix after a REX cancels the REX
    pos++;
    if (pos - start >= MAX_LENGTH) return -3;
  }
  const b = code[pos++]!;

  let modrm: number;
  let imm: number;
  let map = 0; // 0: one-byte, 1: 0F, 2: 0F38, 3: 0F3A

  if (b === 0xc4 || b === 0xc5 || b === 0x62) {
    // VEX (C4 3-byte, C5 2-byte) and EVEX (62): in 64-bit mode these bytes are never LES/LDS/BOUND.
    if (b === 0xc5) {
      if (pos + 1 > end) return -2;
      map = 1;
      pos += 1;
    } else if (b === 0xc4) {
      if (pos + 2 > end) return -2;
      map = code[pos]! & 0x1f;
      pos += 2;
    } else {
      if (pos + 3 > end) return -2;
      const p0 = code[pos]!;
      // P0 bits 3 (reserved 0), P1 bit 2 (always 1) identify a valid EVEX prefix.
      if (p0 & 0x08 || !(code[pos + 1]! & 0x04)) return -1;
      map = p0 & 0x07;
      pos += 3;
    }
    if (pos >= end) return -2;
    const op = code[pos++]!;
    if (map === 1) {
      // VZEROUPPER / VZEROALL take no ModRM; everything else in the VEX maps has one.
      modrm = op === 0x77 ? ModRM.None : ModRM.Yes;
      imm = MAP_0F_IMM8_VEX[op] ? 1 : 0;
    } else if (map === 2) {
      modrm = ModRM.Yes;
      imm = 0;
    } else if (map === 3) {
      modrm = ModRM.Yes;
      imm = 1;
    } else if (b === 0x62 && (map === 5 || map === 6)) {
      // AVX512-FP16 maps: ModRM, no immediates.
      modrm = ModRM.Yes;
      imm = 0;
    } else {
      return -1;
    }
  } else if (b === 0x0f) {
    if (pos >= end) return -2;
    const op = code[pos++]!;
    if (op === 0x38 || op === 0x3a) {
      if (pos >= end) return -2;
      pos++;
      map = op === 0x38 ? 2 : 3;
      modrm = ModRM.Yes;
      imm = op === 0x3a ? 1 : 0;
    } else {
      map = 1;
      const e = OP_0F[op]!;
      if (!(e & VALID)) return -1;
      modrm = e & 3;
      imm = (e >> 2) & 15;
    }
  } else {
    const e = OP[b]!;
    if (!(e & VALID)) return -1;
    modrm = e & 3;
    imm = (e >> 2) & 15;
    if (info) {
      if (b === 0xc3) info[0] = rep ? 3 : 1;
      else if (b === 0xc2) info[0] = 2;
      else if (b === 0xcb || b === 0xca) info[0] = 4;
      else if ((b === 0xe8 || b === 0xe9) && info.length > 1) info[1] = b === 0xe8 ? 1 : 2;
    }
  }

  if (modrm !== ModRM.None) {
    if (pos >= end) return -2;
    const m = code[pos++]!;
    const mod = m >> 6;
    const reg = (m >> 3) & 7;
    const rm = m & 7;
    if (map === 0) {
      // F6/F7: only TEST (/0, /1) has an immediate.
      if (modrm === ModRM.Grp3 && reg > 1) imm = Imm.None;
      // Group encodings that do not exist: refusing them catches data decoded as code early.
      if ((b === 0xc6 || b === 0xc7) && reg !== 0 && m !== 0xf8) return -1; // MOV /0, XABORT/XBEGIN
      if (b === 0x8f && reg !== 0) return -1; // POP /0 (the rest is AMD XOP)
      if (b === 0xfe && reg > 1) return -1; // INC/DEC r/m8
      if (b === 0xff && reg === 7) return -1;
    }
    if (mod !== 3) {
      // 32- and 64-bit addressing share one ModRM/SIB format, so 0x67 does not change lengths here.
      if (rm === 4) {
        if (pos >= end) return -2;
        const sib = code[pos++]!;
        if (mod === 0 && (sib & 7) === 5) pos += 4;
      } else if (mod === 0 && rm === 5) {
        pos += 4; // RIP-relative disp32
      }
      if (mod === 1) pos += 1;
      else if (mod === 2) pos += 4;
    }
  }

  switch (imm) {
    case Imm.None:
      break;
    case Imm.B:
      pos += 1;
      break;
    case Imm.W:
      pos += 2;
      break;
    case Imm.Z: // 16 or 32 bits by operand size; REX.W keeps it at 32 (sign-extended)
      pos += opsize16 && !rexW ? 2 : 4;
      break;
    case Imm.V: // MOV r, imm: the only 64-bit immediate
      pos += rexW ? 8 : opsize16 ? 2 : 4;
      break;
    case Imm.Moffs:
      pos += addr32 ? 4 : 8;
      break;
    case Imm.WB: // ENTER
      pos += 3;
      break;
    case Imm.Rel32:
      // Intel ignores 0x66 on near branches in 64-bit mode, AMD truncates to 16 bits: refuse.
      if (opsize16) return -1;
      pos += 4;
      break;
    default:
      return -1;
  }
  if (pos - start > MAX_LENGTH) return -3;
  if (pos > end) return -2;
  return pos - start;
}

const RET_KINDS: (ReturnKind | undefined)[] = [undefined, "ret", "ret-imm", "rep-ret", "far-ret"];

/**
 * Decodes `code[start, end)` linearly. Throws DecodeError when a byte does not start a valid
 * instruction or the last instruction runs past `end`: the range is then not (only) code, or not
 * a function's real bounds, and nothing should be attached in it.
 */
export function* decodeRange(code: Uint8Array, start: number, end: number, baseOffset = 0): Generator<Instruction> {
  checkRange(code, start, end, baseOffset);
  const ret = new Int32Array(1);
  let pos = start;
  while (pos < end) {
    const n = instructionLength(code, pos, end, ret);
    if (n < 0) throw decodeFailure(code, pos, end, n, baseOffset);
    const r = RET_KINDS[ret[0]!];
    yield r ? { offset: baseOffset + pos, length: n, ret: r } : { offset: baseOffset + pos, length: n };
    pos += n;
  }
}

/**
 * Offsets (`baseOffset` + index) of every return instruction (RET, RET imm16, REP RET, far RET)
 * found by decoding `code[start, end)` from its first byte. Throws DecodeError if decoding hits
 * an unknown byte or does not land exactly on `end`.
 */
export function findReturns(code: Uint8Array, start: number, end: number, baseOffset = 0): number[] {
  checkRange(code, start, end, baseOffset);
  const ret = new Int32Array(1);
  const out: number[] = [];
  let pos = start;
  while (pos < end) {
    const n = instructionLength(code, pos, end, ret);
    if (n < 0) throw decodeFailure(code, pos, end, n, baseOffset);
    if (ret[0]) out.push(baseOffset + pos);
    pos += n;
  }
  return out;
}

/** Targets (`baseOffset` numbering) of the direct CALL rel32 / JMP rel32 in `code[start, end)`. */
export function directBranchTargets(code: Uint8Array, start: number, end: number, baseOffset = 0): number[] {
  checkRange(code, start, end, baseOffset);
  const out = new Int32Array(2);
  const targets: number[] = [];
  const v = new DataView(code.buffer, code.byteOffset, code.byteLength);
  let pos = start;
  while (pos < end) {
    const n = instructionLength(code, pos, end, out);
    if (n < 0) throw decodeFailure(code, pos, end, n, baseOffset);
    if (out[1]) targets.push(baseOffset + pos + n + v.getInt32(pos + n - 4, true));
    pos += n;
  }
  return targets;
}

/** Instruction start offsets in `code[start, end)`, for validation and tools. */
export function instructionStarts(code: Uint8Array, start: number, end: number, baseOffset = 0): number[] {
  checkRange(code, start, end, baseOffset);
  const out: number[] = [];
  let pos = start;
  while (pos < end) {
    const n = instructionLength(code, pos, end);
    if (n < 0) throw decodeFailure(code, pos, end, n, baseOffset);
    out.push(baseOffset + pos);
    pos += n;
  }
  return out;
}

function decodeFailure(code: Uint8Array, pos: number, end: number, reason: number, base: number): DecodeError {
  const bytes = Array.from(code.subarray(pos, Math.min(pos + 8, code.length)), (x) => x.toString(16).padStart(2, "0")).join(" ");
  const at = `0x${(base + pos).toString(16)}`;
  if (reason === -2) {
    return new DecodeError(`instruction at ${at} (${bytes}) runs past the end 0x${(base + end).toString(16)}: decoding did not land on the end`, base + pos);
  }
  if (reason === -3) return new DecodeError(`instruction at ${at} (${bytes}) is longer than 15 bytes`, base + pos);
  return new DecodeError(`undecodable instruction at ${at} (${bytes})`, base + pos);
}
