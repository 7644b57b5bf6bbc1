// The zlib symbols probe calls: raw inflate with its state kept between calls, so a compressed debug
// section can be inflated forward in pieces into a reused buffer and entered again at a block
// boundary (inflatePrime + inflateSetDictionary). libz.so.1 is a dependency of libbpf.so.1, so it is
// present wherever probe runs; it is loaded on first use, and when it cannot be, hasLibz() is false
// and callers read forward only, with Bun's zlib (lib/dwarf/node-inflate.ts).
import { dlopen, ptr } from "bun:ffi";

const i32 = "i32", p = "ptr", cstring = "cstring";

function load() {
  try {
    return dlopen("libz.so.1", {
      zlibVersion: { args: [], returns: cstring },
      inflateInit2_: { args: [p, i32, p, i32], returns: i32 },
      inflate: { args: [p, i32], returns: i32 },
      inflateEnd: { args: [p], returns: i32 },
      inflateReset: { args: [p], returns: i32 },
      inflatePrime: { args: [p, i32, i32], returns: i32 },
      inflateSetDictionary: { args: [p, p, i32], returns: i32 },
      inflateGetDictionary: { args: [p, p, p], returns: i32 },
    }).symbols;
  } catch {
    return undefined;
  }
}

let Z: ReturnType<typeof load> | null = null; // null: not tried yet

function libz(): ReturnType<typeof load> {
  if (Z === null) Z = load();
  return Z;
}

export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_NEED_DICT = 2;
export const Z_DATA_ERROR = -3;
export const Z_BUF_ERROR = -5;
/** Flush mode: return at the end of each deflate block (where a stream can be entered again). */
export const Z_BLOCK = 5;
/** Largest deflate window: what a stream entered mid-way needs as its dictionary. */
export const WINDOW = 32768;

// struct z_stream on x86-64 (zlib.h): pointers and uLong are 8 bytes, uInt and int 4.
const NEXT_IN = 0, AVAIL_IN = 8, NEXT_OUT = 24, AVAIL_OUT = 32, MSG = 48, DATA_TYPE = 88;
const Z_STREAM_SIZE = 112;

/** True when libz.so.1 can be loaded. */
export function hasLibz(): boolean {
  return libz() !== undefined;
}

let version: Uint8Array | undefined;

/** Frees the native state of streams nobody closed (a DebugInfo dropped mid-section). */
const finalizer = new FinalizationRegistry<Uint8Array>((s) => Z?.inflateEnd(s));

/**
 * One raw-deflate inflate stream (no zlib or gzip header). Buffers handed to `inflate` are only
 * used during the call: the native state keeps no pointer into JS memory between calls.
 */
export class RawInflate {
  /** Can be entered at a block boundary (restart points). */
  readonly resumable = true;
  // Backed by its own ArrayBuffer, which JavaScriptCore never moves: zlib's state points back at it.
  private readonly strm = new Uint8Array(new ArrayBuffer(Z_STREAM_SIZE));
  private readonly v = new DataView(this.strm.buffer);
  private readonly lenBox = new Uint32Array(1);
  private open = false;
  private readonly token = {};

  constructor() {
    const Z = libz();
    if (!Z) throw new Error("libz.so.1 is not available");
    version ??= new TextEncoder().encode(`${Z.zlibVersion()}\0`);
    const r = Z.inflateInit2_(this.strm, -15, version, Z_STREAM_SIZE);
    if (r !== Z_OK) throw new Error(`inflateInit2 failed (${r})`);
    this.open = true;
    finalizer.register(this, this.strm, this.token);
  }

  /**
   * Inflates from `input[inOff, inOff + inLen)` into `output[outOff, outOff + outLen)`, stopping
   * at the end of a deflate block. Returns zlib's code and the bytes consumed and produced.
   */
  inflate(input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): { code: number; read: number; wrote: number } {
    const Zs = this.live();
    const v = this.v;
    // An empty range still needs a valid pointer: zlib checks next_in/next_out for NULL.
    v.setBigUint64(NEXT_IN, BigInt(ptr(input) + inOff), true);
    v.setUint32(AVAIL_IN, inLen, true);
    v.setBigUint64(NEXT_OUT, BigInt(ptr(output) + outOff), true);
    v.setUint32(AVAIL_OUT, outLen, true);
    const code = Zs.inflate(this.strm, Z_BLOCK);
    return { code, read: inLen - v.getUint32(AVAIL_IN, true), wrote: outLen - v.getUint32(AVAIL_OUT, true) };
  }

  /** zlib's data_type after the last call: unused bits of the last input byte, +64 last block, +128 at a block boundary. */
  get dataType(): number {
    return this.v.getInt32(DATA_TYPE, true);
  }

  /** Whether zlib set a message (an error explanation) in the last call. */
  get hasMessage(): boolean {
    return this.v.getBigUint64(MSG, true) !== 0n;
  }

  /** Up to WINDOW bytes of the most recent output: what the next block may refer back to. */
  window(): Uint8Array {
    const Zs = this.live();
    const out = new Uint8Array(WINDOW);
    const r = Zs.inflateGetDictionary(this.strm, out, this.lenBox);
    if (r !== Z_OK) throw new Error(`inflateGetDictionary failed (${r})`);
    return out.subarray(0, Math.min(this.lenBox[0]!, WINDOW));
  }

  /** Starts over at a block boundary: `bits` of `byte` not yet used, then `window` as the history. */
  restart(bits: number, byte: number, window: Uint8Array | undefined): void {
    const Zs = this.live();
    let r = Zs.inflateReset(this.strm);
    if (r === Z_OK && bits) r = Zs.inflatePrime(this.strm, bits, byte >> (8 - bits));
    if (r === Z_OK && window && window.length) r = Zs.inflateSetDictionary(this.strm, window, window.length);
    if (r !== Z_OK) throw new Error(`cannot restart the inflate stream (${r})`);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    finalizer.unregister(this.token);
    Z!.inflateEnd(this.strm);
  }

  private live(): NonNullable<typeof Z> {
    if (!this.open || !Z) throw new Error("inflate stream is closed");
    return Z;
  }
}
