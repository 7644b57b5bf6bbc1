// C prototypes as a man page writes them ('ssize_t write(int fd, const void *buf[count], size_t
// count)'): declaration specifiers, declarators (pointers, function pointers, one [LEN]), and the
// lengths resolved against the other parameters once all are known.
//
// The one extension to C: a length in brackets, `T *p[LEN]` (or `T p[LEN]`), says p points at LEN
// elements of T, where LEN is a number, another parameter's name, or `ret` (the return value: the
// buffer is read when the function returns). Empty brackets keep C's meaning (`char *const argv[]`
// is a `char *const *`). man-pages 6 spellings are accepted too: `void buf[count]`, `[.count]`,
// and forward parameter declarations `(size_t count; int fd, ...)`.
import { C_INT_TYPEDEFS, C_POINTER_TYPEDEFS, C_QUALIFIERS, C_TYPE_WORDS } from "./known.ts";
import { elementSize, type Count, type Param, type Prototype, type Type } from "./prototype-model.ts";
import { ParserBase, parseCNumber, type Tok } from "./prototype-tokens.ts";

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

export class CParser extends ParserBase {
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
