// The built binary against processes in containers: `--pid` of a containerised nginx (its own
// private libssl), `--container` through a real dockerd, nested PID namespaces, a target that
// exits mid-run, and probe itself running in a container (the image `Containerfile` builds).
import { describe, expect, test } from "bun:test";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { nsPids } from "../../lib/proc/identity.ts";
import { openLibraryInProcess } from "../../lib/proc/target.ts";
import { ElfFile } from "../../lib/elf.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { closeFd } from "../../lib/ffi/libc.ts";
import { Lines, buildC, linksHeldBy, runProbe, sh, start, startProbe, stoppedAfterAll, type Running } from "../helpers.ts";
import { ensureRootfs, httpsGet, startNginxContainer, startNsContainer, type NsContainer } from "../fixtures/container.ts";
import { ensureDocker, startDockerNginx } from "../fixtures/docker.ts";
import { importProbeImage, probeImageRoot } from "../fixtures/probe-image.ts";

const CONTAINER_LIB = "/opt/ssl/libssl.so.3";
const HOST_LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

let nginx: NsContainer;
const started = stoppedAfterAll(async () => (nginx = await startNginxContainer()));

/** The file offsets of SSL_read and SSL_read_ex in the libssl process `pid` has mapped. */
function containerOffsets(pid: number): { read: number; readEx: number; write: number } {
  const lib = openLibraryInProcess(pid, "libssl");
  try {
    expect(lib.path).toBe(CONTAINER_LIB);
    const elf = new ElfFile(lib.fd, lib.hostPathHint);
    return { read: resolveFunction(elf, "SSL_read").offset, readEx: resolveFunction(elf, "SSL_read_ex").offset, write: resolveFunction(elf, "SSL_write").offset };
  } finally {
    closeFd(lib.fd);
  }
}

/** Makes `n` requests; returns the bytes nginx's SSL_read must have returned for them. */
function requests(port: number, n: number, tag = "r"): number {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const r = httpsGet(port, `/${tag}${i}`);
    expect(r.body).toContain("404"); // nginx answered: the request went through SSL_read
    bytes += r.requestBytes;
  }
  return bytes;
}

async function stopProbe(p: Running): Promise<{ code: number; rows: Record<string, unknown>[]; stderr: string[] }> {
  await Bun.sleep(200); // nginx's last non-blocking SSL_read of each connection returns at once
  p.proc.kill("SIGINT");
  const lines = await p.out.done();
  const code = await p.proc.exited;
  return { code, rows: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)), stderr: await p.err.done() };
}

/** ssl-read's final JSON row for `pid`, checked to add up exactly for `n` requests of `bytes`. */
function expectExactReads(rows: Record<string, unknown>[], pid: number, n: number, bytes: number): Record<string, unknown> {
  const finals = rows.filter((r) => r.final);
  expect(finals.map((r) => r.pid)).toEqual([pid]); // nothing else counted (curl's host libssl!)
  const f = finals[0]!;
  expect(f.comm).toBe("nginx");
  // Exact: every request byte read once, every call returned, in order. The reads that return
  // WANT_READ/EOF are errors; at least one read per request succeeds (under load nginx may take a
  // request in two, see tests/kernel/proc-view.test.ts).
  expect(f.bytes).toBe(bytes);
  expect(f.returns).toBe(f.calls);
  expect(f.orphan_returns).toBe(0);
  expect((f.calls as number) - (f.errors as number)).toBeGreaterThanOrEqual(n);
  return f;
}

