#!/usr/bin/env python3
"""The compaction torture run: prometheus_client and Swift workers writing into one directory,
killed at random and restarted, some under a pid that was just declared dead, while `compact`
runs concurrently (and is killed at random steps) and `serve` is scraped all along. At the end
every counter and histogram must equal exactly what the workers issued, and no scrape may have
seen a counter go down.

Usage: torture.py --bin DIR [--duration SECONDS] [--workers K] [--seed N]
Run it through scripts/torture.sh, which builds the executables and picks the Python (the venv
with prometheus_client).

What runs, in one temporary directory:
- `prom-multiproc-cli serve` on a free port, and a scraper thread: GET /metrics in a loop; the
  counter and the histogram's count and sum must never decrease, nor exceed the final totals;
- K worker slots, half prometheus_client (scripts/torture/py_writer.py), half Swift (the test
  worker's `torture-writer` mode), each writing `torture_ops_total`, `torture_latency` and the
  livesum gauge `torture_workers`. The main loop picks a slot every 0-0.3 s, ends its worker (see
  below), calls `mark-dead --pid <identity>` as a supervisor's child-exit hook would, and starts
  a replacement of either kind. In 40% of the restarts the replacement takes the identity just
  declared dead (prometheus_client: `values.MultiProcessValue(lambda: pid)`; Swift:
  `ProcessIdentity.fixed`): pid reuse, played. In half of those the hook runs only after the
  replacement opened its files (the late child-exit hook of the reported bug). The other
  replacements write as their real pid. One restart in ten kills the replacement again 0-50 ms
  after it started writing;
- a compactor thread: `prom-multiproc-cli compact --verbose` every 0.1-1 s; one in four is
  instead `prom-multiproc-testworker compact-crash-after DIR STEP [native]`, the same compaction
  killed at a random step (every step of CompactionStep) of the *.db files' fold or, with
  `native`, of the native-histogram files' fold.

Why the expected totals are exact although workers die by SIGKILL at random points:
1. A worker prints `ready` once its files are open, and waits. Its files are then read through
   /proc/<pid>/fd (the very files it holds, whatever name they have now): the values it starts
   from (a file of a dead process with its pid is adopted and continued).
2. To end a worker: SIGSTOP, wait until the kernel reports it stopped (it executes nothing more),
   read its files again through /proc/<pid>/fd, SIGKILL. Its updates were stores into MAP_SHARED
   mappings, so the files keep exactly the values read.
3. What it issued = end values - start values. Reading through the descriptors counts what it
   wrote even if a compactor wrongly deleted the file under it: such a loss shows at the end.
4. Once every worker is dead and compacted, the merged output must equal the sum of what all
   workers issued (binary fractions: the histogram's sum is exact too).
5. The Swift workers' `torture_latency` also keeps native buckets (`native_<pid>.pmh`, folded
   into `native_archive.pmh` by compaction): read the same way (the bucket entries' counts),
   the native count each issued is within one of its classic count (a SIGSTOP may fall between
   the two updates of one observation), and the merged native count (protobuf, from `serve`
   during the run and from `serve` and `collect` at the end) must never go down, never exceed
   and finally equal the sum of what they issued.

Exit status: 0 when every check passed, 1 otherwise (each violation is printed).
"""
import argparse
import http.client
import json
import os
import random
import re
import select
import struct
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from prometheus_client.mmap_dict import MmapedDict

OPS = "torture_ops_total"
LAT = "torture_latency"
WORKERS = "torture_workers"
STEPS = ["journal-staged", "first-source-hidden", "sources-hidden", "rechecked", "archives-written",
         "journal-written", "first-archive-renamed", "archives-renamed", "first-source-removed", "sources-removed"]
KEYS = ("ops", "count", "sum")
# The native count is kept beside KEYS: prometheus_client and the text formats never see it.
NATIVE = "native"
PROTOBUF_ACCEPT = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def zero():
    out = {k: 0.0 for k in KEYS}
    out[NATIVE] = 0.0
    return out


def pmh_count(path):
    """The sum of the bucket entries' counts of a native-histogram file (NativeHistogramFile:
    the container of the *.db files; series entries have JSON keys, bucket entries 11-byte keys
    and a UInt64 count as their value). A torture writer's file holds one series."""
    with open(path, "rb") as f:
        data = f.read()
    used = struct.unpack_from("<I", data, 0)[0]
    pos, total = 8, 0
    while pos + 4 <= used:
        n = struct.unpack_from("<I", data, pos)[0]
        key = data[pos + 4:pos + 4 + n]
        pos += 4 + n + (8 - (n + 4) % 8)
        if key[:1] != b"[":
            total += struct.unpack_from("<Q", data, pos)[0]
        pos += 16
    return float(total)


