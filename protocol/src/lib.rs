//! The contract between the `memlock-run` launcher and its preload shim.
//!
//! The launcher cannot lock memory for the program it starts (execve(2) drops every lock
//! and MCL_FUTURE), so it hands its settings to the shim through the environment, and the
//! shim applies them from its ELF constructor inside the new image. This crate is the one
//! place where that hand-over is written down; both sides use it, so they cannot drift.
//!
//! # The protocol, version 1
//!
//! Every variable is optional; a missing one means its default. The launcher removes every
//! inherited `MEMLOCK_RUN_*` variable before it writes its own, so a caller cannot smuggle
//! settings past it.
//!
//! | variable                   | value                                   | default   |
//! |----------------------------|-----------------------------------------|-----------|
//! | `MEMLOCK_RUN_FLAGS`        | comma list of `current`, `future`, `onfault` | `current` |
//! | `MEMLOCK_RUN_PREFAULT`     | bytes of main-thread stack to fault in and lock, decimal | `0` |
//! | `MEMLOCK_RUN_HEAP`         | bytes of glibc heap to fault in, lock and keep (no trimming, no mmap for large blocks, one arena), decimal | `0` |
//! | `MEMLOCK_RUN_HUGE`         | `1`: advise transparent huge pages (MADV_HUGEPAGE) for the mappings `PREFAULT` and `HEAP` pre-fault, before they are populated | `0` |
//! | `MEMLOCK_RUN_THREAD_STACK` | default stack size for new threads, bytes, decimal (`0`: leave glibc's) | `0` |
//! | `MEMLOCK_RUN_FORK`         | `relock`: a fork(2) child locks itself again (MCL_ONFAULT); `off`: it runs unlocked | `relock` |
//! | `MEMLOCK_RUN_BIND_NOW`     | `1`: memlock-run set `LD_BIND_NOW` for this run (the shim removes it with the rest for `--no-inherit`) | `0` |
//! | `MEMLOCK_RUN_ON_FAILURE`   | `exit` (status 125) or `warn` (go on unlocked) | `exit` |
//! | `MEMLOCK_RUN_VERBOSE`      | `1`: this program reports one line on stderr, and the shim takes the variable out of its environment, so that what it executes is silent; `2`: this one and every program it executes report; `0`: silent | `0` |
//! | `MEMLOCK_RUN_INHERIT`      | `1`: programs this one execs are locked too; `0`: the shim removes itself from the environment | `1` |
//! | `MEMLOCK_RUN_NO_DUMP`      | `1`: the shim makes the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`, which execve resets, so each new image sets it again) and checks it with `PR_GET_DUMPABLE`; the launcher has set RLIMIT_CORE to 0 before exec | `0` |
//! | `MEMLOCK_RUN_LAUNCHER`     | the launcher's path, which the shim runs a program through when the preload cannot reach it (with `INHERIT` 1) | none |
//! | `MEMLOCK_RUN_EXECUTED_BY`  | written by the shim for that run of the launcher: `NAME (pid N)` of the program that executed it, named in the launcher's messages | none |
//!
//! The shim itself is named in `LD_PRELOAD`, appended to whatever the user had there.
//!
//! When a locked program executes another, the shim judges the new image with [`reach`]
//! (the same rules the launcher applies to COMMAND). Where the preload will not reach it,
//! the shim executes `MEMLOCK_RUN_LAUNCHER` instead, with the options [`Config::args`]
//! gives, `--argv0` and the program, so that memlock-run locks it another way or refuses it
//! with a message.
//!
//! This crate is `no_std` and allocation-free because the shim reads it before `main`,
//! inside a process it does not own.
#![no_std]
#![deny(unsafe_code)]

pub mod reach;

