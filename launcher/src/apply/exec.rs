//! Replacing memlock-run with COMMAND: same PID, and the signal state it was given.
//!
//! Ignored signals and the signal mask survive execve(2). memlock-run changes neither: it
//! runs without Rust's runtime start-up, which would ignore SIGPIPE (see main.rs), and it
//! execs with execve itself, since std's `Command::exec` clears the signal mask.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;

use crate::plan::target::NotRunnable;

/// execve(2), or execveat(2) of `judged` (the file memlock-run inspected) where the process
/// keeps its name: returns only on failure, as 127 (not found) or 126 (cannot execute).
///
/// execveat(fd, "", AT_EMPTY_PATH) runs exactly the judged inode, whatever the path names by
/// now. The kernel names such a process after the descriptor's number before Linux 6.14
/// (/proc/PID/comm "3", in ps and top), after the file itself since (not after a symlink's
/// name, as execve of the path does: busybox, not sh). With the preload method
/// (`renamed_by_shim`) the shim gives it the name its path would have given it (`comm_for`);
/// the ptrace method goes by path, and its helper checks that the new image is the judged
/// file before its first instruction, and ends it otherwise. Scripts always go by path: their
/// interpreter must be able to open them by name. `gate_cookie` goes in the sixth argument register, which
/// both calls ignore, and takes this exec past this run's exec gate (gate::program).
pub fn exec(
    path: &Path,
    judged: Option<&File>,
    renamed_by_shim: bool,
    gate_cookie: u64,
    argv: &[OsString],
    env: &[(OsString, OsString)],
) -> Result<Infallible> {
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

    let argv_ptrs = null_terminated(&c_argv);
    let env_ptrs = null_terminated(&c_env);
    // System calls, not libc's functions: when memlock-run itself runs under a locked program,
    // the shim is loaded into it too, and its exec wrappers must not judge COMMAND a second
    // time with the outer run's settings.
    // SAFETY: NUL-terminated path, argv and envp arrays that outlive the call.
    unsafe {
        match judged {
            Some(file) if renamed_by_shim => libc::syscall(
                libc::SYS_execveat,
                file.as_raw_fd(),
                c"".as_ptr(),
                argv_ptrs.as_ptr(),
                env_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
                gate_cookie,
            ),
            _ => libc::syscall(
                libc::SYS_execve,
                c_path.as_ptr(),
                argv_ptrs.as_ptr(),
                env_ptrs.as_ptr(),
                0,
                0,
                gate_cookie,
            ),
        }
    };
    let errno = Errno::last();
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
        Errno::ENOSYS => (
            126,
            "memlock-run's exec gate, which answers for every exec of an inheriting run, has ended"
                .to_owned(),
        ),
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

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
