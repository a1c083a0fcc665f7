#!/usr/bin/env python3
"""Does this machine's disk stall? Three processes each append 6 000 B to a
file of their own in /var/tmp and `fdatasync` it, in a loop, for SECONDS
(default 40); each prints its sync count, p50, p99.9, maximum and every sync
over 50 ms with the second it began. No ConCoord: the disk's own floor under
the durable p99.9 (docs/benchmarks.md).

Usage: scripts/fsync-stalls.py [SECONDS]
"""
import os
import shutil
import sys
import tempfile
import time
from multiprocessing import Process, Queue


def sync_loop(results, seconds):
    directory = tempfile.mkdtemp(dir="/var/tmp")
    fd = os.open(directory + "/appends", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    latencies, stalls = [], []
    start = time.time()
    while time.time() < start + seconds:
        os.write(fd, b"x" * 6000)
        began = time.perf_counter()
        os.fdatasync(fd)
        took = time.perf_counter() - began
        latencies.append(took)
        if took > 0.05:
            stalls.append((round(time.time() - start, 1), round(took * 1000)))
    os.close(fd)
    shutil.rmtree(directory)
    latencies.sort()
    n = len(latencies)
    results.put((n, latencies[n // 2], latencies[int(n * 0.999)], latencies[-1], stalls))


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    results = Queue()
    loops = [Process(target=sync_loop, args=(results, seconds)) for _ in range(3)]
    for loop in loops:
        loop.start()
    for _ in loops:
        n, p50, p999, worst, stalls = results.get()
        print(f"syncs {n}, p50 {p50 * 1e3:.2f} ms, p99.9 {p999 * 1e3:.2f} ms, "
              f"max {worst * 1e3:.0f} ms, over 50 ms (second, ms): {stalls}")
    for loop in loops:
        loop.join()


if __name__ == "__main__":
    main()
