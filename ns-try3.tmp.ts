import { ensureDocker, startDockerNginx, timings } from "./tests/fixtures/docker.ts";
import { containerPid, installedEngines } from "./lib/containers.ts";
import * as ns from "./lib/namespaces.ts";
let t = performance.now();
console.log(await ensureDocker(), performance.now() - t);
t = performance.now();
const d = await startDockerNginx();
console.log("run", performance.now() - t, timings);
try {
  console.log(installedEngines(), containerPid(d.name), ns.nsPids(containerPid(d.name).pid));
  const pid = containerPid(d.name).pid;
  console.log(ns.findMappedLibrary(pid, "libssl"));
  const f = ns.openLibraryInProcess(pid, "libssl"); console.log(f.inode, f.method);
  try { containerPid("no-such-container-xyz") } catch (e) { console.log((e as Error).message) }
} finally { d.stop(); }
