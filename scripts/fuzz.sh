#!/usr/bin/env bash
# Fuzzes the metric file reader and the key decoder (see Fuzz/README.md).
#
#   bash scripts/fuzz.sh                          # the CI run: 200,000 execs, at most 120 s
#   bash scripts/fuzz.sh --runs 1000000 --max-time 0
#   bash scripts/fuzz.sh --mutate --runs 1000000  # the seeded mutation driver, no libFuzzer
#
# Options:
#   --runs N        executions (default 200000)
#   --max-time S    stop libFuzzer after S seconds (default 120; 0 = no limit). Reaching the
#                   time limit before N runs is not a failure; the figures say how many ran.
#   --max-len L     largest input libFuzzer makes, in bytes (default 8192)
#   --seed S        libFuzzer's -seed / the mutation driver's seed (default 1)
#   --mutate        use the seeded random-mutation driver instead of libFuzzer (also the
#                   fallback when the toolchain cannot build with -sanitize=fuzzer)
#
# libFuzzer mode builds Sources/prom-multiproc-fuzz (and MmapStore) with
# `-sanitize=fuzzer,address` into .build-fuzz, so every out-of-bounds read is caught by the
# address sanitizer, hangs by libFuzzer's -timeout=10 and leaks by LeakSanitizer. Inputs
# libFuzzer finds go to a temporary copy of the corpus; Fuzz/corpus is never changed. A
# crashing input is written to .build-fuzz/crashes/ and the script exits 1.
set -euo pipefail

PMP_SCRIPT=fuzz
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

runs=200000
max_time=120
max_len=8192
seed=1
mode=libfuzzer
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --max-time) max_time="$2"; shift 2 ;;
        --max-len) max_len="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        --mutate) mode=mutate; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) pmp_die "unknown option $1 (see --help)" ;;
    esac
done

export SWIFT_BACKTRACE=enable=no
# The scratch file the harness rewrites for every input: on tmpfs when there is one.
scratch_base=/dev/shm
[[ -d $scratch_base && -w $scratch_base ]] || scratch_base="${TMPDIR:-/tmp}"
work="$(mktemp -d "$scratch_base/pmp-fuzz-XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/scratch" "$work/corpus"
export PMP_FUZZ_DIR="$work/scratch"

if [[ $mode == libfuzzer ]]; then
    pmp_log "building the libFuzzer harness (.build-fuzz, -sanitize=fuzzer,address)"
    if ! swift build -c release --product prom-multiproc-fuzz --scratch-path .build-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DPMP_LIBFUZZER \
        2> >(grep -v "Cannot export local symbol" >&2); then
        pmp_warn "the toolchain cannot build with -sanitize=fuzzer; using the seeded mutation driver"
        mode=mutate
    fi
fi

started=$SECONDS
if [[ $mode == libfuzzer ]]; then
    mkdir -p .build-fuzz/crashes
    log="$work/libfuzzer.log"
    pmp_log "libFuzzer: $runs runs, -max_len=$max_len, -max_total_time=$max_time, seed $seed"
    status=0
    .build-fuzz/release/prom-multiproc-fuzz \
        -runs="$runs" -max_total_time="$max_time" -max_len="$max_len" -seed="$seed" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$PMP_ROOT/.build-fuzz/crashes/" \
        "$work/corpus" Fuzz/corpus >"$log" 2>&1 || status=$?
    grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|Done|stat::|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" "$log" >&2 || true
    if [[ $status -ne 0 ]]; then
        tail -n 60 "$log" >&2
        pmp_log "FAILED: libFuzzer exit $status after $((SECONDS - started)) s; crashing input in .build-fuzz/crashes/"
        exit 1
    fi
    done_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
    pmp_log "passed: $done_line (wall $((SECONDS - started)) s); no crash, hang, leak or out-of-bounds read"
else
    pmp_log "building the mutation driver (release, .build-fuzz-mutate)"
    swift build -c release --product prom-multiproc-fuzz --scratch-path .build-fuzz-mutate
    .build-fuzz-mutate/release/prom-multiproc-fuzz mutate --runs "$runs" --seed "$seed" --max-len "$max_len" Fuzz/corpus
    pmp_log "passed: $runs mutated inputs, seed $seed (wall $((SECONDS - started)) s)"
fi
