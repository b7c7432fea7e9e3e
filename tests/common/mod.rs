//! Helpers shared by the integration tests: build memlock-run and its shim, compile the C
//! probes, start real processes, and read what the kernel says about them in /proc.
//!
//! Not a mock anywhere: every assertion is about a real process on this kernel.
//!
//! # No process outlives its test
//!
//! Every process a test starts goes through `spawn` (and `run`, `output`, `Running`, which
//! use it), and comes back as a [`Process`]: the process, the tree of everything it starts,
//! and a deadline.
//!
//! - The tree is a cgroup v2 leaf of its own, `<this binary's cgroup>/memlock-run-tests/PID-N`
//!   (`/sys/fs/cgroup/unified/memlock-run-tests/...` on CI's hybrid hosts). The child writes
//!   itself into the leaf's `cgroup.procs` between fork and exec, as the tests' user (root),
//!   so that nothing it starts, as nobody after setpriv included, is ever outside it; and a
//!   cgroup, unlike a process group, cannot be left: Chromium's crash handler, the exec gate
//!   and any daemon make sessions of their own (setsid) and are re-parented to init, and are
//!   still in the leaf. A kill is one write of `cgroup.kill` (Linux 5.14); the tree is gone
//!   when `cgroup.events` says `populated 0`; then the leaf is removed. Leaves a killed test
//!   binary left are emptied and removed by the next one.
//! - A leaf has no controllers, so it changes only the `0::` line of /proc/PID/cgroup: the v1
//!   memory cgroup (which `memlock-run --check` and tests/check.rs read on hybrid hosts) stays
//!   the test binary's, and tests/harness.rs proves it. Where this binary's own v2 cgroup has
//!   the memory controller, a leaf below it would hide that limit from `--check`; there, and
//!   where no v2 hierarchy is writable (not root, a kernel before 5.14), or with
//!   `MEMLOCK_RUN_TEST_CONTAINMENT=process-group`, each tree is a process group instead, and
//!   the binary says so once on stderr: a process that calls setsid escapes a process group.
//! - Only a process that moves itself into another cgroup (a container runtime; none in
//!   these tests) leaves a leaf. If it holds the output pipes, the wait fails 10 s after the
//!   kill, naming the command, rather than hanging.
//! - The deadline: `spawn` gives 120 s (`MEMLOCK_RUN_TEST_TIMEOUT=SECONDS` changes it),
//!   `spawn_within` what a test says. A watchdog thread kills the whole tree when it passes.
//!   Every wait then returns (the started process is dead; the pipes close, as every process
//!   that held them is dead), and the test fails with a panic that names the command and
//!   what it printed so far: a red test with a name, not a CI run that times out. A test
//!   blocked elsewhere on the tree (a socket to a server it started) is freed the same way,
//!   and its `Process` panics when it is dropped.
//! - The end: `wait_with_output` reads stdout and stderr in threads, never blocking on a pipe
//!   a grandchild holds. When the started process has ended, the rest of its tree gets 2 s to
//!   end by itself and close the pipes (the exec gate ends when the last process of the tree
//!   is reaped); what is left then is killed. A `Process` dropped (the test's end, or its
//!   panic) kills its tree too. So a test leaves nothing behind, and `output_alone` can
//!   assert that the command left nothing to kill.
#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Output, Stdio};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

mod tree;
#[allow(unused_imports)] // as dead_code above
pub use tree::{contained_by_cgroups, default_timeout, spawn_within, Process};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

/// Test threads write executables (probe copies, scripts, crafted ELF files) that other
/// threads' children exec. A child forked while such a file is open for writing holds that
/// descriptor until its own exec, and meanwhile execve(2) of the file fails with ETXTBSY.
/// So executables are written under the write lock, and processes are started under the
/// read lock: `spawn` returns only once the child has exec'd and dropped the descriptors.
static SPAWN: RwLock<()> = RwLock::new(());

/// `cmd.spawn()` in a tree of its own, killed at the default timeout (see the module doc),
/// and never while a test is writing an executable.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Process> {
    spawn_within(cmd, default_timeout())
}

/// Runs `f`, which writes executables, while no process is being started.
pub fn writing_executables<T>(f: impl FnOnce() -> T) -> T {
    let _guard = SPAWN.write().unwrap_or_else(|e| e.into_inner());
    f()
}

/// `cmd.output()` through `spawn`.
pub fn run(cmd: &mut Command) -> std::io::Result<Output> {
    run_within(cmd, default_timeout())
}

/// `run`, killed and failing after `timeout`.
pub fn run_within(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    spawn_within(cmd, timeout)?.wait_with_output()
}

