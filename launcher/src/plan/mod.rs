//! Deciding: everything a run would do, computed from what was asked ([`Request`]) and what
//! the host is ([`Host`]), before anything changes.
//!
//! [`Plan::build`] applies the rules in the order a run meets them and never stops at a
//! refusal: each is recorded ([`Refusal`]: topic, message, exit status), so that a run stops
//! at the first (`plan.refusal()?`, then `crate::apply`), `--dry-run` renders the plan
//! (`crate::say::dry_run`) and `--check` lists every refusal and finding
//! (`crate::say::check`), from the same code. `--pid` has a plan of its own ([`pid`]).
//!
//! Nothing here changes the process. What is read beyond the [`Host`] is read because a rule
//! needs it: the program's file ([`target`]), the user database (`--user`), the
//! shim's permission bits for another user.

pub mod binfmt;
pub mod environment;
pub mod envline;
pub mod gate;
pub mod limits;
pub mod method;
pub mod pid;
pub mod request;
pub mod target;
pub mod user;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use caps::Capability;
use memlock_run_protocol::{Config, Fork, OnFailure, FAILURE_EXIT_STATUS};

pub use gate::{Arming, Gate};
pub use pid::PidPlan;
pub use request::{PidRequest, Request, Wanted};

use crate::host::{Host, Shim};
use crate::size::{show, Limit, Rlimit};
use limits::Change;
use method::{Choice, Method};
use target::{Credentials, Target};
use user::User;

/// Why a run would not go ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What it is about, as `--check` names its findings: `RLIMIT_MEMLOCK`, `method`...
    pub topic: &'static str,
    /// A few words, for `--check`'s finding.
    pub summary: String,
    /// The whole message: what happened, why, and what to do. The run's error line.
    pub message: String,
    /// The run's exit status: 125, or 126 and 127 where COMMAND cannot be executed at all.
    pub status: u8,
}

impl Refusal {
    fn new(topic: &'static str, summary: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            topic,
            summary: summary.into(),
            message: message.into(),
            status: FAILURE_EXIT_STATUS,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Something the user should know that does not stop the run: printed by a run, listed by
/// `--dry-run` and `--check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub topic: &'static str,
    pub text: String,
}

/// The limits COMMAND gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// None where memlock-run would refuse the limit asked for.
    pub memlock: Option<Change>,
    pub stack: Option<Change>,
    /// The default thread stack size the shim gives back, where raising RLIMIT_STACK for the
    /// pre-fault would otherwise enlarge every thread's stack (glibc sizes them from it).
    pub thread_stack: Option<u64>,
}

/// At the entry point of a preloaded COMMAND, a ptrace helper checks that ld.so loaded the
/// shim: under a finite RLIMIT_AS, ld.so skips a preload it cannot map and runs the program
/// anyway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreloadCheck {
    pub shim: PathBuf,
    /// Device and inode of the shim, as /proc/PID/maps shows them.
    pub shim_id: (u64, u64),
    /// `RLIMIT_AS 64 MiB`, for the message.
    pub limit: String,
}

/// Everything a run would do, decided.
#[derive(Debug)]
pub struct Plan {
    pub request: Request,
    pub shim: Option<Shim>,
    /// `--user`, resolved.
    pub user: Option<User>,
    /// Who COMMAND runs as.
    pub creds: Credentials,
    pub target: Option<Target>,
    pub choice: Option<Choice>,
    /// COMMAND's environment carries the shim (for itself, or for what it executes).
    pub shim_in_env: bool,
    /// COMMAND gets CAP_IPC_LOCK through the ambient set.
    pub holds_ipc_lock: bool,
    /// Why CAP_IPC_LOCK could not be raised in the ambient set here, whether or not this run
    /// raises it (a refusal where it does).
    pub ambient_blocker: Option<String>,
    /// The shim's settings (protocol::Config), which the environment and the gate carry.
    pub config: Config,
    pub limits: Limits,
    /// COMMAND's environment.
    pub env: Vec<(OsString, OsString)>,
    pub gate: Gate,
    pub preload_check: Option<PreloadCheck>,
    /// The shim names the process after the path (protocol::COMM): the preload method
    /// executes the judged file by its descriptor.
    pub renamed_by_shim: bool,
    pub notes: Vec<Note>,
    /// In the order a run meets them; the first stops it.
    pub refusals: Vec<Refusal>,
}

