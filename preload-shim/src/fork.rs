//! Locking fork(2) children again.
//!
//! The kernel gives a child made by fork(2) no memory locks and no MCL_FUTURE, so the
//! workers of a forking server (nginx, postgres, redis's background save) would run
//! unlocked. The constructor registers a pthread_atfork(3) child handler that calls
//! mlockall again in every child. It adds MCL_ONFAULT for what is mapped: populating
//! would write-fault, and so copy, every copy-on-write page the child shares with its
//! parent; with MCL_ONFAULT the pages already present are locked, and a page the child
//! first touches later is locked then. MCL_FUTURE, when the parent has it, is restored
//! with the parent's own flags by a second call (MCL_FUTURE alone leaves the existing
//! mappings as the first call set them).
//!
//! The handler runs in the child of a possibly multi-threaded process, where only
//! async-signal-safe calls are allowed: it makes system calls only (mlockall, munlock of the
//! shim's unlocked alternate signal stack (limit.rs), getpid,
//! getrlimit, write, _exit), allocates nothing, and reads statics the constructor wrote
//! before the program's own code could start a thread or fork. posix_spawn(3), and so
//! glibc's system(3) and popen(3), run no fork handlers: their child execs at once.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use memlock_run_protocol::{LockFlags, OnFailure, FAILURE_EXIT_STATUS};

use crate::line::Line;

/// `__register_atfork(prepare, parent, child, dso_handle)`: what glibc's pthread_atfork(3)
/// calls. glibc links pthread_atfork statically (from libc_nonshared.a) as a call to this,
/// and linked for glibc 2.17 it resolves in libpthread.so.0 instead, which would load
/// libpthread into every program the shim serves there. __register_atfork is libc.so.6's,
/// at version GLIBC_2.3.2. musl has no such function, and a reference to it stops musl's
/// loader from loading the shim at all ("Error relocating"): it is looked up at run time.
type RegisterAtfork = unsafe extern "C" fn(
    Option<unsafe extern "C" fn()>,
    Option<unsafe extern "C" fn()>,
    Option<unsafe extern "C" fn()>,
    *mut c_void,
) -> c_int;
/// `pthread_atfork(prepare, parent, child)`: musl's, in its libc.
type PthreadAtfork = unsafe extern "C" fn(
    Option<unsafe extern "C" fn()>,
    Option<unsafe extern "C" fn()>,
    Option<unsafe extern "C" fn()>,
) -> c_int;

/// Why the child handler could not be registered.
pub enum ArmError {
    /// The C library has neither __register_atfork nor pthread_atfork in this process.
    Missing,
    /// Registering failed with this error number.
    Failed(c_int),
}

static PARENT_FLAGS: AtomicU8 = AtomicU8::new(0);
static EXIT_ON_FAILURE: AtomicBool = AtomicBool::new(true);
// A copy of argv[0] for the child's messages: servers rewrite their argv in place for ps
// (nginx's "nginx: worker process"), so a pointer into it would not keep its length.
static ARGV0: [AtomicU8; 128] = [const { AtomicU8::new(0) }; 128];
static ARGV0_LEN: AtomicUsize = AtomicUsize::new(0);

const CURRENT: u8 = 1;
const FUTURE: u8 = 2;
const ONFAULT: u8 = 4;

/// Registers the child handler. Called once, from the constructor, after the lock took.
pub fn arm(flags: LockFlags, on_failure: OnFailure, argv0: &'static [u8]) -> Result<(), ArmError> {
    let bits = (if flags.current { CURRENT } else { 0 })
        | (if flags.future { FUTURE } else { 0 })
        | (if flags.onfault { ONFAULT } else { 0 });
    PARENT_FLAGS.store(bits, Ordering::Relaxed);
    EXIT_ON_FAILURE.store(on_failure == OnFailure::Exit, Ordering::Relaxed);
    let mut len = 0;
    for (slot, &b) in ARGV0.iter().zip(argv0) {
        slot.store(b, Ordering::Relaxed);
        len += 1;
    }
    ARGV0_LEN.store(len, Ordering::Relaxed);
    let rc = if let Some(register) = crate::lookup(c"__register_atfork") {
        // SAFETY: glibc's __register_atfork has the type above. It registers a handler
        // that lives as long as the process (the shim is never unloaded: it is a
        // preload); a null DSO handle ties it to no object.
        unsafe {
            let register = core::mem::transmute::<*mut c_void, RegisterAtfork>(register);
            register(None, None, Some(relock_child), core::ptr::null_mut())
        }
    } else if let Some(atfork) = crate::lookup(c"pthread_atfork") {
        // SAFETY: pthread_atfork(3) has the type above; the handler lives as long as the
        // process, as above.
        unsafe {
            let atfork = core::mem::transmute::<*mut c_void, PthreadAtfork>(atfork);
            atfork(None, None, Some(relock_child))
        }
    } else {
        return Err(ArmError::Missing);
    };
    match rc {
        0 => Ok(()),
        errno => Err(ArmError::Failed(errno)),
    }
}

extern "C" fn relock_child() {
    let bits = PARENT_FLAGS.load(Ordering::Relaxed);
    if bits & CURRENT != 0 {
        let now = LockFlags {
            current: true,
            future: false,
            onfault: true,
        };
        // SAFETY: mlockall is a system call with no memory-safety preconditions.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_ONFAULT) } != 0 {
            return failed(now);
        }
        crate::limit::unlock_alt_stack();
    }
    if bits & FUTURE != 0 {
        let onfault = bits & ONFAULT != 0;
        let future = LockFlags {
            current: false,
            future: true,
            onfault,
        };
        let extra = if onfault { libc::MCL_ONFAULT } else { 0 };
        // SAFETY: as above.
        if unsafe { libc::mlockall(libc::MCL_FUTURE | extra) } != 0 {
            failed(future);
        }
    }
}

/// One line on stderr, then `_exit(125)` or, for `--on-failure warn`, an unlocked child.
fn failed(flags: LockFlags) {
    let errno = crate::errno();
    let mut argv0 = [0u8; 128];
    for (b, slot) in argv0.iter_mut().zip(&ARGV0) {
        *b = slot.load(Ordering::Relaxed);
    }
    let argv0 = argv0
        .get(..ARGV0_LEN.load(Ordering::Relaxed))
        .unwrap_or(b"?");
    let mut line = Line::new();
    line.push("memlock-run: ")
        .push_escaped(argv0)
        .push(" (pid ");
    // SAFETY: getpid cannot fail.
    line.push_u64(unsafe { libc::getpid() } as u64);
    line.push("): cannot lock memory in a forked child: mlockall(")
        .push(flags.describe())
        .push(") failed with ")
        .push_errno(errno);
    crate::push_limit_facts(&mut line, None);
    if EXIT_ON_FAILURE.load(Ordering::Relaxed) {
        line.push("; or let forked children run unlocked (memlock-run --fork off); ");
        line.push("the child exits with status 125 so that nothing runs unlocked");
        line.emit();
        // SAFETY: _exit is async-signal-safe and runs none of the parent's atexit
        // handlers or stdio flushes, which a forked child must not repeat.
        unsafe { libc::_exit(c_int::from(FAILURE_EXIT_STATUS)) }
    }
    line.push("; the child runs unlocked (--on-failure warn)");
    line.emit();
}
