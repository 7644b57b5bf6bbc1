// Bytes copied from a traced process as text: C-style escapes for people, ASCII-only JSON strings,
// and `hexdump -C` lines. These run once per shown value, so they scan bytes with tables and
// plain loops (no regular expressions, no per-byte string allocation for printable runs).

const HEX = "0123456789abcdef";

/** C escape of each ASCII byte; printable ones (but `"` and `\`) map to themselves. */
const C_ESC: string[] = [];
/** JSON escape of each ASCII byte. */
const J_ESC: string[] = [];
/** `\xNN` of every byte. */
const X_ESC: string[] = [];
for (let c = 0; c < 256; c++) X_ESC.push(`\\x${HEX[c >> 4]}${HEX[c & 15]}`);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  const named: Record<number, string> = { 0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
  C_ESC.push(named[c] ?? (c < 0x20 || c === 0x7f ? X_ESC[c]! : ch));
  const jnamed: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
  J_ESC.push(jnamed[c] ?? (c < 0x20 || c === 0x7f ? `\\u00${HEX[c >> 4]}${HEX[c & 15]}` : ch));
}

function plain(c: number): boolean {
  return c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c;
}

/** Bun's Buffer decodes a Latin-1 slice of any Uint8Array natively (~10x String.fromCharCode). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/** Printable ASCII run as a string. */
function ascii(b: Uint8Array, start: number, end: number): string {
  if (latin1Slice) return latin1Slice.call(b, start, end);
  let s = "";
  for (let i = start; i < end; i += 4096) s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  return s;
}

/**
 * Length of the well-formed UTF-8 sequence at b[i] (2-4), 0 when it is not one, or -1 when it is
 * a valid beginning cut short by `end`.
 */
function utf8Length(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f; // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f; // nothing past U+10FFFF
  } else return 0;
  for (let k = 1; k < n; k++) {
    if (i + k >= end) return -1;
    const d = b[i + k]!;
    if (d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return 0;
  }
  return n;
}

function codePoint(b: Uint8Array, i: number, n: number): number {
  const c = b[i]!;
  if (n === 2) return ((c & 0x1f) << 6) | (b[i + 1]! & 0x3f);
  if (n === 3) return ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
  return ((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f);
}

/**
 * Code points escaped like invalid bytes. Those that would change how a terminal shows the line
 * rather than show a character: C1 controls (U+0080-U+009F, U+009B is a CSI), zero-width and
 * direction marks, line/paragraph separators, bidi embeddings and isolates, the BOM. And those no
 * text uses, so that binary data reads as bytes: private use areas and noncharacters.
 */
function hidden(cp: number): boolean {
  return (
    cp <= 0x9f ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x2028 && cp <= 0x202e) ||
    (cp >= 0x2060 && cp <= 0x206f) ||
    cp === 0xfeff ||
    (cp >= 0xe000 && cp <= 0xf8ff) ||
    cp >= 0xf0000 ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

/**
 * The bytes as the inside of a C string literal: printable ASCII and well-formed UTF-8 as they are,
 * `\n \t \r \0 \" \\` and friends, everything else (controls, invalid UTF-8, C1 and bidi
 * controls) as `\xNN`.
 */
export function escapeC(b: Uint8Array, end = b.length): string {
  let out = "";
  let run = 0;
  let i = 0;
  while (i < end) {
    const c = b[i]!;
    if (plain(c)) {
      i++;
      continue;
    }
    if (i > run) out += ascii(b, run, i);
    if (c < 0x80) {
      out += C_ESC[c];
      i++;
    } else {
      const n = utf8Length(b, i, end);
      const cp = n > 0 ? codePoint(b, i, n) : 0;
      if (n > 0 && !hidden(cp)) {
        out += String.fromCodePoint(cp);
        i += n;
      } else if (n > 0) {
        for (let k = 0; k < n; k++) out += X_ESC[b[i + k]!];
        i += n;
      } else {
        out += X_ESC[c];
        i++;
      }
    }
    run = i;
  }
  if (end > run) out += ascii(b, run, end);
  return out;
}

export interface JsonText {
  /** A JSON string literal with its quotes, ASCII only. */
  json: string;
  /** Some bytes were not UTF-8 and became U+FFFD. */
  lossy: boolean;
}

/**
 * The bytes decoded as UTF-8 into an ASCII-only JSON string literal. Bytes that are not UTF-8
 * become \ufffd (`lossy`). `cut`: the bytes were truncated, so a character cut short at the very
 * end is dropped instead of counting as invalid.
 */
export function jsonText(b: Uint8Array, end = b.length, cut = false): JsonText {
  let out = '"';
  let lossy = false;
  let run = 0;
  let i = 0;
  while (i < end) {
    const c = b[i]!;
    if (plain(c)) {
      i++;
      continue;
    }
    if (i > run) out += ascii(b, run, i);
    if (c < 0x80) {
      out += J_ESC[c];
      i++;
    } else {
      const n = utf8Length(b, i, end);
      if (n > 0) {
        const cp = codePoint(b, i, n);
        if (cp >= 0x10000) {
          const v = cp - 0x10000;
          out += u16(0xd800 + (v >> 10)) + u16(0xdc00 + (v & 0x3ff));
        } else out += u16(cp);
        i += n;
      } else if (n < 0 && cut) {
        i = end;
      } else {
        out += "\\ufffd";
        lossy = true;
        i++;
      }
    }
    run = i;
  }
  if (end > run) out += ascii(b, run, end);
  return { json: `${out}"`, lossy };
}

function u16(v: number): string {
  return `\\u${HEX[(v >> 12) & 15]}${HEX[(v >> 8) & 15]}${HEX[(v >> 4) & 15]}${HEX[v & 15]}`;
}

/** A JS string as an ASCII-only JSON string literal. */
export function jsonString(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (plain(c)) continue;
    out += s.slice(run, i) + (c < 0x80 ? J_ESC[c] : u16(c));
    run = i + 1;
  }
  return `${out}${s.slice(run)}"`;
}

export function base64(b: Uint8Array, end = b.length): string {
  return Buffer.from(b.buffer, b.byteOffset, end).toString("base64");
}

const HEX_BYTE: string[] = [];
for (let c = 0; c < 256; c++) HEX_BYTE.push(HEX[c >> 4]! + HEX[c & 15]!);
const DOT_ASCII: string[] = [];
for (let c = 0; c < 256; c++) DOT_ASCII.push(c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ".");

/**
 * The bytes as `hexdump -C -v` prints them, one string per 16 bytes: offset, two groups of 8 hex
 * bytes, the printable ASCII between bars. (hexdump's final line, the total length, is left out.)
 */
export function hexdump(b: Uint8Array, end = b.length, maxLines = 4096): string[] {
  const lines: string[] = [];
  for (let off = 0; off < end && lines.length < maxLines; off += 16) {
    let line = off.toString(16).padStart(8, "0") + " ";
    let text = "";
    for (let k = 0; k < 16; k++) {
      if (k === 8) line += " ";
      if (off + k < end) {
        const c = b[off + k]!;
        line += ` ${HEX_BYTE[c]}`;
        text += DOT_ASCII[c];
      } else line += "   ";
    }
    lines.push(`${line}  |${text}|`);
  }
  return lines;
}
