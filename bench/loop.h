/* What every benchmark target does around its loop: says "ready PID" and waits for a line on
 * stdin (a tracer attaches meanwhile), times the loop on CLOCK_MONOTONIC, and prints
 * "NS_PER_ITERATION VALUE" (VALUE: what the loop computed, so that it is not optimized away, or
 * the PID). */
#ifndef BENCH_LOOP_H
#define BENCH_LOOP_H
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Says "ready PID", then waits for the go line; 0 when stdin closed first. */
static int wait_for_go(void)
{
	printf("ready %d\n", getpid());
	fflush(stdout);
	char line[16];
	return fgets(line, sizeof line, stdin) != NULL;
}

static struct timespec loop_start(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

/* Nanoseconds since `t0`. */
static double ns_since(struct timespec t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
}

/* Prints "NS_PER_ITERATION VALUE" for `n` iterations since `t0`. */
static void report_loop(struct timespec t0, long n, long value)
{
	double ns = ns_since(t0);
	printf("%.1f %ld\n", ns / n, value);
	fflush(stdout);
}
#endif
