//! `--no-dump`: the doors besides swap by which a locked program's memory leaves it, shut as
//! the kernel reports it. Another process of the same user reading /proc/PID/mem (the
//! memread probe), a crash writing a core file (the crash probe, with core_pattern pointed
//! into a test directory), RLIMIT_CORE in /proc/PID/limits, who owns /proc/PID, and the
//! README's key-store recipe. Each door is shown open without `--no-dump` first, so that
//! a test fails if the setup, not `--no-dump`, is what keeps it shut.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::*;

fn memread() -> PathBuf {
    compile("memread.c", "memread", &[])
}

fn crash() -> PathBuf {
    compile("crash.c", "crash", &[])
}

const SECRET: &[u8] = b"memlock-run-test-secret-4f1c";

/// The first mapping of `exe` in the process, as root reads /proc/PID/maps: its start
/// address (hex), where the ELF header, `7f 45 4c 46`, is.
fn elf_header_address(pid: i32, exe: &Path) -> String {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps as root");
    let name = exe.to_str().expect("UTF-8 path");
    maps.lines()
        .find(|line| line.ends_with(name))
        .and_then(|line| line.split('-').next())
        .unwrap_or_else(|| panic!("no mapping of {name} in:\n{maps}"))
        .to_owned()
}

/// memread run as nobody against `pid`: its one line of output.
fn read_as_nobody(pid: i32, address: &str) -> String {
    let mut cmd = as_nobody().program(memread());
    cmd.arg(pid.to_string()).arg(address);
    let out = output(cmd);
    stdout_of(&out).trim().to_owned()
}

/// Yama at 1 or more keeps a non-ancestor of the same user out whatever --no-dump does,
/// which would make the "open without --no-dump" half of a test meaningless.
fn skip_under_yama() -> bool {
    let scope = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    let restricted = !matches!(scope.trim(), "" | "0");
    if restricted {
        skip(format_args!(
            "Yama ptrace_scope is {}: other processes of the same user cannot read /proc/PID/mem even \
             without --no-dump, so the test cannot show the difference",
            scope.trim()
        ));
    }
    restricted
}

/// soft and hard of `Max core file size` in /proc/PID/limits.
fn core_limit(limits: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core line in:\n{limits}"));
    let words: Vec<&str> = line["Max core file size".len()..]
        .split_whitespace()
        .collect();
    (words[0].to_owned(), words[1].to_owned())
}

/// Owner of /proc/PID/status: the effective UID while the process is dumpable, root when
/// not. (Not of /proc/PID itself, which keeps the owner it had when first looked up.)
fn proc_owner(pid: i32) -> u32 {
    fs::metadata(format!("/proc/{pid}/status"))
        .expect("stat /proc/PID/status")
        .uid()
}

fn os(words: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    words.iter().map(|w| w.as_ref().to_owned()).collect()
}

#[test]
fn no_dump_keeps_processes_of_the_same_user_out_of_memory_and_leaves_it_locked() {
    if skip_unprivileged_run("runs the target and the reader as nobody") || skip_under_yama() {
        return;
    }
    let probe = probe();
    let (nobody, ..) = passwd("nobody");

    let open = Running::start(as_nobody().memlock_run(os(&[&"--", &probe])));
    let address = elf_header_address(open.pid, &probe);
    assert_eq!(
        read_as_nobody(open.pid, &address),
        "read 7f",
        "without --no-dump another process of the same user reads the locked probe's memory"
    );
    assert_eq!(proc_owner(open.pid), nobody);
    assert!(open.finish().status.success());

    // Both locking methods: the shim, and the ptrace helper's injected prctl.
    for method in ["preload", "ptrace"] {
        let shut = Running::start(as_nobody().memlock_run(os(&[
            &"--method",
            &method,
            &"--no-dump",
            &"--",
            &probe,
        ])));
        let address = elf_header_address(shut.pid, &probe);
        let answer = read_as_nobody(shut.pid, &address);
        assert!(
            answer == "open EACCES" || answer == "open EPERM",
            "with --no-dump the open of /proc/PID/mem is denied: {answer}"
        );
        assert_eq!(core_limit(&shut.limits()), ("0".to_owned(), "0".to_owned()));
        assert_eq!(
            proc_owner(shut.pid),
            0,
            "a non-dumpable process's /proc/PID files belong to root"
        );
        assert_eq!(shut.status().ids("Uid")[1], nobody);
        let status = shut.status();
        assert!(
            status.bytes("VmLck") > 0,
            "still locked: VmLck {}",
            status.get("VmLck")
        );
        let maps = shut.smaps();
        let text = mappings_of(&maps, &probe);
        assert!(
            !text.is_empty() && text.iter().all(|m| m.locked_flag()),
            "{text:?}"
        );
        assert!(shut.finish().status.success());
    }
}

