// What the arguments of well-known USDT probes mean. Notes only say where each argument is and
// its size; names and types come from the projects' documentation:
//   python:    https://docs.python.org/3/howto/instrumentation.html ("Static markers") and
//              CPython's Include/pydtrace.d
//   libstdcxx: GCC's libsupc++ (eh_throw.cc, eh_catch.cc: PROBE2 (throw, obj, tinfo) and
//              friends), as SystemTap's libstdcxx tapset documents them
//   hotspot:   "DTrace Probes in HotSpot VM" (https://docs.oracle.com/javase/8/docs/technotes/
//              guides/vm/dtrace.html; JDK 11+: docs.oracle.com/en/java/javase/11/vm/
//              dtrace-probes-hotspot-vm.html) and OpenJDK's src/hotspot/os/posix/dtrace/hotspot.d

export type KnownArgType =
  /** Pointer to a NUL-terminated string (or, with `lengthArg`, to `length` bytes of one). */
  | "str"
  /** Signed integer. */
  | "int"
  /** Unsigned integer or opaque identifier. */
  | "uint"
  /** Pointer shown as an address. */
  | "ptr"
  /** 0 or 1. */
  | "bool";

export interface KnownArg {
  name: string;
  type: KnownArgType;
  /** For `str`: index of the argument holding the byte length (HotSpot strings are not NUL-terminated). */
  lengthArg?: number;
}

export interface KnownProbe {
  provider: string;
  name: string;
  args: readonly KnownArg[];
  /** One line saying when it fires. */
  summary: string;
}

const str = (name: string, lengthArg?: number): KnownArg => (lengthArg === undefined ? { name, type: "str" } : { name, type: "str", lengthArg });
const int = (name: string): KnownArg => ({ name, type: "int" });
const uint = (name: string): KnownArg => ({ name, type: "uint" });
const ptr = (name: string): KnownArg => ({ name, type: "ptr" });
const bool = (name: string): KnownArg => ({ name, type: "bool" });

// HotSpot passes every string as (pointer, length): the argument after the pointer is its length.
const hsStr = (name: string, at: number): KnownArg[] => [str(name, at + 1), uint(`${name}_len`)];

