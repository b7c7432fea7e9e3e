//! The programs COMMAND executes later. The invariant: under an inheriting run, every image
//! started through libc's exec and spawn functions is locked (by the shim, or by memlock-run's
//! ptrace method where the preload cannot reach it), or its exec fails with a memlock-run
//! line naming it and why. Never unlocked with success.
//!
//! Each descendant is tests/probes/lockreport.c in one build (glibc, static, static-pie,
//! musl, musl static, i386, i386 static) or a script, executed by tests/probes/execvia.c
//! through one function of the family, and it reports VmLck from /proc/self/status itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Every way execvia executes a program through libc (altstack: execve from a signal
/// handler on an 8 KiB alternate stack, which the judgement must fit in).
const MODES: [&str; 13] = [
    "altstack",
    "execve",
    "execv",
    "execvp",
    "execvpe",
    "execl",
    "execle",
    "execlp",
    "fexecve",
    "execveat",
    "execveat_empty_path",
    "posix_spawn",
    "posix_spawnp",
];

/// Every kind of image, with what it is.
fn images() -> Vec<(&'static str, PathBuf)> {
    let builds: [(&str, &[&str], &str); 7] = [
        ("gcc", &[], "lockreport-glibc"),
        ("gcc", &["-static"], "lockreport-static"),
        ("gcc", &["-static-pie"], "lockreport-static-pie"),
        ("musl-gcc", &[], "lockreport-musl"),
        ("musl-gcc", &["-static"], "lockreport-musl-static"),
        ("gcc", &["-m32"], "lockreport-i386"),
        ("gcc", &["-m32", "-static"], "lockreport-i386-static"),
    ];
    let mut images: Vec<(&str, PathBuf)> = builds
        .iter()
        .filter_map(|(cc, flags, name)| Some((*name, lockreport(cc, flags, name)?)))
        .collect();
    // A script whose #! interpreter is a static program: the kernel runs that program.
    if let Some((_, static_image)) = images.iter().find(|(n, _)| *n == "lockreport-static") {
        let text = format!("#!{}\n", static_image.display());
        images.push((
            "script run by a static interpreter",
            script("lockreport-static.sh", &text),
        ));
    }
    images
}

fn execvia() -> PathBuf {
    compile("execvia.c", "execvia", &[])
}

/// `memlock-run OPTIONS -- execvia MODE PROGRAM ARGS...`, run to its end.
fn via(options: &[&str], mode: &str, program: &Path, args: &[&str]) -> Output {
    let mut cmd = memlock_run(options);
    cmd.arg("--")
        .arg(execvia())
        .arg(mode)
        .arg(program)
        .args(args);
    output(cmd)
}

