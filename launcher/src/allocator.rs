//! memlock-run's global allocator: the system's, except that running out of memory ends
//! memlock-run with status 125 and one line saying so, instead of Rust's default, which
//! prints "memory allocation of N bytes failed" and aborts (134, and a core dump).
//!
//! Under a tight `RLIMIT_AS` (`ulimit -v`, `prlimit --as`, systemd's `LimitAS=`) memlock-run
//! itself may not fit: it then fails before COMMAND starts, and must say so as its own
//! failure. Not for COMMAND: exec replaces this allocator with the program's own.
//!
//! The hook runs with the heap exhausted, so it allocates nothing: the message is built in a
//! buffer on the stack and written with write(2).

use std::alloc::{GlobalAlloc, Layout, System};

use memlock_run_protocol::FAILURE_EXIT_STATUS;

pub struct ExitOnExhaustion;

// SAFETY: every call is passed to System unchanged; only a null result is acted on.
unsafe impl GlobalAlloc for ExitOnExhaustion {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            exhausted(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            exhausted(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            exhausted(new_size);
        }
        new
    }
}

/// Says what happened, why and what to do, and ends memlock-run with 125.
fn exhausted(size: usize) -> ! {
    let mut line = Line::default();
    line.push(b"memlock-run: out of memory: cannot allocate ");
    line.number(size as u64);
    line.push(b" bytes");
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    if known && limit.rlim_cur != libc::RLIM_INFINITY {
        line.push(b" within RLIMIT_AS ");
        line.number(limit.rlim_cur / 1024);
        line.push(
            b" KiB, which leaves memlock-run too little address space to start COMMAND; raise \
              RLIMIT_AS by a few MiB (ulimit -v, prlimit --as, LimitAS= in a systemd unit)",
        );
    } else {
        line.push(b"; COMMAND was not started: free some memory, or raise the limits that bind memlock-run");
    }
    line.push(b"\n");
    // SAFETY: writes our own buffer; a failed write changes nothing about the exit.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::_exit(i32::from(FAILURE_EXIT_STATUS))
    }
}

/// A fixed buffer, cut at its end.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn numbers_and_the_cut() {
        let mut line = Line::default();
        line.number(0);
        line.push(b" ");
        line.number(18_446_744_073_709_551_615);
        assert_eq!(&line.buf[..line.len], b"0 18446744073709551615");
        line.push(&[b'x'; 600]);
        assert_eq!(line.len, 512);
    }
}
