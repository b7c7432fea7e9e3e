//! The command line. The doc comments here are the `--help` text and the man page.
//!
//! Parsing stops here: [`Cli::mode`] turns what clap parsed into the typed request the plan
//! takes (`crate::plan::Request`), with protocol's own enums, and nothing past this file sees
//! clap's types.

use std::ffi::OsString;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Parser;
use memlock_run_protocol::{Fork, LockFlags, OnFailure};

use crate::plan::request::{PidRequest, Request, Wanted};
use crate::size::{parse_limit, parse_size, Limit};

const ABOUT: &str =
    "Run a program with its memory locked in RAM (mlockall), without changing the program";

const LONG_ABOUT: &str = "\
Run a program with its memory locked in RAM (mlockall), without changing the program.

Linux drops every memory lock, and MCL_FUTURE, on execve(2), so no launcher can lock memory \
for the program it starts. memlock-run sets RLIMIT_MEMLOCK, keeps CAP_IPC_LOCK across exec \
through the ambient capability set, puts its shim in LD_PRELOAD with its settings in the \
environment, and execs COMMAND in place: same PID, same signals, COMMAND's own exit status. \
The shim's constructor then calls mlockall(2) inside COMMAND before COMMAND's own code runs, \
checks with the kernel that the lock took, and stops the program (status 125) if it did not.

Programs no preload reaches (static, Go, 32-bit x86, a loader that is not the system's glibc or musl one) are \
locked the \
other way, from outside: a helper process traces the execve with ptrace(2), stops the new \
image at its entry point and makes it call mlockall there, then detaches before COMMAND's \
first instruction (--method). The same injection locks a process that is already running \
(--pid). memlock-run refuses, before exec, what neither way can lock without a word: \
programs the kernel would run in secure-execution mode for their caller (set-user-ID and \
set-group-ID programs that change its IDs, file-capability programs run by a user other than \
root; a set-user-ID root program run by root is locked as any other), another machine's \
programs, and an LD_AUDIT library in the environment, which ld.so loads before the shim.

--check tells, before anything runs, whether a run with the same options would lock \
COMMAND's memory, and what to change if not; --status tells what is locked in processes \
that are running.";

pub const USAGE: &str = "\
memlock-run [OPTIONS] [--] COMMAND [ARGS...]
       memlock-run [--future] [--onfault] [--limit SIZE] [--force] --pid PID
       memlock-run --check [OPTIONS] [-- COMMAND [ARGS...] | --pid PID]
       memlock-run --status PID... [--json]";

const AFTER_HELP: &str = "\
SIZE is a number of bytes with an optional suffix K, M, G or T (KiB, MiB, GiB, TiB): powers of 1024.

Exit status: 125 if memlock-run (or its shim) fails, 126 if COMMAND cannot be executed, \
127 if COMMAND is not found, otherwise COMMAND's own. With --check: 0 if a run would succeed, \
1 if it would not (a FAIL finding). With --status: 0 if every PID was reported, 1 if one \
could not be read. Either exits 125 when it cannot do its work at all.

Examples:
  memlock-run --future --prefault 8M -- ./rt-app
  memlock-run --future --prefault 8M --heap 64M --thread-stack 256K --bind-now -- ./rt-app
  memlock-run --future --prefault 8M --heap 256M --huge -- ./rt-app
  memlock-run --limit 64M --user app:app -- /usr/bin/keystore --serve
  memlock-run --future --no-dump -- /usr/bin/keystore --serve
  memlock-run --dry-run --future -- python3 server.py
  memlock-run --check --future --prefault 8M -- ./rt-app
  memlock-run --future -- ./static-go-service
  memlock-run --future --pid $(pidof keystore)
  memlock-run --status $(pidof rt-app) --json";

#[derive(Parser, Debug)]
#[command(
    name = "memlock-run",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    override_usage = USAGE,
    max_term_width = 100,
    // What --huge applies to: one or both.
    group = clap::ArgGroup::new("huge_ranges").args(["prefault", "heap"]).multiple(true)
)]
pub struct Cli {
    /// Lock future mappings too (MCL_CURRENT|MCL_FUTURE)
    ///
    /// Memory COMMAND maps after it starts (heap growth, new mmaps, thread stacks) is locked
    /// as it is mapped. Without --future only what is mapped at start is locked
    /// (MCL_CURRENT). Under MCL_FUTURE a mapping that would pass RLIMIT_MEMLOCK fails:
    /// malloc returns NULL, thread creation fails with EAGAIN, stack growth is a SIGSEGV.
    #[arg(long)]
    pub future: bool,

