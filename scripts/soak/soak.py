#!/usr/bin/env python3
"""The soak run (issue 7): writers killed and restarted at random while compaction and scrapes
run concurrently; at the end the merged values must equal what the writers did, exactly.

Usage: soak.py --bin DIR [--duration SECONDS] [--writers K] [--seed N] [--max-rss-mb MB]
Run it through scripts/soak.sh, which builds the executables and picks the Python (the venv
with prometheus_client, whose file reader is the independent judge of each writer's file).

What runs, in one temporary directory:
- `prom-multiproc-cli serve` on a free port;
- K `prom-multiproc-testworker metrics-loop` writers (each with a random batch size and pause);
  the main loop picks one at random every 0-0.5 s, freezes it, reads its files, kills it and
  starts a replacement (sometimes killing the replacement again 0-15 ms after its start);
- a scraper thread: GET /metrics in a loop (text and OpenMetrics in turn), sampling serve's
  VmRSS and the directory's file count;
- a compactor thread: `prom-multiproc-cli compact` every 0.2-2 s; one in ten is instead
  `prom-multiproc-testworker compact-crash-after DIR STEP`, the same compaction killed at a
  random step (the shipped CLI has no hook for that).

Why the expected total is exact although the writers die by SIGKILL at random points (see also
metricsLoopMode in Sources/prom-multiproc-testworker/MetricsModes.swift):
1. A writer is stopped with SIGSTOP and we wait (waitpid WUNTRACED) until the kernel reports
   it stopped: from then on it executes nothing.
2. Its files are read with prometheus_client's reader. They are still locked by the (live,
   stopped) process, so no compactor can fold them meanwhile; a stopped process has no update
   in flight, so the values read are final.
3. SIGKILL ends it without executing anything more. Its updates were atomic stores into a
   MAP_SHARED mapping: they live in the page cache, which outlives the process, so the file
   keeps exactly the values read in 2.
4. Expected = the sum over all writers of the values read. Once every writer is dead, the merged
   output (after any interleaving of kills, compactions and scrapes) must equal it.
Checks on the way: each writer's last printed `total T` bounds its counter (T <= value <=
T + batch); every scrape succeeds, and the merged counter never decreases from one scrape to
the next nor exceeds the final expected total (a loss or a transient double count would show);
after every compaction the .db files number at most 4 * (K + writers killed during it) + 3
(4 files per writer, 3 archives); serve's RSS stays under a cap and does not keep growing.

Exit status: 0 when every check passed, 1 otherwise (each violation is printed).
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from prometheus_client.mmap_dict import MmapedDict

COUNTER = "soak_increments_total"
HIST = "soak_observed"
ALIVE = "soak_writers_alive"
MAX = "soak_writer_increments_max"
FILES_PER_WRITER = 4  # counter, histogram, gauge_livesum, gauge_max
ARCHIVES = 3  # counter, histogram, gauge_max (live gauges are removed, not archived)
# The steps after which `prom-multiproc-testworker compact-crash-after DIR STEP` SIGKILLs itself
# (CompactionStep); the next compaction must complete or roll back what it left.
COMPACTION_STEPS = ["journal-staged", "first-source-hidden", "sources-hidden", "rechecked", "archives-written",
                    "journal-written", "first-archive-renamed", "archives-renamed", "first-source-removed", "sources-removed"]
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bin = args.bin
        self.dir = tempfile.mkdtemp(prefix="pmp-soak-")
        self.logs = tempfile.mkdtemp(prefix="pmp-soak-logs-")
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.violations = []
        # Expected values, summed over dead writers.
        self.expected = {"count": 0.0, "hist_count": 0.0, "hist_sum": 0.0, "max": 0.0}
        self.generations = 0
        self.kills = 0
        self.early_kills = 0
        self.kills_begun = 0
        self.kills_done = 0
        self.compactions = 0
        self.compactors_killed = 0
        self.max_tmp_files = 0
        self.folded = 0
        self.files_after_compaction = []
        self.scrapes = 0
        self.scrape_failures = 0
        self.scrape_ms = []
        self.last_scraped = 0.0
        self.max_scraped = 0.0
        self.rss = []  # (seconds since start, kB)
        self.max_db_files = 0
        self.writers = []
        self.serve = None
        self.port = None
        self.started = time.monotonic()

    def violation(self, message):
        with self.lock:
            self.violations.append(message)
        print(f"[soak] VIOLATION: {message}", file=sys.stderr, flush=True)

    # ---- processes -------------------------------------------------------------------------

    def start_serve(self):
        self.serve = subprocess.Popen(
            [os.path.join(self.bin, "prom-multiproc-cli"), "serve", "--dir", self.dir, "--port", "0"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.logs, "serve.stderr"), "w"), text=True)
        line = self.serve.stdout.readline()
        m = re.search(r"listening on http://[^ ]+:(\d+)/metrics", line)
        if not m:
            raise RuntimeError(f"serve did not start: {line!r}")
        self.port = int(m.group(1))

    def spawn_writer(self):
        batch = int(10 ** self.rng.uniform(0, 3.3))  # 1 .. ~2000, log-uniform
        pause = self.rng.randint(200, 3000)
        self.generations += 1
        log = os.path.join(self.logs, f"writer-{self.generations}.log")
        proc = subprocess.Popen(
            [os.path.join(self.bin, "prom-multiproc-testworker"), "metrics-loop", self.dir, str(batch), str(pause)],
            stdout=open(log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return {"proc": proc, "batch": batch, "log": log}

    def read_files(self, pid):
        """The values in a stopped writer's files (zero for files it never created)."""
        out = {"count": 0.0, "hist_count": 0.0, "hist_sum": 0.0, "max": 0.0}
        for kind in ("counter", "histogram", "gauge_max"):
            path = os.path.join(self.dir, f"{kind}_{pid}.db")
            if not os.path.exists(path):
                continue
            for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(path):
                _family, name, _labels, _help = json.loads(key)
                if name == COUNTER:
                    out["count"] += value
                elif name == HIST + "_bucket":
                    out["hist_count"] += value
                elif name == HIST + "_sum":
                    out["hist_sum"] += value
                elif name == MAX:
                    out["max"] = value
        return out

    def last_total(self, log):
        total, ready = 0, False
        with open(log) as f:
            for line in f:
                if line.startswith("ready "):
                    ready = True
                elif line.startswith("total ") and line.endswith("\n"):
                    total = int(line.split()[1])
        return total, ready

    def end_writer(self, w):
        """Freeze, read, kill and reap one writer; add its values to the expected ones."""
        proc = w["proc"]
        pid = proc.pid
        os.kill(pid, signal.SIGSTOP)
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            proc.returncode = status
            self.violation(f"writer {pid} ended on its own (wait status {status}): {open(w['log']).read()[-500:]}")
            return
        values = self.read_files(pid)
        printed, _ = self.last_total(w["log"])
        with self.lock:
            self.kills_begun += 1
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        proc.returncode = -signal.SIGKILL
        with self.lock:
            self.kills_done += 1
            self.kills += 1
            for k in ("count", "hist_count", "hist_sum"):
                self.expected[k] += values[k]
            self.expected["max"] = max(self.expected["max"], values["max"])
        c = values["count"]
        if not (printed <= c <= printed + w["batch"]):
            self.violation(f"writer {pid}: counter {c} outside [{printed}, {printed + w['batch']}] (its last report, batch {w['batch']})")
        if not (c - 1 <= values["hist_count"] <= c):
            self.violation(f"writer {pid}: {values['hist_count']} observations for {c} increments")
        if values["max"] not in (printed, printed + w["batch"]) or values["max"] > c:
            self.violation(f"writer {pid}: max gauge {values['max']}, last report {printed}, counter {c}")
        os.remove(w["log"])

    # ---- concurrent work --------------------------------------------------------------------

    def scrape(self, accept=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", "/metrics", headers={"Accept": accept} if accept else {})
            resp = conn.getresponse()
            body = resp.read().decode()
            return resp.status, body
        finally:
            conn.close()

    @staticmethod
    def sample(body, name):
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    def rss_kb(self):
        try:
            with open(f"/proc/{self.serve.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def tmp_files(self):
        return sum(1 for n in os.listdir(self.dir) if n.startswith(".tmp-"))

    def db_files(self):
        return sum(1 for n in os.listdir(self.dir) if n.endswith(".db"))

    def scraper(self):
        rng = random.Random(self.args.seed + 1)
        n = 0
        while not self.stop_event.is_set():
            n += 1
            t0 = time.monotonic()
            try:
                status, body = self.scrape(OPENMETRICS if n % 2 else None)
            except Exception as e:  # noqa: BLE001 - any failure is a violation
                with self.lock:
                    self.scrape_failures += 1
                self.violation(f"scrape {n} failed: {e!r}")
                time.sleep(0.1)
                continue
            ms = (time.monotonic() - t0) * 1000
            value = self.sample(body, COUNTER)
            if status != 200 or value is None:
                with self.lock:
                    self.scrape_failures += 1
                self.violation(f"scrape {n}: status {status}, {COUNTER} {'missing' if value is None else value}")
            else:
                with self.lock:
                    previous = self.last_scraped
                    self.last_scraped = value
                    self.max_scraped = max(self.max_scraped, value)
                if value < previous:
                    self.violation(f"scrape {n}: {COUNTER} went down from {previous} to {value}")
            with self.lock:
                self.scrapes += 1
                self.scrape_ms.append(ms)
                rss = self.rss_kb()
                if rss is not None:
                    self.rss.append((time.monotonic() - self.started, rss))
                self.max_db_files = max(self.max_db_files, self.db_files())
                self.max_tmp_files = max(self.max_tmp_files, self.tmp_files())
            time.sleep(rng.uniform(0, 0.05))

    def compactor(self):
        rng = random.Random(self.args.seed + 2)
        while not self.stop_event.wait(rng.uniform(0.2, 2.0)):
            # One compaction in ten is killed at a random step, like a supervisor's cron job
            # killed mid-way; the next one must clean up after it.
            self.compact(crash_after=rng.choice(COMPACTION_STEPS) if rng.random() < 0.1 else None)

    def compact(self, crash_after=None):
        with self.lock:
            done_before = self.kills_done
        if crash_after:
            command = [os.path.join(self.bin, "prom-multiproc-testworker"), "compact-crash-after", self.dir, crash_after]
        else:
            command = [os.path.join(self.bin, "prom-multiproc-cli"), "compact", "--dir", self.dir]
        r = subprocess.run(command, capture_output=True, text=True)
        files = self.db_files()
        with self.lock:
            window = self.kills_begun - done_before
            self.max_db_files = max(self.max_db_files, files)
            self.max_tmp_files = max(self.max_tmp_files, self.tmp_files())
            if not crash_after:
                self.files_after_compaction.append(files)
            if crash_after:
                self.compactors_killed += r.returncode == -signal.SIGKILL
            else:
                self.compactions += 1
        if crash_after:
            # Killed after the step, or exit 0 when there was nothing to fold (no step reached).
            if r.returncode not in (0, -signal.SIGKILL):
                self.violation(f"compact with a crash after {crash_after} ended with {r.returncode}: {r.stderr.strip()}")
            return
        if r.returncode != 0:
            self.violation(f"compact failed ({r.returncode}): {r.stderr.strip()}")
            return
        m = re.search(r"folded (\d+) file", r.stdout)
        if m:
            with self.lock:
                self.folded += int(m.group(1))
        bound = FILES_PER_WRITER * (self.args.writers + window) + ARCHIVES
        if files > bound:
            self.violation(f"{files} .db files after a compaction (bound {bound}: {self.args.writers} writers, {window} killed meanwhile)")

    # ---- the run -----------------------------------------------------------------------------

    def wait_ready(self, writers, timeout=20):
        deadline = time.monotonic() + timeout
        for w in writers:
            while not self.last_total(w["log"])[1]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"writer {w['proc'].pid} not ready: {open(w['log']).read()[-500:]}")
                time.sleep(0.01)

    def run(self):
        a = self.args
        self.start_serve()
        self.writers = [self.spawn_writer() for _ in range(a.writers)]
        self.wait_ready(self.writers)
        threads = [threading.Thread(target=self.scraper, daemon=True), threading.Thread(target=self.compactor, daemon=True)]
        for t in threads:
            t.start()
        deadline = self.started + a.duration
        while time.monotonic() < deadline and len(self.violations) < 20:
            time.sleep(self.rng.uniform(0, 0.5))
            i = self.rng.randrange(len(self.writers))
            self.end_writer(self.writers[i])
            self.writers[i] = self.spawn_writer()
            if self.rng.random() < 0.1:  # kill it again during its start-up
                time.sleep(self.rng.uniform(0, 0.015))
                self.early_kills += 1
                self.end_writer(self.writers[i])
                self.writers[i] = self.spawn_writer()
        self.stop_event.set()
        for t in threads:
            t.join(timeout=60)

        # Every writer alive and ready: the live gauge counts them all.
        self.wait_ready(self.writers)
        status, body = self.scrape()
        alive = self.sample(body, ALIVE)
        if status != 200 or alive != a.writers:
            self.violation(f"{ALIVE} is {alive} with {a.writers} writers alive (status {status})")
        for w in self.writers:
            self.end_writer(w)
        self.compact()
        self.final_checks()
        serve_status = self.stop_serve()
        if serve_status != 0:
            self.violation(f"serve exited with {serve_status} on SIGTERM")

    def final_checks(self):
        a = self.args
        exp = self.expected
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".db"))
        if names != ["counter_archive.db", "gauge_max_archive.db", "histogram_archive.db"]:
            self.violation(f"after the last compaction the directory holds {names}")
        status, body = self.scrape()
        cli = subprocess.run([os.path.join(self.bin, "prom-multiproc-cli"), "collect", "--no-self-metrics", "--dir", self.dir],
                             capture_output=True, text=True)
        for source, text in (("serve", body), ("collect", cli.stdout)):
            got = {
                "count": self.sample(text, COUNTER), "hist_count": self.sample(text, HIST + "_count"),
                "hist_sum": self.sample(text, HIST + "_sum"), "max": self.sample(text, MAX),
            }
            for k, v in exp.items():
                if got[k] != v:
                    self.violation(f"{source}: merged {k} is {got[k]}, the writers did {v}")
            alive = self.sample(text, ALIVE)
            if alive not in (None, 0.0):
                self.violation(f"{source}: {ALIVE} is {alive} with every writer dead")
        if self.max_scraped > exp["count"]:
            self.violation(f"a scrape saw {self.max_scraped} increments, more than the {exp['count']} done (a double count)")
        # prometheus_client reads the compacted directory to the same totals.
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.dir)
        py = registry.get_sample_value(COUNTER)
        if py != exp["count"]:
            self.violation(f"prometheus_client: {COUNTER} is {py}, the writers did {exp['count']}")
        # Memory: under the cap, and the last third no higher than the first third allows.
        if self.rss:
            peak = max(kb for _, kb in self.rss)
            if peak > a.max_rss_mb * 1024:
                self.violation(f"serve's RSS reached {peak / 1024:.1f} MiB (cap {a.max_rss_mb} MiB)")
            third = len(self.rss) // 3
            if third >= 10:
                first = max(kb for _, kb in self.rss[:third])
                last = max(kb for _, kb in self.rss[-third:])
                if last > first * 1.25 + 8 * 1024:
                    self.violation(f"serve's RSS grew: peak {first / 1024:.1f} MiB in the first third, {last / 1024:.1f} MiB in the last")
        else:
            self.violation("no RSS sample of serve")
        if self.scrapes == 0 or self.compactions < 2:
            self.violation(f"too little happened: {self.scrapes} scrapes, {self.compactions} compactions")

    def stop_serve(self):
        if self.serve.poll() is not None:
            return self.serve.returncode
        self.serve.send_signal(signal.SIGTERM)
        try:
            return self.serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            return "timeout"

    def cleanup(self):
        for w in self.writers:
            if w["proc"].returncode is None:
                try:
                    os.kill(w["proc"].pid, signal.SIGKILL)
                    os.waitpid(w["proc"].pid, 0)
                except OSError:
                    pass
        if self.serve and self.serve.poll() is None:
            self.serve.kill()
            self.serve.wait()

    def summary(self):
        elapsed = time.monotonic() - self.started
        ms = sorted(self.scrape_ms) or [0.0]
        rss = [kb for _, kb in self.rss] or [0]
        tmp = [n for n in os.listdir(self.dir) if n.startswith(".tmp-")]
        lines = [
            f"duration        {elapsed:.0f} s (asked {self.args.duration} s), {self.args.writers} writers, seed {self.args.seed}",
            f"writers         {self.generations} started, {self.kills} killed (SIGSTOP, read, SIGKILL), {self.early_kills} of them 0-15 ms after start",
            f"increments      {self.expected['count']:.0f} (histogram {self.expected['hist_count']:.0f} observations, sum {self.expected['hist_sum']}); largest writer {self.expected['max']:.0f}",
            f"compactions     {self.compactions} (and {self.compactors_killed} compactors killed at a random step), {self.folded} files folded",
            f".db files       after a compaction max {max(self.files_after_compaction or [0])}, overall max {self.max_db_files}",
            f"scrapes         {self.scrapes}, failed {self.scrape_failures}; ms p50 {statistics.median(ms):.1f} p99 {ms[int(len(ms) * 0.99) - 1 if len(ms) > 1 else 0]:.1f} max {ms[-1]:.1f}",
            f"serve RSS       first {rss[0] / 1024:.1f} MiB, max {max(rss) / 1024:.1f} MiB, last {rss[-1] / 1024:.1f} MiB ({len(rss)} samples)",
            f".tmp-* files    max {self.max_tmp_files}, {len(tmp)} at the end (writers killed while creating a file; compaction removes them after 60 s)",
            f"violations      {len(self.violations)}",
        ]
        print("[soak] summary\n" + "\n".join("  " + l for l in lines), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="directory with prom-multiproc-cli and prom-multiproc-testworker")
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--max-rss-mb", type=float, default=128)
    a = p.parse_args()
    soak = Soak(a)
    print(f"[soak] {a.duration:.0f} s, {a.writers} writers, seed {a.seed}, directory {soak.dir}", flush=True)
    try:
        soak.run()
    except Exception as e:  # noqa: BLE001
        soak.violation(f"the soak itself failed: {e!r}")
    finally:
        soak.cleanup()
    soak.summary()
    if soak.violations:
        print(f"[soak] FAILED: {len(soak.violations)} violation(s); directory kept: {soak.dir}, logs: {soak.logs}", flush=True)
        for v in soak.violations[:20]:
            print("  " + v)
        return 1
    shutil.rmtree(soak.dir, ignore_errors=True)
    shutil.rmtree(soak.logs, ignore_errors=True)
    print("[soak] passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