#[test]
fn every_exec_function_locks_every_kind_of_image() {
    let images = images();
    assert!(images.len() >= 3, "at least the glibc and static builds");
    let mut failures = Vec::new();
    for mode in MODES {
        for (what, image) in &images {
            let out = via(&[], mode, image, &[]);
            let line = report(&out);
            let locked =
                out.status.success() && line.as_deref().is_some_and(|l| l.starts_with("locked "));
            if !locked {
                failures.push(format!(
                    "{mode} of {what}: status {:?}, report {line:?}, stderr {}",
                    out.status.code(),
                    stderr_of(&out)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "not locked:\n{}", failures.join("\n"));
}

/// The same through a shell, as an unprivileged user who holds CAP_IPC_LOCK only through
/// the ambient set: the detour through memlock-run keeps it.
#[test]
fn a_shell_under_an_unprivileged_run_locks_the_static_programs_it_starts() {
    if skip_unprivileged_run("the unprivileged shell case is not tested") {
        return;
    }
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let image = reachable_copy(&image, "lockreport-static-nobody");
    let command = format!("{} && exec {}", image.display(), image.display());
    let out = output(
        as_nobody()
            .ambient_ipc_lock()
            .memlock_run(["--future", "--", "/bin/sh", "-c", &command]),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for line in lines {
        assert!(line.starts_with("locked "), "{stdout}\n{}", stderr_of(&out));
    }
}

/// Environments that would leave the shim out, or change its settings: the program is run
/// through memlock-run again, which gives it the run's own.
#[test]
fn environments_that_drop_the_shim_are_locked_all_the_same() {
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let Some(static_image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let envexec = compile("envexec.c", "envexec", &[]);
    let shim = shim_path();
    let shim = shim.to_str().unwrap();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "env -i".into(),
            vec!["env".into(), "-i".into(), glibc.display().to_string()],
        ),
        (
            "env -u LD_PRELOAD".into(),
            vec![
                "env".into(),
                "-u".into(),
                "LD_PRELOAD".into(),
                glibc.display().to_string(),
            ],
        ),
        (
            "env -i, a static program".into(),
            vec![
                "env".into(),
                "-i".into(),
                static_image.display().to_string(),
            ],
        ),
        (
            "LD_PRELOAD twice, the last without the shim".into(),
            vec![
                envexec.display().to_string(),
                format!("LD_PRELOAD={shim}"),
                "LD_PRELOAD=".into(),
                "--".into(),
                glibc.display().to_string(),
            ],
        ),
        (
            "the shim's settings changed to warn".into(),
            vec![
                envexec.display().to_string(),
                format!("LD_PRELOAD={shim}"),
                "MEMLOCK_RUN_ON_FAILURE=warn".into(),
                "MEMLOCK_RUN_FLAGS=current".into(),
                "--".into(),
                glibc.display().to_string(),
            ],
        ),
    ];
    for (what, command) in cases {
        let out = output(memlock_run(
            ["--no-dump", "--"]
                .into_iter()
                .map(String::from)
                .chain(command),
        ));
        let line = report(&out).unwrap_or_default();
        assert!(
            out.status.success() && line.starts_with("locked ") && line.contains("dumpable=0"),
            "{what}: {line:?} status {:?}: {}",
            out.status.code(),
            stderr_of(&out)
        );
    }
}

/// `exec -a NAME`: the program sees the name its parent gave it, through the detour too; and
/// execl's arguments, however many.
#[test]
fn argv0_and_arguments_survive_the_detour() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    if skip_without("bash", "exec -a is bash's") {
        return;
    }
    let command = format!("exec -a -custom-name {} a b c d e f g h", image.display());
    let out = output(memlock_run(["--", "bash", "-c", &command]));
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && line.contains("argv0=-custom-name argc=9"),
        "{line:?}: {}",
        stderr_of(&out)
    );
    // execl with more arguments than registers.
    let out = via(&[], "execl", &image, &["1 2 3 4 5 6 7"]);
    let line = report(&out).unwrap_or_default();
    assert!(line.contains("argc=2"), "{line:?}: {}", stderr_of(&out));
    let out = via(&[], "execl", &image, &["1", "2", "3", "4", "5", "6", "7"]);
    let line = report(&out).unwrap_or_default();
    assert!(line.contains("argc=8"), "{line:?}: {}", stderr_of(&out));
    // More than the 128 the shim collects on its stack: its list in a mapping, which the
    // mapping for memlock-run's command line must leave alone.
    let out = via(&[], "execl140", &image, &[]);
    let line = report(&out).unwrap_or_default();
    assert!(line.contains("argc=141"), "{line:?}: {}", stderr_of(&out));
    // A name of 60000 bytes: the command line for memlock-run has room for it.
    let long = "n".repeat(60000);
    let command = format!("exec -a {long} {}", image.display());
    let out = output(memlock_run(["--", "bash", "-c", &command]));
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && line.contains(&format!("argv0={long} argc=1")),
        "a 60000-byte argv[0]: {}",
        stderr_of(&out)
    );
    // A caller whose own name is empty (memlock-run's --argv0= gives it one): its messages
    // then name no one, and the command line is built all the same.
    let mut cmd = memlock_run(["--argv0=", "--"]);
    cmd.arg(execvia()).arg("execv").arg(&image);
    assert_locked(&output(cmd));
}

/// Under chroot the shim's path, and memlock-run's, are gone: the exec fails, with a line
/// that names the program and the reason, and nothing runs.
#[test]
fn a_root_without_memlock_run_refuses_with_a_message() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    if skip_unless_root("chroot(2) needs CAP_SYS_CHROOT") {
        return;
    }
    let root = unique("chroot-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    writing_executables(|| std::fs::copy(&image, root.join("bin/lockreport")).unwrap());
    let out = output(memlock_run([
        "--".as_ref(),
        "chroot".as_ref(),
        root.as_os_str(),
        "/bin/lockreport".as_ref(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing(),
        &[
            "memlock-run: not executing /bin/lockreport",
            "statically linked",
            "cannot be executed",
            "--no-inherit",
        ],
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `--no-inherit` says that COMMAND alone is meant: what it executes is left alone.
#[test]
fn no_inherit_leaves_what_command_executes_alone() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let out = via(&["--no-inherit"], "execv", &image, &[]);
    let line = report(&out).unwrap_or_default();
    assert!(
        out.status.success() && line.starts_with("UNLOCKED "),
        "{line:?}: {}",
        stderr_of(&out)
    );
}

/// A set-user-ID program would run in secure-execution mode, where ld.so ignores the shim:
/// memlock-run refuses it, as it refuses it for COMMAND.
#[test]
fn a_set_user_id_descendant_is_refused() {
    let Some(image) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    if skip_unless_root("making a set-user-ID file of another owner needs root") {
        return;
    }
    let setuid = copy_with_mode(&image, "lockreport-setuid", 0o4755);
    let (uid, gid, _, _) = passwd("nobody");
    std::os::unix::fs::chown(&setuid, Some(uid), Some(gid)).unwrap();
    set_mode(&setuid, 0o4755);
    if skip_on_nosuid(&setuid, "the set-user-ID bit has no effect there") {
        return;
    }
    let out = via(&[], "execv", &setuid, &[]);
    assert_refused(
        &out,
        Refused::in_the_tree().status(125),
        &["refusing", "set-user-ID", "executed it", "--no-inherit"],
    );
}

/// Environments drawn from odd and hostile entries (the shim named twice or not at all, other
/// preloads, settings changed or damaged, a launcher path that does not exist), handed by a
/// locked program to a glibc or a static descendant: locked, or not run with a memlock-run
/// line; never unlocked with success. A longer run: PROPTEST_CASES=2000.
#[test]
fn generated_environments_never_run_a_descendant_unlocked() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let envexec = compile("envexec.c", "envexec", &[]);
    let shim = shim_path().display().to_string();
    let other = find_library("libm.so.6")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/nonexistent/libm.so.6".into());
    let entries = prop::sample::select(vec![
        format!("LD_PRELOAD={shim}"),
        format!("LD_PRELOAD={shim}"),
        format!("LD_PRELOAD={shim}:{shim}"),
        format!("LD_PRELOAD= {shim}"),
        format!("LD_PRELOAD={other}:{shim}"),
        format!("LD_PRELOAD={shim}:{other}"),
        format!("LD_PRELOAD={other}"),
        "LD_PRELOAD=".into(),
        "LD_PRELOAD=/nonexistent/libx.so".into(),
        "MEMLOCK_RUN_FLAGS=current".into(),
        "MEMLOCK_RUN_FLAGS=current,future".into(),
        "MEMLOCK_RUN_FLAGS=garbage".into(),
        "MEMLOCK_RUN_ON_FAILURE=warn".into(),
        "MEMLOCK_RUN_INHERIT=0".into(),
        "MEMLOCK_RUN_NO_DUMP=1".into(),
        "MEMLOCK_RUN_PREFAULT=18446744073709551615".into(),
        "MEMLOCK_RUN_LAUNCHER=/nonexistent/memlock-run".into(),
        "LD_BIND_NOW=1".into(),
        "LD_LIBRARY_PATH=/nonexistent".into(),
        "PATH=/usr/bin:/bin".into(),
        "MEMLOCK_RUN_=".into(),
        "=".into(),
        "LD_PRELOAD".into(),
    ]);
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(48),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(proptest::collection::vec(entries, 0..6), any::<bool>()),
            |(entries, static_target)| {
                let target = if static_target { &static_image } else { &glibc };
                let mut cmd = memlock_run(["--".as_ref(), envexec.as_os_str()]);
                cmd.args(&entries).arg("--").arg(target);
                let out = output(cmd);
                let line = report(&out);
                let locked = out.status.success()
                    && line.as_deref().is_some_and(|l| l.starts_with("locked "));
                let refused = !out.status.success()
                    && line.is_none()
                    && stderr_of(&out).contains("memlock-run");
                prop_assert!(
                    locked || refused,
                    "{entries:?} to {}: status {:?}, report {line:?}, stderr {}",
                    target.display(),
                    out.status.code(),
                    stderr_of(&out)
                );
                Ok(())
            },
        )
        .unwrap();
}

/// execvp goes on through PATH past a file the kernel would refuse (no execute bit) rather
/// than send it through memlock-run; and a refused program stops the search: another of the
/// same name further on is not run in its place.
#[test]
fn the_path_search_skips_what_the_kernel_refuses_and_stops_at_a_refusal() {
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    if skip_unless_root("chroot(2) needs CAP_SYS_CHROOT") {
        return;
    }
    let first = unique("path-first");
    let second = unique("path-second");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    writing_executables(|| {
        std::fs::copy(&static_image, first.join("lockreport")).unwrap();
        set_mode(&first.join("lockreport"), 0o644);
        std::fs::copy(&glibc, second.join("lockreport")).unwrap();
    });
    let path = format!("{}:{}", first.display(), second.display());
    let out = output({
        let mut cmd = memlock_run(["--".as_ref(), execvia().as_os_str(), "execvp".as_ref()]);
        cmd.arg("lockreport").env("PATH", &path);
        cmd
    });
    assert_locked(&out);

    // Inside a root without memlock-run, the static program first in PATH is refused, and
    // the glibc one after it is not run instead.
    let root = unique("path-root");
    for dir in ["a", "b"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    writing_executables(|| {
        std::fs::copy(&static_image, root.join("a/lockreport")).unwrap();
        std::fs::copy(&static_image, root.join("b/lockreport")).unwrap();
    });
    let out = output({
        // chroot by its path: PATH here is the one inside the root.
        let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chroot (coreutils)");
        let mut cmd = memlock_run(["--", chroot]);
        cmd.arg(&root).arg("lockreport").env("PATH", "/a:/b");
        cmd
    });
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &["memlock-run: not executing"],
    );
    assert_eq!(
        stderr_of(&out)
            .matches("memlock-run: not executing")
            .count(),
        1,
        "one refusal, and no search after it: {}",
        stderr_of(&out)
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// posix_spawn's file actions run in the child before the exec: a relative path then names a
/// file in another directory than the caller's, so such a program is judged where it runs.
#[test]
fn a_relative_program_spawned_after_a_chdir_is_judged_where_it_runs() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let dir = image.parent().unwrap().to_owned();
    let name = format!("./{}", image.file_name().unwrap().to_string_lossy());
    let elsewhere = unique("spawn-cwd");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = output({
        let mut cmd = memlock_run(["--".as_ref(), execvia().as_os_str(), "spawn_in".as_ref()]);
        cmd.arg(&dir).arg(&name).current_dir(&elsewhere);
        cmd
    });
    assert_locked(&out);
}

/// The shim preloaded by hand, without memlock-run: a program the preload cannot reach has
/// nowhere to go, and its exec fails with the shim's line and EPERM, nothing run.
#[test]
fn without_memlock_runs_path_the_exec_is_refused_with_a_line() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let out = output({
        let mut cmd = Command::new(execvia());
        cmd.arg("execv").arg(&image).env("LD_PRELOAD", shim_path());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MEMLOCK_RUN_") {
                cmd.env_remove(name);
            }
        }
        cmd
    });
    assert_refused(
        &out,
        Refused::in_the_tree().status(126),
        &[
            "memlock-run: not executing",
            "statically linked",
            "MEMLOCK_RUN_LAUNCHER",
            "Operation not permitted",
        ],
    );
}

/// A program its user may execute but not read (mode 711), directly and as a script's
/// interpreter: the shim cannot judge it, so memlock-run does, and says why it cannot either.
/// (An exec-only program once ran unlocked: a failed open's errno was overwritten.)
#[test]
fn an_execute_only_descendant_is_refused_with_a_line() {
    if skip_unprivileged_run("the execute-only case needs a user other than root") {
        return;
    }
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let xonly = reachable_copy(&image, "lockreport-xonly");
    writing_executables(|| set_mode(&xonly, 0o711));
    let script = bin_dir().join("lockreport-xonly.sh");
    writing_executables(|| {
        std::fs::write(&script, format!("#!{}\n", xonly.display())).unwrap();
        set_mode(&script, 0o755);
    });
    for target in [&xonly, &script] {
        let command = format!("{}; echo status=$?", target.display());
        let out = output(as_nobody().memlock_run(["--", "/bin/sh", "-c", &command]));
        assert_refused(
            &out,
            Refused::in_the_tree().row(&target.display().to_string()),
            &["cannot be read to be judged", "chmod a+r"],
        );
        assert!(
            stdout_of(&out).contains("status=125"),
            "{}: {}",
            target.display(),
            stdout_of(&out)
        );
    }
}

/// The same program executed by a descriptor that only names it (open with O_PATH, then
/// fexecve), as the default unprivileged run does it, exec gate and all: refused with the
/// line. (It once ran unlocked with success: the shim asked whether the descriptor's file
/// could be executed with faccessat of an empty path, which fails, and took it for the
/// kernel's refusal; the gate let go what the shim had vouched for.)
#[test]
fn an_execute_only_descendant_executed_by_its_descriptor_is_refused_with_a_line() {
    if skip_unprivileged_run("the execute-only case needs a user other than root") {
        return;
    }
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let xonly = reachable_copy(&image, "lockreport-xonly-fd");
    writing_executables(|| set_mode(&xonly, 0o711));
    let execvia = reachable_copy(&execvia(), "execvia-xonly-nobody");
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--".as_ref(),
        execvia.as_os_str(),
        "fexecve_path".as_ref(),
        xonly.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().status(125),
        &["cannot be read to be judged", "chmod a+r", "executed it"],
    );
}

