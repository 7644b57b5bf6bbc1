// lib/kernel/perf-ring.ts through its two users' record kinds, with rings of one page per CPU so
// that records wrap past the ring's end many times: lib/proc/mmap-events.ts against the real
// processes spawned here (their pid from spawn, the mapped file's device and inode from stat),
// and lost records counted rather than misread when a ring is left to fill.
import { describe, expect, test } from "bun:test";
import { realpathSync, statSync } from "node:fs";
import { MmapEvents, type MmapRecord } from "../../lib/proc/mmap-events.ts";

const TRUE = realpathSync("/bin/true");
const RUNS = 40;

function collect(ev: MmapEvents) {
  const seen = { mmaps: [] as MmapRecord[], execs: [] as number[], forks: [] as [number, number][], exits: [] as number[] };
  ev.consume({ mmap: (m) => seen.mmaps.push(m), exec: (p) => seen.execs.push(p), fork: (p, pp) => seen.forks.push([p, pp]), exit: (p) => seen.exits.push(p) });
  return seen;
}

describe("per-CPU perf rings (one page each)", () => {
  test(`${RUNS} processes spawned one by one: each one's fork, exec, mapping of ${TRUE} and exit, in that order`, () => {
    const st = statSync(TRUE);
    // dev_t as glibc's major()/minor() split it.
    const major = (st.dev >>> 8) & 0xfff;
    const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
    const dev = `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
    const ev = new MmapEvents(1);
    try {
      collect(ev);
      let complete = 0;
      let lostRuns = 0;
      for (let i = 0; i < RUNS; i++) {
        const lostBefore = ev.lost;
        const p = Bun.spawnSync([TRUE]);
        expect(p.exitCode).toBe(0);
        const pid = p.pid;
        const order: string[] = [];
        const seen = { mmaps: [] as MmapRecord[] };
        ev.consume({
          mmap: (m) => {
            if (m.pid !== pid) return;
            seen.mmaps.push(m);
            if (m.path === TRUE) order.push("mmap");
          },
          exec: (p) => p === pid && order.push("exec"),
          fork: (p, pp) => p === pid && order.push(`fork from ${pp === process.pid ? "us" : pp}`),
          exit: (p) => p === pid && order.push("exit"),
        });
        if (ev.lost > lostBefore) {
          // Other processes on the machine filled a ring: what came through must still be whole.
          lostRuns++;
          continue;
        }
        expect(order).toEqual([expect.stringMatching(/^fork from /), "exec", "mmap", "exit"]);
        const main = seen.mmaps.find((m) => m.path === TRUE)!;
        expect(main).toMatchObject({ pid, dev, inode: st.ino });
        expect(main.end).toBeGreaterThan(main.start);
        expect(main.start % 4096).toBe(0);
        // Every executable mapping of the process is a file it has (ld.so, libc) or [vdso].
        for (const m of seen.mmaps) expect(m.path).toMatch(/^\/|^\[vdso\]$/);
        complete++;
      }
      console.log(`${complete} of ${RUNS} runs seen whole, ${lostRuns} with records lost (lost: ${ev.lost})`);
      expect(complete).toBeGreaterThanOrEqual(RUNS / 2);
    } finally {
      ev.close();
    }
  });

  test("a ring left to fill: records lost are counted, and what was kept decodes", () => {
    const ev = new MmapEvents(1);
    try {
      collect(ev);
      const pids: number[] = [];
      for (let i = 0; i < 60; i++) pids.push(Bun.spawnSync([TRUE]).pid);
      const seen = collect(ev);
      // The kernel writes its LOST record once there is room again: after the read above, at the
      // next event.
      Bun.spawnSync([TRUE]);
      collect(ev);
      expect(ev.lost).toBeGreaterThan(0);
      for (const m of seen.mmaps) expect(m.path).toMatch(/^\/|^\[vdso\]$/);
      // What was kept is what came first (the kernel drops records while the ring is full).
      expect(seen.mmaps.some((m) => pids.includes(m.pid) && m.path === TRUE)).toBe(true);
    } finally {
      ev.close();
    }
  });
});
