"""A tiny WSGI application for the gunicorn end-to-end test (Tests/EndToEndTests/GunicornTests.swift).

prometheus_client in multiprocess mode: PROMETHEUS_MULTIPROC_DIR must be set before this module
is imported (gunicorn imports it in each worker, after the fork). Every request increments
`e2e_app_requests_total`; `e2e_app_workers` is a livesum gauge each worker sets to 1 when it
starts, so the merged value is the number of live workers only while dead workers' files are
removed by `mark-dead` (gunicorn.conf.py's child_exit hook).
"""
import os

from prometheus_client import Counter, Gauge

REQUESTS = Counter("e2e_app_requests", "Requests handled by the e2e app.")
WORKERS = Gauge("e2e_app_workers", "Live workers of the e2e app.", multiprocess_mode="livesum")
WORKERS.set(1)


def application(environ, start_response):
    REQUESTS.inc()
    body = ("handled by %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
