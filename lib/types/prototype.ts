// Function prototypes as a user pastes them: C from a man page ('ssize_t write(int fd, const void
// *buf[count], size_t count)') or Go ('func main.(*T).M(b []byte, ok bool) (int, error)'). The parser
// keeps what matters for finding and showing values: sizes, signedness, pointers, what a pointer
// points at, and how long a buffer is. Nothing here knows registers (abi.ts does).
//
// The one extension to C: a length in brackets, `T *p[LEN]` (or `T p[LEN]`), says p points at LEN
// elements of T, where LEN is a number, another parameter's name, or `ret` (the return value: the
// buffer is read when the function returns). Empty brackets keep C's meaning (`char *const argv[]`
// is a `char *const *`). man-pages 6 spellings are accepted too: `void buf[count]`, `[.count]`,
// and forward parameter declarations `(size_t count; int fd, ...)`.
import { ProbeError } from "../errors.ts";
import { C_INT_TYPEDEFS, C_POINTER_TYPEDEFS, C_QUALIFIERS, C_TYPE_WORDS, GO_EMPTY_INTERFACES, GO_INTERFACES, GO_INTS } from "./known.ts";

export type Lang = "c" | "go";

/** A type as far as probe cares. `text` is how it is shown ("const char *", "[]byte"). */
export type Type =
  | { kind: "void"; text: string }
  /** `char: true` only for plain C `char` (a pointer to it is shown as a string). */
  | { kind: "int"; text: string; size: 1 | 2 | 4 | 8 | 16; signed: boolean; char?: boolean }
  | { kind: "bool"; text: string }
  /** float, double, long double (size 16, align 16); Go complex64/128 are `complex`. */
  | { kind: "float"; text: string; size: number; align: number; complex: boolean }
  | { kind: "enum"; text: string; tag: string }
  | { kind: "pointer"; text: string; to: Type }
  /** A C function type: only ever seen behind a pointer (`void (*cb)(int)`). */
  | { kind: "function"; text: string }
  /** C `struct X`/`union X` and Go `struct{...}`; `empty` for Go `struct{}`. */
  | { kind: "record"; text: string; empty: boolean }
  /** A typedef or Go type probe has no definition for. */
  | { kind: "named"; text: string }
  | { kind: "string"; text: string }
  | { kind: "slice"; text: string; elem: Type }
  | { kind: "array"; text: string; len: number; elem: Type }
  /** `empty`: interface{}/any, whose first word is a type pointer rather than an itab. */
  | { kind: "interface"; text: string; empty: boolean }
  /** Go map, chan and func values: one pointer word. */
  | { kind: "ref"; text: string };

/**
 * A buffer's length in elements: the product of `factor` (the constants), the parameters in
 * `params` and, when `ret`, the return value. `[16]`, `[count]`, `[ret]`, `[.size * .nmemb]`,
 * `[4 * n]`; at most two terms that are not constants.
 */
export interface Count {
  factor: number;
  params: { index: number; name: string }[];
  ret: boolean;
}

export interface Param {
  /** As written; undefined for unnamed parameters and results. */
  name?: string;
  type: Type;
  /** 1-based column of the parameter in the prototype, for error messages. */
  column: number;
  /** C `[LEN]`: `type` is a pointer to `count` elements of its pointee. */
  count?: Count;
  /** Why a `[LEN]` was not used (the parameter is then shown as a plain pointer). */
  note?: string;
  /** Go: the method receiver (always params[0] when present). */
  receiver?: boolean;
  /** Go `...T`: `type` is the slice []T it is passed as. */
  variadic?: boolean;
}

export interface Prototype {
  lang: Lang;
  /** The prototype as parsed (tabs and newlines turned into spaces, so columns match). */
  text: string;
  /** The function's name: "openat", "memcpy@GLIBC_2.14", "main.(*T).M". */
  name: string;
  /** Arguments in order; a Go receiver first. */
  params: Param[];
  /** C: none for void, else one. Go: every result, named or not. */
  results: Param[];
  /** C `...` (the variadic arguments themselves are not shown). */
  variadic: boolean;
}

