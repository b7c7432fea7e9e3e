//! One run of memlock-run, in order: find the shim, judge the target, plan the limits,
//! compose the environment; then (unless `--dry-run`) apply the limits while still
//! privileged, switch user or pass CAP_IPC_LOCK, and exec.

use std::convert::Infallible;
use std::env;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use caps::Capability;
use memlock_run_protocol::{Config, Fork, LockFlags};
use nix::sys::resource::Resource;

use crate::capabilities::{self, Privilege};
use crate::cli::Cli;
use crate::exec;
use crate::gate;
use crate::install::{self, Shim};
use crate::limits::{self, Plan};
use crate::method::{self, Choice, Method};
use crate::preload;
use crate::ptrace;
use crate::secrecy;
use crate::size::show;
use crate::target::{self, Credentials, Target};
use crate::user::{self, User};

/// Everything decided before anything is changed.
struct Launch {
    shim: Shim,
    target: Target,
    choice: Choice,
    /// COMMAND's environment carries the shim (for itself, or for what it executes).
    shim_in_env: bool,
    user: Option<User>,
    holds_ipc_lock: bool,
    config: Config,
    plan: Plan,
    env: Vec<(OsString, OsString)>,
}

/// Runs COMMAND (never returns on success), or prints the plan for `--dry-run`.
pub fn run(cli: &Cli) -> Result<Option<Infallible>> {
    let privilege = Privilege::detect()?;
    let mut launch = prepare(cli, &privilege)?;
    if cli.dry_run {
        print_plan(cli, &launch).context("cannot write the --dry-run plan to stdout")?;
        return Ok(None);
    }
    for note in &launch.plan.notes {
        // A note that cannot be written (stderr on a full disk, /dev/full) must not stop the
        // run: eprintln! would panic, and the panic would abort memlock-run.
        let _ = writeln!(io::stderr(), "memlock-run: note: {note}");
    }
    if let Some(note) = capabilities::granted_but_not_held_note(
        launch.holds_ipc_lock,
        launch.plan.memlock.after.soft,
    ) {
        let _ = writeln!(io::stderr(), "memlock-run: note: {note}");
    }
    // Limits first: raising a hard limit needs CAP_SYS_RESOURCE, which a user switch drops.
    limits::apply(&launch.plan)?;
    if launch.config.no_dump {
        // Survives exec, whichever way COMMAND is then locked; the dumpable flag does not,
        // so config.no_dump tells whatever runs in the new image to clear it there.
        secrecy::forbid_core_dumps()?;
    }
    // Before the user switch, which drops the CAP_SYS_ADMIN a filter without no_new_privs needs.
    let gate = if launch.config.inherit && launch.config.exec_gate {
        arm_gate(&launch)?
    } else {
        None
    };
    if let Some(gate) = &gate {
        if let Some(count) = ptrace::status_field(std::process::id() as i32, "Seccomp_filters") {
            launch.env.push((
                memlock_run_protocol::GATE.into(),
                format!("{count}:{}", gate.pid).into(),
            ));
        }
    }
    match &launch.user {
        Some(user) => user::switch(user)?,
        None if launch.holds_ipc_lock => capabilities::pass_ipc_lock()?,
        None => {}
    }
    // -v: what MCL_CURRENT will not cover of a program that loads its code later (runtime.rs).
    if let Some(note) = cli
        .verbose
        .then(|| crate::runtime::verbose_note(cli, &launch.target.path))
        .flatten()
    {
        let _ = writeln!(io::stderr(), "{note}");
    }
    if launch.shim_in_env {
        check_shim_readable(&launch)?;
    }
    let work = match launch.choice.method {
        Method::Ptrace => Some(ptrace::Work::Lock(ptrace::Job {
            flags: launch.config.flags,
            prefault: launch.config.prefault,
            no_dump: launch.config.no_dump,
        })),
        Method::Preload => preload_check(&launch)?.map(ptrace::Work::CheckPreload),
    };
    if let Some(work) = work {
        let checking = matches!(work, ptrace::Work::CheckPreload(_));
        let armed = ptrace::arm_exec(&ptrace::ExecJob {
            work,
            on_failure: launch.config.on_failure,
            verbose: cli.verbose,
            program: program_name(&launch.target.path),
            reason: launch.choice.reason.clone(),
            image: launch.target.image_id(),
        });
        match armed {
            Err(err) if checking => {
                let why = format!("{err:#}");
                if launch.config.on_failure == memlock_run_protocol::OnFailure::Warn {
                    let _ = writeln!(
                        io::stderr(),
                        "memlock-run: note: {}; running COMMAND without the check (--on-failure warn)",
                        unchecked_preload(&why)
                    );
                } else {
                    bail!("{}", unchecked_preload(&why));
                }
            }
            armed => armed?,
        }
    }
    let judged = match launch.target.program {
        crate::target::Program::Elf(_) => Some(&launch.target.file),
        crate::target::Program::Script { .. } => None,
    };
    // The preload method executes the judged file on any kernel: the shim names the process.
    let renamed_by_shim = judged.is_some() && launch.choice.method == Method::Preload;
    if renamed_by_shim {
        launch.env.push((
            memlock_run_protocol::COMM.into(),
            exec::comm_for(&launch.target.path),
        ));
    }
    exec::exec(
        &launch.target.path,
        judged,
        renamed_by_shim,
        gate.map_or(0, |g| g.cookie),
        &cli.argv(),
        &launch.env,
    )
    .map(Some)
}