/// Prefix shared by every variable of the protocol.
pub const PREFIX: &str = "MEMLOCK_RUN_";
pub const FLAGS: &str = "MEMLOCK_RUN_FLAGS";
pub const PREFAULT: &str = "MEMLOCK_RUN_PREFAULT";
pub const HEAP: &str = "MEMLOCK_RUN_HEAP";
pub const HUGE: &str = "MEMLOCK_RUN_HUGE";
pub const THREAD_STACK: &str = "MEMLOCK_RUN_THREAD_STACK";
pub const FORK: &str = "MEMLOCK_RUN_FORK";
pub const BIND_NOW: &str = "MEMLOCK_RUN_BIND_NOW";
pub const ON_FAILURE: &str = "MEMLOCK_RUN_ON_FAILURE";
pub const VERBOSE: &str = "MEMLOCK_RUN_VERBOSE";
pub const INHERIT: &str = "MEMLOCK_RUN_INHERIT";
pub const NO_DUMP: &str = "MEMLOCK_RUN_NO_DUMP";
pub const EXEC_GATE: &str = "MEMLOCK_RUN_EXEC_GATE";

/// The launcher's own path (from /proc/self/exe), written beside the settings when programs
/// COMMAND executes are locked too: when one of them executes a program the preload cannot
/// reach, the shim runs it through memlock-run (see [`Config::args`]).
pub const LAUNCHER: &str = "MEMLOCK_RUN_LAUNCHER";

/// Set by the shim beside the options when it sends a program through memlock-run:
/// `NAME (pid N)` of the locked program that executed it, for memlock-run's messages.
pub const EXECUTED_BY: &str = "MEMLOCK_RUN_EXECUTED_BY";

/// Set by memlock-run for the one image it starts by its descriptor with the preload method
/// (execveat of the file it judged): the name execve(2) of its path would have given the
/// process (the path's last component, 15 bytes at most), which the kernel does not (before
/// Linux 6.14 it takes the descriptor's number, since then the file's own name). The shim
/// gives it to the process (PR_SET_NAME) and takes the variable out of the environment.
pub const COMM: &str = "MEMLOCK_RUN_COMM";

/// Set in COMMAND's environment when memlock-run armed its exec gate: `N:PID:R`, how many
/// seccomp filters (`Seccomp_filters` in /proc/PID/status) memlock-run held once the gate's was
/// installed, the gate's PID, and which processes of the tree the gate can read the memory of
/// ([`GateReads`]). `1` there and in a process's status, with that gate alive, says that the
/// gate's filter, which touches execve and execveat alone, is the only one: `--pid` and
/// `--check` then need no `--force` for it.
pub const GATE: &str = "MEMLOCK_RUN_GATE";

/// The exec gate's process name (comm, at most 15 bytes), as `ps`, `pgrep` and
/// /proc/PID/stat show it; `--status` and the shim know the gate of [`GATE`] by it.
pub const GATE_NAME: &str = "memlock-gate";

/// Whose memory the exec gate can read (process_vm_readv), as memlock-run judged when it
/// armed it: where it can, it judges an exec from what the caller names, and the shim need not
/// give its word ([`GATE_WORD`]), which costs every exec a second stop in the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateReads {
    /// Every process of the tree (`a`): a gate with CAP_SYS_PTRACE, where no Yama scope 3 or
    /// mandatory access control module may deny it.
    All,
    /// Every dumpable process of the tree (`d`): a gate of the tree's own user and credentials,
    /// under no_new_privs (no process of the tree gains an ID or capability the gate lacks),
    /// where neither Yama nor a mandatory access control module restricts tracing.
    Dumpable,
    /// Anything else, or not said (`w`): the shim gives its word before every exec it judged.
    Word,
}

impl GateReads {
    pub const fn letter(self) -> char {
        match self {
            GateReads::All => 'a',
            GateReads::Dumpable => 'd',
            GateReads::Word => 'w',
        }
    }
}