/// `output`, and nothing of the command's tree outlives it by more than 2 s (a process left
/// then would have held its output open, or lived on unseen).
pub fn output_alone(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (out, left) = spawn(&mut cmd)
        .and_then(Process::wait_with_output_and_leftovers)
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        left.is_empty(),
        "{cmd:?} ended and left {left:?} behind (killed now); stderr:\n{}",
        stderr_of(&out)
    );
    out
}

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// target/<profile>, where memlock-run and its shim are, built once per test binary (or a
/// copy of them that every user can reach: see `reachable_by_everyone`).
///
/// `cargo test` compiles dependencies with panic=unwind, which a no_std cdylib cannot
/// have, and does not build other packages' binaries; so the tests build both with a
/// nested `cargo build` of the same profile (cargo does not hold its lock while tests run).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>")
            .to_owned();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "memlock-run",
                "-p",
                "memlock-run-shim",
            ])
            .current_dir(repo());
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            cargo.arg("--release");
        }
        let target_dir = profile_dir.parent().expect("target dir");
        cargo.env("CARGO_TARGET_DIR", target_dir);
        // A build on a loaded machine may take minutes; it is still bounded.
        let status = spawn_within(&mut cargo, Duration::from_secs(1800))
            .and_then(|mut child| child.wait())
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of memlock-run and its shim failed"
        );
        reachable_by_everyone(profile_dir)
    })
}

/// `dir` itself when every user can reach it and only root can write above it; otherwise a
/// copy of memlock-run and its shim
/// in a directory that every user can reach, owned by root and writable by root alone (as
/// memlock-run requires of its shim's directories when it runs with privileges).
///
/// The tests run memlock-run as nobody, who cannot enter a checkout under a home directory
/// such as /root (mode 0700). /var/lib is used rather than /tmp (writable by all) or /run
/// (often mounted nosuid, where file capabilities have no effect).
fn reachable_by_everyone(dir: PathBuf) -> PathBuf {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Searchable by everyone, and root's alone: a privileged memlock-run (the file-capability
    // and ambient tests) refuses a shim below a directory others may write, /tmp included.
    let fit = |d: &Path| {
        fs::metadata(d).is_ok_and(|m| {
            let mode = m.permissions().mode();
            mode & 0o001 != 0 && m.uid() == 0 && mode & 0o022 == 0
        })
    };
    if dir.ancestors().all(fit) {
        return dir;
    }
    // One directory per target dir, so that parallel checkouts do not share one.
    let key = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let copy = Path::new("/var/lib/memlock-run-tests").join(format!("{key:016x}"));
    fs::create_dir_all(&copy).expect("create /var/lib/memlock-run-tests/KEY");
    set_mode(copy.parent().expect("parent"), 0o755);
    set_mode(&copy, 0o755);
    for name in ["memlock-run", "libmemlock_run_shim.so"] {
        // Under a unique name, then renamed: a test binary starting from the old copy keeps it.
        let tmp = copy.join(format!("{name}.{}.tmp", std::process::id()));
        writing_executables(|| fs::copy(dir.join(name), &tmp))
            .unwrap_or_else(|e| panic!("copy {name} to {tmp:?}: {e}"));
        fs::rename(&tmp, copy.join(name)).expect("rename the copy");
    }
    copy
}

pub fn memlock_run_path() -> PathBuf {
    bin_dir().join("memlock-run")
}

pub fn shim_path() -> PathBuf {
    bin_dir().join("libmemlock_run_shim.so")
}

/// `memlock-run ARGS...`
pub fn memlock_run<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(memlock_run_path());
    cmd.args(args);
    cmd
}

/// How a test starts memlock-run (or another program): as nobody or as the tests' own user,
/// with or without ambient CAP_IPC_LOCK, inheritable capabilities, a narrowed bounding set or
/// no_new_privs, and under
/// limits set by prlimit first (by the tests' user: root can set a hard limit, nobody then
/// runs under it).
///
/// `as_nobody().ambient_ipc_lock().limit("--memlock=65536:65536").memlock_run(ARGS)` is
/// `prlimit --memlock=65536:65536 -- setpriv --reuid=nobody --regid=nogroup --clear-groups
/// --inh-caps=+ipc_lock --ambient-caps=+ipc_lock -- memlock-run ARGS`.
#[derive(Clone, Debug, Default)]
pub struct RunAs {
    nobody: bool,
    ambient_ipc_lock: bool,
    inheritable: Option<String>,
    bounding: Option<String>,
    no_new_privs: bool,
    limits: Vec<String>,
}

/// The hard RLIMIT_MEMLOCK of CI's machines, 8 MiB, as a `RunAs::limit`: set first, so that
/// a case does not depend on the host's.
pub const CI_MEMLOCK: &str = "--memlock=8388608:8388608";

/// Runs as nobody (uid nobody, gid nogroup, no supplementary groups), without capabilities
/// unless `ambient_ipc_lock` says so.
pub fn as_nobody() -> RunAs {
    RunAs {
        nobody: true,
        ..RunAs::default()
    }
}

/// Runs as the tests' own user (root in CI), under what the builder adds.
pub fn as_caller() -> RunAs {
    RunAs::default()
}

impl RunAs {
    /// CAP_IPC_LOCK in the inheritable and ambient sets, as `AmbientCapabilities=` gives it.
    pub fn ambient_ipc_lock(mut self) -> Self {
        self.ambient_ipc_lock = true;
        self
    }

