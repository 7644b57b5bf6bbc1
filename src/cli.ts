#!/usr/bin/env bun
// probe's command line. Commands are imported when run, so `probe --version` and `--help` load
// neither libbpf nor any command's code (build.ts splits each command's code into its own chunk). Options several commands share are declared once
// (src/options.ts).
import { cac, type Command } from "cac";
import pkg from "../package.json" with { type: "json" };
import { fail, runCommand } from "./main.ts";
import { UsageError } from "./errors.ts";
import { processOptions, fleetOptions, metricsOptions, runOptions, attachModeOption, normalizeArgv } from "./options.ts";
import { mark } from "./timing.ts";

mark("cli module evaluated");

const cli = cac("probe");

/** What each command declares on top of its name: options, examples, action (see declareOptions). */
const declarations: [Command, (c: Command) => unknown][] = [];

/**
 * A command whose --help says what it does (cac's shows only the usage line otherwise). `declare`
 * adds its options, examples and action: run only for the command on the command line (cac builds
 * each option's parser as it is declared, milliseconds for all of them at every start), and for
 * every command when none is named (help, version, an unknown word).
 */
function command(spec: string, description: string, usage: string, declare: (c: Command) => unknown): Command {
  const c = cli.command(spec, description).usage(`${usage}\n\n${description}.`);
  declarations.push([c, declare]);
  return c;
}

/** Declares the options of the command the command line names, or of all when it names none. */
function declareOptions(): void {
  const name = process.argv.slice(2).find((a) => !a.startsWith("-"));
  const named = cli.commands.find((c) => c.name === name || c.aliasNames.includes(name ?? ""));
  for (const [c, declare] of declarations) if (!named || c === named) declare(c);
}

command(
  "uprobe [target] [...functions]",
  "Trace calls (and returns) of a function in a program or library",
  "uprobe <target> <function>... [options] [-- command args...]\n\n" +
    "  <target>    the binary or library: a path, a library name (libc, libssl.so.3), or a program on PATH\n" +
    "  <function>  the function(s), one or more: a symbol (SSL_read, SSL_read@@OPENSSL_3.0.0), a glob ('str*'), symbol+0x10,\n" +
    "              a file offset 0x35430, or a prototype: 'ssize_t read(int fd, void *buf[ret], size_t count)',\n" +
    "              'func main.demo(n int, seed int) int'\n" +
    "  -- command  start the command and trace it from its first instruction; probe exits with its status\n\n" +
    "Events go to stdout, one line each; the 'Tracing ...' header and notes go to stderr",
  (uprobe) => {
    uprobe
      .option("-r, --ret", "Also trace returns: return value and latency; --ret=TYPE types the return of names given bare (str, int, 'char *')")
      .option("--ret-type <type>", "(what --ret=TYPE becomes)")
      .option("--string-size <bytes>", "Bytes of a string or buffer shown at most (default 256)")
      .option("--hexdump", "Buffers as hexdump lines instead of escaped text")
      .option("--no-debuginfo", "Do not look for argument names and types in debug info")
      .option("--follow-children", "With -- command: its child processes too")
      .option("-s, --summary", "Print per-process call counts every interval instead of every event")
      .option("--hist [value]", "A histogram counted in the kernel instead of events: latency (default), ret, or a parameter's name")
      .option("--linear <start,step,end>", "With --hist: linear buckets instead of powers of two")
      .option("--per-process", "With --hist or --stacks: one per process")
      .option("--stack", "Each call with its user stack")
      .option("--stacks", "Count calls per unique user stack; the top stacks at exit")
      .option("--folded", "With --stacks: print folded stacks (for flame graph tools) at exit")
      .option("--flamegraph <file>", "With --stacks: write an SVG flame graph at exit")
      .option("--unwind <mode>", "How stacks are unwound: auto (default: call-frame info, else frame pointers), cfi, or fp (frame pointers only, nothing copied)")
      .option("--stack-size <bytes>", "Bytes of stack copied per call to unwind (default 16K, at most 64K)")
      .option("--buffer-size <size>", "Ring buffer for events, a power of two (default 2M; 8M with typed values or --stack --unwind fp; 16M for copied stacks)")
      .option("--list-functions [pattern]", "List the functions of the target (Go names too) and exit")
      .option("--unsafe-uretprobe", "Use a real uretprobe on a Go binary (may crash it)")
      .option("--force-offset", "Allow an entry probe at an offset the decoder does not see as an instruction start");
    processOptions(uprobe, "the target");
    fleetOptions(uprobe);
    metricsOptions(uprobe);
    runOptions(uprobe, "Seconds between summaries");
    attachModeOption(uprobe)
      .example("probe uprobe /lib/x86_64-linux-gnu/libc.so.6 getenv -d 5")
      .example("probe uprobe libc malloc --ret --pid 1234 --json")
      .example("probe uprobe libssl SSL_read --hist -d 10 --pid 6575")
      .example("probe uprobe libc 'void *malloc(size_t size)' --hist size")
      .example("probe uprobe libc malloc --stacks --flamegraph malloc.svg -d 10")
      .example("probe uprobe libssl SSL_read --hist --selector app=web --metrics 127.0.0.1:9464")
      .action((target, fns, opts) => runCommand("uprobe", () => import("./commands/uprobe.ts").then((m) => m.run(target, fns ?? [], { ...opts, command: opts["--"] }))));
  },
);

