/* The floor for probe's start-up and memory: the least a libbpf C loader does for the job of
 * `probe uprobe TARGET FUNC --ret --pid PID`. It opens the same BPF object (probe's plain uprobe
 * object, from memory as probe does), writes the same config into .rodata, loads only the entry and
 * return programs, attaches them as two uprobe_multi links (entry, return) on FUNC's file offset
 * with the same PID filter, says "attached" on stderr, and waits for SIGINT/SIGTERM.
 * With --drain it also reads the ring buffer and prints one line per record (the stream's job);
 * with --summary the program counts per process instead (probe's --summary config).
 * Built by bench/startup.ts: cc -O2 floor.c -lbpf -lelf.
 * --size NAME=N sets a map's max_entries (the bench gives it probe's sizes for the job).
 * Usage: floor OBJ TARGET FUNC PID [--summary] [--drain] [--ring BYTES] [--size NAME=N]... */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Not in Debian 12's uapi headers (6.1): BPF_TRACE_UPROBE_MULTI and its link_create attr (6.6). */
#define ATTACH_UPROBE_MULTI 48
#define UPROBE_MULTI_RETURN 1

struct link_create_uprobe_multi {
	uint32_t prog_fd, target_fd, attach_type, flags;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t cnt, multi_flags, pid, pad;
};

/* struct uprobe_config (bpf/uprobe.h; lib/layouts.ts UPROBE_CONFIG): the bytes probe writes. */
enum { CFG_SIZE = 48, CFG_TGID = 0, CFG_EMIT_EVENTS = 8, CFG_COUNT_CALLS = 9, CFG_TRACK_LATENCY = 10 };

/* FLOOR_TIMING=1: phase marks on stderr (ms since main), like probe's PROBE_TIMING. */
static int timing;
static void mark(const char *phase)
{
	static struct timespec t0;
	if (!timing)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!t0.tv_sec)
		t0 = now;
	fprintf(stderr, "floor: timing: %s at %.1f ms\n", phase, (now.tv_sec - t0.tv_sec) * 1e3 + (now.tv_nsec - t0.tv_nsec) / 1e6);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* FUNC's file offset in TARGET: its symbol's address through the PT_LOAD segment holding it. */
static uint64_t func_offset(const char *path, const char *func)
{
	elf_version(EV_CURRENT);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path, errno);
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		die("elf_begin", EINVAL);
	uint64_t addr = 0;
	Elf_Scn *scn = NULL;
	while (!addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC || !s.st_value)
				continue;
			const char *name = elf_strptr(e, sh.sh_link, s.st_name);
			if (name && !strcmp(name, func)) {
				addr = s.st_value;
				break;
			}
		}
	}
	if (!addr)
		die(func, ENOENT);
	size_t n = 0;
	elf_getphdrnum(e, &n);
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_memsz) {
			uint64_t off = addr - ph.p_vaddr + ph.p_offset;
			elf_end(e);
			close(fd);
			return off;
		}
	}
	die("no PT_LOAD holds the symbol", EINVAL);
	return 0;
}

static int attach(int prog_fd, const char *path, uint64_t offset, int ret, int pid)
{
	uint64_t cookie = 0;
	struct link_create_uprobe_multi a;
	memset(&a, 0, sizeof a);
	a.prog_fd = prog_fd;
	a.attach_type = ATTACH_UPROBE_MULTI;
	a.path = (uint64_t)(uintptr_t)path;
	a.offsets = (uint64_t)(uintptr_t)&offset;
	a.cookies = (uint64_t)(uintptr_t)&cookie;
	a.cnt = 1;
	a.multi_flags = ret ? UPROBE_MULTI_RETURN : 0;
	a.pid = pid;
	int fd = syscall(SYS_bpf, BPF_LINK_CREATE, &a, sizeof a);
	if (fd < 0)
		die("bpf(LINK_CREATE uprobe_multi)", errno);
	return fd;
}

