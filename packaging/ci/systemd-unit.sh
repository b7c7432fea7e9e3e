#!/usr/bin/env bash
# packaging/ci/systemd-unit.sh UNIT_FILE [TREE]: starts one service unit under a real systemd
# and reports what the kernel says about its main process.
#
# systemd runs as PID 1 of a systemd-nspawn container booted from a Debian root
# (packaging/ci/debian-root.sh, cached), with an overlay on top so that the cached root stays
# clean. TREE, if given, is copied over the container's / first (a package's files as dpkg
# would unpack them, drop-ins under etc/systemd/system/...), and UNIT_FILE is installed as
# /etc/systemd/system/NAME. Then `systemctl start NAME`, and on stdout:
#
#   == systemctl start NAME: rc=N
#   ActiveState=... SubState=... Result=... MainPID=... User=...   (systemctl show, a line each)
#   == MainPID N: COMMAND LINE
#   Uid: Gid: Groups: CapInh: CapPrm: CapEff: CapAmb: VmLck: VmRSS:  (/proc/N/status)
#   Max locked memory ...                                            (/proc/N/limits)
#
# Exit status: 0 when the unit has a main process, 1 when it has none (its journal is
# printed), 2 when the container cannot be set up. Needs root, systemd-nspawn
# (systemd-container) and debootstrap.
# Environment: SYSTEMD_SUITE (default bullseye), SETTLE seconds after the start (default 1),
# BOOT_TIMEOUT seconds (default 90), MEMLOCK_RUN_CI_CACHE (see debian-root.sh).
set -uo pipefail

die() {
    echo "systemd-unit.sh: $*" >&2
    exit 2
}
note() { echo "[systemd-unit $(date -u +%T)] $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (it boots a container)"
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: packaging/ci/systemd-unit.sh UNIT_FILE [TREE]"
UNIT_FILE=$1
TREE=${2:-}
[ -f "$UNIT_FILE" ] || die "$UNIT_FILE: no such unit file"
[ -z "$TREE" ] || [ -d "$TREE" ] || die "$TREE: no such directory"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt-get install systemd-container"
UNIT=$(basename "$UNIT_FILE")
# Commands run in the Debian root (chroot, the container) look up programs in this PATH:
# make sure it has the system directories, whatever the caller's.
PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "$0")" && pwd)
SETTLE=${SETTLE:-1}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-90}

BASE=$("$HERE/debian-root.sh" "${SYSTEMD_SUITE:-bullseye}") || die "no Debian root to boot (above)"

RUN=$(mktemp -d /tmp/memlock-run-systemd.XXXXXX)
GUEST=$RUN/root
mkdir -p "$RUN/upper" "$RUN/work" "$GUEST"
MOUNTED=0
if mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$GUEST" 2>/dev/null; then
    MOUNTED=1
else
    note "no overlayfs here: copying the root instead"
    cp -a "$BASE/." "$GUEST/" || die "cannot copy $BASE"
fi

# systemd-nspawn --keep-unit puts the container in the cgroup it is started from. Start it
# from a cgroup of its own (in the unified hierarchy, and in the named systemd v1 hierarchy
# on hybrid hosts), so that the guest's systemd owns a subtree and removing it is clean.
NAME=mlr-$(basename "$RUN" | tr -cd 'a-zA-Z0-9')
CGROUPS=()
v2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
v2_self=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)
if [ -n "$v2" ] && [ -n "$v2_self" ]; then CGROUPS+=("$v2${v2_self%/}/$NAME"); fi
v1=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /name=systemd/ { print $1; exit }')
v1_self=$(awk -F: '$2 == "name=systemd" { print $3 }' /proc/self/cgroup)
if [ -n "$v1" ] && [ -n "$v1_self" ]; then CGROUPS+=("$v1${v1_self%/}/$NAME"); fi

