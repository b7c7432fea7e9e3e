//! What the kernel says about this process: /proc/self/status and /proc/self/maps.
//!
//! Read with open/read/close into stack buffers; parsed line by line without allocation.

use core::ffi::{c_int, CStr};

/// The fields of /proc/self/status the shim reports, in bytes.
pub struct Status {
    pub vm_lck: u64,
    pub vm_rss: u64,
    pub vm_size: u64,
    /// The main thread's stack mapping.
    pub vm_stk: u64,
}

impl Status {
    pub fn read() -> Result<Status, c_int> {
        let mut status = Status {
            vm_lck: 0,
            vm_rss: 0,
            vm_size: 0,
            vm_stk: 0,
        };
        for_each_line(c"/proc/self/status", &mut |line| {
            for (name, slot) in [
                (&b"VmLck:"[..], &mut status.vm_lck),
                (b"VmRSS:", &mut status.vm_rss),
                (b"VmSize:", &mut status.vm_size),
                (b"VmStk:", &mut status.vm_stk),
            ] {
                if let Some(rest) = line.strip_prefix(name) {
                    *slot = parse_kb(rest);
                }
            }
        })?;
        Ok(status)
    }
}

/// AnonHugePages of /proc/self/smaps_rollup (Linux 4.14): the process's anonymous memory in
/// transparent huge pages, in bytes.
pub fn anon_huge_pages() -> Result<u64, c_int> {
    let mut bytes = 0;
    for_each_line(c"/proc/self/smaps_rollup", &mut |line| {
        if let Some(rest) = line.strip_prefix(&b"AnonHugePages:"[..]) {
            bytes = parse_kb(rest);
        }
    })?;
    Ok(bytes)
}

/// Whether binfmt_misc is enabled and holds a rule (an entry of /proc/sys/fs/binfmt_misc
/// besides `register` and `status`): then a file that is neither ELF nor `#!` may still run,
/// through a rule's interpreter, and memlock-run must judge it. Read only for such files.
pub fn binfmt_rules() -> bool {
    let mut enabled = false;
    let status = for_each_line(c"/proc/sys/fs/binfmt_misc/status", &mut |line| {
        enabled = line == b"enabled";
    });
    if status.is_err() || !enabled {
        return false;
    }
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/sys/fs/binfmt_misc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 1024];
    let mut found = false;
    'read: loop {
        // SAFETY: getdents64 fills at most `buf.len()` bytes of the buffer.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        // Each record: d_ino (8), d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
        let mut at = 0;
        while let Some(record) = buf.get(at..n) {
            let (Some(&lo), Some(&hi)) = (record.get(16), record.get(17)) else {
                break;
            };
            let len = usize::from(u16::from_ne_bytes([lo, hi]));
            let name = record.get(19..len.min(record.len())).unwrap_or(&[]);
            let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
            if !matches!(name, b"." | b".." | b"register" | b"status") {
                found = true;
                break 'read;
            }
            if len == 0 {
                break;
            }
            at += len;
        }
    }
    // SAFETY: the descriptor opened above, closed once.
    unsafe { libc::close(fd) };
    found
}

/// Whether this process is in the initial user namespace, whose uid_map maps every uid to
/// itself (`0 0 4294967295`); true where it cannot be read.
pub fn initial_user_namespace() -> bool {
    let mut initial = true;
    let read = for_each_line(c"/proc/self/uid_map", &mut |line| {
        let mut words = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let whole = words.next() == Some(&b"0"[..])
            && words.next() == Some(&b"0"[..])
            && words.next() == Some(&b"4294967295"[..]);
        initial &= whole;
    });
    read.is_err() || initial
}

/// `   1234 kB` to bytes.
fn parse_kb(text: &[u8]) -> u64 {
    let digits = text
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit());
    digits
        .fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
        .saturating_mul(1024)
}

/// The mapping that contains `addr` and the end of the mapping below it, from
/// /proc/self/maps: `(start, end, end_of_previous)`.
pub fn mapping_around(addr: usize) -> Result<Option<(usize, usize, usize)>, c_int> {
    let mut previous_end = 0;
    let mut found = None;
    for_each_line(c"/proc/self/maps", &mut |line| {
        if found.is_some() {
            return;
        }
        let range = line.split(|&b| b == b' ').next().unwrap_or(&[]);
        let mut bounds = range.split(|&b| b == b'-');
        let (Some(start), Some(end)) = (
            bounds.next().and_then(parse_hex),
            bounds.next().and_then(parse_hex),
        ) else {
            return;
        };
        if start <= addr && addr < end {
            found = Some((start, end, previous_end));
        }
        previous_end = end;
    })?;
    Ok(found)
}

fn parse_hex(text: &[u8]) -> Option<usize> {
    if text.is_empty() {
        return None;
    }
    let mut n: usize = 0;
    for &b in text {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        n = n.checked_mul(16)?.checked_add(usize::from(digit))?;
    }
    Some(n)
}

/// Calls `f` for every complete line of a file. A line longer than the buffer is skipped.
/// Not generic: one copy of the reader serves every caller, the shim's size being locked.
#[inline(never)]
fn for_each_line(path: &CStr, f: &mut dyn FnMut(&[u8])) -> Result<(), c_int> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(crate::errno());
    }
    let mut buf = [0u8; 4096];
    let mut filled = 0;
    let mut skipping = false;
    let result = loop {
        let Some(free) = buf.get_mut(filled..) else {
            break Ok(());
        };
        // SAFETY: `free` is a valid writable buffer of `free.len()` bytes.
        let n = unsafe { libc::read(fd, free.as_mut_ptr().cast(), free.len()) };
        if n < 0 {
            let errno = crate::errno();
            if errno == libc::EINTR {
                continue;
            }
            break Err(errno);
        }
        if n == 0 {
            break Ok(());
        }
        filled += n as usize;
        let data = buf.get(..filled).unwrap_or(&[]);
        let mut consumed = 0;
        while let Some(nl) = data
            .get(consumed..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
        {
            if !skipping {
                f(data.get(consumed..consumed + nl).unwrap_or(&[]));
            }
            skipping = false;
            consumed += nl + 1;
        }
        if consumed == 0 && filled == buf.len() {
            // A line longer than the buffer: drop what we have and skip to its end.
            skipping = true;
            filled = 0;
            continue;
        }
        // Move the partial last line to the front.
        for i in consumed..filled {
            if let Some(&b) = buf.get(i) {
                if let Some(slot) = buf.get_mut(i - consumed) {
                    *slot = b;
                }
            }
        }
        filled -= consumed;
    };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    result
}
