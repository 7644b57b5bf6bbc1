// deploy/kubernetes/ checked offline. `kubectl apply --dry-run=client` needs an API server even to
// map kinds (there is none here), so kubectl's own decoders stand in: `kubectl annotate --local`
// reads every file, and `kubectl set resources --local` decodes the DaemonSet into the typed
// apps/v1 object (a wrong type fails; an unknown or misspelt field is dropped, which the
// comparison with Bun.YAML's reading below catches). Then what the DaemonSet must carry: hostPID,
// capabilities, mounts, the scrape annotation agreeing with the port and the --metrics argument,
// the readiness probe on /healthz, resource limits.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseListenAddress } from "../../lib/metrics/server.ts";
import { ensurePackages } from "../fixtures/fleet/prometheus.ts";

const DIR = join(import.meta.dir, "..", "..", "deploy", "kubernetes");
const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort();
type Obj = Record<string, any>;

function kubectl(args: string[]): Obj[] {
  if (!Bun.which("kubectl")) {
    // Debian's kubectl; on a machine where another package owns /usr/bin/kubectl this install fails, saying so.
    ensurePackages([{ bin: "kubectl", pkg: "kubernetes-client" }]);
  }
  const r = Bun.spawnSync(["kubectl", ...args, "-o", "json"], { stdout: "pipe", stderr: "pipe", timeout: 60_000, env: { ...process.env, KUBECONFIG: "/dev/null" } });
  if (r.exitCode !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr.toString().trim()}`);
  // Several files give one pretty-printed object after another: a top-level "}" line ends each.
  const list = JSON.parse(`[${r.stdout.toString().trim().replace(/^\}\s*\n\{/gm, "},\n{")}]`) as Obj[];
  return list.flatMap((j) => (j.kind === "List" ? (j.items as Obj[]) : [j]));
}

const yamlDocs = files.flatMap((f) => {
  const docs = Bun.YAML.parse(readFileSync(join(DIR, f), "utf8"));
  return (Array.isArray(docs) ? docs : [docs]).filter(Boolean).map((d) => ({ file: f, doc: d as Obj }));
});
const find = (kind: string) => yamlDocs.find((d) => d.doc.kind === kind)!.doc;

/** Every leaf of `want` is in `got` with the same value (kubectl's output adds defaults and empty fields). */
function expectSubset(want: unknown, got: unknown, path = "$"): void {
  if (Array.isArray(want)) {
    expect([path, Array.isArray(got)]).toEqual([path, true]);
    expect([path, (got as unknown[]).length]).toEqual([path, want.length]);
    want.forEach((w, i) => expectSubset(w, (got as unknown[])[i], `${path}[${i}]`));
  } else if (want && typeof want === "object") {
    expect([path, typeof got]).toEqual([path, "object"]);
    for (const [k, v] of Object.entries(want)) {
      expect([`${path}.${k}`, Object.hasOwn(got as Obj, k)]).toEqual([`${path}.${k}`, true]);
      expectSubset(v, (got as Obj)[k], `${path}.${k}`);
    }
  } else {
    expect([path, got]).toEqual([path, want]);
  }
}

describe("deploy/kubernetes", () => {
  test("kubectl reads every file; the DaemonSet decodes into apps/v1 with no field lost", () => {
    const all = kubectl(["annotate", "--local", "-f", DIR, "probe.test/read=yes"]);
    expect(all.map((o) => o.kind)).toEqual(["Namespace", "ServiceAccount", "DaemonSet"]); // in apply order: the namespace first
    const ds = find("DaemonSet");
    // kubectl prints nothing when `set` changes nothing: it adds a limit the manifest does not set (merged, not replacing).
    const typed = kubectl(["set", "resources", "--local", "-f", join(DIR, "daemonset.yaml"), "-c", "probe", "--limits=ephemeral-storage=64Mi"]);
    expect(typed).toHaveLength(1);
    expectSubset(ds, typed[0]);
    // The same check notices a misspelt field: kubectl drops it.
    const bad = Bun.spawnSync(["kubectl", "set", "resources", "--local", "-f", "-", "-c", "probe", "--limits=cpu=1", "-o", "json"], {
      stdin: Buffer.from(readFileSync(join(DIR, "daemonset.yaml"), "utf8").replace("hostPID: true", "hostPid: true")),
      stdout: "pipe",
      env: { ...process.env, KUBECONFIG: "/dev/null" },
    });
    expect(JSON.parse(bad.stdout.toString()).spec.template.spec.hostPid).toBeUndefined();
  });

  test("namespace, service account, DaemonSet agree; the pod is set up for probe", () => {
    const ns = find("Namespace");
    const sa = find("ServiceAccount");
    const ds = find("DaemonSet");
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect([sa.metadata.namespace, ds.metadata.namespace]).toEqual([ns.metadata.name, ns.metadata.name]);
    const pod = ds.spec.template.spec;
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
    expect(pod.hostPID).toBe(true);
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
    const c = pod.containers[0];
    expect(pod.containers).toHaveLength(1);
    expect(c.args).toEqual(["ssl-read", "--all-containers", "--metrics", ":9464", "-d", "0"]);
    expect(c.securityContext.capabilities.add.sort()).toEqual(["BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE"]);
    expect(c.securityContext.privileged).toBeUndefined();
    // Mounts and the host paths behind them.
    const vol = (name: string) => pod.volumes.find((v: Obj) => v.name === name);
    const mounts = Object.fromEntries(c.volumeMounts.map((m: Obj) => [m.mountPath, { host: vol(m.name).hostPath.path, type: vol(m.name).hostPath.type, ro: m.readOnly === true }]));
    expect(mounts).toEqual({
      "/sys/fs/bpf": { host: "/sys/fs/bpf", type: "Directory", ro: false },
      "/sys/kernel/tracing": { host: "/sys/kernel/tracing", type: "Directory", ro: true },
      "/host/proc": { host: "/proc", type: "Directory", ro: true },
      "/run/containerd/containerd.sock": { host: "/run/containerd/containerd.sock", type: "Socket", ro: true },
    });
    expect(c.env).toContainEqual({ name: "CONTAINERD_ADDRESS", value: "/run/containerd/containerd.sock" });
    // Scrape annotation, container port and --metrics all say the same port.
    const ann = ds.spec.template.metadata.annotations;
    const metricsArg = parseListenAddress(c.args[c.args.indexOf("--metrics") + 1]);
    const port = c.ports.find((p: Obj) => p.name === "metrics");
    expect(ann["prometheus.io/scrape"]).toBe("true");
    expect(ann["prometheus.io/path"]).toBe("/metrics");
    expect(Number(ann["prometheus.io/port"])).toBe(port.containerPort);
    expect(metricsArg).toEqual({ hostname: "0.0.0.0", port: port.containerPort });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    for (const k of ["cpu", "memory"]) {
      expect(c.resources.requests[k]).toBeTruthy();
      expect(c.resources.limits[k]).toBeTruthy();
    }
  });
});
