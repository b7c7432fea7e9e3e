//! Making a range resident and locked where mlockall(2) did not already do it.
//!
//! mlockall(MCL_CURRENT) populates every page of every mapping it locks, in the kernel,
//! which is faster than touching each page from user space (64 MiB: about 22 ms against
//! 36 ms for a touch loop on a 6.x kernel). So the shim maps what it pre-faults before it
//! calls mlockall and lets the kernel do the work. Where mlockall does not populate (with
//! MCL_ONFAULT) it asks for the same population with MADV_POPULATE_WRITE (Linux 5.14),
//! and only kernels without that get the touch loop.

use core::ffi::c_int;

use memlock_run_protocol::LockFlags;

/// A page-aligned range of this process's memory, `[low, high)`.
#[derive(Clone, Copy)]
pub struct Range {
    pub low: usize,
    pub high: usize,
}

impl Range {
    pub fn len(self) -> usize {
        self.high.saturating_sub(self.low)
    }
}

pub fn page_size() -> usize {
    // SAFETY: getauxval has no preconditions.
    match unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize {
        0 => 4096,
        size => size,
    }
}

/// `--huge`: advises `mapping` MADV_HUGEPAGE before it is populated, so that the kernel faults
/// it in 2 MiB at a time where it finds free huge pages.
///
/// A whole mapping, not the range to pre-fault: advising part of one splits it in two, and
/// glibc's pthread_getattr_np would then size the main thread's stack from the half that holds
/// the stack pointer (the other half being "the mapping below"). Pages already resident there
/// stay as they are.
pub fn advise_huge(mapping: Range) -> Result<(), c_int> {
    // SAFETY: the mapping exists (read from /proc/self/maps); advice changes no contents.
    if unsafe {
        libc::madvise(
            mapping.low as *mut libc::c_void,
            mapping.len(),
            libc::MADV_HUGEPAGE,
        )
    } != 0
    {
        return Err(crate::errno());
    }
    Ok(())
}

/// The whole mapping that holds `range`, from /proc/self/maps.
pub fn mapping_of(range: Range) -> Result<Range, c_int> {
    let (low, high, _) = crate::procfs::mapping_around(range.low)?.ok_or(libc::EFAULT)?;
    Ok(Range { low, high })
}

/// Makes `range` resident and locked, after mlockall was called with `flags`.
///
/// # Safety
/// `range` must be mapped, writable, and hold nothing that a write of zero to its first
/// byte of each page would destroy when the kernel lacks MADV_POPULATE_WRITE (memory this
/// process does not use yet).
pub unsafe fn populate(range: Range, flags: LockFlags) -> Result<(), c_int> {
    let (addr, len) = (range.low as *mut libc::c_void, range.len());
    if len == 0 {
        return Ok(());
    }
    if !flags.current {
        // MCL_FUTURE alone does not lock mappings that already exist.
        let lock_flags = if flags.onfault {
            libc::MLOCK_ONFAULT
        } else {
            0
        };
        // The raw system call, not glibc's mlock2 wrapper: that wrapper came with glibc 2.27,
        // and the shim must load on glibc 2.17.
        // SAFETY: the range is mapped (see above); mlock2 does not change its contents.
        if unsafe { libc::syscall(libc::SYS_mlock2, addr, len, lock_flags as libc::c_uint) } != 0 {
            return Err(crate::errno());
        }
        if !flags.onfault {
            // mlock2 without MLOCK_ONFAULT populated the range.
            return Ok(());
        }
    } else if !flags.onfault {
        // mlockall(MCL_CURRENT) populated every page of every mapping it locked.
        return Ok(());
    }
    // SAFETY: the range is mapped and writable; population does not change its contents.
    if unsafe { libc::madvise(addr, len, libc::MADV_POPULATE_WRITE) } == 0 {
        return Ok(());
    }
    let errno = crate::errno();
    if errno != libc::EINVAL {
        return Err(errno);
    }
    // Kernels before 5.14 do not know MADV_POPULATE_WRITE: touch every page. A byte that
    // is read and written back keeps whatever the memory holds.
    let page = page_size();
    let mut at = range.low;
    while at < range.high {
        // SAFETY: as above; the address is inside the mapped, writable range.
        unsafe {
            let p = at as *mut u8;
            core::ptr::write_volatile(p, core::ptr::read_volatile(p));
        }
        at = match at.checked_add(page) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(())
}
