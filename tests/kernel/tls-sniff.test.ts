// `probe sslsniff` against real TLS clients and servers: what it shows each process read and
// wrote equals, byte for byte, what that process's own log (or its peer's) says it sent and
// received — Go crypto/tls (plain and stripped), Python's ssl, node (its OpenSSL is inside the
// node executable), curl against openssl s_server, gnutls-cli against gnutls-serv, NSS's tstclnt
// against openssl s_server. Big payloads
// arrive whole up to --max-bytes and are cut and flagged past it; the text and hexdump outputs
// say every byte exactly.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { probeBinary, startProbe, sh } from "../helpers.ts";
import {
  TLS_WORK, bpftraceCalls, patternBody, sniffRecords, sniffedBy, textBlocks, unescapeLines, startClient, startCurl, startGnutlsCli, startGnutlsServ, startSServer, startServer, stopProbe,
  type ClientKind, type PeerServer, type ServerKind,
} from "../fixtures/tls/peers.ts";
import { LIBNSPR, LIBSSL3, nssPackageVersion, startSelfservRenegotiating, startTstclnt } from "../fixtures/tls/nss.ts";

const started: { stop(): void }[] = [];
afterAll(() => {
  for (const s of started) s.stop();
});

function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Equal bytes; small ones compared as text so a failure shows where. */
function expectSame(got: Buffer, want: Buffer): void {
  if (want.length <= 4096) expect(got.toString("latin1")).toBe(want.toString("latin1"));
  else expect({ length: got.length, sha256: sha(got) }).toEqual({ length: want.length, sha256: sha(want) });
}

async function server(kind: ServerKind): Promise<PeerServer> {
  const s = await startServer(kind);
  started.push(s);
  return s;
}

const PAIRS: [client: ClientKind, server: ServerKind, what: string][] = [
  ["go", "go", "Go crypto/tls client and server"],
  ["go-stripped", "go-stripped", "Go crypto/tls client and server, stripped (-ldflags='-s -w')"],
  ["python", "python", "python3 ssl client and server (shared libssl, SSL_read_ex/SSL_write_ex)"],
  ["node-https", "node-tls", "node https client (OpenSSL in /usr/bin/node) against node's raw TLS server"],
  ["node-tls", "node-https", "node https server against node's raw TLS client"],
];

