// Opcode tables for the length decoder (64-bit mode): for each opcode, whether it is valid, whether
// a ModRM byte follows, and which immediate. Written from the Intel SDM opcode maps (Vol. 2, A.3).

export const VALID = 0x80;

export const ModRM = { None: 0, Yes: 1, /** F6/F7: TEST (/0, /1) has an immediate, the others not */ Grp3: 2 } as const;

export const Imm = {
  None: 0,
  /** imm8 / rel8 */
  B: 1,
  /** imm16 (RET imm16) */
  W: 2,
  /** imm16 or imm32 by operand size */
  Z: 3,
  /** imm16, imm32 or imm64 by operand size (MOV r, imm) */
  V: 4,
  /** absolute address: 8 bytes, 4 with 0x67 */
  Moffs: 5,
  /** imm16 + imm8 (ENTER) */
  WB: 6,
  /** rel32 of near CALL/JMP/Jcc */
  Rel32: 7,
} as const;

function entry(modrm: number, imm: number): number {
  return VALID | modrm | (imm << 2);
}

/** Sets `table[op]` for every opcode in the `ops` list ("00-03 08 10-13"). */
function set(table: Uint8Array, ops: string, modrm: number, imm: number): void {
  for (const part of ops.trim().split(/\s+/)) {
    const [a, b] = part.split("-");
    const lo = parseInt(a!, 16);
    const hi = b ? parseInt(b, 16) : lo;
    for (let op = lo; op <= hi; op++) table[op] = entry(modrm, imm);
  }
}

/** The one-byte opcode map. Prefix bytes (26 2E 36 3E 40-4F 64-67 F0 F2 F3) never reach it. */
export const OP = new Uint8Array(256);
// ALU ops: r/m forms, then AL, imm8 and eAX, imm32.
set(OP, "00-03 08-0B 10-13 18-1B 20-23 28-2B 30-33 38-3B", ModRM.Yes, Imm.None);
set(OP, "04 0C 14 1C 24 2C 34 3C", ModRM.None, Imm.B);
set(OP, "05 0D 15 1D 25 2D 35 3D", ModRM.None, Imm.Z);
set(OP, "50-5F", ModRM.None, Imm.None); // PUSH/POP r
set(OP, "63", ModRM.Yes, Imm.None); // MOVSXD
set(OP, "68", ModRM.None, Imm.Z); // PUSH imm
set(OP, "69", ModRM.Yes, Imm.Z); // IMUL r, r/m, imm
set(OP, "6A", ModRM.None, Imm.B);
set(OP, "6B", ModRM.Yes, Imm.B);
set(OP, "6C-6F", ModRM.None, Imm.None); // INS/OUTS
set(OP, "70-7F", ModRM.None, Imm.B); // Jcc rel8
set(OP, "80 83", ModRM.Yes, Imm.B); // group 1
set(OP, "81", ModRM.Yes, Imm.Z);
set(OP, "84-8F", ModRM.Yes, Imm.None); // TEST XCHG MOV MOV-Sreg LEA POP
set(OP, "90-99 9B-9F", ModRM.None, Imm.None); // XCHG/NOP, CBW, CWD, FWAIT, PUSHF, POPF, SAHF, LAHF
set(OP, "A0-A3", ModRM.None, Imm.Moffs); // MOV AL/eAX <-> moffs
set(OP, "A4-A7 AA-AF", ModRM.None, Imm.None); // string ops
set(OP, "A8", ModRM.None, Imm.B);
set(OP, "A9", ModRM.None, Imm.Z);
set(OP, "B0-B7", ModRM.None, Imm.B);
set(OP, "B8-BF", ModRM.None, Imm.V);
set(OP, "C0 C1", ModRM.Yes, Imm.B); // shift group 2, imm8
set(OP, "C2", ModRM.None, Imm.W); // RET imm16
set(OP, "C3", ModRM.None, Imm.None); // RET
set(OP, "C6", ModRM.Yes, Imm.B); // MOV r/m8, imm8 (and XABORT)
set(OP, "C7", ModRM.Yes, Imm.Z); // MOV r/m, imm32 (and XBEGIN rel32)
set(OP, "C8", ModRM.None, Imm.WB); // ENTER
set(OP, "C9", ModRM.None, Imm.None); // LEAVE
set(OP, "CA", ModRM.None, Imm.W); // far RET imm16
set(OP, "CB CC", ModRM.None, Imm.None); // far RET, INT3
set(OP, "CD", ModRM.None, Imm.B); // INT imm8
set(OP, "CF", ModRM.None, Imm.None); // IRET
set(OP, "D0-D3", ModRM.Yes, Imm.None); // shift group 2 by 1 / CL
set(OP, "D7", ModRM.None, Imm.None); // XLAT
set(OP, "D8-DF", ModRM.Yes, Imm.None); // x87
set(OP, "E0-E7", ModRM.None, Imm.B); // LOOPcc, JrCXZ, IN/OUT imm8
set(OP, "E8 E9", ModRM.None, Imm.Rel32);
set(OP, "EB", ModRM.None, Imm.B);
set(OP, "EC-EF", ModRM.None, Imm.None); // IN/OUT DX
set(OP, "F1 F4 F5", ModRM.None, Imm.None); // INT1, HLT, CMC
set(OP, "F6", ModRM.Grp3, Imm.B);
set(OP, "F7", ModRM.Grp3, Imm.Z);
set(OP, "F8-FD", ModRM.None, Imm.None); // CLC..STD
set(OP, "FE FF", ModRM.Yes, Imm.None); // INC/DEC/CALL/JMP/PUSH r/m
// Left invalid (#UD in 64-bit mode): 06 07 0E 16 17 1E 1F 27 2F 37 3F 60 61 82 9A CE D4 D5 D6 EA.
// 0F, C4, C5 and 62 are escapes handled by the decoder.

