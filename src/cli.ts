#!/usr/bin/env bun
// probe's command line. Commands are imported when run, so `probe --version` and `--help` load
// neither libbpf nor any command's code.
import { cac } from "cac";
import pkg from "../package.json" with { type: "json" };
import { fail, runCommand } from "./main.ts";
import { UsageError } from "./errors.ts";

const cli = cac("probe");

cli
  .command("uprobe [target] [function]", "Trace calls (and returns) of a function in a program or library")
  .usage("uprobe <target> <function> [options]\n\n  <target>    the binary or library: a path, a library name (libc, libssl.so.3), or a program on PATH\n  <function>  the function: a symbol (SSL_read, SSL_read@@OPENSSL_3.0.0), symbol+0x10, or a file offset 0x35430")
  .option("-p, --pid <pid>", "Only this process (host PID); the target is looked up in its view (its mappings, its root)")
  .option("-c, --container <name>", "Only the main process of this container (docker, podman, containerd, crictl); as --pid")
  .option("--any-process", "With -p/-c: trace every process using the same file (all containers sharing the image layer)")
  .option("-d, --duration <seconds>", "Stop after this many seconds (0: until Ctrl-C)", { default: 0 })
  .option("-r, --ret", "Also trace returns: return value and latency")
  .option("-s, --summary", "Print per-process call counts every interval instead of every event")
  .option("-i, --interval <seconds>", "Seconds between summaries", { default: 1 })
  .option("--json", "One JSON object per line")
  .option("--list-functions [pattern]", "List the functions of the target (Go names too) and exit")
  .option("--unsafe-uretprobe", "Use a real uretprobe on a Go binary (may crash it)")
  .option("--wait", "Wait (until Ctrl-C) for the process to map the library, or the container to run")
  .option("--attach-mode <mode>", "multi (one uprobe_multi link) or perf (perf-event uprobes)")
  .example("probe uprobe /lib/x86_64-linux-gnu/libc.so.6 getenv -d 5")
  .example("probe uprobe libc malloc --ret --pid 1234 --json")
  .action((target, fn, opts) => runCommand("uprobe", () => import("./commands/uprobe.ts").then((m) => m.run(target, fn, opts))));

cli
  .command("ssl-read", "Count OpenSSL SSL_read/SSL_read_ex calls, returns, bytes and errors per process")
  .option("-p, --pid <pid>", "Only this process (host PID); uses the libssl it has mapped (or would load)")
  .option("-c, --container <name>", "Only the main process of this container (docker, podman, containerd, crictl); as --pid")
  .option("--any-process", "With -p/-c: count every process using the same libssl file (all containers sharing the layer)")
  .option("-d, --duration <seconds>", "Stop after this many seconds (0: until Ctrl-C)", { default: 0 })
  .option("-i, --interval <seconds>", "Seconds between reports", { default: 1 })
  .option("--lib <path>", "The libssl to probe (default: every OpenSSL libssl on the host, or the target's)")
  .option("--verify-order", "Exit with an error if a return is seen without its entry (reversed probes)")
  .option("--wait", "Wait (until Ctrl-C) for the process to map libssl, or the container to run")
  .option("--json", "One JSON object per line")
  .option("--attach-mode <mode>", "multi (one uprobe_multi link) or perf (perf-event uprobes)")
  .example("probe ssl-read -d 10")
  .example("probe ssl-read --pid 6575")
  .example("probe ssl-read --container web --json")
  .action((opts) => runCommand("ssl-read", () => import("./commands/ssl-read.ts").then((m) => m.run(opts))));

cli
  .command("demo", "Trace a local TLS server and client with ssl-read (needs the openssl command)")
  .option("-n, --requests <n>", "How many requests the client makes", { default: 5 })
  .option("--json", "One JSON object per line")
  .action((opts) => runCommand("demo", () => import("./commands/demo.ts").then((m) => m.run(opts))));

cli
  .command("load <object>", "Load a BPF object (.o), attach its programs, print its maps")
  .option("-a, --attach <spec>", "PROG=uprobe|uretprobe:TARGET:FUNCTION or PROG=tracepoint:CAT:NAME (repeatable; default: the programs' SEC names)")
  .option("--set <assignment>", "NAME=VALUE for a .rodata/.bss/.data global, before load (repeatable)")
  .option("-m, --maps <names>", "Maps to print every interval, comma-separated")
  .option("-i, --interval <seconds>", "Seconds between map prints", { default: 1 })
  .option("-d, --duration <seconds>", "Stop after this many seconds (0: until Ctrl-C)", { default: 0 })
  .option("--pin <dir>", "Pin programs, links and maps under this bpffs directory and exit (stays attached)")
  .option("--printk", "Show the programs' bpf_printk lines (from tracefs trace_pipe)")
  .option("-p, --pid <pid>", "Resolve targets in this process and attach to it only (host PID)")
  .option("-c, --container <name>", "Like --pid, for the main process of this container")
  .option("--attach-mode <mode>", "multi (uprobe_multi links) or perf (perf-event uprobes)")
  .option("--json", "One JSON object per line")
  .action((object, opts) => runCommand("load", () => import("./commands/load.ts").then((m) => m.run(object, opts))));

cli
  .command("unload <dir>", "Remove everything 'probe load --pin DIR' pinned")
  .option("--json", "One JSON object per line")
  .action((dir, opts) => runCommand("unload", () => import("./commands/unload.ts").then((m) => m.run(dir, opts))));

cli
  .command("list", "The kernel's BPF programs, maps, links and perf-event probes, with who holds them")
  .option("--json", "One JSON object per line")
  .action((opts) => runCommand("list", () => import("./commands/list.ts").then((m) => m.run(opts))));

cli
  .command("map <sub> <ref>", "map dump <name|id|pinned path>: a map's entries, formatted from BTF")
  .option("--json", "One JSON object per line")
  .action((sub, ref, opts) => runCommand("map", () => import("./commands/map.ts").then((m) => m.run(sub, ref, opts))));

cli.help();
cli.option("-v, --version", "Display version number");

function main(): void {
  try {
    cli.parse(process.argv, { run: false });
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
    fail(new UsageError((e as Error).message), cli);
  }
}

main();
