// Itanium C++ ABI demangler (https://itanium-cxx-abi.github.io/cxx-abi/abi.html#mangling), for
// naming stack frames the way gdb, perf and bpftrace do. The output text follows GNU c++filt's
// conventions (`std::vector<int, std::allocator<int> >::push_back(int const&)`), since that is
// what people compare against.
//
// Names come from untrusted binaries: parsing is a recursive descent with a depth cap, a cap on
// parse steps and on printed nodes, and a cap on the output's length. Anything malformed, over a
// cap, or not understood yields undefined rather than a guess: a wrong name is worse than the
// mangled one.

const MAX_DEPTH = 256;
const MAX_PARSE_STEPS = 10_000;
const MAX_PRINT_STEPS = 20_000;
/** Longest demangled name returned. */
export const MAX_DEMANGLED_LENGTH = 16_384;

// Thrown to give up on a name: one object, no stack trace to capture.
const BAIL = Object.freeze({ bail: true });
function bail(): never {
  throw BAIL;
}

type Node =
  | { k: "name"; s: string; builtin?: boolean } // identifier, builtin type (builtin: parenthesized as an operand)
  | { k: "nested"; prefix: Node; name: Node } // prefix::name
  | { k: "tmpl"; name: Node; args: Node[] } // name<args>
  | { k: "abi"; name: Node; tag: string } // name[abi:tag]
  | { k: "std"; s: string; ctor: string } // std:: abbreviation (Sa, Ss, ...)
  | { k: "op"; s: string } // operator name ("operator+", "operator new")
  | { k: "conv"; type: Node } // operator <type>
  | { k: "ctor"; cls: Node; outer?: Node } // outer: the function a local class is in
  | { k: "dtor"; cls: Node; outer?: Node }
  | { k: "lambda"; params: Node[]; n: number }
  | { k: "unnamed"; n: number }
  | { k: "local"; enc: Node; entity: Node } // function-local entity
  | { k: "func"; name: Node; ret: Node | undefined; params: Node[]; cv: string; ref: string }
  | { k: "special"; text: string; inner: Node; thunk?: boolean } // "vtable for ", ...
  | { k: "ctorvt"; a: Node; b: Node }
  | { k: "clone"; inner: Node; suffix: string }
  | { k: "cvname"; inner: Node; q: string } // a data name with a nested name's qualifiers (as c++filt shows them)
  | { k: "qual"; inner: Node; q: string; viaSub?: boolean } // q: the letters as mangled ("K", "VK", "rVK"); viaSub: inner is a substitution
  | { k: "elemq"; inner: Node; text: string } // an array's element with the array's qualifiers (printed text)
  | { k: "ptr"; inner: Node }
  | { k: "lref"; inner: Node }
  | { k: "rref"; inner: Node }
  | { k: "vendorq"; inner: Node; q: string } // U<name> qualifier
  | { k: "fn"; ret: Node; params: Node[]; cv: string; ref: string; exc: string } // function type
  | { k: "array"; inner: Node; dim: string | Node }
  | { k: "vector"; inner: Node; dim: string | Node }
  | { k: "ptrmem"; cls: Node; member: Node }
  | { k: "tparam"; idx: number }
  | { k: "pack"; items: Node[] } // J...E argument pack
  | { k: "expand"; pattern: Node } // Dp
  | { k: "literal"; type: Node; value: string }
  | { k: "exprname"; inner: Node } // a name used as an expression operand (L_Z...E)
  | { k: "fparam"; n: number }
  | { k: "decltype"; expr: Node }
  | { k: "unary"; op: string; arg: Node; postfix?: boolean }
  | { k: "binary"; op: string; l: Node; r: Node }
  | { k: "trinary"; c: Node; a: Node; b: Node }
  | { k: "call"; fn: Node; args: Node[] }
  | { k: "cast"; type: Node; args: Node[]; list: boolean } // cv: (T)x, (T)(a, b)
  | { k: "namedcast"; op: string; type: Node; arg: Node }
  | { k: "member"; op: string; obj: Node; name: Node } // a.b, a->b
  | { k: "sizeoftype"; op: string; type: Node } // sizeof (T), alignof (T)
  | { k: "sizeofexpr"; op: string; arg: Node }
  | { k: "sizeofpack"; arg: Node }
  | { k: "initlist"; type: Node | undefined; args: Node[] }
  | { k: "throw"; arg: Node | undefined };

const BUILTIN: Record<string, string> = {
  v: "void",
  w: "wchar_t",
  b: "bool",
  c: "char",
  a: "signed char",
  h: "unsigned char",
  s: "short",
  t: "unsigned short",
  i: "int",
  j: "unsigned int",
  l: "long",
  m: "unsigned long",
  x: "long long",
  y: "unsigned long long",
  n: "__int128",
  o: "unsigned __int128",
  f: "float",
  d: "double",
  e: "long double",
  g: "__float128",
  z: "...",
};

const BUILTIN_D: Record<string, string> = {
  d: "decimal64",
  e: "decimal128",
  f: "decimal32",
  h: "half",
  i: "char32_t",
  s: "char16_t",
  u: "char8_t",
  a: "auto",
  c: "decltype(auto)",
  n: "decltype(nullptr)",
};

// Literal suffixes for integer types c++filt prints without a cast.
const LITERAL_SUFFIX: Record<string, string> = { int: "", "unsigned int": "u", long: "l", "unsigned long": "ul", "long long": "ll", "unsigned long long": "ull" };

// Operator codes: [printed name, operand count].
const OPERATORS: Record<string, [string, number]> = {
  nw: ["new", 3],
  na: ["new[]", 3],
  dl: ["delete", 1],
  da: ["delete[]", 1],
  aw: ["co_await", 1],
  ps: ["+", 1],
  ng: ["-", 1],
  ad: ["&", 1],
  de: ["*", 1],
  co: ["~", 1],
  pl: ["+", 2],
  mi: ["-", 2],
  ml: ["*", 2],
  dv: ["/", 2],
  rm: ["%", 2],
  an: ["&", 2],
  or: ["|", 2],
  eo: ["^", 2],
  aS: ["=", 2],
  pL: ["+=", 2],
  mI: ["-=", 2],
  mL: ["*=", 2],
  dV: ["/=", 2],
  rM: ["%=", 2],
  aN: ["&=", 2],
  oR: ["|=", 2],
  eO: ["^=", 2],
  ls: ["<<", 2],
  rs: [">>", 2],
  lS: ["<<=", 2],
  rS: [">>=", 2],
  eq: ["==", 2],
  ne: ["!=", 2],
  lt: ["<", 2],
  gt: [">", 2],
  le: ["<=", 2],
  ge: [">=", 2],
  ss: ["<=>", 2],
  nt: ["!", 1],
  aa: ["&&", 2],
  oo: ["||", 2],
  pp: ["++", 1],
  mm: ["--", 1],
  cm: [",", 2],
  pm: ["->*", 2],
  pt: ["->", 2],
  cl: ["()", 2],
  ix: ["[]", 2],
  qu: ["?", 3],
  st: ["sizeof ", 1],
  sz: ["sizeof ", 1],
  at: ["alignof ", 1],
  az: ["alignof ", 1],
};

const STD_ABBREV: Record<string, { s: string; ctor: string } | undefined> = {
  a: { s: "std::allocator", ctor: "allocator" },
  b: { s: "std::basic_string", ctor: "basic_string" },
  s: { s: "std::basic_string<char, std::char_traits<char>, std::allocator<char> >", ctor: "basic_string" },
  i: { s: "std::basic_istream<char, std::char_traits<char> >", ctor: "basic_istream" },
  o: { s: "std::basic_ostream<char, std::char_traits<char> >", ctor: "basic_ostream" },
  d: { s: "std::basic_iostream<char, std::char_traits<char> >", ctor: "basic_iostream" },
};

const isDigit = (c: string) => c >= "0" && c <= "9";
const isUpper = (c: string) => c >= "A" && c <= "Z";
const isLower = (c: string) => c >= "a" && c <= "z";

class Parser {
  pos = 0;
  private depth = 0;
  private steps = 0;
  readonly subs: Node[] = [];
  // cv- and ref-qualifiers of the nested name just parsed (they belong to the function).
  nameCv = "";
  nameRef = "";
  inConversion = false;
  inConversionArgs = false;
  // The function whose local entity is being parsed (a closure's constructor is named after it).
  enclosing: Node | undefined;

  constructor(readonly s: string) {}

