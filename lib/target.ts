// A target file opened once: the ELF we parse and the inode we probe are the same, because the
// kernel is handed /proc/self/fd/N rather than a path that could change under us.
import { openSync, closeSync, fstatSync } from "node:fs";
import { ElfFile } from "./elf.ts";

export class OpenTarget {
  readonly elf: ElfFile;
  readonly dev: number;
  readonly ino: number;
  /** Equal for two targets exactly when the kernel probes one inode (see lib/namespaces.ts realInode). */
  readonly inodeKey: string;
  private closed = false;

  /**
   * Takes ownership of `fd`. `display` is the name the user knows the file by; `inodeKey` the
   * key of the inode the kernel really probes (on overlayfs the layer file), default dev:ino.
   */
  constructor(
    readonly fd: number,
    readonly display: string,
    inodeKey?: string,
  ) {
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${display} is not a regular file`);
      this.dev = st.dev;
      this.ino = st.ino;
      this.inodeKey = inodeKey ?? `${st.dev}:${st.ino}`;
      this.elf = new ElfFile(fd, display);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  static open(path: string, display = path): OpenTarget {
    return new OpenTarget(openSync(path, "r"), display);
  }

  /** The path the kernel resolves to exactly this open file, in our own mount namespace. */
  get kernelPath(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
