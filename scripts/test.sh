#!/usr/bin/env bash
# The whole test suite in one command, on a fresh machine or a developer's:
#
#   bash scripts/test.sh                    # setup, build, every test, then the extra checks
#   bash scripts/test.sh --filter Foo       # arguments go to `swift test` (extra checks skipped)
#
# 1. scripts/setup.sh installs the external tools (Debian packages, the Python venv, a tiny
#    tmpfs) and writes .build/test-env.sh, which this script sources to export
#    PROM_MULTIPROC_* for the tests.
# 2. `swift build --build-tests`, then the statically linked release CLI (scripts/release.sh
#    into .build-static/test-dist, then scripts/check-release.sh, which proves it needs no
#    Swift library at run time); its path is exported as PROM_MULTIPROC_RELEASE_CLI for the
#    gunicorn test, so the deployment test runs the binary a Python server gets. This step
#    runs with arguments too; about 60 s from scratch on 2 cores, about 10 s when cached.
# 3. `swift test "$@"`. Swift Testing already runs tests in
#    parallel inside one process; `--parallel` only concerns XCTest, so it is not used. The
#    closing line `✔ Test run with N tests in M suites passed after ...` (or `✘ ... failed`)
#    is printed by `swift test` itself and is what CI reads.
# 4. The extra checks (see EXTRA CHECKS below) when `swift test` passed.
#
# Exit status: the build's when it fails, else `swift test`'s when it fails, else 1 when the
# release CLI or an extra check failed, else 0.
#
# Environment: PMP_EXTRA_CHECKS=1 runs the extra checks even with arguments, =0 never.
set -euo pipefail

PMP_SCRIPT=test
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

# Tests spawn children that may crash on purpose; the backtracer would make them slow or hang.
export SWIFT_BACKTRACE=enable=no

# ---------------------------------------------------------------------------------------------
# Setup: tools and environment.
# ---------------------------------------------------------------------------------------------
bash "$PMP_ROOT/scripts/setup.sh"
# shellcheck source=/dev/null
source "$PMP_ENV_FILE"

# ---------------------------------------------------------------------------------------------
# EXTRA CHECKS — later steps add their checks here, one `run_check` line each, e.g.
#
#   run_check "thread sanitizer"  swift test --sanitize=thread  --scratch-path .build-tsan
#   run_check "address sanitizer" swift test --sanitize=address --scratch-path .build-asan
#   run_check "soak (short)"      bash scripts/soak.sh --duration 120
#
# They run in this order after `swift test` passed, with the same environment (the
# PROM_MULTIPROC_* variables, SWIFT_BACKTRACE, the repository as working directory). Every
# check runs even when an earlier one failed; the script then exits 1 and names them.
# Keep the total CI time (90 minutes, 2 cores) in mind.
# ---------------------------------------------------------------------------------------------
extra_checks() {
    # The packages under Integrations/ (swift-metrics backend, examples) build against the
    # core's public API: run first, because it is the quickest sign that a change to the core
    # broke a user of that API, and it needs the core's own tests to have passed to mean
    # anything. An extra check rather than part of the main run, so that `test.sh --filter`
    # stays quick (from a fresh clone about 9 min on 2 cores, 7 of them building Hummingbird,
    # 25 s running its worker pool end to end under wrk and Prometheus; a few minutes when the
    # core changed, whose modules each package compiles again).
    run_check "integration packages" bash scripts/integrations.sh
    # Reliability (issue 7): libFuzzer + ASan on the file reader and key decoder (200,000
    # executions, at most 120 s; about 1 min with the build), then the whole suite under each
    # sanitizer (TSan about 3.5 min, ASan about 2.5 min on 2 cores with an incremental build;
    # add about 1.5 min each from scratch). See Fuzz/README.md, SECURITY.md.
    run_check "fuzz (short)"      bash scripts/fuzz.sh --runs 200000 --max-time 120
    run_check "thread sanitizer"  bash scripts/sanitizers.sh thread
    run_check "address sanitizer" bash scripts/sanitizers.sh address
    run_check "soak (60 s)"       bash scripts/soak.sh --duration 60
    # Compaction under pid reuse: prometheus_client and Swift workers killed and restarted
    # under pids just declared dead, compactors killed at every step (about 70 s). See
    # scripts/torture.sh; a longer run: bash scripts/torture.sh --duration 600.
    run_check "torture (60 s)"    bash scripts/torture.sh --duration 60
}

failed_checks=()
run_check() {
    local name="$1" status=0 started=$SECONDS
    shift
    pmp_log "check: $name: $*"
    "$@" || status=$?
    if [[ $status -eq 0 ]]; then
        pmp_log "check passed: $name ($((SECONDS - started)) s)"
    else
        pmp_log "check FAILED: $name (exit $status, $((SECONDS - started)) s)"
        failed_checks+=("$name")
    fi
}

# ---------------------------------------------------------------------------------------------
# Build and test.
# ---------------------------------------------------------------------------------------------
pmp_log "swift build --build-tests ($(swift --version 2>&1 | head -1))"
build_status=0
swift build --build-tests || build_status=$?
if [[ $build_status -ne 0 ]]; then
    pmp_log "swift build --build-tests FAILED (exit $build_status)"
    exit "$build_status"
fi

# The static release CLI, before `swift test` (the gunicorn test runs it). A failure does not
# stop the run: the gunicorn test then fails (CI) or falls back to the debug CLI with a
# warning, the other tests still report, and the script exits non-zero at the end.
release_cli() {
    local out="$PMP_ROOT/.build-static/test-dist" archive binary
    rm -rf "$out"  # one archive per run, not one per commit ever tested
    archive="$(bash "$PMP_ROOT/scripts/release.sh" --out "$out")" || return
    binary="$(bash "$PMP_ROOT/scripts/check-release.sh" "$archive")" || return
    export PROM_MULTIPROC_RELEASE_CLI="$binary"
}
unset PROM_MULTIPROC_RELEASE_CLI
run_check "static release CLI" release_cli

pmp_log "swift test $*"
test_status=0
swift test "$@" || test_status=$?
if [[ $test_status -ne 0 ]]; then
    pmp_log "swift test FAILED (exit $test_status)"
    exit "$test_status"
fi

run_extra="${PMP_EXTRA_CHECKS:-}"
if [[ -z "$run_extra" ]]; then
    if [[ $# -eq 0 ]]; then run_extra=1; else run_extra=0; fi
fi
if [[ "$run_extra" == "1" ]]; then
    extra_checks
else
    pmp_log "extra checks skipped (arguments given; PMP_EXTRA_CHECKS=1 runs them)"
fi
if [[ ${#failed_checks[@]} -gt 0 ]]; then
    pmp_log "FAILED checks: ${failed_checks[*]}"
    exit 1
fi
pmp_log "all passed"
