// `probe list`: the kernel's view of BPF on this machine: programs, maps, links (for uprobes: file,
// offset, and whether the kernel runs it at entry or at return), perf-event probes and their holders.
import { pc } from "../colors.ts";
import { kernelView, type Holder } from "../../lib/kernel-view.ts";
import { Out, pad } from "../output.ts";
import { requireTracingCaps } from "../session.ts";

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
    return 0;
  }
  out.line(pc.bold(`PROGRAMS (${v.programs.length})`));
  if (v.programs.length) out.line(pc.dim(`  ${pad("ID", 7)}${pad("TYPE", 15)}${pad("NAME", 18)}${pad("TAG", 18)}${pad("MAPS", 20)}HELD BY`));
  for (const p of v.programs) out.line(`  ${pad(p.id, 7)}${pad(p.type, 15)}${pad(p.name || "-", 18)}${pad(p.tag, 18)}${pad(p.mapIds.join(",") || "-", 20)}${holders(p.holders, p.pins)}`);
  out.line("");
  out.line(pc.bold(`MAPS (${v.maps.length})`));
  if (v.maps.length) out.line(pc.dim(`  ${pad("ID", 7)}${pad("TYPE", 15)}${pad("NAME", 18)}${pad("KEY", 6)}${pad("VALUE", 7)}${pad("MAX", 9)}HELD BY`));
  for (const m of v.maps) out.line(`  ${pad(m.id, 7)}${pad(m.type, 15)}${pad(m.name || "-", 18)}${pad(m.keySize, 6)}${pad(m.valueSize, 7)}${pad(m.maxEntries, 9)}${holders(m.holders, m.pins)}`);
  out.line("");
  out.line(pc.bold(`LINKS (${v.links.length})`));
  if (v.links.length) out.line(pc.dim(`  ${pad("ID", 7)}${pad("TYPE", 14)}${pad("PROG", 24)}${pad("ATTACHED", 60)}HELD BY`));
  for (const l of v.links) {
    let what = "-";
    if (l.uprobe) {
      const kind = l.uprobe.kind === "uretprobe" ? pc.magenta("uretprobe") : pc.cyan("uprobe   ");
      what = `${kind} ${l.uprobe.path} ${offsets(l.uprobe.offsets)}${l.uprobe.pid ? ` pid ${l.uprobe.pid}` : ""}`;
    } else if (l.perfEvent) {
      what = `${l.perfEvent.kind} ${l.perfEvent.name}`;
    }
    out.line(`  ${pad(l.id, 7)}${pad(l.type, 14)}${pad(`${l.progId} ${l.progName ?? "?"}`, 24)}${pad(what, 60)}${holders(l.holders, l.pins)}`);
  }
  out.line("");
  out.line(pc.bold(`PERF EVENTS WITH BPF (${v.perfEvents.length})`));
  if (v.perfEvents.length) out.line(pc.dim(`  ${pad("PID", 8)}${pad("COMM", 16)}${pad("FD", 5)}${pad("PROG", 24)}PROBE`));
  for (const p of v.perfEvents) {
    const kind = p.kind === "uretprobe" ? pc.magenta("uretprobe") : p.kind === "uprobe" ? pc.cyan("uprobe   ") : p.kind;
    const where = p.kind === "uprobe" || p.kind === "uretprobe" ? `${p.path} 0x${p.offset.toString(16)}` : p.path;
    out.line(`  ${pad(p.pid, 8)}${pad(p.comm, 16)}${pad(p.fd, 5)}${pad(`${p.progId} ${p.progName ?? "?"}`, 24)}${kind} ${where}`);
  }
  out.flush();
  return 0;
}
