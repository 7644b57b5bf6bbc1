/* Benchmark target: times N calls of bench_fn (first instruction `push %rbp`, so a uprobe on it is
 * emulated, not single-stepped) and prints "ns_per_call PID". Waits for a line on stdin first so a
 * tracer can attach. Usage: loop N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long bench_fn(long a, long b)
{
	return a + b;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	printf("ready %d\n", getpid());
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	struct timespec t0, t1;
	long s = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		s += bench_fn(i, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f %ld\n", ns / n, s);
	fflush(stdout);
	return 0;
}
