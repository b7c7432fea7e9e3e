//! A run, `--dry-run` and `--check` agree (issue 18: they are three renderings of one plan).
//!
//! One table of scenarios, [`scenarios!`] below: every row is run three ways, for real, as
//! the same user under the same limits and environment: `memlock-run -v OPTIONS -- COMMAND`,
//! `memlock-run --dry-run OPTIONS -- COMMAND` and `memlock-run --check OPTIONS -- COMMAND`.
//! Each row says what the run does (locks COMMAND with a method, or refuses it with an exit
//! status and a message), and the test holds all three to it:
//!
//! - the outcome: the run locks (COMMAND runs, and the `-v` line says locked, VmLck above 0)
//!   ⇔ `--dry-run` exits 0 ⇔ `--check`'s verdict is `ok` (exit 0); a refused run (125, 126,
//!   127, nothing run) ⇔ `--dry-run` fails with the same status and message ⇔ `--check`
//!   exits 1 with a FAIL finding whose text or remedy holds the run's message; a lock the
//!   kernel refuses in the new image (the shim's 125) ⇔ a plan `--dry-run` renders ⇔ a FAIL
//!   finding of `--check` that names the same cause;
//! - the method: `--dry-run`'s `method:` line, `--check`'s `method` finding and the run's
//!   `-v` line name the same one, and the first two say it in the same words;
//! - the notes: each `memlock-run: note:` the run prints is in the plan and in the report.
//!
//! Each row is a test of its own, and a row's failure lists every point on which the three
//! disagree, with the three outputs. Not here: what the lock does in the process (locking.rs,
//! ptrace.rs), and the findings only `--check` makes (check.rs).

mod common;

use std::ffi::{OsStr, OsString};
use std::process::{Command, Output};

use common::*;

/// How COMMAND is locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Preload,
    Ptrace,
}

impl Method {
    /// The word `--dry-run`'s `method:` line and `--check`'s `method` finding start with.
    fn word(self) -> &'static str {
        match self {
            Method::Preload => "preload",
            Method::Ptrace => "ptrace",
        }
    }

    /// How the `-v` line names it.
    fn verbose(self) -> &'static str {
        match self {
            Method::Preload => "with the preload shim",
            Method::Ptrace => "with the ptrace method",
        }
    }
}

/// What a row's run does.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// COMMAND runs, locked by this method.
    Locks(Method),
    /// COMMAND does not run: memlock-run (or the shim) exits with this status, and its
    /// message says each of these.
    Refused(i32, &'static [&'static str]),
    /// The plan goes ahead, and the kernel refuses the lock in the new image: the shim stops
    /// COMMAND (125) with a message that says each of these. No plan can refuse that
    /// beforehand (what the program maps is known once it runs), so `--dry-run` renders the
    /// plan, and `--check` predicts it: a FAIL finding of this topic that says each of them too.
    LockFails(&'static str, &'static [&'static str]),
}

/// One row: who runs memlock-run, under what, with which options, on which COMMAND.
struct Scenario {
    who: RunAs,
    env: Vec<(&'static str, OsString)>,
    options: Vec<OsString>,
    command: Vec<OsString>,
    expect: Expect,
}

/// A row that runs `command` as the tests' user (root in CI); see the builder methods.
fn command<I, S>(command: I, expect: Expect) -> Scenario
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Scenario {
        who: as_caller(),
        env: Vec::new(),
        options: Vec::new(),
        command: command.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        expect,
    }
}

impl Scenario {
    fn options(mut self, options: &[&str]) -> Self {
        self.options.extend(options.iter().map(OsString::from));
        self
    }

    fn who(mut self, who: RunAs) -> Self {
        self.who = who;
        self
    }

    fn env(mut self, name: &'static str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((name, value.as_ref().to_owned()));
        self
    }

    /// `memlock-run MODE OPTIONS -- COMMAND`, started as the row says.
    fn run(&self, mode: &str) -> Output {
        let mut cmd: Command = self.who.memlock_run([mode]);
        cmd.args(&self.options).arg("--").args(&self.command);
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        output(cmd)
    }
}

/// None, with a skip line, where the runs as nobody cannot be made.
fn as_nobody_here() -> Option<()> {
    (!skip_unprivileged_run("the row runs memlock-run as nobody")).then_some(())
}

/// None, with a skip line, where set-ID bits and file capabilities have no effect.
fn set_id_here() -> Option<()> {
    (!skip_on_nosuid(
        &scratch(),
        "the set-ID and file-capability rows are not tested",
    ))
    .then_some(())
}

/// None, with a skip line, where the hard RLIMIT_STACK leaves no room to raise the soft
/// limit for a pre-fault of 8 MiB.
fn stack_can_grow() -> Option<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) },
        0
    );
    if limit.rlim_max != libc::RLIM_INFINITY && limit.rlim_max < 16 * MIB {
        skip(format_args!(
            "the hard RLIMIT_STACK is {} bytes; the --prefault 8M row needs room above 8 MiB",
            limit.rlim_max
        ));
        return None;
    }
    Some(())
}

