//! Locking as the kernel reports it: VmLck, smaps Locked and the `lo` flag, Rss across
//! reclaim, the stack pre-fault, and the shim's own reports.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use common::*;

#[test]
fn mcl_current_locks_what_is_mapped_at_start() {
    let probe = probe();
    let running = Running::start(memlock_run(["--".as_ref(), probe.as_os_str()]));
    assert_eq!(
        running.pid,
        running.child_pid(),
        "memlock-run execs in place: same PID"
    );
    let status = running.status();
    let maps = running.smaps();
    let text = maps
        .iter()
        .find(|m| m.name == probe.to_str().unwrap())
        .expect("the probe's own text mapping");
    assert!(
        text.locked_flag(),
        "the probe's text is VM_LOCKED: {text:?}"
    );
    assert!(
        status.bytes("VmLck") >= MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    assert!(running.finish().status.success());
}

/// A mapping the probe makes after the shim locked (`--map`, `--touch`), under the flags
/// of each row, as smaps and VmLck show it.
struct Later {
    what: &'static str,
    options: &'static [&'static str],
    /// `--map MiB`, `--touch MiB`.
    map: u64,
    touch: u64,
    /// The mapping is VM_LOCKED (`lo`).
    locked_flag: bool,
    /// Its Rss and Locked, and the process's VmLck, in bytes.
    rss: std::ops::Range<u64>,
    locked: std::ops::Range<u64>,
    vm_lck: std::ops::Range<u64>,
}

const ANY: std::ops::Range<u64> = 0..u64::MAX;

const LATER: [Later; 4] = [
    Later {
        what: "MCL_CURRENT alone does not lock a later mmap",
        options: &[],
        map: 32,
        touch: 0,
        locked_flag: false,
        rss: ANY,
        locked: ANY,
        vm_lck: 0..32 * MIB,
    },
    // Without MCL_ONFAULT the kernel populates a locked mapping at mmap time, untouched or not.
    Later {
        what: "MCL_FUTURE locks and populates the new mapping",
        options: &["--future"],
        map: 32,
        touch: 0,
        locked_flag: true,
        rss: 32 * MIB..32 * MIB + 1,
        locked: 32 * MIB..32 * MIB + 1,
        vm_lck: 32 * MIB..u64::MAX,
    },
    Later {
        what:
            "MCL_FUTURE|MCL_ONFAULT marks the mapping locked and leaves untouched pages out of RAM",
        options: &["--future", "--onfault"],
        map: 64,
        touch: 0,
        locked_flag: true,
        rss: 0..MIB,
        locked: 0..MIB,
        vm_lck: ANY,
    },
    Later {
        what: "MCL_FUTURE|MCL_ONFAULT locks the touched part and does not populate the rest",
        options: &["--future", "--onfault"],
        map: 64,
        touch: 16,
        locked_flag: true,
        rss: ANY,
        locked: 16 * MIB..32 * MIB,
        vm_lck: ANY,
    },
];

#[test]
fn memory_mapped_later_is_locked_as_the_flags_say() {
    let probe = probe();
    for row in LATER {
        let mut cmd = memlock_run(row.options);
        cmd.arg("--")
            .arg(&probe)
            .args(["--map", &row.map.to_string()])
            .args(["--touch", &row.touch.to_string()]);
        let running = Running::start(cmd);
        let maps = running.smaps();
        let late = anonymous_of_size(&maps, row.map * MIB);
        let what = row.what;
        assert_eq!(late.locked_flag(), row.locked_flag, "{what}: {late:?}");
        assert!(
            row.rss.contains(&late.bytes("Rss")),
            "{what}: Rss: {late:?}"
        );
        assert!(
            row.locked.contains(&late.bytes("Locked")),
            "{what}: Locked: {late:?}"
        );
        let status = running.status();
        assert!(
            row.vm_lck.contains(&status.bytes("VmLck")),
            "{what}: VmLck {}",
            status.get("VmLck")
        );
        assert!(running.finish().status.success(), "{what}");
    }
}