/// Under a finite RLIMIT_AS ld.so may fail to map the shim, and then it says so and runs
/// COMMAND without it (a preload it cannot load is ignored): the shim goes after the user's
/// own preloads, which may take the room. So a helper checks from outside, at COMMAND's entry
/// point, that the shim is mapped (ptrace/exec.rs). Without a limit, a failure to map the
/// shim is a failure to map libc after it, and ld.so stops: nothing to check, nothing spent.
fn preload_check(launch: &Launch) -> Result<Option<ptrace::PreloadCheck>> {
    let crate::size::Limit::Bytes(bytes) = limits::get(Resource::RLIMIT_AS)?.soft else {
        return Ok(None);
    };
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&launch.shim.path)
        .with_context(|| format!("cannot read the shim {}", launch.shim.path.display()))?;
    Ok(Some(ptrace::PreloadCheck {
        shim: launch.shim.path.clone(),
        shim_id: (meta.dev(), meta.ino()),
        limit: format!("RLIMIT_AS {}", show(bytes)),
    }))
}

/// Why COMMAND is not run when the preload check cannot be armed.
fn unchecked_preload(why: &str) -> String {
    format!(
        "cannot check that ld.so loads the preload shim, which a finite RLIMIT_AS may leave no room for (ld.so then \
         runs COMMAND without it): {why}; or lift the limit (ulimit -v unlimited, LimitAS=infinity in a systemd \
         unit), or run unchecked with --on-failure warn"
    )
}

/// COMMAND's file name, for the helper's messages until it reads the new image's own.
fn program_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Whether COMMAND's environment carries the shim: always with the preload; with the ptrace
/// method only when inheriting into a static image, where ld.so never runs to load it (a
/// musl or 32-bit loader would try, and fail or warn), so that the glibc programs it
/// executes are locked by the shim.
pub fn shim_in_env(cli: &Cli, choice: &Choice, target: &Target) -> bool {
    match choice.method {
        Method::Preload => true,
        Method::Ptrace => !cli.no_inherit && target.image().1.interpreter.is_none(),
    }
}

