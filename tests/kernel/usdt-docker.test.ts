// `probe usdt --container NAME` on a real dockerd's container: CPython's function__entry in a
// container whose python is its own copy (the image is the test's Python rootfs), every process of
// the container traced, the calls exact, rows in the container's PID namespace.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { WORK, startProbe, type Running } from "../helpers.ts";
import { ensureDocker } from "../fixtures/docker.ts";
import { ensurePythonRootfs } from "../fixtures/usdt/python-rootfs.ts";

const SCRIPT_LINES = readFileSync(join(import.meta.dir, "..", "fixtures", "usdt", "calls.py"), "utf8").split("\n");
const defLine = (name: string) => SCRIPT_LINES.findIndex((l) => new RegExp(`^\\s*def ${name}\\(`).test(l)) + 1;
const name = `probe-usdt-${process.pid}`;
const sync = join(WORK, `usdt-docker-${process.pid}`);

afterAll(() => {
  Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore", timeout: 30_000 });
  rmSync(sync, { recursive: true, force: true });
});

/** The Python rootfs imported as an image, tagged by its content. */
function pythonImage(): string {
  const root = ensurePythonRootfs();
  const tag = `probe-test-python:${createHash("sha256").update(root).update(readFileSync(join(root, "app/calls.py"))).digest("hex").slice(0, 12)}`;
  if (Bun.spawnSync(["docker", "image", "inspect", tag], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) return tag;
  const tar = Bun.spawnSync(["tar", "-C", root, "--exclude=./.complete", "-c", "."], { stdout: "pipe", stderr: "pipe" });
  if (tar.exitCode !== 0) throw new Error(`tar of ${root} failed: ${tar.stderr}`);
  const imp = Bun.spawnSync(["docker", "import", "-", tag], { stdin: tar.stdout, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  if (imp.exitCode !== 0) throw new Error(`docker import failed: ${imp.stderr}`);
  return tag;
}

async function stop(p: Running): Promise<{ code: number; rows: Record<string, any>[] }> {
  p.proc.kill("SIGINT");
  const out = await p.out.done();
  return { code: await p.proc.exited, rows: out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)) };
}

describe("probe usdt --container (real dockerd)", () => {
  test("python:function__entry in a docker container by name: exactly the script's calls, container PIDs", async () => {
    await ensureDocker();
    const image = pythonImage();
    mkdirSync(sync, { recursive: true });
    Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" });
    const run = Bun.spawnSync(["docker", "run", "-d", "--name", name, "-v", `${sync}:/sync`, image, "/usr/bin/python3.11", "/app/calls.py", "/sync/go", "/sync/bye"], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
    if (run.exitCode !== 0) throw new Error(`docker run failed: ${run.stderr}`);
    const hostPid = Number(Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Pid}}", name], { stdout: "pipe" }).stdout.toString().trim());
    expect(hostPid).toBeGreaterThan(0);

    const p = await startProbe(["usdt", "python3", "python:function__entry", "--container", name, "--json"]);
    writeFileSync(join(sync, "go"), "");
    const deadline = Date.now() + 20_000;
    while (p.out.all.filter((l) => l.includes('"funcname"')).length < 15 && Date.now() < deadline) await Bun.sleep(50);
    await Bun.sleep(300);
    const { code, rows } = await stop(p);
    writeFileSync(join(sync, "bye"), "");
    expect(code).toBe(0);
    const args = (r: Record<string, any>) => Object.fromEntries((r.args as { name: string; value: unknown }[]).map((a) => [a.name, a.value]));
    const ours = rows.filter((r) => args(r).filename === "/app/calls.py").map((r) => `${args(r).funcname}:${args(r).lineno}`);
    const count = (xs: string[]) => [...xs.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>())].sort();
    expect(count(ours)).toEqual(count([...Array(5).fill(`alpha:${defLine("alpha")}`), ...Array(7).fill(`beta:${defLine("beta")}`), ...Array(3).fill(`delta:${defLine("delta")}`)]));
    // The container's process: its host PID, PID 1 inside.
    for (const r of rows) expect(r.nspid).toEqual([hostPid, 1]);
  }, 240_000);
});
