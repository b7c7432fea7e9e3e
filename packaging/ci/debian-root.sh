#!/usr/bin/env bash
# packaging/ci/debian-root.sh SUITE: a Debian root file system of SUITE (debootstrap
# --variant=minbase, with systemd as PID 1), built once and cached; prints its path.
#
# CI uses one such root three ways: the .deb is installed into a copy of it with dpkg and a
# program of that root is locked (an older glibc than the build machine's), systemd boots in
# it (packaging/ci/systemd-unit.sh), and runc runs it as an OCI bundle (packaging/ci/oci-pod.sh).
# The cached root is never changed: each user mounts an overlay on it.
#
# Environment:
#   MEMLOCK_RUN_CI_CACHE  cache directory (default /var/cache/memlock-run-ci: it outlives the
#                         clone, so a second CI run on the same machine skips debootstrap)
#   DEBIAN_MIRROR         mirror (default: the first Debian mirror in /etc/apt/sources.list*)
# Needs root and debootstrap. Exit status 2 with the reason when the root cannot be built.
set -euo pipefail

die() {
    echo "debian-root.sh: $*" >&2
    exit 2
}
[ $# -eq 1 ] || die "usage: packaging/ci/debian-root.sh SUITE (bullseye, bookworm, ...)"
SUITE=$1
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"

CACHE=${MEMLOCK_RUN_CI_CACHE:-/var/cache/memlock-run-ci}
ROOTFS=$CACHE/$SUITE
if [ -z "${DEBIAN_MIRROR:-}" ]; then
    # deb822 (URIs: ...) or one-line (deb URL SUITE ...) sources; the first that serves Debian.
    DEBIAN_MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }')
    [ -n "$DEBIAN_MIRROR" ] || DEBIAN_MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }')
    [ -n "$DEBIAN_MIRROR" ] || die "no Debian mirror in /etc/apt/sources.list*: set DEBIAN_MIRROR=URL"
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.$SUITE.lock"
flock 9
if [ ! -x "$ROOTFS/lib/systemd/systemd" ]; then
    echo "debian-root.sh: debootstrap --variant=minbase $SUITE from $DEBIAN_MIRROR into $ROOTFS (about 2 minutes, once)" >&2
    rm -rf "$ROOTFS.tmp"
    started=$SECONDS
    if ! debootstrap --variant=minbase --include=systemd,systemd-sysv "$SUITE" "$ROOTFS.tmp" "$DEBIAN_MIRROR" \
        >"$CACHE/$SUITE.debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE/$SUITE.debootstrap.log" >&2
        die "debootstrap $SUITE from $DEBIAN_MIRROR failed (log: $CACHE/$SUITE.debootstrap.log)"
    fi
    # A quicker, quieter boot: no console login, no periodic jobs.
    systemctl --root="$ROOTFS.tmp" mask console-getty.service apt-daily.timer apt-daily-upgrade.timer \
        e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
    rm -rf "$ROOTFS.tmp/var/cache/apt/archives/"*.deb
    mv "$ROOTFS.tmp" "$ROOTFS"
    echo "debian-root.sh: $SUITE root built in $((SECONDS - started)) s" >&2
fi
echo "$ROOTFS"