impl Plan {
    /// Applies the rules to `request` on `host`.
    pub fn build(request: Request, host: &Host) -> Plan {
        let mut refusals = Vec::new();
        let mut notes = Vec::new();
        let shim = match &host.shim {
            Ok(shim) => match shim.untrusted.as_ref().filter(|_| host.elevated()) {
                Some(why) => {
                    refusals.push(untrusted_shim(shim, why));
                    None
                }
                None => Some(shim.clone()),
            },
            Err(why) => {
                refusals.push(Refusal::new(
                    "shim",
                    "memlock-run cannot use its preload shim",
                    why.clone(),
                ));
                None
            }
        };
        let user = match resolve_user(&request, host) {
            Ok(user) => user,
            Err(refusal) => {
                refusals.push(refusal);
                None
            }
        };
        // The gate's arming decides no_new_privs for COMMAND's exec, which decides whether its
        // set-ID bits count.
        let gate = Gate::plan(&request, host, user.is_some());
        let creds = credentials(user.as_ref(), host, &gate);
        let path_var = host.var("PATH").cloned();
        let target = match (request.command.first(), &shim) {
            (Some(command), Some(shim)) => {
                match target::resolve(command, path_var.as_deref())
                    .and_then(|path| target::inspect(&path, &shim.elf, creds, path_var.as_deref()))
                {
                    Ok(target) => Some(target),
                    Err(err) => {
                        refusals.push(command_refusal(command, &err));
                        None
                    }
                }
            }
            _ => None,
        };
        let mut choice = None;
        if let Some(bit) = target
            .as_ref()
            .filter(|_| !host.no_new_privs)
            .and_then(|t| t.set_id_voided(creds))
        {
            notes.push(Note {
                topic: "set-ID",
                text: format!(
                    "COMMAND is {bit}, and the no_new_privs this run sets to arm its exec gate (memlock-run has no \
                     CAP_SYS_ADMIN) makes the kernel ignore the bit: COMMAND runs as you, locked, without the \
                     privilege the bit would give it; to run it with that privilege, start the run as root (a \
                     set-user-ID root program run by root is locked as any other)"
                ),
            });
        }
        if let Some(target) = &target {
            match method::choose(request.method, target) {
                Ok(chosen) => {
                    if let Some(why) = method::option_conflict(&request, &chosen, target) {
                        refusals.push(Refusal::new(
                            "method",
                            "an option needs the preload shim",
                            why,
                        ));
                    }
                    choice = Some(chosen);
                }
                Err(no) => refusals.push(Refusal::new("method", no.summary, no.message)),
            }
            if let Some(why) = no_inherit_conflict(&request, target) {
                refusals.push(Refusal::new(
                    "preload",
                    "--no-inherit would leave the lock with env",
                    why,
                ));
            }
        }
        let method = choice.as_ref().map(|c| c.method);
        let shim_in_env = match (method, &target) {
            (Some(Method::Ptrace), Some(target)) => {
                request.inherit && target.image().1.interpreter.is_none()
            }
            _ => true,
        };
        if let Some(why) = audit_library(host, shim_in_env) {
            if request.on_failure == OnFailure::Warn {
                notes.push(Note {
                    topic: "LD_AUDIT",
                    text: format!("{why}; going on unchecked (--on-failure warn)"),
                });
            } else {
                let command = request
                    .command
                    .first()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                refusals.push(Refusal::new(
                    "LD_AUDIT",
                    "an audit library may keep the shim out",
                    format!(
                        "refusing to run {}: {why}; unset LD_AUDIT for the run (env -u LD_AUDIT memlock-run ...), \
                         or pass --on-failure warn to run with it unchecked",
                        command.display()
                    ),
                ));
            }
        }
        if let Some(why) = preloaded_c_library(&request, host, shim_in_env) {
            refusals.push(Refusal::new(
                "LD_PRELOAD",
                "a C library is preloaded before the shim",
                why,
            ));
        }

        // The limits, as a run would set them.
        let holds_ipc_lock = host.lock_exempt();
        let ask = limits_ask(&request, host);
        let mut limits = Limits::default();
        let mut memlock_notes = Vec::new();
        match limits::memlock(&ask, host.limits.memlock, &mut memlock_notes) {
            Ok(after) => {
                limits.memlock = Some(Change {
                    before: host.limits.memlock,
                    after,
                });
                if let Err(why) = limits::prefault_fits(&ask, after) {
                    refusals.push(Refusal::new(
                        "--prefault",
                        "the pre-faulted stack alone passes RLIMIT_MEMLOCK",
                        why,
                    ));
                }
            }
            Err(why) => refusals.push(Refusal::new(
                "RLIMIT_MEMLOCK",
                format!("{}: memlock-run would refuse --limit", host.limits.memlock),
                why,
            )),
        }
        notes.extend(memlock_notes.into_iter().map(|text| Note {
            topic: "RLIMIT_MEMLOCK",
            text,
        }));
        match limits::stack(&ask, host.limits.stack) {
            Ok((after, thread_stack)) => {
                limits.stack = Some(Change {
                    before: host.limits.stack,
                    after,
                });
                limits.thread_stack = thread_stack;
            }
            Err(why) => refusals.push(Refusal::new(
                "RLIMIT_STACK",
                format!(
                    "{}: too small for --prefault {}",
                    host.limits.stack,
                    show(request.prefault)
                ),
                why,
            )),
        }
        if let (Some(Method::Ptrace), Some(before), Some(stack)) =
            (method, limits.thread_stack, &limits.stack)
        {
            // The shim would give threads back their old default; from outside that cannot be done.
            notes.push(Note {
                topic: "thread stacks",
                text: format!(
                    "--prefault raises the soft RLIMIT_STACK to {}, and glibc takes its default thread stack size \
                     from it (it was {}), which only the preload shim can set back: threads a glibc COMMAND creates \
                     without a size of their own get the larger stack, locked in full under --future (musl and Go \
                     size their threads themselves)",
                    stack.after.soft,
                    show(before)
                ),
            });
        }
        if let Some(size) = request.thread_stack {
            if let Some(why) = thread_stack_refusal(size) {
                refusals.push(Refusal::new(
                    "--thread-stack",
                    format!("{} is too small for glibc", show(size)),
                    why,
                ));
            }
        }

        // The shim's settings and COMMAND's environment.
        // A user's own LD_BIND_NOW is theirs: --no-inherit removes only one memlock-run set.
        let sets_bind_now =
            request.bind_now && host.var(LD_BIND_NOW).map_or(true, |v| v.is_empty());
        let musl = target.as_ref().is_some_and(Target::is_musl);
        let config = Config {
            flags: request.flags,
            prefault: request.prefault,
            heap: request.heap.unwrap_or(0),
            huge: request.huge,
            // musl sizes thread stacks itself, not from RLIMIT_STACK: nothing to give back there.
            thread_stack: request
                .thread_stack
                .or(limits.thread_stack.filter(|_| !musl))
                .unwrap_or(0),
            fork: request.fork.unwrap_or(Fork::Relock),
            bind_now: sets_bind_now,
            on_failure: request.on_failure,
            verbose: request.verbose,
            inherit: request.inherit,
            no_dump: request.no_dump,
            exec_gate: request.exec_gate,
        };
        let mut overrides: Vec<(&str, String)> = user.iter().flat_map(User::environment).collect();
        if sets_bind_now {
            overrides.push((LD_BIND_NOW, "1".to_owned()));
        }
        if shim_in_env && config.inherit {
            // Where the shim sends a program the preload cannot reach (protocol::LAUNCHER).
            if let Some(own) = host.exe.as_ref().and_then(|e| e.path.to_str()) {
                overrides.push((memlock_run_protocol::LAUNCHER, own.to_owned()));
            }
        }
        let inherited = host.env.clone();
        // Where the shim does not run in COMMAND (the ptrace method), it is not there to take
        // `-v` out of the environment for what COMMAND executes: the environment says what
        // they get, and the helper reports for COMMAND.
        let carried = if method == Some(Method::Preload) {
            config
        } else {
            config.executed()
        };
        let mut env = match (&shim, shim_in_env) {
            (Some(shim), true) => {
                environment::environment(inherited, &shim.path, &carried, &overrides)
            }
            _ => environment::without_shim(inherited, &overrides),
        };
        // The preload method executes the judged file on any kernel: the shim names the process.
        let renamed_by_shim = method == Some(Method::Preload)
            && target
                .as_ref()
                .is_some_and(|t| matches!(t.program, target::Program::Elf(_)));
        if let (true, Some(target)) = (renamed_by_shim, &target) {
            env.push((
                memlock_run_protocol::COMM.into(),
                environment::comm_for(&target.path),
            ));
        }

        // What the run does after the limits: the gate (planned above), the capability, the
        // shim's access.
        if matches!(gate, Gate::Armed { .. }) && host.exe.is_none() {
            refusals.push(Refusal::new(
                "exec gate",
                "memlock-run cannot read its own executable, which the exec gate lets by",
                "cannot read /proc/self/exe, memlock-run's own executable, which the exec gate lets by (it \
                 judges what it executes itself); mount /proc, or pass --no-inherit if COMMAND alone must be \
                 locked",
            ));
        }
        match &gate {
            Gate::Missing { why } if request.on_failure == OnFailure::Warn => notes.push(Note {
                topic: "exec gate",
                text: gate::none_warned(why),
            }),
            Gate::Missing { why } => refusals.push(Refusal::new(
                "exec gate",
                "an inheriting run needs the exec gate, and cannot have one here",
                gate::none_refused(why),
            )),
            _ => {}
        }
        let blocker = ambient_blocker(host);
        if user.is_some() || holds_ipc_lock {
            if let Some(why) = &blocker {
                refusals.push(Refusal::new(
                    "CAP_IPC_LOCK",
                    format!("{}: held, but it cannot pass to COMMAND: {why}", describe_caps(host)),
                    format!(
                        "cannot raise CAP_IPC_LOCK in the ambient set, which passing it to COMMAND needs: {why}; \
                         remove SecureBits=no-cap-ambient-raise and keep CAP_IPC_LOCK in CapabilityBoundingSet= in the \
                         systemd unit (or whatever set them for this process tree)"
                    ),
                ));
            }
        }
        if let Some(note) = granted_but_not_held(host, holds_ipc_lock, &limits) {
            notes.push(note);
        }
        if let (Some(shim), true) = (&shim, shim_in_env) {
            if let Some(errno) = shim_access(&shim.path, user.as_ref()) {
                refusals.push(Refusal::new(
                    "shim access",
                    "COMMAND's user cannot read the shim, so ld.so would skip it",
                    shim_unreadable(&shim.path, user.as_ref(), host, errno),
                ));
            }
        }
        let mut preload_check = None;
        if let (Some(Method::Preload), Some(shim), Limit::Bytes(bytes)) =
            (method, &shim, host.limits.address_space.soft)
        {
            preload_check = Some(PreloadCheck {
                shim: shim.path.clone(),
                shim_id: shim.id,
                limit: format!("RLIMIT_AS {}", show(bytes)),
            });
            if let Err((_, why)) = ptrace_permitted(host) {
                let why = unchecked_preload(&why);
                if request.on_failure == OnFailure::Warn {
                    notes.push(Note {
                        topic: "RLIMIT_AS",
                        text: format!(
                            "{why}; running COMMAND without the check (--on-failure warn)"
                        ),
                    });
                    preload_check = None;
                } else {
                    refusals.push(Refusal::new(
                        "RLIMIT_AS",
                        "the check that ld.so loaded the shim needs ptrace, which is not permitted here",
                        why,
                    ));
                }
            }
        }
        if method == Some(Method::Ptrace) {
            if let Err((summary, message)) = ptrace_permitted(host) {
                refusals.push(Refusal::new("ptrace", summary, message));
            }
        }
        Plan {
            request,
            shim,
            user,
            creds,
            target,
            choice,
            shim_in_env,
            holds_ipc_lock,
            ambient_blocker: blocker,
            config,
            limits,
            env,
            gate,
            preload_check,
            renamed_by_shim,
            notes,
            refusals,
        }
    }

