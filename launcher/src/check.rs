//! `--check`: say, before anything runs, whether a run would lock memory, and if not why
//! and what to change.
//!
//! Each finding is one line with a verdict word: `ok`, `warn` (the run works, but something
//! is worth knowing) or `FAIL` (the run would be refused, or the shim would fail to lock).
//! The check applies the launcher's own rules, not copies of them: the target's refusals
//! ([`crate::target`]), the limit plan ([`crate::limits`]), the shim's location
//! ([`crate::install`]) and the option checks of [`crate::launch`]. What only the kernel
//! decides later (mlockall's ENOMEM or EPERM under RLIMIT_MEMLOCK, EINVAL for MCL_ONFAULT,
//! a sanitizer that swallows mlockall, the cgroup) is predicted from what /proc and the
//! ELF headers say; the mapped size at start is an estimate ([`crate::footprint`]).
//!
//! Nothing is changed and nothing is executed. The words and units are the shim's:
//! `VmSize`, `VmLck`, `RLIMIT_MEMLOCK`, `MCL_...`, sizes as [`memlock_run_protocol::SizeText`]
//! writes them.

use std::env;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::Resource;

use crate::capabilities::Privilege;
use crate::cgroup;
use crate::cli::Cli;
use crate::elf;
use crate::footprint::{self, Estimate};
use crate::install::{self, Shim};
use crate::launch;
use crate::limits::{self, Rlimit};
use crate::method::{self, Method};
use crate::preload::LD_PRELOAD;
use crate::ptrace;
use crate::secrecy;
use crate::size::{show, Limit};
use crate::target::{self, Program, Target};
use crate::user::User;

/// How a finding bears on the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One line of the report, and what to do about it.
#[derive(Debug)]
pub struct Finding {
    pub verdict: Verdict,
    pub topic: &'static str,
    pub text: String,
    pub remedy: Option<String>,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, verdict: Verdict, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            verdict,
            topic,
            text: text.into(),
            remedy: None,
        });
    }

    fn problem(
        &mut self,
        verdict: Verdict,
        topic: &'static str,
        text: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.findings.push(Finding {
            verdict,
            topic,
            text: text.into(),
            remedy: Some(remedy.into()),
        });
    }

    fn worst(&self) -> Verdict {
        self.findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Runs the check and prints the report; `Ok(true)` when a run would succeed.
pub fn run(cli: &Cli) -> Result<bool> {
    let report = check(cli)?;
    // Not print!, which panics (and so aborts) when stdout is closed or full.
    let mut out = std::io::stdout().lock();
    out.write_all(render(cli, &report).as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the --check report to stdout")?;
    Ok(report.worst() != Verdict::Fail)
}

/// What the capability sets allow.
struct Caps {
    effective: bool,
    permitted: bool,
    inheritable: bool,
    bounding: bool,
    ambient: bool,
    /// The kernel has ambient capabilities (Linux 4.3).
    ambient_supported: bool,
    securebits: Option<u32>,
    no_new_privs: bool,
}

const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;

impl Caps {
    fn read() -> Result<Caps> {
        let has = |set: CapSet| -> Result<bool> {
            let caps: CapsHashSet = caps::read(None, set)
                .map_err(|err| anyhow::anyhow!("cannot read the {set:?} capability set: {err}"))?;
            Ok(caps.contains(&Capability::CAP_IPC_LOCK))
        };
        // SAFETY: prctl queries without pointers.
        let (ambient_query, securebits, no_new_privs) = unsafe {
            (
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_IS_SET,
                    Capability::CAP_IPC_LOCK.index() as libc::c_ulong,
                    0,
                    0,
                ),
                libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0),
                libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
            )
        };
        Ok(Caps {
            effective: has(CapSet::Effective)?,
            permitted: has(CapSet::Permitted)?,
            inheritable: has(CapSet::Inheritable)?,
            bounding: has(CapSet::Bounding)?,
            ambient: ambient_query == 1,
            ambient_supported: ambient_query >= 0,
            securebits: u32::try_from(securebits).ok(),
            no_new_privs: no_new_privs == 1,
        })
    }

    /// What capabilities(7) asks of PR_CAP_AMBIENT_RAISE, after memlock-run has made the
    /// capability inheritable (which needs it in the bounding set, or inheritable already).
    fn ambient_blocker(&self) -> Option<String> {
        if !self.ambient_supported {
            return Some("this kernel has no ambient capabilities (Linux 4.3 added them)".into());
        }
        if let Some(bits) = self
            .securebits
            .filter(|b| b & SECBIT_NO_CAP_AMBIENT_RAISE != 0)
        {
            return Some(format!(
                "SECBIT_NO_CAP_AMBIENT_RAISE is set (securebits {bits:#x}), which forbids raising ambient capabilities"
            ));
        }
        if !self.inheritable && !self.bounding {
            return Some(
                "CAP_IPC_LOCK is outside the bounding set, so it cannot be made inheritable".into(),
            );
        }
        None
    }

    fn describe(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "effective {}, permitted {}, inheritable {}, bounding {}, ambient {}",
            yes(self.effective),
            yes(self.permitted),
            yes(self.inheritable),
            yes(self.bounding),
            yes(self.ambient)
        )
    }
}

