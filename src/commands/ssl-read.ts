// `probe ssl-read`: TLS reads per process and library — calls, returns, bytes, errors — from entry
// and return probes on whatever TLS each process uses (OpenSSL SSL_read/SSL_read_ex in a shared
// libssl or linked into the program, GnuTLS gnutls_record_recv, Go crypto/tls.(*Conn).Read), with
// a per-thread check that returns follow entries.
import { pc } from "../colors.ts";
import { MapReader } from "../../lib/maps.ts";
import { DROP, SSL_CONFIG, SSL_STATS, commAt } from "../../lib/layouts.ts";
import { processExists } from "../../lib/proc/identity.ts";
import { ProbeError } from "../errors.ts";
import { withSession, type SessionOptions } from "../session.ts";
import { NsPidCache } from "../targets.ts";
import { Out, jsonInt } from "../output.ts";
import { PublishedTotals } from "../../lib/metrics/totals.ts";
import { table, type Column } from "../table.ts";
import { attachTls, attachTlsInFleet, findTls, type TlsTarget } from "./tls-attach.ts";
import { podColumn, type ContainerLabels } from "../fleet-labels.ts";
import type { Registry } from "../../lib/metrics/registry.ts";
import { mark } from "../timing.ts";

export interface SslReadOptions extends SessionOptions {
  lib?: string;
  verifyOrder?: boolean;
}

export interface SslRow {
  pid: number;
  /** Which library (the index user space gave it: the attach cookie's upper bits). */
  lib: number;
  comm: string;
  calls: bigint;
  returns: bigint;
  bytes: bigint;
  errors: bigint;
  orphanReturns: bigint;
  lostEntries: bigint;
  /** Go: returns of calls already running when probes were attached (not counted). */
  inflightReturns: bigint;
  /** The selected container's PID namespace the process is in (0 without a selection). */
  pidns: number;
}

export interface SslReadHooks {
  /** Called once every probe is attached; the loop stops when its promise settles. */
  onAttached?: () => Promise<unknown>;
}

export async function run(o: SslReadOptions, hooks: SslReadHooks = {}): Promise<number> {
  mark("command module loaded");
  return withSession(o, async (s) => {
    let targets: TlsTarget[];
    let obj;
    if (s.fleet && !o.lib) {
      // Containers come and go: the programs first, then each container's TLS as it appears.
      obj = s.load("ssl_read", s.config(SSL_CONFIG.size).bytes);
      targets = await attachTlsInFleet(s, { entry: obj.progFd("ssl_read_entry"), ret: obj.progFd("ssl_read_return") }, ["read"]);
    } else {
      targets = await findTls(s, { lib: o.lib, wait: o.wait });
      obj = s.load("ssl_read", s.config(SSL_CONFIG.size).bytes);
      attachTls(s, targets, { entry: obj.progFd("ssl_read_entry"), ret: obj.progFd("ssl_read_return") }, ["read"]);
    }
    s.note(s.printing ? `Reporting every ${s.intervalSec} s. Ctrl-C to stop.` : "Serving metrics only (--json for rows too). Ctrl-C to stop.");

    const stats = new SslTable(new MapReader(obj.mapFd("stats")));
    s.watchLosses(obj.mapFd("dropped"), [
      { index: DROP.COUNTS, kind: "counts", what: "TLS reads not counted (the per-process table was full)" },
      { index: DROP.STARTS, kind: "pairing", what: "TLS reads not paired with their return (the pairing table was full)" },
    ]);
    const out = s.out;
    const json = s.json;
    const last = new Map<string, bigint>();
    const proc = s.filter.proc;
    const nspids = new NsPidCache(proc ? [[proc.pid, proc.nspid]] : []);
    const fleet = s.fleet;
    const podOf = fleet ? (r: SslRow) => fleet.labelsOf(r.pid, r.pidns) : undefined;
    if (s.metrics) s.onCollect(publisher(s.metrics, stats, targets, podOf));
    let warned = false;
    /** Prints what changed (everything when final) and returns the returns seen without their entry. */
    const report = (final: boolean): bigint => {
      const rows = stats.read();
      const key = (r: SslRow) => `${r.pid}/${r.lib}`;
      const changed = final ? rows : rows.filter((r) => last.get(key(r)) !== r.calls + r.returns);
      for (const r of rows) last.set(key(r), r.calls + r.returns);
      if (s.printing) printRows(out, changed, json, final, nspids, targets, podOf);
      const orphans = rows.reduce((a, r) => a + r.orphanReturns, 0n);
      if (orphans > 0n && !warned) {
        warned = true;
        s.warn(`${orphans} return(s) without a preceding entry on their thread: return probes are running at function entry`);
      }
      out.flush();
      return orphans;
    };
    await s.run({ report: () => void report(false), until: hooks.onAttached?.() });
    const orphans = report(true);
    if (o.verifyOrder && orphans > 0n) {
      throw new ProbeError(`order check failed: ${orphans} TLS read return(s) ran without their entry first`, "the return probe is attached as an entry probe; compare 'probe list'");
    }
    return 0;
  });
}

