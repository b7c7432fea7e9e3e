//! The command line as a user meets it: exit statuses, --help, --dry-run, LD_PRELOAD,
//! inheritance across exec, and the signal state the target starts with.

mod common;

use std::ffi::OsStr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use assert_cmd::assert::{Assert, OutputAssertExt};
use predicates::prelude::*;

use common::*;

/// memlock-run for assert_cmd's assertions, started through `common::spawn` (see there).
struct Cli(Command);

impl Cli {
    fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.0.arg(arg);
        self
    }

    fn args(mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Self {
        self.0.args(args);
        self
    }

    fn assert(self) -> Assert {
        output(self.0).assert()
    }
}

fn cli() -> Cli {
    Cli(Command::new(memlock_run_path()))
}

#[test]
fn usage_errors_exit_125_and_name_the_bad_value() {
    cli()
        .args(["--prefault", "8X", "--", "true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("'8X'"));
    cli()
        .args(["--limit", "lots", "--", "true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("'lots'").and(predicate::str::contains("unlimited")));
    cli()
        .arg("--future")
        .assert()
        .code(125)
        .stderr(predicate::str::contains("COMMAND"));
    cli()
        .args(["--on-failure", "ignore", "true"])
        .assert()
        .code(125);
}

#[test]
fn help_and_version_exit_0() {
    cli()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--prefault"));
    cli()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

/// Commands memlock-run cannot run, refused as `env` refuses them: (what, the command, the
/// exit status, what the line says).
#[test]
fn a_command_that_cannot_run_exits_126_or_127() {
    // No x bit at all: not executable even by root, who may execute a file with any x bit.
    let plain = unique("not-executable");
    writing_executables(|| std::fs::write(&plain, "#!/bin/sh\n")).expect("write");
    set_mode(&plain, 0o644);
    // Executable, but neither ELF nor #!: execve(2) would fail with ENOEXEC.
    let text = unique("no-shebang");
    writing_executables(|| {
        std::fs::write(&text, "echo hello\n").expect("write");
        set_mode(&text, 0o755);
    });
    let rows: [(&str, PathBuf, i32, &str); 5] = [
        ("no x bit", plain, 126, "not executable"),
        ("a directory", scratch(), 126, "directory"),
        (
            "neither ELF nor #!",
            text,
            126,
            "neither an ELF executable nor a #! script",
        ),
        (
            "not in PATH",
            PathBuf::from("memlock-run-test-no-such-command"),
            127,
            "not found in PATH",
        ),
        (
            "no such file",
            scratch().join("no-such-file"),
            127,
            "no such file",
        ),
    ];
    for (what, command, status, says) in rows {
        let out = output(memlock_run([&command]));
        assert_refused(
            &out,
            Refused::before_main().status(status).row(what),
            &[says],
        );
    }
}

#[test]
fn the_targets_own_status_is_passed_through() {
    let probe = probe();
    cli().arg(&probe).args(["--exit", "7"]).assert().code(7);
    cli().arg(&probe).args(["--exit", "0"]).assert().success();
    // Same process: the parent sees the signal itself, not a status made up from it.
    let out = output(memlock_run(["sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{:?}", out.status);
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let probe = probe();
    let mark = marker("dry-run");
    let out = cli()
        .args(["--dry-run", "--future", "--prefault", "1M", "--"])
        .arg(&probe)
        .arg("--mark")
        .arg(&mark)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_mentions(
        &text,
        &[
            probe.to_str().unwrap(),
            "dynamic ELF",
            "MCL_CURRENT|MCL_FUTURE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_STACK",
            "capabilities:",
            "MEMLOCK_RUN_FLAGS=current,future",
            "MEMLOCK_RUN_PREFAULT=1048576",
            "LD_PRELOAD=",
        ],
    );
    assert!(!mark.exists(), "--dry-run executed the command");
}

#[test]
fn the_users_ld_preload_is_kept_before_the_shim() {
    let probe = probe();
    let extra = compile("extra_preload.c", "extra_preload.so", &["-shared", "-fPIC"]);
    let shim = shim_path().canonicalize().expect("shim");
    let mut cmd = memlock_run([OsStr::new("--"), probe.as_os_str()]);
    cmd.env("LD_PRELOAD", &extra);
    let running = Running::start(cmd);
    let maps = running.maps();
    assert!(
        maps.contains(extra.to_str().unwrap()),
        "the user's library is loaded"
    );
    assert!(maps.contains(shim.to_str().unwrap()), "the shim is loaded");
    assert_eq!(
        running.environ().get("LD_PRELOAD"),
        Some(&format!("{}:{}", extra.display(), shim.display()))
    );
    assert!(running.status().bytes("VmLck") >= MIB);
    assert!(running.finish().status.success());
}

#[test]
fn nested_memlock_run_adds_the_shim_once() {
    let probe = probe();
    let running = Running::start(memlock_run([
        OsStr::new("--future"),
        OsStr::new("--"),
        memlock_run_path().as_os_str(),
        OsStr::new("--"),
        probe.as_os_str(),
    ]));
    let preload = running
        .environ()
        .get("LD_PRELOAD")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        preload.matches("libmemlock_run_shim.so").count(),
        1,
        "LD_PRELOAD={preload}"
    );
    assert_eq!(
        running
            .environ()
            .get("MEMLOCK_RUN_FLAGS")
            .map(String::as_str),
        Some("current"),
        "the inner run's own settings win"
    );
    assert!(running.status().bytes("VmLck") >= MIB);
    assert!(running.finish().status.success());
}

fn wrapper(name: &str, body: &str) -> PathBuf {
    script(
        &unique(name).file_name().unwrap().to_string_lossy(),
        &format!("#!/bin/sh\n{body}\n"),
    )
}

fn run_wrapper(options: &[&str], wrapper: &Path, probe: &Path) -> Running {
    let mut cmd = memlock_run(options);
    cmd.arg("--").arg(wrapper).arg(probe);
    Running::start(cmd)
}

/// A wrapper script that execs the program (same PID), or starts it as a child: either
/// way the program is locked, and so is the shell. (what, the wrapper's body, exec'd)
#[test]
fn a_program_a_wrapper_starts_is_locked() {
    let probe = probe();
    for (what, body, execs) in [
        ("exec-wrapper.sh", "exec \"$@\"", true),
        ("child-wrapper.sh", "\"$@\"\nexit $?", false),
    ] {
        let wrapper = wrapper(what, body);
        let running = run_wrapper(&[], &wrapper, &probe);
        assert_eq!(
            running.pid == running.child_pid(),
            execs,
            "{what}: the probe is the process memlock-run started (exec), or the shell's child"
        );
        assert!(
            running.status().bytes("VmLck") >= MIB,
            "{what}: the program is locked"
        );
        assert!(
            ProcStatus::read(running.child_pid()).bytes("VmLck") >= MIB,
            "{what}: the process memlock-run started (the shell, or the program it became) is locked"
        );
        assert!(
            running.maps().contains(probe.to_str().unwrap()),
            "{what}: it is the probe"
        );
        assert!(running.finish().status.success(), "{what}");
    }
}

#[test]
fn no_inherit_locks_the_command_only() {
    let probe = probe();
    let wrapper = wrapper("no-inherit-wrapper.sh", "\"$@\"\nexit $?");
    let running = run_wrapper(&["--no-inherit"], &wrapper, &probe);
    let shell = ProcStatus::read(running.child_pid());
    assert!(
        shell.bytes("VmLck") >= MIB,
        "the wrapper itself is locked: {}",
        shell.get("VmLck")
    );
    assert_eq!(
        running.status().bytes("VmLck"),
        0,
        "the program it runs is not"
    );
    let environ = running.environ();
    let leftovers: Vec<_> = environ
        .iter()
        .filter(|(k, v)| k.starts_with("MEMLOCK_RUN_") || v.contains("libmemlock_run_shim"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the shim took itself out of the environment: {leftovers:?}"
    );
    assert!(
        !running.maps().contains("libmemlock_run_shim"),
        "not loaded in the program"
    );
    assert!(running.finish().status.success());
}

#[test]
fn no_inherit_keeps_the_users_own_preload_for_the_programs_it_runs() {
    let probe = probe();
    let extra = compile("extra_preload.c", "extra_preload.so", &["-shared", "-fPIC"]);
    let wrapper = wrapper("no-inherit-preload.sh", "\"$@\"\nexit $?");
    let mut cmd = memlock_run(["--no-inherit", "--"]);
    cmd.arg(&wrapper).arg(&probe).env("LD_PRELOAD", &extra);
    let running = Running::start(cmd);
    assert_eq!(
        running.environ().get("LD_PRELOAD"),
        Some(&extra.to_str().unwrap().to_owned())
    );
    assert!(
        running.maps().contains(extra.to_str().unwrap()),
        "the user's library is still loaded"
    );
    assert_eq!(running.status().bytes("VmLck"), 0);
    assert!(running.finish().status.success());
}

#[test]
fn no_inherit_with_an_env_script_is_refused() {
    let script = script(
        &unique("env-sh.sh").file_name().unwrap().to_string_lossy(),
        "#!/usr/bin/env sh\ntrue\n",
    );
    let out = output(memlock_run(["--no-inherit".as_ref(), script.as_os_str()]));
    assert_refused(
        &out,
        Refused::before_main(),
        &["--no-inherit cannot work", "env"],
    );
}

/// Starts the probe with a signal state set up in the child first, once directly and once
/// through memlock-run; returns both statuses (direct, through memlock-run).
fn with_signal_state(setup: fn() -> std::io::Result<()>) -> (ProcStatus, ProcStatus) {
    let probe = probe();
    let start = |mut cmd: Command| {
        // SAFETY: the setup closures only call async-signal-safe signal(2) and sigprocmask(2).
        unsafe { cmd.pre_exec(setup) };
        let running = Running::start(cmd);
        let status = running.status();
        assert!(running.finish().status.success());
        status
    };
    let direct = start(Command::new(&probe));
    let through = start(memlock_run([OsStr::new("--"), probe.as_os_str()]));
    assert!(through.bytes("VmLck") >= MIB);
    // As if started directly: memlock-run adds and removes nothing.
    for field in ["SigIgn", "SigBlk"] {
        assert_eq!(through.get(field), direct.get(field), "{field}");
    }
    (direct, through)
}

const fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

#[test]
fn the_target_starts_with_default_dispositions() {
    // std's Command starts children with SIGPIPE at its default and an empty mask, while
    // memlock-run itself (a Rust program) ignores SIGPIPE, which must not leak into the target.
    let (_, status) = with_signal_state(|| Ok(()));
    assert_eq!(
        status.signals("SigIgn") & bit(libc::SIGPIPE),
        0,
        "SigIgn {}",
        status.get("SigIgn")
    );
    assert_eq!(
        status.signals("SigBlk"),
        0,
        "SigBlk {}",
        status.get("SigBlk")
    );
}

#[test]
fn signals_ignored_by_the_parent_stay_ignored() {
    let (_, status) = with_signal_state(|| {
        // SAFETY: setting SIG_IGN installs no handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
        Ok(())
    });
    let ignored = status.signals("SigIgn");
    assert_eq!(
        ignored & bit(libc::SIGPIPE),
        bit(libc::SIGPIPE),
        "SigIgn {}",
        status.get("SigIgn")
    );
    assert_eq!(
        ignored & bit(libc::SIGHUP),
        bit(libc::SIGHUP),
        "SigIgn {}",
        status.get("SigIgn")
    );
}

#[test]
fn nohup_still_works() {
    if skip_without("nohup", "runs memlock-run under nohup") {
        return;
    }
    let probe = probe();
    let mut cmd = Command::new("nohup");
    cmd.arg(memlock_run_path()).arg("--").arg(&probe);
    let running = Running::start(cmd);
    let status = running.status();
    assert_eq!(
        status.signals("SigIgn") & bit(libc::SIGHUP),
        bit(libc::SIGHUP),
        "SigIgn {}",
        status.get("SigIgn")
    );
    assert!(status.bytes("VmLck") >= MIB);
    assert!(running.finish().status.success());
}

#[test]
fn a_signal_blocked_by_the_parent_stays_blocked() {
    let (_, status) = with_signal_state(|| {
        // SAFETY: sigset operations on a local set, then sigprocmask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigaddset(&mut set, libc::SIGTERM);
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    });
    assert_eq!(
        status.signals("SigBlk"),
        bit(libc::SIGUSR1) | bit(libc::SIGTERM),
        "SigBlk {}",
        status.get("SigBlk")
    );
}

/// `cmd` with stdout or stderr on /dev/full, where every write fails with ENOSPC.
fn to_dev_full(mut cmd: Command, stdout: bool) -> std::process::Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    if stdout {
        cmd.stdout(full).stderr(Stdio::piped());
    } else {
        cmd.stderr(full).stdout(Stdio::piped());
    }
    cmd.stdin(Stdio::null());
    spawn(&mut cmd)
        .and_then(|child| child.wait_with_output())
        .expect("run memlock-run")
}

#[test]
fn a_failing_stderr_or_stdout_changes_no_exit_status() {
    if !Path::new("/dev/full").exists() {
        skip(format_args!(
            "/dev/full does not exist; it is how a failing write is made"
        ));
        return;
    }
    // An error that cannot be printed is still the same error: 127, not an abort.
    let out = to_dev_full(memlock_run(["--", "/nonexistent/memlock-run-test"]), false);
    assert_eq!(out.status.code(), Some(127), "{:?}", out.status);
    let out = to_dev_full(memlock_run(["--prefault", "8X", "--", "true"]), false);
    assert_eq!(out.status.code(), Some(125), "{:?}", out.status);
    // A note that cannot be printed does not stop the run.
    let probe = probe();
    if !skip_unless_root("the note on --limit above the hard limit needs CAP_IPC_LOCK") {
        let out = to_dev_full(
            memlock_run([
                OsStr::new("--limit"),
                OsStr::new("unlimited"),
                OsStr::new("--"),
                probe.as_os_str(),
                OsStr::new("--exit"),
                OsStr::new("7"),
            ]),
            false,
        );
        assert_eq!(out.status.code(), Some(7), "{:?}", out.status);
    }
    // A plan that cannot be written is a failure of memlock-run's own.
    let out = to_dev_full(
        memlock_run([OsStr::new("--dry-run"), OsStr::new("--"), probe.as_os_str()]),
        true,
    );
    assert_eq!(
        out.status.code(),
        Some(125),
        "{:?} {}",
        out.status,
        stderr_of(&out)
    );
    assert_mentions(&one_line(&out), &["--dry-run", "No space left on device"]);
}

#[test]
fn closed_standard_descriptors_stay_closed_for_the_command() {
    use std::os::unix::process::CommandExt;
    let mut cmd = memlock_run([
        "--",
        "sh",
        "-c",
        "if [ -e /proc/self/fd/0 ]; then echo open; else echo closed; fi",
    ]);
    // SAFETY: close(2) is async-signal-safe; the child has only this thread.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closed",
        "stdin was closed for memlock-run"
    );
}
