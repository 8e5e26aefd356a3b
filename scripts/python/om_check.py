#!/usr/bin/env python3
"""Check an exposition read from stdin with prometheus_client's own parsers.

Usage: om_check.py [--text] < body

Without --text the body is parsed with prometheus_client.openmetrics.parser, which is strict
(it requires `# EOF`, rejects clashing names, a missing +Inf bucket, non-integer bucket
counts, ...). With --text it is parsed with prometheus_client.parser, the lenient parser of
the Prometheus text format 0.0.4.

Exit 0 and print the number of families on success; exit 1 with the error on stderr.
"""
import sys


def main() -> int:
    args = sys.argv[1:]
    text_mode = False
    if args == ["--text"]:
        text_mode = True
    elif args:
        print("usage: om_check.py [--text] < body", file=sys.stderr)
        return 2
    # Read bytes and decode strictly: an exposition must be UTF-8.
    try:
        body = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as error:
        print(f"not UTF-8: {error}", file=sys.stderr)
        return 1
    if text_mode:
        from prometheus_client.parser import text_string_to_metric_families as parse
    else:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
    try:
        families = list(parse(body))
    except Exception as error:  # the parsers raise ValueError, and sometimes others
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(len(families))
    return 0


if __name__ == "__main__":
    sys.exit(main())