fn check(cli: &Cli) -> Result<Report> {
    let mut report = Report::default();
    // main refuses a set-user-ID or set-group-ID install before --check runs.
    let privilege = Privilege::detect()?;
    if let Some(pid) = cli.pid {
        // --pid locks another process: its state, its limit, and whether we may trace it.
        pid_findings(&mut report, cli, pid);
        onfault_finding(&mut report, cli.onfault);
        return Ok(report);
    }
    let caps = Caps::read()?;
    let memlock = limits::get(Resource::RLIMIT_MEMLOCK)?;
    let stack = limits::get(Resource::RLIMIT_STACK)?;
    let request = launch::limits_request(cli, &privilege, &std::env::vars_os().collect::<Vec<_>>());

    // Who COMMAND runs as; --user passes CAP_IPC_LOCK through the same ambient raise.
    let user = match launch::resolve_user(cli, &privilege) {
        Ok(Some(user)) => {
            report.add(
                Verdict::Ok,
                "--user",
                format!(
                    "COMMAND runs as {}, with CAP_IPC_LOCK alone, in the ambient set",
                    user.describe()
                ),
            );
            Some(user)
        }
        Ok(None) => None,
        Err(err) => {
            report.problem(
                Verdict::Fail,
                "--user",
                "memlock-run would refuse --user",
                format!("{err:#}"),
            );
            None
        }
    };
    let holds = privilege.lock_exempt();
    if privilege.has(Capability::CAP_IPC_LOCK) && !privilege.initial_user_ns {
        report.problem(
            Verdict::Warn,
            "user namespace",
            "memlock-run holds CAP_IPC_LOCK in a user namespace (a rootless container, unshare --user), and mlock(2) \
             honours only the initial namespace's: RLIMIT_MEMLOCK binds COMMAND as if it had no capability",
            "raise RLIMIT_MEMLOCK outside the namespace (the container runtime's --ulimit memlock=, LimitMEMLOCK= of \
             the unit that starts it), or grant CAP_IPC_LOCK in the initial namespace",
        );
    }
    let blocker = caps.ambient_blocker();
    let will_hold = holds && blocker.is_none();
    capability_findings(&mut report, &caps, holds, blocker.as_deref());

    // RLIMIT_MEMLOCK as the run would set it.
    let mut notes = Vec::new();
    let memlock_after = match limits::plan_memlock(&request, memlock, &mut notes) {
        Ok(after) => {
            let change = limits::Change {
                before: memlock,
                after,
            };
            let mut text = format!("{}, for COMMAND", change.describe());
            for note in &notes {
                text.push_str("; note: ");
                text.push_str(note);
            }
            if after.soft == Limit::Bytes(0) && !will_hold {
                report.problem(
                    Verdict::Fail,
                    "RLIMIT_MEMLOCK",
                    format!(
                        "{text}: mlockall fails with EPERM under a limit of 0 without CAP_IPC_LOCK"
                    ),
                    limit_remedy(cli, 1 << 20, memlock, caps.no_new_privs),
                );
            } else {
                report.add(Verdict::Ok, "RLIMIT_MEMLOCK", text);
            }
            Some(after)
        }
        Err(err) => {
            report.problem(
                Verdict::Fail,
                "RLIMIT_MEMLOCK",
                format!("{memlock}: memlock-run would refuse --limit"),
                format!("{err:#}"),
            );
            None
        }
    };
    if let Some(after) = memlock_after {
        if let Err(err) = limits::check_prefault_lock(&request, after) {
            report.problem(
                Verdict::Fail,
                "--prefault",
                "the pre-faulted stack alone passes RLIMIT_MEMLOCK",
                format!("{err:#}"),
            );
        }
    }
    match limits::plan_stack(&request, stack) {
        Ok(_) if request.prefault == 0 => report.add(
            Verdict::Ok,
            "RLIMIT_STACK",
            format!("{stack}; no --prefault, so memlock-run leaves it as it is"),
        ),
        Ok((after, _)) => report.add(
            Verdict::Ok,
            "RLIMIT_STACK",
            format!(
                "{}, for COMMAND: room for --prefault {} and the stack in use at start",
                limits::Change {
                    before: stack,
                    after
                }
                .describe(),
                show(request.prefault)
            ),
        ),
        Err(err) => report.problem(
            Verdict::Fail,
            "RLIMIT_STACK",
            format!(
                "{stack}: too small for --prefault {}",
                show(request.prefault)
            ),
            format!("{err:#}"),
        ),
    }
    if let Some(size) = cli.thread_stack {
        if let Err(err) = launch::check_thread_stack(size) {
            report.problem(
                Verdict::Fail,
                "--thread-stack",
                format!("{} is too small for glibc", show(size)),
                format!("{err:#}"),
            );
        }
    }
    onfault_finding(&mut report, cli.onfault);
    swap_finding(&mut report);
    // The doors besides swap that secrets leave by, and what --no-dump closes of them.
    let as_root = user
        .as_ref()
        .map_or(nix::unistd::geteuid().is_root(), |u| u.uid == 0);
    report
        .findings
        .extend(secrecy::findings(cli.no_dump, cli.future, as_root));

    // The shim, the program, and what it will map.
    let shim = match install::locate_shim(privilege.elevated()) {
        Ok(shim) => {
            report.add(
                Verdict::Ok,
                "shim",
                format!("{} ({})", shim.path.display(), shim.elf.describe()),
            );
            Some(shim)
        }
        Err(err) => {
            report.problem(
                Verdict::Fail,
                "shim",
                "memlock-run cannot use its preload shim",
                format!("{err:#}"),
            );
            None
        }
    };
    if let Some(shim) = &shim {
        shim_readable_finding(&mut report, &shim.path, user.as_ref());
    }
    let estimate = match (cli.command.first(), &shim) {
        (Some(command), Some(shim)) => {
            let creds = launch::credentials(user.as_ref());
            command_findings(&mut report, cli, command, shim, creds, will_hold)
        }
        (Some(_), None) => None,
        (None, _) => {
            report.add(
                Verdict::Ok,
                "COMMAND",
                "none given; add -- COMMAND [ARGS...] to check a program and what it maps",
            );
            None
        }
    };

    if let Some(estimate) = &estimate {
        lock_findings(
            &mut report,
            cli,
            estimate,
            memlock,
            memlock_after,
            will_hold,
            caps.no_new_privs,
        );
    }
    // Runtime classes that break the limit or the lock: runtime.rs.
    if let (Some(command), Some(_)) = (cli.command.first(), &estimate) {
        let found = crate::runtime::findings(cli, command, memlock_after, will_hold);
        report.findings.extend(found);
    }
    memory_finding(
        &mut report,
        estimate.as_ref().map(Estimate::total),
        request.prefault,
    );
    cgroup_finding(
        &mut report,
        estimate.as_ref().map(Estimate::total),
        request.prefault,
        request.heap,
    );
    Ok(report)
}

