#!/usr/bin/env python3
"""Run prometheus_client's MultiProcessCollector on a directory and print the result.

Usage: collect.py DIR [--text] [--no-accumulate] [--glob-order]

Prints JSON: a list of families sorted by name, each
{"name", "type", "help", "samples": [{"name", "labels": {...}, "value"}]}, samples sorted by
(name, sorted labels); values are floats, or the strings "+Inf", "-Inf", "NaN".
With --text it prints generate_latest() instead.

Files are merged in sorted name order (prometheus_client itself uses the directory's glob
order, which is not deterministic; --glob-order restores it), so that corner cases that
depend on the order (a name used with two types, mostrecent ties) are comparable with the
Swift collector, which merges in name order. --no-accumulate calls merge(files,
accumulate=False). Exits 1 with the Python error on stderr if prometheus_client raises.
"""
import glob
import json
import math
import os
import sys
import traceback

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return float(v)


class SortedCollector(MultiProcessCollector):
    """MultiProcessCollector merging files in sorted name order."""

    def __init__(self, registry, path, accumulate, glob_order):
        self._accumulate = accumulate
        self._glob_order = glob_order
        super().__init__(registry, path)

    def collect(self):
        files = glob.glob(os.path.join(self._path, '*.db'))
        if not self._glob_order:
            files = sorted(files, key=lambda f: os.path.basename(f).encode('utf-8'))
        return self.merge(files, accumulate=self._accumulate)


def main(argv):
    flags = {a for a in argv if a.startswith('--')}
    args = [a for a in argv if not a.startswith('--')]
    unknown = flags - {'--text', '--no-accumulate', '--glob-order'}
    if len(args) != 1 or unknown:
        sys.stderr.write(__doc__)
        return 2
    registry = CollectorRegistry(auto_describe=False)
    collector = SortedCollector(registry, args[0], '--no-accumulate' not in flags, '--glob-order' in flags)
    if '--text' in flags:
        sys.stdout.write(generate_latest(registry).decode('utf-8'))
        return 0
    families = []
    for metric in collector.collect():
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