/// system(3) and popen(3) start /bin/sh with the C library's own spawn, which no wrapper can
/// redirect: through a dynamic shell the command's programs are judged as usual; a static
/// /bin/sh (bound over the real one in a mount namespace of this test's own) is refused.
#[test]
fn system_and_popen_judge_the_shell_they_start() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let out = via(&[], "system", &image, &[]);
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && stdout_of(&out).contains("system=0"),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );

    if skip_unless_root("a mount namespace needs CAP_SYS_ADMIN")
        || skip_without("unshare", "the static /bin/sh case needs it (util-linux)")
    {
        return;
    }
    let script = format!(
        "mount --bind {static_sh} /bin/sh || exit 77; for mode in system popen; do {run} -- {via} $mode true; done",
        static_sh = image.display(),
        run = memlock_run_path().display(),
        via = execvia().display(),
    );
    let Some(out) = in_a_mount_namespace(&script, "bind a static program over /bin/sh") else {
        return;
    };
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("system=-1 errno=Operation not permitted")
            && stdout.contains("popen=NULL errno=Operation not permitted"),
        "{stdout}{}",
        stderr_of(&out)
    );
    assert_eq!(
        stderr_of(&out)
            .matches("memlock-run: not executing /bin/sh")
            .count(),
        2,
        "{}",
        stderr_of(&out)
    );
}

