// DebugType: a DWARF type as a value formatter needs it (kind, size, signedness, what it points
// to, what a typedef stands for) and named as the language writes it: C and C++ names are built
// like gdb prints them ("const char *", "int (*)(int, const char *)", "unsigned long"); Go names
// are the ones the Go compiler wrote ("[]uint8", "*main.T", "error"). This file reads types from
// DIEs; how C and C++ write their names is c-names.ts.
import { cDeclare, cxxScoped, normalizeCBase } from "./c-names.ts";
import { AT, ATE, languageName, TAG } from "./constants.ts";
import { DwarfError } from "./errors.ts";
import type { Unit } from "./unit.ts";
import type { Die } from "./die.ts";

export type TypeKind =
  | "void" | "int" | "uint" | "bool" | "float" | "complex" | "char"
  | "pointer" | "reference" | "struct" | "union" | "class" | "enum" | "array" | "typedef" | "func"
  | "go-string" | "go-slice" | "go-interface" | "go-map" | "go-chan" | "go-func"
  | "unknown";

export type Qualifier = "const" | "volatile" | "restrict" | "_Atomic";

export interface DebugMember {
  name: string;
  type: DebugType;
  /** Byte offset in the enclosing struct or union. */
  offset: number;
  /** Bit fields: width in bits and offset in bits from the start of the struct. */
  bitSize?: number;
  bitOffset?: number;
}

export interface DebugType {
  kind: TypeKind;
  /** As the language writes it: "const char *", "size_t", "struct point *", "[]uint8", "error". */
  name: string;
  /** Size in bytes (0 for void, functions and incomplete types). */
  size: number;
  /**
   * pointer/reference: the pointee; array and go-slice: the element; typedef: the aliased type;
   * enum: the underlying integer type (when DWARF names it); func: the return type.
   */
  target?: DebugType;
  /** The type with typedefs and qualifiers removed: what the bytes are (size_t -> unsigned long). */
  resolved: DebugType;
  /** Qualifiers applied to this type (`const char`: ["const"]). */
  qualifiers?: Qualifier[];
  /** int, char and enum: whether the value is signed. */
  signed?: boolean;
  /** A C `char *` (any qualifiers, through typedefs) or a Go string: print as text. */
  isString: boolean;
  enumerators?: { name: string; value: bigint }[];
  /** Struct, union and class members, Go string/slice/interface words; read on first access. */
  readonly members?: DebugMember[];
  /** array: number of elements (undefined when the bound is unknown: `int []`). */
  count?: number;
  /** func: parameter types, and whether it ends with `...`. */
  params?: DebugType[];
  variadic?: boolean;
  /** reference: a C++ rvalue reference (`&&`). */
  rvalue?: boolean;
  /** func: declared with a prototype (`int (void)`), not K&R style (`int ()`). */
  prototyped?: boolean;
  /** .debug_info offset of the DIE it came from (an identity for caches), -1 when synthetic. */
  offset: number;
}

/** Where DIEs come from: the DebugInfo that owns every unit. */
export interface DieSource {
  dieAt(offset: number): Die | undefined;
}

const MAX_DEPTH = 64;

const GO_KIND = { array: 17, chan: 18, func: 19, interface: 20, map: 21, pointer: 22, slice: 23, string: 24, struct: 25 } as const;

export class TypeReader {
  private cache = new Map<number, DebugType>();
  private building = new Set<number>();
  private depth = 0;
  readonly void: DebugType;

  constructor(private readonly dies: DieSource) {
    const v: DebugType = { kind: "void", name: "void", size: 0, isString: false, offset: -1 } as DebugType;
    v.resolved = v;
    this.void = v;
  }

  /** The type an attribute (DW_AT_type by default) of `die` refers to; void when it has none. */
  typeOf(die: Die, at: number = AT.type): DebugType {
    if (!die.has(at)) return this.void;
    const off = die.unit.ref(die, at);
    return off === undefined ? unknown("?") : this.typeAt(off);
  }

  typeAt(offset: number): DebugType {
    const hit = this.cache.get(offset);
    if (hit) return hit;
    // A reference cycle that does not pass through a named struct is malformed input.
    if (this.building.has(offset) || this.depth >= MAX_DEPTH) return unknown("?");
    const die = this.dies.dieAt(offset);
    if (!die) return unknown("?");
    this.building.add(offset);
    this.depth++;
    try {
      const t = this.build(die);
      this.cache.set(offset, t);
      return t;
    } finally {
      this.depth--;
      this.building.delete(offset);
    }
  }

