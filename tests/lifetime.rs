//! The lock limit over the program's life (issue 20): when RLIMIT_MEMLOCK bites after
//! start, the shim says so on stderr, once, and the program's own handling is unchanged.
//!
//! Run as nobody under an 8 MiB limit, as an unprivileged user meets it: a thread under
//! --future whose locked stack does not fit (pthread_create's EAGAIN, which the program
//! still gets and reports), the main stack's growth past the limit (SIGSEGV, status as
//! without memlock-run), a program with its own SIGSEGV handler (its handler runs, no line),
//! and where the shim's handler is not installed at all (CAP_IPC_LOCK). `--check`'s
//! predictions of the same cases are in check.rs.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// True (with a skip line) where the runs as nobody cannot be made.
fn skip_as_nobody() -> bool {
    skip_unprivileged_run("runs as nobody")
        || skip_unless_memlock_hard_at_least(
            8 * MIB,
            "the cases assume an 8 MiB hard RLIMIT_MEMLOCK",
        )
}

/// tests/probes/deepstack.c: grows the main stack by N MiB.
fn deepstack() -> PathBuf {
    compile("deepstack.c", "deepstack", &[])
}

const STACK_LINE: &str = "the main stack could not grow by ";
const THREAD_LINE: &str = "pthread_create failed with EAGAIN: under --future";

/// Bit N-1 of a /proc signal mask is signal N.
fn has_signal(mask: u64, signal: i32) -> bool {
    mask & (1 << (signal - 1)) != 0
}

#[test]
fn a_thread_whose_locked_stack_does_not_fit_is_named_once() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--threads".as_ref(),
        "2".as_ref(),
    ]));
    let err = stderr_of(&out);
    // The program's own handling is unchanged: it gets EAGAIN, reports it and exits 3.
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("probe: pthread_create: Resource temporarily unavailable"),
        "{err}"
    );
    assert_eq!(err.matches(THREAD_LINE).count(), 1, "one line:\n{err}");
    assert_mentions(
        &err,
        &[
            "whole stack (8 MiB",
            "RLIMIT_MEMLOCK is 8 MiB",
            "VmLck is ",
            "CAP_IPC_LOCK",
            "--thread-stack 256K",
        ],
    );
    // The line comes before the program's own report: when the call failed.
    assert!(
        err.find(THREAD_LINE) < err.find("probe: pthread_create"),
        "{err}"
    );

    // A thread that fits says nothing.
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--future".as_ref(),
        "--thread-stack".as_ref(),
        "256K".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--threads".as_ref(),
        "2".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("memlock-run:"),
        "{}",
        stderr_of(&out)
    );

    // Without --future a thread's stack is not locked: nothing to say, and it runs.
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--".as_ref(),
        probe.as_os_str(),
        "--threads".as_ref(),
        "2".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("memlock-run:"),
        "{}",
        stderr_of(&out)
    );
}

