#!/usr/bin/env python3
"""A prometheus_client writer for the torture run (scripts/torture.sh), the twin of the test
worker's `torture-writer` mode: the same metrics, keys and loop.

Usage: py_writer.py DIR pid|ID BATCH PAUSE_MICROSECONDS

It writes as the identity ID through `values.MultiProcessValue(lambda: ID)` (a pid that was
just declared dead: pid reuse, played) or as its real pid (`pid`), creates
`torture_ops_total` (a counter), `torture_latency` (a histogram with buckets 0.3 and 0.6) and
`torture_workers` (a livesum gauge, incremented once), prints `ready <identity>` and waits for
a line on standard input (the torture reads the values its files start from meanwhile: a file
of a dead process with that pid is adopted and continued, as prometheus_client does). Then it
loops until killed: BATCH times { inc the counter, observe (i % 4) / 4 }, sleep PAUSE.
"""
import os
import sys
import time


def main():
    directory, ident, batch, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ.pop("prometheus_multiproc_dir", None)
    from prometheus_client import values, Counter, Gauge, Histogram
    if ident == "pid":
        ident = str(os.getpid())
    else:
        values.ValueClass = values.MultiProcessValue(lambda: ident)
    ops = Counter("torture_ops", "Operations done by torture writers.", registry=None)
    latency = Histogram("torture_latency", "Values observed by torture writers.", buckets=(0.3, 0.6), registry=None)
    workers = Gauge("torture_workers", "Torture writers alive.", multiprocess_mode="livesum", registry=None)
    workers.inc()
    print(f"ready {ident}", flush=True)
    if not sys.stdin.readline():
        return 0
    seconds = pause / 1e6
    while True:
        for i in range(batch):
            ops.inc()
            latency.observe((i % 4) * 0.25)
        if seconds > 0:
            time.sleep(seconds)


if __name__ == "__main__":
    sys.exit(main())
