// Bun's own zlib, stepped forward in pieces like libz's inflate: about 1.5x faster than the
// system's libz on the same data, which is most of what one lookup in a compressed debug file
// costs. Reached through node:zlib's InflateRaw handle the way node:zlib's own synchronous path
// drives it (writeSync(flush, in, inOff, inLen, out, outOff, outLen), then _writeState holds the
// room and input left), which is not a public API: `create()` checks its shape, and callers fall
// back to libz without it. It cannot be entered mid-stream (no history or bit
// position to hand over), so zlib-section.ts uses it for forward reads and moves to libz, with
// restart points, when a section is read backwards.
import type * as Zlib from "node:zlib";

/** node:zlib on first use: importing it loads Node's streams, milliseconds of every start otherwise. */
const zlib = (): typeof Zlib => require("node:zlib");
import { Z_DATA_ERROR, Z_OK } from "../ffi/libz.ts";

interface Handle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
}

const Z_NO_FLUSH = 0;
let usable: boolean | undefined;

export class NodeInflate {
  /** Restart points need what this engine cannot give (zlib's data_type, history, priming). */
  readonly resumable = false;
  readonly dataType = 0;
  private stream!: { close(): void };
  private handle!: Handle;
  private state!: Uint32Array;
  private error: string | undefined;

  /** A new engine, or undefined when Bun's node:zlib lacks the handle it drives (checked once). */
  static create(): NodeInflate | undefined {
    if (usable === false) return undefined;
    try {
      const z = new NodeInflate();
      usable = true;
      return z;
    } catch {
      usable = false;
      return undefined;
    }
  }

  private constructor() {
    this.open();
  }

  private open(): void {
    const s = new (zlib().InflateRaw)() as unknown as { _handle?: Handle; _writeState?: unknown; close(): void };
    if (typeof s._handle?.writeSync !== "function" || !(s._writeState instanceof Uint32Array) || s._writeState.length < 2) {
      throw new Error("node:zlib has no synchronous inflate handle");
    }
    this.stream = s;
    this.handle = s._handle;
    this.state = s._writeState;
    // Errors come back through this callback, during writeSync; node:zlib's own would destroy
    // the stream and raise an 'error' event.
    this.handle.onerror = (message: string, errno: number) => {
      this.error = `${message} (${errno})`;
    };
  }

  /** Inflates from input[inOff, inOff + inLen) into output[outOff, outOff + outLen). */
  inflate(input: Uint8Array, inOff: number, inLen: number, output: Uint8Array, outOff: number, outLen: number): { code: number; read: number; wrote: number; message?: string } {
    this.error = undefined;
    try {
      this.handle.writeSync(Z_NO_FLUSH, input, inOff, inLen, output, outOff, outLen);
    } catch (e) {
      return { code: Z_DATA_ERROR, read: 0, wrote: 0, message: (e as Error).message };
    }
    const wrote = outLen - this.state[0]!;
    const read = inLen - this.state[1]!;
    if (this.error !== undefined) return { code: Z_DATA_ERROR, read, wrote, message: this.error };
    return { code: Z_OK, read, wrote };
  }

  window(): Uint8Array {
    throw new Error("this inflate engine keeps its history to itself");
  }

  /** Starts over at the stream's start (the only place this engine can start). */
  restart(bits: number, _byte: number, window: Uint8Array | undefined): void {
    if (bits || window) throw new Error("this inflate engine can only start at the stream's start");
    // The old stream is left to the garbage collector: closing one costs more than a new one.
    this.open();
  }

  close(): void {
    try {
      this.stream.close();
    } catch {
      // already closed
    }
  }
}
