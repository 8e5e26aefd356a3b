#!/usr/bin/env python3
"""A Python-side merge of DIR, timed alone (no rendering), in this fresh process.

usage: merge_peer.py speedups|python DIR

speedups: prometheus-client-python-speedups 0.1.0's Rust `merge(files)` (the merge that
client_python can hand its MultiProcessCollector's work to); python: prometheus_client
0.26.0's own `MultiProcessCollector.merge(files, accumulate=True)`, which its collect calls.
Both get the directory's *.db files, sorted, as MultiProcessCollector.collect passes them.
Prints one JSON line: the time in ms, the number of families and samples (the two must
agree), and this process's peak RSS (VmHWM) in KiB.
"""
import glob
import json
import os
import sys
import time


def vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main():
    impl, directory = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(directory, "*.db")))
    if impl == "speedups":
        from prometheus_client_python_speedups import merge

        def run():
            return merge(files)
    elif impl == "python":
        from prometheus_client.multiprocess import MultiProcessCollector

        def run():
            return MultiProcessCollector.merge(files, accumulate=True)
    else:
        raise SystemExit(f"merge_peer.py: unknown implementation {impl} (speedups or python)")
    baseline = vm("VmHWM")
    start = time.perf_counter_ns()
    metrics = list(run())
    elapsed = time.perf_counter_ns() - start
    samples = sum(len(m.samples) for m in metrics)
    print(json.dumps({"impl": impl, "ms": elapsed / 1e6, "families": len(metrics), "samples": samples,
                      "baseline_hwm_kib": baseline, "hwm_kib": vm("VmHWM")}))


if __name__ == "__main__":
    main()