/**
 * The `stats` map with exited processes moved out into totals kept here, so that the kernel's
 * bounded table never fills with the dead and counts stay exact however many short-lived
 * processes come and go (as src/count-table.ts does for uprobe --summary).
 */
class SslTable {
  private readonly gone = new Map<string, SslRow>();
  constructor(private readonly map: MapReader) {}

  read(): SslRow[] {
    const live: SslRow[] = [];
    for (const { key, row } of sslStatsEntries(this.map)) {
      if (processExists(row.pid)) {
        live.push(row);
        continue;
      }
      this.map.delete(key);
      const id = `${row.pid}/${row.lib}`;
      const prev = this.gone.get(id);
      this.gone.set(id, prev ? addRows(prev, row) : row);
    }
    return [...live, ...this.gone.values()].sort((a, b) => a.pid - b.pid || a.lib - b.lib);
  }
}

function addRows(a: SslRow, b: SslRow): SslRow {
  return {
    ...a,
    calls: a.calls + b.calls, returns: a.returns + b.returns, bytes: a.bytes + b.bytes, errors: a.errors + b.errors,
    orphanReturns: a.orphanReturns + b.orphanReturns, lostEntries: a.lostEntries + b.lostEntries, inflightReturns: a.inflightReturns + b.inflightReturns,
  };
}

export function readSslStats(stats: MapReader): SslRow[] {
  return sslStatsEntries(stats).map((e) => e.row).sort((a, b) => a.pid - b.pid || a.lib - b.lib);
}

function sslStatsEntries(stats: MapReader): { key: Uint8Array; row: SslRow }[] {
  return stats.entries().map(({ key, values }) => {
    const v = new DataView(values[0]!.buffer, values[0]!.byteOffset, values[0]!.byteLength);
    const u = (off: number) => v.getBigUint64(off, true);
    const k = new DataView(key.buffer, key.byteOffset, key.byteLength);
    return { key, row: {
      pid: k.getUint32(0, true),
      lib: k.byteLength >= 8 ? k.getUint32(4, true) : 0,
      comm: commAt(v, SSL_STATS.comm),
      calls: u(SSL_STATS.calls),
      returns: u(SSL_STATS.returns),
      bytes: u(SSL_STATS.bytes),
      errors: u(SSL_STATS.errors),
      orphanReturns: u(SSL_STATS.orphan_returns),
      lostEntries: u(SSL_STATS.lost_entries),
      inflightReturns: u(SSL_STATS.inflight_returns),
      pidns: v.byteLength >= SSL_STATS.size ? v.getUint32(SSL_STATS.pidns, true) : 0,
    } };
  });
}

const HUMAN_ROWS = 50;

/**
 * --metrics: the table's totals as Prometheus counters, per process and library (and container),
 * read before each scrape. Exited processes' rows are totals kept by SslTable: the counters go on
 * from them, never back.
 */