/// The run says the room too: `-v` names what the limit leaves after the lock at start.
#[test]
fn verbose_names_the_room_left_under_the_limit() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let args = [
        "-v".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ];
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run(args));
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_mentions(&err, &["left under RLIMIT_MEMLOCK 8 MiB"]);
    // With CAP_IPC_LOCK the limit does not bind: no room to name.
    let out = output(memlock_run(args));
    assert!(
        !stderr_of(&out).contains("left under RLIMIT_MEMLOCK"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn the_main_stack_that_cannot_grow_is_named_and_still_a_sigsegv() {
    if skip_as_nobody() {
        return;
    }
    let deepstack = deepstack();
    let run = |mib: &str| {
        output(as_nobody().limit(CI_MEMLOCK).memlock_run([
            "--".as_ref(),
            deepstack.as_os_str(),
            mib.as_ref(),
        ]))
    };
    // 7 MiB fits RLIMIT_STACK (8 MiB), but not what the lock limit leaves.
    let out = run("7");
    let err = stderr_of(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    assert_eq!(err.matches(STACK_LINE).count(), 1, "{err}");
    assert_mentions(
        &err,
        &[
            "the program gets SIGSEGV",
            "RLIMIT_MEMLOCK is 8 MiB",
            "CAP_IPC_LOCK",
            "memlock-run --check",
        ],
    );
    // Without memlock-run the same program runs: the lock is what stopped it.
    let plain = output({
        let mut cmd = as_nobody().limit(CI_MEMLOCK).program(&deepstack);
        cmd.arg("7");
        cmd
    });
    assert!(plain.status.success(), "{plain:?}");

    // Within the room, nothing is said.
    let out = run("2");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !stderr_of(&out).contains("memlock-run:"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_program_with_its_own_sigsegv_handler_keeps_it() {
    if skip_as_nobody() {
        return;
    }
    let deepstack = deepstack();
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--".as_ref(),
        deepstack.as_os_str(),
        "7".as_ref(),
        "--handler".as_ref(),
    ]));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(42), "its handler ran: {out:?}");
    assert!(err.contains("own handler"), "{err}");
    assert!(
        !err.contains("memlock-run:"),
        "the program's handler replaced the shim's: {err}"
    );
}

/// The handler is installed only where the limit can bite, on an alternate stack that is
/// not locked (it costs no locked memory); a SIGSEGV sent from outside still kills.
#[test]
fn the_handler_is_there_only_where_the_limit_binds() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let running = Running::start(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
    ]));
    assert!(
        has_signal(running.status().signals("SigCgt"), libc::SIGSEGV),
        "SIGSEGV is caught"
    );
    let alt = running
        .smaps()
        .into_iter()
        .find(|m| m.name.starts_with("/memfd:memlock-run") && m.size() == 32 * KIB)
        .expect("the alternate stack, a mapping of the shim's memfd");
    assert!(
        !alt.locked_flag(),
        "the alternate stack is not locked: {alt:?}"
    );
    let status = output(memlock_run([
        "--status".to_owned(),
        running.pid.to_string(),
    ]));
    assert!(
        stdout_of(&status).contains("): locked\n"),
        "the shim's own unlocked stack does not make it partly locked:\n{}",
        stdout_of(&status)
    );
    // SAFETY: kill with a PID of a child of this test.
    unsafe { libc::kill(running.pid, libc::SIGSEGV) };
    let out = running.finish();
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    assert!(
        !stderr_of(&out).contains("memlock-run:"),
        "{}",
        stderr_of(&out)
    );

    // A forked child, locked again, inherits the handler and keeps the stack unlocked.
    let forkprobe = compile("forkprobe.c", "forkprobe", &[]);
    let child = Running::start(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        forkprobe.as_os_str(),
    ]));
    assert!(has_signal(child.status().signals("SigCgt"), libc::SIGSEGV));
    let alt = child
        .smaps()
        .into_iter()
        .find(|m| m.name.starts_with("/memfd:memlock-run") && m.size() == 32 * KIB)
        .expect("the alternate stack in the child");
    assert!(
        !alt.locked_flag(),
        "not locked in the child either: {alt:?}"
    );
    let out = child.finish();
    assert!(stdout_of(&out).contains("child status 0"), "{out:?}");

    // CAP_IPC_LOCK lifts the limit: nothing to catch.
    let running = Running::start(memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
    ]));
    assert!(!has_signal(
        running.status().signals("SigCgt"),
        libc::SIGSEGV
    ));
    assert!(running.finish().status.success());
}

/// Ruby touches the bottom of its main stack at start (thread_pthread.c's reserve_stack): as
/// nobody at 8 MiB the locked stack cannot grow that far. `--check` says FAIL, and the run
/// dies with SIGSEGV as before, with the shim's line first.
#[test]
fn ruby_is_refused_by_check_and_named_when_it_dies() {
    if skip_as_nobody() || skip_without("ruby", "the Ruby case needs it (apt-get install ruby)") {
        return;
    }
    let args = ["--", "ruby", "-e", "puts 1"];
    let check = output(
        as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(["--check"].iter().chain(&args)),
    );
    let report = stdout_of(&check);
    assert_eq!(check.status.code(), Some(1), "{report}");
    let found = finding_of(&report, "stack growth");
    assert_eq!(found.verdict, "FAIL", "{report}");
    assert_mentions(&found.text, &["Ruby", "RLIMIT_STACK", "SIGSEGV"]);

    let run = output(as_nobody().limit(CI_MEMLOCK).memlock_run(args));
    assert_eq!(run.status.signal(), Some(libc::SIGSEGV), "{run:?}");
    assert_eq!(
        stderr_of(&run).matches(STACK_LINE).count(),
        1,
        "{}",
        stderr_of(&run)
    );

    // With CAP_IPC_LOCK (as root) the limit is lifted, and it runs locked.
    let run = output(memlock_run(args));
    assert!(run.status.success(), "{run:?}");
    assert_eq!(stdout_of(&run).trim(), "1");
}