/// A C library in the user's `LD_PRELOAD`, which goes before the shim: its exec functions
/// would then be the ones programs call, past the shim's judgement of what they execute.
/// Refused for an inheriting run (COMMAND alone is locked as usual with --no-inherit).
pub fn preloaded_c_library(cli: &Cli, shim_in_env: bool) -> Option<String> {
    if cli.no_inherit || !shim_in_env {
        return None;
    }
    let list = env::var_os(preload::LD_PRELOAD)?;
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

/// ld.so skips a preload it cannot open, with a warning, and runs the program anyway; so
/// check, as the user COMMAND will run as (after the switch: access(2) uses the real IDs),
/// that it can read the shim: `--user` from a root-only directory such as /root would
/// otherwise run COMMAND unlocked.
fn check_shim_readable(launch: &Launch) -> Result<()> {
    if let Err(errno) = nix::unistd::access(&launch.shim.path, nix::unistd::AccessFlags::R_OK) {
        bail!(shim_unreadable(
            &launch.shim.path,
            launch.user.as_ref(),
            errno
        ));
    }
    Ok(())
}

/// Why COMMAND would run unlocked when its user cannot read the shim (`--check` says it too).
pub fn shim_unreadable(shim: &Path, user: Option<&User>, errno: nix::errno::Errno) -> String {
    let who = match user {
        Some(user) => user.name.clone(),
        None => format!("uid {}", nix::unistd::getuid()),
    };
    format!(
        "{who} cannot read the shim {} ({errno}), so ld.so would skip it and COMMAND would run unlocked; install \
         memlock-run where every user can read it (its package does), or make the shim readable and the \
         directories above it searchable by {who}",
        shim.display()
    )
}

/// main has refused a set-user-ID or set-group-ID install before any mode runs.
fn prepare(cli: &Cli, privilege: &Privilege) -> Result<Launch> {
    let shim = install::locate_shim(privilege.elevated())?;
    let user = resolve_user(cli, privilege)?;
    let creds = credentials(user.as_ref());

    let path_var = env::var_os("PATH");
    let path = target::resolve(&cli.command[0], path_var.as_deref())?;
    let target = target::inspect(&path, &shim.elf, creds, path_var.as_deref())?;
    let choice = method::choose(cli.method, &target)?;
    if let Some(why) = method::option_conflict(cli, &choice, &target) {
        bail!(why);
    }
    if let Some(why) = no_inherit_conflict(cli, &target) {
        bail!(why);
    }
    let shim_in_env = shim_in_env(cli, &choice, &target);
    if let Some(why) = preloaded_c_library(cli, shim_in_env) {
        bail!(why);
    }

    let holds_ipc_lock = privilege.lock_exempt();
    // The environment COMMAND inherits, read once: it sizes the stack and is then extended.
    let inherited: Vec<(OsString, OsString)> = env::vars_os().collect();
    let request = limits_request(cli, privilege, &inherited);
    let mut plan = limits::plan(
        request,
        limits::get(Resource::RLIMIT_MEMLOCK)?,
        limits::get(Resource::RLIMIT_STACK)?,
    )?;
    if let (Method::Ptrace, Some(before)) = (choice.method, plan.thread_stack) {
        // The shim would give threads back their old default; from outside that cannot be done.
        plan.notes.push(format!(
            "--prefault raises the soft RLIMIT_STACK to {}, and glibc takes its default thread stack size from it \
             (it was {}), which only the preload shim can set back: threads a glibc COMMAND creates without a size of \
             their own get the larger stack, locked in full under --future (musl and Go size their threads \
             themselves)",
            plan.stack.after.soft,
            show(before)
        ));
    }

    if let Some(size) = cli.thread_stack {
        check_thread_stack(size)?;
    }
    // A user's own LD_BIND_NOW is theirs: --no-inherit removes only one memlock-run set.
    let sets_bind_now = cli.bind_now && env::var_os(LD_BIND_NOW).map_or(true, |v| v.is_empty());
    let config = Config {
        flags: lock_flags(cli),
        prefault: cli.prefault.unwrap_or(0),
        heap: cli.heap.unwrap_or(0),
        // musl sizes thread stacks itself, not from RLIMIT_STACK: nothing to give back there.
        thread_stack: cli
            .thread_stack
            .or(plan.thread_stack.filter(|_| !target.is_musl()))
            .unwrap_or(0),
        fork: cli.fork.unwrap_or(crate::cli::ForkMode::Relock).into(),
        bind_now: sets_bind_now,
        on_failure: cli.on_failure.into(),
        verbose: cli.verbose,
        inherit: !cli.no_inherit,
        no_dump: cli.no_dump,
        exec_gate: !cli.no_exec_gate,
    };
    let mut overrides: Vec<(&str, String)> = user.iter().flat_map(User::environment).collect();
    if sets_bind_now {
        overrides.push((LD_BIND_NOW, "1".to_owned()));
    }
    if shim_in_env && config.inherit {
        // Where the shim sends a program the preload cannot reach (protocol::LAUNCHER).
        if let Some(own) = env::current_exe()
            .ok()
            .and_then(|p| p.into_os_string().into_string().ok())
        {
            overrides.push((memlock_run_protocol::LAUNCHER, own));
        }
    }
    let env = if shim_in_env {
        preload::environment(inherited, &shim.path, &config, &overrides)
    } else {
        preload::without_shim(inherited, &overrides)
    };
    Ok(Launch {
        shim,
        target,
        choice,
        shim_in_env,
        user,
        holds_ipc_lock,
        config,
        plan,
        env,
    })
}

/// Arms the exec gate for an inheriting run: the execve system calls the tree makes itself,
/// past the shim, are judged too. Where this kernel or process cannot have one, the run is
/// refused (125), or under --on-failure warn goes on with a note. Returns this run's own
/// gate, when one was armed (not an outer run's, nor none under warn).
fn arm_gate(launch: &Launch) -> Result<Option<gate::Armed>> {
    use std::os::unix::fs::MetadataExt;
    let arming = match gate::readiness() {
        Ok(arming) => arming,
        Err(why) if launch.config.on_failure == memlock_run_protocol::OnFailure::Warn => {
            let _ = writeln!(
                io::stderr(),
                "memlock-run: note: {}",
                gate::none_warned(&why)
            );
            return Ok(None);
        }
        Err(why) => bail!(gate::none_refused(&why)),
    };
    let shim = std::fs::metadata(&launch.shim.path)
        .with_context(|| format!("cannot read the shim {}", launch.shim.path.display()))?;
    let own = std::fs::metadata("/proc/self/exe").context("cannot read /proc/self/exe")?;
    gate::arm(
        gate::Judgement {
            config: launch.config,
            shim: launch.shim.path.clone(),
            shim_id: (shim.dev(), shim.ino()),
            launcher_id: (own.dev(), own.ino()),
        },
        arming,
    )
}

const LD_BIND_NOW: &str = "LD_BIND_NOW";

/// glibc refuses thread stacks below PTHREAD_STACK_MIN; say so before exec, not from the shim.
pub fn check_thread_stack(size: u64) -> Result<()> {
    // SAFETY: sysconf has no preconditions. glibc 2.34 made the minimum a run-time value.
    let min = match unsafe { libc::sysconf(libc::_SC_THREAD_STACK_MIN) } {
        n if n > 0 => n as u64,
        _ => libc::PTHREAD_STACK_MIN as u64,
    };
    if size < min {
        bail!(
            "--thread-stack {} is below the smallest thread stack glibc accepts here (PTHREAD_STACK_MIN, {}); \
             give at least {}, and enough for the deepest call chain of COMMAND's threads",
            show(size),
            show(min),
            show(min)
        );
    }
    Ok(())
}

/// The mlockall(2) flags the options ask for: MCL_CURRENT always.
pub fn lock_flags(cli: &Cli) -> LockFlags {
    LockFlags {
        current: true,
        future: cli.future,
        onfault: cli.onfault,
    }
}

/// `--user`, resolved, when memlock-run may switch users.
pub fn resolve_user(cli: &Cli, privilege: &Privilege) -> Result<Option<User>> {
    match &cli.user {
        None => Ok(None),
        Some(_) if privilege.elevated() => bail!(
            "--user is refused: this memlock-run was given privileges its caller does not have by its own file (a \
             file capability: the kernel ran it in secure-execution mode, AT_SECURE), and switching users is for \
             root alone; run memlock-run as root (sudo), or use User= in a systemd unit"
        ),
        Some(_) if !privilege.is_root() => bail!(
            "--user needs root: only root may switch to another user; run memlock-run with sudo, or use User= in a \
             systemd unit"
        ),
        Some(spec) => {
            let user = user::resolve(spec)?;
            if user.uid == 0 {
                bail!(
                    "--user {spec} is root: the kernel gives uid 0 every capability again at execve, and memlock-run \
                     promises COMMAND CAP_IPC_LOCK alone with --user; run COMMAND as root without --user (it then has \
                     root's capabilities, as any program root starts), or name an unprivileged user"
                );
            }
            Ok(Some(user))
        }
    }
}

/// The user and group COMMAND will run as.
pub fn credentials(user: Option<&User>) -> Credentials {
    match user {
        Some(user) => Credentials {
            uid: user.uid,
            gid: user.gid,
        },
        None => Credentials {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        },
    }
}

/// What the options ask of the limits, and what this memlock-run may do about them.
pub fn limits_request(
    cli: &Cli,
    privilege: &Privilege,
    inherited: &[(OsString, OsString)],
) -> limits::Request {
    // What execve puts on the new stack: each string with its NUL, and a pointer to it in
    // argv or envp (with many short arguments the pointers are most of it), the file name
    // (AT_EXECFN) and the variables memlock-run adds.
    let pointer = std::mem::size_of::<usize>();
    let args_bytes: usize = cli
        .command
        .iter()
        .map(|a| a.len() + 1 + pointer)
        .sum::<usize>()
        + inherited
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2 + pointer)
            .sum::<usize>()
        + libc::PATH_MAX as usize
        + 1024;
    limits::Request {
        memlock: cli.limit,
        prefault: cli.prefault.unwrap_or(0),
        heap: cli.heap.unwrap_or(0),
        args_bytes: args_bytes as u64,
        holds_ipc_lock: privilege.lock_exempt(),
        may_raise_hard: privilege.has_effective(Capability::CAP_SYS_RESOURCE),
    }
}