    /// Capabilities added to the inheritable set, in setpriv's syntax (`+net_raw,+sys_admin`),
    /// as a parent may leave them there (`capsh --inh=`, or a root unit's
    /// `AmbientCapabilities=`, which raises them in the inheritable set too); the tests' user
    /// must hold them.
    pub fn inheritable(mut self, spec: &str) -> Self {
        self.inheritable = Some(spec.to_owned());
        self
    }

    /// The bounding set, in setpriv's syntax (`-all,+ipc_lock`), as a container narrows it.
    pub fn bounding_set(mut self, spec: &str) -> Self {
        self.bounding = Some(spec.to_owned());
        self
    }

    /// no_new_privs set first (`NoNewPrivileges=yes`, `allowPrivilegeEscalation: false`).
    pub fn no_new_privs(mut self) -> Self {
        self.no_new_privs = true;
        self
    }

    /// A prlimit option (`--memlock=SOFT:HARD`, `--stack=...`, `--core=...`) set first.
    pub fn limit(mut self, prlimit_option: &str) -> Self {
        self.limits.push(prlimit_option.to_owned());
        self
    }

    /// prlimit options set first, see `limit`.
    pub fn limits<S: AsRef<str>>(self, prlimit_options: &[S]) -> Self {
        prlimit_options
            .iter()
            .fold(self, |run, option| run.limit(option.as_ref()))
    }

    /// `memlock-run ARGS...`, started as this says.
    pub fn memlock_run<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.program(memlock_run_path());
        cmd.args(args);
        cmd
    }

    /// `PROGRAM` (a copy of memlock-run, or another program), started as this says; its
    /// arguments are added to the command.
    pub fn program(&self, program: impl AsRef<OsStr>) -> Command {
        let mut words: Vec<OsString> = Vec::new();
        if !self.limits.is_empty() {
            words.push("prlimit".into());
            words.extend(self.limits.iter().map(OsString::from));
            words.push("--".into());
        }
        let mut setpriv: Vec<OsString> = Vec::new();
        if self.no_new_privs {
            setpriv.push("--no-new-privs".into());
        }
        if self.nobody {
            setpriv.extend(
                ["--reuid=nobody", "--regid=nogroup", "--clear-groups"].map(OsString::from),
            );
        }
        let mut inheritable: Vec<&str> = Vec::new();
        if self.ambient_ipc_lock {
            assert!(
                self.nobody,
                "the caller's own capabilities are what they are"
            );
            inheritable.push("+ipc_lock");
        }
        inheritable.extend(self.inheritable.as_deref());
        if !inheritable.is_empty() {
            setpriv.push(format!("--inh-caps={}", inheritable.join(",")).into());
        }
        if self.ambient_ipc_lock {
            setpriv.push("--ambient-caps=+ipc_lock".into());
        }
        if let Some(bounding) = &self.bounding {
            setpriv.push(format!("--bounding-set={bounding}").into());
        }
        if !setpriv.is_empty() {
            words.push("setpriv".into());
            words.extend(setpriv);
            words.push("--".into());
        }
        words.push(program.as_ref().to_owned());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        cmd
    }
}

/// A directory for files the tests make, shared by the test binaries of one target dir.
pub fn scratch() -> PathBuf {
    let dir = bin_dir().join("test-scratch");
    fs::create_dir_all(&dir).expect("create scratch dir");
    // Readable and searchable by nobody, for the unprivileged tests.
    set_mode(&dir, 0o755);
    dir
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Compiles a C source from tests/probes once, with extra gcc flags; returns the binary.
pub fn compile(source: &str, output: &str, flags: &[&str]) -> PathBuf {
    compile_with("gcc", source, output, flags)
}

/// A command that runs under a seccomp filter failing one system call (`ptrace` with EPERM,
/// `seccomp` with ENOSYS), as a container's profile may: tests/probes/nosyscall.c.
pub fn without_syscall(name: &str) -> Command {
    let mut cmd = Command::new(compile("nosyscall.c", "nosyscall", &[]));
    cmd.arg(name);
    cmd
}

/// A C source from tests/probes built with musl-gcc and extra flags (dynamically linked:
/// its loader is musl's), or None, with why, where musl-gcc is not installed.
pub fn compile_musl(source: &str, output: &str, flags: &[&str]) -> Option<PathBuf> {
    if skip_without("musl-gcc", &format!("{source} is not built for musl")) {
        return None;
    }
    Some(compile_with("musl-gcc", source, output, flags))
}

/// `compile` with another compiler driver (musl-gcc).
pub fn compile_with(compiler: &str, source: &str, output: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(output) {
        return path.clone();
    }
    let dir = scratch();
    let path = dir.join(output);
    // Build under a unique name and rename, so that parallel test binaries never see a
    // half-written file.
    let tmp = dir.join(format!("{output}.{}.tmp", std::process::id()));
    let out = run(Command::new(compiler)
        .args(["-O1", "-Wall", "-o"])
        .arg(&tmp)
        .arg(repo().join("tests/probes").join(source))
        .args(flags))
    .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {source} {flags:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&tmp, &path).expect("rename probe");
    built.insert(output.to_owned(), path.clone());
    path
}

/// A probe from tests/probes built with `compiler` and `flags`, once per test binary, or None
/// (and a skip line saying why) where that toolchain is missing or cannot build it here (gcc
/// -m32 without the 32-bit libc of gcc-multilib).
pub fn compile_if_possible(
    compiler: &str,
    source: &str,
    output: &str,
    flags: &[&str],
) -> Option<PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(output) {
        return path.clone();
    }
    let path = build_if_possible(compiler, source, output, flags);
    built.insert(output.to_owned(), path.clone());
    path
}