describe("sslsniff: the plaintext is what each side sent and received", () => {
  probeBinary();
  for (const [ck, sk, what] of PAIRS) {
    test(what, async () => {
      const srv = await server(sk);
      const cli = await startClient(ck, srv.port, "/size/5000");
      const ps = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json"]);
      const pc = await startProbe(["sslsniff", "--pid", String(cli.pid), "--json"]);
      const res = await cli.go();
      // Whichever side logs raw bytes says what went over the connection.
      const conn = sk === "node-https" ? { received: res.sent!, sent: res.received! } : await srv.conn();
      const sOut = await stopProbe(ps);
      const cOut = await stopProbe(pc);
      expect(sOut.code).toBe(0);
      expect(cOut.code).toBe(0);
      const onServer = sniffedBy(sniffRecords(sOut.out), srv.pid);
      const onClient = sniffedBy(sniffRecords(cOut.out), cli.pid);
      expect(conn.sent.length).toBeGreaterThan(5000);
      if (res.sent) {
        expectSame(onClient.write, res.sent);
        expectSame(onClient.read, res.received!);
      } else {
        // node's https client: the raw server's log is the reference.
        expect(res.bytes).toBe(5000);
        expectSame(onClient.write, conn.received);
        expectSame(onClient.read, conn.sent);
      }
      expectSame(onServer.read, conn.received);
      expectSame(onServer.write, conn.sent);
      for (const r of [...onClient.reads, ...onClient.writes, ...onServer.reads, ...onServer.writes]) {
        expect(r.truncated).toBeUndefined();
        expect(Buffer.from(r.data, "base64").length).toBe(r.bytes);
      }
      // The first line says what was found, in the process's own terms.
      const stack = ck.startsWith("go") ? /: Go 1\.\d+(\.\d+)? crypto\/tls linked into \// : ck === "python" ? /: OpenSSL 3\.\d+\.\d+ in \/usr\/lib\/x86_64-linux-gnu\/libssl\.so\.3$/ : /^node \d+: OpenSSL 3\.\d+\.\d+ linked into \/usr\/bin\/node$/;
      const comm = { go: "gotls", "go-stripped": "gotls-stripped", python: "python3", "node-tls": "node", "node-https": "node" }[ck];
      expect(cOut.err.find((l) => l.startsWith(`${comm} ${cli.pid}:`))).toMatch(stack);
    });
  }

  test("curl against openssl s_server: equal to curl's --trace and to what s_server printed, both sides", async () => {
    const body = patternBody(20000);
    const response = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
    const srv = await startSServer();
    started.push(srv);
    const curl = await startCurl(`https://127.0.0.1:${srv.port}/body.txt`);
    const ps = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json"]);
    const pc = await startProbe(["sslsniff", "--pid", String(curl.pid), "--json"]);
    const done = curl.go();
    const request = await srv.answer(response);
    const trace = await done;
    expect(trace.code).toBe(0);
    expectSame(trace.sent, request);
    expectSame(trace.received, response);
    const onClient = sniffedBy(sniffRecords((await stopProbe(pc)).out), curl.pid);
    const onServer = sniffedBy(sniffRecords((await stopProbe(ps)).out), srv.pid);
    expectSame(onClient.write, trace.sent);
    expectSame(onClient.read, trace.received);
    expectSame(onServer.read, request);
    expectSame(onServer.write, response);
    expect(onClient.writes.map((w) => w.function)).toEqual(["SSL_write"]);
  });

  test("gnutls-cli against gnutls-serv --echo (GnuTLS's gnutls_record_send/recv)", async () => {
    const srv = await startGnutlsServ();
    started.push(srv);
    const cli = await startGnutlsCli(srv.port);
    const ps = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json"]);
    const pc = await startProbe(["sslsniff", "--pid", String(cli.pid), "--json"]);
    const data = "hello from gnutls-cli\nsecond line, \u00e9t\u00e9\n";
    const echoed = await cli.send(data);
    expect(echoed).toBe(data);
    const cOut = await stopProbe(pc);
    const onClient = sniffedBy(sniffRecords(cOut.out), cli.pid);
    const onServer = sniffedBy(sniffRecords((await stopProbe(ps)).out), srv.pid);
    const sent = Buffer.from(data);
    expectSame(onClient.write, sent);
    expectSame(onClient.read, sent);
    expectSame(onServer.read, sent);
    expectSame(onServer.write, sent);
    expect(new Set(onClient.writes.map((w) => w.function))).toEqual(new Set(["gnutls_record_send"]));
    expect(onClient.reads[0]!.tls).toMatch(/^GnuTLS 3\.\d+\.\d+$/);
    // Valid UTF-8 comes as text too.
    expect(onClient.writes.map((w) => w.text).join("")).toBe(data);
    expect(cOut.err.join("\n")).toMatch(new RegExp(`^gnutls-cli ${cli.pid}: GnuTLS 3\\.\\d+\\.\\d+ in /usr/lib/x86_64-linux-gnu/libgnutls\\.so\\.30[\\d.]*$`, "m"));
  });
});

