# The USDT benchmark's target: after "go", calls f() N times (argv[1]) under cProfile when argv[2]
# is 1 (CPython 3.11 fires function__entry only while a profile function is set, gh-98894), and
# prints the time per call in ns.
import cProfile
import sys
import time


def f():
    pass


def main():
    n = int(sys.argv[1])
    profiled = sys.argv[2] == "1"
    print("ready", flush=True)
    sys.stdin.readline()
    p = cProfile.Profile() if profiled else None
    if p:
        p.enable()
    t = time.perf_counter_ns()
    for _ in range(n):
        f()
    dt = time.perf_counter_ns() - t
    if p:
        p.disable()
    print(f"{dt / n:.1f} ns/call", flush=True)


main()
