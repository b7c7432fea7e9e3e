//! `memlock-run --check`: its verdicts, and that it predicts what a real run then does.
//!
//! Each prediction test runs the same options twice, once with `--check` and once for
//! real, and holds the check to what happened: the refusal message, the exit status, the
//! shim's failure.

mod common;

use std::ffi::OsString;
use std::process::Command;

use common::*;

fn verdict_of(report: &str, topic: &str) -> String {
    finding(report, topic)
        .unwrap_or_else(|| panic!("no {topic} finding in:\n{report}"))
        .0
}

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

/// `prlimit --memlock=8M:8M [--stack=...] -- setpriv (nobody) -- memlock-run ARGS`: the
/// hard memlock limit fixed, so that the cases do not depend on the host's.
fn as_nobody(args: &[OsString], extra_limits: &[&str]) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg("--memlock=8388608:8388608")
        .args(extra_limits)
        .arg("--");
    let inner = memlock_run_as_nobody(false, args);
    cmd.arg(inner.get_program()).args(inner.get_args());
    cmd
}

fn as_root(args: &[OsString], extra_limits: &[&str]) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg("--memlock=8388608:8388608")
        .args(extra_limits)
        .arg("--");
    cmd.arg(memlock_run_path()).args(args);
    cmd
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
        assert_eq!(verdict_of(&report, topic), "ok", "{topic} in:\n{report}");
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
        finding(&report, "COMMAND")
            .unwrap()
            .1
            .contains("none given"),
        "{report}"
    );
    assert!(finding(&report, "VmSize at start").is_none());
}

#[test]
fn the_estimate_is_close_to_what_the_shim_sees() {
    let probe = probe();
    let report = stdout_of(&output(memlock_run(args(&[&"--check", &"--", &probe]))));
    let (_, text) = finding(&report, "VmSize at start").expect("an estimate");
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
    if skip_unprivileged_run("runs as nobody")
        || skip_unless_memlock_hard_at_least(
            8 * MIB,
            "the cases assume an 8 MiB hard RLIMIT_MEMLOCK",
        )
    {
        return;
    }
    let probe = probe();
    let options = args(&[&"--limit", &"1M", &"--", &probe]);
    let check = output(as_nobody(&with_check(&options), &[]));
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let (verdict, text) = finding(&report, "lock at start").expect("a lock finding");
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

    let run = output(as_nobody(&options, &[]));
    let err = stderr_of(&run);
    assert_eq!(run.status.code(), Some(125), "{err}");
    assert!(
        err.contains("ENOMEM") && err.contains("RLIMIT_MEMLOCK is 1 MiB"),
        "{err}"
    );
    // Same word, same unit: the shim's VmSize against the check's estimate.
    let estimate = size_after(&text, "VmSize about");
    let actual = size_after(&err, "VmSize is");
    assert!((0.75..1.34).contains(&(estimate / actual)), "{text}\n{err}");
}

