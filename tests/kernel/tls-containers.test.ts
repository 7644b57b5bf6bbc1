// sslsniff and ssl-read on TLS inside containers: nginx in namespaces of its own with a private
// libssl (/opt/ssl, not on the host), found in its view; and a docker container by name, with the
// README's examples as written (--hexdump --max-bytes 1M, --json | jq .). What nginx read and
// wrote equals what curl (on the host) says it sent and received.
import { describe, expect, test } from "bun:test";
import { probeBinary, startProbe, stoppedAfterAll } from "../helpers.ts";
import { childPids, startNginxContainer, type NsContainer } from "../fixtures/container.ts";
import { ensureDocker, startDockerNginx } from "../fixtures/docker.ts";
import { TLS_WORK, sniffRecords, sniffedBy, startCurl, stopProbe, totalTable, waitUntil } from "../fixtures/tls/peers.ts";
import { readmeExamples } from "../readme.ts";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const CONTAINER_LIB = "/opt/ssl/libssl.so.3";
/** The README's examples, run as written with the PID and container name of the test's own. */
const SNIFF = readmeExamples("`probe sslsniff`");
const READ = readmeExamples("`probe ssl-read`");
const sub = (args: string[], map: Record<string, string>) => args.map((a) => map[a] ?? a);
let nginx: NsContainer;
const started = stoppedAfterAll(async () => (nginx = await startNginxContainer()));

/** One request with curl from the host, its plaintext from curl's own --trace. */
async function curlGet(port: number, path: string) {
  const c = await startCurl(`https://127.0.0.1:${port}${path}`);
  return c.go();
}

describe("a namespace container with its own libssl", () => {
  test("sslsniff --pid: nginx's reads and writes are what curl sent and received; the container's libssl is the one probed", async () => {
    const p = await startProbe(["sslsniff", "--pid", String(nginx.pid), "--json"]);
    const err = p.err.all.join("\n");
    expect(err).toContain(`nginx ${nginx.pid}: OpenSSL 3.`);
    expect(err).toContain(` in ${CONTAINER_LIB}\n`);
    expect(err).toContain(`Tracing SSL_read, SSL_read_ex, SSL_write, SSL_write_ex in ${CONTAINER_LIB}, pid ${nginx.pid} (container pid 1): kernel reports uprobe + uretprobe`);
    const a = await curlGet(nginx.port!, "/");
    const b = await curlGet(nginx.port!, "/nothing-here");
    const out = await stopProbe(p);
    expect(out.code).toBe(0);
    const recs = sniffRecords(out.out);
    const mine = sniffedBy(recs, nginx.pid);
    expect(mine.read.toString("latin1")).toBe(Buffer.concat([a.sent, b.sent]).toString("latin1"));
    expect(mine.write.toString("latin1")).toBe(Buffer.concat([a.received, b.received]).toString("latin1"));
    expect(a.received.toString()).toContain("hello from container");
    // curl's own libssl (the host's) is not traced: only nginx's records.
    expect(new Set(recs.map((r) => r.pid))).toEqual(new Set([nginx.pid]));
    for (const r of recs) {
      expect(r.library).toBe(CONTAINER_LIB);
      expect(r.nspid).toEqual([nginx.pid, 1]);
    }
  });

  test("the README shows the examples run here (the host-wide ones run in tls-read.test.ts)", () => {
    expect(SNIFF.map((e) => e.join(" "))).toEqual(["sslsniff --pid 6575", "sslsniff --container web --hexdump --max-bytes 1M", "sslsniff -c web --json | jq .", "sslsniff"]);
    expect(READ.map((e) => e.join(" "))).toEqual(["ssl-read --pid 6575", "ssl-read --container web --json", "ssl-read -d 10"]);
  });

  test("sslsniff --pid (text): the README's first example", async () => {
    const p = await startProbe(sub(SNIFF[0]!, { "6575": String(nginx.pid) }));
    const a = await curlGet(nginx.port!, "/");
    const out = await stopProbe(p);
    const text = out.out.join("\n");
    expect(text).toMatch(new RegExp(`^READ  \\d\\d:\\d\\d:\\d\\d\\.\\d{3} nginx ${nginx.pid}/${nginx.pid} \\(container pid 1\\) ${a.sent.length} bytes .*SSL_read, OpenSSL 3\\.\\d+\\.\\d+ in ${CONTAINER_LIB}$`, "m"));
    expect(text).toContain("  GET / HTTP/1.1\\r\\n");
    expect(text).toContain("  hello from container\\n");
  });

  test("ssl-read --pid: nginx's reads, counted in the container's library (JSON, and the README's example as a table)", async () => {
    const p = await startProbe(["ssl-read", "--pid", String(nginx.pid), "--json", "-i", "0.2"]);
    const a = await curlGet(nginx.port!, "/x");
    const out = await stopProbe(p);
    const f = out.out.map((l) => JSON.parse(l)).filter((r) => r.final);
    expect(f).toEqual([expect.objectContaining({ pid: nginx.pid, comm: "nginx", library: CONTAINER_LIB, bytes: a.sent.length, orphan_returns: 0, nspid: [nginx.pid, 1] })]);

    const t = await startProbe(sub(READ[0]!, { "6575": String(nginx.pid) }));
    expect(t.err.all[0]).toMatch(new RegExp(`^nginx ${nginx.pid}: OpenSSL 3\\.\\d+\\.\\d+ in ${CONTAINER_LIB}$`));
    const b = await curlGet(nginx.port!, "/y");
    const rows = totalTable((await stopProbe(t)).out);
    expect(rows).toEqual([expect.objectContaining({ PID: String(nginx.pid), NSPID: "1", COMM: "nginx", BYTES: String(b.sent.length), ORDER: "ok", LIBRARY: CONTAINER_LIB })]);
  });
});

