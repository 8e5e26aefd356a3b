#!/usr/bin/env bash
# The whole test suite under the thread sanitizer and the address sanitizer.
#
#   bash scripts/sanitizers.sh                 # thread, then address
#   bash scripts/sanitizers.sh thread          # one of them
#   bash scripts/sanitizers.sh address -- --filter MmapStoreTests   # arguments after -- go to swift test
#
# Each sanitizer builds into its own scratch directory (.build-tsan, .build-asan), so the
# ordinary .build is untouched; the package's executables that the tests spawn as children
# (prom-multiproc-testworker, prom-multiproc-cli, prom-multiproc-fuzz) are built with the same
# sanitizer, so the children are checked too. A sanitizer report makes the process exit
# non-zero (and a child's report fails the test that spawned it). Each run prints its build
# and test times.
#
# Needs the environment scripts/test.sh exports (PROM_MULTIPROC_*); run through test.sh, or
# source .build/test-env.sh first.
#
# Time on 2 shared cores (Swift 6.3.1, 171 tests, incremental builds): thread 16 s to build
# and 194 s to test, address 60 s and 96 s; a build from scratch adds about 1.5 min each. The
# serialized "Expensive" suite (8,000,000 increments, 200+ kills) dominates, but fits the CI
# budget, so the heavy tests keep their full sizes and no size variable is needed.
#
set -euo pipefail

PMP_SCRIPT=sanitizers
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path
export SWIFT_BACKTRACE=enable=no

sanitizers=()
while [[ $# -gt 0 && $1 != "--" ]]; do
    case "$1" in
        thread|address) sanitizers+=("$1") ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) pmp_die "unknown sanitizer '$1' (thread or address)" ;;
    esac
    shift
done
[[ ${1:-} == "--" ]] && shift
[[ ${#sanitizers[@]} -gt 0 ]] || sanitizers=(thread address)

# Halt on the first report, with the whole report on stderr (second_deadlock_stack for
# lock-order reports). Every TSan and ASan check stays on, with one exception:
# LeakSanitizer is off (detect_leaks=0). With it on, every test passes but the runner exits 1
# on leak reports that are not memory errors: XCTest's own suite objects, a weak reference in
# Foundation's Process.run, the 16-byte private slots SeriesHandle deliberately never frees
# (MmapStore/ProcessStore.swift: another thread may still hold the old address), and
# reference cycles between PromMetrics metrics and their children in tests that drop their
# registries. Leaks in the reader and the key decoder are checked by scripts/fuzz.sh, where
# LeakSanitizer stays on.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1 detect_leaks=0}"

failed=()
for s in "${sanitizers[@]}"; do
    scratch=".build-${s:0:1}san"
    started=$SECONDS
    pmp_log "$s sanitizer: swift build --build-tests --sanitize=$s --scratch-path $scratch"
    if ! swift build --build-tests --sanitize="$s" --scratch-path "$scratch"; then
        pmp_log "$s sanitizer: build FAILED after $((SECONDS - started)) s"
        failed+=("$s (build)")
        continue
    fi
    built=$SECONDS
    pmp_log "$s sanitizer: built in $((built - started)) s; swift test --skip-build --sanitize=$s $*"
    # The gunicorn test runs PROM_MULTIPROC_RELEASE_CLI, the static release build in the plain
    # run; here it runs this sanitizer's CLI instead, so that its children are checked too.
    bin_dir="$(swift build --show-bin-path --sanitize="$s" --scratch-path "$scratch")"
    status=0
    PROM_MULTIPROC_RELEASE_CLI="$bin_dir/prom-multiproc-cli" \
        swift test --skip-build --sanitize="$s" --scratch-path "$scratch" "$@" || status=$?
    pmp_log "$s sanitizer: build $((built - started)) s, tests $((SECONDS - built)) s, exit $status"
    [[ $status -eq 0 ]] || failed+=("$s")
done

if [[ ${#failed[@]} -gt 0 ]]; then
    pmp_log "FAILED under: ${failed[*]}"
    exit 1
fi
pmp_log "passed under: ${sanitizers[*]}"