    /// The first refusal, as the run's error: it carries the exit status.
    pub fn refusal(&self) -> Result<(), Refusal> {
        first(&self.refusals)
    }

    pub fn method(&self) -> Option<Method> {
        self.choice.as_ref().map(|c| c.method)
    }

    /// A variable of COMMAND's environment (the plan keeps one entry of each name).
    pub fn var(&self, name: &str) -> Option<&std::ffi::OsStr> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_os_str())
    }
}

pub const LD_BIND_NOW: &str = "LD_BIND_NOW";

/// The first of a plan's refusals, which stops a run.
fn first(refusals: &[Refusal]) -> Result<(), Refusal> {
    match refusals.first() {
        Some(refusal) => Err(refusal.clone()),
        None => Ok(()),
    }
}

/// A set-user-ID or set-group-ID install, refused for every mode: a run would pass its IDs to
/// COMMAND, and `--status` and `--check` would read other users' /proc files and file modes
/// with its privilege. The supported way to let users lock memory is the file capability
/// `cap_ipc_lock+p`, which passes nothing but CAP_IPC_LOCK.
///
/// `installed_set_id`: memlock-run's own file has a set-ID bit. Without one, its caller's
/// effective ID was not its real one (a process that set only its effective ID, and executed
/// memlock-run, or was sent here by the shim): then the kernel runs whatever it executes in
/// secure-execution mode, where ld.so ignores the shim, and the refusal says so.
pub fn set_id_refusal(ids: crate::host::Ids, installed_set_id: bool) -> Option<String> {
    let ids_text = format!(
        "real uid {}, effective uid {}; real gid {}, effective gid {}",
        ids.uid, ids.euid, ids.gid, ids.egid
    );
    (ids.euid != ids.uid || ids.egid != ids.gid).then(|| {
        if installed_set_id {
            format!(
                "refusing to run: memlock-run is installed set-user-ID or set-group-ID ({ids_text}), and COMMAND \
                 would inherit those IDs; remove the set-ID bit (chmod u-s,g-s) and grant cap_ipc_lock+p instead, as \
                 the package's opt-in mode does"
            )
        } else {
            let mut why = String::new();
            let _ = memlock_run_protocol::reach::Miss::EffectiveIds.write_explanation(&mut why);
            format!(
                "refusing to run: memlock-run was executed with an effective user or group ID other than the real one \
                 ({ids_text}), and COMMAND would be too: {why}; set the real IDs as well (setresuid, setpriv \
                 --reuid/--regid, su), or make the program lock its own memory"
            )
        }
    })
}

