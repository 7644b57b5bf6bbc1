// `probe demo`: the main job on a built-in target. Starts a local TLS server (openssl s_server),
// traces it and its clients with ssl-read while a client makes a few HTTPS requests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { pc } from "../colors.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { run as sslRead } from "./ssl-read.ts";
import { writeStderr } from "../stderr.ts";

export async function run(o: { requests?: number | string; json?: boolean }): Promise<number> {
  const n = Number(o.requests ?? 5);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--requests takes a whole number from 1 to 1000, not '${o.requests}'`);
  const openssl = Bun.which("openssl");
  if (!openssl) throw new ProbeError("the demo needs the openssl command", "apt-get install openssl");

  const dir = mkdtempSync(join(tmpdir(), "probe-demo-"));
  let server: ReturnType<typeof Bun.spawn> | undefined;
  try {
    const cert = Bun.spawnSync([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stderr: "pipe" });
    if (cert.exitCode !== 0) throw new ProbeError(`openssl req failed: ${cert.stderr.toString().trim().split("\n")[0]}`);
    const port = await freePort();
    server = Bun.spawn([openssl, "s_server", "-accept", `127.0.0.1:${port}`, "-cert", join(dir, "cert.pem"), "-key", join(dir, "key.pem"), "-www", "-quiet"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    await waitForPort(port);
    writeStderr(pc.dim(`Demo: openssl s_server (pid ${server.pid}) on 127.0.0.1:${port}; ${n} client request(s) once probes are attached.\n`));

    return await sslRead({ json: o.json, interval: 1 }, {
      onAttached: async () => {
        for (let i = 0; i < n; i++) {
          const c = Bun.spawn([openssl, "s_client", "-connect", `127.0.0.1:${port}`, "-quiet"], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
          c.stdin.write("GET / HTTP/1.0\r\n\r\n");
          c.stdin.end();
          await c.exited;
        }
        await Bun.sleep(200);
      },
    });
  } finally {
    server?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (tests wait with it too). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      sock.end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new ProbeError(`the demo server did not start on port ${port}`);
}
