#!/usr/bin/env bash
# The cost of liveness by /proc (the scan compaction makes twice per run), measured on a
# directory of 1,000 prometheus_client files of which 200 are held by 200 live processes.
#
#   bash scripts/liveness-bench.sh                  # release build, 3 rounds
#   bash scripts/liveness-bench.sh --debug --rounds 1
#   bash scripts/liveness-bench.sh --files 1000 --holders 200 --entries 20
#
# Builds prom-multiproc-cli and prom-multiproc-testworker, then runs scripts/bench/liveness.py
# (see it for what is timed). A benchmark, not a test: the figures depend on the machine and
# on how many other processes it runs (every process is scanned).
set -euo pipefail

PMP_SCRIPT=liveness-bench
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

config=release
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --debug) config=debug; shift ;;
        --files | --holders | --entries | --rounds)
            [[ $# -ge 2 ]] || { pmp_log "$1 needs a value"; exit 2; }
            args+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) pmp_log "unknown option: $1 (see --help)"; exit 2 ;;
    esac
done
for product in prom-multiproc-cli prom-multiproc-testworker; do
    pmp_log "swift build -c $config --product $product"
    swift build -c "$config" --product "$product" >&2
done
bin="$(swift build -c "$config" --show-bin-path)"
exec python3 "$PMP_ROOT/scripts/bench/liveness.py" --bin "$bin" "${args[@]}"
