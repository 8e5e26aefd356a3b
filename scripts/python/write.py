#!/usr/bin/env python3
"""Drive prometheus_client's multiprocess writer, as a given process id.

Usage: write.py DIR PID SPEC.json      (SPEC.json may be "-" for standard input)

SPEC is a JSON list of operations, performed in order:
  {"type": "counter", "name": "c", "help": "h", "labelnames": ["a"], "labels": ["x"],
   "op": "inc", "amount": 2}
  {"type": "gauge", "mode": "livesum", ..., "op": "set" | "inc" | "dec", "amount": 1}
  {"type": "histogram", "buckets": [0.1, 1.0], ..., "op": "observe", "amount": 0.5}
  {"type": "summary", ..., "op": "observe", "amount": 0.5}
  {..., "op": "create"}             just creates the (child) series, with value 0
  {"op": "pid", "pid": "456"}       later operations write as another process id
Optional per metric: "namespace", "subsystem", "unit". "labelnames"/"labels" default to [].
A metric is constructed once per (type, name) and reused by later operations.

Exit 0 on success; on a Python error, exit 1 with the error on standard error.
"""
import json
import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    directory, pid, spec_path = sys.argv[1:]
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ.pop("prometheus_multiproc_dir", None)
    # Import only after the environment is set: multiprocess mode is decided at import.
    from prometheus_client import values, Counter, Gauge, Histogram, Summary

    current = {"pid": pid}
    values.ValueClass = values.MultiProcessValue(lambda: current["pid"])

    spec = json.load(sys.stdin if spec_path == "-" else open(spec_path, encoding="utf-8"))
    metrics = {}
    for op in spec:
        if op.get("op") == "pid":
            current["pid"] = str(op["pid"])
            continue
        typ = op["type"]
        name = op["name"]
        labelnames = op.get("labelnames", [])
        key = (typ, name, op.get("mode"))
        metric = metrics.get(key)
        if metric is None:
            kwargs = dict(labelnames=labelnames, registry=None)
            for k in ("namespace", "subsystem", "unit"):
                if k in op:
                    kwargs[k] = op[k]
            doc = op.get("help", "")
            if typ == "counter":
                metric = Counter(name, doc, **kwargs)
            elif typ == "gauge":
                metric = Gauge(name, doc, multiprocess_mode=op.get("mode", "all"), **kwargs)
            elif typ == "histogram":
                if "buckets" in op:
                    kwargs["buckets"] = [float(b) for b in op["buckets"]]
                metric = Histogram(name, doc, **kwargs)
            elif typ == "summary":
                metric = Summary(name, doc, **kwargs)
            else:
                raise ValueError("unknown metric type %r" % typ)
            metrics[key] = metric
        child = metric.labels(*op.get("labels", [])) if labelnames else metric
        action = op.get("op", "create")
        amount = op.get("amount", 1)
        if action == "create":
            pass
        elif action == "inc":
            child.inc(amount)
        elif action == "dec":
            child.dec(amount)
        elif action == "set":
            child.set(amount)
        elif action == "observe":
            child.observe(amount)
        else:
            raise ValueError("unknown op %r" % action)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # report any Python error as exit 1
        sys.stderr.write("%s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
