#!/usr/bin/env bash
# The compaction torture run: prometheus_client and Swift workers in one directory, killed at
# random and restarted, some under a pid just declared dead (pid reuse), `mark-dead` from a
# simulated child-exit hook, `compact` running concurrently and killed at random steps, scrapes
# all along. At the end every counter and histogram must equal what the workers issued, and no
# scrape may have seen a counter go down.
#
#   bash scripts/torture.sh                       # 10 minutes (600 s)
#   bash scripts/torture.sh --duration 60         # what CI runs (scripts/test.sh, EXTRA CHECKS)
#   bash scripts/torture.sh --release --workers 8 --seed 42
#
# Options: --duration SECONDS (default 600), --workers K (worker slots, default 6), --seed N
# (default: the time; printed, so a failure can be replayed), --release (build and run release
# executables; by default the debug build, which scripts/test.sh has already made).
#
# The orchestration, and why the expected totals are exact despite SIGKILL, are in
# scripts/torture/torture.py. It runs under the interop venv's Python (PROM_MULTIPROC_PYTHON,
# from scripts/setup.sh): its workers are prometheus_client's own writer. Linux only (/proc).
#
# Exit status: 0 when every check passed; 1 on any violation (each is printed, and the
# directory is kept for inspection); 2 on a usage error.
set -euo pipefail

PMP_SCRIPT=torture
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

config=debug
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) config=release; shift ;;
        --duration | --workers | --seed)
            [[ $# -ge 2 ]] || { pmp_log "$1 needs a value"; exit 2; }
            args+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) pmp_log "unknown option: $1 (see --help)"; exit 2 ;;
    esac
done

# Children are killed on purpose; the backtracer would make them slow.
export SWIFT_BACKTRACE=enable=no

if [[ -z "${PROM_MULTIPROC_PYTHON:-}" ]]; then
    [[ -f "$PMP_ENV_FILE" ]] || bash "$PMP_ROOT/scripts/setup.sh" >/dev/null
    # shellcheck source=/dev/null
    source "$PMP_ENV_FILE"
fi
[[ -x "${PROM_MULTIPROC_PYTHON:-}" ]] || pmp_die "PROM_MULTIPROC_PYTHON is not set: run scripts/setup.sh"

for product in prom-multiproc-cli prom-multiproc-testworker; do
    pmp_log "swift build -c $config --product $product"
    swift build -c "$config" --product "$product" >&2
done
bin="$(swift build -c "$config" --show-bin-path)"

exec "$PROM_MULTIPROC_PYTHON" "$PMP_ROOT/scripts/torture/torture.py" --bin "$bin" "${args[@]}"
