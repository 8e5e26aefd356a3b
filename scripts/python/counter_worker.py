#!/usr/bin/env python3
"""A prometheus_client worker with its real pid, driven line by line (for the compaction tests).

Usage: counter_worker.py DIR [open-only|map-only FILE]

Without a mode: counts `jobs_total` once, prints `ready <pid>`, then for each line read on
standard input counts once more and prints `count <value>`; exits at end of input.
`open-only FILE` holds FILE open (not mapped), `map-only FILE` maps it read-write, shared, as
prometheus_client maps its files, and closes the descriptor (through libc, as Python's mmap
module would keep a duplicate descriptor); both
print `ready <pid>` and wait for the end of input.
"""
import ctypes
import os
import sys


def main():
    directory = sys.argv[1]
    if len(sys.argv) == 4:
        mode, path = sys.argv[2], sys.argv[3]
        if mode == "open-only":
            fd = os.open(path, os.O_RDONLY)
        elif mode == "map-only":
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            fd = os.open(path, os.O_RDWR)
            address = libc.mmap(None, 4096, 3, 1, fd, 0)  # PROT_READ | PROT_WRITE, MAP_SHARED
            if address in (None, ctypes.c_void_p(-1).value):
                print(f"mmap failed: errno {ctypes.get_errno()}", flush=True)
                return 1
            os.close(fd)
        else:
            sys.stderr.write(__doc__)
            return 2
        print(f"ready {os.getpid()}", flush=True)
        sys.stdin.read()
        return 0
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ.pop("prometheus_multiproc_dir", None)
    from prometheus_client import Counter
    jobs = Counter("jobs", "Jobs done.", registry=None)
    jobs.inc()
    print(f"ready {os.getpid()}", flush=True)
    for _ in sys.stdin:
        jobs.inc()
        print(f"count {jobs._value.get()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