/** A prototype that does not parse, or that probe cannot place or show; `column` is 1-based. */
export class PrototypeError extends ProbeError {
  constructor(
    what: string,
    readonly column: number,
    readonly text: string,
    hint?: string,
  ) {
    super(`${what}`, caretHint(text, column, hint));
  }
}

/** The prototype with a caret under `column`, then any advice. */
function caretHint(text: string, column: number, advice?: string): string {
  const caret = `  ${text}\n  ${" ".repeat(Math.max(0, column - 1))}^`;
  return advice ? `${caret}\n${advice}` : caret;
}

// ---------------------------------------------------------------------------------------------
// Tokens

interface Tok {
  kind: "id" | "num" | "punct" | "end";
  text: string;
  /** 0-based offset in the text. */
  pos: number;
}

function isIdStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 0x80;
}
function isIdChar(c: number): boolean {
  return isIdStart(c) || (c >= 48 && c <= 57);
}
function isSpace(c: number): boolean {
  return c === 32;
}

/** Longest prototype accepted: a pasted man page line is far shorter; this bounds the work. */
const MAX_TEXT = 4096;

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
class ParserBase {
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

// ---------------------------------------------------------------------------------------------
// C

function pointerTo(to: Type, isConst = false): Type {
  const base = to.text.endsWith("*") ? `${to.text}*` : `${to.text} *`;
  return { kind: "pointer", text: isConst ? `${base}const` : base, to };
}

interface Spec {
  type: Type;
  pos: number;
}

type RawTerm = { kind: "const"; value: number; pos: number } | { kind: "name"; name: string; pos: number } | { kind: "ret"; pos: number };
/** The terms of a product, or the text of a length expression probe does not evaluate. */
type RawCount = { terms: RawTerm[]; pos: number } | { unparsed: string; pos: number };

interface Declarator {
  name?: string;
  type: Type;
  count?: RawCount;
  /** The declarator was only a type name with nothing after it (for `(void)`). */
  bare: boolean;
}

class CParser extends ParserBase {
  parse(): Prototype {
    const spec = this.declSpec();
    let ret = spec.type;
    while (this.is("*")) {
      this.lx.next();
      ret = pointerTo(ret, this.qualifiers());
    }
    const nameTok = this.lx.peek();
    if (nameTok.kind !== "id" || C_QUALIFIERS.has(nameTok.text) || C_TYPE_WORDS.has(nameTok.text)) this.failAt(nameTok, "the function name");
    this.lx.next();
    const name = nameTok.text + this.version(nameTok.pos + nameTok.text.length);
    this.expect("(");
    const { params, variadic } = this.paramList();
    this.skipAttributes();
    this.accept(";");
    const end = this.lx.peek();
    if (end.kind !== "end") this.failAt(end, "the end of the prototype");
    this.resolveCounts(params, ret);
    const results: Param[] = ret.kind === "void" ? [] : [{ type: ret, column: spec.pos + 1 }];
    return { lang: "c", text: this.text, name, params, results, variadic };
  }

  /** A symbol version right after the name (`memcpy@GLIBC_2.14`, `SSL_read@@OPENSSL_3.0.0`). */
  private version(after: number): string {
    const m = /^@@?[A-Za-z0-9_.]+/.exec(this.text.slice(after, after + 128));
    if (!m) return "";
    this.lx.reset(after + m[0].length);
    return m[0];
  }

  /** Qualifiers after a `*`; true when one was const. */
  private qualifiers(): boolean {
    let isConst = false;
    for (;;) {
      const t = this.lx.peek();
      if (t.kind !== "id" || !C_QUALIFIERS.has(t.text)) return isConst;
      if (t.text === "const" || t.text === "__const") isConst = true;
      this.lx.next();
    }
  }

  /** GNU `__attribute__((...))` and C23 `[[...]]`: nothing probe needs. */
  private skipAttributes(): void {
    for (;;) {
      if (this.is("__attribute__") || this.is("__attribute")) {
        this.lx.next();
        const open = this.expect("(");
        this.skipBalanced("(", ")", open.pos);
      } else if (this.is("[") && this.is("[", 1)) {
        const open = this.lx.next();
        this.skipBalanced("[", "]", open.pos);
      } else return;
    }
  }

