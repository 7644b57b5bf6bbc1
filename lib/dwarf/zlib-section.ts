// A zlib-compressed debug section (SHF_COMPRESSED, or Go's .zdebug_*) read at random offsets
// without inflating it whole. A deflate stream can only be decoded forward, so one inflate stream
// walks the section: the bytes a lookup skips over are inflated into one small reused buffer and
// dropped (fresh memory is what costs on a VM, ~23 µs a page), the 16 KiB pages a lookup asks for
// are kept. A section read front to back goes through Bun's zlib (node-inflate.ts, the faster);
// once one is read backwards (strings soon are), through libz, which notes every so often where
// a deflate block ends, with the 32 KiB of history the next block may refer to, so that a later
// read further back (or far ahead) starts from the nearest such point, not the section's start.
import { readSync } from "node:fs";
import type { ElfFile } from "../elf.ts";
import { hasLibz, RawInflate, WINDOW, Z_BUF_ERROR, Z_OK, Z_STREAM_END } from "../ffi/libz.ts";
import { NodeInflate } from "./node-inflate.ts";
import { copyFromPages, untilNulInPages, type Pages } from "./pages.ts";

/** What a section reads through: libz's inflate (restart points) or Bun's (faster, forward only). */
export type Engine = RawInflate | NodeInflate;

/**
 * The engine a section starts with: Bun's zlib (a section read front to back goes fastest through
 * it; ZlibSection moves to libz on its first long step back), else libz; undefined when neither.
 */
export function zlibEngine(): Engine | undefined {
  return NodeInflate.create() ?? (hasLibz() ? new RawInflate() : undefined);
}

/** Unit of the cache of inflated bytes. */
const PAGE = 16 * 1024;
/** Above this many cached bytes, the cache starts over (bounded memory). */
const MAX_CACHED = 64 << 20;
/** Compressed bytes read from the file at once. */
const IN_CHUNK = 64 * 1024;
/**
 * Output between two restart points. A point costs a 32 KiB copy of the history, about what
 * inflating 32 KiB costs, so a first pass takes few; once a lookup goes back (string sections,
 * a Go program's type unit), the section is evidently read out of order and points get denser.
 */
const SPARSE = 1 << 20;
const DENSE = 128 * 1024;
const MAX_POINTS = 512;
/** String sections up to this size are kept whole once inflated (see the constructor). */
const MAX_KEPT_WHOLE = 16 << 20;

/** A place where a deflate block starts: enough to start inflating there. */
interface RestartPoint {
  /** Offset in the inflated section. */
  out: number;
  /** Offset in the deflate data of the first byte not fully used. */
  in: number;
  /** Bits of the byte before `in` that belong to the next block (0 to 7), and that byte. */
  bits: number;
  byte: number;
  window: Uint8Array;
}

export interface ZlibSectionStats {
  bytesInflated: number;
}

// Buffers every section shares: memory touched for the first time is what costs (a page fault
// each 4 KiB), so the compressed input and the skipped output always land in the same pages.
// The input buffer remembers whose bytes it holds; a section whose bytes were replaced reads again.
const shared = { input: new Uint8Array(0), owner: undefined as object | undefined, scratch: new Uint8Array(0) };

export class ZlibSection {
  private z: Engine;
  /** File offset and length of the raw deflate data (after the 2-byte zlib header). */
  private readonly dataBase: number;
  private readonly dataSize: number;
  /** Deflate-data offset of shared.input[0], and how many bytes are valid, while this section owns it. */
  private inStart = 0;
  private inLen = 0;
  /** What shared.owner holds while the input is this section's (not the section: it may be dropped). */
  private readonly token = {};
  /** Where the stream is: next deflate byte to feed, next section offset it will produce. */
  private inPos = 0;
  private outPos = 0;
  private ended = false;
  private pages = new Map<number, Uint8Array>();
  private readonly asPages: Pages = { size: PAGE, page: (i) => this.page(i) };
  private cached = 0;
  private points: RestartPoint[] = [];
  private spacing: number;
  /** A string section's bytes inflated so far ([0, outPos)), when it is kept whole. */
  private kept: Uint8Array | undefined;
  /** Steps back taken while reading through Bun's zlib. */
  private backSteps = 0;

