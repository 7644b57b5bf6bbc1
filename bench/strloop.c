/* Benchmark target for typed values: times N calls of bench_str(s) with a 64-byte string (first
 * instruction `push %rbp`) and prints "ns_per_call SUM". Waits for a line on stdin first so a tracer
 * can attach. Usage: strloop N */
#include <stdlib.h>
#include "loop.h"

__attribute__((noinline)) long bench_str(const char *s)
{
	return s[0];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	static const char s[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	if (!wait_for_go())
		return 1;
	long sum = 0;
	struct timespec t0 = loop_start();
	for (long i = 0; i < n; i++)
		sum += bench_str(s);
	report_loop(t0, n, sum);
	return 0;
}
