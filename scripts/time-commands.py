#!/usr/bin/env python3
"""time-commands.py N CMD [CMD...]: runs each command N times, interleaved,
and prints the median and minimum wall time of each and its ratio to the
first command's median (use a baseline such as a hello-world binary
first). Output of the commands is discarded. For start-up figures on a
shared machine, where only ratios within one run mean much."""
import statistics
import subprocess
import sys
import time

n = int(sys.argv[1])
cmds = sys.argv[2:]
times = {c: [] for c in cmds}
for _ in range(n):
    for c in cmds:
        t = time.perf_counter()
        subprocess.run(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[c].append((time.perf_counter() - t) * 1000)
base = statistics.median(times[cmds[0]])
for c in cmds:
    m = statistics.median(times[c])
    print("%8.1f ms median  %6.1f min  %5.2fx  %s" % (m, min(times[c]), m / base, c))
