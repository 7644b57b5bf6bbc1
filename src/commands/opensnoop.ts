// `probe opensnoop`: every open(2), openat(2) and openat2(2) — who opened which path, with which
// flags, and the fd or the error — as the libbpf-tools opensnoop shows them, for the host, one
// process or a container (every process of its PID namespace, with the container's PIDs).
import { OPENSNOOP_CONFIG, OPEN_EVENT, OPEN_NAME_MAX, OPEN_SYSCALLS } from "../../lib/layouts.ts";
import { attachTracepoint, NoSuchTracepoint } from "../../lib/tracepoint.ts";
import { RingBuffer } from "../../lib/ringbuf.ts";
import { errnoName } from "../../lib/errno-names.ts";
import { AT_FDCWD, openFlagsText, openTakesMode, resolveFlagsText } from "../../lib/open-flags.ts";
import { HostPaths } from "../../lib/proc/host-path.ts";
import { clockNs, CLOCK } from "../../lib/ffi/libc.ts";
import { pc } from "../colors.ts";
import { UsageError } from "../errors.ts";
import { parseCount } from "../options.ts";
import { withSession, type Session, type SessionOptions } from "../session.ts";
import { jsonInt, pad } from "../output.ts";

export interface OpensnoopOptions extends SessionOptions {
  tid?: unknown;
  uid?: unknown;
  name?: unknown;
  failed?: boolean;
  extendedFields?: boolean;
  timestamp?: boolean;
  printUid?: boolean;
  resolve?: boolean;
}

/** Entry tracepoint and program per syscall; one exit program serves all three. */
const SYSCALLS = [
  { name: "openat", prog: "snoop_openat" },
  { name: "openat2", prog: "snoop_openat2" },
  { name: "open", prog: "snoop_open" },
] as const;

interface Filters {
  tid: number;
  uid: number | undefined;
  name: string | undefined;
}

function parseFilters(o: OpensnoopOptions): Filters {
  if (o.anyProcess) throw new UsageError("--any-process does not apply to opensnoop (it traces syscalls, not a file)");
  const tid = parseCount("tid", o.tid, 0, 1, 4194304);
  const uid = o.uid === undefined ? undefined : parseCount("uid", o.uid, 0, 0, 4294967294);
  let name: string | undefined;
  if (o.name !== undefined) {
    name = String(Array.isArray(o.name) ? o.name.at(-1) : o.name);
    if (typeof o.name === "boolean" || name === "") throw new UsageError("--name takes a process name (or part of one), not ''");
    if (Buffer.byteLength(name) > OPEN_NAME_MAX - 1) throw new UsageError(`--name '${name}' is longer than a process name can be (${OPEN_NAME_MAX - 1} bytes)`);
  }
  return { tid, uid, name };
}