/// The execve system call made directly (as Go's os/exec and static programs do), past the
/// shim's wrappers: in a run started as root, the exec gate judges it: a program the preload
/// reaches runs locked, one it misses is refused with a line; a static COMMAND's own execs
/// are judged the same way. (`output_alone`: a gate that outlived the tree, holding its
/// stderr open, fails the test.)
#[test]
fn the_exec_gate_judges_the_execve_system_call_made_directly() {
    if skip_unless_root("the exec gate is armed for runs started as root") {
        return;
    }
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let rawexec = compile("rawexec.c", "rawexec", &[]);
    let out = output_alone(memlock_run([
        "--".as_ref(),
        rawexec.as_os_str(),
        glibc.as_os_str(),
    ]));
    assert_locked(&out);

    let out = output_alone(memlock_run([
        "--".as_ref(),
        rawexec.as_os_str(),
        static_image.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing(),
        &[
            "memlock-run: not executing",
            "statically linked",
            "made the execve system call itself",
            "--no-inherit",
        ],
    );

    // A static COMMAND (the ptrace method): its own execve of a static program is refused, of
    // a glibc one goes on and the shim locks it.
    if skip_without("busybox", "the static shell case needs busybox-static") {
        return;
    }
    let command = format!(
        "{}; echo static=$?; {}",
        static_image.display(),
        glibc.display()
    );
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox");
    let out = output_alone(memlock_run(["--", busybox, "sh", "-c", &command]));
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("static=126") || stdout.contains("static=127"),
        "{stdout}{}",
        stderr_of(&out)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("locked ")).count(),
        1,
        "{stdout}"
    );
    assert!(!stdout.contains("UNLOCKED"), "{stdout}");
}

/// The gate answers for a tree that runs as another user, non-dumpable (--user, --no-dump):
/// it reads the tasks' memory with its own rights, and opens their files with theirs (an
/// execute-only program is refused as unreadable, not read by root on their behalf).
#[test]
fn the_exec_gate_serves_a_tree_run_as_another_user() {
    if skip_unless_root("--user and the exec gate need root")
        || skip_without("busybox", "the static shell case needs busybox-static")
    {
        return;
    }
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let glibc = reachable_copy(&glibc, "lockreport-glibc-gate");
    let static_image = reachable_copy(&static_image, "lockreport-static-gate");
    let xonly = reachable_copy(&static_image, "lockreport-xonly-gate");
    writing_executables(|| set_mode(&xonly, 0o711));
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox");
    let command = format!(
        "{}; {}; {}; echo done",
        glibc.display(),
        static_image.display(),
        xonly.display()
    );
    let out = output(memlock_run([
        "--user",
        "nobody",
        "--no-dump",
        "--",
        busybox,
        "sh",
        "-c",
        &command,
    ]));
    let stdout = stdout_of(&out);
    let stderr = stderr_of(&out);
    assert!(stdout.contains("done"), "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("locked ")).count(),
        1,
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains("UNLOCKED"), "{stdout}");
    assert_mentions(
        &stderr,
        &["statically linked", "cannot be read to be judged"],
    );
}

/// Where no_new_privs is already set (Kubernetes' allowPrivilegeEscalation: false, systemd's
/// NoNewPrivileges=yes), an unprivileged run arms the gate too: a filter costs nothing more.
#[test]
fn the_exec_gate_is_armed_where_no_new_privs_is_set() {
    if skip_unprivileged_run("the no_new_privs case runs as nobody") {
        return;
    }
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let glibc = reachable_copy(&glibc, "lockreport-glibc-nnp");
    let static_image = reachable_copy(&static_image, "lockreport-static-nnp");
    let rawexec = reachable_copy(&compile("rawexec.c", "rawexec", &[]), "rawexec-nnp");
    let under_nnp = |target: &std::path::Path| {
        let mut cmd = as_nobody().no_new_privs().memlock_run(["--"]);
        cmd.arg(&rawexec).arg(target);
        output(cmd)
    };
    let out = under_nnp(&glibc);
    let line = report(&out).unwrap_or_default();
    assert!(line.starts_with("locked "), "{line:?}: {}", stderr_of(&out));
    let out = under_nnp(&static_image);
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &["not executing", "made the execve system call itself"],
    );
}

