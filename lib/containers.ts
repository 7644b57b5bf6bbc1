// A container name or id -> the host PID of its main process, asking each engine whose CLI is
// installed: docker, podman, containerd's ctr (every namespace of every socket found), crictl.
import { existsSync } from "node:fs";
import { ProbeError } from "./errors.ts";
export type Engine = "docker" | "podman" | "ctr" | "crictl";

export interface ContainerPid {
  pid: number;
  engine: Engine;
  /** What the engine matched (its id, or namespace/id for ctr). */
  id: string;
}

export interface EngineAttempt {
  engine: Engine;
  /** Why this engine did not give a PID. */
  reason: string;
}

export class ContainerError extends ProbeError {
  constructor(
    message: string,
    readonly attempts: EngineAttempt[],
    hint?: string,
  ) {
    super(message, hint);
  }
}

const ENGINE_TIMEOUT_MS = 15_000;

function which(cmd: string): string | undefined {
  return Bun.which(cmd) ?? undefined;
}

function run(argv: string[]): { ok: boolean; out: string; err: string } {
  try {
    const r = Bun.spawnSync(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: ENGINE_TIMEOUT_MS });
    const err = r.stderr.toString().trim() || (r.signalCode ? `killed by ${r.signalCode} (timeout ${ENGINE_TIMEOUT_MS} ms?)` : "");
    return { ok: r.exitCode === 0, out: r.stdout.toString(), err };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

function firstLine(s: string): string {
  return s.split("\n").find((l) => l.trim())?.trim().slice(0, 300) ?? "";
}

type Lookup = (nameOrId: string) => ContainerPid | string;

// docker and podman share the CLI shape; State.Pid is 0 for a container that is not running.
function inspectLookup(engine: "docker" | "podman"): Lookup {
  return (nameOrId) => {
    const r = run([engine, "inspect", "--type", "container", "-f", "{{.State.Pid}} {{.Id}}", nameOrId]);
    if (!r.ok) return firstLine(r.err) || `exit status non-zero`;
    const [pid, id] = r.out.trim().split(/\s+/);
    const n = Number(pid);
    if (!n) return `container ${nameOrId} is not running`;
    return { pid: n, engine, id: id ?? nameOrId };
  };
}

// containerd sockets: its own, dockerd's private one, k3s's.
const CONTAINERD_SOCKETS = ["/run/containerd/containerd.sock", "/run/docker/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock"];

function ctrLookup(nameOrId: string): ContainerPid | string {
  const addrs = [...new Set([process.env.CONTAINERD_ADDRESS, ...CONTAINERD_SOCKETS].filter((a): a is string => !!a && existsSync(a)))];
  if (addrs.length === 0) return `no containerd socket (${CONTAINERD_SOCKETS.join(", ")})`;
  const reasons: string[] = [];
  for (const addr of addrs) {
    const ctr = ["ctr", "-a", addr, "--connect-timeout", "2s"];
    const nsList = run([...ctr, "namespaces", "ls", "-q"]);
    if (!nsList.ok) {
      reasons.push(`${addr}: ${firstLine(nsList.err)}`);
      continue;
    }
    for (const ns of nsList.out.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const r = run([...ctr, "-n", ns, "task", "ls"]);
      if (!r.ok) {
        reasons.push(`${addr} ${ns}: ${firstLine(r.err)}`);
        continue;
      }
      // TASK  PID  STATUS; task ids are container ids: a unique id prefix is accepted too.
      const rows = r.out.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 3);
      const exact = rows.find((c) => c[0] === nameOrId);
      const prefix = rows.filter((c) => c[0]!.startsWith(nameOrId));
      const row = exact ?? (prefix.length === 1 ? prefix[0] : undefined);
      if (row) {
        const pid = Number(row[1]);
        if (!pid || row[2] !== "RUNNING") return `task ${ns}/${row[0]} is ${row[2]?.toLowerCase()}`;
        return { pid, engine: "ctr", id: `${ns}/${row[0]}` };
      }
      if (prefix.length > 1) reasons.push(`${ns}: ${nameOrId} is a prefix of ${prefix.length} tasks`);
    }
  }
  return reasons.length ? reasons.join("; ") : `no such task in ${addrs.join(", ")}`;
}

function crictlLookup(nameOrId: string): ContainerPid | string {
  // crictl matches ids by prefix; names need `ps --name`.
  let id = nameOrId;
  const ps = run(["crictl", "ps", "-q", "--name", `^${nameOrId}$`]);
  if (ps.ok && ps.out.trim()) {
    const ids = ps.out.trim().split("\n");
    if (ids.length > 1) return `${ids.length} containers are named ${nameOrId}`;
    id = ids[0]!.trim();
  }
  const r = run(["crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}", id]);
  if (!r.ok) return firstLine(r.err) || "not found";
  const pid = Number(r.out.trim());
  return pid ? { pid, engine: "crictl", id } : `container ${nameOrId} has no running process`;
}

const ENGINES: [Engine, Lookup][] = [
  ["docker", inspectLookup("docker")],
  ["podman", inspectLookup("podman")],
  ["ctr", ctrLookup],
  ["crictl", crictlLookup],
];

/** Engines whose CLI is installed, in the order they are asked. */
export function installedEngines(): Engine[] {
  return ENGINES.filter(([e]) => which(e)).map(([e]) => e);
}

/**
 * The host PID of container `nameOrId`: the first installed engine that knows it wins.
 * Throws ContainerError naming every engine tried (and why each failed) when none does.
 */
export function containerPid(nameOrId: string, engines: Engine[] = installedEngines()): ContainerPid {
  if (!nameOrId.trim()) throw new ContainerError("empty container name", []);
  const attempts: EngineAttempt[] = [];
  for (const engine of engines) {
    const lookup = ENGINES.find(([e]) => e === engine)?.[1];
    if (!lookup || !which(engine)) continue;
    const r = lookup(nameOrId);
    if (typeof r !== "string") return r;
    attempts.push({ engine, reason: r });
  }
  if (attempts.length === 0) {
    throw new ContainerError(`cannot look up container ${nameOrId}: none of docker, podman, ctr, crictl is installed`, [], "give the container's host PID instead");
  }
  const detail = attempts.map((a) => `${a.engine}: ${a.reason}`).join("; ");
  throw new ContainerError(`no running container ${nameOrId} (asked ${attempts.map((a) => a.engine).join(", ")} — ${detail})`, attempts, "check the name with `docker ps` / `podman ps` / `ctr -n k8s.io task ls`, or give its host PID");
}
