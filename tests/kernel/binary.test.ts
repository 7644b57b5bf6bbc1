// dist/probe alone, copied into a root that holds nothing but glibc, libbpf1, libelf and zlib,
// traces a real process: the single file is the product.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { WORK, buildC, probeBinary, start } from "../helpers.ts";
import { IMAGE_LIBS } from "../fixtures/probe-image.ts";

function minimalRoot(): string {
  const root = join(WORK, "minroot");
  rmSync(root, { recursive: true, force: true });
  for (const l of IMAGE_LIBS) {
    mkdirSync(join(root, dirname(l)), { recursive: true });
    copyFileSync(l, join(root, l));
  }
  mkdirSync(join(root, "proc"), { recursive: true });
  copyFileSync(probeBinary(), join(root, "probe"));
  copyFileSync(buildC("calls", "calls.c"), join(root, "calls"));
  return root;
}

describe("the built binary needs only glibc and libbpf1 (+ libelf, zlib)", () => {
  test("in a root with nothing else, it starts and traces a real process", async () => {
    const root = minimalRoot();
    const inRoot = (args: string) => ["unshare", "--mount", "--fork", "sh", "-c", `mount -t proc proc ${root}/proc && exec chroot ${root} /probe ${args}`];
    const v = Bun.spawnSync(inRoot("--version"), { stdout: "pipe", stderr: "pipe" });
    expect(v.stderr.toString()).toBe("");
    expect(v.stdout.toString()).toMatch(/^probe \d/);

    // The target runs in the same root: with --pid, /calls is resolved in the target's view.
    const target = start(["chroot", root, "/calls", "7"]);
    const [, pid] = await target.out.waitFor(/^ready (\d+)/);
    const p = start(inRoot(`uprobe /calls target_fn --ret --pid ${pid} --json --no-debuginfo`));
    await p.err.waitFor(/Tracing target_fn/);
    target.proc.stdin.write("go\n");
    target.proc.stdin.end();
    const events = (await p.out.done()).map((l) => JSON.parse(l));
    expect(await p.proc.exited).toBe(0);
    expect(events.filter((e) => e.event === "call")).toHaveLength(7);
    expect(events.filter((e) => e.event === "return").map((e) => e.ret)).toEqual([7, 107, 207, 307, 407, 507, 607]);
  });
});
