#!/bin/sh
# The memlock-run benchmark suite, in one command:
#
#   bench/run.sh [--rounds N] [--scale F]
#                [--only launch|methods|executes|inheritance|footprint|prefault|steady|pressure|latency|huge]...
#                [--bin-dir DIR]   (memlock-run and its shim from DIR, default target/release)
#
# Installs what is missing (hyperfine, gcc, python3, and for latency stress-ng, rt-tests and
# python3-matplotlib; with apt-get), builds memlock-run and its shim (cargo build --release)
# and the C programs (into target/bench), runs every measurement,
# prints the tables and writes them to bench/results/latest.md. Needs root: memory locking
# beyond the 8 MiB default limit and process_madvise on another process need it. Not part of
# the tests: it takes minutes and its figures depend on the machine.
set -eu
cd "$(dirname "$0")/.."

packages=""
command -v hyperfine >/dev/null 2>&1 || packages="$packages hyperfine"
command -v gcc >/dev/null 2>&1 || packages="$packages gcc libc6-dev"
command -v python3 >/dev/null 2>&1 || packages="$packages python3"
command -v stdbuf >/dev/null 2>&1 || packages="$packages coreutils"
# The latency section's memory hog, cyclictest, and its plot. matplotlib is the distribution's,
# so the harness runs on the distribution's python3 where there is one (a python3 earlier in
# PATH, pyenv's say, would not see it).
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
command -v stress-ng >/dev/null 2>&1 || packages="$packages stress-ng"
command -v cyclictest >/dev/null 2>&1 || packages="$packages rt-tests"
"$python" -c 'import matplotlib' >/dev/null 2>&1 || packages="$packages python3-matplotlib"
if [ -n "$packages" ]; then
    echo "bench: installing$packages" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq $packages >/dev/null
fi
# --shell=none (-N) came with hyperfine 1.13; older distributions ship older ones.
PATH="$PWD/target/bench/tools/bin:$PATH"
export PATH
if ! hyperfine --help 2>/dev/null | grep -q -- '--shell=none\|-N, --'; then
    echo "bench: hyperfine $(hyperfine --version 2>/dev/null) lacks --shell=none; installing a newer one with cargo" >&2
    cargo install --quiet --locked --root target/bench/tools hyperfine
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "bench: run as root: the suite locks more than the default RLIMIT_MEMLOCK and uses process_madvise" >&2
    exit 1
fi

cargo build --release --workspace --quiet
build=target/bench
mkdir -p "$build"
# No stack-clash probes: the seeds' touch loop must fault the pages itself, in its own order.
gcc -O2 -Wall -Wextra -fno-stack-clash-protection -o "$build/probe" bench/probe.c
gcc -O2 -Wall -Wextra -fno-stack-clash-protection -static -o "$build/probe-static" bench/probe.c
gcc -O2 -Wall -Wextra -o "$build/holder" tests/probes/probe.c
gcc -O2 -Wall -Wextra -o "$build/pageout" tests/probes/pageout.c
gcc -O2 -Wall -Wextra -o "$build/latency" bench/latency.c
exec "$python" bench/bench.py --build-dir "$build" "$@"
