// `probe tracepoint`, the built binary: records decoded by their tracefs format equal what the test's
// own processes did (sched_process_exec's __data_loc filename and pids; sys_enter_execve's pointers,
// as the fixture printed them, and the path they point to); globs and --summary counts; --list
// against tracefs available_events; an unknown name gets the closest ones; a container's PIDs;
// the kernel's view while running and nothing left after it ends.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync, mkdirSync, chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { WORK, buildC, linksHeldBy, probeBinary, runProbe, start, startProbe, type Running } from "../helpers.ts";
import { ensureRootfs, startNsContainer } from "../fixtures/container.ts";
import { readmeExamples } from "../readme.ts";

let FIXTURE: string;
let DIR: string;
const TRACEFS = "/sys/kernel/tracing";

beforeAll(() => {
  probeBinary();
  FIXTURE = buildC("opens-fixture", "opens.c");
  DIR = join(WORK, "tp-opens-dir");
  mkdirSync(DIR, { recursive: true });
  writeFileSync(join(DIR, "exists.txt"), "x\n");
});

async function stop(p: Running): Promise<{ code: number; lines: string[]; json: Record<string, any>[]; stderr: string }> {
  await Bun.sleep(300);
  p.proc.kill("SIGINT");
  const lines = await p.out.done();
  const code = await p.proc.exited;
  return { code, lines, json: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr: (await p.err.done()).join("\n") };
}

/** probe after its target exited: it says so and ends by itself (no SIGINT: one arriving while it closes would kill it). */
async function ended(p: Running, pid: number): Promise<{ code: number; lines: string[]; json: Record<string, any>[]; stderr: string }> {
  const code = await p.proc.exited;
  const lines = await p.out.done();
  const stderr = (await p.err.done()).join("\n");
  expect(stderr).toContain(`probe: pid ${pid} exited`);
  return { code, lines, json: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr };
}

/** The fixture in exec mode: waits for "go", prints its pid and the pointers it passes to execve, execs. */
async function execFixture(path: string, arg: string) {
  const r = start([FIXTURE, "--exec", path, arg]);
  const [, pid] = await r.out.waitFor(/^ready (\d+)/);
  return {
    pid: Number(pid),
    go: async () => {
      r.proc.stdin.write("go\n");
      r.proc.stdin.end();
      const [, , filename, argv] = await r.out.waitFor(/^exec (\d+) (0x[0-9a-f]+) (0x[0-9a-f]+)/);
      await r.proc.exited;
      return { filename: filename!, argv: argv! };
    },
  };
}