  peek(o = 0): string {
    return this.s[this.pos + o] ?? "";
  }
  eat(c: string): boolean {
    if (c.length === 1 ? this.s[this.pos] === c : this.s.startsWith(c, this.pos)) {
      this.pos += c.length;
      return true;
    }
    return false;
  }
  expect(c: string): void {
    if (!this.eat(c)) bail();
  }
  atEnd(): boolean {
    return this.pos >= this.s.length;
  }
  enter(): void {
    if (++this.depth > MAX_DEPTH || ++this.steps > MAX_PARSE_STEPS) bail();
  }

  number(): number {
    const neg = this.eat("n");
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos === start || this.pos - start > 9) bail();
    const n = Number(this.s.slice(start, this.pos));
    return neg ? -n : n;
  }

  // <seq-id> _ ; "_" alone is 0, otherwise base 36 plus one.
  seqId(): number {
    if (this.eat("_")) return 0;
    let n = 0;
    let len = 0;
    for (;;) {
      const c = this.peek();
      if (isDigit(c)) n = n * 36 + (c.charCodeAt(0) - 48);
      else if (isUpper(c)) n = n * 36 + (c.charCodeAt(0) - 55);
      else break;
      this.pos++;
      if (++len > 6) bail();
    }
    if (len === 0) bail();
    this.expect("_");
    return n + 1;
  }

  addSub(n: Node): void {
    if (this.subs.length > 4096) bail();
    this.subs.push(n);
  }

  // <mangled-name> ::= _Z <encoding> [. <clone-suffix>]*
  mangled(): Node {
    this.expect("_Z");
    let n = this.encoding();
    // clone suffixes follow functions and special names (c++filt refuses them on data names)
    while (this.peek() === "." && (n.k === "func" || (n.k === "special" && (!n.thunk || n.inner.k === "func")) || n.k === "ctorvt" || n.k === "clone")) {
      const c = this.peek(1);
      if (!(isLower(c) || c === "_" || isDigit(c))) break;
      const start = this.pos;
      this.pos += 2;
      while (isLower(this.peek()) || isDigit(this.peek()) || this.peek() === "_") this.pos++;
      while (this.peek() === "." && isDigit(this.peek(1))) {
        this.pos += 2;
        while (isDigit(this.peek())) this.pos++;
      }
      n = { k: "clone", inner: n, suffix: this.s.slice(start, this.pos) };
    }
    if (!this.atEnd()) bail();
    return n;
  }

  encoding(): Node {
    // no try/finally: a bail abandons the whole parse
    this.enter();
    const r = this.encodingBody();
    this.depth--;
    return r;
  }

  private encodingBody(): Node {
    const c = this.peek();
    if (c === "T" || (c === "G" && "VRTAH".includes(this.peek(1)))) return this.specialName();
    const name = this.name();
    const cv = this.nameCv;
    const ref = this.nameRef;
    if (this.atEnd() || this.peek() === "E" || this.peek() === ".") return this.dataName(name, cv + ref);
    let ret: Node | undefined;
    if (hasReturnType(name)) ret = this.type();
    const params = this.bareParams();
    return { k: "func", name, ret, params, cv, ref };
  }

  /** A name that is not a function's: qualifiers a nested name carried are printed after it. */
  dataName(name: Node, q: string): Node {
    return q ? { k: "cvname", inner: name, q } : name;
  }

  /** A <name> that names data (special names): with its nested qualifiers, if any. */
  dataNameOnly(): Node {
    const n = this.name();
    return this.dataName(n, this.nameCv + this.nameRef);
  }

  // Parameter types up to the end of the encoding ("v" alone means none).
  bareParams(): Node[] {
    if (this.peek() === "v" && (this.pos + 1 === this.s.length || this.peek(1) === "E" || this.peek(1) === ".")) {
      this.pos++;
      return [];
    }
    const params: Node[] = [];
    do {
      params.push(this.type());
    } while (!this.atEnd() && this.peek() !== "E" && this.peek() !== ".");
    return params;
  }

  specialName(): Node {
    const two = this.s.slice(this.pos, this.pos + 2);
    this.pos += 2;
    const simple: Record<string, string> = { TV: "vtable for ", TT: "VTT for ", TI: "typeinfo for ", TS: "typeinfo name for " };
    if (simple[two]) return { k: "special", text: simple[two], inner: this.type() };
    switch (two) {
      case "GR": {
        const inner = this.dataNameOnly();
        const start = this.pos;
        while (isDigit(this.peek())) this.pos++;
        if (this.pos - start > 9) bail();
        const n = this.pos === start ? 0 : Number(this.s.slice(start, this.pos));
        return { k: "special", text: `reference temporary #${n} for `, inner };
      }
      case "TH":
        return { k: "special", text: "TLS init function for ", inner: this.dataNameOnly() };
      case "TW":
        return { k: "special", text: "TLS wrapper function for ", inner: this.dataNameOnly() };
      case "Th":
        this.callOffset("h");
        return { k: "special", text: "non-virtual thunk to ", inner: this.encoding(), thunk: true };
      case "Tv":
        this.callOffset("v");
        return { k: "special", text: "virtual thunk to ", inner: this.encoding(), thunk: true };
      case "Tc":
        this.callOffset();
        this.callOffset();
        return { k: "special", text: "covariant return thunk to ", inner: this.encoding(), thunk: true };
      case "TC": {
        const a = this.type();
        this.number();
        this.expect("_");
        const b = this.type();
        return { k: "ctorvt", a, b };
      }
      case "GV":
        return { k: "special", text: "guard variable for ", inner: this.dataNameOnly() };
      case "GA":
        return { k: "special", text: "hidden alias for ", inner: this.encoding() };
      case "GT": {
        if (this.eat("t")) return { k: "special", text: "transaction clone for ", inner: this.functionEncoding() };
        if (this.eat("n")) return { k: "special", text: "non-transaction clone for ", inner: this.functionEncoding() };
        bail();
      }
    }
    bail();
  }

  /** An encoding that must be a function's (thunks, clones). */
  functionEncoding(): Node {
    const e = this.encoding();
    if (e.k !== "func") bail();
    return e;
  }

  callOffset(kind?: string): void {
    if (kind === undefined) {
      kind = this.peek();
      this.pos++;
    }
    if (kind === "h") {
      this.number();
      this.expect("_");
    } else if (kind === "v") {
      this.number();
      this.expect("_");
      this.number();
      this.expect("_");
    } else bail();
  }

  // <name>; sets nameCv/nameRef.
  name(): Node {
    // no try/finally: a bail abandons the whole parse
    this.enter();
    const r = this.nameBody();
    this.depth--;
    return r;
  }

  private nameBody(): Node {
    this.nameCv = "";
    this.nameRef = "";
    const c = this.peek();
    if (c === "N") return this.nested();
    if (c === "Z") return this.localName();
    let n: Node;
    if (c === "S" && this.peek(1) === "t") {
      this.pos += 2;
      n = { k: "nested", prefix: { k: "name", s: "std" }, name: this.unqualified(undefined) };
    } else if (c === "S") {
      n = this.substitution();
      if (this.peek() !== "I") bail(); // a substitution as a name must be a template
      n = { k: "tmpl", name: n, args: this.templateArgs() };
      return n;
    } else {
      n = this.unqualified(undefined);
    }
    if (this.peek() === "I") {
      this.addSub(n);
      n = { k: "tmpl", name: n, args: this.templateArgs() };
    }
    return n;
  }

  localName(): Node {
    this.expect("Z");
    const enc = this.encoding();
    this.expect("E");
    let entity: Node;
    if (this.eat("s")) {
      entity = { k: "name", s: "string literal" };
      this.discriminator();
      this.nameCv = "";
      this.nameRef = "";
      return { k: "local", enc, entity };
    }
    if (this.eat("d")) {
      // default argument scope: Z <encoding> E d [<number>] _ <name>
      const num = this.peek() === "_" ? 1 : this.number() + 2;
      if (num < 1) bail();
      this.expect("_");
      entity = this.name();
      return { k: "local", enc: { k: "local", enc, entity: { k: "name", s: `{default arg#${num}}` } }, entity };
    }
    const enclosing = this.enclosing;
    this.enclosing = enc;
    entity = this.name();
    this.enclosing = enclosing;
    const cv = this.nameCv;
    const ref = this.nameRef;
    this.discriminator();
    this.nameCv = cv;
    this.nameRef = ref;
    return { k: "local", enc, entity };
  }

  // _ <digits> or __ <number> _ ; c++filt takes any run of digits, or none, after one "_".
  discriminator(): void {
    if (this.peek() !== "_") return;
    this.pos++;
    const double = this.eat("_");
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos - start > 9) bail();
    const n = this.pos === start ? 0 : Number(this.s.slice(start, this.pos));
    if (double && n >= 10) this.expect("_");
  }

  // N [<CV-qualifiers>] [<ref-qualifier>] <prefix> <unqualified-name> E
  nested(): Node {
    this.expect("N");
    const cv = cvText(this.cvQualifiers(), false);
    let ref = "";
    if (this.eat("R")) ref = " &";
    else if (this.eat("O")) ref = " &&";
    let cur: Node | undefined;
    for (let i = 0; ; i++) {
      if (i > 256) bail();
      const c = this.peek();
      if (c === "E") {
        this.pos++;
        break;
      }
      if (c === "") bail();
      let isSub = false;
      if (c === "S" && this.peek(1) === "t") {
        if (cur) bail();
        this.pos += 2;
        // std:: names something: not template arguments, a constructor or the end
        if (!isDigit(this.peek()) && !isLower(this.peek()) && this.peek() !== "L" && this.peek() !== "U") bail();
        cur = { k: "name", s: "std" };
        continue;
      } else if (c === "S") {
        if (cur) bail();
        cur = this.substitution();
        isSub = true;
      } else if (c === "I") {
        if (!cur || cur.k === "tmpl") bail(); // two argument lists in a row (cv T_ I..E I..E): c++filt's reading is its own
        cur = { k: "tmpl", name: cur, args: this.templateArgs() };
      } else if (c === "T") {
        if (cur) bail();
        cur = this.templateParam();
      } else if (c === "D" && (this.peek(1) === "t" || this.peek(1) === "T")) {
        if (cur) bail();
        cur = this.decltype();
      } else if (c === "M") {
        // closure-prefix data member (lambda in a default member initializer)
        if (!cur) bail();
        this.pos++;
        continue;
      } else {
        const u = this.unqualified(cur);
        cur = cur ? { k: "nested", prefix: cur, name: u } : u;
      }
      if (this.peek() !== "E" && !isSub) this.addSub(cur);
    }
    if (!cur) bail();
    this.nameCv = cv;
    this.nameRef = ref;
    return cur;
  }

  /** Qualifier letters (r, V, K) as mangled; c++filt takes them in any order, as one group. */
  cvQualifiers(): string {
    const start = this.pos;
    while (this.peek() === "r" || this.peek() === "V" || this.peek() === "K") this.pos++;
    if (this.pos - start > 16) bail();
    return this.s.slice(start, this.pos);
  }

  // <unqualified-name> [<abi-tags>]; `scope` is the enclosing prefix (for ctor/dtor names).
  unqualified(scope: Node | undefined): Node {
    // no try/finally: a bail abandons the whole parse
    this.enter();
    const r = this.unqualifiedBody(scope);
    this.depth--;
    return r;
  }

  private unqualifiedBody(scope: Node | undefined): Node {
    const c = this.peek();
    let n: Node;
    if (c === "L") {
      this.pos++;
      return this.unqualified(scope);
    }
    if (isDigit(c)) n = this.sourceName();
    else if (c === "C" && "12345".includes(this.peek(1))) {
      if (!scope) bail();
      this.pos += 2;
      n = { k: "ctor", cls: scope, outer: this.enclosing };
    } else if (c === "C" && this.peek(1) === "I" && "12".includes(this.peek(2))) {
      // inheriting constructor: CI1 <type> / CI2 <type>
      // named after the base class whose constructor it inherits
      if (!scope) bail();
      this.pos += 3;
      n = { k: "ctor", cls: this.type() };
    } else if (c === "D" && this.peek(1) === "C") {
      // structured binding: DC <source-name>+ E
      this.pos += 2;
      const names: string[] = [];
      while (!this.eat("E")) {
        if (!isDigit(this.peek()) || names.length > 64) bail();
        names.push((this.sourceName() as { k: "name"; s: string }).s);
      }
      if (!names.length) bail();
      n = { k: "name", s: `[${names.join(", ")}]` };
    } else if (c === "D" && "0124".includes(this.peek(1))) {
      if (!scope) bail();
      this.pos += 2;
      n = { k: "dtor", cls: scope, outer: this.enclosing };
    } else if (c === "U" && this.peek(1) === "l") {
      this.pos += 2;
      const params = this.lambdaParams();
      this.expect("E");
      n = { k: "lambda", params, n: this.peek() === "_" ? 1 : this.number() + 2 };
      this.expect("_");
      return this.abiTags(n);
    } else if (c === "U" && this.peek(1) === "t") {
      this.pos += 2;
      n = { k: "unnamed", n: this.peek() === "_" ? 1 : this.number() + 2 };
      this.expect("_");
      this.addSub(n); // as c++filt numbers them (a closure type is not added by itself)
      return this.abiTags(n);
    } else if (isLower(c)) n = this.operatorName();
    else bail();
    return this.abiTags(n);
  }

  lambdaParams(): Node[] {
    if (this.peek() === "v" && this.peek(1) === "E") {
      this.pos++;
      return [];
    }
    const params: Node[] = [];
    while (this.peek() !== "E") {
      if (this.atEnd()) bail();
      params.push(this.type());
    }
    return params;
  }

  abiTags(n: Node): Node {
    while (this.eat("B")) {
      const len = this.number();
      if (len <= 0 || this.pos + len > this.s.length) bail();
      n = { k: "abi", name: n, tag: this.s.slice(this.pos, this.pos + len) };
      this.pos += len;
    }
    return n;
  }

  sourceName(): Node {
    const len = this.number();
    if (len <= 0 || this.pos + len > this.s.length) bail();
    const id = this.s.slice(this.pos, this.pos + len);
    this.pos += len;
    if (id.startsWith("_GLOBAL_") && "._$".includes(id[8] ?? "-") && id[9] === "N") return { k: "name", s: "(anonymous namespace)" };
    return { k: "name", s: id };
  }

  operatorName(): Node {
    const two = this.s.slice(this.pos, this.pos + 2);
    this.pos += 2;
    if (two === "cv") {
      // in `cv T_ I...E`, the template arguments are the operator's, not T_'s
      const saved = this.inConversion;
      this.inConversion = true;
      const type = this.type();
      this.inConversion = saved;
      if (type.k === "fn" || (type.k === "qual" && type.inner.k === "fn")) bail(); // c++filt's own form
      return { k: "conv", type };
    }
    if (two === "li") {
      const n = this.sourceName() as { k: "name"; s: string };
      return { k: "op", s: `operator"" ${n.s}` };
    }
    if (two[0] === "v" && isDigit(two[1] ?? "")) {
      const n = this.sourceName() as { k: "name"; s: string };
      return { k: "op", s: `operator ${n.s}` };
    }
    const op = OPERATORS[two];
    if (!op || two === "st" || two === "sz" || two === "at" || two === "az") bail();
    const word = /^[a-z]/.test(op[0]);
    return { k: "op", s: word ? `operator ${op[0]}` : `operator${op[0]}` };
  }

  substitution(): Node {
    this.expect("S");
    const c = this.peek();
    if (isLower(c)) {
      const a = STD_ABBREV[c];
      if (!a) bail();
      this.pos++;
      return { k: "std", s: a.s, ctor: a.ctor };
    }
    const id = this.seqId();
    const n = this.subs[id];
    if (!n) bail();
    return n;
  }

  templateParam(): Node {
    // c++filt refuses a T_ in the template arguments of a conversion operator's type
    if (this.inConversionArgs) bail();
    this.expect("T");
    return { k: "tparam", idx: this.seqId() };
  }

  templateArgs(): Node[] {
    this.enter();
    const inConversion = this.inConversion;
    const inConversionArgs = this.inConversionArgs;
    if (inConversion) this.inConversionArgs = true;
    this.inConversion = false;
    this.expect("I");
    const args: Node[] = [];
    while (!this.eat("E")) {
      if (this.atEnd() || args.length > 256) bail();
      args.push(this.templateArg());
    }
    this.inConversion = inConversion;
    this.inConversionArgs = inConversionArgs;
    this.depth--;
    return args;
  }

  templateArg(): Node {
    const c = this.peek();
    if (c === "X") {
      this.pos++;
      const e = this.expression();
      this.expect("E");
      return e;
    }
    if (c === "L") return this.exprPrimary();
    if (c === "J") {
      this.pos++;
      const items: Node[] = [];
      while (!this.eat("E")) {
        if (this.atEnd() || items.length > 256) bail();
        items.push(this.templateArg());
      }
      return { k: "pack", items };
    }
    return this.type();
  }

  type(): Node {
    // no try/finally: a bail abandons the whole parse
    this.enter();
    const r = this.typeInner();
    this.depth--;
    return r;
  }

  private typeInner(): Node {
    const c = this.peek();
    const b = BUILTIN[c];
    if (b !== undefined) {
      this.pos++;
      return { k: "name", s: b, builtin: true };
    }
    let n: Node;
    switch (c) {
      case "r":
      case "V":
      case "K": {
        const q = this.cvQualifiers();
        const before = this.subs.length;
        const inner = this.type();
        n = { k: "qual", inner, q, ...(this.subs.length === before ? { viaSub: true } : {}) };
        // a qualified function type is one candidate, not two (c++filt numbers them so)
        if (inner.k === "fn" && this.subs[this.subs.length - 1] === inner) this.subs.pop();
        break;
      }
      case "P":
        this.pos++;
        n = { k: "ptr", inner: this.type() };
        break;
      case "R":
        this.pos++;
        n = { k: "lref", inner: this.type() };
        break;
      case "O":
        this.pos++;
        n = { k: "rref", inner: this.type() };
        break;
      case "F":
        n = this.functionType("", "");
        break;
      case "A":
        n = this.arrayType();
        break;
      case "M": {
        this.pos++;
        const cls = this.type();
        const member = this.type();
        n = { k: "ptrmem", cls, member };
        break;
      }
      case "T": {
        n = this.templateParam();
        if (this.peek() === "I" && !this.inConversion) {
          this.addSub(n);
          n = { k: "tmpl", name: n, args: this.templateArgs() };
        }
        break;
      }
      case "S": {
        if (this.peek(1) === "t") {
          n = this.name();
          break;
        }
        n = this.substitution();
        if (this.peek() !== "I") return n; // already a candidate (or an abbreviation)
        n = { k: "tmpl", name: n, args: this.templateArgs() };
        break;
      }
      case "U": {
        this.pos++;
        const q = this.sourceName() as { k: "name"; s: string };
        if (this.peek() === "I") bail();
        const inner = this.type();
        n = { k: "vendorq", inner, q: q.s };
        break;
      }
      case "u": {
        // a vendor's builtin type
        this.pos++;
        const id = this.sourceName() as { k: "name"; s: string };
        n = { k: "name", s: id.s, builtin: true };
        break;
      }
      case "D":
        n = this.dType();
        if (n.k === "name") return n; // builtin
        break;
      case "N":
      case "Z":
        n = this.name();
        break;
      default:
        if (isDigit(c)) {
          n = this.name();
          break;
        }
        bail();
    }
    this.addSub(n);
    return n;
  }

  dType(): Node {
    const c = this.peek(1);
    const b = BUILTIN_D[c];
    if (b !== undefined) {
      this.pos += 2;
      return { k: "name", s: b, builtin: true };
    }
    switch (c) {
      case "F": {
        this.pos += 2;
        const n = this.number();
        if (this.eat("x")) return { k: "name", s: `_Float${n}x`, builtin: true };
        this.expect("_");
        return { k: "name", s: `_Float${n}`, builtin: true };
      }
      case "t":
      case "T":
        return this.decltype();
      case "p":
        this.pos += 2;
        return { k: "expand", pattern: this.type() };
      case "v": {
        this.pos += 2;
        let dim: string | Node;
        if (this.eat("_")) {
          dim = this.expression();
        } else {
          dim = String(this.number());
        }
        this.expect("_");
        return { k: "vector", inner: this.type(), dim };
      }
      case "o":
      case "O":
      case "w":
      case "x": {
        // exception specifications and transaction safety precede a function type
        let exc = "";
        if (this.eat("Do")) exc = " noexcept";
        else if (this.eat("DO")) {
          const e = this.expression();
          this.expect("E");
          exc = ` noexcept(${printNode(new Printer(), e)})`;
        } else if (this.eat("Dw")) bail();
        else if (this.eat("Dx")) exc = " transaction_safe";
        if (this.peek() !== "F") bail();
        return this.functionType("", exc);
      }
    }
    bail();
  }

  decltype(): Node {
    this.pos += 2; // Dt or DT
    const e = this.expression();
    this.expect("E");
    return { k: "decltype", expr: e };
  }

  functionType(cv: string, exc: string): Node {
    this.expect("F");
    this.eat("Y");
    const ret = this.type();
    const params: Node[] = [];
    let ref = "";
    for (;;) {
      if (this.eat("E")) break;
      if (this.peek() === "R" && this.peek(1) === "E") {
        this.pos += 2;
        ref = " &";
        break;
      }
      if (this.peek() === "O" && this.peek(1) === "E") {
        this.pos += 2;
        ref = " &&";
        break;
      }
      if (this.atEnd() || params.length > 256) bail();
      if (params.length === 0 && this.peek() === "v" && (this.peek(1) === "E" || ((this.peek(1) === "R" || this.peek(1) === "O") && this.peek(2) === "E"))) {
        this.pos++;
        continue;
      }
      params.push(this.type());
    }
    return { k: "fn", ret, params, cv, ref, exc };
  }

  arrayType(): Node {
    this.expect("A");
    let dim: string | Node = "";
    if (isDigit(this.peek())) dim = String(this.number());
    else if (this.peek() !== "_") dim = this.expression();
    this.expect("_");
    return { k: "array", inner: this.type(), dim };
  }

  exprPrimary(): Node {
    this.expect("L");
    if (this.peek() === "_" && this.peek(1) === "Z") {
      this.pos += 2;
      const e = this.encoding();
      this.expect("E");
      return { k: "exprname", inner: e };
    }
    if (this.peek() === "Z") {
      // some compilers omit the underscore
      this.pos++;
      const e = this.encoding();
      this.expect("E");
      return { k: "exprname", inner: e };
    }
    const type = this.type();
    const start = this.pos;
    while (this.peek() !== "E") {
      if (this.atEnd()) bail();
      this.pos++;
    }
    const value = this.s.slice(start, this.pos);
    this.pos++;
    return { k: "literal", type, value };
  }

  expression(): Node {
    // no try/finally: a bail abandons the whole parse
    this.enter();
    const r = this.expressionInner();
    this.depth--;
    return r;
  }

  private expressionInner(): Node {
    const c = this.peek();
    if (c === "L") return this.exprPrimary();
    if (c === "T") return this.templateParam();
    if (c === "f" && this.peek(1) === "p") {
      this.pos += 2;
      this.cvQualifiers();
      const n = this.peek() === "_" ? 0 : this.number() + 1;
      this.expect("_");
      return { k: "fparam", n };
    }
    if (c === "f" && this.peek(1) === "L") {
      this.pos += 2;
      this.number();
      this.expect("p");
      this.cvQualifiers();
      const n = this.peek() === "_" ? 0 : this.number() + 1;
      this.expect("_");
      return { k: "fparam", n };
    }
    if (isDigit(c)) {
      // <unresolved-name> without sr: a plain (possibly templated) name
      let n: Node = this.sourceName();
      if (this.peek() === "I") n = { k: "tmpl", name: n, args: this.templateArgs() };
      return n;
    }
    const two = this.s.slice(this.pos, this.pos + 2);
    switch (two) {
      case "sp":
        this.pos += 2;
        return { k: "expand", pattern: this.expression() };
      case "sr":
        this.pos += 2;
        return this.unresolvedName();
      case "gs":
        bail();
      case "st":
        this.pos += 2;
        return { k: "sizeoftype", op: "sizeof", type: this.type() };
      // c++filt reads alignof's type as an expression (so `at3Bar` is `alignof Bar`, and `ati` is refused)
      case "at":
      case "sz":
      case "az":
        this.pos += 2;
        return { k: "sizeofexpr", op: two === "sz" ? "sizeof" : "alignof", arg: this.expression() };
      case "sZ":
        this.pos += 2;
        if (this.peek() !== "T") bail();
        return { k: "sizeofpack", arg: this.templateParam() };
      case "cl": {
        this.pos += 2;
        const fn = this.expression();
        const args: Node[] = [];
        while (!this.eat("E")) {
          if (this.atEnd() || args.length > 256) bail();
          args.push(this.expression());
        }
        return { k: "call", fn, args };
      }
      case "cv": {
        this.pos += 2;
        const type = this.type();
        if (this.eat("_")) {
          const args: Node[] = [];
          while (!this.eat("E")) {
            if (this.atEnd() || args.length > 256) bail();
            args.push(this.expression());
          }
          return { k: "cast", type, args, list: true };
        }
        return { k: "cast", type, args: [this.expression()], list: false };
      }
      case "tl": {
        this.pos += 2;
        const type = this.type();
        const args: Node[] = [];
        while (!this.eat("E")) {
          if (this.atEnd() || args.length > 256) bail();
          args.push(this.expression());
        }
        return { k: "initlist", type, args };
      }
      case "dc":
      case "sc":
      case "cc":
      case "rc": {
        this.pos += 2;
        const op = { dc: "dynamic_cast", sc: "static_cast", cc: "const_cast", rc: "reinterpret_cast" }[two]!;
        const type = this.type();
        return { k: "namedcast", op, type, arg: this.expression() };
      }
      case "dt":
      case "pt": {
        this.pos += 2;
        const obj = this.expression();
        const name = this.unresolvedName(true);
        return { k: "member", op: two === "dt" ? "." : "->", obj, name };
      }
      case "tw":
        this.pos += 2;
        return { k: "throw", arg: this.expression() };
      case "tr":
        this.pos += 2;
        return { k: "throw", arg: undefined };
    }
    const op = OPERATORS[two];
    if (!op || two === "cl" || two === "nw" || two === "na" || two === "dl" || two === "da" || two === "aw") bail();
    this.pos += 2;
    if (op[1] === 1) {
      if ((two === "pp" || two === "mm") && this.eat("_")) return { k: "unary", op: op[0], arg: this.expression() };
      if (two === "pp" || two === "mm") return { k: "unary", op: op[0], arg: this.expression(), postfix: true };
      return { k: "unary", op: op[0], arg: this.expression() };
    }
    if (op[1] === 2) {
      const l = this.expression();
      const r = this.expression();
      return { k: "binary", op: op[0], l, r };
    }
    const a = this.expression();
    const b = this.expression();
    const c3 = this.expression();
    return { k: "trinary", c: a, a: b, b: c3 };
  }

  // After "sr" (or as the name part of a member access): a possibly qualified dependent name.
  unresolvedName(member = false): Node {
    if (member) {
      let n: Node;
      if (isDigit(this.peek())) n = this.sourceName();
      else if (this.eat("on")) n = this.operatorName();
      else if (this.eat("dn")) bail();
      else bail();
      if (this.peek() === "I") n = { k: "tmpl", name: n, args: this.templateArgs() };
      return n;
    }
    // sr <type> <base-unresolved-name> (what GCC emits), or sr <simple-id>+ E <base-unresolved-name>
    if (isDigit(this.peek())) {
      const at = this.subs.length;
      const first = this.sourceName();
      let scope: Node = first;
      let firstTmpl: Node | undefined;
      if (this.peek() === "I") scope = firstTmpl = { k: "tmpl", name: first, args: this.templateArgs() };
      const afterArgs = this.subs.length;
      let levels = 1;
      for (; isDigit(this.peek()); levels++) {
        if (levels > 64) bail();
        scope = { k: "nested", prefix: scope, name: this.simpleId() };
      }
      if (this.peek() === "E" && (isDigit(this.peek(1)) || (this.peek(1) === "o" && this.peek(2) === "n"))) {
        // sr <simple-id>+ E <base-unresolved-name>: the levels are no candidates
        this.pos++;
        return { k: "nested", prefix: scope, name: this.baseUnresolved() };
      }
      // sr <type> <unqualified-name> (older GCC): the type is a candidate, after its template
      // name when it has arguments, as c++filt numbers them
      if (levels !== 2 || this.peek() !== "E") bail();
      if (firstTmpl) this.subs.splice(afterArgs, 0, firstTmpl);
      this.subs.splice(at, 0, first);
      if (this.subs.length > 4096) bail();
      return scope;
    }
    const scope = this.type();
    // a scope is a class (or a template parameter, decltype): c++filt garbles others
    if (!["name", "nested", "tmpl", "tparam", "decltype", "std", "local", "abi"].includes(scope.k)) bail();
    return { k: "nested", prefix: scope, name: this.baseUnresolved() };
  }

  unresolvedType(): Node {
    let n: Node;
    const c = this.peek();
    if (c === "T") {
      n = this.templateParam();
      this.addSub(n);
      if (this.peek() === "I") {
        n = { k: "tmpl", name: n, args: this.templateArgs() };
        this.addSub(n);
      }
      return n;
    }
    if (c === "D") {
      n = this.decltype();
      this.addSub(n);
      return n;
    }
    if (c === "S") {
      n = this.substitution();
      if (this.peek() === "I") {
        n = { k: "tmpl", name: n, args: this.templateArgs() };
        this.addSub(n);
      }
      return n;
    }
    bail();
  }

  simpleId(): Node {
    let n: Node = this.sourceName();
    if (this.peek() === "I") n = { k: "tmpl", name: n, args: this.templateArgs() };
    return n;
  }

  baseUnresolved(): Node {
    if (isDigit(this.peek())) return this.simpleId();
    if (this.eat("on")) {
      let n = this.operatorName();
      if (this.peek() === "I") n = { k: "tmpl", name: n, args: this.templateArgs() };
      return n;
    }
    bail();
  }
}