  constructor(
    private readonly elf: ElfFile,
    /** File offset and size of the zlib stream (header included). */
    base: number,
    csize: number,
    /** Size of the inflated section. */
    private readonly size: number,
    private readonly stats: ZlibSectionStats,
    private readonly count: (n: number) => void,
    private readonly fail: (what: string) => never,
    /** Read in no particular order (strings): restart points dense from the start. */
    scattered: boolean,
    /** The engine to start with (zlibEngine()). */
    engine: Engine,
  ) {
    if (csize < 2) fail("compressed data is shorter than a zlib header");
    const h = this.readFile(base, 2);
    const cmf = h[0]!;
    const flg = h[1]!;
    if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0) fail("compressed data does not start with a zlib header");
    if (flg & 0x20) fail("compressed data asks for a preset dictionary");
    this.dataBase = base + 2;
    this.dataSize = csize - 2;
    this.spacing = Math.max(scattered ? DENSE : SPARSE, Math.ceil(size / MAX_POINTS));
    // Strings are read here and there, back and forth: a small string section keeps everything
    // inflated so far (one buffer, its pages touched only as it fills), never read twice.
    if (scattered && size <= MAX_KEPT_WHOLE) this.kept = new Uint8Array(size);
    this.z = engine;
  }

  /** Exactly `len` bytes at `off` (the caller has checked the range against the section). */
  get(off: number, len: number): Uint8Array {
    if (len <= 0) return new Uint8Array(0);
    if (this.kept) {
      this.keepTo(off + len);
      return this.kept.subarray(off, off + len);
    }
    const first = Math.floor(off / PAGE);
    const last = Math.floor((off + len - 1) / PAGE);
    if (first === last) return this.page(first).subarray(off - first * PAGE, off - first * PAGE + len);
    // A long read (a unit, a whole small section) that no cached page overlaps is inflated
    // straight into its buffer: no page copies.
    let cachedAny = false;
    for (let i = first; i <= last && !cachedAny; i++) cachedAny = this.pages.has(i);
    if (!cachedAny) {
      const out = new Uint8Array(len);
      this.seek(off);
      this.produce(out, len);
      return out;
    }
    return copyFromPages(this.asPages, off, len);
  }

  /** The bytes from `off` to a NUL (exclusive), at most `max` long; undefined when none is found. */
  until0(off: number, max: number): Uint8Array | undefined {
    if (this.kept) {
      const kept = this.kept;
      for (let want = off + 256; ; want = Math.min(this.size, off + (want - off) * 4)) {
        this.keepTo(Math.min(want, this.size, off + max + 1));
        const end = kept.subarray(off, this.outPos).indexOf(0);
        if (end >= 0) return end <= max ? kept.subarray(off, off + end) : undefined;
        if (this.outPos >= this.size || this.outPos > off + max) return undefined;
      }
    }
    return untilNulInPages(this.asPages, off, max, this.size);
  }

  /** Inflates the kept section up to `end` (and on to the next page boundary), never backwards. */
  private keepTo(end: number): void {
    if (end <= this.outPos) return;
    const to = Math.min(this.size, Math.ceil(end / PAGE) * PAGE);
    this.produce(this.kept!.subarray(this.outPos, to), to - this.outPos);
  }

  /** Frees the native inflate state (also done when the section is garbage collected). */
  close(): void {
    this.z.close();
  }

  private page(i: number): Uint8Array {
    let p = this.pages.get(i);
    if (p) return p;
    const start = i * PAGE;
    const n = Math.min(PAGE, this.size - start);
    if (this.cached + n > MAX_CACHED) {
      this.pages.clear();
      this.cached = 0;
    }
    p = new Uint8Array(n);
    this.seek(start);
    this.produce(p, n);
    this.pages.set(i, p);
    this.cached += n;
    return p;
  }

  /** Moves the stream to produce section offset `target` next: forward, or from a restart point. */
  private seek(target: number): void {
    const i = this.pointBefore(target + 1);
    const best = i >= 0 ? this.points[i] : undefined;
    if (target < this.outPos || (best && best.out > this.outPos)) {
      if (target < this.outPos) this.spacing = Math.max(DENSE, Math.ceil(this.size / MAX_POINTS));
      // Going back once a short way, starting Bun's zlib over costs less than loading libz;
      // further back, or again, the section is evidently read out of order: libz, with points.
      if (!this.z.resumable && (target >= SPARSE || ++this.backSteps > 1) && hasLibz()) this.z = new RawInflate();
      if (best) {
        this.restart(best.bits, best.byte, best.window);
        this.inPos = best.in;
        this.outPos = best.out;
      } else {
        this.restart(0, 0, undefined);
        this.inPos = 0;
        this.outPos = 0;
      }
    }
    let skip = target - this.outPos;
    if (skip > 0 && !shared.scratch.length) shared.scratch = new Uint8Array(64 * 1024);
    while (skip > 0) {
      const n = Math.min(skip, shared.scratch.length);
      this.produce(shared.scratch, n);
      skip -= n;
    }
  }

  private restart(bits: number, byte: number, window: Uint8Array | undefined): void {
    try {
      this.z.restart(bits, byte, window);
    } catch (e) {
      this.fail((e as Error).message);
    }
    this.ended = false;
  }

  /** Inflates the next `n` bytes of the section into `out[0, n)`. */
  private produce(out: Uint8Array, n: number): void {
    if (this.outPos + n > this.size) this.fail(`read past the declared size ${this.size}`);
    let done = 0;
    let stalls = 0;
    while (done < n) {
      if (this.ended) this.fail(`decompressed data ends at 0x${this.outPos.toString(16)}, the header says 0x${this.size.toString(16)} bytes`);
      this.fillInput();
      const rel = this.inPos - this.inStart;
      const r = this.z.inflate(shared.input, rel, this.inLen - rel, out, done, n - done);
      this.inPos += r.read;
      this.outPos += r.wrote;
      this.stats.bytesInflated += r.wrote;
      done += r.wrote;
      if (r.code === Z_STREAM_END) {
        this.ended = true;
      } else if (r.code !== Z_OK && r.code !== Z_BUF_ERROR) {
        const why = "message" in r && r.message ? `: ${r.message}` : ` (zlib error ${r.code})`;
        this.fail(`cannot decompress${why} near compressed offset 0x${this.inPos.toString(16)}`);
      }
      // Input and room were both offered: a call that uses neither would repeat forever.
      if (r.read === 0 && r.wrote === 0 && !this.ended && ++stalls > 2) this.fail(`decompression makes no progress at compressed offset 0x${this.inPos.toString(16)}`);
      if (r.read || r.wrote) stalls = 0;
      this.maybeAddPoint();
    }
  }

  /** Index of the last restart point before `out` (points are sorted), or -1. */
  private pointBefore(out: number): number {
    let lo = 0;
    let hi = this.points.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.points[mid]!.out < out) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi;
  }

  private maybeAddPoint(): void {
    if (!this.z.resumable) return;
    const dt = this.z.dataType;
    // At the end of a block that is not the last one, far enough from the points around.
    if (!(dt & 128) || dt & 64 || this.ended || this.outPos >= this.size || this.points.length >= MAX_POINTS) return;
    const i = this.pointBefore(this.outPos);
    const prev = i >= 0 ? this.points[i]!.out : 0;
    const next = this.points[i + 1]?.out ?? Infinity;
    if (this.outPos < prev + this.spacing || next < this.outPos + this.spacing / 2) return;
    const bits = dt & 7;
    const at = this.inPos - 1 - this.inStart;
    if (bits && (at < 0 || at >= this.inLen)) return; // the partial byte left the input buffer
    let window: Uint8Array;
    try {
      window = this.z.window();
    } catch {
      return; // an older zlib without inflateGetDictionary: no restart points, only forward reads
    }
    if (window.length < Math.min(WINDOW, this.outPos)) return;
    this.points.splice(i + 1, 0, { out: this.outPos, in: this.inPos, bits, byte: bits ? shared.input[at]! : 0, window });
  }

  /** Makes shared.input[inPos - inStart] this section's next deflate byte, reading a chunk if needed. */
  private fillInput(): void {
    if (shared.owner === this.token && this.inPos >= this.inStart && this.inPos < this.inStart + this.inLen) return;
    const n = Math.min(IN_CHUNK, this.dataSize - this.inPos);
    if (n <= 0) this.fail(`compressed data ends at 0x${this.outPos.toString(16)} of 0x${this.size.toString(16)} bytes`);
    if (!shared.input.length) shared.input = new Uint8Array(IN_CHUNK);
    shared.owner = undefined; // a failed read leaves no one's bytes
    this.readFile(this.dataBase + this.inPos, n, shared.input);
    shared.owner = this.token;
    this.inStart = this.inPos;
    this.inLen = n;
  }

  private readFile(off: number, n: number, into = new Uint8Array(n)): Uint8Array {
    let got = 0;
    try {
      while (got < n) {
        const r = readSync(this.elf.fd, into, got, n - got, off + got);
        if (r <= 0) break;
        got += r;
      }
    } catch (e) {
      return this.fail(`cannot read: ${(e as Error).message}`);
    }
    this.count(got);
    if (got !== n) this.fail("section data is cut short by the end of the file");
    return into;
  }
}

