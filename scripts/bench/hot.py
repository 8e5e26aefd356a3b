#!/usr/bin/env python3
"""prometheus_client's side of the hot-path benchmark (one round).

The same operations as `prom-multiproc-bench hot`, in multiprocess mode: a temporary
PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is imported. Each operation runs in a
timeit-style loop (the bound method in a local, `for _ in range(n)`), so the figures include
CPython's loop overhead (~20-30 ns per iteration on our VMs), as any caller's code would.

Prints one JSON line per (operation, threads), with the same fields as the Swift side:
wall_ns, ns_per_op_per_thread (wall / iterations per thread) and ns_per_op_wall
(wall / total iterations).

usage: hot.py [--ops a,b] [--threads 1,2] [--scale S] [--reps R]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

OPS = {
    # name: iterations per thread at scale 1 (about 0.2 s each on our VMs)
    "counter_inc_cached": 100_000,
    "counter_labels2_inc": 50_000,
    "histogram_observe_0.3": 50_000,
    "histogram_observe_inf": 50_000,
    "gauge_set_all": 100_000,
    "gauge_inc_cached": 100_000,
    "summary_observe_cached": 50_000,
    "counter_inc_unlabelled": 100_000,
    "gauge_set_unlabelled": 100_000,
    "gauge_inc_unlabelled": 100_000,
    "histogram_observe_unlabelled_0.3": 50_000,
    "summary_observe_unlabelled": 50_000,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    directory = tempfile.mkdtemp(prefix="prom-bench-hot-py-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        run(args)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(args):
    # Imported only now: prometheus_client picks its value class from the environment.
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

    registry = CollectorRegistry()
    label_a = os.environ.get("BENCH_LABEL_A", "a")
    label_b = os.environ.get("BENCH_LABEL_B", "b")
    counter = Counter("bench_requests_total", "Requests.", ["method", "code"], registry=registry)
    for i in range(99):
        counter.labels(f"m{i}", f"c{i}")
    cached = counter.labels(label_a, label_b)
    histogram = Histogram("bench_latency_seconds", "Latency.", ["route"], registry=registry).labels("/api")
    gauge = Gauge("bench_temperature", "A gauge.", ["sensor"], multiprocess_mode="all", registry=registry).labels("x")
    summary = Summary("bench_size_bytes", "Sizes.", ["route"], registry=registry).labels("/api")
    plain_counter = Counter("bench_plain_total", "Unlabelled counter.", registry=registry)
    plain_gauge = Gauge("bench_plain_gauge", "Unlabelled gauge.", multiprocess_mode="all", registry=registry)
    plain_histogram = Histogram("bench_plain_seconds", "Unlabelled histogram.", registry=registry)
    plain_summary = Summary("bench_plain_bytes", "Unlabelled summary.", registry=registry)

    def loop_inc(n):
        inc = cached.inc
        for _ in range(n):
            inc()

    def loop_labels_inc(n):
        labels = counter.labels
        a, b = label_a, label_b
        for _ in range(n):
            labels(a, b).inc()

    def loop_observe(value):
        def loop(n):
            observe = histogram.observe
            for _ in range(n):
                observe(value)
        return loop

    def loop_set(n):
        set_ = gauge.set
        for i in range(n):
            set_(i)

    def call_loop(method, *args):
        def loop(n):
            for _ in range(n):
                method(*args)
        return loop

    def set_loop(method):
        def loop(n):
            for i in range(n):
                method(i)
        return loop

    loops = {
        "counter_inc_cached": loop_inc,
        "counter_labels2_inc": loop_labels_inc,
        "histogram_observe_0.3": loop_observe(0.3),
        "histogram_observe_inf": loop_observe(100.0),
        "gauge_set_all": loop_set,
        "gauge_inc_cached": call_loop(gauge.inc),
        "summary_observe_cached": call_loop(summary.observe, 0.3),
        "counter_inc_unlabelled": call_loop(plain_counter.inc),
        "gauge_set_unlabelled": set_loop(plain_gauge.set),
        "gauge_inc_unlabelled": call_loop(plain_gauge.inc),
        "histogram_observe_unlabelled_0.3": call_loop(plain_histogram.observe, 0.3),
        "summary_observe_unlabelled": call_loop(plain_summary.observe, 0.3),
    }

    for op in args.ops.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            # Contended runs are several times slower per op: fewer iterations keep rounds short.
            n = max(1, int(OPS[op] * args.scale) // (1 if threads == 1 else 4))
            time_run(loops[op], threads, max(1, n // 10))  # warm up
            walls = sorted(time_run(loops[op], threads, n) for _ in range(args.reps))
            wall = walls[len(walls) // 2]
            print(json.dumps({
                "impl": "python", "op": op, "threads": threads, "n": n, "wall_ns": wall,
                "ns_per_op_per_thread": wall / n, "ns_per_op_wall": wall / (n * threads),
            }), flush=True)


def time_run(loop, threads, n):
    """Wall time in ns of `threads` threads each running `loop(n)`, started together."""
    if threads == 1:
        start = time.perf_counter_ns()
        loop(n)
        return time.perf_counter_ns() - start
    barrier = threading.Barrier(threads)
    times = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        start = time.perf_counter_ns()
        loop(n)
        end = time.perf_counter_ns()
        with lock:
            times.append((start, end))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return max(e for _, e in times) - min(s for s, _ in times)


if __name__ == "__main__":
    sys.exit(main())
