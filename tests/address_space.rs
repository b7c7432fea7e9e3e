//! memlock-run and COMMAND under a tight `RLIMIT_AS` (`ulimit -v`, `prlimit --as`,
//! systemd's `LimitAS=`): the run is locked, or it stops with a message, never the program
//! running unlocked with success, and memlock-run itself never aborts.
//!
//! The limits are stepped through a range a page or two at a time, because what fails
//! depends on how many pages are left when ld.so, libc or memlock-run asks for more.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

/// `cmd` with RLIMIT_AS set to `bytes` (soft and hard) in the child before it execs.
fn under_address_limit(mut cmd: Command, bytes: u64) -> Command {
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// `kB` of a `Name:   N kB` line the bigbss probe printed.
fn kib_of(out: &Output, name: &str) -> Option<u64> {
    stdout_of(out).lines().find_map(|line| {
        line.strip_prefix(name)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// The path this process's glibc was loaded from, as a user would name it in LD_PRELOAD.
fn own_libc() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read own maps");
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            let name = path.rsplit('/').next().unwrap_or("");
            name == "libc.so.6" || name.starts_with("libc-2.")
        })
        .map(PathBuf::from)
        .expect("the test binary maps glibc")
}

/// Rust's allocation-failure handler aborts (134, "memory allocation of N bytes failed"); a
/// limit too tight for memlock-run itself must be its own failure, 125, said in one line.
#[test]
fn memlock_run_out_of_address_space_exits_125_with_a_line() {
    let mut out_of_memory = 0;
    for kib in (1024..12 * 1024).step_by(8) {
        let out = output(under_address_limit(
            memlock_run(["--", "/bin/true"]),
            kib * KIB,
        ));
        assert_ne!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "RLIMIT_AS {kib} KiB: memlock-run aborted: {}",
            stderr_of(&out)
        );
        if out.status.code() == Some(125) {
            let line = one_line(&out);
            assert!(line.starts_with("memlock-run: "), "{line}");
            if line.contains("out of memory") {
                assert_mentions(
                    &line,
                    &["RLIMIT_AS", "KiB", "raise RLIMIT_AS", "prlimit --as"],
                );
                out_of_memory += 1;
            }
        }
    }
    // Below memlock-run's needs ld.so stops it (127); above them it runs; in between, its own
    // allocations fail: that range must have been met.
    assert!(
        out_of_memory > 0,
        "no RLIMIT_AS from 1 MiB to 12 MiB made memlock-run run out of memory"
    );
}