/** Whether a function's mangling includes its return type: templates, except ctors, dtors and conversions. */
function hasReturnType(name: Node): boolean {
  while (name.k === "local") name = name.entity;
  if (name.k !== "tmpl") return false;
  let last = name.name;
  for (;;) {
    if (last.k === "nested") last = last.name;
    else if (last.k === "abi") last = last.name;
    else break;
  }
  return !(last.k === "ctor" || last.k === "dtor" || last.k === "conv");
}

class Printer {
  steps = 0;
  // Template arguments T_ refers to, innermost last.
  templates: Node[][] = [];
  packIndex = -1;
  inLambdaSig = false;
  inCvName = false;
  // While a function's name is printed: a T_ there (but in a conversion operator's type or a
  // lambda's parameters) would refer to the name's own template arguments, which c++filt refuses.
  inFuncName = false;
  depth = 0;
  // c++filt prints a reference to a template parameter, every time it recurs through a
  // substitution, in the template scope of its first printing.
  savedScopes: Map<Node, Node[][]> | undefined;

  step(): void {
    if (++this.steps > MAX_PRINT_STEPS || this.depth > MAX_DEPTH * 2) bail();
  }
}

function check(s: string): string {
  if (s.length > MAX_DEMANGLED_LENGTH) bail();
  return s;
}

