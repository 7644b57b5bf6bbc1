// `probe ssl-read` on every TLS stack: exact calls, returns and bytes for a Go client (plain and
// stripped: it counts its own Read calls), python3 (its own recv calls), node, gnutls-cli and NSS's
// tstclnt (calls counted by bpftrace's own uprobes, bytes from the peer's log). What was found is
// said first (NSS only for a process that maps NSS's libssl3 besides NSPR); a
// process without TLS gets a message naming what was looked for and where; --lib announces exactly
// what it attached; --wait waits for a process to load its TLS; without --pid every TLS of the
// host is covered, executables with TLS linked in included.
import { afterAll, describe, expect, test } from "bun:test";
import { linksHeldBy, probeBinary, runProbe, start, startProbe, testCert } from "../helpers.ts";
import {
  NODE, PY, bpftraceCalls, patternBody, startClient, textSniffedBy, totalTable, startGnutlsCli, startGnutlsServ, startSServer, startServer, stopProbe, type PeerServer, type ServerKind,
} from "../fixtures/tls/peers.ts";
import { LIBNSPR, LIBSSL3, nssPackageVersion, startTstclnt } from "../fixtures/tls/nss.ts";
import { readmeExamples } from "../readme.ts";

const started: { stop(): void }[] = [];
afterAll(() => {
  for (const s of started) s.stop();
});

async function server(kind: ServerKind): Promise<PeerServer> {
  const s = await startServer(kind);
  started.push(s);
  return s;
}

type Row = Record<string, unknown>;
function finals(lines: string[], pid: number): Row[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Row).filter((r) => r.final && r.pid === pid);
}

