//! The functions the shim defines in place of libc's, for the program it is loaded into.
//!
//! These are the only symbols the shim exports, and each one is here because a locked
//! process would otherwise break where an unlocked one works. They behave as libc's do
//! on every path the program can tell apart, and on the common path they cost one call
//! and one branch more than libc's own function.
//!
//! - `madvise`: the kernel refuses MADV_DONTNEED and MADV_FREE on a locked mapping
//!   (VM_LOCKED) with EINVAL, and V8 (node, Electron) and Chromium's PartitionAlloc treat
//!   that failure as fatal (V8 stops with SIGTRAP, "Check failed: 0 == ret"). Chromium
//!   reserves its address space before the shim's constructor runs, so even MCL_CURRENT
//!   marks it locked. The wrapper makes the system call itself; only when it fails with
//!   EINVAL for one of those two advices does it repeat it as MADV_DONTNEED_LOCKED
//!   (Linux 5.18), which frees the pages and keeps the range locked, so that pages the
//!   program touches again are faulted in locked. On older kernels it unlocks the range,
//!   repeats the advice and locks the range again with mlock2(MLOCK_ONFAULT), which also
//!   locks pages as they are touched again. A MADV_FREE so repeated frees the pages at
//!   once: the program allowed the kernel to drop them at any time, so it cannot tell.
//!   Cost on the common path: the system call, and one comparison of its result.
//!   Not wrapped: posix_madvise, because glibc's ignores POSIX_MADV_DONTNEED and makes
//!   its own system call for the other advices, which locked ranges accept.
//! - `setuid`, `setreuid`, `setresuid`: a daemon started as root that switches to its own
//!   user (nginx's `user` directive) loses every capability, CAP_IPC_LOCK with them, and
//!   under MCL_FUTURE its next mapping fails against an RLIMIT_MEMLOCK it already exceeds
//!   (nginx's workers die of malloc failures, and clients hang). When the constructor
//!   locked the process and the process holds CAP_IPC_LOCK, the wrappers keep exactly that
//!   capability across a switch that leaves no user ID 0, as systemd's `User=` with
//!   `AmbientCapabilities=CAP_IPC_LOCK` does: PR_SET_KEEPCAPS before libc's own function,
//!   then capset(2) to CAP_IPC_LOCK alone in the permitted, effective and inheritable
//!   sets, CAP_IPC_LOCK raised in the ambient set (so that programs it executes, locked
//!   by the shim again, may lock too), and PR_SET_KEEPCAPS cleared; each step is read
//!   back. If any step fails, the wrapper drops every capability, as the switch would
//!   have without memlock-run, and says so on stderr. A program that set KEEPCAPS itself
//!   manages its capabilities and is left alone. libc's function (found with
//!   dlsym(RTLD_NEXT)) does the switch itself, because glibc changes the IDs of every
//!   thread, and capabilities are per thread: other threads of a threaded program drop
//!   theirs as the kernel says. Programs that make the system call themselves (Go) are
//!   not reached. Cost: two prctl calls and a getresuid around a call programs make once.
//! - `execve`, `execv`, `execvp`, `execvpe`, `execveat`, `fexecve`, `execl`, `execle`, `execlp`, `posix_spawn`, `posix_spawnp`, `system`, `popen`: a locked
//!   program hands the shim to the programs it executes through the environment, and ld.so
//!   fails open: a static, musl or 32-bit program, one whose environment was emptied (`env
//!   -i`, a shell's `exec -c`) or whose shim path does not exist (`chroot`) would run
//!   unlocked without a word. Each wrapper judges the new image before the exec with the
//!   launcher's own rules (memlock_run_protocol::reach: its ELF headers as the kernel reads
//!   them, a `#!` line's interpreter, secure-execution mode as the kernel computes it for this
//!   process) and the environment it gets (one `LD_PRELOAD` naming this shim, which exists at
//!   that path, this run's settings, and no `LD_AUDIT` library, which ld.so would load first). Where the preload will lock it, libc's function (posix_spawn) or the system
//!   call (the rest) runs as asked. Otherwise the program is executed as `memlock-run
//!   OPTIONS --argv0 ARGV0 -- PATH ARGS...` (`MEMLOCK_RUN_LAUNCHER`, this run's settings as
//!   options), which locks it with the ptrace method or refuses it with its message and
//!   status (and so is a relative path given to posix_spawn with file actions, which may
//!   change directory in the child before the exec); if memlock-run itself cannot be
//!   executed (under a chroot, say), the call fails
//!   with EPERM (a refusal: execvp does not go on searching PATH) and one line on stderr naming the program and why. A file that is neither
//!   ELF nor `#!` fails with ENOEXEC, as the kernel says without a binfmt_misc handler (and
//!   execvp then runs it with /bin/sh, as glibc's does). They are wrapped in full, glibc's
//!   execvp and posix_spawn included, because glibc's own call their execve internally,
//!   where no preload reaches. system and popen start /bin/sh with the C library's own
//!   spawn, which cannot be redirected: they judge /bin/sh first, and refuse (-1 or NULL
//!   with EPERM, and the line) a shell the preload would miss. Not reached: programs that
//!   make the system call themselves (Go's os/exec, static programs); memlock-run's exec
//!   gate judges those (launcher/src/gate/), and refuses what the preload would miss; under
//!   `--no-exec-gate` such an image is locked if the preload reaches it and runs unlocked
//!   otherwise (see docs/security.md). Under `--no-inherit` each is
//!   libc's own. Cost: an open, two or three preads, an fstat and a stat per exec, a few
//!   microseconds beside the exec's own milliseconds; the judgement needs under 8 KiB of
//!   stack (it may run in a signal handler). The command line for memlock-run is built in a
//!   mapping of its own: from a vfork(2) child, which shares its parent's memory, that
//!   mapping (the size of the environment) stays in the parent after the exec.
//! - `pthread_create`: under MCL_FUTURE each new thread's whole stack is locked when glibc
//!   maps it, and without CAP_IPC_LOCK a stack past RLIMIT_MEMLOCK makes pthread_create
//!   fail with EAGAIN: a program that does not expect it stops or runs crippled without a
//!   word (gpg-agent stops serving, and its client starts an unlocked agent). libc's own
//!   (dlsym(RTLD_NEXT)) creates the thread; only when it returned EAGAIN does `limit.rs`
//!   check that the lock limit is the cause (the kernel's answer to a mapping of the same
//!   size) and say so on stderr, once per process. The program gets libc's result as it
//!   was. Cost on the common path: one call and one comparison. On glibc before 2.34, a
//!   program that does not load libpthread sees this definition where a weak reference
//!   would have found none; calling it then fails with EAGAIN, as a pthread_create that
//!   cannot create a thread does.

