// Files, libraries and PIDs as a containerised process sees them, and probes attached through
// that view: real namespaces (pivot_root'ed nginx on a private libssl), a real Docker engine, the
// real kernel.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, copyFileSync, existsSync, openSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ProcessError, ProcessWatch, assertSameProcess, isSameProcess, nsPids, processIdentity } from "../../lib/proc/identity.ts";
import { processLibraryCandidates } from "../../lib/proc/loader.ts";
import { findMappedLibrary, openExecutable, openMappedFile, waitForLibrary } from "../../lib/proc/maps.ts";
import { inodeKey } from "../../lib/proc/overlay.ts";
import { type OpenedLibrary, openLibraryInProcess } from "../../lib/proc/target.ts";
import { fdPath, openInProcessView } from "../../lib/proc/view.ts";
import { containerPid, ContainerError, installedEngines } from "../../lib/containers.ts";
import { libraryNameMatches } from "../../lib/libname.ts";
import { parseLdCache } from "../../lib/ldcache.ts";
import { ElfFile } from "../../lib/elf.ts";
import { resolveFunction } from "../../lib/symbols.ts";
import { BpfObject } from "../../lib/object.ts";
import { embeddedObject } from "../../lib/embedded.ts";
import { attachUprobe, bestAttachMode, type AttachMode, type UprobeLink } from "../../lib/uprobe.ts";
import { BPF_ATTACH } from "../../lib/kernel/abi.ts";
import { MapReader } from "../../lib/maps.ts";
import { readSslStats, type SslRow } from "../../src/commands/ssl-read.ts";
import { closeFd } from "../../lib/ffi/libc.ts";
import { ensureRootfs, httpsGet, startNginxContainer, startNsContainer, WORK, type NsContainer, type RootfsInfo } from "../fixtures/container.ts";
import { ensureDocker, startDockerNginx, timings as dockerTimings } from "../fixtures/docker.ts";

const CONTAINER_LIB = "/opt/ssl/libssl.so.3";
const HOST_LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

let rootfs: RootfsInfo;
let nginx: NsContainer;
const started: { stop(): unknown }[] = [];

beforeAll(async () => {
  rootfs = ensureRootfs();
  const t0 = performance.now();
  nginx = await startNginxContainer();
  started.push(nginx);
  console.log(`rootfs: ${rootfs.buildSeconds ? `built in ${rootfs.buildSeconds.toFixed(2)} s` : "cached"} (libssl: ${rootfs.sslSource}); namespace container up in ${(performance.now() - t0).toFixed(0)} ms, host pid ${nginx.pid}, port ${nginx.port}`);
});

afterAll(async () => {
  for (const c of started.reverse()) await c.stop();
});

// --- ssl_read counting through the process's view ------------------------------------------

/** The ssl_read programs loaded for one target tgid, attached to a library opened in its view. */
class SslReadProbe {
  readonly obj: BpfObject;
  readonly lib: OpenedLibrary;
  readonly links: UprobeLink[] = [];
  readonly offsets: { read: number; readEx: number };
  readonly mode: AttachMode;

