#!/usr/bin/env python3
"""The driver of scripts/bench.sh: runs our benchmarks and prometheus_client's side by side.

Sections (all by default; pick some with --only hot,alloc,...):
  hot      hot-path operations in multiprocess mode; rounds of ours and Python's interleaved
  alloc    heap allocations per operation on our hot paths (valgrind memcheck)
  instr    instructions per operation on our hot paths (valgrind callgrind): unaffected by the
           machine's load, so the figure to compare an unlabelled metric with a cached child
  collect  collect + render of directories written by Python and by Swift workers
  growth   collect time against the number of files (plot: bench-out/growth.svg)
  render   our protobuf renderer against our text renderer on the merged 64 × 10,000
           directory (prometheus_client has no protobuf exposition)
  http     wrk against our `serve` and prometheus_client's start_http_server
  serve-load  wrk -c32 for 10 s against our `serve` of the Python-written 64 × 10,000 directory
           while 4 writer processes keep incrementing: requests/s, p50, p99, the slowest
           scrape against 3 × the median, and the serving process's peak RSS

Peers in the same run and table: prometheus_client 0.26.0 (the Python column), swift-prometheus
2.4.1 in-process on the hot rows (--swift-prometheus, Benchmarks/SwiftPrometheusBench), and
prometheus-client-python-speedups 0.1.0's Rust merge on the collect rows.

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
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import plot  # noqa: E402
import report  # noqa: E402

SECTIONS = ["hot", "alloc", "instr", "collect", "render", "growth", "http", "serve-load"]

HOT_OPS = [
    # (name, description, target for ours in ns on one thread)
    ("counter_inc_cached", "counter increment, cached child", 10),
    ("counter_labels2_inc", 'counter `labels("a","b")` + increment (100 children)', 80),
    ("histogram_observe_0.3", "histogram observe 0.3 (default buckets)", 25),
    ("histogram_observe_inf", "histogram observe 100 (+Inf bucket)", 25),
    # prometheus_client has no native histograms: these rows have no Python figure.
    ("native_observe_0.3", "native histogram observe 0.3 into an existing bucket (schema 3; classic part: +Inf only)", 25),
    ("classic_native_observe_0.3", "histogram observe 0.3, default classic buckets and native buckets (schema 3)", None),
    # prometheus_client has no quantiles: count, sum and the quantile window (1%: schema 6).
    ("summary_quantiles_observe_0.3", "summary observe 0.3 with quantiles 0.5/0.9/0.99 within 1%, 10 min in 5 age buckets", 40),
    ("gauge_set_all", "gauge set (mode all)", 5),
    ("gauge_inc_cached", "gauge increment, cached child", None),
    ("summary_observe_cached", "summary observe, cached child", None),
    # Unlabelled metrics: each within 1.2 times its cached-child row above (callgrind: `instr`).
    ("counter_inc_unlabelled", "unlabelled counter increment", None),
    ("gauge_set_unlabelled", "unlabelled gauge set", None),
    ("gauge_inc_unlabelled", "unlabelled gauge increment", None),
    ("histogram_observe_unlabelled_0.3", "unlabelled histogram observe 0.3", None),
    ("summary_observe_unlabelled", "unlabelled summary observe", None),
]
SWIFT_ONLY_OPS = {"native_observe_0.3", "classic_native_observe_0.3", "summary_quantiles_observe_0.3"}
# Each unlabelled operation and the cached-child operation it must cost at most 1.2 times of.
UNLABELLED_OPS = {
    "counter_inc_unlabelled": "counter_inc_cached",
    "gauge_set_unlabelled": "gauge_set_all",
    "gauge_inc_unlabelled": "gauge_inc_cached",
    "histogram_observe_unlabelled_0.3": "histogram_observe_0.3",
    "summary_observe_unlabelled": "summary_observe_cached",
}


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
    peer = {}  # swift-prometheus 2.4.1, in-process: (op, threads) -> lines
    for r in range(rounds):
        swift_cmd = [args.bin, "hot", "--reps", "1", "--scale", str(scale)]
        py_cmd = [args.python, os.path.join(HERE, "hot.py"), "--reps", "1", "--scale", str(scale)]
        order = [("swift", swift_cmd), ("python", py_cmd)]
        if args.swift_prometheus:
            order.append(("swift-prometheus", [args.swift_prometheus, "--reps", "1", "--scale", str(scale)]))
        # Rotate which side goes first, so none always runs on a warmer machine.
        order = order[r % len(order):] + order[:r % len(order)]
        for impl, cmd in order:
            log(f"hot round {r + 1}/{rounds}: {impl}")
            for line in run_json_lines(cmd):
                key = (line["op"], line["threads"])
                {"swift": ours, "python": theirs}.get(impl, peer).setdefault(key, []).append(line)
    rows = []
    raw = []
    for op, description, target in HOT_OPS:
        for threads in (1, 2):
            key = (op, threads)
            o = [x["ns_per_op_wall"] for x in ours.get(key, [])]
            p = [x["ns_per_op_wall"] for x in theirs.get(key, [])]
            if not o or (not p and op not in SWIFT_ONLY_OPS):
                continue
            om, pm = statistics.median(o), (statistics.median(p) if p else None)
            # swift-prometheus' figures for the same operation: one, or `int` and `double`.
            peers = {}
            for (peer_op, peer_threads), lines in sorted(peer.items()):
                if peer_threads == threads and peer_op.split("/")[0] == op:
                    variant = peer_op.split("/")[1] if "/" in peer_op else ""
                    peers[f"swift-prometheus{' ' + variant if variant else ''}"] = statistics.median(
                        x["ns_per_op_wall"] for x in lines)
            raw.append({"op": op, "threads": threads, "ours_ns": o, "python_ns": p,
                        "ours_median_ns": om, "python_median_ns": pm, "swift_prometheus_median_ns": peers})
            if threads == 1:
                name = f"{description}, 1 thread"
                tgt = report.Target(target, "ns") if target is not None else None
            else:
                name = f"{description}, 2 threads on one series (wall ÷ total ops)"
                tgt = None
            rows.append(report.Row("hot", name, om, pm, "ns", target=tgt, key=f"{op}/{threads}", peers=peers))
    results["hot"] = raw
    results["hot_swift_prometheus"] = {f"{k[0]}/{k[1]}": v for k, v in peer.items()}
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


# --- instructions -------------------------------------------------------------------------

def instr_section(args, results):
    """Instructions per operation: callgrind's total for n = 101,000 minus n = 1,000, ÷ 100,000."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise SystemExit("bench: valgrind not found (needed for the instr section; skip it with --only)")
    small, large = 1_000, 101_000
    # Swift seeds its hash function per process: the set-up's dictionaries probe differently
    # from run to run, and the difference of the two counts moved with them (18.8 to 20.7
    # instructions per operation for one row in three runs). A fixed seed makes every count
    # the same on every run.
    env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1")
    per_op = {}
    for op, _, _ in HOT_OPS:
        counts = []
        for n in (small, large):
            log(f"instr: {op} n={n} under callgrind")
            proc = subprocess.run(
                [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", args.bin, "alloc-probe", "--op", op,
                 "--n", str(n)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True, env=env)
            m = re.search(r"Collected : (\d+)", proc.stderr)
            if not m:
                raise SystemExit(f"bench: no instruction count from callgrind for {op}:\n{proc.stderr[-2000:]}")
            counts.append(int(m.group(1)))
        per_op[op] = (counts[1] - counts[0]) / (large - small)
    results["instr"] = per_op
    rows = []
    for op, description, _ in HOT_OPS:
        cached = UNLABELLED_OPS.get(op)
        target = report.Target(1.2 * per_op[cached], "instr") if cached else None
        note = f"{per_op[op] / per_op[cached]:.2f}× the cached child's" if cached else ""
        rows.append(report.Row("instr", f"{description}: instructions per operation", per_op[op], None, "instr",
                               target=target, key=op, note=note))
    return rows


# --- directories ------------------------------------------------------------------------

def parallel(cmds, jobs=2):
    """Runs the commands, `jobs` at a time (our machines have 2 cores); fails on the first error."""
    running = []
    for cmd in cmds + [None] * jobs:
        if cmd is not None:
            running.append((cmd, subprocess.Popen(cmd, stdout=subprocess.DEVNULL)))
        while running and (len(running) >= jobs or cmd is None):
            c, proc = running.pop(0)
            if proc.wait() != 0:
                raise SystemExit(f"bench: {' '.join(c)} failed with status {proc.returncode}")


def ensure_dir(args, writer, processes, series, one_process_per_pid=True):
    """A directory written by `processes` workers of `writer`, cached under bench-out/dirs."""
    key = f"{writer}-{processes}x{series}" + ("" if one_process_per_pid else "-oneproc")
    path = os.path.join(args.out, "dirs", key)
    marker = path + ".complete"
    if os.path.exists(marker):
        return path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    if one_process_per_pid:
        ranges = [str(p) for p in range(1, processes + 1)]
    else:
        half = max(1, processes // 2)
        ranges = [f"1-{half}"] + ([f"{half + 1}-{processes}"] if processes > half else [])
    if writer == "swift":
        cmds = [[args.bin, "write-dir", "--dir", path, "--pids", r, "--series", str(series)] for r in ranges]
    else:
        cmds = [[args.python, os.path.join(HERE, "gen_dir.py"), path, r, str(series)] for r in ranges]
    log(f"writing {key} ({len(cmds)} {writer} worker processes)")
    start = time.monotonic()
    parallel(cmds)
    with open(marker, "w") as f:
        f.write(f"{writer} {processes}x{series} written in {time.monotonic() - start:.1f} s\n")
    return path


def ensure_compacted(args, path):
    """A compacted copy of `path` (every writer has exited, so every file is dead)."""
    if not args.cli:
        log("warning: no CLI (prom-multiproc-cli did not build): the growth curve runs without compaction")
        return None
    compacted = path + "-compacted"
    marker = compacted + ".complete"
    if os.path.exists(marker):
        return compacted
    shutil.rmtree(compacted, ignore_errors=True)
    shutil.copytree(path, compacted)
    log(f"compacting {os.path.basename(compacted)}")
    subprocess.run([args.cli, "compact", "--dir", compacted], check=True, stdout=subprocess.DEVNULL)
    with open(marker, "w") as f:
        f.write(f"{len(os.listdir(compacted))} entries after compaction\n")
    return compacted


# --- collect ------------------------------------------------------------------------------

COLLECT_SIZES = [(8, 1_000), (32, 1_000), (64, 10_000)]
# The merges timed alone beside our collect + render (scripts/bench/merge_peer.py), by label.
MERGE_PEERS = {"speedups": "Rust speedups merge only", "python-merge": "prometheus_client merge only"}


def measure_collect(args, path, rounds, peers=None):
    """Our collect+render and Python's, each in a fresh process per round, interleaved; with
    `peers` (a dict to fill), also the Rust speedups' merge and prometheus_client's merge alone."""
    ours, theirs = [], []
    for r in range(rounds):
        order = [("swift", [args.bin, "collect", "--dir", path]),
                 ("python", [args.python, os.path.join(HERE, "collect.py"), path])]
        if peers is not None:
            # merge_peer.py's implementation names: speedups, python (prometheus_client's merge).
            order += [(impl, [args.python, os.path.join(HERE, "merge_peer.py"), which, path])
                      for impl, which in (("speedups", "speedups"), ("python-merge", "python"))]
        order = order[r % len(order):] + order[:r % len(order)]
        for impl, cmd in order:
            lines = run_json_lines(cmd)
            if impl == "swift":
                ours.extend(lines)
            elif impl == "python":
                theirs.extend(lines)
            else:
                peers.setdefault(impl, []).extend(lines)
    if peers:
        counts = {impl: {(x["families"], x["samples"]) for x in lines} for impl, lines in peers.items()}
        if len(set().union(*counts.values())) != 1:
            raise SystemExit(f"bench: the merges of {path} disagree on (families, samples): {counts}")
    return ours, theirs


def collect_section(args, results):
    rows, raw = [], []
    sizes = COLLECT_SIZES[:2] if args.quick else COLLECT_SIZES
    for writer in ("python", "swift"):
        for processes, series in sizes:
            path = ensure_dir(args, writer, processes, series)
            rounds = min(args.rounds, 3) if processes * series > 100_000 else args.rounds
            log(f"collect {writer}-written {processes}x{series}: {rounds} rounds")
            merges = {}
            ours, theirs = measure_collect(args, path, rounds, peers=merges)
            name = f"{processes} × {series:,} ({writer}-written)"
            merge_ms = {MERGE_PEERS[k]: statistics.median(x["ms"] for x in v) for k, v in merges.items()}
            merge_rss = {MERGE_PEERS[k]: statistics.median(x["hwm_kib"] for x in v) / 1024 for k, v in merges.items()}
            om, pm = statistics.median(x["ms"] for x in ours), statistics.median(x["ms"] for x in theirs)
            orss = statistics.median(x["hwm_kib"] for x in ours) / 1024
            prss = statistics.median(x["hwm_kib"] for x in theirs) / 1024
            raw.append({"writer": writer, "processes": processes, "series": series, "ours": ours, "python": theirs,
                        "merge_peers": merges})
            time_target = rss_target = None
            if (processes, series) == (8, 1_000):
                time_target = report.Target(10, "ms")
            if (processes, series) == (64, 10_000):
                time_target = report.Target(50, "×", ratio=True)
                rss_target = report.Target(4, "×", ratio=True)
            rows.append(report.Row("collect", f"collect + render text, {name}: time", om, pm, "ms",
                                   target=time_target, peers=merge_ms))
            obase = statistics.median(x["baseline_hwm_kib"] for x in ours) / 1024
            pbase = statistics.median(x["baseline_hwm_kib"] for x in theirs) / 1024
            rows.append(report.Row("collect", f"collect + render text, {name}: peak RSS", orss, prss, "MiB",
                                   target=rss_target, peers=merge_rss,
                                   note=f"before collecting: ours {obase:.1f}, Python {pbase:.1f} MiB"))
            if (writer, processes, series) == ("python", 64, 10_000):
                rows += merge_threads_rows(args, path, rounds, name, pm, merge_ms)
    results["collect"] = raw
    return rows


# Rounds of `merge_threads_rows` at least (but with --quick): ours alone, well under a second
# a round where a peer's collect of the same directory takes seconds, so the medians of issue
# 15's targets rest on 11 fresh processes each, not 3. On our shared 2-core machines one
# process's time swings from 41 to over 100 ms with the neighbours' load; a median of three
# moves with the one slow minute that catches two of them.
THREAD_ROUNDS = 11


def merge_threads_rows(args, path, rounds, name, python_ms, merge_ms):
    """Our collect of one directory with the merge on 1 and on 2 threads, interleaved: in a
    fresh process; as the second collection of one process (a `serve` scrape after the first:
    keys known); and as the fourth (the steady state: files read twice unchanged are mapped,
    only their values read). On 2 threads the second reads ahead the values of the files the
    last scrape read; a fresh process reads every file on the merging thread."""
    rounds = rounds if args.quick else max(rounds, THREAD_ROUNDS)
    runs = {}
    for r in range(rounds):
        for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
            for warm in ("0", "1", "3"):
                cmd = [args.bin, "collect", "--dir", path, "--threads", str(threads), "--warm", warm]
                runs.setdefault((threads, warm), []).extend(run_json_lines(cmd))
    rows = []
    for warm, what in (("0", "fresh process"), ("1", "second scrape"), ("3", "steady scrape")):
        for threads in (1, 2):
            xs = runs[(threads, warm)]
            render = statistics.median(x["render_ms"] for x in xs)
            note = f"{len(xs)} rounds; of which rendering {render:.1f} ms"
            if warm == "3":
                mapped = statistics.median(x.get("mapped_entries", 0) for x in xs)
                rss = statistics.median(x["hwm_kib"] for x in xs) / 1024
                note += f"; entries read through kept mappings: {mapped:,.0f}; peak RSS {rss:.0f} MiB (mapped file pages)"
            rows.append(report.Row("collect", f"collect + render text, {name}, {what}, {threads} merge thread(s)",
                                   statistics.median(x["ms"] for x in xs), python_ms if warm == "0" else None, "ms",
                                   peers=merge_ms if warm == "0" else None, note=note))
    return rows


# --- render -------------------------------------------------------------------------------

def render_section(args, results):
    """Protobuf against text, both ours, rendering the same merged families in one process."""
    processes, series = 64, 10_000
    path = ensure_dir(args, "swift", processes, series)
    reps = 5 if args.quick else 15
    log(f"render {processes}x{series}: {reps} renderings of each format")
    text_body = os.path.join(args.out, "render-text-body.txt")
    lines = run_json_lines([args.bin, "render", "--dir", path, "--reps", str(reps), "--text-out", text_body])
    by_format = {f: [x for x in lines if x["format"] == f]
                 for f in ("protobuf", "text", "text-kept-changed", "text-kept-same")}
    results["render"] = by_format
    proto_ms = statistics.median(x["ms"] for x in by_format["protobuf"])
    text_ms = statistics.median(x["ms"] for x in by_format["text"])
    proto_mib = by_format["protobuf"][0]["bytes"] / 2**20
    text_mib = by_format["text"][0]["bytes"] / 2**20
    samples = lines[0]["samples"]
    name = f"render the merged {processes} × {series:,} ({samples:,} samples)"
    note = "the Python column is our text renderer: prometheus_client has no protobuf"
    # gzip, as /metrics answers `Accept-Encoding: gzip` (zlib level 1), against
    # prometheus_client's exporter (`gzip.compress`, level 9) on the same text bytes.
    gzip_script = ("import gzip, json, sys, time\n"
                   "body = open(sys.argv[1], 'rb').read()\n"
                   "for _ in range(int(sys.argv[2])):\n"
                   "    t = time.perf_counter(); out = gzip.compress(body); ms = (time.perf_counter() - t) * 1e3\n"
                   "    print(json.dumps({'ms': ms, 'bytes': len(out)}))\n")
    python_gzip = run_json_lines([args.python, "-c", gzip_script, text_body, str(reps)])
    results["render"]["python_gzip"] = python_gzip
    text_gzip_ms = statistics.median(x["gzip_ms"] for x in by_format["text"])
    proto_gzip_ms = statistics.median(x["gzip_ms"] for x in by_format["protobuf"])
    py_gzip_ms = statistics.median(x["ms"] for x in python_gzip)
    text_gzip_mib = by_format["text"][0]["gzip_bytes"] / 2**20
    proto_gzip_mib = by_format["protobuf"][0]["gzip_bytes"] / 2**20
    py_gzip_mib = python_gzip[0]["bytes"] / 2**20
    gzip_note = "Python: prometheus_client's gzip.compress (level 9) of our text body"
    kept_note = "the Python column is our full text rendering: prometheus_client keeps no body"
    kept_changed_ms = statistics.median(x["ms"] for x in by_format["text-kept-changed"])
    kept_same_ms = statistics.median(x["ms"] for x in by_format["text-kept-same"])
    return [
        report.Row("render", f"{name} in text through the kept body, every value changed: time", kept_changed_ms,
                   text_ms, "ms", note=kept_note, python_is_peer=False),
        report.Row("render", f"{name} in text through the kept body, no value changed: time", kept_same_ms,
                   text_ms, "ms", note=kept_note, python_is_peer=False),
        report.Row("render", f"{name} in protobuf: time", proto_ms, text_ms, "ms", note=note,
                   python_is_peer=False),
        report.Row("render", f"{name} in protobuf: body size", proto_mib, text_mib, "MiB", note=note,
                   python_is_peer=False),
        report.Row("render", f"gzip the text body ({text_mib:.1f} MiB): time", text_gzip_ms, py_gzip_ms, "ms", note=gzip_note),
        report.Row("render", "gzip the text body: compressed size", text_gzip_mib, py_gzip_mib, "MiB", note=gzip_note),
        report.Row("render", f"gzip the protobuf body ({proto_mib:.1f} MiB): time", proto_gzip_ms, text_gzip_ms, "ms",
                   note="the Python column is our gzip of the text body", python_is_peer=False),
        report.Row("render", "gzip the protobuf body: compressed size", proto_gzip_mib, text_gzip_mib, "MiB",
                   note="the Python column is our gzip of the text body", python_is_peer=False),
    ]


# --- growth -------------------------------------------------------------------------------

GROWTH_FILES = [16, 64, 256, 1024, 4096, 8192]
GROWTH_SERIES = 100


def growth_section(args, results):
    files_list = [f for f in GROWTH_FILES if f <= 1024] if args.quick else GROWTH_FILES
    rounds = 1 if args.quick else min(args.rounds, 3)
    curves = {"ours": [], "ours, compacted": [], "Python": [], "Python, compacted": []}
    raw = []
    for files in files_list:
        processes = files // 2  # a counter and a histogram file per process
        path = ensure_dir(args, "swift", processes, GROWTH_SERIES, one_process_per_pid=False)
        compacted = ensure_compacted(args, path)
        entry = {"files": files, "processes": processes, "files_after_compaction":
                 len([n for n in os.listdir(compacted) if n.endswith(".db")]) if compacted else None}
        for label, p in (("", path), (", compacted", compacted)):
            if p is None:
                entry["ours" + label] = entry["python" + label] = None
                continue
            log(f"growth {files} files{label}: {rounds} rounds")
            ours, theirs = measure_collect(args, p, rounds)
            om = statistics.median(x["ms"] for x in ours)
            pm = statistics.median(x["ms"] for x in theirs)
            curves["ours" + label].append((files, om))
            curves["Python" + label].append((files, pm))
            entry["ours" + label] = om
            entry["python" + label] = pm
        raw.append(entry)
    results["growth"] = raw
    svg = os.path.join(args.out, "growth.svg")
    plot.log_line_plot(list(curves.items()), svg,
                       f"collect + render vs files ({GROWTH_SERIES} counters + {GROWTH_SERIES // 10} histograms per process)",
                       "files in the directory (2 per process)", "median time (ms)")
    lines = ["| files (processes) | ours | ours, compacted | Python | Python, compacted | files after compaction |",
             "|---:|---:|---:|---:|---:|---:|"]
    for e in raw:
        lines.append(f"| {e['files']:,} ({e['processes']:,}) | {report.fmt(e['ours'], 'ms')} | "
                     f"{report.fmt(e['ours, compacted'], 'ms')} | {report.fmt(e['python'], 'ms')} | "
                     f"{report.fmt(e['python, compacted'], 'ms')} | {e['files_after_compaction'] or '—'} |")
    return "\n".join(lines)


# --- http ---------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the server exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: nothing answered on port {port} within {timeout} s")


def parse_wrk(text):
    def ms(v):
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", text)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors.group(0) if errors else None}


def run_wrk(wrk, port, seconds):
    out = subprocess.run([wrk, "-t2", "-c4", f"-d{seconds}s", "--timeout", "10s", "--latency",
                          f"http://127.0.0.1:{port}/metrics"], check=True, stdout=subprocess.PIPE, text=True).stdout
    return parse_wrk(out)


def serve_available(cli):
    if not cli:
        return False
    proc = subprocess.run([cli, "serve", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def with_server(cmd, port, body):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port, proc)
        return body()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_section(args, results):
    wrk = os.environ.get("PROM_MULTIPROC_WRK") or shutil.which("wrk")
    if not wrk:
        raise SystemExit("bench: wrk not found (set PROM_MULTIPROC_WRK or run scripts/setup.sh; "
                         "skip the section with --only)")
    path = ensure_dir(args, "python", 8, 1_000)
    seconds = 5 if args.quick else 10
    rounds = 1 if args.quick else min(args.rounds, 3)
    have_serve = serve_available(args.cli)
    ours, theirs = [], []
    for r in range(rounds):
        sides = [("python", None)] + ([("swift", None)] if have_serve else [])
        if r % 2:
            sides.reverse()
        for impl, _ in sides:
            port = free_port()
            if impl == "swift":
                cmd = [args.cli, "serve", "--dir", path, "--bind", "127.0.0.1", "--port", str(port)]
            else:
                cmd = [args.python, os.path.join(HERE, "serve_python.py"), path, str(port)]
            log(f"http round {r + 1}/{rounds}: wrk {seconds}s against {impl}")
            res = with_server(cmd, port, lambda: run_wrk(wrk, port, seconds))
            (ours if impl == "swift" else theirs).append(res)
    results["http"] = {"ours": ours, "python": theirs}
    note = "" if have_serve else "TODO: `prom-multiproc-cli serve` is not there yet"
    rows = []
    for field, unit, label in (("rps", "req/s", "requests/s"), ("p50_ms", "ms", "p50 latency"),
                               ("p99_ms", "ms", "p99 latency")):
        o = statistics.median(x[field] for x in ours) if ours else None
        p = statistics.median(x[field] for x in theirs)
        rows.append(report.Row("http", f"wrk -t2 -c4 on /metrics, 8 × 1,000 (python-written): {label}", o, p, unit,
                               note=note))
    return rows


# --- serve under load ---------------------------------------------------------------------

SERVE_LOAD_WRITERS = 4
# Each writer loops: BATCH times { counter increment, histogram observe }, then sleeps PAUSE µs.
SERVE_LOAD_BATCH, SERVE_LOAD_PAUSE_US = 1000, 1000


def parse_wrk_max(text):
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", text, re.M)
    v = re.match(r"([\d.]+)(us|ms|s)", m.group(1))
    return float(v.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[v.group(2)]


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise SystemExit(f"bench: no VmHWM in /proc/{pid}/status")


def scrape_value(port, name):
    """The sum of the samples named exactly `name` in one scrape of /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        body = r.read().decode()
    total, found = 0.0, False
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def serve_load_round(args, wrk, path, seconds):
    port = free_port()
    server = subprocess.Popen([args.cli, "serve", "--dir", path, "--bind", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    writers = []
    try:
        wait_http(port, server, timeout=120)
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        for _ in range(SERVE_LOAD_WRITERS):
            w = subprocess.Popen([args.testworker, "torture-writer", path, "pid", str(SERVE_LOAD_BATCH),
                                  str(SERVE_LOAD_PAUSE_US)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 env=env, text=True)
            writers.append(w)
            line = w.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"bench: a writer did not start (said {line!r}, status {w.poll()})")
            w.stdin.write("go\n")
            w.stdin.flush()
        time.sleep(0.5)
        before = scrape_value(port, "torture_ops_total") or 0.0
        out = subprocess.run([wrk, "-t2", "-c32", f"-d{seconds}s", "--timeout", "30s", "--latency",
                              f"http://127.0.0.1:{port}/metrics"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        after = scrape_value(port, "torture_ops_total")
        for w in writers:
            if w.poll() is not None:
                raise SystemExit(f"bench: a writer exited with status {w.returncode} during the run")
        if server.poll() is not None:
            raise SystemExit(f"bench: serve exited with status {server.returncode} during the run")
        res = parse_wrk(out)
        if res["errors"]:
            raise SystemExit(f"bench: wrk reported errors against serve: {res['errors']}\n{out}")
        res["max_ms"] = parse_wrk_max(out)
        res["hwm_kib"] = vm_hwm_kib(server.pid)
        res["writer_increments"] = (after or 0.0) - before
        if not res["writer_increments"] > 0:
            raise SystemExit(f"bench: the writers' counter did not grow during the run ({before} -> {after})")
        res["wrk"] = out
        return res
    finally:
        for w in writers:
            w.kill()
            w.wait()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def serve_load_section(args, results):
    wrk = os.environ.get("PROM_MULTIPROC_WRK") or shutil.which("wrk")
    if not wrk:
        raise SystemExit("bench: wrk not found (set PROM_MULTIPROC_WRK or run scripts/setup.sh; "
                         "skip the section with --only)")
    if not serve_available(args.cli):
        raise SystemExit("bench: serve-load needs `prom-multiproc-cli serve` (--cli), which did not build")
    if not args.testworker:
        raise SystemExit("bench: serve-load needs prom-multiproc-testworker (--testworker), which did not build")
    source = ensure_dir(args, "python", 64, 10_000)
    seconds = 5 if args.quick else 10
    rounds = 1 if args.quick else min(args.rounds, 3)
    runs = []
    for r in range(rounds):
        # A copy per round: the writers add their own files, the cached directory stays as written.
        path = os.path.join(args.out, "serve-load-dir")
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(source, path, ignore=shutil.ignore_patterns("*.complete"))
        log(f"serve-load round {r + 1}/{rounds}: wrk -c32 {seconds}s against serve, {SERVE_LOAD_WRITERS} writers")
        try:
            runs.append(serve_load_round(args, wrk, path, seconds))
        finally:
            shutil.rmtree(path, ignore_errors=True)
    results["serve_load"] = runs
    med = {k: statistics.median(x[k] for x in runs) for k in ("rps", "p50_ms", "p99_ms", "max_ms", "hwm_kib")}
    worst = max(x["max_ms"] / x["p50_ms"] for x in runs)
    name = (f"wrk -t2 -c32 {seconds}s on /metrics, 64 × 10,000 (python-written), {SERVE_LOAD_WRITERS} writers "
            "incrementing")
    return [
        report.Row("serve-load", f"{name}: requests/s", med["rps"], None, "req/s"),
        report.Row("serve-load", f"{name}: p50 latency", med["p50_ms"], None, "ms"),
        report.Row("serve-load", f"{name}: p99 latency", med["p99_ms"], None, "ms"),
        report.Row("serve-load", f"{name}: slowest request", med["max_ms"], None, "ms",
                   target=report.Target(3 * med["p50_ms"], "ms"),
                   note=f"worst round: {worst:.2f}× its median (target ≤ 3×)"),
        report.Row("serve-load", f"{name}: serving process's peak RSS (VmHWM)", med["hwm_kib"] / 1024, None, "MiB"),
    ]


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
        "code": cmd(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the release prom-multiproc-bench binary")
    ap.add_argument("--cli", help="the release prom-multiproc-cli binary (for the http and serve-load sections)")
    ap.add_argument("--testworker", help="the release prom-multiproc-testworker binary (serve-load's writers)")
    ap.add_argument("--swift-prometheus", help="Benchmarks/SwiftPrometheusBench's swift-prometheus-hot binary "
                                               "(the swift-prometheus 2.4.1 figures of the hot section)")
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
    if "instr" in sections:
        rows += instr_section(args, results)
    if "collect" in sections:
        rows += collect_section(args, results)
    if "render" in sections:
        rows += render_section(args, results)
    if "http" in sections:
        rows += http_section(args, results)
    if "serve-load" in sections:
        rows += serve_load_section(args, results)
    growth = growth_section(args, results) if "growth" in sections else None

    table = report.render_table(rows)
    if growth:
        table += ("\n\nGrowth: collect + render (text) of directories written by Swift workers, against the "
                  "number of files, before and after `prom-multiproc-cli compact`; medians. Plot: "
                  "bench-out/growth.svg.\n\n" + growth)
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
