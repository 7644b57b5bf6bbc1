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
import { Btf, BTF_KIND, MapFormatter, hexBytes, type JsonValue } from "../../lib/btf.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { PerfBuffer } from "../../lib/perfbuf.ts";
import { MAP_TYPE } from "../../lib/kernel/abi.ts";
import { MapReader } from "../../lib/maps.ts";
import { list } from "../options.ts";
import { withSession, explainAttachError, type Session, type SessionOptions } from "../session.ts";
import { AttachError } from "../../lib/uprobe.ts";
import { pad, type Out } from "../output.ts";
import { snapshotMap, printSnapshot } from "./map.ts";
import { writeStderr } from "../stderr.ts";
import { mark } from "../timing.ts";

export interface LoadCommandOptions extends SessionOptions {
  /** `PROG=KIND:TARGET:FUNCTION`, repeatable. */
  attach?: string | string[];
  /** `NAME=VALUE` for .rodata/.bss/.data globals, repeatable. */
  set?: string | string[];
  /** Maps to print every interval: `a,b` (repeatable too). */
  maps?: string | string[];
  pin?: string;
  printk?: boolean;
  /** `MAP` or `MAP:TYPE`: print a ring buffer's or perf event array's records (decoded as TYPE from the object's BTF). */
  events?: string | string[];
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

const EVENT_MAPS: Set<number> = new Set([MAP_TYPE.RINGBUF, MAP_TYPE.PERF_EVENT_ARRAY]);

interface EventStream {
  name: string;
  poll(out: Out, json: boolean): number;
  lost(): number;
}

/** `--events MAP[:TYPE]`: a ring buffer's or perf event array's records, as hex or as TYPE from the object's BTF. */
function openEventStream(s: Session, uo: UserObject, spec: string): EventStream {
  const [name, typeName] = spec.split(":", 2) as [string, string | undefined];
  const fd = uo.mapFd(name);
  const info = new MapReader(fd).info;
  if (!EVENT_MAPS.has(info.type)) throw new UsageError(`--events ${name}: a ${info.typeName} map holds entries, not records`, `print it with --maps ${name}`);
  let decode = (b: Uint8Array): { text: string; json: JsonValue } => ({ text: hexBytes(b), json: hexBytes(b) });
  if (typeName) {
    const handle = uo.obj.btfHandle();
    const btf = handle ? Btf.fromLibbpf(handle) : undefined;
    const t = btf?.types.find((x) => x && x.name === typeName && (x.kind === BTF_KIND.STRUCT || x.kind === BTF_KIND.UNION || x.kind === BTF_KIND.TYPEDEF));
    if (!btf || !t) throw new UsageError(`--events ${spec}: ${uo.path} has no type '${typeName}' in its BTF`, "name a struct the program writes into the map (compile with -g)");
    decode = (b) => ({ text: btf.format(t.id, b), json: btf.toJson(t.id, b) });
  }
  const emit = (out: Out, json: boolean, b: Uint8Array) => {
    const d = decode(b);
    out.line(json ? JSON.stringify({ event: "record", map: name, value: d.json }) : `${pc.dim(name)} ${d.text}`);
  };
  if (info.type === MAP_TYPE.RINGBUF) {
    const rb = s.scope.add(new RingBuffer(fd));
    return { name, poll: (out, json) => rb.consume((v, off, len) => emit(out, json, new Uint8Array(v.buffer, v.byteOffset + off, len))), lost: () => 0 };
  }
  const pb = s.scope.add(new PerfBuffer(fd));
  return { name, poll: (out, json) => pb.consume((b) => emit(out, json, b)), lost: () => pb.lost };
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
  if (summary) writeStderr(`${summary}\n`);
  const reason = verifierReason(e.log);
  const prog = rejectedProgram(e.log);
  if (prog && reason) return new ProbeError(`the verifier rejected program '${prog}' of ${object}: ${reason}`, "the verifier's log (its last lines) is above");
  const libbpf = libbpfReason(e.log);
  return new ProbeError(`${e.message}${libbpf ? `: ${libbpf}` : reason ? `: ${reason}` : ""}`);
}

export async function run(object: string | undefined, o: LoadCommandOptions): Promise<number> {
  mark("command module loaded");
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
    const streams = list(o.events).map((spec) => openEventStream(s, uo, spec));
    const printMaps = (final: boolean) => {
      const label = final ? "final" : new Date().toISOString().slice(11, 19);
      const targets = readers.length ? readers : final ? uo.maps().filter((m) => !m.internal).map((m) => {
        const r = new MapReader(m.fd);
        return { r, f: new MapFormatter(r.info) };
      }) : [];
      for (const { r, f } of targets) {
        // Ring buffers and perf event arrays hold no entries to dump: their records are events.
        if (EVENT_MAPS.has(r.info.type)) {
          if (!final || !streams.some((st) => st.name === r.info.name)) {
            if (json) out.line(JSON.stringify({ map: r.info.name, type: r.info.typeName, note: "records, not entries: see --events" }));
            else out.line(pc.dim(`${label} ${r.info.name} (${r.info.typeName}): records, not entries; --events ${r.info.name} prints them`));
          }
          continue;
        }
        try {
          printSnapshot(out, snapshotMap(r.fd, f), json, label);
        } catch (e) {
          const why = e instanceof ProbeError ? e.message : String(e);
          if (json) out.line(JSON.stringify({ map: r.info.name, type: r.info.typeName, error: why }));
          else out.line(pc.dim(`${label} ${r.info.name} (${r.info.typeName}): cannot be read: ${why}`));
        }
      }
      out.flush();
    };
    const poll = streams.length
      ? () => {
          let n = 0;
          for (const st of streams) n += st.poll(out, json);
          out.flush();
          return n;
        }
      : undefined;

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
    await s.run({ poll, report: readers.length ? () => printMaps(false) : undefined });
    for (const st of streams) {
      if (st.lost()) s.warn(`${st.lost()} records of ${st.name} lost (its buffer was full)`);
    }
    printk?.stop(onPrintk);
    printMaps(true);
    return 0;
  });
}
