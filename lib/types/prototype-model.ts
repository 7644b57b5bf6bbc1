// The prototype model: what a parsed C or Go prototype is (its parameters and results, each with a
// Type that keeps sizes, signedness, what a pointer points at and how long a buffer is), the error
// a prototype that cannot be parsed or placed raises, and the names parameters are shown by. Kept
// apart from the parsers so that the register placement (abi.ts) depends on the model only.
import { ProbeError } from "../errors.ts";

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

/** The name shown for a parameter: its own, or arg0, arg1... by position (receiver: recv). */
export function paramName(p: Param, index: number): string {
  return p.name ?? (p.receiver ? "recv" : `arg${index}`);
}

/** The name shown for a result: its own, `ret` when it is the only one, else ret0, ret1... */
export function resultName(p: Param, index: number, count: number): string {
  return p.name ?? (count === 1 ? "ret" : `ret${index}`);
}
