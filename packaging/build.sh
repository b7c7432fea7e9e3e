#!/usr/bin/env bash
# packaging/build.sh deb|rpm|docs|binaries: build memlock-run's Debian or RPM package.
#
#   1. the launcher and the shim in release mode (stripped), for glibc 2.17: cargo zigbuild
#      links them against glibc 2.17's symbol versions (target x86_64-unknown-linux-gnu.2.17),
#      so that one package runs on every distribution from glibc 2.17 up;
#   2. the man page memlock-run(1) and the bash, zsh and fish completions, generated from the
#      launcher's clap definition by packaging/docs (memlock-run-docs), into
#      packaging/build/docs/;
#   3. the package's tree staged under packaging/build/, with the dependency on the C library
#      computed from the binaries' symbol versions (packaging/glibc-needs.sh), then dpkg-deb
#      or rpmbuild (Debian's `rpm` package; packaging/rpm/memlock-run.spec), writing the
#      package into packaging/build/.
#
# "docs" stops after step 2, "binaries" after step 1 (it prints the binaries' directory).
# The package's path is the last line printed.
# Needs: zig (pip install ziglang) and cargo-zigbuild (cargo install --locked cargo-zigbuild);
# dpkg-deb (deb) or rpmbuild (rpm); readelf (binutils).
# MEMLOCK_RUN_NATIVE_BUILD=1 builds with the machine's own toolchain and C library instead:
# the package then depends on that glibc, and runs only where it is.
# SOURCE_DATE_EPOCH, if set, dates the man page and the files; otherwise the last commit does.
set -euo pipefail
umask 022

usage() {
    echo "usage: packaging/build.sh deb|rpm|docs|binaries" >&2
    exit 2
}
die() {
    echo "build.sh: $*" >&2
    exit 1
}
step() { echo "== build.sh: $*" >&2; }

[ $# -eq 1 ] || usage
KIND=$1
case $KIND in deb | rpm | docs | binaries) ;; *) usage ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$ROOT/packaging/build
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$VERSION" ] || die "no version in Cargo.toml's [workspace.package]"

# The Rust host, and for it: Debian's multiarch tuple (the shim goes to
# /usr/lib/<tuple>/memlock-run/, where the launcher's install.rs looks), Debian's and RPM's
# architecture names, and the glibc the portable build targets.
host=$(rustc -vV | sed -n 's/^host: //p')
case $host in
x86_64-unknown-linux-gnu) tuple=x86_64-linux-gnu deb_arch=amd64 rpm_arch=x86_64 glibc=2.17 ;;
aarch64-unknown-linux-gnu) tuple=aarch64-linux-gnu deb_arch=arm64 rpm_arch=aarch64 glibc=2.17 ;;
*) die "no package architecture known for the Rust host $host (add it here and in launcher/src/host/install.rs)" ;;
esac
if [ -n "${MEMLOCK_RUN_NATIVE_BUILD:-}" ]; then glibc=; fi

# ---------------------------------------------------------------------------- 1. binaries
if [ "$KIND" != docs ]; then
    if [ -n "$glibc" ]; then
        rust_target=$host.$glibc
        if ! cargo zigbuild --help >/dev/null 2>&1; then
            die "cargo-zigbuild is not installed: cargo install --locked cargo-zigbuild (and zig: pip install ziglang); or MEMLOCK_RUN_NATIVE_BUILD=1 for a package that needs this machine's glibc"
        fi
        if ! command -v zig >/dev/null && ! python3 -c 'import ziglang' 2>/dev/null; then
            die "zig is not installed: pip install ziglang (cargo-zigbuild uses it to link for glibc $glibc)"
        fi
        step "release build of memlock-run and its shim for glibc $glibc (cargo zigbuild --target $rust_target)"
        cargo zigbuild --release --locked --target "$rust_target" -p memlock-run -p memlock-run-shim >&2
        BIN=$TARGET_DIR/$host/release
    else
        step "release build of memlock-run and its shim with this machine's toolchain"
        cargo build --release --locked -p memlock-run -p memlock-run-shim >&2
        BIN=$TARGET_DIR/release
    fi
    # The libc the packages need: the newest glibc symbol version either binary needs.
    libc_needs=$(packaging/glibc-needs.sh ${glibc:+--max "$glibc"} "$BIN/memlock-run" "$BIN/libmemlock_run_shim.so") ||
        die "the binaries need a newer glibc than $glibc (above); the package would not run where it promises to"
    step "the binaries need glibc $libc_needs"
    [ "$KIND" = binaries ] && { echo "$BIN"; exit 0; }
fi

# ---------------------------------------------------------------------------- 2. docs
step "man page and completions from the clap definition"
rm -rf "$OUT/docs"
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    epoch=$SOURCE_DATE_EPOCH
else
    epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
