/* Benchmark target for opensnoop: opens and closes /dev/null N times and prints
 * "ns_per_open PID" (an open and its close: what a traced open costs the process).
 * Waits for a line on stdin first so a tracer can attach. Usage: opens N */
#include <fcntl.h>
#include <stdlib.h>
#include "loop.h"

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	if (!wait_for_go())
		return 1;
	struct timespec t0 = loop_start();
	for (long i = 0; i < n; i++) {
		int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY);
		if (fd < 0)
			return 1;
		close(fd);
	}
	report_loop(t0, n, getpid());
	return 0;
}