/** The two-byte map 0F xx (0F 38 and 0F 3A are three-byte escapes handled by the decoder). */
export const OP_0F = new Uint8Array(256);
set(OP_0F, "00-03", ModRM.Yes, Imm.None); // groups 6 and 7 (incl. SWAPGS, RDTSCP, XGETBV), LAR, LSL
set(OP_0F, "05-09 0B", ModRM.None, Imm.None); // SYSCALL CLTS SYSRET INVD WBINVD UD2
set(OP_0F, "0D", ModRM.Yes, Imm.None); // PREFETCHW
set(OP_0F, "10-1F", ModRM.Yes, Imm.None); // SSE moves, prefetch/hint NOPs, ENDBR64, NOP r/m
set(OP_0F, "20-23", ModRM.Yes, Imm.None); // MOV CR/DR
set(OP_0F, "28-2F", ModRM.Yes, Imm.None);
set(OP_0F, "30-35 37", ModRM.None, Imm.None); // WRMSR RDTSC RDMSR RDPMC SYSENTER SYSEXIT GETSEC
set(OP_0F, "40-6F", ModRM.Yes, Imm.None); // CMOVcc, SSE
set(OP_0F, "70-73", ModRM.Yes, Imm.B); // PSHUF*, shift groups 12-14 with imm8
set(OP_0F, "74-76", ModRM.Yes, Imm.None);
set(OP_0F, "77", ModRM.None, Imm.None); // EMMS
set(OP_0F, "78 79", ModRM.Yes, Imm.None); // VMREAD/VMWRITE
set(OP_0F, "7C-7F", ModRM.Yes, Imm.None);
set(OP_0F, "80-8F", ModRM.None, Imm.Rel32); // Jcc rel32
set(OP_0F, "90-9F", ModRM.Yes, Imm.None); // SETcc
set(OP_0F, "A0-A2", ModRM.None, Imm.None); // PUSH/POP FS, CPUID
set(OP_0F, "A3 A5 AB AD AE AF", ModRM.Yes, Imm.None); // BT, SHLD CL, BTS, SHRD CL, group 15, IMUL
set(OP_0F, "A4 AC", ModRM.Yes, Imm.B); // SHLD/SHRD imm8
set(OP_0F, "A8-AA", ModRM.None, Imm.None); // PUSH/POP GS, RSM
set(OP_0F, "B0-B9 BB-BF", ModRM.Yes, Imm.None); // CMPXCHG LSS BTR LFS LGS MOVZX POPCNT UD1 BTC BSF BSR MOVSX
set(OP_0F, "BA", ModRM.Yes, Imm.B); // group 8: BT* imm8
set(OP_0F, "C0 C1 C3 C7", ModRM.Yes, Imm.None); // XADD, MOVNTI, group 9
set(OP_0F, "C2 C4-C6", ModRM.Yes, Imm.B); // CMPPS, PINSRW, PEXTRW, SHUFPS
set(OP_0F, "C8-CF", ModRM.None, Imm.None); // BSWAP
set(OP_0F, "D0-FF", ModRM.Yes, Imm.None); // SSE/MMX, UD0
// Left invalid: 04 0A 0C 0E 0F (3DNow!) 24-27 36 38/3A (escapes) 39 3B-3F 7A 7B A6 A7.

/** VEX/EVEX map 1 (0F) opcodes with an imm8; map 3 always has one, map 2 never. */
export const MAP_0F_IMM8_VEX = new Uint8Array(256);
for (const op of [0x70, 0x71, 0x72, 0x73, 0xc2, 0xc4, 0xc5, 0xc6]) MAP_0F_IMM8_VEX[op] = 1;