/// A user's own LD_PRELOAD comes before the shim (sanitizer runtimes must be first), and
/// under a tight RLIMIT_AS it can take the room the shim needed: ld.so then says the shim
/// "cannot be preloaded ... ignored" and runs the program without it. Here the user preloads
/// glibc itself, so that nothing ld.so must load after the shim is left to fail, and the
/// program maps 64 MiB, far more than memlock-run: at every limit the program is locked, or
/// memlock-run says why it stopped it, or ld.so failed before the program ran.
#[test]
fn a_users_preload_under_a_tight_address_space_never_runs_unlocked() {
    let program = compile("bigbss.c", "bigbss", &[]);
    let libc = own_libc();
    let run = |limit: Option<u64>| {
        // COMMAND alone: with a C library in LD_PRELOAD an inheriting run is refused (its exec
        // functions would go before the shim's; see the last test).
        let mut cmd = memlock_run(["--no-inherit", "--"]);
        cmd.arg(&program).env("LD_PRELOAD", &libc);
        match limit {
            Some(bytes) => output(under_address_limit(cmd, bytes)),
            None => output(cmd),
        }
    };
    let free = run(None);
    assert!(free.status.success(), "{}", stderr_of(&free));
    let vm_size = kib_of(&free, "VmSize:").expect("the probe prints VmSize");
    assert!(
        kib_of(&free, "VmLck:").unwrap_or(0) > 0,
        "not locked without a limit"
    );

    let mut shim_missing = 0;
    let mut locked = 0;
    // The shim's pages are the last ld.so maps before the program's own start-up needs a few
    // more: somewhere below the VmSize it runs with.
    for kib in (vm_size.saturating_sub(512)..vm_size + 64).step_by(4) {
        let out = run(Some(kib * KIB));
        let vm_lck = kib_of(&out, "VmLck:");
        match out.status.code() {
            Some(0) => {
                assert!(
                    vm_lck.unwrap_or(0) > 0,
                    "RLIMIT_AS {kib} KiB: the program ran unlocked with success:\n{}{}",
                    stdout_of(&out),
                    stderr_of(&out)
                );
                locked += 1;
            }
            Some(125) => {
                let err = stderr_of(&out);
                assert!(
                    err.lines().any(|l| l.starts_with("memlock-run: ")),
                    "RLIMIT_AS {kib} KiB: 125 without memlock-run's message:\n{err}"
                );
                assert_eq!(vm_lck, None, "RLIMIT_AS {kib} KiB: the program ran:\n{err}");
                if err.contains("did not load the preload shim") {
                    assert_mentions(
                        &err,
                        &["RLIMIT_AS", "exiting with status 125", "raise RLIMIT_AS"],
                    );
                    shim_missing += 1;
                }
            }
            // ld.so could not load glibc or the program (127), or glibc's start-up failed:
            // the program's own code never ran.
            _ => assert_eq!(
                vm_lck,
                None,
                "RLIMIT_AS {kib} KiB: the program ran and failed ({}):\n{}",
                out.status,
                stderr_of(&out)
            ),
        }
    }
    assert!(
        shim_missing > 0,
        "no RLIMIT_AS from {} KiB to {} KiB made ld.so skip the shim",
        vm_size - 512,
        vm_size + 64
    );
    assert!(
        locked > 0,
        "no RLIMIT_AS in the range let the program run locked"
    );
}

/// The check costs a helper only where a limit is finite; where it is generous, the program
/// runs locked and the helper is gone by the time it runs.
#[test]
fn a_generous_address_limit_runs_locked_and_untraced() {
    let mut cmd = memlock_run(["--"]);
    cmd.arg(probe());
    let running = Running::start(under_address_limit(cmd, 1 << 30));
    let status = running.status();
    assert!(status.bytes("VmLck") > 0, "not locked");
    assert_eq!(status.get("TracerPid"), "0", "the helper is still attached");
    let out = running.finish();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// A fault on the way to the entry point (here a user's preload that crashes in its
/// constructor) is delivered at once while the helper holds the program: held back, the
/// faulting instruction would run again, and fault, forever.
#[test]
fn a_crash_before_the_entry_point_is_not_held_forever() {
    let crash = compile("crash_ctor.c", "crash_ctor.so", &["-shared", "-fPIC"]);
    let mut cmd = memlock_run(["--", "/bin/true"]);
    cmd.env("LD_PRELOAD", &crash)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = spawn(&mut under_address_limit(cmd, 1 << 30)).expect("spawn memlock-run");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program still runs after 20 s: its fault was held back");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("collect stderr");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{}", stderr_of(&out));
    assert_mentions(
        &stderr_of(&out),
        &["memlock-run: ", "killed by SIGSEGV before its own code ran"],
    );
}

/// `--check` says that a finite limit brings the check, and whether ptrace allows it;
/// `--dry-run` shows it in the plan.
#[test]
fn check_names_the_preload_check_under_a_finite_limit() {
    let mut cmd = memlock_run(["--dry-run", "--"]);
    cmd.arg(probe());
    let plan = stdout_of(&output(under_address_limit(cmd, 1 << 30)));
    let line = plan
        .lines()
        .find(|l| l.starts_with("check:"))
        .unwrap_or_else(|| panic!("no check: line in the plan:\n{plan}"));
    assert_mentions(
        line,
        &["RLIMIT_AS 1 GiB", "ptrace helper", "loaded the shim"],
    );

    let mut cmd = memlock_run(["--check", "--"]);
    cmd.arg(probe());
    let out = output(under_address_limit(cmd, 1 << 30));
    let text = stdout_of(&out);
    assert_mentions(
        &finding_of(&text, "RLIMIT_AS").text,
        &["1 GiB", "checks with ptrace", "the shim is loaded"],
    );
    finding_of(&text, "ptrace");
    let mut cmd = memlock_run(["--check", "--"]);
    cmd.arg(probe());
    let unlimited = stdout_of(&output(under_address_limit(cmd, libc::RLIM_INFINITY)));
    assert_eq!(
        finding(&unlimited, "RLIMIT_AS"),
        None,
        "a check without a limit:\n{unlimited}"
    );
}