describe("ssl-read --pid: exact on every stack", () => {
  probeBinary();
  for (const kind of ["go", "go-stripped"] as const) {
    test(`Go crypto/tls (${kind === "go" ? "with symbols" : "stripped: names from .gopclntab"}): the client's own count of its Read calls`, async () => {
      const srv = await server(kind);
      const cli = await startClient(kind, srv.port, "/size/100000");
      const p = await startProbe(["ssl-read", "--pid", String(cli.pid), "--json", "-i", "0.2", "--verify-order"]);
      const res = await cli.go();
      const out = await stopProbe(p);
      expect(out.code).toBe(0);
      const f = finals(out.out, cli.pid);
      expect(f).toEqual([{ event: "ssl-read", pid: cli.pid, comm: kind === "go" ? "gotls" : "gotls-stripped", library: expect.stringMatching(kind === "go" ? /\/gotls$/ : /\/gotls-stripped$/), tls: expect.stringMatching(/^Go 1\.\d+\.\d+ crypto\/tls$/),
        calls: res.calls, returns: res.calls, bytes: res.bytes, errors: res.errors, orphan_returns: 0, final: true }]);
      expect(res.calls).toBeGreaterThan(5); // 100 KB in 16 KiB records, and the EOF
      expect(out.err.join("\n")).toMatch(/Tracing crypto\/tls\.\(\*Conn\)\.Read in .*: kernel reports uprobe \[uprobe_multi\] \(returns at \d+ RET instructions, not uretprobes\)/);
    });
  }

  test("python3 (shared libssl, SSL_read_ex): its own count of recv calls", async () => {
    const srv = await server("python");
    const cli = await startClient("python", srv.port, "/size/50000");
    const p = await startProbe(["ssl-read", "--pid", String(cli.pid), "--json", "-i", "0.2", "--verify-order"]);
    const res = await cli.go();
    const out = await stopProbe(p);
    expect(out.code).toBe(0);
    expect(finals(out.out, cli.pid)).toEqual([{ event: "ssl-read", pid: cli.pid, comm: "python3", library: "/usr/lib/x86_64-linux-gnu/libssl.so.3", tls: expect.stringMatching(/^OpenSSL 3\./),
      calls: res.calls, returns: res.calls, bytes: res.bytes, errors: res.errors, orphan_returns: 0, final: true }]);
    expect(out.err[0]).toMatch(new RegExp(`^python3 ${cli.pid}: OpenSSL 3\\.\\d+\\.\\d+ in /usr/lib/x86_64-linux-gnu/libssl\\.so\\.3$`));
  });

  test("node (OpenSSL linked into /usr/bin/node, no libssl mapped): calls as bpftrace counts them, bytes as the server sent", async () => {
    const srv = await server("node-tls");
    const cli = await startClient("node-https", srv.port, "/size/30000");
    const p = await startProbe(["ssl-read", "--pid", String(cli.pid), "--json", "-i", "0.2", "--verify-order"]);
    const bt = await bpftraceCalls(cli.pid, NODE, ["SSL_read", "SSL_read_ex"]);
    await cli.go();
    const conn = await srv.conn();
    await Bun.sleep(200);
    const calls = await bt.stop();
    const out = await stopProbe(p);
    expect(out.code).toBe(0);
    const f = finals(out.out, cli.pid);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ comm: "node", library: "/usr/bin/node", calls, returns: calls, bytes: conn.sent.length, orphan_returns: 0 });
    expect(calls).toBeGreaterThan(0);
    expect(out.err[0]).toMatch(new RegExp(`^node ${cli.pid}: OpenSSL 3\\.\\d+\\.\\d+ linked into /usr/bin/node$`));
    expect(out.err.join("\n")).toContain(`Tracing SSL_read, SSL_read_ex in /usr/bin/node, pid ${cli.pid}: kernel reports uprobe + uretprobe`);
  });

  test("gnutls-cli (GnuTLS gnutls_record_recv): calls as bpftrace counts them, bytes as echoed", async () => {
    const srv = await startGnutlsServ();
    started.push(srv);
    const cli = await startGnutlsCli(srv.port);
    const p = await startProbe(["ssl-read", "--pid", String(cli.pid), "--json", "-i", "0.2", "--verify-order"]);
    const lib = /\S*libgnutls\.so\.30\S*/.exec(p.err.all.join("\n"))![0];
    const bt = await bpftraceCalls(cli.pid, lib, ["gnutls_record_recv"]);
    const data = "one line\nand another, longer line of text\n";
    await cli.send(data);
    const calls = await bt.stop();
    const out = await stopProbe(p);
    expect(out.code).toBe(0);
    const f = finals(out.out, cli.pid);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ comm: "gnutls-cli", library: lib, tls: expect.stringMatching(/^GnuTLS 3\./), calls, returns: calls, bytes: data.length, orphan_returns: 0 });
    expect(calls).toBeGreaterThan(0);
  });

  test("NSS's tstclnt (PR_Read of its stdin, PR_Recv of the SSL socket, in libnspr4.so): calls as bpftrace counts them, bytes as it was given and s_server sent", async () => {
    const srv = await startSServer();
    started.push(srv);
    const cli = await startTstclnt(srv.port);
    started.push(cli);
    const p = await startProbe(["ssl-read", "--pid", String(cli.pid), "--json", "-i", "0.2", "--verify-order"]);
    const bt = await bpftraceCalls(cli.pid, LIBNSPR, ["PR_Read", "PR_Recv"]);
    const request = Buffer.from("GET /count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const response = Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"), patternBody(20000)]);
    await cli.send(request);
    expect((await srv.answer(response)).equals(request)).toBe(true);
    await cli.received(response.length);
    await Bun.sleep(200);
    const calls = await bt.stop();
    const out = await stopProbe(p);
    cli.stop();
    expect(out.code).toBe(0);
    const f = finals(out.out, cli.pid);
    expect(f).toHaveLength(1);
    // Its reads: the request from its stdin, the response from the server.
    expect(f[0]).toMatchObject({ comm: "tstclnt", library: LIBNSPR, tls: `NSS ${nssPackageVersion()}`, calls, returns: calls, bytes: request.length + response.length, orphan_returns: 0 });
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(out.err[0]).toBe(`tstclnt ${cli.pid}: NSS ${nssPackageVersion()} (${LIBSSL3}, I/O through ${LIBNSPR})`);
    // Reads only: libssl3.so (SSL_ForceHandshake) is not attached.
    expect(out.err.filter((l) => l.startsWith("Tracing"))).toEqual([`Tracing PR_Read, PR_Recv in ${LIBNSPR}, pid ${cli.pid}: kernel reports uprobe + uretprobe [uprobe_multi]`]);
  });

  test("Go: a Read already running when probes attach is neither a call nor an order violation", async () => {
    const srv = await server("go");
    const { cert } = testCert();
    // s_client connects and handshakes, then waits for stdin: the server's goroutine sits in Read.
    const sc = start(["openssl", "s_client", "-quiet", "-crlf", "-CAfile", cert, "-connect", `127.0.0.1:${srv.port}`]);
    await Bun.sleep(500);
    const p = await startProbe(["ssl-read", "--pid", String(srv.pid), "--json", "-i", "0.2", "--verify-order"]);
    sc.proc.stdin.write("GET /size/10 HTTP/1.1\n\n");
    sc.proc.stdin.flush();
    const conn = await srv.conn();
    sc.proc.kill();
    const out = await stopProbe(p);
    expect(out.code).toBe(0);
    const f = finals(out.out, srv.pid);
    // The one Read that got the request had started before the probes: not counted, said apart.
    expect(conn.reads).toBe(1);
    expect(f).toEqual([expect.objectContaining({ calls: 0, returns: 0, bytes: 0, orphan_returns: 0, inflight_returns: 1 })]);
  });
});