/// core_pattern is one setting for the whole machine: the tests that change it hold this,
/// and an flock(2) on a file in the scratch dir for test runners that start a process per
/// test (cargo nextest).
static CORE_PATTERN: Mutex<()> = Mutex::new(());

/// core_pattern pointed somewhere for as long as this lives, and put back on drop, also when
/// the test panics.
struct CorePattern {
    old: String,
    _serial: MutexGuard<'static, ()>,
    _across_processes: fs::File,
}

const CORE_PATTERN_FILE: &str = "/proc/sys/kernel/core_pattern";

impl CorePattern {
    /// None (after saying why) when core_pattern cannot be written here.
    fn set(pattern: &str) -> Option<CorePattern> {
        let serial = CORE_PATTERN.lock().unwrap_or_else(|e| e.into_inner());
        let lock = fs::File::create(scratch().join("core_pattern.lock")).expect("create lock file");
        // SAFETY: flock on a descriptor this function owns; released when the File closes.
        let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(locked, 0, "flock the core_pattern lock file");
        let old = match fs::read_to_string(CORE_PATTERN_FILE) {
            Ok(old) => old,
            Err(err) => {
                skip(format_args!(
                    "cannot read {CORE_PATTERN_FILE} ({err}); the crash tests change it"
                ));
                return None;
            }
        };
        if let Err(err) = fs::write(CORE_PATTERN_FILE, pattern) {
            skip(format_args!(
                "cannot write {CORE_PATTERN_FILE} ({err}); the crash tests need to point it at a test directory"
            ));
            return None;
        }
        Some(CorePattern {
            old,
            _serial: serial,
            _across_processes: lock,
        })
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        // A pattern with a trailing newline is written back as it was read.
        let _ = fs::write(CORE_PATTERN_FILE, self.old.trim_end_matches('\n'));
    }
}

/// A fresh directory that nobody may write cores into.
fn core_dir(name: &str) -> PathBuf {
    let dir = unique(name);
    fs::create_dir_all(&dir).expect("create core dir");
    set_mode(&dir, 0o1777);
    dir
}

/// `prlimit --core=unlimited -- setpriv (nobody) -- memlock-run ARGS -- crash`: the core
/// limit raised, so that only --no-dump can be what stops the core.
fn crash_as_nobody(options: &[&str]) -> std::process::Output {
    let mut cmd = as_nobody()
        .limit("--core=unlimited:unlimited")
        .memlock_run(options.iter().chain(&["--"]));
    cmd.arg(crash());
    output(cmd)
}

/// The files in `dir` the crash probe's dumps are named as: `core.crash.PID`, `piped.PID`.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("read core dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("core.crash.") || n.starts_with("piped."))
        })
        .collect()
}

#[test]
fn a_crash_under_no_dump_leaves_no_core_where_one_would_be_written() {
    if skip_unprivileged_run("crashes a program as nobody")
        || skip_without("prlimit", "raises RLIMIT_CORE")
    {
        return;
    }
    let dir = core_dir("cores");
    let Some(_pattern) = CorePattern::set(&format!("{}/core.%e.%p", dir.display())) else {
        return;
    };

    let out = crash_as_nobody(&[]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        stderr_of(&out)
    );
    assert!(
        out.status.core_dumped(),
        "without --no-dump the crash dumps core"
    );
    let cores = files_in(&dir);
    assert_eq!(cores.len(), 1, "one core file: {cores:?}");
    let core = fs::read(&cores[0]).expect("read core");
    assert!(
        core.windows(SECRET.len()).any(|w| w == SECRET),
        "the core file holds the secret the program had in its heap"
    );
    fs::remove_file(&cores[0]).expect("remove core");

    for method in ["preload", "ptrace"] {
        let out = crash_as_nobody(&["--method", method, "--no-dump"]);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{method}: {}",
            stderr_of(&out)
        );
        assert!(
            !out.status.core_dumped(),
            "{method}: with --no-dump the kernel dumps nothing"
        );
        assert_eq!(files_in(&dir), Vec::<PathBuf>::new(), "{method}");
    }
}