/// An unprivileged `--no-dump` tree: its processes are non-dumpable, so the gate (without
/// CAP_SYS_PTRACE) may not read what they ask to execute. It lets go what the shim judged,
/// which says so first (protocol::GATE_WORD), whichever function executes it and whatever the
/// image; an execve system call made past the shim is refused with a line, not let go.
#[test]
fn an_unprivileged_no_dump_tree_executes_what_the_shim_judged() {
    if skip_unprivileged_run("the --no-dump gate case runs as nobody") {
        return;
    }
    let execvia = reachable_copy(&execvia(), "execvia-nobody");
    let images: Vec<(&str, PathBuf)> = images()
        .into_iter()
        .filter(|(what, _)| what.starts_with("lockreport-"))
        .map(|(what, image)| (what, reachable_copy(&image, &format!("{what}-nobody"))))
        .collect();
    let run = |mode: &str, image: &Path| {
        output(as_nobody().memlock_run([
            "--no-dump".as_ref(),
            "--".as_ref(),
            execvia.as_os_str(),
            mode.as_ref(),
            image.as_os_str(),
        ]))
    };
    let mut failures = Vec::new();
    for mode in MODES.iter().chain(&["system"]) {
        for (what, image) in &images {
            if *mode == "system" && *what != "lockreport-glibc" {
                continue;
            }
            let out = run(mode, image);
            let line = report(&out).unwrap_or_default();
            if !(out.status.success() && line.starts_with("locked ") && line.contains("dumpable=0"))
            {
                failures.push(format!(
                    "{mode} of {what}: status {:?}, report {line:?}, stderr {}",
                    out.status.code(),
                    stderr_of(&out)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "not run locked:\n{}",
        failures.join("\n")
    );

    let (_, glibc) = images
        .iter()
        .find(|(what, _)| *what == "lockreport-glibc")
        .expect("a glibc build");
    let out = run("syscall", glibc);
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[
            "memlock-run: not executing",
            "made the execve system call itself",
            "non-dumpable (--no-dump)",
            "--no-inherit",
        ],
    );
}

/// While a spawn is under way (system(3) waits for its child all along), the gate takes the
/// parent's word for one child's exec, not for any: an unjudged execve system call from another
/// child of the same non-dumpable process is refused, not let go.
#[test]
fn a_spawn_under_way_vouches_for_its_own_child_only() {
    if skip_unprivileged_run("the --no-dump gate case runs as nobody") {
        return;
    }
    let Some(static_image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let static_image = reachable_copy(&static_image, "lockreport-static-race");
    let race = reachable_copy(
        &compile("spawnrace.c", "spawnrace", &["-pthread"]),
        "spawnrace-nobody",
    );
    // CAP_IPC_LOCK: the waiting thread's stack and the forked child's relock pass 8 MiB.
    let out = output(as_nobody().ambient_ipc_lock().memlock_run([
        "--no-dump".as_ref(),
        "--".as_ref(),
        race.as_os_str(),
        static_image.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree(),
        &[
            "made the execve system call itself",
            "non-dumpable (--no-dump)",
        ],
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("raw exec failed: Operation not permitted"),
        "{stdout}{}",
        stderr_of(&out)
    );
}

/// A vfork(2) child shares its parent's memory: the command line the shim builds there to send
/// a static program through memlock-run would stay mapped in the parent after the child's exec,
/// once per program; the parent's next exec gives it back, so it does not pile up.
#[test]
fn programs_sent_from_vfork_children_leave_no_memory_behind() {
    let Some(static_image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let vforkexec = compile("vforkexec.c", "vforkexec", &[]);
    let out = output(memlock_run([
        "--".as_ref(),
        vforkexec.as_os_str(),
        "30".as_ref(),
        static_image.as_os_str(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("locked ")).count(),
        30,
        "{stdout}"
    );
    let sizes: Vec<i64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("vmsize "))
        .expect("the vmsize line")
        .split_whitespace()
        .map(|n| n.parse().expect("kB"))
        .collect();
    // 30 programs left behind would be at least 30 pages.
    assert!(
        sizes[1] - sizes[0] < 24,
        "the parent grew from {} kB to {} kB",
        sizes[0],
        sizes[1]
    );
}

/// A program executed by a process with no descriptor to spare (a busy server at its
/// RLIMIT_NOFILE) cannot be opened to be judged: it is judged by memlock-run, not run as
/// asked. (A static program once ran unlocked with success there: the failed open was taken
/// for the kernel's own refusal.) `--no-exec-gate`: the shim is all that judges it.
#[test]
fn a_program_executed_with_every_descriptor_taken_is_locked_all_the_same() {
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    for image in [&glibc, &static_image] {
        let out = via(&["--no-exec-gate"], "nofds", image, &[]);
        assert_locked(&out);
    }
}

/// execvp goes on through PATH past a file its user may neither read nor execute, as the
/// kernel's EACCES says to, rather than send it to memlock-run (which would stop the search
/// with a refusal): the program further on runs, locked.
#[test]
fn the_path_search_skips_a_file_its_user_may_neither_read_nor_execute() {
    if skip_unprivileged_run("the unreadable file in PATH needs a user other than root") {
        return;
    }
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let first = bin_dir().join("path-unreadable");
    let second = bin_dir().join("path-readable");
    writing_executables(|| {
        for dir in [&first, &second] {
            std::fs::create_dir_all(dir).unwrap();
            set_mode(dir, 0o755);
        }
        std::fs::copy(&glibc, first.join("lockreport")).unwrap();
        set_mode(&first.join("lockreport"), 0o600);
        std::fs::copy(&glibc, second.join("lockreport")).unwrap();
        set_mode(&second.join("lockreport"), 0o755);
    });
    let execvia = reachable_copy(&execvia(), "execvia-path-nobody");
    let mut cmd = as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--".as_ref(),
        execvia.as_os_str(),
        "execvp".as_ref(),
        "lockreport".as_ref(),
    ]);
    // setpriv and prlimit are looked up in this PATH too.
    cmd.env(
        "PATH",
        format!(
            "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
            first.display(),
            second.display()
        ),
    );
    let out = output(cmd);
    assert_locked(&out);
    assert!(
        !stderr_of(&out).contains("memlock-run"),
        "{}",
        stderr_of(&out)
    );
}

/// A program with file capabilities runs in secure-execution mode for a user other than root,
/// where ld.so ignores the shim: it is sent to memlock-run, which refuses it as it refuses it
/// for COMMAND. `--no-exec-gate`: the shim alone judges it (and no no_new_privs is set, under
/// which the file capabilities would not apply).
#[test]
fn a_descendant_with_file_capabilities_is_refused_for_an_unprivileged_run() {
    if skip_unprivileged_run("file capabilities matter to a user other than root")
        || skip_without("setcap", "the file-capability case is not tested")
        || skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
    {
        return;
    }
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let capped = reachable_copy(&glibc, "lockreport-filecap");
    let set = output({
        let mut c = Command::new("setcap");
        c.arg("cap_net_bind_service+ep").arg(&capped);
        c
    });
    if !set.status.success() {
        skip(format_args!(
            "setcap failed here ({}); the file-capability case is not tested",
            stderr_of(&set).trim()
        ));
        return;
    }
    let execvia = reachable_copy(&execvia(), "execvia-filecap-nobody");
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--no-exec-gate".as_ref(),
        "--".as_ref(),
        execvia.as_os_str(),
        "execv".as_ref(),
        capped.as_os_str(),
    ]));
    assert_refused(
        &out,
        Refused::in_the_tree().status(125),
        &["file capabilities", "executed it", "--no-inherit"],
    );
}

/// Under a finite RLIMIT_AS (here set by prlimit(1) on the way) ld.so may find no room for the
/// shim, and then runs the program without it, with a warning only. Each exec under such a
/// limit goes through memlock-run, which checks at the entry point that the shim is there (and
/// here refuses the C library the environment preloads ahead of it, which is what takes the
/// room). The limits are stepped through the range where ld.so skips the shim: at none does
/// the program run unlocked with success. `--no-exec-gate`: the shim alone judges it.
#[test]
fn a_descendant_under_a_finite_address_limit_never_runs_unlocked() {
    if skip_without("prlimit", "the finite RLIMIT_AS case is not tested") {
        return;
    }
    // This process's own glibc (ldconfig's cache lists the x32 and i386 ones too).
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read own maps");
    let libc_path = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.rsplit('/').next() == Some("libc.so.6"))
        .expect("the test binary maps libc.so.6")
        .to_owned();
    let program = compile("bigbss.c", "bigbss", &[]);
    let preload = format!("LD_PRELOAD={libc_path}:{}", shim_path().display());
    let kib_of = |out: &Output, name: &str| -> Option<u64> {
        stdout_of(out).lines().find_map(|line| {
            line.strip_prefix(name)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    };
    // env(1) hands the program the C library ahead of the shim; under memlock-run, prlimit's
    // exec of env, then env's of the program, are judged.
    let run = |limit: Option<u64>, locked: bool| {
        let mut words: Vec<String> = Vec::new();
        if let Some(kib) = limit {
            words.extend(["prlimit".into(), format!("--as={}", kib * KIB), "--".into()]);
        }
        words.extend(["env".into(), preload.clone(), program.display().to_string()]);
        let mut cmd = if locked {
            memlock_run(["--no-exec-gate", "--"])
        } else {
            Command::new(words.remove(0))
        };
        cmd.args(words);
        output(cmd)
    };
    let free = run(None, true);
    let vm_size = kib_of(&free, "VmSize:").unwrap_or_else(|| {
        panic!(
            "the probe prints VmSize: {}{}",
            stdout_of(&free),
            stderr_of(&free)
        )
    });
    let mut skipped = 0;
    for kib in (vm_size.saturating_sub(512)..vm_size + 64).step_by(8) {
        // Without memlock-run: the limits at which ld.so skips the shim and the program runs.
        let bare = run(Some(kib), false);
        if bare.status.success() && stderr_of(&bare).contains("cannot be preloaded") {
            skipped += 1;
        }
        let out = run(Some(kib), true);
        if out.status.success() {
            assert!(
                kib_of(&out, "VmLck:").unwrap_or(0) > 0,
                "RLIMIT_AS {kib} KiB: the program ran unlocked with success:\n{}{}",
                stdout_of(&out),
                stderr_of(&out)
            );
        }
    }
    assert!(
        skipped > 0,
        "no RLIMIT_AS from {} KiB to {} KiB made ld.so skip the shim",
        vm_size.saturating_sub(512),
        vm_size + 64
    );
}

/// The shim preloaded by hand, without memlock-run: what the preload reaches needs no
/// detour, so it runs, locked by the shim: a glibc program, and a script whose #! interpreter
/// is one (the kernel runs the interpreter, the script's path its first argument), and a
/// program spawned by a relative path.
#[test]
fn without_memlock_runs_path_what_the_preload_reaches_runs_locked() {
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let text = format!("#!{}\n", glibc.display());
    let script = script("lockreport-glibc.sh", &text);
    for (target, argc) in [(&glibc, "argc=1"), (&script, "argc=2")] {
        let out = output({
            let mut cmd = Command::new(execvia());
            cmd.arg("execv").arg(target).env("LD_PRELOAD", shim_path());
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("MEMLOCK_RUN_") {
                    cmd.env_remove(name);
                }
            }
            cmd
        });
        assert_locked(&out);
        let line = report(&out).unwrap_or_default();
        assert!(line.contains(argc), "{}: {line}", target.display());
    }
    // Spawned by a relative path without file actions: judged here, where it runs.
    let out = output({
        let mut cmd = Command::new(execvia());
        let name = format!("./{}", glibc.file_name().unwrap().to_string_lossy());
        cmd.arg("posix_spawn")
            .arg(name)
            .current_dir(glibc.parent().unwrap())
            .env("LD_PRELOAD", shim_path());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MEMLOCK_RUN_") {
                cmd.env_remove(name);
            }
        }
        cmd
    });
    assert_locked(&out);
}

/// The shim removed while a tree runs (memlock-run uninstalled or upgraded under it): a
/// program executed after that would be started without it by ld.so, with a warning only. The
/// shim sees it gone from its path and sends the program to memlock-run, which says it cannot
/// find the shim; nothing runs unlocked.
#[test]
fn a_program_executed_after_the_shim_is_removed_is_refused_with_a_line() {
    let Some(glibc) = lockreport("gcc", &[], "lockreport-glibc") else {
        return;
    };
    let install = unique("shim-removed");
    std::fs::create_dir_all(&install).unwrap();
    let shim = install.join("libmemlock_run_shim.so");
    let launcher = install.join("memlock-run");
    writing_executables(|| {
        std::fs::copy(memlock_run_path(), &launcher).unwrap();
        std::fs::copy(shim_path(), &shim).unwrap();
    });
    let command = format!("rm {}; exec {}", shim.display(), glibc.display());
    let out = output({
        let mut cmd = Command::new(&launcher);
        cmd.args(["--no-exec-gate", "--", "/bin/sh", "-c", &command]);
        cmd
    });
    assert_refused(
        &out,
        Refused::in_the_tree().status(125),
        &[
            "cannot find the preload shim",
            "executed it",
            "--no-inherit",
        ],
    );
    let _ = std::fs::remove_dir_all(&install);
}

/// execvp goes on through PATH past a program on a noexec mount, which the kernel refuses
/// (EACCES), rather than send it to memlock-run, whose refusal would stop the search: the
/// program further on runs, locked. (A tmpfs mounted noexec in a mount namespace of this
/// test's own.) `--no-exec-gate`: the shim's judgement alone; the gate refuses such a
/// program itself, with EPERM, which stops the search too.
#[test]
fn the_path_search_skips_a_program_on_a_noexec_mount() {
    if skip_unless_root("a mount namespace needs CAP_SYS_ADMIN")
        || skip_without("unshare", "the noexec mount case needs it (util-linux)")
    {
        return;
    }
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let noexec = unique("noexec-mount");
    let second = unique("path-after-noexec");
    std::fs::create_dir_all(&noexec).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    writing_executables(|| std::fs::copy(&glibc, second.join("lockreport")).unwrap());
    let script = format!(
        "mount -t tmpfs -o noexec tmpfs {noexec} && cp {static_image} {noexec}/lockreport || exit 77; \
         PATH={noexec}:{second} exec {run} --no-exec-gate -- {via} execvp lockreport",
        noexec = noexec.display(),
        second = second.display(),
        static_image = static_image.display(),
        run = memlock_run_path().display(),
        via = execvia().display(),
    );
    let Some(out) = in_a_mount_namespace(&script, "mount a noexec tmpfs") else {
        return;
    };
    assert_locked(&out);
    assert!(
        !stderr_of(&out).contains("memlock-run"),
        "{}",
        stderr_of(&out)
    );
}

/// A FIFO where a program should be, executed by its path or by a descriptor that only names
/// it: the exec fails at once with EACCES, as without memlock-run; reading it to judge it must
/// not wait for a writer.
#[test]
fn a_fifo_executed_by_path_or_descriptor_fails_at_once() {
    let fifo = unique("fifo-descendant");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
    for mode in ["execv", "fexecve_path"] {
        let mut cmd = Command::new("timeout");
        cmd.arg("10").arg(memlock_run_path()).arg("--");
        cmd.arg(execvia()).arg(mode).arg(&fifo);
        let out = output(cmd);
        assert_ne!(out.status.code(), Some(124), "{mode}: blocked on the FIFO");
        assert_eq!(out.status.code(), Some(126), "{mode}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("Permission denied")
                && !stderr_of(&out).contains("memlock-run"),
            "{mode}: {}",
            stderr_of(&out)
        );
    }
    // The FIFO as a script's #! interpreter: it cannot be read (ESPIPE), so memlock-run judges
    // the script, and refuses it with its reason.
    let via_fifo = script(
        &unique("via-fifo-descendant.sh")
            .file_name()
            .unwrap()
            .to_string_lossy(),
        &format!("#!{}\n", fifo.display()),
    );
    let mut cmd = Command::new("timeout");
    cmd.arg("10").arg(memlock_run_path()).arg("--");
    cmd.arg(execvia()).arg("execv").arg(&via_fifo);
    let out = output(cmd);
    assert_ne!(out.status.code(), Some(124), "blocked on the FIFO");
    assert_refused(&out, Refused::in_the_tree().status(126), &["a FIFO"]);
}

/// An empty program name fails with ENOENT, as without memlock-run, whatever the standard
/// input is (the descriptor an empty path names under AT_EMPTY_PATH, which execve does not
/// pass): here a static program, which memlock-run would be asked to judge instead.
#[test]
fn an_empty_program_name_is_not_found_whatever_stdin_is() {
    let Some(static_image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    for mode in ["execv", "execveat"] {
        let mut cmd = memlock_run([
            "--".as_ref(),
            execvia().as_os_str(),
            mode.as_ref(),
            "".as_ref(),
        ]);
        cmd.stdin(std::fs::File::open(&static_image).unwrap());
        let out = run(&mut cmd).unwrap();
        assert_eq!(out.status.code(), Some(126), "{mode}: {}", stderr_of(&out));
        assert_eq!(
            stderr_of(&out).trim(),
            "execvia: No such file or directory",
            "{mode}"
        );
    }
}

/// A program executed while errno still says EINTR (left by a wait a signal interrupted, as a
/// shell's often is) is judged as any other, at once: a glibc program, a static one and a
/// script shorter than the header the shim reads. (`timeout`: a judgement that took the stale
/// EINTR for its own read's would read again forever.)
#[test]
fn a_program_executed_with_eintr_left_in_errno_runs_locked() {
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let script = script("lockreport-eintr.sh", &format!("#!{}\n", glibc.display()));
    for target in [&glibc, &static_image, &script] {
        let mut cmd = Command::new("timeout");
        cmd.arg("20").arg(memlock_run_path()).arg("--");
        cmd.arg(execvia()).arg("eintr").arg(target);
        let out = output(cmd);
        assert_ne!(
            out.status.code(),
            Some(124),
            "{}: the exec never ended",
            target.display()
        );
        assert_locked(&out);
    }
}

/// A locked program that spawns programs again and again (a server running a helper per
/// request) keeps nothing of the shim's judgements: its open descriptors and its VmSize are the
/// same after three spawns, of a program run as asked and of one sent to memlock-run (whose
/// command line the shim builds in a mapping of its own).
#[test]
fn spawning_again_and_again_leaves_nothing_behind() {
    let (Some(glibc), Some(static_image)) = (
        lockreport("gcc", &[], "lockreport-glibc"),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    for target in [&glibc, &static_image] {
        let out = via(&[], "spawn3", target, &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let stdout = stdout_of(&out);
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("locked ")).count(),
            3,
            "{stdout}"
        );
        for what in ["fds", "vmsize"] {
            let (before, after) = stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{what} before=")))
                .and_then(|rest| rest.split_once(" after="))
                .unwrap_or_else(|| panic!("no {what} line: {stdout}"));
            assert_eq!(before, after, "{what} of {}: {stdout}", target.display());
        }
    }
}

/// A static program executed with thousands of arguments, or thousands of short environment
/// entries (and an empty one), or a thousand LD_PRELOAD entries, goes through memlock-run with
/// all of them: the command line and environment the shim builds for it have room for every
/// pointer and every byte.
#[test]
fn thousands_of_arguments_and_environment_entries_survive_the_detour() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let many = vec!["x"; 3000];
    let out = via(&[], "execv", &image, &many);
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && line.contains("argc=3001"),
        "{line:?}: {}",
        stderr_of(&out)
    );
    let envexec = compile("envexec.c", "envexec", &[]);
    let mut cmd = memlock_run(["--".as_ref(), envexec.as_os_str()]);
    cmd.args(vec!["X="; 3000]).args(["", "--"]).arg(&image);
    assert_locked(&output(cmd));
    // The arguments again, with an empty environment: no room to spare from its bytes.
    let mut cmd = memlock_run(["--".as_ref(), envexec.as_os_str(), "--".as_ref()]);
    cmd.arg(&image).args(&many);
    let out = output(cmd);
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && line.contains("argc=3001"),
        "{line:?}: {}",
        stderr_of(&out)
    );
    // A thousand LD_PRELOAD entries, each rewritten without the shim for memlock-run (which
    // composes its own; ld.so warns of the missing library in memlock-run, and goes on).
    let mut cmd = memlock_run(["--".as_ref(), envexec.as_os_str()]);
    cmd.args(vec!["LD_PRELOAD=/nonexistent/libx.so"; 1000])
        .arg("--")
        .arg(&image);
    assert_locked(&output(cmd));
}

