#!/usr/bin/env python3
"""A prometheus_client worker writing its share of a collect-benchmark directory.

usage: gen_dir.py DIR PIDS SERIES      (PIDS: N, or A-B to play several workers in turn)

Writes, as prometheus_client 0.26.0 in multiprocess mode with the pid given, SERIES counter
children of bench_requests_total{series="s<i>"} (incremented by i % 7 + 1) and SERIES/10
histogram children of bench_latency_seconds{series="h<j>"} with the default buckets (one
observation of (j % 50) / 100 each): exactly what `prom-multiproc-bench write-dir` writes.

With a range, one process plays each pid in turn: prometheus_client notices the changed pid on
the next write, as after a fork, and re-creates every value in the new pid's files.
"""
import os
import sys


def main():
    directory, pids, series = sys.argv[1], sys.argv[2], int(sys.argv[3])
    first, _, last = pids.partition("-")
    first = int(first)
    last = int(last) if last else first
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    current = {"pid": first}

    from prometheus_client import CollectorRegistry, Counter, Histogram, values

    values.ValueClass = values.MultiProcessValue(lambda: current["pid"])
    registry = CollectorRegistry()
    counter = Counter("bench_requests_total", "Requests.", ["series"], registry=registry)
    histogram = Histogram("bench_latency_seconds", "Latency.", ["series"], registry=registry)
    for pid in range(first, last + 1):
        current["pid"] = pid
        for i in range(series):
            counter.labels(f"s{i}").inc(i % 7 + 1)
        for j in range(series // 10):
            histogram.labels(f"h{j}").observe((j % 50) / 100)


if __name__ == "__main__":
    main()
