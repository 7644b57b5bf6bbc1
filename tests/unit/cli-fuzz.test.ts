// The built CLI on mutated binaries: `probe uprobe MUTANT FUNCTION` and `--list-functions` end
// with output or one `probe: error:` line (and a hint), exit 1 or 2, never a stack trace or a
// crash banner. As root, `probe uprobe` runs as nobody, so that it parses the file and stops at
// the privilege check instead of attaching.
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeBinary } from "../helpers.ts";
import { elfMutants, elfSeeds } from "../fixtures/fuzz/elf-seeds.ts";

const CASES = 40;
const CLI_SEED = 0xc11f;
/** Any of these in stderr means something other than probe's own error reporting spoke. */
const NOT_CLEAN = /Bun v\d|panic|^\s+at |Segmentation fault|RangeError|TypeError|undefined is not|Out of bounds/m;

function unprivileged(cmd: string[]): string[] {
  return process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...cmd] : cmd;
}

describe("the CLI on mutated binaries", () => {
  test(`${CASES} mutants × (uprobe, --list-functions): output or one clean error`, () => {
    const probe = probeBinary();
    const dir = mkdtempSync(join(tmpdir(), "probe-cli-fuzz-"));
    chmodSync(dir, 0o755);
    const bad: string[] = [];
    const codes = new Map<string, number>();
    try {
      const all = [...elfMutants(elfSeeds(), 80, CLI_SEED)];
      // Every fourth mutant, so that each seed binary is among them.
      const picked = all.filter((_, i) => i % Math.floor(all.length / CASES) === 0).slice(0, CASES);
      for (const [i, m] of picked.entries()) {
        const path = join(dir, `${m.seed}-${i}`);
        writeFileSync(path, m.bytes, { mode: 0o644 });
        const fn = m.seed.startsWith("go") ? ["main.oneReturn", "--ret"] : ["main"];
        for (const args of [unprivileged([probe, "uprobe", path, ...fn]), [probe, "uprobe", path, "--list-functions"]]) {
          const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
          const err = r.stderr.toString();
          const lines = err.split("\n").filter(Boolean);
          const what = `${args.slice(args.indexOf("uprobe")).join(" ")} [${m.what.join("; ")}]`;
          const code = r.exitCode ?? -1;
          codes.set(`exit ${code}`, (codes.get(`exit ${code}`) ?? 0) + 1);
          const listed = args.includes("--list-functions") && code === 0;
          const cleanError = (code === 1 || code === 2) && /^probe: error: \S/.test(lines[0] ?? "") && lines.slice(1).every((l) => /^hint: |^Run 'probe/.test(l));
          if (NOT_CLEAN.test(err) || !(listed || cleanError)) bad.push(`${what}: exit ${code} ${r.signalCode ?? ""}\n${err.slice(0, 600)}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`CLI fuzz: ${CASES * 2} runs: ${JSON.stringify(Object.fromEntries(codes))}`);
    if (bad.length) console.log(bad.join("\n---\n"));
    expect(bad).toEqual([]);
  }, 300_000);
});
