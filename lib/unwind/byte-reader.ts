// A bounds-checked little-endian cursor over DWARF-style data: fixed-size integers, LEB128, and
// the pointer encodings of .eh_frame (DW_EH_PE_*). Values are JavaScript numbers: user-space
// addresses and table offsets fit in 2^53; larger ones lose low bits and then match nothing.
import { Malformed } from "./errors.ts";

export const PE = {
  absptr: 0x00, uleb128: 0x01, udata2: 0x02, udata4: 0x03, udata8: 0x04,
  sleb128: 0x09, sdata2: 0x0a, sdata4: 0x0b, sdata8: 0x0c,
  pcrel: 0x10, textrel: 0x20, datarel: 0x30, funcrel: 0x40, aligned: 0x50,
  indirect: 0x80, omit: 0xff,
} as const;

/** Bases the relative pointer encodings add to the value. */
export interface PointerContext {
  /** Virtual address of byte 0 of the reader's buffer (for pcrel). */
  vaddr: number;
  /** Base of datarel (the .eh_frame_hdr start in that section, the GOT elsewhere). */
  dataBase?: number;
  /** Base of textrel (.text). */
  textBase?: number;
  /** Start of the function (funcrel, for LSDA pointers). */
  funcBase?: number;
  /** Reads the 8-byte pointer stored at a virtual address (indirect); undefined if unreadable. */
  deref?: (vaddr: number) => number | undefined;
}

const TWO32 = 2 ** 32;

export class ByteReader {
  readonly view: DataView;
  pos: number;

  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
    public end = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
    if (end > bytes.length || pos > end || pos < 0) throw new Malformed(`range ${pos}..${end} outside ${bytes.length} bytes`);
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): number {
    const p = this.pos;
    if (p + n > this.end) throw new Malformed(`data ends early (${n} more bytes needed at offset ${p} of ${this.end})`);
    this.pos = p + n;
    return p;
  }

  u8(): number {
    return this.bytes[this.need(1)]!;
  }
  s8(): number {
    return this.view.getInt8(this.need(1));
  }
  u16(): number {
    return this.view.getUint16(this.need(2), true);
  }
  s16(): number {
    return this.view.getInt16(this.need(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.need(4), true);
  }
  s32(): number {
    return this.view.getInt32(this.need(4), true);
  }
  u64(): number {
    const p = this.need(8);
    return this.view.getUint32(p + 4, true) * TWO32 + this.view.getUint32(p, true);
  }
  s64(): number {
    const p = this.need(8);
    return this.view.getInt32(p + 4, true) * TWO32 + this.view.getUint32(p, true);
  }

  uleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (!(b & 0x80)) return result;
      mul *= 128;
    }
    throw new Malformed(`LEB128 longer than 10 bytes at offset ${this.pos - 10}`);
  }

  sleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) return b & 0x40 ? result - mul : result;
    }
    throw new Malformed(`LEB128 longer than 10 bytes at offset ${this.pos - 10}`);
  }

  /** `n` bytes as a view into the buffer (no copy). */
  block(n: number): Uint8Array {
    if (n < 0 || !Number.isFinite(n)) throw new Malformed(`bad block length ${n}`);
    const p = this.need(n);
    return this.bytes.subarray(p, p + n);
  }

  cstr(): string {
    const start = this.pos;
    let p = start;
    while (p < this.end && this.bytes[p] !== 0) p++;
    if (p >= this.end) throw new Malformed(`unterminated string at offset ${start}`);
    this.pos = p + 1;
    let s = "";
    for (let i = start; i < p; i++) s += String.fromCharCode(this.bytes[i]!);
    return s;
  }

  /** A pointer in DW_EH_PE encoding `enc`; undefined for DW_EH_PE_omit. */
  pointer(enc: number, ctx: PointerContext): number | undefined {
    if (enc === PE.omit) return undefined;
    const fieldAddr = ctx.vaddr + this.pos;
    if ((enc & 0x70) === PE.aligned) {
      // The value sits at the next 8-byte-aligned address.
      const aligned = Math.ceil(fieldAddr / 8) * 8;
      this.need(aligned - fieldAddr);
    }
    let v: number;
    switch (enc & 0x0f) {
      case PE.absptr: v = this.u64(); break;
      case PE.uleb128: v = this.uleb(); break;
      case PE.udata2: v = this.u16(); break;
      case PE.udata4: v = this.u32(); break;
      case PE.udata8: v = this.u64(); break;
      case PE.sleb128: v = this.sleb(); break;
      case PE.sdata2: v = this.s16(); break;
      case PE.sdata4: v = this.s32(); break;
      case PE.sdata8: v = this.s64(); break;
      default: throw new Malformed(`unknown pointer encoding 0x${enc.toString(16)}`);
    }
    switch (enc & 0x70) {
      case 0: case PE.aligned: break;
      case PE.pcrel: v += fieldAddr; break;
      case PE.textrel: v += base(ctx.textBase, "textrel", enc); break;
      case PE.datarel: v += base(ctx.dataBase, "datarel", enc); break;
      case PE.funcrel: v += base(ctx.funcBase, "funcrel", enc); break;
      default: throw new Malformed(`unknown pointer application 0x${enc.toString(16)}`);
    }
    if (enc & PE.indirect) {
      const d = ctx.deref?.(v);
      if (d === undefined) throw new Malformed(`indirect pointer to unreadable 0x${v.toString(16)}`);
      v = d;
    }
    return v;
  }

  /** Skips a pointer without needing its bases (the personality routine, the LSDA). */
  skipPointer(enc: number, vaddr: number): void {
    if (enc === PE.omit) return;
    // Same size and alignment, no base and no dereference.
    this.pointer((enc & 0x0f) | ((enc & 0x70) === PE.aligned ? PE.aligned : 0), { vaddr });
  }

  /** Size in bytes of a fixed-size encoding (0 for LEB128). */
  static encodingSize(enc: number): number {
    switch (enc & 0x0f) {
      case PE.udata2: case PE.sdata2: return 2;
      case PE.udata4: case PE.sdata4: return 4;
      case PE.absptr: case PE.udata8: case PE.sdata8: return 8;
      default: return 0;
    }
  }
}

function base(b: number | undefined, what: string, enc: number): number {
  if (b === undefined) throw new Malformed(`${what} pointer (encoding 0x${enc.toString(16)}) without a base`);
  return b;
}
