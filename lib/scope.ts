// One owner for the kernel objects a command creates: closed in reverse order of creation, once,
// whatever happened in between (a failed attach must not leave the earlier links behind).

export interface Closable {
  close(): void;
}

export class Scope implements Closable {
  private items: Closable[] = [];
  private closed = false;

  add<T extends Closable>(item: T): T {
    if (this.closed) {
      item.close();
      throw new Error("scope already closed");
    }
    this.items.push(item);
    return item;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const item of this.items.reverse()) {
      try {
        item.close();
      } catch {
        // Keep closing the rest: a failure here must not leave later objects attached.
      }
    }
    this.items = [];
  }
}
