//! Reading the environment before `main`, and taking the shim out of it for `--no-inherit`.
//!
//! The environment is read through the `envp` glibc hands to `.init_array` functions, or
//! under musl, which hands them nothing, through `environ`; nothing is allocated. Removal edits the `environ` array itself and the `LD_PRELOAD`
//! value in place: ld.so has already acted on it, so the edit only affects the programs
//! this one starts.

use core::ffi::{c_char, CStr};

use memlock_run_protocol::{SHIM_FILE_NAME, VARIABLES};

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

extern "C" {
    /// The process's environment array, which getenv(3) and execve's callers read.
    static mut environ: *mut *mut c_char;
}

/// The process's `environ` as it is now.
pub fn current() -> *mut *mut c_char {
    // SAFETY: reads the pointer only; the constructor runs before the program's own code
    // can start a thread that would change it.
    unsafe { environ }
}

/// Removes the protocol's variables and every copy of the shim from `LD_PRELOAD`, and
/// `LD_BIND_NOW` when memlock-run set it (`bind_now`).
///
/// The environment array is edited here, not through unsetenv(3) and getenv(3): a
/// program may define its own (bash does, for its variable table), and the dynamic
/// linker then binds the shim's calls to the program's functions, which at this point,
/// before the program's `main`, leave the array that the program later exports as it is.
/// Entries are taken out by moving the later pointers down; the strings stay where they
/// are, and `LD_PRELOAD`'s value is shortened in place.
pub fn remove_shim(bind_now: bool) {
    // SAFETY: `keep` reads and shortens the NUL-terminated writable strings it is given.
    retain(|entry| unsafe { keep(entry, bind_now) });
}

/// Removes every entry named `name` (memlock-run's one-shot settings, protocol::COMM).
pub fn remove(name: &[u8]) {
    retain(|entry| {
        // SAFETY: an entry of `environ`, a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
        memlock_run_protocol::split_entry(bytes).is_none_or(|(n, _)| n != name)
    });
}

/// Keeps the entries of `environ` for which `keep` says so, in order.
fn retain(mut keep: impl FnMut(*mut c_char) -> bool) {
    // SAFETY: `environ` is the NUL-terminated array of NUL-terminated, writable strings
    // the process started with (or one libc built since); only this single-threaded
    // constructor touches it now.
    unsafe {
        let env = environ;
        if env.is_null() {
            return;
        }
        let mut read = env;
        let mut write = env;
        while !(*read).is_null() {
            let entry = *read;
            read = read.add(1);
            if !keep(entry) {
                continue;
            }
            *write = entry;
            write = write.add(1);
        }
        *write = core::ptr::null_mut();
    }
}

/// Whether an environment entry stays; shortens `LD_PRELOAD`'s value in place.
///
/// # Safety
/// `entry` is a NUL-terminated writable string.
unsafe fn keep(entry: *mut c_char, bind_now: bool) -> bool {
    let len = CStr::from_ptr(entry).to_bytes().len();
    let bytes = core::slice::from_raw_parts_mut(entry.cast::<u8>(), len);
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return true;
    };
    let (name, rest) = bytes.split_at_mut(eq);
    if VARIABLES.iter().any(|v| v.as_bytes() == name) {
        return false;
    }
    if bind_now && name == b"LD_BIND_NOW" {
        return false;
    }
    if name == b"LD_PRELOAD" {
        let value = rest.get_mut(1..).unwrap_or(&mut []);
        let kept = drop_shim_entries(value);
        if kept == 0 {
            return false;
        }
        if let Some(end) = value.get_mut(kept) {
            *end = 0;
        }
    }
    true
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