command(
  "usdt [target] [probe]",
  "Trace USDT probes (statically defined: Python, libstdc++, the JVM...) with their arguments",
  "usdt <target> <probe> [options] [-- command args...]\n\n" +
    "  <target>    the program or library with the probes: a path, a library name (libstdc++), or a program on PATH\n" +
    "  <probe>     provider:name (python:function__entry), a name, or a glob (python:function__*, 'hotspot:*')\n" +
    "  -- command  start the command and trace it from its first instruction; probe exits with its status\n\n" +
    "Probes with a semaphore are enabled while probe runs. Events go to stdout, one line each; notes to stderr",
  (usdt) => {
    usdt
      .option("-l, --list", "List the target's USDT probes (with -p and no target: of every file the process maps) and exit")
      .option("--args <types>", "Argument types: 'str,str,int' or a prototype 'function__entry(char *file, char *func, int line)' (repeatable)")
      .option("--ret-pairs", "Pair *__entry/*__return (*__start/*__done) probes into calls with their latency, per thread")
      .option("-s, --summary", "Every interval: calls per process and probe (with --ret-pairs: calls and latency per call) instead of every event")
      .option("--hist [value]", "With --ret-pairs: a histogram of the calls' latency (per pair) instead of events")
      .option("--linear <start,step,end>", "With --hist: linear buckets (ns) instead of powers of two")
      .option("--per-process", "With --hist or --stacks: one per process")
      .option("--stack", "Each probe hit with its user stack")
      .option("--stacks", "Count hits per unique user stack; the top stacks at exit")
      .option("--folded", "With --stacks: print folded stacks (for flame graph tools) at exit")
      .option("--flamegraph <file>", "With --stacks: write an SVG flame graph at exit")
      .option("--unwind <mode>", "How stacks are unwound: auto (default: call-frame info, else frame pointers), cfi, or fp (frame pointers only, nothing copied)")
      .option("--stack-size <bytes>", "Bytes of stack copied per hit to unwind (default 16K, at most 64K)");
    processOptions(usdt, "the target");
    runOptions(usdt, "Seconds between summaries");
    attachModeOption(usdt)
      .example("probe usdt --list /usr/bin/python3")
      .example("probe usdt python3 python:function__entry --pid 4242")
      .example("probe usdt python3 'python:function__*' --ret-pairs --summary -d 10 --pid 4242")
      .example("probe usdt python3 'python:function__*' --ret-pairs --hist -d 10 --pid 4242")
      .example("probe usdt libstdc++ libstdcxx:throw --stack -- ./server")
      .action((target, probe, opts) => runCommand("usdt", () => import("./commands/usdt.ts").then((m) => m.run(target, probe, { ...opts, command: opts["--"] }))));
  },
);

