//! The shim under musl's dynamic loader: a musl program that a locked program executes
//! inherits `LD_PRELOAD` with the shim, and is locked by it or stopped with its message.
//!
//! memlock-run itself starts a musl COMMAND with the ptrace method (tests/ptrace.rs); here
//! the musl program is executed later, by a glibc program under an inheriting run, with the
//! execve system call itself (tests/probes/rawexec.c), so that nothing but the loader and
//! the shim can act on it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// The probe built with musl-gcc, or None (and why) without musl-gcc.
fn musl_probe() -> Option<PathBuf> {
    compile_musl("probe.c", "probe-musl", &[])
}

/// tests/probes/rawexec.c, built for glibc.
fn rawexec() -> PathBuf {
    compile("rawexec.c", "rawexec", &[])
}

#[test]
fn a_musl_program_executed_by_a_locked_program_is_locked() {
    let Some(probe) = musl_probe() else { return };
    let rawexec = rawexec();
    let mut cmd = memlock_run(["--future", "-vv", "--"]);
    cmd.arg(&rawexec).arg(&probe).args(["--map", "4"]);
    let running = Running::start(cmd);

    // The process is the musl probe now, with musl's loader and the shim mapped.
    let exe = std::fs::read_link(format!("/proc/{}/exe", running.pid)).expect("read exe");
    assert_eq!(
        exe, probe,
        "the probe runs in the process memlock-run started"
    );
    let maps = running.maps();
    // musl's loader is its libc.so, mapped under either name.
    assert!(
        maps.contains("/ld-musl-") || maps.contains("-linux-musl/libc.so"),
        "musl's loader is mapped:\n{maps}"
    );
    let shim = shim_path();
    assert!(
        maps.contains(shim.to_str().expect("UTF-8 path")),
        "the shim is loaded:\n{maps}"
    );

    let status = running.status();
    assert!(status.bytes("VmLck") > 0, "VmLck {}", status.get("VmLck"));
    let smaps = running.smaps();
    for mapping in &smaps {
        // The kernel's own mappings ([vdso], [vvar]) are never locked (VM_SPECIAL).
        let kernels =
            mapping.name.starts_with('[') && !matches!(mapping.name.as_str(), "[stack]" | "[heap]");
        if mapping.bytes("Rss") > 0 && !kernels {
            assert!(
                mapping.locked_flag(),
                "a resident mapping of the musl process is not locked: {mapping:?}"
            );
        }
    }
    // Mapped by the probe's main after the constructor: MCL_FUTURE locked and populated it.
    let late = anonymous_of_size(&smaps, 4 * MIB);
    assert!(
        late.locked_flag() && late.bytes("Locked") == 4 * MIB,
        "MCL_FUTURE holds in the musl process: {late:?}"
    );

    let pid = running.pid;
    let out = running.finish();
    assert!(out.status.success(), "{out:?}");
    // -vv: one line from the shim in each image, the second naming the musl probe.
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[1].starts_with(&format!(
            "memlock-run: {} (pid {pid}): locked MCL_CURRENT|MCL_FUTURE with the preload shim",
            probe.display()
        )),
        "{lines:#?}"
    );
}

#[test]
fn a_musl_program_that_cannot_lock_stops_with_the_shims_message() {
    if skip_unprivileged_run("the run of a musl program as nobody is not tested")
        || skip_without(
            "prlimit",
            "the run of a musl program under a tiny limit is not tested",
        )
    {
        return;
    }
    let Some(probe) = musl_probe() else { return };
    let mark = marker("musl-unlockable");
    // As nobody under a 64 KiB RLIMIT_MEMLOCK, with the settings memlock-run would give:
    // mlockall(MCL_CURRENT) cannot lock the probe's hundreds of KiB. env sets them for the
    // probe alone, so that no glibc program on the way loads the shim (whose exec wrappers
    // would judge the musl exec themselves).
    let mut cmd = as_nobody().limit("--memlock=65536:65536").program("env");
    cmd.arg("-i")
        .arg(format!("LD_PRELOAD={}", shim_path().display()))
        .args([
            "MEMLOCK_RUN_FLAGS=current,future",
            "MEMLOCK_RUN_ON_FAILURE=exit",
            "MEMLOCK_RUN_INHERIT=1",
        ])
        .arg(&probe)
        .arg("--mark")
        .arg(&mark);
    // The probe's main must not run unlocked.
    assert_refused(
        &output(cmd),
        Refused::before_main().mark(&mark),
        &[
            &format!("memlock-run: {} (pid ", probe.display()),
            "cannot lock memory: mlockall(MCL_CURRENT|MCL_FUTURE) failed with ENOMEM",
            "RLIMIT_MEMLOCK is 64 KiB",
            "exiting with status 125 so that nothing runs unlocked",
        ],
    );
}

#[test]
fn heap_stops_a_musl_program_executed_by_a_locked_program() {
    let Some(probe) = musl_probe() else { return };
    let mark = marker("musl-heap");
    let mut cmd = memlock_run(["--future", "--heap", "1M", "--"]);
    cmd.arg(rawexec()).arg(&probe).arg("--mark").arg(&mark);
    assert_refused(
        &output(cmd),
        Refused::before_main().mark(&mark),
        &[
            &format!("memlock-run: {} (pid ", probe.display()),
            "cannot pre-fault 1 MiB of heap: this C library has no mallopt(3)",
            "drop --heap",
            "exiting with status 125",
        ],
    );
}

#[test]
fn forked_children_of_a_musl_program_are_locked_again() {
    let Some(forkprobe) = compile_musl("forkprobe.c", "forkprobe-musl", &[]) else {
        return;
    };
    let mut cmd = memlock_run(["--future", "--"]);
    cmd.arg(rawexec()).arg(&forkprobe).args(["--map", "4"]);
    // The ready line is the forked child's.
    let running = Running::start(cmd);
    assert_ne!(
        running.pid,
        running.child_pid(),
        "the ready line is the child's"
    );
    let child = running.status();
    assert!(
        child.bytes("VmLck") >= 4 * MIB,
        "relocked child: VmLck {}",
        child.get("VmLck")
    );
    // Mapped by the child after fork: locked because MCL_FUTURE was restored.
    let smaps = running.smaps();
    let late = anonymous_of_size(&smaps, 4 * MIB);
    assert!(
        late.locked_flag() && late.bytes("Locked") == 4 * MIB,
        "{late:?}"
    );
    let out = running.finish();
    assert!(stdout_of(&out).contains("child status 0"), "{out:?}");
}

#[test]
fn a_musl_program_that_looks_like_glibc_is_locked_too() {
    // gcompat on Alpine defines gnu_get_libc_version in a musl process: the shim must still
    // not take the registers musl's loader leaves for glibc's (argc, argv, envp).
    let Some(probe) = musl_probe() else { return };
    let Some(fake) = compile_musl("fakeglibc.c", "libfakeglibc-musl.so", &["-shared", "-fPIC"])
    else {
        return;
    };
    let mut cmd = Command::new(&probe);
    cmd.args(["--exit", "0"])
        .env_clear()
        .env(
            "LD_PRELOAD",
            format!("{} {}", fake.display(), shim_path().display()),
        )
        .env("MEMLOCK_RUN_FLAGS", "current,future")
        .env("MEMLOCK_RUN_VERBOSE", "1");
    let out = output(cmd);
    let line = one_line(&out);
    assert!(out.status.success(), "{out:?}");
    assert_mentions(
        &line,
        &[
            &format!("memlock-run: {} (pid ", probe.display()),
            "locked MCL_CURRENT|MCL_FUTURE with the preload shim",
        ],
    );
}