mod exec;

pub use exec::arm as arm_exec;

use core::ffi::{c_int, c_long, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::line::Line;

/// Linux 5.18: MADV_DONTNEED that also applies to locked ranges (not in the libc crate's
/// every version).
const MADV_DONTNEED_LOCKED: c_int = 24;
/// mlock2(2) flag: lock pages as they are faulted in.
const MLOCK_ONFAULT: c_long = 1;

/// `madvise(2)`, which frees memory on locked ranges too: see the module documentation.
///
/// # Safety
/// As madvise(2): the caller answers for what the advice does to its memory.
#[no_mangle]
pub unsafe extern "C" fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int {
    let rc = raw_madvise(addr, len, advice);
    if rc == 0 {
        return 0;
    }
    let failed = crate::errno();
    if failed != libc::EINVAL || !(advice == libc::MADV_DONTNEED || advice == libc::MADV_FREE) {
        return rc;
    }
    free_locked(addr, len, advice, failed)
}

/// The slow path: the advice failed with EINVAL, which the kernel says of locked ranges
/// (and of bad arguments and page-table-mapped ranges, where the retries fail too and the
/// program gets its first error back).
#[cold]
#[inline(never)]
unsafe fn free_locked(addr: *mut c_void, len: usize, advice: c_int, failed: c_int) -> c_int {
    if raw_madvise(addr, len, MADV_DONTNEED_LOCKED) == 0 {
        return 0;
    }
    if crate::errno() != libc::EINVAL {
        return fail_with(failed);
    }
    // A kernel before 5.18 does not know MADV_DONTNEED_LOCKED. Unlock, advise, relock:
    // the only way there to free pages of a locked range.
    if libc::syscall(libc::SYS_munlock, addr, len) != 0 {
        return fail_with(failed);
    }
    let mut rc = raw_madvise(addr, len, advice);
    if rc == 0 && advice == libc::MADV_FREE {
        // MADV_FREE frees lazily, and the relock below would keep the pages it left: free
        // them now. MADV_FREE took the range, so it is private anonymous memory, where
        // MADV_DONTNEED does what MADV_FREE may do at any time.
        rc = raw_madvise(addr, len, libc::MADV_DONTNEED);
    }
    let advised = crate::errno();
    // Lock the range again whatever the advice did, so that it stays what it was; with
    // MLOCK_ONFAULT the freed pages are locked as the program touches them again.
    libc::syscall(libc::SYS_mlock2, addr, len, MLOCK_ONFAULT);
    if rc == 0 {
        0
    } else {
        fail_with(advised)
    }
}

/// madvise(2) as a system call, so that the wrapper never calls itself through the PLT.
unsafe fn raw_madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int {
    libc::syscall(libc::SYS_madvise, addr, len, advice as c_long) as c_int
}

fn fail_with(errno: c_int) -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = errno };
    -1
}