command(
  "ssl-read",
  "Count TLS reads per process: calls, returns, bytes and errors, whatever TLS it uses (OpenSSL, GnuTLS, Go)",
  "ssl-read [options]\n\nOne table per interval on stdout (rows that changed), totals at exit; what was found and the header go to stderr",
  (sslRead) => {
    sslRead
      .option("--lib <path>", "The file holding the TLS code (default: what the target uses, found in its view; or every TLS on the host)")
      .option("--verify-order", "Exit with an error if a return is seen without its entry (reversed probes)");
    processOptions(sslRead, "its TLS library");
    fleetOptions(sslRead);
    metricsOptions(sslRead);
    runOptions(sslRead);
    attachModeOption(sslRead)
      .example("probe ssl-read -d 10")
      .example("probe ssl-read --pid 6575")
      .example("probe ssl-read --container web --json")
      .example("probe ssl-read --selector app=web")
      .example("probe ssl-read --all-containers --metrics :9464 -d 0")
      .action((opts) => runCommand("ssl-read", () => import("./commands/ssl-read.ts").then((m) => m.run(opts))));
  },
);

command(
  "sslsniff",
  "Show the plaintext of TLS reads and writes, whole, whatever TLS a process uses (OpenSSL, GnuTLS, Go)",
  "sslsniff [options]\n\nOne record per read or write on stdout (data as escaped text, --hexdump, or --json); what was found and the header go to stderr",
  (sslSniff) => {
    sslSniff
      .option("--lib <path>", "The file holding the TLS code (default: what the target uses, found in its view; or every TLS on the host)")
      .option("--max-bytes <size>", "Bytes of data shown per call at most, like 64K or 2M; 0: all, as much as the ring buffer holds (default 64K); a cut is always flagged")
      .option("--buffer-size <size>", "Ring buffer size, a power of two (default: 16M, or 4 x --max-bytes)")
      .option("-x, --hexdump", "Data as hexdump -C lines instead of escaped text")
      .option("--read", "Only reads")
      .option("--write", "Only writes")
      .option("--handshake", "Also handshake calls and their latency (SSL_do_handshake, gnutls_handshake, Go's client/server handshake)");
    processOptions(sslSniff, "its TLS library");
    fleetOptions(sslSniff);
    runOptions(sslSniff, "Seconds between lost-record checks");
    attachModeOption(sslSniff)
      .example("probe sslsniff --pid 6575")
      .example("probe sslsniff --container web --hexdump --max-bytes 1M")
      .example("probe sslsniff -c web --json | jq .")
      .action((opts) => runCommand("sslsniff", () => import("./commands/sslsniff.ts").then((m) => m.run(opts))));
  },
);

command(
  "opensnoop",
  "Trace open, openat and openat2: who opened which path, the fd or the error",
  "opensnoop [options]\n\nOne line per open on stdout (PID COMM FD ERR PATH); the 'Tracing ...' header goes to stderr",
  (opensnoop) => {
    opensnoop
      .option("-t, --tid <tid>", "Only this thread (host TID)")
      .option("-u, --uid <uid>", "Only this user id")
      .option("-n, --name <name>", "Only processes whose name (comm) contains this")
      .option("-x, --failed", "Only opens that failed")
      .option("-e, --extended-fields", "Show the flags (O_RDONLY|O_CLOEXEC...) and the mode")
      .option("-T, --timestamp", "Show seconds since tracing started")
      .option("-U, --print-uid", "Show the user id")
      .option("--resolve", "Also show each path as the host sees it (relative paths against the process's cwd, in its root)");
    processOptions(opensnoop, "--resolve's host path");
    runOptions(opensnoop, "Seconds between lost-event checks")
      .example("probe opensnoop -p 1234 -x")
      .example("probe opensnoop --container web -e -T --json")
      .example("probe opensnoop -n nginx -u 33 -d 10")
      .action((opts) => runCommand("opensnoop", () => import("./commands/opensnoop.ts").then((m) => m.run(opts))));
  },
);

