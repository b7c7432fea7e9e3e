//! The memlock-run preload shim: locks the memory of the process it is loaded into.
//!
//! execve(2) drops every memory lock and the MCL_FUTURE setting, so `memlock-run` cannot
//! lock memory for the program it starts. It puts this library in `LD_PRELOAD` instead,
//! with its settings in `MEMLOCK_RUN_*` variables (see the `memlock-run-protocol` crate),
//! and the ELF constructor below does the work inside the new image, before the
//! program's own constructors and `main`:
//!
//! 1. read the settings from the environment glibc passes to `.init_array` functions
//!    (musl passes them nothing: there the shim reads `environ`, see `Process::new`);
//!    for `--no-dump`, make the process non-dumpable at once (PR_SET_DUMPABLE 0, checked
//!    with PR_GET_DUMPABLE), before anything of the program runs;
//! 2. set the default thread stack size, if asked;
//! 3. grow the main thread's stack by the pre-fault size (before locking, so that the
//!    growth is checked against RLIMIT_STACK here rather than failing as a SIGSEGV);
//! 4. set glibc's malloc to keep its heap and grow the heap by the heap size, untouched;
//!    with `--huge`, advise both mappings MADV_HUGEPAGE;
//! 5. mlockall(2), which populates everything it locks unless MCL_ONFAULT is set (the
//!    kernel populates faster than a touch loop, hence steps 3 and 4 come first);
//! 6. populate the pre-faulted stack and heap where mlockall did not;
//! 7. check with the kernel (VmLck) that the lock took: sanitizer runtimes intercept
//!    mlockall and return 0 without locking;
//! 8. register a fork handler that locks forked children again, unless told not to;
//! 9. where RLIMIT_MEMLOCK can stop the main stack's growth later, a SIGSEGV handler that
//!    says so (`limit`), if the program left SIGSEGV at its default.
//!
//! It loads under glibc's loader (glibc 2.17 and later) and under musl's, where a musl
//! program executed by a locked one inherits it: what one C library has and the other lacks
//! (__register_atfork, mallopt, gnu_get_libc_version are glibc's) is looked up at run time,
//! never linked, and an option that needs a missing one fails with a message saying so.
//!
//! The functions it defines in place of libc's (madvise, setuid and its kin, the exec
//! family, pthread_create) are in `wrap`, with why.
//!
//! On failure it writes one line to stderr and, unless told to warn, exits with 125 so
//! that nothing runs unlocked.
//!
//! This is guest code in someone else's process: `no_std`, no allocation, no panics
//! (build.rs turns any surviving panic path into a link error), nothing on stdout, and
//! only libc calls.
// `cargo clippy --all-targets` also builds a test harness, which brings std's panic handler.
#![cfg_attr(not(test), no_std)]

mod environ;
mod fork;
mod heap;
mod limit;
mod line;
mod mark;
mod populate;
mod procfs;
mod stack;
mod wrap;

use core::ffi::{c_char, c_int};

use line::Line;
use memlock_run_protocol::{Config, Fork, LockFlags, OnFailure, Verbose, FAILURE_EXIT_STATUS};

// The libc crate links libc itself only without its `std` feature, and cargo unifies that
// feature with the launcher's when both are built together: name libc here.
#[link(name = "c")]
extern "C" {}
// dladdr and dlsym were in libdl.so.2 until glibc 2.34 (an empty stub since): needed to load
// on older glibc, and linked only where they are not in libc (--as-needed).
#[link(name = "dl")]
extern "C" {}

/// Gives the process the name execve(2) of its path would have (protocol::COMM): memlock-run
/// started it by its descriptor, which the kernel names otherwise.
fn rename(name: &[u8]) {
    let mut comm = [0u8; 16];
    for (slot, &b) in comm.iter_mut().zip(name.iter().take(15)) {
        *slot = b;
    }
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr(), 0, 0, 0) };
}

/// glibc calls `.init_array` functions with `(argc, argv, envp)`; musl calls them with no
/// arguments, and the three are then whatever the registers held (see `Process::new`).
type InitFn = extern "C" fn(c_int, *const *const c_char, *const *const c_char);

