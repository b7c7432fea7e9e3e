//! `--pid`'s plan: whether memlock-run may lock a running process, and the RLIMIT_MEMLOCK it
//! gives it first; `crate::ptrace` then does it, and `--check --pid` renders the same plan.

use super::{PidRequest, Refusal};
use crate::host::procfs::{describe_limit, Process};
use crate::host::Host;
use crate::size::Limit;
use caps::Capability;

/// The soft RLIMIT_MEMLOCK the process gets before the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitChange {
    pub soft: u64,
    pub hard: u64,
    pub wanted: u64,
}

#[derive(Debug)]
pub struct PidPlan {
    pub request: PidRequest,
    /// None when no process has the PID.
    pub process: Option<Process>,
    /// None when the limit stays as it is (the process holds CAP_IPC_LOCK, or has it already).
    pub limit: Option<LimitChange>,
    pub refusals: Vec<Refusal>,
}

impl PidPlan {
    /// `process` is what /proc says of the PID (`Process::read`), None if nothing.
    pub fn build(request: PidRequest, host: &Host, process: Option<Process>) -> PidPlan {
        let mut refusals = Vec::new();
        let pid = request.pid;
        let refuse = |message: String| {
            Refusal::new(
                "--pid",
                format!("memlock-run --pid {pid} would refuse"),
                message,
            )
        };
        let Some(process) = process else {
            refusals.push(refuse(format!(
                "no process has pid {pid} (or /proc is not mounted)"
            )));
            return PidPlan {
                request,
                process: None,
                limit: None,
                refusals,
            };
        };
        let name = &process.name;
        if let Some((tracer, tracer_name)) = &process.tracer {
            refusals.push(refuse(format!(
                "{name} (pid {pid}) is already traced by pid {tracer} ({tracer_name}), and a process has one tracer \
                 at a time; detach the debugger or tracer first"
            )));
        }
        if process.state.starts_with('Z') {
            refusals.push(refuse(format!(
                "{name} (pid {pid}) has exited (a zombie): there is no memory left to lock"
            )));
        }
        match process.seccomp.as_str() {
            "1" => refusals.push(refuse(format!(
                "{name} (pid {pid}) runs in seccomp strict mode, where any system call but read, write, exit and \
                 sigreturn kills it; it cannot be locked from outside"
            ))),
            "2" if !request.force && !process.only_gate => refusals.push(refuse(format!(
                "{name} (pid {pid}) runs under a seccomp filter (Seccomp: 2 in /proc/{pid}/status), which \
                 memlock-run cannot read: if it forbids mlockall, the process is killed or the call fails; if you \
                 know the filter allows mlockall (and madvise and prctl), run again with --force"
            ))),
            _ => {}
        }
        let sys_ptrace = host.has_effective(Capability::CAP_SYS_PTRACE);
        // The kernel compares the caller's real uid with the process's real, effective and
        // saved ones (ptrace(2), PTRACE_MODE_REALCREDS).
        if !sys_ptrace && process.uids.iter().take(3).any(|&u| u != host.ids.uid) {
            refusals.push(Refusal::new(
                "--pid",
                format!(
                    "{name} runs as uids {} (real, effective, saved, fs), and memlock-run as uid {} without \
                     CAP_SYS_PTRACE",
                    process
                        .uids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join("/"),
                    host.ids.uid
                ),
                format!(
                    "cannot lock {name} (pid {pid}): it runs as another user than memlock-run (uid {}), and only \
                     root (CAP_SYS_PTRACE) may attach to another user's process; run memlock-run --pid as root \
                     (sudo), or as the process's own user",
                    host.ids.uid
                ),
            ));
        } else if !sys_ptrace {
            let yama = match host.yama {
                Some(1) => Some((
                    "kernel.yama.ptrace_scope is 1: only a process's ancestors may attach to it without \
                     CAP_SYS_PTRACE",
                    "run memlock-run --pid as root (sudo), or set kernel.yama.ptrace_scope to 0",
                )),
                Some(2) => Some((
                    "kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may attach",
                    "run memlock-run --pid as root (sudo)",
                )),
                _ => None,
            };
            if let Some((why, remedy)) = yama {
                refusals.push(Refusal::new(
                    "--pid",
                    why,
                    format!("cannot lock {name} (pid {pid}): {why}; {remedy}"),
                ));
            }
        }
        if host.yama == Some(3) {
            refusals.push(Refusal::new(
                "--pid",
                "kernel.yama.ptrace_scope is 3: ptrace is disabled until reboot",
                format!(
                    "cannot lock {name} (pid {pid}): kernel.yama.ptrace_scope is 3, which disables ptrace on this \
                     system until reboot; a running process can only be locked from outside with ptrace"
                ),
            ));
        }
        let limit = match limit_change(&request, &process) {
            Ok(change) => change,
            Err(why) => {
                refusals.push(Refusal::new(
                    "--limit",
                    "memlock-run would refuse --limit",
                    why,
                ));
                None
            }
        };
        PidPlan {
            request,
            process: Some(process),
            limit,
            refusals,
        }
    }

    /// The first refusal, as `--pid`'s error.
    pub fn refusal(&self) -> Result<(), Refusal> {
        super::first(&self.refusals)
    }

    /// The RLIMIT_MEMLOCK the lock will be bound by (u64::MAX: none), where it can be told.
    pub fn allowed(&self) -> Option<u64> {
        let process = self.process.as_ref()?;
        if let Some(change) = self.limit {
            return Some(change.wanted);
        }
        match self.request.limit {
            Some(Limit::Unlimited) => Some(u64::MAX),
            Some(Limit::Bytes(bytes)) => Some(bytes),
            None => process.memlock.map(|(_, hard)| hard),
        }
    }
}

/// The soft RLIMIT_MEMLOCK to set: `--limit`, or the hard limit; none where the process holds
/// CAP_IPC_LOCK (the limit does not bind its mlockall) or has it already.
fn limit_change(request: &PidRequest, process: &Process) -> Result<Option<LimitChange>, String> {
    if process.holds_ipc_lock && request.limit.is_none() {
        return Ok(None);
    }
    let Some((soft, hard)) = process.memlock else {
        if request.limit.is_some() {
            return Err(format!(
                "cannot read RLIMIT_MEMLOCK of pid {} to set --limit (prlimit(2) may read another user's limits \
                 only with CAP_SYS_RESOURCE); run memlock-run --pid as root, or as the process's own user",
                request.pid
            ));
        }
        return Ok(None);
    };
    let wanted = match request.limit {
        Some(Limit::Unlimited) => libc::RLIM_INFINITY,
        Some(Limit::Bytes(bytes)) => bytes,
        None => hard,
    };
    Ok((wanted != soft).then_some(LimitChange { soft, hard, wanted }))
}

impl LimitChange {
    /// `its RLIMIT_MEMLOCK was raised from 64 KiB to 8 MiB`; `--limit` below the soft limit
    /// lowers it.
    pub fn describe(&self) -> String {
        let how = if self.wanted < self.soft {
            "lowered"
        } else {
            "raised"
        };
        format!(
            "its RLIMIT_MEMLOCK was {how} from {} to {}",
            describe_limit(self.soft),
            describe_limit(self.wanted)
        )
    }
}