def _varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return x, i


def _fields(b):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield field, wire, v


def native_count(body, family):
    """The native count of `family`'s histogram series in a delimited MetricFamily stream (the
    zero bucket plus every bucket, from deltas or float counts), or None without one."""
    i, found = 0, None
    while i < len(body):
        n, i = _varint(body, i)
        message, i = body[i:i + n], i + n
        fields = list(_fields(message))
        if not any(f == 1 and v.decode() == family for f, _, v in fields):
            continue
        for f, _, metric in fields:
            if f != 4:
                continue
            for mf, _, histogram in _fields(metric):
                if mf != 7:
                    continue
                total, running, native = 0.0, {10: 0, 13: 0}, False
                for hf, _, v in _fields(histogram):
                    if hf == 5:
                        native = True
                    elif hf == 7:
                        total += v
                    elif hf in (8, 11, 14):
                        total += struct.unpack("<d", v)[0]
                    elif hf in (10, 13):
                        running[hf] += (v >> 1) ^ -(v & 1)
                        total += running[hf]
                if native:
                    found = (found or 0.0) + total
    return found


class Worker:
    def __init__(self, proc, lang, identity, reused, log):
        self.proc, self.lang, self.identity, self.reused, self.log = proc, lang, identity, reused, log
        self.initial = zero()