#[used]
#[link_section = ".init_array"]
static INIT: InitFn = memlock_run_init;

extern "C" fn memlock_run_init(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    // SAFETY: glibc passes the process's own argv and envp, NUL-terminated arrays of
    // NUL-terminated strings that live for the whole process; `new` reads them only when
    // it is glibc's loader that called.
    let process = unsafe { Process::new(argc, argv, envp) };
    let started = monotonic_ns();

    let mut config = Config::default();
    let mut bad = None;
    let mut renamed = false;
    for entry in process.env() {
        if let Some((name, value)) = memlock_run_protocol::split_entry(entry) {
            if name == memlock_run_protocol::COMM.as_bytes() {
                rename(value);
                renamed = true;
            } else if let Err(err) = config.apply(name, value) {
                bad = Some(err);
            }
        }
    }
    if renamed {
        environ::remove(memlock_run_protocol::COMM.as_bytes());
    }
    // -v is this program's: what it executes runs silent (-vv keeps it).
    if config.verbose == Verbose::Command {
        environ::remove(memlock_run_protocol::VERBOSE.as_bytes());
    }
    if !config.inherit {
        environ::remove_shim(config.bind_now);
    }
    if let Some(bad) = bad {
        let mut line = process.failure_line();
        line.push("invalid ")
            .push(bad.name)
            .push("='")
            .push_escaped(bad.value);
        line.push("' in its environment; these variables belong to memlock-run: start the program with memlock-run");
        return fail(config.on_failure, &mut line);
    }

    if config.no_dump {
        if let Err((call, errno)) = forbid_dumps() {
            let mut line =
                process.problem_line("cannot make the process non-dumpable (--no-dump): ");
            line.push(call);
            if let Some(errno) = errno {
                line.push(" failed with ").push_errno(errno);
            }
            line.push("; without it a crash can write its memory to a core dump and processes of the same user can read it");
            line.push(" (a seccomp filter or a preloaded library that intercepts prctl would do this); run without --no-dump only if that is acceptable");
            // --on-failure warn is about locking: secrecy that was asked for is never dropped.
            line.push("; exiting with status 125 so that nothing runs dumpable");
            line.emit();
            // SAFETY: _exit ends the process without running anything else of it.
            unsafe { libc::_exit(c_int::from(FAILURE_EXIT_STATUS)) }
        }
    }

    let mut thread_stack_set = false;
    // Under musl (no gnu_get_libc_version) threads get musl's own 128 KiB, not a size taken
    // from RLIMIT_STACK: the size --prefault gives back is not theirs to take, and memlock-run
    // refuses --thread-stack for a musl COMMAND. A musl program some locked program executes
    // keeps musl's sizes.
    if config.thread_stack != 0 && lookup(c"gnu_get_libc_version").is_some() {
        match set_default_thread_stack(config.thread_stack) {
            Ok(set) => thread_stack_set = set,
            Err(why) => {
                let mut line = process.failure_line();
                line.push("cannot set the default thread stack size to ")
                    .push_size(config.thread_stack);
                match why {
                    ThreadStackError::Failed(errno) => {
                        line.push(": pthread_setattr_default_np failed with ")
                            .push_errno(errno);
                    }
                    ThreadStackError::Missing => {
                        line.push(": this C library has no pthread_setattr_default_np, which glibc 2.18 and later have; ");
                        line.push("--thread-stack needs it, and so does --prefault, to keep new threads' stacks at the size ");
                        line.push("they had before it raised RLIMIT_STACK; run on glibc 2.18 or later, or leave out both");
                    }
                }
                return fail(config.on_failure, &mut line);
            }
        }
    }

    let (mut prefault, mut stack_mapping) = (None, None);
    if config.prefault != 0 {
        match stack::grow(config.prefault) {
            Ok((range, mapping)) => {
                prefault = Some(range);
                stack_mapping = Some(mapping);
            }
            Err(why) => {
                let mut line = process.failure_line();
                line.push("cannot pre-fault ")
                    .push_size(config.prefault)
                    .push(" of stack: ");
                why.describe(&mut line);
                return fail(config.on_failure, &mut line);
            }
        }
    }

    let mut heap = None;
    if config.heap != 0 {
        match heap::grow(config.heap) {
            Ok(range) => heap = Some(range),
            Err(why) => {
                let mut line = process.problem_line("cannot pre-fault ");
                line.push_size(config.heap).push(" of heap: ");
                why.describe(&mut line);
                return fail(config.on_failure, &mut line);
            }
        }
    }

    if config.huge {
        // The stack's mapping as grow read it; the heap's read here.
        let heap_mapping = heap.map(populate::mapping_of);
        for mapping in [stack_mapping.map(Ok), heap_mapping] {
            let Some(mapping) = mapping else { continue };
            if let Err(errno) = mapping.and_then(populate::advise_huge) {
                // Locked all the same, in 4 KiB pages: a note, not a failure.
                let mut line = process.problem_line("--huge: madvise(MADV_HUGEPAGE) failed with ");
                line.push_errno(errno);
                line.push(" (EINVAL: this kernel has no transparent huge pages); the memory is locked in 4 KiB pages");
                line.emit();
                break;
            }
        }
    }

    // SAFETY: mlockall has no memory-safety preconditions.
    if unsafe { libc::mlockall(mcl_bits(config.flags)) } != 0 {
        let errno = errno();
        let mut line = process.failure_line();
        line.push("mlockall(")
            .push(config.flags.describe())
            .push(") failed with ")
            .push_errno(errno);
        let status = procfs::Status::read();
        push_limit_facts(&mut line, status.ok().map(|s| s.vm_size));
        return fail(config.on_failure, &mut line);
    }

    for (range, what) in [
        (prefault, " of pre-faulted stack: "),
        (heap, " of pre-faulted heap: "),
    ] {
        let Some(range) = range else { continue };
        // SAFETY: the stack range is below every frame of this thread, and the heap range
        // is the free top of the heap: mapped, writable, and not in use.
        if let Err(errno) = unsafe { populate::populate(range, config.flags) } {
            let mut line = process.failure_line();
            line.push("cannot populate ")
                .push_size(range.len() as u64)
                .push(what);
            line.push_errno(errno);
            push_limit_facts(&mut line, None);
            return fail(config.on_failure, &mut line);
        }
    }

    // The kernel's word on what is locked. A runtime that intercepts mlockall (ASan,
    // TSan, MSan do, to avoid locking terabytes of shadow memory) returns 0 and locks
    // nothing, so success alone proves nothing.
    let status = match procfs::Status::read() {
        Ok(status) => status,
        Err(errno) => {
            let mut line = process.failure_line();
            line.push("cannot verify the lock: reading /proc/self/status failed with ")
                .push_errno(errno);
            line.push("; mount /proc in this environment");
            return fail(config.on_failure, &mut line);
        }
    };
    // MCL_FUTURE alone (the protocol allows it; the launcher never asks for it) locks
    // nothing that exists yet: VmLck 0 is its success.
    if status.vm_lck == 0 && config.flags.current {
        let mut line = process.failure_line();
        line.push("mlockall(")
            .push(config.flags.describe())
            .push(") returned success but VmLck is 0 kB: ");
        line.push("something in this process intercepts mlockall, such as a sanitizer runtime (ASan, TSan and MSan ignore it); ");
        line.push("lock an uninstrumented build");
        return fail(config.on_failure, &mut line);
    }

    wrap::locked(config.flags.future);
    let memfd = mark::leave(&config);
    // Where the limit can bite the main stack's growth: a line, not a silent SIGSEGV.
    limit::arm(config.flags.current, config.thread_stack, memfd);
    if memfd >= 0 {
        // SAFETY: the memfd mark.rs opened, closed once.
        unsafe { libc::close(memfd) };
    }
    if config.inherit {
        // From here on, what this process executes is judged before the exec (wrap/exec.rs).
        wrap::arm_exec(&config.executed(), process.env());
    }

    if config.fork == Fork::Relock {
        if let Err(why) = fork::arm(config.flags, config.on_failure, process.argv0) {
            let mut line =
                process.problem_line("cannot arrange for forked children to be locked: ");
            match why {
                fork::ArmError::Failed(errno) => {
                    line.push("pthread_atfork failed with ").push_errno(errno);
                }
                fork::ArmError::Missing => {
                    line.push(
                        "this C library has neither __register_atfork (glibc's) nor pthread_atfork",
                    );
                }
            }
            line.push("; or let forked children run unlocked (memlock-run --fork off)");
            return fail(config.on_failure, &mut line);
        }
    }

    if config.verbose.reports() {
        let mut line = process.report_line();
        line.push("locked ").push(config.flags.describe());
        line.push(" with the preload shim: VmLck ")
            .push_size(status.vm_lck);
        line.push(", VmRSS ").push_size(status.vm_rss);
        line.push(", VmSize ").push_size(status.vm_size);
        // The room the limit leaves for what grows after start (the stack; under MCL_FUTURE
        // thread stacks and the heap too), as --check computes it.
        if let (Some((soft, _)), false) = (limit::memlock_limit(), wrap::holds_ipc_lock()) {
            line.push(", ")
                .push_size(soft.saturating_sub(status.vm_lck))
                .push(" left under RLIMIT_MEMLOCK ")
                .push_size(soft);
        }
        if let Some(range) = prefault {
            line.push(", stack pre-faulted ")
                .push_size(range.len() as u64);
        }
        if let Some(range) = heap {
            line.push(", heap pre-faulted ")
                .push_size(range.len() as u64);
        }
        if config.huge {
            line.push(", ")
                .push_size(procfs::anon_huge_pages().unwrap_or(0))
                .push(" in huge pages (AnonHugePages)");
        }
        if thread_stack_set {
            line.push(", thread stacks ").push_size(config.thread_stack);
        }
        line.push(match config.fork {
            Fork::Relock => ", forked children relock",
            Fork::Off => ", forked children unlocked",
        });
        if config.no_dump {
            line.push(", not dumpable (no core dump; only root can read its memory)");
        }
        line.push(", in ")
            .push_millis(monotonic_ns().saturating_sub(started));
        line.emit();
    }
}