function publisher(registry: Registry, stats: SslTable, targets: TlsTarget[], podOf: ((r: SslRow) => ContainerLabels) | undefined): () => void {
  const names = ["pod", "namespace", "container", "pid", "comm", "library"];
  const calls = registry.counter("probe_ssl_read_calls_total", "TLS read calls (SSL_read, SSL_read_ex, gnutls_record_recv, Go crypto/tls.(*Conn).Read) per process and library", names);
  const bytes = registry.counter("probe_ssl_read_bytes_total", "Plaintext bytes TLS reads returned", names, { unit: "bytes" });
  const errors = registry.counter("probe_ssl_read_errors_total", "TLS reads that returned an error (ret <= 0; Go: a non-nil err)", names);
  const order = registry.counter("probe_ssl_read_order_violations_total", "TLS read returns seen without their entry on the same thread (reversed probes)", names);
  const totals = new PublishedTotals();
  return () => {
    for (const r of stats.read()) {
      const pod = podOf?.(r);
      const labels = { pod: pod?.pod ?? "", namespace: pod?.namespace ?? "", container: pod?.container ?? "", pid: r.pid, comm: r.comm, library: targets[r.lib]?.lib.target.display ?? "" };
      const key = `${r.pid}/${r.lib}`;
      totals.counter(calls, key, labels, Number(r.calls));
      totals.counter(bytes, key, labels, Number(r.bytes));
      totals.counter(errors, key, labels, Number(r.errors));
      totals.counter(order, key, labels, Number(r.orphanReturns));
    }
  };
}

function printRows(out: Out, rows: SslRow[], json: boolean, final: boolean, nspids: NsPidCache, targets: TlsTarget[], podOf?: (r: SslRow) => ContainerLabels): void {
  const libOf = (r: SslRow) => targets[r.lib];
  if (json) {
    for (const r of rows) {
      const nspid = nspids.get(r.pid);
      const t = libOf(r);
      const pod = podOf?.(r);
      out.line(
        JSON.stringify({
          event: "ssl-read",
          pid: r.pid,
          comm: r.comm,
          ...(pod ? { pod: pod.pod || null, namespace: pod.namespace || null, container: pod.container || null } : {}),
          library: t?.lib.target.display ?? null,
          tls: t?.stack.name ?? null,
          calls: jsonInt(r.calls),
          returns: jsonInt(r.returns),
          bytes: jsonInt(r.bytes),
          errors: jsonInt(r.errors),
          orphan_returns: jsonInt(r.orphanReturns),
          ...(r.inflightReturns ? { inflight_returns: jsonInt(r.inflightReturns) } : {}),
          ...(nspid.length > 1 ? { nspid } : {}),
          ...(final ? { final: true } : {}),
        }),
      );
    }
    return;
  }
  if (!rows.length && !final) return;
  const title = final ? "TOTAL" : new Date().toTimeString().slice(0, 8);
  // The PID inside the container (every nested level, outermost first) when any row has one.
  const inner = (r: SslRow) => nspids.get(r.pid).slice(1).join("/") || "-";
  // Rows shown one by one at most (the busiest); the rest summed into one line (every row in JSON).
  const top = rows.length > HUMAN_ROWS ? [...rows].sort((a, b) => (b.calls > a.calls ? 1 : b.calls < a.calls ? -1 : 0)).slice(0, HUMAN_ROWS) : rows;
  const withNs = top.some((r) => nspids.get(r.pid).length > 1);
  const cols: Column[] = [{ title }, ...(podOf ? [{ title: "POD" }] : []), { title: "PID", right: true }, ...(withNs ? [{ title: "NSPID", right: true }] : []), { title: "COMM" },
    { title: "CALLS", right: true }, { title: "RETURNS", right: true }, { title: "BYTES", right: true }, { title: "ERRORS", right: true }, { title: "ORDER" }, { title: "LIBRARY" }];
  const cells = top.map((r) => ["", ...(podOf ? [podColumn(podOf(r))] : []), String(r.pid), ...(withNs ? [inner(r)] : []), r.comm, String(r.calls), String(r.returns), String(r.bytes), String(r.errors),
    r.orphanReturns ? pc.red(`${r.orphanReturns} returns before entry`) : "ok", libOf(r)?.lib.target.display ?? "?"]);
  for (const l of table(cols, cells)) out.line(l);
  if (top.length < rows.length) {
    const rest = rows.filter((r) => !top.includes(r));
    const sum = (f: (r: SslRow) => bigint) => rest.reduce((a, r) => a + f(r), 0n);
    out.line(`  ... and ${rest.length} more (${new Set(rest.map((r) => r.pid)).size} processes): ${sum((r) => r.calls)} calls, ${sum((r) => r.bytes)} bytes`);
  }
  if (final && !rows.length) out.line("          no TLS reads seen");
}