describe("tracepoint records decoded from the format", () => {
  test("sched_process_exec and sys_enter_execve of the test's process: filename, pid, old_pid, pointers and the string behind one", async () => {
    const f = await execFixture("/bin/echo", "hello");
    const p = await startProbe(["tracepoint", "sched:sched_process_exec", "syscalls:sys_enter_execve", "-p", String(f.pid), "--json"]);
    expect(p.err.all.join("\n")).toContain(`Tracing sched:sched_process_exec, syscalls:sys_enter_execve, pid ${f.pid}. Ctrl-C to stop.`);
    // The kernel's view while running: one program, two perf-event tracepoint links held by probe.
    const links = linksHeldBy(p.proc.pid!);
    expect(links.map((l) => [l.type, l.progName, l.perfEvent?.kind, l.perfEvent?.name]).sort()).toEqual([
      ["perf_event", "tp_record", "tracepoint", "sched_process_exec"],
      ["perf_event", "tp_record", "tracepoint", "sys_enter_execve"],
    ]);
    expect(runProbe(["list"]).stdout).toMatch(/tp_record\s+tracepoint sched_process_exec/);
    const ptrs = await f.go();
    const { code, json } = await ended(p, f.pid);
    expect(code).toBe(0);
    expect(json.map((e) => e.tracepoint)).toEqual(["syscalls:sys_enter_execve", "sched:sched_process_exec"]);
    const [enter, exec] = json;
    expect(enter.pid).toBe(f.pid);
    expect(enter.tid).toBe(f.pid);
    expect(enter.comm).toBe("opens-fixture");
    expect(enter.fields).toEqual({ __syscall_nr: 59, filename: ptrs.filename, argv: ptrs.argv, envp: expect.stringMatching(/^0x[0-9a-f]+$/) });
    expect(enter.strings).toEqual({ filename: "/bin/echo" });
    expect(exec.pid).toBe(f.pid);
    expect(exec.comm).toBe("echo");
    expect(exec.fields).toEqual({ filename: "/bin/echo", pid: f.pid, old_pid: f.pid });
    expect(linksHeldBy(p.proc.pid!)).toEqual([]);
    expect(Bun.spawnSync(["bpftool", "prog", "list"], { stdout: "pipe" }).stdout.toString()).not.toMatch(/tp_record/);
  });

  test("human output: name=value per field, the user string beside its pointer", async () => {
    const f = await execFixture("/bin/true", "x");
    const p = await startProbe(["tracepoint", "syscalls:sys_enter_execve", "sched:sched_process_exec", "-p", String(f.pid)]);
    const ptrs = await f.go();
    const { lines } = await ended(p, f.pid);
    expect(lines[0]).toMatch(/^TIME\s+PID\s+COMM\s+TRACEPOINT\s+FIELDS$/);
    expect(lines[1]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\s+${f.pid}\\s+opens-fixture\\s+syscalls:sys_enter_execve\\s+__syscall_nr=59 filename=${ptrs.filename} "/bin/true" argv=${ptrs.argv} envp=0x[0-9a-f]+$`));
    expect(lines[2]).toMatch(new RegExp(`\\s${f.pid}\\s+true\\s+sched:sched_process_exec\\s+filename=/bin/true pid=${f.pid} old_pid=${f.pid}$`));
  });

  test("a glob attaches each match (cookies tell them apart); --summary counts per process and tracepoint", async () => {
    const r = start([FIXTURE, DIR, "4"]);
    const [, pid] = await r.out.waitFor(/^ready (\d+)/);
    const p = await startProbe(["tracepoint", "syscalls:sys_enter_openat*", "-p", pid!, "--summary", "--json", "-i", "100"]);
    expect(p.err.all.join("\n")).toContain("Tracing syscalls:sys_enter_openat, syscalls:sys_enter_openat2");
    r.proc.stdin.write("go\n");
    r.proc.stdin.end();
    await r.proc.exited;
    const { json } = await ended(p, Number(pid));
    // Per round: five openat (found, missing, created, relative, the directory) and one openat2.
    expect(json.map((e) => [e.event, e.pid, e.comm, e.tracepoint, e.count])).toEqual([
      ["count", Number(pid), "opens-fixture", "syscalls:sys_enter_openat", 20],
      ["count", Number(pid), "opens-fixture", "syscalls:sys_enter_openat2", 4],
    ]);
  });

  test("in a namespace container: the container's PID beside the host's", async () => {
    const root = ensureRootfs().root;
    const go = `/tmp/tp-go-${process.pid}`;
    rmSync(join(root, go), { force: true });
    const c = await startNsContainer(["/bin/sh", "-c", `while [ ! -e ${go} ]; do sleep 0.05; done; exec /bin/cat ${go}`]);
    try {
      const p = await startProbe(["tracepoint", "sched:sched_process_exec", "-p", String(c.pid), "--json"]);
      writeFileSync(join(root, go), "");
      const { json } = await ended(p, c.pid);
      // The loop's own sleeps are other processes: only PID 1's exec of cat.
      expect(json.map((e) => [e.pid, e.nspid, e.comm, e.fields.filename, e.fields.pid])).toEqual([[c.pid, [c.pid, 1], "cat", "/bin/cat", c.pid]]);
    } finally {
      await c.stop();
      rmSync(join(root, go), { force: true });
    }
  });
});

describe("listing and names", () => {
  const available = readFileSync(join(TRACEFS, "available_events"), "utf8").trim().split("\n").sort();

  test("--list is tracefs available_events; with a glob, those it matches", () => {
    const all = runProbe(["tracepoint", "--list"]);
    expect(all.code).toBe(0);
    expect(all.stdout.trim().split("\n").sort()).toEqual(available);
    const open = runProbe(["tracepoint", "--list", "syscalls:*open*"]);
    expect(open.stdout.trim().split("\n").sort()).toEqual(available.filter((e) => /^syscalls:.*open.*$/.test(e)));
    expect(open.stdout).toContain("syscalls:sys_enter_openat2\n");
    const json = runProbe(["tracepoint", "--list", "sched:sched_process_e*", "--json"]);
    expect(json.stdout.trim().split("\n").map((l) => JSON.parse(l))).toEqual(
      available.filter((e) => /^sched:sched_process_e/.test(e)).map((e) => ({ tracepoint: e, category: "sched", name: e.slice(6) })),
    );
    const none = runProbe(["tracepoint", "--list", "nosuch:*"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no tracepoint matches 'nosuch:*'");
  });

  test("an unknown tracepoint gets the three closest names; usage errors exit 2", () => {
    const r = runProbe(["tracepoint", "sched:sched_proces_exec"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("probe: error: tracepoint sched:sched_proces_exec does not exist in /sys/kernel/tracing");
    expect(r.stderr).toContain("hint: did you mean sched:sched_process_exec, sched:sched_process_exit, sched:sched_process_free?");
    expect(runProbe(["tracepoint"]).code).toBe(2);
    expect(runProbe(["tracepoint", "sched:x", "--any-process", "-p", "1"]).code).toBe(2);
    const glob = runProbe(["tracepoint", "*:*"]);
    expect(glob.code).toBe(2);
    expect(glob.stderr).toMatch(/tracepoints selected; probe attaches at most 1024/);
  });
});

describe("README examples (### `probe tracepoint CAT:NAME`)", () => {
  const examples = readmeExamples("`probe tracepoint");

  test("the README shows the examples run here", () => {
    expect(examples.map((e) => e.join(" "))).toEqual([
      "tracepoint syscalls:sys_enter_execve",
      "tracepoint sched:sched_process_exit -p 1234 --json",
      "tracepoint --list syscalls:*open*",
    ]);
  });

  test("probe tracepoint syscalls:sys_enter_execve: every execve on the host, the fixture's among them", async () => {
    const f = await execFixture("/bin/true", "x");
    const p = await startProbe(examples[0]!);
    const ptrs = await f.go();
    // SIGINT: exit 0, nothing left in the kernel.
    expect((await stop(p)).code).toBe(0);
    expect(linksHeldBy(p.proc.pid!)).toEqual([]);
    expect(Bun.spawnSync(["bpftool", "prog", "list"], { stdout: "pipe" }).stdout.toString()).not.toMatch(/tp_record/);
    const line = p.out.all.find((l) => new RegExp(`\\s${f.pid}\\s+opens-fixture\\s`).test(l));
    expect(line).toContain(`filename=${ptrs.filename} "/bin/true" argv=${ptrs.argv}`);
  });

  test("probe tracepoint sched:sched_process_exit -p 1234 --json: the process's exit, then probe ends by itself", async () => {
    const f = await execFixture("/bin/true", "x");
    const p = await startProbe(examples[1]!.map((a) => (a === "1234" ? String(f.pid) : a)));
    await f.go();
    expect(await p.proc.exited).toBe(0);
    expect((await p.err.done()).join("\n")).toContain(`probe: pid ${f.pid} exited`);
    const json = (await p.out.done()).map((l) => JSON.parse(l));
    expect(json.length).toBe(1);
    expect(json[0]).toMatchObject({ event: "tracepoint", tracepoint: "sched:sched_process_exit", pid: f.pid, comm: "true" });
    expect(json[0].fields).toMatchObject({ comm: "true", pid: f.pid });
  });

  test("probe tracepoint --list 'syscalls:*open*'", () => {
    const r = runProbe(examples[2]!);
    expect(r.code).toBe(0);
    const available = readFileSync(join(TRACEFS, "available_events"), "utf8").trim().split("\n").sort();
    expect(r.stdout.trim().split("\n").sort()).toEqual(available.filter((e) => /^syscalls:.*open.*$/.test(e)));
  });
});