fn capability_findings(report: &mut Report, caps: &Caps, holds: bool, blocker: Option<&str>) {
    let sets = caps.describe();
    match (holds, blocker) {
        (true, None) => report.add(
            Verdict::Ok,
            "CAP_IPC_LOCK",
            format!(
                "{sets}: memlock-run passes it to COMMAND in the ambient set, so RLIMIT_MEMLOCK does not bind \
                 COMMAND's mlockall"
            ),
        ),
        (true, Some(why)) => report.problem(
            Verdict::Fail,
            "CAP_IPC_LOCK",
            format!("{sets}: held, but it cannot pass to COMMAND: {why}"),
            format!(
                "memlock-run would fail to raise CAP_IPC_LOCK in the ambient set ({why}); remove \
                 SecureBits=no-cap-ambient-raise and keep CAP_IPC_LOCK in CapabilityBoundingSet= in the systemd \
                 unit (or whatever set them for this process tree)"
            ),
        ),
        (false, _) if !caps.bounding => report.problem(
            Verdict::Warn,
            "CAP_IPC_LOCK",
            format!(
                "{sets}: outside the bounding set, so nothing in this process tree can gain it; COMMAND's mlockall \
                 is bound by RLIMIT_MEMLOCK"
            ),
            "start the container with CAP_IPC_LOCK (docker or podman run --cap-add IPC_LOCK, a Kubernetes \
             securityContext capabilities.add: [IPC_LOCK]) or keep it in the unit's CapabilityBoundingSet=; \
             otherwise RLIMIT_MEMLOCK must cover everything COMMAND locks",
        ),
        (false, _) => report.problem(
            Verdict::Warn,
            "CAP_IPC_LOCK",
            format!("{sets}: not held, so COMMAND's mlockall is bound by RLIMIT_MEMLOCK"),
            grant_capability(caps.no_new_privs),
        ),
    }
    let ambient = match blocker {
        None => format!(
            "can be raised (securebits {:#x}, SECBIT_NO_CAP_AMBIENT_RAISE clear)",
            caps.securebits.unwrap_or(0)
        ),
        Some(why) => format!("cannot be raised: {why}"),
    };
    // When it matters to this run, the CAP_IPC_LOCK finding above is the FAIL.
    report.add(
        if blocker.is_some() {
            Verdict::Warn
        } else {
            Verdict::Ok
        },
        "ambient set",
        ambient,
    );
    report.add(
        Verdict::Ok,
        "no_new_privs",
        if caps.no_new_privs {
            "set: a file capability (setcap) gives a program only what its caller already holds in the permitted \
             set (the kernel keeps those, which is how Kubernetes' allowPrivilegeEscalation: false still lets a \
             pod's added capabilities work); ambient capabilities still pass"
        } else {
            "not set here (an inheriting run without CAP_SYS_ADMIN sets it, for its exec gate: see that finding)"
        },
    );
}

/// The ways to give COMMAND CAP_IPC_LOCK through memlock-run.
fn grant_capability(no_new_privs: bool) -> String {
    let exe = env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "memlock-run".to_owned());
    let mut text = "give COMMAND CAP_IPC_LOCK, which lifts RLIMIT_MEMLOCK from its mlockall: run memlock-run as \
                    root (sudo; add --user to run COMMAND as someone else), or set AmbientCapabilities=CAP_IPC_LOCK \
                    in its systemd unit"
        .to_owned();
    if !no_new_privs {
        text.push_str(&format!(
            ", or let a group lock through memlock-run's file capability (the package's memlock-run-privilege \
             enable, or by hand: setcap cap_ipc_lock+p {exe}; memlock-run raises it itself)"
        ));
    } else {
        text.push_str(&format!(
            ", or, where the caller already holds CAP_IPC_LOCK in its permitted set (a container's added \
             capability), setcap cap_ipc_lock+p {exe}: under no_new_privs the kernel keeps a file capability the \
             caller already has"
        ));
    }
    text
}

/// How to let COMMAND lock `needed` bytes: a higher limit, or the capability.
fn limit_remedy(cli: &Cli, needed: u64, now: Rlimit, no_new_privs: bool) -> String {
    // Whole MiB, with a quarter more for what the estimate cannot see.
    let mib = (needed + needed / 4).div_ceil(1 << 20).max(1);
    let wanted = Limit::Bytes(mib << 20);
    let raise = if wanted <= now.hard {
        if cli.limit.is_some() {
            format!("--limit {mib}M (the hard limit, {}, allows it)", now.hard)
        } else {
            format!("--limit {mib}M")
        }
    } else {
        format!(
            "raise the hard limit to at least {mib} MiB where it is set: LimitMEMLOCK={mib}M in the systemd unit, \
             ulimit -l {} in the (root) shell that starts memlock-run, or a memlock line in \
             /etc/security/limits.conf for login sessions (systemd services do not read that file); the hard \
             limit is {} now",
            mib * 1024,
            now.hard
        )
    };
    format!("{raise}; or {}", grant_capability(no_new_privs))
}

