// A bounds-checked little-endian reader over one slice of a debug section. Every read checks the
// slice's end and throws a DwarfError naming the file, section and offset, so malformed input can
// never surface as a DataView RangeError.
import { DwarfError } from "./errors.ts";

const latin1 = new TextDecoder("latin1");

/** A read past the end of the cursor's bytes (which may be a window onto a longer section). */
export class TruncatedError extends DwarfError {}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class Cursor {
  private readonly v: DataView;
  pos = 0;

  /** `base` is the section offset of `bytes[0]`; `where` names file and section for messages. */
  constructor(
    readonly bytes: Uint8Array,
    readonly base: number,
    readonly where: string,
  ) {
    this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  get atEnd(): boolean {
    return this.pos >= this.bytes.length;
  }

  /** Section offset of the read position. */
  get offset(): number {
    return this.base + this.pos;
  }

  fail(what: string, at = this.offset): never {
    throw new DwarfError(`${this.where}: ${what} at offset 0x${at.toString(16)}`);
  }

  private need(n: number): number {
    const p = this.pos;
    if (n < 0 || p + n > this.bytes.length) {
      throw new TruncatedError(`${this.where}: truncated data (${n} bytes needed) at offset 0x${this.offset.toString(16)}`);
    }
    this.pos = p + n;
    return p;
  }

  seek(pos: number): void {
    if (pos < 0 || pos > this.bytes.length) this.fail(`offset 0x${(this.base + pos).toString(16)} out of range`);
    this.pos = pos;
  }

  skip(n: number): void {
    this.need(n);
  }

  u8(): number {
    return this.v.getUint8(this.need(1));
  }

  u16(): number {
    return this.v.getUint16(this.need(2), true);
  }

  u24(): number {
    const p = this.need(3);
    return this.v.getUint16(p, true) | (this.v.getUint8(p + 2) << 16);
  }

  u32(): number {
    return this.v.getUint32(this.need(4), true);
  }

  u64big(): bigint {
    return this.v.getBigUint64(this.need(8), true);
  }

  /** A 64-bit value that must fit in a JS number (offsets, lengths, counts). */
  u64(): number {
    const at = this.offset;
    const x = this.u64big();
    if (x > MAX_SAFE) this.fail(`value 0x${x.toString(16)} too large`, at);
    return Number(x);
  }

  /** An unsigned 64-bit value as a number when it is below 2^53, else as a bigint (no BigInt cost for the common case). */
  u64num(): number | bigint {
    const p = this.need(8);
    const lo = this.v.getUint32(p, true);
    const hi = this.v.getUint32(p + 4, true);
    return hi < 0x200000 ? hi * 0x100000000 + lo : this.v.getBigUint64(p, true);
  }

  /** ULEB128 as a number when below 2^53, else a bigint. */
  ulebNum(): number | bigint {
    const p = this.pos;
    const b = this.bytes;
    let result = 0;
    let mul = 1;
    for (let i = p; i < b.length && i < p + 7; i++) {
      const x = b[i]!;
      result += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) {
        this.pos = i + 1;
        return result;
      }
      mul *= 128;
    }
    const big = this.ulebBig();
    return big <= MAX_SAFE ? Number(big) : big;
  }

  /** SLEB128 as a number when it fits in the safe range, else a bigint. */
  slebNum(): number | bigint {
    const p = this.pos;
    const b = this.bytes;
    let result = 0;
    let mul = 1;
    for (let i = p; i < b.length && i < p + 7; i++) {
      const x = b[i]!;
      result += (x & 0x7f) * mul;
      mul *= 128;
      if ((x & 0x80) === 0) {
        this.pos = i + 1;
        return x & 0x40 ? result - mul : result;
      }
    }
    const big = this.slebBig();
    return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big;
  }