fn build_if_possible(
    compiler: &str,
    source: &str,
    output: &str,
    flags: &[&str],
) -> Option<PathBuf> {
    if skip_without(
        compiler,
        &format!("the {output} build of {source} is not tested"),
    ) {
        return None;
    }
    let path = scratch().join(output);
    let tmp = unique(&format!("{output}.tmp"));
    let out = run(Command::new(compiler)
        .args(["-O1", "-o"])
        .arg(&tmp)
        .arg(repo().join("tests/probes").join(source))
        .args(flags))
    .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    if !out.status.success() {
        skip(format_args!(
            "{compiler} {flags:?} cannot build {source} here ({}); the {output} build is not tested",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
        ));
        return None;
    }
    writing_executables(|| fs::rename(&tmp, &path)).expect("rename probe");
    Some(path)
}

/// The dynamically linked glibc probe (see tests/probes/probe.c).
pub fn probe() -> PathBuf {
    compile("probe.c", "probe", &[])
}

/// Writes an executable file (a script) into the scratch dir.
pub fn script(name: &str, text: &str) -> PathBuf {
    let path = scratch().join(name);
    let tmp = scratch().join(format!("{name}.{}.tmp", std::process::id()));
    writing_executables(|| {
        fs::write(&tmp, text).expect("write script");
        set_mode(&tmp, 0o755);
        fs::rename(&tmp, &path).expect("rename script");
    });
    path
}

/// A process started through a command, stopped at the probe's "ready PID" line.
pub struct Running {
    process: Process,
    stdout: BufReader<ChildStdout>,
    pub pid: i32,
}

impl Running {
    /// Spawns `cmd` and waits for its "ready PID" line. Panics with the process's stderr
    /// if it exits first.
    pub fn start(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = spawn(&mut cmd).unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let mut stdout = BufReader::new(process.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        process.printed.extend_from_slice(line.as_bytes());
        process.panic_if_timed_out();
        let Some(pid) = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
        else {
            let out = process.wait_with_output().expect("wait");
            panic!(
                "{cmd:?} did not get ready (stdout {line:?}, {}); stderr:\n{}",
                out.status,
                stderr_of(&out)
            );
        };
        Running {
            process,
            stdout,
            pid,
        }
    }

    pub fn child_pid(&self) -> i32 {
        self.process.id() as i32
    }

    pub fn status(&self) -> ProcStatus {
        ProcStatus::read(self.pid)
    }

    pub fn smaps(&self) -> Vec<Mapping> {
        smaps(self.pid)
    }

    pub fn environ(&self) -> HashMap<String, String> {
        environ(self.pid)
    }

    pub fn limits(&self) -> String {
        fs::read_to_string(format!("/proc/{}/limits", self.pid)).expect("read limits")
    }

    pub fn maps(&self) -> String {
        fs::read_to_string(format!("/proc/{}/maps", self.pid)).expect("read maps")
    }

    /// Writes `text` to the process's stdin.
    pub fn send(&mut self, text: &str) {
        use std::io::Write;
        let stdin = self.process.stdin.as_mut().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// The next line the process writes to stdout.
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line);
        self.process.printed.extend_from_slice(line.as_bytes());
        self.process.panic_if_timed_out();
        read.expect("read stdout");
        line
    }

    /// Closes stdin, so that the probe exits, and collects the rest of its output.
    pub fn finish(mut self) -> Output {
        drop(self.process.stdin.take());
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        self.process.printed.extend_from_slice(&rest);
        let mut output = self.process.wait_with_output().expect("wait");
        output.stdout = rest;
        output
    }
}

/// /proc/PID/status as fields.
pub struct ProcStatus {
    pub fields: HashMap<String, String>,
}

impl ProcStatus {
    pub fn read(pid: i32) -> ProcStatus {
        let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
        let fields = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect();
        ProcStatus { fields }
    }

    pub fn get(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {field} in status"))
    }

    /// A `kB` field, in bytes.
    pub fn bytes(&self, field: &str) -> u64 {
        let value = self.get(field);
        value
            .trim_end_matches(" kB")
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{field}: {value}"))
            * KIB
    }

