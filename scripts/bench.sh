#!/usr/bin/env bash
# Benchmarks, side by side with prometheus_client 0.26.0 (multiprocess mode) and the other
# peers, in one run.
#
#   scripts/bench.sh [--quick] [--rounds N] [--only hot,alloc,instr,collect,render,growth,http,serve-load]
#                    [--update-doc]
#
# Builds prom-multiproc-bench (and the CLI, for `serve`) in release mode, then runs
# scripts/bench/run.py, which interleaves our rounds with Python's and prints one table:
# operation | ours (median) | Python (median) | ratio | target. The table also goes to
# bench-out/table.md (with the raw figures in bench-out/results.json); --update-doc writes it
# into BENCHMARKS.md with the machine description.
#
# Python: $PROM_MULTIPROC_PYTHON, else .venv-interop/bin/python (made by scripts/setup.sh);
# it must import prometheus_client 0.26.0. bench.sh installs scripts/bench/requirements.txt
# (prometheus-client-python-speedups 0.1.0, the Rust merge) into it when missing.
# Tools: valgrind (alloc, instr), wrk (http, serve-load).
#
# Peers built here too: Benchmarks/SwiftPrometheusBench (swift-prometheus 2.4.1 in-process, the
# hot rows' other peer; a separate package, release build) and, for serve-load's writers,
# prom-multiproc-testworker. A peer that does not build is a warning and an empty column.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PROM_MULTIPROC_PYTHON:-}"
if [[ -z "$python" ]]; then
    python="$root/.venv-interop/bin/python"
fi
if [[ ! -x "$python" ]]; then
    echo "bench: no Python: set PROM_MULTIPROC_PYTHON or run scripts/setup.sh (expected $python)" >&2
    exit 1
fi
if ! version="$("$python" -c 'import importlib.metadata as m; print(m.version("prometheus_client"))' 2>&1)"; then
    echo "bench: $python cannot import prometheus_client: $version" >&2
    exit 1
fi
if [[ "$version" != "0.26.0" ]]; then
    echo "bench: $python has prometheus_client $version, the benchmarks compare with 0.26.0" >&2
    exit 1
fi

for arg in "$@"; do
    if [[ "$arg" == "-h" || "$arg" == "--help" ]]; then
        exec "$python" "$root/scripts/bench/run.py" --help  # no build for the usage text
    fi
done

if ! "$python" -c 'import prometheus_client_python_speedups' 2>/dev/null; then
    echo "[bench] pip install -r scripts/bench/requirements.txt (into $python's environment)" >&2
    "$python" -m pip install --disable-pip-version-check --no-input -q -r "$root/scripts/bench/requirements.txt" >&2 || {
        echo "bench: cannot install scripts/bench/requirements.txt into $python's environment" >&2
        exit 1
    }
fi

echo "[bench] swift build -c release --product prom-multiproc-bench" >&2
swift build -c release --product prom-multiproc-bench >&2
cli_args=()
echo "[bench] swift build -c release --product prom-multiproc-cli" >&2
if swift build -c release --product prom-multiproc-cli >&2; then
    cli_args=(--cli "$(swift build -c release --show-bin-path)/prom-multiproc-cli")
else
    echo "bench: warning: the CLI did not build; the http section will report it" >&2
fi
echo "[bench] swift build -c release --product prom-multiproc-testworker" >&2
if swift build -c release --product prom-multiproc-testworker >&2; then
    cli_args+=(--testworker "$(swift build -c release --show-bin-path)/prom-multiproc-testworker")
else
    echo "bench: warning: prom-multiproc-testworker did not build; the serve-load section will report it" >&2
fi
peer_pkg="$root/Benchmarks/SwiftPrometheusBench"
echo "[bench] swift build -c release --package-path Benchmarks/SwiftPrometheusBench" >&2
if swift build -c release --package-path "$peer_pkg" >&2; then
    cli_args+=(--swift-prometheus "$(swift build -c release --package-path "$peer_pkg" --show-bin-path)/swift-prometheus-hot")
else
    echo "bench: warning: Benchmarks/SwiftPrometheusBench did not build; no swift-prometheus figures" >&2
fi
bin="$(swift build -c release --show-bin-path)/prom-multiproc-bench"

exec "$python" "$root/scripts/bench/run.py" --bin "$bin" --python "$python" "${cli_args[@]}" "$@"