/// The gate's PID and what it reads, from a [`GATE`] value, `N:PID:R` (`N:PID`, or an
/// unknown `R`: [`GateReads::Word`]).
pub fn gate_value(value: &[u8]) -> Option<(u32, GateReads)> {
    let colon = value.iter().position(|&b| b == b':')?;
    let rest = value.get(colon + 1..)?;
    let (pid, reads) = match rest.iter().position(|&b| b == b':') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let pid = u32::try_from(decode_u64(pid)?)
        .ok()
        .filter(|&pid| pid != 0)?;
    let reads = match reads {
        b"a" => GateReads::All,
        b"d" => GateReads::Dumpable,
        _ => GateReads::Word,
    };
    Some((pid, reads))
}

/// The gate's PID from a [`GATE`] value.
pub fn gate_pid(value: &[u8]) -> Option<u32> {
    gate_value(value).map(|(pid, _)| pid)
}

/// The shim's word to the exec gate: `prctl(GATE_WORD, GATE_EXEC | GATE_SPAWN | GATE_SPAWNED)`,
/// an option no kernel knows (EINVAL where no gate listens), which the gate's filter hands
/// to the gate instead. It lets the gate answer for an exec whose caller's memory it may not
/// read (a non-dumpable process under `--no-dump`, another user's without CAP_SYS_PTRACE):
/// such an exec goes on only if the shim judged it first and said so. The gate answers 0, or
/// ENOSPC when its table of words is full (a word not kept: the exec is judged without it).
pub const GATE_WORD: u32 = 0x4d4c_5247;
/// This thread's next exec was judged by the shim (consumed by that exec).
pub const GATE_EXEC: u64 = 1;
/// A spawn of this process's begins (posix_spawn, system, popen): its child, which shares
/// this process's memory until its exec and runs no shim code, was judged by the shim. The
/// word covers one exec of one child of this process.
pub const GATE_SPAWN: u64 = 2;
/// That spawn has returned.
pub const GATE_SPAWNED: u64 = 3;

/// Every setting of the protocol, in the order the launcher writes them.
pub const VARIABLES: [&str; 12] = [
    FLAGS,
    PREFAULT,
    HEAP,
    HUGE,
    THREAD_STACK,
    FORK,
    BIND_NOW,
    ON_FAILURE,
    VERBOSE,
    INHERIT,
    NO_DUMP,
    EXEC_GATE,
];

/// File name of the shim, as cargo builds it and as the packages install it.
pub const SHIM_FILE_NAME: &str = "libmemlock_run_shim.so";

/// What to do when `--heap` meets an allocator other than glibc's. The shim ends its
/// failure line with it and `memlock-run --check` gives it as the remedy, in the same words.
pub const FOREIGN_MALLOC_REMEDY: &str = "drop --heap, use --future, and keep that allocator from returning memory \
with its own settings (jemalloc: MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1; tcmalloc: TCMALLOC_RELEASE_RATE=0)";

/// What to do when mlockall fails for the limit: the shim and the ptrace method end their
/// failure lines with it, in the same words.
pub const LIMIT_REMEDY: &str =
    "raise the limit (memlock-run --limit, LimitMEMLOCK= in a systemd unit, ulimit -l) \
or grant CAP_IPC_LOCK (AmbientCapabilities=CAP_IPC_LOCK in a unit, or start memlock-run as root)";

/// The same, when the soft limit already equals the hard one (memlock-run raised it as far
/// as it may): `--limit` cannot help, the hard limit must be raised where it is set.
pub const HARD_LIMIT_REMEDY: &str = "the hard limit binds, so raise it where it is set (LimitMEMLOCK= in a \
systemd unit, memlock in /etc/security/limits.conf, a container runtime's --ulimit memlock=) or grant CAP_IPC_LOCK \
(AmbientCapabilities=CAP_IPC_LOCK in a unit, or start memlock-run as root)";

/// The remedy for a soft and hard RLIMIT_MEMLOCK (`None`: unknown).
pub fn limit_remedy(soft_and_hard: Option<(u64, u64)>) -> &'static str {
    match soft_and_hard {
        Some((soft, hard)) if soft == hard => HARD_LIMIT_REMEDY,
        _ => LIMIT_REMEDY,
    }
}

