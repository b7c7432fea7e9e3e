//! A hostile tree against the exec gate itself (issue 19): an environment padded past what
//! the gate used to read, one that amplifies a string into gigabytes, names repeated, the
//! table of the shim's words flooded, the gate's listener taken and the gate traced. Each row
//! ends locked (lockreport says so from its own VmLck) or refused with a line, never a
//! program running unlocked in silence.
//!
//! The execs are the execve system call made directly, past the shim, which only the gate
//! judges: tests/probes/envflood.c (an environment built to order), wordflood.c (thousands of
//! threads saying the shim's word) and gatethief.c (what a process of the tree can do to the
//! gate).

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

fn lockreport_glibc() -> Option<PathBuf> {
    lockreport("gcc", &[], "lockreport-glibc")
}

/// `memlock-run [OPTIONS] -- envflood COUNT LENGTH PREFIX TAILS... -- PROGRAM`.
fn envflood(options: &[&str], count: usize, length: usize, prefix: &str, tails: &[&str]) -> Output {
    let program = lockreport_glibc().expect("gcc builds lockreport");
    let envflood = compile("envflood.c", "envflood", &[]);
    let mut args: Vec<&OsStr> = options.iter().map(OsStr::new).collect();
    let (count, length) = (count.to_string(), length.to_string());
    args.extend([
        OsStr::new("--"),
        envflood.as_os_str(),
        OsStr::new(&count),
        OsStr::new(&length),
        OsStr::new(prefix),
    ]);
    args.extend(tails.iter().map(OsStr::new));
    args.extend([OsStr::new("--"), program.as_os_str()]);
    output(memlock_run(args))
}

/// The gate's peak memory after the refused exec, from envflood's line (`VmHWM A -> B kB`).
fn gate_peak_kb(out: &Output) -> u64 {
    let err = stderr_of(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("envflood: execve:"))
        .unwrap_or_else(|| panic!("no envflood line in:\n{err}"));
    let after = line
        .rsplit("-> ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {line:?}"));
    assert!(after > 0, "the gate's VmHWM was not read: {line}");
    after as u64
}

const NOT_EXECUTING: &str = "memlock-run: not executing ";
const PAST_EXECVE: &str = "more than execve accepts";

/// Padded environment: 101,000 entries and then a second, empty LD_PRELOAD, which glibc's
/// ld.so takes (the last): the gate read 100,000 entries, saw one LD_PRELOAD naming the shim,
/// and let it run unlocked. Now it reads to the end and refuses the two; an LD_AUDIT there
/// too; the same padding without either runs locked.
#[test]
fn a_padded_environment_is_read_to_its_end() {
    if lockreport_glibc().is_none() {
        return;
    }
    let out = envflood(&[], 101_000, 3, "P=", &["LD_PRELOAD="]);
    assert_refused(
        &out,
        Refused::in_the_tree()
            .failing()
            .row("padded, LD_PRELOAD= last"),
        &[NOT_EXECUTING, "one LD_PRELOAD"],
    );
    let out = envflood(&[], 101_000, 3, "P=", &["LD_AUDIT=/nonexistent/audit.so"]);
    assert_refused(
        &out,
        Refused::in_the_tree()
            .failing()
            .row("padded, LD_AUDIT last"),
        &[NOT_EXECUTING, "LD_AUDIT"],
    );
    let out = envflood(&[], 101_000, 3, "P=", &[]);
    assert_locked(&out);
}