export async function run(o: OpensnoopOptions): Promise<number> {
  const f = parseFilters(o);
  return withSession(o, async (s) => {
    const proc = s.filter.proc;
    // The container's own PID is recorded by the program: most openers are short-lived, gone
    // from /proc by the time their line is printed.
    const wantNspid = s.wantsNspid;
    const { bytes: cfg, view: cv } = s.config(OPENSNOOP_CONFIG.size);
    cv.setUint32(OPENSNOOP_CONFIG.tid, f.tid, true);
    cv.setUint32(OPENSNOOP_CONFIG.uid, f.uid ?? 0, true);
    cv.setUint8(OPENSNOOP_CONFIG.filter_uid, f.uid === undefined ? 0 : 1);
    cv.setUint8(OPENSNOOP_CONFIG.failed_only, o.failed ? 1 : 0);
    cv.setUint8(OPENSNOOP_CONFIG.want_nspid, wantNspid ? 1 : 0);
    if (f.name) {
      const nb = new TextEncoder().encode(f.name);
      cv.setUint8(OPENSNOOP_CONFIG.name_len, nb.length);
      cfg.set(nb, OPENSNOOP_CONFIG.name);
    }
    // -T counts from here: opens caught while attaching are not before the start.
    const startNs = clockNs(CLOCK.MONOTONIC);
    const obj = s.load("opensnoop", cfg);
    const traced = attachAll(s, (prog) => obj.progFd(prog));
    s.confirm();

    const filters = [
      f.tid ? `tid ${f.tid}` : "",
      f.uid !== undefined ? `uid ${f.uid}` : "",
      f.name ? `comm containing '${f.name}'` : "",
      o.failed ? "failed only" : "",
    ].filter(Boolean);
    s.note(`Tracing ${traced.join(", ")}${s.label}${filters.length ? ` (${filters.join(", ")})` : ""}. Ctrl-C to stop.`);

    const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
    s.watchLosses(obj.mapFd("dropped"), [{ index: 0, kind: "events", what: "opens lost (ring buffer full: the reader fell behind)" }]);
    const printer = new OpenPrinter(s, o, wantNspid, startNs);
    if (!s.json) s.out.line(pc.bold(printer.header()));
    s.out.flush();
    const onEvent = (v: DataView, off: number, len: number) => printer.event(v, off, len);
    await s.run({
      poll: () => {
        const n = rb.consume(onEvent);
        s.out.flush();
        return n;
      },
    });
    s.out.flush();
    return 0;
  });
}

/** Attaches exits first (an entry without its exit would wait in the map), then entries. */
function attachAll(s: Session, progFd: (name: string) => number): string[] {
  const traced: string[] = [];
  const onNote = (m: string) => s.note(`probe: ${m}`);
  for (const sc of SYSCALLS) {
    try {
      s.scope.add(attachTracepoint(progFd("snoop_exit"), "syscalls", `sys_exit_${sc.name}`, onNote));
      s.scope.add(attachTracepoint(progFd(sc.prog), "syscalls", `sys_enter_${sc.name}`, onNote));
      traced.push(sc.name);
    } catch (e) {
      // open(2) is absent on arm64 and openat2(2) before 5.6: trace the others. openat is a must.
      if (!(e instanceof NoSuchTracepoint) || sc.name === "openat") throw e;
      s.note(`probe: this kernel has no ${sc.name}(2) tracepoints; not traced`);
    }
  }
  return traced;
}

const utf8 = new TextDecoder("utf-8");

/** One line (or JSON object) per open. */
class OpenPrinter {
  private readonly hostPaths: HostPaths | undefined;
  /** Flag words repeat: each decoded once. */
  private readonly flagTexts = new Map<bigint, string>();

  constructor(
    private readonly s: Session,
    private readonly o: OpensnoopOptions,
    private readonly nspidColumn: boolean,
    private readonly startNs: bigint,
  ) {
    this.hostPaths = o.resolve ? new HostPaths() : undefined;
  }

  private flagsText(flags: bigint): string {
    let t = this.flagTexts.get(flags);
    if (t === undefined) {
      t = openFlagsText(flags);
      if (this.flagTexts.size > 4096) this.flagTexts.clear();
      this.flagTexts.set(flags, t);
    }
    return t;
  }

  header(): string {
    const o = this.o;
    return (
      (o.timestamp ? pad("TIME(s)", 10) : "") +
      (o.printUid ? pad("UID", 8) : "") +
      pad("PID", 8) +
      (this.nspidColumn ? pad("NSPID", 8) : "") +
      pad("COMM", 16) +
      pad("FD", 4) +
      pad("ERR", 8) +
      (o.extendedFields ? pad("FLAGS", 28) : "") +
      (this.hostPaths ? "PATH [=> HOST PATH]" : "PATH")
    );
  }

