#!/usr/bin/env bash
# packaging/build.sh deb|rpm|docs: build memlock-run's Debian or RPM package.
#
#   1. cargo build --release of the launcher and the shim (both stripped, see Cargo.toml);
#   2. the man page memlock-run(1) and the bash, zsh and fish completions, generated from the
#      launcher's clap definition by packaging/docs (memlock-run-docs), into
#      packaging/build/docs/;
#   3. cargo deb or cargo generate-rpm, configured in launcher/Cargo.toml, writing the
#      package into packaging/build/.
#
# "docs" stops after step 2. The package's path is the last line printed.
# Needs: cargo-deb or cargo-generate-rpm (cargo install --locked cargo-deb cargo-generate-rpm).
# SOURCE_DATE_EPOCH, if set, dates the man page; otherwise the last commit does.
set -euo pipefail

usage() {
    echo "usage: packaging/build.sh deb|rpm|docs" >&2
    exit 2
}
die() {
    echo "build.sh: $*" >&2
    exit 1
}
step() { echo "== build.sh: $*" >&2; }

[ $# -eq 1 ] || usage
KIND=$1
case $KIND in deb | rpm | docs) ;; *) usage ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/packaging/build
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

case $KIND in
deb) cargo deb --version >/dev/null 2>&1 || die "cargo-deb is not installed: cargo install --locked cargo-deb" ;;
rpm) cargo generate-rpm --version >/dev/null 2>&1 || die "cargo-generate-rpm is not installed: cargo install --locked cargo-generate-rpm" ;;
esac

step "release build of memlock-run and its shim"
cargo build --release --locked -p memlock-run -p memlock-run-shim

step "man page and completions from the clap definition"
rm -rf "$OUT/docs" "$OUT/deb-lib"
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    epoch=$SOURCE_DATE_EPOCH
else
    epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
cargo run --quiet --locked -p memlock-run-docs -- --date "$(date -u -d "@$epoch" +%Y-%m-%d)" "$OUT/docs" >&2
# -n: no name or time stamp in the gzip header, so that the same page gives the same bytes.
gzip -9 -n -f "$OUT/docs/man/memlock-run.1"
[ "$KIND" = docs ] && { echo "$OUT/docs"; exit 0; }

if [ "$KIND" = deb ]; then
    # Debian's multiarch tuple, as the launcher's install.rs has it for the same target:
    # the shim goes to /usr/lib/<tuple>/memlock-run/, where the launcher looks.
    host=$(rustc -vV | sed -n 's/^host: //p')
    case $host in
    x86_64-*-linux-gnu) tuple=x86_64-linux-gnu ;;
    aarch64-*-linux-gnu) tuple=aarch64-linux-gnu ;;
    i686-*-linux-gnu | i586-*-linux-gnu) tuple=i386-linux-gnu ;;
    arm*-*-linux-gnueabihf) tuple=arm-linux-gnueabihf ;;
    powerpc64le-*-linux-gnu) tuple=powerpc64le-linux-gnu ;;
    s390x-*-linux-gnu) tuple=s390x-linux-gnu ;;
    riscv64*-*-linux-gnu) tuple=riscv64-linux-gnu ;;
    *) die "no Debian multiarch tuple known for the Rust host $host (add it here and in launcher/src/install.rs)" ;;
    esac
    install -D -m 0644 "$TARGET_DIR/release/libmemlock_run_shim.so" \
        "$OUT/deb-lib/$tuple/memlock-run/libmemlock_run_shim.so"
    step "cargo deb"
    cargo deb --locked --no-build -p memlock-run --output "$OUT/" >&2
    ls -t "$OUT"/memlock-run_*.deb | head -n 1
else
    step "cargo generate-rpm"
    cargo generate-rpm -p launcher --output "$OUT/" >&2
    ls -t "$OUT"/memlock-run-*.rpm | head -n 1
fi