/// What the constructor knows of the process it runs in, for its messages.
struct Process {
    argv0: &'static [u8],
    envp: *const *const c_char,
}

extern "C" {
    /// argv[0], kept by glibc and musl alike (program_invocation_name(3)).
    static program_invocation_name: *const c_char;
}

impl Process {
    /// # Safety
    /// Under glibc's loader, `argv` and `envp` must be the process's NUL-terminated
    /// vectors (or null); under any other they are not read.
    unsafe fn new(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> Self {
        if !called_with_arguments(envp) {
            return Process::from_libc();
        }
        let argv0 = if argc > 0 && !argv.is_null() && !(*argv).is_null() {
            core::ffi::CStr::from_ptr(*argv).to_bytes()
        } else {
            b"?"
        };
        Process { argv0, envp }
    }

    /// The program's name and environment as the C library keeps them, for a loader that
    /// passes the constructor nothing (musl's). musl sets both before it runs any
    /// constructor, from the same argv and envp glibc would have passed.
    fn from_libc() -> Self {
        // SAFETY: both variables are the C library's, set before constructors run, and
        // point to NUL-terminated strings (or a NUL-terminated array of them) that live
        // for the whole process; either may be null.
        unsafe {
            let name = program_invocation_name;
            let argv0 = if name.is_null() {
                &b"?"[..]
            } else {
                core::ffi::CStr::from_ptr(name).to_bytes()
            };
            Process {
                argv0,
                envp: environ::current().cast_const().cast(),
            }
        }
    }

    fn env(&self) -> environ::Entries {
        // SAFETY: see `new`.
        unsafe { environ::Entries::new(self.envp) }
    }

    /// `memlock-run: PROGRAM (pid N): `
    fn report_line(&self) -> Line {
        let mut line = Line::new();
        line.push("memlock-run: ")
            .push_escaped(self.argv0)
            .push(" (pid ");
        // SAFETY: getpid cannot fail.
        line.push_u64(unsafe { libc::getpid() } as u64).push("): ");
        line
    }

    fn failure_line(&self) -> Line {
        self.problem_line("cannot lock memory: ")
    }

    /// `memlock-run: PROGRAM (pid N): WHAT`
    fn problem_line(&self, what: &str) -> Line {
        let mut line = self.report_line();
        line.push(what);
        line
    }
}

/// Whether the loader called the constructor with `(argc, argv, envp)`, as glibc's does.
///
/// musl's calls `.init_array` functions with no arguments, and the three registers then
/// hold whatever they held: read as pointers, they crash the program. glibc is known by
/// its gnu_get_libc_version, which musl lacks, and by the `envp` it passes being the
/// `environ` its libc set up a moment before (a glibc compatibility layer on musl, such as
/// gcompat, defines gnu_get_libc_version too). Both hold under glibc's loader unless a
/// constructor that ran before this one replaced `environ`, and then the environment is
/// read from `environ` as under musl, which is as right. Decided once, by the
/// constructor; nothing is read through `envp` here.
fn called_with_arguments(envp: *const *const c_char) -> bool {
    lookup(c"gnu_get_libc_version").is_some()
        && core::ptr::eq(envp, environ::current().cast_const().cast())
}

/// Ends a failure report: the remedy for `warn`, or `_exit(125)`.
fn fail(on_failure: OnFailure, line: &mut Line) {
    match on_failure {
        OnFailure::Warn => {
            line.push("; running unlocked (--on-failure warn)");
            line.emit();
        }
        OnFailure::Exit => {
            line.push("; exiting with status 125 so that nothing runs unlocked");
            line.emit();
            // SAFETY: _exit ends the process without running anything else of it.
            unsafe { libc::_exit(c_int::from(FAILURE_EXIT_STATUS)) }
        }
    }
}

/// The limit in force, how much is mapped, and the remedies people can apply.
pub(crate) fn push_limit_facts(line: &mut Line, vm_size: Option<u64>) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let mut known = None;
    // SAFETY: `limit` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0 {
        known = Some((limit.rlim_cur, limit.rlim_max));
        line.push("; RLIMIT_MEMLOCK is ");
        if limit.rlim_cur == libc::RLIM_INFINITY {
            line.push("unlimited");
        } else {
            line.push_size(limit.rlim_cur);
        }
    }
    if let Some(mapped) = vm_size {
        line.push(" and VmSize is ").push_size(mapped);
    }
    line.push("; ")
        .push(memlock_run_protocol::limit_remedy(known));
}

