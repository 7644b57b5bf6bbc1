// Reading across the fixed-size pages a debug section is cached in (plain sections in 4 KiB pages
// read with pread, compressed ones in 16 KiB pages as they are inflated): one way to copy a range
// that spans pages and to find a string's end, for both.

/** A section as pages: page(i) is bytes [i * size, (i + 1) * size) (the last one shorter). */
export interface Pages {
  readonly size: number;
  page(i: number): Uint8Array;
}

/** `len` bytes from `off`, copied out of the pages they span (the caller has checked the range). */
export function copyFromPages(pages: Pages, off: number, len: number): Uint8Array {
  const first = Math.floor(off / pages.size);
  const last = Math.floor((off + len - 1) / pages.size);
  const out = new Uint8Array(len);
  let done = 0;
  for (let i = first; i <= last; i++) {
    const p = pages.page(i);
    const from = i === first ? off - first * pages.size : 0;
    const n = Math.min(p.length - from, len - done);
    out.set(p.subarray(from, from + n), done);
    done += n;
  }
  return out;
}

/** The bytes from `off` to a NUL (exclusive) within `end`, at most `max` of them; undefined otherwise. */
export function untilNulInPages(pages: Pages, off: number, max: number, end: number): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let at = off; at < end && total <= max; ) {
    const idx = Math.floor(at / pages.size);
    const p = pages.page(idx);
    const from = at - idx * pages.size;
    const nul = p.indexOf(0, from);
    if (nul >= 0) {
      if (total + nul - from > max) return undefined;
      parts.push(p.subarray(from, nul));
      return parts.length === 1 ? parts[0]! : concat(parts);
    }
    parts.push(p.subarray(from));
    total += p.length - from;
    at = (idx + 1) * pages.size;
  }
  return undefined;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
