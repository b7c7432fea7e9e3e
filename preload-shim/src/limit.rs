//! One line on stderr when RLIMIT_MEMLOCK bites after start, so that a program locked
//! without CAP_IPC_LOCK never dies or limps from it without a word.
//!
//! After the lock, the limit is met again each time the program grows: the main stack is a
//! locked mapping, so each page it grows by is charged, and past the limit the kernel
//! refuses the growth and the program gets SIGSEGV; under MCL_FUTURE each new thread's whole
//! stack is charged at pthread_create, which fails with EAGAIN. The shim says which, the
//! figures and the remedy, once per process and kind. Nothing here runs on the common path:
//! the pthread_create wrapper (wrap.rs) comes here only once the real call has failed with
//! EAGAIN, and the SIGSEGV handler only runs on a SIGSEGV, which ends the program anyway.
//!
//! The handler is installed by the constructor only where the limit can bite (MCL_CURRENT,
//! a finite limit, no CAP_IPC_LOCK) and the program inherited SIGSEGV at its default. It
//! runs on an alternate stack of its own, since the main stack is exactly what could not
//! grow: a private mapping of the shim's memfd (mark.rs), so that `--status` knows it as the
//! shim's, unlocked so that it costs no locked memory, and untouched (so no RAM) until a
//! fault. SA_RESETHAND puts SIGSEGV back at its default as the handler is entered; the
//! handler returns, the faulting instruction runs again, and the kernel's default action
//! ends the process as it would have: status 139, a core dump where one is allowed. A
//! program that installs its own handler later replaces this one; one that chains to it
//! (calls it for faults it does not handle) gets the line and its own handler back. Not for:
//! threads' stacks (glibc's own mappings, sized up front), or mmap failures under
//! MCL_FUTURE (malloc maps through the C library's internal calls, which no preload
//! reaches, and wrapping mmap would put the shim on the path of every mapping).

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::line::Line;
use crate::procfs;

/// The alternate signal stack: the signal frame (up to 3.5 KiB with AVX-512 state), the
/// /proc read's 4 KiB buffer and a line's 1 KiB, with room to spare; it holds no page until
/// a fault touches it.
const ALT_STACK: usize = 32 << 10;

/// The default stack of a new thread, guard page included, as the constructor found it:
/// `--thread-stack`, or glibc's default from the soft RLIMIT_STACK.
static THREAD_STACK: AtomicUsize = AtomicUsize::new(0);

/// The alternate signal stack, once armed: a forked child's relock (fork.rs) unlocks it again.
static ALT: AtomicUsize = AtomicUsize::new(0);

/// After mlockall(MCL_CURRENT) in a forked child: the alternate stack stays unlocked there too.
pub fn unlock_alt_stack() {
    let alt = ALT.load(Ordering::Relaxed);
    if alt != 0 {
        // SAFETY: munlock of the shim's own mapping, inherited by the child.
        unsafe { libc::munlock(alt as *const c_void, ALT_STACK) };
    }
}

/// The process that last said a thread did not fit: once per process, forked children too.
static THREAD_SAID: AtomicI32 = AtomicI32::new(0);

/// The soft RLIMIT_MEMLOCK and its hard value, when finite.
pub fn memlock_limit() -> Option<(u64, u64)> {
    let (soft, hard) = rlimit(libc::RLIMIT_MEMLOCK);
    (soft != libc::RLIM_INFINITY).then_some((soft, hard))
}

fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    unsafe { libc::getrlimit(resource, &mut limit) };
    (limit.rlim_cur, limit.rlim_max)
}

/// `memlock-run: pid N: WHAT`, then `RLIMIT_MEMLOCK is 8 MiB and VmLck is 2.4 MiB (no
/// CAP_IPC_LOCK); REMEDY` and `TAIL`.
fn say(what: &str, size: u64, why: &str, limit: (u64, u64), vm_lck: u64, tail: &str) {
    let mut line = Line::new();
    line.push("memlock-run: pid ");
    // SAFETY: getpid cannot fail.
    line.push_u64(unsafe { libc::getpid() } as u64)
        .push(": ")
        .push(what)
        .push_size(size)
        .push(why)
        .push("RLIMIT_MEMLOCK is ")
        .push_size(limit.0)
        .push(" and VmLck is ")
        .push_size(vm_lck)
        .push(" (no CAP_IPC_LOCK); ")
        .push(memlock_run_protocol::limit_remedy(Some(limit)))
        .push(tail);
    line.emit();
}