  /** The bytes of a NUL-terminated string, without decoding (decoded when someone asks). */
  cstrBytes(): Uint8Array {
    const start = this.pos;
    const end = this.bytes.indexOf(0, start);
    if (end < 0) throw new TruncatedError(`${this.where}: unterminated string at offset 0x${this.offset.toString(16)}`);
    this.pos = end + 1;
    return this.bytes.subarray(start, end);
  }

  /** An unsigned value of `size` bytes (1, 2, 4 or 8) as a bigint: addresses may be tombstones (~0). */
  uSizedBig(size: number): bigint {
    switch (size) {
      case 1: return BigInt(this.u8());
      case 2: return BigInt(this.u16());
      case 4: return BigInt(this.u32());
      case 8: return this.u64big();
      default: return this.fail(`unsupported size ${size}`);
    }
  }

  /** An offset of the unit's format: 4 bytes (32-bit DWARF) or 8 (64-bit DWARF). */
  offsetOf(offsetSize: number): number {
    return offsetSize === 8 ? this.u64() : this.u32();
  }

  /** Steps over a LEB128 (signed or not) of at most 10 bytes without computing its value. */
  skipLeb(): void {
    const b = this.bytes;
    const start = this.pos;
    const lim = Math.min(b.length, start + 10);
    for (let i = start; i < lim; i++) {
      if ((b[i]! & 0x80) === 0) {
        this.pos = i + 1;
        return;
      }
    }
    if (lim === start + 10) this.fail("LEB128 longer than 10 bytes");
    throw new TruncatedError(`${this.where}: truncated LEB128 at offset 0x${this.offset.toString(16)}`);
  }

  /** ULEB128 as a number; values past 2^53 are malformed for every use the reader has. */
  uleb(): number {
    const at = this.offset;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail("ULEB128 value too large", at);
        return result;
      }
      mul *= 128;
    }
    return this.fail("ULEB128 longer than 10 bytes", at);
  }

  /** ULEB128 as a bigint (constants that may use all 64 bits). */
  ulebBig(): bigint {
    const at = this.offset;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    return this.fail("ULEB128 longer than 10 bytes", at);
  }

  /** SLEB128 as a bigint, wrapped to 64 bits. */
  slebBig(): bigint {
    const at = this.offset;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= 1n << shift;
        return BigInt.asIntN(64, result);
      }
    }
    return this.fail("SLEB128 longer than 10 bytes", at);
  }

  /** SLEB128 as a number (frame offsets, small constants); out of the safe range is malformed. */
  sleb(): number {
    const at = this.offset;
    // Fast path for the common one- and two-byte encodings.
    const p = this.pos;
    if (p < this.bytes.length) {
      const b = this.bytes[p]!;
      if ((b & 0x80) === 0) {
        this.pos = p + 1;
        return b & 0x40 ? b - 0x80 : b;
      }
    }
    const x = this.slebBig();
    if (x > MAX_SAFE || x < -MAX_SAFE) this.fail("SLEB128 value too large", at);
    return Number(x);
  }

  /** NUL-terminated string (the terminator is required). */
  cstr(): string {
    const start = this.pos;
    const end = this.bytes.indexOf(0, start);
    if (end < 0) throw new TruncatedError(`${this.where}: unterminated string at offset 0x${this.offset.toString(16)}`);
    this.pos = end + 1;
    return decodeString(this.bytes.subarray(start, end));
  }

  bytesOf(n: number): Uint8Array {
    const p = this.need(n);
    return this.bytes.subarray(p, p + n);
  }
}

/** DWARF strings are UTF-8 in practice; bytes that are not fall back to latin1 so nothing throws. */
export function decodeString(b: Uint8Array): string {
  // Short ASCII names are the common case: building them directly beats a TextDecoder call.
  if (b.length <= 64) {
    let ascii = true;
    for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) ascii = false;
    if (ascii) return String.fromCharCode.apply(null, b as unknown as number[]);
  }
  for (let i = 0; i < b.length; i++) {
    if (b[i]! >= 0x80) {
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(b);
      } catch {
        return latin1.decode(b);
      }
    }
  }
  return latin1.decode(b);
}

