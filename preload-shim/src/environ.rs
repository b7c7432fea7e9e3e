//! Reading the environment before `main`, and taking the shim out of it for `--no-inherit`.
//!
//! The environment is read through the `envp` glibc hands to `.init_array` functions, so
//! nothing is allocated. Removal goes through unsetenv(3) and an in-place edit of the
//! `LD_PRELOAD` value: ld.so has already acted on it, so the edit only affects the
//! programs this one starts.

use core::ffi::{c_char, CStr};

use memlock_run_protocol::{PREFIX, SHIM_FILE_NAME, VARIABLES};

/// The entries of a NUL-terminated `envp`, as bytes without their NUL.
pub struct Entries {
    next: *const *const c_char,
}

impl Entries {
    /// # Safety
    /// `envp` must be null or a NUL-terminated array of NUL-terminated strings that
    /// outlive the iterator.
    pub unsafe fn new(envp: *const *const c_char) -> Self {
        Entries { next: envp }
    }
}

impl Iterator for Entries {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<Self::Item> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` points into the NUL-terminated array (see `new`).
        let entry = unsafe { *self.next };
        if entry.is_null() {
            return None;
        }
        // SAFETY: as above; the following slot exists because this one was not the NUL.
        unsafe {
            self.next = self.next.add(1);
            Some(CStr::from_ptr(entry).to_bytes())
        }
    }
}

/// Removes the protocol's variables and every copy of the shim from `LD_PRELOAD`, and
/// `LD_BIND_NOW` when memlock-run set it (`bind_now`).
pub fn remove_shim(bind_now: bool) {
    for name in VARIABLES {
        with_c_name(name, |c_name| {
            // SAFETY: `c_name` is NUL-terminated.
            unsafe { libc::unsetenv(c_name) };
        });
    }
    if bind_now {
        // SAFETY: the name is NUL-terminated.
        unsafe { libc::unsetenv(c"LD_BIND_NOW".as_ptr()) };
    }
    let key = c"LD_PRELOAD";
    // SAFETY: getenv returns null or the value inside the process's own environment
    // string, which is writable and which only this single-threaded constructor touches.
    let value = unsafe { libc::getenv(key.as_ptr()) };
    if value.is_null() {
        return;
    }
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    let len = unsafe { CStr::from_ptr(value) }.to_bytes().len();
    // SAFETY: `value` points to `len` writable bytes followed by a NUL.
    let bytes = unsafe { core::slice::from_raw_parts_mut(value.cast::<u8>(), len) };
    let kept = drop_shim_entries(bytes);
    if kept == 0 {
        // SAFETY: `key` is NUL-terminated.
        unsafe { libc::unsetenv(key.as_ptr()) };
    } else if let Some(end) = bytes.get_mut(kept) {
        *end = 0;
    }
}

/// Compacts a `LD_PRELOAD` list in place, without the entries whose file name is the
/// shim's; returns the new length. ld.so accepts both spaces and colons as separators.
fn drop_shim_entries(list: &mut [u8]) -> usize {
    let mut write = 0;
    let mut read = 0;
    while read < list.len() {
        let rest = list.get(read..).unwrap_or(&[]);
        let len = rest
            .iter()
            .position(|&b| b == b':' || b == b' ')
            .unwrap_or(rest.len());
        let entry = rest.get(..len).unwrap_or(&[]);
        let is_shim = entry.rsplit(|&b| b == b'/').next() == Some(SHIM_FILE_NAME.as_bytes());
        if !entry.is_empty() && !is_shim {
            if write > 0 {
                if let Some(slot) = list.get_mut(write) {
                    *slot = b':';
                }
                write += 1;
            }
            for i in read..read + len {
                if let Some(&b) = list.get(i) {
                    if let Some(slot) = list.get_mut(write) {
                        *slot = b;
                    }
                }
                write += 1;
            }
        }
        read += len + 1;
    }
    write
}

/// Calls `f` with `name` as a NUL-terminated C string. Names longer than the buffer are
/// not ours and are skipped.
fn with_c_name(name: &str, f: impl FnOnce(*const c_char)) {
    let mut buf = [0u8; 64];
    if !name.starts_with(PREFIX) || name.len() >= buf.len() {
        return;
    }
    for (slot, &b) in buf.iter_mut().zip(name.as_bytes()) {
        *slot = b;
    }
    {
        f(buf.as_ptr().cast());
    }
}