  /** `lib`: attach through another process's view of the library (taken over: closed with the probe). */
  constructor(readonly pid: number, opts: { mode?: AttachMode; lib?: OpenedLibrary } = {}) {
    this.mode = opts.mode ?? bestAttachMode();
    this.lib = opts.lib ?? openLibraryInProcess(pid, "libssl");
    this.obj = BpfObject.fromBytes(embeddedObject("ssl_read"), "ssl_read");
    try {
      const elf = new ElfFile(this.lib.fd, this.lib.hostPathHint);
      this.offsets = { read: resolveFunction(elf, "SSL_read").offset, readEx: resolveFunction(elf, "SSL_read_ex").offset };
      const cfg = new Uint8Array(8);
      new DataView(cfg.buffer).setUint32(0, pid, true); // struct ssl_config.filter.tgid
      this.obj.setGlobalData(".rodata", 0, cfg);
      if (this.mode === "multi") {
        for (const p of ["ssl_read_entry", "ssl_read_return"]) this.obj.setExpectedAttachType(this.obj.program(p), BPF_ATTACH.TRACE_UPROBE_MULTI);
      }
      this.obj.load();
      const points = [
        { offset: this.offsets.read, cookie: 0n },
        { offset: this.offsets.readEx, cookie: 1n },
      ];
      // Through /proc/self/fd/N: the kernel probes exactly the inode parsed above.
      const path = fdPath(this.lib.fd);
      this.links.push(attachUprobe(this.obj.progFd("ssl_read_entry"), path, points, { retprobe: false, pid, mode: this.mode, displayPath: this.lib.path }));
      this.links.push(attachUprobe(this.obj.progFd("ssl_read_return"), path, points, { retprobe: true, pid, mode: this.mode, displayPath: this.lib.path }));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  stats(): Map<number, SslRow> {
    return new Map(readSslStats(new MapReader(this.obj.mapFd("stats"))).map((r) => [r.pid, r]));
  }

  close(): void {
    for (const l of this.links) l.close();
    this.obj.close();
    closeFd(this.lib.fd);
  }
}

/** Drives N requests and checks the counters add up exactly; returns the per-request figures. */
async function countRequests(pid: number, port: number, n: number, opts: ConstructorParameters<typeof SslReadProbe>[1] = {}) {
  const probe = new SslReadProbe(pid, opts);
  try {
    // One request first: how many SSL_read/SSL_read_ex calls nginx makes for one request.
    const first = httpsGet(port, "/");
    expect(first.ok).toBe(true);
    const one = probe.stats().get(pid);
    expect(one).toBeDefined();
    // nginx reads each request with one successful SSL_read; around it come reads that return
    // WANT_READ or EOF, whose number depends on timing: count those, assert the rest exactly.
    const perRequest = one!.calls;
    expect(one!.calls - one!.errors).toBeGreaterThanOrEqual(1n); // see the lower bound below
    let requestBytes = first.requestBytes;
    for (let i = 0; i < n; i++) {
      const r = httpsGet(port, `/r${i}`);
      expect(r.body).toContain("404"); // nginx answered: the request went through SSL_read
      requestBytes += r.requestBytes;
    }
    const s = probe.stats();
    const st = s.get(pid)!;
    // Only the target's tgid is in the map: nothing else (curl's host libssl!) was counted.
    expect([...s.keys()]).toEqual([pid]);
    expect(st.comm).toBe("nginx");
    // Exact: every request byte was read once, every call returned, in order.
    expect(st.bytes).toBe(BigInt(requestBytes));
    expect(st.returns).toBe(st.calls);
    expect(st.orphanReturns).toBe(0n);
    expect(st.lostEntries).toBe(0n);
    // At least one successful read per request; under load nginx has been seen to take one
    // request in two reads (once in ~10 full runs), so the count of successes is a lower bound.
    expect(st.calls - st.errors).toBeGreaterThanOrEqual(BigInt(n + 1));
    return { probe, perRequest, stats: st };
  } catch (e) {
    probe.close();
    throw e;
  }
}

function inodeOfHostLibssl() {
  const st = statSync(HOST_LIBSSL);
  return { dev: st.dev, ino: st.ino };
}

describe("a process's view of files", () => {
  test("opens the container's private libssl, which does not exist on the host, by both methods", () => {
    expect(existsSync(CONTAINER_LIB)).toBe(false);
    const mapped = findMappedLibrary(nginx.pid, "libssl");
    expect(mapped?.path).toBe(CONTAINER_LIB);
    const t: Record<string, number> = {};
    const nsBefore = readlinkSync("/proc/thread-self/ns/mnt");
    const rootBefore = readlinkSync("/proc/thread-self/root");
    const cwdBefore = process.cwd();
    for (const method of ["openat2", "setns"] as const) {
      const t0 = performance.now();
      const f = openInProcessView(nginx.pid, CONTAINER_LIB, { method });
      t[method] = performance.now() - t0;
      try {
        expect(f.method).toBe(method);
        expect(f.inode.ino).toBe(mapped!.inode);
        expect(inodeKey(f.inode)).not.toBe(inodeKey(inodeOfHostLibssl()));
        expect(f.hostPathHint).toBe(`/proc/${nginx.pid}/root${CONTAINER_LIB}`);
        expect(readlinkSync(fdPath(f.fd))).toEndWith(CONTAINER_LIB);
      } finally {
        closeFd(f.fd);
      }
    }
    // After setns and back, this thread resolves paths on the host again.
    expect(existsSync(join(import.meta.dir, "proc-view.test.ts"))).toBe(true);
    expect(readlinkSync("/proc/thread-self/ns/mnt")).toBe(nsBefore);
    expect(readlinkSync("/proc/thread-self/root")).toBe(rootBefore);
    expect(process.cwd()).toBe(cwdBefore);
    console.log(`openInProcessView: openat2 ${t.openat2!.toFixed(2)} ms, setns ${t.setns!.toFixed(2)} ms (first call)`);
  });

  test("absolute symlinks resolve inside the container root, not on the host", () => {
    for (const method of ["openat2", "setns"] as const) {
      const link = openInProcessView(nginx.pid, "/opt/ssl-link.so", { method });
      const real = openInProcessView(nginx.pid, CONTAINER_LIB, { method });
      expect(link.inode).toEqual(real.inode);
      closeFd(link.fd);
      closeFd(real.fd);
      // Through /proc/PID/root the same link lands on the host's libbpf; in the view it is missing.
      expect(existsSync(`/proc/${nginx.pid}/root/etc/host-only-link`)).toBe(true);
      let err: unknown;
      try {
        openInProcessView(nginx.pid, "/etc/host-only-link", { method });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProcessError);
      expect((err as ProcessError).reason).toBe("not-found");
      expect((err as Error).message).toContain(`process ${nginx.pid}`);
    }
  });

  test("the ELF parsed from that fd resolves SSL_read of the container's build", () => {
    const lib = openLibraryInProcess(nginx.pid, "libssl");
    try {
      expect(lib.source).toBe("maps");
      const elf = new ElfFile(lib.fd, lib.hostPathHint);
      const f = resolveFunction(elf, "SSL_read");
      expect(f.offset).toBeGreaterThan(0);
      const hostFd = openSync(HOST_LIBSSL, "r");
      const host = resolveFunction(new ElfFile(hostFd, HOST_LIBSSL), "SSL_read");
      closeSync(hostFd);
      console.log(`SSL_read: container libssl 0x${f.offset.toString(16)}, host libssl 0x${host.offset.toString(16)} (${rootfs.sslSource})`);
      expect(lib.inode).not.toEqual(inodeOfHostLibssl());
    } finally {
      closeFd(lib.fd);
    }
  });

  test("the main executable is the running inode, named as the container sees it", () => {
    const exe = openExecutable(nginx.pid);
    try {
      expect(exe.path).toBe("/usr/sbin/nginx");
      expect(exe.method).toBe("proc_exe");
      expect(exe.inode.ino).toBe(statSync(join(rootfs.root, "usr/sbin/nginx")).ino);
      expect(new ElfFile(exe.fd, exe.hostPathHint).isPie).toBe(true);
    } finally {
      closeFd(exe.fd);
    }
    // A path given as is opens in the view too (the `probe uprobe /usr/sbin/nginx --pid` case).
    const byPath = openLibraryInProcess(nginx.pid, "/usr/sbin/nginx");
    expect(byPath.source).toBe("maps");
    expect(byPath.inode.ino).toBe(statSync(join(rootfs.root, "usr/sbin/nginx")).ino);
    closeFd(byPath.fd);
  });

  test("library names match their own sonames only", () => {
    const yes: [string, string][] = [["libssl", "libssl.so.3"], ["libssl", "libssl.so.1.1"], ["libssl", "libssl.so.1.0.2"], ["libcrypto", "/opt/ssl/libcrypto.so.3"], ["libz", "libz.so.1.2.13"], ["libpcre2-8", "libpcre2-8.so.0"], ["libfoo", "libfoo-2.1.so"], ["libssl.so.3", "/x/libssl.so.3"], ["libssl.so.3", "/usr/lib64/libssl.so.3.0.7"]];
    const no: [string, string][] = [["libssl", "libssl.so.59"], ["libssl", "libssl3.so"], ["libssl", "libssl.so"], ["libcrypto", "libcrypto.so.52"], ["libz", "libzstd.so.1"], ["libc", "libcrypt.so.1"], ["libc", "libc.so.6x"], ["libssl.so.3", "libssl.so.30"], ["libssl.so.3", "libssl.so.3x"]];
    for (const [n, f] of yes) expect([n, f, libraryNameMatches(n, f)]).toEqual([n, f, true]);
    for (const [n, f] of no) expect([n, f, libraryNameMatches(n, f)]).toEqual([n, f, false]);
  });

  test("a library not mapped yet is found in the container's own ld.so.cache; --wait semantics", async () => {
    const sleeper = await startNsContainer(["/bin/sleep", "1000"]);
    started.push(sleeper);
    expect(findMappedLibrary(sleeper.pid, "libssl")).toBeUndefined();
    const cands = processLibraryCandidates(sleeper.pid, "libssl");
    expect(cands[0]).toEqual({ path: CONTAINER_LIB, source: "ld.so.cache" });
    const lib = openLibraryInProcess(sleeper.pid, "libssl");
    expect(lib.source).toBe("ld.so.cache");
    expect(lib.path).toBe(CONTAINER_LIB);
    closeFd(lib.fd);
    // The host's cache names the host's libssl: parsed with the same code.
    const host = parseLdCache(new Uint8Array(readFileSync("/etc/ld.so.cache")));
    expect(host.some((e) => e.name === "libssl.so.3" && e.path.endsWith("x86_64-linux-gnu/libssl.so.3"))).toBe(true);
    expect(host.length).toBeGreaterThan(20);
    // Never loaded: waiting times out, naming the pid.
    await expect(waitForLibrary(sleeper.pid, "libssl", 250)).rejects.toThrow(`process ${sleeper.pid} did not load libssl within 250 ms`);
    // A nonexistent library: a not-found error with what was looked at.
    expect(() => openLibraryInProcess(sleeper.pid, "libnosuchlib")).toThrow(/has no libnosuchlib mapped.*ld\.so\.cache/);
    // The process that loads it later: waitForLibrary returns once maps has it.
    const late = await startNsContainer(["/bin/sh", "-c", "sleep 0.4; LD_PRELOAD=/opt/ssl/libssl.so.3 exec /bin/sleep 1000"]);
    started.push(late);
    expect(findMappedLibrary(late.pid, "libssl")).toBeUndefined();
    // The shell execs a program that loads libssl: the same PID then maps it.
    const found = await waitForLibrary(late.pid, "libssl", 5000, 20);
    expect(found.path).toBe(CONTAINER_LIB);
    await late.stop();
    await sleeper.stop();
  });

  test("a (deleted) library is reached through /proc/PID/map_files", async () => {
    const dir = join(WORK, `deleted-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const copy = join(dir, "libssl.so.3");
    copyFileSync(HOST_LIBSSL, copy);
    const p = Bun.spawn(["sleep", "1000"], { env: { ...process.env, LD_PRELOAD: copy }, stdout: "ignore", stderr: "ignore" });
    try {
      await waitForLibrary(p.pid, copy, 5000, 20);
      const ino = statSync(copy).ino;
      rmSync(copy);
      const m = findMappedLibrary(p.pid, "libssl")!;
      expect(m.deleted).toBe(true);
      expect(m.path).toBe(copy);
      const f = openMappedFile(p.pid, m);
      try {
        expect(f.method).toBe("map_files");
        expect(f.inode.ino).toBe(ino);
        expect(resolveFunction(new ElfFile(f.fd, f.hostPathHint), "SSL_read").offset).toBeGreaterThan(0);
      } finally {
        closeFd(f.fd);
      }
    } finally {
      p.kill("SIGKILL");
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("PID namespaces", () => {
  test("NSpid at two levels (container) and three (nested)", async () => {
    expect(nsPids(nginx.pid)).toEqual([nginx.pid, 1]);
    const nested = await startNsContainer(["/bin/sleep", "1000"], { nested: true });
    started.push(nested);
    const chain = nsPids(nested.pid);
    expect(chain.length).toBe(3);
    expect(chain[0]).toBe(nested.pid);
    expect(chain[2]).toBe(1);
    // The middle level: the outer namespace's PID 1 is the inner unshare, its child is PID 2 there.
    expect(nsPids(nested.wrappers.at(-1)!)).toEqual([nested.wrappers.at(-1)!, 1]);
    expect(chain[1]).toBe(2);
    // The innermost process sees its own root: a file of the rootfs opens in its view.
    const f = openInProcessView(nested.pid, "/bin/sleep");
    expect(f.inode.ino).toBe(statSync(join(rootfs.root, "bin/sleep")).ino);
    closeFd(f.fd);
    expect(nsPids(process.pid)).toEqual([process.pid]);
    await nested.stop();
  });
});

describe("probes attached in the container's view", () => {
  test.each(["multi", "perf"] as const)("%s entry + return probes on the container's libssl count N HTTPS requests exactly", async (mode) => {
    const N = 5;
    const { probe, perRequest, stats } = await countRequests(nginx.pid, nginx.port!, N, { mode });
    try {
      console.log(`nginx: ${perRequest} SSL_read/SSL_read_ex calls for the first request; ${stats.calls} calls = returns, ${stats.bytes} bytes, ${stats.errors} WANT_READ/EOF returns for ${N + 1} requests; attach mode ${probe.mode}`);
      const infos = probe.links.flatMap((l) => l.info());
      const entries = infos.filter((i) => i.uprobe && !i.uprobe.retprobe);
      const returns = infos.filter((i) => i.uprobe?.retprobe);
      const want = [probe.offsets.read, probe.offsets.readEx].sort((a, b) => a - b);
      if (probe.mode === "multi") {
        expect(entries.length).toBe(1);
        expect(returns.length).toBe(1);
        for (const i of [...entries, ...returns]) {
          expect(i.type).toBe("uprobe_multi");
          expect([...i.uprobe!.offsets].sort((a, b) => a - b)).toEqual(want);
          expect(i.uprobe!.pid).toBe(nginx.pid);
        }
      } else {
        // One perf-event uprobe per offset: two entries, two returns, the kernel says which is which.
        expect(entries.length).toBe(2);
        expect(returns.length).toBe(2);
        for (const i of [...entries, ...returns]) expect(i.type).toBe("perf_event");
        expect(entries.map((i) => i.uprobe!.offsets[0]!).sort((a, b) => a - b)).toEqual(want);
        expect(returns.map((i) => i.uprobe!.offsets[0]!).sort((a, b) => a - b)).toEqual(want);
      }
      // The kernel names the container's file, never the host's libssl: uprobe_multi reports the
      // probed file's path (in the container's view), a perf uprobe the string it was opened with
      // (our /proc/self/fd/N, which is the container's inode).
      for (const i of infos) {
        if (probe.mode === "multi") expect(i.uprobe!.path).toBe(CONTAINER_LIB);
        else expect(i.uprobe!.path).toBe(fdPath(probe.lib.fd));
        expect(i.uprobe!.path).not.toBe(HOST_LIBSSL);
      }
      expect(statSync(fdPath(probe.lib.fd)).ino).not.toBe(inodeOfHostLibssl().ino);
    } finally {
      probe.close();
    }
  });

  test("the target exits mid-run: detected, named by pid, links close cleanly", async () => {
    const victim = await startNginxContainer();
    started.push(victim);
    const id = processIdentity(victim.pid);
    const probe = new SslReadProbe(victim.pid);
    try {
      expect(httpsGet(victim.port!, "/").ok).toBe(true);
      expect(probe.stats().get(victim.pid)!.calls).toBeGreaterThan(0n);
      // Killed from outside while probe watches it.
      const w = new ProcessWatch(id);
      const watch = (async () => {
        while (!w.exited()) await Bun.sleep(20);
        w.close();
        return true;
      })();
      const killedAt = performance.now();
      process.kill(victim.pid, "SIGKILL");
      expect(await watch).toBe(true);
      console.log(`target exit noticed after ${(performance.now() - killedAt).toFixed(0)} ms`);
      await victim.stop();
      expect(isSameProcess(id)).toBe(false);
      expect(() => assertSameProcess(id)).toThrow(`process ${victim.pid} does not exist (or has exited)`);
      expect(() => openInProcessView(victim.pid, CONTAINER_LIB)).toThrow(`process ${victim.pid}`);
      expect(() => openLibraryInProcess(victim.pid, "libssl")).toThrow(`process ${victim.pid}`);
      expect(() => nsPids(victim.pid)).toThrow(ProcessError);
      // PID reuse: the same PID with another start time is not the same process.
      const me = processIdentity(process.pid);
      expect(isSameProcess(me)).toBe(true);
      expect(() => assertSameProcess({ pid: process.pid, startTime: me.startTime + 1n })).toThrow(`process ${process.pid} exited and its PID was reused`);
      // The links were on the file, not the process: still valid, and they close.
      expect(probe.links[0]!.info()[0]!.uprobe!.path).toEndWith(CONTAINER_LIB);
    } finally {
      probe.close();
    }
  });

  test("permission denied on the namespace names the capability", () => {
    const code = `
      import { openInProcessView } from ${JSON.stringify(join(import.meta.dir, "../../lib/proc/view.ts"))};
      for (const method of ["openat2", "setns"]) {
        try { openInProcessView(${nginx.pid}, "/opt/ssl/libssl.so.3", { method }); console.log(method + ": opened"); }
        catch (e) { console.log(method + ": " + e.reason + ": " + e.message); }
      }`;
    const withoutCaps = (caps: string) => {
      const r = Bun.spawnSync(["capsh", `--drop=${caps}`, "--", "-c", `exec ${process.execPath} -e '${code.replace(/'/g, "'\\''")}'`], { stdout: "pipe", stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      return r.stdout.toString();
    };
    // Without ptrace rights, /proc/PID/root and /proc/PID/ns are closed to us.
    let out = withoutCaps("cap_sys_ptrace,cap_sys_admin,cap_dac_read_search");
    expect(out).toContain(`openat2: permission: permission denied opening /proc/${nginx.pid}/root of process ${nginx.pid}: needs CAP_SYS_PTRACE`);
    expect(out).toContain(`setns: permission: permission denied opening /proc/${nginx.pid}/ns/mnt of process ${nginx.pid}: needs CAP_SYS_PTRACE`);
    // With them but without CAP_SYS_ADMIN: the root opens, entering the namespace does not.
    out = withoutCaps("cap_sys_admin");
    expect(out).toContain("openat2: opened");
    expect(out).toContain(`setns: permission: permission denied entering the mount namespace of process ${nginx.pid}: needs CAP_SYS_ADMIN and CAP_SYS_CHROOT`);
  });
});