class Torture:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bin = args.bin
        self.here = os.path.dirname(os.path.abspath(__file__))
        self.dir = tempfile.mkdtemp(prefix="pmp-torture-")
        self.logs = tempfile.mkdtemp(prefix="pmp-torture-logs-")
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.violations = []
        self.expected = zero()
        self.started = time.monotonic()
        self.serve = None
        self.port = None
        self.slots = []
        self.n = {k: 0 for k in ("started", "py", "swift", "kills", "early_kills", "reuses", "late_hooks", "mark_dead",
                                "mark_dead_in_use", "collisions", "compactions", "compactors_killed", "folded",
                                "put_back", "kept_in_use", "scrapes", "protobuf_scrapes", "scrape_failures")}
        self.max_scraped = zero()
        self.last_scraped = zero()
        self.scrape_ms = []

    def violation(self, message):
        with self.lock:
            self.violations.append(message)
        print(f"[torture] VIOLATION: {message}", file=sys.stderr, flush=True)

    def count(self, key, by=1):
        with self.lock:
            self.n[key] += by

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

    def read_line(self, proc, timeout=30.0):
        """One line of a worker's standard output (binary pipe), or None at EOF or timeout."""
        fd = proc.stdout.fileno()
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1)
            if not chunk:
                return None
            data += chunk
        return data.decode()

    def launch(self, identity, lang):
        batch = self.rng.choice([1, 3, 10, 50, 200])
        pause = self.rng.randint(300, 4000)
        self.n["started"] += 1
        self.n[lang] += 1
        log = os.path.join(self.logs, f"worker-{self.n['started']}.log")
        if lang == "py":
            command = [sys.executable, os.path.join(self.here, "py_writer.py"), self.dir, identity, str(batch), str(pause)]
        else:
            command = [os.path.join(self.bin, "prom-multiproc-testworker"), "torture-writer", self.dir, identity, str(batch), str(pause)]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"))
        return proc, log

    def live_identities(self):
        return {w.identity for w in self.slots if w is not None}

    def spawn(self, identity, lang):
        """Starts a worker, reads the values its files start from, lets it go."""
        while True:
            proc, log = self.launch(identity, lang)
            line = self.read_line(proc)
            if not line or not line.startswith("ready "):
                proc.kill()
                proc.wait()
                raise RuntimeError(f"{lang} worker did not start: {line!r} {open(log).read()[-800:]}")
            ident = line.split()[1]
            w = Worker(proc, lang, ident, identity != "pid", log)
            if identity == "pid" and ident in self.live_identities():
                # The kernel gave it the pid a live worker plays: two writers of one identity
                # would share a prometheus_client file. It has issued nothing: end it, retry.
                self.count("collisions")
                self.end(w, read=False)
                continue
            w.initial = self.read_files(proc.pid)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            return w

    def read_files(self, pid):
        """The values in the metric files `pid` holds open (each file once)."""
        out = zero()
        seen = set()
        fd_dir = f"/proc/{pid}/fd"
        for fd in os.listdir(fd_dir):
            path = f"{fd_dir}/{fd}"
            try:
                target = os.readlink(path)
                st = os.stat(path)
            except OSError:
                continue
            if not target.startswith(self.dir + "/") or (st.st_dev, st.st_ino) in seen:
                continue
            # Sidecar files (creation times, exemplars) hold no counter values and their keys
            # are not prometheus_client's JSON; native buckets are counted apart.
            base = os.path.basename(target).removesuffix(" (deleted)")
            if base.endswith((".pmm", ".pmx")):
                continue
            seen.add((st.st_dev, st.st_ino))
            if base.endswith(".pmh"):
                out[NATIVE] += pmh_count(path)
                continue
            for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(path):
                name = json.loads(key)[1]
                if name == OPS:
                    out["ops"] += value
                elif name == LAT + "_bucket":
                    out["count"] += value
                elif name == LAT + "_sum":
                    out["sum"] += value
        return out

    def end(self, w, read=True):
        """Freeze, read, kill and reap a worker; add what it issued to the expected totals."""
        pid = w.proc.pid
        os.kill(pid, signal.SIGSTOP)
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            w.proc.returncode = status
            self.violation(f"{w.lang} worker {pid} ({w.identity}) ended on its own (status {status}): {open(w.log).read()[-500:]}")
            return
        final = self.read_files(pid) if read else None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        w.proc.returncode = -signal.SIGKILL
        if final is None:
            return
        issued = {k: final[k] - w.initial[k] for k in KEYS + (NATIVE,)}
        if issued["ops"] < 0 or not (issued["ops"] - 1 <= issued["count"] <= issued["ops"]):
            self.violation(f"{w.lang} worker {pid} ({w.identity}): issued {issued} (from {w.initial} to {final})")
        if (w.lang == "swift" and abs(issued[NATIVE] - issued["count"]) > 1) or (w.lang == "py" and issued[NATIVE] != 0):
            self.violation(f"{w.lang} worker {pid} ({w.identity}): native count {issued[NATIVE]} against {issued['count']} observed")
        with self.lock:
            for k in KEYS + (NATIVE,):
                self.expected[k] += issued[k]
            self.n["kills"] += 1
        try:
            os.remove(w.log)
        except OSError:
            pass

    def mark_dead(self, identity):
        r = subprocess.run([os.path.join(self.bin, "prom-multiproc-cli"), "mark-dead", "--pid", identity, "--dir", self.dir],
                           capture_output=True, text=True)
        self.count("mark_dead")
        if r.returncode != 0:
            self.violation(f"mark-dead --pid {identity} failed ({r.returncode}): {r.stderr.strip()}")
        if "not recorded as dead" in r.stderr:
            self.count("mark_dead_in_use")

    # ---- concurrent work --------------------------------------------------------------------

    def scrape(self, protobuf=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", "/metrics", headers={"Accept": PROTOBUF_ACCEPT} if protobuf else {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body if protobuf else body.decode()
        finally:
            conn.close()

    @staticmethod
    def sample(body, name):
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    def totals(self, body):
        return {"ops": self.sample(body, OPS), "count": self.sample(body, LAT + "_count"), "sum": self.sample(body, LAT + "_sum")}

    def scraper(self):
        rng = random.Random(self.args.seed + 1)
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            # One scrape in four asks for protobuf, the only format with the native count.
            protobuf = rng.random() < 0.25
            try:
                status, body = self.scrape(protobuf)
            except Exception as e:  # noqa: BLE001 - any failure is a violation
                self.count("scrape_failures")
                self.violation(f"scrape failed: {e!r}")
                time.sleep(0.1)
                continue
            got = {k: None for k in KEYS + (NATIVE,)}
            if protobuf:
                got[NATIVE] = native_count(body, LAT)
                self.count("protobuf_scrapes")
            else:
                got.update(self.totals(body))
            with self.lock:
                self.n["scrapes"] += 1
                self.scrape_ms.append((time.monotonic() - t0) * 1000)
                previous = dict(self.last_scraped)
            if status != 200:
                self.count("scrape_failures")
                self.violation(f"scrape: status {status}")
            for k in KEYS + (NATIVE,):
                v = got[k]
                if v is None:
                    continue  # before the first worker wrote, or not in this format
                if v < previous[k]:
                    self.violation(f"scrape: {k} went down from {previous[k]} to {v}")
                with self.lock:
                    self.last_scraped[k] = v
                    self.max_scraped[k] = max(self.max_scraped[k], v)
            time.sleep(rng.uniform(0, 0.03))

    def compactor(self):
        rng = random.Random(self.args.seed + 2)
        while not self.stop_event.wait(rng.uniform(0.1, 1.0)):
            crash = rng.random() < 0.25
            self.compact(crash_after=rng.choice(STEPS) if crash else None, native=crash and rng.random() < 0.5)

    def compact(self, crash_after=None, native=False):
        if crash_after:
            # Killed at a step of the *.db files' fold, or (native) of the native files' fold.
            command = [os.path.join(self.bin, "prom-multiproc-testworker"), "compact-crash-after", self.dir, crash_after]
            command += ["native"] if native else []
        else:
            command = [os.path.join(self.bin, "prom-multiproc-cli"), "compact", "--dir", self.dir, "--verbose"]
        r = subprocess.run(command, capture_output=True, text=True)
        if crash_after:
            if r.returncode == -signal.SIGKILL:
                self.count("compactors_killed")
            elif r.returncode != 0:
                self.violation(f"compact killed after {crash_after} ended with {r.returncode}: {r.stderr.strip()}")
            return r
        if r.returncode != 0:
            self.violation(f"compact failed ({r.returncode}): {r.stderr.strip()}")
            return r
        m = re.search(r"folded (\d+) file", r.stdout)
        with self.lock:
            self.n["compactions"] += 1
            self.n["folded"] += int(m.group(1)) if m else 0
            self.n["put_back"] += r.stdout.count("put back")
            self.n["kept_in_use"] += r.stdout.count(": in use:")
        # Every file held by its writer's lock (Swift workers only, the dead ones folded
        # already): nothing to judge, so no scan; then nothing may have been folded either.
        nothing_to_judge = "liveness: no file to judge" in r.stdout and (m is None or m.group(1) == "0")
        if "liveness: /proc scan" not in r.stdout and not nothing_to_judge:
            self.violation(f"compact did not use /proc: {r.stdout.strip()[:300]}")
        return r

    # ---- the run -----------------------------------------------------------------------------

    def restart(self, i):
        old = self.slots[i]
        self.slots[i] = None
        self.end(old)
        lang = self.rng.choice(["py", "swift"])
        reuse = self.rng.random() < 0.4
        late_hook = reuse and self.rng.random() < 0.5
        if not late_hook:
            self.mark_dead(old.identity)
        new = self.spawn(old.identity if reuse else "pid", lang)
        if reuse:
            self.count("reuses")
        if late_hook:
            # The child-exit hook for the old process arrives after its pid was reused.
            self.count("late_hooks")
            self.mark_dead(old.identity)
        self.slots[i] = new
        if self.rng.random() < 0.1:
            time.sleep(self.rng.uniform(0, 0.05))
            self.count("early_kills")
            self.slots[i] = None
            self.end(new)
            self.mark_dead(new.identity)
            self.slots[i] = self.spawn("pid", self.rng.choice(["py", "swift"]))

    def run(self):
        a = self.args
        self.start_serve()
        self.slots = [None] * a.workers
        for i in range(a.workers):
            self.slots[i] = self.spawn("pid", "py" if i % 2 == 0 else "swift")
        threads = [threading.Thread(target=self.scraper, daemon=True), threading.Thread(target=self.compactor, daemon=True)]
        for t in threads:
            t.start()
        deadline = self.started + a.duration
        while time.monotonic() < deadline and len(self.violations) < 20:
            time.sleep(self.rng.uniform(0, 0.3))
            self.restart(self.rng.randrange(a.workers))
        self.stop_event.set()
        for t in threads:
            t.join(timeout=120)
        for i, w in enumerate(self.slots):
            self.slots[i] = None
            self.end(w)
            self.mark_dead(w.identity)
        self.compact()
        self.final_checks()
        if self.stop_serve() != 0:
            self.violation("serve did not exit cleanly on SIGTERM")

    def final_checks(self):
        exp = self.expected
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(".db"))
        if names != ["counter_archive.db", "histogram_archive.db"]:
            self.violation(f"after the last compaction the directory holds {names}")
        natives = sorted(n for n in os.listdir(self.dir) if n.endswith(".pmh"))
        if natives != (["native_archive.pmh"] if self.n["swift"] else []):
            self.violation(f"after the last compaction the directory holds native files {natives}")
        leftovers = sorted(n for n in os.listdir(self.dir) if n.startswith(".fold-") or n.startswith(".tmp-archive-")
                           or n in (".prom-multiproc-compaction-journal", ".prom-multiproc-native-compaction-journal"))
        if leftovers:
            self.violation(f"leftovers after the last compaction: {leftovers}")
        _, proto = self.scrape(protobuf=True)
        cli_proto = subprocess.run([os.path.join(self.bin, "prom-multiproc-cli"), "collect", "--no-self-metrics", "--format", "protobuf",
                                    "--dir", self.dir], capture_output=True)
        for source, message in (("serve", proto), ("collect", cli_proto.stdout)):
            got = native_count(message, LAT) or 0.0
            if got != exp[NATIVE]:
                self.violation(f"{source}: merged native count is {got}, the Swift workers issued {exp[NATIVE]}")
        if self.max_scraped[NATIVE] > exp[NATIVE]:
            self.violation(f"a scrape saw native count {self.max_scraped[NATIVE]}, more than the {exp[NATIVE]} issued (a double count)")
        status, body = self.scrape()
        cli = subprocess.run([os.path.join(self.bin, "prom-multiproc-cli"), "collect", "--no-self-metrics", "--dir", self.dir],
                             capture_output=True, text=True)
        for source, text in (("serve", body), ("collect", cli.stdout)):
            got = self.totals(text)
            for k in KEYS:
                if got[k] != exp[k]:
                    self.violation(f"{source}: merged {k} is {got[k]}, the workers issued {exp[k]}")
            alive = self.sample(text, WORKERS)
            if alive not in (None, 0.0):
                self.violation(f"{source}: {WORKERS} is {alive} with every worker dead")
        for k in KEYS:
            if self.max_scraped[k] > exp[k]:
                self.violation(f"a scrape saw {k} {self.max_scraped[k]}, more than the {exp[k]} issued (a double count)")
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.dir)
        py = {"ops": registry.get_sample_value(OPS), "count": registry.get_sample_value(LAT + "_count"),
              "sum": registry.get_sample_value(LAT + "_sum")}
        for k in KEYS:
            if py[k] != exp[k]:
                self.violation(f"prometheus_client: merged {k} is {py[k]}, the workers issued {exp[k]}")
        if self.n["scrapes"] == 0 or self.n["compactions"] < 2:
            self.violation(f"too little happened: {self.n['scrapes']} scrapes, {self.n['compactions']} compactions")

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
        for w in self.slots:
            if w is not None and w.proc.returncode is None:
                try:
                    os.kill(w.proc.pid, signal.SIGKILL)
                    os.waitpid(w.proc.pid, 0)
                except OSError:
                    pass
        if self.serve and self.serve.poll() is None:
            self.serve.kill()
            self.serve.wait()

    def summary(self):
        n = self.n
        ms = sorted(self.scrape_ms) or [0.0]
        e = self.expected
        lines = [
            f"duration        {time.monotonic() - self.started:.0f} s (asked {self.args.duration:.0f} s), {self.args.workers} slots, seed {self.args.seed}",
            f"workers         {n['started']} started ({n['py']} prometheus_client, {n['swift']} Swift), {n['kills']} killed (SIGSTOP, read, SIGKILL), "
            f"{n['early_kills']} 0-50 ms after start, {n['collisions']} real-pid collisions retried",
            f"pid reuse       {n['reuses']} restarts under the identity just declared dead, {n['late_hooks']} of them with the child-exit hook after the restart",
            f"mark-dead       {n['mark_dead']} calls, {n['mark_dead_in_use']} found the pid's files in use (not recorded)",
            f"compactions     {n['compactions']} (and {n['compactors_killed']} killed at a random step), {n['folded']} files folded, "
            f"{n['kept_in_use']} kept as in use, {n['put_back']} put back after hiding",
            f"scrapes         {n['scrapes']} ({n['protobuf_scrapes']} protobuf), failed {n['scrape_failures']}; ms p50 {statistics.median(ms):.1f} max {ms[-1]:.1f}",
            f"final totals    {OPS} {e['ops']:.0f}, {LAT}_count {e['count']:.0f}, {LAT}_sum {e['sum']}, native count {e[NATIVE]:.0f}",
            f"violations      {len(self.violations)}",
        ]
        print("[torture] summary\n" + "\n".join("  " + l for l in lines), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="directory with prom-multiproc-cli and prom-multiproc-testworker")
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    t = Torture(a)
    print(f"[torture] {a.duration:.0f} s, {a.workers} worker slots, seed {a.seed}, directory {t.dir}", flush=True)
    try:
        t.run()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        t.violation(f"the torture itself failed: {e!r}")
    finally:
        t.stop_event.set()
        t.cleanup()
    t.summary()
    if t.violations:
        print(f"[torture] FAILED: {len(t.violations)} violation(s); directory kept: {t.dir}, logs: {t.logs}", flush=True)
        for v in t.violations[:20]:
            print("  " + v)
        return 1
    shutil.rmtree(t.dir, ignore_errors=True)
    shutil.rmtree(t.logs, ignore_errors=True)
    print("[torture] passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
