// bpf_printk output from tracefs trace_pipe, read by probe itself with a non-blocking fd polled on
// a timer: no child process that could outlive us and keep eating other tools' lines.
// trace_pipe is consumed by reading: another reader at the same time takes lines away from us.
import { readSync, writeFileSync } from "node:fs";
import { closeFd, openPath, O } from "../ffi/libc.ts";
import { tracefsRoot } from "./root.ts";

export interface PrintkLine {
  comm: string;
  pid: number;
  cpu: number;
  timestamp: number;
  message: string;
}

/** Parses a trace_pipe line: `  curl-6679  [007] ...11  402.234559: bpf_trace_printk: msg`. */
export function parseTraceLine(line: string): PrintkLine | undefined {
  const m = /^\s*(.*)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+bpf_trace_printk:\s?(.*)$/.exec(line);
  if (!m) return undefined;
  return { comm: m[1]!, pid: Number(m[2]), cpu: Number(m[3]), timestamp: Number(m[4]), message: m[5]! };
}

/** A printf format string as a regexp that matches what it prints. */
export function formatToRegExp(fmt: string): RegExp {
  let re = "";
  const spec = /%([-+ #0]*\d*(?:\.\d+)?)(hh|h|ll|l|z)?([diuxXpscoK%]|p[KSsBbIi]?[46]?)/y;
  for (let i = 0; i < fmt.length; ) {
    if (fmt[i] === "%") {
      spec.lastIndex = i;
      const m = spec.exec(fmt);
      if (m) {
        const conv = m[3]!;
        re += conv === "%" ? "%" : conv === "s" || conv.startsWith("p") ? "[\\s\\S]*?" : conv === "c" ? "[\\s\\S]" : "\\s*[-+]?(?:0x)?[0-9a-fA-F]*";
        i = spec.lastIndex;
        continue;
      }
    }
    re += fmt[i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    i++;
  }
  return new RegExp(`^${re.replace(/\\n$|\n$/, "")}$`);
}

/** Printable C strings in a data section (an object's .rodata): the candidates for printk formats. */
export function cStrings(bytes: Uint8Array): string[] {
  const out: string[] = [];
  const dec = new TextDecoder();
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) continue;
    if (i - start >= 2) {
      const s = dec.decode(bytes.subarray(start, i));
      if (/^[\x20-\x7e\t\n]+$/.test(s)) out.push(s);
    }
    start = i + 1;
  }
  return out;
}

/**
 * Reads trace_pipe lines that match one of `formats` (and, with `pids`, only from those
 * processes). Lines already in the buffer before start() are skipped: a marker written through
 * trace_marker sorts after them.
 */
export class PrintkReader {
  private fd = -1;
  private timer: Timer | undefined;
  private buf = "";
  private readonly chunk = new Uint8Array(64 * 1024);
  private readonly dec = new TextDecoder();
  private marker = "";
  private seenMarker = false;

  constructor(
    private readonly formats: RegExp[],
    private readonly pids?: Set<number>,
  ) {}

  matches(l: PrintkLine): boolean {
    if (this.pids && this.pids.size > 0 && !this.pids.has(l.pid)) return false;
    return this.formats.some((f) => f.test(l.message));
  }

  start(onLine: (l: PrintkLine) => void, onNote?: (m: string) => void, pollMs = 50): void {
    const root = tracefsRoot(onNote);
    this.fd = openPath(`${root}/trace_pipe`, O.RDONLY | O.NONBLOCK | O.CLOEXEC);
    this.marker = `probe-printk-start-${process.pid}-${Date.now()}`;
    try {
      writeFileSync(`${root}/trace_marker`, this.marker);
    } catch {
      this.seenMarker = true; // no trace_marker: old lines may show
    }
    this.timer = setInterval(() => this.drain(onLine), pollMs);
  }

  /** Reads everything available now. */
  drain(onLine: (l: PrintkLine) => void): void {
    if (this.fd < 0) return;
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.chunk, 0, this.chunk.length, null);
      } catch {
        return; // EAGAIN: nothing more for now
      }
      if (n <= 0) return;
      this.buf += this.dec.decode(this.chunk.subarray(0, n), { stream: true });
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (!this.seenMarker) {
          this.seenMarker = line.includes(this.marker);
          continue;
        }
        const parsed = parseTraceLine(line);
        if (parsed && this.matches(parsed)) onLine(parsed);
      }
    }
  }

  stop(onLine?: (l: PrintkLine) => void): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (onLine) this.drain(onLine);
    closeFd(this.fd);
    this.fd = -1;
  }

  close(): void {
    this.stop();
  }
}
