#!/usr/bin/env python3
"""The memlock-run benchmark suite: what memlock-run costs and what it buys, side by side.

Run through bench/run.sh, which installs what is missing and builds everything first. Every
figure that matters is a ratio or a difference of two measurements taken in the same run:
timings come from hyperfine (no shell, warm-up runs). A command's runs are split into many
short rounds, one hyperfine call per round with the commands' order rotated, so that changes
in the machine's load (other builds) fall on every command alike instead of on whichever ran
during them. For each command the table gives the median and the min and max over all runs,
and the CPU time (user + system) hyperfine measured, a figure that waiting for a busy CPU
does not inflate.

The latency section (issue 21) measures instead how late a periodic loop runs in a memory cgroup that is
short of memory, with swap, plain against locked; it builds that scenario for its run and takes it down
after (memory_pressure.py), and draws its figures with matplotlib.

The goals are those of issue 6. Where one is missed, the table says so and by how much; the
measurements are the same whatever the goal.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import memory_pressure

MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent


def ms(seconds):
    return f"{seconds * 1000:.2f}"


def soft_stack_limit(limit):
    """A preexec_fn that sets the soft RLIMIT_STACK of the child to `limit` (None: leave it)."""

    def set_limit():
        if limit is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_STACK)
            resource.setrlimit(resource.RLIMIT_STACK, (limit, hard))

    return set_limit


def cell(text):
    """Text for a Markdown table cell: a bare | would end the cell, even inside backticks."""
    return text.replace("|", "\\|")


def pct(sorted_values, q):
    """The q-quantile of sorted values, by nearest rank."""
    return sorted_values[min(len(sorted_values) - 1, max(0, int(len(sorted_values) * q + 0.5) - 1))]


def spread(values, fmt="{:g}"):
    """A range of per-run figures, "low–high" (one figure when they agree)."""
    values = [v for v in values if v is not None]
    if not values:
        return "?"
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}–{high}"


class Timing:
    """All runs of one command, pooled over the rounds, in seconds."""

    def __init__(self, label, command):
        self.label = label
        self.command = command
        self.times = []
        self.cpu = []  # (user + system) mean of each round, weighted by its runs

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def min(self):
        return min(self.times)

    @property
    def max(self):
        return max(self.times)

    @property
    def cpu_mean(self):
        return sum(cpu * n for cpu, n in self.cpu) / sum(n for _, n in self.cpu)

    def row(self):
        return (f"| {cell(self.label)} | `{cell(shlex.join(self.command))}` | {ms(self.median)} | {ms(self.min)} | "
                f"{ms(self.max)} | {ms(self.cpu_mean)} | {len(self.times)} |")


# An unprivileged user, as the tests run one (the bench itself runs as root).
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
TIMING_HEADER = ["| what | command | median ms | min ms | max ms | CPU ms (mean) | runs |",
                 "|---|---|---:|---:|---:|---:|---:|"]


class Suite:
    def __init__(self, args):
        self.args = args
        self.build = Path(args.build_dir)
        bin_dir = Path(args.bin_dir) if args.bin_dir else ROOT / "target/release"
        self.memlock_run = str(bin_dir / "memlock-run")
        self.shim = bin_dir / "libmemlock_run_shim.so"
        self.probe = str(self.build / "probe")
        self.pageout = str(self.build / "pageout")
        self.python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else os.path.realpath(shutil.which("python3"))
        self.lines = []
        self.goals = []
        self.help = subprocess.run([self.memlock_run, "--help"], capture_output=True, text=True, check=True).stdout

    # -- output -------------------------------------------------------------------------

    def out(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def goal(self, name, measured, target, met, gap, checks=()):
        """Records a goal, judged on `met` (medians). `checks` are (figure, value, met) by other estimators
        (minima, CPU time); where they disagree with the medians the verdict says so rather than pick one."""
        verdict = "met" if met else f"MISSED: {gap}"
        others = [f"{figure} {value}" for figure, value, other in checks if other != met]
        if others:
            verdict += (f"; {'missed' if met else 'met'} by {', '.join(others)}: this machine's load decides it, "
                        "not settled")
        self.goals.append((name, measured, target, verdict))

    def table(self, timings):
        """The timings of one hyperfine measurement, as a table and a blank line."""
        self.out("\n".join(TIMING_HEADER))
        for timing in timings.values():
            self.out(timing.row())
        self.out()

    # -- harness ------------------------------------------------------------------------

    def hyperfine(self, commands, runs, warmup, stack_limit=None):
        """Times `commands` ((label, argv) pairs): `runs` runs each, over `self.args.rounds` hyperfine calls."""
        timings = [Timing(label, argv) for label, argv in commands]
        per_round = max(2, round(runs * self.args.scale / self.args.rounds))

        for round_ in range(self.args.rounds):
            shift = round_ % len(timings)
            order = timings[shift:] + timings[:shift]
            with tempfile.NamedTemporaryFile(suffix=".json") as export:
                argv = ["hyperfine", "--shell=none", "--style=none", f"--warmup={warmup}", f"--runs={per_round}",
                        f"--export-json={export.name}"]
                for timing in order:
                    argv += ["--command-name", timing.label, shlex.join(timing.command)]
                # hyperfine's warnings (outliers, a slow first run) go to stderr; the spread is in the table.
                done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=soft_stack_limit(stack_limit))
                if done.returncode != 0:
                    sys.exit(f"bench: hyperfine failed: {done.stderr.strip()}")
                results = json.load(open(export.name))["results"]
            for timing, result in zip(order, results):
                assert result["command"] == timing.label, (result["command"], timing.label)
                if any(code != 0 for code in result.get("exit_codes", [])):
                    sys.exit(f"bench: {timing.label} failed: {shlex.join(timing.command)}")
                timing.times += result["times"]
                timing.cpu.append((result["user"] + result["system"], len(result["times"])))
        return {t.label: t for t in timings}

    def check_runs(self, argv, stack_limit=None):
        """Runs a command once so that a failure shows its message instead of a hyperfine error."""
        done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=soft_stack_limit(stack_limit))
        if done.returncode != 0:
            sys.exit(f"bench: {shlex.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")

    # -- 1. launch ----------------------------------------------------------------------

    def launch(self):
        self.out("## 1. Launch cost")
        self.out()
        self.out("A C program that exits at once. memlock-run's added time is its start minus the start of the same "
                 "program calling mlockall(MCL_CURRENT) itself; stdbuf's is its start minus a plain start.")
        self.out()
        self.out("The rows below the line take each launcher apart, to show where a difference comes from: the "
                 "launcher process alone (`memlock-run --dry-run` does all its work but the exec, and prints its plan; "
                 "`stdbuf --version` starts stdbuf and prints), and each preload library inside the target, started "
                 "through env(1) against the same target through env(1) without it.")
        self.out()
        p, m = self.probe, self.memlock_run
        commands = [
            ("plain", [p, "exit"]),
            ("self-locking", [p, "lock"]),
            ("stdbuf -o0", ["stdbuf", "-o0", p, "exit"]),
            ("memlock-run", [m, "--", p, "exit"]),
            ("memlock-run --no-inherit", [m, "--no-inherit", "--", p, "exit"]),
            ("launcher alone: stdbuf --version", ["stdbuf", "--version"]),
            ("launcher alone: memlock-run --dry-run", [m, "--dry-run", "--", p, "exit"]),
            ("env, plain", ["env", p, "exit"]),
            ("env, self-locking", ["env", p, "lock"]),
            ("env, memlock-run's shim preloaded", ["env", f"LD_PRELOAD={self.shim}", p, "exit"]),
        ]
        libstdbuf = next((lib for lib in ["/usr/libexec/coreutils/libstdbuf.so", "/usr/lib/coreutils/libstdbuf.so",
                                          "/usr/lib64/coreutils/libstdbuf.so"] if os.path.exists(lib)), None)
        if libstdbuf:
            commands.append(("env, stdbuf's libstdbuf.so preloaded", ["env", f"LD_PRELOAD={libstdbuf}", "_STDBUF_O=0",
                                                                      p, "exit"]))
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=1000, warmup=5)
        self.out("\n".join(TIMING_HEADER))
        for i, timing in enumerate(t.values()):
            if i == 5:
                self.out("| | | | | | | |")
            self.out(timing.row())

        def diff(a, b):
            return (t[a].median - t[b].median, t[a].min - t[b].min, t[a].cpu_mean - t[b].cpu_mean)

        self.out()
        self.out("| added time | median ms | from minima ms | CPU ms |")
        self.out("|---|---:|---:|---:|")
        rows = [
            ("memlock-run: memlock-run minus self-locking", diff("memlock-run", "self-locking")),
            ("stdbuf -o0: stdbuf -o0 minus plain", diff("stdbuf -o0", "plain")),
            ("the exec gate (and the shim in what COMMAND executes): memlock-run minus memlock-run --no-inherit",
             diff("memlock-run", "memlock-run --no-inherit")),
            ("launcher process: memlock-run --dry-run minus stdbuf --version",
             diff("launcher alone: memlock-run --dry-run", "launcher alone: stdbuf --version")),
            ("in the target: shim minus self-locking (through env)",
             diff("env, memlock-run's shim preloaded", "env, self-locking")),
        ]
        if libstdbuf:
            rows.append(("in the target: libstdbuf.so minus plain (through env)",
                         diff("env, stdbuf's libstdbuf.so preloaded", "env, plain")))
        for name, (med, low, cpu) in rows:
            self.out(f"| {name} | {ms(med)} | {ms(low)} | {ms(cpu)} |")
        added, added_min, added_cpu = rows[0][1]
        stdbuf, stdbuf_min, stdbuf_cpu = rows[1][1]
        self.out()
        self.out(f"- memlock-run adds {added / stdbuf:.2f}x what stdbuf -o0 adds ({added_min / stdbuf_min:.2f}x from "
                 "the minima).")
        self.goal("launch: memlock-run's added time <= stdbuf -o0's", f"{ms(added)} ms vs {ms(stdbuf)} ms "
                  f"({added / stdbuf:.2f}x); CPU time {added_cpu / stdbuf_cpu:.2f}x", "<= 1.00x", added <= stdbuf,
                  f"{ms(added - stdbuf)} ms more ({(added / stdbuf - 1) * 100:.0f}% over)",
                  [("minima", f"{added_min / stdbuf_min:.2f}x", added_min <= stdbuf_min),
                   ("CPU time", f"{added_cpu / stdbuf_cpu:.2f}x", added_cpu <= stdbuf_cpu)])
        self.out()

        self.out("### python3")
        self.out()
        self.out(f"`{self.python}` running `import ctypes; ctypes.CDLL(None)` in every case, so that all cases run "
                 "the same Python code; the self-locking start adds the mlockall(MCL_CURRENT) call through ctypes at "
                 "the end of that code, when everything Python maps at start is mapped. memlock-run locks from its "
                 "constructor, before Python initialises: MCL_CURRENT then covers what is mapped at that moment and "
                 "--future also what Python maps afterwards, so --future is the like-for-like comparison of locked "
                 "memory and plain memlock-run the cheaper, narrower one. Both are shown.")
        self.out()
        py, code = self.python, "import ctypes; ctypes.CDLL(None)"
        lock_code = "import ctypes, sys; sys.exit(ctypes.CDLL(None).mlockall(1))"
        commands = [
            ("python3 plain", [py, "-c", code]),
            ("python3 self-locking", [py, "-c", lock_code]),
            ("python3 stdbuf -o0", ["stdbuf", "-o0", py, "-c", code]),
            ("python3 memlock-run", [m, "--", py, "-c", code]),
            ("python3 memlock-run --future", [m, "--future", "--", py, "-c", code]),
        ]
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=200, warmup=2)
        self.table(t)
        base = t["python3 self-locking"]
        for label in ["python3 memlock-run", "python3 memlock-run --future"]:
            ratio = t[label].median / base.median
            ratio_min = t[label].min / base.min
            ratio_cpu = t[label].cpu_mean / base.cpu_mean
            self.out(f"- {label} / self-locking: {ratio:.3f}x (medians), {ratio_min:.3f}x (minima), "
                     f"{ratio_cpu:.3f}x (CPU time)")
            self.goal(f"launch: {label.removeprefix('python3 ')} -- python3 <= 1.1x self-locking start",
                      f"{ratio:.3f}x; CPU time {ratio_cpu:.3f}x", "<= 1.10x", ratio <= 1.1,
                      f"{(ratio - 1.1) * 100:.1f} points over",
                      [("minima", f"{ratio_min:.3f}x", ratio_min <= 1.1),
                       ("CPU time", f"{ratio_cpu:.3f}x", ratio_cpu <= 1.1)])
        self.out()

    # -- 1b. the two methods ------------------------------------------------------------

    def methods(self):
        self.out("## 1b. The two methods")
        self.out()
        self.out("The same dynamically linked program, locked by the preload shim and by the ptrace method "
                 "(`--method ptrace`: a helper process, the exec traced, the new image run to its entry point with a "
                 "hardware breakpoint, mlockall injected through its vDSO, then detached), against the program "
                 "locking itself; and the same program linked statically, which only the ptrace method reaches.")
        self.out()
        p, ps, m = self.probe, self.probe + "-static", self.memlock_run
        commands = [
            ("self-locking", [p, "lock"]),
            ("memlock-run --method preload", [m, "--method", "preload", "--", p, "exit"]),
            ("memlock-run --method ptrace", [m, "--method", "ptrace", "--", p, "exit"]),
            ("static, self-locking", [ps, "lock"]),
            ("static, memlock-run (ptrace)", [m, "--", ps, "exit"]),
        ]
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=500, warmup=5)
        self.table(t)
        pre = t["memlock-run --method preload"].median - t["self-locking"].median
        ptr = t["memlock-run --method ptrace"].median - t["self-locking"].median
        sta = t["static, memlock-run (ptrace)"].median - t["static, self-locking"].median
        self.out(f"- added over self-locking (medians): preload {ms(pre)} ms, ptrace {ms(ptr)} ms "
                 f"(+{ms(ptr - pre)} ms for the helper and the injection); static program through ptrace {ms(sta)} ms.")
        self.goal("methods: ptrace start-up costs <= 1 ms more than the preload", f"+{ms(ptr - pre)} ms",
                  "<= 1 ms", ptr - pre <= 0.001, f"{ms(ptr - pre - 0.001)} ms over")
        self.out()

        self.out("### --pid against resident size")
        self.out()
        self.out("A process with SIZE of anonymous memory, locked by `memlock-run --pid` (the time it reports: "
                 "attach, stop, mlockall, detach); touched: every page resident first, so mlockall only marks and "
                 "pins them; mapped only: mlockall populates them too. Median of 5 fresh processes each.")
        self.out()
        self.out("| SIZE | touched: --pid ms | mapped only: --pid ms |")
        self.out("|---|---:|---:|")
        holder = str(self.build / "holder")
        for mib in [64, 256, 1024]:
            row = []
            for touch in [True, False]:
                times = []
                for _ in range(5):
                    argv = [holder, "--map", str(mib)] + (["--touch", str(mib)] if touch else [])
                    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    pid = int(proc.stdout.readline().split()[1])
                    done = subprocess.run([m, "--pid", str(pid)], capture_output=True, text=True)
                    proc.stdin.close()
                    proc.wait()
                    if done.returncode != 0:
                        sys.exit(f"bench: memlock-run --pid failed: {done.stderr.strip()}")
                    times.append(float(done.stdout.rsplit(" in ", 1)[1].split()[0]))
                row.append(statistics.median(times))
            self.out(f"| {mib} MiB | {row[0]:.1f} | {row[1]:.1f} |")
        self.out()

    # -- 1c. what COMMAND executes --------------------------------------------------------

    def executes(self):
        self.out("## 1c. Programs COMMAND executes")
        self.out()
        self.out("A shell that runs the same program 20 times, under memlock-run. With `--no-inherit` the programs "
                 "run unlocked and unjudged; inherited, the shim in the shell judges each exec (the file's headers, "
                 "the environment it gets), and memlock-run's exec gate judges it again from outside, and "
                 "each program is locked, by the shim for the dynamically linked one, "
                 "through memlock-run and its ptrace method for the static one. As nobody with `--no-dump`, "
                 "memlock-run sets no_new_privs to arm the gate, and the gate, which may not read the shell's "
                 "non-dumpable memory, takes the shim's word (a prctl per exec) instead.")
        self.out()
        p, ps, m = self.probe, self.probe + "-static", self.memlock_run
        def loop(program):
            return ["/bin/sh", "-c", f"for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do {program} exit; done"]
        commands = [
            ("no-inherit, 20 dynamic", [m, "--no-inherit", "--"] + loop(p)),
            ("inherited, 20 dynamic", [m, "--"] + loop(p)),
            ("no-inherit, 20 static", [m, "--no-inherit", "--"] + loop(ps)),
            ("inherited, 20 static", [m, "--"] + loop(ps)),
            ("nobody, no-inherit, 20 dynamic", NOBODY + [m, "--no-dump", "--no-inherit", "--"] + loop(p)),
            ("nobody, inherited, 20 dynamic", NOBODY + [m, "--no-dump", "--"] + loop(p)),
        ]
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=60, warmup=2)
        self.table(t)
        dyn = (t["inherited, 20 dynamic"].median - t["no-inherit, 20 dynamic"].median) / 20
        sta = (t["inherited, 20 static"].median - t["no-inherit, 20 static"].median) / 20
        word = (t["nobody, inherited, 20 dynamic"].median - t["nobody, no-inherit, 20 dynamic"].median) / 20
        self.out(f"- added per program executed (medians): dynamically linked {ms(dyn)} ms (the judgement and the "
                 f"shim's lock); static {ms(sta)} ms (the judgement, a run of memlock-run and its ptrace method); "
                 f"as nobody with --no-dump, dynamically linked {ms(word)} ms (the shim's judgement, its word to "
                 f"the gate, its lock).")
        self.out()

    # -- 1d. inheritance ---------------------------------------------------------------

    def make_project(self):
        """A small C project (16 sources and a header) in the build directory, for make."""
        project = (self.build / "project").resolve()
        project.mkdir(exist_ok=True)
        (project / "common.h").write_text("int f0(int);\n" + "".join(f"int f{i}(int);\n" for i in range(1, 16)))
        for i in range(16):
            body = f"return x * {i + 1} + {i};" if i else "return x;"
            (project / f"f{i}.c").write_text(f'#include "common.h"\n#include <stdio.h>\nint f{i}(int x) {{ {body} }}\n')
        (project / "main.c").write_text('#include "common.h"\n#include <stdio.h>\nint main(void) { int s = 0;\n'
                                        + "".join(f"    s += f{i}({i});\n" for i in range(16))
                                        + '    printf("%d\\n", s); return 0; }\n')
        objects = " ".join(f"f{i}.o" for i in range(16)) + " main.o"
        (project / "Makefile").write_text(f"app: {objects}\n\t$(CC) -o $@ $^\n%.o: %.c common.h\n\t$(CC) -O1 -c $<\n"
                                          "clean:\n\trm -f *.o app\n")
        return project

    def gate_cpu(self, options, script, runs=5):
        """The exec gate's own CPU time, in seconds (median of `runs`), over one run of the shell
        `script` under memlock-run OPTIONS: the script's shell reads the gate's
        /proc/PID/schedstat (its first field: ns on a CPU) once the script is done."""
        tail = '; g=$(echo "$MEMLOCK_RUN_GATE" | cut -d: -f2); cut -d" " -f1 /proc/"$g"/schedstat'
        values = []
        for _ in range(runs):
            out = subprocess.run([self.memlock_run, *options, "--", "/bin/sh", "-c", script + tail],
                                 capture_output=True, text=True)
            last = out.stdout.split()[-1:] if out.returncode == 0 else []
            if not last or not last[0].isdigit():
                sys.exit(f"bench: the exec gate's CPU time could not be read: {out.stdout!r} {out.stderr!r}")
            values.append(int(last[0]) / 1e9)
        return statistics.median(values)

    def inheritance(self):
        self.out("## 1d. Inheritance: what a tree of programs pays")
        self.out()
        self.out("A shell loop of 300 short programs, and `make -j2` of a small C project (17 compilations and a "
                 "link: each a cc, cc1, as and collect2/ld), under memlock-run (the default: every program locked, "
                 "judged by the shim and the exec gate), `--no-exec-gate` (judged by the shim alone), `--no-inherit` "
                 "(the shell or make locked, what it runs unlocked and unjudged), against the same loop of programs "
                 "that lock themselves (mlockall(MCL_CURRENT) in their own code, the shell unlocked) and plain.")
        self.out()
        p, m = self.probe, self.memlock_run
        count = 300

        def loop(mode):
            return ["/bin/sh", "-c", f"i=0; while [ $i -lt {count} ]; do {p} {mode}; i=$((i+1)); done"]

        commands = [
            ("plain", loop("exit")),
            ("self-locking programs", loop("lock")),
            ("memlock-run", [m, "--"] + loop("exit")),
            ("memlock-run --future", [m, "--future", "--"] + loop("exit")),
            ("memlock-run --no-exec-gate", [m, "--no-exec-gate", "--"] + loop("exit")),
            ("memlock-run --no-inherit", [m, "--no-inherit", "--"] + loop("exit")),
        ]
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=20, warmup=1)
        self.out(f"### A loop of {count} programs")
        self.out()
        self.table(t)
        base = t["self-locking programs"]
        # hyperfine's CPU time counts the processes it waits for; the exec gate runs beside
        # COMMAND, not under it, so its own CPU time is read apart: /proc/GATE/schedstat's first
        # field, its time on a CPU in ns, at the end of the same loop.
        gate_cpu = {label: self.gate_cpu(options, loop("exit")[2])
                    for label, options in (("memlock-run", []), ("memlock-run --future", ["--future"]))}
        for label in ("memlock-run", "memlock-run --future"):
            ratio = t[label].median / base.median
            cpu = (t[label].cpu_mean + gate_cpu[label]) / base.cpu_mean
            self.goal(f"inheritance: a loop of {count} programs under {label} <= 1.15x the programs locking themselves",
                      f"{ratio:.2f}x ({ms(t[label].median)} ms vs {ms(base.median)} ms); CPU time, the gate's "
                      f"included, {cpu:.2f}x",
                      "<= 1.15x", ratio <= 1.15, f"{ratio - 1.15:.2f} over",
                      [("CPU time", f"{cpu:.2f}x", cpu <= 1.15)])
        each = (t["memlock-run"].median - base.median) / count
        gate = (t["memlock-run"].median - t["memlock-run --no-exec-gate"].median) / count
        self.out(f"- each program costs {ms(each)} ms more under memlock-run than locking itself (medians), "
                 f"{ms(gate)} ms of it the exec gate's judgement (memlock-run against --no-exec-gate); the rest is "
                 "the shim's judgement in the shell, the shim's start in the program (reading its settings, the "
                 "VmLck check) and the locked shell.")
        self.out(f"- the exec gate's own CPU time over the loop (its /proc/PID/schedstat, median of 5 runs, which "
                 f"hyperfine's CPU column does not hold): {ms(gate_cpu['memlock-run'])} ms, "
                 f"{gate_cpu['memlock-run'] / count * 1e6:.0f} us a program (--future: "
                 f"{gate_cpu['memlock-run --future'] / count * 1e6:.0f} us).")
        self.out()

        project = self.make_project()
        if shutil.which("make") is None or shutil.which("cc") is None:
            self.out("make or cc is missing: the make measurement is skipped.")
            self.out()
            return

        def build(*launcher):
            run = " ".join(shlex.quote(a) for a in [*launcher, "make", "-s", "-j2", "-C", str(project)])
            return ["/bin/sh", "-c", f"make -s -C {shlex.quote(str(project))} clean; exec {run}"]

        commands = [
            ("plain", build()),
            ("memlock-run --no-inherit", build(m, "--no-inherit", "--")),
            ("memlock-run", build(m, "--")),
        ]
        for _, argv in commands:
            self.check_runs(argv)
        t = self.hyperfine(commands, runs=10, warmup=1)
        self.out("### make -j2 of a small C project")
        self.out()
        self.table(t)
        self.out(f"- memlock-run (every compiler process locked) takes {t['memlock-run'].median / t['plain'].median:.2f}x "
                 f"plain make, --no-inherit (make alone locked) "
                 f"{t['memlock-run --no-inherit'].median / t['plain'].median:.2f}x (medians).")
        self.out()

    # -- 2. footprint -------------------------------------------------------------------

    def hold(self, argv):
        """Starts a program that prints "ready" and then waits on stdin."""
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = proc.stdout.readline()
        if ready.strip() != "ready":
            proc.kill()
            sys.exit(f"bench: {shlex.join(argv)} did not start: {ready!r}")
        return proc

    @staticmethod
    def status(pid):
        fields = {}
        for line in open(f"/proc/{pid}/status"):
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[name] = int(value.split()[0])
        return fields

    @staticmethod
    def smaps(pid):
        """[(path, {field: kB})] for every mapping of /proc/PID/smaps."""
        maps = []
        for line in open(f"/proc/{pid}/smaps"):
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                maps.append((parts[5] if len(parts) > 5 else "", {}))
            elif parts[0].endswith(":") and len(parts) >= 2 and parts[1].isdigit():
                maps[-1][1][parts[0][:-1]] = int(parts[1])
        return maps

    @staticmethod
    def page_cache_kib(path):
        """KiB of `path` in the page cache, from fincore(1) (util-linux)."""
        done = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                              capture_output=True, text=True)
        return int(done.stdout.split()[0]) // 1024 if done.returncode == 0 else float("nan")

    def footprint(self):
        self.out("## 2. Footprint")
        self.out()
        self.out("VmLck of a C program that waits on stdin: started by memlock-run (MCL_CURRENT) against the same "
                 "program calling mlockall(MCL_CURRENT) itself; and the locked pages of the shim's own mappings "
                 "(/proc/PID/smaps). Median of 5 starts each.")
        self.out()
        p, m = self.probe, self.memlock_run
        samples = {"self-locking": [], "memlock-run": []}
        shim_locked = []
        for _ in range(5):
            for label, argv in [("self-locking", [p, "hold", "lock"]), ("memlock-run", [m, "--", p, "hold"])]:
                proc = self.hold(argv)
                samples[label].append(self.status(proc.pid)["VmLck"])
                if label == "memlock-run":
                    shim_locked.append(sum(f.get("Locked", 0) for path, f in self.smaps(proc.pid)
                                           if path.endswith(self.shim.name)))
                proc.stdin.close()
                proc.wait()
        self_lck = statistics.median(samples["self-locking"])
        mlr_lck = statistics.median(samples["memlock-run"])
        diff = mlr_lck - self_lck
        shim_kib = statistics.median(shim_locked)
        size = self.shim.stat().st_size
        self.out("| what | KiB |")
        self.out("|---|---:|")
        self.out(f"| VmLck, self-locking (min–max {min(samples['self-locking'])}–{max(samples['self-locking'])}) | {self_lck:g} |")
        self.out(f"| VmLck, memlock-run (min–max {min(samples['memlock-run'])}–{max(samples['memlock-run'])}) | {mlr_lck:g} |")
        self.out(f"| difference: what memlock-run adds | {diff:g} |")
        self.out(f"| of which the shim's own mappings (smaps Locked) | {shim_kib:g} |")
        self.out(f"| shim file size ({self.shim.name}) | {size / 1024:.1f} |")
        self.out()
        self.goal("footprint: locked memory memlock-run adds <= 64 KiB", f"{diff:g} KiB", "<= 64 KiB", diff <= 64,
                  f"{diff - 64:g} KiB over")
        self.goal("footprint: shim file <= 64 KiB", f"{size / 1024:.1f} KiB", "<= 64 KiB", size <= 64 * 1024,
                  f"{(size - 65536) / 1024:.1f} KiB over")

    # -- 3. pre-faulting ----------------------------------------------------------------

    def prefault(self):
        self.out("## 3. Pre-faulting")
        self.out()
        self.out("Time to fault in and lock SIZE of stack, as the difference between a start that pre-faults and "
                 "the same start without: memlock-run --prefault SIZE minus memlock-run; the kernel populating the "
                 "range in C (grow the stack with one write, then mlockall(MCL_CURRENT); or mlockall, then "
                 "MADV_POPULATE_WRITE) minus a start that only calls mlockall(MCL_CURRENT); the seeds' loop "
                 "(mlockall(MCL_CURRENT|MCL_FUTURE), then a stack array written every 4096 bytes) minus a start that "
                 "only calls mlockall(MCL_CURRENT|MCL_FUTURE). Every command runs with a soft RLIMIT_STACK of 512 MiB "
                 "(the C programs need it, and memlock-run then has no limit to raise).")
        self.out()
        heap = "--heap" in self.help
        kinds = [("stack", ["--prefault"], "stack-mlock", "stack-populate", "stack-touch", "seeds' touch loop")]
        if heap:
            kinds.append(("heap", ["--heap"], "heap-mlock", None, "heap-touch", "seeds' malloc+memset"))
            self.out("Heap (--heap): the kernel's way in C tells glibc to keep its heap (mallopt M_TRIM_THRESHOLD -1, "
                     "M_MMAP_MAX 0), grows it with malloc(SIZE) and free, then calls mlockall(MCL_CURRENT), which "
                     "populates it; the seeds' way calls mlockall(MCL_CURRENT|MCL_FUTURE) first, then malloc(SIZE), "
                     "memset and free (under MCL_FUTURE the kernel populates the heap as it grows, and memset then "
                     "writes every byte of it).")
            self.out()
        else:
            self.out("memlock-run has no --heap option in this build, so heap pre-faulting is not measured; the "
                     "suite measures it (against the seeds' malloc+memset and glibc's heap populated by mlockall) "
                     "as soon as `memlock-run --help` lists --heap.")
            self.out()
        p, m = self.probe, self.memlock_run
        limit = 512 * MIB
        for kind, option, mlock_mode, populate_mode, touch_mode, seeds in kinds:
            for size, runs in [("8M", 200), ("256M", 40)]:
                self.out(f"### {kind}, {size}")
                self.out()
                commands = [
                    ("memlock-run", [m, "--", p, "exit"]),
                    (f"memlock-run {option[0]} {size}", [m, *option, size, "--", p, "exit"]),
                    ("C: mlockall(MCL_CURRENT)", [p, "lock"]),
                    (f"C: kernel populates by mlockall ({mlock_mode})", [p, mlock_mode, size]),
                ]
                if populate_mode:
                    commands.append((f"C: kernel populates by MADV_POPULATE_WRITE ({populate_mode})",
                                     [p, populate_mode, size]))
                commands += [
                    ("C: mlockall(MCL_CURRENT|MCL_FUTURE)", [p, "lock-future"]),
                    (f"C: {seeds} ({touch_mode})", [p, touch_mode, size]),
                ]
                for _, argv in commands:
                    self.check_runs(argv, stack_limit=limit)
                t = self.hyperfine(commands, runs=runs, warmup=1, stack_limit=limit)
                self.table(t)
                labels = list(t)

                def cost(label, base):
                    return (t[label].median - t[base].median, t[label].min - t[base].min,
                            t[label].cpu_mean - t[base].cpu_mean)

                ours = cost(labels[1], labels[0])
                kernels = [cost(labels[3], labels[2])]
                if populate_mode:
                    kernels.append(cost(labels[4], labels[2]))
                touch = cost(labels[-1], labels[-2])
                self.out("| pre-fault cost | median ms | from minima ms | CPU ms | / fastest kernel way (medians) | "
                         "/ fastest kernel way (CPU) |")
                self.out("|---|---:|---:|---:|---:|---:|")
                fastest = min(k[0] for k in kernels)
                fastest_cpu = min(k[2] for k in kernels)
                fastest_min = min(k[1] for k in kernels)
                rows = [(f"memlock-run {option[0]}", ours), ("kernel: mlockall", kernels[0])]
                if populate_mode:
                    rows.append(("kernel: MADV_POPULATE_WRITE", kernels[1]))
                rows.append((seeds, touch))
                for name, (med, low, cpu) in rows:
                    self.out(f"| {name} | {ms(med)} | {ms(low)} | {ms(cpu)} | {med / fastest:.2f}x | "
                             f"{cpu / fastest_cpu:.2f}x |")
                self.out()
                ratio = ours[0] / fastest
                self.goal(f"pre-fault {kind} {size}: memlock-run <= 1.1x the kernel populating",
                          f"{ratio:.2f}x ({ms(ours[0])} ms vs {ms(fastest)} ms); CPU time {ours[2] / fastest_cpu:.2f}x",
                          "<= 1.10x", ratio <= 1.1,
                          f"{(ratio - 1.1) * 100:.0f} points over",
                          [("minima", f"{ours[1] / fastest_min:.2f}x", ours[1] / fastest_min <= 1.1),
                           ("CPU time", f"{ours[2] / fastest_cpu:.2f}x", ours[2] / fastest_cpu <= 1.1)])
                if kind == "stack":
                    self.out(f"- the seeds' touch loop takes {touch[0] / fastest:.2f}x the fastest kernel way "
                             f"({touch[2] / fastest_cpu:.2f}x in CPU time; the issue expects about 1.4x at 256 MiB).")
                else:
                    self.out(f"- the seeds' malloc+memset takes {touch[0] / fastest:.2f}x the kernel way "
                             f"({touch[2] / fastest_cpu:.2f}x in CPU time): under MCL_FUTURE the kernel already "
                             "populates the heap as it grows, and memset only writes pages that are there.")
                self.out()

    # -- 4. steady state ----------------------------------------------------------------

    def steady(self):
        self.out("## 4. Faults in the steady state")
        self.out()
        stack, heap, iters = "4M", "16M", 100
        self.out(f"A probe mallocs {heap} (glibc serves it with mmap unless told otherwise), then runs {iters} rounds of a loop that writes "
                 f"{stack} of stack (a stack array, every page) and every page of the heap block; getrusage's minor "
                 "and major faults around the loop. 10 starts each; median [min–max].")
        self.out()
        p, m = self.probe, self.memlock_run
        loop = [p, "steady", stack, heap, str(iters)]
        variants = [
            ("plain", loop),
            ("self-locking, seeds' way (MCL_CURRENT|MCL_FUTURE + 6M touch loop)", loop + ["selflock", "6M"]),
            ("memlock-run (MCL_CURRENT)", [m, "--", *loop]),
            ("memlock-run --future --prefault 6M", [m, "--future", "--prefault", "6M", "--", *loop]),
        ]
        if "--heap" in self.help:
            # The block comes from the pre-faulted heap (--heap sets M_MMAP_MAX 0): no --future needed.
            variants.append(("memlock-run --prefault 6M --heap 32M (no --future)",
                             [m, "--prefault", "6M", "--heap", "32M", "--", *loop]))
            variants.append(("memlock-run --future --prefault 6M --heap 32M",
                             [m, "--future", "--prefault", "6M", "--heap", "32M", "--", *loop]))
        self.out("| variant | minor faults | major faults | loop ms |")
        self.out("|---|---:|---:|---:|")
        results = {}
        for label, argv in variants:
            rows = []
            for _ in range(10):
                done = subprocess.run(argv, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"bench: {shlex.join(argv)} failed: {done.stderr.strip()}")
                minflt, majflt, ns = map(int, done.stdout.split())
                rows.append((minflt, majflt, ns / 1e6))
            results[label] = rows

            def spread(i, fmt="{:g}"):
                values = [r[i] for r in rows]
                return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"

            self.out(f"| {cell(label)} | {spread(0)} | {spread(1)} | {spread(2, '{:.1f}')} |")
        self.out()
        locked = results["memlock-run --future --prefault 6M"]
        worst = max(r[0] + r[1] for r in locked)
        self.goal("steady state: zero faults under memlock-run --future --prefault", f"{worst} faults at most",
                  "0", worst == 0, f"{worst} faults")

    # -- 5. memory pressure -------------------------------------------------------------

    def pressure(self):
        self.out("## 5. Under memory pressure")
        self.out()
        swap = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("SwapTotal"))
        reclaimable = ("This machine has no swap, so anonymous pages cannot be reclaimed: what can leave memory is "
                       "clean file-backed pages mapped by this process alone (its file, its own executable's pages)."
                       if swap == 0 else
                       f"This machine has {swap // 1024} MiB of swap, so anonymous pages can be swapped out too.")
        self.out("A probe maps a 64 MiB file (read-only, private) and reads every page, mallocs 64 MiB and writes "
                 "every page, then holds still. From outside, process_madvise(MADV_PAGEOUT) is applied to every "
                 f"mapping of /proc/PID/maps, one call per mapping (tests/probes/pageout.c). {reclaimable} The kernel "
                 "refuses MADV_PAGEOUT on locked mappings (EINVAL). Resident share = smaps Rss after / before; the "
                 "file's pages left in the page cache come from fincore(1); then the probe touches everything again "
                 "and counts the faults and the time that took. 3 starts each; medians.")
        self.out()
        data = (Path(self.build) / "pressure.data").resolve()
        if not data.exists() or data.stat().st_size != 64 * MIB:
            with open(data, "wb") as f:
                for _ in range(64):
                    f.write(os.urandom(MIB))
        p, m = self.probe, self.memlock_run
        loop = [p, "pressure", str(data), "64M"]
        variants = [
            ("plain", loop),
            ("memlock-run (MCL_CURRENT)", [m, "--", *loop]),
            ("memlock-run --future", [m, "--future", "--", *loop]),
        ]
        self.out("| variant | Rss before KiB | Rss after KiB | resident share | file mapping Rss after KiB | "
                 "file in page cache after KiB | VmLck KiB | re-touch faults minor/major | re-touch ms | pageout |")
        self.out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        shares = {}
        for label, argv in variants:
            rows = []
            for _ in range(3):
                proc = self.hold(argv)
                before = sum(f.get("Rss", 0) for _, f in self.smaps(proc.pid))
                lck = self.status(proc.pid)["VmLck"]
                report = subprocess.run([self.pageout, str(proc.pid)], capture_output=True, text=True)
                # 0: some mappings advised; 1: the kernel refused every one (all locked), which
                # is a result here, not a failure; anything else is.
                if report.returncode not in (0, 1):
                    raise RuntimeError(f"pageout {proc.pid}: exit {report.returncode}: {report.stderr.strip()}")
                time.sleep(0.2)
                maps = self.smaps(proc.pid)
                after = sum(f.get("Rss", 0) for _, f in maps)
                file_after = sum(f.get("Rss", 0) for path, f in maps if path == str(data))
                cached = self.page_cache_kib(data)
                proc.stdin.write("\n")
                proc.stdin.flush()
                minflt, majflt, ns = map(int, proc.stdout.readline().split())
                proc.stdin.close()
                proc.wait()
                rows.append((before, after, after / before, file_after, cached, lck, minflt, majflt, ns / 1e6,
                             report.stdout.strip()))
            med = [statistics.median(r[i] for r in rows) for i in range(9)]
            shares[label] = min(r[2] for r in rows)
            self.out(f"| {label} | {med[0]:g} | {med[1]:g} | {med[2] * 100:.1f}% | {med[3]:g} | {med[4]:g} | "
                     f"{med[5]:g} | {med[6]:g}/{med[7]:g} | {med[8]:.1f} | {rows[-1][9]} |")
        self.out()
        share = shares["memlock-run --future"]
        self.goal("pressure: memlock-run --future stays 100% resident", f"{share * 100:.1f}% (worst of 3)", "100%",
                  share >= 1.0, f"{(1 - share) * 100:.1f}% reclaimed")
        share = shares["memlock-run (MCL_CURRENT)"]
        self.out(f"- without --future, only what is mapped when the shim runs is locked: the probe maps its file and "
                 f"heap in main, after the lock, so they can be reclaimed ({share * 100:.1f}% resident, worst of 3). "
                 "This is what MCL_CURRENT means, not a fault of the shim.")
        self.out()

    # -- 6. latency under memory pressure ----------------------------------------------------

    def latency_scenario(self):
        """The latency sections' scenario: working set, hog and cgroup limit in bytes, seconds a
        run, rounds."""
        return 128 * MIB, 160 * MIB, 200 * MIB, max(1.0, round(8 * self.args.scale, 1)), self.args.latency_rounds

    def latency(self):
        self.out("## 6. Latency under memory pressure")
        self.out()
        size, hog, limit, seconds, rounds = self.latency_scenario()
        self.out(f"A periodic loop (bench/latency.c): every 1 ms (clock_nanosleep, TIMER_ABSTIME) it writes one "
                 f"byte in each of 32 random pages of a {size // MIB} MiB working set, mapped and written once at "
                 "start; a sample is how late the work finished against the period's start (wake-up latency plus "
                 "the work). It runs in a memory cgroup limited to "
                 f"{limit // MIB} MiB beside a {hog // MIB} MiB memory hog (stress-ng --vm, re-dirtying its memory), "
                 "with swap: the two do not fit, so the kernel swaps out whichever pages it can. The same loop runs "
                 "three ways: plain; the program locking itself (mlockall(MCL_CURRENT|MCL_FUTURE) first thing in "
                 "main); under `memlock-run --future`, which does that from its shim before main. cyclictest "
                 "(rt-tests, the community's measure: wake-up latency only, no working set) runs in the same "
                 "cgroup under the same pressure (its own memory is a few MiB, so the hog grows by the probe's "
                 f"{size // MIB} MiB for it: {(hog + size) // MIB} MiB of demand against the {limit // MIB} MiB "
                 "limit, as with the probe), plain, with its own `--mlockall` (the same mlockall(MCL_CURRENT|"
                 "MCL_FUTURE), in main before its threads start) and under `memlock-run --future`; it runs with "
                 "`--default-system`, so that it does not set /dev/cpu_dma_latency for the whole machine, which "
                 "the probe does not do either. "
                 f"{rounds} rounds of {seconds:g} s per run, the order of the runs rotated each round; "
                 "latencies pooled over the rounds.")
        self.out()
        fifo, why = memory_pressure.fifo_permitted()
        policy = ("SCHED_FIFO priority 80 for the loop (probe: sched_setscheduler in its own code; cyclictest: -p 80)"
                  if fifo else f"SCHED_OTHER: SCHED_FIFO is not permitted here ({why}), so the loops compete with "
                  "every other task for the CPU and their latencies say as much about the machine's load as about "
                  "memory")
        enabled, defrag = memory_pressure.thp()
        nodes = len([n for n in os.listdir("/sys/devices/system/node") if n.startswith("node")]) \
            if os.path.isdir("/sys/devices/system/node") else 1
        self.out(f"- policy: {policy}")
        self.out(f"- THP: enabled `{enabled}`, defrag `{defrag}`; vm.compact_unevictable_allowed "
                 f"{memory_pressure.read('/proc/sys/vm/compact_unevictable_allowed', '?')}; kernel.numa_balancing "
                 f"{memory_pressure.read('/proc/sys/kernel/numa_balancing', '?')} ({nodes} NUMA node"
                 f"{'s' if nodes != 1 else ''}); vm.swappiness {memory_pressure.read('/proc/sys/vm/swappiness', '?')}")
        with memory_pressure.Scenario(self.build, limit, hog, 1024 * MIB, self.out) as scenario:
            for note in scenario.notes:
                self.out(f"- {note}")
            self.out()
            if scenario.missing:
                self.out("**The scenario cannot be built on this machine, so there are no latency figures** (a run "
                         "without it would show a loop on an idle machine, not what locking buys):")
                self.out()
                for part, why in scenario.missing:
                    self.out(f"- {part}: {why}")
                self.out()
                return
            if not shutil.which("cyclictest"):
                self.out("- cyclictest is not installed (apt-get install rt-tests; bench/run.sh installs it): only the "
                         "probe runs.")
                self.out()
            elif not fifo:
                self.out("- cyclictest does not run without SCHED_FIFO (its main thread asks for it whatever the "
                         "measurement threads' policy, and exits when refused): only the probe runs.")
                self.out()
            runs = self.latency_runs(scenario, size, seconds, rounds, fifo)
        self.latency_report(runs, size, limit, fifo)

    def latency_runs(self, scenario, size, seconds, rounds, fifo):
        """Runs every mode `rounds` times in the scenario's cgroup; returns one dict per run."""
        lat, m = str(self.build / "latency"), self.memlock_run
        probe = ["--size", str(size // MIB), "--pages", "32", "--period-us", "1000", "--seconds", str(seconds)]
        if fifo:
            probe += ["--fifo", "80"]
        modes = [
            ("probe", "plain", [lat, *probe]),
            ("probe", "self-locking", [lat, "--lock", *probe]),
            ("probe", "memlock-run --future", [m, "--future", "--", lat, *probe]),
        ]
        cyclictest = shutil.which("cyclictest")
        if cyclictest and fifo:
            loops = ["-i", "1000", "-d", "0", "-l", str(int(seconds * 1000)), "-v", "--default-system", "-p", "80"]
            modes += [
                ("cyclictest", "plain", [cyclictest, *loops]),
                ("cyclictest", "self-locking (--mlockall)", [cyclictest, "--mlockall", *loops]),
                ("cyclictest", "memlock-run --future", [m, "--future", "--", cyclictest, *loops]),
            ]
        runs = []
        for round_ in range(rounds):
            shift = round_ % len(modes)
            for kind, mode, argv in modes[shift:] + modes[:shift]:
                hog_mib = scenario.start_hog(extra=size if kind == "cyclictest" else 0)
                try:
                    scenario.cgroup.reset_peak()
                    before = scenario.state()
                    run = self.latency_run(scenario, kind, argv, seconds)
                    after = scenario.state()
                    hog_died = not scenario.hog_alive()
                finally:
                    scenario.stop_hog()
                run.update(kind=kind, mode=mode, round=round_ + 1, argv=argv, before=before, after=after,
                           peak_mib=(scenario.cgroup.peak or 0) / MIB, hog_died=hog_died, hog_mib=hog_mib,
                           oom=(after["oom_kills"] or 0) - (before["oom_kills"] or 0))
                print(f"bench: latency round {round_ + 1}/{rounds}: {kind} {mode}: {len(run['samples'])} samples, "
                      f"{run['majflt']} major faults{', ' + run['error'] if run['error'] else ''}",
                      file=sys.stderr, flush=True)
                runs.append(run)
        return runs

    def latency_run(self, scenario, kind, argv, seconds, during=None):
        """One run of `argv` inside the cgroup. Samples in ns; faults: the probe's own count over its loop,
        cyclictest's over its whole life (from wait4: it counts none itself). `during`, if given, is called
        about every 0.1 s while it runs."""
        with tempfile.TemporaryDirectory() as tmp:
            samples_path = Path(tmp) / "samples"
            if kind == "probe":
                argv = argv + ["--samples", str(samples_path)]
            out, err = open(Path(tmp) / "out", "w+"), open(Path(tmp) / "err", "w+")
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    preexec_fn=scenario.cgroup.enter())
            deadline = time.monotonic() + 3 * seconds + 60
            status, usage, swap_max = None, None, 0.0
            while status is None:
                pid, status_, usage_ = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    status, usage = status_, usage_
                elif time.monotonic() > deadline:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                else:
                    swap_max = max(swap_max, memory_pressure.swap_used_kib() / 1024)
                    if during:
                        during()
                    time.sleep(0.1)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read().strip()
            out.close()
            err.close()
            run = {"samples": [], "periods": 0, "missed": None, "minflt": usage.ru_minflt, "majflt": usage.ru_majflt,
                   "policy": None, "vmlck_kib": None, "vmswap_kib": None, "error": None, "swap_max_mib": swap_max}
            if proc.returncode != 0:
                how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                       else f"exited with {proc.returncode}")
                run["error"] = f"{how}{': ' + stderr.splitlines()[-1] if stderr else ''}"
            if kind == "probe":
                fields = dict(item.split("=", 1) for line in stdout.splitlines()[:1] for item in line.split())
                if fields:
                    run.update(periods=int(fields["periods"]), missed=int(fields["missed"]),
                               minflt=int(fields["minflt"]), majflt=int(fields["majflt"]), policy=fields["policy"],
                               vmlck_kib=int(fields["vmlck_kib"]), vmswap_kib=int(fields["vmswap_kib"]))
                if samples_path.exists():
                    run["samples"] = [int(line) for line in samples_path.read_text().split()]
            else:
                # -v: "thread: loop: latency in us", one line a period.
                for line in stdout.splitlines():
                    parts = line.replace(":", " ").split()
                    if len(parts) == 3 and all(p.isdigit() for p in parts):
                        run["samples"].append(int(parts[2]) * 1000)
                run["periods"] = len(run["samples"])
        return run

    def latency_report(self, runs, size, limit, fifo):
        series = {}
        for kind, title in [("probe", f"The probe: 32 random pages of {size // MIB} MiB every 1 ms"),
                            ("cyclictest", "cyclictest: wake-up latency, no working set")]:
            kind_runs = [r for r in runs if r["kind"] == kind]
            if not kind_runs:
                continue
            self.out(f"### {title}")
            self.out()
            faults = ("the loop's own (getrusage around the loop)" if kind == "probe"
                      else "cyclictest's whole life, start-up included (wait4; it counts none itself)")
            self.out(f"Faults: {faults}, per run (range over the rounds). Latency in ms, over all rounds' periods; "
                     "p99 and worst also per run (range).")
            self.out()
            self.out("| mode | periods | missed | major faults | minor faults | median | p99 | p99.9 | worst | "
                     "p99 per run | worst per run | VmLck MiB | VmSwap MiB at end |")
            self.out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for mode in dict.fromkeys(r["mode"] for r in kind_runs):
                mine = [r for r in kind_runs if r["mode"] == mode]
                pooled = sorted(s for r in mine for s in r["samples"])
                series.setdefault(kind, {})[mode] = pooled
                if not pooled:
                    self.out(f"| {cell(mode)} | 0 | | | | | | | | | | | |")
                    continue
                per_run = [sorted(r["samples"]) for r in mine if r["samples"]]
                missed = "" if kind != "probe" else str(sum(r["missed"] or 0 for r in mine))
                vmlck = spread([r["vmlck_kib"] / 1024 if r["vmlck_kib"] is not None else None for r in mine],
                               "{:.0f}") if kind == "probe" else ""
                vmswap = spread([r["vmswap_kib"] / 1024 if r["vmswap_kib"] is not None else None for r in mine],
                                "{:.1f}") if kind == "probe" else ""
                self.out(f"| {cell(mode)} | {len(pooled)} | {missed} | {spread([r['majflt'] for r in mine])} | "
                         f"{spread([r['minflt'] for r in mine])} | {pct(pooled, 0.5) / 1e6:.3f} | "
                         f"{pct(pooled, 0.99) / 1e6:.3f} | {pct(pooled, 0.999) / 1e6:.3f} | {pooled[-1] / 1e6:.3f} | "
                         f"{spread([pct(s, 0.99) / 1e6 for s in per_run], '{:.3f}')} | "
                         f"{spread([s[-1] / 1e6 for s in per_run], '{:.2f}')} | {vmlck} | {vmswap} |")
            self.out()

        self.out("### What the machine was doing")
        self.out()
        self.out("Per run: the 1-minute load average and MemAvailable before it, what the cgroup held when the hog "
                 "had started (the run began then), the most swap in use during it (/proc/swaps, every 0.1 s), the "
                 "cgroup's charge at its end and its peak during it (v1: since the run began; v2: since the cgroup "
                 "was made), OOM kills in the cgroup during it (stress-ng's worker is the OOM killer's first choice, "
                 "and stress-ng starts it again).")
        self.out()
        self.out("| round | loop | mode | load | MemAvailable MiB | hog charged at start MiB | swap used MiB (max) | "
                 "cgroup MiB at end / limit | cgroup peak MiB | OOM kills | policy | note |")
        self.out("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for r in runs:
            notes = [note for note in [r["error"], "stress-ng had exited before the end" if r["hog_died"] else ""]
                     if note]
            policy = r["policy"] or ("fifo" if fifo else "other")
            self.out(f"| {r['round']} | {r['kind']} | {cell(r['mode'])} | {r['before']['load']:.2f} | "
                     f"{r['before']['available_mib']} | {r['hog_mib']:.0f} | {r['swap_max_mib']:.0f} | "
                     f"{r['after']['cgroup_mib']:.0f} / {limit // MIB} | {r['peak_mib']:.0f} | {r['oom']} | {policy} | "
                     f"{cell('; '.join(notes))} |")
        self.out()

        # The pressure must have been real, and the locked runs must have stayed whole, for the table to say anything.
        warnings = []
        plain = [r for r in runs if r["kind"] == "probe" and r["mode"] == "plain"]
        locked = [r for r in runs if r["kind"] == "probe" and r["mode"] != "plain"]
        if not any(r["majflt"] for r in plain):
            warnings.append("the plain probe took no major fault: its working set was never swapped out, so this "
                            "run shows no memory pressure")
        if not any(r["swap_max_mib"] >= 1 for r in runs):
            warnings.append("no swap was in use during any run: the hog and the probe fitted the cgroup")
        for r in runs:
            if r["error"]:
                warnings.append(f"round {r['round']}, {r['kind']} {r['mode']}: {r['error']}"
                                f"{' (OOM kill in the cgroup)' if r['oom'] else ''}")
        for r in locked:
            if r["vmlck_kib"] is not None and r["vmlck_kib"] * 1024 < size:
                warnings.append(f"round {r['round']}, probe {r['mode']}: VmLck {r['vmlck_kib']} KiB, less than the "
                                "working set")
        for w in warnings:
            self.out(f"- **warning**: {w}")
        kills = [r for r in runs if r["oom"]]
        if kills:
            # The measured programs finished (no error above), so the OOM killer took the hog each time.
            by_mode = {}
            for r in kills:
                by_mode[f"{r['kind']} {r['mode']}"] = by_mode.get(f"{r['kind']} {r['mode']}", 0) + r["oom"]
            victims = ("stress-ng's worker each time (every measured run finished; stress-ng started its worker "
                       "again)" if not any(r["error"] for r in kills) else "see the warnings above")
            self.out(f"- OOM kills in the cgroup: {sum(r['oom'] for r in kills)} in {len(kills)} of {len(runs)} runs "
                     f"({', '.join(f'{mode}: {n}' for mode, n in by_mode.items())}); the victim: {victims}.")
        if warnings or kills:
            self.out()

        picture = self.latency_plot(series, size, limit)
        if picture:
            self.out(f"![latency]({picture.name})")
            self.out()
            self.out(f"{picture.name}: for each mode, the share of the periods the loop ran that finished at least "
                     "that late (log scales, one lateness axis for both panels; a line ends at the run's worst). "
                     "Periods the plain probe missed altogether are not in it: see the missed column.")
            self.out()
        if plain and locked:
            def majors(mode):
                return [r["majflt"] for r in runs if r["kind"] == "probe" and r["mode"] == mode]

            def p99(mode):
                pooled = series["probe"].get(mode) or [0]
                return pct(pooled, 0.99) / 1e6

            ours = majors("memlock-run --future")
            self.goal("latency: 0 major faults in the loop under memlock-run --future, with the same pressure "
                      "swapping the plain loop out", f"{max(ours)} at most (plain: {spread(majors('plain'))})",
                      "0", max(ours) == 0 and any(majors("plain")),
                      "no pressure (plain took none)" if not any(majors("plain")) else f"{max(ours)} major faults")
            self.out(f"- p99: plain {p99('plain'):.3f} ms, self-locking {p99('self-locking'):.3f} ms, "
                     f"memlock-run --future {p99('memlock-run --future'):.3f} ms.")
            self.out()

    def latency_plot(self, series, size, limit):
        """Draws the latency distributions as bench/results/latency.svg; returns its path, or None (and says why)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:
            self.out(f"- no plot: matplotlib cannot be imported by {sys.executable} ({error}); bench/run.sh installs "
                     "python3-matplotlib for the distribution's python3")
            self.out()
            return None
        if not series:
            return None
        # Text stays text, and the file does not change from a run to the next unless the figures do.
        matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "memlock-run"})
        # One lateness axis for both panels, so that the probe's and cyclictest's figures can be read side by side.
        fig, axes = plt.subplots(1, len(series), figsize=(6.2 * len(series), 4.6), squeeze=False, sharex=True)
        colours = {"plain": "tab:red", "memlock-run --future": "tab:blue"}
        for ax, (kind, modes) in zip(axes[0], series.items()):
            for mode, pooled in modes.items():
                if not pooled:
                    continue
                n = len(pooled)
                low, high = max(pooled[0], 1000), max(pooled[-1], 2000)
                # The survival function on a log grid (a few hundred points, not one per period).
                grid = [low * (high / low) ** (i / 300) for i in range(301)]
                share, j = [], 0
                for x in grid:
                    while j < n and pooled[j] < x:
                        j += 1
                    share.append(max(n - j, 1) / n)
                ax.step([x / 1e6 for x in grid], share, where="post", label=mode,
                        color=colours.get(mode, "tab:green"), linestyle="--" if "self" in mode else "-")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("lateness (ms)")
            ax.set_ylabel("share of periods at least that late")
            ax.set_title("probe: 32 random pages of %d MiB every 1 ms" % (size // MIB) if kind == "probe"
                         else "cyclictest (wake-up only)", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"Latency in a {limit // MIB} MiB memory cgroup beside a memory hog, with swap "
                     f"({platform.release()}, {os.cpu_count()} CPUs)", fontsize=11)
        fig.tight_layout()
        path = ROOT / "bench/results/latency.svg"
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, metadata={"Date": None})
        # A PNG copy beside the built programs, for viewers that do not show SVG (not kept in the repository).
        fig.savefig(self.build / "latency.png", dpi=80)
        plt.close(fig)
        return path

    # -- 6b. kernel settings under the same pressure ----------------------------------------

    def latency_settings(self):
        self.out("## 6b. Kernel settings and the locked loop")
        self.out()
        size, hog, limit, seconds, rounds = self.latency_scenario()
        self.out("The latency section's scenario (the probe, 32 random pages of 128 MiB every 1 ms, in a 200 MiB "
                 "memory cgroup beside a 160 MiB hog, with swap), with one setting changed at a time, to measure "
                 "what each setting of docs/realtime.md's recipe does here. Locked means `memlock-run --future`. "
                 "Compaction is forced by writing 1 to /proc/sys/vm/compact_memory once a second during the run "
                 "(it compacts all of the machine's memory); vm.compact_unevictable_allowed is set for that run "
                 "only and put back after it. The cgroup's swappiness (cgroup v1's memory.swappiness) is set for "
                 f"that run only. {rounds} rounds of {seconds:g} s, the order rotated each round; the probe's own "
                 "faults over its loop; latency in ms over all rounds.")
        self.out()
        fifo, why = memory_pressure.fifo_permitted()
        if not fifo:
            self.out(f"SCHED_FIFO is not permitted here ({why}): the SCHED_FIFO rows are not measured.")
            self.out()
        lat, m = str(self.build / "latency"), self.memlock_run
        probe = ["--size", str(size // MIB), "--pages", "32", "--period-us", "1000", "--seconds", str(seconds)]
        locked = [m, "--future", "--", lat, *probe]
        plain = [lat, *probe]
        compact_allowed = Path("/proc/sys/vm/compact_unevictable_allowed")
        compaction_times = []

        def compact_every_second():
            state = {"last": 0.0}

            def during():
                if time.monotonic() - state["last"] >= 1.0:
                    state["last"] = time.monotonic()
                    Path("/proc/sys/vm/compact_memory").write_text("1")
                    compaction_times.append(time.monotonic() - state["last"])

            return during

        def sysctl(path, value):
            """A (set, restore) pair for one file of /proc/sys."""
            saved = {}

            def set_():
                saved["value"] = path.read_text().strip()
                path.write_text(value)

            def restore():
                if "value" in saved:
                    path.write_text(saved["value"])

            return set_, restore

        def cgroup_swappiness(value):
            saved = {}

            def set_():
                saved["value"] = scenario.cgroup.swappiness
                scenario.cgroup.set_swappiness(value)

            def restore():
                if "value" in saved:
                    scenario.cgroup.set_swappiness(saved["value"])

            return set_, restore

        none = (lambda: None, lambda: None)
        with memory_pressure.Scenario(self.build, limit, hog, 1024 * MIB, self.out) as scenario:
            for note in scenario.notes:
                self.out(f"- {note}")
            self.out()
            if scenario.missing:
                self.out("**The scenario cannot be built on this machine, so there are no figures:**")
                self.out()
                for part, why in scenario.missing:
                    self.out(f"- {part}: {why}")
                self.out()
                return
            # (label, argv, (set, restore), during)
            variants = []
            if fifo:
                variants += [
                    ("locked, SCHED_FIFO 80", locked + ["--fifo", "80"], none, None),
                ]
            variants += [
                ("locked, SCHED_OTHER, timer slack 50 us (the default)", locked, none, None),
                ("locked, SCHED_OTHER, timer slack 1 ns (PR_SET_TIMERSLACK)", locked + ["--slack", "1"], none, None),
            ]
            if fifo and compact_allowed.exists():
                variants += [
                    ("locked, SCHED_FIFO 80, compaction every second, vm.compact_unevictable_allowed=1",
                     locked + ["--fifo", "80"], sysctl(compact_allowed, "1"), "compact"),
                    ("locked, SCHED_FIFO 80, compaction every second, vm.compact_unevictable_allowed=0",
                     locked + ["--fifo", "80"], sysctl(compact_allowed, "0"), "compact"),
                ]
            fifo_args = ["--fifo", "80"] if fifo else []
            variants.append((f"plain, {'SCHED_FIFO 80' if fifo else 'SCHED_OTHER'}, cgroup swappiness "
                             f"{scenario.cgroup.swappiness}", plain + fifo_args, none, None))
            if scenario.cgroup.version == 1:
                for value in ["100", "0"]:
                    variants.append((f"plain, {'SCHED_FIFO 80' if fifo else 'SCHED_OTHER'}, cgroup swappiness {value}",
                                     plain + fifo_args, cgroup_swappiness(value), None))
            else:
                self.out("- cgroup v2 has no swappiness of its own, and vm.swappiness is the whole machine's: the "
                         "swappiness rows are not measured.")
                self.out()
            runs = []
            for round_ in range(rounds):
                shift = round_ % len(variants)
                for label, argv, (set_, restore), during in variants[shift:] + variants[:shift]:
                    scenario.start_hog()
                    try:
                        before = scenario.state()
                        set_()
                        run = self.latency_run(scenario, "probe", argv, seconds,
                                               compact_every_second() if during == "compact" else None)
                        after = scenario.state()
                        hog_died = not scenario.hog_alive()
                    finally:
                        restore()
                        scenario.stop_hog()
                    run.update(label=label, round=round_ + 1, hog_died=hog_died, before=before,
                               oom=(after["oom_kills"] or 0) - (before["oom_kills"] or 0))
                    print(f"bench: latency settings round {round_ + 1}/{rounds}: {label}: {len(run['samples'])} "
                          f"samples, {run['majflt']} major faults{', ' + run['error'] if run['error'] else ''}",
                          file=sys.stderr, flush=True)
                    runs.append(run)

        self.out("| variant | periods | missed | major faults | minor faults | median | p99 | p99.9 | worst | "
                 "worst per run | max swap MiB | OOM kills | load | note |")
        self.out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for label, *_ in variants:
            mine = [r for r in runs if r["label"] == label]
            pooled = sorted(x for r in mine for x in r["samples"])
            notes = sorted({r["error"] for r in mine if r["error"]} |
                           ({"stress-ng had exited before the end"} if any(r["hog_died"] for r in mine) else set()))
            figures = (f"{pct(pooled, 0.5) / 1e6:.3f} | {pct(pooled, 0.99) / 1e6:.3f} | {pct(pooled, 0.999) / 1e6:.3f} "
                       f"| {pooled[-1] / 1e6:.3f} | {spread([max(r['samples']) / 1e6 for r in mine if r['samples']], '{:.2f}')}"
                       if pooled else "| | | |")
            self.out(f"| {cell(label)} | {len(pooled)} | {sum(r['missed'] or 0 for r in mine)} | "
                     f"{spread([r['majflt'] for r in mine])} | {spread([r['minflt'] for r in mine])} | {figures} | "
                     f"{spread([r['swap_max_mib'] for r in mine], '{:.0f}')} | {sum(r['oom'] for r in mine)} | "
                     f"{spread([r['before']['load'] for r in mine], '{:.1f}')} | {cell('; '.join(notes))} |")
        self.out()
        if compaction_times:
            self.out(f"- a forced compaction of the whole machine took {statistics.median(compaction_times) * 1000:.0f} ms "
                     f"(median of {len(compaction_times)}; {max(compaction_times) * 1000:.0f} ms at most).")
            self.out()

    # -- 7. huge pages (--huge) -------------------------------------------------------

    @staticmethod
    def thp_counters():
        """The /proc/vmstat counters that say whether a population compacted memory or fell back."""
        names = ("compact_stall", "compact_success", "compact_fail", "thp_fault_alloc", "thp_fault_fallback",
                 "pgscan_direct")
        counters = {"allocstall": 0}
        for line in open("/proc/vmstat"):
            name, _, value = line.partition(" ")
            if name in names:
                counters[name] = int(value)
            elif name.startswith("allocstall_"):
                # A direct reclaim: an allocation that waited for the kernel to free memory.
                counters["allocstall"] += int(value)
        return counters

    def shim_report(self, argv):
        """Runs `argv` (memlock-run -v ...) once; the shim's time taken and huge pages from its -v line."""
        t0 = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=soft_stack_limit(512 * MIB))
        wall = (time.monotonic() - t0) * 1000
        if done.returncode != 0:
            sys.exit(f"bench: {shlex.join(argv)} exited with {done.returncode}: {done.stderr.strip()}")
        huge = re.search(r"([0-9.]+ [KMG]iB|0 B) in huge pages", done.stderr)
        taken = re.search(r", in ([0-9.]+) ms", done.stderr)
        return wall, (huge.group(1) if huge else "0 B"), (float(taken.group(1)) if taken else float("nan"))

    def huge(self):
        self.out("## 7. Huge pages (--huge)")
        self.out()
        if "--huge" not in self.help:
            self.out("memlock-run has no --huge option in this build: nothing to measure.")
            self.out()
            return
        sysfs = Path("/sys/kernel/mm/transparent_hugepage")
        try:
            modes = {name: re.search(r"\[(.*?)\]", (sysfs / name).read_text()).group(1)
                     for name in ("enabled", "defrag")}
        except (OSError, AttributeError):
            self.out("This kernel has no transparent huge pages (/sys/kernel/mm/transparent_hugepage): --huge cannot "
                     "be measured here.")
            self.out()
            return
        if modes["enabled"] == "never":
            self.out("Transparent huge pages are `never` here: --huge does nothing, so there is nothing to measure.")
            self.out()
            return
        reporting = Path("/sys/module/page_reporting").exists()
        self.out(f"Transparent huge pages `{modes['enabled']}`, defrag `{modes['defrag']}`. --huge advises the "
                 "mappings --prefault and --heap pre-fault MADV_HUGEPAGE before mlockall populates them.")
        if reporting:
            self.out()
            self.out("Free page reporting is on (the page_reporting module: a virtio-balloon that gives free blocks "
                     "of 2 MiB and more back to the host). A huge page taken from a block the host was given back is "
                     "faulted in again by the host on its first touch, so some --huge starts take far longer than "
                     "the rest (the max column); 4 KiB pages rarely come from such blocks. Medians and minima show "
                     "the kernel's own cost; the CPU-time means carry those starts.")
        self.out()
        p, m = self.probe, self.memlock_run
        limit = 512 * MIB

        # Population: the same start with and without --huge, minus the start without a pre-fault.
        self.out("### Populating 256 MiB")
        self.out()
        self.out("Cost of a pre-fault = the start with it minus `memlock-run -- probe exit`. Every command with a soft "
                 "RLIMIT_STACK of 512 MiB.")
        self.out()
        for kind, option in [("stack", "--prefault"), ("heap", "--heap")]:
            commands = [
                ("memlock-run", [m, "--", p, "exit"]),
                (f"memlock-run {option} 256M", [m, option, "256M", "--", p, "exit"]),
                (f"memlock-run {option} 256M --huge", [m, option, "256M", "--huge", "--", p, "exit"]),
            ]
            for _, argv in commands:
                self.check_runs(argv, stack_limit=limit)
            t = self.hyperfine(commands, runs=40, warmup=1, stack_limit=limit)
            self.out(f"#### {kind}")
            self.out()
            self.table(t)
            base, small, huge = t.values()
            small_cost, huge_cost = small.median - base.median, huge.median - base.median
            small_cpu, huge_cpu = small.cpu_mean - base.cpu_mean, huge.cpu_mean - base.cpu_mean
            ratio = small_cost / huge_cost
            by_min = (small.min - base.min) / (huge.min - base.min)
            # A huge page taken from a block the host was given back (free page reporting) is
            # faulted in again by the host: rare starts of seconds, which the CPU-time means carry.
            self.goal(f"--huge populates 256 MiB of {kind} >= 1.8x faster",
                      f"{ratio:.2f}x ({ms(small_cost)} ms in 4 KiB pages, {ms(huge_cost)} ms in huge pages); from "
                      f"minima {by_min:.2f}x; CPU time (means) {small_cpu / huge_cpu:.2f}x", ">= 1.8x", ratio >= 1.8,
                      f"{1.8 - ratio:.2f} short", [("minima", f"{by_min:.2f}x", by_min >= 1.8)])

        # The first population, and one with free memory cut into 4 KiB holes.
        self.out("### The first population, and fragmented memory")
        self.out()
        self.out("`memlock-run -v --heap 256M --huge -- probe exit`, one start at a time, with the shim's own time "
                 "(its -v line), how much ended in huge pages, and the /proc/vmstat counters that move when the "
                 "kernel compacts memory (compact_stall: a fault waited for compaction) or falls back to 4 KiB pages "
                 "(thp_fault_fallback). Then the same while `probe fragment 256M` holds every free page but 256 MiB "
                 "and has freed every other one of its pages, so that free memory is in 4 KiB holes.")
        self.out()
        self.out("| start | shim ms | in huge pages | compact_stall | compact_success | thp_fault_alloc | "
                 "thp_fault_fallback | direct reclaims (allocstall) | pages scanned by them |")
        self.out("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        argv = [m, "-v", "--heap", "256M", "--huge", "--", p, "exit"]

        def start(label):
            before = self.thp_counters()
            _, in_huge, taken = self.shim_report(argv)
            after = self.thp_counters()
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in before}
            self.out(f"| {label} | {taken:.1f} | {in_huge} | {delta.get('compact_stall', 0)} | "
                     f"{delta.get('compact_success', 0)} | {delta.get('thp_fault_alloc', 0)} | "
                     f"{delta.get('thp_fault_fallback', 0)} | {delta.get('allocstall', 0)} | "
                     f"{delta.get('pgscan_direct', 0)} |")
            return taken, delta

        first, first_delta = start("first in this run")
        later = [start(f"again ({i + 2})")[0] for i in range(3)]
        holder = subprocess.Popen([p, "fragment", "256M"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            ready = holder.stdout.readline()
            if not ready.startswith("ready"):
                self.out("| fragmented | (probe fragment failed: no scenario) | | | | | | | |")
                fragmented = None
            else:
                buddy = open("/proc/buddyinfo").read()
                fragmented = [start(f"fragmented ({i + 1})") for i in range(2)]
        finally:
            holder.stdin.close()
            holder.wait()
        self.out()
        self.out(f"- the first start took {first:.1f} ms in the shim, the next ones {statistics.median(later):.1f} ms "
                 f"(median), with {first_delta.get('compact_stall', 0)} compaction stalls and "
                 f"{first_delta.get('allocstall', 0)} direct reclaims in the first.")
        times = [first, *later, *(t for t, _ in fragmented or [])]
        if reporting and max(times) > 5 * min(times):
            self.out(f"- starts took from {min(times):.1f} to {max(times):.1f} ms in the shim; where that is without "
                     "compaction or reclaim (the counters above), free page reporting (above) is the likely cause.")
        if fragmented is not None:
            stalls = sum(d.get("compact_stall", 0) for _, d in fragmented)
            fallbacks = sum(d.get("thp_fault_fallback", 0) for _, d in fragmented)
            if stalls == 0 and fallbacks == 0:
                big = []
                for line in buddy.splitlines():
                    words = line.split()
                    if len(words) > 13:
                        big.append(f"{words[3]} {sum(int(n) << i for i, n in enumerate(words[4:]) if i >= 9) * 4} KiB")
                self.out("- with memory fragmented the kernel still found free 2 MiB blocks (no compaction stall, no "
                         "fallback): free memory in blocks of 2 MiB or more per zone, from /proc/buddyinfo, was "
                         f"{', '.join(big)}. The fragmenter takes movable pages, and the kernel keeps a reserve of "
                         "each lower zone (lowmem_reserve_ratio) that they may not use, so a compaction stall at the "
                         "fault could not be provoked on this machine; the cost of compaction is not measured here.")
            else:
                self.out(f"- fragmented: {stalls} compaction stalls and {fallbacks} fallbacks to 4 KiB pages over two "
                         f"starts, {statistics.median(t for t, _ in fragmented):.1f} ms in the shim (median).")
            reclaims = sum(d.get("allocstall", 0) for _, d in fragmented)
            self.out(f"- with free memory this short the starts also waited for {reclaims} direct reclaims (the kernel "
                     "freeing page cache for them): the stall a full machine gives a huge-page start whether or not "
                     "it compacts.")
        self.out()

        # A loop over a 128 MiB working set in the pre-faulted heap: 4 KiB against 2 MiB pages.
        self.out("### A loop over 128 MiB")
        self.out()
        self.out("`memlock-run --heap 160M [--huge] -- probe walk 128M 200000`: 200,000 rounds of 32 dependent reads "
                 "at random places of a 128 MiB block malloc'd from the pre-faulted heap (a TLB miss nearly every "
                 "read in 4 KiB pages: 32,768 pages, against 64 huge ones). Nanoseconds a round, 5 starts each, "
                 "alternating; medians of each figure.")
        self.out()
        rows = {False: [], True: []}
        for _ in range(5):
            for huge in (False, True):
                argv = [m, "--heap", "160M", *(["--huge"] if huge else []), "--", p, "walk", "128M", "200000"]
                done = subprocess.run(argv, capture_output=True, text=True, check=True)
                words = done.stdout.split()
                rows[huge].append({words[i]: int(words[i + 1]) for i in range(0, 8, 2)})
        self.out("| pages | median ns | p99 ns | p99.9 ns | worst ns |")
        self.out("|---|---:|---:|---:|---:|")
        medians = {}
        for huge in (False, True):
            med = {k: statistics.median(r[k] for r in rows[huge]) for k in ("median", "p99", "p99.9", "worst")}
            medians[huge] = med
            self.out(f"| {'2 MiB (--huge)' if huge else '4 KiB'} | {med['median']:.0f} | {med['p99']:.0f} | "
                     f"{med['p99.9']:.0f} | {med['worst']:.0f} |")
        self.out()
        self.out(f"- a round takes {medians[False]['median'] / medians[True]['median']:.2f}x as long in 4 KiB pages as "
                 "in huge pages (medians).")
        self.out()

    # -- report -------------------------------------------------------------------------

    def machine(self):
        def run(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
            except (OSError, IndexError):
                return "?"

        cpu = "?"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        swap = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("SwapTotal"))
        memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        return [
            f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- kernel: {platform.release()} ({platform.machine()})",
            f"- CPU: {cpu}, {os.cpu_count()} CPUs; load average at start: {os.getloadavg()[0]:.2f}",
            f"- memory: {int(mem) // 1024} MiB, swap {int(swap) // 1024} MiB",
            f"- RLIMIT_MEMLOCK soft/hard: {memlock[0]}/{memlock[1]}; uid {os.getuid()}",
            f"- memlock-run: {run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'])}"
            f"{' with uncommitted changes' if self.dirty() else ''}, "
            f"shim {self.shim.stat().st_size} bytes; {run(['rustc', '--version'])}",
            f"- {run(['hyperfine', '--version'])}; {run(['gcc', '--version'])}; python3 {platform.python_version()} "
            f"(harness), {self.python} for the measurements",
            f"- rounds per timing: {self.args.rounds}, latency rounds: {self.args.latency_rounds}, "
            f"run-count scale: {self.args.scale}",
        ]

    @staticmethod
    def dirty():
        """Uncommitted changes outside bench/results (which every run rewrites)."""
        done = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".",
                               ":(exclude)bench/results"], capture_output=True, text=True)
        return done.returncode == 0 and done.stdout.strip() != ""

    def run(self):
        info = self.machine()
        self.out("# memlock-run benchmarks")
        self.out()
        self.out("Produced by `bench/run.sh" + (" " + " ".join(self.args.passthrough) if self.args.passthrough else "") + "`.")
        self.out()
        self.out("\n".join(info))
        self.out()
        sections = {"launch": self.launch, "methods": self.methods, "executes": self.executes,
                    "inheritance": self.inheritance,
                    "footprint": self.footprint, "prefault": self.prefault,
                    "steady": self.steady, "pressure": self.pressure, "latency": self.latency,
                    "latency-settings": self.latency_settings, "huge": self.huge}
        # latency-settings changes kernel settings for a while and takes minutes: only when asked for by name.
        default = [name for name in sections if name != "latency-settings"]
        for name in self.args.only or default:
            sections[name]()
        self.out(f"Load average at the end: {os.getloadavg()[0]:.2f} (this machine's other work shares its CPUs).")
        self.out()
        self.out("## Goals")
        self.out()
        self.out("| goal | measured | target | verdict |")
        self.out("|---|---|---|---|")
        for name, measured, target, verdict in self.goals:
            self.out(f"| {cell(name)} | {cell(measured)} | {target} | {cell(verdict)} |")
        self.out()
        results = ROOT / "bench/results"
        results.mkdir(exist_ok=True)
        # A partial run (--only) keeps the full run's latest.md and writes its own file.
        name = "latest.md" if not self.args.only else f"latest-{'-'.join(self.args.only)}.md"
        (results / name).write_text("\n".join(self.lines) + "\n")
        print(f"bench: results written to {results / name}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True, help="where run.sh built probe and pageout")
    parser.add_argument("--bin-dir", help="memlock-run and its shim from this directory (default: target/release); "
                        "packaging/build.sh binaries builds the packages' glibc 2.17 ones and prints theirs")
    parser.add_argument("--rounds", type=int,
                        help="hyperfine calls each timing's runs are split over, order rotated (20); "
                        "for latency, runs of each mode (3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run count (1.0; 0.1 to try)")
    parser.add_argument("--only", action="append",
                        choices=["launch", "methods", "executes", "inheritance", "footprint", "prefault", "steady",
                                 "pressure", "latency", "latency-settings", "huge"],
                        help="run only this section (repeatable)")
    args = parser.parse_args()
    # Given or not, the hyperfine sections split their runs over 20 calls by default, and latency runs 3 rounds.
    args.latency_rounds = args.rounds or 3
    args.rounds = args.rounds or 20
    args.passthrough = sys.argv[3:] if len(sys.argv) > 3 else []
    Suite(args).run()


if __name__ == "__main__":
    main()
