// `.eh_frame` and `.debug_frame`: their CIEs and FDEs, and the CFA programs that turn an FDE into
// rows (DWARF 5 section 6.4, LSB "Exception Frames"). The bytes are one section read once; every
// read is bounds-checked by ByteReader and every loop is bounded by the bytes it consumes.
import { ByteReader, PE, type PointerContext } from "./byte-reader.ts";
import { CfaRow, RULE, NREGS, type FdeRows } from "./cfa-row.ts";
import { Malformed } from "./errors.ts";

export type FrameKind = "eh_frame" | "debug_frame";

export interface Cie {
  offset: number;
  version: number;
  augmentation: string;
  codeAlign: number;
  dataAlign: number;
  raReg: number;
  fdeEncoding: number;
  lsdaEncoding: number;
  signalFrame: boolean;
  hasAugmentationData: boolean;
  addressSize: number;
  instructions: Uint8Array;
  /** The row the CIE's initial instructions give, computed once. */
  initialRow?: CfaRow;
}

export interface Fde {
  offset: number;
  cie: Cie;
  pcBegin: number;
  pcEnd: number;
  instructions: Uint8Array;
}

/** One CIE or FDE header as met while walking the section. */
type Entry = { kind: "cie"; next: number } | { kind: "fde"; next: number; cieOffset: number; body: number; end: number } | { kind: "end"; next: number };

/** Deeper DW_CFA_remember_state nesting than this is taken as malformed, not as a reason to allocate. */
const MAX_REMEMBERED = 64;
/** Rows per FDE; the instruction bytes bound it too. */
const MAX_ROWS = 100_000;

export class FrameSection {
  private readonly cies = new Map<number, Cie>();
  private readonly ptr: PointerContext;

  constructor(
    readonly bytes: Uint8Array,
    /** Virtual address of byte 0 (pcrel pointers are relative to it); 0 for .debug_frame. */
    readonly vaddr: number,
    readonly kind: FrameKind,
    bases: Omit<PointerContext, "vaddr"> = {},
  ) {
    this.ptr = { vaddr, ...bases };
  }

  private entryAt(off: number): Entry {
    const r = new ByteReader(this.bytes, off);
    let length = r.u32();
    let idSize = 4;
    if (length === 0xffffffff) {
      length = r.u64();
      if (this.kind === "debug_frame") idSize = 8;
    }
    if (length === 0) {
      // .eh_frame ends with a zero terminator; .debug_frame may hold zero padding.
      return this.kind === "eh_frame" ? { kind: "end", next: this.bytes.length } : { kind: "end", next: r.pos };
    }
    const end = r.pos + length;
    if (end > this.bytes.length || length < idSize) throw new Malformed(`length ${length} runs past the end of ${this.kind} (${this.bytes.length} bytes)`);
    const idPos = r.pos;
    const id = idSize === 8 ? r.u64() : r.u32();
    if (this.kind === "eh_frame") {
      if (id === 0) return { kind: "cie", next: end };
      return { kind: "fde", next: end, cieOffset: idPos - id, body: r.pos, end };
    }
    if ((idSize === 4 && id === 0xffffffff) || (idSize === 8 && id === 2 ** 64 - 1)) return { kind: "cie", next: end };
    return { kind: "fde", next: end, cieOffset: id, body: r.pos, end };
  }

  cieAt(off: number): Cie {
    const cached = this.cies.get(off);
    if (cached) return cached;
    if (off < 0 || off >= this.bytes.length) throw new Malformed(`CIE pointer to ${hex(off)} is outside ${this.kind} (${this.bytes.length} bytes)`);
    const e = this.entryAt(off);
    if (e.kind !== "cie") throw new Malformed(`its CIE pointer leads to ${hex(off)}, which is not a CIE`);
    const cie = this.parseCie(off, e.next);
    this.cies.set(off, cie);
    return cie;
  }

