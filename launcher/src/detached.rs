//! A process beside COMMAND, not its child: how the two mechanisms that watch COMMAND from
//! outside (the ptrace helper, the exec gate) are started, so that COMMAND, which keeps
//! memlock-run's PID, finds no child, zombie or SIGCHLD it did not make.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult};

fn pending(signal: Signal) -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the set it is given.
    unsafe {
        if libc::sigpending(set.as_mut_ptr()) != 0 {
            return false;
        }
        libc::sigismember(set.as_ptr(), signal as libc::c_int) == 1
    }
}

/// Takes a pending (blocked) signal off the process without running anything for it.
fn consume(signal: Signal) {
    let mut only = SigSet::empty();
    only.add(signal);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: sigtimedwait with a valid set, no info wanted and a zero timeout.
    unsafe { libc::sigtimedwait(only.as_ref(), std::ptr::null_mut(), &zero) };
}

fn child_subreaper() -> bool {
    let mut value: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes an int through the pointer.
    let rc = unsafe {
        libc::prctl(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut value as *mut libc::c_int,
            0,
            0,
            0,
        )
    };
    rc == 0 && value != 0
}

fn set_child_subreaper(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            libc::c_ulong::from(on),
            0,
            0,
            0,
        )
    };
}

/// Runs `run` in a grandchild of this process that is not its child (the intermediate child
/// exits at once and is reaped here): no child, zombie or pending SIGCHLD is left behind for
/// COMMAND, and an orphaned grandchild goes to the nearest child subreaper, not to us while
/// we stay one. The ptrace helper and the exec gate start this way. `run` must end with
/// `_exit`; it never returns here. Returns the grandchild's PID, which the intermediate child
/// writes to a pipe before it exits.
pub fn spawn(run: impl FnOnce()) -> Result<i32> {
    let (pid_in, pid_out) =
        pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe for a detached process")?;
    let sigchld_pending_before = pending(Signal::SIGCHLD);
    let subreaper = child_subreaper();
    if subreaper {
        set_child_subreaper(false);
    }
    // SAFETY: memlock-run is single-threaded; the child only forks, writes and exits.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: as above, in the single-threaded child.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    drop(pid_in);
                    drop(pid_out);
                    run();
                }
                Ok(ForkResult::Parent { child }) => {
                    let pid = child.as_raw().to_le_bytes();
                    // SAFETY: the pipe's write end and a 4-byte buffer.
                    unsafe { libc::write(pid_out.as_raw_fd(), pid.as_ptr().cast(), pid.len()) };
                }
                Err(_) => {}
            }
            // SAFETY: _exit ends the child without running anything of ours.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => {
            if subreaper {
                set_child_subreaper(true);
            }
            bail!("fork failed with {errno}");
        }
    };
    let reaped = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => break Ok(()),
            Err(errno) => break Err(errno),
            Ok(_) => break Ok(()),
        }
    };
    if subreaper {
        set_child_subreaper(true);
    }
    reaped.context("cannot reap an intermediate child")?;
    if !sigchld_pending_before && pending(Signal::SIGCHLD) {
        consume(Signal::SIGCHLD);
    }
    drop(pid_out);
    let mut pid = [0u8; 4];
    match File::from(pid_in).read(&mut pid) {
        Ok(4) => Ok(i32::from_le_bytes(pid)),
        _ => bail!("fork failed in the intermediate child"),
    }
}
