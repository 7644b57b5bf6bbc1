// `probe load app.bpf.o`: a user's own BPF object: --set globals, attach its programs (from
// --attach specs or their SEC names), then print its maps every interval and its bpf_printk lines,
// or --pin it all so it stays attached after probe exits. Runs through the same session as
// `uprobe`: targets in the process's view, the kernel's PID filter, the PID re-checked.
import { pc } from "../colors.ts";
import { ProbeError, UsageError } from "../errors.ts";
import { LoadError } from "../../lib/object.ts";
import { loadUserObject, ObjectPlanError, type AttachSpec, type UserObject, type Attachment } from "../../lib/user-object.ts";
import { GlobalError, type GlobalSetting } from "../../lib/globals.ts";
import { PinDirInUse } from "../../lib/bpffs.ts";
import { verifierSummary, verifierReason, rejectedProgram, libbpfReason } from "../../lib/verifier.ts";
import { PrintkReader, cStrings, formatToRegExp } from "../../lib/tracefs/trace-pipe.ts";
import { openTarget } from "../../lib/proc/target.ts";
import { MapFormatter } from "../../lib/btf.ts";
import { MapReader } from "../../lib/maps.ts";
import { list } from "../options.ts";
import { withSession, explainAttachError, type SessionOptions } from "../session.ts";
import { AttachError } from "../../lib/uprobe.ts";
import { pad } from "../output.ts";
import { snapshotMap, printSnapshot } from "./map.ts";

export interface LoadCommandOptions extends SessionOptions {
  /** `PROG=KIND:TARGET:FUNCTION`, repeatable. */
  attach?: string | string[];
  /** `NAME=VALUE` for .rodata/.bss/.data globals, repeatable. */
  set?: string | string[];
  /** Maps to print every interval: `a,b` (repeatable too). */
  maps?: string | string[];
  pin?: string;
  printk?: boolean;
}

/** `PROG=KIND:TARGET:FUNCTION` (`entry_ssl_read=uprobe:libssl:SSL_read`, `tp=tracepoint:sched:sched_switch`). */
export function parseAttachSpec(text: string): AttachSpec {
  const eq = text.indexOf("=");
  const bad = () =>
    new UsageError(`bad --attach '${text}'`, "write PROG=uprobe:TARGET:FUNCTION, PROG=uretprobe:TARGET:FUNCTION or PROG=tracepoint:CATEGORY:NAME");
  if (eq <= 0) throw bad();
  const prog = text.slice(0, eq);
  const parts = text.slice(eq + 1).split(":");
  if (parts.length < 3) throw bad();
  const kind = parts[0] === "tp" ? "tracepoint" : parts[0];
  if (kind !== "uprobe" && kind !== "uretprobe" && kind !== "tracepoint") throw bad();
  const func = parts[parts.length - 1]!;
  const target = parts.slice(1, -1).join(":");
  if (!target || !func) throw bad();
  return { prog, kind, target, func, from: "explicit" };
}

export function parseSetting(text: string): GlobalSetting {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new UsageError(`bad --set '${text}'`, "write NAME=VALUE, NAME being a global variable of the object");
  return { name: text.slice(0, eq), value: text.slice(eq + 1) };
}

function describeAttachment(a: Attachment): Record<string, unknown> {
  const kernel = a.link.info();
  return {
    prog: a.prog,
    kind: a.kind,
    target: a.target,
    function: a.func,
    offsets: a.offsets,
    from: a.from === "explicit" ? "--attach" : "SEC",
    ...(a.atReturns ? { at_returns: true } : {}),
    links: kernel.map((k) => ({ id: k.id, type: k.type, ...(k.uprobe ? { retprobe: k.uprobe.retprobe, path: k.uprobe.path, offsets: k.uprobe.offsets } : {}) })),
  };
}