  private parseCie(off: number, end: number): Cie {
    const r = new ByteReader(this.bytes, off, end);
    const length = r.u32();
    if (length === 0xffffffff) r.u64();
    r.pos += this.kind === "debug_frame" && length === 0xffffffff ? 8 : 4;
    const version = r.u8();
    if (version !== 1 && version !== 3 && version !== 4) throw new Malformed(`CIE at ${hex(off)} has unsupported version ${version}`);
    const augmentation = r.cstr();
    let addressSize = 8;
    if (version === 4) {
      addressSize = r.u8();
      const segmentSize = r.u8();
      if (segmentSize !== 0) throw new Malformed(`CIE at ${hex(off)} uses segment selectors`);
      if (addressSize !== 4 && addressSize !== 8) throw new Malformed(`CIE at ${hex(off)} has address size ${addressSize}`);
    }
    const codeAlign = r.uleb();
    const dataAlign = r.sleb();
    const raReg = version === 1 ? r.u8() : r.uleb();
    const cie: Cie = {
      offset: off, version, augmentation, codeAlign, dataAlign, raReg, addressSize,
      fdeEncoding: PE.absptr,
      lsdaEncoding: PE.omit, signalFrame: false, hasAugmentationData: false, instructions: new Uint8Array(),
    };
    if (augmentation.startsWith("z")) {
      cie.hasAugmentationData = true;
      const len = r.uleb();
      const dataEnd = r.pos + len;
      if (dataEnd > end) throw new Malformed(`CIE at ${hex(off)}: augmentation data past its end`);
      for (let i = 1; i < augmentation.length; i++) {
        const c = augmentation[i];
        if (c === "L") cie.lsdaEncoding = r.u8();
        else if (c === "R") cie.fdeEncoding = r.u8();
        else if (c === "P") r.skipPointer(r.u8(), this.vaddr);
        else if (c === "S") cie.signalFrame = true;
        else if (c === "B" || c === "G") continue;
        else break; // unknown letters: the length lets us skip what they carry
      }
      r.pos = dataEnd;
    } else if (augmentation !== "") {
      throw new Malformed(`CIE at ${hex(off)} has augmentation "${augmentation}", which cannot be skipped`);
    }
    if (cie.codeAlign === 0) throw new Malformed(`CIE at ${hex(off)} has code alignment 0`);
    cie.instructions = r.block(end - r.pos);
    return cie;
  }

  /** The FDE at section offset `off` (as the .eh_frame_hdr table or a scan found it). */
  fdeAt(off: number): Fde {
    if (off < 0 || off >= this.bytes.length) throw new Malformed(`FDE offset ${hex(off)} outside ${this.kind}`);
    const e = this.entryAt(off);
    if (e.kind !== "fde") throw new Malformed(`${hex(off)} is not an FDE`);
    return this.parseFde(off, e.cieOffset, e.body, e.end);
  }

  private parseFde(off: number, cieOffset: number, body: number, end: number): Fde {
    const cie = this.cieAt(cieOffset);
    const r = new ByteReader(this.bytes, body, end);
    let pcBegin: number;
    let pcRange: number;
    if (this.kind === "eh_frame") {
      pcBegin = r.pointer(cie.fdeEncoding, this.ptr) ?? 0;
      pcRange = r.pointer(cie.fdeEncoding & 0x0f, this.ptr) ?? 0;
    } else {
      pcBegin = cie.addressSize === 4 ? r.u32() : r.u64();
      pcRange = cie.addressSize === 4 ? r.u32() : r.u64();
    }
    if (cie.hasAugmentationData) {
      const len = r.uleb();
      r.block(len);
    }
    return { offset: off, cie, pcBegin, pcEnd: pcBegin + pcRange, instructions: r.block(end - r.pos) };
  }

  /**
   * Every FDE in the section, sorted by start address. A malformed entry ends the walk: what came
   * before it is kept and the problem returned, so one bad entry costs its frames, not the file's.
   */
  scan(): { starts: Float64Array; ends: Float64Array; offsets: Float64Array; problem?: string } {
    const found: { start: number; end: number; off: number }[] = [];
    let problem: string | undefined;
    let off = 0;
    while (off + 4 <= this.bytes.length) {
      try {
        const e = this.entryAt(off);
        if (e.kind === "end" && this.kind === "eh_frame") break;
        if (e.kind === "fde") {
          const f = this.parseFde(off, e.cieOffset, e.body, e.end);
          if (f.pcEnd > f.pcBegin) found.push({ start: f.pcBegin, end: f.pcEnd, off });
        }
        if (e.next <= off) break;
        off = e.next;
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        problem = `entry at ${hex(off)}: ${err.message}`;
        break;
      }
    }
    found.sort((a, b) => a.start - b.start);
    const starts = new Float64Array(found.length);
    const ends = new Float64Array(found.length);
    const offsets = new Float64Array(found.length);
    found.forEach((f, i) => {
      starts[i] = f.start;
      ends[i] = f.end;
      offsets[i] = f.off;
    });
    return { starts, ends, offsets, problem };
  }

  /** Runs the CIE's and the FDE's programs: every row of the FDE. */
  rows(fde: Fde): FdeRows {
    try {
      return this.runRows(fde);
    } catch (e) {
      if (e instanceof Malformed) throw new Malformed(`FDE at ${hex(fde.offset)} (pc ${hex(fde.pcBegin)}..${hex(fde.pcEnd)}): ${e.message}`);
      throw e;
    }
  }

  private runRows(fde: Fde): FdeRows {
    const cie = fde.cie;
    if (!cie.initialRow) {
      const row = new CfaRow();
      this.execute(cie.instructions, cie, row, undefined, { loc: 0 }, undefined, fde);
      cie.initialRow = row;
    }
    const row = cie.initialRow.clone();
    const locs: number[] = [fde.pcBegin];
    const rows: CfaRow[] = [];
    const state = { loc: fde.pcBegin };
    this.execute(fde.instructions, cie, row, cie.initialRow, state, (next) => {
      if (next < state.loc) throw new Malformed("its location moves backwards");
      if (next === state.loc) return;
      if (rows.length >= MAX_ROWS) throw new Malformed(`more than ${MAX_ROWS} rows`);
      rows.push(row.clone());
      locs.push(next);
    }, fde);
    rows.push(row);
    // Rows starting at or past the end describe nothing.
    while (locs.length > 1 && locs[locs.length - 1]! >= fde.pcEnd) {
      locs.pop();
      rows.pop();
    }
    return { locs, rows, end: fde.pcEnd, raReg: cie.raReg, signalFrame: cie.signalFrame };
  }

