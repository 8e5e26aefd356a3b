#!/usr/bin/env python3
"""Show what prometheus_client would send to a Pushgateway, without any network.

Usage: push_url.py < CASES.json

CASES is a JSON list of {"gateway": "http://host:port[/prefix]", "job": "...",
"grouping": {"name": "value", ...}, "add": false}. For each case, push_to_gateway (or
pushadd_to_gateway when "add" is true) is called with an empty registry and a handler that
records the request instead of sending it. Prints a JSON list, in the same order, of
{"url", "method", "headers": {name: value}}; a case for which prometheus_client raises gives
{"error": "..."}.
"""
import json
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway


def main():
    if len(sys.argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    out = []
    for case in json.load(sys.stdin):
        seen = {}

        def handler(url, method, timeout, headers, data):
            seen.update(url=url, method=method, headers=dict(headers))
            return lambda: None

        push = pushadd_to_gateway if case.get("add") else push_to_gateway
        try:
            push(case["gateway"], job=case["job"], registry=CollectorRegistry(),
                 grouping_key=case.get("grouping") or None, handler=handler)
            out.append(seen)
        except Exception as e:  # noqa: BLE001 -- report whatever prometheus_client raised
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