    /// A capability mask (CapEff, CapAmb, ...).
    pub fn caps(&self, field: &str) -> u64 {
        u64::from_str_radix(self.get(field), 16).expect("hex caps")
    }

    /// The four IDs of `Uid:` or `Gid:`.
    pub fn ids(&self, field: &str) -> Vec<u32> {
        self.get(field)
            .split_whitespace()
            .map(|id| id.parse().expect("id"))
            .collect()
    }

    /// A signal mask (SigIgn, SigBlk) as a bit set: bit N-1 is signal N.
    pub fn signals(&self, field: &str) -> u64 {
        u64::from_str_radix(self.get(field), 16).expect("hex sigmask")
    }
}

pub const CAP_IPC_LOCK: u64 = 1 << 14;

/// One mapping of /proc/PID/smaps.
#[derive(Debug)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub name: String,
    pub fields: HashMap<String, u64>,
    pub flags: Vec<String>,
}

impl Mapping {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// A `kB` field, in bytes (0 if absent).
    pub fn bytes(&self, field: &str) -> u64 {
        self.fields.get(field).copied().unwrap_or(0) * KIB
    }

    /// VmFlags has `lo`: the mapping is VM_LOCKED.
    pub fn locked_flag(&self) -> bool {
        self.flags.iter().any(|f| f == "lo")
    }
}

pub fn smaps(pid: i32) -> Vec<Mapping> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first
            .split_once('-')
            .filter(|(s, _)| u64::from_str_radix(s, 16).is_ok())
        {
            let name = line.split_whitespace().nth(5).unwrap_or("").to_owned();
            maps.push(Mapping {
                start: u64::from_str_radix(start, 16).unwrap(),
                end: u64::from_str_radix(end, 16).unwrap(),
                name,
                fields: HashMap::new(),
                flags: Vec::new(),
            });
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some(map) = maps.last_mut() {
                map.flags = flags.split_whitespace().map(str::to_owned).collect();
            }
        } else if let Some((key, value)) = line.split_once(':') {
            if let (Some(map), Ok(kb)) = (
                maps.last_mut(),
                value.trim().trim_end_matches(" kB").parse::<u64>(),
            ) {
                map.fields.insert(key.to_owned(), kb);
            }
        }
    }
    maps
}

/// The `[stack]` mapping.
pub fn stack(maps: &[Mapping]) -> &Mapping {
    maps.iter()
        .find(|m| m.name == "[stack]")
        .expect("a [stack] mapping")
}

pub fn environ(pid: i32) -> HashMap<String, String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    raw.split(|&b| b == 0)
        .filter_map(|entry| {
            String::from_utf8_lossy(entry)
                .split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Runs a command to completion with stdin closed.
pub fn output(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    run(&mut cmd).unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Says why a test is skipped, on the process's real stderr: the test harness captures
/// `eprintln!` of passing tests, and a skip must show in CI's log.
pub fn skip(reason: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// Prints why a test is skipped; returns true when `tool` is missing.
pub fn skip_without(tool: &str, why: &str) -> bool {
    let found = run(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(format_args!("{tool} is not installed; {why}"));
    }
    !found
}

/// A path in the scratch dir no other test (or test binary) uses: `NAME-PID-N`.
pub fn unique(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    scratch().join(format!("{name}-{}-{n}", std::process::id()))
}

/// A private copy of the probe: its own inode, so that its page-cache pages are mapped by
/// this run alone, and its own mode and owner for the set-ID and capability tests.
pub fn probe_copy(name: &str) -> PathBuf {
    let path = unique(name);
    let probe = probe();
    writing_executables(|| fs::copy(probe, &path)).expect("copy probe");
    // Written pages are dirty until written back; reclaim tests need clean ones.
    fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .expect("fsync probe copy");
    path
}

/// A marker file name for `probe --mark`, which no run has created yet, in a directory
/// that the runs as nobody may write to (sticky and world-writable, as /tmp).
pub fn marker(name: &str) -> PathBuf {
    let dir = scratch().join("marks");
    fs::create_dir_all(&dir).expect("create marks dir");
    set_mode(&dir, 0o1777);
    let file = unique(&format!("{name}.mark"));
    let path = dir.join(file.file_name().expect("a file name"));
    let _ = fs::remove_file(&path);
    path
}

/// The lines of a process's stderr.
pub fn stderr_lines(out: &Output) -> Vec<String> {
    stderr_of(out).lines().map(str::to_owned).collect()
}

/// The one line a failing or reporting memlock-run writes; panics on more or fewer.
pub fn one_line(out: &Output) -> String {
    let lines = stderr_lines(out);
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got {lines:#?}"
    );
    lines.into_iter().next().unwrap_or_default()
}

/// Asserts that `text` contains every one of `parts`.
pub fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// The mappings of a file, by path.
pub fn mappings_of<'a>(maps: &'a [Mapping], path: &Path) -> Vec<&'a Mapping> {
    let name = path.to_str().expect("UTF-8 path");
    maps.iter().filter(|m| m.name == name).collect()
}

/// The anonymous mapping of exactly `size` bytes (what `probe --map` made).
pub fn anonymous_of_size(maps: &[Mapping], size: u64) -> &Mapping {
    maps.iter()
        .find(|m| m.name.is_empty() && m.size() == size)
        .unwrap_or_else(|| panic!("no anonymous mapping of {size} bytes in {maps:#?}"))
}

/// Prints why a test is skipped and returns true when the tests do not run as root (the
/// unprivileged cases switch to nobody with setpriv, which needs root; CI runs as root).
pub fn skip_unless_root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(format_args!("the tests do not run as root; {why}"));
    }
    !root
}

