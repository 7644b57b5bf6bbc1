// /metrics and /healthz over HTTP with Bun.serve, on an address like ":9464", "127.0.0.1:9464"
// or "[::1]:9464". Scrapes render the registry on demand: nothing is rendered between scrapes.
import { isIP } from "node:net";
import { ProbeError } from "../errors.ts";
import { CONTENT_TYPES, negotiateFormat, render, type ExpositionFormat } from "./exposition.ts";
import type { Registry } from "./registry.ts";

export class ListenAddressError extends ProbeError {}

export interface ListenAddress {
  /** "0.0.0.0" for an address given without a host. */
  hostname: string;
  /** 0 asks the kernel for a free port. */
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Parses `[host]:port`; IPv6 hosts in brackets. Throws ListenAddressError naming what is wrong. */
export function parseListenAddress(text: string): ListenAddress {
  const bad = (why: string) => new ListenAddressError(`invalid listen address ${JSON.stringify(text)}: ${why}`, 'give it as PORT, :PORT, HOST:PORT or [IPv6]:PORT, e.g. ":9464" or "127.0.0.1:9464"');
  const s = text.trim();
  if (!s) throw bad("it is empty");
  let host: string;
  let portText: string;
  if (/^\d+$/.test(s)) {
    host = "";
    portText = s;
  } else if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) throw bad("the IPv6 address has no closing ]");
    host = s.slice(1, end);
    if (s[end + 1] !== ":") throw bad("a port must follow the IPv6 address, after a colon");
    portText = s.slice(end + 2);
    if (isIP(host) !== 6) throw bad(`${host} is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(":");
    if (colon < 0) throw bad("there is no port");
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(":")) throw bad("an IPv6 address must be in brackets");
    if (host && isIP(host) === 0 && !HOSTNAME.test(host)) throw bad(`${JSON.stringify(host)} is not an IP address or host name`);
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad(portText ? `port ${JSON.stringify(portText)} is not a number` : "there is no port");
  const port = Number(portText);
  if (port > 65535) throw bad(`port ${port} is above 65535`);
  return { hostname: host || "0.0.0.0", port };
}

export interface MetricsServerOptions {
  /** As parseListenAddress takes it. */
  address: string;
  registry: Registry;
  /** Called on each /healthz: a non-empty string makes it answer 503 with that text. */
  unhealthy?: () => string | undefined;
  /** Called before each /metrics answer: brings the registry up to date (reads what the programs counted). */
  collect?: () => void;
}

export interface MetricsServer {
  hostname: string;
  port: number;
  /** http://host:port, for messages and tests. */
  url: string;
  scrapes: number;
  /** The format of the last /metrics answer (what the scraper negotiated). */
  lastFormat: ExpositionFormat | undefined;
  close(): Promise<void>;
}

/** Starts serving; throws ListenAddressError for a bad address or one that cannot be bound. */
export function startMetricsServer(opts: MetricsServerOptions): MetricsServer {
  const addr = parseListenAddress(opts.address);
  const state: { scrapes: number; lastFormat?: ExpositionFormat } = { scrapes: 0 };
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: addr.hostname,
      port: addr.port,
      reusePort: false,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
        if (path === "/metrics") {
          state.scrapes++;
          const format = negotiateFormat(req.headers.get("accept"));
          state.lastFormat = format;
          try {
            opts.collect?.();
          } catch {
            // What was published before is still served: a failed read must not fail the scrape.
          }
          return new Response(render(opts.registry, format), { headers: { "content-type": CONTENT_TYPES[format] } });
        }
        if (path === "/healthz") {
          const why = opts.unhealthy?.();
          return why ? new Response(`${why}\n`, { status: 503 }) : new Response("ok\n");
        }
        return new Response("not found: try /metrics or /healthz\n", { status: 404 });
      },
      error() {
        return new Response("internal error\n", { status: 500 });
      },
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "the address is in use" : code === "EACCES" ? "permission denied" : code === "EADDRNOTAVAIL" ? "no interface has that address" : (e as Error).message;
    throw new ListenAddressError(`cannot serve metrics on ${opts.address}: ${why}`, undefined, { cause: e });
  }
  const port = server.port ?? addr.port;
  const hostForUrl = addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    hostname: addr.hostname,
    port,
    url: `http://${hostForUrl}:${port}`,
    get scrapes() {
      return state.scrapes;
    },
    get lastFormat() {
      return state.lastFormat;
    },
    async close() {
      await server.stop(true);
    },
  };
}
