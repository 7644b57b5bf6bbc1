// `--stack`: the event stream with each call's user stack under it. The program sends a call's
// stack record right after its call record, from the same thread; records of other threads may
// come between them, so a call line waits (per thread) for its stack. A call whose stack record
// was lost is printed without one when the thread's next call comes, or at the end.
import type { FunctionLayout } from "../lib/types/function-layout.ts";
import { EV_CALL, EV_STACK } from "../lib/layouts.ts";
import { EventFormatter } from "./event-format.ts";
import { Out, WallClock, pad } from "./output.ts";
import { TypedEventPrinter } from "./typed-format.ts";
import { endText, stackJson, stackLines, type StackUnwinder } from "./stacks.ts";

export interface StackStream {
  onRecord: (v: DataView, off: number, len: number) => void;
  /** Prints the calls still waiting for their stack. */
  flush: () => void;
}

export function streamWithStacks(
  unwinder: StackUnwinder,
  names: string[],
  layouts: FunctionLayout[],
  kind: "typed" | "go" | "c",
  nsPids: ((pid: number, inner: number) => number[]) | undefined,
  json: boolean,
  out: Out,
  opts: { humanArgs: number; hexdump?: boolean; enums?: (Map<string, Map<number, string>> | undefined)[] },
): StackStream {
  const clock = new WallClock();
  const typed = kind === "typed" ? new TypedEventPrinter(names, layouts, clock, { hexdump: opts.hexdump, enums: opts.enums }, nsPids) : undefined;
  const raw = kind !== "typed" ? new EventFormatter(names, clock, opts.humanArgs, kind === "go", nsPids) : undefined;
  // EventFormatter writes JSON into an Out; a call line waiting for its stack is taken back as text.
  const scratch = new Out();
  const dec = new TextDecoder();
  const lineOf = (v: DataView, off: number, len: number): string => {
    if (typed) return json ? typed.json(v, off, len) : typed.human(v, off, len);
    if (!json) return raw!.human(v, off);
    raw!.json(scratch, v, off);
    const text = dec.decode(scratch.room(0).subarray(0, scratch.pos));
    scratch.pos = 0;
    return text.replace(/\n$/, "");
  };
  return stackStream(unwinder, names, lineOf, json, out);
}

/**
 * The stream around any call line: `lineOf` formats a record that is not a stack (a JSON line
 * must end with its object's `}`: the stack is added to it). `nameKey` is what a call whose record
 * was lost is named by in JSON ("function", "probe").
 */
export function stackStream(
  unwinder: StackUnwinder,
  names: string[],
  lineOf: (v: DataView, off: number, len: number) => string,
  json: boolean,
  out: Out,
  nameKey = "function",
): StackStream {
  const waiting = new Map<number, string>();

  const onRecord = (v: DataView, off: number, len: number) => {
    const k = v.getUint32(off, true);
    const tid = v.getUint32(off + 8, true);
    if (k === EV_STACK) {
      const sample = unwinder.fromRecord(v, off, len);
      const frames = unwinder.frames(sample);
      const call = waiting.get(tid);
      waiting.delete(tid);
      const end = endText(sample.end, sample.copied);
      if (json) {
        const stack = `"stack":${stackJson(frames)}${sample.end ? `,"stack_end":"${sample.end}"` : ""}`;
        out.line(call ? `${call.slice(0, -1)},${stack}}` : `{"event":"stack","pid":${sample.pid},"tid":${tid},"comm":${JSON.stringify(sample.comm)},${JSON.stringify(nameKey)}:${JSON.stringify(names[sample.func] ?? "?")},${stack}}`);
        return;
      }
      out.line(call ?? `${pad("", 13)}${pad(sample.pid, 8)}${pad(tid, 8)}${pad(sample.comm, 16)}${names[sample.func] ?? "?"} (its call record was lost)`);
      for (const l of stackLines(frames)) out.line(l);
      if (end) out.line(`        -- ${end}`);
      return;
    }
    const line = lineOf(v, off, len);
    if (k === EV_CALL) {
      const lost = waiting.get(tid);
      if (lost) out.line(lost);
      waiting.set(tid, line);
    } else {
      out.line(line);
    }
  };
  const flush = () => {
    for (const l of waiting.values()) out.line(l);
    waiting.clear();
    out.flush();
  };
  return { onRecord, flush };
}