/// `skip_unless_root` and `skip_without("setpriv")` together, for the runs as nobody.
pub fn skip_unprivileged_run(why: &str) -> bool {
    skip_unless_root(why) || skip_without("setpriv", why)
}

/// This test process's own status, for the fields a child should inherit unchanged.
pub fn own_status() -> ProcStatus {
    ProcStatus::read(std::process::id() as i32)
}

/// `getent passwd NAME` as (uid, gid, home, shell).
pub fn passwd(name: &str) -> (u32, u32, String, String) {
    let out = output({
        let mut cmd = Command::new("getent");
        cmd.args(["passwd", name]);
        cmd
    });
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let fields: Vec<&str> = line.split(':').collect();
    assert_eq!(fields.len(), 7, "getent passwd {name}: {line:?}");
    (
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
        fields[5].to_owned(),
        fields[6].to_owned(),
    )
}

/// `id -G USER`: the group IDs a login of USER gets, sorted.
pub fn groups_of(user: &str) -> Vec<u32> {
    let out = output({
        let mut cmd = Command::new("id");
        cmd.args(["-G", user]);
        cmd
    });
    let mut groups: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|g| g.parse().expect("gid"))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Prints why a test is skipped and returns true when `path` is on a nosuid mount, where
/// the kernel ignores set-ID bits and file capabilities (and memlock-run rightly accepts them).
pub fn skip_on_nosuid(path: &Path, why: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: a NUL-terminated path and a zeroed out-struct.
    let mut fs: libc::statvfs = unsafe { std::mem::zeroed() };
    let nosuid =
        unsafe { libc::statvfs(c_path.as_ptr(), &mut fs) } == 0 && fs.f_flag & libc::ST_NOSUID != 0;
    if nosuid {
        skip(format_args!(
            "{} is on a nosuid mount; {why}",
            path.display()
        ));
    }
    nosuid
}

/// The hard RLIMIT_MEMLOCK the tests run under, in bytes (None: unlimited).
pub fn hard_memlock() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) },
        0
    );
    (limit.rlim_max != libc::RLIM_INFINITY).then_some(limit.rlim_max)
}

/// Prints why a test is skipped and returns true when the hard RLIMIT_MEMLOCK is below
/// `bytes` (kernels before 5.16 default to 64 KiB; Debian 12 and newer kernels to 8 MiB).
pub fn skip_unless_memlock_hard_at_least(bytes: u64, why: &str) -> bool {
    let low = hard_memlock().is_some_and(|hard| hard < bytes);
    if low {
        skip(format_args!(
            "the hard RLIMIT_MEMLOCK is {:?} bytes, below {bytes}; {why}",
            hard_memlock()
        ));
    }
    low
}

/// The probe linked statically (`gcc -static`): no PT_INTERP, so no preload reaches it.
pub fn static_probe() -> PathBuf {
    compile("probe.c", "probe-static", &["-static"])
}

/// The reclaim probe (see tests/probes/reclaim.c): a mapped file whose pages it has asked
/// the kernel to reclaim.
pub fn reclaim_probe() -> PathBuf {
    compile("reclaim.c", "reclaim", &[])
}

/// A copy of `source` in the scratch dir (named after `name`, see `unique`), with `mode`
/// (for set-ID bits), written while no process is being started.
pub fn copy_with_mode(source: &Path, name: &str, mode: u32) -> PathBuf {
    let path = unique(name);
    writing_executables(|| {
        fs::copy(source, &path).expect("copy");
        set_mode(&path, mode);
    });
    path
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// memlock-run's own message from its stderr: the text after `memlock-run: ` on its last line.
pub fn launcher_message(out: &Output) -> String {
    let err = stderr_of(out);
    let last = err.lines().last().unwrap_or("");
    last.strip_prefix("memlock-run: ")
        .unwrap_or(last)
        .to_owned()
}

/// Where the dynamic linker's cache (`ldconfig -p`) says a library is.
pub fn find_library(name: &str) -> Option<PathBuf> {
    let out = run(Command::new("ldconfig").arg("-p")).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| l.trim_start().starts_with(name))
        .find_map(|l| l.split(" => ").nth(1))
        .map(|p| PathBuf::from(p.trim()))
}

