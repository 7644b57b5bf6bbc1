// Reading a pasted prototype token by token: the lexer (identifiers, numbers, punctuation; C
// comments skipped) and the parser base the C and Go parsers share (failures with a column,
// balanced skipping). Bounded: a prototype is at most MAX_TEXT characters and every loop is capped.
import { PrototypeError } from "./prototype-model.ts";

export interface Tok {
  kind: "id" | "num" | "punct" | "end";
  text: string;
  /** 0-based offset in the text. */
  pos: number;
}

export function isIdStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 0x80;
}
function isIdChar(c: number): boolean {
  return isIdStart(c) || (c >= 48 && c <= 57);
}
function isSpace(c: number): boolean {
  return c === 32;
}

/** Longest prototype accepted: a pasted man page line is far shorter; this bounds the work. */
export const MAX_TEXT = 4096;

class Lexer {
  private buf: Tok[] = [];
  private pos: number;

  constructor(
    readonly text: string,
    start = 0,
  ) {
    this.pos = start;
  }

  peek(k = 0): Tok {
    while (this.buf.length <= k) this.buf.push(this.scan());
    return this.buf[k]!;
  }

  next(): Tok {
    const t = this.peek();
    this.buf.shift();
    return t;
  }

  /** Drops buffered tokens and continues from `pos` (for the parts read character by character). */
  reset(pos: number): void {
    this.buf = [];
    this.pos = pos;
  }

  /** Where the next token starts, with nothing buffered. */
  rawPos(): number {
    const p = this.buf.length ? this.buf[0]!.pos : this.pos;
    this.reset(p);
    while (this.pos < this.text.length && isSpace(this.text.charCodeAt(this.pos))) this.pos++;
    return this.pos;
  }

  private scan(): Tok {
    const s = this.text;
    for (;;) {
      while (this.pos < s.length && isSpace(s.charCodeAt(this.pos))) this.pos++;
      if (s.startsWith("/*", this.pos)) {
        const end = s.indexOf("*/", this.pos + 2);
        this.pos = end < 0 ? s.length : end + 2;
      } else if (s.startsWith("//", this.pos)) this.pos = s.length;
      else break;
    }
    const start = this.pos;
    if (start >= s.length) return { kind: "end", text: "", pos: s.length };
    const c = s.charCodeAt(start);
    if (isIdStart(c) || (c >= 48 && c <= 57)) {
      let e = start + 1;
      while (e < s.length && isIdChar(s.charCodeAt(e))) e++;
      this.pos = e;
      return { kind: c >= 48 && c <= 57 ? "num" : "id", text: s.slice(start, e), pos: start };
    }
    for (const p of ["...", "<-"]) {
      if (s.startsWith(p, start)) {
        this.pos = start + p.length;
        return { kind: "punct", text: p, pos: start };
      }
    }
    this.pos = start + 1;
    return { kind: "punct", text: s[start]!, pos: start };
  }
}

function describe(t: Tok): string {
  return t.kind === "end" ? "the end" : `'${t.text}'`;
}

/** Shared by the C and Go parsers: tokens, failures with a column, balanced skipping. */
export class ParserBase {
  readonly lx: Lexer;
  constructor(readonly text: string) {
    this.lx = new Lexer(text);
  }

  fail(what: string, pos: number, hint?: string): never {
    throw new PrototypeError(`${what} at column ${pos + 1}`, pos + 1, this.text, hint);
  }

  failAt(t: Tok, expected: string, hint?: string): never {
    const pos = t.pos;
    throw new PrototypeError(`expected ${expected} at column ${pos + 1}, found ${describe(t)}`, pos + 1, this.text, hint);
  }

  is(text: string, k = 0): boolean {
    const t = this.lx.peek(k);
    return t.kind !== "end" && t.text === text;
  }

  accept(text: string): boolean {
    if (!this.is(text)) return false;
    this.lx.next();
    return true;
  }

  expect(text: string, hint?: string): Tok {
    const t = this.lx.peek();
    if (t.kind === "end" || t.text !== text) this.failAt(t, `'${text}'`, hint);
    return this.lx.next();
  }

  /** Skips from an opening bracket (already consumed) to its match; returns the text inside. */
  skipBalanced(open: string, close: string, openPos: number): string {
    let depth = 1;
    const start = openPos + 1;
    for (let n = 0; n < MAX_TEXT; n++) {
      const t = this.lx.next();
      if (t.kind === "end") this.fail(`'${open}' is never closed`, openPos);
      if (t.text === open) depth++;
      else if (t.text === close && --depth === 0) return squeeze(this.text.slice(start, t.pos));
    }
    this.fail("prototype too complex", openPos);
  }
}

/** Collapses runs of spaces (for type texts built from source slices). */
function squeeze(s: string): string {
  return s.trim().replace(/ +/g, " ");
}

/** A C integer literal (decimal or hex, any u/l suffix) as a safe integer: [LEN] and Go array lengths. */
export function parseCNumber(s: string): number | undefined {
  const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) ? v : undefined;
}
