#!/usr/bin/env python3
"""Merge a multiprocess directory with prometheus_client's MultiProcessCollector.

Usage: mmap_collect.py DIR
Prints a JSON list of [family, type, sample_name, [[label, value], ...], value, value_bits],
labels sorted by name (code point), rows sorted by (sample_name, labels); values are floats or
"+Inf"/"-Inf"/"NaN"; value_bits is the IEEE-754 bit pattern as 16 hex digits (exact).
(A small helper for the MmapStore tests; scripts/python/collect.py is the full one.)
Exit 1 with the Python error on standard error if the collector raises.
"""
import json
import math
import struct
import sys


def main():
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    collector = MultiProcessCollector(registry, path=sys.argv[1])
    rows = []
    for family in collector.collect():
        for s in family.samples:
            v = s.value
            bits = "%016x" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                v = "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
            rows.append([family.name, family.type, s.name, sorted([k, lv] for k, lv in s.labels.items()), v, bits])
    rows.sort(key=lambda r: (r[2], r[3]))
    json.dump(rows, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        sys.stderr.write("%s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
