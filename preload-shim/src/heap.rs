//! `--heap SIZE`: a glibc heap that is faulted in, locked and kept, so that later
//! malloc/free cycles within SIZE never fault.
//!
//! Three mallopt(3) settings make glibc keep what it has: M_TRIM_THRESHOLD -1 (free never
//! gives the top of the heap back with a negative sbrk), M_MMAP_MAX 0 (large blocks come
//! from the heap instead of their own mmap, which free would munmap) and M_ARENA_MAX 1
//! (every thread allocates from the main arena, which is the one pre-faulted; per-thread
//! tcache still serves small blocks without the arena lock). Then one malloc(SIZE) and
//! free grow the heap by SIZE without touching it, before mlockall, so that
//! mlockall(MCL_CURRENT) populates and locks it in the kernel (see `populate`).
//!
//! mallopt is glibc's, and looked up at run time: musl has none (its malloc has no such
//! settings), and a link-time reference would stop musl's loader from loading the shim.
//! Without it the shim says so and stops. When another allocator provides `malloc` (jemalloc or tcmalloc in
//! LD_PRELOAD, or linked into the program under the standard names), none of this reaches
//! it: the shim finds that out with dladdr(3) and reports it instead of pretending. An
//! allocator linked in under its own names (redis calls jemalloc as `je_malloc`) is
//! invisible from here; the glibc heap is then pre-faulted but the program hardly uses it.

use core::ffi::{c_char, c_int, c_void, CStr};

use crate::line::Line;
use crate::populate::{page_size, Range};

pub enum HeapError {
    TooLarge,
    /// The C library has no mallopt (musl).
    NoMallopt,
    /// `malloc` comes from this object, not from glibc.
    Foreign(&'static [u8]),
    Mallopt(&'static str),
    NoMemory(usize),
}

impl HeapError {
    pub fn describe(&self, line: &mut Line) {
        match *self {
            HeapError::TooLarge => {
                line.push("the size is larger than the address space");
            }
            HeapError::NoMallopt => {
                line.push("this C library has no mallopt(3), which --heap needs to make malloc keep its heap ");
                line.push("(glibc's malloc has it; musl's has no such settings); drop --heap: with --future, ");
                line.push("memory malloc maps later is locked and populated as it is mapped");
            }
            HeapError::Foreign(object) => {
                line.push("malloc in this process is not glibc's but comes from ")
                    .push_escaped(object);
                line.push(", which mallopt(3) and a pre-faulted glibc heap do not reach; ")
                    .push(memlock_run_protocol::FOREIGN_MALLOC_REMEDY);
            }
            HeapError::Mallopt(setting) => {
                line.push("mallopt(")
                    .push(setting)
                    .push(") was refused by the C library");
            }
            HeapError::NoMemory(size) => {
                line.push("malloc of ")
                    .push_size(size as u64)
                    .push(" failed (the heap cannot grow that far: RLIMIT_DATA, RLIMIT_AS, or the memory ");
                line.push("the kernel will commit); ask for less with --heap");
            }
        }
    }
}

/// `mallopt(param, value)`.
type Mallopt = unsafe extern "C" fn(c_int, c_int) -> c_int;

/// Sets glibc's malloc up to keep its heap, and grows the heap by `size` bytes without
/// touching it. Returns the page-aligned part of the grown heap to populate after mlockall.
pub fn grow(size: u64) -> Result<Range, HeapError> {
    let size = usize::try_from(size).map_err(|_| HeapError::TooLarge)?;
    let mallopt = crate::lookup(c"mallopt").ok_or(HeapError::NoMallopt)?;
    // SAFETY: mallopt(3) has this type, in glibc and in the allocators that define it.
    let mallopt = unsafe { core::mem::transmute::<*mut c_void, Mallopt>(mallopt) };
    check_allocator()?;
    for (param, value, name) in [
        (libc::M_MMAP_MAX, 0, "M_MMAP_MAX, 0"),
        (libc::M_TRIM_THRESHOLD, -1, "M_TRIM_THRESHOLD, -1"),
        (libc::M_ARENA_MAX, 1, "M_ARENA_MAX, 1"),
    ] {
        // SAFETY: mallopt has no memory-safety preconditions; glibc returns 1 on success.
        if unsafe { mallopt(param, value) } != 1 {
            return Err(HeapError::Mallopt(name));
        }
    }
    let page = page_size();
    let rounded = size.checked_add(page - 1).ok_or(HeapError::TooLarge)? & !(page - 1);
    // One page more, so that `rounded` page-aligned bytes fit after the chunk header.
    let request = rounded.checked_add(page).ok_or(HeapError::TooLarge)?;
    // SAFETY: plain malloc; the block is freed below and never read or written here, so
    // its pages stay untouched until mlockall or MADV_POPULATE_WRITE populates them.
    let block = unsafe { libc::malloc(request) };
    if block.is_null() {
        return Err(HeapError::NoMemory(request));
    }
    let low = (block as usize)
        .checked_add(page - 1)
        .ok_or(HeapError::TooLarge)?
        & !(page - 1);
    let high = low.checked_add(rounded).ok_or(HeapError::TooLarge)?;
    // SAFETY: `block` came from malloc above and is freed once. With M_TRIM_THRESHOLD -1
    // the memory stays mapped as the heap's free top.
    unsafe { libc::free(block) };
    Ok(Range { low, high })
}

/// Fails when the `malloc` this process calls is not in the same object as glibc.
fn check_allocator() -> Result<(), HeapError> {
    // The address of `malloc` as the dynamic linker resolved it for this library: the
    // program's own, an earlier preload's, or glibc's, in that order of precedence.
    let malloc_object = object_of(libc::malloc as *const ());
    // glibc's libc.so.6 defines it, looked up at run time as mallopt is. (gcompat on musl
    // defines it too, in an object that is not malloc's: refused, rightly, as foreign.)
    let glibc_object = crate::lookup(c"gnu_get_libc_version").and_then(|f| object_of(f.cast()));
    match (malloc_object, glibc_object) {
        (Some((base, _)), Some((glibc, _))) if base == glibc => Ok(()),
        (Some((_, name)), _) => Err(HeapError::Foreign(name)),
        (None, _) => Err(HeapError::Foreign(
            b"no loaded object (dladdr cannot place it)",
        )),
    }
}

/// The load address and file name of the object that holds `addr`.
fn object_of(addr: *const ()) -> Option<(usize, &'static [u8])> {
    let mut info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: `info` is a valid out-pointer; dladdr only reads the loader's tables.
    if unsafe { libc::dladdr(addr.cast::<c_void>(), &mut info) } == 0 {
        return None;
    }
    let name: &'static [u8] = if info.dli_fname.is_null() {
        b"?"
    } else {
        // SAFETY: a non-null dli_fname is the loader's NUL-terminated name of a loaded
        // object, which lives as long as the object; the objects here are never unloaded.
        unsafe { CStr::from_ptr(info.dli_fname as *const c_char) }.to_bytes()
    };
    // The loader names the program itself with an empty string.
    let name = if name.is_empty() {
        b"the program itself"
    } else {
        name
    };
    Some((info.dli_fbase as usize, name))
}
