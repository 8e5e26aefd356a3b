#!/usr/bin/env python3
"""Parse an OpenMetrics body from stdin with prometheus_client's strict parser and print the
exemplars it found, as JSON.

Usage: om_exemplars.py < body

Prints a list sorted by (sample name, sorted labels) of
{"name", "labels": {...}, "value", "exemplar": {"labels": {...}, "value", "timestamp"}}
for every sample that carries an exemplar (timestamps as floats). Exit 1 with the parser's
error on stderr when the body is not valid OpenMetrics.
"""
import json
import sys


def main() -> int:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
    body = sys.stdin.buffer.read().decode("utf-8")
    try:
        families = list(parse(body))
    except Exception as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    out = []
    for family in families:
        for s in family.samples:
            if s.exemplar is None:
                continue
            ts = s.exemplar.timestamp
            if ts is not None and not isinstance(ts, float):
                ts = ts.sec + ts.nsec / 1e9
            out.append({"name": s.name, "labels": s.labels,
                        "value": s.value,
                        "exemplar": {"labels": s.exemplar.labels, "value": s.exemplar.value, "timestamp": ts}})
    out.sort(key=lambda e: (e["name"], sorted(e["labels"].items())))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
