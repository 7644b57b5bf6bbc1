// Files probed across a selection of containers: attached once per real inode (containers of one
// image share their layers' files, and the kernel's uprobe is on the inode, so one link serves
// every container; the programs' PID-namespace filter keeps only the selected processes), and
// detached once no selected container uses the file any more.
import type { Closable } from "../lib/scope.ts";
import type { TracedContainer } from "./fleet.ts";

interface Shared<T> {
  /** What attaching made; undefined while detached (the file is known, no container uses it). */
  attached: T | undefined;
  users: Set<TracedContainer>;
}

export class SharedFiles<T extends Closable> implements Closable {
  private readonly files = new Map<string, Shared<T>>();

  /** Whether container `c` is already counted as a user of the file `key`. */
  uses(key: string, c: TracedContainer): boolean {
    return !!this.files.get(key)?.users.has(c);
  }

  /**
   * Counts `c` as a user of the file `key` (an OpenTarget's inodeKey); `attach` runs when no
   * container used it (the first, or the first since the last one stopped). Returns what attaching
   * made when it ran now, undefined when the file was already attached. When `attach` throws, `c`
   * is not counted (the next look tries again) and the error is passed on.
   */
  use(key: string, c: TracedContainer, attach: () => T): T | undefined {
    let f = this.files.get(key);
    if (!f) {
      f = { attached: undefined, users: new Set() };
      this.files.set(key, f);
    }
    let made: T | undefined;
    if (!f.attached) made = f.attached = attach();
    f.users.add(c);
    return made;
  }

  /** Containers using the file now. */
  users(key: string): number {
    return this.files.get(key)?.users.size ?? 0;
  }

  /** Files attached now. */
  get attachedCount(): number {
    let n = 0;
    for (const f of this.files.values()) if (f.attached) n++;
    return n;
  }

  /** `c` stopped: the files only it used are detached; returns their keys. */
  release(c: TracedContainer): string[] {
    const detached: string[] = [];
    for (const [key, f] of this.files) {
      if (!f.users.delete(c) || f.users.size > 0 || !f.attached) continue;
      f.attached.close();
      f.attached = undefined;
      detached.push(key);
    }
    return detached;
  }

  close(): void {
    for (const f of this.files.values()) {
      f.attached?.close();
      f.attached = undefined;
    }
  }
}