/// The program: what it is, whether the preload reaches it, and what it maps.
fn command_findings(
    report: &mut Report,
    cli: &Cli,
    command: &std::ffi::OsString,
    shim: &Shim,
    creds: target::Credentials,
    will_hold: bool,
) -> Option<Estimate> {
    let path_var = env::var_os("PATH");
    let target = target::resolve(command, path_var.as_deref())
        .and_then(|path| target::inspect(&path, &shim.elf, creds, path_var.as_deref()));
    let target: Target = match target {
        Ok(target) => target,
        Err(err) => {
            let why = match err
                .chain()
                .find_map(|cause| cause.downcast_ref::<target::NotRunnable>())
            {
                Some(not_runnable) => format!(
                    "cannot be executed (memlock-run would exit {})",
                    not_runnable.status
                ),
                None => "memlock-run would refuse it (exit 125)".to_owned(),
            };
            report.problem(
                Verdict::Fail,
                "COMMAND",
                format!("{}: {why}", command.to_string_lossy()),
                format!("{err:#}"),
            );
            return None;
        }
    };
    report.add(
        Verdict::Ok,
        "COMMAND",
        format!("{}: {}", target.path.display(), target.describe()),
    );
    let choice = match method::choose(cli.method, &target) {
        Ok(choice) => choice,
        Err(err) => {
            let summary = target
                .refusal()
                .map_or_else(|| "memlock-run would refuse it".to_owned(), |r| r.summary);
            report.problem(
                Verdict::Fail,
                "method",
                format!("no method can lock it: {summary}"),
                format!("{err:#}"),
            );
            return None;
        }
    };
    report.add(Verdict::Ok, "method", choice.describe());
    if let Some(why) = method::option_conflict(cli, &choice, &target) {
        report.problem(
            Verdict::Fail,
            "method",
            "an option needs the preload shim",
            why,
        );
        return None;
    }
    if let Some(why) = launch::preloaded_c_library(cli, launch::shim_in_env(cli, &choice, &target))
    {
        report.problem(
            Verdict::Fail,
            "LD_PRELOAD",
            "a C library is preloaded before the shim",
            why,
        );
        return None;
    }
    if choice.method == Method::Ptrace {
        return ptrace_findings(report, cli, &target, will_hold);
    }
    if let Some(why) = launch::no_inherit_conflict(cli, &target) {
        report.problem(
            Verdict::Fail,
            "preload",
            "--no-inherit would leave the lock with env",
            why,
        );
        return None;
    }
    let (image, info) = target.image();
    let preload = preload_list(&shim.path);
    let listed = preload
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let through = match &target.program {
        Program::Script { .. } if target.goes_through_env() => format!(
            "; env runs first and is locked, then {} through the inherited environment",
            image.display()
        ),
        _ => String::new(),
    };
    report.add(
        Verdict::Ok,
        "preload",
        format!(
            "ld.so will load the shim into {} ({LD_PRELOAD}={listed}){through}",
            image.display()
        ),
    );
    inherit_findings(report, cli);
    address_limit_finding(report);
    let loader = info.interpreter.clone()?;
    let heap = cli.heap.unwrap_or(0);
    match footprint::estimate(image, &loader, &preload, cli.prefault.unwrap_or(0), heap) {
        Ok(estimate) => {
            if let (true, Some(object)) = (heap > 0, &estimate.foreign_malloc) {
                report.problem(
                    Verdict::Fail,
                    "--heap",
                    format!(
                        "malloc would come from {}, not glibc: the shim would refuse --heap",
                        object.display()
                    ),
                    memlock_run_protocol::FOREIGN_MALLOC_REMEDY,
                );
            }
            for missing in &estimate.missing {
                report.problem(
                    Verdict::Warn,
                    "library",
                    format!("{missing}: not found where ld.so looks, so not counted"),
                    format!(
                        "check that {} starts on its own; if ld.so cannot find {missing} either, it will not \
                         start at all (set LD_LIBRARY_PATH, or run ldconfig)",
                        image.display()
                    ),
                );
            }
            if let Some(runtime) = sanitizer(image) {
                report.problem(
                    Verdict::Fail,
                    "sanitizer",
                    format!(
                        "{} needs {runtime}, which intercepts mlockall and locks nothing: the shim would find VmLck \
                         0 kB and stop",
                        image.display()
                    ),
                    "lock an uninstrumented build of the program",
                );
            }
            Some(estimate)
        }
        Err(err) => {
            cannot_estimate(report, &err);
            None
        }
    }
}

/// What happens to the programs a preloaded COMMAND executes.
fn inherit_findings(report: &mut Report, cli: &Cli) {
    if cli.no_inherit {
        report.add(
            Verdict::Ok,
            "inherit",
            "--no-inherit: programs COMMAND executes are not locked, as asked",
        );
        return;
    }
    report.add(
        Verdict::Ok,
        "inherit",
        "programs COMMAND executes through libc's exec and spawn functions are judged before the exec: the shim \
         locks those the preload reaches, memlock-run locks the others from outside (ptrace), and what neither can \
         lock (a set-user-ID program, a root directory without memlock-run) is not executed, with a message",
    );
    gate_finding(report, cli, true, false);
}

/// The exec gate of an inheriting run: how it is armed, or why the run is refused without it.
/// `static_command`: COMMAND makes the execve system call itself, for every program it runs.
fn gate_finding(report: &mut Report, cli: &Cli, reaches_shim: bool, static_command: bool) {
    if cli.no_exec_gate {
        return report.problem(
            Verdict::Warn,
            "exec gate",
            crate::gate::OFF,
            "drop --no-exec-gate where the kernel allows one (Linux 5.5), unless a program of the tree must make \
             an SELinux or AppArmor transition",
        );
    }
    match crate::gate::describe(cli.no_dump, cli.user.is_some(), reaches_shim) {
        Ok(plan) if plan.unreadable && static_command => report.problem(
            Verdict::Warn,
            "exec gate",
            plan.text,
            "COMMAND is static and makes every exec with the system call itself, so each would be refused: if it \
             executes programs, start the run as root (sudo memlock-run --user NAME ...), or pass --no-inherit if \
             COMMAND alone must be locked",
        ),
        Ok(plan) => report.add(Verdict::Ok, "exec gate", plan.text),
        Err(why) if cli.on_failure == crate::cli::OnFailure::Warn => report.problem(
            Verdict::Warn,
            "exec gate",
            crate::gate::none_warned(&why),
            "pass --no-exec-gate to say so, or --no-inherit if COMMAND alone must be locked",
        ),
        Err(why) => report.problem(
            Verdict::Fail,
            "exec gate",
            "an inheriting run needs the exec gate, and cannot have one here",
            crate::gate::none_refused(&why),
        ),
    }
}

/// The preload method under a finite soft RLIMIT_AS: ld.so ignores a preload it cannot map, so
/// a run checks with the ptrace helper that the shim is loaded (see launch.rs), and needs
/// ptrace. Whether the program fits under the limit at all is the memory finding's.
fn address_limit_finding(report: &mut Report) {
    let Ok(Rlimit {
        soft: Limit::Bytes(limit),
        ..
    }) = limits::get(Resource::RLIMIT_AS)
    else {
        return;
    };
    report.add(
        Verdict::Ok,
        "RLIMIT_AS",
        format!(
            "{}: ld.so skips a preload it cannot map and runs the program anyway, so a helper checks with ptrace, at \
             COMMAND's entry point, that the shim is loaded",
            show(limit)
        ),
    );
    ptrace_permission_finding(
        report,
        "lift RLIMIT_AS (ulimit -v unlimited, LimitAS=infinity in a systemd unit): without it the preload needs no \
         ptrace",
    );
}

