//! Saying: the texts memlock-run shows about a plan or a process, computed from the plan and
//! the host, never deciding anything of their own.
//!
//! - [`dry_run`]: the plan a run would apply;
//! - [`check`]: the plan's refusals and findings, and the probes only `--check` makes (the
//!   memory, the cgroup, swap and the other doors secrets leave by, MCL_ONFAULT, ptrace);
//! - [`status`]: what is locked in running processes;
//! - [`finding`]: a line of `--check`.
//!
//! The lines both `--dry-run` and `--check` show are written here once.

pub mod check;
pub mod dry_run;
pub mod finding;
pub mod status;

use memlock_run_protocol::GateReads;

use crate::plan::{Arming, Gate, Plan};

/// An inheriting run without its gate (`--no-exec-gate`).
pub const GATE_OFF: &str = "off (--no-exec-gate): the execve system calls the tree makes itself, past the shim \
                            (Go's os/exec, static programs), are not judged, and a program the preload misses runs \
                            unlocked that way; no_new_privs is not set";

/// The exec gate's line: how it is armed and what it then sees, or why there is none. None
/// for a run that does not inherit.
pub fn gate_text(plan: &Plan) -> Option<String> {
    match &plan.gate {
        Gate::NotInheriting => None,
        Gate::Off => Some(GATE_OFF.to_owned()),
        // Under --on-failure exit the plan refuses the run, which is then not rendered.
        Gate::Missing { why } => Some(crate::plan::gate::none_warned(why)),
        Gate::Armed {
            arming,
            unreadable,
            reads,
        } => {
            let mut text = "armed: the execve system calls the tree makes itself, past the shim (Go's os/exec, \
                            static programs), are judged by the shim's rules; "
                .to_owned();
            text.push_str(match arming {
                Arming::Admin => "memlock-run holds CAP_SYS_ADMIN, which the filter needs",
                Arming::AlreadyNoNewPrivs => "no_new_privs, which the filter needs, is already set",
                Arming::SetsNoNewPrivs => {
                    "memlock-run sets no_new_privs first, which the filter needs without CAP_SYS_ADMIN: programs \
                     of the tree then gain no privilege by exec, and a security module's exec transition that would \
                     (SELinux, AppArmor) fails"
                }
            });
            if !plan.shim_in_env {
                text.push_str(
                    "; COMMAND's loader is not given the shim, so every program COMMAND executes is refused unless \
                     it is memlock-run",
                );
            }
            if *unreadable {
                text.push_str(&format!(
                    "; the gate, without CAP_SYS_PTRACE, cannot read the memory of {}: it lets their execs go on \
                     when the shim judged them first (it says so), and refuses the execve system calls they make \
                     themselves",
                    if plan.request.no_dump {
                        "the tree's non-dumpable (--no-dump) processes"
                    } else {
                        "processes of another user"
                    }
                ));
            }
            text.push_str(match reads {
                GateReads::All => {
                    "; it reads every process of the tree (CAP_SYS_PTRACE), so the shim need not tell it of the \
                     execs it judged"
                }
                GateReads::Dumpable => {
                    "; it reads the tree's dumpable processes, so the shim tells it of an exec it judged only from a \
                     non-dumpable process or one holding a capability"
                }
                GateReads::Word => {
                    "; the shim tells it of every exec it judged (Yama, a security module or another user may keep \
                     it from reading the tree's processes), a second stop in the gate for each"
                }
            });
            Some(text)
        }
    }
}

/// What happens to the programs COMMAND executes: the inherit line of `--dry-run` and
/// `--check`; `warn` where the run leaves them to the exec gate's refusal.
pub struct Inherit {
    pub text: String,
    pub warn: bool,
}

pub fn inherit(plan: &Plan) -> Inherit {
    let ok = |text: &str| Inherit {
        text: text.to_owned(),
        warn: false,
    };
    if !plan.config.inherit {
        return ok("no (--no-inherit): programs COMMAND executes are not locked, as asked");
    }
    match (plan.method(), &plan.target, plan.shim_in_env) {
        (Some(crate::plan::method::Method::Ptrace), Some(target), false) => {
            let (image, info) = target.image();
            Inherit {
                text: format!(
                    "no: the ptrace method locks the image of {} only, and its loader ({}) must not be given the \
                     glibc shim: programs it executes are not locked, and the exec gate refuses them unless they \
                     are memlock-run",
                    image.display(),
                    info.interpreter.as_deref().unwrap_or(image).display()
                ),
                warn: true,
            }
        }
        (Some(crate::plan::method::Method::Ptrace), _, _) => ok(
            "yes, through the shim: glibc and musl programs COMMAND executes are locked (COMMAND is static, and \
             makes the execve system call itself, which the exec gate judges)",
        ),
        _ => ok(
            "yes: programs COMMAND executes through libc's exec and spawn functions are judged before the exec: \
             the shim locks those the preload reaches, memlock-run locks the others from outside (ptrace), and \
             what neither can lock (a set-user-ID program that runs in secure-execution mode for its caller, a \
             root directory without memlock-run) is not executed, with a message",
        ),
    }
}

/// The core dumps line. `by_ptrace`: the new image is made non-dumpable from outside, by the
/// injecting helper, not by the shim; `shim_in_execs`: the shim stays in the environment of
/// the programs COMMAND executes (inheritance), so it sets the flag there.
pub fn core_dumps(no_dump: bool, by_ptrace: bool, shim_in_execs: bool) -> String {
    if !no_dump {
        return "allowed (no --no-dump): RLIMIT_CORE unchanged, COMMAND dumpable".to_owned();
    }
    let setter = if by_ptrace {
        "the ptrace helper makes COMMAND call prctl(PR_SET_DUMPABLE, 0) before its first instruction"
    } else {
        "the shim sets PR_SET_DUMPABLE 0 in COMMAND before its code runs"
    };
    let execs = if shim_in_execs {
        "and again in every program COMMAND executes"
    } else {
        "programs COMMAND executes are dumpable again (execve resets the flag) but keep RLIMIT_CORE 0"
    };
    format!("none: RLIMIT_CORE 0 (soft and hard) before exec; {setter}; {execs}")
}

/// A message with the control characters it may carry from file names, `#!` lines and
/// arguments (a carriage return, an escape sequence) shown as escapes, so that what reaches
/// the terminal is one line that says what it is.
pub fn printable(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("/bin/sh\r does not exist; \u{1b}[31mred"),
            "/bin/sh\\r does not exist; \\u{1b}[31mred"
        );
    }

    #[test]
    fn the_core_dumps_line_names_who_clears_the_flag_and_where() {
        assert!(core_dumps(false, false, true).starts_with("allowed"));
        let shim = core_dumps(true, false, true);
        assert!(shim.contains("the shim sets") && shim.contains("again in every program"));
        let ptrace = core_dumps(true, true, false);
        assert!(ptrace.contains("ptrace helper") && ptrace.contains("dumpable again"));
    }
}
