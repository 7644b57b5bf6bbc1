// The owner of a set of BPF links and the perf events they sit on: closing it detaches them.
import { closeFd } from "./ffi/libc.ts";
import { linkInfo, type LinkInfo } from "./kernel/bpf.ts";

export class LinkSet {
  private closed = false;
  constructor(
    /** BPF link fds. */
    readonly linkFds: number[],
    /** perf event fds under them (perf-event attachments only). */
    readonly perfFds: number[],
  ) {}

  /** What the kernel says about each link: type, and for uprobes the file, offsets, entry or return. */
  info(): LinkInfo[] {
    return this.linkFds.map((fd) => linkInfo(fd));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.linkFds) closeFd(fd);
    for (const fd of this.perfFds) closeFd(fd);
  }
}