NSPAWN=
INIT=
finish() {
    local i
    if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
        # nspawn --boot turns SIGTERM into a clean poweroff of the guest.
        kill -TERM "$NSPAWN" 2>/dev/null
        for i in $(seq 1 150); do
            kill -0 "$NSPAWN" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$NSPAWN" 2>/dev/null; then
            note "the container did not power off in 30 s: killing it"
            [ -z "$INIT" ] || kill -KILL "$INIT" 2>/dev/null
            kill -KILL "$NSPAWN" 2>/dev/null
        fi
        wait "$NSPAWN" 2>/dev/null
    fi
    local cg
    for cg in "${CGROUPS[@]}"; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    [ "$MOUNTED" = 0 ] || umount "$GUEST" 2>/dev/null || umount -l "$GUEST"
    rm -rf "$RUN"
}
trap finish EXIT
trap 'exit 130' INT TERM

[ -z "$TREE" ] || cp -a "$TREE/." "$GUEST/" || die "cannot copy $TREE into the container"
install -D -m 0644 "$UNIT_FILE" "$GUEST/etc/systemd/system/$UNIT"

note "booting $NAME from $BASE"
(
    for cg in "${CGROUPS[@]}"; do
        mkdir -p "$cg" && echo "$BASHPID" >"$cg/cgroup.procs" || exit 97
    done
    # CAP_IPC_LOCK is not in nspawn's default bounding set: add it, as a host's systemd has it.
    exec systemd-nspawn --quiet -D "$GUEST" -M "$NAME" --boot --register=no --keep-unit \
        --private-network --console=read-only --capability=CAP_IPC_LOCK
) </dev/null >"$RUN/console.log" 2>&1 &
NSPAWN=$!

# The guest's PID 1: nspawn's child named systemd, in another PID namespace.
my_pidns=$(readlink /proc/self/ns/pid)
deadline=$((SECONDS + BOOT_TIMEOUT))
while [ -z "$INIT" ] && [ $SECONDS -lt $deadline ] && kill -0 "$NSPAWN" 2>/dev/null; do
    for child in $(pgrep -P "$NSPAWN"); do
        if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] &&
            [ "$(readlink "/proc/$child/ns/pid")" != "$my_pidns" ]; then
            INIT=$child
        fi
    done
    [ -n "$INIT" ] || sleep 0.1
done
if [ -z "$INIT" ]; then
    cat "$RUN/console.log" >&2
    note "systemd did not start in the container (console above)"
    exit 1
fi
# in_guest COMMAND...: COMMAND in the container's namespaces.
in_guest() { nsenter -t "$INIT" -m -u -i -n -p -C -- "$@"; }
state=
while [ $SECONDS -lt $deadline ]; do
    state=$(in_guest timeout 5 systemctl is-system-running --wait 2>/dev/null)
    case $state in running | degraded) break ;; esac
    sleep 0.2
done
case $state in
running | degraded) note "systemd is up (host pid $INIT, state $state)" ;;
*)
    cat "$RUN/console.log" >&2
    note "the container's systemd did not finish booting in $BOOT_TIMEOUT s (state '$state')"
    exit 1
    ;;
esac

in_guest systemctl start "$UNIT"
echo "== systemctl start $UNIT: rc=$?"
sleep "$SETTLE"
in_guest systemctl show -p ActiveState -p SubState -p Result -p MainPID -p User "$UNIT"
main=$(in_guest systemctl show -P MainPID "$UNIT")
if [ -z "$main" ] || [ "$main" = 0 ]; then
    echo "== $UNIT has no main process; its journal:"
    in_guest journalctl --no-pager -n 40 -u "$UNIT"
    exit 1
fi
echo "== MainPID $main: $(in_guest cat "/proc/$main/cmdline" | tr '\0' ' ' | sed 's/ $//')"
in_guest grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapAmb|VmLck|VmRSS):' "/proc/$main/status"
in_guest grep '^Max locked memory' "/proc/$main/limits"
exit 0
