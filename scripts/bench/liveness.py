#!/usr/bin/env python3
"""The cost of deciding liveness by /proc: the in-use scan, and a compaction, for a directory of
1,000 prometheus_client files of which 200 are held by 200 live processes.

Usage: liveness.py --bin DIR [--files 1000] [--holders 200] [--entries 20] [--rounds 3]

Run it through scripts/liveness-bench.sh. The holders are small Python processes that open and
map their file as prometheus_client's MmapedDict does (open 'r+b', mmap MAP_SHARED) and sleep;
the files are written in prometheus_client's format (0.18+) by this script. Each round makes
the dead files anew (the compaction folds them into counter_archive.db), then:
- `prom-multiproc-testworker scan-in-use DIR 5`: five scans alone (compaction makes two);
- `prom-multiproc-cli compact --verbose`, timed from outside; its liveness line gives the
  time of its two scans (before, and after hiding the sources).
Prints the figures; exits 1 when a scan does not see exactly the held files as in use, or the
compaction folds anything held.
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HOLDER = r"""
import mmap, sys
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 0)
print("ready", flush=True)
sys.stdin.read()
"""


def pad(n):
    return 8 - ((n + 4) % 8)


def write_file(path, entries):
    body = b""
    for i in range(entries):
        key = json.dumps(["bench", "bench_total", {"i": str(i)}, "Bench."], sort_keys=True).encode()
        body += struct.pack("<i", len(key)) + key + b" " * pad(len(key)) + struct.pack("<dd", 1.0, 0.0)
    used = 8 + len(body)
    size = 65536
    while size < used:
        size *= 2
    with open(path, "wb") as f:
        f.write(struct.pack("<i", used) + b"\0" * 4 + body + b"\0" * (size - used))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--holders", type=int, default=200)
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    d = tempfile.mkdtemp(prefix="pmp-liveness-")
    held = [os.path.join(d, f"counter_{100000 + i}.db") for i in range(a.holders)]
    dead = [os.path.join(d, f"counter_{200000 + i}.db") for i in range(a.files - a.holders)]
    for path in held:
        write_file(path, a.entries)
    holders = []
    failed = False
    try:
        t0 = time.monotonic()
        for path in held:
            holders.append(subprocess.Popen([sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for h in holders:
            if h.stdout.readline().strip() != "ready":
                raise RuntimeError("a holder did not start")
        processes = sum(1 for n in os.listdir("/proc") if n.isdigit())
        print(f"[liveness] {a.holders} holders started in {time.monotonic() - t0:.1f} s; {processes} processes on the host; "
              f"{a.files} files of {a.entries} entries ({a.holders} held, {len(dead)} dead)", flush=True)
        scans, compacts, inner = [], [], []
        for r in range(a.rounds):
            for path in dead:
                write_file(path, a.entries)
            out = subprocess.run([os.path.join(a.bin, "prom-multiproc-testworker"), "scan-in-use", d, "5"],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                m = re.match(r"scan ms (\S+) processes (\d+) in-use-on-device (\d+) db-files (\d+) db-in-use (\d+)", line)
                if not m or int(m.group(5)) != a.holders:
                    print(f"[liveness] FAILED: scan saw {line!r}, expected {a.holders} files in use", flush=True)
                    failed = True
                    continue
                scans.append(float(m.group(1)))
            t = time.monotonic()
            c = subprocess.run([os.path.join(a.bin, "prom-multiproc-cli"), "compact", "--dir", d, "--verbose"],
                               capture_output=True, text=True)
            compacts.append((time.monotonic() - t) * 1000)
            folded = re.search(r"folded (\d+) file", c.stdout)
            live = re.search(r"liveness: (.*)", c.stdout)
            inner.append(live.group(1) if live else "?")
            if c.returncode != 0 or not folded or int(folded.group(1)) != len(dead) or any(os.path.exists(h) is False for h in held):
                print(f"[liveness] FAILED: compact: {c.returncode} {c.stdout[:400]} {c.stderr[:400]}", flush=True)
                failed = True
            print(f"[liveness] round {r + 1}: scans {', '.join(f'{s:.1f}' for s in scans[-5:])} ms; "
                  f"compact (fold {len(dead)} files, 2 scans) {compacts[-1]:.0f} ms; {inner[-1]}", flush=True)
        scans.sort()
        compacts.sort()
        print(f"[liveness] summary: scan median {scans[len(scans) // 2]:.1f} ms (min {scans[0]:.1f}, max {scans[-1]:.1f}) "
              f"over {len(scans)} scans; compaction median {compacts[len(compacts) // 2]:.0f} ms "
              f"(min {compacts[0]:.0f}, max {compacts[-1]:.0f})", flush=True)
    finally:
        for h in holders:
            h.kill()
            h.wait()
        shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