/// A gpg-agent as nobody under --future at 8 MiB: its connection thread does not fit, the
/// shim names it at that moment, and the client finds no agent that serves; with
/// `--thread-stack 256K` (the remedy the line gives) a real encryption and decryption go
/// through the locked agent.
#[test]
fn gpg_agent_as_nobody_names_its_thread_or_serves_locked() {
    if skip_as_nobody()
        || skip_without(
            "gpg-agent",
            "the key-store agent case needs it (apt-get install gnupg)",
        )
        || skip_without(
            "gpg",
            "the key-store agent case needs it (apt-get install gnupg)",
        )
    {
        return;
    }
    let home = unique("gnupg-home");
    let _ = fs::remove_dir_all(&home);
    fs::create_dir_all(&home).expect("create GNUPGHOME");
    set_mode(&home, 0o700);
    chown_nobody(&home);

    // --check: with default thread stacks, a FAIL; with the remedy, a warning.
    for (options, verdict) in [
        (&["--future"][..], "FAIL"),
        (&["--future", "--thread-stack", "256K"], "warn"),
    ] {
        let mut args: Vec<&str> = vec!["--check"];
        args.extend(options);
        args.extend(["--", "gpg-agent", "--daemon"]);
        let report = stdout_of(&output(as_nobody().limit(CI_MEMLOCK).memlock_run(&args)));
        assert_eq!(
            finding_of(&report, "threads").verdict,
            verdict,
            "{options:?}: {report}"
        );
    }

    // Default thread stacks: the first connection's thread fails.
    let (mut agent, stderr) = start_agent(&home, &["--future"]);
    let out = output({
        let mut cmd = as_nobody().program("gpg-connect-agent");
        cmd.env("GNUPGHOME", &home)
            .args(["--no-autostart", "GETINFO version", "/bye"]);
        cmd
    });
    let said = wait_until(|| {
        fs::read_to_string(&stderr)
            .unwrap_or_default()
            .contains(THREAD_LINE)
    });
    stop_agent(&mut agent, &home);
    let err = fs::read_to_string(&stderr).unwrap_or_default();
    assert!(said, "the shim named the thread: {err}\nclient: {out:?}");
    assert_mentions(&err, &["RLIMIT_MEMLOCK is 8 MiB", "--thread-stack 256K"]);
    assert!(
        err.contains("error spawning connection handler"),
        "the agent's own handling, unchanged: {err}"
    );

    // With the remedy, a real round trip through the locked agent.
    let (mut agent, stderr) = start_agent(&home, &["--future", "--thread-stack", "256K"]);
    let round_trip = (|| {
        let key = gpg(
            &home,
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                "Test <t@example.org>",
                "ed25519",
                "cert",
            ],
            None,
        );
        if !key.status.success() {
            return Err(format!("key generation: {}", stderr_of(&key)));
        }
        let listed = gpg(&home, &["--list-keys", "--with-colons"], None);
        let fpr = stdout_of(&listed)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .ok_or("no fingerprint")?;
        let sub = gpg(
            &home,
            &[
                "--passphrase",
                "",
                "--quick-add-key",
                &fpr,
                "cv25519",
                "encr",
            ],
            None,
        );
        if !sub.status.success() {
            return Err(format!("subkey: {}", stderr_of(&sub)));
        }
        let encrypted = gpg(
            &home,
            &["--trust-model", "always", "-e", "-a", "-r", "t@example.org"],
            Some(b"a secret for the locked agent\n"),
        );
        let decrypted = gpg(&home, &["--passphrase", "", "-d"], Some(&encrypted.stdout));
        if stdout_of(&decrypted) != "a secret for the locked agent\n" {
            return Err(format!("decrypt: {}", stderr_of(&decrypted)));
        }
        Ok(())
    })();
    let pid = agent_pid(&home);
    let status = pid.map(ProcStatus::read);
    stop_agent(&mut agent, &home);
    let err = fs::read_to_string(&stderr).unwrap_or_default();
    let _ = fs::remove_dir_all(&home);
    round_trip.unwrap_or_else(|e| panic!("{e}; agent stderr:\n{err}"));
    assert!(!err.contains("memlock-run:"), "{err}");
    let status = status.expect("the agent's PID");
    assert!(status.bytes("VmLck") > 0, "the agent is locked");
}

