#!/usr/bin/env bash
# Builds and tests every package under Integrations/ (each a separate package that depends on
# the core by path and on other Swift packages, which the core must not):
#
#   bash scripts/integrations.sh                 # every package: build with tests, then test
#   bash scripts/integrations.sh --filter Foo    # arguments go to each `swift test`
#
# For each Integrations/<Name>/Package.swift: `swift build --build-tests --package-path DIR`,
# then `swift test --package-path DIR "$@"` when the package has a Tests/ folder (a package
# without tests, such as an example app, is only built; `swift test` refuses a package with
# no test target). Every package is tried even when an earlier one failed; the script then
# names the failures and exits 1. Called by scripts/test.sh as an extra check.
#
# The tests use the external tools of scripts/setup.sh (Integrations/HummingbirdExample: wrk
# and a real Prometheus), named by its PROM_MULTIPROC_* variables: scripts/test.sh exports
# them; run on its own, this script runs setup.sh and sources them itself.
set -euo pipefail

PMP_SCRIPT=integrations
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"
pmp_ensure_swift_on_path

# Tests spawn children that may crash on purpose; the backtracer would make them slow or hang.
export SWIFT_BACKTRACE=enable=no

if [[ -z "${PROM_MULTIPROC_WRK:-}" || -z "${PROM_MULTIPROC_PROMETHEUS:-}" ]]; then
    pmp_log "PROM_MULTIPROC_* not set: running scripts/setup.sh"
    bash "$PMP_ROOT/scripts/setup.sh" >/dev/null
    # shellcheck source=/dev/null
    source "$PMP_ENV_FILE"
fi

shopt -s nullglob
manifests=(Integrations/*/Package.swift)
if [[ ${#manifests[@]} -eq 0 ]]; then
    pmp_die "no package under Integrations/ (expected Integrations/<Name>/Package.swift)"
fi

failed=()
for manifest in "${manifests[@]}"; do
    dir="$(dirname "$manifest")"
    started=$SECONDS
    pmp_log "$dir: swift build --build-tests"
    if ! swift build --build-tests --package-path "$dir"; then
        pmp_log "$dir: BUILD FAILED ($((SECONDS - started)) s)"
        failed+=("$dir (build)")
        continue
    fi
    if [[ -d "$dir/Tests" ]]; then
        pmp_log "$dir: swift test $*"
        if ! swift test --package-path "$dir" "$@"; then
            pmp_log "$dir: TESTS FAILED ($((SECONDS - started)) s)"
            failed+=("$dir (test)")
            continue
        fi
    else
        pmp_log "$dir: no Tests/ folder, built only"
    fi
    pmp_log "$dir: passed ($((SECONDS - started)) s)"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    pmp_log "FAILED: ${failed[*]}"
    exit 1
fi
pmp_log "all ${#manifests[@]} integration package(s) passed"