/// `prctl(PR_SET_DUMPABLE, 0)`, then `PR_GET_DUMPABLE` to be sure: the kernel then writes
/// no core dump (whatever core_pattern and RLIMIT_CORE say) and lets only CAP_SYS_PTRACE
/// read /proc/PID/mem or attach. execve(2) resets the flag, hence this runs in every image;
/// fork(2) children inherit it. On failure: the call that failed and its errno, if any.
fn forbid_dumps() -> Result<(), (&'static str, Option<c_int>)> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(("prctl(PR_SET_DUMPABLE, 0)", Some(errno())));
    }
    // PR_GET_DUMPABLE takes no argument and has no error of its own (prctl(2)); only a
    // seccomp filter or a security module could fail it, and then the answer is as unknown
    // as a wrong one: either way the process is not known to be undumpable.
    // SAFETY: as above.
    match unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err((
            "prctl(PR_GET_DUMPABLE) does not read 0 (not dumpable) after PR_SET_DUMPABLE 0 returned success",
            None,
        )),
    }
}

fn mcl_bits(flags: LockFlags) -> c_int {
    (if flags.current { libc::MCL_CURRENT } else { 0 })
        | (if flags.future { libc::MCL_FUTURE } else { 0 })
        | (if flags.onfault { libc::MCL_ONFAULT } else { 0 })
}

