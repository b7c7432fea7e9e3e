//! `--check`: say, before anything runs, whether a run would lock memory, and if not why
//! and what to change.
//!
//! Each finding is one line with a verdict word: `ok`, `warn` (the run works, but something
//! is worth knowing) or `FAIL` (the run would be refused, or the lock would fail). The report
//! is a rendering of the plan a run would apply (`crate::plan`): each of its refusals is a
//! FAIL whose remedy is the run's own message, and each decision an `ok` line. What only the
//! kernel decides later (mlockall's ENOMEM or EPERM under RLIMIT_MEMLOCK, EINVAL for
//! MCL_ONFAULT, a sanitizer that swallows mlockall, the cgroup) is predicted here from what
//! the host's facts and the ELF headers say; the mapped size at start is an estimate
//! ([`footprint`]). The same for `--check --pid` and `--pid`'s plan.
//!
//! Nothing is changed and nothing is executed. The words and units are the shim's:
//! `VmSize`, `VmLck`, `RLIMIT_MEMLOCK`, `MCL_...`, sizes as [`memlock_run_protocol::SizeText`]
//! writes them.

pub mod doors;
pub mod footprint;
pub mod growth;
pub mod runtime;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use caps::Capability;

use crate::host::machine::{Machine, Thp};
use crate::host::procfs::describe_limit;
use crate::host::Host;
use crate::plan::environment::LD_PRELOAD;
use crate::plan::method::Method;
use crate::plan::target::Program;
use crate::plan::{self, Gate, Note, PidPlan, Plan, Refusal};
use crate::say::finding::{Finding, Verdict};
use crate::size::{show, Limit, Rlimit};
use footprint::Estimate;

