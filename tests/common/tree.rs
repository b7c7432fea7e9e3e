//! The process trees the tests start: each in a cgroup of its own (a process group where no
//! cgroup v2 hierarchy is writable), under a deadline, and killed whole at its end. See the
//! module doc of `common` for the design; this is its code, not a general process library.

use std::fs;
use std::io::{self, Read};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a process tree may run when its test says nothing else: generous, as the slowest
/// real program (Chromium, on a loaded 2-CPU machine) takes seconds, not minutes.
/// `MEMLOCK_RUN_TEST_TIMEOUT=SECONDS` changes it for every test.
pub fn default_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("MEMLOCK_RUN_TEST_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map_or(Duration::from_secs(120), Duration::from_secs)
    })
}

/// After the started process has ended, how long the rest of its tree (a gate, a helper, a
/// shell's background job) has to end by itself and close the output pipes, before it is
/// killed.
const GRACE: Duration = Duration::from_secs(2);

/// How long a killed tree has to be gone (and its pipes closed) before that is a failure.
const REAP: Duration = Duration::from_secs(10);

/// Whether the trees are cgroups (where a process cannot leave them), not process groups.
pub fn contained_by_cgroups() -> bool {
    matches!(containment(), Containment::Cgroup { .. })
}

/// How the trees of this test binary are contained, decided once.
enum Containment {
    /// Leaves of `dir`, a directory of the cgroup v2 hierarchy under this process's own cgroup.
    Cgroup { dir: PathBuf },
    /// Process groups (the binary said why, once).
    ProcessGroup,
}

fn containment() -> &'static Containment {
    static CONTAINMENT: OnceLock<Containment> = OnceLock::new();
    CONTAINMENT.get_or_init(|| {
        let forced = std::env::var("MEMLOCK_RUN_TEST_CONTAINMENT").ok();
        let chosen = if forced.as_deref() == Some("process-group") {
            Err("MEMLOCK_RUN_TEST_CONTAINMENT=process-group".to_owned())
        } else {
            cgroup_dir()
        };
        match chosen {
            Ok(dir) => Containment::Cgroup { dir },
            Err(why) => {
                use std::io::Write;
                let _ = writeln!(
                    io::stderr(),
                    "NOTE: the tests contain the processes they start in process groups, not \
                     cgroups ({why}): a process that leaves its group (setsid) can outlive its test"
                );
                Containment::ProcessGroup
            }
        }
    })
}

