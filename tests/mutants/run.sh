#!/usr/bin/env bash
# Mutation testing of the code that guards memlock-run's promise (tests/mutants/README.md).
#
#   tests/mutants/run.sh [GROUP...]     every group (tests/mutants/*.toml) when none is named
#
# Each group is a cargo-mutants config file: the source files to mutate, the test targets
# that are meant to catch a bug there, and the mutants excluded as equivalent, each with its
# reason. For every group this runs the group's tests once on the unmutated tree, then
# cargo-mutants, then prints caught / missed / timeout / unviable and the score. Exit status
# 0 when no group has a missed mutant, 2 when one has (its names are printed), 1 on error.
#
# Environment: JOBS (cargo-mutants --jobs, default 1: the tests start real processes and
# measure memory, and two at once on a 2-core machine only slow each other), TIMEOUT
# (seconds a mutant's tests may take, default 120: the unmutated tests of a group take 2 to
# 15 s), OUT (where results go, default target/mutants).
set -euo pipefail
cd "$(dirname "$0")/../.."

JOBS=${JOBS:-1}
TIMEOUT=${TIMEOUT:-120}
OUT=${OUT:-target/mutants}

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "run.sh: cargo-mutants is missing: cargo install --locked cargo-mutants@27.1.0" >&2
    exit 1
fi

if (($#)); then
    groups=("$@")
else
    groups=()
    for cfg in tests/mutants/*.toml; do groups+=("$(basename "$cfg" .toml)"); done
fi

# `cargo test` arguments of a group, one per line: -p for each test package, then the
# targets. cargo-mutants 27 runs its own baseline with the mutated package's tests only
# (not the test packages the config names), which would fail on `--test NAME`; so its
# baseline is skipped and this one runs instead.
test_args() {
    python3 - "$1" <<'EOF'
import sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
for p in cfg.get("test_package", []):
    print("-p"); print(p)
for a in cfg.get("additional_cargo_test_args", []):
    print(a)
EOF
}

# caught / missed / timeout / unviable of one group's outcomes.json. A shim mutant that does
# not compile fails inside the tests (they build the shim with a nested `cargo build`), so a
# "caught" mutant whose log says that build failed is counted as unviable.
summarize() {
    python3 - "$1" "$2" <<'EOF'
import json, os, sys
group, out = sys.argv[1], sys.argv[2]
data = json.load(open(os.path.join(out, "outcomes.json")))
counts = {"caught": 0, "missed": 0, "timeout": 0, "unviable": 0}
missed = []
for o in data["outcomes"]:
    m = o["scenario"]
    if not isinstance(m, dict) or "Mutant" not in m:
        continue
    kind = {"CaughtMutant": "caught", "MissedMutant": "missed", "Timeout": "timeout",
            "Unviable": "unviable"}.get(o["summary"], o["summary"])
    if kind == "caught":
        log = open(os.path.join(out, o["log_path"]), errors="replace").read()
        if "cargo build of memlock-run and its shim failed" in log:
            kind = "unviable"
    counts[kind] = counts.get(kind, 0) + 1
    if kind == "missed":
        missed.append(m["Mutant"]["name"])
viable = counts["caught"] + counts["missed"] + counts["timeout"]
score = 100.0 * (counts["caught"] + counts["timeout"]) / viable if viable else 100.0
print(f"{group:10} caught {counts['caught']:4}  missed {counts['missed']:3}  "
      f"timeout {counts['timeout']:3}  unviable {counts['unviable']:3}  score {score:5.1f}%")
for name in missed:
    print(f"  MISSED {name}")
sys.exit(2 if missed else 0)
EOF
}

mkdir -p "$OUT"
status=0
summary=()
for group in "${groups[@]}"; do
    cfg=tests/mutants/$group.toml
    [[ -f $cfg ]] || { echo "run.sh: no group $group ($cfg)" >&2; exit 1; }
    mapfile -t args < <(test_args "$cfg")
    echo "== $group: the group's tests, unmutated: cargo test ${args[*]}"
    if ! cargo test --quiet "${args[@]}" >"$OUT/$group.baseline.log" 2>&1; then
        echo "run.sh: the tests of group $group fail without a mutant: $OUT/$group.baseline.log" >&2
        exit 1
    fi
    echo "== $group: cargo mutants --config $cfg"
    rm -rf "$OUT/$group"
    # Exit 2 (missed) and 3 (timeout) are judged below; anything else is an error.
    rc=0
    cargo mutants --config "$cfg" --baseline skip --timeout "$TIMEOUT" --build-timeout 900 \
        --jobs "$JOBS" --no-shuffle --output "$OUT/$group" || rc=$?
    if ((rc != 0 && rc != 2 && rc != 3)); then
        echo "run.sh: cargo mutants failed for group $group (exit $rc)" >&2
        exit 1
    fi
    line=$(summarize "$group" "$OUT/$group/mutants.out") || status=2
    echo "$line"
    summary+=("$line")
done

echo
echo "== mutation score per group (caught + timeout) / (caught + missed + timeout)"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
exit "$status"