/// The hard RLIMIT_STACK of the tests (None: unlimited). Raising it needs CAP_SYS_RESOURCE.
fn hard_stack_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) },
        0
    );
    (limit.rlim_max != libc::RLIM_INFINITY).then_some(limit.rlim_max)
}

/// True (after printing why) when the hard stack limit leaves no room to raise the soft
/// limit for a pre-fault of 8 MiB, which these tests need.
fn skip_unless_stack_can_grow() -> bool {
    match hard_stack_limit() {
        Some(hard) if hard < 16 * MIB => {
            skip(format_args!(
                "the hard RLIMIT_STACK is {hard} bytes; the pre-fault tests need room above 8 MiB"
            ));
            true
        }
        _ => false,
    }
}

/// Runs `cmd` with RLIMIT_STACK set to `soft`:`hard` from the start (hard None: the hard
/// limit the tests run with, which only CAP_SYS_RESOURCE could raise).
fn with_stack_limit(cmd: &mut Command, soft: u64, hard: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard
            .or_else(hard_stack_limit)
            .unwrap_or(libc::RLIM_INFINITY),
    };
    // SAFETY: setrlimit is async-signal-safe and `limit` is a plain value moved into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_STACK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn prefault_8m_works_with_the_default_8m_stack_limit() {
    if skip_unless_stack_can_grow() {
        return;
    }
    let probe = probe();
    let mut cmd = memlock_run([
        "-v".as_ref(),
        "--prefault".as_ref(),
        "8M".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
    ]);
    with_stack_limit(&mut cmd, 8 * MIB, None);
    let running = Running::start(cmd);
    let maps = running.smaps();
    let stack = stack(&maps);
    assert!(stack.locked_flag(), "{stack:?}");
    assert!(
        stack.bytes("Locked") >= 8 * MIB,
        "the stack is locked beyond the pre-fault: {stack:?}"
    );
    assert!(stack.bytes("Rss") >= 8 * MIB, "{stack:?}");
    let limits = running.limits();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max stack size"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no stack soft limit in {limits}"));
    assert!(
        soft > 8 * MIB,
        "the soft stack limit was raised to fit the pre-fault: {limits}"
    );
    // The shim's memfd (its mark and the alternate signal stack's memory) is mapped, never
    // left open: the program's descriptors are its own.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", running.pid))
        .expect("/proc/PID/fd")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect();
    assert!(
        !fds.iter().any(|link| link.contains("memfd:")),
        "a descriptor of the shim's is left open: {fds:?}"
    );
    let out = running.finish();
    assert!(
        out.status.success(),
        "no SIGSEGV: {:?} {}",
        out.status,
        stderr_of(&out)
    );
    let line = one_line(&out);
    assert_mentions(&line, &["stack pre-faulted 8 MiB"]);
    // Populating and locking 8 MiB takes a measurable time, which -v reports.
    let ms: f64 = line
        .rsplit_once(", in ")
        .and_then(|(_, t)| t.trim().strip_suffix(" ms"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line}"));
    assert!(ms > 0.0, "locking 8 MiB took no time: {line}");
}

