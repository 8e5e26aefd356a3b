"""Writes the prometheus_client seed files of Fuzz/corpus (python-*.db), cut to their used bytes.

    /path/to/venv/bin/python Fuzz/make_python_corpus.py Fuzz/corpus

Needs prometheus_client (0.18 or later; the corpus was made with 0.26.0).
"""
import os
import struct
import sys
import tempfile

out = os.path.abspath(sys.argv[1])
work = tempfile.mkdtemp(prefix="pmp-pycorpus-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = work

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, values  # noqa: E402

values.ValueClass = values.MultiProcessValue(lambda: 77)
registry = CollectorRegistry()

c = Counter("py_requests", "Requests by method.", ["method", "code"], registry=registry)
c.labels("GET", "200").inc()
c.labels("POST", "500").inc(2.5)
c.labels("Zürich 😀", 'quote " back \\ nl \n').inc(3)
g = Gauge("py_temperature", "Temperature.", ["room"], multiprocess_mode="livesum", registry=registry)
g.labels("kitchen").set(21.5)
g.labels("").set(-4)
m = Gauge("py_last", "Most recent.", multiprocess_mode="mostrecent", registry=registry)
m.set(7)
h = Histogram("py_latency_seconds", "Latency.", buckets=[0.01, 0.1, 1.0], registry=registry)
for v in (0.005, 0.05, 0.5, 5.0):
    h.observe(v)
s = Summary("py_size_bytes", "Sizes.", registry=registry)
s.observe(512)
big = Gauge("py_big", "A file past 64 KiB.", ["i"], multiprocess_mode="all", registry=registry)
for i in range(1400):
    big.labels(str(i)).set(i)

for name in sorted(os.listdir(work)):
    with open(os.path.join(work, name), "rb") as f:
        data = f.read()
    used = struct.unpack_from("<i", data, 0)[0]
    target = os.path.join(out, "python-" + name)
    with open(target, "wb") as f:
        f.write(data[:used])
    print(f"{target}: {used} bytes used of {len(data)}")
    os.unlink(os.path.join(work, name))
os.rmdir(work)
