// Engine event streams as wake-up calls for the tracker: `ctr events` per containerd socket,
// `docker events` and `podman events` filtered to container starts and deaths. An event only says
// "look again now"; what changed is always read from a fresh listing, so a missed, duplicated or
// reordered event can delay a change (until the next periodic listing) but never corrupt one.
import type { Subprocess } from "bun";
import type { FleetEngine } from "./discovery.ts";

/** `ctr events` lines (TIME ZONE NAMESPACE TOPIC JSON) whose topic starts or ends a container's process. */
const CTR_EVENT = /\s(\S+)\s\/(tasks\/(start|exit|delete|paused|resumed)|containers\/(create|update|delete))\s/;

export interface WatchedStream {
  engine: FleetEngine;
  source: string;
  argv: string[];
}

export interface EventWatch {
  /** Streams running now (a stream that ended is restarted after a pause). */
  live(): WatchedStream[];
  close(): void;
}

export interface EventWatchOptions {
  containerdAddresses: string[];
  docker: boolean;
  podman: boolean;
  /** Called for each relevant event line; containerd's name their namespace. */
  onEvent(engine: FleetEngine, source: string, namespace?: string): void;
  /** Called when a stream ends or cannot start (it is retried). */
  onStreamEnd?(engine: FleetEngine, source: string, why: string): void;
  /** Pause before restarting an ended stream (default 2 s). */
  restartMs?: number;
}

export function watchEngineEvents(opts: EventWatchOptions): EventWatch {
  const streams: WatchedStream[] = [
    ...opts.containerdAddresses.map((a): WatchedStream => ({ engine: "containerd", source: a, argv: ["ctr", "-a", a, "events"] })),
    ...(opts.docker ? [{ engine: "docker" as const, source: "docker", argv: ["docker", "events", "--filter", "type=container", "--filter", "event=start", "--filter", "event=die", "--format", "{{.Action}} {{.ID}}"] }] : []),
    ...(opts.podman ? [{ engine: "podman" as const, source: "podman", argv: ["podman", "events", "--filter", "type=container", "--filter", "event=start", "--filter", "event=died", "--format", "{{.Status}} {{.ID}}"] }] : []),
  ];
  const procs = new Map<WatchedStream, Subprocess>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;

  const start = (s: WatchedStream) => {
    if (closed) return;
    let proc: Subprocess;
    try {
      proc = Bun.spawn(s.argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    } catch (e) {
      opts.onStreamEnd?.(s.engine, s.source, (e as Error).message);
      return;
    }
    procs.set(s, proc);
    // stderr is drained as it comes (a full pipe would stall the engine's CLI); its tail explains an end.
    let errTail = "";
    const errDone = (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) errTail = (errTail + dec.decode(chunk, { stream: true })).slice(-1000);
      } catch {
        // Nothing more to explain with.
      }
    })();
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (s.engine !== "containerd") {
              if (line.trim()) opts.onEvent(s.engine, s.source);
            } else {
              const m = CTR_EVENT.exec(line);
              if (m) opts.onEvent(s.engine, s.source, m[1]);
            }
          }
          if (buf.length > 1 << 20) buf = ""; // a line that long is no event we want
        }
      } catch {
        // The stream broke: handled as an end below.
      }
      const code = await proc.exited;
      procs.delete(s);
      if (closed) return;
      await errDone;
      const err = errTail.trim().split("\n").at(-1) ?? "";
      opts.onStreamEnd?.(s.engine, s.source, err || `exited with status ${code}`);
      const t = setTimeout(() => {
        timers.delete(t);
        start(s);
      }, opts.restartMs ?? 2_000);
      timers.add(t);
    })();
  };
  for (const s of streams) start(s);

  return {
    live: () => [...procs.keys()],
    close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const p of procs.values()) p.kill("SIGTERM");
      procs.clear();
    },
  };
}
