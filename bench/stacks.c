/* Benchmark target for stacks: N calls of bench_target, each reached through Debian's libc
 * (qsort -> msort_with_tmp -> compare -> bench_target), timed; prints "ns_per_call PID". Built
 * with frame pointers, so that a frame-pointer walk has what it needs in this program's own
 * frames and stops only where libc has none. Waits for a line on stdin first, and for stdin to
 * close before it exits. Usage: stacks N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
	printf("ready %d\n", getpid());
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		one_sort(i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f %ld\n", ns / n, sink);
	fflush(stdout);
	/* Stays until stdin closes: a tracer names the stacks from this process's maps at its exit. */
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}