    /// Lock pages as they are first touched (MCL_ONFAULT) instead of populating everything now
    ///
    /// Starts faster and keeps untouched memory out of RAM; the first touch of each page
    /// still faults, after which it stays locked. Needs Linux 4.4.
    #[arg(long)]
    pub onfault: bool,

    /// Fault in and lock SIZE of the main thread's stack before COMMAND's code runs
    ///
    /// So that stack growth up to SIZE never faults. The soft RLIMIT_STACK is raised to fit
    /// (SIZE plus the stack already in use) when the hard limit allows; otherwise
    /// memlock-run refuses. New threads keep the default stack size they would have had (with
    /// the preload shim; a glibc program locked with the ptrace method gives them the raised size).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub prefault: Option<u64>,

    /// Fault in, lock and keep SIZE of heap, so that malloc and free within it never fault
    ///
    /// Before COMMAND's code runs, the shim makes glibc's malloc keep what it gets from the
    /// kernel (mallopt: M_TRIM_THRESHOLD -1, free never shrinks the heap; M_MMAP_MAX 0, large
    /// blocks come from the heap rather than from an mmap of their own that free would unmap;
    /// M_ARENA_MAX 1, every thread allocates from the one pre-faulted arena, while glibc's
    /// per-thread cache still serves small blocks without its lock), then grows the heap by
    /// SIZE and has the kernel populate and lock it. Heap beyond SIZE grows as usual: locked as
    /// it is mapped with --future, unlocked without.
    ///
    /// glibc's malloc only. When malloc comes from another allocator (jemalloc or tcmalloc in
    /// LD_PRELOAD or linked into COMMAND), the shim says so and fails (see --on-failure). An
    /// allocator linked in under names of its own (redis calls jemalloc as je_malloc) cannot be
    /// seen: --heap then pre-faults a glibc heap COMMAND hardly uses. For those, use --future
    /// and the allocator's own settings that keep memory (jemalloc:
    /// MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1; tcmalloc: TCMALLOC_RELEASE_RATE=0).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub heap: Option<u64>,

    /// Back the --prefault stack and the --heap with transparent huge pages (2 MiB)
    ///
    /// The shim advises them MADV_HUGEPAGE before the kernel populates them, so that they are
    /// populated 2 MiB at a time: faster at start (256 MiB: about 8x here), fewer TLB misses
    /// after. Works where transparent huge pages are `madvise` or `always`
    /// (/sys/kernel/mm/transparent_hugepage/enabled); with `never` it does nothing, which
    /// --check and -v say. The first population may compact memory to find free 2 MiB blocks
    /// (a one-time stall at start, before COMMAND's code runs); a range the kernel finds no
    /// huge page for stays in 4 KiB pages, locked all the same. -v reports how much ended up
    /// in huge pages (AnonHugePages). Thread stacks stay in 4 KiB pages: glibc maps them with
    /// MAP_STACK, which recent kernels keep out of huge pages. Needs --prefault or --heap.
    #[arg(long, requires = "huge_ranges")]
    pub huge: bool,