/// Set by the constructor once the process is locked: only then are capabilities kept.
static LOCKED: AtomicBool = AtomicBool::new(false);
/// The process was locked with MCL_FUTURE: new mappings count against RLIMIT_MEMLOCK.
static FUTURE: AtomicBool = AtomicBool::new(false);

/// The constructor locked this process: keep CAP_IPC_LOCK across its own switch of user.
pub fn locked(future: bool) {
    LOCKED.store(true, Ordering::Relaxed);
    FUTURE.store(future, Ordering::Relaxed);
}

/// The constructor locked this process with MCL_FUTURE.
pub fn future() -> bool {
    FUTURE.load(Ordering::Relaxed)
}

/// The calling thread has CAP_IPC_LOCK in its effective set: RLIMIT_MEMLOCK does not bind it.
pub fn holds_ipc_lock() -> bool {
    capget().is_some_and(|[low, _]| low.effective & (1 << CAP_IPC_LOCK) != 0)
}

/// The calling thread has a capability in its effective set other than CAP_IPC_LOCK (or its
/// capabilities cannot be read): an unprivileged exec gate, which holds none but that one,
/// cannot take them on to open files as this process would (see wrap/exec.rs `word_needed`).
pub fn holds_more_than_ipc_lock() -> bool {
    capget()
        .is_none_or(|[low, high]| low.effective & !(1 << CAP_IPC_LOCK) != 0 || high.effective != 0)
}

type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;
type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartFn,
    *mut c_void,
) -> c_int;

/// libc's `pthread_create`, and a line when the lock limit made it fail: see the module
/// documentation.
///
/// # Safety
/// As pthread_create(3).
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartFn,
    arg: *mut c_void,
) -> c_int {
    static NEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
    let f = next(&NEXT, c"pthread_create");
    if f.is_null() {
        return libc::EAGAIN;
    }
    // SAFETY: dlsym found libc's pthread_create, whose type this is.
    let real = core::mem::transmute::<*mut c_void, PthreadCreate>(f);
    let rc = real(thread, attr, start, arg);
    if rc == libc::EAGAIN {
        crate::limit::thread_failed(attr);
    }
    rc
}

const CAP_IPC_LOCK: u32 = 14;
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// glibc's RTLD_NEXT.
pub(crate) const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's capabilities, the 64 bits as two words each.
fn capget() -> Option<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: the header and two data words are what version 3 reads and writes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    (rc == 0).then_some(data)
}

fn capset(data: [CapData; 2]) -> bool {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: as in `capget`; the kernel only reads `data`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    rc == 0 && capget() == Some(data)
}

fn resuid() -> [libc::uid_t; 3] {
    let mut ids = [0; 3];
    let [r, e, s] = &mut ids;
    // SAFETY: three valid out-pointers.
    unsafe { libc::getresuid(r, e, s) };
    ids
}

fn prctl(option: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    }
}

/// prctl(PR_CAP_AMBIENT, `op`, CAP_IPC_LOCK).
fn ambient(op: c_int) -> c_int {
    let (op, cap) = (op as libc::c_ulong, CAP_IPC_LOCK as libc::c_ulong);
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            op,
            cap,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    }
}