// A cv-qualified array type is an array of cv-qualified elements, and prints as one.
// c++filt prints such qualifiers in their mangled order, outermost first (`VKA10_w`: wchar_t
// volatile const [10]), where other types have each group's in reverse (`VKi`: int const volatile).
function resolveType(p: Printer, n: Node): Node {
  n = resolveParam(p, n);
  if (n.k !== "qual") return n;
  const { raw, base } = collectQuals(p, n);
  if (base.k !== "array") return n;
  // the qualifiers go to the element type, through every dimension; c++filt's order depends on
  // how many (mangled order through one, the usual reversed order through two)
  const dims: (string | Node)[] = [];
  let el: Node = base;
  for (let i = 0; el.k === "array"; i++) {
    if (i > 64) bail();
    dims.push(el.dim);
    el = resolveParam(p, el.inner);
  }
  const words = [...raw].map((c) => CV_WORD[c]!);
  if (new Set(words).size !== words.length) bail(); // repeated: c++filt's choice unknown
  if (stripQuals(p, el) !== el) bail(); // qualified twice over
  if (dims.length > 2 && words.length > 1) bail();
  if (dims.length === 2) words.reverse();
  let t: Node = { k: "elemq", inner: el, text: words.map((w) => " " + w).join("") };
  for (let i = dims.length - 1; i >= 0; i--) t = { k: "array", inner: t, dim: dims[i]! };
  return t;
}