/// A set-user-ID root copy of the probe, run by nobody with `options` and without an exec
/// gate (whose no_new_privs would make the kernel ignore the bit): refused whatever the
/// method.
fn set_user_id(options: &[&str]) -> Option<Scenario> {
    set_user_id_expecting(
        &[options, &["--no-exec-gate"]].concat(),
        Expect::Refused(125, &["set-user-ID", "secure-execution mode"]),
    )
}

fn set_user_id_expecting(options: &[&str], expect: Expect) -> Option<Scenario> {
    as_nobody_here()?;
    set_id_here()?;
    Some(
        command([copy_with_mode(&probe(), "probe-setuid", 0o4755)], expect)
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(options),
    )
}

/// An executable script in the scratch dir, of this process alone.
fn agreement_script(name: &str, text: &str) -> std::path::PathBuf {
    script(&unique(name).file_name().unwrap().to_string_lossy(), text)
}

/// A copy of `elf` whose header names another machine (e_machine at offset 18), as a
/// build for another architecture would: no multilib compiler needed.
fn other_machine(elf: &std::path::Path) -> std::path::PathBuf {
    let copy = copy_with_mode(elf, "probe-other-machine", 0o755);
    let mut bytes = std::fs::read(&copy).expect("read the copy");
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    // AArch64 for an x86-64 probe, x86-64 for anything else.
    let other: u16 = if machine == 62 { 183 } else { 62 };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    writing_executables(|| std::fs::write(&copy, bytes)).expect("write the copy");
    copy
}

/// Whitespace collapsed, so that a message wrapped in one rendering and not in another
/// still compares equal.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// memlock-run's message without `memlock-run: `, and without the `PROGRAM (pid N): ` a
/// message of the shim's starts with (which no prediction can know).
fn body(message: &str) -> String {
    let message = message.strip_prefix("memlock-run: ").unwrap_or(message);
    let message = match (message.find(" (pid "), message.find("): ")) {
        (Some(pid), Some(end)) if pid < end => &message[end + 3..],
        _ => message,
    };
    flat(message)
}

