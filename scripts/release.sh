#!/usr/bin/env bash
# Builds prom-multiproc-cli for machines without Swift, and packs it:
#
#   bash scripts/release.sh                     # dist/prom-multiproc-cli-<version>-linux-<arch>.tar.gz
#   bash scripts/release.sh --version 1.2.0     # the version in the name (default: git describe)
#   bash scripts/release.sh --out DIR           # another output folder (default: dist/)
#
# The binary is built in release mode with the Swift runtime, Foundation (with its ICU data),
# Dispatch and the BlocksRuntime linked statically (`--static-swift-stdlib`; on Swift 6.3 for
# Linux this alone links Foundation statically too, no -Xlinker flags needed), into its own
# scratch folder .build-static, so the ordinary .build is untouched. What remains dynamic is
# the C and C++ base of the system: libc, libm, libstdc++, libgcc_s. The binary then needs the
# glibc and libstdc++ versions of the build machine or newer: build on the oldest distribution
# you deploy to. scripts/check-release.sh proves all of this for an archive.
#
# The archive holds the single file `prom-multiproc-cli` (so `tar -xzf ... -C /usr/local/bin`
# installs it); the checksum file beside it is `sha256sum` output with the archive's bare
# name, for `sha256sum -c` in the folder that holds both.
#
# Logs go to stderr; stdout is one line, the archive's absolute path.
set -euo pipefail

PMP_SCRIPT=release
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PMP_ROOT"

PRODUCT=prom-multiproc-cli
SCRATCH="$PMP_ROOT/.build-static"
version=""
out="$PMP_ROOT/dist"

usage() {
    sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --version) [[ $# -ge 2 ]] || usage; version="$2"; shift 2 ;;
        --out) [[ $# -ge 2 ]] || usage; out="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) printf '[release] unknown argument: %s\n' "$1" >&2; usage ;;
    esac
done

if [[ -z "$version" ]]; then
    # A tag when there is one (v1.2.0-3-gabc1234), else the short commit; `-dirty` when the
    # work tree has uncommitted changes, so such an archive cannot pass for the commit's.
    version="$(git -C "$PMP_ROOT" describe --tags --always --dirty 2>/dev/null)" ||
        pmp_die "no version: not a git checkout (or git is missing); pass --version VERSION"
fi
[[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
    pmp_die "version '$version' is not usable in a file name (letters, digits, . _ + - only)"

pmp_ensure_swift_on_path
for tool in tar gzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || pmp_die "$tool not found on PATH"
done

# ---------------------------------------------------------------------------------------------
# Build.
# ---------------------------------------------------------------------------------------------
build_args=(-c release --static-swift-stdlib --product "$PRODUCT" --scratch-path "$SCRATCH")
pmp_log "swift build ${build_args[*]#"$PMP_ROOT"/} ($(swift --version 2>&1 | head -1))"
started=$SECONDS
swift build "${build_args[@]}" >&2 || pmp_die "swift build ${build_args[*]} failed (see above)"
pmp_log "built in $((SECONDS - started)) s"
bin_dir="$(swift build "${build_args[@]}" --show-bin-path)" || pmp_die "swift build --show-bin-path failed"
binary="$bin_dir/$PRODUCT"
[[ -x "$binary" ]] || pmp_die "the build reported success but $binary is missing"

# The architecture of the build (the first part of the target triple: x86_64, aarch64).
triple="$(basename "$(dirname "$bin_dir")")"
arch="${triple%%-*}"
[[ "$triple" == *-linux-* && -n "$arch" ]] ||
    pmp_die "unexpected build folder $bin_dir (expected .../<arch>-unknown-linux-gnu/release)"

# ---------------------------------------------------------------------------------------------
# Pack: write under temporary names, then rename, so an interrupted run never leaves an
# archive beside a checksum of another one.
# ---------------------------------------------------------------------------------------------
name="$PRODUCT-$version-linux-$arch.tar.gz"
mkdir -p "$out" || pmp_die "cannot create $out"
out="$(cd "$out" && pwd -P)"
staging="$(mktemp -d "$out/.staging-XXXXXX")"
trap 'rm -rf "$staging"' EXIT

cp "$binary" "$staging/$PRODUCT"
chmod 755 "$staging/$PRODUCT"
# Root-owned entries with no user names of this machine; gzip -n leaves out name and time.
tar -C "$staging" --owner=0 --group=0 --numeric-owner -cf - "$PRODUCT" | gzip -n -6 >"$staging/$name" ||
    pmp_die "packing $name failed"
(cd "$staging" && sha256sum "$name" >"$name.sha256") || pmp_die "sha256sum $name failed"
mv -f "$staging/$name" "$out/$name"
mv -f "$staging/$name.sha256" "$out/$name.sha256"

pmp_log "binary: $(stat -c %s "$binary") bytes; archive: $(stat -c %s "$out/$name") bytes; sha256 $(cut -d' ' -f1 "$out/$name.sha256")"
pmp_log "archive: $out/$name (checksum beside it: $name.sha256)"
echo "$out/$name"