/// The ptrace method: whether memlock-run may trace here, what is inherited, and what the
/// image maps at its entry point.
fn ptrace_findings(
    report: &mut Report,
    cli: &Cli,
    target: &Target,
    will_hold: bool,
) -> Option<Estimate> {
    ptrace_permission_finding(
        report,
        "use a dynamically linked glibc build of the program (the preload method needs no ptrace)",
    );
    let (image, info) = target.image();
    if !cli.no_inherit && info.interpreter.is_some() {
        report.problem(
            Verdict::Warn,
            "inherit",
            format!(
                "programs {} executes are not locked, and its exec gate refuses them unless they are memlock-run: \
                 the ptrace method locks its image only, and its loader ({}) must not be given the glibc shim",
                image.display(),
                info.interpreter.as_deref().unwrap_or(image).display()
            ),
            "if COMMAND executes programs that must be locked, start those with memlock-run too; pass \
             --no-inherit to say that COMMAND alone is meant",
        );
    }
    if !cli.no_inherit {
        gate_finding(
            report,
            cli,
            info.interpreter.is_none(),
            info.interpreter.is_none(),
        );
    }
    if elf::is_go(image) && cli.future {
        if will_hold {
            report.add(
                Verdict::Ok,
                "Go runtime",
                "a Go program: MCL_FUTURE counts the hundreds of MiB of address space Go reserves at start \
                 (VmLck shows them; reserved pages cost no RAM until used), and CAP_IPC_LOCK lifts the limit",
            );
        } else {
            report.problem(
                Verdict::Fail,
                "Go runtime",
                "a Go program under --future without CAP_IPC_LOCK: Go reserves hundreds of MiB of address space \
                 at start (PROT_NONE), MCL_FUTURE counts it against RLIMIT_MEMLOCK, and the runtime dies (\"failed \
                 to reserve page summary memory\")",
                format!(
                    "give COMMAND CAP_IPC_LOCK (run memlock-run as root or with \
                     AmbientCapabilities=CAP_IPC_LOCK), or drop --future (MCL_CURRENT locks what is mapped at start); {}",
                    grant_capability(false)
                ),
            );
        }
    }
    let prefault = cli.prefault.unwrap_or(0);
    // At the entry point ld.so has mapped the libraries; another loader searches its own way,
    // so libraries not found by glibc's rules are left out rather than reported missing.
    let estimate = match &info.interpreter {
        None => footprint::estimate_static(image, prefault),
        Some(loader) => footprint::estimate(image, loader, &[], prefault, 0).map(|mut estimate| {
            estimate.missing.clear();
            estimate
        }),
    };
    match estimate {
        Ok(estimate) => Some(estimate),
        Err(err) => {
            cannot_estimate(report, &err);
            None
        }
    }
}

/// The estimate failed: a warning, and how to see the real figures.
fn cannot_estimate(report: &mut Report, err: &anyhow::Error) {
    report.problem(
        Verdict::Warn,
        "VmSize at start",
        format!("cannot estimate: {err:#}"),
        "run it once with memlock-run --verbose to see its VmSize and VmLck",
    );
}

/// Whether this process may trace the helper's way: not traced itself, Yama allows it, not
/// PID 1. A seccomp filter cannot be read: it is named when there is one. `without` is the
/// way to do without ptrace, for when ptrace is off for good.
fn ptrace_permission_finding(report: &mut Report, without: &str) {
    let me = std::process::id() as i32;
    if let Some((tracer, name)) = ptrace::tracer_of(me) {
        report.problem(
            Verdict::Fail,
            "ptrace",
            format!("memlock-run is traced by pid {tracer} ({name}), and a process has one tracer at a time"),
            "run memlock-run outside the debugger or tracer (strace, gdb); attach to COMMAND afterwards",
        );
        return;
    }
    if me == 1 {
        report.problem(
            Verdict::Fail,
            "ptrace",
            "memlock-run is PID 1 of its PID namespace: the ptrace helper would become COMMAND's child",
            "start the container with an init (docker run --init, tini), with memlock-run below it",
        );
        return;
    }
    let scope = ptrace::yama_scope();
    let sys_ptrace =
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_PTRACE).unwrap_or(false);
    match scope {
        Some(3) => {
            report.problem(
                Verdict::Fail,
                "ptrace",
                "kernel.yama.ptrace_scope is 3: ptrace is disabled until reboot",
                without,
            );
            return;
        }
        Some(2) if !sys_ptrace => {
            report.problem(
                Verdict::Fail,
                "ptrace",
                "kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may attach",
                "run memlock-run as root, or set kernel.yama.ptrace_scope to 1 (memlock-run names its helper with \
                 PR_SET_PTRACER, which scope 1 allows)",
            );
            return;
        }
        _ => {}
    }
    let seccomp = ptrace::status_field(me, "Seccomp").unwrap_or_default();
    let yama = match scope {
        Some(n) => format!("kernel.yama.ptrace_scope {n}"),
        None => "no Yama".to_owned(),
    };
    if seccomp == "2" && !crate::gate::only_filter_is_gate(me) {
        report.problem(
            Verdict::Warn,
            "ptrace",
            format!(
                "{yama}; a seccomp filter applies to this process tree and may deny ptrace: memlock-run would then \
                 stop before exec and say so"
            ),
            "allow ptrace in the seccomp profile (a container runtime's default profile allows it on Linux 4.8 \
             and later)",
        );
    } else {
        report.add(
            Verdict::Ok,
            "ptrace",
            format!(
                "permitted: {yama}, not traced, no seccomp filter{}; the helper is named with PR_SET_PTRACER",
                if seccomp == "2" {
                    " but an outer run's exec gate (execve and execveat alone)"
                } else {
                    ""
                }
            ),
        );
    }
}

