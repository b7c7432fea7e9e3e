//! Replacing memlock-run with COMMAND: same PID, and the signal state it was given.
//!
//! Rust's runtime sets SIGPIPE to SIG_IGN before `main`, and an ignored signal stays
//! ignored across execve(2); it also opens /dev/null on any of fds 0-2 that it finds
//! closed. So what memlock-run was started with is recorded by a constructor that runs
//! before the runtime, and put back just before exec: COMMAND gets the SIGPIPE disposition
//! and the closed standard descriptors it would have had if started directly. The signal
//! mask is never touched (std's `Command::exec` would clear it, so it is not used).

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};

use crate::target::NotRunnable;

static SIGPIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);
/// Bit N set: fd N (0, 1 or 2) was closed when memlock-run started.
static CLOSED_STD_FDS: AtomicU8 = AtomicU8::new(0);

extern "C" fn record_start_state() {
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query (null new action) into a zeroed sigaction.
    if unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) } == 0 {
        SIGPIPE_WAS_IGNORED.store(old.sa_sigaction == libc::SIG_IGN, Ordering::Relaxed);
    }
    let mut closed = 0;
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 && Errno::last() == Errno::EBADF {
            closed |= 1 << fd;
        }
    }
    CLOSED_STD_FDS.store(closed, Ordering::Relaxed);
}

#[used]
#[link_section = ".init_array"]
static RECORD_START_STATE: extern "C" fn() = record_start_state;

/// execve(2): returns only on failure, as 127 (not found) or 126 (cannot execute).
pub fn exec(path: &Path, argv: &[OsString], env: &[(OsString, OsString)]) -> Result<Infallible> {
    let c_path = CString::new(path.as_os_str().to_owned().into_vec())
        .context("the command path contains a NUL byte")?;
    let c_argv = argv
        .iter()
        .map(|arg| CString::new(arg.clone().into_vec()))
        .collect::<Result<Vec<_>, _>>()
        .context("an argument contains a NUL byte")?;
    let c_env = env
        .iter()
        .map(|(name, value)| {
            let mut entry = name.clone().into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_encoded_bytes());
            CString::new(entry)
        })
        .collect::<Result<Vec<_>, _>>()
        .context("an environment variable contains a NUL byte")?;

    let disposition = if SIGPIPE_WAS_IGNORED.load(Ordering::Relaxed) {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: setting a disposition to SIG_DFL or SIG_IGN installs no handler code.
    unsafe { signal(Signal::SIGPIPE, disposition) }
        .context("cannot restore the SIGPIPE disposition")?;

    let closed = CLOSED_STD_FDS.load(Ordering::Relaxed);
    for fd in (0..3).filter(|fd| closed & (1 << fd) != 0) {
        // The /dev/null Rust's runtime put there; COMMAND starts with the fd closed.
        let _ = nix::unistd::close(fd);
    }
    let errno = match nix::unistd::execve(&c_path, &c_argv, &c_env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    let shown = path.display();
    let (status, why) = match errno {
        Errno::ENOENT => (
            127,
            "a file it needs is missing (its ELF interpreter, or the #! interpreter)".to_owned(),
        ),
        Errno::EACCES => (
            126,
            "permission denied (not executable by this user, or on a noexec mount)".to_owned(),
        ),
        Errno::ENOEXEC => (126, "the kernel does not recognise its format".to_owned()),
        Errno::ETXTBSY => (126, "it is open for writing".to_owned()),
        Errno::E2BIG => (
            126,
            "the arguments and environment are too large (E2BIG)".to_owned(),
        ),
        other => (126, other.desc().to_owned()),
    };
    Err(NotRunnable {
        status,
        message: format!("cannot execute {shown}: {why} ({errno})"),
    }
    .into())
}