/// tests/probes/lockreport.c built by `compiler` with `flags`, or None (and a skip line) where
/// that toolchain is missing. Built once per test binary: a file replaced while another test
/// runs it is, rightly, refused by memlock-run (not the file it judged).
pub fn lockreport(compiler: &str, flags: &[&str], name: &str) -> Option<PathBuf> {
    compile_if_possible(compiler, "lockreport.c", name, flags)
}

/// The run succeeded and the descendant (lockreport) reported itself locked.
pub fn assert_locked(out: &Output) {
    let line = report(out).unwrap_or_default();
    assert!(
        out.status.success() && line.starts_with("locked "),
        "{line:?}: {}",
        stderr_of(out)
    );
}

/// How a refused run ends, for `assert_refused`.
#[derive(Clone, Copy, Debug)]
pub struct Refused<'a> {
    /// The file `probe --mark` (or a script) would have created, had it run.
    pub mark: Option<&'a Path>,
    /// The exit status, where it is memlock-run's (or the shim's) own.
    pub status: Option<i32>,
    /// The run fails (where its status is not memlock-run's, but the program whose exec
    /// was refused exits with a failure of its own).
    pub fails: bool,
    /// The message is the one line on stderr (memlock-run's own refusal before exec), not a
    /// line among the program's.
    pub one_line: bool,
    /// The table row (or case) this is, named in every failure.
    pub row: &'a str,
}

impl<'a> Refused<'a> {
    /// The program's main never ran: memlock-run refused it before exec, or the shim stopped
    /// it before main (or `--pid` refused to touch a process): status 125, one line.
    pub fn before_main() -> Refused<'a> {
        Refused {
            mark: None,
            status: Some(125),
            fails: true,
            one_line: true,
            row: "",
        }
    }

    /// A program COMMAND's tree executes was refused (by the shim or the exec gate): the
    /// refusal is among what stderr says, and the run ends as the tree chooses.
    pub fn in_the_tree() -> Refused<'a> {
        Refused {
            mark: None,
            status: None,
            fails: false,
            one_line: false,
            row: "",
        }
    }

    /// The run fails, whatever its status.
    pub fn failing(self) -> Refused<'a> {
        Refused {
            fails: true,
            ..self
        }
    }

    /// The marker file the program would have created.
    pub fn mark(self, mark: &'a Path) -> Refused<'a> {
        Refused {
            mark: Some(mark),
            ..self
        }
    }

    /// The row of a table this refusal is, for the failure messages.
    pub fn row(self, row: &'a str) -> Refused<'a> {
        Refused { row, ..self }
    }

    pub fn status(self, status: i32) -> Refused<'a> {
        Refused {
            status: Some(status),
            fails: status != 0,
            ..self
        }
    }
}

/// A refusal: nothing ran (no `--mark` file, no probe `ready` line, no lockreport line), the
/// run ended as `how` says, and its stderr says each of `says`. Returns memlock-run's line
/// (`Refused::one_line`) or all of stderr.
pub fn assert_refused(out: &Output, how: Refused, says: &[&str]) -> String {
    let row = if how.row.is_empty() {
        String::new()
    } else {
        format!("{}: ", how.row)
    };
    let err = stderr_of(out);
    let stdout = stdout_of(out);
    if let Some(status) = how.status {
        assert_eq!(out.status.code(), Some(status), "{row}{err}");
    }
    if how.fails {
        assert!(!out.status.success(), "{row}a refused run succeeded: {err}");
    }
    let text = if how.one_line {
        let lines = stderr_lines(out);
        assert_eq!(
            lines.len(),
            1,
            "{row}expected one line on stderr, got {lines:#?}"
        );
        lines.into_iter().next().unwrap_or_default()
    } else {
        err.clone()
    };
    for part in says {
        assert!(text.contains(part), "{row}{part:?} missing from:\n{text}");
    }
    assert_eq!(report(out), None, "{row}it must not run: {err}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("ready ")),
        "{row}the program ran:\n{stdout}{err}"
    );
    if let Some(mark) = how.mark {
        assert!(!mark.exists(), "{row}a refused program must not run: {err}");
    }
    text
}

/// lockreport's line (`locked ...` or `UNLOCKED ...`), or None when it did not run.
pub fn report(out: &Output) -> Option<String> {
    stdout_of(out)
        .lines()
        .find(|l| l.starts_with("locked ") || l.starts_with("UNLOCKED "))
        .map(str::to_owned)
}

/// A directory of its own (`unique(name)`) holding a copy of the system's ld.so, named like
/// glibc's (`ld-linux-x86-64.so.2`), and tests/probes/lockreport.c built with that copy as its
/// PT_INTERP: a loader of the tree's making, which the shim and the gate judge by what it is.
/// (The copy honours LD_PRELOAD: a program of it that runs says "locked".) The directory, and
/// the program (`NAME`, beside the other test programs).
pub fn foreign_loader_program(name: &str) -> (PathBuf, PathBuf) {
    let dir = unique(name);
    std::fs::create_dir_all(&dir).expect("create the loader dir");
    set_mode(&dir, 0o755);
    let loader = dir.join("ld-linux-x86-64.so.2");
    writing_executables(|| {
        std::fs::copy("/lib64/ld-linux-x86-64.so.2", &loader).expect("copy ld.so");
        set_mode(&loader, 0o755);
    });
    let flag = format!("-Wl,--dynamic-linker={}", loader.display());
    (dir, compile("lockreport.c", name, &[&flag]))
}