fn untrusted_shim(shim: &Shim, why: &str) -> Refusal {
    Refusal::new(
        "shim",
        "memlock-run cannot use its preload shim",
        format!(
            "refusing to load the shim {}: memlock-run was given privileges its caller does not have by its own file \
             (a file capability: the kernel ran it in secure-execution mode, AT_SECURE), and {why}; install \
             memlock-run from its package (root-owned, not group- or world-writable), or run this build without the \
             file capability (a caller's own ambient CAP_IPC_LOCK passes to COMMAND all the same)",
            shim.path.display()
        ),
    )
}

/// `--user`, resolved, when memlock-run may switch users.
fn resolve_user(request: &Request, host: &Host) -> Result<Option<User>, Refusal> {
    let refuse =
        |message: String| Refusal::new("--user", "memlock-run would refuse --user", message);
    let Some(spec) = &request.user else {
        return Ok(None);
    };
    if host.elevated() {
        return Err(refuse(
            "--user is refused: this memlock-run was given privileges its caller does not have by its own file (a \
             file capability: the kernel ran it in secure-execution mode, AT_SECURE), and switching users is for \
             root alone; run memlock-run as root (sudo), or use User= in a systemd unit"
                .into(),
        ));
    }
    if !host.is_root() {
        return Err(refuse(
            "--user needs root: only root may switch to another user; run memlock-run with sudo, or use User= in a \
             systemd unit"
                .into(),
        ));
    }
    // Root in a container or under a unit's CapabilityBoundingSet= may lack what the switch
    // needs; the switch would then fail half-way with a bare EPERM from setgroups(2).
    let missing: Vec<&str> = [
        (Capability::CAP_SETUID, "CAP_SETUID"),
        (Capability::CAP_SETGID, "CAP_SETGID"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !host.has_effective(cap))
    .map(|(_, name)| name)
    .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "--user needs CAP_SETUID and CAP_SETGID to switch users, and this root process lacks {} (its bounding \
             set was narrowed: a container's capabilities, systemd's CapabilityBoundingSet=, setpriv \
             --bounding-set); keep both in the bounding set, or switch users before memlock-run (systemd's User= \
             with AmbientCapabilities=CAP_IPC_LOCK)",
            missing.join(" and ")
        )));
    }
    let user = user::resolve(spec).map_err(|err| refuse(format!("{err:#}")))?;
    if user.uid == 0 {
        return Err(refuse(format!(
            "--user {spec} is root: the kernel gives uid 0 every capability again at execve, and memlock-run \
             promises COMMAND CAP_IPC_LOCK alone with --user; run COMMAND as root without --user (it then has \
             root's capabilities, as any program root starts), or name an unprivileged user"
        )));
    }
    Ok(Some(user))
}

