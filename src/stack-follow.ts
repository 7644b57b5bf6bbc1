// The processes' mappings followed while stacks are recorded (uprobe and usdt --stack/--stacks):
// the views stacks are named in (src/stack-views.ts), completed by the kernel's reports of
// executable mappings, execs, forks and exits (lib/proc/mmap-events.ts), which start before the
// probes fire (and a held command starts), so that a process gone before its maps are read keeps
// them. Exits are applied only after the stacks read in the same round: those were recorded first.
import { DROP, EV_STACK, STACK, STACK_FP_MAX, UPROBE_CONFIG } from "../lib/layouts.ts";
import { MmapEvents } from "../lib/proc/mmap-events.ts";
import type { BpfObject } from "../lib/object.ts";
import { RingBuffer } from "../lib/ringbuf.ts";
import { ProcessViews } from "./stack-views.ts";
import { StackCounter, StackUnwinder, fpCountPids, readFpCounts, reportStacks, type StackRequest } from "./stacks.ts";
import type { Session } from "./session.ts";

/** The ring buffer for copied stacks: a record is the stack size and ~0.6 KiB. */
export const STACK_RING_BYTES = 16 << 20;
/** Frame-pointer stacks the program can tell apart (BPF stack map entries). */
export const FP_STACK_IDS = 16384;
/** Counted stacks printed one by one at most (every one in JSON, --folded, --flamegraph). */
export const HUMAN_STACKS = 20;

/** What records losses of stacks (the program's `dropped` map), for Session.watchLosses. */
export const STACK_LOSSES = [
  { index: DROP.RING, kind: "events", what: "stacks lost (ring buffer full: the reader fell behind)" },
  { index: DROP.STACKS, kind: "stacks", what: "stacks not counted (the stack table was full)" },
];

/** How the program takes stacks: copied (unwound here), walked by frame pointers, or those counted per stack. */
export function stackKindOf(req: StackRequest): number {
  return req.mode !== "fp" ? STACK.COPY : req.aggregate ? STACK.FP_COUNT : STACK.FP;
}

/** Writes the stack part of struct uprobe_config; returns the kind of stack (STACK.*). */
export function configureStacks(cv: DataView, req: StackRequest): number {
  const kind = stackKindOf(req);
  cv.setUint8(UPROBE_CONFIG.stack, kind);
  cv.setUint32(UPROBE_CONFIG.stack_size, kind === STACK.COPY ? req.stackSize : 0, true);
  cv.setUint32(UPROBE_CONFIG.fp_frames, kind === STACK.FP ? STACK_FP_MAX : 0, true);
  return kind;
}

export class StackMappings {
  readonly views: ProcessViews;
  private readonly mmaps?: MmapEvents;
  private readonly exited: number[] = [];

  constructor(s: Session) {
    this.views = new ProcessViews(s.scope);
    this.mmaps = watchMappings(s);
  }

  /** Applies what the kernel reported since the last call (exits held back for forgetExited). */
  sync(): void {
    const v = this.views;
    this.mmaps?.consume({ mmap: (r) => v.onMmap(r), exec: (pid) => v.onExec(pid), fork: (pid, ppid) => v.onFork(pid, ppid), exit: (pid) => this.exited.push(pid) });
  }

  /** Whether processes exited since the last forgetExited(). */
  get exits(): boolean {
    return this.exited.length > 0;
  }

  /** Drops the processes that exited (call once the stacks read with them are named). */
  forgetExited(): void {
    for (const pid of this.exited.splice(0)) this.views.onExit(pid);
  }
}

/** The kernel's reports of executable mappings, or undefined (with a warning) when perf events are refused. */
function watchMappings(s: Session): MmapEvents | undefined {
  try {
    return s.scope.add(new MmapEvents());
  } catch (e) {
    s.warn(`stacks of processes that exit before probe reads their maps will stay unnamed: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * `--stacks`: calls counted per stack, copied stacks read from the ring buffer and unwound here, or
 * frame-pointer stacks counted by the program (STACK_FP_COUNT: its processes named from what was
 * read while they ran). `finish` prints the report; `title` heads a flame graph.
 */
export function countStacks(
  s: Session,
  obj: BpfObject,
  mappings: StackMappings,
  unwinder: StackUnwinder,
  req: StackRequest,
  o: { kind: number; names: string[]; atEntry: boolean[]; perProcess: boolean; title: string },
): { poll: () => number; finish: () => void } {
  const views = mappings.views;
  let counter = new StackCounter();
  let poll: () => number;
  if (o.kind === STACK.FP_COUNT) {
    let seen = 0;
    poll = () => {
      mappings.sync();
      // Processes are named at exit from what was read while they ran.
      if (mappings.exits || performance.now() - seen > 200) {
        seen = performance.now();
        for (const pid of fpCountPids(obj.mapFd("stack_counts"))) views.remember(pid);
      }
      mappings.forgetExited();
      return 0;
    };
  } else {
    const rb = s.scope.add(new RingBuffer(obj.mapFd("events")));
    const onRecord = (v: DataView, off: number, len: number) => {
      if (v.getUint32(off, true) === EV_STACK) counter.add(unwinder.fromRecord(v, off, len));
    };
    poll = () => {
      mappings.sync();
      const got = rb.consume(onRecord);
      mappings.forgetExited();
      s.out.flush();
      return got;
    };
  }
  const finish = () => {
    if (o.kind === STACK.FP_COUNT) counter = readFpCounts(obj.mapFd("stack_counts"), obj.mapFd("stack_ids"), o.atEntry, views);
    reportStacks(counter.totals(unwinder, o.perProcess), counter.calls, req, o.names, s.json, s.out, (msg) => s.note(msg), o.title, HUMAN_STACKS);
  };
  return { poll, finish };
}
