//! The ptrace method on real programs: static, musl, i386, Go and busybox programs run
//! locked with the launcher's contract (same PID, own exit status and signals, no SIGCHLD,
//! no child, same descriptors and signal mask, TracerPid 0); every way it can fail stops
//! COMMAND before it runs; `--pid` locks running processes without disturbing them.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// `contract`'s "key value" lines.
fn report(out: &Output) -> HashMap<String, String> {
    stdout_of(out)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn kib(report: &HashMap<String, String>, key: &str) -> u64 {
    report
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("{key} is not a number: {report:?}"))
        * KIB
}

/// The contract probe built with `compiler` and `flags`, or None (and why) when that
/// toolchain is missing here.
fn contract(compiler: &str, flags: &[&str], name: &str) -> Option<PathBuf> {
    compile_if_possible(compiler, "contract.c", name, flags)
}

/// Starts `cmd` with SIGCHLD blocked.
fn block_sigchld(cmd: &mut Command) {
    // SAFETY: sigprocmask in the child before exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Runs `memlock-run OPTIONS -- PROGRAM ARGS` with SIGCHLD blocked (so that a SIGCHLD
/// sent to memlock-run would stay pending into COMMAND) and stdin, stdout, stderr as pipes.
fn run_contract(options: &[&str], program: &Path, args: &[&str]) -> (Output, u32) {
    let mut cmd = memlock_run(options);
    cmd.arg("--").arg(program).args(args);
    block_sigchld(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(&mut cmd).expect("spawn memlock-run");
    let pid = child.id();
    (child.wait_with_output().expect("wait"), pid)
}

/// The program's report when started directly, as run_contract starts it through memlock-run.
fn report_of_plain_run(program: &Path) -> HashMap<String, String> {
    let mut cmd = Command::new(program);
    block_sigchld(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(&mut cmd).expect("spawn");
    report(&child.wait_with_output().expect("wait"))
}

/// The whole contract, for one build of the probe.
fn assert_contract(program: &Path, what: &str) {
    assert_contract_with(
        program,
        what,
        &[],
        "with the ptrace method (no preload reaches it",
    );
}

/// The contract with more options, and the words -v must use for the method.
fn assert_contract_with(program: &Path, what: &str, options: &[&str], method: &str) {
    let mut all = vec!["--future", "-v"];
    all.extend_from_slice(options);
    let (out, pid) = run_contract(&all, program, &["--alloc", "32", "--exit", "3"]);
    let report = report(&out);
    let stderr = stderr_of(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{what}: the program's own status: {stderr}"
    );
    assert_eq!(
        report.get("pid"),
        Some(&pid.to_string()),
        "{what}: same PID"
    );
    assert_eq!(
        report.get("tracer").map(String::as_str),
        Some("0"),
        "{what}: detached"
    );
    assert_eq!(
        report.get("sigchld").map(String::as_str),
        Some("0"),
        "{what}: no SIGCHLD"
    );
    assert_eq!(
        report.get("children").map(String::as_str),
        Some("none"),
        "{what}: no child"
    );
    let direct = report_of_plain_run(program);
    assert_eq!(
        report.get("fds"),
        direct.get("fds"),
        "{what}: the descriptors it was given"
    );
    let sigblk = u64::from_str_radix(report.get("sigblk").expect("sigblk"), 16).unwrap();
    assert_eq!(
        sigblk,
        1 << (libc::SIGCHLD - 1),
        "{what}: the signal mask it was given"
    );
    let before = kib(&report, "vmlck");
    let after = kib(&report, "vmlck_after");
    assert!(before > 0, "{what}: locked at main: {report:?}");
    assert!(
        after >= before + 32 * MIB,
        "{what}: MCL_FUTURE survived: {report:?}"
    );
    assert!(
        stderr.contains(method),
        "{what}: -v names the method ({method}): {stderr}"
    );

    // Killed by a signal: the wait status is the program's.
    let (out, _) = run_contract(&[], program, &["--raise", &libc::SIGTERM.to_string()]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGTERM),
        "{what}: {}",
        stderr_of(&out)
    );
}

#[test]
fn a_static_glibc_program_keeps_the_contract() {
    if let Some(program) = contract("gcc", &["-static"], "contract-static") {
        assert_contract(&program, "gcc -static");
    }
}

#[test]
fn a_static_pie_program_keeps_the_contract() {
    if let Some(program) = contract("gcc", &["-static-pie"], "contract-static-pie") {
        assert_contract(&program, "gcc -static-pie");
    }
}

#[test]
fn musl_programs_keep_the_contract() {
    // A dynamically linked musl program takes the preload (the shim loads under musl's
    // loader); the ptrace method, asked for, keeps the same contract.
    if let Some(program) = contract("musl-gcc", &[], "contract-musl") {
        assert_contract_with(&program, "musl-gcc", &[], "with the preload shim");
        assert_contract_with(
            &program,
            "musl-gcc, --method ptrace",
            &["--method", "ptrace"],
            "with the ptrace method (asked for",
        );
    }
    if let Some(program) = contract("musl-gcc", &["-static"], "contract-musl-static") {
        assert_contract(&program, "musl-gcc -static");
    }
}

#[test]
fn i386_programs_keep_the_contract() {
    if let Some(program) = contract("gcc", &["-m32"], "contract-i386") {
        assert_contract(&program, "gcc -m32");
    }
    if let Some(program) = contract("gcc", &["-m32", "-static"], "contract-i386-static") {
        assert_contract(&program, "gcc -m32 -static");
    }
}

#[test]
fn a_dynamic_glibc_program_can_be_locked_with_ptrace_too() {
    if let Some(program) = contract("gcc", &[], "contract-dynamic") {
        let (out, _) = run_contract(
            &["--method", "ptrace", "--future"],
            &program,
            &["--alloc", "8"],
        );
        let report = report(&out);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(
            kib(&report, "vmlck") > MIB,
            "libc is mapped at the entry point: {report:?}"
        );
        assert!(kib(&report, "vmlck_after") >= 8 * MIB, "{report:?}");
        assert_eq!(report.get("tracer").map(String::as_str), Some("0"));
    }
}

#[test]
fn a_go_program_runs_locked() {
    if skip_without("go", "the Go program is not tested (Debian: golang-go)") {
        return;
    }
    let dir = unique("go-contract");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let program = dir.join("contract-go");
    let out = output({
        let mut cmd = Command::new("go");
        cmd.args(["build", "-o"])
            .arg(&program)
            .arg(repo().join("tests/probes/contract.go"))
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .current_dir(&dir);
        cmd
    });
    assert!(out.status.success(), "go build: {}", stderr_of(&out));
    let (out, pid) = run_contract(&["--future"], &program, &["--alloc", "64"]);
    let report = report(&out);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(report.get("pid"), Some(&pid.to_string()));
    assert_eq!(report.get("tracer").map(String::as_str), Some("0"));
    assert!(kib(&report, "vmlck") > 0, "{report:?}");
    assert!(kib(&report, "vmlck_after") >= 64 * MIB, "{report:?}");

    // As an unprivileged user under MCL_FUTURE, Go's reservations pass any small limit:
    // --check says so before anything runs.
    if !skip_unprivileged_run("the Go prediction runs as nobody") {
        let check = output(as_nobody().memlock_run([
            "--check".as_ref(),
            "--future".as_ref(),
            "--".as_ref(),
            program.as_os_str(),
        ]));
        let text = stdout_of(&check);
        assert_eq!(check.status.code(), Some(1), "{text}");
        assert_eq!(finding_of(&text, "Go runtime").verdict, "FAIL", "{text}");
    }
}

#[test]
fn busybox_static_runs_locked() {
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        skip(format_args!(
            "busybox is not installed; busybox-static is not tested"
        ));
        return;
    };
    let info = output(memlock_run([
        "--dry-run".as_ref(),
        "--".as_ref(),
        busybox.as_os_str(),
    ]));
    if !stdout_of(&info).contains("static ELF") {
        skip(format_args!("{} is not busybox-static", busybox.display()));
        return;
    }
    let out = output(memlock_run([
        "--".as_ref(),
        busybox.as_os_str(),
        "cat".as_ref(),
        "/proc/self/status".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let status = stdout_of(&out);
    let vmlck = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .expect("VmLck");
    assert!(vmlck > 0, "{status}");
    assert!(status.contains("TracerPid:\t0"), "{status}");
}

#[test]
fn status_reports_a_process_locked_this_way() {
    let mut cmd = memlock_run(["--future"]);
    cmd.arg("--").arg(static_probe());
    let running = Running::start(cmd);
    let out = output(memlock_run([
        "--status",
        &running.pid.to_string(),
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let process = &report["processes"][0];
    assert!(process["vm_lck"].as_u64().unwrap() > 0, "{process}");
    assert_eq!(process["shim"]["loaded"], serde_json::json!(false));
    assert_eq!(process["unlocked_rss"], serde_json::json!(0), "{process}");
    assert!(running.finish().status.success());
}

#[test]
fn prefault_grows_and_locks_a_static_programs_stack() {
    for onfault in [false, true] {
        let mut cmd = memlock_run(if onfault {
            &["-v", "--prefault", "4M", "--onfault"][..]
        } else {
            &["-v", "--prefault", "4M"]
        });
        cmd.arg("--").arg(static_probe());
        let running = Running::start(cmd);
        let maps = running.smaps();
        let stack = stack(&maps);
        assert!(stack.size() >= 4 * MIB, "the stack grew: {}", stack.size());
        assert!(stack.locked_flag(), "the stack is locked");
        assert!(
            stack.bytes("Rss") >= 4 * MIB,
            "and populated (onfault {onfault}): {}",
            stack.bytes("Rss")
        );
        let out = running.finish();
        assert!(out.status.success());
        assert_mentions(&stderr_of(&out), &["stack pre-faulted 4 MiB"]);
    }
}

/// Where madvise(2) does not know MADV_POPULATE_WRITE (Linux before 5.14 answers EINVAL; a
/// seccomp filter answers so here), --onfault's pre-fault is populated by writing to it.
#[test]
fn prefault_on_fault_is_populated_by_writing_where_madvise_cannot_populate() {
    let mut cmd = without_syscall("populate-einval");
    cmd.arg(memlock_run_path())
        .args(["--prefault", "4M", "--onfault", "--"])
        .arg(static_probe());
    let running = Running::start(cmd);
    let maps = running.smaps();
    let stack = stack(&maps);
    assert!(stack.size() >= 4 * MIB, "the stack grew: {}", stack.size());
    assert!(stack.locked_flag(), "the stack is locked");
    assert!(
        stack.bytes("Rss") >= 4 * MIB,
        "and populated: {}",
        stack.bytes("Rss")
    );
    assert!(running.finish().status.success());
}

/// A pre-fault that madvise(MADV_POPULATE_WRITE) refuses (EPERM from a seccomp filter here)
/// is a failed lock: COMMAND does not run, and the line names the call and its errno.
#[test]
fn prefault_on_fault_that_madvise_refuses_stops_the_program_before_it_runs() {
    refused_under_filter(
        "populate-eperm",
        &["--prefault", "4M", "--onfault"],
        &[
            "cannot populate 4 MiB of pre-faulted stack",
            "madvise(MADV_POPULATE_WRITE) failed with EPERM",
        ],
    );
}

/// --no-dump whose prctl(PR_SET_DUMPABLE, 0) fails stops COMMAND before it runs, and the line
/// names the errno: the failed call decides, even where PR_GET_DUMPABLE then answers 0 (a
/// seccomp filter fails the one and fakes the other here).
#[test]
fn no_dump_whose_prctl_fails_stops_the_program_before_it_runs() {
    refused_under_filter(
        "dumpable-eperm",
        &["--no-dump"],
        &[
            "--no-dump: prctl(PR_SET_DUMPABLE, 0) failed with EPERM",
            "it would stay readable by its user and dumpable",
        ],
    );
}

/// --no-dump that does not take (prctl(PR_SET_DUMPABLE, 0) answers success, but a seccomp
/// filter kept the call from the kernel) stops COMMAND before it runs: PR_GET_DUMPABLE is
/// what counts, and COMMAND would run dumpable.
#[test]
fn no_dump_that_does_not_take_stops_the_program_before_it_runs() {
    refused_under_filter(
        "dumpable-ignored",
        &["--no-dump"],
        &["--no-dump: prctl(PR_SET_DUMPABLE, 0) left PR_GET_DUMPABLE at 1"],
    );
}

/// memlock-run OPTIONS -- a marked static program, under nosyscall's filter MODE: refused
/// before the program's main (its mark is not written), with a line that says `says`.
fn refused_under_filter(mode: &str, options: &[&str], says: &[&str]) {
    let mark = marker(&format!("ptrace-{mode}"));
    let mut cmd = without_syscall(mode);
    cmd.arg(memlock_run_path())
        .args(options)
        .args(marked_static(&mark));
    assert_refused(&output(cmd), Refused::before_main().mark(&mark), says);
}

/// Root switches to nobody, and the helper, which switched too, still locks COMMAND past the
/// limit with CAP_IPC_LOCK alone.
#[test]
fn user_switch_with_the_ptrace_method() {
    if skip_unless_root("--user needs root") {
        return;
    }
    let limit = hard_memlock().unwrap_or(8 * MIB);
    let prefault = format!("{}K", limit / KIB + 1024);
    let mut cmd = memlock_run(["--user", "nobody", "--prefault", &prefault]);
    cmd.arg("--").arg(static_probe());
    let running = Running::start(cmd);
    let status = running.status();
    assert_eq!(status.ids("Uid"), vec![65534; 4]);
    assert_eq!(status.caps("CapEff"), 1 << 14, "CAP_IPC_LOCK alone");
    assert!(
        status.bytes("VmLck") > limit,
        "past the limit: {}",
        status.bytes("VmLck")
    );
    assert_eq!(status.get("TracerPid"), "0");
    assert!(running.finish().status.success());
}

#[test]
fn the_options_that_act_through_glibc_are_refused() {
    for option in [
        &["--heap", "1M"][..],
        &["--thread-stack", "256K"],
        &["--fork", "relock"],
        &["--bind-now"],
    ] {
        let mark = marker("glibc-option");
        let mut cmd = memlock_run(option);
        cmd.arg("--")
            .arg(static_probe())
            .arg("--mark")
            .arg(&mark)
            .args(["--exit", "0"]);
        assert_refused(
            &output(cmd),
            Refused::before_main().mark(&mark).row(option[0]),
            &[option[0], "ptrace method", "preload shim"],
        );
    }
    // --fork off is what the ptrace method does anyway.
    let out = output(memlock_run([
        "--fork".as_ref(),
        "off".as_ref(),
        "--".as_ref(),
        static_probe().as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn dry_run_names_the_method_and_why() {
    let out = output(memlock_run([
        "--dry-run".as_ref(),
        "--".as_ref(),
        static_probe().as_os_str(),
    ]));
    let plan = stdout_of(&out);
    assert!(
        plan.contains("method:         ptrace: no preload reaches it: statically linked"),
        "{plan}"
    );
    assert!(
        plan.contains("COMMAND's forked children run unlocked"),
        "{plan}"
    );
    let out = output(memlock_run([
        "--dry-run".as_ref(),
        "--".as_ref(),
        probe().as_os_str(),
    ]));
    assert!(
        stdout_of(&out).contains("method:         preload:"),
        "{}",
        stdout_of(&out)
    );
}

fn marked_static(mark: &Path) -> Vec<&OsStr> {
    vec![
        "--".as_ref(),
        leak(static_probe()).as_os_str(),
        "--mark".as_ref(),
        mark.as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]
}

fn leak(path: PathBuf) -> &'static Path {
    Box::leak(path.into_boxed_path())
}

#[test]
fn a_failed_mlockall_stops_the_program_before_it_runs() {
    if skip_unprivileged_run("the limit binds an unprivileged user only") {
        return;
    }
    let mark = marker("ptrace-enomem");
    let mut options: Vec<&OsStr> = vec!["--limit".as_ref(), "64K".as_ref()];
    options.extend(marked_static(&mark));
    let out = output(as_nobody().memlock_run(&options));
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &[
            "mlockall(MCL_CURRENT) failed with ENOMEM",
            "RLIMIT_MEMLOCK is 64 KiB",
            "VmSize is",
            "exiting with status 125",
        ],
    );
    // --check predicts it from the static program's headers.
    let mut check: Vec<&OsStr> = vec!["--check".as_ref()];
    check.extend(&options);
    let predicted = output(as_nobody().memlock_run(&check));
    let report = stdout_of(&predicted);
    assert_eq!(predicted.status.code(), Some(1), "{report}");
    assert_eq!(
        finding_of(&report, "lock at start").verdict,
        "FAIL",
        "{report}"
    );

    let mut options: Vec<&OsStr> = vec![
        "--on-failure".as_ref(),
        "warn".as_ref(),
        "--limit".as_ref(),
        "64K".as_ref(),
    ];
    options.extend(marked_static(&mark));
    let out = output(as_nobody().memlock_run(&options));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(mark.exists(), "--on-failure warn runs it");
    assert_mentions(
        &one_line(&out),
        &["ENOMEM", "running unlocked (--on-failure warn)"],
    );
}

#[test]
fn under_a_tracer_it_refuses_before_exec() {
    if skip_without(
        "strace",
        "the already-traced refusal is not tested (Debian: strace)",
    ) {
        return;
    }
    let mark = marker("ptrace-strace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-o", "/dev/null", "--"])
        .arg(memlock_run_path())
        .args(marked_static(&mark));
    let out = output(cmd);
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &["already traced by pid", "strace", "outside the debugger"],
    );
}

#[test]
fn a_seccomp_filter_that_denies_ptrace_stops_it_before_exec() {
    let mark = marker("ptrace-seccomp");
    let mut cmd = without_syscall("ptrace");
    cmd.arg(memlock_run_path()).args(marked_static(&mark));
    let out = output(cmd);
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &["cannot attach to memlock-run", "EPERM", "seccomp"],
    );
}

#[test]
fn as_pid_1_it_refuses_before_exec() {
    if skip_without("unshare", "the PID 1 refusal is not tested")
        || skip_unless_root("unshare --pid needs root")
    {
        return;
    }
    let mark = marker("ptrace-pid1");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--"])
        .arg(memlock_run_path())
        .args(marked_static(&mark));
    let out = output(cmd);
    assert_refused(&out, Refused::before_main().mark(&mark), &["PID 1", "init"]);
}

/// The helper is killed while COMMAND waits on it: COMMAND dies too, never to run unlocked.
/// The helper is held on its -v line by a full stderr pipe that nobody reads.
#[test]
fn if_the_helper_dies_the_program_dies() {
    let mark = marker("ptrace-exitkill");
    let (read_end, write_end) = pipe();
    // Fill the pipe so that the helper's report blocks.
    // SAFETY: the write end is ours; O_NONBLOCK so that filling stops at EAGAIN.
    unsafe {
        let flags = libc::fcntl(write_end, libc::F_GETFL);
        libc::fcntl(write_end, libc::F_SETFL, flags | libc::O_NONBLOCK);
        let chunk = [b'x'; 4096];
        while libc::write(write_end, chunk.as_ptr().cast(), chunk.len()) > 0 {}
        libc::fcntl(write_end, libc::F_SETFL, flags);
    }
    let mut cmd = memlock_run(["-v"]);
    cmd.args(marked_static(&mark));
    // SAFETY: the descriptor is open and becomes the child's stderr.
    cmd.stderr(unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(write_end) })
        .stdout(Stdio::null())
        .stdin(Stdio::null());
    let mut child = spawn(&mut cmd).expect("spawn");
    let pid = child.id() as i32;
    // Wait until the helper holds the new image at its entry point.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let tracer = loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let tracer: i32 = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let exec_done = std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| exe.file_name() == Some(OsStr::new("probe-static")));
        if tracer != 0 && exec_done && status.contains("State:\tt") {
            break tracer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the helper never held the program: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: signalling a process of ours.
    unsafe { libc::kill(tracer, libc::SIGKILL) };
    let status = child.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "PTRACE_O_EXITKILL: {status}"
    );
    assert!(!mark.exists(), "the program ran");
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(read_end) };
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

#[test]
fn yama_scope_1_is_handled_with_pr_set_ptracer() {
    let Ok(scope) = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") else {
        skip(format_args!(
            "this kernel has no Yama (/proc/sys/kernel/yama/ptrace_scope); scope 1 is not tested here"
        ));
        return;
    };
    if scope.trim() != "1" || skip_unprivileged_run("scope 1 binds an unprivileged user") {
        skip(format_args!(
            "kernel.yama.ptrace_scope is {}, not 1",
            scope.trim()
        ));
        return;
    }
    let out = output(as_nobody().memlock_run([
        "--".as_ref(),
        static_probe().as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
}

// ---------------------------------------------------------------------------- --pid

#[test]
fn pid_locks_a_process_blocked_in_read_and_the_read_goes_on() {
    let mut cmd = Command::new(probe());
    cmd.arg("--echo");
    let mut running = Running::start(cmd);
    assert_eq!(running.status().bytes("VmLck"), 0);
    std::thread::sleep(std::time::Duration::from_millis(50)); // in read(2) by now
    let out = lock_pid(&["--future"], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = stdout_of(&out);
    assert_mentions(
        &line,
        &["locked MCL_CURRENT|MCL_FUTURE", "VmLck", "VmRSS", " ms"],
    );
    for field in ["VmRSS", "VmSize"] {
        let size = line
            .split(", ")
            .find_map(|part| part.strip_prefix(field)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {field} in {line}"));
        assert_ne!(size, "0 B", "the {field} the kernel says: {line}");
    }
    let status = running.status();
    assert!(status.bytes("VmLck") > 0);
    assert_eq!(status.get("TracerPid"), "0");
    running.send("hello\n");
    assert_eq!(
        running.next_line(),
        "got hello\n",
        "the interrupted read(2) was restarted"
    );
    let out = running.finish();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn pid_locks_a_multithreaded_process() {
    let mut cmd = Command::new(probe());
    cmd.args(["--threads", "4", "--map", "16", "--touch", "16"]);
    let running = Running::start(cmd);
    let out = lock_pid(&["--future"], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let status = running.status();
    assert_eq!(status.get("Threads"), "5");
    assert!(status.bytes("VmLck") >= 16 * MIB);
    let unlocked: Vec<_> = running
        .smaps()
        .into_iter()
        .filter(|m| m.bytes("Rss") > 0 && !m.locked_flag() && !m.name.contains("[v"))
        .map(|m| m.name)
        .collect();
    assert!(unlocked.is_empty(), "resident but not locked: {unlocked:?}");
    assert!(running.finish().status.success());
}

#[test]
fn pid_locks_python() {
    if skip_without("python3", "python3 is not tested") {
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-c", "import os,sys\nprint('ready', os.getpid(), flush=True)\nprint('got', sys.stdin.readline(), end='', flush=True)"]);
    let mut running = Running::start(cmd);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let out = lock_pid(&[], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(running.status().bytes("VmLck") > 4 * MIB);
    running.send("after\n");
    assert_eq!(running.next_line(), "got after\n");
    assert!(running.finish().status.success());
}

#[test]
fn pid_refuses_another_users_process_without_privilege() {
    if skip_unprivileged_run("runs as nobody") {
        return;
    }
    let running = Running::start(Command::new(probe()));
    let out = output(as_nobody().memlock_run(["--pid".to_owned(), running.pid.to_string()]));
    assert_refused(
        &out,
        Refused::before_main(),
        &["cannot lock", "another user", "CAP_SYS_PTRACE", "as root"],
    );
    let check = output(as_nobody().memlock_run([
        "--check".to_owned(),
        "--pid".to_owned(),
        running.pid.to_string(),
    ]));
    assert_eq!(check.status.code(), Some(1), "{}", stdout_of(&check));
    assert!(
        stdout_of(&check).contains(&launcher_message(&out)),
        "--check gives the run's own message:\n{}",
        stdout_of(&check)
    );
    assert_eq!(running.status().bytes("VmLck"), 0, "left as it was");
    assert!(running.finish().status.success());
}

#[test]
fn pid_refuses_a_process_under_seccomp_unless_forced() {
    let mut cmd = without_syscall("ptrace");
    cmd.arg(probe());
    let running = Running::start(cmd);
    let out = lock_pid(&[], running.pid);
    assert_refused(&out, Refused::before_main(), &["seccomp filter", "--force"]);
    let check = lock_pid(&["--check"], running.pid);
    assert_eq!(check.status.code(), Some(1), "{}", stdout_of(&check));
    // Its filter only denies ptrace to itself: mlockall is allowed, and --force locks it.
    let out = lock_pid(&["--force"], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(running.status().bytes("VmLck") > 0);
    assert!(running.finish().status.success());
}

#[test]
fn pid_leaves_a_process_that_cannot_stop_untouched() {
    let vforker = compile("vforker.c", "vforker", &[]);
    let mut cmd = Command::new(vforker);
    cmd.arg("5");
    let running = Running::start(cmd);
    std::thread::sleep(std::time::Duration::from_millis(100)); // in the vfork wait
    let out = lock_pid(&[], running.pid);
    assert_refused(
        &out,
        Refused::before_main(),
        &["did not stop within 3 s", "left as it was"],
    );
    let out = running.finish();
    assert!(out.status.success(), "it carried on: {}", stderr_of(&out));
}

#[test]
fn pid_with_no_dump_shuts_the_doors_of_a_running_process() {
    if skip_unprivileged_run("the target runs as nobody") {
        return;
    }
    let running = Running::start(as_nobody().memlock_run(["--", probe().to_str().unwrap()]));
    let owner = |pid: i32| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/status"))
            .unwrap()
            .uid()
    };
    assert_eq!(owner(running.pid), 65534);
    let out = lock_pid(&["--no-dump"], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_mentions(&stdout_of(&out), &["not dumpable"]);
    assert_eq!(owner(running.pid), 0, "its /proc files now belong to root");
    let limits = running.limits();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    assert!(running.finish().status.success());
}

/// --pid changes nothing but what mlockall does: a process whose stack is already past its
/// RLIMIT_STACK (lowered with prlimit after it started) is locked all the same; only a stack
/// pre-fault, which --pid does not make, would have to fit under it.
#[test]
fn pid_locks_a_process_whose_stack_is_past_its_lowered_rlimit_stack() {
    let mut cmd = Command::new(probe());
    cmd.arg("--echo");
    let mut running = Running::start(cmd);
    std::thread::sleep(std::time::Duration::from_millis(50)); // in read(2) by now
    let mut stack_limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads and then sets a limit of our own child from locals.
    unsafe {
        assert_eq!(
            libc::prlimit(
                running.pid,
                libc::RLIMIT_STACK,
                std::ptr::null(),
                &mut stack_limit
            ),
            0
        );
        stack_limit.rlim_cur = 0;
        assert_eq!(
            libc::prlimit(
                running.pid,
                libc::RLIMIT_STACK,
                &stack_limit,
                std::ptr::null_mut()
            ),
            0
        );
    }
    let out = lock_pid(&[], running.pid);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(running.status().bytes("VmLck") > 0);
    running.send("hello\n");
    assert_eq!(running.next_line(), "got hello\n");
    assert!(running.finish().status.success());
}

/// --pid --no-dump that cannot take (prctl(PR_SET_DUMPABLE, 0) fails with EPERM here) is
/// refused, and leaves the process as its line says, running on as before: the lock that took
/// first is undone, so that it is not left locked, under MCL_FUTURE, with its own lower limit
/// back.
#[test]
fn pid_with_no_dump_that_fails_leaves_the_process_unlocked() {
    let mut cmd = without_syscall("dumpable-eperm");
    cmd.arg(probe()).arg("--echo");
    let mut running = Running::start(cmd);
    std::thread::sleep(std::time::Duration::from_millis(50)); // in read(2) by now
    let out = lock_pid(&["--future", "--no-dump", "--force"], running.pid);
    assert_refused(
        &out,
        Refused::before_main(),
        &["failed with EPERM", "runs on as before"],
    );
    assert_eq!(running.status().bytes("VmLck"), 0, "unlocked again");
    assert_eq!(running.status().get("TracerPid"), "0");
    running.send("hello\n");
    assert_eq!(running.next_line(), "got hello\n");
    assert!(running.finish().status.success());
}

#[test]
fn pid_of_nothing_is_an_error() {
    let out = lock_pid(&[], i32::MAX - 1);
    assert_refused(&out, Refused::before_main(), &["no process has pid"]);
}

/// A running process that cannot be locked under the limit it gets: --check --pid says FAIL
/// first, --pid says why with 125, and the process runs on unlocked with its own limit back,
/// never reported as locked.
#[test]
fn pid_that_cannot_be_locked_is_predicted_and_left_as_it_was() {
    if skip_unprivileged_run("the limit binds an unprivileged user only") {
        return;
    }
    // Started as nobody without memlock-run: unlocked, with the default limit, which
    // `--limit 64K` lowers for the attempt and which must come back.
    let mut cmd = as_nobody().program(probe());
    cmd.arg("--echo");
    let mut running = Running::start(cmd);
    let limits_before = running.limits();
    let check = output(as_nobody().memlock_run([
        "--check",
        "--limit",
        "64K",
        "--pid",
        &running.pid.to_string(),
    ]));
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert_eq!(finding_of(&report, "lock").verdict, "FAIL", "{report}");
    let out =
        output(as_nobody().memlock_run(["--limit", "64K", "--pid", &running.pid.to_string()]));
    assert_refused(
        &out,
        Refused::before_main(),
        &["ENOMEM", "RLIMIT_MEMLOCK is 64 KiB", "runs on as before"],
    );
    assert!(
        out.stdout.is_empty(),
        "reported as locked: {}",
        stdout_of(&out)
    );
    assert_eq!(running.status().bytes("VmLck"), 0);
    assert_eq!(running.status().get("TracerPid"), "0");
    assert_eq!(running.limits(), limits_before, "its limits as they were");
    running.send("still here\n");
    assert_eq!(running.next_line(), "got still here\n");
    assert!(running.finish().status.success());
}
