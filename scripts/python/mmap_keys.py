#!/usr/bin/env python3
"""Encode keys exactly as prometheus_client's mmap_key does.

Reads a JSON list of [family, sample, [[label, value], ...], help] from standard input (the
labels may also be an object) and prints one line
per key: json.dumps([family, sample, labels, help], sort_keys=True) (what
prometheus_client.mmap_dict.mmap_key produces), in input order.
"""
import json
import sys

from prometheus_client.mmap_dict import mmap_key

for family, sample, labels, help_text in json.load(sys.stdin):
    pairs = list(labels.items()) if isinstance(labels, dict) else [tuple(p) for p in labels]
    names = [n for n, _ in pairs]
    sys.stdout.write(mmap_key(family, sample, names, [v for _, v in pairs], help_text) + "\n")