export const KNOWN_PROBES: readonly KnownProbe[] = [
  // CPython (--with-dtrace builds; Debian's python3.x and libpython3.x have them).
  { provider: "python", name: "function__entry", args: [str("filename"), str("funcname"), int("lineno")], summary: "a Python function starts executing" },
  { provider: "python", name: "function__return", args: [str("filename"), str("funcname"), int("lineno")], summary: "a Python function returns or unwinds" },
  { provider: "python", name: "line", args: [str("filename"), str("funcname"), int("lineno")], summary: "a Python line is about to execute" },
  { provider: "python", name: "gc__start", args: [int("generation")], summary: "the cyclic garbage collector starts collecting a generation" },
  { provider: "python", name: "gc__done", args: [int("collected")], summary: "the cyclic garbage collector finished, with the number of objects collected" },
  { provider: "python", name: "import__find__load__start", args: [str("module")], summary: "importlib starts finding and loading a module" },
  { provider: "python", name: "import__find__load__done", args: [str("module"), bool("found")], summary: "importlib finished finding and loading a module" },
  { provider: "python", name: "audit", args: [str("event"), ptr("args")], summary: "sys.audit() or PySys_Audit() raised an event (args is the tuple object)" },

  // GNU libstdc++ exception handling.
  { provider: "libstdcxx", name: "throw", args: [ptr("obj"), ptr("tinfo")], summary: "an exception is thrown (obj: the exception object, tinfo: its std::type_info)" },
  { provider: "libstdcxx", name: "rethrow", args: [ptr("obj"), ptr("tinfo")], summary: "an exception is rethrown" },
  { provider: "libstdcxx", name: "catch", args: [ptr("obj"), ptr("tinfo")], summary: "an exception is caught" },

  // OpenJDK HotSpot (libjvm.so). Method and allocation probes fire only with -XX:+ExtendedDTraceProbes.
  { provider: "hotspot", name: "vm__init__begin", args: [], summary: "VM initialization starts" },
  { provider: "hotspot", name: "vm__init__end", args: [], summary: "VM initialization is done; application code is about to run" },
  { provider: "hotspot", name: "vm__shutdown", args: [], summary: "the VM shuts down" },
  {
    provider: "hotspot", name: "thread__start",
    args: [...hsStr("thread_name", 0), uint("java_thread_id"), uint("os_thread_id"), bool("daemon")],
    summary: "a Java thread starts",
  },
  {
    provider: "hotspot", name: "thread__stop",
    args: [...hsStr("thread_name", 0), uint("java_thread_id"), uint("os_thread_id"), bool("daemon")],
    summary: "a Java thread ends",
  },
  {
    provider: "hotspot", name: "class__loaded",
    args: [...hsStr("class", 0), uint("class_loader_id"), bool("shared")],
    summary: "a class is loaded (shared: from the class data sharing archive)",
  },
  {
    provider: "hotspot", name: "class__unloaded",
    args: [...hsStr("class", 0), uint("class_loader_id"), bool("shared")],
    summary: "a class is unloaded",
  },
  { provider: "hotspot", name: "gc__begin", args: [bool("full")], summary: "a garbage collection starts" },
  { provider: "hotspot", name: "gc__end", args: [], summary: "a garbage collection ends" },
  {
    provider: "hotspot", name: "method__entry",
    args: [uint("java_thread_id"), ...hsStr("class", 1), ...hsStr("method", 3), ...hsStr("signature", 5)],
    summary: "a Java method is entered (-XX:+ExtendedDTraceProbes)",
  },
  {
    provider: "hotspot", name: "method__return",
    args: [uint("java_thread_id"), ...hsStr("class", 1), ...hsStr("method", 3), ...hsStr("signature", 5)],
    summary: "a Java method returns (-XX:+ExtendedDTraceProbes)",
  },
  {
    provider: "hotspot", name: "object__alloc",
    args: [uint("java_thread_id"), ...hsStr("class", 1), uint("size")],
    summary: "an object is allocated (-XX:+ExtendedDTraceProbes)",
  },
  {
    provider: "hotspot", name: "method__compile__begin",
    args: [...hsStr("compiler", 0), ...hsStr("class", 2), ...hsStr("method", 4), ...hsStr("signature", 6)],
    summary: "the JIT starts compiling a method",
  },
  {
    provider: "hotspot", name: "method__compile__end",
    args: [...hsStr("compiler", 0), ...hsStr("class", 2), ...hsStr("method", 4), ...hsStr("signature", 6), bool("success")],
    summary: "the JIT finished compiling a method",
  },
  {
    provider: "hotspot", name: "monitor__contended__enter",
    args: [uint("java_thread_id"), uint("monitor_id"), ...hsStr("class", 2)],
    summary: "a thread blocks entering a contended monitor",
  },
  {
    provider: "hotspot", name: "monitor__contended__entered",
    args: [uint("java_thread_id"), uint("monitor_id"), ...hsStr("class", 2)],
    summary: "a thread entered a contended monitor",
  },
  {
    provider: "hotspot", name: "monitor__wait",
    args: [uint("java_thread_id"), uint("monitor_id"), ...hsStr("class", 2), int("timeout_ms")],
    summary: "a thread calls Object.wait()",
  },
];

const byKey = new Map(KNOWN_PROBES.map((p) => [`${p.provider}:${p.name}`, p]));

/** The documented arguments of provider:name, or undefined for a probe not in the table. */
export function knownProbe(provider: string, name: string): KnownProbe | undefined {
  return byKey.get(`${provider}:${name}`);
}

/** Argument names for a probe with `count` arguments: documented names, else arg0, arg1... */
export function argNames(provider: string, name: string, count: number): string[] {
  const k = knownProbe(provider, name);
  const names = k && k.args.length === count ? k.args.map((a) => a.name) : [];
  return Array.from({ length: count }, (_, i) => names[i] ?? `arg${i}`);
}