#[test]
fn a_crash_under_no_dump_reaches_no_pipe_handler_either() {
    // RLIMIT_CORE does not stop a core_pattern pipe (systemd-coredump, apport): the kernel
    // runs the handler whatever the limit. Only the dumpable flag keeps the memory from it.
    if skip_unprivileged_run("crashes a program as nobody")
        || skip_without("prlimit", "raises RLIMIT_CORE")
    {
        return;
    }
    let dir = core_dir("piped-cores");
    let handler = script(
        "core-handler.sh",
        &format!("#!/bin/sh\ncat > {}/piped.$1\n", dir.display()),
    );
    let Some(_pattern) = CorePattern::set(&format!("|{} %p", handler.display())) else {
        return;
    };
    let piped = |options: &[&str], patience: u32| {
        let out = crash_as_nobody(options);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{}",
            stderr_of(&out)
        );
        // The kernel waits for a pipe handler only when core_pipe_limit says so: look for
        // the file for a while.
        for _ in 0..patience {
            if !files_in(&dir).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        files_in(&dir)
    };

    // --no-dump first: with nothing to wait for, the wait above is the only way to be
    // sure nothing came, so it runs its full second. A core that came later still shows as a
    // second file below. The handler gets the other crash's core within 10 s even on a busy
    // machine.
    assert_eq!(piped(&["--no-dump"], 50), Vec::<PathBuf>::new());
    let cores = piped(&[], 500);
    assert_eq!(
        cores.len(),
        1,
        "without --no-dump the handler gets the core: {cores:?}"
    );
}