command(
  "tracepoint [...events]",
  "Trace any kernel tracepoint (CAT:NAME, globs allowed), fields decoded from its format",
  "tracepoint <CAT:NAME>... [options]\n\nOne line per event on stdout (name=value per field); the 'Tracing ...' header goes to stderr",
  (tracepoint) => {
    tracepoint
      .option("-l, --list [pattern]", "List the tracepoints (matching a glob like 'syscalls:*open*') and exit")
      .option("-s, --summary", "Print counts per process and tracepoint every interval instead of every event");
    processOptions(tracepoint, "its files");
    runOptions(tracepoint, "Seconds between summaries")
      .example("probe tracepoint syscalls:sys_enter_execve")
      .example("probe tracepoint sched:sched_process_exit -p 1234 --json")
      .example("probe tracepoint --list 'syscalls:*open*'")
      .action((events, opts) => runCommand("tracepoint", () => import("./commands/tracepoint.ts").then((m) => m.run(events, opts))));
  },
);

command("demo", "Trace a local TLS server and client with ssl-read (needs the openssl command)", "demo [options]", (c) => {
  c
    .option("-n, --requests <n>", "How many requests the client makes")
    .option("--json", "One JSON object per line")
    .action((opts) => runCommand("demo", () => import("./commands/demo.ts").then((m) => m.run(opts))));
});

command(
  "load <object>",
  "Load a BPF object (.o), attach its programs, print its maps",
  "load <object> [options]\n\nStays attached until Ctrl-C or -d (or, with --pin, after probe exits)",
  (load) => {
    load
      .option("-a, --attach <spec>", "PROG=uprobe|uretprobe:TARGET:FUNCTION or PROG=tracepoint:CAT:NAME (repeatable; default: the programs' SEC names)")
      .option("--set <assignment>", "NAME=VALUE for a .rodata/.bss/.data global, before load (repeatable)")
      .option("-m, --maps <names>", "Maps to print every interval, comma-separated")
      .option("--pin <dir>", "Pin programs, links and maps under this bpffs directory and exit (stays attached)")
      .option("--printk", "Show the programs' bpf_printk lines (from tracefs trace_pipe)")
      .option("-e, --events <map>", "Print a ring buffer's or perf event array's records: MAP (hex) or MAP:TYPE (a struct of the object's BTF); repeatable");
    processOptions(load, "each target");
    runOptions(load, "Seconds between map prints");
    attachModeOption(load).action((object, opts) => runCommand("load", () => import("./commands/load.ts").then((m) => m.run(object, opts))));
  },
);

command("unload <dir>", "Remove everything 'probe load --pin DIR' pinned", "unload <dir>", (c) => {
  c
    .option("--json", "One JSON object per line")
    .action((dir, opts) => runCommand("unload", () => import("./commands/unload.ts").then((m) => m.run(dir, opts))));
});

command("list", "The kernel's BPF programs, maps, links and perf-event probes, with who holds them", "list [options]", (c) => {
  c
    .option("--json", "One JSON object per line")
    .action((opts) => runCommand("list", () => import("./commands/list.ts").then((m) => m.run(opts))));
});

command("map <sub> <ref>", "A map's entries, formatted from BTF", "map dump <name|id|pinned path> [options]", (c) => {
  c
    .option("--json", "One JSON object per line")
    .action((sub, ref, opts) => runCommand("map", () => import("./commands/map.ts").then((m) => m.run(sub, ref, opts))));
});

declareOptions();
cli.help();
cli.option("-v, --version", "Display version number");

function main(): void {
  try {
    const name = process.argv.slice(2).find((a) => !a.startsWith("-"));
    const cmd = cli.commands.find((c) => c.name === name || c.aliasNames.includes(name ?? ""));
    cli.parse(normalizeArgv(process.argv, cmd, cli.globalCommand), { run: false });
    mark("command line parsed");
    if (cli.options.version && !cli.matchedCommand) {
      console.log(`probe ${pkg.version}`);
    } else if (cli.matchedCommand) {
      void cli.runMatchedCommand();
    } else if (!cli.options.help) {
      const unknown = cli.args[0];
      if (unknown) fail(new UsageError(`unknown command '${unknown}'`), cli);
      cli.outputHelp();
    }
  } catch (e) {
    // What cac throws before a command runs is always about the command line (its class name
    // does not survive minification, so it is not checked).
    const name = process.argv.slice(2).find((a) => !a.startsWith("-"));
    fail(e instanceof UsageError ? e : new UsageError((e as Error).message), cli.commands.some((c) => c.name === name) ? name : cli);
  }
}

main();