/// Exit status of memlock-run's own failures, the shim's included (as `env`, `timeout`).
pub const FAILURE_EXIT_STATUS: u8 = 125;

/// mlockall(2) flags, as a set. Their numeric values differ between architectures
/// (powerpc's MCL_ONFAULT is 0x8000), so the shim maps them with libc's constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockFlags {
    pub current: bool,
    pub future: bool,
    pub onfault: bool,
}

impl LockFlags {
    /// `MCL_CURRENT|MCL_FUTURE` style, as in the man page; for messages.
    pub fn describe(self) -> &'static str {
        match (self.current, self.future, self.onfault) {
            (true, false, false) => "MCL_CURRENT",
            (true, true, false) => "MCL_CURRENT|MCL_FUTURE",
            (true, false, true) => "MCL_CURRENT|MCL_ONFAULT",
            (true, true, true) => "MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT",
            (false, true, false) => "MCL_FUTURE",
            (false, true, true) => "MCL_FUTURE|MCL_ONFAULT",
            (false, false, true) => "MCL_ONFAULT",
            (false, false, false) => "0",
        }
    }

    /// The protocol's spelling, `current,future,onfault`.
    pub fn encode(self) -> &'static str {
        match (self.current, self.future, self.onfault) {
            (true, false, false) => "current",
            (true, true, false) => "current,future",
            (true, false, true) => "current,onfault",
            (true, true, true) => "current,future,onfault",
            (false, true, false) => "future",
            (false, true, true) => "future,onfault",
            (false, false, true) => "onfault",
            (false, false, false) => "",
        }
    }

    pub fn decode(value: &[u8]) -> Option<Self> {
        let mut flags = LockFlags {
            current: false,
            future: false,
            onfault: false,
        };
        for word in value.split(|&b| b == b',') {
            match word {
                b"current" => flags.current = true,
                b"future" => flags.future = true,
                b"onfault" => flags.onfault = true,
                _ => return None,
            }
        }
        // mlockall(2) rejects MCL_ONFAULT alone and an empty set with EINVAL.
        if flags.current || flags.future {
            Some(flags)
        } else {
            None
        }
    }
}

/// Who reports on stderr once locked (`-v`, `-vv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbose {
    Off,
    /// The program memlock-run starts, alone: the shim reports, then takes the variable out
    /// of the environment, so that a descendant does not add a line to a stderr its parent
    /// may be reading.
    Command,
    /// That program and every program its tree executes.
    Tree,
}

impl Verbose {
    pub fn reports(self) -> bool {
        self != Verbose::Off
    }

    /// What a program executed by one with this setting gets.
    pub fn executed(self) -> Verbose {
        match self {
            Verbose::Command => Verbose::Off,
            other => other,
        }
    }

    pub fn encode(self) -> &'static str {
        match self {
            Verbose::Off => "0",
            Verbose::Command => "1",
            Verbose::Tree => "2",
        }
    }

    pub fn decode(value: &[u8]) -> Option<Self> {
        match value {
            b"0" => Some(Verbose::Off),
            b"1" => Some(Verbose::Command),
            b"2" => Some(Verbose::Tree),
            _ => None,
        }
    }
}

/// What the shim does when it cannot lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// One line on stderr, then `_exit(125)`: nothing runs unlocked.
    Exit,
    /// One line on stderr, then the program goes on unlocked.
    Warn,
}

impl OnFailure {
    pub fn encode(self) -> &'static str {
        match self {
            OnFailure::Exit => "exit",
            OnFailure::Warn => "warn",
        }
    }

    pub fn decode(value: &[u8]) -> Option<Self> {
        match value {
            b"exit" => Some(OnFailure::Exit),
            b"warn" => Some(OnFailure::Warn),
            _ => None,
        }
    }
}

/// What a child made by fork(2) does: the kernel gives it no memory locks and no MCL_FUTURE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// The shim's pthread_atfork child handler calls mlockall again, with MCL_ONFAULT so that
    /// the child does not copy every copy-on-write page it shares with its parent.
    Relock,
    /// The child runs unlocked.
    Off,
}