/// Why the default thread stack size could not be set.
enum ThreadStackError {
    /// The C library has no `pthread_setattr_default_np` in this process.
    Missing,
    /// It failed with this error number.
    Failed(c_int),
}

type GetAttrDefault = unsafe extern "C" fn(*mut libc::pthread_attr_t) -> c_int;
type SetAttrDefault = unsafe extern "C" fn(*const libc::pthread_attr_t) -> c_int;
type AttrSetStackSize = unsafe extern "C" fn(*mut libc::pthread_attr_t, usize) -> c_int;
type AttrDestroy = unsafe extern "C" fn(*mut libc::pthread_attr_t) -> c_int;

/// The pthread functions `--thread-stack` needs, looked up at run time.
///
/// `pthread_getattr_default_np` and `pthread_setattr_default_np` came with glibc 2.18, and
/// they and `pthread_attr_setstacksize` were in libpthread.so.0 until glibc 2.34 moved them
/// into libc. A link-time reference would pin the shim to glibc 2.34, or load libpthread into
/// every program the shim serves on older glibc. None when the process has them nowhere
/// (glibc 2.17; before 2.34, a program that does not load libpthread).
struct AttrFunctions {
    get_default: GetAttrDefault,
    set_default: SetAttrDefault,
    set_stack_size: AttrSetStackSize,
    destroy: AttrDestroy,
}

