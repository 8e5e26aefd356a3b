#!/usr/bin/env bash
# The soak run (issue 7): writer processes killed and restarted at random while `compact` and
# scrapes of `serve` run concurrently; at the end the merged counters must equal the increments
# the writers did, exactly, with no failed scrape and bounded memory and file count.
#
#   bash scripts/soak.sh                       # 10 minutes (600 s)
#   bash scripts/soak.sh --duration 60         # what CI runs (scripts/test.sh, EXTRA CHECKS)
#   bash scripts/soak.sh --release --writers 6 --seed 42
#
# Options: --duration SECONDS (default 600), --writers K (default 4), --seed N (default: the
# time; printed, so a failure can be replayed), --max-rss-mb MB (serve's cap, default 128),
# --release (build and run release executables; by default the debug build, which
# scripts/test.sh has already made, so CI pays no extra build).
#
# The orchestration, and the argument for why the expected total is exact despite SIGKILL, are
# in scripts/soak/soak.py. It runs under the interop venv's Python (PROM_MULTIPROC_PYTHON, from
# scripts/setup.sh), because prometheus_client's own file reader judges each writer's file.
#
# Exit status: 0 when every check passed; 1 on any violation (each is printed, and the
# directory is kept for inspection); 2 on a usage error.
set -euo pipefail

PMP_SCRIPT=soak
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

config=debug
soak_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) config=release; shift ;;
        --duration | --writers | --seed | --max-rss-mb)
            [[ $# -ge 2 ]] || { pmp_log "$1 needs a value"; exit 2; }
            soak_args+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) pmp_log "unknown option: $1 (see --help)"; exit 2 ;;
    esac
done

# Children may be killed on purpose; the backtracer would make them slow.
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

exec "$PROM_MULTIPROC_PYTHON" "$PMP_ROOT/scripts/soak/soak.py" --bin "$bin" "${soak_args[@]}"
