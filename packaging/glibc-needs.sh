#!/usr/bin/env bash
# packaging/glibc-needs.sh [--max VERSION] ELF...: the newest glibc symbol version the ELF
# files need, read from their version-needs tables (readelf -V: the GLIBC_x.y that ld.so
# checks at load time), not from the machine they were built on.
#
# Prints one line per file on stderr ("FILE: GLIBC_2.17 (dlsym, ...)": the newest version and
# the symbols that need it), and the newest version over all files on stdout ("2.17"), which
# packaging/build.sh turns into the packages' libc dependency. With --max VERSION, exits 1
# when any file needs more than VERSION.
set -euo pipefail

die() {
    echo "glibc-needs.sh: $*" >&2
    exit 2
}
max=
if [ "${1:-}" = --max ]; then
    [ $# -ge 2 ] || die "--max needs a version, such as 2.17"
    max=$2
    shift 2
fi
[ $# -ge 1 ] || die "usage: packaging/glibc-needs.sh [--max VERSION] ELF..."
command -v readelf >/dev/null || die "readelf is missing: apt-get install binutils"

# version_le A B: A <= B as dotted versions.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }

newest=
over=()
for file in "$@"; do
    [ -f "$file" ] || die "$file: no such file"
    readelf -h "$file" >/dev/null 2>&1 || die "$file: not an ELF file"
    # "Name: GLIBC_2.17" lines of .gnu.version_r. A file that needs no versioned glibc
    # symbol (static, or no libc at all) has none.
    versions=$(readelf -V -W "$file" | sed -n 's/.*Name: GLIBC_\([0-9.]*\).*/\1/p' | sort -uV)
    if [ -z "$versions" ]; then
        echo "$file: no versioned glibc symbol" >&2
        continue
    fi
    top=$(echo "$versions" | tail -n 1)
    symbols=$(readelf --dyn-syms -W "$file" | awk -v v="@GLIBC_$top" 'index($8, v) { sub(/@.*/, "", $8); print $8 }' |
        sort -u | head -n 5 | paste -sd, | sed 's/,/, /g')
    echo "$file: GLIBC_$top ($symbols)" >&2
    if [ -z "$newest" ] || ! version_le "$top" "$newest"; then newest=$top; fi
    if [ -n "$max" ] && ! version_le "$top" "$max"; then over+=("$file needs GLIBC_$top ($symbols)"); fi
done
[ -n "$newest" ] || newest=0
echo "$newest"
if ((${#over[@]})); then
    for line in "${over[@]}"; do
        echo "glibc-needs.sh: $line, above the glibc $max these packages promise;" \
            "build with packaging/build.sh (cargo zigbuild for the glibc $max target) or remove the newer symbol" >&2
    done
    exit 1
fi
