#!/usr/bin/env python3
"""Mark a process dead the way Python deployments do (gunicorn's child_exit hook).

Usage: mark_dead.py DIR PID

Calls prometheus_client.multiprocess.mark_process_dead(PID, path=DIR), which removes the
live-gauge files (gauge_live*_PID.db) of PID from DIR, and exits 0.
"""
import sys

from prometheus_client import multiprocess


def main(argv):
    if len(argv) != 3:
        print("usage: mark_dead.py DIR PID", file=sys.stderr)
        return 2
    directory, pid_text = argv[1], argv[2]
    try:
        pid = int(pid_text)
    except ValueError:
        print(f"mark_dead.py: PID must be an integer, got {pid_text!r}", file=sys.stderr)
        return 2
    multiprocess.mark_process_dead(pid, path=directory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