fn chown_nobody(path: &Path) {
    let out = output({
        let mut cmd = Command::new("chown");
        cmd.arg("nobody:nogroup").arg(path);
        cmd
    });
    assert!(out.status.success(), "{out:?}");
}

/// `gpg-agent --daemon --no-detach` as nobody at 8 MiB under memlock-run; its stderr file.
fn start_agent(home: &Path, options: &[&str]) -> (Process, PathBuf) {
    let stderr = unique("gpg-agent-stderr");
    // A stopped agent's sockets stay behind: the new one's are the sign it listens.
    for name in [
        "S.gpg-agent",
        "S.gpg-agent.extra",
        "S.gpg-agent.browser",
        "S.gpg-agent.ssh",
    ] {
        let _ = fs::remove_file(home.join(name));
    }
    let mut args: Vec<std::ffi::OsString> = options.iter().map(Into::into).collect();
    args.extend(["--", "gpg-agent", "--homedir"].map(Into::into));
    args.push(home.into());
    args.extend(["--daemon", "--no-detach"].map(Into::into));
    let mut cmd = as_nobody().limit(CI_MEMLOCK).memlock_run(args);
    cmd.env("GNUPGHOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).expect("stderr file"));
    let child = spawn(&mut cmd).expect("start gpg-agent");
    let socket = home.join("S.gpg-agent");
    assert!(wait_until(|| socket.exists()), "the agent made no socket");
    (child, stderr)
}

/// Stops the agent memlock-run started (its PID, after the exec) and the server it forked,
/// found by its own unique home directory.
fn stop_agent(agent: &mut Process, home: &Path) {
    while let Some(pid) = agent_pid(home) {
        // SAFETY: kill with a PID found just now.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = agent.kill();
    let _ = agent.wait();
}

/// The agent serving the socket, from pgrep.
fn agent_pid(home: &Path) -> Option<i32> {
    let out = output({
        let mut cmd = Command::new("pgrep");
        cmd.args(["-n", "-u", "nobody", "-f"])
            .arg(format!("gpg-agent --homedir {}", home.display()));
        cmd
    });
    stdout_of(&out).trim().parse().ok()
}

/// gpg as nobody in batch mode, never starting an agent of its own.
fn gpg(home: &Path, args: &[&str], input: Option<&[u8]>) -> std::process::Output {
    let mut cmd = as_nobody().program("gpg");
    cmd.env("GNUPGHOME", home)
        .env("HOME", home)
        .args(["--batch", "--no-autostart", "--pinentry-mode", "loopback"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd).expect("run gpg");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            let _ = stdin.write_all(input);
        }
    }
    child.wait_with_output().expect("wait for gpg")
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Under an unlimited RLIMIT_STACK glibc gives a new thread a 2 MiB stack, not the limit:
/// the shim judges the refused thread by that size, and names it.
#[test]
fn a_thread_under_an_unlimited_stack_limit_is_named_with_its_2_mib_stack() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    // Two 2 MiB stacks fit in what 8 MiB leaves after the lock at start; four cannot.
    let out = output(
        as_nobody()
            .limits(&[CI_MEMLOCK, "--stack=unlimited:unlimited"])
            .memlock_run([
                "--future".as_ref(),
                "--".as_ref(),
                probe.as_os_str(),
                "--threads".as_ref(),
                "4".as_ref(),
            ]),
    );
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.matches(THREAD_LINE).count(), 1, "one line:\n{err}");
    assert_mentions(&err, &["whole stack (2 MiB", "RLIMIT_MEMLOCK is 8 MiB"]);
}