    /// Default stack size of the threads COMMAND creates
    ///
    /// Under --future every new thread's stack is populated and locked in full when the thread
    /// is created. With glibc's default (the soft RLIMIT_STACK at start, 8 MiB on most
    /// systems) 100 threads lock 800 MiB, and pthread_create fails with EAGAIN once
    /// RLIMIT_MEMLOCK is reached (without CAP_IPC_LOCK) or RAM runs out. A smaller default
    /// bounds that; a stack too small for what a thread does is a crash (SIGSEGV on its guard
    /// page). Applies to threads created without a stack size of their own (Rust's
    /// std::thread, the JVM and many thread pools set one). Without --thread-stack, threads
    /// get the size they would have had without memlock-run.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_hyphen_values = true)]
    pub thread_stack: Option<u64>,

    /// Lock the children COMMAND forks again (relock), or let them run unlocked (off)
    ///
    /// fork(2) passes on no memory locks and no MCL_FUTURE, so a forking server's workers
    /// would run unlocked.
    ///
    /// relock: the shim locks each forked child again before fork returns in it (a
    /// pthread_atfork handler calling mlockall(MCL_CURRENT|MCL_ONFAULT), then MCL_FUTURE if
    /// --future). Pages the child shares with its parent are locked without being copied; a
    /// page the child writes is copied once (copy-on-write, one fault) and locked. The child
    /// pays for it before its code goes on (measured: 5 ms with 64 MiB resident in the parent,
    /// 50 ms with 512 MiB); the parent's fork is not slowed. A child that cannot lock follows --on-failure: exit
    /// ends that child with status 125 (a server sees a worker die), warn lets it run
    /// unlocked.
    ///
    /// off: forked children run unlocked.
    ///
    /// Children started with posix_spawn, system or popen run no fork handlers: they exec at
    /// once and the shim locks their new image (unless --no-inherit).
    ///
    /// [default: relock with --method preload; the ptrace method cannot relock children, so
    /// under it they run unlocked and an explicit --fork relock is refused]
    #[arg(long, value_name = "MODE", value_parser = fork_parser())]
    pub fork: Option<Fork>,

    /// Resolve COMMAND's symbols at start (LD_BIND_NOW=1), not at each function's first call
    ///
    /// Lazy binding runs the dynamic linker's symbol lookup the first time each library
    /// function is called, inside whatever code calls it first: about a microsecond per
    /// function, and with --onfault or in a forked child it can touch pages not yet mapped.
    /// With LD_BIND_NOW every lookup happens before main, at the cost of a slower start.
    /// Inherited like the shim: programs COMMAND executes bind at start too, unless
    /// --no-inherit.
    #[arg(long)]
    pub bind_now: bool,

    /// RLIMIT_MEMLOCK for COMMAND [default: as high as allowed]
    ///
    /// Without --limit the soft limit is raised to the hard limit (to unlimited where
    /// memlock-run may raise the hard limit, with CAP_SYS_RESOURCE). A SIZE above the hard
    /// limit is an error unless COMMAND will hold CAP_IPC_LOCK, which mlockall is not bound
    /// by the limit for.
    #[arg(long, value_name = "SIZE|unlimited", value_parser = parse_limit, allow_hyphen_values = true)]
    pub limit: Option<Limit>,

    /// Run COMMAND as USER (root only), keeping CAP_IPC_LOCK and no other capability
    ///
    /// Sets the real, effective and saved user and group IDs and the supplementary groups
    /// of USER (GROUP, when given, replaces its primary group), and HOME, USER, LOGNAME and
    /// SHELL from its passwd entry. CAP_IPC_LOCK passes to COMMAND through the ambient set,
    /// and is all its permitted, effective, inheritable and ambient sets hold, whatever the
    /// caller held. The bounding set stays as the caller gave it, as with setpriv, su and
    /// systemd's User=: trimming it would make the exec of a program whose file capabilities
    /// it cuts (ping's cap_net_raw+ep) fail with EPERM. To trim it, use systemd's
    /// CapabilityBoundingSet= or setpriv --bounding-set.
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// What the shim does when it cannot lock
    ///
    /// exit: one line on stderr, then exit status 125, so that nothing runs unlocked.
    /// warn: one line on stderr, then COMMAND runs unlocked; so does a program it executes
    /// that memlock-run would refuse, and a run without the exec gate it needs.
    #[arg(long, value_name = "ACTION", value_parser = on_failure_parser(), default_value = "exit")]
    pub on_failure: OnFailure,

