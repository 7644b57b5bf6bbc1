// `probe load app.bpf.o`: a user's own BPF object: --set globals, attach its programs (from
// --attach specs or their SEC names), then print its maps every interval and its bpf_printk lines,
// or --pin it all so it stays attached after probe exits.
import { pc } from "../colors.ts";
import { LoadError } from "../../lib/object.ts";
import { TargetNotFound } from "../../lib/resolve.ts";
import { ProcessError } from "../../lib/namespaces.ts";
import {
  loadUserObject, parseAttachSpec, parseSetting, printkFormats, PrintkReader, verifierSummary, UserObjectError,
  type UserObject, type Attachment,
} from "../../lib/user-object.ts";
import { MapFormatter } from "../../lib/btf.ts";
import { MapReader } from "../../lib/maps.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { parseAttachMode, parseSeconds, requireTracingCaps } from "../options.ts";
import { targetProcess, openForProcess, openHostTarget } from "../targets.ts";
import { Out, pad } from "../output.ts";
import { runLoop } from "../run-loop.ts";
import { snapshotMap, printSnapshot } from "./map.ts";

export interface LoadCommandOptions {
  /** `PROG=KIND:TARGET:FUNCTION`, repeatable. */
  attach?: string | string[];
  /** `NAME=VALUE` for .rodata/.bss/.data globals, repeatable. */
  set?: string | string[];
  /** Maps to print every interval: `a,b` (repeatable too). */
  maps?: string | string[];
  interval?: number | string;
  duration?: number | string;
  pin?: string;
  printk?: boolean;
  json?: boolean;
  pid?: number | string;
  container?: string;
  attachMode?: string;
}