const CV_WORD: Record<string, string> = { r: "restrict", V: "volatile", K: "const" };

/**
 * Qualifier letters as c++filt prints them: last mangled first (`VK`: " const volatile"); on other
 * types than functions a repeated one is printed once, at its outermost place.
 */
function cvText(raw: string, dedupe: boolean): string {
  const words: string[] = [];
  for (let i = raw.length - 1; i >= 0; i--) words.push(CV_WORD[raw[i]!]!);
  const kept = dedupe ? words.filter((w, i) => words.indexOf(w, i + 1) < 0) : words;
  return kept.map((w) => " " + w).join("");
}

/** The qualifier letters of a chain of qualified types (outermost first, through template arguments), and what they qualify. */
function collectQuals(p: Printer, n: Node): { raw: string; base: Node } {
  let raw = "";
  let t = resolveParam(p, n);
  for (let i = 0; t.k === "qual"; i++) {
    if (i > 64) bail();
    raw += t.q;
    t = resolveParam(p, t.inner);
  }
  return { raw, base: t };
}

function resolveParam(p: Printer, n: Node): Node {
  if (n.k === "tparam" && p.inFuncName && !p.inLambdaSig) bail();
  for (let i = 0; n.k === "tparam" && !p.inLambdaSig; i++) {
    if (i > 64) bail();
    const args = p.templates[p.templates.length - 1];
    if (!args) bail();
    const a = args[n.idx];
    if (!a) bail();
    if (a.k === "pack" && p.packIndex >= 0) {
      const item = a.items[p.packIndex];
      if (!item) bail();
      n = item;
    } else n = a;
  }
  return n;
}