/// The user and group COMMAND will run as, and whether its exec has no_new_privs: the
/// caller's, or the one this run sets to arm its gate.
fn credentials(user: Option<&User>, host: &Host, gate: &Gate) -> Credentials {
    let no_new_privs = host.no_new_privs
        || matches!(
            gate,
            Gate::Armed {
                arming: Arming::SetsNoNewPrivs,
                ..
            }
        );
    match user {
        Some(user) => Credentials {
            uid: user.uid,
            euid: user.uid,
            gid: user.gid,
            egid: user.gid,
            no_new_privs,
        },
        None => Credentials {
            uid: host.ids.uid,
            euid: host.ids.euid,
            gid: host.ids.gid,
            egid: host.ids.egid,
            no_new_privs,
        },
    }
}

/// COMMAND cannot be found, executed or judged.
fn command_refusal(command: &OsString, err: &anyhow::Error) -> Refusal {
    let status = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<target::NotRunnable>())
        .map(|not_runnable| not_runnable.status);
    let why = match status {
        Some(status) => format!("cannot be executed (memlock-run would exit {status})"),
        None => "memlock-run would refuse it (exit 125)".to_owned(),
    };
    Refusal {
        topic: "COMMAND",
        summary: format!("{}: {why}", command.to_string_lossy()),
        message: format!("{err:#}"),
        status: status.unwrap_or(FAILURE_EXIT_STATUS),
    }
}

