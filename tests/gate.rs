//! The exec gate on every inheriting run: an unprivileged run sets no_new_privs to arm it,
//! memlock-run as PID 1 of a PID namespace arms it, a run that cannot have one is refused
//! (or, under `--on-failure warn`, goes on with a note), the gate's refusals follow
//! `--on-failure warn`, and `--pid` accepts a process whose only seccomp filter is the gate's.
//!
//! As in tests/descendants.rs, the programs are tests/probes/rawexec.c (the execve system
//! call made directly, past the shim) and tests/probes/lockreport.c (which says from its own
//! VmLck whether it is locked).

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn rawexec() -> PathBuf {
    compile("rawexec.c", "rawexec", &[])
}

/// tests/probes/rawexecat.c: the execveat system call made directly, from a directory's
/// descriptor.
fn rawexecat() -> PathBuf {
    compile("rawexecat.c", "rawexecat", &[])
}

/// A file's directory and its name there, for rawexecat.
fn dir_and_name(path: &Path) -> (PathBuf, String) {
    (
        path.parent().expect("a directory").to_owned(),
        path.file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned(),
    )
}

/// The glibc and static lockreport builds, or None (and a skip line) without the toolchain.
fn glibc_and_static() -> Option<(PathBuf, PathBuf)> {
    Some((
        lockreport("gcc", &[], "lockreport-glibc")?,
        lockreport("gcc", &["-static"], "lockreport-static")?,
    ))
}

/// The start of the gate's line on a program it refused.
fn not_executing(program: impl std::fmt::Display) -> String {
    format!("memlock-run: not executing {program}")
}

/// Why the gate refused an execve system call made directly, past the shim.
const PAST_THE_SHIM: &str = "made the execve system call itself";

/// True, with a skip line saying `why`, where `unshare --pid --fork --mount-proc` cannot run
/// (not root, no unshare, or namespaces refused here).
fn skip_without_pid_namespaces(why: &str) -> bool {
    if skip_unless_root(why) || skip_without("unshare", why) {
        return true;
    }
    let out = run(Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]))
        .expect("run unshare");
    if !out.status.success() {
        skip(format_args!(
            "unshare --pid --fork --mount-proc fails here ({}); {why}",
            stderr_of(&out).trim()
        ));
        return true;
    }
    false
}