/// `<cgroup2 mount>/<this process's cgroup>/memlock-run-tests`, made and proved to work (a
/// process moved into a leaf of it, the leaf killed and removed); or why not.
fn cgroup_dir() -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    // `41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
    let (root, point) = mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            if after.split(' ').next()? != "cgroup2" {
                return None;
            }
            Some((fields.get(3)?.to_string(), fields.get(4)?.to_string()))
        })
        .ok_or("no cgroup v2 hierarchy is mounted")?;
    let membership = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let own = membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2")?;
    let relative = own.strip_prefix(root.as_str()).unwrap_or(own);
    let own_dir = Path::new(&point).join(relative.trim_start_matches('/'));
    // A leaf has no controller of its own: where this cgroup has the memory controller, a
    // leaf under it would hide the limit from `memlock-run --check`, and the check tests
    // would see a host without one.
    if own_dir.join("memory.current").exists() {
        return Err(format!(
            "{} has the memory controller, which a leaf of it would not show to --check",
            own_dir.display()
        ));
    }
    let dir = own_dir.join("memlock-run-tests");
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    // The root cgroup has none; every other has it since Linux 5.14.
    if !dir.join("cgroup.kill").exists() {
        return Err(format!("{} has no cgroup.kill (Linux 5.14)", dir.display()));
    }
    remove_stale_leaves(&dir);
    let probe = Tree::in_cgroup(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new("true");
    let spawned = probe.prepare(&mut cmd).and_then(|armed| {
        let _guard = super::SPAWN.read().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn();
        armed.disarm();
        child
    });
    let result = spawned.and_then(|mut child| child.wait()).map(|_| ());
    probe.kill();
    probe.remove();
    result.map_err(|e| format!("cannot move a process into {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Leaves `PID-N` of test binaries that ended without removing them (killed, aborted): what
/// is left in them is killed, and they are removed.
fn remove_stale_leaves(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let leaf = Tree {
                kind: Kind::Cgroup(entry.path()),
                timed_out: AtomicBool::new(false),
            };
            leaf.kill();
            leaf.wait_empty(Instant::now() + REAP);
            leaf.remove();
        }
    }
}

enum Kind {
    /// A leaf cgroup.
    Cgroup(PathBuf),
    /// A process group, whose ID is the started process's PID (0 until it is started).
    Group(AtomicI32),
}

/// Where one started process and all it starts are.
struct Tree {
    kind: Kind,
    /// Its deadline passed, and it was killed for that.
    timed_out: AtomicBool,
}

/// The descriptor the started process writes itself into cgroup.procs with, between fork
/// and exec; closed (and the hook disarmed) once the process has started.
struct Armed {
    fd: Arc<AtomicI32>,
    _procs: Option<fs::File>,
}

impl Armed {
    /// The hook stays on the Command: a Command started again must not write to whatever
    /// file has this descriptor's number by then.
    fn disarm(self) {
        self.fd.store(-1, Ordering::SeqCst);
    }
}

impl Tree {
    fn new() -> io::Result<Tree> {
        match containment() {
            Containment::Cgroup { dir } => Tree::in_cgroup(dir),
            Containment::ProcessGroup => Ok(Tree {
                kind: Kind::Group(AtomicI32::new(0)),
                timed_out: AtomicBool::new(false),
            }),
        }
    }

    /// A new leaf `PID-N` of `dir`.
    fn in_cgroup(dir: &Path) -> io::Result<Tree> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let leaf = dir.join(format!("{}-{n}", std::process::id()));
            match fs::create_dir(&leaf) {
                Ok(()) => {
                    return Ok(Tree {
                        kind: Kind::Cgroup(leaf),
                        timed_out: AtomicBool::new(false),
                    })
                }
                // A leaf a dead binary with this PID left, which is still being removed.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes `cmd` start in this tree: it writes itself into the leaf's cgroup.procs after
    /// fork, before exec (as the tests' user, root, even where it then runs as nobody), so
    /// that nothing it starts is ever outside; or it starts a process group of its own.
    fn prepare(&self, cmd: &mut Command) -> io::Result<Armed> {
        match &self.kind {
            Kind::Cgroup(leaf) => {
                let procs = fs::OpenOptions::new()
                    .write(true)
                    .open(leaf.join("cgroup.procs"))?;
                let fd = Arc::new(AtomicI32::new(std::os::fd::AsRawFd::as_raw_fd(&procs)));
                let hook = Arc::clone(&fd);
                // SAFETY: between fork and exec only write(2) runs, which is async-signal-safe,
                // on a descriptor the parent keeps open until the child has exec'd.
                unsafe {
                    cmd.pre_exec(move || {
                        let fd = hook.load(Ordering::SeqCst);
                        if fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                            return Err(io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                Ok(Armed {
                    fd,
                    _procs: Some(procs),
                })
            }
            Kind::Group(_) => {
                cmd.process_group(0);
                Ok(Armed {
                    fd: Arc::new(AtomicI32::new(-1)),
                    _procs: None,
                })
            }
        }
    }

    fn started(&self, pid: u32) {
        if let Kind::Group(pgid) = &self.kind {
            pgid.store(pid as i32, Ordering::SeqCst);
        }
    }

    /// SIGKILL to every process in the tree (`cgroup.kill` also reaches the cgroups a process
    /// made below the leaf).
    fn kill(&self) {
        match &self.kind {
            Kind::Cgroup(leaf) => {
                let _ = fs::write(leaf.join("cgroup.kill"), "1");
            }
            Kind::Group(pgid) => {
                let pgid = pgid.load(Ordering::SeqCst);
                if pgid > 0 {
                    // SAFETY: signals a process group this test started.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
            }
        }
    }

    /// Whether a process is left in the tree. In a cgroup, a zombie is not: the kernel takes
    /// an exiting process out of its cgroup's count before it is reaped.
    fn populated(&self) -> bool {
        match &self.kind {
            Kind::Cgroup(leaf) => fs::read_to_string(leaf.join("cgroup.events"))
                .map(|events| events.lines().any(|l| l == "populated 1"))
                .unwrap_or(false),
            Kind::Group(pgid) => {
                let pgid = pgid.load(Ordering::SeqCst);
                // SAFETY: signal 0 only asks whether the group exists.
                pgid > 0 && unsafe { libc::kill(-pgid, 0) } == 0
            }
        }
    }

    /// Waits until no process is left, or `until`; says whether none is.
    fn wait_empty(&self, until: Instant) -> bool {
        let mut pause = Duration::from_millis(1);
        while self.populated() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        true
    }

    /// The processes left in the tree, as `PID (NAME)`.
    fn members(&self) -> Vec<String> {
        let pids: Vec<String> = match &self.kind {
            Kind::Cgroup(leaf) => {
                let mut pids = Vec::new();
                collect_procs(leaf, &mut pids);
                pids
            }
            Kind::Group(pgid) => {
                let pgid = pgid.load(Ordering::SeqCst).to_string();
                fs::read_dir("/proc")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .filter(|pid| {
                        // `PID (comm) S PPID PGRP ...`, comm possibly holding spaces.
                        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                            stat.rsplit_once(')')
                                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                                == Some(pgid.as_str())
                        })
                    })
                    .collect()
            }
        };
        pids.into_iter()
            .map(|pid| {
                let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                format!("{pid} ({})", name.trim())
            })
            .collect()
    }

    /// Removes the leaf, and the cgroups a process made below it; all of them empty.
    fn remove(&self) {
        if let Kind::Cgroup(leaf) = &self.kind {
            remove_cgroup(leaf);
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::Cgroup(leaf) => format!("cgroup {}", leaf.display()),
            Kind::Group(pgid) => format!("process group {}", pgid.load(Ordering::SeqCst)),
        }
    }
}

fn collect_procs(dir: &Path, pids: &mut Vec<String>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().map(str::to_owned));
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_procs(&entry.path(), pids);
        }
    }
}

fn remove_cgroup(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    // rmdir can say EBUSY for a moment after the last process has left.
    let until = Instant::now() + REAP;
    while let Err(e) = fs::remove_dir(dir) {
        if e.kind() == io::ErrorKind::NotFound {
            return;
        }
        if Instant::now() >= until {
            use std::io::Write;
            let _ = writeln!(
                io::stderr(),
                "NOTE: cannot remove the test cgroup {}: {e}",
                dir.display()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pipe read to its end by a thread, so that no wait blocks on a pipe a process of the
/// tree holds open; what came so far can be taken at any time.
struct Drain {
    text: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Drain {
    let text = Arc::new(Mutex::new(Vec::new()));
    let (ended, done) = mpsc::channel::<()>();
    if let Some(mut pipe) = pipe {
        let into = Arc::clone(&text);
        std::thread::spawn(move || {
            let _ended = ended;
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => into
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
    }
    Drain { text, done }
}

impl Drain {
    /// Waits until the pipe's end, or `until`; says whether it came.
    fn ended_by(&self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        matches!(
            self.done.recv_timeout(left),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }

    fn text(&self) -> Vec<u8> {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A started process, its tree and its deadline: a `Child` (which it derefs to) whose
/// `wait` and `wait_with_output` end by its deadline, and whose drop kills its whole tree.
/// A tree killed at its deadline fails the test that started it, naming the command and
/// what it printed.
pub struct Process {
    child: Child,
    tree: Arc<Tree>,
    command: String,
    timeout: Duration,
    /// Dropped (or sent to) to stop the watchdog; its thread.
    watchdog: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    /// The tree is killed and gone.
    ended: bool,
    /// What a reader of its stdout (`Running`) has taken, for the message of a timeout.
    pub(super) printed: Vec<u8>,
}

/// `cmd` started in a tree of its own that is killed `timeout` after it starts, if it is
/// still there then.
pub fn spawn_within(cmd: &mut Command, timeout: Duration) -> io::Result<Process> {
    let tree = Arc::new(Tree::new()?);
    let armed = tree.prepare(cmd).inspect_err(|_| tree.remove())?;
    let spawned = {
        let _guard = super::SPAWN.read().unwrap_or_else(|e| e.into_inner());
        cmd.spawn()
    };
    armed.disarm();
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tree.remove();
            return Err(e);
        }
    };
    tree.started(child.id());
    let (stop, stopped) = mpsc::channel::<()>();
    let watched = Arc::clone(&tree);
    let mut process = Process {
        child,
        tree,
        command: format!("{cmd:?}"),
        timeout,
        watchdog: None,
        ended: false,
        printed: Vec::new(),
    };
    let watchdog = std::thread::Builder::new()
        .name(format!("timeout of {}", process.child.id()))
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                watched.timed_out.store(true, Ordering::SeqCst);
                watched.kill();
            }
        })?;
    process.watchdog = Some((stop, watchdog));
    Ok(process)
}

impl Deref for Process {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Process {
    /// Its deadline passed and its tree was killed for that.
    pub fn timed_out(&self) -> bool {
        self.tree.timed_out.load(Ordering::SeqCst)
    }

    /// Waits for the started process (by its deadline), then gives the rest of its tree
    /// `GRACE` to end and kills what is left.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait();
        if status.is_ok() {
            self.tree.wait_empty(Instant::now() + GRACE);
        }
        self.end();
        self.panic_if_timed_out();
        status
    }

    /// `Child::wait_with_output` by its deadline, its pipes read in threads: when the started
    /// process has ended, the rest of its tree gets `GRACE` to end and close the pipes, and
    /// is then killed.
    pub fn wait_with_output(self) -> io::Result<Output> {
        self.wait_with_output_and_leftovers().map(|(out, _)| out)
    }

    /// `wait_with_output`, and the processes of its tree still there `GRACE` after the
    /// started process ended (or why its output stayed open), which were then killed.
    pub fn wait_with_output_and_leftovers(mut self) -> io::Result<(Output, Vec<String>)> {
        drop(self.child.stdin.take());
        let stdout = drain(self.child.stdout.take());
        let stderr = drain(self.child.stderr.take());
        let status = self.child.wait()?;
        let grace = Instant::now() + GRACE;
        let mut leftovers = Vec::new();
        let closed = stdout.ended_by(grace) & stderr.ended_by(grace);
        if !self.tree.wait_empty(grace) {
            leftovers = self.tree.members();
        } else if !closed {
            leftovers.push("its output pipes stayed open".to_owned());
        }
        self.end();
        let reaped = Instant::now() + REAP;
        let closed = stdout.ended_by(reaped) & stderr.ended_by(reaped);
        let output = Output {
            status,
            stdout: stdout.text(),
            stderr: stderr.text(),
        };
        if self.timed_out() {
            self.printed.extend_from_slice(&output.stdout);
            panic!("{}", self.timeout_message(&output.stderr));
        }
        assert!(
            closed,
            "{}: its output is still open {REAP:?} after its {} was killed, held by a process \
             outside it",
            self.command,
            self.tree.describe()
        );
        Ok((output, leftovers))
    }

    /// Kills its whole tree now (the started process included), and waits until it is gone.
    pub fn kill_tree(&mut self) {
        self.end();
    }

    /// Panics with the timeout's message if its deadline has passed, taking what is left in
    /// the pipes it still holds (its tree is killed first, so that they close).
    pub fn panic_if_timed_out(&mut self) {
        if !self.timed_out() {
            return;
        }
        self.end();
        let until = Instant::now() + REAP;
        let stdout = drain(self.child.stdout.take());
        let stderr = drain(self.child.stderr.take());
        let _ = stdout.ended_by(until) & stderr.ended_by(until);
        self.printed.extend_from_slice(&stdout.text());
        panic!("{}", self.timeout_message(&stderr.text()));
    }

    fn timeout_message(&self, stderr: &[u8]) -> String {
        format!(
            "timed out: {} ran longer than its {} s, and its whole tree ({}) was killed.\n\
             --- its stdout so far:\n{}\n--- its stderr so far:\n{}",
            self.command,
            self.timeout.as_secs_f64(),
            self.tree.describe(),
            String::from_utf8_lossy(&self.printed),
            String::from_utf8_lossy(stderr)
        )
    }

    /// Stops the watchdog, kills the tree and the started process, reaps it, waits until the
    /// tree is gone and removes its cgroup. Once.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some((stop, thread)) = self.watchdog.take() {
            drop(stop);
            let _ = thread.join();
        }
        // The tree first: where the started process is not reaped yet, its ID (a process
        // group's) cannot have been reused.
        self.tree.kill();
        if let Ok(None) = self.child.try_wait() {
            // It may have left the tree (or made a session of its own, in a process group).
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if !self.tree.wait_empty(Instant::now() + REAP) {
            use std::io::Write;
            let _ = writeln!(
                io::stderr(),
                "NOTE: {}: {:?} still in its {} {REAP:?} after SIGKILL",
                self.command,
                self.tree.members(),
                self.tree.describe()
            );
        }
        self.tree.remove();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.end();
        if !std::thread::panicking() {
            self.panic_if_timed_out();
        }
    }
}
