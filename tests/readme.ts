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
