//! One line of diagnostics for stderr, built in a fixed buffer and written with write(2).
//!
//! No allocation and no formatting machinery: the shim runs before `main` in a process
//! it does not own. A line that outgrows the buffer is written out in parts, so that its end
//! (the remedy) is never lost, and a failed write (stderr closed, or /dev/full) is ignored:
//! there is nowhere else to report it. Values that come from outside (a program name, a bad
//! setting) go through [`Line::push_escaped`], so no control byte reaches the terminal.

use core::ffi::c_int;

use memlock_run_protocol::{encode_u64, SizeText};

pub struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    pub fn new() -> Self {
        Line {
            buf: [0; 1024],
            len: 0,
        }
    }

    pub fn push_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        // Keep the last byte for the newline.
        let room = self.buf.len().saturating_sub(1);
        for &b in bytes {
            if self.len >= room {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    /// Bytes from outside: printable ASCII as is, anything else as `\xNN`.
    pub fn push_escaped(&mut self, bytes: &[u8]) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                self.push_bytes(&[b]);
            } else {
                let hex = |n: u8| HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'?');
                self.push_bytes(&[b'\\', b'x', hex(b >> 4), hex(b)]);
            }
        }
        self
    }

    /// Writes what the buffer holds so far, without the newline, and empties it.
    fn flush(&mut self) {
        write_all(self.buf.get(..self.len).unwrap_or(&[]));
        self.len = 0;
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.push_bytes(text.as_bytes())
    }

    pub fn push_u64(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        self.push(encode_u64(n, &mut digits))
    }

    pub fn push_size(&mut self, bytes: u64) -> &mut Self {
        self.push(SizeText::new(bytes).as_str())
    }

    /// Milliseconds with one decimal: `3.1 ms`.
    pub fn push_millis(&mut self, ns: u64) -> &mut Self {
        let tenths = ns / 100_000;
        self.push_u64(tenths / 10)
            .push(".")
            .push_u64(tenths % 10)
            .push(" ms")
    }

    /// `ENOMEM (Cannot allocate memory)`, for the errnos locking can meet.
    pub fn push_errno(&mut self, errno: c_int) -> &mut Self {
        let (name, text) = match errno {
            libc::EPERM => ("EPERM", "Operation not permitted"),
            libc::ENOMEM => ("ENOMEM", "Cannot allocate memory"),
            libc::EAGAIN => ("EAGAIN", "Resource temporarily unavailable"),
            libc::EINVAL => ("EINVAL", "Invalid argument"),
            libc::EFAULT => ("EFAULT", "Bad address"),
            libc::ENOENT => ("ENOENT", "No such file or directory"),
            libc::EACCES => ("EACCES", "Permission denied"),
            libc::ENOSYS => ("ENOSYS", "Function not implemented"),
            libc::EMFILE => ("EMFILE", "Too many open files"),
            _ => return self.push("errno ").push_u64(errno as u64),
        };
        self.push(name).push(" (").push(text).push(")")
    }

    /// Writes the line and a newline to fd 2.
    pub fn emit(&mut self) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b'\n';
            self.len += 1;
        }
        self.flush();
    }
}

/// The ladder's texts (`reach::Miss`) are written through this, with `write_str` alone: no
/// formatting machinery.
impl core::fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        self.push(text);
        Ok(())
    }
}

/// write(2) to fd 2 until done, retrying on EINTR; other errors end it silently.
fn write_all(mut rest: &[u8]) {
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            // SAFETY: reads this thread's errno.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        rest = rest.get(n as usize..).unwrap_or(&[]);
    }
}
