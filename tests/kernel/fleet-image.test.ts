// The agent as deploy/kubernetes/ runs it: the image `Containerfile` describes, started under
// `docker run` with the DaemonSet's own arguments, environment, capabilities, security settings and
// mounts (read from daemonset.yaml), the node's containerd socket being a private containerd's
// (Debian's) in which a pod runs through the real CRI plugin. Its /metrics must count exactly the
// TLS reads made in that pod.
//
// No base image can be pulled here (no debian:12-slim), so the image is built with `docker build`
// FROM scratch out of the files the Containerfile's stages put in it, taken from this machine:
// dist/probe, libbpf1 with libelf and zlib, glibc, and Debian's ctr; the Containerfile's own
// COPY destinations and ENTRYPOINT are checked and used.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, Lines, PROBE, probeBinary, ROOT, type Running } from "../helpers.ts";
import { IMAGE_LIBS } from "../fixtures/probe-image.ts";
import { CriClient } from "../fixtures/fleet/cri.ts";
import { startContainerd, type Containerd } from "../fixtures/fleet/engines.ts";
import { WORK } from "../fixtures/fleet/prometheus.ts";
import { ensureDocker } from "../fixtures/docker.ts";
import { tlsReads, WEB_IMAGE, webImageArchive } from "../fixtures/fleet/web.ts";

if (process.getuid?.() !== 0) throw new Error("tests/kernel/fleet-image.test.ts runs containers: it must run as root");

type Obj = Record<string, any>;
const ds = (Bun.YAML.parse(readFileSync(join(ROOT, "deploy", "kubernetes", "daemonset.yaml"), "utf8")) as Obj[] | Obj) as Obj;
const manifest = (Array.isArray(ds) ? ds[0] : ds) as Obj;
const pod = manifest.spec.template.spec as Obj;
const container = pod.containers[0] as Obj;

let ctrd: Containerd;
let cri: CriClient;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  probeBinary();
  await ensureDocker();
  ctrd = await startContainerd();
  cri = new CriClient(ctrd.address);
  await ctrd.importImage("k8s.io", webImageArchive(join(WORK, `web-image-test-${process.pid}.tar`)));
}, 300_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
  cri?.close();
  await ctrd?.stop();
}, 120_000);

/** What the Containerfile's last stage copies and runs, checked to be what this test builds. */
function containerfileFinalStage(): { copies: [string, string][]; entrypoint: string } {
  const text = readFileSync(join(ROOT, "Containerfile"), "utf8").replace(/\\\n/g, " ");
  const stages = text.split(/^FROM /m).slice(1);
  const last = stages.at(-1)!;
  expect(last).toMatch(/apt-get install -y --no-install-recommends libbpf1/);
  const copies = [...last.matchAll(/^COPY (?:--from=\S+ )?(\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]);
  const entrypoint = /^ENTRYPOINT (.*)$/m.exec(last)![1]!;
  return { copies, entrypoint };
}

/** The image: `docker build` FROM scratch of the files the Containerfile's stages provide. */
function buildImage(): string {
  const { copies, entrypoint } = containerfileFinalStage();
  expect(copies).toEqual([["/x/usr/bin/ctr", "/usr/bin/ctr"], ["dist/probe", "/probe"]]);
  expect(entrypoint).toBe('["/probe"]');
  const ctx = join(WORK, `image-context-${process.pid}`);
  rmSync(ctx, { recursive: true, force: true });
  const root = join(ctx, "root");
  const put = (from: string, to: string) => {
    mkdirSync(join(root, dirname(to)), { recursive: true });
    copyFileSync(from, join(root, to));
  };
  // debian:12-slim + libbpf1: glibc, libbpf, libelf, zlib (what `ldd dist/probe` and libbpf need).
  for (const l of IMAGE_LIBS) put(l, l);
  put("/usr/bin/ctr", "/usr/bin/ctr");
  put(PROBE, "/probe");
  chmodSync(join(root, "probe"), 0o755);
  chmodSync(join(root, "usr/bin/ctr"), 0o755);
  for (const d of ["proc", "sys", "dev", "tmp", "run", "host"]) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(ctx, "Dockerfile"), `FROM scratch\nCOPY root/ /\nENTRYPOINT ${entrypoint}\n`);
  const tag = `probe-fleet-agent:${process.pid}`;
  const b = Bun.spawnSync(["docker", "build", "-q", "-t", tag, ctx], { stdout: "pipe", stderr: "pipe", timeout: 300_000 });
  rmSync(ctx, { recursive: true, force: true });
  if (b.exitCode !== 0) throw new Error(`docker build failed: ${b.stderr}`);
  cleanup.push(() => Bun.spawnSync(["docker", "rmi", "-f", tag], { stdout: "ignore", stderr: "ignore" }));
  return tag;
}

