// Event names: available_events parsing, glob selection, "did you mean", and names that must not
// become paths. The live tracefs (listing, walking events/, bpftrace -l) is in
// tests/kernel/tracefs-format.test.ts.
import { describe, expect, test } from "bun:test";
import { closestEvents, eventFormatPath, eventKey, globRegExp, isEventGlob, matchEvents, parseAvailableEvents, parseEventId, TracefsError } from "../../lib/tracefs/events.ts";
import { editDistance } from "../../lib/closest.ts";

// An excerpt of this kernel's available_events, in its order.
const AVAILABLE = `syscalls:sys_exit_openat2
syscalls:sys_enter_openat2
syscalls:sys_exit_openat
syscalls:sys_enter_openat
syscalls:sys_exit_open
syscalls:sys_enter_open
syscalls:sys_exit_open_by_handle_at
syscalls:sys_enter_open_by_handle_at
syscalls:sys_exit_fsopen
syscalls:sys_enter_fsopen
syscalls:sys_exit_close
syscalls:sys_enter_close
syscalls:sys_exit_read
syscalls:sys_enter_read
sched:sched_process_exec
sched:sched_process_exit
sched:sched_process_fork
sched:sched_process_free
sched:sched_switch
sched:sched_wakeup
sched:sched_wakeup_new
net:netif_rx
net:net_dev_xmit
raw_syscalls:sys_enter
raw_syscalls:sys_exit
kvm:kvm_exit
xfs:xfs_attr_list_sf
`;

const events = parseAvailableEvents(AVAILABLE);
const keys = (pattern: string) => matchEvents(pattern, events).map(eventKey);

describe("available_events and globs", () => {
  test("parsing keeps order and splits at the first colon", () => {
    expect(events.length).toBe(27);
    expect(events[0]).toEqual({ category: "syscalls", name: "sys_exit_openat2" });
    expect(parseAvailableEvents("\n  \nbad\n:x\na:b\n")).toEqual([{ category: "a", name: "b" }]);
  });

  test("category:name globs", () => {
    expect(keys("syscalls:*open*")).toEqual([
      "syscalls:sys_exit_openat2", "syscalls:sys_enter_openat2", "syscalls:sys_exit_openat", "syscalls:sys_enter_openat",
      "syscalls:sys_exit_open", "syscalls:sys_enter_open", "syscalls:sys_exit_open_by_handle_at", "syscalls:sys_enter_open_by_handle_at",
      "syscalls:sys_exit_fsopen", "syscalls:sys_enter_fsopen",
    ]);
    expect(keys("syscalls:sys_enter_open?")).toEqual([]);
    expect(keys("syscalls:sys_enter_openat?")).toEqual(["syscalls:sys_enter_openat2"]);
    expect(keys("sched:sched_process_e[xz]*")).toEqual(["sched:sched_process_exec", "sched:sched_process_exit"]);
    expect(keys("sched:sched_process_[!e]*")).toEqual(["sched:sched_process_fork", "sched:sched_process_free"]);
    expect(keys("*:sys_enter")).toEqual(["raw_syscalls:sys_enter"]);
    expect(keys("*sys*:sys_e*").length).toBe(16);
    expect(keys("*sys*:sys_e*").every((k) => /^(raw_)?syscalls:sys_e/.test(k))).toBe(true);
    expect(keys("sched:sched_switch")).toEqual(["sched:sched_switch"]);
  });

  test("* never spans the colon; a bare pattern matches names in every category", () => {
    expect(keys("raw*")).toEqual([]); // names only: no name starts with raw
    expect(keys("raw_sys*")).toEqual([]);
    expect(keys("raw_sys*:*")).toEqual(["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"]);
    expect(keys("sys_enter")).toEqual(["raw_syscalls:sys_enter"]);
    expect(keys("*_exit")).toEqual(["sched:sched_process_exit", "raw_syscalls:sys_exit", "kvm:kvm_exit"]);
  });

  test("regex characters in patterns are literal", () => {
    expect(globRegExp("a.b").test("axb")).toBe(false);
    expect(globRegExp("a+b").test("a+b")).toBe(true);
    expect(globRegExp("a(b)").test("a(b)")).toBe(true);
    expect(globRegExp("x[").test("x[")).toBe(true);
    expect(globRegExp("[a-c]z").test("bz")).toBe(true);
    expect(globRegExp("[]]").test("]")).toBe(true);
    expect(isEventGlob("syscalls:*open*")).toBe(true);
    expect(isEventGlob("sched:sched_switch")).toBe(false);
  });
});

describe("names", () => {
  test("three closest names for a typo", () => {
    expect(closestEvents("sched:sched_proces_exec", events)).toEqual(["sched:sched_process_exec", "sched:sched_process_exit", "sched:sched_process_free"]);
    expect(closestEvents("syscalls:sys_enter_opnat", events)[0]).toBe("syscalls:sys_enter_openat");
    // Without the category: compared with the name part.
    expect(closestEvents("sys_enter_openatt", events)[0]).toBe("syscalls:sys_enter_openat");
    expect(closestEvents("zzzzzzzzzzzz", events)).toEqual([]);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("abc", "abcdefghijkl", 3)).toBe(4);
  });

  test("category:name parsing refuses what could leave events/", () => {
    expect(parseEventId("sched:sched_switch")).toEqual({ category: "sched", name: "sched_switch" });
    for (const bad of ["sched", ":x", "x:", "a:b:c", "../..:x", "sched:../../etc", "sched:a/b", "sched:.hidden", "sched: x"]) {
      expect(() => parseEventId(bad), bad).toThrow(TracefsError);
    }
    expect(() => eventFormatPath("/sys/kernel/tracing", { category: "..", name: "x" })).toThrow(TracefsError);
    expect(eventFormatPath("/sys/kernel/tracing", { category: "sched", name: "sched_switch" })).toBe("/sys/kernel/tracing/events/sched/sched_switch/format");
  });
});