  event(v: DataView, off: number, len: number): void {
    const E = OPEN_EVENT;
    const pathLen = v.getUint16(off + E.path_len, true);
    if (len < E.path + pathLen) return; // a record cut short: nothing sane to print
    const ts = v.getBigUint64(off + E.ts, true);
    const ret = Number(v.getBigInt64(off + E.ret, true));
    const pid = v.getUint32(off + E.pid, true);
    const tid = v.getUint32(off + E.tid, true);
    const uid = v.getUint32(off + E.uid, true);
    const nspid = v.getUint32(off + E.nspid, true);
    const dfd = v.getInt32(off + E.dfd, true);
    const syscall = OPEN_SYSCALLS[v.getUint16(off + E.syscall, true)] ?? "open";
    const flags = v.getBigUint64(off + E.flags, true);
    const mode = Number(v.getBigUint64(off + E.mode, true) & 0xffffn);
    const resolve = v.getBigUint64(off + E.resolve, true);
    const comm = asciiz(v, off + E.comm, 16);
    // path_len counts the NUL; 0 when the program could not read the path.
    const path = pathLen > 0 ? utf8.decode(new Uint8Array(v.buffer, v.byteOffset + off + E.path, pathLen - 1)) : undefined;
    const errno = ret < 0 ? -ret : 0;
    const error = errno ? (errnoName(errno) ?? String(errno)) : undefined;
    const host = this.hostPaths && path !== undefined ? this.hostPaths.resolve(pid, path, dfd) : undefined;
    const o = this.o;
    const out = this.s.out;

    if (this.s.json) {
      const takesMode = openTakesMode(flags);
      out.line(
        JSON.stringify({
          event: "open",
          ts: jsonInt(ts),
          pid,
          tid,
          uid,
          comm,
          ...(nspid ? { nspid: [pid, nspid] } : {}),
          syscall,
          fd: ret >= 0 ? ret : -1,
          errno,
          error: error ?? null,
          path: path ?? null,
          ...(dfd !== AT_FDCWD ? { dfd } : {}),
          flags: jsonInt(flags),
          flags_text: this.flagsText(flags),
          ...(takesMode ? { mode: `0${mode.toString(8)}` } : {}),
          ...(syscall === "openat2" ? { resolve: resolveFlagsText(resolve) } : {}),
          ...(this.hostPaths ? { host_path: host ?? null } : {}),
        }),
      );
      return;
    }
    const time = o.timestamp ? col((Number(ts - this.startNs) / 1e9).toFixed(3), 10) : "";
    let flagText = "";
    if (o.extendedFields) {
      flagText = this.flagsText(flags);
      if (openTakesMode(flags)) flagText += ` 0${mode.toString(8)}`;
      if (resolve) flagText += ` ${resolveFlagsText(resolve)}`;
      flagText = col(flagText, 28);
    }
    const shown = path === undefined ? "?" : printable(path);
    const hostText = host !== undefined && host !== path ? ` => ${printable(host)}` : "";
    out.line(
      time +
        (o.printUid ? col(uid, 8) : "") +
        col(pid, 8) +
        (this.nspidColumn ? col(nspid || "-", 8) : "") +
        col(comm, 16) +
        col(ret >= 0 ? ret : -1, 4) +
        col(error ?? "0", 8) +
        flagText +
        shown +
        hostText,
    );
  }
}

const SPACES = " ".repeat(64);

/** A column `w` wide, always followed by at least one space (per event: no padEnd, no String()). */
function col(v: string | number, w: number): string {
  const t = typeof v === "string" ? v : `${v}`;
  return t.length < w ? t + SPACES.slice(0, w - t.length) : `${t} `;
}

/** A NUL-terminated byte string as Latin-1 (a task's comm): a loop beats TextDecoder at this size. */
function asciiz(v: DataView, off: number, max: number): string {
  let s = "";
  for (let i = off; i < off + max; i++) {
    const c = v.getUint8(i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** A path with control characters escaped (a file name may hold a newline). */
function printable(s: string): string {
  // biome-ignore lint: control characters are the point
  return /[\x00-\x1f\x7f]/.test(s) ? JSON.stringify(s) : s;
}