/// The findings, and the plan's refusals and notes not yet shown.
struct Report {
    findings: Vec<Finding>,
    refusals: Vec<Refusal>,
    notes: Vec<Note>,
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
        self.findings
            .push(Finding::problem(verdict, topic, text, remedy));
    }

    /// The plan's refusals of `topic`, as FAILs; whether there were any.
    fn refused(&mut self, topic: &str) -> bool {
        let (these, rest): (Vec<Refusal>, Vec<Refusal>) = std::mem::take(&mut self.refusals)
            .into_iter()
            .partition(|r| r.topic == topic);
        self.refusals = rest;
        self.findings.extend(these.iter().map(Finding::refused));
        !these.is_empty()
    }

    /// The plan's notes of `topic`, taken.
    fn notes(&mut self, topic: &str) -> Vec<String> {
        let (these, rest): (Vec<Note>, Vec<Note>) = std::mem::take(&mut self.notes)
            .into_iter()
            .partition(|n| n.topic == topic);
        self.notes = rest;
        these.into_iter().map(|n| n.text).collect()
    }

    fn worst(&self) -> Verdict {
        self.findings
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Checks a run of `plan` and prints the report; `Ok(true)` when it would succeed.
pub fn run(plan: &Plan, host: &Host) -> Result<bool> {
    let machine = host.machine.clone().unwrap_or_else(Machine::read);
    let report = check(plan, host, &machine);
    let what = if plan.request.command.is_empty() {
        "memlock-run can run a program here"
    } else {
        "a run would lock COMMAND's memory"
    };
    print(
        &report,
        what,
        "would stop the run or leave COMMAND unlocked",
    )
}

/// `--check --pid`: what `--pid` would find.
pub fn run_pid(plan: &PidPlan, host: &Host) -> Result<bool> {
    let machine = host.machine.clone().unwrap_or_else(Machine::read);
    let mut report = Report {
        findings: Vec::new(),
        refusals: plan.refusals.clone(),
        notes: Vec::new(),
    };
    if let Some(process) = &plan.process {
        report.add(
            Verdict::Ok,
            "--pid",
            format!(
                "{} (pid {}): State {}, effective uid {}, Seccomp {}",
                process.name,
                process.pid,
                process.state,
                process
                    .uids
                    .get(1)
                    .map_or_else(|| "?".to_owned(), u32::to_string),
                process.seccomp
            ),
        );
    }
    report.refused("--pid");
    report.refused("--limit");
    if let (Some(process), true) = (&plan.process, report.refusals.is_empty()) {
        let name = &process.name;
        let vm_size = process.vm_size.unwrap_or(0);
        if process.holds_ipc_lock {
            report.add(
                Verdict::Ok,
                "lock",
                format!(
                    "{name} holds CAP_IPC_LOCK: mlockall is not bound by RLIMIT_MEMLOCK; it maps VmSize {}",
                    show(vm_size)
                ),
            );
        } else if plan.allowed().is_some_and(|allowed| vm_size > allowed) {
            report.problem(
                Verdict::Fail,
                "lock",
                format!(
                    "mlockall would fail with ENOMEM: {name} maps VmSize {}, above the RLIMIT_MEMLOCK it can get ({})",
                    show(vm_size),
                    describe_limit(plan.allowed().unwrap_or(u64::MAX))
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
                    show(vm_size)
                ),
            );
        }
    }
    onfault_finding(&mut report, &machine, plan.request.flags.onfault);
    print(
        &report,
        "memlock-run --pid would lock the process",
        "would stop memlock-run --pid",
    )
}

fn print(report: &Report, what: &str, failure: &str) -> Result<bool> {
    // Not print!, which panics (and so aborts) when stdout is closed or full.
    let mut out = std::io::stdout().lock();
    out.write_all(render(report, what, failure).as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the --check report to stdout")?;
    Ok(report.worst() != Verdict::Fail)
}

fn check(plan: &Plan, host: &Host, machine: &Machine) -> Report {
    let mut report = Report {
        findings: Vec::new(),
        refusals: plan.refusals.clone(),
        notes: plan.notes.clone(),
    };
    let request = &plan.request;
    // Who COMMAND runs as; --user passes CAP_IPC_LOCK through the same ambient raise.
    if !report.refused("--user") {
        if let Some(user) = &plan.user {
            report.add(
                Verdict::Ok,
                "--user",
                format!(
                    "COMMAND runs as {}, with CAP_IPC_LOCK alone, in the ambient set",
                    user.describe()
                ),
            );
        }
    }
    if host.has(Capability::CAP_IPC_LOCK) && !host.initial_user_ns {
        report.problem(
            Verdict::Warn,
            "user namespace",
            "memlock-run holds CAP_IPC_LOCK in a user namespace (a rootless container, unshare --user), and mlock(2) \
             honours only the initial namespace's: RLIMIT_MEMLOCK binds COMMAND as if it had no capability",
            "raise RLIMIT_MEMLOCK outside the namespace (the container runtime's --ulimit memlock=, LimitMEMLOCK= of \
             the unit that starts it), or grant CAP_IPC_LOCK in the initial namespace",
        );
    }
    let blocker = plan.ambient_blocker.as_deref();
    let will_hold = plan.holds_ipc_lock && blocker.is_none();
    capability_findings(&mut report, plan, host, blocker);

    // RLIMIT_MEMLOCK as the run would set it.
    let memlock = host.limits.memlock;
    let memlock_notes = report.notes("RLIMIT_MEMLOCK");
    if !report.refused("RLIMIT_MEMLOCK") {
        if let Some(change) = &plan.limits.memlock {
            let mut text = format!("{}, for COMMAND", change.describe());
            for note in &memlock_notes {
                text.push_str("; note: ");
                text.push_str(note);
            }
            if change.after.soft == Limit::Bytes(0) && !will_hold {
                report.problem(
                    Verdict::Fail,
                    "RLIMIT_MEMLOCK",
                    format!(
                        "{text}: mlockall fails with EPERM under a limit of 0 without CAP_IPC_LOCK"
                    ),
                    limit_remedy(plan, host, 1 << 20, memlock),
                );
            } else {
                report.add(Verdict::Ok, "RLIMIT_MEMLOCK", text);
            }
        }
    }
    report.refused("--prefault");
    if !report.refused("RLIMIT_STACK") {
        let stack = host.limits.stack;
        match &plan.limits.stack {
            Some(_) if request.prefault == 0 => report.add(
                Verdict::Ok,
                "RLIMIT_STACK",
                format!("{stack}; no --prefault, so memlock-run leaves it as it is"),
            ),
            Some(change) => report.add(
                Verdict::Ok,
                "RLIMIT_STACK",
                format!(
                    "{}, for COMMAND: room for --prefault {} and the stack in use at start",
                    change.describe(),
                    show(request.prefault)
                ),
            ),
            None => {}
        }
    }
    report.refused("--thread-stack");
    for note in report.notes("thread stacks") {
        report.problem(
            Verdict::Warn,
            "thread stacks",
            note,
            "run a dynamically linked glibc build of the program (the shim gives threads their old default back), \
             or give COMMAND's threads a stack size of their own",
        );
    }
    onfault_finding(&mut report, machine, request.flags.onfault);
    if plan.config.huge {
        let wanted = plan.config.prefault.saturating_add(plan.config.heap);
        report
            .findings
            .push(huge_finding(machine.thp.as_ref(), wanted));
    }
    swap_use_finding(&mut report, machine);
    // The doors besides swap that secrets leave by, and what --no-dump closes of them.
    let as_root = plan.creds.uid == 0;
    report.findings.extend(doors::findings(
        host,
        machine,
        request.no_dump,
        request.flags.future,
        as_root,
    ));

    // The shim, the program, and what it will map.
    if !report.refused("shim") {
        if let Some(shim) = &plan.shim {
            report.add(
                Verdict::Ok,
                "shim",
                format!("{} ({})", shim.path.display(), shim.elf.describe()),
            );
        }
    }
    if !report.refused("shim access") && plan.shim_in_env && plan.shim.is_some() {
        report.add(
            Verdict::Ok,
            "shim access",
            format!(
                "{} can read it",
                plan.user
                    .as_ref()
                    .map_or_else(|| "COMMAND's user".to_owned(), |u| u.name.clone())
            ),
        );
    }
    let estimate = command_findings(&mut report, plan, host, will_hold);
    if let Some(estimate) = &estimate {
        lock_findings(&mut report, plan, host, estimate, will_hold);
    }
    // Runtime classes that break the limit or the lock.
    if let (Some(target), Some(_)) = (&plan.target, &estimate) {
        let path = std::fs::canonicalize(&target.path).unwrap_or_else(|_| target.path.clone());
        let memlock_after = plan::memlock_after(plan);
        let class = runtime::Runtime::of(&path);
        let found = runtime::findings(request, &class, memlock_after, will_hold);
        report.findings.extend(found);
        // What the limit leaves for the program's life after the lock at start.
        if let (Some(Limit::Bytes(limit)), false, Some(estimate)) =
            (memlock_after.map(|l| l.soft), will_hold, &estimate)
        {
            let growth = growth::Growth {
                limit,
                at_start: estimate.total(),
                stack_at_start: estimate.stack,
                stack_limit: plan
                    .limits
                    .stack
                    .map_or(host.limits.stack, |c| c.after)
                    .soft,
                future: request.flags.future,
                threads: class.threads,
                whole_stack: class.whole_stack,
                thread_stack: match plan.config.thread_stack {
                    0 => runtime::default_thread_stack(host.limits.stack),
                    given => given,
                },
                thread_stack_given: request.thread_stack.is_some(),
            };
            let remedy = |needed| limit_remedy(plan, host, needed, host.limits.memlock);
            report.findings.extend(growth::findings(&growth, &remedy));
        }
    }
    memory_finding(
        &mut report,
        host,
        machine,
        estimate.as_ref().map(Estimate::total),
        request.prefault,
    );
    cgroup_finding(
        &mut report,
        machine,
        estimate.as_ref().map(Estimate::total),
        request.prefault,
        request.heap.unwrap_or(0),
    );
    // Whatever the plan refused or noted that has no place above: never left unsaid.
    for refusal in std::mem::take(&mut report.refusals) {
        report.findings.push(Finding::refused(&refusal));
    }
    for note in std::mem::take(&mut report.notes) {
        report.add(Verdict::Warn, note.topic, note.text);
    }
    report
}

fn capability_findings(report: &mut Report, plan: &Plan, host: &Host, blocker: Option<&str>) {
    let sets = plan::describe_caps(host);
    let no_new_privs = host.no_new_privs;
    if !report.refused("CAP_IPC_LOCK") {
        match (plan.holds_ipc_lock, blocker) {
            (true, None) => report.add(
                Verdict::Ok,
                "CAP_IPC_LOCK",
                format!(
                    "{sets}: memlock-run passes it to COMMAND in the ambient set, so RLIMIT_MEMLOCK does not bind \
                     COMMAND's mlockall"
                ),
            ),
            // A blocker the run does not meet: it raises nothing.
            (true, Some(_)) => {}
            (false, _) if !host.caps.bounding.contains(&Capability::CAP_IPC_LOCK) => report.problem(
                Verdict::Warn,
                "CAP_IPC_LOCK",
                format!(
                    "{sets}: outside the bounding set, so nothing in this process tree can gain it; COMMAND's \
                     mlockall is bound by RLIMIT_MEMLOCK"
                ),
                "start the container with CAP_IPC_LOCK (docker or podman run --cap-add IPC_LOCK, a Kubernetes \
                 securityContext capabilities.add: [IPC_LOCK]) or keep it in the unit's CapabilityBoundingSet=; \
                 otherwise RLIMIT_MEMLOCK must cover everything COMMAND locks",
            ),
            (false, _) => report.problem(
                Verdict::Warn,
                "CAP_IPC_LOCK",
                format!("{sets}: not held, so COMMAND's mlockall is bound by RLIMIT_MEMLOCK"),
                grant_capability(host, no_new_privs),
            ),
        }
    }
    for note in report.notes("CAP_IPC_LOCK") {
        report.add(Verdict::Warn, "CAP_IPC_LOCK", note);
    }
    let ambient = match blocker {
        None => format!(
            "can be raised (securebits {:#x}, SECBIT_NO_CAP_AMBIENT_RAISE clear)",
            host.securebits.unwrap_or(0)
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
        if no_new_privs {
            "set: a file capability (setcap) gives a program only what its caller already holds in the permitted \
             set (the kernel keeps those, which is how Kubernetes' allowPrivilegeEscalation: false still lets a \
             pod's added capabilities work); ambient capabilities still pass"
        } else {
            "not set here (an inheriting run without CAP_SYS_ADMIN sets it, for its exec gate: see that finding)"
        },
    );
}

/// The ways to give COMMAND CAP_IPC_LOCK through memlock-run.
fn grant_capability(host: &Host, no_new_privs: bool) -> String {
    let exe = host.exe.as_ref().map_or_else(
        || "memlock-run".to_owned(),
        |e| e.path.display().to_string(),
    );
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
fn limit_remedy(plan: &Plan, host: &Host, needed: u64, now: Rlimit) -> String {
    // Whole MiB, with a quarter more for what the estimate cannot see.
    let mib = (needed + needed / 4).div_ceil(1 << 20).max(1);
    let wanted = Limit::Bytes(mib << 20);
    let raise = if wanted <= now.hard {
        if plan.request.limit.is_some() {
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
    format!("{raise}; or {}", grant_capability(host, host.no_new_privs))
}

/// The program: what it is, whether the preload reaches it, and what it maps.
fn command_findings(
    report: &mut Report,
    plan: &Plan,
    host: &Host,
    will_hold: bool,
) -> Option<Estimate> {
    let request = &plan.request;
    if request.command.is_empty() {
        report.add(
            Verdict::Ok,
            "COMMAND",
            "none given; add -- COMMAND [ARGS...] to check a program and what it maps",
        );
        return None;
    }
    if report.refused("COMMAND") {
        return None;
    }
    let target = plan.target.as_ref()?;
    report.add(
        Verdict::Ok,
        "COMMAND",
        format!("{}: {}", target.path.display(), target.describe()),
    );
    if let Some(choice) = &plan.choice {
        report.add(Verdict::Ok, "method", choice.describe());
    }
    let refused =
        report.refused("method") | report.refused("LD_PRELOAD") | report.refused("preload");
    let choice = plan.choice.as_ref()?;
    if refused {
        return None;
    }
    if choice.method == Method::Ptrace {
        return ptrace_findings(report, plan, host, will_hold);
    }
    let (image, info) = target.image();
    let preload = preload_list(plan);
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
    inherit_findings(report, plan, false);
    address_limit_finding(report, plan, host);
    let loader = info.interpreter.clone()?;
    let heap = request.heap.unwrap_or(0);
    let ld_library_path = plan.var("LD_LIBRARY_PATH");
    match footprint::estimate(
        image,
        &loader,
        &preload,
        ld_library_path,
        request.prefault,
        heap,
    ) {
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

/// What happens to the programs COMMAND executes, and the gate that judges them.
fn inherit_findings(report: &mut Report, plan: &Plan, static_command: bool) {
    let inherit = super::inherit(plan);
    if inherit.warn {
        report.problem(
            Verdict::Warn,
            "inherit",
            inherit.text,
            "if COMMAND executes programs that must be locked, start those with memlock-run too; pass \
             --no-inherit to say that COMMAND alone is meant",
        );
    } else {
        report.add(Verdict::Ok, "inherit", inherit.text);
    }
    if plan.config.inherit {
        gate_finding(report, plan, static_command);
    }
}

/// The exec gate of an inheriting run: how it is armed, or why the run is refused without it.
/// `static_command`: COMMAND makes the execve system call itself, for every program it runs.
fn gate_finding(report: &mut Report, plan: &Plan, static_command: bool) {
    // Its note under --on-failure warn is the gate's own line below.
    report.notes("exec gate");
    if report.refused("exec gate") {
        return;
    }
    let Some(text) = super::gate_text(plan) else {
        return;
    };
    match &plan.gate {
        Gate::Off => report.problem(
            Verdict::Warn,
            "exec gate",
            text,
            "drop --no-exec-gate where the kernel allows one (Linux 5.5), unless a program of the tree must make \
             an SELinux or AppArmor transition",
        ),
        Gate::Missing { .. } => report.problem(
            Verdict::Warn,
            "exec gate",
            text,
            "pass --no-exec-gate to say so, or --no-inherit if COMMAND alone must be locked",
        ),
        Gate::Armed {
            unreadable: true, ..
        } if static_command => report.problem(
            Verdict::Warn,
            "exec gate",
            text,
            "COMMAND is static and makes every exec with the system call itself, so each would be refused: if it \
             executes programs, start the run as root (sudo memlock-run --user NAME ...), or pass --no-inherit if \
             COMMAND alone must be locked",
        ),
        _ => report.add(Verdict::Ok, "exec gate", text),
    }
}

/// The preload method under a finite soft RLIMIT_AS: ld.so ignores a preload it cannot map, so
/// a run checks with the ptrace helper that the shim is loaded, and needs ptrace. Whether the
/// program fits under the limit at all is the memory finding's.
fn address_limit_finding(report: &mut Report, plan: &Plan, host: &Host) {
    let Limit::Bytes(limit) = host.limits.address_space.soft else {
        return;
    };
    if report.refused("RLIMIT_AS") {
        return;
    }
    // Under --on-failure warn, without the check that ptrace cannot make here.
    let unchecked = report.notes("RLIMIT_AS");
    if let Some(note) = unchecked.into_iter().next() {
        return report.problem(
            Verdict::Warn,
            "RLIMIT_AS",
            note,
            "lift RLIMIT_AS (ulimit -v unlimited, LimitAS=infinity in a systemd unit): without it the preload \
             needs no ptrace",
        );
    }
    report.add(
        Verdict::Ok,
        "RLIMIT_AS",
        format!(
            "{}: ld.so skips a preload it cannot map and runs the program anyway, so a helper checks with ptrace, at \
             COMMAND's entry point, that the shim is loaded",
            show(limit)
        ),
    );
    if plan.preload_check.is_some() {
        ptrace_permission_finding(report, host);
    }
}

/// The ptrace method: whether memlock-run may trace here, what is inherited, and what the
/// image maps at its entry point.
fn ptrace_findings(
    report: &mut Report,
    plan: &Plan,
    host: &Host,
    will_hold: bool,
) -> Option<Estimate> {
    let request = &plan.request;
    if !report.refused("ptrace") {
        ptrace_permission_finding(report, host);
    }
    let target = plan.target.as_ref()?;
    let (image, info) = target.image();
    inherit_findings(report, plan, info.interpreter.is_none());
    if crate::elf::is_go(image) && request.flags.future {
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
                    grant_capability(host, false)
                ),
            );
        }
    }
    // At the entry point ld.so has mapped the libraries; another loader searches its own way,
    // so libraries not found by glibc's rules are left out rather than reported missing.
    let estimate = match &info.interpreter {
        None => footprint::estimate_static(image, request.prefault),
        Some(loader) => {
            let ld_library_path = plan.var("LD_LIBRARY_PATH");
            footprint::estimate(image, loader, &[], ld_library_path, request.prefault, 0).map(
                |mut estimate| {
                    estimate.missing.clear();
                    estimate
                },
            )
        }
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

/// Whether the ptrace helper may attach, beyond the plan's own refusals (a tracer, PID 1,
/// Yama): a seccomp filter cannot be read, and is named when there is one.
fn ptrace_permission_finding(report: &mut Report, host: &Host) {
    let yama = match host.yama {
        Some(n) => format!("kernel.yama.ptrace_scope {n}"),
        None => "no Yama".to_owned(),
    };
    if host.seccomp.mode == 2 && !host.seccomp.only_gate {
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
                if host.seccomp.mode == 2 {
                    " but an outer run's exec gate (execve and execveat alone)"
                } else {
                    ""
                }
            ),
        );
    }
}

/// LD_PRELOAD as COMMAND will get it: the user's entries, then the shim.
fn preload_list(plan: &Plan) -> Vec<PathBuf> {
    plan.var(LD_PRELOAD)
        .map(|value| {
            value
                .as_bytes()
                .split(|&b| b == b':' || b == b' ')
                .filter(|entry| !entry.is_empty())
                .map(|entry| PathBuf::from(OsStr::from_bytes(entry)))
                .collect()
        })
        .unwrap_or_default()
}

/// A sanitizer runtime the program links dynamically (gcc's default); clang links them
/// statically, which this cannot see.
fn sanitizer(image: &Path) -> Option<String> {
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
    plan: &Plan,
    host: &Host,
    estimate: &Estimate,
    will_hold: bool,
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
    let flags = plan.request.flags.describe();
    let Some(after) = plan::memlock_after(plan) else {
        return;
    };
    let memlock = host.limits.memlock;
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
        let remedy = limit_remedy(plan, host, total, memlock);
        if let Some(finding) = report
            .findings
            .iter_mut()
            .find(|f| f.topic == "RLIMIT_MEMLOCK" && f.verdict == Verdict::Fail)
        {
            finding.remedy = Some(remedy);
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
            limit_remedy(plan, host, total, memlock),
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
            limit_remedy(plan, host, total, memlock),
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
}

/// Whether the kernel has MCL_ONFAULT (Linux 4.4), from the host's probe.
fn onfault_finding(report: &mut Report, machine: &Machine, requested: bool) {
    let (supported, how) = match machine.onfault {
        Ok(()) => (true, "mlock2(NULL, 0, MLOCK_ONFAULT) succeeded".to_owned()),
        // EPERM (a zero limit without CAP_IPC_LOCK) is decided after the flags are.
        Err(errno) => (
            errno == libc::EPERM,
            format!(
                "mlock2(NULL, 0, MLOCK_ONFAULT) failed with {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        ),
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

/// `--huge`: whether the kernel backs the pre-faulted ranges (`wanted` bytes) with huge pages,
/// and whether finding them can stall the start (compaction at the fault).
fn huge_finding(thp: Option<&Thp>, wanted: u64) -> Finding {
    const TOPIC: &str = "huge pages";
    let ok = |text: String| Finding {
        verdict: Verdict::Ok,
        topic: TOPIC,
        text,
        remedy: None,
    };
    let Some(thp) = thp else {
        return Finding::problem(
            Verdict::Warn,
            TOPIC,
            "this kernel has no transparent huge pages (no /sys/kernel/mm/transparent_hugepage/enabled): --huge has \
             no effect, and the shim says so; the memory is locked in 4 KiB pages",
            "drop --huge",
        );
    };
    let modes = format!(
        "transparent huge pages `{}`, defrag `{}`",
        thp.enabled, thp.defrag
    );
    if thp.enabled == "never" {
        return Finding::problem(
            Verdict::Warn,
            TOPIC,
            format!("{modes}: MADV_HUGEPAGE is ignored and --huge has no effect; the memory is locked in 4 KiB pages"),
            "as root: echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; or drop --huge",
        );
    }
    let compacts = matches!(thp.defrag.as_str(), "always" | "madvise" | "defer+madvise");
    let short = |free: u64| {
        format!(
            "{modes}: only {} of free memory is in blocks of 2 MiB or more, less than the {} --huge pre-faults",
            show(free),
            show(wanted)
        )
    };
    match thp.free_huge {
        Some(free) if free >= wanted => ok(format!(
            "{modes}: the {} --huge pre-faults fit in the {} of free memory in blocks of 2 MiB or more",
            show(wanted),
            show(free)
        )),
        Some(free) if compacts => Finding::problem(
            Verdict::Warn,
            TOPIC,
            format!(
                "{}, so the kernel compacts memory (moves pages) at the fault for the rest: a stall at start, \
                 before COMMAND's code runs, and at stack growth past --prefault later",
                short(free)
            ),
            "compact memory before the start (as root: echo 1 > /proc/sys/vm/compact_memory), or accept the stall",
        ),
        Some(free) => Finding::problem(
            Verdict::Warn,
            TOPIC,
            format!(
                "{}, and this defrag mode does not compact at the fault: the rest is locked in 4 KiB pages",
                short(free)
            ),
            "compact memory before the start (as root: echo 1 > /proc/sys/vm/compact_memory), or set defrag to \
             madvise",
        ),
        None => ok(format!(
            "{modes}; how much free memory is in 2 MiB blocks is unknown (/proc/buddyinfo unreadable)"
        )),
    }
}

/// RAM and RLIMIT_AS: the shim refuses a pre-fault larger than RAM or past RLIMIT_AS (the
/// kernel would answer the stack growth with SIGSEGV), and whatever is locked must be
/// resident.
fn memory_finding(
    report: &mut Report,
    host: &Host,
    machine: &Machine,
    vm_size: Option<u64>,
    prefault: u64,
) {
    let Some(meminfo) = meminfo(report, machine, "memory") else {
        return;
    };
    let (total, available) = (meminfo.total, meminfo.available);
    let address_space = host.limits.address_space.soft;
    let facts = format!(
        "MemAvailable {} of MemTotal {}; RLIMIT_AS {address_space}",
        show(available),
        show(total),
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
    if let (Limit::Bytes(limit), Some(vm_size)) = (address_space, vm_size) {
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

/// /proc/meminfo, or a warning under `topic` that it cannot be read.
fn meminfo(
    report: &mut Report,
    machine: &Machine,
    topic: &'static str,
) -> Option<crate::host::machine::Meminfo> {
    if machine.meminfo.is_none() {
        report.add(
            Verdict::Warn,
            topic,
            "cannot read MemTotal and MemAvailable from /proc/meminfo; mount /proc to check",
        );
    }
    machine.meminfo
}

fn swap_use_finding(report: &mut Report, machine: &Machine) {
    let Some(meminfo) = meminfo(report, machine, "swap") else {
        return;
    };
    let (total, free) = (meminfo.swap_total, meminfo.swap_free);
    let text = if total == 0 {
        "none configured: pages not locked can still be reclaimed when they are file-backed"
            .to_owned()
    } else {
        format!(
            "{} of {} in use ({}); locked pages are never swapped out, others may be",
            show(total.saturating_sub(free)),
            show(total),
            machine
                .swaps
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    report.add(Verdict::Ok, "swap", text);
}

/// The memory cgroup against what COMMAND will lock. The cgroup is charged for COMMAND's
/// anonymous memory, the stack's pre-fault and the `--heap` first of all, and for file pages only when
/// COMMAND is the first to read them (shared libraries usually are in the page cache, charged
/// to whoever read them first). So the stack decides a FAIL, and VmSize only a warning.
fn cgroup_finding(
    report: &mut Report,
    machine: &Machine,
    vm_size: Option<u64>,
    prefault: u64,
    heap: u64,
) {
    let Some(cgroup) = &machine.cgroup else {
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

fn render(report: &Report, what: &str, failure: &str) -> String {
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

    const MIB: u64 = 1 << 20;

    fn thp(enabled: &str, defrag: &str, free_huge: Option<u64>) -> Thp {
        Thp {
            enabled: enabled.into(),
            defrag: defrag.into(),
            free_huge,
        }
    }

    #[test]
    fn huge_pages_findings_follow_the_modes_and_the_free_blocks() {
        // (THP, what --huge pre-faults) -> verdict, words the text has, words the remedy has.
        let rows: [(Option<Thp>, u64, Verdict, &str, &str); 7] = [
            (
                None,
                MIB,
                Verdict::Warn,
                "no transparent huge pages",
                "drop --huge",
            ),
            (
                Some(thp("never", "madvise", Some(1 << 40))),
                MIB,
                Verdict::Warn,
                "`never`, defrag `madvise`: MADV_HUGEPAGE is ignored",
                "echo madvise >",
            ),
            (
                Some(thp("madvise", "madvise", Some(64 * MIB))),
                64 * MIB,
                Verdict::Ok,
                "the 64 MiB --huge pre-faults fit in the 64 MiB of free memory",
                "",
            ),
            (
                Some(thp("always", "madvise", Some(64 * MIB - 1))),
                64 * MIB,
                Verdict::Warn,
                "less than the 64 MiB --huge pre-faults, so the kernel compacts memory",
                "compact memory before the start",
            ),
            (
                Some(thp("madvise", "defer+madvise", Some(0))),
                MIB,
                Verdict::Warn,
                "so the kernel compacts memory",
                "or accept the stall",
            ),
            (
                Some(thp("madvise", "defer", Some(2 * MIB))),
                4 * MIB,
                Verdict::Warn,
                "does not compact at the fault: the rest is locked in 4 KiB pages",
                "or set defrag to madvise",
            ),
            (
                Some(thp("madvise", "madvise", None)),
                MIB,
                Verdict::Ok,
                "transparent huge pages `madvise`, defrag `madvise`; how much free memory",
                "",
            ),
        ];
        for (thp, wanted, verdict, text, remedy) in rows {
            let finding = huge_finding(thp.as_ref(), wanted);
            let what = format!("{thp:?}, {wanted}: {finding:?}");
            assert_eq!(finding.verdict, verdict, "{what}");
            assert_eq!(finding.topic, "huge pages", "{what}");
            assert!(finding.text.contains(text), "{what}");
            match finding.remedy {
                Some(r) => assert!(!remedy.is_empty() && r.contains(remedy), "{what}"),
                None => assert!(remedy.is_empty(), "{what}"),
            }
        }
    }
}