/// `--check --pid PID`: what `--pid` would find.
fn pid_findings(report: &mut Report, cli: &Cli, pid: u32) {
    let name = match ptrace::preflight(pid, cli.force) {
        Ok(name) => name,
        Err(err) => {
            report.problem(
                Verdict::Fail,
                "--pid",
                format!("memlock-run --pid {pid} would refuse"),
                format!("{err:#}"),
            );
            return;
        }
    };
    let raw = pid as i32;
    let field = |name: &str| ptrace::status_field(raw, name).unwrap_or_default();
    report.add(
        Verdict::Ok,
        "--pid",
        format!(
            "{name} (pid {pid}): State {}, effective uid {}, Seccomp {}",
            field("State"),
            field("Uid").split_whitespace().nth(1).unwrap_or("?"),
            field("Seccomp")
        ),
    );
    ptrace_permission_finding(
        report,
        "use a dynamically linked glibc build of the program (the preload method needs no ptrace)",
    );
    let my_uid = nix::unistd::getuid().as_raw().to_string();
    let sys_ptrace =
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_PTRACE).unwrap_or(false);
    let uids: Vec<String> = field("Uid").split_whitespace().map(str::to_owned).collect();
    if !sys_ptrace && uids.iter().any(|u| *u != my_uid) {
        report.problem(
            Verdict::Fail,
            "--pid",
            format!(
                "{name} runs as uids {} (real, effective, saved, fs), and memlock-run as uid {my_uid} without \
                 CAP_SYS_PTRACE",
                uids.join("/")
            ),
            "run memlock-run --pid as root (sudo), or as the process's own user",
        );
        return;
    }
    if !sys_ptrace && ptrace::yama_scope() == Some(1) {
        report.problem(
            Verdict::Fail,
            "--pid",
            "kernel.yama.ptrace_scope is 1: only a process's ancestors may attach to it without CAP_SYS_PTRACE",
            "run memlock-run --pid as root (sudo), or set kernel.yama.ptrace_scope to 0",
        );
        return;
    }
    if let Some(status) = ptrace::Status::read(raw) {
        let holds = ptrace::holds_ipc_lock(raw);
        let hard = ptrace::limits_of(raw, libc::RLIMIT_MEMLOCK).map(|(_, hard)| hard);
        let allowed = match cli.limit {
            Some(Limit::Unlimited) => u64::MAX,
            Some(Limit::Bytes(bytes)) => bytes,
            None => hard.unwrap_or(libc::RLIM_INFINITY),
        };
        if holds {
            report.add(
                Verdict::Ok,
                "lock",
                format!(
                    "{name} holds CAP_IPC_LOCK: mlockall is not bound by RLIMIT_MEMLOCK; it maps VmSize {}",
                    show(status.vm_size)
                ),
            );
        } else if hard.is_some() && status.vm_size > allowed {
            report.problem(
                Verdict::Fail,
                "lock",
                format!(
                    "mlockall would fail with ENOMEM: {name} maps VmSize {}, above the RLIMIT_MEMLOCK it can get ({})",
                    show(status.vm_size),
                    ptrace::describe_limit(allowed)
                ),
                "give the process CAP_IPC_LOCK when it starts (AmbientCapabilities=CAP_IPC_LOCK, or start it with \
                 memlock-run as root), or raise its hard limit (LimitMEMLOCK= in its unit)",
            );
        } else {
            report.add(
                Verdict::Ok,
                "lock",
                format!(
                    "{name} maps VmSize {}, within the RLIMIT_MEMLOCK it can get",
                    show(status.vm_size)
                ),
            );
        }
    }
}

/// LD_PRELOAD as COMMAND will get it: the user's entries, then the shim.
fn preload_list(shim: &std::path::Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = env::var_os(LD_PRELOAD)
        .map(|value| {
            value
                .as_bytes()
                .split(|&b| b == b':' || b == b' ')
                .filter(|entry| !entry.is_empty())
                .map(|entry| PathBuf::from(OsStr::from_bytes(entry)))
                .collect()
        })
        .unwrap_or_default();
    if !list.iter().any(|p| p == shim) {
        list.push(shim.to_owned());
    }
    list
}

/// A sanitizer runtime the program links dynamically (gcc's default); clang links them
/// statically, which this cannot see.
fn sanitizer(image: &std::path::Path) -> Option<String> {
    let layout = crate::elf::layout(image).ok()??;
    layout
        .needed
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .find(|n| {
            ["libasan.", "libtsan.", "libmsan.", "libhwasan."]
                .iter()
                .any(|p| n.starts_with(p))
        })
}

fn lock_findings(
    report: &mut Report,
    cli: &Cli,
    estimate: &Estimate,
    memlock: Rlimit,
    memlock_after: Option<Rlimit>,
    will_hold: bool,
    no_new_privs: bool,
) {
    let total = estimate.total();
    report.add(
        Verdict::Ok,
        "VmSize at start",
        format!(
            "about {} when mlockall is called (an estimate from the ELF headers, nothing was run: {})",
            show(total),
            estimate.describe()
        ),
    );
    let flags = launch::lock_flags(cli).describe();
    let Some(after) = memlock_after else {
        return;
    };
    if will_hold {
        report.add(
            Verdict::Ok,
            "lock at start",
            format!(
                "mlockall({flags}) is not bound by RLIMIT_MEMLOCK: COMMAND will hold CAP_IPC_LOCK"
            ),
        );
        return;
    }
    let limit = match after.soft {
        Limit::Unlimited => {
            report.add(
                Verdict::Ok,
                "lock at start",
                format!("mlockall({flags}): RLIMIT_MEMLOCK is unlimited"),
            );
            return;
        }
        Limit::Bytes(limit) => limit,
    };
    if limit == 0 {
        // mlockall fails with EPERM before it counts anything; the RLIMIT_MEMLOCK finding
        // already says so, and now its remedy can be sized from the estimate: one FAIL, not two.
        if let Some(finding) = report
            .findings
            .iter_mut()
            .find(|f| f.topic == "RLIMIT_MEMLOCK" && f.verdict == Verdict::Fail)
        {
            finding.remedy = Some(limit_remedy(cli, total, memlock, no_new_privs));
        }
        return;
    }
    if total > limit {
        report.problem(
            Verdict::Fail,
            "lock at start",
            format!(
                "mlockall({flags}) would fail with ENOMEM: VmSize about {} is above RLIMIT_MEMLOCK {} and COMMAND \
                 will not hold CAP_IPC_LOCK",
                show(total),
                show(limit)
            ),
            limit_remedy(cli, total, memlock, no_new_privs),
        );
    } else if total > limit / 4 * 3 {
        report.problem(
            Verdict::Warn,
            "lock at start",
            format!(
                "VmSize about {} is close to RLIMIT_MEMLOCK {}, and the estimate does not see dlopen or early \
                 constructors",
                show(total),
                show(limit)
            ),
            limit_remedy(cli, total, memlock, no_new_privs),
        );
    } else {
        report.add(
            Verdict::Ok,
            "lock at start",
            format!(
                "mlockall({flags}): VmSize about {} is within RLIMIT_MEMLOCK {}",
                show(total),
                show(limit)
            ),
        );
    }
    if cli.future {
        report.problem(
            Verdict::Warn,
            "MCL_FUTURE",
            format!(
                "what COMMAND maps later is locked too and counts against RLIMIT_MEMLOCK {}: past it malloc returns \
                 NULL, thread creation fails with EAGAIN and stack growth is a SIGSEGV",
                show(limit)
            ),
            format!(
                "size RLIMIT_MEMLOCK for COMMAND's peak, not its start (LimitMEMLOCK= in the systemd unit, \
                 ulimit -l, --limit), or {}",
                grant_capability(no_new_privs)
            ),
        );
    }
}

