/* Benchmark target: times N calls of bench_fn (first instruction `push %rbp`, so a uprobe on it is
 * emulated, not single-stepped) and prints "ns_per_call SUM". Waits for a line on stdin first so a
 * tracer can attach. Usage: loop N */
#include <stdlib.h>
#include "loop.h"

__attribute__((noinline)) long bench_fn(long a, long b)
{
	return a + b;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	if (!wait_for_go())
		return 1;
	long s = 0;
	struct timespec t0 = loop_start();
	for (long i = 0; i < n; i++)
		s += bench_fn(i, 1);
	report_loop(t0, n, s);
	return 0;
}
