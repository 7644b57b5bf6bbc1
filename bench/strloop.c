/* Benchmark target for typed values: times N calls of bench_str(s) with a 64-byte string (first
 * instruction `push %rbp`) and prints "ns_per_call SUM". Waits for a line on stdin first so a tracer
 * can attach. Usage: strloop N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long bench_str(const char *s)
{
	return s[0];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	static const char s[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	printf("ready %d\n", getpid());
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	struct timespec t0, t1;
	long sum = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++)
		sum += bench_str(s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f %ld\n", ns / n, sum);
	fflush(stdout);
	return 0;
}
