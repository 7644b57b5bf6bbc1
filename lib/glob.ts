// Shell-style globs over function names, as bpftrace and funccount take them: `*` any run of
// characters, `?` one character, `[abc]`, `[a-z]`, `[!abc]` (or `[^abc]`) one of / none of a set,
// `\x` the character x itself. A glob is compiled once into a matcher and then run per symbol.
//
// Go symbol names contain glob characters of their own, which are taken literally: the pointer
// receiver in `main.(*T).M` (`(*` followed by a name and `)`), and the type arguments of generic
// functions in `main.Map[go.shape.int]` (a bracket whose contents have a dot, or that never closes).

export type GlobMatcher = (name: string) => boolean;

/** True when `text` has a wildcard that compileGlob would treat as one. */
export function isGlob(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") i++;
    else if (c === "?") return true;
    else if (c === "*") {
      if (goReceiverEnd(text, i) < 0) return true;
    } else if (c === "[" && classEnd(text, i) > 0) return true;
  }
  return false;
}

/** At a `*` right after `(`: the index of the `)` closing a Go receiver `(*Name)`, else -1. */
function goReceiverEnd(s: string, star: number): number {
  if (s[star - 1] !== "(") return -1;
  let i = star + 1;
  while (i < s.length && /[\p{L}\p{N}_.[\]]/u.test(s[i]!)) i++;
  return i > star + 1 && s[i] === ")" ? i : -1;
}

/** At `[`: the index of the `]` ending a character class, or -1 when this bracket is literal. */
function classEnd(s: string, open: number): number {
  let i = open + 1;
  if (s[i] === "!" || s[i] === "^") i++;
  if (s[i] === "]") i++; // a leading ] is a member
  for (; i < s.length; i++) {
    if (s[i] === "]") {
      const inside = s.slice(open + 1, i);
      return inside.includes(".") ? -1 : i; // Go type arguments, not a class
    }
    if (s[i] === "\\") i++;
  }
  return -1;
}

function escapeRegex(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

/** Compiles `pattern` to a matcher for whole names. */
export function compileGlob(pattern: string): GlobMatcher {
  if (!isGlob(pattern)) {
    const literal = unescape(pattern);
    return (name) => name === literal;
  }
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) re += escapeRegex(pattern[++i]!);
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "*") {
      const end = goReceiverEnd(pattern, i);
      if (end < 0) re += "[\\s\\S]*";
      else {
        re += [...pattern.slice(i, end + 1)].map(escapeRegex).join("");
        i = end;
      }
    } else if (c === "[") {
      const end = classEnd(pattern, i);
      if (end < 0) re += "\\[";
      else {
        re += classRegex(pattern.slice(i + 1, end));
        i = end;
      }
    } else re += escapeRegex(c);
  }
  const rx = new RegExp(`${re}$`, "u");
  return (name) => rx.test(name);
}

/** The inside of `[...]` as a regex class; ranges stay ranges, everything else is literal. */
function classRegex(inside: string): string {
  let negate = false;
  let i = 0;
  if (inside[0] === "!" || inside[0] === "^") {
    negate = true;
    i = 1;
  }
  let out = "";
  for (; i < inside.length; i++) {
    let c = inside[i]!;
    if (c === "\\" && i + 1 < inside.length) c = inside[++i]!;
    if (inside[i + 1] === "-" && i + 2 < inside.length) {
      let to = inside[i + 2]!;
      i += 2;
      if (to === "\\" && i + 1 < inside.length) to = inside[++i]!;
      if (to < c) continue; // an empty range adds nothing
      out += `\\u{${c.codePointAt(0)!.toString(16)}}-\\u{${to.codePointAt(0)!.toString(16)}}`;
    } else out += `\\u{${c.codePointAt(0)!.toString(16)}}`;
  }
  if (!out) return negate ? "[\\s\\S]" : "[^\\s\\S]";
  return `[${negate ? "^" : ""}${out}]`;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/gsu, "$1");
}

/** The names in `names` that `pattern` selects, in their order. */
export function filterGlob(pattern: string, names: Iterable<string>): string[] {
  const m = compileGlob(pattern);
  const out: string[] = [];
  for (const n of names) if (m(n)) out.push(n);
  return out;
}