  private build(die: Die): DebugType {
    const u = die.unit;
    const go = unitLanguage(u) === "go";
    const dwarfName = u.str(die, AT.name);
    const size = u.num(die, AT.byte_size);
    const goKind = go ? u.num(die, AT.go_kind) : undefined;
    switch (die.tag) {
      case TAG.base_type:
        return this.base(die, dwarfName, size ?? 0, go);
      case TAG.unspecified_type:
        return finish({ kind: "void", name: dwarfName ?? "void", size: 0, isString: false, offset: die.offset });
      case TAG.pointer_type:
      case TAG.reference_type:
      case TAG.rvalue_reference_type:
      case TAG.ptr_to_member_type: {
        const target = this.typeOf(die);
        const t: DebugType = finish({
          kind: die.tag === TAG.pointer_type || die.tag === TAG.ptr_to_member_type ? "pointer" : "reference",
          name: "",
          size: size ?? u.h.addrSize,
          target,
          isString: !go && isCChar(target),
          offset: die.offset,
        });
        if (die.tag === TAG.rvalue_reference_type) t.rvalue = true;
        t.name = go && dwarfName ? dwarfName : cDeclare(t, "");
        return t;
      }
      case TAG.const_type:
      case TAG.volatile_type:
      case TAG.restrict_type:
      case TAG.atomic_type: {
        const q: Qualifier = die.tag === TAG.const_type ? "const" : die.tag === TAG.volatile_type ? "volatile" : die.tag === TAG.restrict_type ? "restrict" : "_Atomic";
        return qualify(this.typeOf(die), q, die.offset);
      }
      case TAG.typedef: {
        const target = this.typeOf(die);
        if (go) {
          const special = goKind === GO_KIND.interface ? "go-interface" : goKind === GO_KIND.map ? "go-map" : goKind === GO_KIND.chan ? "go-chan" : goKind === GO_KIND.func ? "go-func" : undefined;
          if (special) {
            const t: DebugType = finish({ kind: special, name: dwarfName ?? target.name, size: target.resolved.size || u.h.addrSize, target, isString: false, offset: die.offset });
            if (special === "go-interface") lazyMembers(t, () => target.resolved.members ?? []);
            return t;
          }
          // Go writes a named type as a typedef of a typedef with the same name: one is enough.
          if (dwarfName === target.name) return target;
        }
        const t: DebugType = finish({
          kind: "typedef",
          name: unitLanguage(u) === "c++" ? cxxScoped(die, dwarfName ?? "?") : (dwarfName ?? "?"),
          size: target.resolved.size,
          target,
          isString: target.isString,
          offset: die.offset,
        });
        t.resolved = target.resolved;
        if (target.resolved.signed !== undefined) t.signed = target.resolved.signed;
        return t;
      }
      case TAG.structure_type:
      case TAG.class_type:
      case TAG.union_type:
        return this.aggregate(die, dwarfName, size ?? 0, go, goKind);
      case TAG.enumeration_type:
        return this.enumeration(die, dwarfName, size ?? 0, go);
      case TAG.array_type:
        return this.array(die, dwarfName, size, go);
      case TAG.subroutine_type: {
        const ret = this.typeOf(die);
        const params: DebugType[] = [];
        let variadic = false;
        for (const c of die.children) {
          if (c.tag === TAG.formal_parameter) params.push(this.typeOf(c));
          else if (c.tag === TAG.unspecified_parameters) variadic = true;
        }
        const prototyped = u.flag(die, AT.prototyped);
        // A Go func value is one pointer (to its closure); Go gives the type its byte_size.
        const kind: TypeKind = go ? "go-func" : "func";
        const t: DebugType = finish({ kind, name: "", size: go ? (size ?? u.h.addrSize) : 0, target: ret, params, variadic, prototyped, isString: false, offset: die.offset });
        t.name = go && dwarfName ? dwarfName : cDeclare(t, "");
        return t;
      }
      default:
        return unknown(dwarfName ?? `<DWARF tag 0x${die.tag.toString(16)}>`);
    }
  }