  /**
   * Executes call-frame instructions into `row`. `onAdvance` is told each new location before
   * it takes effect (it snapshots the row); the CIE's program has none.
   */
  private execute(code: Uint8Array, cie: Cie, row: CfaRow, initial: CfaRow | undefined, state: { loc: number }, onAdvance: ((next: number) => void) | undefined, fde: Fde): void {
    const r = new ByteReader(code);
    const remembered: CfaRow[] = [];
    const advance = (delta: number) => {
      const next = state.loc + delta * cie.codeAlign;
      onAdvance?.(next);
      state.loc = next;
    };
    const restore = (reg: number) => {
      if (!initial) throw new Malformed(`DW_CFA_restore in the CIE at 0x${cie.offset.toString(16)}`);
      if (reg < NREGS) row.setRule(reg, initial.rule[reg]!, initial.value[reg]!, initial.expr[reg]);
    };
    const da = cie.dataAlign;
    while (r.remaining > 0) {
      const op = r.u8();
      const high = op & 0xc0;
      const low = op & 0x3f;
      if (high === 0x40) { advance(low); continue; }
      if (high === 0x80) { row.setRule(low, RULE.offset, r.uleb() * da); continue; }
      if (high === 0xc0) { restore(low); continue; }
      switch (op) {
        case 0x00: break; // nop
        case 0x01: { // set_loc
          const codeVaddr = this.vaddr + code.byteOffset - this.bytes.byteOffset;
          const to = this.kind === "eh_frame" ? (r.pointer(cie.fdeEncoding, { ...this.ptr, vaddr: codeVaddr, funcBase: fde.pcBegin }) ?? 0) : cie.addressSize === 4 ? r.u32() : r.u64();
          onAdvance?.(to);
          state.loc = to;
          break;
        }
        case 0x02: advance(r.u8()); break;
        case 0x03: advance(r.u16()); break;
        case 0x04: advance(r.u32()); break;
        case 0x05: { const reg = r.uleb(); row.setRule(reg, RULE.offset, r.uleb() * da); break; }
        case 0x06: restore(r.uleb()); break;
        case 0x07: row.setRule(r.uleb(), RULE.undefined); break;
        case 0x08: row.setRule(r.uleb(), RULE.sameValue); break;
        case 0x09: { const reg = r.uleb(); row.setRule(reg, RULE.register, r.uleb()); break; }
        case 0x0a:
          if (remembered.length >= MAX_REMEMBERED) throw new Malformed(`DW_CFA_remember_state nested deeper than ${MAX_REMEMBERED}`);
          remembered.push(row.clone());
          break;
        case 0x0b: {
          const saved = remembered.pop();
          if (!saved) throw new Malformed("DW_CFA_restore_state without a remembered state");
          row.copyFrom(saved);
          break;
        }
        case 0x0c: row.cfaReg = r.uleb(); row.cfaOffset = r.uleb(); row.cfaExpr = undefined; break;
        case 0x0d: row.cfaReg = r.uleb(); row.cfaExpr = undefined; break;
        case 0x0e: row.cfaOffset = r.uleb(); break;
        case 0x0f: row.cfaReg = -1; row.cfaExpr = r.block(r.uleb()); break;
        case 0x10: { const reg = r.uleb(); row.setRule(reg, RULE.expression, 0, r.block(r.uleb())); break; }
        case 0x11: { const reg = r.uleb(); row.setRule(reg, RULE.offset, r.sleb() * da); break; }
        case 0x12: row.cfaReg = r.uleb(); row.cfaOffset = r.sleb() * da; row.cfaExpr = undefined; break;
        case 0x13: row.cfaOffset = r.sleb() * da; break;
        case 0x14: { const reg = r.uleb(); row.setRule(reg, RULE.valOffset, r.uleb() * da); break; }
        case 0x15: { const reg = r.uleb(); row.setRule(reg, RULE.valOffset, r.sleb() * da); break; }
        case 0x16: { const reg = r.uleb(); row.setRule(reg, RULE.valExpression, 0, r.block(r.uleb())); break; }
        case 0x1d: advance(r.u64()); break; // DW_CFA_MIPS_advance_loc8
        case 0x2e: r.uleb(); break; // DW_CFA_GNU_args_size: only exception landing pads care
        case 0x2f: { const reg = r.uleb(); row.setRule(reg, RULE.offset, -r.uleb() * da); break; } // GNU_negative_offset_extended
        default:
          throw new Malformed(`unknown call-frame instruction ${hex(op)}`);
      }
    }
  }
}

function hex(n: number): string {
  return n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}
