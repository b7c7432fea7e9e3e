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

use crate::host::procfs::{tracer_of, yama_scope};

/// `memlock-run: NAME (pid N): `, as the shim starts its lines.
pub fn report_prefix(name: &str, pid: i32) -> String {
    format!("memlock-run: {name} (pid {pid}): ")
}

/// Why PTRACE_SEIZE of `pid` failed, and what to do: the one message for the launcher's
/// helper and `--pid`, where the plan could not tell beforehand.
pub fn attach_refusal(pid: Pid, errno: Errno, what: &str) -> String {
    let raw = pid.as_raw();
    let mut text = format!("cannot attach to {what} (pid {raw}) with ptrace: {errno}");
    let why = if let Some((tracer, name)) = tracer_of(raw) {
        format!(
            "it is already traced by pid {tracer} ({name}), and a process has one tracer at a time; run it \
             outside the debugger or tracer"
        )
    } else if errno == Errno::EPERM || errno == Errno::EACCES {
        match yama_scope() {
            Some(3) => "kernel.yama.ptrace_scope is 3: ptrace is disabled on this system until reboot; \
                        the ptrace method cannot work here"
                .to_owned(),
            Some(2) if !has_sys_ptrace() => "kernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE \
                 may attach; run memlock-run as root, or set kernel.yama.ptrace_scope to 1"
                .to_owned(),
            _ => "the kernel refused: a seccomp filter or a security module (AppArmor, SELinux) may deny \
                  ptrace here, or the process belongs to another user or is not dumpable (then only root, or \
                  CAP_SYS_PTRACE, may attach); in a container, allow ptrace in its seccomp profile or add \
                  CAP_SYS_PTRACE"
                .to_owned(),
        }
    } else if errno == Errno::ENOSYS {
        "ptrace(2) is not available here (a seccomp filter returns ENOSYS for it, as container runtimes' \
         default profiles may); allow ptrace in the seccomp profile"
            .to_owned()
    } else if errno == Errno::ESRCH {
        "the process is gone".to_owned()
    } else {
        errno.desc().to_owned()
    };
    let _ = write!(text, ": {why}");
    text
}

fn has_sys_ptrace() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_PTRACE,
    )
    .unwrap_or(false)
}
