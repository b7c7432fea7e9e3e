#!/usr/bin/env bash
# The JVM recipe's measurement (docs/jvm.md): G1Bench under each way of locking, REPEAT
# times each, with its GC time total, wall time, VmRSS and VmLck at the end.
# Usage: bench/jvm/run.sh [REPEAT]   (memlock-run from target/release, or $MEMLOCK_RUN)
set -euo pipefail
cd "$(dirname "$0")"
repeat=${1:-5}
memlock_run=${MEMLOCK_RUN:-../../target/release/memlock-run}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
javac -d "$work" G1Bench.java
jvm=(java -XX:+UseG1GC -Xms64m -Xmx1g -cp "$work" G1Bench)
declare -A modes=(
  [plain]=""
  [current]="$memlock_run --"
  [future]="$memlock_run --future --"
  [onfault-future]="$memlock_run --onfault --future --"
)
echo "java: $(java -version 2>&1 | head -1)"
for mode in ${MODES:-plain current onfault-future future}; do
  for ((i = 0; i < repeat; i++)); do
    # shellcheck disable=SC2086 # the prefix is words
    echo "$mode $(${modes[$mode]} "${jvm[@]}")"
  done
# The other recipe: the whole heap committed and touched at start, then MCL_FUTURE.
pretouch=(java -XX:+UseG1GC -Xms1g -Xmx1g -XX:+AlwaysPreTouch -cp "$work" G1Bench)
for mode in plain future; do
  for ((i = 0; i < repeat; i++)); do
    # shellcheck disable=SC2086 # the prefix is words
    echo "pretouch-$mode $(${modes[$mode]} "${pretouch[@]}")"
  done
done
done
# The other recipe: the whole heap committed and touched at start, then MCL_FUTURE.
pretouch=(java -XX:+UseG1GC -Xms1g -Xmx1g -XX:+AlwaysPreTouch -cp "$work" G1Bench)
for mode in plain future; do
  for ((i = 0; i < repeat; i++)); do
    # shellcheck disable=SC2086 # the prefix is words
    echo "pretouch-$mode $(${modes[$mode]} "${pretouch[@]}")"
  done
done