  private declSpec(): Spec {
    const start = this.lx.peek();
    let isConst = false;
    const words: Tok[] = [];
    let tag: { keyword: string; name: string } | undefined;
    let typedef: Tok | undefined;
    for (let n = 0; n < 64; n++) {
      this.skipAttributes();
      const t = this.lx.peek();
      if (t.kind !== "id") break;
      if (C_QUALIFIERS.has(t.text)) {
        if (t.text === "const" || t.text === "__const") isConst = true;
        this.lx.next();
        continue;
      }
      if (C_TYPE_WORDS.has(t.text)) {
        if (typedef || tag) this.fail(`'${t.text}' cannot follow '${typedef?.text ?? tag!.keyword + " " + tag!.name}'`, t.pos);
        words.push(this.lx.next());
        continue;
      }
      if (t.text === "struct" || t.text === "union" || t.text === "enum") {
        if (typedef || tag || words.length) this.fail(`'${t.text}' cannot follow another type`, t.pos);
        this.lx.next();
        const nameTok = this.lx.next();
        if (nameTok.kind !== "id") this.failAt(nameTok, `the ${t.text} tag (a name: inline definitions are not supported)`);
        tag = { keyword: t.text, name: nameTok.text };
        continue;
      }
      if (!typedef && !tag && !words.length) {
        typedef = this.lx.next();
        continue;
      }
      break;
    }
    const constPrefix = isConst ? "const " : "";
    if (tag) {
      const text = `${constPrefix}${tag.keyword} ${tag.name}`;
      if (tag.keyword === "enum") return { type: { kind: "enum", text, tag: tag.name }, pos: start.pos };
      return { type: { kind: "record", text, empty: false }, pos: start.pos };
    }
    if (typedef) return { type: this.typedefType(typedef.text, constPrefix), pos: start.pos };
    if (!words.length) this.failAt(this.lx.peek(), "a type");
    return { type: this.wordsType(words, constPrefix), pos: start.pos };
  }

  private typedefType(name: string, constPrefix: string): Type {
    const text = constPrefix + name;
    const int = C_INT_TYPEDEFS.get(name);
    if (int) return { kind: "int", text, size: int[0], signed: int[1] };
    if (name === "bool") return { kind: "bool", text };
    if (C_POINTER_TYPEDEFS.has(name)) return { kind: "pointer", text, to: { kind: "void", text: "void" } };
    return { kind: "named", text };
  }

  /** int, unsigned long long, long double...: the combinations C allows. */
  private wordsType(words: Tok[], constPrefix: string): Type {
    const count = new Map<string, number>();
    for (const w of words) count.set(w.text === "bool" ? "_Bool" : w.text, (count.get(w.text === "bool" ? "_Bool" : w.text) ?? 0) + 1);
    const n = (w: string) => count.get(w) ?? 0;
    const text = constPrefix + words.map((w) => w.text).join(" ");
    const bad = (why = `'${words.map((w) => w.text).join(" ")}' is not a C type`): never => this.fail(why, words[0]!.pos);
    for (const [w, k] of count) if (k > (w === "long" ? 2 : 1)) bad();
    const signed = n("signed"), unsigned = n("unsigned"), long = n("long");
    const others = (...allowed: string[]) => [...count.keys()].some((w) => !allowed.includes(w));
    if (signed && unsigned) bad();
    if (n("_Complex")) bad(`complex types ('${text}') are not supported`);
    if (n("void")) return others("void") ? bad() : { kind: "void", text };
    if (n("_Bool")) return others("_Bool") ? bad() : { kind: "bool", text };
    if (n("float")) return others("float") ? bad() : { kind: "float", text, size: 4, align: 4, complex: false };
    if (n("double")) {
      if (others("double", "long") || long > 1) bad();
      return long ? { kind: "float", text, size: 16, align: 16, complex: false } : { kind: "float", text, size: 8, align: 8, complex: false };
    }
    if (n("char")) {
      if (others("char", "signed", "unsigned")) bad();
      return { kind: "int", text, size: 1, signed: !unsigned, char: !signed && !unsigned ? true : undefined };
    }
    if (n("__int128")) return others("__int128", "signed", "unsigned") ? bad() : { kind: "int", text, size: 16, signed: !unsigned };
    if (n("short")) return others("short", "int", "signed", "unsigned") ? bad() : { kind: "int", text, size: 2, signed: !unsigned };
    if (long) return others("long", "int", "signed", "unsigned") ? bad() : { kind: "int", text, size: 8, signed: !unsigned };
    return { kind: "int", text, size: 4, signed: !unsigned };
  }

