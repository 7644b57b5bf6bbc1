// `probe ssl-read`: OpenSSL reads per process — calls, returns, bytes, errors — from entry and
// return probes on SSL_read and SSL_read_ex, with a per-thread check that returns follow entries.
import { pc } from "../colors.ts";
import type { OpenTarget } from "../../lib/proc/target.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import type { ProbePoint, UprobeLink } from "../../lib/uprobe.ts";
import { MapReader } from "../../lib/maps.ts";
import { hostLibraryCandidates } from "../../lib/proc/loader.ts";
import { SSL_CONFIG, SSL_FN, SSL_STATS, commAt } from "../../lib/layouts.ts";
import { ProbeError } from "../errors.ts";
import { withSession, type Session, type SessionOptions } from "../session.ts";
import { NsPidCache } from "../targets.ts";
import { Out, jsonInt } from "../output.ts";
import { table, type Column } from "../table.ts";

export interface SslReadOptions extends SessionOptions {
  lib?: string;
  verifyOrder?: boolean;
}

export interface SslRow {
  pid: number;
  comm: string;
  calls: bigint;
  returns: bigint;
  bytes: bigint;
  errors: bigint;
  orphanReturns: bigint;
  lostEntries: bigint;
}

export interface SslReadHooks {
  /** Called once every probe is attached; the loop stops when its promise settles. */
  onAttached?: () => Promise<unknown>;
}

export async function run(o: SslReadOptions, hooks: SslReadHooks = {}): Promise<number> {
  return withSession(o, async (s) => {
    const libs = await openLibssl(s, o.lib, o.wait);
    const obj = s.load("ssl_read", s.config(SSL_CONFIG.size).bytes);

    const links: { lib: OpenTarget; entry: UprobeLink; ret: UprobeLink }[] = [];
    for (const lib of libs) {
      const points = sslReadPoints(lib);
      const entry = s.attach(obj.progFd("ssl_read_entry"), lib, points, false, SSL_NAMES);
      const ret = s.attach(obj.progFd("ssl_read_return"), lib, points, true, SSL_NAMES);
      links.push({ lib, entry, ret });
    }
    s.confirm();
    for (const { lib, entry, ret } of links) {
      // The kernel's own word on what is attached: a manager that drops the retprobe flag shows here.
      const kinds = [...entry.info(), ...ret.info()].map((i) => (i.uprobe?.retprobe ? "uretprobe" : "uprobe"));
      const uniq = [...new Set(kinds)].join(" + ");
      const fns = entry.points.map((p) => SSL_NAMES[Number(p.cookie)]).join(", ");
      s.note(`Tracing ${fns} in ${lib.display}${s.label}: kernel reports ${uniq} [${s.modeName}]`);
    }
    s.note(`Reporting every ${s.intervalSec} s. Ctrl-C to stop.`);

    const stats = new MapReader(obj.mapFd("stats"));
    const out = s.out;
    const json = s.json;
    const last = new Map<number, bigint>();
    const proc = s.filter.proc;
    const nspids = new NsPidCache(proc ? [[proc.pid, proc.nspid]] : []);
    let warned = false;
    /** Prints what changed (everything when final) and returns the returns seen without their entry. */
    const report = (final: boolean): bigint => {
      const rows = readSslStats(stats);
      const changed = final ? rows : rows.filter((r) => last.get(r.pid) !== r.calls + r.returns);
      for (const r of rows) last.set(r.pid, r.calls + r.returns);
      printRows(out, changed, json, final, nspids);
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
      throw new ProbeError(`order check failed: ${orphans} SSL_read return(s) ran without their entry first`, "the return probe is attached as an entry probe; compare 'probe list'");
    }
    return 0;
  });
}

const SSL_NAMES = ["SSL_read", "SSL_read_ex"];

/** SSL_read (cookie 0) and SSL_read_ex (cookie 1, OpenSSL >= 1.1.1) of one libssl. */
function sslReadPoints(lib: OpenTarget): ProbePoint[] {
  const points: ProbePoint[] = [{ offset: resolveFunction(lib.elf, "SSL_read").offset, cookie: BigInt(SSL_FN.READ) }];
  try {
    points.push({ offset: resolveFunction(lib.elf, "SSL_read_ex").offset, cookie: BigInt(SSL_FN.READ_EX) });
  } catch {
    // OpenSSL 1.1.0 and older have no SSL_read_ex.
  }
  return points;
}

/** Every OpenSSL libssl to probe: the given one, the one the process has mapped, or all on the host. */
async function openLibssl(s: Session, lib: string | undefined, wait?: boolean): Promise<OpenTarget[]> {
  if (lib) return [await s.openTarget(lib, wait)];
  if (s.filter.proc) return [await s.openTarget("libssl", wait)];
  const seen = new Set<string>();
  const out: OpenTarget[] = [];
  for (const c of hostLibraryCandidates("libssl")) {
    const t = s.openHostFile(c.path);
    // A symlink and its target, or one overlay layer file under two paths: the kernel probes
    // the real inode, so one attachment each.
    if (seen.has(t.inodeKey)) continue;
    seen.add(t.inodeKey);
    out.push(t);
  }
  if (!out.length) throw new ProbeError("no OpenSSL libssl found on this host", "give it with --lib PATH, or a process with --pid");
  return out;
}

export function readSslStats(stats: MapReader): SslRow[] {
  const rows = stats.entries().map(({ key, values }) => {
    const v = new DataView(values[0]!.buffer, values[0]!.byteOffset, values[0]!.byteLength);
    const u = (off: number) => v.getBigUint64(off, true);
    return {
      pid: new DataView(key.buffer).getUint32(0, true),
      comm: commAt(v, SSL_STATS.comm),
      calls: u(SSL_STATS.calls),
      returns: u(SSL_STATS.returns),
      bytes: u(SSL_STATS.bytes),
      errors: u(SSL_STATS.errors),
      orphanReturns: u(SSL_STATS.orphan_returns),
      lostEntries: u(SSL_STATS.lost_entries),
    };
  });
  return rows.sort((a, b) => a.pid - b.pid);
}

function printRows(out: Out, rows: SslRow[], json: boolean, final: boolean, nspids: NsPidCache): void {
  if (json) {
    for (const r of rows) {
      const nspid = nspids.get(r.pid);
      out.line(
        JSON.stringify({
          event: "ssl-read",
          pid: r.pid,
          comm: r.comm,
          calls: jsonInt(r.calls),
          returns: jsonInt(r.returns),
          bytes: jsonInt(r.bytes),
          errors: jsonInt(r.errors),
          orphan_returns: jsonInt(r.orphanReturns),
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
  const withNs = rows.some((r) => nspids.get(r.pid).length > 1);
  const cols: Column[] = [{ title }, { title: "PID", right: true }, ...(withNs ? [{ title: "NSPID", right: true }] : []), { title: "COMM" },
    { title: "CALLS", right: true }, { title: "RETURNS", right: true }, { title: "BYTES", right: true }, { title: "ERRORS", right: true }, { title: "ORDER" }];
  const cells = rows.map((r) => ["", String(r.pid), ...(withNs ? [inner(r)] : []), r.comm, String(r.calls), String(r.returns), String(r.bytes), String(r.errors),
    r.orphanReturns ? pc.red(`${r.orphanReturns} returns before entry`) : "ok"]);
  for (const l of table(cols, cells)) out.line(l);
  if (final && !rows.length) out.line("          no SSL_read calls seen");
}
