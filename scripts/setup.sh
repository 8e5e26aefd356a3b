#!/usr/bin/env bash
# Installs and prepares everything the test suite needs, then describes it as environment
# variables. Idempotent, and fast when everything is already in place.
#
#   bash scripts/setup.sh                # logs on stderr, `export` lines on stdout
#   eval "$(bash scripts/setup.sh)"      # use the tools from an interactive shell
#
# It also writes the same `export` lines to .build/test-env.sh (scripts/test.sh sources it).
#
# What it provides:
#   PROM_MULTIPROC_PYTHON      <repo>/.venv-interop/bin/python with the pins of
#                              scripts/python/requirements-interop.txt (prometheus_client, gunicorn,
#                              protobuf)
#   PROM_MULTIPROC_GUNICORN    <repo>/.venv-interop/bin/gunicorn
#   PROM_MULTIPROC_PROMTOOL    promtool        (Debian package prometheus)
#   PROM_MULTIPROC_PROMETHEUS  prometheus      (Debian package prometheus)
#   PROM_MULTIPROC_PUSHGATEWAY prometheus-pushgateway (Debian package prometheus-pushgateway)
#   PROM_MULTIPROC_WRK         wrk             (Debian package wrk)
#   PROM_MULTIPROC_HYPERFINE   hyperfine       (Debian package hyperfine)
#   PROM_MULTIPROC_PROTOC      protoc          (Debian package protobuf-compiler), an independent
#                              reader of our protobuf exposition
#   PROM_MULTIPROC_CLIENT_MODEL the directory holding io/prometheus/client/metrics.proto as
#                              prometheus/client_model 0.3.0 ships it (Debian package
#                              golang-github-prometheus-client-model-dev): the schema
#                              `protoc --decode` reads our bytes with
#   (no variable)              readelf         (Debian package binutils, for scripts/check-release.sh)
#   PROM_MULTIPROC_TINY_TMPFS  a directory on a 1 MiB tmpfs (for the full-disk test), emptied
#                              on every run. If it cannot be mounted: an error under CI=true,
#                              a loud warning otherwise (and the variable stays unset, so the
#                              test that needs it fails and says why).
#
# Any failure is loud and makes the script exit non-zero.
set -euo pipefail

PMP_SCRIPT=setup
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_seconds=$SECONDS

# ---------------------------------------------------------------------------------------------
# 1. Debian packages: prometheus (with promtool), prometheus-pushgateway, wrk, hyperfine,
#    binutils (readelf), protobuf-compiler (protoc), golang-github-prometheus-client-model-dev
#    (metrics.proto).
# ---------------------------------------------------------------------------------------------
CLIENT_MODEL=/usr/share/gocode/src/github.com/prometheus/client_model
APT_PACKAGES=(prometheus prometheus-pushgateway wrk hyperfine binutils protobuf-compiler golang-github-prometheus-client-model-dev)
# Commands, and files (absolute paths) that a package installs.
APT_TOOLS=(promtool prometheus prometheus-pushgateway wrk hyperfine readelf protoc "$CLIENT_MODEL/io/prometheus/client/metrics.proto")

