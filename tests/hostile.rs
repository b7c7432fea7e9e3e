//! Trees that try, or happen, to get a program past the lock (issue 19, item 7): each row runs
//! a real tree and asserts that the program it executes is locked (it reports VmLck from
//! /proc/self/status itself: tests/probes/lockreport.c) or refused with a line naming it and
//! the true cause; never unlocked without a word. And the other way (item 2): what the kernel
//! does not run in secure-execution mode for the calling task (a set-user-ID root program run
//! by root) runs, locked, inside a tree as it does when memlock-run starts it.
//!
//! The rows here: secure execution as the kernel computes it (set-user-ID root and file
//! capabilities run by root, by nobody with and without the no_new_privs of the run's gate,
//! a task whose effective user ID is not its real one), and an `LD_AUDIT` library that would
//! keep the shim out (set for COMMAND, and set by COMMAND for what it executes through libc
//! and through the system call itself).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A directory of the scratch dir for this test's set-ID copies, removed with them when
/// dropped. `reachable`: nobody may enter it (mode 0755); otherwise root's alone (0700), so
/// that no other user can execute a set-user-ID root copy while it exists.
struct SetIdDir(PathBuf);

impl SetIdDir {
    fn new(name: &str, reachable: bool) -> SetIdDir {
        let dir = unique(name);
        std::fs::create_dir_all(&dir).expect("create the set-ID dir");
        set_mode(&dir, if reachable { 0o755 } else { 0o700 });
        SetIdDir(dir)
    }

    /// A copy of `source` here, owned by root, with `mode`.
    fn copy(&self, source: &Path, name: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        writing_executables(|| {
            std::fs::copy(source, &path).expect("copy");
            std::os::unix::fs::chown(&path, Some(0), Some(0)).expect("chown root");
            set_mode(&path, mode);
        });
        path
    }

    /// A copy of `source` here given `capabilities` (setcap's text), or None (said) where
    /// setcap cannot give them here.
    fn capped(&self, source: &Path, name: &str, capabilities: &str) -> Option<PathBuf> {
        if skip_without("setcap", "the file-capability rows are not tested") {
            return None;
        }
        let path = self.copy(source, name, 0o755);
        let set = output({
            let mut c = Command::new("setcap");
            c.arg(capabilities).arg(&path);
            c
        });
        if !set.status.success() {
            skip(format_args!(
                "setcap failed here ({}); the file-capability rows are not tested",
                stderr_of(&set).trim()
            ));
            return None;
        }
        Some(path)
    }
}

impl Drop for SetIdDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn glibc_lockreport() -> Option<PathBuf> {
    lockreport("gcc", &[], "lockreport-glibc")
}

fn execvia() -> PathBuf {
    compile("execvia.c", "execvia", &[])
}

/// What the set-ID rows need: root (to make set-ID files of root), and a scratch dir where
/// set-ID bits count.
fn set_id_rows_here() -> bool {
    !skip_unless_root("set-ID files of root need root to make")
        && !skip_on_nosuid(
            &scratch(),
            "set-ID bits and file capabilities have no effect there",
        )
}