#[test]
fn a_missing_capability_is_a_warning_and_granting_it_clears_it() {
    if skip_unprivileged_run("runs as nobody")
        || skip_unless_memlock_hard_at_least(
            8 * MIB,
            "the cases assume an 8 MiB hard RLIMIT_MEMLOCK",
        )
    {
        return;
    }
    let probe = probe();
    let options = with_check(&args(&[&"--", &probe]));
    let out = output(as_nobody(&options, &[]));
    let report = stdout_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the default limit fits the probe:\n{report}"
    );
    let (verdict, text) = finding(&report, "CAP_IPC_LOCK").unwrap();
    assert_eq!(verdict, "warn", "{report}");
    assert!(
        text.contains("permitted no") && text.contains("not held"),
        "{text}"
    );
    assert!(
        report.contains("to fix:") && report.contains("AmbientCapabilities=CAP_IPC_LOCK"),
        "{report}"
    );

    let out = output(memlock_run_as_nobody(true, &options));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(verdict_of(&report, "CAP_IPC_LOCK"), "ok", "{report}");
    assert!(
        finding(&report, "lock at start")
            .unwrap()
            .1
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
        finding(&report, "COMMAND")
            .unwrap()
            .1
            .contains("static ELF"),
        "{report}"
    );
    let (verdict, text) = finding(&report, "method").unwrap();
    assert_eq!(verdict, "ok", "{report}");
    assert!(
        text.starts_with("ptrace:") && text.contains("statically linked"),
        "{report}"
    );
    assert_eq!(verdict_of(&report, "ptrace"), "ok", "{report}");
    let out = output(memlock_run(args(&[
        &"--check",
        &"--method",
        &"preload",
        &"--",
        &stat,
    ])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(verdict_of(&report, "method"), "FAIL", "{report}");

    let sh_script = script("check-sh-script", "#!/bin/sh\nexec true\n");
    let out = output(memlock_run(args(&[&"--check", &"--", &sh_script])));
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let (_, text) = finding(&report, "COMMAND").unwrap();
    assert!(
        text.contains("#! script run by /bin/sh"),
        "names the interpreter: {text}"
    );
    assert!(
        finding(&report, "preload").unwrap().1.contains("/bin/sh"),
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
        finding(&report, "preload")
            .unwrap()
            .1
            .contains("env runs first"),
        "{report}"
    );
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

/// A refusal case: its name, whether it runs as nobody, memlock-run's options, extra
/// prlimit options, and the exit status of the real run.
type Case<'a> = (&'a str, bool, Vec<OsString>, Vec<&'a str>, i32);

/// Every refusal of the launcher, and its exit status, is predicted by --check with the
/// same message.
#[test]
fn every_refusal_is_predicted() {
    if skip_unprivileged_run("runs as nobody")
        || skip_unless_memlock_hard_at_least(
            8 * MIB,
            "the cases assume an 8 MiB hard RLIMIT_MEMLOCK",
        )
    {
        return;
    }
    let probe = probe();
    let stat = static_probe();
    let mut cases: Vec<Case> = vec![
        (
            "static, --method preload",
            false,
            args(&[&"--method", &"preload", &"--", &stat]),
            vec![],
            125,
        ),
        (
            "script with a static interpreter, --method preload",
            false,
            args(&[
                &"--method",
                &"preload",
                &"--",
                &script("check-static-interp", &format!("#!{}\n", stat.display())),
            ]),
            vec![],
            125,
        ),
        (
            "--heap with the ptrace method",
            false,
            args(&[&"--heap", &"1M", &"--", &stat]),
            vec![],
            125,
        ),
        (
            "--fork relock with the ptrace method",
            false,
            args(&[&"--fork", &"relock", &"--", &stat]),
            vec![],
            125,
        ),
        (
            "#!/usr/bin/env -i",
            false,
            args(&[&"--", &script("check-env-i", "#!/usr/bin/env -i sh\n")]),
            vec![],
            125,
        ),
        (
            "not found",
            false,
            args(&[&"--", &"no-such-command-memlock-run-check"]),
            vec![],
            127,
        ),
        (
            "not executable",
            false,
            args(&[&"--", &copy_with_mode(&probe, "probe-noexec", 0o644)]),
            vec![],
            126,
        ),
        (
            "not ELF nor script",
            false,
            args(&[&"--", &script("check-no-shebang", "echo hi\n")]),
            vec![],
            126,
        ),
        (
            "--no-inherit through env",
            false,
            args(&[
                &"--no-inherit",
                &"--",
                &script("check-env-sh", "#!/usr/bin/env sh\n"),
            ]),
            vec![],
            125,
        ),
        (
            "--limit above the hard limit",
            true,
            args(&[&"--limit", &"64M", &"--", &probe]),
            vec![],
            125,
        ),
        (
            "--prefault above the limit",
            true,
            args(&[&"--limit", &"1M", &"--prefault", &"2M", &"--", &probe]),
            vec![],
            125,
        ),
        (
            "--prefault above the stack",
            false,
            args(&[&"--prefault", &"8M", &"--", &probe]),
            vec!["--stack=8388608:8388608"],
            125,
        ),
        (
            "--user without root",
            true,
            args(&[&"--user", &"root", &"--", &probe]),
            vec![],
            125,
        ),
        (
            "--thread-stack below PTHREAD_STACK_MIN",
            false,
            args(&[&"--thread-stack", &"1K", &"--", &probe]),
            vec![],
            125,
        ),
        (
            "--heap above the limit",
            true,
            args(&[&"--limit", &"4M", &"--heap", &"4M", &"--", &probe]),
            vec![],
            125,
        ),
        (
            "another machine",
            false,
            args(&[&"--", &other_machine(&probe)]),
            vec![],
            125,
        ),
    ];
    let set_id_tested = !skip_on_nosuid(
        &scratch(),
        "the set-ID and file-capability refusals are not tested",
    );
    if set_id_tested {
        cases.push((
            "set-user-ID",
            true,
            args(&[&"--", &copy_with_mode(&probe, "probe-setuid", 0o4755)]),
            vec![],
            125,
        ));
    }
    if set_id_tested && !skip_without("setcap", "the file-capability refusal is not tested") {
        let capped = copy_with_mode(&probe, "probe-filecap", 0o755);
        let set = output({
            let mut c = Command::new("setcap");
            c.arg("cap_ipc_lock+ep").arg(&capped);
            c
        });
        if set.status.success() {
            cases.push((
                "file capabilities",
                true,
                args(&[&"--", &capped]),
                vec![],
                125,
            ));
        } else {
            skip(format_args!(
                "setcap failed here ({}); the file-capability refusal is not tested",
                stderr_of(&set).trim()
            ));
        }
    }
    let musl_specs = [
        "/usr/lib/x86_64-linux-musl/musl-gcc.specs",
        "/usr/lib/musl/lib/musl-gcc.specs",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    match musl_specs {
        Some(specs) => {
            let musl = compile("probe.c", "probe-musl", &["-specs", specs]);
            // The shim loads into musl programs, but there is no glibc malloc for --heap.
            cases.push((
                "musl, --heap",
                false,
                args(&[&"--heap", &"1M", &"--", &musl]),
                vec![],
                125,
            ));
        }
        None => skip(format_args!(
            "musl-tools is not installed; the musl --heap refusal is not tested here"
        )),
    }

    for (name, nobody, options, limits, status) in cases {
        let run = if nobody {
            as_nobody(&options, &limits)
        } else {
            as_root(&options, &limits)
        };
        let run = output(run);
        let message = launcher_message(&run);
        assert_eq!(
            run.status.code(),
            Some(status),
            "{name}: the run: {}",
            stderr_of(&run)
        );
        let check = with_check(&options);
        let check = output(if nobody {
            as_nobody(&check, &limits)
        } else {
            as_root(&check, &limits)
        });
        let report = stdout_of(&check);
        assert_eq!(
            check.status.code(),
            Some(1),
            "{name}: the check passed, the run did not:\n{report}"
        );
        assert!(report.contains("FAIL"), "{name}:\n{report}");
        assert!(
            report.contains(&message),
            "{name}: the check does not give the run's reason\n  {message}\n{report}"
        );
    }
}

#[test]
fn onfault_support_is_reported() {
    let out = output(memlock_run(["--check", "--onfault"]));
    let report = stdout_of(&out);
    let (verdict, text) = finding(&report, "MCL_ONFAULT").unwrap();
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
    let (verdict, text) = finding(&report, "memory cgroup").expect("a cgroup finding");
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
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(&launcher);
        if check {
            cmd.arg("--check");
        }
        output({
            cmd.arg("--").arg(&probe).args(["--exit", "0"]);
            cmd
        })
    };
    let run = run_as_nobody(false);
    assert_eq!(run.status.code(), Some(125), "{}", stderr_of(&run));
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
    assert_eq!(real.status.code(), Some(125), "{}", stderr_of(&real));
    let message = launcher_message(&real);
    assert!(
        message.contains("cannot raise CAP_IPC_LOCK in the ambient set")
            && message.contains("SECBIT_NO_CAP_AMBIENT_RAISE"),
        "{message}"
    );
    let check = run(true);
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("FAIL CAP_IPC_LOCK: {message}")),
        "the run's own message is --check's remedy:\n{report}"
    );
    let (verdict, text) = finding(&report, "CAP_IPC_LOCK").unwrap();
    assert_eq!(verdict, "FAIL", "{report}");
    assert!(text.contains("SECBIT_NO_CAP_AMBIENT_RAISE"), "{text}");
    assert_eq!(verdict_of(&report, "ambient set"), "warn", "{report}");
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
    let (verdict, text) = finding(&report, "--heap").expect("a --heap finding");
    assert_eq!(verdict, "FAIL");
    assert!(text.contains("libjemalloc.so.2"), "{text}");
    let mut run = memlock_run(&options);
    run.env("LD_PRELOAD", &jemalloc);
    let run = output(run);
    assert_eq!(run.status.code(), Some(125), "{}", stderr_of(&run));
    // The shim's failure ends with the remedy the check gives, word for word.
    let remedy = report
        .lines()
        .find_map(|l| l.strip_prefix("  FAIL --heap: "))
        .unwrap();
    assert!(
        stderr_of(&run).contains(remedy),
        "{remedy}\n{}",
        stderr_of(&run)
    );
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
    assert_eq!(real.status.code(), Some(125), "{}", stderr_of(&real));
    let message = launcher_message(&real);
    assert!(message.contains("nobody cannot read the shim"), "{message}");
    let check = run(true);
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert_eq!(verdict_of(&report, "shim access"), "FAIL", "{report}");
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
    assert_eq!(verdict_of(&report, "user namespace"), "warn", "{report}");
    assert_eq!(verdict_of(&report, "lock at start"), "FAIL", "{report}");
    let run = in_userns(false);
    assert_eq!(run.status.code(), Some(125), "{}", stderr_of(&run));
    assert_mentions(&one_line(&run), &["ENOMEM", "RLIMIT_MEMLOCK is 1 MiB"]);
}

/// Under no_new_privs the kernel still keeps a file capability that the caller already holds
/// in its permitted set (a Kubernetes pod's added capability): --check must not say that file
/// capabilities give nothing.
#[test]
fn no_new_privs_is_described_as_the_kernel_applies_it() {
    let out = output({
        let mut cmd = Command::new("setpriv");
        cmd.args(["--no-new-privs", "--"])
            .arg(memlock_run_path())
            .arg("--check");
        cmd
    });
    let report = stdout_of(&out);
    let (_, text) = finding(&report, "no_new_privs").expect("a no_new_privs finding");
    assert!(text.starts_with("set:"), "{report}");
    assert!(
        text.contains("only what its caller already holds in the permitted set"),
        "{text}"
    );
}
