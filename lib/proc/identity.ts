// A process by identity, not by number: its PID, its start time, and (where our /proc is our own
// PID namespace's) a pidfd. A PID can be handed to another process once its owner exits; the start
// time changes then, and a pidfd keeps pointing at the exited process.
import { readFileSync, statSync } from "node:fs";
import { closeFd, readableNow, syscallErr, SYS, OsError } from "../ffi/libc.ts";
import { ProbeError } from "../errors.ts";

export class ProcessError extends ProbeError {
  constructor(
    message: string,
    readonly pid: number,
    readonly reason: "gone" | "permission" | "reused" | "not-found" | "timeout" | "invalid" | "kernel-thread",
    hint?: string,
  ) {
    super(message, hint);
  }
}

export const ENOENT = 2, ESRCH = 3, EACCES = 13, EPERM = 1, EINVAL = 22, ENOSYS = 38, E2BIG = 7, ELOOP = 40, ENOTDIR = 20;

export function gone(pid: number, doing: string): ProcessError {
  return new ProcessError(`process ${pid} does not exist (or has exited) ${doing}`, pid, "gone", "check the PID with `ps -p PID`; a container's host PID is what `docker inspect -f {{.State.Pid}}` prints");
}

export function permission(pid: number, doing: string, cap: string): ProcessError {
  const root = process.getuid?.() === 0;
  // Its /proc files are ptrace-guarded: say why the kernel says no, when it is not "another user's".
  const why = cap.includes("CAP_SYS_PTRACE") ? ptraceDenial(pid) : undefined;
  const hint = root ? `probe runs as root but lacks ${cap} (a container started without it?)` : `run as root, or grant ${cap}`;
  const because = why === "non-dumpable"
    ? " (it is not dumpable: PR_SET_DUMPABLE 0, as setuid and hardened programs make themselves; even its own user needs it)"
    : why === "capabilities" ? " (it holds capabilities probe lacks)" : "";
  return new ProcessError(`permission denied ${doing} of process ${pid}: needs ${cap}${because}`, pid, "permission", hint);
}

/** Status fields of a process: its effective uid and permitted capabilities. */
function credentials(pid: number | "self"): { euid: number; capPrm: bigint } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(s);
    const cap = /^CapPrm:\s+([0-9a-f]+)/m.exec(s);
    return uid && cap ? { euid: Number(uid[1]), capPrm: BigInt(`0x${cap[1]}`) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the kernel would refuse us another process's /proc files, when it is not the usual "another
 * user's": the same user is refused a non-dumpable process (PR_SET_DUMPABLE 0: setuid programs,
 * ssh-agent, hardened daemons) or one holding capabilities we lack. Both need CAP_SYS_PTRACE.
 */
function ptraceDenial(pid: number): "non-dumpable" | "capabilities" | undefined {
  const them = credentials(pid);
  const us = credentials("self");
  if (!them || !us || them.euid !== us.euid) return undefined;
  return (them.capPrm & ~us.capPrm) !== 0n ? "capabilities" : "non-dumpable";
}

/** Turns an errno from a /proc/PID/... access into the error a user can act on. */
export function procErrno(pid: number, errno: number, doing: string, cap = "CAP_SYS_PTRACE"): Error {
  if (errno === ENOENT || errno === ESRCH) return gone(pid, doing);
  if (errno === EPERM || errno === EACCES) return permission(pid, doing, cap);
  return new OsError(doing, errno, `pid ${pid}`);
}

export function errnoOf(e: unknown): number {
  if (e instanceof OsError) return e.errno;
  const code = (e as { code?: string }).code;
  const named: Record<string, number> = { ENOENT, ESRCH, EACCES, EPERM, ELOOP };
  if (code && named[code]) return named[code]!;
  const n = (e as { errno?: number }).errno;
  return n ? Math.abs(n) : EINVAL;
}

export function validPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new ProcessError(`invalid PID ${pid}`, pid, "invalid");
}

interface Stat {
  state: string;
  flags: number;
  startTime: bigint;
}

const PF_KTHREAD = 0x00200000;

function readStat(pid: number | "self"): Stat {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // comm (field 2) can hold spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0]!, flags: Number(rest[6]), startTime: BigInt(rest[19]!) }; // fields 3, 9, 22
}