/// The `-v` line's method and VmLck, where the run says it locked COMMAND.
fn verbose_lock(run: &Output) -> Option<(Option<Method>, String)> {
    let err = stderr_of(run);
    let line = err.lines().find(|l| l.contains("): locked "))?;
    let method = [Method::Preload, Method::Ptrace]
        .into_iter()
        .find(|m| line.contains(m.verbose()));
    let vmlck = line
        .split("VmLck ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("")
        .to_owned();
    Some((method, vmlck))
}

/// The text of `--dry-run`'s `method:` line.
fn planned_method(plan: &str) -> Option<String> {
    plan.lines()
        .find_map(|l| l.strip_prefix("method:"))
        .map(|l| l.trim().to_owned())
}

/// The run's notes: the text after `memlock-run: note: ` of each such line.
fn notes(run: &Output) -> Vec<String> {
    stderr_lines(run)
        .iter()
        .filter_map(|l| l.strip_prefix("memlock-run: note: "))
        .map(str::to_owned)
        .collect()
}

/// Runs a row three ways and lists every point on which they disagree with each other or
/// with what the row says; panics with the list and the three outputs.
fn agree(name: &str, row: Scenario) {
    let run = row.run("-v");
    let dry = row.run("--dry-run");
    let check = row.run("--check");
    let (plan, report) = (stdout_of(&dry), stdout_of(&check));
    let ran = stdout_of(&run).lines().any(|l| l.starts_with("ready "));
    let mut wrong: Vec<String> = Vec::new();
    let mut expect = |holds: bool, what: String| {
        if !holds {
            wrong.push(what);
        }
    };

    match row.expect {
        Expect::Locks(method) => {
            let lock = verbose_lock(&run);
            expect(
                run.status.success() && ran,
                format!("the run: COMMAND did not run to success ({})", run.status),
            );
            expect(
                lock.as_ref()
                    .is_some_and(|(_, vmlck)| !vmlck.is_empty() && vmlck != "0 B"),
                format!("the run: no -v line says COMMAND is locked with VmLck above 0: {lock:?}"),
            );
            expect(
                lock.as_ref().is_some_and(|(m, _)| *m == Some(method)),
                format!("the run: the -v line does not say {:?}", method.verbose()),
            );
            expect(
                dry.status.success(),
                format!("--dry-run fails ({}) where the run locks", dry.status),
            );
            let planned = planned_method(&plan);
            expect(
                planned
                    .as_deref()
                    .is_some_and(|m| m.starts_with(&format!("{}:", method.word()))),
                format!(
                    "--dry-run: its method line is {planned:?}, not {}",
                    method.word()
                ),
            );
            expect(
                check.status.code() == Some(0)
                    && report.lines().any(|l| l.starts_with("verdict: ok")),
                format!(
                    "--check: exit {:?}, verdict {:?}, where the run locks",
                    check.status.code(),
                    report.lines().find(|l| l.starts_with("verdict:"))
                ),
            );
            let checked = finding(&report, "method");
            expect(
                checked.as_ref().is_some_and(|f| {
                    f.verdict == "ok" && f.text.starts_with(&format!("{}:", method.word()))
                }),
                format!(
                    "--check: its method finding is {checked:?}, not {}",
                    method.word()
                ),
            );
            expect(
                planned.is_some() && planned == checked.map(|f| f.text),
                "--dry-run's method line and --check's method finding say it in other words"
                    .to_owned(),
            );
        }
        Expect::LockFails(topic, says) => {
            let message = stderr_lines(&run).last().cloned().unwrap_or_default();
            expect(
                run.status.code() == Some(125) && !ran,
                format!(
                    "the run: exit {:?} (ran: {ran}), not the shim's 125",
                    run.status.code()
                ),
            );
            expect(
                says.iter().all(|s| message.contains(s)),
                format!("the run: its message does not say {says:?}: {message:?}"),
            );
            expect(
                dry.status.success(),
                format!("--dry-run fails ({}) where the plan goes ahead", dry.status),
            );
            let predicted = finding(&report, topic);
            expect(
                check.status.code() == Some(1)
                    && predicted.as_ref().is_some_and(|f| {
                        f.verdict == "FAIL" && says.iter().all(|s| f.text.contains(s))
                    }),
                format!(
                    "--check: exit {:?}, and its {topic} finding {predicted:?} does not predict {says:?}",
                    check.status.code()
                ),
            );
        }
        Expect::Refused(status, says) => {
            let message = stderr_lines(&run).last().cloned().unwrap_or_default();
            expect(
                run.status.code() == Some(status) && !ran,
                format!(
                    "the run: exit {:?} (ran: {ran}), not a refusal with {status}",
                    run.status.code()
                ),
            );
            expect(
                message.starts_with("memlock-run: ") && says.iter().all(|s| message.contains(s)),
                format!("the run: its message does not say {says:?}: {message:?}"),
            );
            expect(
                dry.status.code() == Some(status),
                format!(
                    "--dry-run: exit {:?} where the run is refused with {status}",
                    dry.status.code()
                ),
            );
            let dry_message = stderr_lines(&dry).last().cloned().unwrap_or_default();
            expect(
                flat(&dry_message) == flat(&message),
                format!("--dry-run: its message is not the run's: {dry_message:?}"),
            );
            expect(
                check.status.code() == Some(1)
                    && report.lines().any(|l| l.starts_with("verdict: FAIL")),
                format!(
                    "--check: exit {:?}, verdict {:?}, where the run is refused",
                    check.status.code(),
                    report.lines().find(|l| l.starts_with("verdict:"))
                ),
            );
            let wanted = body(&message);
            let fails: Vec<(String, Finding)> = findings(&report)
                .into_iter()
                .filter(|(_, f)| f.verdict == "FAIL")
                .collect();
            expect(
                !wanted.is_empty()
                    && fails.iter().any(|(_, f)| {
                        flat(&f.text).contains(&wanted)
                            || f.remedy
                                .as_deref()
                                .is_some_and(|r| flat(r).contains(&wanted))
                    }),
                format!(
                    "--check: no FAIL finding gives the run's message {wanted:?} (FAIL: {:?})",
                    fails.iter().map(|(t, _)| t).collect::<Vec<_>>()
                ),
            );
        }
    }
    for note in notes(&run) {
        let note = flat(&note);
        expect(
            flat(&plan).contains(&note),
            format!("--dry-run: the run's note is not in the plan: {note:?}"),
        );
        expect(
            flat(&report).contains(&note),
            format!("--check: the run's note is not in the report: {note:?}"),
        );
    }

    assert!(
        wrong.is_empty(),
        "{name}: the run, --dry-run and --check disagree:\n  - {}\n\n\
         the run: {}\n{}{}\n--dry-run: {}\n{}{}\n--check: {}\n{}{}",
        wrong.join("\n  - "),
        run.status,
        stdout_of(&run),
        stderr_of(&run),
        dry.status,
        plan,
        stderr_of(&dry),
        check.status,
        report,
        stderr_of(&check),
    );
}

/// The table: `NAME => ROW;`, where ROW is an `Option<Scenario>` (None: not testable here,
/// after a skip line saying why). Each row is a test named NAME.
macro_rules! scenarios {
    ($($(#[doc = $doc:literal])* $name:ident => $row:expr;)*) => {
        $(
            $(#[doc = $doc])*
            #[test]
            fn $name() {
                if let Some(row) = $row {
                    agree(stringify!($name), row);
                }
            }
        )*
    };
}

const PRELOAD: Expect = Expect::Locks(Method::Preload);
const PTRACE: Expect = Expect::Locks(Method::Ptrace);

scenarios! {
    /// The probe, a dynamically linked glibc program.
    a_dynamic_glibc_program => Some(command([probe()], PRELOAD));
    /// No PT_INTERP: no preload reaches it.
    a_static_program => Some(command([static_probe()], PTRACE));
    /// A 32-bit program: its loader must not be given the 64-bit shim.
    an_i386_program => compile_if_possible("gcc", "probe.c", "probe-i386", &["-m32"])
        .map(|p| command([p], PTRACE));
    /// A dynamically linked musl program takes the preload too.
    a_musl_program => compile_musl("probe.c", "probe-musl", &[]).map(|p| command([p], PRELOAD));
    /// A script whose interpreter the preload reaches.
    a_sh_script => Some(command(
        [agreement_script("agreement-sh", "#!/bin/sh\necho ready $$\n")],
        PRELOAD,
    ));
    /// The ptrace method, asked for, on a program the preload would reach.
    method_ptrace_with_a_dynamic_program => Some(
        command([probe()], PTRACE).options(&["--method", "ptrace"]),
    );
    /// Inheriting without the exec gate, as asked.
    no_exec_gate_with_a_static_program => Some(
        command([static_probe()], PTRACE).options(&["--no-exec-gate"]),
    );
    /// --prefault raises the soft RLIMIT_STACK, and glibc's default thread stack with it;
    /// only the shim can set that back, so the ptrace method notes it.
    prefault_8m_with_a_static_program => stack_can_grow().map(|()| {
        command([static_probe()], PTRACE).options(&["--prefault", "8M"])
    });
    /// Without CAP_IPC_LOCK, bound by the 8 MiB limit, which the probe fits in.
    nobody_without_cap_ipc_lock => as_nobody_here().map(|()| {
        command([probe()], PRELOAD).who(as_nobody().limit(CI_MEMLOCK))
    });
    /// nobody with CAP_IPC_LOCK in the ambient set, as `AmbientCapabilities=` gives it.
    as_nobody_with_ambient_cap_ipc_lock => as_nobody_here().map(|()| {
        command([probe()], PRELOAD).who(as_nobody().limit(CI_MEMLOCK).ambient_ipc_lock())
    });
    /// With CAP_IPC_LOCK a --limit above the hard limit is a note, not a refusal.
    limit_above_the_hard_limit_with_ambient_cap_ipc_lock => as_nobody_here().map(|()| {
        command([probe()], PRELOAD)
            .who(as_nobody().limit(CI_MEMLOCK).ambient_ipc_lock())
            .options(&["--limit", "64M"])
    });

    /// Set-user-ID root, run by nobody: secure-execution mode, where no method can lock it.
    a_set_user_id_program => set_user_id(&[]);
    a_set_user_id_program_with_method_ptrace => set_user_id(&["--method", "ptrace"]);
    a_set_user_id_program_with_method_preload => set_user_id(&["--method", "preload"]);
    /// The same under the no_new_privs a run of nobody sets to arm its exec gate: the kernel
    /// ignores the bit, runs it as nobody without secure-execution, and the preload locks it.
    a_set_user_id_program_under_no_new_privs => set_user_id_expecting(&[], PRELOAD);
    /// A file capability puts the program in secure-execution mode for nobody.
    a_program_with_file_capabilities => as_nobody_here()
        .and_then(|()| set_id_here())
        .and_then(|()| {
            (!skip_without("setcap", "the file-capability row is not tested")).then_some(())
        })
        .and_then(|()| {
            let capped = copy_with_mode(&probe(), "probe-filecap", 0o755);
            let set = output({
                let mut c = Command::new("setcap");
                c.arg("cap_ipc_lock+ep").arg(&capped);
                c
            });
            if !set.status.success() {
                skip(format_args!(
                    "setcap failed here ({}); the file-capability row is not tested",
                    stderr_of(&set).trim()
                ));
                return None;
            }
            Some(
                command([capped], Expect::Refused(125, &["file capabilities"]))
                    .who(as_nobody().limit(CI_MEMLOCK)),
            )
        });
    a_missing_command => Some(command(
        ["memlock-run-agreement-no-such-command"],
        Expect::Refused(127, &["not found"]),
    ));
    a_file_without_the_execute_bit => Some(command(
        [copy_with_mode(&probe(), "probe-noexec", 0o644)],
        Expect::Refused(126, &["not executable"]),
    ));
    /// execve(2) would fail with ENOEXEC.
    a_file_neither_elf_nor_script => Some(command(
        [agreement_script("agreement-no-shebang", "echo hi\n")],
        Expect::Refused(126, &["neither an ELF executable nor a #! script"]),
    ));
    /// An ELF header for AArch64 on x86-64 (or the reverse).
    a_program_for_another_machine => Some(command(
        [other_machine(&probe())],
        Expect::Refused(125, &["another class or machine"]),
    ));
    /// env -i would start the interpreter without the shim.
    an_env_dash_i_script => Some(command(
        [agreement_script("agreement-env-i", "#!/usr/bin/env -i sh\n")],
        Expect::Refused(125, &["env", "unlocked"]),
    ));
    method_preload_with_a_static_program => Some(
        command([static_probe()], Expect::Refused(125, &["statically linked"]))
            .options(&["--method", "preload"]),
    );
    method_preload_with_a_script_whose_interpreter_is_static => Some(
        command(
            [agreement_script(
                "agreement-static-interp",
                &format!("#!{}\n", static_probe().display()),
            )],
            Expect::Refused(125, &["is a #! script", "statically linked"]),
        )
        .options(&["--method", "preload"]),
    );
    /// --heap acts through glibc's malloc, from inside: it needs the shim.
    heap_with_a_static_program => Some(
        command([static_probe()], Expect::Refused(125, &["--heap", "ptrace method"]))
            .options(&["--heap", "1M"]),
    );
    fork_relock_with_a_static_program => Some(
        command([static_probe()], Expect::Refused(125, &["--fork relock", "ptrace method"]))
            .options(&["--fork", "relock"]),
    );
    /// musl's malloc has no settings for --heap.
    heap_with_a_musl_program => compile_musl("probe.c", "probe-musl", &[]).map(|p| {
        command([p], Expect::Refused(125, &["--heap", "musl"])).options(&["--heap", "1M"])
    });
    thread_stack_1k => Some(
        command([probe()], Expect::Refused(125, &["below the smallest thread stack"]))
            .options(&["--thread-stack", "1K"]),
    );
    /// env would be locked, and the interpreter it executes would not.
    no_inherit_with_an_env_script => Some(
        command(
            [agreement_script("agreement-env-sh", "#!/usr/bin/env sh\necho ready $$\n")],
            Expect::Refused(125, &["--no-inherit cannot work", "env"]),
        )
        .options(&["--no-inherit"]),
    );
    /// Its exec functions would go before the shim's in an inheriting run.
    ld_preload_naming_the_c_library => Some(
        command([probe()], Expect::Refused(125, &["LD_PRELOAD names the C library"]))
            .env("LD_PRELOAD", "libc.so.6"),
    );
    /// The pre-faulted stack cannot grow past a hard RLIMIT_STACK of 8 MiB.
    prefault_above_the_hard_stack_limit => Some(
        command([probe()], Expect::Refused(125, &["RLIMIT_STACK"]))
            .who(as_caller().limits(&["--memlock=8388608:8388608", "--stack=8388608:8388608"]))
            .options(&["--prefault", "8M"]),
    );
    limit_above_the_hard_limit => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["above the hard RLIMIT_MEMLOCK"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--limit", "64M"])
    });
    prefault_bigger_than_the_limit => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["--prefault 16 MiB cannot be locked"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--prefault", "16M"])
    });
    prefault_bigger_than_a_limit_asked_for => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["--prefault 2 MiB cannot be locked"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--limit", "1M", "--prefault", "2M"])
    });
    heap_bigger_than_the_limit => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["--heap"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--limit", "4M", "--heap", "4M"])
    });
    /// The probe's 2.3 MiB do not fit under 64 KiB: the shim's mlockall fails, which
    /// `--check` predicts from the ELF headers.
    a_lock_that_does_not_fit_under_a_low_limit => as_nobody_here().map(|()| {
        command([probe()], Expect::LockFails("lock at start", &["ENOMEM", "RLIMIT_MEMLOCK", "64 KiB"]))
            .who(as_nobody().limit("--memlock=65536:65536"))
    });
    user_nobody_when_not_root => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["--user needs root"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--user", "nobody"])
    });
    user_root_when_not_root => as_nobody_here().map(|()| {
        command([probe()], Expect::Refused(125, &["--user needs root"]))
            .who(as_nobody().limit(CI_MEMLOCK))
            .options(&["--user", "root"])
    });
}