/// Environment amplification: 4,000 pointers to one 127 KiB string of a name the gate reads
/// whole (MEMLOCK_RUN_*): the gate copied every one (514 MB, 1.2 s) and then let the kernel
/// refuse it. Now it stops at execve's bound and refuses it with a line, holding a few MB; so
/// for one string longer than execve takes, and for more entries than it takes; under
/// --on-failure warn too (the kernel would not run it either).
#[test]
fn an_amplified_environment_is_refused_at_execves_bound() {
    if lockreport_glibc().is_none() {
        return;
    }
    let out = envflood(&[], 4000, 130_000, "MEMLOCK_RUN_PAD=", &[]);
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("4000 x 127 KiB"),
        &[
            NOT_EXECUTING,
            PAST_EXECVE,
            "6 MiB",
            "Argument list too long",
        ],
    );
    let peak = gate_peak_kb(&out);
    assert!(peak < 32 * 1024, "the gate's peak memory: {peak} kB");

    let out = envflood(&["--on-failure", "warn"], 4000, 130_000, "LD_PRELOAD=", &[]);
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("4000 x 127 KiB, warn"),
        &[NOT_EXECUTING, PAST_EXECVE, "Argument list too long"],
    );

    let out = envflood(&[], 1, 140_000, "MEMLOCK_RUN_PAD=", &[]);
    assert_refused(
        &out,
        Refused::in_the_tree()
            .failing()
            .row("one string of 137 KiB"),
        &[NOT_EXECUTING, "longer than execve accepts (128 KiB)"],
    );

    let out = envflood(&[], 790_000, 1, "P", &[]);
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("790,000 entries"),
        &[NOT_EXECUTING, "more than 786432 entries"],
    );
}

/// Names given twice: two LD_PRELOAD (ld.so of glibc takes the last, musl's the first), a
/// setting changed by a second entry (the shim applies them in order), a damaged second entry:
/// refused with a line; the same setting twice with this run's value runs locked.
#[test]
fn repeated_names_are_judged_as_their_consumers_read_them() {
    if lockreport_glibc().is_none() {
        return;
    }
    for (row, tail, says) in [
        (
            "LD_PRELOAD= after the shim's",
            "LD_PRELOAD=",
            "one LD_PRELOAD",
        ),
        (
            "LD_PRELOAD naming the shim twice",
            "LD_PRELOAD=/nonexistent/libmemlock_run_shim.so",
            "one LD_PRELOAD",
        ),
        ("a second MEMLOCK_RUN_FLAGS", "MEMLOCK_RUN_FLAGS=future", ""),
        (
            "a damaged second setting",
            "MEMLOCK_RUN_FLAGS=sometimes",
            "",
        ),
    ] {
        let out = envflood(&[], 0, 1, "P", &[tail]);
        let text = assert_refused(
            &out,
            Refused::in_the_tree().failing().row(row),
            &[NOT_EXECUTING, says],
        );
        assert!(
            text.contains("Operation not permitted"),
            "{row}: EPERM: {text}"
        );
    }
    let out = envflood(&[], 0, 1, "P", &["MEMLOCK_RUN_FLAGS=current"]);
    assert_locked(&out);
}

