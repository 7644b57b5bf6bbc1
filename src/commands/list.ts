// `probe list`: the kernel's view of BPF on this machine: programs, maps, links (for uprobes: file,
// offset, and whether the kernel runs it at entry or at return), perf-event probes and their holders.
import { pc } from "../colors.ts";
import { kernelView, type Holder, type KernelView } from "../../lib/kernel-view.ts";
import { Out } from "../output.ts";
import { table, type Column } from "../table.ts";
import { requireTracingCaps } from "../session.ts";
import { writeStderr } from "../stderr.ts";

export interface ListOptions {
  json?: boolean;
}

function holders(h: Holder[], pins: string[]): string {
  const procs = h.map((x) => `${x.comm}[${x.pid}]`);
  return [...new Set(procs), ...pins.map((p) => `pinned ${p}`)].join(", ") || "-";
}

function offsets(offs: number[]): string {
  return offs.map((o) => `0x${o.toString(16)}`).join(",");
}

/** What the listing cannot show, and which capability it would take: an empty list must not pass for "none". */
function listWarnings(v: KernelView): string[] {
  const out: string[] = [];
  if (v.enumerationDenied) out.push("the kernel refused to list BPF programs, maps and links: listing them needs CAP_SYS_ADMIN (CAP_BPF and CAP_PERFMON are not enough); the sections above are not the machine's");
  if (v.unreadable) out.push(`${v.unreadable} BPF objects could not be opened: opening objects by id needs CAP_SYS_ADMIN (CAP_BPF alone sees only its own)`);
  if (v.hiddenProcesses) out.push(`the fds of ${v.hiddenProcesses} processes could not be read (other users' need CAP_SYS_PTRACE): their perf-event probes and holdings are not shown`);
  return out;
}

export async function run(o: ListOptions): Promise<number> {
  requireTracingCaps();
  const v = kernelView();
  const out = new Out();
  if (o.json) {
    for (const p of v.programs) out.line(JSON.stringify({ kind: "prog", id: p.id, name: p.name, type: p.type, tag: p.tag, map_ids: p.mapIds, holders: p.holders, pins: p.pins }));
    for (const m of v.maps) out.line(JSON.stringify({ kind: "map", id: m.id, name: m.name, type: m.type, key_size: m.keySize, value_size: m.valueSize, max_entries: m.maxEntries, holders: m.holders, pins: m.pins }));
    for (const l of v.links) {
      out.line(JSON.stringify({
        kind: "link", id: l.id, type: l.type, prog_id: l.progId, prog_name: l.progName ?? null,
        ...(l.uprobe ? { probe: l.uprobe.kind, path: l.uprobe.path, offsets: l.uprobe.offsets, pid: l.uprobe.pid || null } : {}),
        ...(l.perfEvent ? { event: l.perfEvent.kind, name: l.perfEvent.name } : {}),
        holders: l.holders, pins: l.pins,
      }));
    }
    for (const p of v.perfEvents) {
      out.line(JSON.stringify({ kind: "perf_event", probe: p.kind, path: p.path, offset: p.offset, prog_id: p.progId, prog_name: p.progName ?? null, pid: p.pid, comm: p.comm, fd: p.fd }));
    }
    out.flush();
    for (const w of listWarnings(v)) writeStderr(`${JSON.stringify({ event: "warning", message: w })}\n`);
    return 0;
  }
  const section = (title: string, columns: Column[], rows: string[][]) => {
    out.line(pc.bold(`${title} (${rows.length})`));
    if (rows.length) for (const l of table(columns, rows, "  ")) out.line(l);
    out.line("");
  };
  section("PROGRAMS", [{ title: "ID", right: true }, { title: "TYPE" }, { title: "NAME" }, { title: "TAG" }, { title: "MAPS" }, { title: "HELD BY" }],
    v.programs.map((p) => [String(p.id), p.type, p.name || "-", p.tag, p.mapIds.join(",") || "-", holders(p.holders, p.pins)]));
  section("MAPS", [{ title: "ID", right: true }, { title: "TYPE" }, { title: "NAME" }, { title: "KEY", right: true }, { title: "VALUE", right: true }, { title: "MAX", right: true }, { title: "HELD BY" }],
    v.maps.map((m) => [String(m.id), m.type, m.name || "-", String(m.keySize), String(m.valueSize), String(m.maxEntries), holders(m.holders, m.pins)]));
  section("LINKS", [{ title: "ID", right: true }, { title: "TYPE" }, { title: "PROG" }, { title: "ATTACHED" }, { title: "HELD BY" }],
    v.links.map((l) => {
      let what = "-";
      if (l.uprobe) {
        const kind = l.uprobe.kind === "uretprobe" ? pc.magenta("uretprobe") : pc.cyan("uprobe");
        what = `${kind} ${l.uprobe.path} ${offsets(l.uprobe.offsets)}${l.uprobe.pid ? ` pid ${l.uprobe.pid}` : ""}`;
      } else if (l.perfEvent) {
        what = `${l.perfEvent.kind} ${l.perfEvent.name}`;
      }
      return [String(l.id), l.type, `${l.progId} ${l.progName ?? "?"}`, what, holders(l.holders, l.pins)];
    }));
  section("PERF EVENTS WITH BPF", [{ title: "PID", right: true }, { title: "COMM" }, { title: "FD", right: true }, { title: "PROG" }, { title: "PROBE" }],
    v.perfEvents.map((p) => {
      const kind = p.kind === "uretprobe" ? pc.magenta("uretprobe") : p.kind === "uprobe" ? pc.cyan("uprobe") : p.kind;
      const where = p.kind === "uprobe" || p.kind === "uretprobe" ? `${p.path} 0x${p.offset.toString(16)}` : p.path;
      return [String(p.pid), p.comm, String(p.fd), `${p.progId} ${p.progName ?? "?"}`, `${kind} ${where}`];
    }));
  for (const w of listWarnings(v)) writeStderr(`probe: warning: ${w}\n`);
  out.flush();
  return 0;
}