    /// Lock COMMAND only, not the programs it executes
    ///
    /// By default the shim stays in the environment, so that programs COMMAND executes (a
    /// wrapper script's `exec`, a shell's children) are locked too: it judges each exec made
    /// through libc before it happens, by the rules memlock-run applies to COMMAND, and sends
    /// a program the preload cannot reach (static, 32-bit, or whose environment lost
    /// the shim, or was given LD_AUDIT) through memlock-run, which locks it with ptrace or
    /// refuses it (a set-user-ID program that runs in secure-execution mode for its caller);
    /// where memlock-run cannot be executed (under chroot), the exec fails with
    /// EPERM and a message. The execve system call made directly (Go's os/exec, static
    /// programs) is judged by memlock-run's exec gate, a seccomp filter whose notifications a
    /// process of memlock-run's answers; without root's CAP_SYS_ADMIN, memlock-run sets
    /// no_new_privs for the tree to install it (no exec of the tree then gains privilege: the
    /// kernel ignores set-ID bits, and such a program runs as its caller, locked; and SELinux
    /// or AppArmor transitions that would fail). Where no gate can be armed (Linux
    /// before 5.5, seccomp denied), an inheriting run is refused, or under --on-failure warn
    /// runs with a note (--check says which). With
    /// --no-inherit the shim removes itself from the environment once it has locked COMMAND.
    #[arg(long)]
    pub no_inherit: bool,

    /// Do not arm the exec gate: the execve system calls COMMAND's tree makes itself are not judged
    ///
    /// An inheriting run arms the exec gate (see --no-inherit), and refuses to start where it
    /// cannot (Linux before 5.5, a seccomp profile that denies the seccomp system call). With
    /// --no-exec-gate it runs without one: programs COMMAND executes through libc are judged by
    /// the shim as always, but one started with the execve system call itself (Go's os/exec,
    /// static programs), or handed to an interpreter by a binfmt_misc rule, is locked only
    /// where the preload reaches it, and otherwise runs unlocked; and no_new_privs is not set,
    /// so SELinux and AppArmor exec transitions work.
    #[arg(long)]
    pub no_exec_gate: bool,

    /// No core dump, and no reading of COMMAND's memory by other processes of its user
    ///
    /// For programs that hold secrets: locking keeps their pages out of swap, but a crash
    /// writes memory to a core file, and any process of the same user may read
    /// /proc/PID/mem or attach a debugger. memlock-run sets RLIMIT_CORE to 0 (soft and
    /// hard, so COMMAND cannot raise it) before exec, and COMMAND calls
    /// prctl(PR_SET_DUMPABLE, 0) before its code runs (made by the shim, or by the ptrace
    /// helper after the lock), which is then checked; if that fails, COMMAND does not start
    /// (status 125, whatever --on-failure says). With --pid, the running process gets both. The kernel
    /// then writes no core dump at all, not even to a core_pattern pipe such as
    /// systemd-coredump, and only root (CAP_SYS_PTRACE) may read the process's memory or
    /// attach to it.
    ///
    /// Forked children inherit both. execve(2) resets the dumpable flag: programs COMMAND
    /// executes set it again through the shim, unless --no-inherit, in which case they keep
    /// only RLIMIT_CORE 0. It costs the user's own tools: the process's /proc/PID files
    /// belong to root, so gdb, strace, perf and --status run by the same user cannot read
    /// or attach to it, only root can.
    #[arg(long)]
    pub no_dump: bool,