impl AttrFunctions {
    fn find() -> Option<Self> {
        let find = lookup;
        type Address = *mut libc::c_void;
        // SAFETY: the symbols have the C signatures above (pthread_attr_init(3),
        // pthread_getattr_default_np(3)), and a function pointer has a data pointer's size.
        unsafe {
            Some(AttrFunctions {
                get_default: core::mem::transmute::<Address, GetAttrDefault>(find(
                    c"pthread_getattr_default_np",
                )?),
                set_default: core::mem::transmute::<Address, SetAttrDefault>(find(
                    c"pthread_setattr_default_np",
                )?),
                set_stack_size: core::mem::transmute::<Address, AttrSetStackSize>(find(
                    c"pthread_attr_setstacksize",
                )?),
                destroy: core::mem::transmute::<Address, AttrDestroy>(find(
                    c"pthread_attr_destroy",
                )?),
            })
        }
    }
}

/// Sets the default stack size of new threads; Ok(false) when the process cannot create any.
fn set_default_thread_stack(size: u64) -> Result<bool, ThreadStackError> {
    let size = usize::try_from(size).map_err(|_| ThreadStackError::Failed(libc::EINVAL))?;
    let Some(f) = AttrFunctions::find() else {
        // Before glibc 2.34 the pthread functions are libpthread's, and a program that does
        // not load it cannot create a thread: there is no thread stack to size. (One that
        // dlopens libpthread later sizes its threads from RLIMIT_STACK as it finds it then.)
        // The shim defines pthread_create itself (wrap.rs): ask for the C library's, past it.
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only reads the loader's
        // tables.
        if unsafe { libc::dlsym(wrap::RTLD_NEXT, c"pthread_create".as_ptr()) }.is_null() {
            return Ok(false);
        }
        return Err(ThreadStackError::Missing);
    };
    // SAFETY: the attr is initialised by pthread_getattr_default_np before use and
    // destroyed after; all pointers are to this local.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        let mut rc = (f.get_default)(&mut attr);
        if rc != 0 {
            return Err(ThreadStackError::Failed(rc));
        }
        rc = (f.set_stack_size)(&mut attr, size);
        if rc == 0 {
            rc = (f.set_default)(&attr);
        }
        (f.destroy)(&mut attr);
        if rc != 0 {
            return Err(ThreadStackError::Failed(rc));
        }
    }
    Ok(true)
}

/// The address of the function or variable `name` as the program would find it (the first
/// definition in the global scope), or None where no loaded object defines it.
///
/// For what one C library has and another lacks: a link-time reference to a function musl
/// lacks stops musl's loader from loading the shim at all ("Error relocating ... symbol not
/// found"), while dlsym(3), which both have, lets the shim say what is missing instead.
pub(crate) fn lookup(name: &core::ffi::CStr) -> Option<*mut libc::c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loader's
    // tables.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!address.is_null()).then_some(address)
}

pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // build.rs links with `-z defs`, and this symbol is defined nowhere: if any panic
    // path survives optimisation, the shim fails to link instead of shipping one.
    extern "C" {
        fn memlock_run_shim_must_not_panic() -> !;
    }
    // SAFETY: never reached at run time; the link fails if it is reachable at all.
    unsafe { memlock_run_shim_must_not_panic() }
}