  private base(die: Die, dwarfName: string | undefined, size: number, go: boolean): DebugType {
    const enc = die.unit.num(die, AT.encoding);
    let kind: TypeKind = "unknown";
    let signed: boolean | undefined;
    switch (enc) {
      case ATE.boolean: kind = "bool"; break;
      case ATE.float: case ATE.decimal_float: kind = "float"; break;
      case ATE.complex_float: kind = "complex"; break;
      case ATE.signed: case ATE.signed_fixed: kind = "int"; signed = true; break;
      case ATE.unsigned: case ATE.unsigned_fixed: kind = "uint"; signed = false; break;
      case ATE.address: kind = "uint"; signed = false; break;
      case ATE.signed_char: kind = "char"; signed = true; break;
      case ATE.unsigned_char: kind = "char"; signed = false; break;
      case ATE.UTF: kind = "char"; signed = false; break;
    }
    // Go's byte and uint8 are unsigned_char-encoded but are numbers, not characters.
    if (go && kind === "char") kind = signed ? "int" : "uint";
    const name = go ? (dwarfName ?? "?") : normalizeCBase(dwarfName ?? "?");
    return finish({ kind, name, size, signed, isString: false, offset: die.offset });
  }

  private aggregate(die: Die, dwarfName: string | undefined, size: number, go: boolean, goKind: number | undefined): DebugType {
    const u = die.unit;
    const cxx = unitLanguage(u) === "c++";
    let kind: TypeKind = die.tag === TAG.union_type ? "union" : die.tag === TAG.class_type ? "class" : "struct";
    let target: DebugType | undefined;
    let isString = false;
    if (go && goKind === GO_KIND.string) {
      kind = "go-string";
      isString = true;
    } else if (go && goKind === GO_KIND.slice) {
      kind = "go-slice";
      target = die.has(AT.go_elem) ? this.typeOf(die, AT.go_elem) : undefined;
    }
    const keyword = kind === "union" ? "union" : kind === "class" ? "class" : "struct";
    const name = go ? (dwarfName ?? "struct {...}") : cxx && dwarfName ? cxxScoped(die, dwarfName) : `${keyword} ${dwarfName ?? "{...}"}`;
    const t: DebugType = finish({ kind, name, size, isString, offset: die.offset });
    if (target) t.target = target;
    lazyMembers(t, () => this.members(die));
    return t;
  }

  private members(die: Die): DebugMember[] {
    const u = die.unit;
    const out: DebugMember[] = [];
    for (const c of die.children) {
      if (c.tag !== TAG.member) continue;
      const m: DebugMember = { name: u.str(c, AT.name) ?? "", type: this.typeOf(c), offset: memberOffset(c) };
      const bits = u.num(c, AT.bit_size);
      if (bits !== undefined) {
        m.bitSize = bits;
        const dbo = u.num(c, AT.data_bit_offset);
        if (dbo !== undefined) {
          m.bitOffset = dbo;
          m.offset = Math.floor(dbo / 8);
        } else {
          // DWARF 2/3: bit_offset counts from the most significant bit of a byte_size storage unit.
          const bo = u.num(c, AT.bit_offset) ?? 0;
          const storage = (u.num(c, AT.byte_size) ?? m.type.resolved.size) * 8;
          m.bitOffset = m.offset * 8 + storage - bo - bits;
        }
      }
      out.push(m);
    }
    return out;
  }

  private enumeration(die: Die, dwarfName: string | undefined, size: number, go: boolean): DebugType {
    const u = die.unit;
    const cxx = unitLanguage(u) === "c++";
    const target = die.has(AT.type) ? this.typeOf(die) : undefined;
    let signed = target?.resolved.signed;
    if (signed === undefined) signed = u.num(die, AT.encoding) === ATE.signed ? true : undefined;
    const enumerators: { name: string; value: bigint }[] = [];
    for (const c of die.children) {
      if (c.tag !== TAG.enumerator) continue;
      enumerators.push({ name: u.str(c, AT.name) ?? "", value: u.constant(c, AT.const_value, signed ?? size < 8) ?? 0n });
    }
    if (signed === undefined) signed = enumerators.some((e) => e.value < 0n);
    const name = go ? (dwarfName ?? "enum {...}") : cxx ? cxxScoped(die, dwarfName ?? "enum {...}") : `enum ${dwarfName ?? "{...}"}`;
    const t: DebugType = finish({ kind: "enum", name, size, signed, isString: false, enumerators, offset: die.offset });
    if (target) t.target = target;
    return t;
  }