/// The shim's words flooded: 4,500 threads each say their next exec was judged and never
/// exec. The gate's table used to grow past its bound, reading every entry's /proc again at
/// each word (minutes for this row); now a word past the bound is refused (ENOSPC) with one
/// line, a word costs what it did, and an exec the gate reads is judged as ever: locked.
#[test]
fn a_flood_of_the_shims_words_is_refused_not_slowed_down() {
    let Some(program) = lockreport_glibc() else {
        return;
    };
    let wordflood = compile("wordflood.c", "wordflood", &["-pthread"]);
    let mut cmd = memlock_run([
        OsStr::new("--"),
        wordflood.as_os_str(),
        OsStr::new("4500"),
        OsStr::new("50"),
        program.as_os_str(),
    ]);
    cmd.stdin(std::process::Stdio::null());
    let out = run_within(&mut cmd, Duration::from_secs(60)).expect("run wordflood");
    assert_locked(&out);
    let err = stderr_of(&out);
    assert!(
        err.contains("the exec gate's table of the shim's words is full"),
        "{err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("wordflood: "))
        .unwrap_or_else(|| panic!("no wordflood line in:\n{err}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let refused: u32 = words[1].parse().expect("a count");
    assert!(refused >= 4500 - 4096, "{line}");
    assert!(line.contains("(errno 28)"), "ENOSPC: {line}");
    let median: u64 = words
        .iter()
        .position(|w| *w == "median")
        .and_then(|i| words[i + 1].parse().ok())
        .unwrap_or_else(|| panic!("no median in {line}"));
    assert!(median < 5000, "a word took {median} us: {line}");
}

/// gatethief's lines (`gatethief: WHAT: RESULT`) as (what, result), and the gate's uid; it
/// then execs lockreport (glibc's).
fn thief(run: RunAs, options: &[&str]) -> (Vec<(String, String)>, u32, Output) {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    let program = PROGRAM.get_or_init(|| {
        reachable_copy(
            &lockreport_glibc().expect("gcc builds lockreport"),
            "lockreport-hostile-gate",
        )
    });
    thief_then(run, options, &[], program)
}

/// `memlock-run OPTIONS -- gatethief THIEF_ARGS PROGRAM`, as `thief`.
fn thief_then(
    run: RunAs,
    options: &[&str],
    thief_args: &[&str],
    program: &std::path::Path,
) -> (Vec<(String, String)>, u32, Output) {
    // Copied once: a copy made again while another test runs it fails (ETXTBSY).
    static THIEF: OnceLock<PathBuf> = OnceLock::new();
    let thief = THIEF
        .get_or_init(|| reachable_copy(&compile("gatethief.c", "gatethief", &[]), "gatethief"));
    let mut args: Vec<&OsStr> = options.iter().map(OsStr::new).collect();
    args.extend([OsStr::new("--"), thief.as_os_str()]);
    args.extend(thief_args.iter().map(OsStr::new));
    args.push(program.as_os_str());
    let out = output(run.memlock_run(args));
    let text = stdout_of(&out);
    let mut uid = None;
    let mut results = Vec::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("gatethief: ")) {
        if let Some(rest) = line.strip_prefix("gate pid ") {
            uid = rest.split(" uid ").nth(1).and_then(|u| u.parse().ok());
        } else if let Some((what, result)) = line.split_once(": ") {
            results.push((what.to_owned(), result.to_owned()));
        }
    }
    let uid = uid.unwrap_or_else(|| panic!("no gate found:\n{text}{}", stderr_of(&out)));
    (results, uid, out)
}

fn result<'a>(results: &'a [(String, String)], what: &str) -> &'a str {
    results
        .iter()
        .find(|(w, _)| w == what)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("no {what} in {results:?}"))
}

/// Listener theft: an unprivileged gate ran as the tree's user and was dumpable, so a process
/// of the tree took its seccomp listener with pidfd_getfd (and could have answered its own
/// execs). Now the gate is non-dumpable from its fork: EPERM; and the exec after it is
/// judged as ever. A root gate of a `--user` run keeps root's identity.
#[test]
fn the_tree_cannot_take_the_gates_listener() {
    if skip_unprivileged_run("the thief runs as nobody") || lockreport_glibc().is_none() {
        return;
    }
    let (results, uid, out) = thief(as_nobody(), &[]);
    assert_eq!(uid, 65534, "{results:?}");
    assert_eq!(result(&results, "getfd"), "Operation not permitted");
    assert_locked(&out);

    let (results, uid, out) = thief(as_caller(), &["--user", "nobody"]);
    assert_eq!(uid, 0, "a root gate keeps its identity: {results:?}");
    assert_eq!(result(&results, "getfd"), "Operation not permitted");
    assert_locked(&out);
}

/// Ptrace of the gate: a process of an unprivileged tree could seize or attach the gate (and
/// so stop it, or change its answers) and read its memory. Now: EPERM and EACCES.
#[test]
fn the_tree_cannot_trace_the_gate() {
    if skip_unprivileged_run("the thief runs as nobody") || lockreport_glibc().is_none() {
        return;
    }
    for (run, options, row) in [
        (as_nobody(), &[][..], "nobody"),
        (
            as_caller(),
            &["--user", "nobody"][..],
            "root gate, --user nobody",
        ),
    ] {
        let (results, _, out) = thief(run, options);
        assert_eq!(
            result(&results, "seize"),
            "Operation not permitted",
            "{row}"
        );
        assert_eq!(
            result(&results, "attach"),
            "Operation not permitted",
            "{row}"
        );
        assert_eq!(result(&results, "mem"), "Permission denied", "{row}");
        assert_locked(&out);
    }
}