  private declarator(base: Type): Declarator {
    let type = base;
    let bare = true;
    while (this.is("*")) {
      this.lx.next();
      type = pointerTo(type, this.qualifiers());
      bare = false;
    }
    let name: string | undefined;
    if (this.is("(")) {
      // A function pointer: RET (*name)(PARAMS).
      this.lx.next();
      if (!this.is("*")) this.failAt(this.lx.peek(), "'*' (only function pointers may use parentheses here)");
      this.lx.next();
      this.qualifiers();
      const t = this.lx.peek();
      if (t.kind === "id") name = this.lx.next().text;
      this.expect(")");
      const paramsOpen = this.expect("(", "a function pointer is written 'RET (*name)(PARAMS)'");
      const params = this.skipBalanced("(", ")", paramsOpen.pos);
      const text = `${type.text}${type.kind === "pointer" ? "" : " "}(*)(${params})`;
      type = { kind: "pointer", text, to: { kind: "function", text: `${type.text} (${params})` } };
      bare = false;
    } else {
      const t = this.lx.peek();
      if (t.kind === "id" && !C_QUALIFIERS.has(t.text) && !C_TYPE_WORDS.has(t.text)) {
        name = this.lx.next().text;
        bare = false;
      }
    }
    let count: RawCount | undefined;
    if (this.is("[")) {
      bare = false;
      const r = this.bracket();
      if (this.is("[")) this.fail("only one [LEN] is allowed per parameter", this.lx.peek().pos);
      if (r === undefined) type = pointerTo(type);
      else {
        count = r;
        if (type.kind !== "pointer") type = pointerTo(type);
      }
    }
    return { name, type, count, bare };
  }

  /**
   * `[]`, `[16]`, `[count]`, `[ret]`, products like `[.size * .nmemb]` (man-pages 6 writes a
   * parameter as `.name`), with C99's `static` and qualifiers allowed first.
   */
  private bracket(): RawCount | undefined {
    this.expect("[");
    for (;;) {
      const t = this.lx.peek();
      if (t.kind === "id" && (C_QUALIFIERS.has(t.text) || t.text === "static")) this.lx.next();
      else break;
    }
    if (this.accept("]")) return undefined;
    const start = this.lx.peek().pos;
    const terms: RawTerm[] = [];
    for (;;) {
      this.accept(".");
      const t = this.lx.peek();
      if (t.kind === "num" && parseCNumber(t.text) !== undefined) terms.push({ kind: "const", value: parseCNumber(t.text)!, pos: t.pos });
      else if (t.kind === "id" && t.text === "ret") terms.push({ kind: "ret", pos: t.pos });
      else if (t.kind === "id") terms.push({ kind: "name", name: t.text, pos: t.pos });
      else break;
      this.lx.next();
      if (!this.accept("*")) break;
    }
    if (this.accept("]") && terms.length) return { terms, pos: start };
    // Anything else (`*.optlen`, `(.maxnode + 63) / 64`) is read to its `]` and not evaluated.
    const inner = this.skipBalanced("[", "]", start - 1);
    return { unparsed: inner, pos: start };
  }

