#!/usr/bin/env python3
"""prometheus_client's side of the collect benchmark: one scrape, in this fresh process.

usage: collect.py DIR

Times MultiProcessCollector's collect plus generate_latest (the text format, as a default
scrape gets) over DIR, and prints one JSON line: the time in ms, the output size, and this
process's peak RSS (VmHWM) before and after, in KiB.
"""
import json
import sys
import time


def vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main():
    directory = sys.argv[1]
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    baseline = vm("VmHWM")
    start = time.perf_counter_ns()
    output = generate_latest(registry)
    elapsed = time.perf_counter_ns() - start
    print(json.dumps({"impl": "python", "ms": elapsed / 1e6, "bytes": len(output),
                      "baseline_hwm_kib": baseline, "hwm_kib": vm("VmHWM")}))


if __name__ == "__main__":
    main()
