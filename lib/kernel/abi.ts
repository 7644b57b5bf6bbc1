// The kernel ABI probe speaks without libbpf's help, in one place: command and type numbers, and
// the byte layouts of the structs it builds or reads (include/uapi/linux/bpf.h of 6.6+ and
// perf_event.h). tests/kernel/abi.test.ts checks every offset against the running kernel's BTF.

export const BPF_CMD = { PROG_LOAD: 5, OBJ_GET_INFO_BY_FD: 15, RAW_TRACEPOINT_OPEN: 17, LINK_CREATE: 28 } as const;
export const BPF_PROG_TYPE = { KPROBE: 2, TRACEPOINT: 5, PERF_EVENT: 7, RAW_TRACEPOINT: 17 } as const;
export const BPF_ATTACH = { PERF_EVENT: 41, TRACE_KPROBE_MULTI: 42, TRACE_UPROBE_MULTI: 48 } as const;
export const BPF_F_UPROBE_MULTI_RETURN = 1;

export const PROG_TYPE_NAME: Record<number, string> = {
  0: "unspec", 1: "socket_filter", 2: "kprobe", 3: "sched_cls", 4: "sched_act", 5: "tracepoint", 6: "xdp",
  7: "perf_event", 8: "cgroup_skb", 9: "cgroup_sock", 10: "lwt_in", 11: "lwt_out", 12: "lwt_xmit", 13: "sock_ops",
  14: "sk_skb", 15: "cgroup_device", 16: "sk_msg", 17: "raw_tracepoint", 18: "cgroup_sock_addr",
  19: "lwt_seg6local", 20: "lirc_mode2", 21: "sk_reuseport", 22: "flow_dissector", 23: "cgroup_sysctl",
  24: "raw_tracepoint_writable", 25: "cgroup_sockopt", 26: "tracing", 27: "struct_ops", 28: "ext", 29: "lsm",
  30: "sk_lookup", 31: "syscall", 32: "netfilter",
};

export const MAP_TYPE = { PERF_EVENT_ARRAY: 4, PERCPU_HASH: 5, PERCPU_ARRAY: 6, STACK_TRACE: 7, LRU_PERCPU_HASH: 10, PERCPU_CGROUP_STORAGE: 21, STRUCT_OPS: 26, RINGBUF: 27 } as const;
export const MAP_TYPE_NAME: Record<number, string> = {
  1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash", 6: "percpu_array",
  7: "stack_trace", 8: "cgroup_array", 9: "lru_hash", 10: "lru_percpu_hash", 11: "lpm_trie",
  12: "array_of_maps", 13: "hash_of_maps", 14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap",
  18: "sockhash", 19: "cgroup_storage", 20: "reuseport_sockarray", 21: "percpu_cgroup_storage",
  22: "queue", 23: "stack", 24: "sk_storage", 25: "devmap_hash", 26: "struct_ops", 27: "ringbuf",
  28: "inode_storage", 29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf", 32: "cgrp_storage", 33: "arena",
};

export const LINK_TYPE_NAME: Record<number, string> = {
  1: "raw_tracepoint", 2: "tracing", 3: "cgroup", 4: "iter", 5: "netns", 6: "xdp", 7: "perf_event",
  8: "kprobe_multi", 9: "struct_ops", 10: "netfilter", 11: "tcx", 12: "uprobe_multi", 13: "netkit",
};