function lastName(p: Printer, n: Node): string {
  for (let i = 0; ; i++) {
    if (i > 256) bail();
    switch (n.k) {
      case "name":
        return n.s;
      case "std":
        return n.ctor;
      // an unnamed class or closure is named after what encloses it (`A::{unnamed type#1}::A()`,
      // `main::{lambda()#1}::~main()`), as c++filt does
      case "nested":
        n = unnamedClass(n.name) ? n.prefix : n.name;
        break;
      case "tmpl":
        n = n.name;
        break;
      case "abi":
        n = n.name;
        break;
      case "local":
        n = unnamedClass(n.entity) ? n.enc : n.entity;
        break;
      case "func":
        n = n.name;
        break;
      case "tparam":
        n = resolveParam(p, n);
        if (n.k === "tparam") bail();
        break;
      case "op":
        return n.s;
      default:
        bail();
    }
  }
}

function unnamedClass(n: Node): boolean {
  while (n.k === "abi") n = n.name;
  return n.k === "unnamed" || n.k === "lambda";
}

function printNode(p: Printer, n: Node): string {
  return printDecl(p, n, "", false);
}

// c++filt's list printing: each tail is printed after ", ", and the ", " taken back when the
// tail printed nothing (empty packs). `f<int, , int>` and `f<, int>` come out of that, and a
// list ending in an empty pack leaves a space as the "last character", so no space is put
// before the closing ">" (`A<B<C>>`).
function joinList(parts: string[]): string {
  const { s, trailingSpace } = joinParts(parts);
  return trailingSpace ? s + LAST_WAS_SPACE : s;
}

// Marks where c++filt's "last character" is a space that is not in the text (see joinList); it
// travels to the end of enclosing lists and is removed from the final text.
const LAST_WAS_SPACE = "\u0001";

function joinParts(parts: string[]): { s: string; trailingSpace: boolean } {
  let s = "";
  let trailingSpace = false;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    if (i === parts.length - 1) {
      s = part;
      trailingSpace = false;
    } else if (s === "") {
      s = part;
      trailingSpace = part === "" ? trailingSpace : true;
    } else {
      s = part + ", " + s;
    }
  }
  return { s: check(s), trailingSpace };
}

function printTemplateArgs(p: Printer, args: Node[]): string {
  const s = joinList(args.map((a) => printNode(p, a)));
  return "<" + s + (s.endsWith(">") ? " >" : ">");
}

function printParams(p: Printer, params: Node[]): string {
  return "(" + joinList(params.map((a) => printNode(p, a))) + ")";
}

// A type with a declarator `d` inside it (C declarator syntax: `void (*d)(int)`, `int (&d) [3]`).
// `arr` says d ends in an array bound, so a further bound goes right after it.
function printDecl(p: Printer, n: Node, d: string, arr: boolean): string {
  p.step();
  p.depth++;
  const r = check(printDeclInner(p, n, d, arr));
  p.depth--;
  return r;
}

function printPointer(p: Printer, n: Extract<Node, { k: "ptr" | "lref" | "rref" }>, d: string): string {
  let kind = n.k;
  let inner = resolveType(p, n.inner);
  // reference collapsing, for references to template arguments that are references (a
  // reference to a reference written out is not C++)
  if (kind !== "ptr" && (n.inner.k === "lref" || n.inner.k === "rref")) bail();
  for (let i = 0; kind !== "ptr" && (inner.k === "lref" || inner.k === "rref"); i++) {
    if (i > 64) bail();
    if (inner.k === "lref") kind = "lref";
    inner = resolveType(p, inner.inner);
  }
  const sym = kind === "ptr" ? "*" : kind === "lref" ? "&" : "&&";
  if (inner.k === "fn" || inner.k === "array" || (inner.k === "qual" && collectQuals(p, inner).base.k === "fn")) return printDecl(p, inner, "(" + sym + d + ")", false);
  if (inner.k === "pack") bail();
  return printDecl(p, inner, glue(sym, d), false);
}

const EXPRESSION_KINDS = new Set(["literal", "exprname", "fparam", "unary", "binary", "trinary", "call", "cast", "namedcast", "member", "sizeoftype", "sizeofexpr", "sizeofpack", "initlist", "throw"]);

// A declarator part and what follows it: a name or a parenthesized declarator is set apart.
function glue(sym: string, d: string): string {
  return d === "" || "*& )[".includes(d[0]!) ? sym + d : sym + " " + d;
}

function withName(s: string, d: string): string {
  if (d === "" || d[0] === "*" || d[0] === "&" || d[0] === " ") return s + d;
  return s + " " + d;
}

function printDeclInner(p: Printer, n: Node, d: string, arr: boolean): string {
  switch (n.k) {
    case "tparam": {
      if (p.inLambdaSig) return withName(`auto:${n.idx + 1}`, d);
      const r = resolveParam(p, n);
      // a pack is printed through its expansion (Dp, sp), not named alone
      if (r.k === "pack") bail();
      // an expression argument where a type is declared: not C++
      if (d !== "" && EXPRESSION_KINDS.has(r.k)) bail();
      return printDecl(p, r, d, arr);
    }
    case "lref":
    case "rref":
      if (n.inner.k === "tparam" && !p.inLambdaSig) {
        p.savedScopes ??= new Map();
        // keyed by the template parameter (shared through substitutions), as c++filt keeps them
        const saved = p.savedScopes.get(n.inner);
        if (!saved) p.savedScopes.set(n.inner, p.templates.slice());
        else if (saved.length && saved !== p.templates) {
          const current = p.templates;
          p.templates = saved;
          try {
            return printPointer(p, n, d);
          } finally {
            p.templates = current;
          }
        }
      }
      return printPointer(p, n, d);
    case "ptr":
      return printPointer(p, n, d);
    case "qual": {
      const t = resolveType(p, n);
      if (t.k === "array") return printDecl(p, t, d, arr);
      // nested groups (directly or through template arguments: const T with T = int volatile)
      // print as one, the innermost letters first
      const { raw, base } = collectQuals(p, n);
      if (base.k === "fn") {
        // a function type qualified through a substitution or a template argument: c++filt's own form
        if (n.viaSub || n.inner.k === "tparam" || resolveParam(p, n.inner).k === "qual") bail();
        return printFn(p, base, d, cvText(raw, false));
      }
      return printDecl(p, base, glue(cvText(raw, true), d), false);
    }
    case "elemq":
      return printDecl(p, n.inner, glue(n.text, d), false);
    case "vendorq": {
      // only on named types: c++filt's placement of them elsewhere is its own
      const t = resolveType(p, n.inner).k;
      if (t !== "name" && t !== "nested" && t !== "tmpl" && t !== "std") bail();
      return printDecl(p, n.inner, glue(" " + n.q, d), false);
    }
    case "fn":
      return printFn(p, n, d, "");
    case "array": {
      if (p.inCvName) bail();
      const el = resolveType(p, n.inner);
      const bare = stripQuals(p, el);
      if (bare.k === "fn" || bare.k === "lref" || bare.k === "rref" || bare.k === "decltype") bail();
      const dim = typeof n.dim === "string" ? n.dim : printNode(p, n.dim);
      const nd = d === "" ? ` [${dim}]` : arr ? `${d}[${dim}]` : `${d} [${dim}]`;
      return printDecl(p, n.inner, nd, true);
    }
    case "vector": {
      const dim = typeof n.dim === "string" ? n.dim : printNode(p, n.dim);
      return printDecl(p, n.inner, glue(` __vector(${dim})`, d), false);
    }
    case "ptrmem": {
      const cls = printNode(p, n.cls);
      const m = resolveParam(p, n.member);
      if (m.k === "decltype") bail(); // c++filt mixes the two up when the expression holds a type
      if (m.k === "fn") {
        // a member function returning a pointer to a function or an array: c++filt's own spacing
        let r = resolveType(p, m.ret);
        for (let i = 0; r.k === "ptr"; i++) {
          if (i > 64) bail();
          r = resolveType(p, r.inner);
        }
        if (r !== resolveType(p, m.ret) && (stripQuals(p, r).k === "fn" || stripQuals(p, r).k === "array")) bail();
        return printFn(p, m, `(${cls}::*${d})`, "");
      }
      const ma = resolveType(p, m);
      if (ma.k === "array") {
        // arrays of member pointers under a member pointer: c++filt spaces those its own way
        let el: Node = ma;
        for (let i = 0; el.k === "array"; i++) {
          if (i > 64) bail();
          el = stripQuals(p, el.inner);
        }
        if (el.k === "ptrmem" || el.k === "ptr" || el.k === "lref" || el.k === "rref") bail();
        return printDecl(p, ma, `(${cls}::*${d})`, false);
      }
      if (m.k === "qual") {
        const { raw, base } = collectQuals(p, m);
        if (base.k === "fn") return printFn(p, base, `(${cls}::*${d})`, cvText(raw, false));
      }
      return printDecl(p, m, glue(` ${cls}::*`, d), false);
    }
    case "expand": {
      if (d !== "") bail();
      const size = packSize(p, n.pattern, 0);
      // no pack in the pattern: c++filt shows the pattern with "..."
      if (size < 0) {
        const t = stripQuals(p, n.pattern);
        if (t.k === "fn" || t.k === "array" || resolveType(p, n.pattern).k === "qual") bail(); // c++filt's own form
        return check(printSub(p, n.pattern) + "...");
      }
      const saved = p.packIndex;
      const parts: string[] = [];
      try {
        for (let i = 0; i < size; i++) {
          p.packIndex = i;
          parts.push(printNode(p, n.pattern));
        }
      } finally {
        p.packIndex = saved;
      }
      return joinList(parts);
    }
    case "pack":
      if (d !== "") bail();
      return joinList(n.items.map((a) => printNode(p, a)));
    default:
      return withName(printName(p, n), d);
  }
}

