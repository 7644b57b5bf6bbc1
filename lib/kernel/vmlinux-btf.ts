// The running kernel's own BTF, which libbpf needs to relocate CO-RE reads (bpf/filter.h). libbpf
// reads /sys/kernel/btf/vmlinux; where /sys is not mounted (probe as a minimal container's
// entrypoint), the same bytes are fetched through bpf(2) and handed over as a memfd.
import { accessSync, constants, writeSync } from "node:fs";
import { closeFd, cstr, ptr, syscallErr, SYS, OsError } from "../ffi/libc.ts";
import { libbpf } from "../ffi/libbpf.ts";
import { BTF_INFO } from "./abi.ts";
import { objInfo } from "./bpf.ts";

const SYSFS_VMLINUX = "/sys/kernel/btf/vmlinux";

/** The kernel's BTF as raw bytes, found among the kernel's BTF objects by name. */
export function kernelBtfBytes(): Uint8Array | undefined {
  const L = libbpf();
  const next = new Uint32Array(1);
  let id = 0;
  while (L.bpf_btf_get_next_id(id, next) === 0) {
    id = next[0]!;
    const fd = L.bpf_btf_get_fd_by_id(id);
    if (fd < 0) continue;
    try {
      const name = new Uint8Array(64);
      const head = objInfo(fd, BTF_INFO.size, (w) => {
        w.setBigUint64(BTF_INFO.name, BigInt(ptr(name)), true);
        w.setUint32(BTF_INFO.name_len, name.length, true);
      });
      const isVmlinux = head.getUint32(BTF_INFO.kernel_btf, true) !== 0 && new TextDecoder().decode(name.subarray(0, name.indexOf(0))) === "vmlinux";
      if (!isVmlinux) continue;
      const size = head.getUint32(BTF_INFO.btf_size, true);
      const raw = new Uint8Array(size);
      objInfo(fd, BTF_INFO.size, (w) => {
        w.setBigUint64(BTF_INFO.btf, BigInt(ptr(raw)), true);
        w.setUint32(BTF_INFO.btf_size, size, true);
      });
      return raw;
    } finally {
      closeFd(fd);
    }
  }
  return undefined;
}

/**
 * A path libbpf can read the kernel's BTF from when it cannot find it itself: undefined when
 * /sys/kernel/btf/vmlinux is there; else a memfd (closed by the returned `close`) holding it.
 */
export function vmlinuxBtfFallback(): { path: string; close(): void } | undefined {
  try {
    accessSync(SYSFS_VMLINUX, constants.R_OK);
    return undefined;
  } catch {
    // not mounted (or not readable): fetch it below
  }
  const bytes = kernelBtfBytes();
  if (!bytes) return undefined;
  const MFD_CLOEXEC = 1;
  const fd = syscallErr(SYS.memfd_create, ptr(cstr("vmlinux-btf")), MFD_CLOEXEC);
  if (fd < 0) throw new OsError("memfd_create", -fd);
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  return { path: `/proc/self/fd/${fd}`, close: () => closeFd(fd) };
}
