//! Pre-faulting the main thread's stack.
//!
//! The stack mapping only grows when the thread touches memory below it, and a growth the
//! kernel refuses (past RLIMIT_STACK or RLIMIT_AS, more than memory, or into the guard gap
//! above the next mapping) is a SIGSEGV. So the shim first checks the growth against
//! /proc/self/maps, RLIMIT_STACK, RLIMIT_AS and the machine's RAM, then grows the mapping
//! with a single write to its new lowest page. It does this before mlockall: growth of a
//! locked mapping is charged to RLIMIT_MEMLOCK at fault time, where a refusal is again a
//! SIGSEGV, while mlockall reports the same refusal as an error.
//! mlockall(MCL_CURRENT) then populates the grown range itself; `populate` covers the
//! cases where it does not.

use core::ffi::c_int;

use crate::line::Line;
use crate::populate::{page_size, Range};
use crate::procfs;

/// Linux's default `stack_guard_gap`: 256 pages.
const GUARD_GAP_PAGES: usize = 256;

pub enum GrowError {
    Maps(c_int),
    NoStackMapping,
    TooLarge,
    StackLimit { needed: u64, limit: u64 },
    NoRoom { room: u64 },
    MoreThanRam { ram: u64 },
    AddressSpaceLimit { needed: u64, limit: u64 },
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
            GrowError::MoreThanRam { ram } => {
                line.push("the machine has ").push_size(ram);
                line.push(" of RAM, and locked pages must all be resident; pre-fault less");
            }
            GrowError::AddressSpaceLimit { needed, limit } => {
                line.push("the process would map ").push_size(needed);
                line.push(" but RLIMIT_AS is ").push_size(limit);
                line.push("; raise the address-space limit (ulimit -v, LimitAS= in a systemd unit) or pre-fault less");
            }
            GrowError::NoRoom { room } => {
                line.push("only ").push_size(room);
                line.push(" of address space is free below the stack; pre-fault less");
            }
        }
    }
}

/// Grows the stack mapping so that `size` bytes below the current frame are mapped: that
/// range, and the whole stack mapping it is now part of.
pub fn grow(size: u64) -> Result<(Range, Range), GrowError> {
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
        return Ok((
            Range { low, high },
            Range {
                low: start,
                high: end,
            },
        ));
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
    // The kernel also refuses a growth it cannot account for, and here a refusal is a
    // SIGSEGV, not an error: check what it checks. Its default overcommit heuristic refuses
    // a growth larger than RAM and swap, and locked pages must all be resident anyway.
    let grow_by = start.saturating_sub(low) as u64;
    if let Some(ram) = total_ram() {
        if size as u64 > ram {
            return Err(GrowError::MoreThanRam { ram });
        }
    }
    // SAFETY: `limit` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
    {
        let vm_size = procfs::Status::read().map_or(0, |status| status.vm_size);
        let needed = vm_size.saturating_add(grow_by);
        if needed > limit.rlim_cur {
            return Err(GrowError::AddressSpaceLimit {
                needed,
                limit: limit.rlim_cur,
            });
        }
    }
    let floor = previous_end.saturating_add(GUARD_GAP_PAGES * page);
    if low < floor {
        return Err(GrowError::NoRoom {
            room: high.saturating_sub(floor) as u64,
        });
    }

    // SAFETY: `low` is below the stack mapping, above its guard gap and within
    // RLIMIT_STACK, RLIMIT_AS and the machine's RAM (checked above), so this write makes
    // the kernel grow the stack down to it. Nothing lives there yet: it is below every
    // frame of this thread.
    unsafe { core::ptr::write_volatile(low as *mut u8, 0) };
    Ok((Range { low, high }, Range { low, high: end }))
}

/// The machine's RAM in bytes, from sysinfo(2).
fn total_ram() -> Option<u64> {
    // SAFETY: sysinfo fills the zeroed struct it is given.
    let mut info: libc::sysinfo = unsafe { core::mem::zeroed() };
    // SAFETY: `info` is a valid out-pointer.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    Some((info.totalram as u64).saturating_mul(u64::from(info.mem_unit.max(1))))
}