function printFn(p: Printer, f: Extract<Node, { k: "fn" }>, d: string, cv: string): string {
  if (p.inCvName) bail(); // c++filt lets the name's qualifiers leak into function types
  checkReturnType(p, f.ret, d !== "");
  const params = printParams(p, f.params);
  return printDecl(p, f.ret, d + params + f.exc + cv + f.ref, false);
}

// Size of the argument pack a pack expansion's pattern refers to; -1 when none.
function packSize(p: Printer, n: Node, depth: number): number {
  p.step();
  if (depth > MAX_DEPTH) bail();
  const sub = (m: Node | undefined): number => (m ? packSize(p, m, depth + 1) : -1);
  switch (n.k) {
    case "tparam": {
      if (p.inFuncName && !p.inLambdaSig) bail();
      const args = p.templates[p.templates.length - 1];
      const a = args?.[n.idx];
      if (!a) return -1;
      if (a.k === "pack") return a.items.length;
      return -1;
    }
    case "ptr":
    case "lref":
    case "rref":
    case "qual":
    case "vendorq":
      return sub(n.inner);
    case "tmpl": {
      let r = sub(n.name);
      for (const a of n.args) if (r < 0) r = sub(a);
      return r;
    }
    case "nested":
      return Math.max(sub(n.prefix), sub(n.name));
    case "fn": {
      let r = sub(n.ret);
      for (const a of n.params) if (r < 0) r = sub(a);
      return r;
    }
    case "array":
      return sub(n.inner);
    case "ptrmem":
      return Math.max(sub(n.cls), sub(n.member));
    case "decltype":
      return sub(n.expr);
    case "unary":
      return sub(n.arg);
    case "binary":
      return Math.max(sub(n.l), sub(n.r));
    case "call": {
      let r = sub(n.fn);
      for (const a of n.args) if (r < 0) r = sub(a);
      return r;
    }
    case "cast": {
      let r = sub(n.type);
      for (const a of n.args) if (r < 0) r = sub(a);
      return r;
    }
    case "member":
      return sub(n.obj);
    case "sizeofexpr":
      return sub(n.arg);
    case "sizeoftype":
      return sub(n.type);
    default:
      return -1;
  }
}

// Operands of an expression are parenthesized unless they are names or function parameters.
function printSub(p: Printer, n: Node): string {
  if (n.k === "tparam" && !p.inLambdaSig) {
    // a template argument that is a compound type, used as an operand: c++filt's own form
    const r = resolveParam(p, n);
    if (["fn", "array", "qual", "ptr", "lref", "rref", "ptrmem", "pack"].includes(r.k)) bail();
  }
  const s = printNode(p, n);
  // (a qualified name ending in template arguments is parenthesized, as c++filt does)
  if ((n.k === "name" && !n.builtin) || (n.k === "nested" && n.name.k !== "tmpl") || n.k === "fparam" || n.k === "initlist") return s;
  if (n.k === "exprname" && n.inner.k !== "func") return s;
  return "(" + s + ")";
}

function stripQuals(p: Printer, t: Node): Node {
  t = resolveType(p, t);
  for (let i = 0; t.k === "qual" || t.k === "vendorq" || t.k === "elemq"; i++) {
    if (i > 64) bail();
    t = resolveType(p, t.inner);
  }
  return t;
}

// A function's return type. Functions and arrays are not C++. Returned pointers to functions or
// arrays put the function inside their declarator (`void (*f())(int)`); c++filt spaces those
// its own way once references, member pointers or qualifiers are in the chain, so such
// shapes (rare in real code) are left mangled.
function checkReturnType(p: Printer, ret: Node, named: boolean): void {
  let t = resolveType(p, ret);
  if (t.k === "fn" || t.k === "array") bail();
  // a member function pointer returned by a function type (std::bind's `R (C::*(Args...))(Params...)`):
  // fine when neither has a declarator of its own
  if (t.k === "ptrmem" && !named) {
    const m = stripQuals(p, t.member);
    if (m.k === "fn" && !returnsDeclarator(p, m.ret)) return;
  }
  if (returnsDeclarator(p, ret) && !plainPointerChain(p, ret)) bail();
}

/** Whether a return type puts the function inside a declarator: pointers and such to functions or arrays. */
function returnsDeclarator(p: Printer, ret: Node): boolean {
  let t = resolveType(p, ret);
  for (let i = 0; ; i++) {
    if (i > 256) bail();
    if (t.k === "ptr" || t.k === "lref" || t.k === "rref" || t.k === "qual" || t.k === "vendorq" || t.k === "elemq") t = resolveType(p, t.inner);
    else if (t.k === "ptrmem") t = resolveType(p, t.member);
    else return (t.k === "fn" || t.k === "array") && t !== resolveType(p, ret);
  }
}

function plainPointerChain(p: Printer, ret: Node): boolean {
  let t = resolveType(p, ret);
  for (let i = 0; t.k === "ptr"; i++) {
    if (i > 256) bail();
    t = resolveType(p, t.inner);
  }
  return t.k === "fn" || t.k === "array";
}

// A type inside an expression: c++filt lets the declarators around the expression leak into
// array and function types there, so those are left alone.
function exprType(p: Printer, t: Node): void {
  const r = resolveType(p, t);
  const bare = stripQuals(p, r);
  if (r.k === "array" || r.k === "qual" || r.k === "elemq" || bare.k === "fn" || bare.k === "array") bail();
}

function printLiteral(p: Printer, n: Extract<Node, { k: "literal" }>): string {
  const t = resolveParam(p, n.type);
  let v = n.value;
  if (t.k === "name") {
    if (t.s === "decltype(nullptr)" && (v === "" || v === "0")) return "nullptr";
    if (!/^n?[0-9]+$/.test(v)) bail();
    if (v[0] === "n") v = "-" + v.slice(1);
    if (t.s === "bool") {
      if (v === "0") return "false";
      if (v === "1") return "true";
    }
    const suffix = LITERAL_SUFFIX[t.s];
    if (suffix !== undefined) return v + suffix;
    return `(${t.s})${v}`;
  }
  if (!/^n?[0-9]+$/.test(v)) bail();
  if (v[0] === "n") v = "-" + v.slice(1);
  return `(${printNode(p, t)})${v}`;
}