#[test]
fn verbose_dry_run_and_status_show_it() {
    if skip_unprivileged_run("runs the target as nobody") {
        return;
    }
    let probe = probe();
    let out = output(memlock_run(os(&[
        &"--dry-run",
        &"--no-dump",
        &"--",
        &probe,
    ])));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plan = stdout_of(&out);
    assert_mentions(
        &plan,
        &[
            "core dumps:     none: RLIMIT_CORE 0",
            "the shim sets PR_SET_DUMPABLE 0 in COMMAND",
            "MEMLOCK_RUN_NO_DUMP=1",
        ],
    );
    let out = output(memlock_run(os(&[&"--dry-run", &"--", &probe])));
    assert_mentions(
        &stdout_of(&out),
        &["core dumps:     allowed", "MEMLOCK_RUN_NO_DUMP=0"],
    );

    let running =
        Running::start(as_nobody().memlock_run(os(&[&"-v", &"--no-dump", &"--", &probe])));
    let pid = running.pid.to_string();
    let json = output(memlock_run(["--status", pid.as_str(), "--json"]));
    assert!(json.status.success(), "{}", stderr_of(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let process = &report["processes"][0];
    assert_eq!(process["dumpable"], serde_json::json!(false), "{process}");
    assert_eq!(process["shim"]["no_dump"], serde_json::json!(true));
    let text = stdout_of(&output(memlock_run(["--status", pid.as_str()])));
    assert_mentions(&text, &["dumpable: no", ", --no-dump"]);

    // The cost: the process's own user cannot read its memory map any more.
    let own = output(as_nobody().memlock_run(["--status", pid.as_str()]));
    assert_eq!(own.status.code(), Some(1), "{}", stdout_of(&own));
    assert_mentions(
        &stderr_of(&own),
        &[
            "permission denied",
            "not dumpable",
            "sudo memlock-run --status",
        ],
    );

    let out = running.finish();
    assert_mentions(
        &one_line(&out),
        &[
            "locked MCL_CURRENT",
            "not dumpable (no core dump; only root can read its memory)",
        ],
    );

    let open = Running::start(as_nobody().memlock_run(os(&[&"--", &probe])));
    let json = output(memlock_run([
        "--status",
        open.pid.to_string().as_str(),
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(report["processes"][0]["dumpable"], serde_json::json!(true));
    assert_eq!(
        report["processes"][0]["shim"]["no_dump"],
        serde_json::json!(false)
    );
    assert!(open.finish().status.success());
}

#[test]
fn programs_command_executes_are_made_non_dumpable_again_unless_no_inherit() {
    if skip_unprivileged_run("runs the target as nobody") {
        return;
    }
    let probe = probe();
    // sh, itself locked through the shim, execs the probe: execve resets the dumpable flag.
    let wrapper = script(
        "exec-probe.sh",
        &format!("#!/bin/sh\nexec {} \"$@\"\n", probe.display()),
    );
    let inherited = Running::start(as_nobody().memlock_run(os(&[&"--no-dump", &"--", &wrapper])));
    assert_eq!(
        proc_owner(inherited.pid),
        0,
        "the shim made the new image non-dumpable"
    );
    assert_eq!(core_limit(&inherited.limits()).1, "0");
    assert!(inherited.finish().status.success());

    let (nobody, ..) = passwd("nobody");
    let not_inherited = Running::start(as_nobody().memlock_run(os(&[
        &"--no-dump",
        &"--no-inherit",
        &"--",
        &wrapper,
    ])));
    assert_eq!(
        proc_owner(not_inherited.pid),
        nobody,
        "with --no-inherit the program sh executes is dumpable again"
    );
    assert_eq!(
        core_limit(&not_inherited.limits()),
        ("0".to_owned(), "0".to_owned()),
        "but keeps RLIMIT_CORE 0, which execve does not reset"
    );
    assert!(not_inherited.finish().status.success());
}

#[test]
fn forked_children_inherit_no_dump() {
    if skip_unprivileged_run("runs the target as nobody") {
        return;
    }
    let forkprobe = compile("forkprobe.c", "forkprobe", &[]);
    let child = Running::start(as_nobody().memlock_run(os(&[&"--no-dump", &"--", &forkprobe])));
    assert_ne!(
        child.pid,
        child.child_pid(),
        "the ready line is the forked child's"
    );
    assert_eq!(proc_owner(child.pid), 0, "fork keeps the dumpable flag");
    assert_eq!(core_limit(&child.limits()).0, "0");
    assert!(child.finish().status.success());
}

/// The `ExecStart=` line of the README's "Protecting secrets" recipe: memlock-run's options.
fn readme_recipe_options() -> Vec<String> {
    let readme = fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Protecting secrets"))
        .expect("a \"Protecting secrets\" section in README.md");
    let line = section
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/memlock-run "))
        .expect("an ExecStart=/usr/bin/memlock-run line in the recipe");
    let (options, _command) = line.split_once(" -- ").expect("OPTIONS -- COMMAND");
    options.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_readme_key_store_recipe_locks_everything_and_shuts_the_doors() {
    if skip_unprivileged_run("runs the recipe as the unit's unprivileged user") {
        return;
    }
    let options = readme_recipe_options();
    assert!(
        options.contains(&"--no-dump".to_owned()) && options.contains(&"--future".to_owned()),
        "{options:?}"
    );
    let probe = probe();
    // As the unit runs it: an unprivileged User= with AmbientCapabilities=CAP_IPC_LOCK and
    // NoNewPrivileges=yes, under the 8 MiB hard RLIMIT_MEMLOCK of these machines, started
    // with core dumps allowed (the unit's LimitCORE=0 is a second line of defence).
    let mut cmd = as_nobody()
        .ambient_ipc_lock()
        .no_new_privs()
        .limits(&["--core=unlimited:unlimited", CI_MEMLOCK])
        .memlock_run(&options);
    cmd.arg("--")
        .arg(&probe)
        .args(["--map", "16", "--touch", "1"]);
    let running = Running::start(cmd);
    let maps = running.smaps();
    let late = anonymous_of_size(&maps, 16 * MIB);
    assert!(
        late.locked_flag(),
        "--future locks memory mapped later: {late:?}"
    );
    assert!(
        running.status().bytes("VmLck") >= 16 * MIB,
        "locked past the 8 MiB limit: CAP_IPC_LOCK came through NoNewPrivileges"
    );
    assert_eq!(
        core_limit(&running.limits()),
        ("0".to_owned(), "0".to_owned())
    );
    assert_eq!(proc_owner(running.pid), 0);
    if !skip_under_yama() {
        let answer = read_as_nobody(running.pid, &elf_header_address(running.pid, &probe));
        assert!(answer.starts_with("open E"), "{answer}");
    }
    assert!(running.finish().status.success());
}

#[test]
fn check_names_the_doors_and_what_no_dump_closes() {
    let report = stdout_of(&output(memlock_run(["--check"])));
    for topic in [
        "swap encryption",
        "hibernation",
        "core dumps",
        "ptrace access",
    ] {
        finding_of(&report, topic);
    }
    if skip_unprivileged_run("checks as nobody") {
        return;
    }
    // As root, --no-dump closes core dumps but not root's own processes, which hold
    // CAP_SYS_PTRACE: the check says to run COMMAND as a user of its own.
    let as_root = stdout_of(&output(memlock_run(["--check", "--no-dump"])));
    assert_eq!(
        finding_of(&as_root, "core dumps").verdict,
        "ok",
        "{as_root}"
    );
    let ptrace = finding_of(&as_root, "ptrace access");
    assert!(
        ptrace.verdict == "warn" && ptrace.text.contains("runs as root"),
        "{as_root}"
    );
    assert!(
        ptrace
            .remedy
            .is_some_and(|r| r.starts_with("run COMMAND as a user of its own (--user USER")),
        "{as_root}"
    );

    let with = stdout_of(&output(as_nobody().memlock_run(["--check", "--no-dump"])));
    for topic in ["core dumps", "ptrace access"] {
        let found = finding_of(&with, topic);
        assert!(
            found.verdict == "ok" && found.text.contains("--no-dump"),
            "{with}"
        );
    }
    // Where this kernel lets every process of a user read the others' memory (no Yama, or
    // ptrace_scope 0), the check without --no-dump warns, and names --no-dump as the remedy.
    let scope = fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if matches!(scope.trim(), "" | "0") {
        let without = stdout_of(&output(as_nobody().memlock_run(["--check"])));
        let ptrace = finding_of(&without, "ptrace access");
        assert_eq!(ptrace.verdict, "warn", "{without}");
        assert!(
            ptrace.remedy.is_some_and(|r| r.starts_with("--no-dump")),
            "{without}"
        );
    }
}

#[test]
fn a_process_that_cannot_be_made_non_dumpable_does_not_run() {
    let noprctl = compile("noprctl.c", "noprctl.so", &["-shared", "-fPIC"]);
    let probe = probe();
    for on_failure in ["exit", "warn"] {
        let mark = marker("noprctl");
        let mut cmd = memlock_run(os(&[
            &"--no-dump",
            &"--on-failure",
            &on_failure,
            &"--",
            &probe,
            &"--mark",
            &mark,
        ]));
        cmd.env("LD_PRELOAD", &noprctl);
        // Under either --on-failure, the program must not run dumpable.
        assert_refused(
            &output(cmd),
            Refused::before_main().mark(&mark).row(on_failure),
            &[
                "cannot make the process non-dumpable (--no-dump)",
                "prctl(PR_SET_DUMPABLE, 0) failed with EPERM",
                "run without --no-dump only if that is acceptable",
                "exiting with status 125",
            ],
        );
    }
}

#[test]
fn check_reads_the_core_pattern_in_force() {
    if skip_without("prlimit", "raises RLIMIT_CORE") {
        return;
    }
    // (core_pattern, prlimit --core, options, the verdict, what its text says)
    let systemd = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h";
    let rows: [(&str, &str, &[&str], &str, &str); 4] = [
        (
            systemd,
            "unlimited:unlimited",
            &[],
            "warn",
            "systemd-coredump, which stores core dumps",
        ),
        (
            systemd,
            "0:unlimited",
            &[],
            "ok",
            "stores no core under RLIMIT_CORE 0",
        ),
        (
            systemd,
            "unlimited:unlimited",
            &["--no-dump"],
            "ok",
            "--no-dump",
        ),
        // apport is run whatever the limit.
        (
            "|/usr/share/apport/apport -p%p -s%s -c%c",
            "0:0",
            &[],
            "warn",
            "whatever RLIMIT_CORE",
        ),
    ];
    for (pattern, core, options, verdict, says) in rows {
        let Some(_pattern) = CorePattern::set(pattern) else {
            return;
        };
        let mut cmd = as_caller()
            .limit(&format!("--core={core}"))
            .memlock_run(["--check"]);
        cmd.args(options);
        let report = stdout_of(&output(cmd));
        let found = finding_of(&report, "core dumps");
        assert!(
            found.verdict == verdict && found.text.contains(says),
            "{pattern}, RLIMIT_CORE {core}, {options:?}: {report}"
        );
    }
}