describe("sslsniff: NSS (tstclnt: libssl3.so, its I/O through NSPR's libnspr4.so)", () => {
  test("tstclnt against openssl s_server: its PR_Send and PR_Recv are what s_server printed and was given; its stdin and stdout (PR_Read, PR_Write) are there too, and said to be", async () => {
    const body = patternBody(3000);
    const response = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
    const request = Buffer.from("GET /nss HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tstclnt \u00e9t\u00e9\r\n\r\n");
    const srv = await startSServer();
    started.push(srv);
    const cli = await startTstclnt(srv.port);
    started.push(cli);
    const p = await startProbe(["sslsniff", "--pid", String(cli.pid), "--json"]);
    await cli.send(request);
    // s_server prints what it read (SSL_read): the request as it arrived.
    const got = await srv.answer(response);
    expectSame(got, request);
    // tstclnt prints what it received.
    expectSame(await cli.received(response.length), response);
    const out = await stopProbe(p);
    cli.stop();
    expect(out.code).toBe(0);
    const recs = sniffRecords(out.out).filter((r) => r.pid === cli.pid);
    const data = (fn: string) => Buffer.concat(recs.filter((r) => r.function === fn).map((r) => Buffer.from(r.data, "base64")));
    // On the SSL socket: exactly what the server printed and was given.
    expectSame(data("PR_Send"), got);
    expectSame(data("PR_Recv"), response);
    // NSPR's I/O on its other descriptors: the request read from its stdin, the response written to its stdout.
    expectSame(data("PR_Read"), request);
    expectSame(data("PR_Write"), cli.stdout());
    expect(new Set(recs.map((r) => `${r.event} ${r.function}`))).toEqual(new Set(["read PR_Read", "write PR_Send", "read PR_Recv", "write PR_Write"]));
    const version = `NSS ${nssPackageVersion()}`;
    for (const r of recs) {
      expect(r).toMatchObject({ comm: "tstclnt", library: LIBNSPR, tls: version });
      expect(r.truncated).toBeUndefined();
      expect(Buffer.from(r.data, "base64").length).toBe(r.bytes);
    }
    // What was found, what is attached, and that NSPR's I/O is more than TLS.
    expect(out.err[0]).toBe(`tstclnt ${cli.pid}: ${version} (${LIBSSL3}, I/O through ${LIBNSPR})`);
    expect(out.err).toContain(`Tracing PR_Read, PR_Recv, PR_Write, PR_Send in ${LIBNSPR}, pid ${cli.pid}: kernel reports uprobe + uretprobe [uprobe_multi]`);
    expect(out.err.join("\n")).toMatch(/^NSS: PR_Read, PR_Recv, PR_Write and PR_Send are NSPR's I\/O for every descriptor: .*files, pipes and plain sockets .* included, not only TLS$/m);
  });

  test("--handshake: selfserv's renegotiation through SSL_ForceHandshake (libssl3.so), as many as bpftrace counts, SECSuccess; the request it read", async () => {
    const ss = await startSelfservRenegotiating();
    started.push(ss);
    const p = await startProbe(["sslsniff", "--pid", String(ss.pid), "--json", "--handshake"]);
    const bt = await bpftraceCalls(ss.pid, LIBSSL3, ["SSL_ForceHandshake"]);
    const cli = await startTstclnt(ss.port);
    started.push(cli);
    const request = Buffer.from("GET /renegotiated HTTP/1.0\r\n\r\n");
    await cli.send(request);
    // selfserv answers after the second handshake.
    await cli.received(1);
    await Bun.sleep(300);
    const calls = await bt.stop();
    const out = await stopProbe(p);
    cli.stop();
    expect(out.code).toBe(0);
    expect(out.err).toContain(`Tracing SSL_ForceHandshake in ${LIBSSL3}, pid ${ss.pid}: kernel reports uprobe + uretprobe [uprobe_multi]`);
    expect(out.err.join("\n")).toContain("NSS: handshakes are SSL_ForceHandshake calls; a program that does not call it handshakes inside its first read or write");
    const recs = sniffRecords(out.out).filter((r) => r.pid === ss.pid);
    const hs = recs.filter((r) => r.event === "handshake");
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(hs).toHaveLength(calls);
    for (const h of hs) {
      expect(h).toMatchObject({ function: "SSL_ForceHandshake", library: LIBSSL3, tls: `NSS ${nssPackageVersion()}`, ret: 0, ok: true });
      expect(h.latency_ns).toBeGreaterThan(0);
    }
    // What selfserv read on the connection holds the request tstclnt sent.
    const read = Buffer.concat(recs.filter((r) => r.event === "read").map((r) => Buffer.from(r.data, "base64")));
    expect(read.includes(request)).toBe(true);
  });
});

describe("sslsniff: big payloads", () => {
  test("a 1 MiB response written in one call arrives whole with --max-bytes 2M (hash equal); by default it is cut at 64 KiB and flagged", async () => {
    const srv = await server("python");
    const cli = await startClient("python", srv.port, "/size/1048576");
    const whole = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json", "--write", "--max-bytes", "2M"]);
    const cut = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json", "--write"]);
    const reads = await startProbe(["sslsniff", "--pid", String(cli.pid), "--json", "--read"]);
    const res = await cli.go();
    const conn = await srv.conn();
    expect(conn.sent.length).toBe(1048576 + conn.sent.indexOf("\r\n\r\n") + 4);
    const w = sniffRecords((await stopProbe(whole)).out);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ event: "write", function: "SSL_write_ex", bytes: conn.sent.length });
    expect(w[0]!.truncated).toBeUndefined();
    expectSame(Buffer.from(w[0]!.data, "base64"), conn.sent);

    const c = await stopProbe(cut);
    const r = sniffRecords(c.out);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ event: "write", bytes: conn.sent.length, truncated: true, captured: 65536, reason: "--max-bytes" });
    expectSame(Buffer.from(r[0]!.data, "base64"), conn.sent.subarray(0, 65536));
    expect(c.err.join("\n")).toContain("1 cut (flagged)");

    // The client reads a record (16 KiB) per call: every read whole, all of them the response.
    const rd = sniffedBy(sniffRecords((await stopProbe(reads)).out), cli.pid);
    expectSame(rd.read, res.received!);
    expect(rd.reads.length).toBeGreaterThanOrEqual(64);
    expect(rd.reads.every((x) => !x.truncated)).toBe(true);
  });

  test("--max-bytes 0 copies as much as the ring buffer has room for, and flags the cut with the real length", async () => {
    const srv = await server("go");
    const cli = await startClient("go", srv.port, "/size/1048576");
    const p = await startProbe(["sslsniff", "--pid", String(srv.pid), "--json", "--write", "--max-bytes", "0", "--buffer-size", "256K"]);
    await cli.go();
    const conn = await srv.conn();
    const out = await stopProbe(p);
    const r = sniffRecords(out.out);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ event: "write", bytes: conn.sent.length, truncated: true, reason: "the ring buffer had no room for more" });
    const got = Buffer.from(r[0]!.data, "base64");
    expect(got.length).toBe(r[0]!.captured!);
    expect(got.length).toBeGreaterThan(128 << 10); // most of the ring
    expect(got.length).toBeLessThan(256 << 10);
    expectSame(got, conn.sent.subarray(0, got.length));
    // --json says what was lost as JSON too, on stdout.
    const lost = out.out.map((l) => JSON.parse(l)).filter((o) => o.event === "lost");
    expect(lost.map((o) => o.kind)).toEqual(lost.map(() => "bytes"));
    expect(lost.at(-1)).toMatchObject({ kind: "bytes", total: conn.sent.length - got.length });
  });
});

