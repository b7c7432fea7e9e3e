//! `memlock-run --check`: its verdicts, and that it predicts what a real run then does.
//!
//! Each prediction test runs the same options twice, once with `--check` and once for
//! real, and holds the check to what happened: the refusal message, the exit status, the
//! shim's failure. The refusals a plain run, `--dry-run` and `--check` must agree on are
//! one table in agreement.rs; here are the findings only `--check` makes, and the cases
//! that need a setup of their own (a cgroup, securebits, a user namespace, a copy of
//! memlock-run).

mod common;

use std::ffi::OsString;
use std::process::Command;

use common::*;

/// `2.32 MiB` back to bytes.
fn size(text: &str) -> f64 {
    let (number, unit) = text.trim().split_once(' ').expect("NUMBER UNIT");
    let shift = match unit {
        "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => panic!("unit {unit}"),
    };
    number.parse::<f64>().expect("number") * f64::from(1u32 << shift)
}

/// The size right after `label` in `text`: `VmSize 2.32 MiB`.
fn size_after(text: &str, label: &str) -> f64 {
    let rest = &text[text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        + label.len()..];
    let words: Vec<&str> = rest.split_whitespace().take(2).collect();
    size(&format!(
        "{} {}",
        words[0],
        words[1].trim_end_matches([',', ';'])
    ))
}

/// True (with a skip line) where the runs as nobody cannot be made.
fn skip_as_nobody() -> bool {
    skip_unprivileged_run("runs as nobody")
        || skip_unless_memlock_hard_at_least(
            8 * MIB,
            "the cases assume an 8 MiB hard RLIMIT_MEMLOCK",
        )
}

fn args(words: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    words.iter().map(|w| w.as_ref().to_owned()).collect()
}

fn with_check(options: &[OsString]) -> Vec<OsString> {
    let mut all = vec![OsString::from("--check")];
    all.extend(options.iter().cloned());
    all
}

#[test]
fn a_dynamic_program_passes_as_root() {
    let probe = probe();
    let out = output(memlock_run(args(&[&"--check", &"--future", &"--", &probe])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    for topic in [
        "CAP_IPC_LOCK",
        "COMMAND",
        "preload",
        "VmSize at start",
        "lock at start",
    ] {
        assert_eq!(
            finding_of(&report, topic).verdict,
            "ok",
            "{topic} in:\n{report}"
        );
    }
    assert!(report.contains("verdict: ok"), "{report}");
    assert!(
        report.contains("MCL_CURRENT|MCL_FUTURE"),
        "the shim's spelling of the flags:\n{report}"
    );
    for topic in [
        "RLIMIT_MEMLOCK",
        "RLIMIT_STACK",
        "ambient set",
        "no_new_privs",
        "MCL_ONFAULT",
        "swap",
        "memory cgroup",
    ] {
        assert!(
            finding(&report, topic).is_some(),
            "no {topic} in:\n{report}"
        );
    }
}

#[test]
fn without_command_it_checks_the_system() {
    let out = output(memlock_run(["--check"]));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        finding_of(&report, "COMMAND").text.contains("none given"),
        "{report}"
    );
    assert!(finding(&report, "VmSize at start").is_none());
}

#[test]
fn the_estimate_is_close_to_what_the_shim_sees() {
    let probe = probe();
    let report = stdout_of(&output(memlock_run(args(&[&"--check", &"--", &probe]))));
    let text = finding_of(&report, "VmSize at start").text;
    assert!(
        text.contains("an estimate"),
        "it says it is an estimate: {text}"
    );
    let estimate = size_after(&text, "about");
    let run = output(memlock_run(args(&[
        &"--verbose",
        &"--",
        &probe,
        &"--exit",
        &"0",
    ])));
    let line = stderr_of(&run);
    let actual = size_after(&line, "VmSize");
    let ratio = estimate / actual;
    assert!(
        (0.75..1.34).contains(&ratio),
        "estimate {estimate} against VmSize {actual}: {line}"
    );
}

#[test]
fn a_too_low_limit_fails_the_check_as_the_shim_then_fails() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let options = args(&[&"--limit", &"1M", &"--", &probe]);
    let check = output(
        as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(with_check(&options)),
    );
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let Finding { verdict, text, .. } = finding_of(&report, "lock at start");
    assert_eq!(verdict, "FAIL", "{report}");
    assert!(
        text.contains("ENOMEM") && text.contains("RLIMIT_MEMLOCK 1 MiB"),
        "{text}"
    );
    // The estimate plus a quarter, in whole MiB, within the hard limit prlimit set.
    assert!(
        report.contains("M (the hard limit, 8 MiB, allows it)"),
        "the remedy names a --limit:\n{report}"
    );
    assert!(
        report.contains("AmbientCapabilities=CAP_IPC_LOCK"),
        "{report}"
    );

    let run = output(as_nobody().limit(CI_MEMLOCK).memlock_run(&options));
    let err = assert_refused(
        &run,
        Refused::before_main(),
        &["ENOMEM", "RLIMIT_MEMLOCK is 1 MiB"],
    );
    // Same word, same unit: the shim's VmSize against the check's estimate.
    let estimate = size_after(&text, "VmSize about");
    let actual = size_after(&err, "VmSize is");
    assert!((0.75..1.34).contains(&(estimate / actual)), "{text}\n{err}");
}