missing_tools() {
    local tool missing=()
    for tool in "$@"; do
        if [[ "$tool" == /* ]]; then
            [[ -e "$tool" ]] || missing+=("$tool")
        else
            command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
        fi
    done
    echo "${missing[*]:-}"
}

# apt-get install with service start-up disabled: on a machine that runs systemd, the
# prometheus packages would otherwise start servers on :9090 and :9091, which the end-to-end
# tests must be free to use. A policy-rc.d that already exists is left alone.
apt_install() {
    local policy=/usr/sbin/policy-rc.d ours=0 status=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# temporary, from swift-prom-multiproc scripts/setup.sh\nexit 101\n' |
            pmp_as_root tee "$policy" >/dev/null
        pmp_as_root chmod 755 "$policy"
        ours=1
    fi
    pmp_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o Dpkg::Use-Pty=0 "$@" >&2 || status=$?
    if [[ $ours -eq 1 ]]; then pmp_as_root rm -f "$policy"; fi
    return $status
}

apt_updated=0
apt_update_once() {
    if [[ $apt_updated -eq 0 ]]; then
        pmp_log "apt-get update"
        pmp_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -o Acquire::Retries=3 >&2 ||
            pmp_die "apt-get update failed (see above)"
        apt_updated=1
    fi
}

missing="$(missing_tools "${APT_TOOLS[@]}")"
if [[ -n "$missing" ]]; then
    pmp_log "missing tools: $missing; installing Debian packages: ${APT_PACKAGES[*]}"
    apt_update_once
    apt_install "${APT_PACKAGES[@]}" ||
        pmp_die "apt-get install ${APT_PACKAGES[*]} failed (see above)"
    missing="$(missing_tools "${APT_TOOLS[@]}")"
    [[ -z "$missing" ]] ||
        pmp_die "still missing after apt-get install ${APT_PACKAGES[*]}: $missing"
    pmp_log "installed: ${APT_PACKAGES[*]}"
else
    pmp_log "tools present: ${APT_TOOLS[*]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. Python virtual environment with the pinned prometheus_client and gunicorn.
# ---------------------------------------------------------------------------------------------
VENV="$PMP_ROOT/.venv-interop"
REQUIREMENTS="$PMP_ROOT/scripts/python/requirements-interop.txt"
[[ -f "$REQUIREMENTS" ]] || pmp_die "missing $REQUIREMENTS"
BASE_PYTHON="${PMP_BASE_PYTHON:-$(command -v python3 || true)}"
[[ -n "$BASE_PYTHON" ]] || pmp_die "python3 not found on PATH (set PMP_BASE_PYTHON to a Python 3 interpreter)"

venv_works() {
    [[ -x "$VENV/bin/python" ]] &&
        "$VENV/bin/python" -c 'import sys, pip; sys.exit(0 if sys.prefix != sys.base_prefix else 1)' \
            >/dev/null 2>&1
}

# Exit 0 when every `name==version` line of the requirements is installed at that version.
pins_satisfied() {
    "$VENV/bin/python" - "$REQUIREMENTS" <<'PY' >/dev/null 2>&1
import re, sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*(\S+)", line)
    if not m:
        sys.exit(1)  # not an exact pin: let pip decide
    name, version = m.groups()
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
import prometheus_client, gunicorn, google.protobuf  # noqa: E401,F401  (importable, not just recorded)
PY
}

create_venv() {
    pmp_log "creating $VENV with $BASE_PYTHON ($("$BASE_PYTHON" --version 2>&1))"
    rm -rf "$VENV"
    if ! "$BASE_PYTHON" -m venv "$VENV" >&2; then
        # Debian's system python3 needs the python3-venv package for `-m venv` (ensurepip).
        pmp_log "python3 -m venv failed; installing python3-venv and retrying"
        rm -rf "$VENV"
        apt_update_once
        apt_install python3-venv || pmp_die "apt-get install python3-venv failed (see above)"
        "$BASE_PYTHON" -m venv "$VENV" >&2 || pmp_die "$BASE_PYTHON -m venv $VENV failed (see above)"
    fi
    venv_works || pmp_die "the new virtual environment $VENV does not work"
}

if ! venv_works; then
    if [[ -e "$VENV" ]]; then pmp_log "$VENV is broken; re-creating it"; fi
    create_venv
fi
if pins_satisfied; then
    pmp_log "venv ok: $(tr '\n' ' ' < <(grep -Ev '^\s*(#|$)' "$REQUIREMENTS"))"
else
    pmp_log "pip install -r ${REQUIREMENTS#"$PMP_ROOT"/}"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        -r "$REQUIREMENTS" >&2 || pmp_die "pip install -r $REQUIREMENTS failed (see above)"
    pins_satisfied || pmp_die "after pip install, $VENV still lacks the pins of $REQUIREMENTS"
fi
[[ -x "$VENV/bin/gunicorn" ]] || pmp_die "$VENV/bin/gunicorn is missing after pip install"

# ---------------------------------------------------------------------------------------------
# 3. A tiny tmpfs for the full-disk test.
# ---------------------------------------------------------------------------------------------
# One per checkout (the name carries a hash of the repository path), so concurrent runs from
# different clones never fill each other's disk. Set PMP_TINY_TMPFS_DIR to choose the place.
TINY_SIZE_KIB=1024
root_hash="$(printf '%s' "$PMP_ROOT" | sha256sum | cut -c1-10)"
TINY="${PMP_TINY_TMPFS_DIR:-/tmp/pmp-tiny-tmpfs-$root_hash}"

# Exit 0 when $1 is a mount point of a tmpfs no larger than 4 MiB.
is_tiny_tmpfs() {
    mountpoint -q "$1" 2>/dev/null &&
        [[ "$(stat -f -c %T "$1")" == "tmpfs" ]] &&
        (($(stat -f -c '%b * %S' "$1") <= 4 * 1024 * 1024))
}

tiny_ok=0
tiny_error=""
if is_tiny_tmpfs "$TINY"; then
    tiny_ok=1
elif mountpoint -q "$TINY" 2>/dev/null; then
    tiny_error="$TINY is already a mount point, but not a tmpfs of at most 4 MiB; unmount it or set PMP_TINY_TMPFS_DIR"
elif ! mkdir_out="$(mkdir -p "$TINY" 2>&1)"; then
    tiny_error="cannot create $TINY: $mkdir_out"
else
    mount_status=0
    mount_out="$(pmp_as_root mount -t tmpfs -o "size=${TINY_SIZE_KIB}k,mode=1777" tmpfs "$TINY" 2>&1)" ||
        mount_status=$?
    if [[ $mount_status -eq 0 ]] && is_tiny_tmpfs "$TINY"; then
        tiny_ok=1
        pmp_log "mounted a ${TINY_SIZE_KIB} KiB tmpfs at $TINY"
    else
        if [[ $mount_status -ne 0 ]]; then
            tiny_error="cannot mount a ${TINY_SIZE_KIB} KiB tmpfs at $TINY (mount exit $mount_status; it needs root or CAP_SYS_ADMIN): ${mount_out:-no message}"
        else
            tiny_error="mounted a tmpfs at $TINY, but it is not a tmpfs of at most 4 MiB: $(df -k "$TINY" | tail -1)"
        fi
        rmdir "$TINY" 2>/dev/null || true
    fi
fi
if [[ $tiny_ok -eq 1 ]]; then
    # Start every run with an empty disk: a crashed earlier run must not pre-fill it.
    find "$TINY" -mindepth 1 -delete
    pmp_log "tiny tmpfs ready: $TINY ($(df -k --output=size "$TINY" | tail -1 | tr -d ' ') KiB)"
elif pmp_in_ci; then
    pmp_die "$tiny_error"
else
    pmp_warn "$tiny_error
    PROM_MULTIPROC_TINY_TMPFS stays unset: the full-disk test will FAIL. Run as root (or with
    sudo rights) to get it, or set PMP_TINY_TMPFS_DIR to an existing small tmpfs mount."
fi

# ---------------------------------------------------------------------------------------------
# 4. Describe the environment: stdout and .build/test-env.sh.
# ---------------------------------------------------------------------------------------------
env_lines() {
    printf 'export PROM_MULTIPROC_PYTHON=%q\n' "$VENV/bin/python"
    printf 'export PROM_MULTIPROC_GUNICORN=%q\n' "$VENV/bin/gunicorn"
    printf 'export PROM_MULTIPROC_PROMTOOL=%q\n' "$(command -v promtool)"
    printf 'export PROM_MULTIPROC_PROMETHEUS=%q\n' "$(command -v prometheus)"
    printf 'export PROM_MULTIPROC_PUSHGATEWAY=%q\n' "$(command -v prometheus-pushgateway)"
    printf 'export PROM_MULTIPROC_WRK=%q\n' "$(command -v wrk)"
    printf 'export PROM_MULTIPROC_HYPERFINE=%q\n' "$(command -v hyperfine)"
    printf 'export PROM_MULTIPROC_PROTOC=%q\n' "$(command -v protoc)"
    printf 'export PROM_MULTIPROC_CLIENT_MODEL=%q\n' "$CLIENT_MODEL"
    if [[ $tiny_ok -eq 1 ]]; then
        printf 'export PROM_MULTIPROC_TINY_TMPFS=%q\n' "$TINY"
    fi
}

mkdir -p "$(dirname "$PMP_ENV_FILE")"
env_tmp="$PMP_ENV_FILE.tmp.$$"
{
    echo "# Written by scripts/setup.sh; sourced by scripts/test.sh."
    env_lines
} >"$env_tmp"
mv -f "$env_tmp" "$PMP_ENV_FILE"
env_lines
pmp_log "environment written to ${PMP_ENV_FILE#"$PMP_ROOT"/} (setup took $((SECONDS - start_seconds)) s)"
