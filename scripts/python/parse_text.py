#!/usr/bin/env python3
"""Parse a Prometheus text exposition (format 0.0.4) with prometheus_client's parser.

Usage: parse_text.py < EXPOSITION

Prints JSON in the shape of collect.py: a list of families sorted by name, each
{"name", "type", "help", "samples": [{"name", "labels": {...}, "value"}]}, samples sorted by
(name, sorted labels); values are floats, or the strings "+Inf", "-Inf", "NaN". Used to read
what a Pushgateway exposes after a push, with a parser that is not ours.
Exits 1 with the Python error on stderr if the parser raises.
"""
import json
import math
import sys
import traceback

from prometheus_client.parser import text_string_to_metric_families


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return float(v)


def main(argv):
    if argv:
        sys.stderr.write(__doc__)
        return 2
    families = []
    for metric in text_string_to_metric_families(sys.stdin.read()):
        samples = [{"name": s.name, "labels": dict(s.labels), "value": value(s.value)} for s in metric.samples]
        samples.sort(key=lambda s: (s["name"], sorted(s["labels"].items())))
        families.append({"name": metric.name, "type": metric.type, "help": metric.documentation, "samples": samples})
    families.sort(key=lambda f: f["name"])
    json.dump(families, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:  # noqa: BLE001 -- report whatever prometheus_client raised
        traceback.print_exc()
        sys.exit(1)