/// Before a change of user IDs: whether CAP_IPC_LOCK is to be kept, with KEEPCAPS now set.
fn before_switch() -> bool {
    if !LOCKED.load(Ordering::Relaxed) || !resuid().contains(&0) {
        return false;
    }
    let holds = capget().is_some_and(|[low, _]| low.permitted & (1 << CAP_IPC_LOCK) != 0);
    // A program that set KEEPCAPS itself keeps what it chooses.
    if !holds || prctl(libc::PR_GET_KEEPCAPS, 0) != 0 {
        return false;
    }
    prctl(libc::PR_SET_KEEPCAPS, 1) == 0
}

fn after_switch(switched: bool) {
    if resuid().contains(&0) {
        // Still root in one of the IDs: the kernel kept every capability, and the
        // program may switch again.
        prctl(libc::PR_SET_KEEPCAPS, 0);
        return;
    }
    if !switched {
        prctl(libc::PR_SET_KEEPCAPS, 0);
        return;
    }
    let bit = 1u32 << CAP_IPC_LOCK;
    let only = [
        CapData {
            effective: bit,
            permitted: bit,
            inheritable: bit,
        },
        CapData::default(),
    ];
    let step = if !capset(only) {
        "capset to CAP_IPC_LOCK alone"
    } else if ambient(libc::PR_CAP_AMBIENT_RAISE) != 0 || ambient(libc::PR_CAP_AMBIENT_IS_SET) != 1
    {
        "raising CAP_IPC_LOCK in the ambient set"
    } else if prctl(libc::PR_SET_KEEPCAPS, 0) != 0 || prctl(libc::PR_GET_KEEPCAPS, 0) != 0 {
        "clearing KEEPCAPS"
    } else {
        return;
    };
    let errno = crate::errno();
    // Leave the process with no more than the switch would have left it without us.
    let dropped = capset([CapData::default(); 2]);
    prctl(libc::PR_SET_KEEPCAPS, 0);
    let mut line = Line::new();
    line.push("memlock-run: pid ");
    // SAFETY: getpid cannot fail.
    line.push_u64(unsafe { libc::getpid() } as u64);
    line.push(": cannot keep CAP_IPC_LOCK across the program's switch of user: ")
        .push(step)
        .push(" failed with ")
        .push_errno(errno);
    if dropped {
        line.push("; it runs without capabilities, as it would without memlock-run, and mappings past RLIMIT_MEMLOCK fail; raise the hard limit for its user (LimitMEMLOCK=, limits.conf)");
        line.emit();
    } else {
        line.push("; nor could it drop the capabilities it kept: exiting with status 125");
        line.emit();
        // SAFETY: _exit ends the process without running anything else of it.
        unsafe { libc::_exit(c_int::from(memlock_run_protocol::FAILURE_EXIT_STATUS)) }
    }
}

/// libc's own `name`, the next definition after the shim's.
fn next(cache: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    let mut f = cache.load(Ordering::Relaxed);
    if f.is_null() {
        // SAFETY: dlsym with a NUL-terminated name.
        f = unsafe { libc::dlsym(RTLD_NEXT, name.as_ptr()) };
        cache.store(f, Ordering::Relaxed);
    }
    f
}

fn no_function() -> c_int {
    fail_with(libc::ENOSYS)
}

macro_rules! switch_user {
    ($name:ident, $cname:literal, ($($arg:ident),*)) => {
        /// libc's function of that name, keeping CAP_IPC_LOCK: see the module documentation.
        #[no_mangle]
        pub extern "C" fn $name($($arg: libc::uid_t),*) -> c_int {
            static NEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
            let f = next(&NEXT, $cname);
            if f.is_null() {
                return no_function();
            }
            // SAFETY: dlsym found libc's function of this name, whose type this is.
            let real: extern "C" fn($($arg: libc::uid_t),*) -> c_int =
                unsafe { core::mem::transmute::<*mut c_void, _>(f) };
            let keep = before_switch();
            let rc = real($($arg),*);
            if keep {
                let saved = crate::errno();
                after_switch(rc == 0);
                // SAFETY: this thread's errno slot.
                unsafe { *libc::__errno_location() = saved };
            }
            rc
        }
    };
}

switch_user!(setuid, c"setuid", (uid));
switch_user!(setreuid, c"setreuid", (ruid, euid));
switch_user!(setresuid, c"setresuid", (ruid, euid, suid));