  private paramList(): { params: Param[]; variadic: boolean } {
    let params: (Param & { raw?: RawCount; bare: boolean })[] = [];
    let variadic = false;
    if (this.accept(")")) return { params: [], variadic };
    for (let n = 0; n < 256; n++) {
      const start = this.lx.peek();
      if (this.accept("...")) {
        variadic = true;
        this.expect(")", "'...' comes last");
        break;
      }
      const spec = this.declSpec();
      const d = this.declarator(spec.type);
      params.push({ name: d.name, type: d.type, column: start.pos + 1, raw: d.count, bare: d.bare });
      if (this.accept(",")) continue;
      if (this.accept(";")) {
        params = []; // man-pages 6 forward declarations: `(size_t count; int fd, ...)`
        continue;
      }
      const t = this.lx.peek();
      if (t.kind === "end" || t.text !== ")") this.failAt(t, "',' or ')'");
      this.lx.next();
      break;
    }
    if (params.length === 1 && params[0]!.type.kind === "void" && params[0]!.bare) params = [];
    for (const p of params) if (p.type.kind === "void") this.fail("a parameter cannot have type void", p.column - 1, "write 'void *' for an untyped pointer");
    this.pendingCounts = params.map((p) => p.raw);
    return { params: params.map(({ raw: _raw, bare: _bare, ...p }) => p), variadic };
  }

  private pendingCounts: (RawCount | undefined)[] = [];