describe("container engines", () => {
  test("containerPid asks a real dockerd; errors name every engine tried", async () => {
    const t0 = performance.now();
    const how = await ensureDocker();
    const d = await startDockerNginx();
    started.push(d);
    console.log(`docker: ${how} (install ${dockerTimings.installSeconds.toFixed(1)} s, dockerd start ${dockerTimings.dockerdStartSeconds.toFixed(1)} s, import ${dockerTimings.importSeconds.toFixed(1)} s), container serving after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const inspect = Bun.spawnSync(["docker", "inspect", "-f", "{{.State.Pid}} {{.Id}}", d.name], { stdout: "pipe" }).stdout.toString().trim().split(" ");
    const c = containerPid(d.name);
    expect(c).toEqual({ pid: Number(inspect[0]), engine: "docker", id: inspect[1]! });
    expect(containerPid(inspect[1]!.slice(0, 12)).pid).toBe(c.pid);
    // containerd's ctr sees the same task in dockerd's own containerd ("moby" namespace).
    expect(installedEngines()).toContain("ctr");
    expect(containerPid(inspect[1]!, ["ctr"])).toEqual({ pid: c.pid, engine: "ctr", id: `moby/${inspect[1]}` });
    expect(containerPid(inspect[1]!.slice(0, 12), ["ctr"]).pid).toBe(c.pid);
    expect(nsPids(c.pid)).toEqual([c.pid, 1]);
    expect(readFileSync(`/proc/${c.pid}/comm`, "utf8").trim()).toBe("nginx");
    // The same probe path as for the namespace container, through a real engine's overlay root.
    const { probe, perRequest } = await countRequests(c.pid, d.port, 3);
    try {
      expect(probe.lib.path).toBe(CONTAINER_LIB);
      expect(probe.lib.source).toBe("maps");
      console.log(`docker nginx: ${perRequest} SSL_read calls per request`);
    } finally {
      probe.close();
    }
    // A second container from the same image: its overlay mount has another st_dev, but the
    // layer file (the inode the kernel probes) is the same one.
    const d2 = await startDockerNginx();
    started.push(d2);
    const pid2 = containerPid(d2.name).pid;
    const lib1 = openLibraryInProcess(c.pid, "libssl");
    const lib2 = openLibraryInProcess(pid2, "libssl");
    expect(lib1.realInode.via).toBe("overlay");
    expect(inodeKey(lib1.inode)).not.toBe(inodeKey(lib2.inode));
    expect(inodeKey(lib1.realInode)).toBe(inodeKey(lib2.realInode));
    closeFd(lib2.fd);
    // The kernel agrees: a probe attached through container 1's file, filtered to container 2's
    // process, counts container 2's requests.
    const cross = await countRequests(pid2, d2.port, 2, { lib: lib1 });
    cross.probe.close();
    d2.stop();

    let err: unknown;
    try {
      containerPid(`no-such-container-${process.pid}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContainerError);
    const engines = installedEngines();
    expect(engines).toContain("docker");
    expect((err as ContainerError).attempts.map((a) => a.engine)).toEqual(engines);
    for (const e of engines) expect((err as Error).message).toContain(`${e}:`);
    expect((err as Error).message).toContain("No such container");
    d.stop();
  }, 300_000);
});