    /// Start COMMAND with NAME as its argv[0], as `exec -a NAME` does
    ///
    /// For programs that act on the name they are started by: multi-call programs such as
    /// busybox, a login shell started as `-bash`. The shim gives it when a locked program
    /// executes one the preload cannot reach and it runs that one through memlock-run, so
    /// that the program sees the name its parent gave it.
    #[arg(
        long,
        value_name = "NAME",
        allow_hyphen_values = true,
        conflicts_with_all = ["pid", "status"]
    )]
    pub argv0: Option<OsString>,

    /// How the lock gets into COMMAND: auto, preload or ptrace
    ///
    /// preload: the shim, in LD_PRELOAD, locks COMMAND from inside before its constructors;
    /// only for dynamically linked glibc and musl programs of the shim's machine.
    ///
    /// ptrace: a helper process (not COMMAND's child) traces memlock-run's execve, runs the new
    /// image to its entry point (past ld.so, before any constructor), makes it call mlockall
    /// (and grow its stack for --prefault) through a system-call instruction of its own vDSO,
    /// checks VmLck, restores every register and detaches, before COMMAND's first
    /// instruction: same PID, no SIGCHLD, TracerPid 0 afterwards. Costs about a millisecond
    /// per start. It cannot act through glibc: --heap, --huge, --thread-stack, --fork relock
    /// and --bind-now are refused with it, and a program COMMAND executes with its own execve
    /// system call (a static program has no other) runs only where the preload reaches it:
    /// the exec gate refuses the others (see --no-inherit). Needs ptrace: it fails, before
    /// exec, under a
    /// debugger or tracer, with kernel.yama.ptrace_scope 3 (or 2 without CAP_SYS_PTRACE), or
    /// where seccomp or a security module denies it, and when memlock-run is PID 1.
    ///
    /// auto: preload where it reaches (glibc and musl programs), ptrace for static programs,
    /// other loaders and 32-bit x86 programs. --dry-run, -v and --check say which, and why.
    #[arg(long, value_name = "METHOD", value_parser = method_parser(), default_value = "auto")]
    pub method: Wanted,

    /// Lock a running process (all of it: MCL_FUTURE then applies to every thread)
    ///
    /// memlock-run stops one thread with ptrace (PTRACE_SEIZE, PTRACE_INTERRUPT), makes it call
    /// mlockall with --future and --onfault as given, restores it exactly (a system call it
    /// was blocked in is restarted; signals that arrive meanwhile are delivered) and detaches,
    /// then prints one line on stdout: VmLck, VmRSS, time taken. Its soft RLIMIT_MEMLOCK is
    /// set to --limit or raised to its hard limit once it is stopped, unless it holds
    /// CAP_IPC_LOCK, and put back if the lock fails (status 125). As with any
    /// debugger's attach, a call the kernel does not restart (epoll_wait, poll, select) returns
    /// EINTR in the stopped thread. Refused: another user's process without root or
    /// CAP_SYS_PTRACE, a process not dumpable, already traced, or under a seccomp filter
    /// (unless --force); a thread that does not stop within 3 s (uninterruptible sleep, a
    /// vfork wait) is left untouched.
    #[arg(
        long,
        value_name = "PID",
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with_all = [
            "command", "dry_run", "prefault", "heap", "huge", "thread_stack", "fork", "bind_now", "user",
            "no_inherit", "no_exec_gate", "method", "on_failure",
        ]
    )]
    pub pid: Option<u32>,

    /// With --pid: lock a process that runs under a seccomp filter
    ///
    /// memlock-run cannot read a process's seccomp filter; if it forbids mlockall, madvise or
    /// prctl, the process may be killed.
    // clap leaves `requires` unchecked beside the trailing COMMAND, so the conflict says it.
    #[arg(long, requires = "pid", conflicts_with = "command")]
    pub force: bool,

    /// Report on stderr what was locked: flags, VmLck, stack pre-faulted, time taken
    ///
    /// One line, for COMMAND alone: the programs it executes, locked too unless
    /// --no-inherit, are silent, so that a parent reading their stderr reads nothing of
    /// memlock-run's. Given twice (-vv), each of them reports its own line as well.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print what would be done (target, flags, limits, capabilities, environment) and exit
    ///
    /// Nothing is changed or executed. Where the run would be refused, --dry-run is refused
    /// the same way: the run's message on stderr, and its exit status.
    #[arg(long)]
    pub dry_run: bool,

    /// Check whether a run would lock memory, and what to change if not; run nothing
    ///
    /// One finding a line, each with a verdict (ok, warn, FAIL): RLIMIT_MEMLOCK and
    /// RLIMIT_STACK as COMMAND would get them; CAP_IPC_LOCK in each capability set, and
    /// whether it can pass to COMMAND in the ambient set (securebits, no_new_privs); whether
    /// the kernel has MCL_ONFAULT; swap; the memory cgroup limit; the doors secrets leave by
    /// besides swap (unencrypted swap, zswap, hibernation, core dumps and where they go,
    /// whether other processes of the user may read COMMAND's memory). Given a COMMAND (with the
    /// options it would run with): what kind of program it is, whether the preload reaches
    /// it, about how much it maps when the shim locks (VmSize, estimated from its ELF
    /// headers and the libraries ld.so would load), and whether RLIMIT_MEMLOCK allows that.
    /// Then a verdict, and the remedy for each problem. Exit status 0 if a run would
    /// succeed, 1 if it would not.
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,

    /// Report what is locked in running processes, and what is not
    ///
    /// For each PID: the resident locked share (Rss in locked mappings against all Rss), then
    /// VmLck (the address space reserved under the lock, which a PROT_NONE reservation made
    /// under --future swells), VmRSS, VmSwap and VmSize; every mapping with its size,
    /// the share of it resident (smaps Rss) and locked (the `lo` VmFlag; smaps Locked is
    /// shown too, a proportional share of shared pages); the large mappings that are not
    /// locked; whether the memlock-run shim is loaded and the flags it was given; whether the
    /// process is dumpable (--no-dump); major and minor page faults. Reading another user's
    /// process, or a non-dumpable one, needs root or CAP_SYS_PTRACE.
    #[arg(
        long,
        value_name = "PID",
        num_args = 1..,
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with_all = [
            "command", "check", "dry_run", "future", "onfault", "prefault", "limit", "user",
            "no_inherit", "no_exec_gate", "no_dump", "verbose", "pid", "force",
        ]
    )]
    pub status: Option<Vec<u32>>,

    /// With --status: write JSON for scripts and monitoring instead of text
    ///
    /// One object with `version` (1), `processes` (one object a PID) and `errors` (PIDs
    /// that could not be read); docs/status-json.md lists every field. Sizes are bytes.
    // clap leaves `requires` unchecked beside the trailing COMMAND, so the conflicts say it.
    #[arg(long, requires = "status", conflicts_with_all = ["command", "check", "dry_run"])]
    pub json: bool,

    /// The program to run, and its arguments
    #[arg(
        required_unless_present_any = ["check", "status", "pid"],
        trailing_var_arg = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// What memlock-run is asked to do.