#[test]
fn a_missing_capability_is_a_warning_and_granting_it_clears_it() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let options = with_check(&args(&[&"--", &probe]));
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run(&options));
    let report = stdout_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the default limit fits the probe:\n{report}"
    );
    let Finding { verdict, text, .. } = finding_of(&report, "CAP_IPC_LOCK");
    assert_eq!(verdict, "warn", "{report}");
    assert!(
        text.contains("permitted no") && text.contains("not held"),
        "{text}"
    );
    assert!(
        report.contains("to fix:") && report.contains("AmbientCapabilities=CAP_IPC_LOCK"),
        "{report}"
    );

    let out = output(as_nobody().ambient_ipc_lock().memlock_run(&options));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(
        finding_of(&report, "CAP_IPC_LOCK").verdict,
        "ok",
        "{report}"
    );
    assert!(
        finding_of(&report, "lock at start")
            .text
            .contains("not bound by RLIMIT_MEMLOCK"),
        "{report}"
    );
}

#[test]
fn a_static_target_and_a_script_are_judged_as_the_launcher_judges_them() {
    let probe = probe();
    let stat = static_probe();
    let out = output(memlock_run(args(&[&"--check", &"--", &stat])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        finding_of(&report, "COMMAND").text.contains("static ELF"),
        "{report}"
    );
    let Finding { verdict, text, .. } = finding_of(&report, "method");
    assert_eq!(verdict, "ok", "{report}");
    assert!(
        text.starts_with("ptrace:") && text.contains("statically linked"),
        "{report}"
    );
    assert_eq!(finding_of(&report, "ptrace").verdict, "ok", "{report}");
    let out = output(memlock_run(args(&[
        &"--check",
        &"--method",
        &"preload",
        &"--",
        &stat,
    ])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(finding_of(&report, "method").verdict, "FAIL", "{report}");

    let sh_script = script("check-sh-script", "#!/bin/sh\nexec true\n");
    let out = output(memlock_run(args(&[&"--check", &"--", &sh_script])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let text = finding_of(&report, "COMMAND").text;
    assert!(
        text.contains("#! script run by /bin/sh"),
        "names the interpreter: {text}"
    );
    assert!(
        finding_of(&report, "preload").text.contains("/bin/sh"),
        "{report}"
    );

    let env_script = script(
        "check-env-script",
        &format!(
            "#!/usr/bin/env {}\n",
            probe.file_name().unwrap().to_str().unwrap()
        ),
    );
    let mut cmd = memlock_run(args(&[&"--check", &"--", &env_script]));
    cmd.env(
        "PATH",
        format!("{}:/usr/bin:/bin", probe.parent().unwrap().display()),
    );
    let report = stdout_of(&output(cmd));
    assert!(
        finding_of(&report, "preload")
            .text
            .contains("env runs first"),
        "{report}"
    );
}

#[test]
fn onfault_support_is_reported() {
    let out = output(memlock_run(["--check", "--onfault"]));
    let report = stdout_of(&out);
    let Finding { verdict, text, .. } = finding_of(&report, "MCL_ONFAULT");
    assert!(
        text.contains("mlock2(NULL, 0, MLOCK_ONFAULT)"),
        "says how it decided: {text}"
    );
    // Linux 4.4 has it; a CI kernel without it would fail the check as the shim would fail.
    assert_eq!(verdict == "ok", out.status.code() == Some(0), "{report}");
}

/// A child of this process's cgroup v1 memory cgroup with a hard limit, removed on drop.
struct MemoryCgroup(std::path::PathBuf);

impl MemoryCgroup {
    /// `None` (and why, on stderr) where there is no writable v1 memory hierarchy at
    /// /sys/fs/cgroup/memory; cgroup v2 would need the memory controller delegated to a
    /// cgroup without processes, which a test cannot arrange on any host.
    fn create(limit: u64) -> Option<MemoryCgroup> {
        let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = membership.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| path.to_owned())
        });
        let base = std::path::Path::new("/sys/fs/cgroup/memory");
        let Some(path) = path.filter(|_| base.join("memory.limit_in_bytes").exists()) else {
            skip(format_args!(
                "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
            ));
            return None;
        };
        let dir = base
            .join(path.trim_start_matches('/'))
            .join(format!("memlock-run-test-{}", std::process::id()));
        let made = std::fs::create_dir(&dir)
            .and_then(|()| std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string()));
        if let Err(err) = made {
            skip(format_args!(
                "cannot make a memory cgroup at {}: {err}",
                dir.display()
            ));
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(MemoryCgroup(dir))
    }

    /// `sh -c 'echo $$ > cgroup.procs; exec memlock-run ARGS'`
    fn command(&self, options: &[OsString]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
                self.0.display()
            ))
            .arg(memlock_run_path())
            .args(options);
        cmd
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_memory_cgroup_too_small_for_the_locked_stack_is_predicted() {
    use std::os::unix::process::ExitStatusExt;
    let Some(cgroup) = MemoryCgroup::create(4 * MIB) else {
        return;
    };
    let probe = probe();
    let options = args(&[&"--prefault", &"8M", &"--", &probe, &"--exit", &"0"]);
    let check = output(cgroup.command(&with_check(&options)));
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let Finding { verdict, text, .. } = finding_of(&report, "memory cgroup");
    assert_eq!(verdict, "FAIL", "{report}");
    assert!(
        text.contains("limit 4 MiB") && text.contains("OOM killer"),
        "{text}"
    );
    let run = output(cgroup.command(&options));
    assert_eq!(
        run.status.signal(),
        Some(9),
        "the OOM killer ends it: {:?} {}",
        run.status,
        stderr_of(&run)
    );
}

#[test]
fn a_set_user_id_memlock_run_refuses_to_check_too() {
    if skip_unprivileged_run("runs as nobody")
        || skip_on_nosuid(&scratch(), "a set-user-ID memlock-run is not tested")
    {
        return;
    }
    // A copy of memlock-run and its shim, the copy set-user-ID root, run by nobody.
    let dir = scratch().join("setuid-install");
    std::fs::create_dir_all(&dir).expect("mkdir");
    set_mode(&dir, 0o755);
    let launcher = dir.join("memlock-run");
    let _ = std::fs::remove_file(&launcher);
    writing_executables(|| std::fs::copy(memlock_run_path(), &launcher)).expect("copy memlock-run");
    set_mode(&launcher, 0o4755);
    writing_executables(|| std::fs::copy(shim_path(), dir.join("libmemlock_run_shim.so")))
        .expect("copy the shim");
    let probe = probe();
    let run_as_nobody = |check: bool| {
        let mut cmd = as_nobody().program(&launcher);
        if check {
            cmd.arg("--check");
        }
        output({
            cmd.arg("--").arg(&probe).args(["--exit", "0"]);
            cmd
        })
    };
    let run = run_as_nobody(false);
    assert_refused(&run, Refused::before_main(), &["set-user-ID"]);
    let message = launcher_message(&run);
    // --check refuses to run at all, with the run's own reason: with that privilege it would
    // read other users' files and processes.
    let check = run_as_nobody(true);
    assert_eq!(check.status.code(), Some(125), "{}", stdout_of(&check));
    assert!(check.stdout.is_empty(), "{}", stdout_of(&check));
    assert_eq!(launcher_message(&check), message);
}

#[test]
fn a_forbidden_ambient_raise_is_predicted() {
    let secbits = compile("secbits.c", "secbits", &[]);
    let probe = probe();
    let run = |check: bool| {
        let mut cmd = Command::new(&secbits);
        // SECBIT_NO_CAP_AMBIENT_RAISE
        cmd.arg("0x40").arg(memlock_run_path());
        if check {
            cmd.arg("--check");
        }
        cmd.arg("--").arg(&probe).args(["--exit", "0"]);
        output(cmd)
    };
    let real = run(false);
    assert_refused(
        &real,
        Refused::before_main(),
        &[
            "cannot raise CAP_IPC_LOCK in the ambient set",
            "SECBIT_NO_CAP_AMBIENT_RAISE",
        ],
    );
    let message = launcher_message(&real);
    let check = run(true);
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let Finding {
        verdict,
        text,
        remedy,
        ..
    } = finding_of(&report, "CAP_IPC_LOCK");
    assert_eq!(
        remedy.as_deref(),
        Some(message.as_str()),
        "the run's own message is --check's remedy:\n{report}"
    );
    assert_eq!(verdict, "FAIL", "{report}");
    assert!(text.contains("SECBIT_NO_CAP_AMBIENT_RAISE"), "{text}");
    assert_eq!(
        finding_of(&report, "ambient set").verdict,
        "warn",
        "{report}"
    );
    assert!(
        report.contains("verdict: FAIL: 1 problem"),
        "counted once:\n{report}"
    );
}

#[test]
fn heap_under_another_allocator_is_predicted() {
    let Some(jemalloc) = find_library("libjemalloc.so.2") else {
        skip(format_args!(
            "libjemalloc.so.2 is not installed (apt-get install libjemalloc2)"
        ));
        return;
    };
    let probe = probe();
    let options = args(&[&"--heap", &"1M", &"--", &probe, &"--exit", &"0"]);
    let mut check = memlock_run(with_check(&options));
    check.env("LD_PRELOAD", &jemalloc);
    let check = output(check);
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let Finding {
        verdict,
        text,
        remedy,
    } = finding_of(&report, "--heap");
    assert_eq!(verdict, "FAIL");
    assert!(text.contains("libjemalloc.so.2"), "{text}");
    let mut run = memlock_run(&options);
    run.env("LD_PRELOAD", &jemalloc);
    let run = output(run);
    // The shim's failure ends with the remedy the check gives, word for word.
    let remedy = remedy.expect("a remedy for --heap");
    assert_refused(&run, Refused::before_main(), &[&remedy]);
}

#[test]
fn a_shim_the_user_cannot_read_is_predicted() {
    if skip_unless_root("--user needs root") {
        return;
    }
    // memlock-run and its shim in a directory only root may enter, run for nobody.
    let dir = scratch().join("private-install");
    std::fs::create_dir_all(&dir).expect("mkdir");
    set_mode(&dir, 0o700);
    let launcher = dir.join("memlock-run");
    writing_executables(|| {
        std::fs::copy(memlock_run_path(), &launcher)?;
        std::fs::copy(shim_path(), dir.join("libmemlock_run_shim.so"))
    })
    .expect("copy memlock-run and its shim");
    let probe = probe();
    let run = |check: bool| {
        let mut cmd = Command::new(&launcher);
        if check {
            cmd.arg("--check");
        }
        cmd.args(["--user", "nobody", "--"])
            .arg(&probe)
            .args(["--exit", "0"]);
        output(cmd)
    };
    let real = run(false);
    assert_refused(
        &real,
        Refused::before_main(),
        &["nobody cannot read the shim"],
    );
    let message = launcher_message(&real);
    let check = run(true);
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert_eq!(
        finding_of(&report, "shim access").verdict,
        "FAIL",
        "{report}"
    );
    assert!(report.contains(&message), "{message}\n{report}");
}

/// In a user namespace memlock-run's CAP_IPC_LOCK is the namespace's, which mlock(2) does not
/// honour: --check predicts the run's failure instead of counting on the capability.
#[test]
fn namespaced_capabilities_are_not_taken_for_real() {
    let probe = probe();
    let in_userns = |check: bool| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-root-user", "--"])
            .arg(memlock_run_path());
        if check {
            cmd.arg("--check");
        }
        cmd.args(["--limit", "1M", "--"])
            .arg(&probe)
            .args(["--exit", "0"]);
        output(cmd)
    };
    let check = in_userns(true);
    if stderr_of(&check).contains("unshare failed") {
        skip(format_args!(
            "unprivileged user namespaces are not available here: {}",
            stderr_of(&check).trim()
        ));
        return;
    }
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert_eq!(
        finding_of(&report, "user namespace").verdict,
        "warn",
        "{report}"
    );
    assert_eq!(
        finding_of(&report, "lock at start").verdict,
        "FAIL",
        "{report}"
    );
    let run = in_userns(false);
    assert_refused(
        &run,
        Refused::before_main(),
        &["ENOMEM", "RLIMIT_MEMLOCK is 1 MiB"],
    );
}

/// Under no_new_privs the kernel still keeps a file capability that the caller already holds
/// in its permitted set (a Kubernetes pod's added capability): --check must not say that file
/// capabilities give nothing.
#[test]
fn no_new_privs_is_described_as_the_kernel_applies_it() {
    let out = output(as_caller().no_new_privs().memlock_run(["--check"]));
    let report = stdout_of(&out);
    let text = finding_of(&report, "no_new_privs").text;
    assert!(text.starts_with("set:"), "{report}");
    assert!(
        text.contains("only what its caller already holds in the permitted set"),
        "{text}"
    );
}

/// The probe that grows its main stack by N MiB (tests/probes/deepstack.c).
fn deepstack() -> std::path::PathBuf {
    compile("deepstack.c", "deepstack", &[])
}

/// The locked main stack is charged page by page as it grows: `--check` names how far it can
/// grow at the limit, and a real run holds to it: a little less runs, a little more is a SIGSEGV.
#[test]
fn the_room_left_for_the_stack_is_named_and_holds() {
    if skip_as_nobody() {
        return;
    }
    let deepstack = deepstack();
    let options = args(&[&"--", &deepstack]);
    let check = output(
        as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(with_check(&options)),
    );
    let report = stdout_of(&check);
    assert_eq!(
        check.status.code(),
        Some(0),
        "a warning, not a FAIL:\n{report}"
    );
    let Finding {
        verdict,
        text,
        remedy,
    } = finding_of(&report, "stack growth");
    assert_eq!(verdict, "warn", "{report}");
    assert!(
        text.contains("SIGSEGV") && text.contains("RLIMIT_STACK 8 MiB"),
        "{text}"
    );
    assert!(
        remedy.is_some_and(|r| r.contains("CAP_IPC_LOCK")),
        "{report}"
    );
    let room = size_after(&text, "the stack can grow by") / MIB as f64;
    assert!((3.0..7.5).contains(&room), "{text}");

    // The estimate is a floor of what is locked at start, so the room is a ceiling: 1.5 MiB
    // under it runs, past it (still within RLIMIT_STACK) the growth fails.
    let run = |mib: u64| {
        let mut cmd = as_nobody().limit(CI_MEMLOCK).memlock_run(&options);
        cmd.arg(mib.to_string());
        output(cmd)
    };
    let fits = run((room - 1.5).floor() as u64);
    assert_eq!(fits.status.code(), Some(0), "{}", stderr_of(&fits));
    let past = run(room.ceil() as u64);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(past.status.signal(), Some(libc::SIGSEGV), "{past:?}");

    // As root, CAP_IPC_LOCK lifts the limit: no warning.
    let report = stdout_of(&output(memlock_run(with_check(&options))));
    assert_eq!(
        finding(&report, "stack growth").map(|f| f.verdict),
        None,
        "{report}"
    );
}

/// Under --future a thread's whole stack is locked at pthread_create: with less room than one
/// stack, `--check` says FAIL with its remedies, and the real run's first thread fails EAGAIN.
#[test]
fn a_thread_that_cannot_fit_under_future_fails_the_check() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let options = args(&[&"--future", &"--", &probe, &"--threads", &"1"]);
    let check = output(
        as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(with_check(&options)),
    );
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let Finding {
        verdict,
        text,
        remedy,
    } = finding_of(&report, "threads");
    assert_eq!(verdict, "FAIL", "{report}");
    assert!(
        text.contains("EAGAIN") && text.contains("8 MiB, the default from RLIMIT_STACK"),
        "{text}"
    );
    let remedy = remedy.unwrap_or_default();
    assert!(
        remedy.contains("--thread-stack 256K") && remedy.contains("CAP_IPC_LOCK"),
        "{remedy}"
    );
    assert_eq!(finding_of(&report, "MCL_FUTURE").verdict, "warn");
    assert!(
        finding_of(&report, "MCL_FUTURE")
            .text
            .contains("is left for its heap"),
        "{report}"
    );

    let run = output(as_nobody().limit(CI_MEMLOCK).memlock_run(&options));
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert!(
        stderr_of(&run).contains("probe: pthread_create: Resource temporarily unavailable"),
        "{}",
        stderr_of(&run)
    );

    // With the remedy, the check counts the threads that fit, and the run starts its thread.
    let options = args(&[
        &"--future",
        &"--thread-stack",
        &"256K",
        &"--",
        &probe,
        &"--threads",
        &"1",
    ]);
    let report = stdout_of(&output(
        as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(with_check(&options)),
    ));
    let Finding { verdict, text, .. } = finding_of(&report, "threads");
    assert_eq!(verdict, "warn", "{report}");
    assert!(text.contains("threads fit"), "{text}");
    let run = output(as_nobody().limit(CI_MEMLOCK).memlock_run(&options));
    assert_eq!(run.status.code(), Some(0), "{run:?}");
}