/** Docker 20.10 (Debian 12's) knows neither CAP_BPF nor CAP_PERFMON; SYS_ADMIN, also in the manifest, covers them there. */
function dockerKnowsBpfCap(): boolean {
  const v = Bun.spawnSync(["docker", "version", "-f", "{{.Server.Version}}"], { stdout: "pipe" }).stdout.toString().trim();
  return Number(v.split(".")[0]) >= 23;
}

test("the image runs the DaemonSet's agent under docker run with the manifest's capabilities and mounts; its /metrics counts a pod's reads exactly", async () => {
  const image = buildImage();
  const sc = container.securityContext as Obj;
  const caps = (sc.capabilities.add as string[]).filter((c) => dockerKnowsBpfCap() || (c !== "BPF" && c !== "PERFMON"));
  expect(caps).toContain("SYS_ADMIN");
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v.hostPath.path as string]));
  const mounts = (container.volumeMounts as Obj[]).flatMap((m) => {
    // The node's containerd socket is this test's private containerd.
    const host = m.name === "containerd-sock" ? ctrd.address : volumes.get(m.name)!;
    return ["-v", `${host}:${m.mountPath}${m.readOnly ? ":ro" : ""}`];
  });
  const env = (container.env as Obj[]).flatMap((e) => ["-e", `${e.name}=${e.value}`]);
  const metricsPort = (container.ports as Obj[]).find((p) => p.name === "metrics")!.containerPort as number;
  const port = freePort();
  const name = `probe-fleet-agent-${process.pid}`;
  const argv = [
    "docker", "run", "--rm", "--name", name,
    ...(pod.hostPID ? ["--pid=host"] : []),
    ...caps.flatMap((c) => ["--cap-add", c]),
    ...(sc.seccompProfile?.type === "Unconfined" ? ["--security-opt", "seccomp=unconfined"] : []),
    ...(sc.readOnlyRootFilesystem ? ["--read-only"] : []),
    "--user", String(sc.runAsUser),
    ...mounts, ...env,
    "-p", `127.0.0.1:${port}:${metricsPort}`,
    image, ...(container.args as string[]),
  ];
  expect(container.args).toEqual(["ssl-read", "--all-containers", "--metrics", `:${metricsPort}`, "-d", "0"]);
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  cleanup.push(() => Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" }));
  const agent: Running = { proc: proc as unknown as Running["proc"], out: new Lines(proc.stdout), err: new Lines(proc.stderr) };
  await agent.err.waitFor(/Ctrl-C to stop/, 60_000);

  // A pod started after the agent, through the CRI plugin.
  const p = { name: "web-7d9f", namespace: "shop", uid: `uid-img-${process.pid}`, labels: { app: "web" } };
  const config = cri.podSandboxConfig(p);
  const sandbox = await cri.runPodSandbox(config);
  cleanup.push(() => cri.removePodSandbox(sandbox).catch(() => {}));
  const id = await cri.runContainer(sandbox, config, p, "nginx", WEB_IMAGE, ["/bin/tls_idle"]);
  await agent.err.waitFor(/^probe: shop\/web-7d9f\/nginx uses OpenSSL/, 10_000);
  const n = (await tlsReads(ctrd.execArgv("k8s.io", id, []), 12)).calls;
  expect(n).toBe(12);

  // The readiness probe's path, then the metrics as Prometheus would scrape them.
  const health = await fetch(`http://127.0.0.1:${port}${container.readinessProbe.httpGet.path}`);
  expect(health.status).toBe(200);
  const deadline = Date.now() + 10_000;
  let line: string | undefined;
  while (Date.now() < deadline) {
    const text = await (await fetch(`http://127.0.0.1:${port}${manifest.spec.template.metadata.annotations["prometheus.io/path"]}`)).text();
    line = text.split("\n").find((l) => l.startsWith("probe_ssl_read_calls_total{") && l.includes('pod="web-7d9f"') && l.includes('comm="tls_pair"'));
    if (line?.endsWith(` ${n}`)) break;
    await Bun.sleep(200);
  }
  expect(line).toBe(`probe_ssl_read_calls_total{pod="web-7d9f",namespace="shop",container="nginx",pid="${line!.match(/pid="(\d+)"/)![1]}",comm="tls_pair",library="/opt/ssl/libssl.so.3"} ${n}`);
  Bun.spawnSync(["docker", "kill", "-s", "TERM", name], { stdout: "ignore", stderr: "ignore" });
  expect(await proc.exited).toBe(0);
  console.log(`agent image: ${agent.err.all.filter((l) => /serving|Tracing TLS/.test(l)).join(" | ")}`);
}, 300_000);