/// The user's own preloads survive the detour, in their order, and memlock-run does not load
/// the shim itself: a static program executed with the shim and two other libraries in
/// LD_PRELOAD (the shim first, between or last, separated by colons or blanks) gets those
/// libraries and then the shim, as memlock-run composes them for the programs it starts; and
/// under `-vv` (which every locked program of the tree follows) no line comes from a shim
/// inside memlock-run.
#[test]
fn a_users_preloads_survive_the_detour_and_memlock_run_does_not_load_the_shim() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    // Libraries beside this process's own glibc (ldconfig's cache lists the x32 and i386
    // ones too).
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read own maps");
    let libc = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.rsplit('/').next() == Some("libc.so.6"))
        .expect("the test binary maps libc.so.6");
    let libm = Path::new(libc).with_file_name("libm.so.6");
    let libdl = Path::new(libc).with_file_name("libdl.so.2");
    if !libm.exists() || !libdl.exists() {
        skip(format_args!("no libm.so.6 and libdl.so.2 beside {libc}"));
        return;
    }
    let shim = shim_path().display().to_string();
    let (libm, libdl) = (libm.display().to_string(), libdl.display().to_string());
    for preload in [
        format!("{shim}:{libm}:{libdl}"),
        format!("{libm} {shim} {libdl}"),
        format!(":{libm}::{libdl}:{shim}"),
    ] {
        let out = output(memlock_run([
            "-vv".as_ref(),
            "--".as_ref(),
            "env".as_ref(),
            format!("LD_PRELOAD={preload}").as_ref(),
            image.as_os_str(),
        ]));
        assert_locked(&out);
        let line = report(&out).unwrap_or_default();
        let got = line.rsplit_once(" preload=").map(|(_, p)| p).unwrap_or("");
        assert_eq!(
            got,
            format!("{libm}:{libdl}:{shim}"),
            "LD_PRELOAD={preload}: {line}"
        );
        assert!(
            !stderr_of(&out).contains("/memlock-run (pid "),
            "LD_PRELOAD={preload}: the shim ran in memlock-run: {}",
            stderr_of(&out)
        );
    }
}

