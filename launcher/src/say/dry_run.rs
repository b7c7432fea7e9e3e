//! `--dry-run`: the plan a run would apply, one line a step; nothing is changed or executed.
//! A plan with a refusal is not rendered: `main` reports it as the run would, with the run's
//! message and exit status.

use std::io::{self, Write};

use memlock_run_protocol::{Fork, OnFailure};

use super::{core_dumps, gate_text};
use crate::plan::environment::LD_PRELOAD;
use crate::plan::method::Method;
use crate::plan::{Plan, LD_BIND_NOW};
use crate::size::show;

/// Writes the plan to stdout.
pub fn print(plan: &Plan) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(render(plan).as_bytes())?;
    out.flush()
}

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let request = &plan.request;
    let command = request
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str("memlock-run --dry-run: nothing was changed or executed\n");
    let mut line = |label: &str, text: &str| {
        out.push_str(&format!("{label:<16}{text}\n"));
    };
    line("command:", &command);
    if let Some(target) = &plan.target {
        line(
            "target:",
            &format!("{}: {}", target.path.display(), target.describe()),
        );
    }
    let ptrace = plan.method() == Some(Method::Ptrace);
    if let Some(choice) = &plan.choice {
        line("method:", &choice.describe());
    }
    if let Some(check) = &plan.preload_check {
        line(
            "check:",
            &format!(
                "{}: a ptrace helper checks at COMMAND's entry point that ld.so loaded the shim",
                check.limit
            ),
        );
    }
    line(
        "lock:",
        &format!(
            "mlockall({}), on failure: {}",
            plan.config.flags.describe(),
            match request.on_failure {
                OnFailure::Exit => "exit 125",
                OnFailure::Warn => "warn and run unlocked",
            }
        ),
    );
    if plan.config.prefault > 0 {
        line(
            "prefault:",
            &format!("{} of the main thread's stack", show(plan.config.prefault)),
        );
    }
    if plan.config.heap > 0 {
        line(
            "heap:",
            &format!(
                "{} pre-faulted and kept (glibc malloc: M_TRIM_THRESHOLD -1, M_MMAP_MAX 0, M_ARENA_MAX 1)",
                show(plan.config.heap)
            ),
        );
    }
    if plan.config.huge {
        line(
            "huge pages:",
            "MADV_HUGEPAGE on the pre-faulted stack and heap before they are populated (transparent huge pages)",
        );
    }
    line(
        "fork:",
        match plan.config.fork {
            _ if ptrace => {
                "COMMAND's forked children run unlocked (the ptrace method cannot relock them)"
            }
            Fork::Relock if plan.config.flags.future => {
                "children relock: mlockall(MCL_CURRENT|MCL_ONFAULT), then MCL_FUTURE"
            }
            Fork::Relock => "children relock: mlockall(MCL_CURRENT|MCL_ONFAULT)",
            Fork::Off => "children run unlocked (--fork off)",
        },
    );
    if request.bind_now {
        line(
            "binding:",
            if plan.config.bind_now {
                "at start (LD_BIND_NOW=1)"
            } else {
                "at start (LD_BIND_NOW was already set)"
            },
        );
    }
    line("inherit:", &super::inherit(plan).text);
    if let Some(text) = gate_text(plan) {
        line("exec gate:", &text);
    }
    line(
        "core dumps:",
        &core_dumps(
            plan.config.no_dump,
            ptrace,
            plan.config.inherit && plan.shim_in_env,
        ),
    );
    if let Some(memlock) = &plan.limits.memlock {
        line("RLIMIT_MEMLOCK:", &memlock.describe());
    }
    if let Some(stack) = &plan.limits.stack {
        line("RLIMIT_STACK:", &stack.describe());
    }
    match (request.thread_stack, plan.limits.thread_stack) {
        (Some(size), _) => line(
            "thread stacks:",
            &format!("{} (--thread-stack)", show(size)),
        ),
        (None, Some(size)) => line(
            "thread stacks:",
            &format!("{} (kept as before the stack limit was raised)", show(size)),
        ),
        (None, None) => {}
    }
    line(
        "capabilities:",
        match (&plan.user, plan.holds_ipc_lock) {
            (Some(_), _) => "CAP_IPC_LOCK alone, in the ambient set",
            (None, true) => {
                "CAP_IPC_LOCK added to the ambient set: RLIMIT_MEMLOCK does not bind COMMAND's mlockall"
            }
            (None, false) => "none added: COMMAND's mlockall is bound by RLIMIT_MEMLOCK",
        },
    );
    match &plan.user {
        Some(user) => line("user:", &user.describe()),
        None => line("user:", &format!("unchanged (uid {})", plan.creds.uid)),
    }
    if let (true, Some(shim)) = (plan.shim_in_env, &plan.shim) {
        line("shim:", &shim.path.display().to_string());
    }
    // The gate's own note is its line above.
    for note in plan.notes.iter().filter(|n| n.topic != "exec gate") {
        line("note:", &note.text);
    }
    let mut first = true;
    for (name, value) in &plan.env {
        let name = name.to_string_lossy();
        let ours = name == LD_PRELOAD
            || name.starts_with(memlock_run_protocol::PREFIX)
            || name == LD_BIND_NOW && plan.config.bind_now
            || plan.user.is_some() && ["HOME", "USER", "LOGNAME", "SHELL"].contains(&name.as_ref());
        if ours {
            let label = if first { "environment:" } else { "" };
            line(label, &format!("{name}={}", value.to_string_lossy()));
            first = false;
        }
    }
    out
}
