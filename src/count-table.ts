// `--summary`: calls and returns per process and function, read from the programs' `counts` map
// (exited processes folded out of it: src/process-rows.ts); what the map still could not hold is
// reported as dropped.
import { UPROBE_COUNTS, commAt } from "../lib/layouts.ts";
import { MapReader } from "../lib/maps.ts";
import { jsonInt, type Out } from "./output.ts";
import { ProcessRows, type ProcessRow } from "./process-rows.ts";
import { table } from "./table.ts";
import { podColumn, type ContainerLabels } from "./fleet-labels.ts";

export interface CountRow extends ProcessRow {
  /** The selected container's PID namespace the process is in (0 without a selection of containers). */
  pidns: number;
  calls: bigint;
  returns: bigint;
  exited: boolean;
}

function decodeRow(key: Uint8Array, value: Uint8Array): CountRow {
  const k = new DataView(key.buffer, key.byteOffset);
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return {
    pid: k.getUint32(0, true),
    func: k.getUint32(4, true),
    comm: commAt(v, UPROBE_COUNTS.comm),
    nspid: v.getUint32(UPROBE_COUNTS.nspid, true),
    pidns: v.getUint32(UPROBE_COUNTS.pidns, true),
    calls: v.getBigUint64(UPROBE_COUNTS.calls, true),
    returns: v.getBigUint64(UPROBE_COUNTS.returns, true),
    exited: false,
  };
}

/** Rows shown one by one at most; the rest are summed into one line (every row in JSON). */
const HUMAN_ROWS = 50;

export class CountTable {
  private readonly table: ProcessRows<CountRow>;
  private readonly shown = new Map<string, bigint>();

  constructor(
    mapFd: number,
    private readonly names: string[],
    /** Whether returns are counted at all (without --ret the column says '-'). */
    private readonly returns: boolean,
    private readonly nspidOf: (pid: number, inner: number) => number[],
    /** With a selection of containers: a row's pod, namespace and container. */
    private readonly podOf?: (pid: number, pidns: number) => ContainerLabels,
  ) {
    this.table = new ProcessRows(new MapReader(mapFd), decodeRow, (kept, row) => (kept ? { ...kept, calls: kept.calls + row.calls, returns: kept.returns + row.returns } : { ...row, exited: true }), nspidOf);
  }

  /** Every row, live and exited (totals since the start). */
  rows(): CountRow[] {
    return this.table.read();
  }

  /** Prints the rows that changed (every row when final). */
  print(out: Out, json: boolean, final: boolean): void {
    const rows = this.rows();
    const changed = final ? rows : rows.filter((r) => this.shown.get(`${r.pid}:${r.func}`) !== r.calls + r.returns);
    for (const r of rows) this.shown.set(`${r.pid}:${r.func}`, r.calls + r.returns);
    const name = (r: CountRow) => this.names[r.func] ?? `#${r.func}`;
    if (json) {
      for (const r of changed) {
        const chain = this.nspidOf(r.pid, r.nspid);
        const pod = this.podOf?.(r.pid, r.pidns);
        out.line(JSON.stringify({
          event: "count", pid: r.pid, ...(chain.length > 1 ? { nspid: chain } : {}), comm: r.comm,
          ...(pod ? { pod: pod.pod || null, namespace: pod.namespace || null, container: pod.container || null } : {}), ...(this.names.length > 1 ? { function: name(r) } : {}),
          calls: jsonInt(r.calls), ...(this.returns ? { returns: jsonInt(r.returns) } : {}),
        }));
      }
      out.flush();
      return;
    }
    if (!changed.length && !final) return;
    const withNs = changed.some((r) => this.nspidOf(r.pid, r.nspid).length > 1);
    const many = this.names.length > 1;
    const top = changed.length > HUMAN_ROWS ? [...changed].sort((a, b) => (b.calls > a.calls ? 1 : b.calls < a.calls ? -1 : 0)).slice(0, HUMAN_ROWS) : changed;
    const cells = top.map((r) => [
      "", ...(this.podOf ? [podColumn(this.podOf(r.pid, r.pidns))] : []), String(r.pid), ...(withNs ? [this.nspidOf(r.pid, r.nspid).slice(1).join("/") || "-"] : []), r.comm, ...(many ? [name(r)] : []),
      String(r.calls), this.returns ? String(r.returns) : "-",
    ]);
    const title = final ? "TOTAL" : new Date().toTimeString().slice(0, 8);
    const cols = [{ title }, ...(this.podOf ? [{ title: "POD" }] : []), { title: "PID", right: true }, ...(withNs ? [{ title: "NSPID", right: true }] : []), { title: "COMM" }, ...(many ? [{ title: "FUNCTION" }] : []),
      { title: "CALLS", right: true }, { title: "RETURNS", right: true }];
    for (const l of table(cols, cells)) out.line(l);
    if (top.length < changed.length) {
      const rest = changed.filter((r) => !top.includes(r));
      const calls = rest.reduce((s, r) => s + r.calls, 0n);
      out.line(`  ... and ${rest.length} more (${new Set(rest.map((r) => r.pid)).size} processes): ${calls} calls`);
    }
    if (final) {
      const calls = rows.reduce((s, r) => s + r.calls, 0n);
      const returns = rows.reduce((s, r) => s + r.returns, 0n);
      out.line(`  ${new Set(rows.map((r) => r.pid)).size} processes, ${calls} calls${this.returns ? `, ${returns} returns` : ""}`);
    }
    out.flush();
  }
}