  /**
   * Turns `[name]`/`[ret]` into references, now that every parameter is known. A length probe
   * cannot use leaves a note instead of failing: pasted man pages have lengths like `[PATH_MAX]`
   * or `[*.optlen]`, and the parameter is still worth showing as a pointer.
   */
  private resolveCounts(params: Param[], ret: Type): void {
    this.pendingCounts.forEach((raw, i) => {
      if (!raw) return;
      const p = params[i]!;
      const ignore = (why: string) => {
        p.note = `the length of '${p.name ?? `arg${i}`}' is not used (${why}): it is shown as a pointer`;
      };
      if ("unparsed" in raw) return ignore(`'${raw.unparsed}' is not a number, a parameter, 'ret' or a product of them`);
      const pointee = (p.type as Extract<Type, { kind: "pointer" }>).to;
      if (elementSize(pointee) === undefined) return ignore(`the size of ${pointee.text} is unknown`);
      const count: Count = { factor: 1, params: [], ret: false };
      let variables = 0;
      for (const term of raw.terms) {
        if (term.kind === "const") {
          count.factor *= term.value;
          if (!Number.isSafeInteger(count.factor) || count.factor <= 0) return ignore("it is not a positive size");
          continue;
        }
        if (++variables > 2) return ignore("it multiplies more than two values");
        if (term.kind === "ret") {
          if (ret.kind !== "int" || ret.size > 8) return ignore(`'ret' needs an integer return value, and this function returns ${ret.text}`);
          if (count.ret) return ignore("'ret' appears twice");
          count.ret = true;
          continue;
        }
        const index = params.findIndex((q) => q.name === term.name);
        if (index < 0) return ignore(`'${term.name}' is not a parameter`);
        const q = params[index]!;
        if (q.type.kind !== "int" || q.type.size > 8) return ignore(`'${term.name}' is ${q.type.text}, not an integer`);
        count.params.push({ index, name: term.name });
      }
      p.count = count;
    });
  }
}

function parseCNumber(s: string): number | undefined {
  const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[1]);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** Bytes per element behind a pointer with [LEN], or undefined when unknown. */
export function elementSize(t: Type): number | undefined {
  switch (t.kind) {
    case "void":
    case "bool":
      return 1;
    case "int":
      return t.size;
    case "float":
      return t.size;
    case "enum":
      return 4;
    case "pointer":
    case "ref":
      return 8;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Go

const GO_KEYWORDS = new Set(["map", "chan", "func", "interface", "struct"]);

interface GoEntry {
  name?: Tok;
  /** The entry was a lone identifier: a name in a named list (`a, b int`), else a type. */
  bare?: Tok;
  type: Type;
  pos: number;
  variadic: boolean;
}

class GoParser extends ParserBase {
  parse(): Prototype {
    const func = this.lx.next();
    if (func.text !== "func") this.failAt(func, "'func'");
    let explicitReceiver: Param | undefined;
    if (this.is("(")) {
      const open = this.lx.next();
      const r = this.paramList();
      if (r.length !== 1) this.fail("a receiver is one parameter", open.pos);
      explicitReceiver = { ...r[0]!, name: r[0]!.name ?? "recv", receiver: true };
    }
    const namePos = this.lx.rawPos();
    const name = this.scanName(namePos);
    this.lx.reset(namePos + name.length);
    const receiver = explicitReceiver ?? this.receiverOf(name, namePos);
    this.expect("(");
    const params = this.paramList();
    let results: Param[] = [];
    const t = this.lx.peek();
    if (t.kind !== "end") {
      if (this.is("(")) {
        this.lx.next();
        results = this.paramList();
      } else {
        const type = this.type();
        results = [{ type, column: t.pos + 1 }];
      }
    }
    const end = this.lx.peek();
    if (end.kind !== "end") this.failAt(end, "the end of the prototype");
    return { lang: "go", text: this.text, name, params: receiver ? [receiver, ...params] : params, results, variadic: false };
  }

  /**
   * The symbol name up to its parameter list: `main.demo`, `net/http.(*conn).serve`,
   * `main.Map[...]`. A `(` right after a `.` opens a receiver, any other `(` the parameters.
   */
  private scanName(start: number): string {
    const s = this.text;
    let depth = 0;
    let i = start;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === "[") depth++;
      else if (c === "]") depth--;
      else if (depth === 0 && c === "(") {
        if (s[i - 1] !== ".") break;
        const close = s.indexOf(")", i);
        if (close < 0) this.fail("'(' is never closed", i);
        i = close;
      } else if (depth === 0 && (c === " " || c === ",")) break;
    }
    if (depth !== 0) this.fail("'[' is never closed", start);
    const name = s.slice(start, i);
    if (!name || !isIdStart(name.charCodeAt(0))) this.failAt(this.lx.peek(), "the function name (like main.demo or main.(*T).M)");
    return name;
  }

  /** The receiver a method name implies: `pkg.(*T).M` a pointer, `pkg.T.M` a T by value. */
  private receiverOf(name: string, namePos: number): Param | undefined {
    const segs = splitGoName(name);
    if (segs.length !== 3) return undefined; // pkg.F, or a closure such as pkg.(*T).M.func1
    const [, recv, method] = segs as [string, string, string];
    if (/^(func|gowrap|deferwrap)\d+$|^\d+$/.test(method)) return undefined; // pkg.F.func1, pkg.init.0
    const column = namePos + name.length - method.length - recv.length; // the receiver's column
    const ptr = /^\(\*(.+)\)$/.exec(recv);
    if (ptr) {
      const to: Type = { kind: "named", text: ptr[1]! };
      return { name: "recv", type: { kind: "pointer", text: `*${ptr[1]}`, to }, column, receiver: true };
    }
    if (recv.startsWith("(")) return undefined;
    return { name: "recv", type: { kind: "named", text: recv }, column, receiver: true };
  }

  paramList(): Param[] {
    const entries: GoEntry[] = [];
    if (!this.accept(")")) {
      for (let n = 0; ; n++) {
        if (n > 256) this.fail("too many parameters", this.lx.peek().pos);
        const t = this.lx.peek();
        const after = this.lx.peek(1);
        if (t.kind === "id" && !GO_KEYWORDS.has(t.text) && startsGoType(after)) {
          this.lx.next();
          const variadic = this.accept("...");
          entries.push({ name: t, type: this.variadic(this.type(), variadic), pos: t.pos, variadic });
        } else if (this.is("...")) {
          this.lx.next();
          entries.push({ type: this.variadic(this.type(), true), pos: t.pos, variadic: true });
        } else {
          const bare = t.kind === "id" && (after.text === "," || after.text === ")") && after.kind === "punct" ? t : undefined;
          entries.push({ bare, type: this.type(), pos: t.pos, variadic: false });
        }
        if (this.accept(",")) {
          if (this.accept(")")) break;
          continue;
        }
        const close = this.lx.peek();
        if (close.kind === "end" || close.text !== ")") this.failAt(close, "',' or ')'");
        this.lx.next();
        break;
      }
    }
    if (!entries.some((e) => e.name)) return entries.map((e) => ({ type: e.type, column: e.pos + 1, variadic: e.variadic || undefined }));
    // Named list: lone identifiers are names sharing the next entry's type (`a, b int`).
    const params: Param[] = [];
    let pending: GoEntry[] = [];
    for (const e of entries) {
      if (!e.name) {
        if (!e.bare) this.fail("mixed named and unnamed parameters", e.pos, "name every parameter or none");
        pending.push(e);
        continue;
      }
      for (const p of pending) params.push({ name: p.bare!.text, type: e.type, column: p.pos + 1, variadic: e.variadic || undefined });
      pending = [];
      params.push({ name: e.name.text, type: e.type, column: e.pos + 1, variadic: e.variadic || undefined });
    }
    if (pending.length) this.fail(`'${pending[0]!.bare!.text}' has no type`, pending[0]!.pos);
    return params;
  }

  private variadic(t: Type, yes: boolean): Type {
    return yes ? { kind: "slice", text: `[]${t.text}`, elem: t } : t;
  }

  type(depth = 0): Type {
    if (depth > 32) this.fail("type nested too deeply", this.lx.peek().pos);
    const t = this.lx.next();
    if (t.kind === "punct") {
      switch (t.text) {
        case "*": {
          const to = this.type(depth + 1);
          return { kind: "pointer", text: `*${to.text}`, to };
        }
        case "[": {
          if (this.accept("]")) {
            const elem = this.type(depth + 1);
            return { kind: "slice", text: `[]${elem.text}`, elem };
          }
          const n = this.lx.next();
          const len = n.kind === "num" ? parseCNumber(n.text) : undefined;
          if (len === undefined || /[uUlL]/.test(n.text)) this.failAt(n, "']' or an array length");
          this.expect("]");
          const elem = this.type(depth + 1);
          return { kind: "array", text: `[${len}]${elem.text}`, len, elem };
        }
        case "(": {
          const inner = this.type(depth + 1);
          this.expect(")");
          return inner;
        }
        case "<-": {
          const c = this.lx.next();
          if (c.text !== "chan") this.failAt(c, "'chan'");
          const elem = this.type(depth + 1);
          return { kind: "ref", text: `<-chan ${elem.text}` };
        }
      }
      this.failAt(t, "a type");
    }
    if (t.kind !== "id") this.failAt(t, "a type");
    switch (t.text) {
      case "map": {
        this.expect("[");
        const k = this.type(depth + 1);
        this.expect("]");
        const v = this.type(depth + 1);
        return { kind: "ref", text: `map[${k.text}]${v.text}` };
      }
      case "chan": {
        const send = this.accept("<-");
        const elem = this.type(depth + 1);
        return { kind: "ref", text: `chan${send ? "<-" : ""} ${elem.text}` };
      }
      case "func": {
        const open = this.expect("(");
        const params = this.skipBalanced("(", ")", open.pos);
        let result = "";
        if (this.is("(")) result = ` (${this.skipBalanced("(", ")", this.lx.next().pos)})`;
        else if (startsGoType(this.lx.peek()) && this.lx.peek().text !== "...") result = ` ${this.type(depth + 1).text}`;
        return { kind: "ref", text: `func(${params})${result}` };
      }
      case "interface": {
        const open = this.expect("{");
        const inside = this.skipBalanced("{", "}", open.pos);
        return { kind: "interface", text: inside ? `interface{ ${inside} }` : "interface{}", empty: !inside };
      }
      case "struct": {
        const open = this.expect("{");
        const inside = this.skipBalanced("{", "}", open.pos);
        return { kind: "record", text: inside ? `struct{ ${inside} }` : "struct{}", empty: !inside };
      }
    }
    let name = t.text;
    if (this.is(".") && this.lx.peek(1).kind === "id") {
      this.lx.next();
      name += `.${this.lx.next().text}`;
    }
    if (this.is("[")) {
      // Type arguments of a generic type: kept in the text, the type stays unknown.
      name += `[${this.skipBalanced("[", "]", this.lx.next().pos)}]`;
      return { kind: "named", text: name };
    }
    return goNamedType(name);
  }
}

function startsGoType(t: Tok): boolean {
  if (t.kind === "id") return true;
  return t.kind === "punct" && (t.text === "*" || t.text === "[" || t.text === "(" || t.text === "..." || t.text === "<-");
}

function goNamedType(name: string): Type {
  const int = GO_INTS.get(name);
  if (int) return { kind: "int", text: name, size: int[0], signed: int[1] };
  switch (name) {
    case "bool":
      return { kind: "bool", text: name };
    case "string":
      return { kind: "string", text: name };
    case "float32":
      return { kind: "float", text: name, size: 4, align: 4, complex: false };
    case "float64":
      return { kind: "float", text: name, size: 8, align: 8, complex: false };
    case "complex64":
      return { kind: "float", text: name, size: 8, align: 4, complex: true };
    case "complex128":
      return { kind: "float", text: name, size: 16, align: 8, complex: true };
    case "unsafe.Pointer":
      return { kind: "pointer", text: name, to: { kind: "void", text: "void" } };
  }
  if (GO_INTERFACES.has(name)) return { kind: "interface", text: name, empty: GO_EMPTY_INTERFACES.has(name) };
  return { kind: "named", text: name };
}

/**
 * A Go symbol name split at the dots after its package path, brackets kept whole:
 * `net/http.(*conn).serve` -> [net/http, (*conn), serve].
 */
export function splitGoName(name: string): string[] {
  let depth = 0;
  let slash = -1;
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") depth--;
    else if (c === "/" && depth === 0) slash = i;
  }
  const segs: string[] = [];
  let start = 0;
  depth = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = name[i];
    if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") depth--;
    else if (i === name.length || (c === "." && depth === 0 && i > slash)) {
      segs.push(name.slice(start, i));
      start = i + 1;
    }
  }
  return segs;
}