/// The `exec gate:` line of a `--dry-run` plan.
fn dry_run_gate_line(out: &Output) -> String {
    let plan = stdout_of(out);
    plan.lines()
        .find_map(|l| l.strip_prefix("exec gate:"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| panic!("no exec gate line in:\n{plan}{}", stderr_of(out)))
}

/// `Field:\tvalue` lines (grep's output of /proc/self/status) as (field, value).
fn status_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

/// COMMAND's own NoNewPrivs, Seccomp and Seccomp_filters, as it reads them.
const GREP_STATUS: [&str; 5] = [
    "--",
    "/bin/grep",
    "-E",
    "^(NoNewPrivs|Seccomp|Seccomp_filters):",
    "/proc/self/status",
];

/// a: an unprivileged run where no_new_privs is not set yet (setpriv to nobody, no
/// --no-new-privs) sets it and arms the gate: a static program executed with the raw execve
/// system call is refused, a glibc one runs locked; COMMAND sees NoNewPrivs 1 and the gate's
/// one filter; a root run leaves no_new_privs as it was. --dry-run and --check say so.
#[test]
fn an_unprivileged_run_sets_no_new_privs_and_arms_the_gate() {
    if skip_unprivileged_run("the unprivileged gate runs as nobody") {
        return;
    }
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    let glibc = reachable_copy(&glibc, "lockreport-glibc-unpriv-gate");
    let static_image = reachable_copy(&static_image, "lockreport-static-unpriv-gate");
    let rawexec = reachable_copy(&rawexec(), "rawexec-unpriv-gate");

    let out =
        output(as_nobody().memlock_run([OsStr::new("--"), rawexec.as_os_str(), glibc.as_os_str()]));
    assert_locked(&out);

    let out = output(as_nobody().memlock_run([
        OsStr::new("--"),
        rawexec.as_os_str(),
        static_image.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing(),
        &[&not_executing(static_image.display()), PAST_THE_SHIM],
    );

    // COMMAND's own status: no_new_privs set by memlock-run, and one filter, the gate's.
    let out = output(as_nobody().memlock_run(GREP_STATUS));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let fields = status_fields(&stdout_of(&out));
    assert_eq!(field(&fields, "NoNewPrivs"), "1", "{fields:?}");
    assert_eq!(field(&fields, "Seccomp"), "2", "{fields:?}");
    assert_eq!(field(&fields, "Seccomp_filters"), "1", "{fields:?}");
    let out = output(as_nobody().memlock_run(["--", "env"]));
    assert!(
        stdout_of(&out)
            .lines()
            .any(|l| l.starts_with("MEMLOCK_RUN_GATE=1:")),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );

    // A root run holds CAP_SYS_ADMIN: the gate's filter needs no no_new_privs there.
    let own = own_status();
    let out = output(memlock_run(GREP_STATUS));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let fields = status_fields(&stdout_of(&out));
    assert_eq!(
        field(&fields, "NoNewPrivs"),
        own.get("NoNewPrivs"),
        "a root run leaves no_new_privs as it found it: {fields:?}"
    );
    assert_eq!(field(&fields, "Seccomp"), "2", "{fields:?}");
    let own_filters: u32 = own
        .fields
        .get("Seccomp_filters")
        .map_or(0, |n| n.parse().expect("a count"));
    assert_eq!(
        field(&fields, "Seccomp_filters"),
        (own_filters + 1).to_string(),
        "{fields:?}"
    );

    let out = output(as_nobody().memlock_run(["--dry-run", "--", "/bin/true"]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = dry_run_gate_line(&out);
    assert!(
        line.starts_with("armed:")
            && line.contains("memlock-run sets no_new_privs first")
            && line.contains("it reads the tree's dumpable processes"),
        "{line}"
    );
    let out = output(memlock_run(["--dry-run", "--", "/bin/true"]));
    let line = dry_run_gate_line(&out);
    assert!(
        line.starts_with("armed:")
            && line.contains("memlock-run holds CAP_SYS_ADMIN")
            && line.contains("it reads every process of the tree (CAP_SYS_PTRACE)"),
        "{line}"
    );

    let out = output(as_nobody().memlock_run(["--check", "--", "/bin/true"]));
    let report = stdout_of(&out);
    let Finding { verdict, text, .. } = finding(&report, "exec gate")
        .unwrap_or_else(|| panic!("no exec gate finding in:\n{report}{}", stderr_of(&out)));
    assert_eq!(verdict, "ok", "{report}");
    assert!(text.contains("sets no_new_privs"), "{report}");
}

/// `nosyscall seccomp memlock-run OPTIONS`: memlock-run where the seccomp system call fails
/// (ENOSYS).
fn without_seccomp<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = without_syscall("seccomp");
    cmd.arg(memlock_run_path()).args(args);
    output(cmd)
}

/// b: where the gate cannot be armed (the seccomp system call fails, as under a container's
/// profile), an inheriting run is refused before exec with 125; --no-inherit runs; under
/// --on-failure warn it runs with a note; --check fails the exec gate; --dry-run says so.
#[test]
fn without_the_seccomp_system_call_an_inheriting_run_is_refused() {
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let out = without_seccomp([OsStr::new("--"), glibc.as_os_str()]);
    let line = assert_refused(&out, Refused::before_main(), &[]);
    assert!(
        line.starts_with(
            "memlock-run: cannot judge the programs COMMAND's tree executes with the execve system call itself: "
        ),
        "{line}"
    );
    assert_mentions(
        &line,
        &["seccomp system call", "--no-exec-gate", "--no-inherit"],
    );
    let out = without_seccomp(["--", "/bin/true"]);
    assert_refused(
        &out,
        Refused::before_main(),
        &["cannot judge", "--no-inherit"],
    );

    // COMMAND alone: no gate is needed, and COMMAND itself is locked.
    let out = without_seccomp([OsStr::new("--no-inherit"), "--".as_ref(), glibc.as_os_str()]);
    assert_locked(&out);
    let out = without_seccomp(["--no-inherit", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    let out = without_seccomp([
        OsStr::new("--on-failure"),
        "warn".as_ref(),
        "--".as_ref(),
        glibc.as_os_str(),
    ]);
    assert_locked(&out);
    assert!(
        stderr_of(&out).starts_with("memlock-run: note: no exec gate: "),
        "{}",
        stderr_of(&out)
    );
    let out = without_seccomp(["--on-failure", "warn", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_mentions(&stderr_of(&out), &["memlock-run: note: no exec gate: "]);

    let out = without_seccomp(["--check", "--", "/bin/true"]);
    let checked = stdout_of(&out);
    assert_ne!(out.status.code(), Some(0), "{checked}");
    assert_eq!(
        finding(&checked, "exec gate").map(|f| f.verdict),
        Some("FAIL".to_owned()),
        "{checked}{}",
        stderr_of(&out)
    );
    let out = without_seccomp(["--check", "--on-failure", "warn", "--", "/bin/true"]);
    let checked = stdout_of(&out);
    assert_eq!(
        finding(&checked, "exec gate").map(|f| f.verdict),
        Some("warn".to_owned()),
        "{checked}{}",
        stderr_of(&out)
    );

    // --dry-run fails as the run does, with the run's message; under warn it shows the note.
    let refused = without_seccomp(["--", "/bin/true"]);
    let out = without_seccomp(["--dry-run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stdout_of(&out));
    assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
    assert_eq!(launcher_message(&out), launcher_message(&refused));
    let out = without_seccomp(["--dry-run", "--on-failure", "warn", "--", "/bin/true"]);
    let line = dry_run_gate_line(&out);
    assert!(line.starts_with("no exec gate: "), "{line}");

    // --no-exec-gate: inheriting without the gate, as asked. A glibc program executed with the
    // system call itself is locked by the shim in its environment; a static one runs unlocked
    // (the gap the option names), and nothing is refused.
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    let raw = |program: &Path| {
        without_seccomp([
            OsStr::new("--no-exec-gate"),
            "--".as_ref(),
            rawexec().as_os_str(),
            program.as_os_str(),
        ])
    };
    assert_locked(&raw(&glibc));
    let out = raw(&static_image);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        report(&out).is_some_and(|l| l.starts_with("UNLOCKED ")),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    assert_eq!(stderr_of(&out), "", "no refusal and no note");
    let out = without_seccomp(["--check", "--no-exec-gate", "--", "/bin/true"]);
    let checked = stdout_of(&out);
    let Finding { verdict, text, .. } = finding_of(&checked, "exec gate");
    assert_eq!(verdict, "warn", "{checked}");
    assert!(text.starts_with("off (--no-exec-gate)"), "{checked}");
}

/// --no-exec-gate in an unprivileged run: no gate, so no no_new_privs either.
#[test]
fn no_exec_gate_leaves_no_new_privs_unset() {
    if skip_unprivileged_run("the no_new_privs case runs as nobody") {
        return;
    }
    let out = output(as_nobody().memlock_run([
        "--no-exec-gate",
        "--",
        "/bin/grep",
        "-E",
        "^(NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let fields = status_fields(&stdout_of(&out));
    assert_eq!(field(&fields, "NoNewPrivs"), "0", "{fields:?}");
    assert_eq!(field(&fields, "Seccomp"), "0", "{fields:?}");
}

/// c: memlock-run as PID 1 of a new PID namespace (a container's init) arms the gate too.
#[test]
fn memlock_run_as_pid_1_arms_the_gate() {
    if skip_without_pid_namespaces("memlock-run as PID 1 is not tested") {
        return;
    }
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    let as_pid_1 = |program: &Path| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--"])
            .arg(memlock_run_path())
            .arg("--")
            .arg(rawexec())
            .arg(program);
        output(cmd)
    };
    assert_locked(&as_pid_1(&glibc));
    assert_refused(
        &as_pid_1(&static_image),
        Refused::in_the_tree().failing(),
        &[&not_executing(static_image.display()), PAST_THE_SHIM],
    );
}

/// d: under --on-failure warn, a program the gate would refuse runs, unlocked, with a warning.
#[test]
fn under_on_failure_warn_the_gate_lets_a_refused_program_run_with_a_warning() {
    let Some((_, static_image)) = glibc_and_static() else {
        return;
    };
    let out = output(memlock_run([
        OsStr::new("--on-failure"),
        "warn".as_ref(),
        "--".as_ref(),
        rawexec().as_os_str(),
        static_image.as_os_str(),
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("UNLOCKED "),
        "{line:?}: {}",
        stderr_of(&out)
    );
    assert_mentions(
        &stderr_of(&out),
        &[
            &format!("memlock-run: warning: {} (from pid", static_image.display()),
            "runs unlocked (--on-failure warn)",
            "made the execve system call itself",
        ],
    );
    assert!(
        !stderr_of(&out).contains("not executing"),
        "{}",
        stderr_of(&out)
    );
}

/// `probe --map 8 --touch 8`: 8 MiB mapped and written after the shim locked (MCL_CURRENT),
/// so not locked until `--pid` locks it.
const MAPPED: u64 = 8 * MIB;
const PROBE_ARGS: [&str; 4] = ["--map", "8", "--touch", "8"];

fn mapping_locked(running: &Running) -> bool {
    anonymous_of_size(&running.smaps(), MAPPED).locked_flag()
}

/// e: a process whose only seccomp filter is the gate's (started by an inheriting run as
/// nobody, which now arms one, or as root) is locked by --pid without --force, and --check
/// --pid does not warn about it; one under another filter as well still needs --force.
#[test]
fn pid_accepts_the_gates_own_filter_and_no_other() {
    if skip_unprivileged_run("the run as nobody is the case that gained a gate") {
        return;
    }
    let probe = reachable_copy(&probe(), "probe-gate-pid");
    for (who, run_as) in [
        ("as nobody", as_nobody().ambient_ipc_lock()),
        ("as root", as_caller()),
    ] {
        let mut cmd = run_as.memlock_run(["--".as_ref(), probe.as_os_str()]);
        cmd.args(PROBE_ARGS);
        let running = Running::start(cmd);
        let status = running.status();
        assert_eq!(status.get("Seccomp"), "2", "{who}");
        assert_eq!(status.get("Seccomp_filters"), "1", "{who}");
        assert_eq!(
            running
                .environ()
                .get("MEMLOCK_RUN_GATE")
                .and_then(|v| v.split(':').next()),
            Some("1"),
            "{who}"
        );
        assert!(!mapping_locked(&running), "{who}: locked before --pid");

        let check = lock_pid(&["--check"], running.pid);
        let report = stdout_of(&check);
        assert_eq!(check.status.code(), Some(0), "{who}: {report}");
        let Finding { verdict, text, .. } = finding(&report, "--pid")
            .unwrap_or_else(|| panic!("{who}: no --pid finding in:\n{report}"));
        assert_eq!(verdict, "ok", "{who}: {report}");
        assert!(text.contains("Seccomp 2"), "{who}: {report}");

        let out = lock_pid(&[], running.pid);
        assert!(out.status.success(), "{who}: {}", stderr_of(&out));
        assert!(mapping_locked(&running), "{who}: not locked by --pid");
        assert!(running.finish().status.success(), "{who}");
    }

    // nosyscall's filter and the gate's: memlock-run cannot read the other one.
    let mut cmd = without_syscall("ptrace");
    cmd.arg(memlock_run_path())
        .arg("--")
        .arg(&probe)
        .args(PROBE_ARGS);
    let running = Running::start(cmd);
    let status = running.status();
    assert_eq!(status.get("Seccomp_filters"), "2");
    let out = lock_pid(&[], running.pid);
    assert_refused(&out, Refused::before_main(), &["seccomp filter", "--force"]);
    assert!(!mapping_locked(&running), "left as it was");
    let check = lock_pid(&["--check"], running.pid);
    assert_eq!(check.status.code(), Some(1), "{}", stdout_of(&check));
    let out = lock_pid(&["--force"], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(mapping_locked(&running), "locked with --force");
    assert!(running.finish().status.success());

    // One filter that is not the gate's, with the gate's variable (copied, or outliving its
    // run): it names no living gate, so it is not taken for one.
    let mut cmd = without_syscall("ptrace");
    cmd.arg(&probe)
        .args(PROBE_ARGS)
        .env("MEMLOCK_RUN_GATE", format!("1:{}", std::process::id()));
    let running = Running::start(cmd);
    assert_eq!(running.status().get("Seccomp_filters"), "1");
    let out = lock_pid(&[], running.pid);
    assert_refused(&out, Refused::before_main(), &["seccomp filter", "--force"]);
    assert!(running.finish().status.success());
}

/// The gate opens what an exec names as the task would, not as itself: /proc/self/exe is the
/// task's own program (followed by the gate, it named the gate's: memlock-run, let go), so a
/// static program that executes itself again that way is refused, and a glibc one is locked.
#[test]
fn proc_self_exe_is_the_tasks_own_program() {
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    // rawexec PROGRAM... executes PROGRAM: /proc/self/exe is rawexec itself (glibc) the first
    // time; rawexec built static executes itself again, the gate must judge that one static.
    let again = |rawexec: &Path| {
        output(memlock_run([
            "--".as_ref(),
            rawexec.as_os_str(),
            "/proc/self/exe".as_ref(),
            glibc.as_os_str(),
        ]))
    };
    assert_locked(&again(&rawexec()));
    let static_rawexec = compile("rawexec.c", "rawexec-static", &["-static"]);
    let out = again(&static_rawexec);
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[&not_executing("/proc/self/exe"), "statically linked"],
    );
    // /dev/fd/N, through /proc/self/fd: the task's descriptor, not the gate's.
    let script = format!(
        "exec 7<{}; exec {} /dev/fd/7",
        static_image.display(),
        rawexec().display()
    );
    let out = output(memlock_run(["--", "sh", "-c", &script]));
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[&not_executing("/dev/fd/7"), "statically linked"],
    );
    // A symlink of the user's into /proc/self: followed as the task follows it.
    let dir = unique("self-link");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let link = dir.join("fd7");
    std::os::unix::fs::symlink("/proc/self/fd/7", &link).expect("symlink");
    let script = format!(
        "exec 7<{}; exec {} {}",
        static_image.display(),
        rawexec().display(),
        link.display()
    );
    let out = output(memlock_run(["--", "sh", "-c", &script]));
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[&not_executing(link.display()), "statically linked"],
    );
}

/// A task in a chroot: an absolute symlink there resolves in its root, as the kernel resolves
/// it for the exec, not in the gate's (where the same path names nothing, which let it go).
#[test]
fn a_chrooted_tasks_absolute_symlink_resolves_in_its_root() {
    if skip_unless_root("chroot needs root") {
        return;
    }
    let Some((_, static_image)) = glibc_and_static() else {
        return;
    };
    let root = unique("chroot-gate");
    std::fs::create_dir_all(root.join("inner")).expect("mkdir");
    std::fs::copy(&static_image, root.join("inner/lockreport")).expect("copy");
    let name = format!("/memlock-run-test-absent-{}", std::process::id());
    assert!(!Path::new(&name).exists());
    std::os::unix::fs::symlink("/inner/lockreport", root.join(&name[1..])).expect("symlink");
    let chrootexec = compile("chrootexec.c", "chrootexec-static", &["-static"]);
    for path in [name.clone(), name[1..].to_owned()] {
        let out = output(memlock_run([
            "--".as_ref(),
            chrootexec.as_os_str(),
            root.as_os_str(),
            path.as_ref(),
        ]));
        assert_refused(
            &out,
            Refused::in_the_tree().row(&path),
            &[&not_executing(&path), "statically linked"],
        );
    }

    // The shim's path in the chroot is an absolute symlink to itself (a loop there); followed
    // from the gate's root it reached the real shim, while ld.so in the chroot cannot open it
    // and runs the program without it.
    let (loader, libc) = (
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        Path::new("/lib/x86_64-linux-gnu/libc.so.6"),
    );
    if !loader.exists() || !libc.exists() {
        skip(format_args!(
            "no {} or {} to build a glibc root from; the chroot shim case is not tested",
            loader.display(),
            libc.display()
        ));
        return;
    }
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    for (from, to) in [
        (loader, loader.to_path_buf()),
        (libc, libc.to_path_buf()),
        (glibc.as_path(), PathBuf::from("/lockreport-glibc")),
    ] {
        let inside = root.join(to.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(inside.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(from, &inside).expect("copy");
    }
    let shim = shim_path();
    let inside = root.join(shim.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(inside.parent().expect("a parent")).expect("mkdir");
    std::os::unix::fs::symlink(&shim, &inside).expect("symlink");
    let out = output(memlock_run([
        "--".as_ref(),
        chrootexec.as_os_str(),
        root.as_os_str(),
        "/lockreport-glibc".as_ref(),
    ]));
    let stderr = stderr_of(&out);
    assert!(
        !stderr.contains("cannot be preloaded"),
        "it ran without the shim: {stderr}"
    );
    assert_refused(
        &out,
        Refused::in_the_tree().status(126),
        &[
            "memlock-run: not executing /lockreport-glibc",
            "the shim is not at its path under the calling process's root",
        ],
    );
}

/// In a PID namespace with a /proc of its own, /proc/self is the task's ID there, not the one
/// the gate (outside) knows it by.
#[test]
fn proc_self_in_a_pid_namespace_of_its_own() {
    if skip_without_pid_namespaces("the PID namespace case is not tested") {
        return;
    }
    let static_rawexec = compile("rawexec.c", "rawexec-static", &["-static"]);
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    // sh is PID 1 there; the static rawexec, locked through memlock-run, executes itself again.
    let script = format!(
        "{} /proc/self/exe {}; echo status=$?",
        static_rawexec.display(),
        glibc.display()
    );
    let out = output(memlock_run([
        "--",
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "sh",
        "-c",
        &script,
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[&not_executing("/proc/self/exe"), "statically linked"],
    );
}

/// A 32-bit COMMAND (the ptrace method: its loader must not be given the 64-bit shim) carries
/// no shim to what it executes, with execve or execveat: the gate refuses that, where it once
/// ran unlocked, and --dry-run says so.
#[test]
fn what_a_32_bit_command_executes_is_refused() {
    let Some(rawexec32) = compile_if_possible("gcc", "rawexec.c", "rawexec-i386", &["-m32"]) else {
        return;
    };
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    let out = output(memlock_run([
        "--".as_ref(),
        rawexec32.as_os_str(),
        glibc.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing(),
        &[&not_executing(glibc.display()), "does not hand it the shim"],
    );
    // The i386 execveat system call, which keeps its path and environment in other
    // arguments than execve: judged the same.
    let rawexecat32 = compile("rawexecat.c", "rawexecat-i386", &["-m32"]);
    let (dir, name) = dir_and_name(&glibc);
    let out = output(memlock_run([
        "--".as_ref(),
        rawexecat32.as_os_str(),
        dir.as_os_str(),
        name.as_ref(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().status(127),
        &[&not_executing(name), "does not hand it the shim"],
    );
    let out = output(memlock_run([
        "--dry-run".as_ref(),
        "--".as_ref(),
        rawexec32.as_os_str(),
    ]));
    assert_mentions(
        &stdout_of(&out),
        &["programs it executes are not locked, and the exec gate refuses them unless they are memlock-run"],
    );
}

/// The execveat system call made directly, with a descriptor of the program's directory and
/// its name there (a name that means nothing from the working directory): the gate reads the
/// path and the environment where execveat keeps them and opens the file from that
/// directory. A glibc program runs locked; a static one is refused, and the gate's line names
/// it and the program that asked, by its command name.
#[test]
fn the_execveat_system_call_made_directly_is_judged_from_its_directory() {
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    let at = |image: &Path| {
        let (dir, name) = dir_and_name(image);
        assert!(
            !Path::new(&name).exists(),
            "{name} in the working directory"
        );
        let out = output(memlock_run([
            "--".as_ref(),
            rawexecat().as_os_str(),
            dir.as_os_str(),
            name.as_ref(),
        ]));
        (out, name)
    };
    let (out, _) = at(&glibc);
    assert_locked(&out);
    let (out, name) = at(&static_image);
    assert_refused(
        &out,
        Refused::in_the_tree().status(127),
        &[
            &format!("{} (from pid ", not_executing(&name)),
            ", rawexecat): statically linked",
            "rawexecat made the execve system call itself",
            "rawexecat: execveat: Operation not permitted",
        ],
    );
}

/// A path longer than PATH_MAX, which the gate reads no further than the kernel does: the exec
/// fails as the kernel fails it (ENAMETOOLONG), without a line of the gate's.
#[test]
fn a_path_longer_than_path_max_fails_as_the_kernel_fails_it() {
    let long = format!("/{}", "x".repeat(5000));
    let out = output(memlock_run([
        "--".as_ref(),
        rawexec().as_os_str(),
        long.as_ref(),
    ]));
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert_mentions(&stderr, &["rawexec: execve: File name too long"]);
    assert!(!stderr.contains("memlock-run"), "{stderr}");
}

/// A script executed past the shim is judged by its #! interpreter: one whose interpreter is a
/// glibc program runs locked; one whose interpreter is itself a script is refused with a line
/// (the gate judges one #! line on the way to the image; the kernel would run it, locked or
/// not as the last interpreter happens to be).
#[test]
fn a_script_runs_locked_by_its_interpreter_and_a_nested_one_is_refused() {
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    let inner = script("gate-inner-script.sh", &format!("#!{}\n", glibc.display()));
    let outer = script("gate-outer-script.sh", &format!("#!{}\n", inner.display()));
    let raw = |script: &Path| {
        output(memlock_run([
            "--".as_ref(),
            rawexec().as_os_str(),
            script.as_os_str(),
        ]))
    };
    assert_locked(&raw(&inner));
    assert_refused(
        &raw(&outer),
        Refused::in_the_tree().status(127),
        &[
            &not_executing(outer.display()),
            "its #! interpreter is itself a script",
            PAST_THE_SHIM,
        ],
    );
}

/// A set-user-ID or set-group-ID program executed past the shim runs in secure-execution mode,
/// where ld.so ignores the shim: the gate refuses it with a line (each bit on its own).
#[test]
fn a_set_id_program_executed_past_the_shim_is_refused() {
    if skip_unless_root("making a set-ID file of another owner needs root") {
        return;
    }
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    let (uid, gid, _, _) = passwd("nobody");
    for (mode, name, says) in [
        (0o4755, "lockreport-gate-setuid", "set-user-ID"),
        (0o2755, "lockreport-gate-setgid", "set-group-ID"),
    ] {
        let image = copy_with_mode(&glibc, name, mode);
        std::os::unix::fs::chown(&image, Some(uid), Some(gid)).expect("chown");
        set_mode(&image, mode);
        if skip_on_nosuid(&image, "set-ID bits have no effect there") {
            return;
        }
        let out = output(memlock_run([
            "--".as_ref(),
            rawexec().as_os_str(),
            image.as_os_str(),
        ]));
        assert_refused(
            &out,
            Refused::in_the_tree().status(127).row(name),
            &[&not_executing(image.display()), says, PAST_THE_SHIM],
        );
    }
}

/// `memlock-run`, run as nobody holding CAP_SETUID and CAP_SETGID in its ambient set (given
/// them by its caller): its tree may become another user. Its arguments are added.
fn memlock_run_as_nobody_who_may_switch_users() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=+setuid,+setgid",
        "--ambient-caps=+setuid,+setgid",
        "--",
    ])
    .arg(memlock_run_path());
    cmd
}

/// A process of an unprivileged run's tree that switches to another user (the run was given
/// CAP_SETUID and CAP_SETGID) and makes the execve system call itself: the gate, which has no
/// CAP_SYS_PTRACE, may not read its memory, so it refuses the exec, and its line says why:
/// another user (not --no-dump, the other reason it knows).
#[test]
fn a_raw_exec_by_a_process_run_as_another_user_is_refused_saying_so() {
    if skip_unprivileged_run("the gate of a run as nobody is the one without CAP_SYS_PTRACE") {
        return;
    }
    let Some((_, static_image)) = glibc_and_static() else {
        return;
    };
    let static_image = reachable_copy(&static_image, "lockreport-static-other-user");
    let rawexec = reachable_copy(&rawexec(), "rawexec-other-user");
    // setpriv (through libc: the shim judges rawexec, and says so) switches to a user of no
    // name; rawexec, dumpable, then executes the static program itself.
    let mut cmd = memlock_run_as_nobody_who_may_switch_users();
    cmd.args([
        "--",
        "setpriv",
        "--reuid=54321",
        "--regid=54321",
        "--clear-groups",
        "--",
    ])
    .arg(&rawexec)
    .arg(&static_image);
    let out = output(cmd);
    let stderr = assert_refused(
        &out,
        Refused::in_the_tree().status(127),
        &[
            &not_executing("the program pid "),
            "(rawexec-other-u) asks for",
            "cannot read its memory",
            "it runs as another user, and the gate has no CAP_SYS_PTRACE",
        ],
    );
    assert!(!stderr.contains("--no-dump"), "{stderr}");
}

/// A program its user may execute but not read (mode 711) cannot be judged by the gate: made
/// past the shim, its exec is refused with a line; said by the shim to be judged first
/// (protocol::GATE_WORD, which tests/probes/wordexec.c says as the shim does before its own
/// execve), it goes on, and the shim locks it.
#[test]
fn an_execute_only_program_goes_on_when_the_shim_said_it_judged_it() {
    if skip_unprivileged_run("the execute-only case needs a user other than root") {
        return;
    }
    let Some((glibc, _)) = glibc_and_static() else {
        return;
    };
    let xonly = reachable_copy(&glibc, "lockreport-glibc-xonly-gate");
    writing_executables(|| set_mode(&xonly, 0o711));
    let rawexec = reachable_copy(&rawexec(), "rawexec-xonly-gate");
    let wordexec = reachable_copy(&compile("wordexec.c", "wordexec", &[]), "wordexec-gate");
    let out =
        output(as_nobody().memlock_run(["--".as_ref(), rawexec.as_os_str(), xonly.as_os_str()]));
    assert_refused(
        &out,
        Refused::in_the_tree().status(127),
        &[
            &not_executing(xonly.display()),
            "it cannot be read to be judged",
            PAST_THE_SHIM,
        ],
    );
    let out =
        output(as_nobody().memlock_run(["--".as_ref(), wordexec.as_os_str(), xonly.as_os_str()]));
    assert_locked(&out);
}

/// The gate opens what a task executes with all of the task's filesystem identity: its
/// supplementary groups and its CAP_DAC_OVERRIDE, besides its user and group. A static program
/// only they let the task execute, executed past the shim, is refused (the gate, without
/// them, once took it for one the kernel refuses, and let it run unlocked); a glibc one the
/// task executes through a supplementary group runs locked.
#[test]
fn the_gate_judges_with_the_tasks_groups_and_capabilities() {
    if skip_unless_root("a run as root that drops to nobody, with a group or a capability") {
        return;
    }
    let Some((glibc, static_image)) = glibc_and_static() else {
        return;
    };
    const GROUP: u32 = 4242;
    let owned = |image: &Path, name: &str, mode: u32| {
        let copy = reachable_copy(image, name);
        std::os::unix::fs::chown(&copy, Some(0), Some(GROUP)).expect("chown");
        writing_executables(|| set_mode(&copy, mode));
        copy
    };
    let rawexec = reachable_copy(&rawexec(), "rawexec-identity");
    let as_nobody_with = |with: &[&str], image: &Path| {
        let mut cmd = memlock_run(["--", "setpriv", "--reuid=nobody", "--regid=nogroup"]);
        cmd.args(with).arg("--").arg(&rawexec).arg(image);
        output(cmd)
    };
    let group = format!("--groups={GROUP}");
    let static_group = owned(&static_image, "lockreport-static-group", 0o750);
    assert_refused(
        &as_nobody_with(&[&group], &static_group),
        Refused::in_the_tree().status(127).row("through a group"),
        &[&not_executing(static_group.display()), "statically linked"],
    );
    let glibc_group = owned(&glibc, "lockreport-glibc-group", 0o750);
    assert_locked(&as_nobody_with(&[&group], &glibc_group));
    let static_owner = owned(&static_image, "lockreport-static-owner", 0o700);
    assert_refused(
        &as_nobody_with(
            &[
                "--clear-groups",
                "--inh-caps=+dac_override",
                "--ambient-caps=+dac_override",
            ],
            &static_owner,
        ),
        Refused::in_the_tree()
            .status(127)
            .row("through CAP_DAC_OVERRIDE"),
        &[&not_executing(static_owner.display()), "statically linked"],
    );
}

/// execveat of a descriptor (AT_EMPTY_PATH, as fexecve does) opened with O_PATH on a program
/// its user may execute but not read: the gate cannot read it either, so it refuses it with a
/// line (it once took the failed read for the kernel's refusal, and let it run unlocked).
#[test]
fn an_execute_only_program_executed_from_its_descriptor_is_refused() {
    if skip_unprivileged_run("the execute-only case needs a user other than root") {
        return;
    }
    let Some((_, static_image)) = glibc_and_static() else {
        return;
    };
    let xonly = reachable_copy(&static_image, "lockreport-static-xonly-fd");
    writing_executables(|| set_mode(&xonly, 0o711));
    let rawexecat = reachable_copy(&rawexecat(), "rawexecat-xonly-fd");
    let out = output(as_nobody().memlock_run([
        "--".as_ref(),
        rawexecat.as_os_str(),
        xonly.as_os_str(),
        "".as_ref(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().status(127),
        &[
            &not_executing(""),
            "it cannot be read to be judged",
            PAST_THE_SHIM,
        ],
    );
}

/// The gate goes by a name of its own: `pgrep -f` of COMMAND's command line finds COMMAND
/// alone, the gate is `memlock-gate` to pgrep and ps, its command line names COMMAND's PID,
/// and `pgrep -x memlock-run` does not find it.
#[test]
fn the_gate_has_a_name_and_command_line_of_its_own() {
    let marker = format!("gate-name-{}", std::process::id());
    let running = Running::start(memlock_run([
        "--",
        "/bin/sh",
        "-c",
        "echo ready $$; read line; exit 0",
        &marker,
    ]));
    let gate = gate_of(running.pid);
    let pgrep = |args: &[&str]| -> Vec<i32> {
        let out = output({
            let mut cmd = Command::new("pgrep");
            cmd.args(args);
            cmd
        });
        stdout_of(&out)
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    };
    assert_eq!(
        pgrep(&["-f", &marker]),
        vec![running.pid],
        "pgrep -f {marker}"
    );
    assert!(pgrep(&["-x", "memlock-gate"]).contains(&gate));
    assert!(!pgrep(&["-x", "memlock-run"]).contains(&gate));
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{gate}/comm")).unwrap(),
        "memlock-gate\n"
    );
    let cmdline = std::fs::read(format!("/proc/{gate}/cmdline")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cmdline),
        format!("memlock-run exec gate for PID {}\0", running.pid)
    );
    assert!(running.finish().status.success());
}

/// Once the gate is killed, the kernel fails every exec of the tree (ENOSYS); the next exec
/// through libc that fails so says why on the failing process's own stderr, naming the gate,
/// once per process; the caller's exit status is its own (sh: 126).
#[test]
fn an_exec_after_the_gate_is_killed_names_the_gate_on_its_own_stderr() {
    let errors = unique("gate-gone-stderr");
    let mut running = Running::start(memlock_run([
        "--",
        "/bin/sh",
        "-c",
        "echo ready $$; read line; /bin/true 2>\"$0\"; echo \"status $?\"",
        errors.to_str().unwrap(),
    ]));
    let gate = gate_of(running.pid);
    signal_and_wait(gate, libc::SIGKILL, |state| state == '-');
    running.send("go\n");
    assert_eq!(running.next_line(), "status 126\n");
    let out = running.finish();
    let said = std::fs::read_to_string(&errors).unwrap();
    let line = said
        .lines()
        .find(|l| l.starts_with("memlock-run: cannot execute /bin/true (from pid "))
        .unwrap_or_else(|| panic!("no line for /bin/true in its stderr:\n{said}"));
    assert_mentions(
        line,
        &[
            &format!("memlock-run's exec gate (pid {gate})"),
            "has ended",
            "ENOSYS (Function not implemented)",
            "start the tree again under memlock-run",
        ],
    );
    assert_eq!(said.matches("memlock-run: ").count(), 1, "{said}");
    assert!(
        !stderr_of(&out).contains("exec gate"),
        "{}",
        stderr_of(&out)
    );
}

/// The gate's line goes to the stderr of the process whose exec it refuses (its own
/// descriptor 2, as that process has it), not only to memlock-run's: a program whose stderr
/// goes to a file of its own, or to a pipe another program reads, shows the line there. As
/// nobody too, where the gate is the tree's user's.
#[test]
fn the_refusal_line_goes_to_the_failing_processs_own_stderr() {
    let Some((_, static_program)) = glibc_and_static() else {
        return;
    };
    for (who, runner) in [("as root", as_caller()), ("as nobody", as_nobody())] {
        for (what, redirect) in [("a file", "2>\"$LOG\""), ("a pipe", "2>&1 | cat >\"$LOG\"")] {
            // A directory nobody may write in too.
            let dir = scratch().join("gate-stderr");
            fs::create_dir_all(&dir).expect("create the log directory");
            set_mode(&dir, 0o777);
            let log = dir.join(format!("{}-{}.log", who.len(), what.len()));
            let _ = fs::remove_file(&log);
            let script = format!(
                "{{ {} {}; }} {redirect}; echo done",
                rawexec().display(),
                static_program.display()
            );
            let mut cmd = runner
                .clone()
                .limit(CI_MEMLOCK)
                .memlock_run(["--", "/bin/sh", "-c", &script]);
            cmd.env("LOG", &log);
            let out = output(cmd);
            let logged = fs::read_to_string(&log).unwrap_or_default();
            let _ = fs::remove_file(&log);
            let line = not_executing(static_program.display());
            assert!(
                logged.contains(&line) && logged.contains(PAST_THE_SHIM),
                "{who}, stderr to {what}: the line is in the process's own stderr: {logged:?}\n{}",
                stderr_of(&out)
            );
            assert!(
                !stderr_of(&out).contains(&line),
                "{who}, stderr to {what}: and not also on memlock-run's: {}",
                stderr_of(&out)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
        }
    }
}

/// The shim gives the gate its word (protocol::GATE_WORD, a prctl only the gate's filter
/// answers) only where memlock-run said the gate may not read its process's memory (the third
/// field of MEMLOCK_RUN_GATE): never under a gate with CAP_SYS_PTRACE (a root run), not from a
/// dumpable process under an unprivileged gate of its own user (with CAP_IPC_LOCK or
/// without), and before every exec where the process is non-dumpable (--no-dump) or the tree
/// may become another user (CAP_SETUID and CAP_SETGID given). Each word costs an exec a second stop in the gate. Every exec runs,
/// either way; strace counts the words.
#[test]
fn the_shim_gives_its_word_only_where_the_gate_cannot_read_its_process() {
    if skip_unprivileged_run("the unprivileged gate runs as nobody")
        || skip_without(
            "strace",
            "the shim's words are counted by strace (Debian: strace)",
        )
    {
        return;
    }
    let script = [
        "sh",
        "-c",
        "echo \"$MEMLOCK_RUN_GATE\"; /bin/true; /bin/true",
    ];
    let mut may_switch = memlock_run_as_nobody_who_may_switch_users();
    may_switch.arg("--").args(script);
    let rows: [(&str, Command, char, bool); 5] = [
        (
            "root",
            as_caller().memlock_run(["--"].iter().chain(&script)),
            'a',
            false,
        ),
        (
            "nobody",
            as_nobody().memlock_run(["--"].iter().chain(&script)),
            'd',
            false,
        ),
        (
            "nobody with CAP_IPC_LOCK",
            as_nobody()
                .ambient_ipc_lock()
                .memlock_run(["--"].iter().chain(&script)),
            'd',
            false,
        ),
        (
            "nobody --no-dump",
            as_nobody().memlock_run(["--no-dump", "--"].iter().chain(&script)),
            'd',
            true,
        ),
        ("nobody with CAP_SETUID", may_switch, 'w', true),
    ];
    for (i, (who, run, reads, worded)) in rows.into_iter().enumerate() {
        let trace = scratch().join(format!("gate-words-{i}.strace"));
        let _ = fs::remove_file(&trace);
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-e", "trace=prctl", "-o"])
            .arg(&trace)
            .arg("--")
            .arg(run.get_program())
            .args(run.get_args());
        let out = output(cmd);
        assert!(out.status.success(), "{who}: {}", stderr_of(&out));
        let gate = stdout_of(&out);
        assert_eq!(
            gate.trim().rsplit(':').next(),
            Some(reads.to_string().as_str()),
            "{who}: MEMLOCK_RUN_GATE={gate}"
        );
        let words = fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("prctl(0x4d4c5247"))
            .count();
        let _ = fs::remove_file(&trace);
        if worded {
            assert!(words >= 2, "{who}: {words} words for two execs");
        } else {
            assert_eq!(words, 0, "{who}: the gate reads it, no word is needed");
        }
    }
}