cargo run --quiet --locked -p memlock-run-docs -- --date "$(date -u -d "@$epoch" +%Y-%m-%d)" "$OUT/docs" >&2
# -n: no name or time stamp in the gzip header, so that the same page gives the same bytes.
gzip -9 -n -f "$OUT/docs/man/memlock-run.1"
[ "$KIND" = docs ] && { echo "$OUT/docs"; exit 0; }

# ---------------------------------------------------------------------------- 3. package
# stage DIR SHIM_DIR ZSH_DIR: the files both packages install, under DIR.
stage() {
    local dir=$1 shim_dir=$2 zsh_dir=$3 docs=$OUT/docs examples=/usr/share/doc/memlock-run/examples
    rm -rf "$dir"
    install -D -m 0755 "$BIN/memlock-run" "$dir/usr/bin/memlock-run"
    install -D -m 0644 "$BIN/libmemlock_run_shim.so" "$dir$shim_dir/libmemlock_run_shim.so"
    install -D -m 0755 packaging/memlock-run-privilege "$dir/usr/sbin/memlock-run-privilege"
    install -D -m 0644 packaging/etc/memlock-run "$dir/etc/default/memlock-run"
    install -D -m 0644 "$docs/man/memlock-run.1.gz" "$dir/usr/share/man/man1/memlock-run.1.gz"
    install -D -m 0644 "$docs/completions/memlock-run.bash" "$dir/usr/share/bash-completion/completions/memlock-run"
    install -D -m 0644 "$docs/completions/_memlock-run" "$dir$zsh_dir/_memlock-run"
    install -D -m 0644 "$docs/completions/memlock-run.fish" "$dir/usr/share/fish/vendor_completions.d/memlock-run.fish"
    install -D -m 0644 packaging/systemd/memlock-run-example.service "$dir$examples/memlock-run-example.service"
    install -D -m 0644 packaging/systemd/memlock-run-dropin.conf "$dir$examples/memlock-run-dropin.conf"
}

if [ "$KIND" = deb ]; then
    command -v dpkg-deb >/dev/null || die "dpkg-deb is missing: apt-get install dpkg"
    pkg=$OUT/deb-root
    stage "$pkg" "/usr/lib/$tuple/memlock-run" /usr/share/zsh/vendor-completions
    install -D -m 0644 packaging/debian/copyright "$pkg/usr/share/doc/memlock-run/copyright"
    mkdir -m 0755 "$pkg/DEBIAN"
    install -m 0755 packaging/debian/postinst packaging/debian/postrm "$pkg/DEBIAN/"
    install -m 0644 packaging/debian/conffiles "$pkg/DEBIAN/"
    (cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) >"$pkg/DEBIAN/md5sums"
    size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f 1)
    sed -e "s/@VERSION@/$VERSION-1/" -e "s/@ARCH@/$deb_arch/" -e "s/@INSTALLED_SIZE@/$size/" \
        -e "s/@LIBC@/$libc_needs/" packaging/debian/control.in >"$pkg/DEBIAN/control"
    find "$pkg" -exec touch -h -d "@$epoch" {} +
    deb=$OUT/memlock-run_$VERSION-1_$deb_arch.deb
    step "dpkg-deb --build: $(basename "$deb"), Depends: $(sed -n 's/^Depends: //p' "$pkg/DEBIAN/control")"
    # xz: what dpkg has read since Debian 6 and Ubuntu 10.04 (zstd needs dpkg 1.21.18).
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
    echo "$deb"
else
    command -v rpmbuild >/dev/null || die "rpmbuild is missing: apt-get install rpm (Debian) or dnf install rpm-build"
    pkg=$OUT/rpm-root
    stage "$pkg" /usr/lib64/memlock-run /usr/share/zsh/site-functions
    find "$pkg" -exec touch -h -d "@$epoch" {} +
    rm -rf "$OUT/rpmbuild"
    step "rpmbuild -bb packaging/rpm/memlock-run.spec (gzip payload; Requires from the binaries)"
    # --nodeps: the spec has no build requirements, and Debian's rpm database is empty.
    SOURCE_DATE_EPOCH=$epoch rpmbuild -bb --nodeps --target "$rpm_arch-linux" \
        --define "_topdir $OUT/rpmbuild" --define "_rpmdir $OUT" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "staged $pkg" --define "pkg_version $VERSION" --define "scripts $ROOT/packaging/rpm" \
        packaging/rpm/memlock-run.spec >"$OUT/rpmbuild.log" 2>&1 || {
        cat "$OUT/rpmbuild.log" >&2
        die "rpmbuild failed (log above)"
    }
    echo "$OUT/memlock-run-$VERSION-1.$rpm_arch.rpm"
fi