/// `--no-inherit` with a `#!/usr/bin/env NAME` script: the lock would stay with env.
fn no_inherit_conflict(request: &Request, target: &Target) -> Option<String> {
    (!request.inherit && target.goes_through_env()).then(|| {
        format!(
            "--no-inherit cannot work for {}: its #! line starts the interpreter through env, so env would be locked \
             and the interpreter it executes would not; drop --no-inherit, or name the interpreter's path in the #! line",
            target.path.display()
        )
    })
}

/// A C library in the user's `LD_PRELOAD`, which goes before the shim: its exec functions
/// would then be the ones programs call, past the shim's judgement of what they execute.
/// Refused for an inheriting run (COMMAND alone is locked as usual with --no-inherit).
/// An `LD_AUDIT` library in COMMAND's environment, where the shim is handed on: ld.so loads
/// it before any preload, and its la_objsearch may refuse or replace the shim, in COMMAND and
/// in what it executes; the shim and the exec gate refuse it for descendants by the same rule
/// (`reach::carries_shim`). Every LD_AUDIT counts: ld.so loads the libraries of each.
fn audit_library(host: &Host, shim_in_env: bool) -> Option<String> {
    if !shim_in_env {
        return None;
    }
    let (_, value) = host
        .env
        .iter()
        .find(|(name, value)| name == "LD_AUDIT" && !value.is_empty())?;
    Some(format!(
        "LD_AUDIT names an audit library ({}), which ld.so loads before any preload and asks about every library \
         it loads, the shim included, which it may refuse or replace: COMMAND or what it executes could run \
         unlocked",
        value.to_string_lossy().escape_debug()
    ))
}

fn preloaded_c_library(request: &Request, host: &Host, shim_in_env: bool) -> Option<String> {
    if !request.inherit || !shim_in_env {
        return None;
    }
    // ld.so honours the last LD_PRELOAD of an environment, and the plan keeps that one.
    let list = host
        .env
        .iter()
        .rev()
        .find(|(name, _)| name == environment::LD_PRELOAD)
        .map(|(_, value)| value)?;
    let entry = list
        .as_encoded_bytes()
        .split(|&b| b == b':' || b == b' ')
        .find(|entry| {
            let name = entry.rsplit(|&b| b == b'/').next().unwrap_or(entry);
            [&b"libc.so"[..], b"libc-", b"ld-musl-", b"libc.musl-"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })?;
    Some(format!(
        "LD_PRELOAD names the C library ({}), which ld.so puts before the shim: programs COMMAND executes would be \
         started by its exec functions, past the shim's judgement of them, and could run unlocked; take it out of \
         LD_PRELOAD, or pass --no-inherit to say that COMMAND alone is meant",
        String::from_utf8_lossy(entry)
    ))
}

/// What the options ask of the limits, and what this memlock-run may do about them.
fn limits_ask(request: &Request, host: &Host) -> limits::Ask {
    // What execve puts on the new stack: each string with its NUL, and a pointer to it in
    // argv or envp (with many short arguments the pointers are most of it), the file name
    // (AT_EXECFN) and the variables memlock-run adds.
    let pointer = std::mem::size_of::<usize>();
    let args_bytes: usize = request
        .command
        .iter()
        .map(|a| a.len() + 1 + pointer)
        .sum::<usize>()
        + host
            .env
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2 + pointer)
            .sum::<usize>()
        + libc::PATH_MAX as usize
        + 1024;
    limits::Ask {
        memlock: request.limit,
        prefault: request.prefault,
        heap: request.heap.unwrap_or(0),
        args_bytes: args_bytes as u64,
        holds_ipc_lock: host.lock_exempt(),
        // setrlimit(2) asks for CAP_SYS_RESOURCE in the initial user namespace (capable()): a
        // user namespace's own (unshare -r, rootless containers) does not raise a hard limit.
        may_raise_hard: host.has_effective(Capability::CAP_SYS_RESOURCE) && host.initial_user_ns,
    }
}