function list(v: string | string[] | undefined): string[] {
  if (v === undefined || (v as unknown) === false) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function cliError(e: unknown): unknown {
  if (e instanceof UserObjectError) {
    return Object.assign(e.usage ? new UsageError(e.message) : new ProbeError(e.message, e.hint), { hint: e.hint });
  }
  if (e instanceof TargetNotFound || e instanceof ProcessError) return new ProbeError(e.message, e.hint);
  return e;
}

/** The verifier's reason in one line: its last line that is not bookkeeping. */
function verifierReason(log: string): string {
  const lines = verifierSummary(log, 40).split("\n").filter((l) => !/^\d+: /.test(l) && !/^;/.test(l) && !/BPF program load failed/.test(l));
  return lines.at(-1)?.trim() ?? "";
}

function describeAttachment(a: Attachment): Record<string, unknown> {
  const kernel = a.link.info();
  return {
    prog: a.prog,
    kind: a.kind,
    target: a.target,
    function: a.func,
    offsets: a.offsets,
    from: a.from,
    links: kernel.map((k) => ({ id: k.id, type: k.type, ...(k.uprobe ? { retprobe: k.uprobe.retprobe, path: k.uprobe.path, offsets: k.uprobe.offsets } : {}) })),
  };
}

export async function run(object: string | undefined, o: LoadCommandOptions): Promise<number> {
  if (!object) throw new UsageError("missing argument <object>: the BPF object file (clang -O2 -g -target bpf -c app.bpf.c -o app.bpf.o)");
  const durationSec = parseSeconds("duration", o.duration ?? 0);
  const intervalSec = parseSeconds("interval", o.interval ?? 1, 0.01);
  const mode = parseAttachMode(o.attachMode);
  const proc = await targetProcess(o);
  const pid = proc?.pid;
  const out = new Out();
  const json = !!o.json;
  const note = (m: string) => {
    if (json) out.line(JSON.stringify({ note: m }));
    else process.stderr.write(`${pc.dim(`probe: ${m}`)}\n`);
  };
  let attach, set;
  try {
    attach = list(o.attach).map(parseAttachSpec);
    set = list(o.set).map(parseSetting);
  } catch (e) {
    throw cliError(e);
  }
  const mapNames = list(o.maps).flatMap((m) => m.split(",")).map((m) => m.trim()).filter(Boolean);
  requireTracingCaps();

  let uo: UserObject;
  try {
    uo = loadUserObject(object, { attach, set, pinDir: o.pin, pid, mode, openTarget: (target) => (proc ? openForProcess(target, proc) : openHostTarget(target)), onNote: note });
  } catch (e) {
    if (e instanceof LoadError) {
      const summary = verifierSummary(e.log);
      if (summary) process.stderr.write(`${summary}\n`);
      const reason = verifierReason(e.log);
      const prog = /prog '([^']+)': BPF program load failed/.exec(e.log)?.[1];
      const what = prog && reason ? `the verifier rejected program '${prog}' of ${object}: ${reason}` : `${e.message}${reason ? `: ${reason}` : ""}`;
      throw new ProbeError(what, summary ? "the verifier's log (its last lines) is above" : undefined);
    }
    throw cliError(e);
  }

  try {
    for (const a of uo.attachments) {
      if (json) out.line(JSON.stringify({ attached: describeAttachment(a) }));
      else {
        const where = a.kind === "tracepoint" ? a.target : `${a.target} ${a.func} ${a.offsets.map((x) => `0x${x.toString(16)}`).join(",")}`;
        const ids = describeAttachment(a).links as { id: number; type: string }[];
        out.line(`${pc.green("attached")} ${pad(a.prog, 20)}${pad(a.kind, 11)}${where}  ${pc.dim(`[${a.from}; link ${ids.map((l) => `${l.id} ${l.type}`).join(", ")}]`)}`);
      }
    }
    for (const p of uo.unattached) {
      if (json) out.line(JSON.stringify({ loaded_not_attached: p }));
      else out.line(`${pc.yellow("loaded  ")} ${pad(p, 20)}not attached (no --attach and its SEC name does not say where)`);
    }
    const known = uo.maps().map((m) => m.name);
    for (const m of mapNames) {
      if (!known.includes(m)) throw new UsageError(`--maps ${m}: ${object} has no map '${m}' (its maps: ${known.join(", ")})`);
    }

    if (o.pin) {
      for (const p of uo.pinned) out.line(json ? JSON.stringify({ pinned: p }) : `${pc.dim("pinned")} ${p}`);
      if (!json) out.line(`Stays attached after probe exits; remove with: probe unload ${o.pin}`);
      out.flush();
      return 0;
    }
    out.flush();

    const readers = mapNames.map((name) => {
      const r = new MapReader(uo.mapFd(name));
      return { r, f: new MapFormatter(r.info) };
    });
    const printMaps = (final: boolean) => {
      const label = final ? "final" : new Date().toISOString().slice(11, 19);
      const targets = readers.length ? readers : final ? uo.maps().filter((m) => !m.internal).map((m) => {
        const r = new MapReader(m.fd);
        return { r, f: new MapFormatter(r.info) };
      }) : [];
      for (const { r, f } of targets) printSnapshot(out, snapshotMap(r.fd, f), json, label);
      out.flush();
    };

    let printk: PrintkReader | undefined;
    if (o.printk) {
      printk = new PrintkReader(printkFormats(object), pid ? new Set([pid]) : undefined);
      printk.start((l) => {
        out.line(json ? JSON.stringify({ printk: l.message, pid: l.pid, comm: l.comm, cpu: l.cpu, ts: l.timestamp }) : `${pc.dim(`${l.comm}-${l.pid}`)} ${l.message}`);
        out.flush();
      }, note);
    }
    if (!json) process.stderr.write(`${pc.dim(`Loaded ${object}${pid ? ` for pid ${pid}` : ""} [${uo.mode === "multi" ? "uprobe_multi" : "perf_event"}]. Ctrl-C to stop.`)}\n`);
    await runLoop({ durationSec, intervalSec, report: readers.length ? () => printMaps(false) : undefined, watchPid: pid });
    await printk?.stop();
    printMaps(true);
    return 0;
  } finally {
    out.flush();
    uo.close();
  }
}
