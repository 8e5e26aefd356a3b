#!/usr/bin/env python3
"""The driver of scripts/bench.sh: runs our benchmarks and prometheus_client's side by side.

Sections (all by default; pick some with --only hot,alloc,...):
  hot      hot-path operations in multiprocess mode; rounds of ours and Python's interleaved
  alloc    heap allocations per operation on our hot paths (valgrind memcheck)
  collect  collect + render of directories written by Python and by Swift workers
  growth   collect time against the number of files (plot: bench-out/growth.svg)
  http     wrk against our `serve` and prometheus_client's start_http_server

Every figure is a median over rounds, each measured in a fresh process. Results go to
stdout (one table), bench-out/results.json and bench-out/table.md, and, with --update-doc,
into BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import report  # noqa: E402

SECTIONS = ["hot", "alloc", "collect", "growth", "http"]

HOT_OPS = [
    # (name, description, target for ours in ns on one thread)
    ("counter_inc_cached", "counter increment, cached child", 10),
    ("counter_labels2_inc", 'counter `labels("a","b")` + increment (100 children)', 80),
    ("histogram_observe_0.3", "histogram observe 0.3 (default buckets)", 25),
    ("histogram_observe_inf", "histogram observe 100 (+Inf bucket)", 25),
    ("gauge_set_all", "gauge set (mode all)", 5),
]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_json_lines(cmd, env=None):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


# --- hot path -----------------------------------------------------------------------------

def hot_section(args, results):
    rounds = args.rounds
    scale = 0.25 if args.quick else 1.0
    ours, theirs = {}, {}
    for r in range(rounds):
        swift_cmd = [args.bin, "hot", "--reps", "1", "--scale", str(scale)]
        py_cmd = [args.python, os.path.join(HERE, "hot.py"), "--reps", "1", "--scale", str(scale)]
        # Alternate which side goes first, so neither always runs on a warmer machine.
        order = [("swift", swift_cmd), ("python", py_cmd)]
        if r % 2:
            order.reverse()
        for impl, cmd in order:
            log(f"hot round {r + 1}/{rounds}: {impl}")
            for line in run_json_lines(cmd):
                key = (line["op"], line["threads"])
                (ours if impl == "swift" else theirs).setdefault(key, []).append(line)
    rows = []
    raw = []
    for op, description, target in HOT_OPS:
        for threads in (1, 2):
            key = (op, threads)
            o = [x["ns_per_op_wall"] for x in ours.get(key, [])]
            p = [x["ns_per_op_wall"] for x in theirs.get(key, [])]
            if not o or not p:
                continue
            om, pm = statistics.median(o), statistics.median(p)
            raw.append({"op": op, "threads": threads, "ours_ns": o, "python_ns": p,
                        "ours_median_ns": om, "python_median_ns": pm})
            if threads == 1:
                name = f"{description}, 1 thread"
                tgt = report.Target(target, "ns")
            else:
                name = f"{description}, 2 threads on one series (wall ÷ total ops)"
                tgt = None
            rows.append(report.Row("hot", name, om, pm, "ns", target=tgt, key=f"{op}/{threads}"))
    results["hot"] = raw
    return rows


# --- allocations --------------------------------------------------------------------------

def alloc_section(args, results, rows):
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("bench: valgrind not found (needed for the alloc section; skip it with --only)")
    small, large = 1_000, 101_000
    per_op = {}
    for op, _, _ in HOT_OPS:
        counts = []
        for n in (small, large):
            log(f"alloc: {op} n={n} under valgrind")
            proc = subprocess.run(
                [valgrind, "--tool=memcheck", "--leak-check=no", args.bin, "alloc-probe", "--op", op, "--n", str(n)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
            m = re.search(r"total heap usage: ([\d,]+) allocs", proc.stderr)
            if not m:
                raise SystemExit(f"bench: no heap summary from valgrind for {op}:\n{proc.stderr[-2000:]}")
            counts.append(int(m.group(1).replace(",", "")))
        per_op[op] = (counts[1] - counts[0]) / (large - small)
    results["alloc"] = per_op
    for row in rows:
        if row.section == "hot" and row.key.endswith("/1"):
            row.allocs = per_op.get(row.key.split("/")[0])


# --- machine and output -------------------------------------------------------------------

def describe_machine(python):
    def cmd(c):
        try:
            return subprocess.run(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip()
        except OSError:
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    py = cmd([python, "-c", "import sys, prometheus_client.metrics as m, importlib.metadata as md; "
                            "print(sys.version.split()[0], 'prometheus_client', md.version('prometheus_client'))"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "swift": cmd(["swift", "--version"]).splitlines()[0] if shutil.which("swift") else "?",
        "python": py,
        "wrk": cmd(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "not installed",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the release prom-multiproc-bench binary")
    ap.add_argument("--cli", help="the release prom-multiproc-cli binary (for the http section)")
    ap.add_argument("--python", required=True, help="python with prometheus_client 0.26.0")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer iterations and rounds, small directories only")
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--update-doc", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args()
    if args.quick and args.rounds == 7:
        args.rounds = 3
    sections = [s for s in args.only.split(",") if s]
    for s in sections:
        if s not in SECTIONS:
            raise SystemExit(f"bench: unknown section {s} (known: {', '.join(SECTIONS)})")
    os.makedirs(args.out, exist_ok=True)

    machine = describe_machine(args.python)
    results = {"machine": machine, "rounds": args.rounds, "quick": args.quick}
    rows = []
    if "hot" in sections:
        rows += hot_section(args, results)
    if "alloc" in sections:
        alloc_section(args, results, rows)

    table = report.render_table(rows)
    print()
    print(table)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(report.render_machine(machine) + "\n\n" + table + "\n")
    log(f"wrote {os.path.relpath(args.out)}/table.md and results.json")
    if args.update_doc:
        path = os.path.join(ROOT, "BENCHMARKS.md")
        report.update_doc(path, machine, table, args)
        log(f"updated {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
