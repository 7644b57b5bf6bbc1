// The command lines a README section shows (`    sudo probe ...` lines), as argv, so that tests run
// exactly what the README says (and fail when the README changes without them).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

/** `probe` command lines (without `sudo`, comments and the leading `probe`) under the `### ` heading starting with `heading`. */
export function readmeExamples(heading: string): string[][] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const start = lines.findIndex((l) => l.startsWith(`### ${heading}`));
  if (start < 0) throw new Error(`README.md has no section '### ${heading}'`);
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
  /** Its words, with one of each `[optional]` part and `a | b` alternative chosen. */
  argv: string[];
}

/**
 * Every `probe ...` command line the README shows in an indented block, in every section,
 * continuation lines (`\`) joined. A line with `[OPT]` parts or `a | b` alternatives stands for
 * each combination: `list [--json]` is `list` and `list --json`.
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
    for (const variant of expandSyntax(text)) out.push({ section, text, argv: shellWords(variant) });
  }
  return out;
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