/// A program spawned (posix_spawn) that must go through a memlock-run that cannot be
/// executed (MEMLOCK_RUN_LAUNCHER names a missing file): the spawn fails with EPERM and the
/// shim's line naming memlock-run and why, not with success and nothing said.
#[test]
fn a_spawn_whose_memlock_run_cannot_be_executed_fails_with_a_line() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let out = output({
        let mut cmd = Command::new(execvia());
        cmd.arg("posix_spawn").arg(&image);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MEMLOCK_RUN_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("LD_PRELOAD", shim_path())
            .env("MEMLOCK_RUN_LAUNCHER", "/nonexistent/memlock-run");
        cmd
    });
    assert_refused(
        &out,
        Refused::in_the_tree().status(126),
        &[
            "memlock-run: not executing",
            "cannot be executed (/nonexistent/memlock-run: ",
            "execvia: spawn: Operation not permitted",
        ],
    );
}

/// A static program named by a relative path to execveat(AT_FDCWD, ...), and by fexecve of
/// its descriptor: memlock-run is given a name it can open (the path itself, or
/// /proc/self/fd/N), and locks it.
#[test]
fn a_relative_program_executed_by_execveat_goes_through_the_detour() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let name = format!("./{}", image.file_name().unwrap().to_string_lossy());
    for mode in ["execveat", "fexecve"] {
        let out = output({
            let mut cmd = memlock_run(["--".as_ref(), execvia().as_os_str(), mode.as_ref()]);
            cmd.arg(&name).current_dir(image.parent().unwrap());
            cmd
        });
        assert_locked(&out);
    }
}

