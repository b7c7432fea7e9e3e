//! Doing: a plan without refusals, applied in order, ending in the exec of COMMAND; and
//! `--pid`'s plan, applied to the running process.
//!
//! The order matters and is the kernel's: limits first (raising a hard limit needs
//! CAP_SYS_RESOURCE, which a user switch drops), RLIMIT_CORE, the exec gate (its filter
//! needs CAP_SYS_ADMIN or no_new_privs, before the switch drops the first), the user switch
//! or the ambient raise of CAP_IPC_LOCK, the ptrace helper, exec. Every step is read back or
//! fails the run; nothing here decides what to do, only whether it worked.

pub mod capabilities;
pub mod exec;
pub mod limits;
pub mod user;

use std::convert::Infallible;
use std::io::{self, Write};

use anyhow::{bail, Context, Result};
use memlock_run_protocol::OnFailure;
use nix::sys::resource::Resource;

use crate::gate;
use crate::host::{procfs, Host};
use crate::plan::method::Method;
use crate::plan::target::Program;
use crate::plan::{Gate, PidPlan, Plan};
use crate::ptrace;

/// Runs COMMAND: never returns on success.
pub fn run(mut plan: Plan, host: &Host) -> Result<Infallible> {
    plan.refusal()?;
    for note in &plan.notes {
        // A note that cannot be written (stderr on a full disk, /dev/full) must not stop the
        // run: eprintln! would panic, and the panic would abort memlock-run.
        let _ = writeln!(io::stderr(), "memlock-run: note: {}", note.text);
    }
    let (Some(target), Some(choice), Some(shim)) = (&plan.target, &plan.choice, &plan.shim) else {
        bail!("internal error: a plan without refusals has no COMMAND, method or shim");
    };
    let changes: Vec<(Resource, _)> = [
        (Resource::RLIMIT_MEMLOCK, plan.limits.memlock),
        (Resource::RLIMIT_STACK, plan.limits.stack),
    ]
    .into_iter()
    .filter_map(|(resource, change)| Some((resource, change?)))
    .collect();
    limits::apply(&changes)?;
    if plan.config.no_dump {
        limits::forbid_core_dumps()?;
    }
    // Before the user switch, which drops the CAP_SYS_ADMIN a filter without no_new_privs needs.
    let armed = match plan.gate {
        Gate::Armed { arming, reads, .. } => {
            // The plan refuses an armed gate without memlock-run's own file.
            let launcher_id = host.exe.as_ref().map_or((0, 0), |e| e.id);
            gate::arm(
                gate::Judgement {
                    // The tree's: COMMAND's own exec goes past the gate.
                    config: plan.config.executed(),
                    shim: shim.path.clone(),
                    shim_id: shim.id,
                    launcher_id,
                },
                arming,
                reads,
            )?
        }
        _ => None,
    };
    if let Some(armed) = &armed {
        if let Some(count) = procfs::status_field(std::process::id() as i32, "Seccomp_filters") {
            plan.env.push((
                memlock_run_protocol::GATE.into(),
                format!("{count}:{}:{}", armed.pid, armed.reads.letter()).into(),
            ));
        }
    }
    match &plan.user {
        Some(user) => user::switch(user)?,
        None if plan.holds_ipc_lock => capabilities::pass_ipc_lock()?,
        None => {}
    }
    // -v: what MCL_CURRENT will not cover of a program that loads its code later.
    if let Some(note) = plan
        .request
        .verbose
        .reports()
        .then(|| crate::say::check::runtime::verbose_note(&plan.request, &target.path))
        .flatten()
    {
        let _ = writeln!(io::stderr(), "{note}");
    }
    if plan.shim_in_env {
        // access(2) uses the real IDs: after the switch, COMMAND's. The plan judged another
        // user's access by the permission bits; this is the kernel's word.
        if let Err(errno) = nix::unistd::access(&shim.path, nix::unistd::AccessFlags::R_OK) {
            bail!(crate::plan::shim_unreadable(
                &shim.path,
                plan.user.as_ref(),
                host,
                errno
            ));
        }
    }
    let work = match choice.method {
        Method::Ptrace => Some(ptrace::Work::Lock(ptrace::Job {
            flags: plan.config.flags,
            prefault: plan.config.prefault,
            no_dump: plan.config.no_dump,
        })),
        Method::Preload => plan.preload_check.clone().map(ptrace::Work::CheckPreload),
    };
    if let Some(work) = work {
        let checking = matches!(work, ptrace::Work::CheckPreload(_));
        let armed = ptrace::arm_exec(&ptrace::ExecJob {
            work,
            on_failure: plan.config.on_failure,
            verbose: plan.request.verbose.reports(),
            program: program_name(&target.path),
            reason: choice.reason.clone(),
            image: target.image_id(),
        });
        match armed {
            Err(err) if checking => {
                let why = crate::plan::unchecked_preload(&format!("{err:#}"));
                if plan.config.on_failure == OnFailure::Warn {
                    let _ = writeln!(
                        io::stderr(),
                        "memlock-run: note: {why}; running COMMAND without the check (--on-failure warn)"
                    );
                } else {
                    bail!("{why}");
                }
            }
            armed => armed?,
        }
    }
    let judged = match target.program {
        Program::Elf(_) => Some(&target.file),
        Program::Script { .. } => None,
    };
    exec::exec(
        &target.path,
        judged,
        plan.renamed_by_shim,
        armed.map_or(0, |g| g.cookie),
        &plan.request.argv(),
        &plan.env,
    )
}

/// COMMAND's file name, for the helper's messages until it reads the new image's own.
fn program_name(path: &std::path::Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// `--pid`: locks a running process with the ptrace method; one line on stdout.
pub fn lock_running(plan: &PidPlan) -> Result<()> {
    plan.refusal()?;
    let job = ptrace::Job {
        flags: plan.request.flags,
        prefault: 0,
        no_dump: plan.request.no_dump,
    };
    let locked = ptrace::lock_pid(plan, &job)?;
    writeln!(io::stdout(), "{}", locked.describe(plan.request.pid, &job))
        .context("cannot write the report to stdout")
}