function printName(p: Printer, n: Node): string {
  switch (n.k) {
    case "name":
      return n.s;
    case "std":
      return n.s;
    case "nested": {
      const pre = printNode(p, n.prefix);
      return check(pre + "::" + printNode(p, n.name));
    }
    case "tmpl": {
      const name = printNode(p, n.name);
      const args = printTemplateArgs(p, n.args);
      return check((name.endsWith("<") ? name + " " : name) + args);
    }
    case "abi":
      return check(printNode(p, n.name) + `[abi:${n.tag}]`);
    case "op":
      return n.s;
    case "conv": {
      const saved = p.inFuncName;
      p.inFuncName = false;
      const type = printNode(p, n.type);
      p.inFuncName = saved;
      return check("operator " + type);
    }
    case "ctor":
      return lastName(p, unnamedClass(n.cls) && n.outer ? n.outer : n.cls);
    case "dtor":
      return "~" + lastName(p, unnamedClass(n.cls) && n.outer ? n.outer : n.cls);
    case "lambda": {
      const saved = p.inLambdaSig;
      p.inLambdaSig = true;
      try {
        return check(`{lambda${printParams(p, n.params)}#${n.n}}`);
      } finally {
        p.inLambdaSig = saved;
      }
    }
    case "unnamed":
      return `{unnamed type#${n.n}}`;
    case "local": {
      // the enclosing function is named without its return type
      const enc = n.enc.k === "func" && n.enc.ret ? { ...n.enc, ret: undefined } : n.enc;
      return check(printNode(p, enc) + "::" + printNode(p, n.entity));
    }
    case "func": {
      const inner = n.name.k === "local" ? n.name.entity : n.name;
      const isTmpl = inner.k === "tmpl";
      if (isTmpl) p.templates.push(inner.args);
      const savedIn = p.inFuncName;
      try {
        p.inFuncName = true;
        const nameText = printNode(p, n.name);
        p.inFuncName = false;
        const rest = nameText + printParams(p, n.params) + n.cv + n.ref;
        if (n.ret) {
          checkReturnType(p, n.ret, true);
          return printDecl(p, n.ret, rest, false);
        }
        return check(rest);
      } finally {
        if (isTmpl) p.templates.pop();
        p.inFuncName = savedIn;
      }
    }
    case "special":
      return check(n.text + printNode(p, n.inner));
    case "ctorvt":
      return check(`construction vtable for ${printNode(p, n.b)}-in-${printNode(p, n.a)}`);
    case "clone":
      return check(printNode(p, n.inner) + ` [clone ${n.suffix}]`);
    case "cvname": {
      // c++filt lets these qualifiers leak into array types within the name: not followed there
      const saved = p.inCvName;
      p.inCvName = true;
      const s = printNode(p, n.inner);
      p.inCvName = saved;
      return check(s + n.q);
    }
    case "literal":
      return printLiteral(p, n);
    case "exprname":
      return printNode(p, n.inner);
    case "fparam":
      return `{parm#${n.n + 1}}`;
    case "decltype": {
      const e = resolveParam(p, n.expr);
      if (e.k === "fn" || e.k === "array" || e.k === "qual" || e.k === "ptr" || e.k === "lref" || e.k === "rref" || e.k === "ptrmem") bail(); // a type, not an expression
      return check(`decltype (${printNode(p, n.expr)})`);
    }
    case "unary":
      // the address of a member function: the name alone, without its parameters
      if (n.op === "&" && n.arg.k === "exprname" && n.arg.inner.k === "func" && n.arg.inner.name.k === "nested" && n.arg.inner.cv === "" && n.arg.inner.ref === "")
        return check("&" + printNode(p, n.arg.inner.name));
      if (n.postfix) return check(printSub(p, n.arg) + n.op);
      return check(n.op + printSub(p, n.arg));
    case "binary": {
      if (n.op === "[]") return check(printSub(p, n.l) + "[" + printNode(p, n.r) + "]");
      const s = printSub(p, n.l) + n.op + printSub(p, n.r);
      return check(n.op === ">" ? "(" + s + ")" : s);
    }
    case "trinary":
      return check(`${printSub(p, n.c)}?${printSub(p, n.a)} : ${printSub(p, n.b)}`);
    case "call":
      if (n.fn.k === "exprname" && n.fn.inner.k === "func") bail(); // c++filt's own form (`x1()` for a call of x1)
      return check(printSub(p, n.fn) + printParams(p, n.args));
    case "cast":
      exprType(p, n.type);
      if (n.list) return check(`(${printNode(p, n.type)})${printParams(p, n.args)}`);
      return check(`(${printNode(p, n.type)})${printSub(p, n.args[0]!)}`);
    case "namedcast":
      exprType(p, n.type);
      return check(`${n.op}<${printNode(p, n.type)}>(${printNode(p, n.arg)})`);
    case "member":
      return check(printSub(p, n.obj) + n.op + printNode(p, n.name));
    case "sizeoftype":
      exprType(p, n.type);
      return check(`${n.op} (${printNode(p, n.type)})`);
    case "sizeofexpr":
      return check(`${n.op} ${printSub(p, n.arg)}`);
    case "sizeofpack": {
      // c++filt prints the size of a known pack
      const r = resolveParam(p, n.arg);
      if (r.k !== "pack") bail();
      return String(r.items.length);
    }
    case "initlist":
      if (n.type) exprType(p, n.type);
      return check(`${n.type ? printNode(p, n.type) : ""}{${joinList(n.args.map((a) => printNode(p, a)))}}`);
    case "throw":
      return n.arg ? check("throw " + printSub(p, n.arg)) : "throw";
    default:
      // types reached through a name position (template arguments, scopes)
      return printDecl(p, n, "", false);
  }
}

/**
 * The human-readable form of an Itanium C++ ABI mangled name (`_Z7throweri` -> `thrower(int)`),
 * as GNU c++filt prints it, or undefined when `name` is not a mangled name this demangler
 * understands (or is over its size limits). Never throws.
 */
export function demangle(name: string): string | undefined {
  if (!name.startsWith("_Z") || name.length > MAX_DEMANGLED_LENGTH) return undefined;
  const rust = rustLegacy(name);
  if (rust !== null) return rust;
  try {
    const parser = new Parser(name);
    const tree = parser.mangled();
    let out = printNode(new Printer(), tree);
    if (out.includes(LAST_WAS_SPACE)) out = out.replaceAll(LAST_WAS_SPACE, "");
    return out.length > MAX_DEMANGLED_LENGTH ? undefined : out;
  } catch {
    // BAIL, or (should a cap be missed) the engine's own stack overflow: never thrown out
    return undefined;
  }
}

const RUST_ESCAPES: Record<string, string> = { SP: "@", BP: "*", RF: "&", LT: "<", GT: ">", LP: "(", RP: ")", C: "," };

/**
 * Rust's legacy mangling (`_ZN` <source-name>+ `17h` <16 hex digits> `E`), which c++filt reads as
 * Rust: `$LT$`-style escapes and `..` decoded, any `.suffix` dropped. null when `name` is not one;
 * undefined for escapes whose reading by c++filt is not followed here.
 */
function rustLegacy(name: string): string | null | undefined {
  if (!name.startsWith("_ZN")) return null;
  const parts: string[] = [];
  let pos = 3;
  while (pos < name.length && isDigit(name[pos]!)) {
    const start = pos;
    while (isDigit(name[pos] ?? "")) pos++;
    const len = Number(name.slice(start, pos));
    if (pos - start > 5 || len === 0 || pos + len > name.length) return null;
    parts.push(name.slice(pos, pos + len));
    pos += len;
  }
  if (name[pos] !== "E" || parts.length < 2 || !/^h[0-9a-f]{16}$/.test(parts[parts.length - 1]!)) return null;
  const rest = name.slice(pos + 1);
  if (rest !== "" && rest[0] !== ".") return null;
  const out: string[] = [];
  for (const part of parts) {
    let id = part.startsWith("_$") ? part.slice(1) : part;
    let text = "";
    for (let i = 0; i < id.length;) {
      const c = id[i]!;
      if (c === "." && id[i + 1] === ".") {
        text += "::";
        i += 2;
      } else if (c === "$") {
        const end = id.indexOf("$", i + 1);
        if (end < 0) return undefined;
        const seq = id.slice(i + 1, end);
        const hex = /^u([0-9a-f]{2})$/.exec(seq);
        const code = hex ? parseInt(hex[1]!, 16) : -1;
        if (RUST_ESCAPES[seq] !== undefined) text += RUST_ESCAPES[seq];
        else if (code >= 0x20 && code < 0x7f) text += String.fromCharCode(code);
        else return undefined;
        i = end + 1;
      } else {
        text += c;
        i++;
      }
    }
    id = text;
    out.push(id);
  }
  return out.join("::");
}
