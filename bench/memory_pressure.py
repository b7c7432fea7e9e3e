"""The latency section's scenario: a machine short of memory, built for the run and taken down after it.

A swap file (unless the machine has swap already), a memory cgroup with a limit (cgroup v2's memory.max
where a v2 hierarchy has the memory controller, else v1's memory.limit_in_bytes), and a memory hog
(stress-ng --vm) in it, so that what else runs in the cgroup competes for its limit and the loser's pages
go to swap. `Scenario` is a context manager: every step it took is undone on the way out, in reverse
order, whether the run ended, failed or was interrupted (Ctrl-C, SIGTERM). A part that cannot be built
is recorded in `missing` with the reason, for the section to say instead of printing figures that show
nothing.

What it is not: a general cgroup library. It creates one cgroup beside the others at the top of the
memory hierarchy (not inside the cgroup this process runs in, which belongs to whoever started it) and
touches no other.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

MIB = 1 << 20


def read(path, default=""):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def meminfo_kib(field):
    for line in open("/proc/meminfo"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def swaps():
    """{filename: (size KiB, used KiB)} from /proc/swaps."""
    table = {}
    for line in open("/proc/swaps").read().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4:
            table[parts[0]] = (int(parts[2]), int(parts[3]))
    return table


def swap_used_kib():
    return sum(used for _, used in swaps().values())


def thp():
    """THP mode and defrag, the selected value of each ("[madvise]" -> "madvise")."""

    def selected(name):
        text = read(f"/sys/kernel/mm/transparent_hugepage/{name}", "?")
        return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else text

    return selected("enabled"), selected("defrag")


def fifo_permitted():
    """Whether this process may give a child SCHED_FIFO (root holds CAP_SYS_NICE unless a container drops it)."""
    if not shutil.which("chrt"):
        return False, "chrt (util-linux) is not installed"
    done = subprocess.run(["chrt", "-f", "1", "true"], capture_output=True, text=True)
    return done.returncode == 0, done.stderr.strip()


class Cgroup:
    """A memory cgroup of our own, v1 or v2, and what it says about itself."""

    def __init__(self, path, version):
        self.path = Path(path)
        self.version = version

    def file(self, v1, v2):
        return self.path / (v1 if self.version == 1 else v2)

    def set_limit(self, limit):
        self.file("memory.limit_in_bytes", "memory.max").write_text(str(limit))

    @property
    def limit(self):
        text = read(self.file("memory.limit_in_bytes", "memory.max"), "0")
        return None if text == "max" else int(text)

    @property
    def usage(self):
        return int(read(self.file("memory.usage_in_bytes", "memory.current"), "0"))

    @property
    def peak(self):
        """Highest usage since reset_peak (v1), or since creation (v2 before 6.12 cannot reset it); None if unknown."""
        text = read(self.file("memory.max_usage_in_bytes", "memory.peak"))
        return int(text) if text.isdigit() else None

    def reset_peak(self):
        try:
            # v1: writing 0 resets max_usage_in_bytes. v2 (6.12+): a write resets it for the writer's fd only, which
            # is not this read's; leave v2's peak as the cgroup's lifetime peak.
            if self.version == 1:
                self.file("memory.max_usage_in_bytes", "").write_text("0")
        except OSError:
            pass

    @property
    def oom_kills(self):
        """OOM kills in the cgroup so far: v1 memory.oom_control's oom_kill, v2 memory.events' oom_kill."""
        for line in read(self.file("memory.oom_control", "memory.events")).splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
        return None

    @property
    def swappiness(self):
        """v1 has a swappiness of its own per cgroup; v2 uses vm.swappiness."""
        if self.version == 1:
            return read(self.path / "memory.swappiness", "?")
        return read("/proc/sys/vm/swappiness", "?")

    def set_swappiness(self, value):
        if self.version != 1:
            raise OSError("cgroup v2 has no per-cgroup swappiness")
        (self.path / "memory.swappiness").write_text(str(value))

    @property
    def procs(self):
        return [int(pid) for pid in read(self.path / "cgroup.procs").split()]

    def enter(self):
        """A preexec_fn: moves the child into this cgroup before it execs, so that all it charges is charged here."""
        procs = str(self.path / "cgroup.procs")

        def move():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        return move


def find_memory_controller():
    """(mount point, version) of a hierarchy with the memory controller, v2 first; (None, why) if there is none."""
    v1 = None
    v2_without = []
    for line in open("/proc/self/mounts"):
        _, mount, fstype, options = line.split()[:4]
        if fstype == "cgroup2":
            if "memory" in read(Path(mount) / "cgroup.controllers").split():
                return mount, 2
            v2_without.append(mount)
        elif fstype == "cgroup" and "memory" in options.split(","):
            v1 = mount
    if v1:
        return v1, 1
    why = "no cgroup v1 hierarchy with the memory controller is mounted"
    if v2_without:
        why += f", and the cgroup v2 hierarchy at {', '.join(v2_without)} has no memory controller"
    return None, why


class Scenario:
    """Swap, a memory cgroup limited to `limit` bytes, and a hog of `hog_bytes` in it. Use in a `with` block."""

    def __init__(self, build_dir, limit, hog_bytes, swap_bytes, say):
        self.build_dir = Path(build_dir).resolve()
        self.limit = limit
        self.hog_bytes = hog_bytes
        self.swap_bytes = swap_bytes
        self.say = say  # prints a line of the results (the set-up's own account)
        self.undo = []  # (what, callable), undone in reverse
        self.missing = []  # (part, why): the scenario cannot be built
        self.notes = []  # what was set up, for the results
        self.swapfile = None
        self.cgroup = None
        self.hog = None
        self.hog_argv = None
        self.old_sigterm = None

    # -- building -----------------------------------------------------------------------

    def __enter__(self):
        # SIGTERM unwinds like Ctrl-C does, through __exit__.
        self.old_sigterm = signal.signal(signal.SIGTERM, self.terminated)
        try:
            self.add_swap()
            self.add_cgroup()
            if self.cgroup:
                self.add_hog()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def terminated(signum, frame):
        raise SystemExit(128 + signum)

    def add_swap(self):
        existing = swaps()
        if existing:
            total = sum(size for size, _ in existing.values()) // 1024
            self.notes.append(f"swap: the machine's own ({', '.join(existing)}; {total} MiB), none added")
            return
        path = self.build_dir / f"latency.{os.getpid()}.swap"
        fstype = subprocess.run(["stat", "-f", "-c", "%T", str(path.parent)], capture_output=True,
                                text=True).stdout.strip() or "?"
        path.unlink(missing_ok=True)
        errors = []
        # fallocate is instant where the filesystem lets swap use preallocated extents (ext4, xfs); otherwise
        # the file is written out with dd, which any filesystem that supports swap files accepts.
        for how, argv in [("fallocate", ["fallocate", "-l", str(self.swap_bytes), str(path)]),
                          ("dd", ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={self.swap_bytes // MIB}",
                                  "status=none"])]:
            path.unlink(missing_ok=True)
            steps = [argv, ["chmod", "600", str(path)], ["mkswap", "-q", str(path)], ["swapon", str(path)]]
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True)
                if done.returncode != 0:
                    errors.append(f"{how}: `{' '.join(step[:2])}` failed: {(done.stderr or done.stdout).strip()}")
                    break
            else:
                self.swapfile = path
                self.undo.append(("swapoff", self.remove_swap))
                self.notes.append(f"swap: a {self.swap_bytes // MIB} MiB swap file made here "
                                  f"({path}, {fstype}, with {how}), removed at the end")
                return
        path.unlink(missing_ok=True)
        self.missing.append(("swap", f"no swap on this machine, and a swap file on {path.parent} ({fstype}) "
                                     f"could not be used: {'; '.join(errors)}. Add swap to the machine, or run the "
                                     "suite from a checkout on a filesystem that takes swap files (ext4, xfs)"))

    def remove_swap(self):
        subprocess.run(["swapoff", str(self.swapfile)], capture_output=True)
        self.swapfile.unlink(missing_ok=True)

    def add_cgroup(self):
        mount, version = find_memory_controller()
        if mount is None:
            self.missing.append(("memory cgroup", version))
            return
        path = Path(mount) / f"memlock-run-bench-latency.{os.getpid()}"
        if version == 2:
            control = Path(mount) / "cgroup.subtree_control"
            if "memory" not in read(control).split():
                try:
                    control.write_text("+memory")
                    self.notes.append(f"cgroup v2: enabled the memory controller for {mount}'s children (left on)")
                except OSError as error:
                    self.missing.append(("memory cgroup", f"cannot enable the memory controller in {control}: {error}"))
                    return
        try:
            path.mkdir()
        except OSError as error:
            self.missing.append(("memory cgroup", f"cannot create {path}: {error}"))
            return
        self.cgroup = Cgroup(path, version)
        self.undo.append(("cgroup", self.remove_cgroup))
        self.cgroup.set_limit(self.limit)
        self.notes.append(f"cgroup v{version}: {path}, limit {self.limit // MIB} MiB "
                          f"({'memory.limit_in_bytes' if version == 1 else 'memory.max'}), swap not limited, "
                          f"swappiness {self.cgroup.swappiness}; removed at the end")

    def remove_cgroup(self):
        for _ in range(50):
            pids = self.cgroup.procs
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self.cgroup.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        print(f"bench: could not remove {self.cgroup.path}; remove it by hand (rmdir) once it is empty")

    def add_hog(self):
        stress = shutil.which("stress-ng")
        if not stress:
            self.missing.append(("memory hog", "stress-ng is not installed (apt-get install stress-ng; bench/run.sh "
                                               "installs it)"))
            return
        # One vm worker that keeps its mapping and re-dirties it (--vm-keep). stress-ng starts the worker again
        # if the OOM killer takes it (it makes its workers the OOM killer's first choice), so the pressure holds.
        self.hog_argv = [stress, "--vm", "1", "--vm-bytes", "SIZE", "--vm-keep", "--vm-method", "write64", "--quiet"]
        self.undo.append(("hog", self.stop_hog))
        self.notes.append(f"hog: `stress-ng {' '.join(self.hog_argv[1:])}` in the cgroup, SIZE {self.hog_bytes // MIB}M "
                          "unless said otherwise, started afresh for each run and given time to fill its memory "
                          "first, so that every run starts from the same state")

    def start_hog(self, extra=0):
        """Starts the hog, `extra` bytes larger than set, in its own session (a Ctrl-C at the terminal reaches only
        the harness, which stops it), and waits until the cgroup holds most of it. Returns how many MiB the cgroup
        held then."""
        size = self.hog_bytes + extra
        argv = [f"{size // MIB}M" if arg == "SIZE" else arg for arg in self.hog_argv]
        self.hog = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=self.cgroup.enter())
        deadline = time.monotonic() + 20
        while self.cgroup.usage < min(size, self.limit) * 0.9 and time.monotonic() < deadline:
            if self.hog.poll() is not None:
                raise RuntimeError(f"{' '.join(self.hog_argv)} exited with {self.hog.returncode}")
            time.sleep(0.1)
        return self.cgroup.usage / MIB

    def hog_alive(self):
        """Whether the hog still runs (stress-ng itself; its worker may have been OOM-killed and started again)."""
        return self.hog is not None and self.hog.poll() is None

    def stop_hog(self):
        """Stops the hog and waits until the cgroup is empty, its swap given back."""
        if self.hog is None:
            return
        if self.hog.poll() is None:
            os.killpg(self.hog.pid, signal.SIGTERM)
            try:
                self.hog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.hog.pid, signal.SIGKILL)
                self.hog.wait()
        self.hog = None
        deadline = time.monotonic() + 10
        while self.cgroup.procs and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- taking down --------------------------------------------------------------------

    def __exit__(self, *exc):
        while self.undo:
            what, step = self.undo.pop()
            try:
                step()
            except Exception as error:  # keep undoing the rest; say what stays behind
                print(f"bench: undoing the latency scenario's {what} failed: {error}")
        if self.old_sigterm is not None:
            signal.signal(signal.SIGTERM, self.old_sigterm)
            self.old_sigterm = None
        return False

    # -- the machine's state ------------------------------------------------------------

    def state(self):
        """What the machine and the cgroup were doing, now."""
        return {
            "load": os.getloadavg()[0],
            "available_mib": meminfo_kib("MemAvailable") // 1024,
            "swap_used_mib": swap_used_kib() / 1024,
            "cgroup_mib": self.cgroup.usage / MIB if self.cgroup else None,
            "oom_kills": self.cgroup.oom_kills if self.cgroup else None,
        }