/// Where the helper cannot run (memlock-run as PID 1 of a PID namespace, as in a container
/// without an init), a finite limit stops the run before exec, with the reason.
#[test]
fn without_the_helper_a_finite_limit_stops_the_run() {
    if skip_without("unshare", "memlock-run as PID 1 is not tested")
        || skip_unless_root("unshare --pid needs root")
    {
        return;
    }
    let mark = marker("as-pid1");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--"])
        .arg(memlock_run_path())
        .arg("--")
        .arg(probe())
        .arg("--mark")
        .arg(&mark)
        .args(["--exit", "0"]);
    let out = output(under_address_limit(cmd, 1 << 30));
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &[
            "cannot check that ld.so loads the preload shim",
            "PID 1",
            "ulimit -v unlimited",
            "--on-failure warn",
        ],
    );
}

/// Under a finite limit, what the kernel starts is checked for the shim: a script's
/// interpreter, or env for a `#!/usr/bin/env NAME` line (whose NAME is then locked through
/// inheritance); and a dynamically linked musl program takes the preload too, where musl's
/// loader runs the shim's constructor after the entry point: the check finds the shim mapped
/// there and lets it run. Each runs locked.
#[test]
fn programs_under_a_finite_limit_run_locked() {
    let mut rows: Vec<(&str, PathBuf)> = [
        ("as-limit-direct.sh", "#!/bin/sh"),
        ("as-limit-env.sh", "#!/usr/bin/env sh"),
    ]
    .into_iter()
    .map(|(name, shebang)| {
        (
            shebang,
            script(name, &format!("{shebang}\ngrep VmLck /proc/$$/status\n")),
        )
    })
    .collect();
    if let Some(program) = compile_musl("bigbss.c", "bigbss-musl", &[]) {
        rows.push(("a musl program", program));
    }
    for (what, program) in rows {
        let out = output(under_address_limit(
            memlock_run(["--".as_ref(), program.as_os_str()]),
            1 << 30,
        ));
        assert!(out.status.success(), "{what}: {}", stderr_of(&out));
        assert!(
            kib_of(&out, "VmLck:").unwrap_or(0) > 0,
            "{what}: not locked:\n{}",
            stdout_of(&out)
        );
    }
}

/// The same setup for the programs COMMAND executes: a C library ahead of the shim in
/// LD_PRELOAD would take the exec functions the shim judges programs in (and under RLIMIT_AS
/// it is what makes ld.so skip the shim), so an inheriting run refuses it up front, and
/// `--check` says so.
#[test]
fn a_preloaded_c_library_is_refused_for_an_inheriting_run() {
    let program = compile("bigbss.c", "bigbss", &[]);
    let libc = own_libc();
    let mut cmd = memlock_run(["--"]);
    cmd.arg(&program).env("LD_PRELOAD", &libc);
    let out = output(cmd);
    assert_eq!(kib_of(&out, "VmLck:"), None, "it must not run");
    assert_refused(
        &out,
        Refused::before_main(),
        &["LD_PRELOAD names the C library", "--no-inherit"],
    );
    let mut check = memlock_run(["--check", "--"]);
    check.arg(&program).env("LD_PRELOAD", &libc);
    let out = output(check);
    let report = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let found = finding_of(&report, "LD_PRELOAD");
    assert_eq!(found.verdict, "FAIL", "{report}");
    assert!(
        found
            .text
            .contains("a C library is preloaded before the shim"),
        "{report}"
    );
}