/// Where the limit cannot stop the main stack, the shim leaves SIGSEGV as the program got
/// it: under MCL_FUTURE alone (the stack as exec made it is not locked), and where the
/// program inherited SIGSEGV ignored.
#[test]
fn no_handler_where_the_limit_cannot_stop_the_stack() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let shim = fs::canonicalize(shim_path()).expect("shim path");
    // The protocol's MCL_FUTURE alone, which the launcher never asks for, set by hand.
    let mut future_alone = as_nobody().limit(CI_MEMLOCK).program("env");
    future_alone
        .arg("-i")
        .arg(format!("LD_PRELOAD={}", shim.display()))
        .arg("MEMLOCK_RUN_FLAGS=future")
        .arg(&probe);
    let mut ignored = as_nobody().limit(CI_MEMLOCK).program("sh");
    ignored
        .args(["-c", "trap '' SEGV; exec \"$@\"", "sh"])
        .arg(memlock_run_path())
        .arg("--")
        .arg(&probe);
    for (what, cmd, ignored) in [
        ("MCL_FUTURE alone", future_alone, false),
        ("SIGSEGV ignored", ignored, true),
    ] {
        assert_no_handler(what, cmd, ignored);
    }
}

/// No lock limit (an unlimited RLIMIT_MEMLOCK), nothing for the limit to stop: no handler.
#[test]
fn no_handler_without_a_lock_limit() {
    if skip_unprivileged_run("runs as nobody") {
        return;
    }
    if hard_memlock().is_some() {
        skip(format_args!(
            "the hard RLIMIT_MEMLOCK is finite here, and raising it takes CAP_SYS_RESOURCE: \
             the case without a lock limit is not run"
        ));
        return;
    }
    let probe = probe();
    let cmd = as_nobody()
        .limit("--memlock=unlimited:unlimited")
        .memlock_run(["--".as_ref(), probe.as_os_str()]);
    assert_no_handler("no lock limit", cmd, false);
}

/// The program started by `cmd` is locked, and its SIGSEGV is not caught (and ignored when
/// `ignored`, as it inherited it).
fn assert_no_handler(what: &str, cmd: Command, ignored: bool) {
    let running = Running::start(cmd);
    let status = running.status();
    assert!(
        !has_signal(status.signals("SigCgt"), libc::SIGSEGV),
        "{what}: SIGSEGV is not caught"
    );
    assert_eq!(
        has_signal(status.signals("SigIgn"), libc::SIGSEGV),
        ignored,
        "{what}: SIGSEGV ignored as inherited"
    );
    assert!(running.finish().status.success(), "{what}");
}