static FILE *sink;
static int on_record(void *ctx, void *data, size_t len)
{
	(void)ctx;
	const uint32_t *u = data;
	const uint64_t *q = data;
	/* struct uprobe_event: kind, pid, tid, func, ts, comm, nspid, args (lib/layouts.ts UPROBE_EVENT). */
	if (len >= 56)
		fprintf(sink, "{\"event\":%u,\"pid\":%u,\"tid\":%u,\"ts\":%llu,\"comm\":\"%.16s\",\"a0\":%llu}\n", u[0], u[1], u[2],
			(unsigned long long)q[2], (const char *)data + 24, (unsigned long long)q[6]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: floor OBJ TARGET FUNC PID [--summary] [--drain] [--ring BYTES] [--size NAME=N]...\n");
		return 2;
	}
	const char *obj_path = argv[1], *target = argv[2], *func = argv[3];
	int pid = atoi(argv[4]), summary = 0, drain = 0;
	unsigned ring = 8 << 20;
	/* --size NAME=N: max_entries of a map, as probe sizes it for the job (up to 16). */
	const char *size_names[16];
	unsigned size_values[16];
	int nsizes = 0;
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--summary"))
			summary = 1;
		else if (!strcmp(argv[i], "--drain"))
			drain = 1;
		else if (!strcmp(argv[i], "--ring") && i + 1 < argc)
			ring = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc && nsizes < 16) {
			char *eq = strchr(argv[++i], '=');
			if (!eq)
				die("--size takes NAME=N", EINVAL);
			*eq = 0;
			size_names[nsizes] = argv[i];
			size_values[nsizes++] = (unsigned)strtoul(eq + 1, NULL, 0);
		}
	}
	timing = getenv("FLOOR_TIMING") != NULL;
	mark("main");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	libbpf_set_print(silent);

	/* The object from memory, as probe has it embedded. */
	int ofd = open(obj_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (ofd < 0 || fstat(ofd, &st))
		die(obj_path, errno);
	char *image = malloc(st.st_size);
	if (read(ofd, image, st.st_size) != st.st_size)
		die(obj_path, EIO);
	close(ofd);

	uint64_t offset = func_offset(target, func);
	mark("function resolved");

	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "uprobe");
	struct bpf_object *obj = bpf_object__open_mem(image, st.st_size, &oo);
	if (!obj)
		die("bpf_object__open_mem", errno);
	struct bpf_program *p, *entry = NULL, *ret = NULL;
	bpf_object__for_each_program(p, obj) {
		const char *name = bpf_program__name(p);
		if (!strcmp(name, "probe_entry"))
			entry = p;
		else if (!strcmp(name, "probe_return"))
			ret = p;
		else {
			bpf_program__set_autoload(p, false);
			continue;
		}
		bpf_program__set_expected_attach_type(p, ATTACH_UPROBE_MULTI);
	}
	if (!entry || !ret)
		die("no probe_entry/probe_return in the object", ENOENT);
	/* The sizes probe gives the maps for this job (src/commands/uprobe.ts). */
	struct bpf_map *m;
	bpf_object__for_each_map(m, obj) {
		const char *name = bpf_map__name(m);
		if (!strcmp(name, "events"))
			bpf_map__set_max_entries(m, ring);
		else if (!strcmp(name, "funcs") || !strcmp(name, "hists") || !strcmp(name, "hist_slots") || !strcmp(name, "stack_ids"))
			bpf_map__set_max_entries(m, 1);
		else if (strstr(name, ".rodata")) {
			size_t size = 0;
			uint8_t *cfg = (uint8_t *)bpf_map__initial_value(m, &size);
			if (!cfg || size < CFG_SIZE)
				die(".rodata has no room for the config", EINVAL);
			memset(cfg, 0, CFG_SIZE);
			memcpy(cfg + CFG_TGID, &pid, 4);
			cfg[CFG_EMIT_EVENTS] = !summary;
			cfg[CFG_COUNT_CALLS] = summary;
			cfg[CFG_TRACK_LATENCY] = !summary;
		}
		for (int i = 0; i < nsizes; i++)
			if (!strcmp(name, size_names[i]))
				bpf_map__set_max_entries(m, size_values[i]);
	}
	mark("opened");
	int err = bpf_object__load(obj);
	if (err)
		die("bpf_object__load", err);
	mark("loaded");

	int links[2];
	links[0] = attach(bpf_program__fd(entry), target, offset, 0, pid);
	links[1] = attach(bpf_program__fd(ret), target, offset, 1, pid);
	mark("attached");
	/* On stderr: stdout is the records'. */
	fprintf(stderr, "attached\n");

	struct ring_buffer *rb = NULL;
	if (drain) {
		sink = stdout;
		rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "events"), on_record, NULL, NULL);
		if (!rb)
			die("ring_buffer__new", errno);
	}
	/* Until a signal, or the traced process is gone (as probe stops with it). */
	while (!stop && !kill(pid, 0)) {
		/* The programs submit without wakeups (BPF_RB_NO_WAKEUP): polled, like probe, every 10 ms
		 * while quiet and at once while records come. */
		int n = rb ? ring_buffer__consume(rb) : 0;
		if (n < 0)
			break;
		if (!n)
			usleep(rb ? 10 * 1000 : 100 * 1000);
	}
	if (rb) {
		ring_buffer__consume(rb);
		fflush(stdout);
		ring_buffer__free(rb);
	}
	close(links[0]);
	close(links[1]);
	bpf_object__close(obj);
	free(image);
	return 0;
}
