#!/usr/bin/env bash
# packaging/ci-test.sh: proves, on a real machine, that memlock-run installs like a system tool.
#
#   1. the .deb: contents, the glibc symbol versions of its binaries (nothing above 2.17) and
#      the libc6 dependency they imply, dpkg -i, the installed memlock-run locks a real
#      program (VmLck, smaps), man page, completions, systemd-analyze verify of the example
#      units, and dpkg -r / --purge remove every file it installed;
#   2. the .rpm: file list, payload compression, Requires, rpm -i --root into a scratch
#      root, the launcher there finds its own shim and locks, rpm -e removes it;
#   3. a real systemd (PID 1 in a systemd-nspawn container on a Debian 11 root,
#      packaging/ci/systemd-unit.sh): the example unit and the drop-in run their program as
#      the unit's user, with CAP_IPC_LOCK alone, locked past the 8 MiB hard RLIMIT_MEMLOCK;
#   4. the opt-in privileged mode: a group member locks past the limit, a non-member cannot
#      run memlock-run, the environment cannot change the shim, --user is refused;
#   5. an older distribution: the .deb installed with dpkg in a debootstrapped Debian 11
#      (glibc 2.31) root, and programs of that root locked by the memlock-run installed there
#      (by the shim, and its static ldconfig by the ptrace method);
#   6. a Kubernetes-style container under runc, from that root with the .deb installed
#      (packaging/container/): locked past the limit with the file capability, and the
#      launcher's note without it.
#
# Runs as root on a Debian machine it may change (it installs and purges the package, and
# adds and removes two system users). Installs what it lacks: apt packages (rpm, man-db,
# libcap2-bin, debootstrap, ...), zig (pip install ziglang) and cargo-zigbuild (cargo install
# --locked). The Debian 11 root is cached in /var/cache/memlock-run-ci (MEMLOCK_RUN_CI_CACHE).
# Every check prints what it verified; the last line is "N passed, M failed"; the exit
# status is 1 if any check failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Commands run in the Debian root (chroot, the container) look up programs in this PATH:
# make sure it has the system directories, whatever the caller's.
PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd "$ROOT"
HARNESS=$ROOT/packaging/ci/systemd-unit.sh

PASSED=0
FAILED=0
pass() {
    echo "PASS: $*"
    PASSED=$((PASSED + 1))
}
fail() {
    echo "FAIL: $*"
    FAILED=$((FAILED + 1))
}
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
section() { echo; echo "=== $*"; }
die() {
    echo "ci-test.sh: $*" >&2
    exit 2
}

[ "$(id -u)" = 0 ] || die "must run as root: it installs packages, and acts as other users with setpriv"

