# Shared helpers for scripts/setup.sh and scripts/test.sh. Source it; do not run it.
# shellcheck shell=bash

# The repository root (the directory above scripts/), absolute.
PMP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Where setup.sh writes the environment the tests need (sourced by test.sh).
PMP_ENV_FILE="$PMP_ROOT/.build/test-env.sh"

# Messages go to stderr so that stdout of setup.sh stays a clean list of `export` lines.
pmp_log() { printf '[%s] %s\n' "${PMP_SCRIPT:-pmp}" "$*" >&2; }
pmp_warn() {
    printf '\n[%s] WARNING: %s\n\n' "${PMP_SCRIPT:-pmp}" "$*" >&2
}
pmp_die() {
    printf '\n[%s] ERROR: %s\n\n' "${PMP_SCRIPT:-pmp}" "$*" >&2
    exit 1
}

# Whether we run in CI (CI=true or CI=1): missing capabilities then fail instead of warn.
pmp_in_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }

# Runs a command as root: directly when we are root, otherwise through sudo (non-interactive
# when there is no terminal, so CI cannot hang on a password prompt).
pmp_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
    else
        pmp_log "need root for: $* (not root and no sudo)"
        return 1
    fi
}

# Puts the Swift toolchain on PATH when it is installed at /opt/swift but not on PATH.
pmp_ensure_swift_on_path() {
    if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null 2>&1 || pmp_die "swift not found on PATH (nor at /opt/swift/usr/bin)"
}
