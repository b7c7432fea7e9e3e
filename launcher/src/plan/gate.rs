//! Whether an inheriting run can have its exec gate, and how it is armed (the gate itself is
//! `crate::gate`): the rule a run applies and `--dry-run` and `--check` show.

use caps::Capability;
use memlock_run_protocol::GateReads;

use super::Request;
use crate::host::Host;

/// The sizes of a seccomp notification and its response that the gate was built for
/// (`struct seccomp_notif`, `struct seccomp_notif_resp`); `crate::gate` asserts its own.
pub const NOTIF_SIZE: u16 = 80;
pub const RESPONSE_SIZE: u16 = 24;

/// How a run arms its gate: installing a seccomp filter needs CAP_SYS_ADMIN or no_new_privs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arming {
    /// memlock-run holds CAP_SYS_ADMIN (root): the filter costs COMMAND nothing.
    Admin,
    /// no_new_privs is already set (Kubernetes' allowPrivilegeEscalation: false, systemd's
    /// NoNewPrivileges=yes): the filter costs COMMAND nothing more.
    AlreadyNoNewPrivs,
    /// memlock-run sets no_new_privs before the filter. Programs of the tree then gain no
    /// privilege by exec: the kernel ignores set-ID bits (such a program runs as its caller,
    /// locked, and for COMMAND a note says so), file-capability programs still run in
    /// secure-execution mode for a user other than root and are refused, and a security
    /// module's exec transitions (an SELinux domain change that is not bounded, an AppArmor
    /// profile change out of a confined one) fail.
    SetsNoNewPrivs,
}

/// The exec gate of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Not an inheriting run (`--no-inherit`): COMMAND alone is locked.
    NotInheriting,
    /// `--no-exec-gate`.
    Off,
    Armed {
        arming: Arming,
        /// The gate cannot read the memory of the tree's processes (`--no-dump` or `--user`
        /// without CAP_SYS_PTRACE): it takes the shim's word for the execs the shim judged,
        /// and refuses an execve system call such a process makes itself.
        unreadable: bool,
        /// Whose memory the gate can read, which the shim is told: where it can, the shim
        /// need not give its word (see [`reads`]).
        reads: GateReads,
    },
    /// This kernel or this process cannot have one, and why: the run is refused, or under
    /// `--on-failure warn` goes on without it.
    Missing { why: String },
}

impl Gate {
    /// `other_user`: `--user`.
    pub fn plan(request: &Request, host: &Host, other_user: bool) -> Gate {
        if !request.inherit {
            return Gate::NotInheriting;
        }
        if !request.exec_gate {
            return Gate::Off;
        }
        match readiness(host) {
            Ok(arming) => Gate::Armed {
                arming,
                unreadable: (request.no_dump || other_user)
                    && !host.has_effective(Capability::CAP_SYS_PTRACE),
                reads: reads(arming, host, other_user),
            },
            Err(why) => Gate::Missing { why },
        }
    }
}

/// Whose memory the gate, forked from memlock-run as `host` says it is, can read
/// (process_vm_readv: PTRACE_MODE_ATTACH over the task), so that the shim knows when its word
/// is needed (protocol::GateReads). Where a rule cannot be judged from here, the word.
///
/// CAP_SYS_PTRACE reaches every process (its namespace's and those below it), dumpable or not,
/// unless Yama's scope 3 forbids attaching at all. Without it, the kernel asks for the same
/// user and group IDs (real, effective and saved: the saved ones are the effective ones after
/// memlock-run's own exec), permitted capabilities within the gate's, and a dumpable task: a
/// tree under no_new_privs, run as memlock-run's own user (`other_user`: --user) without
/// CAP_SETUID or CAP_SETGID to pass on, gains no ID or capability by exec or otherwise, and a
/// user namespace one of its processes makes is the gate's user's own; Yama's scope 1 or 2
/// would still deny the gate (no ancestor of the tree). A mandatory access control module
/// may deny either: the word, always.
pub fn reads(arming: Arming, host: &Host, other_user: bool) -> GateReads {
    let yama = host.yama;
    if host.mac {
        return GateReads::Word;
    }
    if host.has_effective(Capability::CAP_SYS_PTRACE) && yama.map_or(true, |scope| scope < 3) {
        return GateReads::All;
    }
    let may_switch = [Capability::CAP_SETUID, Capability::CAP_SETGID]
        .iter()
        .any(|cap| host.caps.permitted.contains(cap));
    let own_ids = host.ids.uid == host.ids.euid && host.ids.gid == host.ids.egid;
    if matches!(arming, Arming::SetsNoNewPrivs | Arming::AlreadyNoNewPrivs)
        && !other_user
        && !may_switch
        && own_ids
        && yama.map_or(true, |scope| scope == 0)
    {
        return GateReads::Dumpable;
    }
    GateReads::Word
}

/// How this run would arm the gate, or why this kernel or this process cannot have one.
pub fn readiness(host: &Host) -> Result<Arming, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("the exec gate's filter is written for x86-64".into());
    }
    if let Some((major, minor)) = host.kernel.filter(|&release| release < (5, 5)) {
        return Err(format!(
            "Linux {major}.{minor} runs here, and the exec gate needs 5.5 (SECCOMP_USER_NOTIF_FLAG_CONTINUE, which \
             lets an exec it judged go on)"
        ));
    }
    match &host.seccomp.notif_sizes {
        Err(errno) => {
            return Err(format!(
                "the seccomp system call is not available here ({errno}: a container's seccomp profile or a kernel \
                 built without it), and the exec gate is a seccomp filter"
            ))
        }
        Ok((notif, response)) if (*notif, *response) != (NOTIF_SIZE, RESPONSE_SIZE) => {
            return Err(format!(
                "this kernel's seccomp notifications ({notif} and {response} bytes) are not the ones memlock-run was \
                 built for"
            ))
        }
        Ok(_) => {}
    }
    if host.has_effective(Capability::CAP_SYS_ADMIN) {
        return Ok(Arming::Admin);
    }
    if host.no_new_privs {
        return Ok(Arming::AlreadyNoNewPrivs);
    }
    Ok(Arming::SetsNoNewPrivs)
}

/// An inheriting run that cannot have an exec gate (`why`), refused.
pub fn none_refused(why: &str) -> String {
    format!(
        "cannot judge the programs COMMAND's tree executes with the execve system call itself: {why}. Without \
         memlock-run's exec gate, such a program (Go's os/exec, static programs) would run unlocked wherever the \
         preload cannot reach it; pass --no-exec-gate to run with that gap (programs executed through libc are still \
         judged by the shim), or --no-inherit if COMMAND alone must be locked"
    )
}

/// The same run under --on-failure warn, which goes on: its note.
pub fn none_warned(why: &str) -> String {
    format!(
        "no exec gate: {why}; a program COMMAND's tree starts with the execve system call itself (Go's os/exec, \
         static programs) is locked only if the preload reaches it, and otherwise runs unlocked (--on-failure warn)"
    )
}