/// `--no-inherit` with a `#!/usr/bin/env NAME` script: the lock would stay with env.
pub fn no_inherit_conflict(cli: &Cli, target: &Target) -> Option<String> {
    (cli.no_inherit && target.goes_through_env()).then(|| {
        format!(
            "--no-inherit cannot work for {}: its #! line starts the interpreter through env, so env would be locked \
             and the interpreter it executes would not; drop --no-inherit, or name the interpreter's path in the #! line",
            target.path.display()
        )
    })
}

fn print_plan(cli: &Cli, launch: &Launch) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let command = cli
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    writeln!(
        out,
        "memlock-run --dry-run: nothing was changed or executed"
    )?;
    writeln!(out, "command:        {command}")?;
    writeln!(
        out,
        "target:         {}: {}",
        launch.target.path.display(),
        launch.target.describe()
    )?;
    writeln!(out, "method:         {}", launch.choice.describe())?;
    if let (Method::Preload, Ok(Some(check))) = (launch.choice.method, preload_check(launch)) {
        writeln!(
            out,
            "check:          {}: a ptrace helper checks at COMMAND's entry point that ld.so loaded the shim",
            check.limit
        )?;
    }
    writeln!(
        out,
        "lock:           mlockall({}), on failure: {}",
        launch.config.flags.describe(),
        match cli.on_failure {
            crate::cli::OnFailure::Exit => "exit 125",
            crate::cli::OnFailure::Warn => "warn and run unlocked",
        }
    )?;
    if launch.config.prefault > 0 {
        writeln!(
            out,
            "prefault:       {} of the main thread's stack",
            show(launch.config.prefault)
        )?;
    }
    if launch.config.heap > 0 {
        writeln!(out,
            "heap:           {} pre-faulted and kept (glibc malloc: M_TRIM_THRESHOLD -1, M_MMAP_MAX 0, M_ARENA_MAX 1)",
            show(launch.config.heap)
        )?;
    }
    let ptrace = launch.choice.method == Method::Ptrace;
    writeln!(
        out,
        "fork:           {}",
        match launch.config.fork {
            _ if ptrace =>
                "COMMAND's forked children run unlocked (the ptrace method cannot relock them)",
            Fork::Relock if launch.config.flags.future =>
                "children relock: mlockall(MCL_CURRENT|MCL_ONFAULT), then MCL_FUTURE",
            Fork::Relock => "children relock: mlockall(MCL_CURRENT|MCL_ONFAULT)",
            Fork::Off => "children run unlocked (--fork off)",
        }
    )?;
    if cli.bind_now {
        writeln!(
            out,
            "binding:        {}",
            if launch.config.bind_now {
                "at start (LD_BIND_NOW=1)"
            } else {
                "at start (LD_BIND_NOW was already set)"
            }
        )?;
    }
    writeln!(
        out,
        "inherit:        {}",
        match (launch.config.inherit, ptrace, launch.shim_in_env) {
            (false, _, _) => "no, COMMAND only",
            (true, false, _) =>
                "yes: each program COMMAND executes through libc is judged before the exec, and locked by the \
                 shim, locked through memlock-run, or refused with a message",
            (true, true, true) =>
                "yes, through the shim: glibc and musl programs COMMAND executes are locked (COMMAND is static, \
                 and makes the execve system call itself)",
            (true, true, false) =>
                "no: the ptrace method locks COMMAND's image only, and its loader must not be given the shim; \
                 the exec gate refuses what COMMAND executes, unless it is memlock-run",
        }
    )?;
    if launch.config.inherit && !launch.config.exec_gate {
        writeln!(out, "exec gate:      {}", crate::gate::OFF)?;
    } else if launch.config.inherit {
        let gate = match crate::gate::describe(
            launch.config.no_dump,
            launch.user.is_some(),
            launch.shim_in_env,
        ) {
            Ok(plan) => plan.text,
            Err(why) if launch.config.on_failure == memlock_run_protocol::OnFailure::Warn => {
                crate::gate::none_warned(&why)
            }
            Err(why) => format!(
                "none, so the run is refused: {}",
                crate::gate::none_refused(&why)
            ),
        };
        writeln!(out, "exec gate:      {gate}")?;
    }
    writeln!(
        out,
        "core dumps:     {}",
        // The preload method: the shim clears the flag, and stays for executed programs
        // when inheriting.
        secrecy::plan_text(
            launch.config.no_dump,
            ptrace,
            launch.config.inherit && launch.shim_in_env
        )
    )?;
    writeln!(out, "RLIMIT_MEMLOCK: {}", launch.plan.memlock.describe())?;
    writeln!(out, "RLIMIT_STACK:   {}", launch.plan.stack.describe())?;
    match (cli.thread_stack, launch.plan.thread_stack) {
        (Some(size), _) => writeln!(out, "thread stacks:  {} (--thread-stack)", show(size))?,
        (None, Some(size)) => writeln!(
            out,
            "thread stacks:  {} (kept as before the stack limit was raised)",
            show(size)
        )?,
        (None, None) => {}
    }
    writeln!(out,
        "capabilities:   {}",
        match (&launch.user, launch.holds_ipc_lock) {
            (Some(_), _) => "CAP_IPC_LOCK alone, in the ambient set",
            (None, true) => "CAP_IPC_LOCK added to the ambient set: RLIMIT_MEMLOCK does not bind COMMAND's mlockall",
            (None, false) => "none added: COMMAND's mlockall is bound by RLIMIT_MEMLOCK",
        }
    )?;
    match &launch.user {
        Some(user) => writeln!(out, "user:           {}", user.describe())?,
        None => writeln!(
            out,
            "user:           unchanged (uid {})",
            nix::unistd::getuid()
        )?,
    }
    if launch.shim_in_env {
        writeln!(out, "shim:           {}", launch.shim.path.display())?;
    }
    for note in &launch.plan.notes {
        writeln!(out, "note:           {note}")?;
    }
    let mut first = true;
    for (name, value) in &launch.env {
        let name = name.to_string_lossy();
        let ours = name == preload::LD_PRELOAD
            || name.starts_with(memlock_run_protocol::PREFIX)
            || name == LD_BIND_NOW && launch.config.bind_now
            || launch.user.is_some()
                && ["HOME", "USER", "LOGNAME", "SHELL"].contains(&name.as_ref());
        if ours {
            let label = if first { "environment:" } else { "" };
            writeln!(out, "{label:<16}{name}={}", value.to_string_lossy())?;
            first = false;
        }
    }
    out.flush()
}

/// `--pid`: locks a running process with the ptrace method; one line on stdout.
pub fn lock_running(cli: &Cli, pid: u32) -> Result<()> {
    let job = ptrace::PidJob {
        job: ptrace::Job {
            flags: lock_flags(cli),
            prefault: 0,
            no_dump: cli.no_dump,
        },
        force: cli.force,
        limit: cli.limit,
    };
    let locked = ptrace::lock_pid(pid, &job)?;
    writeln!(io::stdout(), "{}", locked.describe(pid, &job.job))
        .context("cannot write the report to stdout")
}
