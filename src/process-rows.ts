// The uprobe program's per-process tables (calls in `counts`, histograms in `proc_hists`), keyed
// by process and function. Rows of processes that exited are moved out of the kernel's bounded
// table into totals kept here, so that the table never fills with the dead and totals stay exact
// however many short-lived processes come and go.
import type { MapReader } from "../lib/maps.ts";
import { processExists } from "../lib/proc/identity.ts";

/** What every row has (bpf/uprobe.bpf.c process_row()): whose, and of which function. */
export interface ProcessRow {
  pid: number;
  func: number;
  comm: string;
  /** The PID in its innermost namespace, as the program saw it. */
  nspid: number;
}

export class ProcessRows<R extends ProcessRow> {
  /** Rows of processes that exited, by pid:func. */
  private readonly gone = new Map<string, R>();

  constructor(
    private readonly map: MapReader,
    private readonly decode: (key: Uint8Array, value: Uint8Array) => R,
    /** An exited process's row added to what was kept of it (`kept` undefined the first time). */
    private readonly fold: (kept: R | undefined, row: R) => R,
    private readonly nspidOf: (pid: number, inner: number) => number[],
  ) {}

  /** Reads the table, folding out exited processes; every row, live and exited, by process and function. */
  read(): R[] {
    const live: R[] = [];
    for (const { key, values } of this.map.entries()) {
      const row = this.decode(key, values[0]!);
      if (processExists(row.pid)) {
        live.push(row);
        continue;
      }
      // Its PIDs in its namespaces are looked up (and kept) now, while its row still says them.
      this.nspidOf(row.pid, row.nspid);
      const id = `${row.pid}:${row.func}`;
      this.map.delete(key);
      this.gone.set(id, this.fold(this.gone.get(id), row));
    }
    return [...live, ...this.gone.values()].sort((a, b) => a.pid - b.pid || a.func - b.func);
  }
}
