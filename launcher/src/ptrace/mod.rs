//! The ptrace method: locking a process from outside, for the programs no preload reaches
//! (static, musl or other non-glibc loaders, 32-bit x86 programs, Go) and for processes that
//! are already running (`--pid`).
//!
//! One entry each: [`arm_exec`] before memlock-run execs COMMAND (a helper injects
//! mlockall into the new image, see `exec`), and [`lock_pid`] for a running process (see
//! `pid`). Both stop one thread, make it run mlockall(2) through a system-call instruction of
//! its own vDSO (`tracee`), check VmLck, and put the thread back as it was (`lock`).
//! Everything that depends on the instruction set is in `arch/`, one file per ABI.
//!
//! Not for: anything done through glibc inside the process (`--heap`, `--thread-stack`,
//! `--fork relock`, `--bind-now`), which only the preload shim can do.

mod arch;
mod exec;
mod lock;
mod pid;
mod tracee;

use std::fmt::Write as _;

use nix::errno::Errno;
use nix::unistd::Pid;

pub use exec::{arm as arm_exec, ExecJob, Work};
pub use lock::Job;
pub use pid::lock_pid;

/// `memlock-run: NAME (pid N): `, as the shim starts its lines.
pub fn report_prefix(name: &str, pid: i32) -> String {
    format!("memlock-run: {name} (pid {pid}): ")
}

/// Why PTRACE_SEIZE of `pid` failed, and what to do: the one message for the launcher's
/// helper and `--pid`. What the plan can tell beforehand (a tracer, Yama, another user's
/// process without CAP_SYS_PTRACE, PID 1) it refuses before anything is started, with its own
/// texts (`crate::plan::ptrace_permitted`, `crate::plan::pid`); what is left is what only the
/// kernel knows.
pub fn attach_refusal(pid: Pid, errno: Errno, what: &str) -> String {
    let raw = pid.as_raw();
    let mut text = format!("cannot attach to {what} (pid {raw}) with ptrace: {errno}");
    let why = if errno == Errno::EPERM || errno == Errno::EACCES {
        "the kernel refused: a seccomp filter or a security module (AppArmor, SELinux) may deny ptrace here, or \
         the process is not dumpable (then only root, or CAP_SYS_PTRACE, may attach); in a container, allow \
         ptrace in its seccomp profile or add CAP_SYS_PTRACE"
    } else if errno == Errno::ENOSYS {
        "ptrace(2) is not available here (a seccomp filter returns ENOSYS for it, as container runtimes' \
         default profiles may); allow ptrace in the seccomp profile"
    } else if errno == Errno::ESRCH {
        "the process is gone"
    } else {
        errno.desc()
    };
    let _ = write!(text, ": {why}");
    text
}
