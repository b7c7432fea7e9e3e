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

use core::ffi::{c_int, c_long, c_void};

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
    let rc = raw_madvise(addr, len, advice);
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