impl Fork {
    pub fn encode(self) -> &'static str {
        match self {
            Fork::Relock => "relock",
            Fork::Off => "off",
        }
    }

    pub fn decode(value: &[u8]) -> Option<Self> {
        match value {
            b"relock" => Some(Fork::Relock),
            b"off" => Some(Fork::Off),
            _ => None,
        }
    }
}

/// The shim's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub flags: LockFlags,
    /// Bytes of the main thread's stack to fault in and lock; 0 for none.
    pub prefault: u64,
    /// Bytes of glibc heap to fault in, lock and keep; 0 for none.
    pub heap: u64,
    /// `--huge`: transparent huge pages (MADV_HUGEPAGE) for the pre-faulted stack and heap.
    pub huge: bool,
    /// Default stack size of threads created later; 0 to leave glibc's default.
    pub thread_stack: u64,
    pub fork: Fork,
    /// memlock-run set `LD_BIND_NOW`, so `--no-inherit` removes it too.
    pub bind_now: bool,
    pub on_failure: OnFailure,
    pub verbose: Verbose,
    pub inherit: bool,
    /// `--no-dump`: no core dump, and no reading of the process's memory by its own user.
    ///
    /// The launcher sets RLIMIT_CORE to 0 (soft and hard) before exec, which survives exec
    /// whatever the locking method. PR_SET_DUMPABLE does not survive execve, so whatever
    /// runs inside the new image sets it: the shim's constructor for the preload method; an
    /// injecting locker must do `prctl(PR_SET_DUMPABLE, 0)` and check `PR_GET_DUMPABLE` == 0
    /// in the new image before the program's code runs.
    pub no_dump: bool,
    /// The exec gate judges the execve system calls of an inheriting run's tree; false for
    /// `--no-exec-gate`, which a run the shim sends a program to keeps.
    pub exec_gate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flags: LockFlags {
                current: true,
                future: false,
                onfault: false,
            },
            prefault: 0,
            heap: 0,
            huge: false,
            thread_stack: 0,
            fork: Fork::Relock,
            bind_now: false,
            on_failure: OnFailure::Exit,
            verbose: Verbose::Off,
            inherit: true,
            no_dump: false,
            exec_gate: true,
        }
    }
}

/// A protocol variable whose value does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadVariable<'a> {
    pub name: &'static str,
    pub value: &'a [u8],
}

