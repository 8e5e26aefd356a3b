#!/usr/bin/env python3
"""Print every entry of metric files as prometheus_client 0.26.0 reads them.

Usage: mmap_read.py FILE...
Prints a JSON object {basename: [[key, value, timestamp, value_bits, timestamp_bits], ...]}
using prometheus_client.mmap_dict.MmapedDict.read_all_values_from_file, the collector's reader.
The *_bits are the IEEE-754 bit patterns as 16 hex digits, for exact comparisons (JSON readers
do not all parse floats exactly).
Exit 1 with the Python error on standard error if reading raises.
"""
import json
import os
import struct
import sys


def bits(v):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]


def main():
    from prometheus_client.mmap_dict import MmapedDict
    out = {}
    for path in sys.argv[1:]:
        out[os.path.basename(path)] = [[k, v, t, bits(v), bits(t)] for k, v, t, _pos in MmapedDict.read_all_values_from_file(path)]
    json.dump(out, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        sys.stderr.write("%s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
