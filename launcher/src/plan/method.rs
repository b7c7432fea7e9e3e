//! The choice between the two ways to lock, made here and nowhere else: the plan asks
//! [`choose`], which returns the method and the reason for it (shown by `--dry-run`, `-v` and
//! `--check`), or why no method may lock the program.
//!
//! - preload: the shim in LD_PRELOAD locks the new image from inside, before its
//!   constructors; and with it everything done through glibc (`--heap`, `--thread-stack`,
//!   `--fork relock`, `--bind-now`) and inheritance by the programs COMMAND executes.
//! - ptrace: a helper locks the new image from outside at its entry point (see
//!   `ptrace/`), for the programs ld.so cannot preload into: static, musl or another
//!   loader, i386 programs.
//!
//! Secure-execution targets (set-user-ID, set-group-ID, file capabilities) are refused
//! whatever the method.

use memlock_run_protocol::Fork;

use super::{Request, Wanted};
use crate::plan::target::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Preload,
    Ptrace,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Preload => "preload",
            Method::Ptrace => "ptrace",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Choice {
    pub method: Method,
    /// Why, in a few words, for `--dry-run`, `-v` and `--check`.
    pub reason: String,
}

impl Choice {
    /// `ptrace: no preload reaches it: statically linked (no PT_INTERP): ...`
    pub fn describe(&self) -> String {
        format!("{}: {}", self.method.name(), self.reason)
    }
}

/// Why no method may lock the program: a few words for `--check`, and the whole message.
pub struct NoMethod {
    pub summary: String,
    pub message: String,
}

/// The method for `target` under `--method`, or why memlock-run refuses it.
pub fn choose(wanted: Wanted, target: &Target) -> Result<Choice, NoMethod> {
    let refusal = target.refusal();
    let refuse = |message: String| NoMethod {
        summary: format!(
            "no method can lock it: {}",
            refusal
                .as_ref()
                .map_or("memlock-run would refuse it", |r| r.summary.as_str())
        ),
        message,
    };
    if let Some(refusal) = refusal.as_ref().filter(|r| !r.ptrace_can) {
        return Err(refuse(refusal.message.clone()));
    }
    match (wanted, &refusal) {
        (Wanted::Auto | Wanted::Preload, None) => Ok(Choice {
            method: Method::Preload,
            reason: format!(
                "a dynamically linked {} program: the shim is preloaded and locks it from inside",
                if target.is_musl() { "musl" } else { "glibc" }
            ),
        }),
        (Wanted::Preload, Some(why)) => Err(refuse(format!(
            "{}; --method ptrace (or the default, --method auto) locks it from outside instead",
            why.message
        ))),
        (Wanted::Auto, Some(why)) => {
            if target.goes_through_env() {
                let (image, _) = target.image();
                return Err(refuse(format!(
                    "refusing {}: its #! line starts {} through env, and that program is out of the preload's \
                     reach ({}), while the ptrace method would lock env in its place; name {} in the #! line \
                     instead of env, and the ptrace method locks it",
                    target.path.display(),
                    image.display(),
                    why.summary,
                    image.display()
                )));
            }
            Ok(Choice {
                method: Method::Ptrace,
                reason: format!("no preload reaches it: {}", why.summary),
            })
        }
        (Wanted::Ptrace, _) => {
            if target.goes_through_env() {
                return Err(refuse(format!(
                    "--method ptrace cannot lock {}: its #! line starts the interpreter through env, and the ptrace \
                     method locks the first image only (env); name the interpreter's path in the #! line",
                    target.path.display()
                )));
            }
            Ok(Choice {
                method: Method::Ptrace,
                reason: "asked for (--method ptrace)".into(),
            })
        }
    }
}

/// Options that act through glibc inside the process, which the ptrace method cannot
/// honour, nor the shim in a musl program: refused, never ignored.
pub fn option_conflict(request: &Request, choice: &Choice, target: &Target) -> Option<String> {
    if choice.method == Method::Preload && target.is_musl() {
        let option = if request.heap.is_some() {
            "--heap needs glibc's malloc settings (mallopt), and musl's malloc has none"
        } else if request.thread_stack.is_some() {
            "--thread-stack sets glibc's default thread attributes; musl sizes thread stacks itself (its \
             pthread_setattr_default_np only raises the default, up to 8 MiB)"
        } else {
            return None;
        };
        return Some(format!(
            "{option}, and {} is linked against musl; drop the option (with --future, memory the program maps \
             later is locked as it is mapped), or run a glibc build of the program",
            target.image().0.display()
        ));
    }
    if choice.method != Method::Ptrace {
        return None;
    }
    let option = if request.heap.is_some() {
        "--heap (glibc's malloc settings)"
    } else if request.thread_stack.is_some() {
        "--thread-stack (glibc's default thread attributes)"
    } else if request.fork == Some(Fork::Relock) {
        "--fork relock (a pthread_atfork handler)"
    } else if request.bind_now {
        "--bind-now (glibc's ld.so)"
    } else if request.huge {
        "--huge (the shim's MADV_HUGEPAGE before it populates)"
    } else {
        return None;
    };
    Some(format!(
        "{option} works from inside the process, through the preload shim, and COMMAND is locked with the ptrace \
         method ({}); drop the option, or run a dynamically linked glibc build of the program",
        choice.reason
    ))
}
