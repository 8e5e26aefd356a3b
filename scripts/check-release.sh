#!/usr/bin/env bash
# Proves that a release archive of scripts/release.sh runs on a machine without Swift:
#
#   bash scripts/check-release.sh dist/prom-multiproc-cli-<version>-linux-<arch>.tar.gz
#
# 1. The checksum file beside the archive matches, and the archive holds one executable,
#    prom-multiproc-cli (unpacked into .build-static/checked/, emptied first).
# 2. Its dynamic section (readelf -d) needs no Swift library: no libswift*, libFoundation*,
#    lib_Foundation*, libdispatch, libBlocksRuntime; in fact nothing beyond the C and C++ base
#    of the system (libc, libm, libstdc++, libgcc_s, the dynamic loader, and zlib, which
#    every Linux distribution installs as a required package), and no absolute
#    RUNPATH that could find a toolchain on this machine only.
# 3. It runs with an empty environment (env -i, PATH=/usr/bin:/bin: no toolchain on PATH, no
#    LD_LIBRARY_PATH): `--help`, and a real `collect` of a small directory written by
#    prometheus_client (the interop venv of scripts/setup.sh, PROM_MULTIPROC_PYTHON), compared
#    with the expected exposition byte for byte.
# 4. The same `collect` once more with the toolchain's runtime libraries hidden (an empty
#    tmpfs over <toolchain>/usr/lib/swift/linux in a private mount namespace), so even a
#    dlopen of a Swift library would fail. This needs root (or CAP_SYS_ADMIN): under CI=true
#    its absence is an error, otherwise a warning. Skipped when no Swift is installed.
#
# Any missing tool fails the check. Logs go to stderr; stdout is one line, the absolute path
# of the checked binary (scripts/test.sh hands it to the gunicorn test).
set -euo pipefail

PMP_SCRIPT=check-release
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PRODUCT=prom-multiproc-cli
[[ $# -eq 1 && "$1" != -* ]] || pmp_die "usage: bash scripts/check-release.sh ARCHIVE.tar.gz"
archive="$(readlink -f -- "$1")" || pmp_die "no such archive: $1"
[[ -f "$archive" ]] || pmp_die "no such archive: $1"
[[ -f "$archive.sha256" ]] || pmp_die "no checksum file beside the archive: $archive.sha256"

# readelf is binutils' (scripts/setup.sh installs it); the rest is coreutils, tar and
# util-linux, on every Debian. None of them is optional: a check that skips proves nothing.
for tool in readelf sha256sum tar env unshare; do
    command -v "$tool" >/dev/null 2>&1 ||
        pmp_die "$tool not found on PATH (readelf: apt-get install binutils, or run scripts/setup.sh)"
done
PYTHON="${PROM_MULTIPROC_PYTHON:-$PMP_ROOT/.venv-interop/bin/python}"
[[ -x "$PYTHON" ]] ||
    pmp_die "no Python with prometheus_client at $PYTHON: run scripts/setup.sh (or set PROM_MULTIPROC_PYTHON)"

failures=0
fail() {
    printf '[%s] FAILED: %s\n' "$PMP_SCRIPT" "$*" >&2
    failures=$((failures + 1))
}

# ---------------------------------------------------------------------------------------------
# 1. Checksum and contents.
# ---------------------------------------------------------------------------------------------
(cd "$(dirname "$archive")" && sha256sum --check --strict --quiet "$(basename "$archive").sha256" >&2) ||
    pmp_die "checksum mismatch: $archive against $archive.sha256"
members="$(tar -tzf "$archive")" || pmp_die "cannot list $archive"
[[ "$members" == "$PRODUCT" ]] ||
    pmp_die "$archive should hold exactly '$PRODUCT', holds: $(tr '\n' ' ' <<<"$members")"

checked="$PMP_ROOT/.build-static/checked"
rm -rf "$checked"
mkdir -p "$checked"
tar -xzf "$archive" -C "$checked" || pmp_die "cannot unpack $archive"
binary="$checked/$PRODUCT"
[[ -f "$binary" && -x "$binary" && ! -L "$binary" ]] || pmp_die "$PRODUCT in $archive is not an executable file"
pmp_log "checksum ok; $(basename "$archive"): $PRODUCT, $(stat -c %s "$binary") bytes"

# ---------------------------------------------------------------------------------------------
# 2. What the dynamic loader must find (readelf -d), and the C library versions it needs.
# ---------------------------------------------------------------------------------------------
dynamic="$(LC_ALL=C readelf -d --wide "$binary")" || pmp_die "readelf -d $binary failed"
needed="$(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<<"$dynamic")"
[[ -n "$needed" ]] || pmp_die "readelf -d found no NEEDED entry in $binary (not a dynamic executable?)"
pmp_log "NEEDED: $(paste -sd ' ' <<<"$needed")"
while IFS= read -r lib; do
    case "$lib" in
        libswift* | libFoundation* | lib_Foundation* | libCoreFoundation* | libdispatch* | libBlocksRuntime*)
            fail "needs the Swift runtime library $lib: it was not linked statically" ;;
        libc.so.* | libm.so.* | libstdc++.so.* | libgcc_s.so.* | ld-linux*.so.* | \
            libpthread.so.* | libdl.so.* | librt.so.* | libutil.so.* | libz.so.*) ;;
        *) fail "needs $lib, which is not part of a base Linux system" ;;
    esac