/// `WHO memlock-run OPTIONS -- sh -c 'exec PROGRAM'` (the shell's execve, through libc: the
/// shim judges it, then the gate) and `WHO memlock-run OPTIONS -- execvia syscall PROGRAM`
/// (the execve system call itself: the gate alone), each run to its end.
fn both_ways(who: &RunAs, options: &[&str], program: &Path) -> [(&'static str, Output); 2] {
    let through_libc = {
        let mut cmd = who.memlock_run(options);
        cmd.args(["--", "sh", "-c"])
            .arg(format!("exec {}", program.display()));
        output(cmd)
    };
    let raw = {
        let mut cmd = who.memlock_run(options);
        cmd.arg("--").arg(execvia()).arg("syscall").arg(program);
        output(cmd)
    };
    [("through libc", through_libc), ("system call", raw)]
}

/// In a tree started by root, a set-user-ID root program and one with file capabilities are
/// not run in secure-execution mode (the kernel's rule for a task whose IDs are all 0): the
/// preload reaches them, and they run locked, whether executed through libc or with the
/// system call itself, as they do when memlock-run starts them.
#[test]
fn a_root_tree_runs_set_id_and_file_capability_programs_locked() {
    if !set_id_rows_here() {
        return;
    }
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let dir = SetIdDir::new("root-tree-set-id", false);
    let mut programs = vec![(
        "set-user-ID root",
        dir.copy(&glibc, "lockreport-setuid-root", 0o4755),
    )];
    programs.extend(
        dir.capped(&glibc, "lockreport-cap-net-raw", "cap_net_raw+ep")
            .map(|p| ("cap_net_raw+ep", p)),
    );
    for (what, program) in &programs {
        // COMMAND itself, as memlock-run starts it.
        let direct = output(memlock_run([
            "--".as_ref(),
            execvia().as_os_str(),
            "execv".as_ref(),
            program.as_os_str(),
        ]));
        assert_locked(&direct);
        for (how, out) in both_ways(&as_caller(), &[], program) {
            let line = report(&out).unwrap_or_default();
            assert!(
                out.status.success() && line.starts_with("locked "),
                "{what}, {how}: {line:?}\n{}",
                stderr_of(&out)
            );
            assert!(
                !stderr_of(&out).contains("memlock-run"),
                "{what}, {how}: {}",
                stderr_of(&out)
            );
        }
    }
}

/// mount(8), set-user-ID root on Debian, run by root inside a tree: it runs (it lists the
/// mounts) and nothing of memlock-run's is said.
#[test]
fn a_root_tree_runs_the_systems_set_user_id_mount() {
    let Some(mount) = ["/usr/bin/mount", "/bin/mount"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        skip(format_args!("no mount(8) here"));
        return;
    };
    if skip_unless_root("root's tree is the case") || skip_on_nosuid(mount, "its bit has no effect")
    {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(mount).unwrap().permissions().mode() & 0o4000 == 0 {
        skip(format_args!("{} is not set-user-ID here", mount.display()));
        return;
    }
    let out = output(memlock_run([
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        format!("{} >/dev/null && echo listed", mount.display()).as_ref(),
    ] as [&std::ffi::OsStr; 4]));
    assert!(
        out.status.success() && stdout_of(&out).contains("listed"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        !stderr_of(&out).contains("memlock-run"),
        "{}",
        stderr_of(&out)
    );
}

/// The same set-user-ID root program run by nobody: secure-execution mode, where ld.so ignores
/// the shim. Without an exec gate (so without the no_new_privs an unprivileged gate needs)
/// the shim sends it to memlock-run, which refuses it with a line naming it and the set-ID
/// bit, as it refuses it for COMMAND. With the gate, whose no_new_privs makes the kernel
/// ignore set-ID bits, it runs as nobody without secure-execution, and locked, either way it
/// is executed.
#[test]
fn a_nobody_tree_refuses_a_set_user_id_root_program_or_runs_it_under_no_new_privs() {
    if !set_id_rows_here()
        || skip_unprivileged_run("the run of nobody is the case where set-user-ID root is secure")
    {
        return;
    }
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let dir = SetIdDir::new("nobody-tree-set-id", true);
    let setuid = dir.copy(&glibc, "lockreport-setuid-root", 0o4755);
    let nobody = as_nobody().limit(CI_MEMLOCK);
    let mut cmd = nobody.memlock_run(["--no-exec-gate", "--", "sh", "-c"]);
    cmd.arg(format!("exec {}", setuid.display()));
    let out = output(cmd);
    assert_refused(
        &out,
        Refused::in_the_tree().status(125),
        &[
            &format!("refusing {}", setuid.display()),
            "set-user-ID (owner uid 0)",
            "secure-execution mode",
        ],
    );
    // COMMAND itself, the same.
    let out =
        output(nobody.memlock_run(["--no-exec-gate".as_ref(), "--".as_ref(), setuid.as_os_str()]));
    assert_refused(&out, Refused::before_main(), &["set-user-ID (owner uid 0)"]);
    for (how, out) in both_ways(&nobody, &[], &setuid) {
        let line = report(&out).unwrap_or_default();
        assert!(
            out.status.success() && line.starts_with("locked "),
            "under the gate's no_new_privs, {how}: {line:?}\n{}",
            stderr_of(&out)
        );
    }
    // COMMAND itself, the same, and memlock-run says that the bit had no effect.
    let out = output(nobody.memlock_run(["--".as_ref(), setuid.as_os_str()]));
    assert_locked(&out);
    assert_mentions(
        &stderr_of(&out),
        &[
            "note: COMMAND is set-user-ID (owner uid 0)",
            "makes the kernel ignore the bit",
        ],
    );
}

/// A program with file capabilities run by nobody: secure-execution mode, and no_new_privs
/// does not change that (the kernel still runs it securely). Refused with a line naming the
/// program and its capabilities, executed through libc (the shim, then memlock-run) or with
/// the system call itself (the gate).
#[test]
fn a_nobody_tree_refuses_a_file_capability_program_either_way() {
    if !set_id_rows_here()
        || skip_unprivileged_run("file capabilities matter to a user other than root")
    {
        return;
    }
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let dir = SetIdDir::new("nobody-tree-file-caps", true);
    let Some(capped) = dir.capped(&glibc, "lockreport-cap-net-raw", "cap_net_raw+ep") else {
        return;
    };
    let shown = capped.display().to_string();
    for (how, out) in both_ways(&as_nobody().limit(CI_MEMLOCK), &[], &capped) {
        let said = assert_refused(
            &out,
            Refused::in_the_tree().failing().row(how),
            &[&shown, "given file capabilities"],
        );
        assert!(!said.contains("UNLOCKED"), "{how}: {said}");
    }
}

/// A task whose effective user ID is not its real one (root that set its effective ID to
/// nobody) runs whatever it executes in secure-execution mode, a plain program included,
/// where ld.so ignores the shim: refused with a line, never run unlocked; through libc
/// (setpriv's exec, which the shim judges) and with the system call itself (the gate).
#[test]
fn a_task_with_another_effective_user_id_is_refused_a_plain_program() {
    if skip_unless_root("setting another effective user ID needs root")
        || skip_without("setpriv", "the effective-ID row is not tested")
    {
        return;
    }
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let glibc = reachable_copy(&glibc, "lockreport-glibc-other-euid");
    let out = output(memlock_run([
        "--".as_ref(),
        "setpriv".as_ref(),
        "--euid=65534".as_ref(),
        "--".as_ref(),
        glibc.as_os_str(),
    ] as [&std::ffi::OsStr; 5]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("through libc"),
        &["effective user or group ID"],
    );
    let euidexec = compile("euidexec.c", "euidexec", &[]);
    let out = output(memlock_run([
        "--".as_ref(),
        euidexec.as_os_str(),
        "65534".as_ref(),
        glibc.as_os_str(),
    ] as [&std::ffi::OsStr; 4]));
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("system call"),
        &[
            &glibc.display().to_string(),
            "executed by a process whose effective user or group ID is not its real one",
        ],
    );
}

/// tests/probes/audit.c, an audit library whose la_objsearch refuses the shim.
fn audit_library() -> PathBuf {
    compile("audit.c", "audit.so", &["-shared", "-fPIC"])
}

/// The audit library does what the rows guard against: under it, a program handed the shim
/// by hand in LD_PRELOAD runs without it, unlocked (so the rows below test something).
#[test]
fn the_audit_library_keeps_the_shim_out() {
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let out = output({
        let mut cmd = Command::new(&glibc);
        cmd.env("LD_PRELOAD", shim_path())
            .env("LD_AUDIT", audit_library());
        cmd
    });
    let line = report(&out).unwrap_or_default();
    assert!(
        line.starts_with("UNLOCKED "),
        "{line:?}: {}",
        stderr_of(&out)
    );
}

/// LD_AUDIT in COMMAND's environment: ld.so would load it before the shim, which it keeps
/// out. Refused before anything runs, with a line naming LD_AUDIT, the library and the
/// remedy; under --on-failure warn it runs (unlocked, since the library keeps the shim out)
/// with a note that says so.
#[test]
fn an_audit_library_for_command_is_refused_with_a_line() {
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let audit = audit_library();
    let run = |options: &[&str]| {
        let mut cmd = memlock_run(options);
        cmd.arg("--").arg(&glibc).env("LD_AUDIT", &audit);
        output(cmd)
    };
    let line = assert_refused(
        &run(&[]),
        Refused::before_main(),
        &[
            "LD_AUDIT names an audit library",
            &audit.display().to_string(),
            "env -u LD_AUDIT",
        ],
    );
    assert!(
        line.starts_with(&format!(
            "memlock-run: refusing to run {}: ",
            glibc.display()
        )),
        "{line}"
    );
    let warned = run(&["--on-failure", "warn"]);
    assert!(
        stderr_of(&warned).contains("memlock-run: note: LD_AUDIT names an audit library"),
        "{}",
        stderr_of(&warned)
    );
}

/// COMMAND sets LD_AUDIT for a program it executes, through libc (the shim judges the exec,
/// and sends it to memlock-run, which refuses it) or with the system call itself (the gate
/// judges it, and refuses it): never run unlocked, and the line names LD_AUDIT and the
/// program.
#[test]
fn an_audit_library_set_for_a_descendant_is_refused_with_a_line() {
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let auditexec = compile("auditexec.c", "auditexec", &[]);
    let audit = audit_library();
    for (how, says) in [
        ("libc", "LD_AUDIT names an audit library"),
        ("syscall", "its environment sets LD_AUDIT"),
    ] {
        let out = output(memlock_run([
            "--".as_ref(),
            auditexec.as_os_str(),
            how.as_ref(),
            audit.as_os_str(),
            glibc.as_os_str(),
        ] as [&std::ffi::OsStr; 5]));
        assert_refused(
            &out,
            Refused::in_the_tree().failing().row(how),
            &[says, &glibc.display().to_string()],
        );
    }
}

/// On a nosuid mount the kernel ignores set-ID bits: a set-user-ID nobody program there, run
/// by root, is not secure-execution, and runs locked whether executed through libc (the shim,
/// which does not read mounts, sends it to memlock-run, which does) or with the system call
/// itself (the gate). In a private mount namespace, on a tmpfs mounted nosuid.
#[test]
fn a_set_user_id_program_on_a_nosuid_mount_runs_locked() {
    if skip_unless_root("mounting a tmpfs needs root")
        || skip_without("unshare", "the nosuid row is not tested")
    {
        return;
    }
    let Some(glibc) = glibc_lockreport() else {
        return;
    };
    let dir = SetIdDir::new("nosuid-mount", false);
    let script = format!(
        "d='{dir}'
         mount -t tmpfs -o nosuid,mode=0700 tmpfs \"$d\" || exit 77
         cp '{glibc}' \"$d/lr\" && chown 65534:65534 \"$d/lr\" && chmod 4755 \"$d/lr\" || exit 1
         '{memlock_run}' -- '{execvia}' syscall \"$d/lr\" || exit 2
         '{memlock_run}' -- sh -c \"exec $d/lr\" || exit 3",
        dir = dir.0.display(),
        glibc = glibc.display(),
        memlock_run = memlock_run_path().display(),
        execvia = execvia().display(),
    );
    let out = output({
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(&script);
        cmd
    });
    if out.status.code() == Some(77) {
        skip(format_args!(
            "cannot mount a tmpfs here: {}",
            stderr_of(&out)
        ));
        return;
    }
    let stdout = stdout_of(&out);
    let locked = stdout.lines().filter(|l| l.starts_with("locked ")).count();
    assert!(
        out.status.success() && locked == 2 && !stdout.contains("UNLOCKED"),
        "{stdout}{}",
        stderr_of(&out)
    );
    assert!(
        !stderr_of(&out).contains("memlock-run"),
        "{}",
        stderr_of(&out)
    );
}

/// binfmt_misc rules for this test, removed (and binfmt_misc unmounted, if this test mounted
/// it) when dropped.
struct BinfmtRules {
    dir: PathBuf,
    names: Vec<String>,
    mounted: bool,
}

impl BinfmtRules {
    /// None (said) where binfmt_misc cannot be used here: not root, or no mount.
    fn new() -> Option<BinfmtRules> {
        if skip_unless_root("binfmt_misc rules need root to register") {
            return None;
        }
        let dir = PathBuf::from("/proc/sys/fs/binfmt_misc");
        let mut mounted = false;
        if !dir.join("register").exists() {
            let out = output({
                let mut c = Command::new("mount");
                c.args(["-t", "binfmt_misc", "binfmt_misc"]).arg(&dir);
                c
            });
            if !out.status.success() {
                skip(format_args!(
                    "binfmt_misc cannot be mounted here ({}); its rows are not tested",
                    stderr_of(&out).trim()
                ));
                return None;
            }
            mounted = true;
        }
        Some(BinfmtRules {
            dir,
            names: Vec::new(),
            mounted,
        })
    }

    /// An extension rule: files whose path ends in `.EXTENSION` run with `interpreter`.
    fn extension(&mut self, extension: &str, interpreter: &Path) {
        let name = format!("memlock-run-test-{extension}");
        std::fs::write(
            self.dir.join("register"),
            format!(":{name}:E::{extension}::{}:", interpreter.display()),
        )
        .expect("register a binfmt_misc rule");
        self.names.push(name);
    }
}

impl Drop for BinfmtRules {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::fs::write(self.dir.join(name), "-1");
        }
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
    }
}

/// A file binfmt_misc hands to an interpreter (the kernel tries binfmt_misc before its ELF and
/// #! loaders): the interpreter is what runs, and it is judged. A dynamically linked one runs
/// locked, as COMMAND and in the tree; a static one runs locked as COMMAND (the ptrace
/// method) and is refused in the tree with a line naming the rule; a file no rule matches
/// still falls back to the shell, as it does without memlock-run.
#[test]
fn a_binfmt_misc_rules_interpreter_is_what_is_judged() {
    let Some(mut rules) = BinfmtRules::new() else {
        return;
    };
    let (Some(dynamic), Some(static_interpreter)) = (
        glibc_lockreport(),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let tag = std::process::id() % 100_000;
    let (dyn_ext, static_ext) = (format!("mlrd{tag}"), format!("mlrs{tag}"));
    rules.extension(&dyn_ext, &dynamic);
    rules.extension(&static_ext, &static_interpreter);
    let dir = unique("binfmt");
    std::fs::create_dir_all(&dir).expect("create the binfmt dir");
    let data = |name: &str, text: &str| {
        let path = dir.join(name);
        writing_executables(|| {
            std::fs::write(&path, text).expect("write");
            set_mode(&path, 0o755);
        });
        path
    };
    let by_dynamic = data(&format!("file.{dyn_ext}"), "data\n");
    let by_static = data(&format!("file.{static_ext}"), "data\n");
    let no_rule = data("script-without-hash-bang", "echo ran-by-the-shell\n");

    for program in [&by_dynamic, &by_static] {
        let out = output(memlock_run(["--".as_ref(), program.as_os_str()]));
        assert_locked(&out);
    }
    for (how, out) in both_ways(&as_caller(), &[], &by_dynamic) {
        assert!(
            report(&out).is_some_and(|line| line.starts_with("locked ")),
            "{how}: the dynamic interpreter runs locked: {:?} {}",
            report(&out),
            stderr_of(&out)
        );
    }
    for (how, out) in both_ways(&as_caller(), &[], &by_static) {
        let stderr = stderr_of(&out);
        assert!(
            report(&out).is_none() && !out.status.success(),
            "{how}: the static interpreter does not run: {:?} {stderr}",
            report(&out)
        );
        assert!(
            stderr.contains(&format!(
                "memlock-run: not executing {}",
                by_static.display()
            )) && stderr.contains(&format!(
                "binfmt_misc rule memlock-run-test-{static_ext} runs it with"
            )) && stderr.contains("statically linked")
                && !stderr.contains("made the execve system call itself"),
            "{how}: refused with the rule and the true cause: {stderr}"
        );
    }
    let out = output(memlock_run([
        "--".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        no_rule.as_os_str(),
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ran-by-the-shell"),
        "a file no rule matches still runs as a shell script: {}",
        stderr_of(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A program copied into a memfd and executed from it (no path names what runs), through
/// libc's fexecve (the shim judges it) and the execveat system call itself (the gate alone):
/// dynamically linked, it runs locked; static, it is locked through memlock-run where the shim
/// sees the exec, and refused with a line naming the descriptor where only the gate does. As
/// root and as nobody.
#[test]
fn a_program_executed_from_a_memfd_is_locked_or_refused_with_a_line() {
    let (Some(dynamic), Some(static_program)) = (
        glibc_lockreport(),
        lockreport("gcc", &["-static"], "lockreport-static"),
    ) else {
        return;
    };
    let memfdexec = compile("memfdexec.c", "memfdexec", &[]);
    for (who, runner) in [("root", as_caller()), ("nobody", as_nobody())] {
        for mode in ["libc", "syscall"] {
            for (kind, program) in [("dynamic", &dynamic), ("static", &static_program)] {
                let mut cmd = runner.clone().limit(CI_MEMLOCK).memlock_run(["--"]);
                cmd.arg(&memfdexec).arg(mode).arg(program);
                let out = output(cmd);
                let row = format!("{who}, {mode}, {kind}");
                if mode == "syscall" && kind == "static" {
                    let stderr = stderr_of(&out);
                    assert!(
                        report(&out).is_none()
                            && stderr.contains("memlock-run: not executing descriptor ")
                            && stderr.contains("/memfd:memfdexec (deleted))")
                            && stderr.contains("statically linked"),
                        "{row}: refused with a line naming the descriptor: {stderr}"
                    );
                } else {
                    assert_locked(&out);
                }
            }
        }
    }
}

/// A library the tree preloads into a nested memlock-run (`LD_PRELOAD="$LD_PRELOAD x.so"
/// memlock-run ...`) executes a static program from its constructor, inside the memlock-run
/// process, with the execve system call: the gate does not take a memlock-run process with
/// code of another's in it for memlock-run's judgement, and refuses it with a line saying so.
/// memlock-run itself, clean, still sends a static program through unhindered. As root and as
/// nobody.
#[test]
fn a_library_preloaded_into_a_nested_memlock_run_gets_nothing_past_the_gate() {
    let Some(static_program) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let library = compile("preloadexec.c", "preloadexec.so", &["-shared", "-fPIC"]);
    let launcher = memlock_run_path();
    for (who, runner) in [("root", as_caller()), ("nobody", as_nobody())] {
        let script = format!(
            "LD_PRELOAD=\"$LD_PRELOAD {}\" {} -- /bin/true; echo status=$?; {} -- {}",
            library.display(),
            launcher.display(),
            launcher.display(),
            static_program.display()
        );
        let mut cmd = runner
            .clone()
            .limit(CI_MEMLOCK)
            .memlock_run(["--", "/bin/sh", "-c", &script]);
        cmd.env("PRELOADEXEC", &static_program);
        let out = output(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = stderr_of(&out);
        assert!(
            !stdout.contains("UNLOCKED") && stdout.contains("status=0"),
            "{who}: the preloaded library's exec did not run: {stdout}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "memlock-run: not executing {}",
                static_program.display()
            )) && stderr.contains("runs code that is not memlock-run's"),
            "{who}: refused with the true cause: {stderr}"
        );
        assert!(
            stdout.lines().any(|l| l.starts_with("locked ")),
            "{who}: a clean nested memlock-run still locks a static program: {stdout}\n{stderr}"
        );
    }
}

/// A program whose PT_INTERP names a loader of the tree's own (here a copy of the system's
/// ld.so in a scratch directory: named like glibc's, and of the tree's making, which may or may
/// not honour LD_PRELOAD; judged by name it was let run as one the preload reaches) is not
/// taken for one the preload reaches: as COMMAND and executed through libc it is
/// locked from outside (ptrace), by the system call itself it is refused with a line saying the
/// loader is not the system's; a program of the system's loader runs locked as ever.
#[test]
fn a_loader_named_like_glibcs_is_judged_by_what_it_is() {
    let Some(system) = glibc_lockreport() else {
        return;
    };
    let (dir, program) = foreign_loader_program("lockreport-foreign-loader");
    let loader = dir.join("ld-linux-x86-64.so.2");
    let out = output(memlock_run(["--".as_ref(), program.as_os_str()]));
    assert_locked(&out);
    let [(_, through_libc), (how, raw)] = both_ways(&as_caller(), &[], &program);
    assert_locked(&through_libc);
    let stderr = stderr_of(&raw);
    assert!(
        report(&raw).is_none()
            && stderr.contains(&format!("memlock-run: not executing {}", program.display()))
            && stderr.contains(&format!(
                "its loader {} is not the system's",
                loader.display()
            )),
        "{how}: refused with the true cause: {:?} {stderr}",
        report(&raw)
    );
    let out = output(memlock_run([
        "--method".as_ref(),
        "preload".as_ref(),
        "--".as_ref(),
        program.as_os_str(),
    ]));
    assert!(
        !out.status.success()
            && stderr_of(&out).contains("is named like glibc's or musl's but is not the system's"),
        "--method preload refuses it: {}",
        stderr_of(&out)
    );
    for (how, out) in both_ways(&as_caller(), &[], &system) {
        assert!(
            report(&out).is_some_and(|l| l.starts_with("locked ")),
            "{how}: the system's loader: {}",
            stderr_of(&out)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