impl Config {
    /// Applies one `NAME=VALUE` environment entry; entries outside the protocol are ignored.
    pub fn apply<'a>(&mut self, name: &[u8], value: &'a [u8]) -> Result<(), BadVariable<'a>> {
        let Some(&known) = VARIABLES.iter().find(|v| v.as_bytes() == name) else {
            return Ok(());
        };
        let bad = BadVariable { name: known, value };
        match known {
            FLAGS => self.flags = LockFlags::decode(value).ok_or(bad)?,
            PREFAULT => self.prefault = decode_u64(value).ok_or(bad)?,
            HEAP => self.heap = decode_u64(value).ok_or(bad)?,
            HUGE => self.huge = decode_bool(value).ok_or(bad)?,
            THREAD_STACK => self.thread_stack = decode_u64(value).ok_or(bad)?,
            FORK => self.fork = Fork::decode(value).ok_or(bad)?,
            BIND_NOW => self.bind_now = decode_bool(value).ok_or(bad)?,
            ON_FAILURE => self.on_failure = OnFailure::decode(value).ok_or(bad)?,
            VERBOSE => self.verbose = Verbose::decode(value).ok_or(bad)?,
            INHERIT => self.inherit = decode_bool(value).ok_or(bad)?,
            NO_DUMP => self.no_dump = decode_bool(value).ok_or(bad)?,
            EXEC_GATE => self.exec_gate = decode_bool(value).ok_or(bad)?,
            _ => {}
        }
        Ok(())
    }

    /// The settings of a program this one executes: the same, but for `Verbose::Command`,
    /// which is this program's alone.
    pub fn executed(&self) -> Config {
        Config {
            verbose: self.verbose.executed(),
            ..*self
        }
    }

    /// Calls `arg` with each `memlock-run` option that gives these settings; defaults are left
    /// out, so that memlock-run applies its own for the method it chooses. The shim starts a
    /// program the preload cannot reach through memlock-run with them.
    pub fn args(&self, mut arg: impl FnMut(&str)) {
        if self.flags.future {
            arg("--future");
        }
        if self.flags.onfault {
            arg("--onfault");
        }
        let mut buf = [0u8; 20];
        for (option, value) in [
            ("--prefault", self.prefault),
            ("--heap", self.heap),
            ("--thread-stack", self.thread_stack),
        ] {
            if value != 0 {
                arg(option);
                arg(encode_u64(value, &mut buf));
            }
        }
        // --huge means nothing without a range to advise, and memlock-run refuses it alone.
        if self.huge && (self.prefault != 0 || self.heap != 0) {
            arg("--huge");
        }
        if self.fork == Fork::Off {
            arg("--fork");
            arg("off");
        }
        if self.bind_now {
            arg("--bind-now");
        }
        if self.on_failure == OnFailure::Warn {
            arg("--on-failure");
            arg("warn");
        }
        match self.verbose {
            Verbose::Off => {}
            Verbose::Command => arg("--verbose"),
            Verbose::Tree => arg("-vv"),
        }
        if !self.inherit {
            arg("--no-inherit");
        }
        if self.no_dump {
            arg("--no-dump");
        }
        if !self.exec_gate {
            arg("--no-exec-gate");
        }
    }

    /// Calls `set(name, value)` for every variable of the protocol, in [`VARIABLES`] order.
    pub fn encode(&self, mut set: impl FnMut(&'static str, &str)) {
        let mut buf = [0u8; 20];
        set(FLAGS, self.flags.encode());
        set(PREFAULT, encode_u64(self.prefault, &mut buf));
        set(HEAP, encode_u64(self.heap, &mut buf));
        set(HUGE, if self.huge { "1" } else { "0" });
        set(THREAD_STACK, encode_u64(self.thread_stack, &mut buf));
        set(FORK, self.fork.encode());
        set(BIND_NOW, if self.bind_now { "1" } else { "0" });
        set(ON_FAILURE, self.on_failure.encode());
        set(VERBOSE, self.verbose.encode());
        set(INHERIT, if self.inherit { "1" } else { "0" });
        set(NO_DUMP, if self.no_dump { "1" } else { "0" });
        set(EXEC_GATE, if self.exec_gate { "1" } else { "0" });
    }
}