#[test]
fn prefault_keeps_the_thread_stack_size_threads_would_have_had() {
    if skip_unless_stack_can_grow() {
        return;
    }
    let program = compile("thread_stack.c", "thread_stack", &["-pthread"]);
    let thread_stack = |mut cmd: Command| {
        with_stack_limit(&mut cmd, 8 * MIB, None);
        let out = output(cmd);
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let direct = thread_stack(Command::new(&program));
    let prefaulted = thread_stack(memlock_run([
        "--prefault".as_ref(),
        "8M".as_ref(),
        "--".as_ref(),
        program.as_os_str(),
    ]));
    assert_eq!(direct, format!("thread stack {}", 8 * MIB));
    assert_eq!(
        prefaulted, direct,
        "the raised stack limit does not enlarge thread stacks"
    );
}

#[test]
fn prefault_is_refused_when_the_hard_stack_limit_is_too_low() {
    let probe = probe();
    let mark = marker("prefault-hard");
    let mut cmd = memlock_run([
        "--prefault".as_ref(),
        "8M".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--mark".as_ref(),
        mark.as_os_str(),
    ]);
    with_stack_limit(&mut cmd, 8 * MIB, Some(8 * MIB));
    assert_refused(
        &output(cmd),
        Refused::before_main().mark(&mark),
        &[
            "--prefault 8 MiB",
            "RLIMIT_STACK",
            "hard limit is 8 MiB",
            "pre-fault at most",
        ],
    );
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .expect("MemTotal")
        * KIB
}

#[test]
fn a_prefault_the_kernel_would_refuse_is_an_error_not_a_sigsegv() {
    if let Some(hard) = hard_stack_limit() {
        skip(format_args!(
            "the hard RLIMIT_STACK is {hard} bytes; a pre-fault larger than RAM needs it unlimited"
        ));
        return;
    }
    // The stack grows by a fault, and a growth the kernel refuses is a SIGSEGV; the shim
    // checks the limits the kernel applies and exits 125 with the reason instead: RAM, and
    // RLIMIT_AS (in bytes, None: as the tests run), which bounds the growth too.
    let probe = probe();
    let more_than_ram = format!("{}G", mem_total() / (1 << 30) * 2 + 2);
    let rows: [(&str, Option<u64>, &[&str]); 2] = [
        (&more_than_ram, None, &["cannot pre-fault", "RAM"]),
        ("512M", Some(256 * MIB), &["cannot pre-fault", "RLIMIT_AS"]),
    ];
    for (prefault, address_space, says) in rows {
        let mark = marker("prefault-refused");
        let mut cmd = memlock_run([
            "--prefault".as_ref(),
            prefault.as_ref(),
            "--".as_ref(),
            probe.as_os_str(),
            "--mark".as_ref(),
            mark.as_os_str(),
        ]);
        with_stack_limit(&mut cmd, 8 * MIB, None);
        if let Some(bytes) = address_space {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            // SAFETY: setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let out = output(cmd);
        assert!(
            out.status.signal().is_none(),
            "--prefault {prefault}, RLIMIT_AS {address_space:?}: {:?}",
            out.status
        );
        assert_refused(&out, Refused::before_main().mark(&mark).row(prefault), says);
    }
}

/// Sum of Rss over the mappings of `file` in process `pid`.
fn file_rss(pid: i32, file: &std::path::Path) -> u64 {
    mappings_of(&smaps(pid), file)
        .iter()
        .map(|m| m.bytes("Rss"))
        .sum()
}

/// Runs the pageout helper on `pid`; false (after printing why) if the kernel cannot.
fn page_out(pid: i32) -> bool {
    let helper = compile("pageout.c", "pageout", &[]);
    let out = output({
        let mut cmd = Command::new(helper);
        cmd.arg(pid.to_string());
        cmd
    });
    if out.status.code() == Some(77) {
        skip(format_args!(
            "process_madvise(MADV_PAGEOUT) is unavailable: {}",
            stderr_of(&out).trim()
        ));
        return false;
    }
    assert!(
        out.status.success(),
        "pageout {pid}: {:?} {}",
        out.status,
        stderr_of(&out)
    );
    true
}

#[test]
fn locked_pages_survive_reclaim() {
    // Control: the same program, unlocked, loses its clean file-backed pages. Each run maps
    // its own copy of the probe, so that no other process shares (and pins) those pages.
    let unlocked_probe = probe_copy("reclaim-unlocked");
    let unlocked = Running::start(Command::new(&unlocked_probe));
    let before = file_rss(unlocked.pid, &unlocked_probe);
    if !page_out(unlocked.pid) {
        return;
    }
    let after = file_rss(unlocked.pid, &unlocked_probe);
    assert!(
        after < before,
        "MADV_PAGEOUT reclaims an unlocked program's file pages: Rss {before} -> {after}"
    );
    assert!(unlocked.finish().status.success());

    let locked_probe = probe_copy("reclaim-locked");
    let locked = Running::start(memlock_run(["--".as_ref(), locked_probe.as_os_str()]));
    let before = file_rss(locked.pid, &locked_probe);
    let vm_lck = locked.status().bytes("VmLck");
    assert!(page_out(locked.pid));
    let after = file_rss(locked.pid, &locked_probe);
    assert_eq!(after, before, "locked file pages stay resident");
    assert_eq!(locked.status().bytes("VmLck"), vm_lck);
    let maps = locked.smaps();
    for mapping in mappings_of(&maps, &locked_probe) {
        assert_eq!(mapping.bytes("Locked"), mapping.size(), "{mapping:?}");
    }
    assert!(locked.finish().status.success());
}

#[test]
fn a_sanitizer_that_swallows_mlockall_is_caught() {
    let probe =
        std::panic::catch_unwind(|| compile("probe.c", "probe-asan", &["-fsanitize=address"]));
    let Ok(probe) = probe else {
        skip(format_args!(
            "gcc -fsanitize=address failed (libasan missing?); the ASan case needs it"
        ));
        return;
    };
    let mark = marker("asan");
    let mut cmd = memlock_run([
        "--".as_ref(),
        probe.as_os_str(),
        "--mark".as_ref(),
        mark.as_os_str(),
    ]);
    // ASan insists on being first in the link order; the shim in LD_PRELOAD comes first.
    cmd.env("ASAN_OPTIONS", "verify_asan_link_order=0");
    // The instrumented program must not run unlocked.
    assert_refused(
        &output(cmd),
        Refused::before_main().mark(&mark),
        &[
            "returned success but VmLck is 0 kB",
            "intercepts mlockall",
            "sanitizer",
        ],
    );
}

#[test]
fn on_failure_warn_runs_the_program_unlocked_after_one_line() {
    if skip_unprivileged_run("a failing lock needs a user bound by RLIMIT_MEMLOCK")
        || skip_unless_memlock_hard_at_least(MIB, "the test sets --limit 1M")
    {
        return;
    }
    let probe = probe();
    let running = Running::start(as_nobody().memlock_run([
        "--limit",
        "1M",
        "--on-failure",
        "warn",
        "--",
        probe.to_str().unwrap(),
    ]));
    assert_eq!(running.status().bytes("VmLck"), 0);
    let out = running.finish();
    assert!(out.status.success());
    assert_mentions(
        &one_line(&out),
        &[
            "cannot lock memory",
            "ENOMEM",
            "running unlocked (--on-failure warn)",
        ],
    );
}

#[test]
fn verbose_reports_one_line_with_flags_vmlck_and_time() {
    let probe = probe();
    let out = output(memlock_run([
        "-v".as_ref(),
        "--future".as_ref(),
        "--".as_ref(),
        probe.as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert_mentions(&line, &["locked MCL_CURRENT|MCL_FUTURE", "VmLck ", " ms"]);
    assert!(!line.contains("VmLck 0 B"), "{line}");
    assert!(out.stdout.is_empty(), "the shim never writes to stdout");

    let quiet = output(memlock_run([
        "--".as_ref(),
        probe.as_os_str(),
        "--exit".as_ref(),
        "0".as_ref(),
    ]));
    assert!(
        quiet.stderr.is_empty(),
        "silent without -v: {}",
        stderr_of(&quiet)
    );
}

/// What tests/probes/madvise.c reports of its locked mapping through the shim's madvise
/// (`--future` locked the mapping): the kernel refuses both advices (`-raw`), the wrapper
/// frees the pages of each (none resident, zeroes read back; a MADV_FREE it repeats frees at
/// once), keeps the pages around them, and hands back the kernel's EINVAL for an unaligned
/// address; the pages touched again are resident.
const MADVISE_WRAPPED: [&str; 7] = [
    "dontneed-raw EINVAL resident 8 of 8, kept 8 of 8",
    "dontneed ok resident 0 of 8, kept 0 of 8",
    "free-raw EINVAL resident 8 of 8, kept 8 of 8",
    "free ok resident 0 of 8, kept 0 of 8",
    "rest resident 8 of 8, kept 8 of 8",
    "unaligned EINVAL",
    "touched resident 24 of 24",
];

/// The same probe without the shim, locked by its own mlockall: the kernel's EINVAL for both,
/// through libc's madvise too, and every page kept.
const MADVISE_KERNEL: [&str; 7] = [
    "dontneed-raw EINVAL resident 8 of 8, kept 8 of 8",
    "dontneed EINVAL resident 8 of 8, kept 8 of 8",
    "free-raw EINVAL resident 8 of 8, kept 8 of 8",
    "free EINVAL resident 8 of 8, kept 8 of 8",
    "rest resident 8 of 8, kept 8 of 8",
    "unaligned EINVAL",
    "touched resident 24 of 24",
];

/// The smaps entries over [start, end): the kernel may merge the probe's mapping with a
/// neighbour of the same flags, or split it.
fn entries_over(pid: i32, start: u64, end: u64) -> Vec<Mapping> {
    smaps(pid)
        .into_iter()
        .filter(|m| m.start < end && m.end > start)
        .collect()
}

/// Takes tests/probes/madvise.c, started by `cmd`, through its steps, and checks after each
/// (mapped, advised, touched again) that every smaps entry over its mapping is locked (`lo`),
/// and at the end that they hold it all locked. Returns its report, a line per step.
fn madvise_steps(what: &str, cmd: Command) -> Vec<String> {
    let mut running = Running::start(cmd);
    let map = running.next_line();
    let (start, pages) = map
        .strip_prefix("map 0x")
        .and_then(|m| m.trim().split_once(' '))
        .and_then(|(addr, pages)| {
            Some((
                u64::from_str_radix(addr, 16).ok()?,
                pages.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("{what}: not a map line: {map:?}"));
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let end = start + pages * page;
    let mut report = Vec::new();
    // (step, the line that starts it, how many lines it reports)
    for (step, go, lines) in [
        ("mapped", None, 0),
        ("advised", Some("advise\n"), 6),
        ("touched", Some("touch\n"), 1),
    ] {
        if let Some(go) = go {
            running.send(go);
        }
        report.extend((0..lines).map(|_| running.next_line().trim_end().to_owned()));
        let entries = entries_over(running.pid, start, end);
        assert!(
            !entries.is_empty() && entries.iter().all(Mapping::locked_flag),
            "{what}: {step}: the mapping is not locked (no `lo`): {entries:#?}\n{report:#?}"
        );
        if step == "touched" {
            let locked: u64 = entries.iter().map(|m| m.bytes("Locked")).sum();
            assert!(
                locked >= end - start,
                "{what}: Locked {locked} over the {} bytes touched again: {entries:#?}",
                end - start
            );
        }
    }
    let out = running.finish();
    assert!(out.status.success(), "{what}: {}", stderr_of(&out));
    report
}

/// The shim's madvise (preload-shim/src/wrap.rs): the kernel refuses MADV_DONTNEED and
/// MADV_FREE on a locked range with EINVAL, and V8 and Chromium take that for a fatal error.
/// Through the wrapper both free the pages of part of a range `--future` locked, which stays
/// locked. The same probe locking itself, without the shim, gets the kernel's EINVAL: the
/// first run proves the wrapper, not the kernel.
#[test]
fn madvise_frees_part_of_a_locked_range_which_stays_locked() {
    let probe = compile("madvise.c", "madvise", &[]);
    let mut rows = vec![(
        "memlock-run --future, the shim's madvise",
        memlock_run(["--future".as_ref(), "--".as_ref(), probe.as_os_str()]),
        MADVISE_WRAPPED,
    )];
    let locking_itself = || {
        let mut cmd = Command::new(&probe);
        cmd.arg("--lock");
        cmd
    };
    // Its standard input closed at once, the probe locks itself and exits.
    let kernel = output(locking_itself());
    if kernel.status.code() == Some(77) {
        skip(format_args!(
            "the probe cannot lock itself here ({}); the kernel's own answer is not shown",
            stderr_of(&kernel).trim()
        ));
    } else {
        rows.push((
            "the probe locking itself, without the shim",
            locking_itself(),
            MADVISE_KERNEL,
        ));
    }
    for (what, cmd, expected) in rows {
        let report = madvise_steps(what, cmd);
        assert_eq!(
            report, expected,
            "{what}: the probe's report (left), and what it must be (right)"
        );
    }
}
