// Go prototypes ('func main.(*T).M(b []byte, ok bool) (int, error)'): the symbol name with the
// receiver it implies, named or unnamed parameter and result lists, and Go types as far as probe
// needs them (predeclared types, pointers, slices, arrays; maps, chans, funcs and generics kept as
// text).
import { GO_EMPTY_INTERFACES, GO_INTERFACES, GO_INTS } from "./known.ts";
import type { Param, Prototype, Type } from "./prototype-model.ts";
import { isIdStart, ParserBase, parseCNumber, type Tok } from "./prototype-tokens.ts";

const GO_KEYWORDS = new Set(["map", "chan", "func", "interface", "struct"]);

interface GoEntry {
  name?: Tok;
  /** The entry was a lone identifier: a name in a named list (`a, b int`), else a type. */
  bare?: Tok;
  type: Type;
  pos: number;
  variadic: boolean;
}

export class GoParser extends ParserBase {
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