/// Text this crate wrote itself, from ASCII digits and unit names only.
///
/// `core::str::from_utf8` is not inlined, and linking it into the shim drags in the
/// unwinding parts of the prebuilt `core`; the unchecked form is inlined.
#[allow(unsafe_code)]
fn ascii(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: every caller passes bytes this crate wrote from ASCII literals and digits.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// Splits an `environ` entry into name and value at the first `=`.
pub fn split_entry(entry: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = entry.iter().position(|&b| b == b'=')?;
    Some((entry.get(..eq)?, entry.get(eq + 1..)?))
}

fn decode_bool(value: &[u8]) -> Option<bool> {
    match value {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

/// Plain decimal, no sign, no spaces, no overflow.
pub fn decode_u64(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Writes `n` in decimal into `buf` and returns it as text.
pub fn encode_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    // u64::MAX has 20 digits, so the buffer always has room; written without indexing
    // so that the shim has no panic path here.
    let mut start = buf.len();
    for (i, slot) in buf.iter_mut().enumerate().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start = i;
        if n == 0 {
            break;
        }
    }
    ascii(buf.get(start..).unwrap_or(b"0"))
}

/// A byte count as people read it: `512 B`, `64 KiB`, `8 MiB`, `9.5 MiB`, `8.02 MiB`.
///
/// Powers of 1024, up to two decimals (truncated), so that 8 MiB and 8.02 MiB differ. The shim's report, its errors and
/// the launcher's messages all use it, so the same quantity always reads the same.
pub struct SizeText {
    buf: [u8; 32],
    len: usize,
}

impl SizeText {
    pub fn new(bytes: u64) -> Self {
        const UNITS: [(&str, u32); 4] = [(" TiB", 40), (" GiB", 30), (" MiB", 20), (" KiB", 10)];
        let mut text = SizeText {
            buf: [0; 32],
            len: 0,
        };
        let mut digits = [0u8; 20];
        for (unit, shift) in UNITS {
            if bytes >> shift == 0 {
                continue;
            }
            let whole = bytes >> shift;
            let hundredths = ((bytes - (whole << shift)) * 100) >> shift;
            text.push(encode_u64(whole, &mut digits));
            if hundredths != 0 {
                text.push(if hundredths < 10 { ".0" } else { "." });
                let trimmed = if hundredths % 10 == 0 {
                    hundredths / 10
                } else {
                    hundredths
                };
                text.push(encode_u64(trimmed, &mut digits));
            }
            text.push(unit);
            return text;
        }
        text.push(encode_u64(bytes, &mut digits));
        text.push(" B");
        text
    }

    fn push(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    pub fn as_str(&self) -> &str {
        ascii(self.buf.get(..self.len).unwrap_or(b"?"))
    }
}

/// The name of the empty memfd the shim maps (PROT_NONE) in a locked process, for
/// `--status` to read when the program has rewritten its environment (redis does, for its
/// title): this prefix, then `FLAGS` and `NO_DUMP` entries as in the environment, separated
/// by spaces. /proc/PID/maps shows it as
/// `/memfd:memlock-run MEMLOCK_RUN_FLAGS=current MEMLOCK_RUN_NO_DUMP=0 (deleted)`.
pub const ANON_NAME_PREFIX: &str = "memlock-run ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_is_identity() {
        let config = Config {
            flags: LockFlags {
                current: true,
                future: true,
                onfault: true,
            },
            prefault: 8 << 20,
            heap: 64 << 20,
            huge: true,
            thread_stack: 256 << 10,
            fork: Fork::Off,
            bind_now: true,
            on_failure: OnFailure::Warn,
            verbose: Verbose::Tree,
            inherit: false,
            no_dump: true,
            exec_gate: false,
        };
        let mut decoded = Config::default();
        let mut seen = 0;
        config.encode(|name, value| {
            seen += 1;
            decoded.apply(name.as_bytes(), value.as_bytes()).unwrap();
        });
        assert_eq!(seen, VARIABLES.len());
        assert_eq!(decoded, config);
    }

    #[test]
    fn every_flag_set_round_trips() {
        for bits in 0u32..8 {
            let flags = LockFlags {
                current: bits & 1 != 0,
                future: bits & 2 != 0,
                onfault: bits & 4 != 0,
            };
            let valid = flags.current || flags.future;
            assert_eq!(
                LockFlags::decode(flags.encode().as_bytes()),
                valid.then_some(flags)
            );
            assert_eq!(
                flags.describe().matches("MCL_").count(),
                bits.count_ones() as usize
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut config = Config::default();
        for (name, value) in [
            (FLAGS, "current,sometimes"),
            (FLAGS, "onfault"),
            (PREFAULT, "8M"),
            (PREFAULT, "18446744073709551616"),
            (HEAP, "64M"),
            (HUGE, "yes"),
            (FORK, "sometimes"),
            (BIND_NOW, "yes"),
            (ON_FAILURE, "ignore"),
            (VERBOSE, "yes"),
            (VERBOSE, "3"),
            (NO_DUMP, "yes"),
        ] {
            let err = config.apply(name.as_bytes(), value.as_bytes()).unwrap_err();
            assert_eq!(err.name, name);
            assert_eq!(err.value, value.as_bytes());
        }
        assert_eq!(
            config,
            Config::default(),
            "a rejected value must not change the config"
        );
    }

    #[test]
    fn unrelated_variables_are_ignored() {
        let mut config = Config::default();
        config.apply(b"MEMLOCK_RUN_FUTURE_THING", b"?").unwrap();
        config.apply(b"PATH", b"/bin").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        for (bytes, text) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (4096, "4 KiB"),
            (8 << 20, "8 MiB"),
            ((9 << 20) + (512 << 10), "9.5 MiB"),
            ((1 << 30) + 1, "1 GiB"),
            ((8 << 20) + (20 << 10), "8.01 MiB"),
            ((8 << 20) + (100 << 10), "8.09 MiB"),
            (u64::MAX, "16777215.99 TiB"),
        ] {
            assert_eq!(SizeText::new(bytes).as_str(), text);
        }
    }

    #[test]
    fn only_the_command_itself_reports_under_verbose_1() {
        for (verbose, executed) in [
            (Verbose::Off, Verbose::Off),
            (Verbose::Command, Verbose::Off),
            (Verbose::Tree, Verbose::Tree),
        ] {
            assert_eq!(Verbose::decode(verbose.encode().as_bytes()), Some(verbose));
            let config = Config {
                verbose,
                ..Config::default()
            };
            assert_eq!(config.executed().verbose, executed);
            assert_eq!(config.executed().executed(), config.executed());
        }
        assert!(!Verbose::Off.reports() && Verbose::Command.reports() && Verbose::Tree.reports());
    }

    #[test]
    fn the_gates_pid_follows_the_filter_count() {
        assert_eq!(gate_pid(b"1:4242"), Some(4242));
        assert_eq!(gate_value(b"1:4242"), Some((4242, GateReads::Word)));
        assert_eq!(gate_value(b"2:7:a"), Some((7, GateReads::All)));
        assert_eq!(gate_value(b"1:7:d"), Some((7, GateReads::Dumpable)));
        assert_eq!(gate_value(b"1:7:w"), Some((7, GateReads::Word)));
        assert_eq!(gate_value(b"1:7:ad"), Some((7, GateReads::Word)));
        assert_eq!(gate_value(b"1:7:"), Some((7, GateReads::Word)));
        for reads in [GateReads::All, GateReads::Dumpable, GateReads::Word] {
            let value = [b'1', b':', b'9', b':', reads.letter() as u8];
            assert_eq!(gate_value(&value), Some((9, reads)));
        }
        for bad in [
            &b"4242"[..],
            b"1:",
            b"1:0",
            b"1:-2",
            b"1:4294967296",
            b"1:42x",
            b"1:0:a",
            b"1::a",
        ] {
            assert_eq!(gate_pid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimal() {
        let mut buf = [0u8; 20];
        assert_eq!(encode_u64(0, &mut buf), "0");
        assert_eq!(encode_u64(u64::MAX, &mut buf), "18446744073709551615");
        assert_eq!(decode_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decode_u64(b""), None);
        assert_eq!(decode_u64(b"-1"), None);
        assert_eq!(split_entry(b"A=b=c"), Some((&b"A"[..], &b"b=c"[..])));
    }
}

#[cfg(test)]
mod hostile {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shim reads these from an environment anyone may have written: any bytes are
        /// either a setting or a refusal, never a panic.
        #[test]
        fn any_entry_is_a_setting_or_a_refusal(entry in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some((name, value)) = split_entry(&entry) {
                let _ = Config::default().apply(name, value);
            }
            for name in VARIABLES {
                let _ = Config::default().apply(name.as_bytes(), &entry);
            }
        }

        #[test]
        fn numbers_round_trip(n in any::<u64>()) {
            let mut buf = [0u8; 20];
            prop_assert_eq!(decode_u64(encode_u64(n, &mut buf).as_bytes()), Some(n));
            let _ = SizeText::new(n).as_str();
        }
    }
}
