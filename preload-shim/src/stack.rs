//! Pre-faulting the main thread's stack.
//!
//! The stack mapping only grows when the thread touches memory below it, and a growth the
//! kernel refuses (past RLIMIT_STACK, or into the guard gap above the next mapping) is a
//! SIGSEGV. So the shim first checks the growth against /proc/self/maps and RLIMIT_STACK,
//! then grows the mapping with a single write to its new lowest page. It does this before
//! mlockall: growth of a locked mapping is charged to RLIMIT_MEMLOCK at fault time, where
//! a refusal is again a SIGSEGV, while mlockall reports the same refusal as an error.
//! mlockall(MCL_CURRENT) then populates the grown range itself; with MCL_ONFAULT the
//! shim asks the kernel to populate it (MADV_POPULATE_WRITE, Linux 5.14) and touches each
//! page only on kernels without it.

use core::ffi::c_int;

use memlock_run_protocol::LockFlags;

use crate::line::Line;
use crate::procfs;

/// Linux's default `stack_guard_gap`: 256 pages.
const GUARD_GAP_PAGES: usize = 256;

/// The pre-faulted part of the stack, `[low, high)`.
#[derive(Clone, Copy)]
pub struct Range {
    low: usize,
    high: usize,
}

impl Range {
    pub fn len(self) -> usize {
        self.high - self.low
    }
}

pub enum GrowError {
    Maps(c_int),
    NoStackMapping,
    TooLarge,
    StackLimit { needed: u64, limit: u64 },
    NoRoom { room: u64 },
}

impl GrowError {
    pub fn describe(&self, line: &mut Line) {
        match *self {
            GrowError::Maps(errno) => {
                line.push("reading /proc/self/maps failed with ")
                    .push_errno(errno);
            }
            GrowError::NoStackMapping => {
                line.push("the stack pointer is in no mapping of /proc/self/maps");
            }
            GrowError::TooLarge => {
                line.push("the size is larger than the address space below the stack");
            }
            GrowError::StackLimit { needed, limit } => {
                line.push("the stack would grow to ").push_size(needed);
                line.push(" but RLIMIT_STACK is ").push_size(limit);
                line.push("; raise the soft stack limit (ulimit -s, LimitSTACK= in a systemd unit) or pre-fault less");
            }
            GrowError::NoRoom { room } => {
                line.push("only ").push_size(room);
                line.push(" of address space is free below the stack; pre-fault less");
            }
        }
    }
}

pub fn page_size() -> usize {
    // SAFETY: getauxval has no preconditions.
    match unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize {
        0 => 4096,
        size => size,
    }
}

/// Grows the stack mapping so that `size` bytes below the current frame are mapped.
pub fn grow(size: u64) -> Result<Range, GrowError> {
    let page = page_size();
    let size = usize::try_from(size).map_err(|_| GrowError::TooLarge)?;
    let size = size.checked_add(page - 1).ok_or(GrowError::TooLarge)? & !(page - 1);
    let marker = 0u8;
    let here = core::ptr::addr_of!(marker) as usize;
    let high = here & !(page - 1);
    let low = high.checked_sub(size).ok_or(GrowError::TooLarge)?;

    let (start, end, previous_end) = procfs::mapping_around(here)
        .map_err(GrowError::Maps)?
        .ok_or(GrowError::NoStackMapping)?;
    if low >= start {
        return Ok(Range { low, high });
    }

    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) };
    let needed = (end - low) as u64;
    if limit.rlim_cur != libc::RLIM_INFINITY && needed > limit.rlim_cur {
        return Err(GrowError::StackLimit {
            needed,
            limit: limit.rlim_cur,
        });
    }
    let floor = previous_end.saturating_add(GUARD_GAP_PAGES * page);
    if low < floor {
        return Err(GrowError::NoRoom {
            room: high.saturating_sub(floor) as u64,
        });
    }

    // SAFETY: `low` is below the stack mapping, above its guard gap and within
    // RLIMIT_STACK (checked above), so this write makes the kernel grow the stack down to
    // it. Nothing lives there yet: it is below every frame of this thread.
    unsafe { core::ptr::write_volatile(low as *mut u8, 0) };
    Ok(Range { low, high })
}

/// Makes the grown range resident and locked where mlockall did not already do it.
pub fn populate(range: Range, flags: LockFlags) -> Result<(), c_int> {
    let (addr, len) = (range.low as *mut libc::c_void, range.len());
    if !flags.current {
        // MCL_FUTURE alone does not lock mappings that already exist, the stack included.
        let lock_flags = if flags.onfault {
            libc::MLOCK_ONFAULT
        } else {
            0
        };
        // SAFETY: the range is mapped (grown above); mlock2 has no memory effects on it.
        if unsafe { libc::mlock2(addr, len, lock_flags as libc::c_uint) } != 0 {
            return Err(crate::errno());
        }
    } else if !flags.onfault {
        // mlockall(MCL_CURRENT) populated every page of every mapping it locked.
        return Ok(());
    }
    // SAFETY: the range is mapped, writable, and unused (below every frame).
    if unsafe { libc::madvise(addr, len, libc::MADV_POPULATE_WRITE) } == 0 {
        return Ok(());
    }
    let errno = crate::errno();
    if errno != libc::EINVAL {
        return Err(errno);
    }
    // Kernels before 5.14 do not know MADV_POPULATE_WRITE: touch every page.
    let page = page_size();
    let mut at = range.low;
    while at < range.high {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(at as *mut u8, 0) };
        at += page;
    }
    Ok(())
}