done <<<"$needed"
runpath="$(sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]$/\2/p' <<<"$dynamic" | tr '\n' ':')"
IFS=: read -r -a runpath_entries <<<"$runpath"
for entry in "${runpath_entries[@]}"; do
    # shellcheck disable=SC2016  # the literal $ORIGIN of the dynamic loader
    [[ -z "$entry" || "$entry" == '$ORIGIN'* ]] ||
        fail "RUNPATH/RPATH entry $entry: libraries could come from this machine only"
done
versions="$(LC_ALL=C readelf -V --wide "$binary" | grep -o 'Name: \(GLIBC\|GLIBCXX\)_[0-9.]*' | cut -d' ' -f2 | sort -Vu)" || true
newest() { grep "^$1_" <<<"$versions" | tail -1 | grep . || echo "no $1_ version"; }
pmp_log "needs at least: $(newest GLIBC) (glibc), $(newest GLIBCXX) (libstdc++)"

# ---------------------------------------------------------------------------------------------
# 3. Runs with nothing of the toolchain in the environment.
# ---------------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/pmp-check-release-XXXXXX")"
trap 'rm -rf "$work"' EXIT
bare=(env -i PATH=/usr/bin:/bin)

help_status=0
help_out="$(cd "$work" && "${bare[@]}" "$binary" --help 2>&1)" || help_status=$?
if [[ $help_status -ne 0 || "$help_out" != *"usage: $PRODUCT"* ]]; then
    fail "--help with an empty environment: exit $help_status: $(head -c 2000 <<<"$help_out")"
else
    pmp_log "--help ok (env -i PATH=/usr/bin:/bin)"
fi

# Two Python processes (two pids, two files per kind), as a gunicorn pool would leave them.
mkdir "$work/metrics"
for _ in 1 2; do
    PROMETHEUS_MULTIPROC_DIR="$work/metrics" "$PYTHON" -c '
from prometheus_client import Counter, Histogram
Counter("release_check_jobs", "Jobs done.", ["queue"]).labels("default").inc(2)
Histogram("release_check_seconds", "Job time.", buckets=[0.1, 1]).observe(0.5)
' || pmp_die "$PYTHON could not write the sample metrics (prometheus_client missing? run scripts/setup.sh)"
done
expected='# HELP release_check_jobs_total Jobs done.
# TYPE release_check_jobs_total counter
release_check_jobs_total{queue="default"} 4.0
# HELP release_check_seconds Job time.
# TYPE release_check_seconds histogram
release_check_seconds_bucket{le="0.1"} 0.0
release_check_seconds_bucket{le="1.0"} 2.0
release_check_seconds_bucket{le="+Inf"} 2.0
release_check_seconds_count 2.0
release_check_seconds_sum 1.0'

# Runs `collect` with the command prefix "$@" and compares its output; $1 of the message.
check_collect() {
    local what="$1" status=0 got
    shift
    got="$(cd "$work" && "$@" "$binary" collect --dir "$work/metrics" --no-self-metrics 2>"$work/stderr")" || status=$?
    if [[ $status -ne 0 ]]; then
        fail "collect ($what): exit $status: $(head -c 2000 "$work/stderr")"
    elif [[ "$got" != "$expected" ]]; then
        fail "collect ($what): unexpected output:
$got
--- expected:
$expected"
    else
        pmp_log "collect ok ($what): $(grep -c . <<<"$got") lines as expected"
    fi
}
check_collect "env -i PATH=/usr/bin:/bin" "${bare[@]}"

# ---------------------------------------------------------------------------------------------
# 4. Runs with the toolchain's runtime libraries out of reach.
# ---------------------------------------------------------------------------------------------
swift_path="$(command -v swift 2>/dev/null || true)"
[[ -n "$swift_path" || ! -x /opt/swift/usr/bin/swift ]] || swift_path=/opt/swift/usr/bin/swift
if [[ -z "$swift_path" ]]; then
    pmp_log "no Swift toolchain on this machine: nothing to hide, the runs above are the proof"
else
    runtime_dir="$(cd "$(dirname "$(readlink -f "$swift_path")")/../lib/swift/linux" 2>/dev/null && pwd -P)" ||
        pmp_die "cannot find the Swift runtime libraries next to $swift_path (expected ../lib/swift/linux)"
    # The mount lives in a new mount namespace only: nothing changes for other processes.
    # shellcheck disable=SC2016  # $1 and $@ are the inner shell's
    hidden=(unshare --mount --propagation private -- sh -c \
        'mount -t tmpfs -o size=64k,mode=755 tmpfs "$1" && [ ! -e "$1/libswiftCore.so" ] && shift && exec "$@"' \
        sh "$runtime_dir")
    if "${hidden[@]}" true 2>"$work/unshare-stderr"; then
        check_collect "env -i, $runtime_dir hidden" "${hidden[@]}" "${bare[@]}"
    else
        reason="cannot hide $runtime_dir in a private mount namespace (needs root or CAP_SYS_ADMIN): $(head -c 500 "$work/unshare-stderr")"
        if pmp_in_ci; then fail "$reason"; else pmp_warn "$reason
    The runs with an empty environment passed; this stronger one was not done."; fi
    fi
fi

if [[ $failures -gt 0 ]]; then
    pmp_die "$failures check(s) failed for $archive"
fi
pmp_log "all checks passed: $binary needs no Swift library at run time"
echo "$binary"
