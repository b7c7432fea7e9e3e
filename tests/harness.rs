//! The tests' own harness: a process tree a test starts cannot outlive the test (issue 22).
//! A command that hangs fails its test by its deadline, and a daemon it made (a session of
//! its own, re-parented to init, as Chromium's crash handler is) is killed with it, whether it
//! holds the test's pipes or not. See the module doc of `common`.

mod common;

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A shell script that makes a daemon and then hangs or exits: see its comments.
fn daemon_script() -> PathBuf {
    script(
        "harness-daemon",
        r#"#!/bin/sh
# A daemon as Chromium's crash handler is one: a session of its own (setsid), its parent gone
# (the inner sh exits at once), so re-parented to init. Then this script hangs or exits.
# $1: where the daemon writes its PID; $2: hang or exit; $3: keep (the daemon holds this
# script's stdout and stderr) or close (it has /dev/null).
if [ "$3" = close ]; then
    setsid sh -c 'sleep 1000 >/dev/null 2>&1 & echo $! > "$0"' "$1"
else
    setsid sh -c 'sleep 1000 & echo $! > "$0"' "$1"
fi
while [ ! -s "$1" ]; do sleep 0.01; done
echo "daemon $(cat "$1")"
echo "on stderr" >&2
if [ "$2" = hang ]; then exec sleep 1000; fi
"#,
    )
}

fn daemon(pid_file: &Path, end: &str, pipes: &str) -> Command {
    let mut cmd = Command::new(daemon_script());
    cmd.arg(pid_file).args([end, pipes]).stdin(Stdio::null());
    cmd
}

/// The daemon's PID, from its file.
fn daemon_pid(pid_file: &Path) -> i32 {
    let text = std::fs::read_to_string(pid_file).expect("the daemon's PID file");
    text.trim().parse().unwrap_or_else(|_| panic!("{text:?}"))
}

/// The daemon has gone: no process, or a zombie that init has not reaped yet (dead, and no
/// longer holding anything).
fn gone(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    state == Some("Z") || cmdline != b"sleep\x001000\x00"
}

/// Kills the daemon where process groups, which it left, could not.
fn reap_escaped(pid: i32) {
    if !gone(pid) {
        // SAFETY: the daemon this test made, checked by its command line just now.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Hangs with a daemon holding its stdout: killed at its 2 s deadline, the test fails within
/// seconds with a message naming the command and what it printed, and nothing of the tree is
/// left, the daemon included; its cgroup is removed.
#[test]
fn a_hung_command_with_a_daemon_fails_by_its_deadline_and_leaves_nothing() {
    let pid_file = unique("harness-hung.pid");
    let mut cmd = daemon(&pid_file, "hang", "keep");
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_within(&mut cmd, Duration::from_secs(2))
    }));
    let elapsed = started.elapsed();
    let message = panic_text(result.expect_err("a command that hangs must fail its test"));
    // With process groups, the daemon that left its group holds the pipes until the tree has
    // had 10 s more to close them.
    let bound = if contained_by_cgroups() { 8 } else { 20 };
    assert!(
        elapsed < Duration::from_secs(bound),
        "{elapsed:?}: {message}"
    );
    let pid = daemon_pid(&pid_file);
    assert_mentions(
        &message,
        &[
            "timed out",
            "harness-daemon",
            "its 2 s",
            &format!("daemon {pid}"),
            "on stderr",
        ],
    );
    if !contained_by_cgroups() {
        skip(format_args!(
            "process groups only: the daemon left its group, and the test killed it"
        ));
        reap_escaped(pid);
        return;
    }
    assert!(gone(pid), "the daemon {pid} outlived its test: {message}");
    let leaf = message
        .split("(cgroup ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no cgroup in {message}"));
    assert!(!Path::new(leaf).exists(), "{leaf} is left");
}

/// A command that ends leaves no daemon behind: one holding the pipes is killed 2 s after the
/// command ended, one that closed them is killed too; `output_alone` names what it killed.
#[test]
fn a_command_that_ends_leaves_no_daemon_behind() {
    for pipes in ["keep", "close"] {
        if pipes == "keep" && !contained_by_cgroups() {
            skip(format_args!(
                "process groups only: a daemon that left its group and holds the pipes fails \
                 the run 10 s after its end, and is not killed"
            ));
            continue;
        }
        let pid_file = unique("harness-exits.pid");
        let started = Instant::now();
        let out = output(daemon(&pid_file, "exit", pipes));
        let pid = daemon_pid(&pid_file);
        assert!(out.status.success(), "{pipes}: {}", stderr_of(&out));
        assert_eq!(stdout_of(&out), format!("daemon {pid}\n"), "{pipes}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{pipes}: {:?}",
            started.elapsed()
        );
        if contained_by_cgroups() {
            assert!(gone(pid), "{pipes}: the daemon {pid} outlived its command");
        }
        reap_escaped(pid);
    }
    if !contained_by_cgroups() {
        skip(format_args!(
            "process groups only: output_alone cannot see a daemon that left its group"
        ));
        return;
    }
    let pid_file = unique("harness-alone.pid");
    let result = catch_unwind(AssertUnwindSafe(|| {
        output_alone(daemon(&pid_file, "exit", "close"))
    }));
    let message = panic_text(result.expect_err("output_alone must fail"));
    let pid = daemon_pid(&pid_file);
    assert_mentions(&message, &["left", &format!("{pid} (sleep)")]);
    assert!(gone(pid), "the daemon {pid} outlived its command");
}

/// A test blocked on a pipe of its own (not in a `common` wait) is freed at the deadline, and
/// fails when the process is dropped.
#[test]
fn a_test_blocked_on_its_own_read_fails_at_the_deadline() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo started; exec sleep 1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut process = spawn_within(&mut cmd, Duration::from_secs(2)).expect("spawn sh");
        let mut text = String::new();
        let _ = process
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut text);
        assert_eq!(text, "started\n");
        drop(process);
    }));
    let message = panic_text(result.expect_err("a process past its deadline fails its test"));
    assert!(started.elapsed() < Duration::from_secs(8), "{message}");
    assert_mentions(&message, &["timed out", "sleep 1000"]);
}

/// A tree's cgroup changes only the v2 line of /proc/PID/cgroup: the v1 memory cgroup, which
/// `--check` and tests/check.rs read on a hybrid host, is the test binary's own. (A leaf has
/// no controllers; where the binary's own v2 cgroup has the memory controller, `common` uses
/// process groups instead.)
#[test]
fn a_trees_cgroup_changes_only_the_v2_line() {
    if !contained_by_cgroups() {
        skip(format_args!("process groups only: no cgroup to check"));
        return;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let out = output({
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/cgroup");
        cmd
    });
    let theirs = stdout_of(&out);
    let (own_v2, own_v1): (Vec<&str>, Vec<&str>) = own.lines().partition(|l| l.starts_with("0::"));
    let (v2, v1): (Vec<&str>, Vec<&str>) = theirs.lines().partition(|l| l.starts_with("0::"));
    assert_eq!(v1, own_v1, "the v1 hierarchies");
    let (own_v2, v2) = (own_v2.concat(), v2.concat());
    assert!(
        v2.starts_with(&format!(
            "{}/memlock-run-tests/",
            own_v2.trim_end_matches('/')
        )),
        "not in a leaf below the binary's own cgroup ({own_v2}): {v2}"
    );
}
