// Function prototypes as a user pastes them: C from a man page ('ssize_t write(int fd, const void
// *buf[count], size_t count)') or Go ('func main.(*T).M(b []byte, ok bool) (int, error)'). The parser
// keeps what matters for finding and showing values: sizes, signedness, pointers, what a pointer
// points at, and how long a buffer is. Nothing here knows registers (abi.ts does).
//
// This is the entry: which parser a text goes to (c-prototype.ts, go-prototype.ts); the model they
// build is in prototype-model.ts.
import { ProbeError } from "../errors.ts";
import { CParser } from "./c-prototype.ts";
import { GoParser } from "./go-prototype.ts";
import type { Prototype } from "./prototype-model.ts";
import { MAX_TEXT } from "./prototype-tokens.ts";

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