# ---------------------------------------------------------------------------- set-up
section "tools"
need_apt=()
command -v rpmbuild >/dev/null || need_apt+=(rpm)
command -v man >/dev/null || need_apt+=(man-db)
command -v groff >/dev/null || need_apt+=(groff-base)
command -v setcap >/dev/null || need_apt+=(libcap2-bin)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v useradd >/dev/null || need_apt+=(passwd)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v readelf >/dev/null || need_apt+=(binutils)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v zsh >/dev/null || need_apt+=(zsh)
command -v fish >/dev/null || need_apt+=(fish)
command -v systemd-nspawn >/dev/null || need_apt+=(systemd-container)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v runc >/dev/null || need_apt+=(runc)
if ((${#need_apt[@]})); then
    echo "apt-get install ${need_apt[*]}"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"; } >/dev/null ||
        die "apt-get install ${need_apt[*]} failed"
fi
if ! command -v zig >/dev/null && ! python3 -c 'import ziglang' 2>/dev/null; then
    echo "pip install ziglang==0.17.1"
    python3 -m pip install --quiet ziglang==0.17.1 || die "pip install ziglang==0.17.1 failed"
fi
if ! cargo zigbuild --help >/dev/null 2>&1; then
    echo "cargo install --locked cargo-zigbuild@0.24.1"
    cargo install --locked --quiet cargo-zigbuild@0.24.1 || die "cargo install --locked cargo-zigbuild@0.24.1 failed"
fi
echo "tools ready"

TUPLE=$(gcc -print-multiarch)
SHIM_DEB=/usr/lib/$TUPLE/memlock-run/libmemlock_run_shim.so
WORK=$(mktemp -d /tmp/memlock-run-ci.XXXXXX)
chmod 0755 "$WORK"
BACKGROUND=()
CREATED_USERS=()
GROUP_EXISTED=0
getent group memlock-run >/dev/null && GROUP_EXISTED=1

MOUNTS=()

cleanup() {
    local pid user mount
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null; done
    for mount in "${MOUNTS[@]}"; do umount "$mount" 2>/dev/null || umount -l "$mount"; done
    if dpkg -s memlock-run >/dev/null 2>&1; then
        /usr/sbin/memlock-run-privilege disable >/dev/null 2>&1
        dpkg --purge memlock-run >/dev/null 2>&1
    fi
    for user in "${CREATED_USERS[@]}"; do userdel "$user" 2>/dev/null; done
    [ "$GROUP_EXISTED" = 1 ] || groupdel memlock-run 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

if dpkg -s memlock-run >/dev/null 2>&1; then
    echo "memlock-run is installed: purging it first, so that the install starts from a clean machine"
    /usr/sbin/memlock-run-privilege disable >/dev/null 2>&1
    dpkg --purge memlock-run >/dev/null || die "cannot purge the installed memlock-run"
fi

# ---------------------------------------------------------------------------- helpers

# start_as USER COMMAND...: starts COMMAND in the background as USER, truly unprivileged, and
# sets PID. setpriv --reuid keeps root's capabilities up to its own exec (PR_SET_KEEPCAPS),
# so it would execute files USER cannot: the intermediate sh drops them (a non-root exec of
# a file without capabilities) and then execs COMMAND as a plain user would.
start_as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups /bin/sh -c 'exec "$@"' sh "$@" &
    PID=$!
    BACKGROUND+=("$PID")
}
# run_as USER COMMAND...: the same in the foreground.
run_as() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups /bin/sh -c 'exec "$@"' sh "$@"
}
start_root() {
    "$@" &
    PID=$!
    BACKGROUND+=("$PID")
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# wait_exec PID PROGRAM: waits until PID runs PROGRAM (memlock-run execs in place) and its
# shim has locked (VmLck > 0); fails after 10 s or if the process ends.
wait_exec() {
    local pid=$1 program=$2 i
    for i in $(seq 1 100); do
        [ -d "/proc/$pid" ] || return 1
        if [ "$(readlink "/proc/$pid/exe")" = "$program" ] && [ "$(vmlck_kb "$pid")" -gt 0 ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
vmlck_kb() { status_field "$1" VmLck || echo 0; }
# Mappings without the VM_LOCKED ("lo") flag, other than the kernel's own pseudo-mappings.
unlocked_mappings() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 }
         /^VmFlags:/ && !/ lo/ && name !~ /^\[(vvar|vvar_vclock|vdso|vsyscall)\]$/ { print name }' "/proc/$1/smaps"
}
# Locked: kB summed over the mappings of FILE.
locked_kb_of() {
    awk -v f="$2" '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 } /^Locked:/ && name == f { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}
preloaded_libs() { awk '$6 ~ /\.so/ { print $6 }' "/proc/$1/maps" | sort -u; }
# The soft RLIMIT_MEMLOCK, in bytes or "unlimited".
memlock_limit() { awk '/^Max locked memory/ { print $4 }' "/proc/$1/limits"; }

# check_locked WHAT PID PROGRAM MIN_KB SHIM [future]: the kernel's view of a locked program.
# With "future" (memlock-run --future) every mapping must be locked, the heap and anything
# mapped after start included; without it (MCL_CURRENT) what was mapped at start.
check_locked() {
    local what=$1 pid=$2 program=$3 min_kb=$4 shim=$5 future=${6:-}
    if ! wait_exec "$pid" "$program"; then
        fail "$what: $program did not start locked (pid $pid)"
        return
    fi
    pass "$what: memlock-run exec'd in place: pid $pid is now $program"
    local kb
    kb=$(vmlck_kb "$pid")
    check "$what: VmLck $kb kB > $min_kb kB (/proc/$pid/status)" test "$kb" -gt "$min_kb"
    if [ "$future" = future ]; then
        local unlocked
        unlocked=$(unlocked_mappings "$pid")
        check "$what: every mapping carries the lo (VM_LOCKED) flag in /proc/$pid/smaps${unlocked:+; not: $unlocked}" test -z "$unlocked"
    fi
    kb=$(locked_kb_of "$pid" "$program")
    check "$what: smaps Locked: $kb kB for $program's own mappings" test "$kb" -gt 0
    check "$what: /proc/$pid/maps shows the shim $shim" grep -q " $shim\$" "/proc/$pid/maps"
}

# ---------------------------------------------------------------------------- 1. .deb
section "1. Debian package"
DEB=$(packaging/build.sh deb | tail -n 1)
check "packaging/build.sh deb built $DEB" test -f "$DEB"

expected_deb_files="./etc/default/memlock-run
./usr/bin/memlock-run
./usr/lib/$TUPLE/memlock-run/libmemlock_run_shim.so
./usr/sbin/memlock-run-privilege
./usr/share/bash-completion/completions/memlock-run
./usr/share/doc/memlock-run/copyright
./usr/share/doc/memlock-run/examples/memlock-run-dropin.conf
./usr/share/doc/memlock-run/examples/memlock-run-example.service
./usr/share/fish/vendor_completions.d/memlock-run.fish
./usr/share/man/man1/memlock-run.1.gz
./usr/share/zsh/vendor-completions/_memlock-run"
actual_deb_files=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | grep -v '/$' | sort)
if [ "$actual_deb_files" = "$expected_deb_files" ]; then
    pass "the .deb holds exactly the expected $(echo "$expected_deb_files" | wc -l) files (shim in /usr/lib/$TUPLE/memlock-run/)"
else
    fail "the .deb's files differ from the expected list:"
    diff <(echo "$expected_deb_files") <(echo "$actual_deb_files")
fi
# No Multi-Arch: the package has /usr/bin, so "same" would be wrong; and its shim serves
# programs of its own architecture only, so "foreign" would be too.
check "the .deb is for $(dpkg --print-architecture), has no Multi-Arch field" \
    test "$(dpkg-deb -f "$DEB" Architecture)" = "$(dpkg --print-architecture)" -a -z "$(dpkg-deb -f "$DEB" | grep '^Multi-Arch:')"
check "the .deb declares /etc/default/memlock-run a conffile" \
    sh -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./conffiles | grep -qx /etc/default/memlock-run"
EXTRACTED=$WORK/deb-root
mkdir -p "$EXTRACTED" && chmod 0755 "$EXTRACTED" && dpkg-deb -x "$DEB" "$EXTRACTED"
for f in usr/bin/memlock-run "usr/lib/$TUPLE/memlock-run/libmemlock_run_shim.so"; do
    check "/$f is stripped (no .symtab)" sh -c "! readelf -S '$EXTRACTED/$f' | grep -q '\.symtab'"
done
# What the packaged binaries ask of the C library: the GLIBC_x.y versions in their
# version-needs tables, which ld.so checks at load time. Every distribution from glibc 2.17
# up must load them.
DEB_ELF=("$EXTRACTED/usr/bin/memlock-run" "$EXTRACTED/usr/lib/$TUPLE/memlock-run/libmemlock_run_shim.so")
if needs=$(packaging/glibc-needs.sh --max 2.17 "${DEB_ELF[@]}" 2>"$WORK/glibc-needs.err"); then
    pass "the .deb's launcher and shim need glibc $needs at most: $(tr '\n' ';' <"$WORK/glibc-needs.err")"
else
    fail "the .deb's binaries need more than glibc 2.17: $(cat "$WORK/glibc-needs.err")"
fi
for f in "${DEB_ELF[@]}"; do
    newer=$(readelf --dyn-syms -W "$f" | grep -oE '@GLIBC_[0-9.]+' | sort -uV |
        awk -F_ '{ split($2, v, "."); if (v[1] > 2 || (v[1] == 2 && v[2] > 17)) print $2 }' | tr '\n' ' ')
    check "${f#"$EXTRACTED"}: no symbol of a glibc newer than 2.17 (readelf --dyn-syms)${newer:+; found: $newer}" test -z "$newer"
done
check "the .deb depends on 'libc6 (>= $needs)', what its binaries need (Depends: $(dpkg-deb -f "$DEB" Depends))" \
    test "$(dpkg-deb -f "$DEB" Depends)" = "libc6 (>= $needs)"

# Every path under /usr and /etc, to compare after the purge.
snapshot() { find /usr /etc -xdev 2>/dev/null | sort; }
snapshot >"$WORK/before"
if dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1; then
    pass "dpkg -i $(basename "$DEB")"
else
    fail "dpkg -i $(basename "$DEB"):"
    cat "$WORK/dpkg-i.log"
fi
dpkg -L memlock-run | sort >"$WORK/installed"
check "installed /usr/bin/memlock-run is root:root 0755 with no file capability (privileged mode off by default)" \
    test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:root 755" -a -z "$(getcap /usr/bin/memlock-run)"
check "no dpkg-statoverride for /usr/bin/memlock-run by default" sh -c '! dpkg-statoverride --list /usr/bin/memlock-run >/dev/null'

start_root /usr/bin/memlock-run --future --prefault 8M -- /usr/bin/sleep 60
check_locked "root, --future --prefault 8M" "$PID" /usr/bin/sleep 8192 "$SHIM_DEB" future
stop "$PID"

start_as nobody /usr/bin/memlock-run -- /usr/bin/sleep 60
check_locked "user nobody, no privilege, within its $(ulimit -H -l) KiB hard limit" "$PID" /usr/bin/sleep 0 "$SHIM_DEB"
check "user nobody's program holds no capability (CapEff $(status_field "$PID" CapEff))" \
    test "$(status_field "$PID" CapEff)" = 0000000000000000
stop "$PID"

out=$(run_as nobody /usr/bin/memlock-run --prefault 16M -- /usr/bin/true 2>&1)
rc=$?
check "without privilege, 16 MiB cannot be locked under the 8 MiB hard limit: exit $rc (125), message names RLIMIT_MEMLOCK" \
    test "$rc" = 125 -a -n "$(echo "$out" | grep RLIMIT_MEMLOCK)"

section "1b. man page and completions"
MANPAGE=/usr/share/man/man1/memlock-run.1.gz
[ -f "$MANPAGE" ] || {
    # Minimal images may keep dpkg from installing man pages (path-exclude).
    echo "note: $MANPAGE was not installed (dpkg path-exclude?); checking the package's copy"
    MANPAGE=$EXTRACTED$MANPAGE
}
rendered=$(MANWIDTH=100 man -l "$MANPAGE" 2>"$WORK/man.err" | col -b)
check "man -l renders the page ($(echo "$rendered" | wc -l) lines, no warnings)" test -n "$rendered" -a ! -s "$WORK/man.err"
groff_warnings=$(zcat "$MANPAGE" | groff -man -Tutf8 -ww -z 2>&1)
check "groff -ww finds no problem in the roff${groff_warnings:+: $groff_warnings}" test -z "$groff_warnings"
# Here-strings, not echo | grep -q: under pipefail, grep -q leaving at its first match can
# kill the echo with SIGPIPE and turn a match into a miss.
missing=
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES SECURITY "SEE ALSO"; do
    grep -q "^$s\$" <<<"$rendered" || missing="$missing [$s]"
done
check "the page has NAME SYNOPSIS DESCRIPTION OPTIONS EXIT STATUS ENVIRONMENT FILES EXAMPLES SECURITY SEE ALSO${missing:+; missing:$missing}" test -z "$missing"
missing=
for ref in 'mlockall(2)' 'capabilities(7)' 'systemd.exec(5)'; do
    sed -n '/^SEE ALSO$/,$p' <<<"$rendered" | grep -F "$ref" >/dev/null || missing="$missing $ref"
done
check "SEE ALSO names mlockall(2), capabilities(7), systemd.exec(5)${missing:+; missing:$missing}" test -z "$missing"
missing=
options=$(/usr/bin/memlock-run --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
for opt in $options; do
    grep -q -- "$opt" <<<"$rendered" || missing="$missing $opt"
done
check "all $(echo "$options" | wc -w) options of memlock-run --help are in the man page${missing:+; missing:$missing}" \
    test -z "$missing" -a "$(echo "$options" | wc -w)" -ge 8
check "man -w memlock-run finds the installed page" sh -c '[ ! -f /usr/share/man/man1/memlock-run.1.gz ] || [ "$(man -w memlock-run)" = /usr/share/man/man1/memlock-run.1.gz ]'

# The function that `complete -p` names for memlock-run, called as bash would.
bash_reply=$(bash -c '. /usr/share/bash-completion/completions/memlock-run
    fn=$(complete -p memlock-run | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
    COMP_WORDS=(memlock-run --pre); COMP_CWORD=1; COMP_LINE="memlock-run --pre"; COMP_POINT=${#COMP_LINE}
    "$fn" memlock-run --pre memlock-run; echo "${COMPREPLY[*]}"' 2>&1)
check "bash completes 'memlock-run --pre' to '$bash_reply'" test "$bash_reply" = --prefault
check "zsh parses _memlock-run (zsh -n)" zsh -n /usr/share/zsh/vendor-completions/_memlock-run
fish_reply=$(fish -c 'source /usr/share/fish/vendor_completions.d/memlock-run.fish; complete -C "memlock-run --on-failure "' 2>&1 | cut -f1 | sort | tr '\n' ' ')
check "fish completes 'memlock-run --on-failure ' to '$fish_reply'" test "$fish_reply" = "exit warn "

section "1c. systemd-analyze verify"
EXAMPLES=/usr/share/doc/memlock-run/examples
check "systemd-analyze verify $EXAMPLES/memlock-run-example.service" \
    systemd-analyze verify "$EXAMPLES/memlock-run-example.service"
# The drop-in, applied to a stand-in for an existing service: verify loads NAME.service.d/
# beside the unit file given.
VERIFY=$WORK/verify
mkdir -p "$VERIFY/stand-in.service.d"
printf '[Unit]\nDescription=An existing service\n[Service]\nExecStart=/usr/bin/sleep infinity\nUser=daemon\n' >"$VERIFY/stand-in.service"
cp "$EXAMPLES/memlock-run-dropin.conf" "$VERIFY/stand-in.service.d/memlock-run.conf"
check "systemd-analyze verify of a service with $EXAMPLES/memlock-run-dropin.conf as its drop-in" \
    systemd-analyze verify "$VERIFY/stand-in.service"
# Controls: the same files naming a program that does not exist must fail, so the passes
# above mean something.
sed 's|/usr/bin/memlock-run |/usr/bin/memlock-run-absent |' "$EXAMPLES/memlock-run-example.service" >"$VERIFY/absent.service"
check "control: verify rejects the example unit when its ExecStart program is missing" \
    sh -c "! systemd-analyze verify '$VERIFY/absent.service' 2>/dev/null"
sed -i 's|/usr/bin/memlock-run |/usr/bin/memlock-run-absent |' "$VERIFY/stand-in.service.d/memlock-run.conf"
check "control: verify rejects the drop-in when its ExecStart program is missing (so the drop-in was applied)" \
    sh -c "! systemd-analyze verify '$VERIFY/stand-in.service' 2>/dev/null"

section "1d. removal"
dpkg -r memlock-run >/dev/null 2>&1
left=
while read -r path; do
    [ -f "$path" ] || [ -L "$path" ] || continue
    [ "$path" = /etc/default/memlock-run ] && continue
    left="$left $path"
done <"$WORK/installed"
check "dpkg -r removed every file it installed but the conffile${left:+; left:$left}" test -z "$left"
check "dpkg -r kept the conffile /etc/default/memlock-run" test -f /etc/default/memlock-run
dpkg --purge memlock-run >/dev/null 2>&1
snapshot >"$WORK/after"
if diff "$WORK/before" "$WORK/after" >"$WORK/diff"; then
    pass "dpkg --purge: every path under /usr and /etc is as before the install"
else
    fail "dpkg --purge left the machine different from before the install:"
    cat "$WORK/diff"
fi

# ---------------------------------------------------------------------------- 2. .rpm
section "2. RPM package"
RPM=$(packaging/build.sh rpm | tail -n 1)
check "packaging/build.sh rpm built $RPM" test -f "$RPM"
expected_rpm_files="/etc/default/memlock-run
/usr/bin/memlock-run
/usr/lib64/memlock-run
/usr/lib64/memlock-run/libmemlock_run_shim.so
/usr/sbin/memlock-run-privilege
/usr/share/bash-completion/completions/memlock-run
/usr/share/doc/memlock-run
/usr/share/doc/memlock-run/examples
/usr/share/doc/memlock-run/examples/memlock-run-dropin.conf
/usr/share/doc/memlock-run/examples/memlock-run-example.service
/usr/share/fish/vendor_completions.d/memlock-run.fish
/usr/share/man/man1/memlock-run.1.gz
/usr/share/zsh/site-functions/_memlock-run"
actual_rpm_files=$(rpm -qlp "$RPM" 2>/dev/null | sort)
if [ "$actual_rpm_files" = "$expected_rpm_files" ]; then
    pass "rpm -qlp: exactly the expected $(echo "$expected_rpm_files" | wc -l) files and directories (shim in /usr/lib64/memlock-run/)"
else
    fail "rpm -qlp differs from the expected list:"
    diff <(echo "$expected_rpm_files") <(echo "$actual_rpm_files")
fi
check "rpm -qpc: /etc/default/memlock-run is the package's config file" \
    test "$(rpm -qpc "$RPM" 2>/dev/null)" = /etc/default/memlock-run
check "rpm -qp --scripts: %post applies /etc/default/memlock-run (memlock-run-privilege apply)" \
    sh -c "rpm -qp --scripts '$RPM' 2>/dev/null | grep -q 'memlock-run-privilege apply'"
check "rpm -qp: architecture $(uname -m)" test "$(rpm -qp --qf '%{ARCH}' "$RPM" 2>/dev/null)" = "$(uname -m)"
check "rpm -qp: payload compressed with gzip, which every rpm reads ($(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$RPM" 2>/dev/null))" \
    test "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$RPM" 2>/dev/null)" = gzip
rpm_glibc=$(rpm -qp --requires "$RPM" 2>/dev/null | sed -n 's/^libc\.so\.6(GLIBC_\([0-9.]*\))(64bit)$/\1/p' | sort -V | tail -n 1)
check "rpm -qp --requires: libc.so.6 at GLIBC_$rpm_glibc at most, what the .deb's binaries need ($needs)" \
    test -n "$rpm_glibc" -a "$rpm_glibc" = "$needs"
rpmlib_newer=$(rpm -qp --requires "$RPM" 2>/dev/null | grep '^rpmlib(' | grep -vE '^rpmlib\((CompressedFileNames|FileDigests|PayloadFilesHavePrefix)\)' | tr '\n' ' ')
check "rpm -qp --requires: no rpmlib() feature that rpm 4.11 (RHEL 7) lacks${rpmlib_newer:+: $rpmlib_newer}" test -z "$rpmlib_newer"

RPMROOT=$WORK/rpm-root
mkdir -p "$RPMROOT" && chmod 0755 "$RPMROOT"
# --noscripts: the scratch root has no /bin/sh for %post to run in.
check "rpm -i --root $RPMROOT --nodeps --noscripts" \
    sh -c "rpm -i --root '$RPMROOT' --nodeps --noscripts '$RPM' 2>/dev/null"
missing=
for f in $expected_rpm_files; do [ -e "$RPMROOT$f" ] || missing="$missing $f"; done
check "every listed file and directory is in the scratch root${missing:+; missing:$missing}" test -z "$missing"
SHIM_RPM=$RPMROOT/usr/lib64/memlock-run/libmemlock_run_shim.so
check "the scratch root's launcher names its own shim ($SHIM_RPM) in --dry-run" \
    sh -c "'$RPMROOT/usr/bin/memlock-run' --dry-run -- /usr/bin/true | grep -q '^shim: *$SHIM_RPM\$'"
start_root "$RPMROOT/usr/bin/memlock-run" --future -- /usr/bin/sleep 60
check_locked "rpm root, as root" "$PID" /usr/bin/sleep 0 "$SHIM_RPM" future
stop "$PID"
start_as nobody "$RPMROOT/usr/bin/memlock-run" -- /usr/bin/sleep 60
check_locked "rpm root, as user nobody" "$PID" /usr/bin/sleep 0 "$SHIM_RPM"
stop "$PID"
rpm -e --root "$RPMROOT" --noscripts memlock-run 2>/dev/null
left=
for f in $expected_rpm_files; do [ -e "$RPMROOT$f" ] && left="$left $f"; done
check "rpm -e --root removed every file and directory it listed${left:+; left:$left}" test -z "$left"

# ---------------------------------------------------------------------------- 3. systemd
section "3. a real systemd (packaging/ci/systemd-unit.sh)"
# systemd-nspawn needs namespaces and a writable cgroup hierarchy; where the kernel or the
# container denies them, the harness cannot run at all.
nspawn_blocker=
if ! command -v systemd-nspawn >/dev/null; then
    nspawn_blocker="systemd-nspawn is not installed"
elif ! unshare --mount --pid --uts --ipc --net --fork true 2>"$WORK/unshare.err"; then
    nspawn_blocker="this machine cannot create namespaces ($(cat "$WORK/unshare.err"))"
elif [ -z "$(findmnt -n -t cgroup2 -o TARGET)" ]; then
    nspawn_blocker="no cgroup2 hierarchy is mounted"
fi

# harness_checks LOG UNIT USER: what the harness printed about the unit's MainPID.
harness_checks() {
    local log=$1 unit=$2 user=$3 uid caps kb limit
    check "$unit: systemctl start succeeded and it is running" \
        sh -c "grep -q '^== systemctl start $unit: rc=0' '$log' && grep -q '^ActiveState=active' '$log' && grep -q '^SubState=running' '$log'"
    check "$unit: MainPID runs /usr/bin/sleep infinity itself (memlock-run exec'd in place)" \
        grep -q '^== MainPID .*: /usr/bin/sleep infinity' "$log"
    check "$unit: User=$user" grep -qx "User=$user" "$log"
    uid=$(awk '/^Uid:/ { print $2 }' "$log")
    check "$unit: the program runs as the unit's user, uid $uid (real, effective, saved, fs)" \
        sh -c "awk '/^Uid:/ { exit !(\$2 == \$3 && \$3 == \$4 && \$4 == \$5 && \$2 != 0) }' '$log'"
    [ "$user" = daemon ] && check "$unit: uid $uid is daemon's (1)" test "$uid" = 1
    caps=$(grep -E '^Cap(Prm|Eff|Amb):' "$log" | awk '{print $2}' | sort -u | tr '\n' ' ')
    check "$unit: CapPrm = CapEff = CapAmb = 0000000000004000, CAP_IPC_LOCK alone (got: $caps)" \
        test "$caps" = "0000000000004000 "
    kb=$(awk '/^VmLck:/ { print $2 }' "$log")
    limit=$(awk '/^Max locked memory/ { print $4 }' "$log")
    check "$unit: VmLck $kb kB is above 8 MiB (8192 kB)" test "${kb:-0}" -gt 8192
    if [ "$limit" = 8388608 ]; then
        pass "$unit: its RLIMIT_MEMLOCK is the 8 MiB hard limit ($limit bytes; LimitMEMLOCK=infinity was clamped), and it holds $kb kB locked: CAP_IPC_LOCK does it"
    else
        echo "note: $unit: RLIMIT_MEMLOCK is $limit here (no 8 MiB hard limit on this machine)"
    fi
}

if [ -n "$nspawn_blocker" ]; then
    echo "SKIPPED: the real-systemd checks: $nspawn_blocker"
else
    # The package's files, as dpkg would unpack them, copied over the guest's /.
    log=$WORK/harness-example.log
    "$HARNESS" "$EXTRACTED$EXAMPLES/memlock-run-example.service" "$EXTRACTED" >"$log" 2>&1
    rc=$?
    sed 's/^/    | /' "$log"
    check "systemd-unit.sh memlock-run-example.service: exit $rc" test "$rc" = 0
    harness_checks "$log" memlock-run-example.service memlock-example

    # The drop-in, on a stand-in for an existing service that knows nothing of memlock-run.
    DROPIN_TREE=$WORK/dropin-tree
    mkdir -p "$DROPIN_TREE" && chmod 0755 "$DROPIN_TREE"
    cp -a "$EXTRACTED/." "$DROPIN_TREE/"
    install -D -m 0644 "$EXTRACTED$EXAMPLES/memlock-run-dropin.conf" \
        "$DROPIN_TREE/etc/systemd/system/existing-service.service.d/memlock-run.conf"
    printf '[Unit]\nDescription=An existing service\n[Service]\nExecStart=/usr/bin/sleep infinity\nUser=daemon\n' \
        >"$WORK/existing-service.service"
    log=$WORK/harness-dropin.log
    "$HARNESS" "$WORK/existing-service.service" "$DROPIN_TREE" >"$log" 2>&1
    rc=$?
    sed 's/^/    | /' "$log"
    check "systemd-unit.sh existing-service.service with the drop-in: exit $rc" test "$rc" = 0
    harness_checks "$log" existing-service.service daemon
fi

# ---------------------------------------------------------------------------- 4. privileged
section "4. opt-in privileged mode"
dpkg -i "$DEB" >/dev/null 2>&1
check "dpkg -i again: privileged mode off (root:root 0755, no capability)" \
    test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:root 755" -a -z "$(getcap /usr/bin/memlock-run)"
# An administrator's own statoverride is theirs: "apply" with the default setting keeps it.
dpkg-statoverride --update --add root root 0700 /usr/bin/memlock-run
/usr/sbin/memlock-run-privilege apply >/dev/null
check "apply keeps an administrator's dpkg-statoverride (root root 0700)" \
    test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:root 700"
dpkg-statoverride --remove /usr/bin/memlock-run
/usr/sbin/memlock-run-privilege apply >/dev/null
check "without it, apply restores root:root 0755" test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:root 755"

out=$(/usr/sbin/memlock-run-privilege enable 2>&1)
rc=$?
echo "$out" | sed 's/^/    | /'
check "memlock-run-privilege enable: exit $rc" test "$rc" = 0
check "GROUP_CAN_LOCK=yes in /etc/default/memlock-run" grep -qx 'GROUP_CAN_LOCK=yes' /etc/default/memlock-run
check_privileged() {
    check "$1: /usr/bin/memlock-run is root:memlock-run 0750" test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:memlock-run 750"
    check "$1: its file capability is cap_ipc_lock=p ($(getcap /usr/bin/memlock-run))" \
        sh -c 'getcap /usr/bin/memlock-run | grep -q "cap_ipc_lock=p$"'
    check "$1: dpkg-statoverride registers root memlock-run 750" \
        test "$(dpkg-statoverride --list /usr/bin/memlock-run)" = "root memlock-run 750 /usr/bin/memlock-run"
}
check_privileged "enabled"
inode=$(stat -c %i /usr/bin/memlock-run)
dpkg -i "$DEB" >/dev/null 2>&1
check "reinstall (upgrade path): dpkg wrote a fresh file (inode $inode -> $(stat -c %i /usr/bin/memlock-run))" \
    test "$(stat -c %i /usr/bin/memlock-run)" != "$inode"
check_privileged "after reinstall, postinst re-applied it"

for user in mlr-ci-member mlr-ci-other; do
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$user" && CREATED_USERS+=("$user")
    fi
done
usermod -aG memlock-run mlr-ci-member
check "control: a command run as mlr-ci-other holds no capability (the test acts as a real user)" \
    test "$(run_as mlr-ci-other awk '/^CapEff:/ { print $2 }' /proc/self/status)" = 0000000000000000

start_as mlr-ci-member /usr/bin/memlock-run --prefault 16M -- /usr/bin/sleep 60
check_locked "group member, --prefault 16M" "$PID" /usr/bin/sleep 16384 "$SHIM_DEB"
limit=$(memlock_limit "$PID")
if [ "$limit" != unlimited ]; then
    check "group member: VmLck $(vmlck_kb "$PID") kB is past the program's RLIMIT_MEMLOCK of $limit bytes" \
        test "$(($(vmlck_kb "$PID") * 1024))" -gt "$limit"
else
    echo "note: RLIMIT_MEMLOCK is unlimited here, so 'past the limit' cannot be shown"
fi
check "group member: the program runs as mlr-ci-member (uid $(id -u mlr-ci-member))" \
    test "$(status_field "$PID" Uid)" = "$(id -u mlr-ci-member)"
caps=$(for f in CapPrm CapEff CapAmb; do status_field "$PID" $f; done | sort -u | tr '\n' ' ')
check "group member: CapPrm = CapEff = CapAmb = 0000000000004000, CAP_IPC_LOCK alone (got: $caps)" \
    test "$caps" = "0000000000004000 "
stop "$PID"

out=$(run_as mlr-ci-other /usr/bin/memlock-run -- /usr/bin/true 2>&1)
rc=$?
check "non-member: memlock-run cannot be executed: exit $rc (126), '$out'" \
    test "$rc" = 126 -a -n "$(echo "$out" | grep 'Permission denied')"

# A member tries to make the privileged memlock-run load a library of theirs.
EVIL=$WORK/evil
mkdir -p "$EVIL"
cp "$SHIM_DEB" "$EVIL/libmemlock_run_shim.so"
cp "$SHIM_DEB" "$EVIL/libevil.so"
chown -R mlr-ci-member "$EVIL"
run_as mlr-ci-member ln -s /usr/bin/memlock-run "$EVIL/memlock-run"
start_as mlr-ci-member env LD_PRELOAD="$EVIL/libevil.so" LD_LIBRARY_PATH="$EVIL" \
    MEMLOCK_RUN_SHIM="$EVIL/libevil.so" MEMLOCK_RUN_FLAGS=future MEMLOCK_RUN_PREFAULT=1 \
    MEMLOCK_SHIM="$EVIL/libevil.so" SHIM="$EVIL/libevil.so" \
    "$EVIL/memlock-run" -- /usr/bin/sleep 60
check_locked "member with LD_PRELOAD, LD_LIBRARY_PATH, MEMLOCK_RUN_*, MEMLOCK_SHIM, SHIM set, through a symlink beside their own libmemlock_run_shim.so" \
    "$PID" /usr/bin/sleep 0 "$SHIM_DEB"
libs=$(preloaded_libs "$PID" | tr '\n' ' ')
check "the program's maps hold no library of the user's ($libs)" sh -c "! grep -q '$EVIL' /proc/$PID/maps"
check "its LD_PRELOAD is the packaged shim alone" \
    sh -c "tr '\0' '\n' </proc/$PID/environ | grep -qx 'LD_PRELOAD=$SHIM_DEB'"
check "its MEMLOCK_RUN_* are memlock-run's own (FLAGS=current, PREFAULT=0, no MEMLOCK_RUN_SHIM)" \
    sh -c "tr '\0' '\n' </proc/$PID/environ | grep -qx MEMLOCK_RUN_FLAGS=current &&
           tr '\0' '\n' </proc/$PID/environ | grep -qx MEMLOCK_RUN_PREFAULT=0 &&
           ! tr '\0' '\n' </proc/$PID/environ | grep -q ^MEMLOCK_RUN_SHIM="
stop "$PID"
# A hard link keeps the file capability, and /proc/self/exe then names the link: the
# launcher must refuse the member's shim beside it. fs.protected_hardlinks=1 stops a member
# from making the link; root makes it here, as a member could where that sysctl is 0.
if run_as mlr-ci-member ln /usr/bin/memlock-run "$EVIL/memlock-run-hardlink" 2>/dev/null; then
    echo "note: fs.protected_hardlinks=$(cat /proc/sys/fs/protected_hardlinks): a member can hard-link memlock-run"
    rm -f "$EVIL/memlock-run-hardlink"
fi
if ln /usr/bin/memlock-run "$EVIL/memlock-run-hardlink" 2>"$WORK/ln.err"; then
    out=$(run_as mlr-ci-member "$EVIL/memlock-run-hardlink" -- /usr/bin/true 2>&1)
    rc=$?
    check "a hard link of the privileged memlock-run beside the member's own shim is refused: exit $rc (125): $out" \
        test "$rc" = 125 -a -n "$(echo "$out" | grep 'refusing to load the shim')"
    rm -f "$EVIL/memlock-run-hardlink"
else
    echo "SKIPPED: the hard-link check: $EVIL and /usr/bin are not on one file system ($(cat "$WORK/ln.err"))"
fi
out=$(run_as mlr-ci-member /usr/bin/memlock-run --user root -- /usr/bin/true 2>&1)
rc=$?
check "member: --user root is refused: exit $rc (125)" test "$rc" = 125 -a -n "$(echo "$out" | grep -- '--user is refused')"

out=$(/usr/sbin/memlock-run-privilege disable 2>&1)
check "memlock-run-privilege disable: root:root 0755, no capability, no statoverride" \
    test "$(stat -c '%U:%G %a' /usr/bin/memlock-run)" = "root:root 755" -a -z "$(getcap /usr/bin/memlock-run)" -a \
    -z "$(dpkg-statoverride --list /usr/bin/memlock-run)"
out=$(run_as mlr-ci-member /usr/bin/memlock-run --prefault 16M -- /usr/bin/true 2>&1)
rc=$?
check "disabled: the member is bound by the 8 MiB limit again: exit $rc (125)" test "$rc" = 125

/usr/sbin/memlock-run-privilege enable >/dev/null 2>&1
dpkg --purge memlock-run >/dev/null 2>&1
check "purged while enabled: /usr/bin/memlock-run is gone and postrm dropped its dpkg-statoverride" \
    test ! -e /usr/bin/memlock-run -a -z "$(dpkg-statoverride --list /usr/bin/memlock-run)"
check "purged: the system group memlock-run is kept, as Debian keeps system groups" sh -c 'getent group memlock-run >/dev/null'

# ---------------------------------------------------------------------------- 5. Debian 11
section "5. an older distribution: the .deb in a Debian 11 (bullseye) root"
# dpkg inside the root installs the package as on a Debian 11 machine (its dpkg, its libc6
# 2.31, the package's postinst run by its /bin/sh); then the root's own programs run under the
# memlock-run installed there, in a chroot. An overlay keeps the cached root clean.
OLD_BASE=$(packaging/ci/debian-root.sh bullseye 2>"$WORK/debian-root.err")
if [ -z "$OLD_BASE" ]; then
    fail "no Debian 11 root: $(cat "$WORK/debian-root.err")"
else
    OLD=$WORK/bullseye
    mkdir -p "$OLD.upper" "$OLD.work" "$OLD"
    if mount -t overlay overlay -o "lowerdir=$OLD_BASE,upperdir=$OLD.upper,workdir=$OLD.work" "$OLD" 2>/dev/null; then
        MOUNTS+=("$OLD")
    else
        echo "note: no overlayfs: copying the Debian 11 root"
        cp -a "$OLD_BASE/." "$OLD/"
    fi
    mount -t proc proc "$OLD/proc" && MOUNTS=("$OLD/proc" "${MOUNTS[@]}")
    old_glibc=$(chroot "$OLD" dpkg-query -W -f '${Version}' libc6)
    check "the root's C library is glibc $old_glibc, older than the 2.34 the build machine's toolchain would require" \
        dpkg --compare-versions "$old_glibc" lt 2.34
    cp "$DEB" "$OLD/tmp/"
    if chroot "$OLD" dpkg -i "/tmp/$(basename "$DEB")" >"$WORK/old-dpkg.log" 2>&1; then
        pass "dpkg -i $(basename "$DEB") in the Debian 11 root: its dependencies are met there (Depends: $(dpkg-deb -f "$DEB" Depends))"
    else
        fail "dpkg -i in the Debian 11 root:"
        cat "$WORK/old-dpkg.log"
    fi
    check "the Debian 11 root's /usr/bin/memlock-run runs there: memlock-run --version" chroot "$OLD" /usr/bin/memlock-run --version
    OLD_SHIM=/usr/lib/$TUPLE/memlock-run/libmemlock_run_shim.so
    OLD_SLEEP=$(chroot "$OLD" readlink -f /bin/sleep) # /usr/bin/sleep where /usr is merged
    start_root chroot "$OLD" /usr/bin/memlock-run --future --prefault 8M -- /bin/sleep 60
    # The chroot execs memlock-run, which execs the root's sleep: /proc shows the host's view
    # of the path, under the root.
    check_locked "Debian 11 root, as root, --future --prefault 8M" "$PID" "$OLD$OLD_SLEEP" 8192 "$OLD$OLD_SHIM" future
    check "Debian 11 root: the program's maps hold the root's own glibc 2.31 (libc-2.31.so)" grep -q 'libc-2\.31\.so$' "/proc/$PID/maps"
    stop "$PID"
    start_root chroot --userspec=nobody:nogroup "$OLD" /usr/bin/memlock-run -- /bin/sleep 60
    check_locked "Debian 11 root, as user nobody, within the 8 MiB hard limit" "$PID" "$OLD$OLD_SLEEP" 0 "$OLD$OLD_SHIM"
    stop "$PID"
    out=$(chroot "$OLD" /usr/bin/memlock-run -v --thread-stack 256K -- /usr/bin/apt-config dump 2>&1 >/dev/null)
    rc=$?
    check "Debian 11 root: --thread-stack 256K on a program that loads libpthread: exit $rc, '$out'" \
        test "$rc" = 0 -a -n "$(echo "$out" | grep 'thread stacks 256 KiB')"
    out=$(chroot "$OLD" /usr/bin/memlock-run -v --future --prefault 8M -- /bin/true 2>&1)
    rc=$?
    check "Debian 11 root: --prefault on a program without libpthread runs, with no thread stack to keep (and -v claims none): exit $rc, '$out'" \
        test "$rc" = 0 -a -n "$(echo "$out" | grep 'stack pre-faulted 8 MiB')" -a -z "$(echo "$out" | grep 'thread stacks')"
    # The second method: the root's ldconfig is static-pie, which no preload reaches.
    out=$(chroot "$OLD" /usr/bin/memlock-run -v -- /sbin/ldconfig -p 2>&1 >/dev/null)
    rc=$?
    check "Debian 11 root: its static /sbin/ldconfig is locked with the ptrace method: exit $rc, '$out'" \
        test "$rc" = 0 -a -n "$(echo "$out" | grep 'locked MCL_CURRENT with the ptrace method')"
    check "dpkg -r in the Debian 11 root" sh -c "chroot '$OLD' dpkg -r memlock-run >/dev/null 2>&1"
fi

# ---------------------------------------------------------------------------- 6. OCI runtime
section "6. a Kubernetes-style container under runc (packaging/container/)"
# The image of packaging/container/Containerfile, made from the Debian 11 root: the .deb
# installed with dpkg, memlock-run given cap_ipc_lock+p and mode 0755. runc runs it in the
# layout containerd and CRI-O give a pod with runAsUser 65534, capabilities drop ALL / add
# IPC_LOCK, allowPrivilegeEscalation false and readOnlyRootFilesystem (pod.yaml): bounding =
# effective = permitted = CAP_IPC_LOCK, no ambient, no_new_privs, read-only root.
oci_blocker=
if ! command -v runc >/dev/null; then
    oci_blocker="runc is not installed (apt-get install runc)"
elif [ -z "$OLD_BASE" ]; then
    oci_blocker="no Debian 11 root to make the image from (section 5)"
fi
# oci_config BUNDLE ROOTFS LAYOUT ARGS...: BUNDLE/config.json from runc's default spec, running
# ARGS in ROOTFS (runc wants an absolute path there, not a symlink).
# LAYOUT kubernetes: IPC_LOCK bounding, effective, permitted; docker: IPC_LOCK bounding only
# (Docker's --cap-add for a non-root USER leaves the permitted set empty before exec).
oci_config() {
    local bundle=$1 rootfs=$2 layout=$3
    shift 3
    rm -f "$bundle/config.json"
    (cd "$bundle" && runc spec) || return 1
    python3 - "$bundle/config.json" "$rootfs" "$layout" "$@" <<'PY'
import json, sys
path, rootfs, layout, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
spec = json.load(open(path))
process = spec["process"]
process.update(terminal=False, args=args, noNewPrivileges=True, user={"uid": 65534, "gid": 65534})
ipc_lock = ["CAP_IPC_LOCK"]
process["capabilities"] = {"bounding": ipc_lock, "effective": ipc_lock if layout == "kubernetes" else [],
                           "permitted": ipc_lock if layout == "kubernetes" else [], "inheritable": [], "ambient": []}
spec["root"] = {"path": rootfs, "readonly": True}
spec["hostname"] = "memlock-run-pod"
json.dump(spec, open(path, "w"), indent=1)
PY
}
if [ -n "$oci_blocker" ]; then
    echo "SKIPPED: the OCI runtime checks: $oci_blocker"
else
    IMAGE=$WORK/oci-image
    mkdir -p "$IMAGE.upper" "$IMAGE.work" "$IMAGE"
    if mount -t overlay overlay -o "lowerdir=$OLD_BASE,upperdir=$IMAGE.upper,workdir=$IMAGE.work" "$IMAGE" 2>/dev/null; then
        MOUNTS=("$IMAGE" "${MOUNTS[@]}")
    else
        cp -a "$OLD_BASE/." "$IMAGE/"
    fi
    # The Containerfile's RUN step, in the image's own dpkg; setcap from the host.
    cp "$DEB" "$IMAGE/tmp/" && chroot "$IMAGE" dpkg -i "/tmp/$(basename "$DEB")" >"$WORK/oci-dpkg.log" 2>&1 &&
        rm "$IMAGE/tmp/$(basename "$DEB")" && setcap cap_ipc_lock+p "$IMAGE/usr/bin/memlock-run" &&
        chmod 0755 "$IMAGE/usr/bin/memlock-run"
    check "the image: the .deb installed, /usr/bin/memlock-run 0755 with $(getcap "$IMAGE/usr/bin/memlock-run" | awk '{ print $2 }')" \
        sh -c "getcap '$IMAGE/usr/bin/memlock-run' | grep -q 'cap_ipc_lock=p\$' && [ \"\$(stat -c %a '$IMAGE/usr/bin/memlock-run')\" = 755 ]"
    BUNDLE=$WORK/oci-bundle
    mkdir -p "$BUNDLE"
    OCI_ID=memlock-run-ci-$$
    hard_kb=$(ulimit -H -l)

    # A. The pod: memlock-run locks 16 MiB of stack past the 8 MiB limit.
    oci_config "$BUNDLE" "$IMAGE" kubernetes /usr/bin/memlock-run --future --prefault 16M -- /bin/sleep 60
    runc run -d --bundle "$BUNDLE" "$OCI_ID" </dev/null >"$WORK/oci-a.log" 2>&1
    rc=$?
    check "runc run -d, Kubernetes layout: exit $rc$( [ "$rc" = 0 ] || echo ": $(cat "$WORK/oci-a.log")")" test "$rc" = 0
    PID=$(runc state "$OCI_ID" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null)
    if [ -n "$PID" ]; then
        # Paths as the container sees them: its root is a mount of its own.
        check_locked "pod layout, uid 65534, --future --prefault 16M" "$PID" "$OLD_SLEEP" 16384 "$OLD_SHIM" future
        if [ "$hard_kb" = unlimited ]; then
            echo "note: the hard RLIMIT_MEMLOCK is unlimited here, so 'past the limit' cannot be shown"
        else
            check "pod layout: VmLck $(vmlck_kb "$PID") kB is past the hard RLIMIT_MEMLOCK of $hard_kb kB (the container's limit: $(memlock_limit "$PID") bytes)" \
                test "$(vmlck_kb "$PID")" -gt "$hard_kb"
        fi
        caps=$(for f in CapPrm CapEff CapAmb CapBnd; do status_field "$PID" $f; done | sort -u | tr '\n' ' ')
        check "pod layout: the program holds CAP_IPC_LOCK alone (CapPrm = CapEff = CapAmb = CapBnd: $caps)" \
            test "$caps" = "0000000000004000 "
        check "pod layout: the program runs as uid 65534 with no_new_privs set (Uid $(status_field "$PID" Uid), NoNewPrivs $(status_field "$PID" NoNewPrivs))" \
            test "$(status_field "$PID" Uid)" = 65534 -a "$(status_field "$PID" NoNewPrivs)" = 1
        check "pod layout: no note on stderr (the capability was held)" sh -c "! grep -q 'memlock-run: note' '$WORK/oci-a.log'"
    fi
    runc kill "$OCI_ID" KILL 2>/dev/null
    for _ in $(seq 1 50); do runc delete "$OCI_ID" 2>/dev/null && break; sleep 0.1; done

    # B. The same pod without the file capability: memlock-run says why and what to do.
    setcap -r "$IMAGE/usr/bin/memlock-run"
    oci_config "$BUNDLE" "$IMAGE" kubernetes /usr/bin/memlock-run -- /bin/true
    out=$(runc run --bundle "$BUNDLE" "$OCI_ID" </dev/null 2>&1)
    rc=$?
    runc delete "$OCI_ID" 2>/dev/null
    check "pod layout without the file capability: it runs (exit $rc) and memlock-run says on stderr that RLIMIT_MEMLOCK binds, with the container remedy: $out" \
        sh -c "[ $rc = 0 ] && echo \"\$1\" | grep -q '^memlock-run: note: CAP_IPC_LOCK is in this process.s bounding set but memlock-run does not hold it.*setcap cap_ipc_lock+p'" sh "$out"

    # C. Docker's layout: the permitted set is empty before exec, and no_new_privs then
    # keeps exec from granting the file capability.
    setcap cap_ipc_lock+p "$IMAGE/usr/bin/memlock-run"
    oci_config "$BUNDLE" "$IMAGE" docker /usr/bin/memlock-run -- /bin/true
    out=$(runc run --bundle "$BUNDLE" "$OCI_ID" </dev/null 2>&1)
    rc=$?
    runc delete "$OCI_ID" 2>/dev/null
    check "Docker layout (permitted empty, no_new_privs): the file capability is not granted, and the note says so: exit $rc" \
        sh -c "[ $rc = 0 ] && echo \"\$1\" | grep -q '^memlock-run: note: CAP_IPC_LOCK is in this process.s bounding set'" sh "$out"
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