/// Whether the kernel has MCL_ONFAULT (Linux 4.4). mlock2(2) came with it and takes the
/// same flag: mlock2(NULL, 0, MLOCK_ONFAULT) locks nothing, and fails with ENOSYS or
/// EINVAL where the flag is unknown. EPERM (a zero limit without CAP_IPC_LOCK) is decided
/// after the flags are, so it also means the kernel knows the flag.
fn onfault_finding(report: &mut Report, requested: bool) {
    // SAFETY: a zero-length range locks nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mlock2,
            std::ptr::null::<u8>(),
            0usize,
            libc::MLOCK_ONFAULT,
        )
    };
    let errno = std::io::Error::last_os_error();
    let supported = rc == 0 || errno.raw_os_error() == Some(libc::EPERM);
    let how = if rc == 0 {
        "mlock2(NULL, 0, MLOCK_ONFAULT) succeeded".to_owned()
    } else {
        format!("mlock2(NULL, 0, MLOCK_ONFAULT) failed with {errno}")
    };
    match (supported, requested) {
        (true, true) => report.add(
            Verdict::Ok,
            "MCL_ONFAULT",
            format!("supported ({how}); --onfault locks pages as they are first touched"),
        ),
        (true, false) => report.add(
            Verdict::Ok,
            "MCL_ONFAULT",
            format!("supported ({how}); not asked for (--onfault)"),
        ),
        (false, true) => report.problem(
            Verdict::Fail,
            "MCL_ONFAULT",
            format!("not supported ({how}): mlockall would fail with EINVAL"),
            "drop --onfault, or run on Linux 4.4 or later",
        ),
        (false, false) => report.add(
            Verdict::Ok,
            "MCL_ONFAULT",
            format!("not supported ({how}); not asked for"),
        ),
    }
}

/// Whether COMMAND's user can read the shim: ld.so skips a preload it cannot open and runs
/// the program anyway, so the launcher refuses (after a `--user` switch, with access(2)).
/// Without `--user` this asks access(2) as the run will; for another user it reads the
/// permission bits of the shim and every directory above it (ACLs are not consulted).
fn shim_readable_finding(report: &mut Report, shim: &std::path::Path, user: Option<&User>) {
    let denied = match user {
        None => nix::unistd::access(shim, nix::unistd::AccessFlags::R_OK).err(),
        Some(user) => (!readable_by(shim, user)).then_some(nix::errno::Errno::EACCES),
    };
    match denied {
        None => report.add(
            Verdict::Ok,
            "shim access",
            format!(
                "{} can read it",
                user.map_or_else(|| "COMMAND's user".to_owned(), |u| u.name.clone())
            ),
        ),
        Some(errno) => report.problem(
            Verdict::Fail,
            "shim access",
            "COMMAND's user cannot read the shim, so ld.so would skip it",
            launch::shim_unreadable(shim, user, errno),
        ),
    }
}

/// Read permission on `file` and search permission on each directory above it, by the mode
/// bits, for a user who is not root.
fn readable_by(file: &std::path::Path, user: &User) -> bool {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 {
        return true;
    }
    let allows = |path: &std::path::Path, bit: u32| -> bool {
        let Ok(meta) = fs::metadata(path) else {
            return false;
        };
        let mode = meta.mode();
        let shift = if meta.uid() == user.uid {
            6
        } else if meta.gid() == user.gid || user.groups.contains(&meta.gid()) {
            3
        } else {
            0
        };
        mode >> shift & bit != 0
    };
    allows(file, 0o4)
        && file
            .ancestors()
            .skip(1)
            .filter(|dir| !dir.as_os_str().is_empty())
            .all(|dir| allows(dir, 0o1))
}

/// RAM and RLIMIT_AS: the shim refuses a pre-fault larger than RAM or past RLIMIT_AS (the
/// kernel would answer the stack growth with SIGSEGV), and whatever is locked must be
/// resident.
fn memory_finding(report: &mut Report, vm_size: Option<u64>, prefault: u64) {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let (Some(total), Some(available)) =
        (meminfo(&text, "MemTotal"), meminfo(&text, "MemAvailable"))
    else {
        report.add(
            Verdict::Warn,
            "memory",
            "cannot read MemTotal and MemAvailable from /proc/meminfo; mount /proc to check",
        );
        return;
    };
    let address_space = limits::get(Resource::RLIMIT_AS).ok().map(|l| l.soft);
    let facts = format!(
        "MemAvailable {} of MemTotal {}; RLIMIT_AS {}",
        show(available),
        show(total),
        address_space.map_or_else(|| "unreadable".to_owned(), |l| l.to_string())
    );
    if prefault > total {
        report.problem(
            Verdict::Fail,
            "memory",
            format!(
                "{facts}: --prefault {} is more than the machine's RAM",
                show(prefault)
            ),
            "pre-fault less: locked pages must all be resident",
        );
        return;
    }
    if let (Some(Limit::Bytes(limit)), Some(vm_size)) = (address_space, vm_size) {
        if vm_size > limit {
            report.problem(
                Verdict::Fail,
                "memory",
                format!(
                    "{facts}: VmSize at start, about {}, does not fit under RLIMIT_AS",
                    show(vm_size)
                ),
                "raise the address-space limit (ulimit -v, LimitAS= in a systemd unit), or pre-fault less",
            );
            return;
        }
    }
    match vm_size {
        Some(vm_size) if vm_size > available => report.problem(
            Verdict::Warn,
            "memory",
            format!(
                "{facts}: VmSize at start, about {}, is more than is available; populating it for the lock \
                 would push other memory out, or fail",
                show(vm_size)
            ),
            "free memory, or lock a smaller program or pre-fault less",
        ),
        _ => report.add(Verdict::Ok, "memory", facts),
    }
}

