//! Containers: a process granted CAP_IPC_LOCK that does not hold it.
//!
//! A non-root container started with `--cap-add IPC_LOCK`, or a Kubernetes pod with
//! `capabilities.add: [IPC_LOCK]`, has CAP_IPC_LOCK in a narrowed bounding set (no
//! CAP_SYS_ADMIN) and, after exec, not in its permitted set. memlock-run then says, in one
//! note, that RLIMIT_MEMLOCK binds and what gives the capability in a container. The layout
//! is made here with setpriv (uid nobody, bounding set narrowed); packaging/ci-test.sh runs
//! the same under runc from the packaged image.

mod common;

use common::*;

const NOTE: &str = "memlock-run: note: CAP_IPC_LOCK is in this process's bounding set but memlock-run does not hold it";

/// memlock-run as nobody with the bounding set `bounding` (setpriv syntax), optionally with
/// CAP_IPC_LOCK ambient, running the probe to completion.
fn probe_as_nobody_with_bounding(bounding: &str, ambient: bool) -> std::process::Output {
    let run_as = as_nobody().bounding_set(bounding);
    let run_as = if ambient {
        run_as.ambient_ipc_lock()
    } else {
        run_as
    };
    let mut cmd = run_as.memlock_run(["--"]);
    cmd.arg(probe()).args(["--exit", "0"]);
    output(cmd)
}

fn notes(out: &std::process::Output) -> Vec<String> {
    stderr_lines(out)
        .into_iter()
        .filter(|l| l.starts_with(NOTE))
        .collect()
}

#[test]
fn a_container_granted_ipc_lock_that_does_not_hold_it_gets_one_note_with_the_remedy() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_unless_memlock_hard_at_least(4 * MIB, "a small program needs about 3 MiB locked")
    {
        return;
    }
    let out = probe_as_nobody_with_bounding("-all,+ipc_lock", false);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let notes = notes(&out);
    assert_eq!(notes.len(), 1, "one note: {}", stderr_of(&out));
    assert_mentions(
        &notes[0],
        &[
            "RLIMIT_MEMLOCK (",
            "setcap cap_ipc_lock+p /usr/bin/memlock-run",
            "--ulimit memlock=-1",
            "AmbientCapabilities=CAP_IPC_LOCK",
        ],
    );
}

#[test]
fn no_note_where_ipc_lock_is_held_absent_or_the_bounding_set_is_a_hosts() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_unless_memlock_hard_at_least(4 * MIB, "a small program needs about 3 MiB locked")
    {
        return;
    }
    for (bounding, ambient, what) in [
        ("-all,+ipc_lock", true, "held through the ambient set"),
        (
            "-all,+chown",
            false,
            "not in the bounding set: nothing can grant it",
        ),
        (
            "+all",
            false,
            "a host's full bounding set (an ordinary user)",
        ),
    ] {
        let out = probe_as_nobody_with_bounding(bounding, ambient);
        assert!(out.status.success(), "{what}: {}", stderr_of(&out));
        assert!(
            notes(&out).is_empty(),
            "{what}: no note expected: {}",
            stderr_of(&out)
        );
    }
}
