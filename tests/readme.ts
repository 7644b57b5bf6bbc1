// The command lines a README section shows (`    sudo probe ...` lines), as argv, so that tests run
// exactly what the README says (and fail when the README changes without them).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

/** `probe` command lines (without `sudo`, comments and the leading `probe`) under the `### ` (or `#### `) heading starting with `heading`. */
export function readmeExamples(heading: string): string[][] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const start = lines.findIndex((l) => l.startsWith(`### ${heading}`) || l.startsWith(`#### ${heading}`));
  if (start < 0) throw new Error(`README.md has no section '### ${heading}' (or '#### ...')`);
  const out: string[][] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.startsWith("#")) break;
    const m = /^ {4}(?:sudo )?probe (.*?)\s*(?:#.*)?$/.exec(l);
    if (m) out.push(shellWords(m[1]!));
  }
  return out;
}

/** Words as sh splits them, for the quoting READMEs use (single and double quotes). */
function shellWords(s: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

export interface ReadmeExample {
  /** The `### ` heading it is under ("" before the first). */
  section: string;
  /** The command after `probe`, as written (continuation lines joined). */
  text: string;
  /** Its words, with one of each `[optional]` part and `a | b` alternative chosen (up to a pipe). */
  argv: string[];
  /** `probe ... | PROGRAM ARGS` (PROGRAM on PATH): the command probe's stdout is piped into, as sh would. */
  pipeTo?: string[];
}

/** The example as one line: its words, then `| PROGRAM ARGS` when it pipes. */
export function exampleKey(e: { argv: string[]; pipeTo?: string[] }): string {
  return [e.argv, ...(e.pipeTo ? [["|", ...e.pipeTo]] : [])].map((w) => w.join(" ")).join(" ");
}

/**
 * Every `probe ...` command line the README shows in an indented block, in every section,
 * continuation lines (`\`) joined. A line with `[OPT]` parts or `a | b` alternatives stands for
 * each combination: `list [--json]` is `list` and `list --json`. A `|` followed by a program on
 * PATH is a pipe, not alternatives: `sslsniff --json | jq .` is `sslsniff --json` piped into `jq .`.
 */
export function allReadmeExamples(): ReadmeExample[] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const out: ReadmeExample[] = [];
  let section = "";
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith("#")) section = l.replace(/^#+\s*/, "");
    const m = /^ {4}(?:sudo )?probe (.*)$/.exec(l);
    if (!m) continue;
    let text = m[1]!;
    while (/\\\s*$/.test(text) && i + 1 < lines.length) text = `${text.replace(/\\\s*$/, "")} ${lines[++i]!.trim()}`;
    text = text.replace(/\s+#.*$/, "").replace(/\s+/g, " ").trim();
    const pipe = pipeAt(text);
    const probePart = pipe < 0 ? text : text.slice(0, pipe).trim();
    const pipeTo = pipe < 0 ? undefined : shellWords(text.slice(pipe + 1));
    for (const variant of expandSyntax(probePart)) out.push({ section, text, argv: shellWords(variant), ...(pipeTo && { pipeTo }) });
  }
  return out;
}

/** Where `text` pipes into a program: the index of the first ` | ` whose next word is a program on PATH, else -1. */
function pipeAt(text: string): number {
  for (let i = text.indexOf(" | "); i >= 0; i = text.indexOf(" | ", i + 1)) {
    const next = text.slice(i + 3).split(" ")[0]!;
    if (/^[\w.+-]+$/.test(next) && Bun.which(next)) return i + 1;
  }
  return -1;
}

/** `[x]` -> without and with x; `a | b | c` (one word each) -> each of them. */
function expandSyntax(text: string): string[] {
  const opt = /\s\[([^\]]+)\]/.exec(text);
  if (opt) {
    const without = text.slice(0, opt.index) + text.slice(opt.index + opt[0].length);
    const withIt = `${text.slice(0, opt.index)} ${opt[1]}${text.slice(opt.index + opt[0].length)}`;
    return [...expandSyntax(without), ...expandSyntax(withIt)];
  }
  const words = text.split(" ");
  const bar = words.indexOf("|");
  if (bar > 0) {
    let end = bar;
    const alts = [words[bar - 1]!];
    while (words[end] === "|" && end + 1 < words.length) {
      alts.push(words[end + 1]!);
      end += 2;
    }
    return alts.flatMap((a) => expandSyntax([...words.slice(0, bar - 1), a, ...words.slice(end)].join(" ")));
  }
  return [text];
}