/// A program started with its standard input closed: the shim's memfd takes descriptor 0,
/// and the stack line is there all the same.
#[test]
fn the_stack_line_holds_with_standard_input_closed() {
    if skip_as_nobody() {
        return;
    }
    let deepstack = deepstack();
    let shim = fs::canonicalize(shim_path()).expect("shim path");
    // memlock-run itself (Rust) reopens a closed descriptor 0 on /dev/null, so the shim is
    // preloaded here with the protocol's settings, as memlock-run gives them.
    let out = output({
        let mut cmd = as_nobody().limit(CI_MEMLOCK).program("sh");
        cmd.args([
            "-c",
            "exec 0<&-; exec env -i LD_PRELOAD=\"$1\" MEMLOCK_RUN_FLAGS=current \"$2\" 7",
            "sh",
        ])
        .arg(&shim)
        .arg(&deepstack);
        cmd
    });
    let err = stderr_of(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    assert_eq!(err.matches(STACK_LINE).count(), 1, "{err}");
}

/// tests/probes/stackfault.c: writes one byte a chosen depth below the top of the main stack.
fn stackfault() -> PathBuf {
    compile("stackfault.c", "stackfault", &[])
}

/// memlock-run as nobody at 8 MiB, RLIMIT_STACK `stack`, running `stackfault ARGS`.
fn stackfault_run(stack: &str, args: &[&str]) -> std::process::Output {
    let stackfault = stackfault();
    let mut words: Vec<&std::ffi::OsStr> = vec!["--".as_ref(), stackfault.as_os_str()];
    words.extend(args.iter().map(std::ffi::OsStr::new));
    output(
        as_nobody()
            .limits(&[CI_MEMLOCK, &format!("--stack={stack}:{stack}")])
            .memlock_run(words),
    )
}

/// A growth the lock refuses that takes the stack exactly to its RLIMIT_STACK is still the
/// lock's refusal: the line names it.
#[test]
fn a_growth_to_exactly_rlimit_stack_refused_for_the_lock_is_named() {
    if skip_as_nobody() {
        return;
    }
    let out = stackfault_run("8388608", &["8192"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    assert_eq!(err.matches(STACK_LINE).count(), 1, "{err}");
}

/// A growth past RLIMIT_STACK (by one byte of the limit here) is refused for the stack limit,
/// whatever the lock leaves: no line blames the lock.
#[test]
fn a_growth_past_rlimit_stack_is_not_blamed_on_the_lock() {
    if skip_as_nobody() {
        return;
    }
    let out = stackfault_run("8388607", &["8192"]);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{out:?}");
    assert!(
        !stderr_of(&out).contains("memlock-run:"),
        "{}",
        stderr_of(&out)
    );
}

/// A fault below the stack that is not a growth (a write to a read-only page there), and a
/// growth the kernel refuses for a mapping in its way (the guard gap) while the lock has
/// room: SIGSEGV as without memlock-run, and no line blames the lock.
#[test]
fn faults_below_the_stack_that_the_lock_did_not_cause_get_no_line() {
    if skip_as_nobody() {
        return;
    }
    for (what, args) in [
        ("a read-only page 7 MiB down", ["7168", "--block", "7168"]),
        ("a growth into the guard gap", ["3008", "--block", "3072"]),
    ] {
        let out = stackfault_run("8388608", &args);
        assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{what}: {out:?}");
        assert!(
            !stderr_of(&out).contains("memlock-run:"),
            "{what}: {}",
            stderr_of(&out)
        );
    }
}

/// A thread refused with a stack the program chose (pthread_attr_setstacksize) is named with
/// that stack and its guard page: 1 MiB and 4 KiB reads 1 MiB.
#[test]
fn a_thread_with_its_own_stack_size_is_named_with_that_size() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--attr-stack".as_ref(),
        "1024".as_ref(),
        "--threads".as_ref(),
        "8".as_ref(),
    ]));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.matches(THREAD_LINE).count(), 1, "one line:\n{err}");
    assert_mentions(&err, &["whole stack (1 MiB)"]);
}

/// pthread_create's EAGAIN for another reason than the lock (RLIMIT_NPROC, or RLIMIT_AS that
/// the stack does not fit while the lock has room for it): the program's own report, and
/// no line blames the lock.
#[test]
fn a_thread_refused_for_another_limit_is_not_blamed_on_the_lock() {
    if skip_as_nobody() {
        return;
    }
    let probe = probe();
    for (what, limit) in [("RLIMIT_NPROC", "--nproc"), ("RLIMIT_AS", "--as-room")] {
        let out = output(as_nobody().limit(CI_MEMLOCK).memlock_run([
            "--future".as_ref(),
            "--thread-stack".as_ref(),
            "256K".as_ref(),
            "--".as_ref(),
            probe.as_os_str(),
            limit.as_ref(),
            if limit == "--nproc" { "1" } else { "128" }.as_ref(),
            "--threads".as_ref(),
            "1".as_ref(),
        ]));
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{what}: {err}");
        assert!(
            err.contains("probe: pthread_create: Resource temporarily unavailable"),
            "{what}: {err}"
        );
        assert!(!err.contains("memlock-run:"), "{what}: {err}");
    }
}