// ---------------------------------------------------------------------------------------------
// Entry points

/**
 * True when `text` is a prototype rather than a function name, glob or offset. Names never contain
 * a space, and a C prototype starts with a type word followed by a space or `*` (`char*f(void)`);
 * Go method names (`main.(*T).M`) have parentheses but a dot before them.
 */
export function isPrototype(text: string): boolean {
  const s = text.replace(/^(\s*(\[\[[^\]]*\]\]|\/\*[^]*?\*\/))*/, "").trimStart();
  if (/^func[ \t\n(]/.test(s)) return true;
  if (!s.includes("(") || /^typedef\s/.test(s)) return false;
  return /^[A-Za-z_][A-Za-z0-9_]*[ \t\n*]/.test(s);
}

/** Parses a C or Go prototype; throws PrototypeError pointing at the column that is wrong. */
export function parsePrototype(input: string): Prototype {
  if (input.length > MAX_TEXT) throw new ProbeError(`the prototype is ${input.length} characters long; at most ${MAX_TEXT} are accepted`);
  // One character for one character, so columns still match what the user typed.
  const text = input.replace(/[\t\n\r\f\v]/g, " ");
  const first = text.trimStart();
  if (/^func[ (]/.test(first)) return new GoParser(text).parse();
  return new CParser(text).parse();
}

/** One line per thing probe will not do as written (a [LEN] it cannot use), to show as warnings. */
export function prototypeNotes(proto: Prototype): string[] {
  return proto.params.flatMap((p) => (p.note ? [p.note] : []));
}

/** The name shown for a parameter: its own, or arg0, arg1... by position (receiver: recv). */
export function paramName(p: Param, index: number): string {
  return p.name ?? (p.receiver ? "recv" : `arg${index}`);
}

/** The name shown for a result: its own, `ret` when it is the only one, else ret0, ret1... */
export function resultName(p: Param, index: number, count: number): string {
  return p.name ?? (count === 1 ? "ret" : `ret${index}`);
}