/// /proc/meminfo's `Name:   1234 kB`, in bytes.
fn meminfo(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

fn swap_finding(report: &mut Report) {
    let Ok(text) = fs::read_to_string("/proc/meminfo") else {
        report.add(
            Verdict::Warn,
            "swap",
            "cannot read /proc/meminfo; mount /proc to check",
        );
        return;
    };
    let total = meminfo(&text, "SwapTotal").unwrap_or(0);
    let free = meminfo(&text, "SwapFree").unwrap_or(0);
    let devices: Vec<String> = fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    let text = if total == 0 {
        "none configured: pages not locked can still be reclaimed when they are file-backed"
            .to_owned()
    } else {
        format!(
            "{} of {} in use ({}); locked pages are never swapped out, others may be",
            show(total.saturating_sub(free)),
            show(total),
            devices.join(", ")
        )
    };
    report.add(Verdict::Ok, "swap", text);
}

/// The memory cgroup against what COMMAND will lock. The cgroup is charged for COMMAND's
/// anonymous memory, the stack's pre-fault and the `--heap` first of all, and for file pages only when
/// COMMAND is the first to read them (shared libraries usually are in the page cache, charged
/// to whoever read them first). So the stack decides a FAIL, and VmSize only a warning.
fn cgroup_finding(report: &mut Report, vm_size: Option<u64>, prefault: u64, heap: u64) {
    let Some(cgroup) = cgroup::this_process() else {
        report.add(
            Verdict::Ok,
            "memory cgroup",
            "no memory controller mounted: no cgroup limit applies",
        );
        return;
    };
    let name = format!(
        "{} (cgroup v{})",
        if cgroup.path.is_empty() {
            "/"
        } else {
            &cgroup.path
        },
        cgroup.version
    );
    let used = cgroup
        .current
        .map(|c| format!(", {} in use now", show(c)))
        .unwrap_or_default();
    let high = cgroup
        .high
        .as_ref()
        .map(|h| format!("; memory.high {} ({})", show(h.bytes), h.file.display()));
    let Some(max) = &cgroup.max else {
        report.add(
            Verdict::Ok,
            "memory cgroup",
            format!(
                "{name}: no memory limit at any level{used}{}",
                high.unwrap_or_default()
            ),
        );
        return;
    };
    let text = format!(
        "{name}: limit {} ({}){used}{}; locked pages count against it and cannot be reclaimed",
        show(max.bytes),
        max.file.display(),
        high.unwrap_or_default()
    );
    let anonymous = footprint::INITIAL_STACK + prefault + heap;
    let raise = "raise the cgroup's limit (MemoryMax= and MemoryHigh= in the systemd unit, docker run --memory, \
                 the pod's memory limit)";
    if prefault + heap > 0 && anonymous > max.bytes {
        report.problem(
            Verdict::Fail,
            "memory cgroup",
            format!(
                "{text}: the locked stack and heap alone ({} with --prefault and --heap) do not fit, and the \
                 OOM killer would end COMMAND",
                show(anonymous)
            ),
            format!("pre-fault less, or {raise}"),
        );
        return;
    }
    let tightest = match &cgroup.high {
        Some(high) if high.bytes < max.bytes => high.bytes,
        _ => max.bytes,
    };
    match vm_size {
        Some(vm_size) if vm_size > tightest => report.problem(
            Verdict::Warn,
            "memory cgroup",
            format!(
                "{text}: VmSize at start, about {}, is above it; the pages this cgroup is the first to \
                 touch stay charged to it, locked, and may not fit",
                show(vm_size)
            ),
            raise,
        ),
        _ => report.add(Verdict::Ok, "memory cgroup", text),
    }
}

fn render(cli: &Cli, report: &Report) -> String {
    let mut out = String::from("memlock-run --check: nothing was changed or executed\n");
    // Wide enough for the longest topic, `VmSize at start`, so that reports line up.
    let width = 15;
    for finding in &report.findings {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            finding.verdict, finding.topic, finding.text
        ));
    }
    let fails = report
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    let warns = report
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Warn)
        .count();
    let (what, failure) = match (cli.pid, cli.command.is_empty()) {
        (Some(_), _) => (
            "memlock-run --pid would lock the process",
            "would stop memlock-run --pid",
        ),
        (None, true) => (
            "memlock-run can run a program here",
            "would stop the run or leave COMMAND unlocked",
        ),
        (None, false) => (
            "a run would lock COMMAND's memory",
            "would stop the run or leave COMMAND unlocked",
        ),
    };
    out.push_str(&match (fails, warns) {
        (0, 0) => format!("verdict: ok: {what}\n"),
        (0, w) => format!(
            "verdict: ok: {what}, with {w} warning{}\n",
            if w == 1 { "" } else { "s" }
        ),
        (f, _) => format!(
            "verdict: FAIL: {f} problem{} {failure}\n",
            if f == 1 { "" } else { "s" }
        ),
    });
    let mut remedies: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.remedy.is_some() && f.verdict != Verdict::Ok)
        .collect();
    remedies.sort_by_key(|f| std::cmp::Reverse(f.verdict));
    if !remedies.is_empty() {
        out.push_str("to fix:\n");
        let mut given: Vec<&str> = Vec::new();
        for finding in remedies {
            let remedy = finding.remedy.as_deref().unwrap_or_default();
            // A warning whose remedy a problem's already covers adds nothing.
            if given.iter().any(|g| g.contains(remedy)) {
                continue;
            }
            given.push(remedy);
            out.push_str(&format!(
                "  {} {}: {}\n",
                finding.verdict, finding.topic, remedy
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:       16318480 kB\nSwapTotal:       2097148 kB\nSwapFree:  0 kB\n";
        assert_eq!(meminfo(text, "SwapTotal"), Some(2097148 * 1024));
        assert_eq!(meminfo(text, "SwapFree"), Some(0));
        assert_eq!(meminfo(text, "Swap"), None);
    }

    #[test]
    fn verdicts_order_by_severity() {
        assert!(Verdict::Fail > Verdict::Warn && Verdict::Warn > Verdict::Ok);
        assert_eq!(format!("{:<4}|", Verdict::Ok), "ok  |");
    }
}
