// Attaching a loaded program to a kernel tracepoint: a perf event for it, and a BPF link on that.
import { closeFd } from "./ffi/libc.ts";
import { ProbeError } from "./errors.ts";
import { linkCreatePerfEvent } from "./kernel/bpf.ts";
import { openTracepointEvent } from "./kernel/perf-event.ts";
import { LinkSet } from "./link.ts";
import { tracefsRoot, tracepointId } from "./tracefs/root.ts";

/** A perf-event tracepoint with a BPF link on it. */
export class TracepointLink extends LinkSet {
  constructor(
    readonly name: string,
    linkFds: number[],
    perfFds: number[],
  ) {
    super(linkFds, perfFds);
  }
}

export class NoSuchTracepoint extends ProbeError {}

/**
 * A BPF link on the perf event of tracepoint CATEGORY/NAME, for every CPU and process. `cookie`
 * is what bpf_get_attach_cookie returns in the program (which tracepoint fired, when one program
 * is attached to several).
 */
export function attachTracepoint(progFd: number, category: string, name: string, onNote?: (m: string) => void, cookie = 0n): TracepointLink {
  const root = tracefsRoot(onNote);
  const id = tracepointId(root, category, name);
  if (id === undefined) throw new NoSuchTracepoint(`no tracepoint ${category}:${name} (${root}/events/${category}/${name})`, `see ${root}/available_events`);
  const pfd = openTracepointEvent(id, `${category}:${name}`);
  try {
    return new TracepointLink(`${category}/${name}`, [linkCreatePerfEvent(progFd, pfd, cookie)], [pfd]);
  } catch (e) {
    closeFd(pfd);
    throw e;
  }
}