describe("sslsniff: output formats", () => {
  test("text (default) and --hexdump say every byte: escapes undone and hexdump -C give back the data", async () => {
    const srv = await server("go");
    const cli = await startClient("go", srv.port, "/size/700");
    const text = await startProbe(["sslsniff", "--pid", String(cli.pid)]);
    const hex = await startProbe(["sslsniff", "--pid", String(cli.pid), "--hexdump"]);
    const res = await cli.go();
    const t = textBlocks((await stopProbe(text)).out);
    const h = textBlocks((await stopProbe(hex)).out);
    expect(t.map((b) => b.head.split(" ")[0])).toEqual(["WRITE", "READ"]);
    expect(t[0]!.head).toMatch(new RegExp(`^WRITE \\d\\d:\\d\\d:\\d\\d\\.\\d{3} gotls ${cli.pid}/\\d+ ${res.sent!.length} bytes [\\d.]+ [nµm]?s  crypto/tls\\.\\(\\*Conn\\)\\.Write, Go 1\\.\\d+\\.\\d+ crypto/tls in /`));
    expect(t[0]!.data[0]).toBe("  GET /size/700 HTTP/1.1\\r\\n");
    expectSame(unescapeLines(t[0]!.data), res.sent!);
    expectSame(unescapeLines(t[1]!.data), res.received!);
    // hexdump -C -v of the same bytes, without its final offset line.
    const ref = (b: Buffer) => {
      const f = join(TLS_WORK, "hexdump.bin");
      writeFileSync(f, b);
      return sh(`hexdump -C -v ${f}`).trimEnd().split("\n").slice(0, -1);
    };
    expect(h[0]!.data.map((l) => l.slice(2))).toEqual(ref(res.sent!));
    expect(h[1]!.data.map((l) => l.slice(2))).toEqual(ref(res.received!));
  });

  test("--handshake adds handshake calls with their latency; --write leaves reads out", async () => {
    const srv = await startSServer();
    started.push(srv);
    const curl = await startCurl(`https://127.0.0.1:${srv.port}/small`);
    const p = await startProbe(["sslsniff", "--pid", String(curl.pid), "--json", "--handshake", "--write"]);
    const done = curl.go();
    await srv.answer(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmall\n"));
    const trace = await done;
    const recs = sniffRecords((await stopProbe(p)).out);
    expect(new Set(recs.map((r) => r.event))).toEqual(new Set(["handshake", "write"]));
    const hs = recs.filter((r) => r.event === "handshake");
    expect(hs.at(-1)).toMatchObject({ function: "SSL_do_handshake", ret: 1, ok: true });
    expect(hs.at(-1)!.latency_ns).toBeGreaterThan(0);
    expectSame(sniffedBy(recs, curl.pid).write, trace.sent);
  });

  test("--handshake on GnuTLS (gnutls_handshake, 0 when done) and Go ((*Conn).clientHandshake, nil error)", async () => {
    const gs = await startGnutlsServ();
    started.push(gs);
    const pg = await startProbe(["sslsniff", "--pid", String(gs.pid), "--json", "--handshake"]);
    const cli = await startGnutlsCli(gs.port);
    await cli.send("x\n");
    const g = sniffRecords((await stopProbe(pg)).out).filter((r) => r.event === "handshake");
    expect(g.length).toBeGreaterThanOrEqual(1);
    expect(g.at(-1)).toMatchObject({ function: "gnutls_handshake", ret: 0, ok: true });
    // Non-blocking handshakes return GNUTLS_E_AGAIN (-28) until done.
    for (const r of g.slice(0, -1)) expect(r.ret).toBe(-28);

    const srv = await server("go");
    const gc = await startClient("go", srv.port, "/size/1");
    const p = await startProbe(["sslsniff", "--pid", String(gc.pid), "--json", "--handshake"]);
    await gc.go();
    const h = sniffRecords((await stopProbe(p)).out).filter((r) => r.event === "handshake");
    expect(h).toEqual([expect.objectContaining({ function: "crypto/tls.(*Conn).clientHandshake", ok: true })]);
    expect(h[0]!.ret).toBeUndefined();
    expect(h[0]!.latency_ns).toBeGreaterThan(0);
  });
});
