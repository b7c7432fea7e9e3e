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

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

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