/// glibc refuses thread stacks below PTHREAD_STACK_MIN; say so before exec, not from the shim.
fn thread_stack_refusal(size: u64) -> Option<String> {
    let min = thread_stack_min();
    (size < min).then(|| {
        format!(
            "--thread-stack {} is below the smallest thread stack glibc accepts here (PTHREAD_STACK_MIN, {}); give \
             at least {}, and enough for the deepest call chain of COMMAND's threads",
            show(size),
            show(min),
            show(min)
        )
    })
}

/// PTHREAD_STACK_MIN: glibc 2.34 made it a run-time value.
pub fn thread_stack_min() -> u64 {
    // SAFETY: sysconf has no preconditions.
    stack_min_of(unsafe { libc::sysconf(libc::_SC_THREAD_STACK_MIN) })
}

/// The run-time minimum sysconf gave, or the compile-time one where it gave none (-1). glibc
/// raises the run-time value above the constant where the kernel's signal frame is large
/// (AT_MINSIGSTKSZ: AVX-512, AMX), so the constant alone would let a --thread-stack through
/// that glibc then refuses in the shim.
fn stack_min_of(sysconf: libc::c_long) -> u64 {
    match sysconf {
        n if n > 0 => n as u64,
        _ => libc::PTHREAD_STACK_MIN as u64,
    }
}

const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;

/// What capabilities(7) asks of PR_CAP_AMBIENT_RAISE, after memlock-run has made
/// CAP_IPC_LOCK inheritable (which needs it in the bounding set, or inheritable already).
fn ambient_blocker(host: &Host) -> Option<String> {
    if host.caps.ambient.is_none() {
        return Some("this kernel has no ambient capabilities (Linux 4.3 added them)".into());
    }
    if let Some(bits) = host
        .securebits
        .filter(|b| b & SECBIT_NO_CAP_AMBIENT_RAISE != 0)
    {
        return Some(format!(
            "SECBIT_NO_CAP_AMBIENT_RAISE is set (securebits {bits:#x}), which forbids raising ambient capabilities"
        ));
    }
    let ipc_lock = Capability::CAP_IPC_LOCK;
    if !host.caps.inheritable.contains(&ipc_lock) && !host.caps.bounding.contains(&ipc_lock) {
        return Some(
            "CAP_IPC_LOCK is outside the bounding set, so it cannot be made inheritable".into(),
        );
    }
    None
}

/// `effective yes, permitted yes, inheritable no, bounding yes, ambient no` for CAP_IPC_LOCK.
pub fn describe_caps(host: &Host) -> String {
    let cap = Capability::CAP_IPC_LOCK;
    let yes = |b: bool| if b { "yes" } else { "no" };
    format!(
        "effective {}, permitted {}, inheritable {}, bounding {}, ambient {}",
        yes(host.caps.effective.contains(&cap)),
        yes(host.caps.permitted.contains(&cap)),
        yes(host.caps.inheritable.contains(&cap)),
        yes(host.caps.bounding.contains(&cap)),
        yes(host.caps.ambient.as_ref().is_some_and(|a| a.contains(&cap)))
    )
}

/// A process that was granted CAP_IPC_LOCK without receiving it: the capability is in its
/// bounding set, which has been narrowed (CAP_SYS_ADMIN is out, as in every unprivileged
/// container and in a systemd unit with CapabilityBoundingSet=), yet it does not hold it, and
/// RLIMIT_MEMLOCK will bind COMMAND. That is a non-root container started with `--cap-add
/// IPC_LOCK` or Kubernetes' `capabilities.add: [IPC_LOCK]`: the runtime puts added capabilities
/// in the bounding set (and for Kubernetes the permitted set), but no ambient capability
/// reaches a non-root process through exec. None in every other case: an ordinary user on a
/// host has the full bounding set, and the limit's own messages speak for it.
fn granted_but_not_held(host: &Host, holds_ipc_lock: bool, limits: &Limits) -> Option<Note> {
    let Limit::Bytes(limit) = limits.memlock.as_ref()?.after.soft else {
        return None;
    };
    let bounding = &host.caps.bounding;
    if holds_ipc_lock
        || !bounding.contains(&Capability::CAP_IPC_LOCK)
        || bounding.contains(&Capability::CAP_SYS_ADMIN)
    {
        return None;
    }
    Some(Note {
        topic: "CAP_IPC_LOCK",
        text: format!(
            "CAP_IPC_LOCK is in this process's bounding set but memlock-run does not hold it, so RLIMIT_MEMLOCK ({}) \
             bounds what COMMAND can lock: a container granted IPC_LOCK (Kubernetes capabilities.add, --cap-add) \
             gives it to a non-root user only through a file capability; give memlock-run one in the image (setcap \
             cap_ipc_lock+p /usr/bin/memlock-run, mode 0755; Docker's no-new-privileges defeats it, podman passes \
             added capabilities itself), or raise the limit (docker or podman run --ulimit memlock=-1), or in a \
             systemd unit set AmbientCapabilities=CAP_IPC_LOCK",
            show(limit)
        ),
    })
}