  private array(die: Die, dwarfName: string | undefined, size: number | undefined, go: boolean): DebugType {
    const u = die.unit;
    const elem = this.typeOf(die);
    const dims: (number | undefined)[] = [];
    for (const c of die.children) {
      if (c.tag !== TAG.subrange_type) continue;
      const count = u.num(c, AT.count);
      if (count !== undefined) {
        dims.push(count);
        continue;
      }
      const upper = u.constant(c, AT.upper_bound, true);
      const lower = u.constant(c, AT.lower_bound, true) ?? 0n;
      const n = upper === undefined ? undefined : upper - lower + 1n;
      dims.push(n !== undefined && n >= 0n && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined);
    }
    if (!dims.length) dims.push(undefined);
    // int [2][3] is an array of 2 arrays of 3: build from the innermost dimension out.
    let t: DebugType = elem;
    for (let i = dims.length - 1; i >= 0; i--) {
      const count = dims[i];
      const inner = t;
      t = finish({ kind: "array", name: "", size: count === undefined ? 0 : count * inner.resolved.size, target: inner, isString: false, offset: i === 0 ? die.offset : -1 });
      if (count !== undefined) t.count = count;
      t.name = cDeclare(t, "");
    }
    if (size !== undefined) t.size = size;
    if (go && dwarfName) t.name = dwarfName;
    return t;
  }
}

/** Language of a unit ("c", "c++", "go", ...), from its unit DIE. */
export function unitLanguage(u: Unit): string {
  const cached = languageCache.get(u);
  if (cached) return cached;
  const lang = languageName(u.num(u.root(), AT.language));
  languageCache.set(u, lang);
  return lang;
}
const languageCache = new WeakMap<Unit, string>();

function memberOffset(c: Die): number {
  const u = c.unit;
  const r = u.attr(c, AT.data_member_location);
  if (!r) return 0;
  if (typeof r.val === "number") return r.val;
  // DWARF 2: a location expression, in practice DW_OP_plus_uconst N.
  if (r.val instanceof Uint8Array && r.val[0] === 0x23) {
    let n = 0;
    let mul = 1;
    for (let i = 1; i < r.val.length && i < 9; i++) {
      n += (r.val[i]! & 0x7f) * mul;
      if (!(r.val[i]! & 0x80)) break;
      mul *= 128;
    }
    return n;
  }
  return 0;
}

function finish(t: Omit<DebugType, "resolved"> & { resolved?: DebugType }): DebugType {
  const d = t as DebugType;
  if (!d.resolved) d.resolved = d;
  if (d.signed === undefined) delete d.signed;
  return d;
}

function unknown(name: string): DebugType {
  return finish({ kind: "unknown", name, size: 0, isString: false, offset: -1 });
}

function lazyMembers(t: DebugType, read: () => DebugMember[]): void {
  let value: DebugMember[] | undefined;
  Object.defineProperty(t, "members", {
    enumerable: true,
    configurable: true,
    get() {
      value ??= read();
      return value;
    },
  });
}

const QUAL_ORDER: Qualifier[] = ["const", "volatile", "restrict", "_Atomic"];

/** `t` with one more qualifier: same kind, size and target, qualified name. */
function qualify(t: DebugType, q: Qualifier, offset: number): DebugType {
  // Copy descriptors so a lazy members getter stays lazy.
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(t)) as DebugType;
  const quals = new Set([...(t.qualifiers ?? []), q]);
  copy.qualifiers = QUAL_ORDER.filter((x) => quals.has(x));
  copy.offset = offset;
  copy.resolved = t.resolved;
  if (t.kind === "pointer" || t.kind === "reference" || t.kind === "func") {
    copy.name = cDeclare(copy, "");
  } else if (t.kind === "unknown" || t.kind.startsWith("go-")) {
    copy.name = t.name;
  } else {
    // const applies to the base name: "const char", "const struct point", "const size_t".
    copy.name = `${q} ${t.name}`;
    const parts = new Set(copy.name.split(" "));
    const rest = copy.name.split(" ").filter((w) => !QUAL_ORDER.includes(w as Qualifier));
    copy.name = [...QUAL_ORDER.filter((x) => parts.has(x)), ...rest].join(" ");
  }
  return copy;
}

function isCChar(t: DebugType): boolean {
  const r = t.resolved;
  return r.kind === "char" && r.size === 1 && /(^|\s)char$/.test(r.name) && !/unsigned/.test(r.name);
}

export { DwarfError };