describe("--pid of a process in a container", () => {
  test("ssl-read: the container's own libssl, exact reads and bytes, NSpid, and the kernel's view", async () => {
    const off = containerOffsets(nginx.pid);
    const p = await startProbe(["ssl-read", "--pid", String(nginx.pid), "--json", "-i", "0.2"]);
    try {
      expect(p.err.all.join("\n")).toContain(`Tracing SSL_read, SSL_read_ex in ${CONTAINER_LIB}, pid ${nginx.pid} (container pid 1): kernel reports uprobe + uretprobe [uprobe_multi]`);
      // The kernel: one entry and one return uprobe_multi link, on the container's file at its
      // SSL_read/SSL_read_ex offsets, filtered to nginx; nothing on the host's libssl.
      const links = linksHeldBy(p.proc.pid!);
      expect(links.map((l) => l.uprobe?.kind).sort()).toEqual(["uprobe", "uretprobe"]);
      for (const l of links) {
        expect(l.type).toBe("uprobe_multi");
        expect(l.uprobe!.path).toBe(CONTAINER_LIB);
        expect(l.uprobe!.path).not.toBe(HOST_LIBSSL);
        expect([...l.uprobe!.offsets].sort((a, b) => a - b)).toEqual([off.read, off.readEx].sort((a, b) => a - b));
        expect(l.uprobe!.pid).toBe(nginx.pid);
      }
      const bytes = requests(nginx.port!, 6);
      const { code, rows, stderr } = await stopProbe(p);
      expect(code).toBe(0);
      const f = expectExactReads(rows, nginx.pid, 6, bytes);
      expect(f.nspid).toEqual([nginx.pid, 1]);
      expect(stderr.join("\n")).not.toContain("error");
      expect(linksHeldBy(p.proc.pid!)).toEqual([]);
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("ssl-read human output has an NSPID column", async () => {
    const p = await startProbe(["ssl-read", "--pid", String(nginx.pid), "-i", "0.2"]);
    requests(nginx.port!, 1, "h");
    const { code } = await stopProbe(p);
    expect(code).toBe(0);
    const out = p.out.all.join("\n");
    expect(out).toMatch(/^TOTAL\s+PID\s+NSPID\s+COMM/m);
    expect(out).toMatch(new RegExp(`^\\s+${nginx.pid}\\s+1\\s+nginx\\s+\\d+`, "m"));
  });

  test("uprobe libssl SSL_write --ret: nginx's responses, with nspid, at the container library's offset", async () => {
    const off = containerOffsets(nginx.pid);
    const p = await startProbe(["uprobe", "libssl", "SSL_write", "--ret", "--pid", String(nginx.pid), "--json"]);
    try {
      expect(p.err.all.join("\n")).toContain(`Tracing SSL_write (calls and returns) in ${CONTAINER_LIB} at offset 0x${off.write.toString(16)}, pid ${nginx.pid} (container pid 1)`);
      const links = linksHeldBy(p.proc.pid!);
      expect(links.map((l) => [l.uprobe?.kind, l.uprobe?.path, l.uprobe?.offsets]).sort()).toEqual([
        ["uprobe", CONTAINER_LIB, [off.write]],
        ["uretprobe", CONTAINER_LIB, [off.write]],
      ]);
      const n = 4;
      const bodies = [];
      for (let i = 0; i < n; i++) bodies.push(httpsGet(nginx.port!, `/w${i}`));
      const { code, rows } = await stopProbe(p);
      expect(code).toBe(0);
      const calls = rows.filter((e) => e.event === "call");
      const rets = rows.filter((e) => e.event === "return");
      // nginx writes each response (headers and body) with one SSL_write.
      expect(calls.length).toBe(n);
      expect(rets.length).toBe(n);
      for (const e of rows) {
        expect(e.pid).toBe(nginx.pid);
        expect(e.nspid).toEqual([nginx.pid, 1]);
        expect(e.comm).toBe("nginx");
        expect(e.function).toBe("SSL_write");
      }
      for (const r of rets) expect(r.ret as number).toBeGreaterThan(100); // the bytes of a 404 response
    } finally {
      p.proc.kill("SIGKILL");
    }
  });

  test("nested PID namespaces: NSpid at every level (3)", async () => {
    const nested = await startNginxContainer({ nested: true });
    started.push(nested);
    const chain = nsPids(nested.pid);
    expect(chain.length).toBe(3);
    expect(chain[2]).toBe(1);
    const p = await startProbe(["ssl-read", "--pid", String(nested.pid), "--json", "-i", "0.2"]);
    expect(p.err.all.join("\n")).toContain(`pid ${nested.pid} (container pids ${chain[1]} > 1)`);
    const bytes = requests(nested.port!, 3);
    const { code, rows } = await stopProbe(p);
    expect(code).toBe(0);
    expect(expectExactReads(rows, nested.pid, 3, bytes).nspid).toEqual(chain);

    const u = await startProbe(["uprobe", "libssl", "SSL_write", "--pid", String(nested.pid), "--json"]);
    httpsGet(nested.port!, "/n");
    const ur = await stopProbe(u);
    expect(ur.rows.length).toBe(1);
    expect(ur.rows[0]!.nspid).toEqual(chain);
    await nested.stop();
  });

  test("the target exits mid-run: probe says so and exits 0 after its final counts", async () => {
    const victim = await startNginxContainer();
    started.push(victim);
    const s = await startProbe(["ssl-read", "--pid", String(victim.pid), "--json", "-i", "0.2"]);
    const u = await startProbe(["uprobe", "libssl", "SSL_read", "--ret", "--pid", String(victim.pid), "--json"]);
    const bytes = requests(victim.port!, 2);
    await Bun.sleep(200);
    process.kill(victim.pid, "SIGKILL");
    const t0 = performance.now();
    expect(await s.proc.exited).toBe(0);
    expect(await u.proc.exited).toBe(0);
    console.log(`target exit: probe ended ${(performance.now() - t0).toFixed(0)} ms after the kill`);
    expect(await s.err.done()).toContain(`probe: pid ${victim.pid} exited`);
    expect(await u.err.done()).toContain(`probe: pid ${victim.pid} exited`);
    const rows = (await s.out.done()).map((l) => JSON.parse(l));
    expectExactReads(rows, victim.pid, 2, bytes);
    const events = (await u.out.done()).map((l) => JSON.parse(l));
    // SSL_read returns an int: -1 (WANT_READ) arrives as 0xffffffff in RAX.
    expect(events.filter((e) => e.event === "return" && ((e.ret as number) | 0) > 0).length).toBe(2);
    await victim.stop();
  });

  test("errors: a PID that is gone, a library the process does not have, --pid with --container", () => {
    let r = runProbe(["ssl-read", "--pid", "999999"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^probe: error: pid 999999 does not exist/m);
    r = runProbe(["uprobe", "libnosuchlib", "f", "--pid", String(nginx.pid)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^probe: error: process ${nginx.pid} has no libnosuchlib mapped`, "m"));
    expect(r.stderr.trim().split("\n").filter((l) => l.startsWith("probe: error:")).length).toBe(1);
    // The host's libssl path is not the container's: looked up in the process's root, it is missing there.
    r = runProbe(["uprobe", HOST_LIBSSL, "SSL_read", "--pid", String(nginx.pid)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${HOST_LIBSSL} does not exist in the view of process ${nginx.pid}`);
    r = runProbe(["ssl-read", "--pid", String(nginx.pid), "--container", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--pid and --container both name the process");
    // The executable by its bare name, as the process sees it.
    r = runProbe(["uprobe", "nginx", "ngx_ssl_recv", "--pid", String(nginx.pid), "-d", "0.3"]);
    expect(r.stderr).toContain(`in /usr/sbin/nginx at offset`);
    expect(r.code).toBe(0);
  });

  test("--wait: a library the process maps later is probed from the start, in the file its loader will load (the container's own)", async () => {
    const late = await startNsContainer(["/bin/sh", "-c", "sleep 1; LD_PRELOAD=/opt/ssl/libssl.so.3 exec /bin/sleep 1000"]);
    started.push(late);
    // The fixture returns when a /bin/sh runs at the container's depth: the host's, running the
    // pivot script, may not have exec'd the container's yet (its view would be the host's).
    const containerSh = statSync(join(ensureRootfs().root, "bin/sh")).ino;
    for (let i = 0; i < 100 && statSync(`/proc/${late.pid}/exe`).ino !== containerSh; i++) await Bun.sleep(20);
    const p = await startProbe(["uprobe", "libssl", "SSL_read", "--pid", String(late.pid), "--wait", "-d", "2"]);
    const err = (await p.err.done()).join("\n");
    expect(err).toContain(`probe: pid ${late.pid} (container pid 1) has not mapped libssl yet (/proc/${late.pid}/maps): probing ${CONTAINER_LIB}`);
    expect(err).toContain(`Tracing SSL_read in ${CONTAINER_LIB}`);
    expect(err).not.toContain("moved there");
    expect(await p.proc.exited).toBe(0);
    await late.stop();
  });
});

describe("a short-lived process in a PID namespace", () => {
  test("every event and the final report carry its NSpid, though it exits before they are printed", async () => {
    const calls = buildC("calls", "calls.c");
    const u = start(["unshare", "--pid", "--fork", "--mount-proc", calls, "3"]);
    await u.out.waitFor(/^ready 1$/); // PID 1 of its namespace
    const host = Number(sh(`pgrep -P ${u.proc.pid}`).trim());
    const p = await startProbe(["uprobe", calls, "target_fn", "--ret", "--pid", String(host), "--json"]);
    u.proc.stdin.write("go\n");
    u.proc.stdin.end();
    const events = (await p.out.done()).map((l) => JSON.parse(l));
    expect(events).toHaveLength(6);
    for (const e of events) expect(e.nspid).toEqual([host, 1]);
  });
});

describe("probe in a container", () => {
  test("in its own namespaces with the host's /proc, it attaches to nginx in a sibling container", async () => {
    const root = probeImageRoot();
    try {
      // Own mount and PID namespaces (probe is PID 1 there), the host's /proc and /sys mounted.
      const c = await startNsContainer(["/probe", "ssl-read", "--pid", String(nginx.pid), "--json", "-i", "0.2"], { root, hostProc: true, hostSys: true, stdout: "pipe" });
      started.push(c);
      expect(nsPids(c.pid)).toEqual([c.pid, 1]);
      const out = new Lines(c.proc.stdout as ReadableStream<Uint8Array>);
      const err = new Lines(c.proc.stderr as ReadableStream<Uint8Array>);
      await err.waitFor(/Tracing SSL_read/, 20_000);
      expect(err.all.join("\n")).toContain(`in ${CONTAINER_LIB}, pid ${nginx.pid} (container pid 1)`);
      const bytes = requests(nginx.port!, 3, "c");
      await Bun.sleep(200);
      process.kill(c.pid, "SIGINT"); // PID 1 of its namespace gets it: probe handles SIGINT
      const rows = (await out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      expectExactReads(rows, nginx.pid, 3, bytes);
      await c.stop();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("container engines (real dockerd)", () => {
  test("--container NAME, --any-process across two containers of one image, and probe's own image under docker run", async () => {
    await ensureDocker();
    const d1 = await startDockerNginx();
    started.push(d1);
    const d2 = await startDockerNginx();
    started.push(d2);
    const inspectPid = (name: string) => Number(Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Pid}}", name], { stdout: "pipe" }).stdout.toString().trim());
    const pid1 = inspectPid(d1.name);
    const pid2 = inspectPid(d2.name);

    // --container: only that container's nginx, through docker's overlay root.
    let p = await startProbe(["ssl-read", "--container", d1.name, "--json", "-i", "0.2"]);
    expect(p.err.all.join("\n")).toContain(`in ${CONTAINER_LIB}, pid ${pid1} (container pid 1)`);
    let bytes = requests(d1.port, 3);
    requests(d2.port, 2); // the other container: not counted
    let r = await stopProbe(p);
    expect(r.code).toBe(0);
    expect(expectExactReads(r.rows, pid1, 3, bytes).nspid).toEqual([pid1, 1]);

    // --any-process: the layer file is one inode for both containers; both are counted.
    p = await startProbe(["ssl-read", "--container", d1.name, "--any-process", "--json", "-i", "0.2"]);
    expect(p.err.all.join("\n")).toContain("and every process using that file");
    const links = linksHeldBy(p.proc.pid!);
    expect(links.length).toBe(2);
    for (const l of links) expect(l.uprobe!.pid).toBe(0); // no kernel PID filter
    bytes = requests(d1.port, 2);
    const bytes2 = requests(d2.port, 3);
    r = await stopProbe(p);
    expect(r.code).toBe(0);
    const finals = r.rows.filter((row) => row.final && row.comm === "nginx");
    const byPid = new Map(finals.map((row) => [row.pid as number, row]));
    expect((byPid.get(pid1)!.calls as number) - (byPid.get(pid1)!.errors as number)).toBe(2);
    expect(byPid.get(pid1)!.bytes).toBe(bytes);
    expect((byPid.get(pid2)!.calls as number) - (byPid.get(pid2)!.errors as number)).toBe(3);
    expect(byPid.get(pid2)!.bytes).toBe(bytes2);
    expect(byPid.get(pid2)!.nspid).toEqual([pid2, 1]);

    // --container NAME --wait before the container exists: probe waits for it, then for its libssl.
    const lateName = `probe-test-late-${process.pid}`;
    p = await startProbe(["ssl-read", "--container", lateName, "--wait", "--json", "-i", "0.2"]); // returns at the "Ctrl-C to stop" of the waiting line
    expect(p.err.all.join("\n")).toContain(`probe: waiting for container ${lateName} to run...`);
    const late = await startDockerNginx(lateName);
    started.push(late);
    await p.err.waitFor(/Tracing SSL_read/, 30_000);
    const latePid = inspectPid(lateName);
    // The fixture's readiness check (one GET /) ran while probe was attaching: probe attaches
    // within milliseconds of nginx mapping libssl, so it is usually counted as well.
    const readiness = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${late.port}\r\n\r\n`.length;
    bytes = requests(late.port, 2);
    r = await stopProbe(p);
    expect(r.code).toBe(0);
    const lateRow = r.rows.find((row) => row.final && row.pid === latePid)!;
    expect([bytes, bytes + readiness]).toContain(lateRow.bytes as number);
    expect(expectExactReads(r.rows, latePid, 2, lateRow.bytes as number).nspid).toEqual([latePid, 1]);
    late.stop();

    // A container no engine knows: one error line naming every engine asked.
    const e = runProbe(["ssl-read", "--container", `no-such-${process.pid}`]);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(new RegExp(`^probe: error: no running container no-such-${process.pid} \\(asked docker, .*docker: .*No such container`, "m"));

    // probe's image (the Containerfile's contents, imported) under docker run, attached to d1's nginx.
    const root = probeImageRoot();
    try {
      const image = importProbeImage(root);
      const name = `probe-test-runner-${process.pid}`;
      // Docker's default capabilities are not enough, and say so.
      const denied = Bun.spawnSync(["docker", "run", "--rm", "--pid=host", image, "ssl-read", "--pid", String(pid1), "-d", "1"], { stdout: "pipe", stderr: "pipe" });
      expect(denied.exitCode).toBe(1);
      expect(denied.stderr.toString()).toMatch(/^probe: error: probe needs root, or CAP_BPF and CAP_PERFMON/m);
      // Docker 20.10 (here) knows neither CAP_BPF nor CAP_PERFMON and its seccomp profile allows
      // bpf() and perf_event_open() only with CAP_SYS_ADMIN; from Docker 23, BPF + PERFMON do.
      const run = Bun.spawn(
        ["docker", "run", "--rm", "--name", name, "--pid=host", "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE",
          "-v", "/sys/fs/bpf:/sys/fs/bpf", "-v", "/sys/kernel/tracing:/sys/kernel/tracing", image, "ssl-read", "--pid", String(pid1), "--json", "-i", "0.2"],
        { stdout: "pipe", stderr: "pipe" },
      );
      started.push({ stop: () => Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" }) });
      const dp: Running = { proc: run as unknown as Running["proc"], out: new Lines(run.stdout), err: new Lines(run.stderr) };
      await dp.err.waitFor(/Tracing SSL_read/, 30_000);
      expect(dp.err.all.join("\n")).toContain(`in ${CONTAINER_LIB}, pid ${pid1} (container pid 1)`);
      bytes = requests(d1.port, 3, "d");
      await Bun.sleep(200);
      Bun.spawnSync(["docker", "kill", "-s", "INT", name], { stdout: "ignore", stderr: "ignore" });
      const rows = (await dp.out.done()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      expect(await run.exited).toBe(0);
      expectExactReads(rows, pid1, 3, bytes);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    d1.stop();
    d2.stop();
  }, 300_000);
});