/// A copy of `path` every user can execute, for the runs as nobody.
pub fn reachable_copy(path: &Path, name: &str) -> PathBuf {
    let dir = bin_dir();
    let copy = dir.join(name);
    writing_executables(|| {
        std::fs::copy(path, &copy).expect("copy");
        set_mode(&copy, 0o755);
    });
    copy
}

/// One finding of a `--check` report: `VERDICT  TOPIC  TEXT`, and its remedy, the
/// `  VERDICT TOPIC: REMEDY` line under `to fix:` (None where it has none, or where another
/// finding's remedy already covers it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `ok`, `warn` or `FAIL`.
    pub verdict: String,
    pub text: String,
    pub remedy: Option<String>,
}

/// Every finding of a `--check` report, in its order, as `(topic, finding)`.
pub fn findings(report: &str) -> Vec<(String, Finding)> {
    // `{verdict:<4}  {topic:<15}  {text}`, as launcher/src/say/check/ renders them; the remedies follow
    // `to fix:` as `  {verdict} {topic}: {remedy}`.
    let remedies: Vec<&str> = report.lines().skip_while(|l| *l != "to fix:").collect();
    report
        .lines()
        .take_while(|l| *l != "to fix:")
        .filter_map(|line| {
            let verdict = line.get(..4)?.trim();
            let topic = line.get(6..21)?.trim();
            if !["ok", "warn", "FAIL"].contains(&verdict) || topic.is_empty() {
                return None;
            }
            let prefix = format!("  {verdict} {topic}: ");
            let remedy = remedies
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .map(str::to_owned);
            Some((
                topic.to_owned(),
                Finding {
                    verdict: verdict.to_owned(),
                    text: line.get(23..).unwrap_or("").to_owned(),
                    remedy,
                },
            ))
        })
        .collect()
}

/// The finding of a `--check` report on `topic`, or None. A topic with more than one
/// finding gives its most severe (FAIL, then warn, then ok), the first of those.
pub fn finding(report: &str, topic: &str) -> Option<Finding> {
    let found: Vec<Finding> = findings(report)
        .into_iter()
        .filter(|(this, _)| this == topic)
        .map(|(_, finding)| finding)
        .collect();
    ["FAIL", "warn", "ok"]
        .iter()
        .find_map(|verdict| found.iter().find(|f| f.verdict == *verdict))
        .cloned()
}

/// `finding`, which must be there.
pub fn finding_of(report: &str, topic: &str) -> Finding {
    finding(report, topic).unwrap_or_else(|| panic!("no {topic} finding in:\n{report}"))
}

/// The `verdict: ...` line of a `--check` report, without `verdict: `.
pub fn check_verdict(report: &str) -> String {
    report
        .lines()
        .find_map(|l| l.strip_prefix("verdict: "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{report}"))
        .to_owned()
}

/// `memlock-run OPTIONS --pid PID`, run to its end.
pub fn lock_pid(options: &[&str], pid: i32) -> Output {
    let mut cmd = memlock_run(options);
    cmd.arg("--pid").arg(pid.to_string());
    output(cmd)
}

/// The PID of the exec gate MEMLOCK_RUN_GATE (`N:PID:R`) in `pid`'s environment names, once
/// that gate has taken its name (`memlock-gate`): COMMAND may start before its gate has run
/// at all (5 s at most).
pub fn gate_of(pid: i32) -> i32 {
    let env = environ(pid);
    let value = env
        .get("MEMLOCK_RUN_GATE")
        .unwrap_or_else(|| panic!("no MEMLOCK_RUN_GATE in {pid}'s environment: {env:?}"));
    let gate = value
        .split(':')
        .nth(1)
        .and_then(|gate| gate.parse().ok())
        .unwrap_or_else(|| panic!("MEMLOCK_RUN_GATE={value}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let comm = fs::read_to_string(format!("/proc/{gate}/comm")).unwrap_or_default();
        if comm == "memlock-gate\n" {
            return gate;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gate {gate} of {pid} is named {comm:?}, not memlock-gate"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to `pid`, then waits (5 s at most) until its state (the letter after the
/// name in /proc/PID/stat; `gone` once it has no entry or is a zombie) satisfies `until`.
pub fn signal_and_wait(pid: i32, signal: i32, until: impl Fn(char) -> bool) {
    // SAFETY: kill(2) with integer arguments.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    let state = || {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
            .filter(|&c| c != 'Z' && c != 'X')
            .unwrap_or('-')
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !until(state()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{pid} is still in state {} after signal {signal}",
            state()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