/// The gate's limit of open files lowered by the tree to each count from none to 24: wherever
/// the gate runs out of descriptors in its judgement (the task's status, its root, the
/// program, its loader, the shim), the exec of a program whose loader is the tree's own (a copy
/// of the system's ld.so, which would honour the preload: judged by what it is, it is not the
/// system's) is refused with a line, and never runs: with too few descriptors to look its
/// loader up, the gate once let it through unjudged. A program of the system's loader, at each
/// count, runs locked or is refused with a line.
#[test]
fn a_gate_starved_to_any_count_of_descriptors_lets_nothing_through_unjudged() {
    if skip_unprivileged_run("the thief runs as nobody") {
        return;
    }
    let (dir, program) = foreign_loader_program("lockreport-starved-loader");
    let program = reachable_copy(&program, "lockreport-starved-loader");
    let mut judged_whole = false;
    for most in 0..=24 {
        let starve = format!("--starve={most}");
        let (results, _, out) = thief_then(as_nobody(), &[], &[&starve], &program);
        assert_eq!(result(&results, "starve"), "LOWERED", "{most}: {results:?}");
        let stderr = stderr_of(&out);
        assert!(
            report(&out).is_none() && stderr.contains(NOT_EXECUTING),
            "{most} descriptors: refused with a line, not run: {:?} {stderr}",
            report(&out)
        );
        judged_whole |= stderr.contains("is not the system's");
    }
    assert!(
        judged_whole,
        "with descriptors enough, the loader is judged by what it is"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // A program of the system's loader, at each count: locked, or refused with a line.
    let Some(glibc) = lockreport_glibc() else {
        return;
    };
    let glibc = reachable_copy(&glibc, "lockreport-glibc-starved");
    let mut locked = false;
    for most in 0..=24 {
        let starve = format!("--starve={most}");
        let (_, _, out) = thief_then(as_nobody(), &[], &[&starve], &glibc);
        let line = report(&out);
        let stderr = stderr_of(&out);
        assert!(
            line.as_deref().is_some_and(|l| l.starts_with("locked "))
                || (line.is_none() && stderr.contains(NOT_EXECUTING)),
            "{most} descriptors: locked or refused with a line: {line:?} {stderr}"
        );
        locked |= line.is_some();
    }
    assert!(locked, "with descriptors enough, it runs locked");
}

/// The gate's limits lowered by the tree: prlimit(2) of another process asks only for its
/// user, which an unprivileged gate shares with its tree. With no descriptor left, the gate
/// took the task it could not read for one that had gone, and a static program ran unlocked.
/// Now what the gate cannot read is refused with a line; a root gate's limits stay its own.
#[test]
fn a_gate_starved_of_descriptors_refuses() {
    if skip_unprivileged_run("the thief runs as nobody") {
        return;
    }
    let Some(static_image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let static_image = reachable_copy(&static_image, "lockreport-static-hostile-gate");
    let (results, _, out) = thief_then(as_nobody(), &[], &["--starve"], &static_image);
    assert_eq!(result(&results, "starve"), "LOWERED", "{results:?}");
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("nobody"),
        &[NOT_EXECUTING, "cannot judge what it executes"],
    );

    let (results, _, out) = thief_then(
        as_caller(),
        &["--user", "nobody"],
        &["--starve"],
        &static_image,
    );
    assert_eq!(result(&results, "starve"), "Operation not permitted");
    assert_refused(
        &out,
        Refused::in_the_tree().failing().row("root gate"),
        &[NOT_EXECUTING, "made the execve system call itself"],
    );
}