pub enum Mode {
    Run(Request),
    DryRun(Request),
    Check(Request),
    Pid(PidRequest),
    CheckPid(PidRequest),
    Status { pids: Vec<u32>, json: bool },
}

impl Cli {
    /// The request, typed: the edge past which clap's types go no further.
    pub fn mode(self) -> Mode {
        let flags = LockFlags {
            current: true,
            future: self.future,
            onfault: self.onfault,
        };
        if let Some(pids) = self.status {
            return Mode::Status {
                pids,
                json: self.json,
            };
        }
        if let Some(pid) = self.pid {
            let request = PidRequest {
                pid,
                flags,
                limit: self.limit,
                force: self.force,
                no_dump: self.no_dump,
            };
            return if self.check {
                Mode::CheckPid(request)
            } else {
                Mode::Pid(request)
            };
        }
        let request = Request {
            command: self.command,
            argv0: self.argv0,
            flags,
            prefault: self.prefault.unwrap_or(0),
            heap: self.heap,
            huge: self.huge,
            thread_stack: self.thread_stack,
            fork: self.fork,
            bind_now: self.bind_now,
            limit: self.limit,
            user: self.user,
            on_failure: self.on_failure,
            inherit: !self.no_inherit,
            exec_gate: !self.no_exec_gate,
            no_dump: self.no_dump,
            method: self.method,
            verbose: match self.verbose {
                0 => memlock_run_protocol::Verbose::Off,
                1 => memlock_run_protocol::Verbose::Command,
                _ => memlock_run_protocol::Verbose::Tree,
            },
        };
        if self.check {
            Mode::Check(request)
        } else if self.dry_run {
            Mode::DryRun(request)
        } else {
            Mode::Run(request)
        }
    }
}