/** bpf_link_info.perf_event.type (enum bpf_perf_event_type). */
export const PERF_EVENT_KIND: Record<number, string> = { 1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint", 6: "event" };

/** BPF_TASK_FD_QUERY's fd_type (enum bpf_task_fd_type). */
export const TASK_FD_KIND: Record<number, string> = { 0: "raw_tracepoint", 1: "tracepoint", 2: "kprobe", 3: "kretprobe", 4: "uprobe", 5: "uretprobe" };

// ---- union bpf_attr ----

/** bpf_attr.raw_tracepoint (BPF_RAW_TRACEPOINT_OPEN). */
export const RAW_TRACEPOINT_ATTR = { size: 16, name: 0, prog_fd: 8 } as const;

/** bpf_attr for BPF_PROG_LOAD (the fields a feature probe sets). */
export const PROG_LOAD_ATTR = { size: 128, prog_type: 0, insn_cnt: 4, insns: 8, license: 16, expected_attach_type: 68 } as const;

/** bpf_attr.link_create, with its uprobe_multi and perf_event variants. */
export const LINK_CREATE_ATTR = {
  size: 64,
  prog_fd: 0,
  target_fd: 4,
  attach_type: 8,
  flags: 12,
  uprobe_multi: { path: 16, offsets: 24, ref_ctr_offsets: 32, cookies: 40, cnt: 48, flags: 52, pid: 56 },
  perf_event: { bpf_cookie: 16 },
} as const;

// ---- info structs (BPF_OBJ_GET_INFO_BY_FD) ----

export const LINK_INFO = {
  size: 128,
  type: 0,
  id: 4,
  prog_id: 8,
  uprobe_multi: { path: 16, offsets: 24, ref_ctr_offsets: 32, cookies: 40, path_size: 48, count: 52, flags: 56, pid: 60 },
  perf_event: {
    type: 16,
    /** uprobe: file_name, name_len, offset, cookie; tracepoint/kprobe: their name and name_len at the same places. */
    name: 24,
    name_len: 32,
    offset: 36,
    cookie: 40,
  },
} as const;

export const PROG_INFO = { size: 160, type: 0, id: 4, tag: 8, nr_map_ids: 52, map_ids: 56, name: 64, btf_id: 128, func_info_rec_size: 132, func_info: 136, nr_func_info: 144 } as const;

/** struct bpf_btf_info. */
export const BTF_INFO = { size: 32, btf: 0, btf_size: 8, id: 12, name: 16, name_len: 24, kernel_btf: 28 } as const;

export const MAP_INFO = {
  size: 88, type: 0, id: 4, key_size: 8, value_size: 12, max_entries: 16, map_flags: 20, name: 24,
  btf_id: 64, btf_key_type_id: 68, btf_value_type_id: 72,
} as const;

/** BPF_OBJ_NAME_LEN: program and map names the kernel keeps (15 characters and a NUL). */
export const OBJ_NAME_LEN = 16;

// ---- struct perf_event_attr ----

export const PERF_EVENT_ATTR = {
  /** PERF_ATTR_SIZE_VER5; anything >= 72 carries config2, which uprobes need for the offset. */
  size: 128,
  type: 0,
  attr_size: 4,
  config: 8,
  sample_period: 16,
  sample_type: 24,
  /** The u64 of one-bit fields (disabled, inherit, ..., mmap2, comm_exec, ...): PERF_ATTR_FLAG. */
  flags: 40,
  wakeup_events: 48,
  config1: 56,
  config2: 64,
} as const;
/** Bit numbers of perf_event_attr's one-bit fields, in the u64 at PERF_EVENT_ATTR.flags. */
export const PERF_ATTR_FLAG = { mmap: 8, comm: 9, task: 13, sample_id_all: 18, mmap2: 23, comm_exec: 24 } as const;
export const PERF_TYPE_SOFTWARE = 1;
export const PERF_TYPE_TRACEPOINT = 2;
export const PERF_COUNT_SW_DUMMY = 9;
export const PERF_COUNT_SW_BPF_OUTPUT = 10;
export const PERF_SAMPLE_TIME = 1 << 2;
export const PERF_SAMPLE_RAW = 1 << 10;
/** struct perf_event_mmap_page: where the kernel writes (data_head) and we have read (data_tail). */
export const PERF_MMAP_PAGE = { data_head: 1024, data_tail: 1032 } as const;
/** perf_event_header.type of the records probe reads. */
export const PERF_RECORD = { LOST: 2, COMM: 3, EXIT: 4, FORK: 7, SAMPLE: 9, MMAP2: 10 } as const;
/** perf_event_header.misc of a PERF_RECORD_COMM made by exec. */
export const PERF_RECORD_MISC_COMM_EXEC = 1 << 13;
export const PERF_FLAG_FD_CLOEXEC = 8;

// ---- file descriptors ----

export type FdKind = "prog" | "map" | "link" | "perf";

/** What an fd is, from the anon inode name its /proc/PID/fd link reads. */
export function fdKind(linkTarget: string): FdKind | undefined {
  switch (linkTarget) {
    case "anon_inode:bpf-prog":
      return "prog";
    case "anon_inode:bpf-map":
      return "map";
    case "anon_inode:bpf_link":
    case "anon_inode:bpf-link":
      return "link";
    case "anon_inode:[perf_event]":
      return "perf";
    default:
      return undefined;
  }
}