/// Whether COMMAND's user can read the shim: ld.so skips a preload it cannot open and runs
/// the program anyway. Without `--user` this asks access(2), whose real IDs are COMMAND's;
/// for another user it reads the permission bits of the shim and every directory above it
/// (ACLs are not consulted; the run asks access(2) again once it is that user).
fn shim_access(shim: &Path, user: Option<&User>) -> Option<nix::errno::Errno> {
    match user {
        None => nix::unistd::access(shim, nix::unistd::AccessFlags::R_OK).err(),
        Some(user) => (!readable_by(shim, user)).then_some(nix::errno::Errno::EACCES),
    }
}

/// Read permission on `file` and search permission on each directory above it, by the mode
/// bits, for a user who is not root.
fn readable_by(file: &Path, user: &User) -> bool {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 {
        return true;
    }
    let allows = |path: &Path, bit: u32| -> bool {
        let Ok(meta) = std::fs::metadata(path) else {
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

/// Why COMMAND would run unlocked when its user cannot read the shim: the plan's refusal, and
/// the run's own check after a user switch.
pub fn shim_unreadable(
    shim: &Path,
    user: Option<&User>,
    host: &Host,
    errno: nix::errno::Errno,
) -> String {
    let who = match user {
        Some(user) => user.name.clone(),
        None => format!("uid {}", host.ids.uid),
    };
    format!(
        "{who} cannot read the shim {} ({errno}), so ld.so would skip it and COMMAND would run unlocked; install \
         memlock-run where every user can read it (its package does), or make the shim readable and the \
         directories above it searchable by {who}",
        shim.display()
    )
}

/// Whether this process may trace the ptrace helper's way (the helper attaches to
/// memlock-run, its grandparent): not traced itself, not PID 1, Yama allows it. Err has a few
/// words and the whole message. A seccomp filter that may deny ptrace cannot be read; the
/// helper says so if it does.
pub fn ptrace_permitted(host: &Host) -> Result<(), (String, String)> {
    if let Some((tracer, name)) = &host.tracer {
        return Err((
            format!("memlock-run is traced by pid {tracer} ({name}), and a process has one tracer at a time"),
            format!(
                "memlock-run is already traced by pid {tracer} ({name}), and a process has one tracer at a time, so \
                 its ptrace helper cannot attach; run memlock-run outside the debugger or tracer (strace, gdb) and \
                 attach to COMMAND afterwards"
            ),
        ));
    }
    if host.pid == 1 {
        return Err((
            "memlock-run is PID 1 of its PID namespace: the ptrace helper would become COMMAND's child".into(),
            "memlock-run is PID 1 of its PID namespace, so the ptrace helper would become its child once it ends; \
             start the container with an init (docker run --init, tini, or shareProcessNamespace in Kubernetes), \
             with memlock-run below it"
                .into(),
        ));
    }
    match host.yama {
        Some(3) => Err((
            "kernel.yama.ptrace_scope is 3: ptrace is disabled until reboot".into(),
            "kernel.yama.ptrace_scope is 3: ptrace is disabled on this system until reboot, and the ptrace helper \
             needs it; use a dynamically linked glibc build of the program (the preload method needs no ptrace)"
                .into(),
        )),
        Some(2) if !host.has_effective(Capability::CAP_SYS_PTRACE) => Err((
            "kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may attach".into(),
            "kernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE may attach, and the ptrace helper \
             needs to; run memlock-run as root, or set kernel.yama.ptrace_scope to 1 (memlock-run names its helper \
             with PR_SET_PTRACER, which scope 1 allows)"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Why COMMAND is not run when the preload check cannot be had.
pub fn unchecked_preload(why: &str) -> String {
    format!(
        "cannot check that ld.so loads the preload shim, which a finite RLIMIT_AS may leave no room for (ld.so then \
         runs COMMAND without it): {why}; or lift the limit (ulimit -v unlimited, LimitAS=infinity in a systemd \
         unit), or run unchecked with --on-failure warn"
    )
}

/// The soft RLIMIT_MEMLOCK COMMAND will have, where the plan has one.
pub fn memlock_after(plan: &Plan) -> Option<Rlimit> {
    plan.limits.memlock.map(|c| c.after)
}

#[cfg(test)]
mod tests;