describe("what was found, what was looked for", () => {
  test("a process without TLS: ssl-read and sslsniff say what they looked for and where (exit 1)", () => {
    const sleeper = start(["sleep", "60"]);
    started.push({ stop: () => sleeper.proc.kill() });
    for (const cmd of ["ssl-read", "sslsniff"]) {
      const r = runProbe([cmd, "--pid", String(sleeper.proc.pid), "-d", "1"]);
      expect(r.code).toBe(1);
      const err = r.stderr.trim().split("\n");
      expect(err[0]).toMatch(new RegExp(`^probe: error: no TLS found in pid ${sleeper.proc.pid}: looked for a shared OpenSSL libssl or GnuTLS libgnutls, and for OpenSSL/BoringSSL \\(SSL_read, SSL_write\\), GnuTLS \\(gnutls_record_recv, gnutls_record_send\\), Go crypto/tls \\(\\(\\*Conn\\)\\.Read, \\(\\*Conn\\)\\.Write\\), NSS \\(libssl3's SSL_ImportFD with NSPR's PR_Read, PR_Write\\) in the symbols of the \\d+ files process ${sleeper.proc.pid} \\(sleep\\) maps executable, its executable /usr/bin/sleep included\\.$`));
      expect(r.stderr).toMatch(/hint: .*--wait/);
    }
  });

  test("NSS: a process that maps NSPR alone is no TLS user; once it maps NSS's libssl3.so too, it is (python3 loading them with ctypes)", async () => {
    const script = `import ctypes, sys\nctypes.CDLL("${LIBNSPR}")\nprint("nspr", flush=True)\nsys.stdin.readline()\nctypes.CDLL("${LIBSSL3}")\nprint("nss", flush=True)\nsys.stdin.readline()\n`;
    const py = start([PY, "-c", script]);
    started.push({ stop: () => py.proc.kill() });
    await py.out.waitFor(/^nspr/);
    const alone = runProbe(["ssl-read", "--pid", String(py.proc.pid), "-d", "0.3"]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toContain(`no TLS found in pid ${py.proc.pid}: looked for a shared OpenSSL libssl or GnuTLS libgnutls, and for OpenSSL/BoringSSL (SSL_read, SSL_write), GnuTLS (gnutls_record_recv, gnutls_record_send), Go crypto/tls ((*Conn).Read, (*Conn).Write), NSS (libssl3's SSL_ImportFD with NSPR's PR_Read, PR_Write) in the symbols of`);
    py.proc.stdin.write("\n");
    py.proc.stdin.flush();
    await py.out.waitFor(/^nss/);
    const both = runProbe(["ssl-read", "--pid", String(py.proc.pid), "-d", "0.3"]);
    expect(both.code).toBe(0);
    expect(both.stderr.split("\n")[0]).toBe(`python3 ${py.proc.pid}: NSS ${nssPackageVersion()} (${LIBSSL3}, I/O through ${LIBNSPR})`);
  });

  test("--lib libnspr4.so is taken for NSS's I/O; --lib libssl3.so says where NSS's data goes", () => {
    const r = runProbe(["ssl-read", "--lib", LIBNSPR, "-d", "0.3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Tracing PR_Read, PR_Recv in ${LIBNSPR}: kernel reports uprobe + uretprobe [uprobe_multi]`);
    const s = runProbe(["ssl-read", "--lib", LIBSSL3, "-d", "0.3"]);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain(`${LIBSSL3} is NSS's SSL library: the data of its connections is read and written through NSPR's PR_Read, PR_Write, PR_Recv and PR_Send, in libnspr4.so`);
  });

  test("--lib libgnutls-openssl.so.27 announces exactly what it attached (SSL_read: it has no SSL_read_ex)", () => {
    const r = runProbe(["ssl-read", "--lib", "libgnutls-openssl.so.27", "-d", "0.3"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Tracing SSL_read in (\/usr)?\/lib\/x86_64-linux-gnu\/libgnutls-openssl\.so\.27[\d.]*: kernel reports uprobe \+ uretprobe \[uprobe_multi\]$/m);
  });

  test("the kernel's links hold exactly the functions announced", async () => {
    const srv = await server("python");
    const cli = await startClient("python", srv.port, "/size/10");
    const p = await startProbe(["sslsniff", "--pid", String(cli.pid), "--json"]);
    const links = linksHeldBy(p.proc.pid!);
    const tracing = p.err.all.find((l) => l.startsWith("Tracing"))!;
    expect(tracing).toBe(`Tracing SSL_read, SSL_read_ex, SSL_write, SSL_write_ex in /usr/lib/x86_64-linux-gnu/libssl.so.3, pid ${cli.pid}: kernel reports uprobe + uretprobe [uprobe_multi]`);
    expect(links.map((l) => [l.uprobe!.kind, l.uprobe!.offsets.length]).sort()).toEqual([["uprobe", 4], ["uretprobe", 4]]);
    await cli.go();
    await stopProbe(p);
  });

  test("--wait: a process that loads its TLS library later is probed at once in the libssl its loader would load, then traced exactly", async () => {
    const srv = await server("python");
    // python3 without ssl imported maps no libssl; it imports ssl on the first line, connects on the second.
    const script = `import sys, socket\nprint("ready", flush=True)\nsys.stdin.readline()\nimport ssl\nprint("imported", flush=True)\nsys.stdin.readline()\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\nc = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${srv.port})))\nc.sendall(b"GET /size/2000 HTTP/1.1\\r\\n\\r\\n")\nn = 0\nk = 0\nwhile True:\n    b = c.recv(65536)\n    k += 1\n    if not b:\n        break\n    n += len(b)\nprint("done", k, n, flush=True)\n`;
    const py = start([PY, "-c", script]);
    started.push({ stop: () => py.proc.kill() });
    await py.out.waitFor(/^ready/);
    const p = start([probeBinary(), "ssl-read", "--pid", String(py.proc.pid), "--wait", "--json", "-i", "0.2"]);
    // Probed at once in the libssl its loader would load: the reads right after the import count.
    await p.err.waitFor(/has not loaded a TLS library yet .*: probing (\/usr)?\/lib\/x86_64-linux-gnu\/libssl\.so\.3 \(OpenSSL/);
    await p.err.waitFor(/^Tracing SSL_read, SSL_read_ex in (\/usr)?\/lib\/x86_64-linux-gnu\/libssl\.so\.3/);
    py.proc.stdin.write("\n");
    py.proc.stdin.flush();
    await py.out.waitFor(/^imported/);
    py.proc.stdin.write("\n");
    py.proc.stdin.flush();
    const [, k, n] = await py.out.waitFor(/^done (\d+) (\d+)/);
    const out = await stopProbe(p);
    expect(finals(out.out, py.proc.pid)).toEqual([expect.objectContaining({ calls: Number(k), returns: Number(k), bytes: Number(n), errors: 1 })]);
  });
});

describe("every TLS process on the host (no --pid)", () => {
  test("ssl-read -d 10 and sslsniff, as the README writes them, cover node's executable and a stripped Go program besides the shared libraries", async () => {
    const nodeSrv = await server("node-tls");
    const goSrv = await server("go");
    const nodeCli = await startClient("node-https", nodeSrv.port, "/size/3000");
    const goCli = await startClient("go-stripped", goSrv.port, "/size/3000");
    const sr = await startProbe(readmeExamples("`probe ssl-read`").find((e) => e.includes("-d"))!);
    const sn = await startProbe(readmeExamples("`probe sslsniff`").find((e) => e.length === 1)!);
    for (const e of [sr.err.all, sn.err.all]) {
      const text = e.join("\n");
      expect(text).toMatch(/^TLS on this host: \d+ files, used by \d+ running processes/m);
      expect(text).toMatch(new RegExp(`^  OpenSSL 3\\.\\d+\\.\\d+ linked into /usr/bin/node: .*node ${nodeCli.pid}`, "m"));
      expect(text).toMatch(new RegExp(`^  Go 1\\.\\d+\\.\\d+ crypto/tls linked into .*/gotls-stripped: .*gotls-stripped ${goCli.pid}`, "m"));
      expect(text).toMatch(/Tracing .* in (\/usr)?\/lib\/x86_64-linux-gnu\/libssl\.so\.3: kernel reports uprobe \+ uretprobe/);
    }
    await nodeCli.go();
    const nodeConn = await nodeSrv.conn();
    const goRes = await goCli.go();
    const snOut = await stopProbe(sn);
    expect(snOut.code).toBe(0);
    const onNode = textSniffedBy(snOut.out, nodeCli.pid);
    expect(onNode.read.equals(nodeConn.sent)).toBe(true);
    expect(onNode.write.equals(nodeConn.received)).toBe(true);
    const onGo = textSniffedBy(snOut.out, goCli.pid);
    expect(onGo.read.equals(goRes.received!)).toBe(true);
    expect(onGo.write.equals(goRes.sent!)).toBe(true);
    expect(patternBody(3000).equals(onGo.read.subarray(onGo.read.length - 3000))).toBe(true);
    // ssl-read ends on its own after 10 s; its totals hold both.
    expect(await sr.proc.exited).toBe(0);
    const rows = totalTable(await sr.out.done());
    expect(rows.find((r) => r.PID === String(nodeCli.pid))).toMatchObject({ COMM: "node", BYTES: String(nodeConn.sent.length), ORDER: "ok", LIBRARY: "/usr/bin/node" });
    expect(rows.find((r) => r.PID === String(goCli.pid))).toMatchObject({ COMM: "gotls-stripped", CALLS: String(goRes.calls), RETURNS: String(goRes.calls), BYTES: String(goRes.bytes), ERRORS: String(goRes.errors), ORDER: "ok" });
  }, 60_000);
});
