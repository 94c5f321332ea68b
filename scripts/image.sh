#!/usr/bin/env bash
# Build the operator image for real, without a container engine or a registry:
#
#   bash scripts/image.sh            (make image)
#
# 1. A base root filesystem from Debian's packages (debootstrap --variant=minbase
#    bookworm + python3 3.11), laid out like the official python:3.11-slim image the
#    Dockerfile names: a pip-managed interpreter on /usr/local/bin (a venv at /usr/local),
#    so that the Dockerfile runs unchanged. Committed as the local image $BASE_IMAGE.
# 2. The project's Dockerfile built against it with buildah (storage driver vfs,
#    isolation chroot): --build-arg PYTHON_IMAGE=$BASE_IMAGE. Tagged $IMAGE.
#
# buildah's storage lives in the component cache, not in the system's
# /var/lib/containers: $RIGHTSIZER_CACHE/containers. The base rootfs is cached there too
# (rebuilt with RIGHTSIZER_IMAGE_REBASE=1). tests/integration/test_image.py checks the
# result (user, no pip/compilers/package manager, size) and runs its entrypoint from the
# image's own filesystem against the sandbox. Needs root, buildah and debootstrap
# (Debian packages; .ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}"
SUITE=bookworm
MIRROR="${RIGHTSIZER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="${RIGHTSIZER_BASE_IMAGE:-localhost/rightsizer-base:$SUITE-python3.11}"
IMAGE="${RIGHTSIZER_IMAGE:-localhost/rightsizer:dev}"
BASE_TAR="$CACHE/image-base/$SUITE-python3.11.tar"
STORE=(--root "$CACHE/containers/storage" --runroot "$CACHE/containers/run" --storage-driver vfs)

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, buildah with vfs storage)"
command -v buildah >/dev/null || die "buildah missing: apt-get install buildah"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
mkdir -p "$CACHE/image-base" "$CACHE/containers"

t0=$SECONDS
# ------------------------------------------------------------------ 1. the base
if [[ ! -s "$BASE_TAR" || "${RIGHTSIZER_IMAGE_REBASE:-0}" == 1 ]]; then
    root="$(mktemp -d "$CACHE/image-base/rootfs.XXXXXX")"
    trap 'rm -rf "$root"' EXIT
    log "debootstrap --variant=minbase $SUITE + python3 into $root"
    mkdir -p "$CACHE/image-base/debs"
    debootstrap --variant=minbase --include=python3,python3-venv \
        --cache-dir="$CACHE/image-base/debs" "$SUITE" "$root" "$MIRROR" >&2
    # The python image's layout: /usr/local/bin/python and pip, pip-managed (uninstallable
    # by the Dockerfile's final stage); Debian's own python3 stays underneath.
    chroot "$root" /usr/bin/python3 -m venv /usr/local
    chroot "$root" /usr/local/bin/python -c 'import sys, pip; print(sys.version)' >&2
    # Package lists and caches are not part of a base (the package database stays: image
    # scanners read /var/lib/dpkg/status).
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
           "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar --numeric-owner --xattrs -C "$root" -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"; trap - EXIT
    buildah "${STORE[@]}" rmi --force "$BASE_IMAGE" >/dev/null 2>&1 || true
    log "base rootfs: $(du -h "$BASE_TAR" | cut -f1) ($((SECONDS - t0)) s)"
fi
if ! buildah "${STORE[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    ctr="$(buildah "${STORE[@]}" from scratch)"
    buildah "${STORE[@]}" add "$ctr" "$BASE_TAR" / >/dev/null
    buildah "${STORE[@]}" config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python "$ctr"
    buildah "${STORE[@]}" commit --rm "$ctr" "$BASE_IMAGE" >/dev/null
    log "committed $BASE_IMAGE"
fi

# ------------------------------------------------------------------ 2. the Dockerfile
t1=$SECONDS
# The builder stage installs wheels from PyPI: its pip must trust what pip here trusts
# (e.g. a TLS-inspecting proxy's CA). This machine's CA bundle and a pip.conf naming it
# are mounted for the RUN steps only (buildah bud -v): never copied into a layer, and the
# final stage copies nothing but /opt/rightsizer from the builder.
ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
[[ -r "$ca" ]] || die "no CA bundle for pip at $ca (set PIP_CERT)"
pipconf="$(mktemp)"; trap 'rm -f "$pipconf"' EXIT
printf '[global]\ncert = /run/build-ca.pem\n' >"$pipconf"
log "buildah bud Dockerfile (PYTHON_IMAGE=$BASE_IMAGE) -> $IMAGE"
buildah "${STORE[@]}" bud --isolation chroot --pull-never \
    -v "$ca:/run/build-ca.pem:ro" -v "$pipconf:/etc/pip.conf:ro" \
    --build-arg PYTHON_IMAGE="$BASE_IMAGE" -t "$IMAGE" -f Dockerfile . >&2
buildah "${STORE[@]}" rmi --prune >/dev/null 2>&1 || true
log "built $IMAGE in $((SECONDS - t1)) s (total $((SECONDS - t0)) s)"
buildah "${STORE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" >&2