/** Whether the PID names a live process (a zombie has exited: no root, no maps). */
export function processExists(pid: number): boolean {
  try {
    const s = readStat(pid);
    return s.state !== "Z" && s.state !== "X";
  } catch {
    return false;
  }
}

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat, in clock ticks since boot. */
  startTime: bigint;
}

export function processIdentity(pid: number): ProcessIdentity {
  validPid(pid);
  let s: Stat;
  try {
    s = readStat(pid);
  } catch (e) {
    throw procErrno(pid, errnoOf(e), `reading /proc/${pid}/stat`);
  }
  if (s.state === "Z" || s.state === "X") throw gone(pid, "(it is a zombie)");
  if (s.flags & PF_KTHREAD) throw new ProcessError(`process ${pid} is a kernel thread: it has no user space to probe`, pid, "kernel-thread", "give the PID of a user-space process");
  return { pid, startTime: s.startTime };
}

/** Whether the process is still the one identified (same PID, same start time, alive). */
export function isSameProcess(id: ProcessIdentity): boolean {
  try {
    const s = readStat(id.pid);
    return s.startTime === id.startTime && s.state !== "Z" && s.state !== "X";
  } catch {
    return false;
  }
}

/** Throws ProcessError "gone" or "reused" unless `id` still names the same running process. */
export function assertSameProcess(id: ProcessIdentity, doing = "while attaching"): void {
  let now: ProcessIdentity;
  try {
    now = processIdentity(id.pid);
  } catch (e) {
    if (e instanceof ProcessError && e.reason === "gone") throw gone(id.pid, doing);
    throw e;
  }
  if (now.startTime !== id.startTime) {
    throw new ProcessError(`process ${id.pid} exited and its PID was reused by another process ${doing}`, id.pid, "reused", "the target restarted: run probe again with its new PID");
  }
}

/**
 * A handle that says whether the identified process has exited, immune to PID reuse: a pidfd
 * where /proc shows our own PID namespace (pidfd_open takes PIDs of our namespace), else the
 * start time, re-read on every check.
 */
export class ProcessWatch {
  private pidfd = -1;

  constructor(readonly id: ProcessIdentity) {
    if (procIsOurPidNamespace()) {
      const fd = syscallErr(SYS.pidfd_open, id.pid, 0);
      if (fd >= 0) {
        // The PID may have changed hands between reading its identity and opening the pidfd.
        if (isSameProcess(id)) this.pidfd = fd;
        else closeFd(fd);
      }
    }
  }

  exited(): boolean {
    if (this.pidfd >= 0) return readableNow(this.pidfd);
    return !isSameProcess(this.id);
  }

  close(): void {
    closeFd(this.pidfd);
    this.pidfd = -1;
  }
}

let ownPidNs: boolean | undefined;
/**
 * Whether /proc shows our own PID namespace. When probe runs in a container of its own with the
 * host's /proc mounted, PIDs there are host PIDs, which the kernel's own filters (perf, pidfd,
 * uprobe_multi) would read in our namespace.
 */
export function procIsOurPidNamespace(): boolean {
  if (ownPidNs !== undefined) return ownPidNs;
  try {
    ownPidNs = readFileSync("/proc/self/stat", "utf8").startsWith(`${process.pid} `);
  } catch {
    ownPidNs = false;
  }
  return ownPidNs;
}

/** The PID at every PID namespace level, host first, innermost last (`NSpid:` of /proc/PID/status). */
export function nsPids(pid: number): number[] {
  validPid(pid);
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch (e) {
    throw procErrno(pid, errnoOf(e), `reading /proc/${pid}/status`);
  }
  const m = /^NSpid:\s*(.*)$/m.exec(status);
  // Kernels before 4.1 have no NSpid: one level.
  return m ? m[1]!.trim().split(/\s+/).map(Number) : [pid];
}

export interface PidNamespace {
  /** Inode number of /proc/PID/ns/pid: what the kernel calls the namespace's inum. */
  inum: number;
  /** Depth below the namespace /proc shows (the initial one, normally). */
  level: number;
}

/** The PID namespace a process lives in (a container's, for its processes). */
export function pidNamespace(pid: number): PidNamespace {
  let inum: number;
  try {
    inum = statSync(`/proc/${pid}/ns/pid`).ino;
  } catch (e) {
    throw procErrno(pid, errnoOf(e), `reading /proc/${pid}/ns/pid`);
  }
  return { inum, level: nsPids(pid).length - 1 };
}

/** The command name of a process ("?" once it is gone). */
export function processComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}
