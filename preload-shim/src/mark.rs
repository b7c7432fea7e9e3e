//! A named mapping that tells `--status` this process's settings when its environment no
//! longer does (a program may rewrite those strings, as redis does for its title).
//!
//! An empty memfd (memfd_create(2), Linux 3.17, made with the raw system call) whose name
//! holds the settings, mapped PROT_NONE (no RAM, never touched) and its descriptor closed:
//! /proc/PID/maps shows it as `/memfd:NAME (deleted)`, see
//! `memlock_run_protocol::ANON_NAME_PREFIX`. A named anonymous mapping (PR_SET_VMA_ANON_NAME)
//! would do the same without a file, but needs Linux 5.17 built with CONFIG_ANON_VMA_NAME,
//! which many kernels (this project's CI among them) are not. Where either call fails,
//! nothing is left and `--status` says it cannot tell. Forked children inherit the mapping;
//! each new image's shim makes its own.

use memlock_run_protocol::{Config, ANON_NAME_PREFIX, FLAGS, NO_DUMP};

/// Leaves the named mapping; quietly does nothing where the kernel cannot. Returns the
/// memfd, sized for the alternate signal stack `limit.rs` maps from it, for the caller to
/// close; -1 where there is none.
pub fn leave(config: &Config) -> libc::c_int {
    let mut name = [0u8; 128];
    let mut len = 0;
    for part in [
        ANON_NAME_PREFIX,
        FLAGS,
        "=",
        config.flags.encode(),
        " ",
        NO_DUMP,
        if config.no_dump { "=1" } else { "=0" },
    ] {
        for &b in part.as_bytes() {
            // Keep the last byte for the NUL.
            if len + 1 >= name.len() {
                return -1;
            }
            if let Some(slot) = name.get_mut(len) {
                *slot = b;
            }
            len += 1;
        }
    }
    // SAFETY: a NUL-terminated name; MFD_CLOEXEC so that no program it starts inherits it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            name.as_ptr(),
            libc::MFD_CLOEXEC as libc::c_ulong,
        )
    };
    let Ok(fd) = libc::c_int::try_from(fd) else {
        return -1;
    };
    if fd < 0 {
        return -1;
    }
    // SAFETY: a new shared mapping of our own memfd, PROT_NONE: never touched. The file's
    // size holds no page until one is written.
    unsafe {
        libc::ftruncate(fd, 32 << 10);
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_SHARED,
            fd,
            0,
        );
    }
    fd
}