/// `--on-failure exit|warn`, as protocol's [`OnFailure`].
fn on_failure_parser() -> impl TypedValueParser<Value = OnFailure> {
    PossibleValuesParser::new([
        PossibleValue::new("exit").help("exit with status 125 (default)"),
        PossibleValue::new("warn").help("warn and run unlocked"),
    ])
    .map(|value| match value.as_str() {
        "warn" => OnFailure::Warn,
        _ => OnFailure::Exit,
    })
}

/// `--fork relock|off`, as protocol's [`Fork`].
fn fork_parser() -> impl TypedValueParser<Value = Fork> {
    PossibleValuesParser::new([
        PossibleValue::new("relock").help("lock each forked child again, MCL_ONFAULT (default)"),
        PossibleValue::new("off").help("forked children run unlocked"),
    ])
    .map(|value| match value.as_str() {
        "off" => Fork::Off,
        _ => Fork::Relock,
    })
}

/// `--method auto|preload|ptrace`.
fn method_parser() -> impl TypedValueParser<Value = Wanted> {
    PossibleValuesParser::new([
        PossibleValue::new("auto")
            .help("preload where it reaches, ptrace where it does not (default)"),
        PossibleValue::new("preload").help("the shim in LD_PRELOAD, from inside"),
        PossibleValue::new("ptrace").help("injected from outside with ptrace"),
    ])
    .map(|value| match value.as_str() {
        "preload" => Wanted::Preload,
        "ptrace" => Wanted::Ptrace,
        _ => Wanted::Auto,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_options_belong_to_the_command() {
        let cli = Cli::try_parse_from(["memlock-run", "--future", "ls", "-l", "--future"]).unwrap();
        assert!(cli.future);
        assert_eq!(cli.command, ["ls", "-l", "--future"]);
        let cli = Cli::try_parse_from(["memlock-run", "--", "--weird-name", "-v"]).unwrap();
        assert_eq!(cli.verbose, 0);
        assert_eq!(cli.command, ["--weird-name", "-v"]);
    }

    #[test]
    fn command_is_required() {
        assert!(Cli::try_parse_from(["memlock-run", "--future"]).is_err());
    }

    #[test]
    fn check_takes_an_optional_command() {
        let cli = Cli::try_parse_from(["memlock-run", "--check", "--limit", "1M"]).unwrap();
        assert!(cli.check && cli.command.is_empty());
        let cli =
            Cli::try_parse_from(["memlock-run", "--check", "--", "check", "--check"]).unwrap();
        assert_eq!(
            cli.command,
            ["check", "--check"],
            "a program named check is a COMMAND"
        );
        assert!(Cli::try_parse_from(["memlock-run", "--check", "--dry-run", "ls"]).is_err());
    }

    #[test]
    fn pid_takes_the_lock_options_only() {
        let cli =
            Cli::try_parse_from(["memlock-run", "--future", "--pid", "42", "--force"]).unwrap();
        assert_eq!(cli.pid, Some(42));
        assert!(cli.command.is_empty() && cli.force);
        for bad in [
            &["memlock-run", "--pid", "42", "ls"][..],
            &["memlock-run", "--pid", "42", "--heap", "1M"],
            &["memlock-run", "--pid", "0"],
            &["memlock-run", "--force", "ls"],
            &["memlock-run", "--pid", "1", "--status", "1"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_negative_size_is_named_as_not_a_size() {
        for args in [
            ["memlock-run", "--prefault", "-1", "ls"],
            ["memlock-run", "--limit", "-5M", "ls"],
            ["memlock-run", "--heap", "-x", "ls"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err().to_string();
            assert!(err.contains("is not a size"), "{args:?}: {err}");
            assert!(!err.contains("use '--"), "{args:?}: a wrong tip: {err}");
        }
    }

    #[test]
    fn status_takes_pids_only() {
        let cli = Cli::try_parse_from(["memlock-run", "--status", "1", "42", "--json"]).unwrap();
        assert_eq!(cli.status, Some(vec![1, 42]));
        assert!(cli.json);
        for bad in [
            &["memlock-run", "--status"][..],
            &["memlock-run", "--status", "0"],
            &["memlock-run", "--status", "self"],
            &["memlock-run", "--status", "1", "--future"],
            &["memlock-run", "--json", "ls"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// The options the shim gives memlock-run for a program it sends there
        /// (protocol::Config::args) mean the run's own settings again.
        #[test]
        fn the_shims_options_parse_back_to_its_settings(
            future: bool, onfault: bool, prefault: u64, heap: u64, thread_stack: u64,
            fork_off: bool, bind_now: bool, warn: bool, verbose in 0u8..3, inherit: bool, no_dump: bool,
            exec_gate: bool, huge: bool,
        ) {
            use memlock_run_protocol::{Config, Fork, LockFlags, Verbose};
            let verbosity = [Verbose::Off, Verbose::Command, Verbose::Tree][usize::from(verbose)];
            let config = Config {
                flags: LockFlags { current: true, future, onfault },
                prefault,
                heap,
                huge,
                thread_stack,
                fork: if fork_off { Fork::Off } else { Fork::Relock },
                bind_now,
                on_failure: if warn { memlock_run_protocol::OnFailure::Warn } else { memlock_run_protocol::OnFailure::Exit },
                verbose: verbosity,
                inherit,
                no_dump,
                exec_gate,
            };
            let mut argv = vec!["memlock-run".to_owned()];
            config.args(|a| argv.push(a.to_owned()));
            argv.extend(["--argv0=-name", "--", "/bin/prog", "arg"].map(String::from));
            let cli = Cli::try_parse_from(&argv).unwrap();
            proptest::prop_assert_eq!((cli.future, cli.onfault), (future, onfault));
            proptest::prop_assert_eq!(cli.prefault.unwrap_or(0), prefault);
            proptest::prop_assert_eq!(cli.heap.unwrap_or(0), heap);
            proptest::prop_assert_eq!(cli.huge, huge && (prefault != 0 || heap != 0));
            proptest::prop_assert_eq!(cli.thread_stack.unwrap_or(0), thread_stack);
            proptest::prop_assert_eq!(cli.fork == Some(Fork::Off), fork_off);
            proptest::prop_assert_eq!(cli.fork.is_none(), !fork_off);
            proptest::prop_assert_eq!((cli.bind_now, cli.verbose, cli.no_dump), (bind_now, verbose, no_dump));
            proptest::prop_assert_eq!(cli.on_failure == memlock_run_protocol::OnFailure::Warn, warn);
            proptest::prop_assert_eq!(cli.no_inherit, !inherit);
            proptest::prop_assert_eq!(cli.no_exec_gate, !exec_gate);
            proptest::prop_assert_eq!(cli.argv0.as_deref(), Some(std::ffi::OsStr::new("-name")));
            proptest::prop_assert_eq!(&cli.command, &["/bin/prog", "arg"].map(OsString::from));
        }
    }
}