describe("a docker container by name (real dockerd)", () => {
  test("sslsniff --container NAME: --json, --hexdump --max-bytes 1M and --json | jq . as the README writes them", async () => {
    await ensureDocker();
    const d = await startDockerNginx();
    started.push(d);
    const pid = Number(Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Pid}}", d.name], { stdout: "pipe" }).stdout.toString().trim());

    // ssl-read --container web --json
    const r = await startProbe(sub(READ[1]!, { web: d.name }));
    const q = await curlGet(d.port, "/read");
    const rows = (await stopProbe(r)).out.map((l) => JSON.parse(l)).filter((x) => x.final);
    expect(rows).toEqual([expect.objectContaining({ pid, comm: "nginx", library: CONTAINER_LIB, bytes: q.sent.length, orphan_returns: 0, nspid: [pid, 1] })]);

    let p = await startProbe(["sslsniff", "--container", d.name, "--json"]);
    expect(p.err.all.join("\n")).toContain(`Tracing SSL_read, SSL_read_ex, SSL_write, SSL_write_ex in ${CONTAINER_LIB}, pid ${pid} (container pid 1) and every other process of container ${d.name}`);
    const a = await curlGet(d.port, "/");
    let out = await stopProbe(p);
    const mine = sniffedBy(sniffRecords(out.out), pid);
    expect(mine.read.equals(a.sent)).toBe(true);
    expect(mine.write.equals(a.received)).toBe(true);

    p = await startProbe(sub(SNIFF[1]!, { web: d.name }));
    await p.err.waitFor(/up to 1048576 bytes per call/);
    const b = await curlGet(d.port, "/hex");
    out = await stopProbe(p);
    // The request's first 16 bytes as hexdump -C shows them.
    const first = b.sent.subarray(0, 16);
    const hexLine = `  00000000  ${[...first.subarray(0, 8)].map((x) => x.toString(16).padStart(2, "0")).join(" ")}  ${[...first.subarray(8)].map((x) => x.toString(16).padStart(2, "0")).join(" ")}  |${first.toString("latin1").replace(/[^\x20-\x7e]/g, ".")}|`;
    expect(out.out).toContain(hexLine);
    expect(out.out.some((l) => l.startsWith(`READ  `) && l.includes(`nginx ${pid}/`))).toBe(true);

    // sudo probe sslsniff -c web --json | jq .   (probe's stderr kept in a file, to see when it is
    // attached; stopped with Ctrl-C's SIGINT, sent to probe itself as a terminal would)
    const errFile = join(TLS_WORK, `jq-${process.pid}.err`);
    const words = sub(SNIFF[2]!, { web: d.name });
    const bar = words.indexOf("|");
    const sh = Bun.spawn(["sh", "-c", `${probeBinary()} ${words.slice(0, bar).join(" ")} 2>${errFile} | ${words.slice(bar + 1).join(" ")}`], { stdout: "pipe", stderr: "pipe" });
    await waitUntil("probe to attach", () => existsSync(errFile) && readFileSync(errFile, "utf8").includes("Tracing"), 20_000);
    const c = await curlGet(d.port, "/jq");
    await Bun.sleep(300);
    const probePid = childPids(sh.pid).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith(probeBinary()));
    process.kill(probePid!, "SIGINT");
    expect(await sh.exited).toBe(0);
    const text = await new Response(sh.stdout).text();
    const objs = text.split(/^}$/m).map((s) => s.trim()).filter(Boolean).map((s) => JSON.parse(`${s}\n}`));
    const viaJq = sniffedBy(objs, pid);
    expect(viaJq.read.equals(c.sent)).toBe(true);
    expect(viaJq.write.equals(c.received)).toBe(true);
    rmSync(errFile, { force: true });
    d.stop();
  }, 300_000);
});
