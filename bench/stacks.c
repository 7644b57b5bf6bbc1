/* Benchmark target for stacks: N calls of bench_target, each reached through Debian's libc
 * (qsort -> msort_with_tmp -> compare -> bench_target), timed; prints "ns_per_call PID". Built
 * with frame pointers, so that a frame-pointer walk has what it needs in this program's own
 * frames and stops only where libc has none. Waits for a line on stdin first, and for stdin to
 * close before it exits. Usage: stacks N */
#include <stdlib.h>
#include "loop.h"

volatile long sink;

__attribute__((noinline)) long bench_target(long x)
{
	sink += x;
	return sink;
}

__attribute__((noinline)) static int compare(const void *p, const void *q)
{
	long x = *(const long *)p, y = *(const long *)q;
	bench_target(x);
	return x < y ? -1 : x > y;
}

__attribute__((noinline)) static void one_sort(long i)
{
	long v[2] = {i & 1, 1 - (i & 1)};
	qsort(v, 2, sizeof v[0], compare);
	sink += v[0];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	if (!wait_for_go())
		return 1;
	struct timespec t0 = loop_start();
	for (long i = 0; i < n; i++)
		one_sort(i);
	report_loop(t0, n, sink);
	/* Stays until stdin closes: a tracer names the stacks from this process's maps at its exit. */
	char line[16];
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}