/// After the lock: notes the default thread stack (`thread_stack`, or 0 for glibc's), and
/// arms the stack-growth line where the limit can bite and SIGSEGV is at its default.
/// `memfd` is the shim's mark (mark.rs), or -1.
pub fn arm(current: bool, thread_stack: u64, memfd: c_int) {
    let default = match thread_stack {
        0 => match rlimit(libc::RLIMIT_STACK).0 {
            libc::RLIM_INFINITY => 2 << 20,
            soft => soft,
        },
        given => given,
    };
    THREAD_STACK.store(default as usize + 4096, Ordering::Relaxed);
    if !current || memfd < 0 || memlock_limit().is_none() || crate::wrap::holds_ipc_lock() {
        return;
    }
    // SAFETY: sigaction with a null new action only reads the disposition; the rest makes
    // a new private mapping of the shim's own memfd (sized in mark.rs) and points the
    // alternate stack at it. PROT_NONE first, so that MCL_FUTURE populates nothing; then
    // unlocked, then usable.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        if libc::sigaction(libc::SIGSEGV, core::ptr::null(), &mut action) != 0
            || action.sa_sigaction != libc::SIG_DFL
        {
            return;
        }
        let stack = libc::mmap(
            core::ptr::null_mut(),
            ALT_STACK,
            libc::PROT_NONE,
            libc::MAP_PRIVATE,
            memfd,
            0,
        );
        if stack == libc::MAP_FAILED {
            return;
        }
        let alt = libc::stack_t {
            ss_sp: stack,
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        action.sa_sigaction = stack_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
        if libc::munlock(stack, ALT_STACK) != 0
            || libc::mprotect(stack, ALT_STACK, libc::PROT_READ | libc::PROT_WRITE) != 0
            || libc::sigaltstack(&alt, core::ptr::null_mut()) != 0
            || libc::sigaction(libc::SIGSEGV, &action, core::ptr::null_mut()) != 0
        {
            libc::munmap(stack, ALT_STACK);
            return;
        }
        ALT.store(stack as usize, Ordering::Relaxed);
    }
}

/// The SIGSEGV handler: says so when the fault is the main stack's growth refused for the
/// lock limit, then returns, SIGSEGV being at its default again (SA_RESETHAND).
extern "C" fn stack_fault(_: c_int, info: *mut libc::siginfo_t, _: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code <= 0 {
        // Sent (kill, raise, sigqueue), not a fault: nothing runs again on return, so
        // send it once more, to be taken at the default as it would have been.
        // SAFETY: raise with a valid signal number.
        unsafe { libc::raise(libc::SIGSEGV) };
        return;
    }
    // The top of the main stack: the kernel copies the program's file name there first,
    // ending one pointer below the end of the mapping (AT_EXECFN).
    // SAFETY: getauxval has no preconditions; AT_EXECFN is a NUL-terminated string.
    let end = unsafe {
        let name = libc::getauxval(libc::AT_EXECFN) as *const libc::c_char;
        if name.is_null() {
            return;
        }
        name as usize + libc::strlen(name) + 1 + core::mem::size_of::<usize>()
    };
    const SEGV_MAPERR: c_int = 1;
    let (Ok(status), Some(limit)) = (procfs::Status::read(), memlock_limit()) else {
        return;
    };
    let page = addr & !4095;
    let start = end.saturating_sub(status.vm_stk as usize);
    let growth = start.wrapping_sub(page) as u64;
    // Below the main stack and within RLIMIT_STACK: a growth the kernel refused for the
    // lock, if it would take VmLck past the limit.
    if code != SEGV_MAPERR
        || page >= start
        || (end - page) as u64 > rlimit(libc::RLIMIT_STACK).0
        || status.vm_lck.saturating_add(growth) <= limit.0
    {
        return;
    }
    say(
        "the main stack could not grow by ",
        growth,
        ", and the program gets SIGSEGV: it is locked, so its growth counts against the lock limit: ",
        limit,
        status.vm_lck,
        "; memlock-run --check shows how far the stack can grow",
    );
}

/// pthread_create failed with EAGAIN (wrap.rs): says so when MCL_FUTURE is on and the new
/// thread's stack is what the lock limit refused.
#[cold]
#[inline(never)]
pub fn thread_failed(attr: *const libc::pthread_attr_t) {
    let Some(limit) = memlock_limit().filter(|_| crate::wrap::future()) else {
        return;
    };
    let mut size = THREAD_STACK.load(Ordering::Relaxed);
    if !attr.is_null() {
        if let Some(get) = crate::lookup(c"pthread_attr_getstacksize") {
            // SAFETY: pthread_attr_getstacksize(3)'s C signature, on the program's attributes.
            unsafe {
                let get = core::mem::transmute::<*mut c_void, AttrFn>(get);
                get(attr, &mut size);
            }
            size += 4096;
        }
    }
    // The kernel's own judgement: a mapping of that size, charged as the stack was.
    // SAFETY: a new anonymous PROT_NONE mapping, unmapped at once.
    let refused = unsafe {
        let probe = libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        probe == libc::MAP_FAILED || libc::munmap(probe, size) != 0
    };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    if !refused || crate::errno() != libc::EAGAIN || THREAD_SAID.swap(pid, Ordering::Relaxed) == pid
    {
        return;
    }
    say(
        "pthread_create failed with EAGAIN: under --future a new thread's whole stack (",
        size as u64,
        ") is locked when it is made, and does not fit: ",
        limit,
        procfs::Status::read().map_or(0, |s| s.vm_lck),
        "; or give threads smaller stacks (memlock-run --thread-stack 256K)",
    );
}

type AttrFn = unsafe extern "C" fn(*const libc::pthread_attr_t, *mut usize) -> c_int;