/** A failed load in one line: the verifier's reason, or libbpf's own last word. */
function explainLoad(e: LoadError, object: string): ProbeError {
  const summary = verifierSummary(e.log);
  if (summary) process.stderr.write(`${summary}\n`);
  const reason = verifierReason(e.log);
  const prog = rejectedProgram(e.log);
  if (prog && reason) return new ProbeError(`the verifier rejected program '${prog}' of ${object}: ${reason}`, "the verifier's log (its last lines) is above");
  const libbpf = libbpfReason(e.log);
  return new ProbeError(`${e.message}${libbpf ? `: ${libbpf}` : reason ? `: ${reason}` : ""}`);
}

export async function run(object: string | undefined, o: LoadCommandOptions): Promise<number> {
  if (!object) throw new UsageError("missing argument <object>: the BPF object file (clang -O2 -g -target bpf -c app.bpf.c -o app.bpf.o)");
  const attach = list(o.attach).map(parseAttachSpec);
  const set = list(o.set).map(parseSetting);
  const mapNames = list(o.maps).flatMap((m) => m.split(",")).map((m) => m.trim()).filter(Boolean);
  return withSession(o, async (s) => {
    const out = s.out;
    const json = s.json;
    const note = (m: string) => (json ? out.line(JSON.stringify({ note: m })) : s.note(`probe: ${m}`));
    const proc = s.filter.proc;
    let uo: UserObject;
    try {
      uo = loadUserObject(object, {
        attach,
        set,
        pinDir: o.pin,
        pid: s.filter.kernelPid,
        mode: s.mode,
        openTarget: (target) => openTarget(target, proc ? { pid: proc.pid } : {}),
        onNote: note,
      });
    } catch (e) {
      if (e instanceof LoadError) throw explainLoad(e, object);
      if (e instanceof AttachError) throw explainAttachError(e, false);
      if (e instanceof ObjectPlanError || e instanceof GlobalError) throw new UsageError(e.message, e.hint);
      if (e instanceof PinDirInUse) throw new UsageError(e.message, `run 'probe unload ${o.pin}' first, or pin somewhere else`);
      throw e;
    }
    s.scope.add(uo);
    s.confirm();

    for (const a of uo.attachments) {
      if (json) out.line(JSON.stringify({ attached: describeAttachment(a) }));
      else {
        const where = a.kind === "tracepoint" ? a.target : `${a.target} ${a.func} ${a.offsets.map((x) => `0x${x.toString(16)}`).join(",")}`;
        const ids = describeAttachment(a).links as { id: number; type: string }[];
        out.line(`${pc.green("attached")} ${pad(a.prog, 20)} ${pad(a.kind, 11)}${where}  ${pc.dim(`[${a.from === "explicit" ? "--attach" : "SEC"}; link ${ids.map((l) => `${l.id} ${l.type}`).join(", ")}]`)}`);
      }
    }
    for (const u of uo.unattached) {
      if (json) out.line(JSON.stringify({ loaded_not_attached: u.prog, reason: u.reason }));
      else out.line(`${pc.yellow("loaded  ")} ${pad(u.prog, 20)} not attached: ${u.reason}`);
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
    const onPrintk = (l: { message: string; pid: number; comm: string; cpu: number; timestamp: number }) => {
      out.line(json ? JSON.stringify({ printk: l.message, pid: l.pid, comm: l.comm, cpu: l.cpu, ts: l.timestamp }) : `${pc.dim(`${l.comm}-${l.pid}`)} ${l.message}`);
      out.flush();
    };
    if (o.printk) {
      const formats = uo.rodataSections().flatMap(cStrings).map(formatToRegExp);
      printk = s.scope.add(new PrintkReader(formats, s.filter.pid ? new Set([s.filter.pid]) : undefined));
      printk.start(onPrintk, note);
    }
    const how = [...new Set(uo.attachments.map((a) => (a.kind === "tracepoint" ? "tracepoint" : s.modeName)))].join(", ") || "nothing attached";
    if (!json) s.note(`Loaded ${object}${s.label} [${how}]. Ctrl-C to stop.`);
    await s.run({ report: readers.length ? () => printMaps(false) : undefined });
    printk?.stop(onPrintk);
    printMaps(true);
    return 0;
  });
}
