#!/usr/bin/env python3
"""prometheus_client's endpoint for the HTTP benchmark.

usage: serve_python.py DIR PORT

start_http_server on 127.0.0.1:PORT with a registry holding only a MultiProcessCollector over
DIR (the setup prometheus_client's documentation gives for multiprocess mode); prints "ready"
once listening and serves until killed.
"""
import os
import sys
import time


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