/// A static program executed with no argument list at all (argv NULL, which Linux takes for
/// an empty one) goes through memlock-run and runs locked.
#[test]
fn a_program_executed_without_an_argument_list_is_locked() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    assert_locked(&via(&[], "noargv", &image, &[]));
}

/// posix_spawnp by name searches PATH as execvp does (both tried), and the program it finds
/// is judged:
/// past a directory of that name in the first PATH entry, to the static program in the next,
/// which runs locked (`--no-exec-gate`: the shim alone judges it). The name is long (100
/// bytes), as the search's buffer must hold.
#[test]
fn posix_spawnp_finds_the_program_in_path_and_judges_it() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let name = format!("lockreport{}", "-".repeat(90));
    let first = unique("spawnp-first");
    let second = unique("spawnp-second");
    std::fs::create_dir_all(first.join(&name)).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    writing_executables(|| std::fs::copy(&image, second.join(&name)).unwrap());
    for mode in ["posix_spawnp", "execvp"] {
        let out = output({
            let mut cmd = memlock_run([
                "--no-exec-gate".as_ref(),
                "--".as_ref(),
                execvia().as_os_str(),
                mode.as_ref(),
            ]);
            cmd.arg(&name)
                .env("PATH", format!("{}:{}", first.display(), second.display()));
            cmd
        });
        assert_locked(&out);
    }
}

/// A static program at a long path (over 700 bytes), executed with an empty argv[0] and an
/// empty environment: the command line for memlock-run has room for the path.
#[test]
fn a_long_path_with_an_empty_name_survives_the_detour() {
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let mut dir = unique("long-path");
    for _ in 0..3 {
        dir.push("d".repeat(240));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("lockreport-static");
    writing_executables(|| std::fs::copy(&image, &program).unwrap());
    let out = via(&[], "noname", &program, &[]);
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("locked ") && line.contains("argv0= argc=1"),
        "{line:?}: {}",
        stderr_of(&out)
    );
}

/// `sh -c SCRIPT` in a private mount namespace of its own, so that what it mounts is gone with
/// it. SCRIPT exits 77 when the mount it needs cannot be made here: the test is then skipped,
/// saying it could not `what`, and None is returned.
fn in_a_mount_namespace(script: &str, what: &str) -> Option<std::process::Output> {
    let out = output({
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
        ]);
        cmd
    });
    if out.status.code() == Some(77) {
        skip(format_args!("cannot {what} here: {}", stderr_of(&out)));
        return None;
    }
    Some(out)
}

/// `-v` reports COMMAND alone, whatever locks it (the shim, or the ptrace method, where no
/// shim runs in COMMAND to take the setting out) and whatever locks what it executes; `-vv`
/// reports every locked program of the tree, through a nested memlock-run too.
#[test]
fn verbose_reports_command_alone_and_twice_the_whole_tree() {
    let rawexec = compile("rawexec.c", "rawexec-static", &["-static"]);
    let rawexec = rawexec.to_str().unwrap();
    let through_sh = format!("/bin/true; /bin/true; {rawexec} /bin/true");
    for (what, command, tree) in [
        (
            "a shell (the preload) that runs true twice and a static program (through memlock-run) that \
             runs true",
            vec!["/bin/sh", "-c", &through_sh],
            5,
        ),
        (
            "a static program (the ptrace method) that runs true",
            vec![rawexec, "/bin/true"],
            2,
        ),
    ] {
        for (option, lines) in [("-v", 1), ("-vv", tree)] {
            let out = output(memlock_run([option, "--"].iter().chain(&command)));
            assert!(out.status.success(), "{what}, {option}: {}", stderr_of(&out));
            let reports: Vec<String> = stderr_lines(&out)
                .into_iter()
                .filter(|l| l.starts_with("memlock-run: ") && l.contains("): locked MCL_CURRENT with"))
                .collect();
            assert_eq!(reports.len(), lines, "{what}, {option}:\n{}", stderr_of(&out));
            let name = Path::new(command[0]).file_name().unwrap().to_str().unwrap();
            // The shim names it by argv[0], the ptrace method by its file's name.
            assert!(
                [command[0], name]
                    .iter()
                    .any(|n| reports[0].starts_with(&format!("memlock-run: {n} (pid "))),
                "{what}, {option}: the first report is COMMAND's:\n{}",
                stderr_of(&out)
            );
        }
    }
}
