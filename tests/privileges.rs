//! Limits, capabilities and users: what the target holds, read from /proc/PID/status.
//!
//! CI runs as root; the unprivileged cases switch to nobody with setpriv, with and without
//! an ambient CAP_IPC_LOCK. Machine facts these tests lean on: a hard RLIMIT_MEMLOCK well
//! below 32 MiB (8 MiB on Debian) and no CAP_SYS_RESOURCE needed.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const NOBODY: u32 = 65534;

/// True (after printing why) when the hard limit would not bind a 32 MiB lock.
fn skip_unless_limit_binds() -> bool {
    match hard_memlock() {
        Some(hard) if hard < 32 * MIB => false,
        other => {
            skip(format_args!("the hard RLIMIT_MEMLOCK is {other:?}, not below 32 MiB, so a lock past it cannot be shown"));
            true
        }
    }
}

#[test]
fn nobody_is_locked_within_the_default_limit() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_unless_memlock_hard_at_least(4 * MIB, "a small program needs about 3 MiB locked")
    {
        return;
    }
    let probe = probe();
    let running = Running::start(as_nobody().memlock_run(["--", probe.to_str().unwrap()]));
    let status = running.status();
    assert_eq!(status.ids("Uid"), [NOBODY; 4]);
    assert!(
        status.bytes("VmLck") >= MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    assert_eq!(status.caps("CapEff"), 0);
    assert_eq!(
        status.caps("CapAmb"),
        0,
        "nobody had no CAP_IPC_LOCK to pass on"
    );
    if let Some(hard) = hard_memlock() {
        assert!(status.bytes("VmLck") <= hard);
    }
    assert!(running.finish().status.success());
}

/// nobody locks 32 MiB past the 8 MiB limit with CAP_IPC_LOCK, the only capability
/// COMMAND holds, whether it came through the ambient set (`AmbientCapabilities=`) or as a
/// file capability on memlock-run (a copy beside the shim, with the file capability of the
/// package's opt-in mode).
#[test]
fn nobody_with_cap_ipc_lock_locks_past_the_limit_and_holds_nothing_else() {
    if skip_unprivileged_run("runs memlock-run as nobody with CAP_IPC_LOCK")
        || skip_unless_limit_binds()
    {
        return;
    }
    let mut rows: Vec<(&str, Command, Option<PathBuf>)> = vec![(
        "ambient CAP_IPC_LOCK",
        as_nobody().ambient_ipc_lock().memlock_run(["--future"]),
        None,
    )];
    if !skip_without("setcap", "gives a copy of memlock-run CAP_IPC_LOCK")
        && !skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
    {
        let launcher = bin_dir().join(format!("memlock-run-filecap-{}", std::process::id()));
        let original = memlock_run_path();
        writing_executables(|| fs::copy(&original, &launcher)).expect("copy memlock-run");
        fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).expect("chmod");
        if give_cap_ipc_lock(&launcher) {
            let mut cmd = as_nobody().program(&launcher);
            cmd.arg("--future");
            rows.push(("a file capability on memlock-run", cmd, Some(launcher)));
        } else {
            let _ = fs::remove_file(&launcher);
        }
    }
    let probe = probe();
    for (what, mut cmd, copy) in rows {
        cmd.arg("--")
            .arg(&probe)
            .args(["--map", "32", "--touch", "32"]);
        let running = Running::start(cmd);
        let status = running.status();
        let out = running.finish();
        if let Some(copy) = copy {
            let _ = fs::remove_file(copy);
        }
        assert!(
            status.bytes("VmLck") >= 32 * MIB,
            "{what}: VmLck {}",
            status.get("VmLck")
        );
        for set in ["CapAmb", "CapPrm", "CapEff"] {
            assert_eq!(
                status.caps(set),
                CAP_IPC_LOCK,
                "{what}: {set}: {}",
                status.get(set)
            );
        }
        assert_eq!(status.ids("Uid"), [NOBODY; 4], "{what}");
        assert!(out.status.success(), "{what}: {}", stderr_of(&out));
    }
}

/// A refusal as nobody, without CAP_IPC_LOCK: (what, memlock-run's options, what its line
/// says, what it must not say).
type NobodyRefusal = (
    &'static str,
    Vec<String>,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// What is refused for nobody, with the cause and the remedies, before the program's main
/// runs: a limit too low for the program, a pre-fault at the hard limit (where `--limit`
/// cannot help, and the remedy names where the hard limit is set), a `--limit` above the hard
/// limit, and `--user`.
#[test]
fn refusals_as_nobody_name_the_cause_and_the_remedies() {
    if skip_unprivileged_run("runs memlock-run as nobody") {
        return;
    }
    let mut rows: Vec<NobodyRefusal> = vec![(
        "--user without root",
        vec!["--user".into(), "nobody".into()],
        vec!["--user needs root"],
        vec![],
    )];
    if !skip_unless_memlock_hard_at_least(MIB, "the --limit 1M row is not tested") {
        rows.push((
            "a too low --limit",
            vec!["--limit".into(), "1M".into()],
            vec![
                "mlockall(MCL_CURRENT) failed with ENOMEM",
                "RLIMIT_MEMLOCK is 1 MiB",
                "--limit",
                "LimitMEMLOCK=",
                "ulimit -l",
                "AmbientCapabilities=CAP_IPC_LOCK",
            ],
            vec![],
        ));
    }
    match hard_memlock() {
        Some(hard) => {
            rows.push((
                "--prefault at the hard limit",
                vec!["--prefault".into(), format!("{}K", hard / KIB - 512)],
                vec!["ENOMEM", "the hard limit binds", "limits.conf"],
                // --limit cannot raise a hard limit.
                vec!["--limit"],
            ));
            rows.push((
                "--limit above the hard limit",
                vec!["--limit".into(), format!("{}", hard + 64 * MIB)],
                vec![
                    "is above the hard RLIMIT_MEMLOCK",
                    "CAP_SYS_RESOURCE",
                    "CAP_IPC_LOCK",
                ],
                vec![],
            ));
        }
        None => skip(format_args!(
            "the hard RLIMIT_MEMLOCK is unlimited; nothing is above it, and it binds no pre-fault"
        )),
    }
    let probe = probe();
    for (what, options, says, never) in rows {
        let mark = marker("nobody-refused");
        let mut cmd = as_nobody().memlock_run(&options);
        cmd.arg("--").arg(&probe).arg("--mark").arg(&mark);
        let line = assert_refused(
            &output(cmd),
            Refused::before_main().mark(&mark).row(what),
            &says,
        );
        for word in never {
            assert!(!line.contains(word), "{what}: {word:?} in: {line}");
        }
    }
}

/// With CAP_IPC_LOCK, a `--limit` above the hard limit is a note, and the program runs.
#[test]
fn a_limit_above_the_hard_limit_is_a_note_with_ipc_lock() {
    if skip_unprivileged_run("runs memlock-run as nobody") {
        return;
    }
    let Some(hard) = hard_memlock() else {
        skip(format_args!(
            "the hard RLIMIT_MEMLOCK is unlimited; nothing is above it"
        ));
        return;
    };
    let above = format!("{}", hard + 64 * MIB);
    let probe = probe();
    let mark = marker("above-hard");
    let out = output(as_nobody().ambient_ipc_lock().memlock_run([
        "--limit",
        &above,
        "--",
        probe.to_str().unwrap(),
        "--mark",
        mark.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &["memlock-run: note: --limit", "holds CAP_IPC_LOCK"],
    );
    assert!(mark.exists(), "with CAP_IPC_LOCK the program runs");
}

#[test]
fn a_root_target_gets_ipc_lock_in_its_ambient_set() {
    if skip_unless_root("root's CAP_IPC_LOCK is what is passed on") {
        return;
    }
    let probe = probe();
    let running = Running::start(memlock_run(["--", probe.to_str().unwrap()]));
    let status = running.status();
    let own = own_status();
    assert_eq!(
        status.caps("CapAmb"),
        own.caps("CapAmb") | CAP_IPC_LOCK,
        "CAP_IPC_LOCK, and nothing else, is added"
    );
    assert_eq!(status.caps("CapInh") & CAP_IPC_LOCK, CAP_IPC_LOCK);
    assert_eq!(status.caps("CapBnd"), own.caps("CapBnd"));
    assert!(running.finish().status.success());
}

/// Runs the probe with `--user SPEC` and checks the ID fields and capability sets.
fn check_user_switch(
    spec: &str,
    uid: u32,
    gid: u32,
    groups: &[u32],
) -> std::collections::HashMap<String, String> {
    let probe = probe();
    let running = Running::start(memlock_run(["--user", spec, "--", probe.to_str().unwrap()]));
    let status = running.status();
    assert_eq!(
        status.ids("Uid"),
        [uid; 4],
        "--user {spec}: real, effective, saved, fs uid"
    );
    assert_eq!(
        status.ids("Gid"),
        [gid; 4],
        "--user {spec}: real, effective, saved, fs gid"
    );
    let mut now = status.ids("Groups");
    now.sort_unstable();
    assert_eq!(now, groups, "--user {spec}: supplementary groups");
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(
            status.caps(set),
            CAP_IPC_LOCK,
            "--user {spec}: {set} {}",
            status.get(set)
        );
    }
    assert_eq!(
        status.caps("CapBnd"),
        own_status().caps("CapBnd"),
        "the bounding set is left alone"
    );
    assert!(
        status.bytes("VmLck") >= MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    let environ = running.environ();
    assert!(running.finish().status.success());
    environ
}

#[test]
fn user_switch_sets_every_id_the_groups_and_ipc_lock_alone() {
    if skip_unless_root("--user is for root") {
        return;
    }
    let (uid, gid, home, shell) = passwd("nobody");
    let environ = check_user_switch("nobody", uid, gid, &groups_of("nobody"));
    assert_eq!(environ.get("HOME"), Some(&home));
    assert_eq!(environ.get("USER").map(String::as_str), Some("nobody"));
    assert_eq!(environ.get("LOGNAME").map(String::as_str), Some("nobody"));
    assert_eq!(environ.get("SHELL"), Some(&shell));
}

#[test]
fn user_switch_takes_a_group_and_numeric_ids() {
    if skip_unless_root("--user is for root") {
        return;
    }
    let (uid, _, _, _) = passwd("nobody");
    let out = output({
        let mut cmd = Command::new("getent");
        cmd.args(["group", "nogroup"]);
        cmd
    });
    let nogroup: u32 = String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .expect("a nogroup group");
    // The named group replaces the primary group; the user's other groups stay.
    let mut groups = groups_of("nobody");
    groups.retain(|&g| g != passwd("nobody").1);
    groups.push(nogroup);
    groups.sort_unstable();
    groups.dedup();
    check_user_switch("nobody:nogroup", uid, nogroup, &groups);
    check_user_switch(&format!("{uid}:{nogroup}"), uid, nogroup, &groups);
}

const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_MODULE: u64 = 1 << 16;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// What the caller of the next tests leaves in its inheritable set, as `capsh --inh=` or a root
/// unit's `AmbientCapabilities=` leave capabilities there, and how it narrows its bounding set.
const CALLER_INHERITABLE: &str = "+net_raw,+sys_admin";
const CALLER_BOUNDING: &str = "-sys_module";

/// The tests' user (root) with `CALLER_INHERITABLE` and `CALLER_BOUNDING`, and the bounding
/// set it then has; None (after a skip line) where the tests' user cannot start so.
fn caller_with_capabilities_to_spare(why: &str) -> Option<(RunAs, u64)> {
    if skip_unprivileged_run(why) {
        return None;
    }
    let own = own_status();
    let inheritable = CAP_NET_RAW | CAP_SYS_ADMIN;
    if own.caps("CapPrm") & inheritable != inheritable || own.caps("CapBnd") & CAP_SYS_MODULE == 0 {
        skip(format_args!(
            "the tests' user lacks CAP_NET_RAW or CAP_SYS_ADMIN (CapPrm {}), or its bounding set \
             CAP_SYS_MODULE (CapBnd {}); {why}",
            own.get("CapPrm"),
            own.get("CapBnd")
        ));
        return None;
    }
    let caller = as_caller()
        .inheritable(CALLER_INHERITABLE)
        .bounding_set(CALLER_BOUNDING);
    Some((caller, own.caps("CapBnd") & !CAP_SYS_MODULE))
}

/// `--user` sets every capability set of COMMAND but the bounding set to CAP_IPC_LOCK alone,
/// whatever its caller left inheritable, and leaves the bounding set as the caller gave it
/// (as setpriv, su and systemd's `User=` do; docs/privileges.md says why).
#[test]
fn user_switch_gives_ipc_lock_alone_whatever_the_caller_left_inheritable() {
    let Some((caller, bounding)) =
        caller_with_capabilities_to_spare("starts --user with inheritable capabilities")
    else {
        return;
    };
    let (uid, gid, _, _) = passwd("nobody");
    let probe = probe();
    let running =
        Running::start(caller.memlock_run(["--user", "nobody", "--", probe.to_str().unwrap()]));
    let status = running.status();
    let out = running.finish();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        status.ids("Uid"),
        [uid; 4],
        "real, effective, saved, fs uid"
    );
    assert_eq!(
        status.ids("Gid"),
        [gid; 4],
        "real, effective, saved, fs gid"
    );
    // The kernel sets the effective set to the ambient one at the exec of a program without
    // file capabilities: CAP_IPC_LOCK, effective at once.
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(
            status.caps(set),
            CAP_IPC_LOCK,
            "{set} of COMMAND is {}, not CAP_IPC_LOCK alone (0000000000004000); memlock-run was \
             started with {CALLER_INHERITABLE} inheritable",
            status.get(set)
        );
    }
    assert_eq!(
        status.caps("CapBnd"),
        bounding,
        "CapBnd of COMMAND is {}, not the bounding set memlock-run was started with ({bounding:016x})",
        status.get("CapBnd")
    );
}

/// What a process's inheritable set does: a program with inheritable file capabilities
/// (`cap_sys_admin,cap_net_raw+ei`) is given those of them its executor holds inheritable
/// (capabilities(7): P'(permitted) = P(inheritable) & F(inheritable) | ...). Executed by the
/// COMMAND of `--user nobody`, whose inheritable set is CAP_IPC_LOCK alone, it gets nothing (a
/// file capability clears the ambient set too), whatever memlock-run's caller held inheritable.
/// The first row, the same exec under setpriv alone, shows that the file capabilities work here.
#[test]
fn a_program_executed_under_user_gains_nothing_from_inheritable_file_capabilities() {
    let why = "starts --user with inheritable capabilities";
    let Some((caller, _)) = caller_with_capabilities_to_spare(why) else {
        return;
    };
    if skip_without(
        "setcap",
        "gives a copy of the probe inheritable file capabilities",
    ) || skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
    {
        return;
    }
    let program = probe_copy("probe-inheritable-file-caps");
    set_mode(&program, 0o755);
    let setcap = output({
        let mut cmd = Command::new("setcap");
        cmd.arg("cap_sys_admin,cap_net_raw+ei").arg(&program);
        cmd
    });
    if !setcap.status.success() {
        let _ = fs::remove_file(&program);
        skip(format_args!(
            "setcap failed (file system without xattrs?): {}",
            stderr_of(&setcap).trim()
        ));
        return;
    }
    let execvia = compile("execvia.c", "execvia", &[]);
    let mut setpriv_alone = as_nobody()
        .inheritable(CALLER_INHERITABLE)
        .bounding_set(CALLER_BOUNDING)
        .program(&execvia);
    setpriv_alone.arg("execve").arg(&program);
    // --no-inherit: an inheriting run refuses to execute a file-capability program, and here
    // COMMAND executes it as the kernel will.
    let mut under_user = caller.memlock_run(["--no-inherit", "--user", "nobody", "--"]);
    under_user.arg(&execvia).arg("execve").arg(&program);
    // (what, the command, the program's permitted and effective sets)
    let rows = [
        (
            "setpriv --reuid=nobody, the inheritable set kept",
            setpriv_alone,
            CAP_NET_RAW | CAP_SYS_ADMIN,
        ),
        ("memlock-run --no-inherit --user nobody", under_user, 0),
    ];
    let mut seen = Vec::new();
    for (what, cmd, expected) in rows {
        let running = Running::start(cmd);
        seen.push((what, running.status(), expected));
        let out = running.finish();
        assert!(out.status.success(), "{what}: {}", stderr_of(&out));
    }
    let _ = fs::remove_file(&program);
    for (what, status, expected) in seen {
        assert_eq!(status.ids("Uid"), [NOBODY; 4], "{what}");
        for set in ["CapPrm", "CapEff"] {
            assert_eq!(
                status.caps(set),
                expected,
                "{what}: {set} of the program with cap_sys_admin,cap_net_raw+ei is {}, not \
                 {expected:016x}: the inheritable set it was executed with is {}",
                status.get(set),
                status.get("CapInh")
            );
        }
    }
}

#[test]
fn the_environment_cannot_choose_the_shim_or_its_settings() {
    let probe = probe();
    let extra = compile("extra_preload.c", "extra_preload.so", &["-shared", "-fPIC"]);
    let shim = fs::canonicalize(shim_path()).expect("shim path");
    let check = |mut cmd: Command, what: &str| {
        cmd.env("LD_PRELOAD", &extra)
            .env("MEMLOCK_RUN_FLAGS", "future")
            .env("MEMLOCK_RUN_ON_FAILURE", "warn")
            .env("MEMLOCK_RUN_INHERIT", "0")
            .env("MEMLOCK_RUN_SMUGGLED", "1");
        let running = Running::start(cmd);
        let environ = running.environ();
        assert_eq!(
            environ.get("MEMLOCK_RUN_FLAGS").map(String::as_str),
            Some("current"),
            "{what}"
        );
        assert_eq!(
            environ.get("MEMLOCK_RUN_ON_FAILURE").map(String::as_str),
            Some("exit"),
            "{what}"
        );
        assert_eq!(
            environ.get("MEMLOCK_RUN_INHERIT").map(String::as_str),
            Some("1"),
            "{what}"
        );
        assert_eq!(environ.get("MEMLOCK_RUN_SMUGGLED"), None, "{what}");
        let preload = format!("{}:{}", extra.display(), shim.display());
        assert_eq!(
            environ.get("LD_PRELOAD"),
            Some(&preload),
            "{what}: the user's preload is kept, first"
        );
        let maps = running.maps();
        assert!(
            maps.contains(shim.to_str().unwrap()),
            "{what}: the launcher's own shim is loaded"
        );
        assert!(
            maps.contains(extra.to_str().unwrap()),
            "{what}: the user's library is loaded"
        );
        assert!(running.finish().status.success());
    };
    check(
        memlock_run(["--", probe.to_str().unwrap()]),
        "as the caller",
    );
    if !skip_unprivileged_run("the ambient case runs memlock-run as nobody with CAP_IPC_LOCK") {
        check(
            as_nobody()
                .ambient_ipc_lock()
                .memlock_run(["--", probe.to_str().unwrap()]),
            "as nobody with ambient CAP_IPC_LOCK",
        );
    }
}

/// Gives a copy of memlock-run CAP_IPC_LOCK as a permitted file capability, as the
/// package's opt-in mode does; false (after a skip line) where setcap fails here.
fn give_cap_ipc_lock(launcher: &Path) -> bool {
    let setcap = output({
        let mut cmd = Command::new("setcap");
        cmd.arg("cap_ipc_lock+p").arg(launcher);
        cmd
    });
    if !setcap.status.success() {
        skip(format_args!(
            "setcap failed (file system without xattrs?): {}",
            stderr_of(&setcap).trim()
        ));
    }
    setcap.status.success()
}

/// memlock-run installed in `dir` (made with `mode`), with `shim` beside it under the shim's
/// name: the layouts an install can be found in. Returns the launcher's path.
fn install_copy(dir: &Path, mode: u32, shim: &Path) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    set_mode(dir, mode);
    let launcher = dir.join("memlock-run");
    let original = memlock_run_path();
    writing_executables(|| fs::copy(&original, &launcher)).expect("copy memlock-run");
    fs::copy(shim, dir.join("libmemlock_run_shim.so")).expect("copy the shim");
    launcher
}

/// An install of memlock-run that it refuses to run from: `memlock-run` and a file under the
/// shim's name in a directory of its own, and who runs it.
struct Install {
    what: &'static str,
    /// True (after a skip line) where the row cannot be tested here.
    skip: fn() -> bool,
    /// The directory's name in the scratch dir, and its mode.
    dir: &'static str,
    mode: u32,
    /// The file under the shim's name, and the mode it is given.
    shim: fn() -> PathBuf,
    shim_mode: Option<u32>,
    /// The copy of memlock-run gets CAP_IPC_LOCK as a permitted file capability (a
    /// privileged memlock-run, as the package's opt-in mode makes it).
    file_capability: bool,
    nobody: bool,
    options: &'static [&'static str],
    says: &'static [&'static str],
}

const INSTALLS: [Install; 4] = [
    // A directory only root may enter, as under /root: ld.so, running as nobody, could not
    // open the shim, and it skips a preload it cannot open.
    Install {
        what: "--user, the shim in a directory only root may enter",
        skip: || skip_unless_root("--user is for root"),
        dir: "private-install",
        mode: 0o700,
        shim: shim_path,
        shim_mode: None,
        file_capability: false,
        nobody: false,
        options: &["--user", "nobody"],
        says: &["libmemlock_run_shim.so", "nobody", "cannot read"],
    },
    // ld.so expands `$LIB` (and `$ORIGIN`, `$PLATFORM`) in LD_PRELOAD: an install path with
    // a `$` would name another file, ld.so would skip it, and the program would run unlocked.
    Install {
        what: "a path ld.so would expand",
        skip: || false,
        dir: "lib$LIB",
        mode: 0o755,
        shim: shim_path,
        shim_mode: None,
        file_capability: false,
        nobody: false,
        options: &[],
        says: &["'$'", "$LIB", "plain path"],
    },
    // A privileged memlock-run in a world-writable directory, sticky or not (/tmp): anyone
    // could put a root-owned library there under the shim's name by a hard link (here root's
    // own /bin/true).
    Install {
        what: "a privileged memlock-run in a world-writable directory",
        skip: || {
            skip_unprivileged_run("runs memlock-run as nobody")
                || skip_without("setcap", "gives a copy of memlock-run CAP_IPC_LOCK")
                || skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
        },
        dir: "sticky",
        mode: 0o1777,
        shim: || PathBuf::from("/bin/true"),
        shim_mode: None,
        file_capability: true,
        nobody: true,
        options: &[],
        says: &["refusing to load the shim", "writable by others"],
    },
    // A shim its user cannot read is named as such, not as missing.
    Install {
        what: "a shim its user cannot read",
        skip: || skip_unprivileged_run("runs memlock-run as nobody"),
        dir: "unreadable-shim",
        mode: 0o755,
        shim: shim_path,
        shim_mode: Some(0o000),
        file_capability: false,
        nobody: true,
        options: &[],
        says: &["cannot be read by uid 65534", "mode 644"],
    },
];

#[test]
fn installs_memlock_run_refuses_to_run_from() {
    let probe = probe();
    for row in INSTALLS {
        let what = row.what;
        if (row.skip)() {
            continue;
        }
        let dir = unique(row.dir);
        let launcher = install_copy(&dir, row.mode, &(row.shim)());
        if let Some(mode) = row.shim_mode {
            set_mode(&dir.join("libmemlock_run_shim.so"), mode);
        }
        if row.file_capability && !give_cap_ipc_lock(&launcher) {
            let _ = fs::remove_dir_all(&dir);
            continue;
        }
        let who = if row.nobody { as_nobody() } else { as_caller() };
        let mut cmd = who.program(&launcher);
        let mark = marker("install");
        cmd.args(row.options)
            .arg("--")
            .arg(&probe)
            .arg("--mark")
            .arg(&mark)
            .args(["--exit", "0"]);
        let out = output(cmd);
        let _ = fs::remove_dir_all(&dir);
        let line = assert_refused(&out, Refused::before_main().mark(&mark).row(what), row.says);
        assert!(line.starts_with("memlock-run: "), "{what}: {line}");
    }
}

#[test]
fn a_set_user_id_memlock_run_refuses_to_run_anything() {
    if skip_unprivileged_run("runs a set-user-ID copy of memlock-run as nobody")
        || skip_on_nosuid(bin_dir(), "set-user-ID bits have no effect there")
    {
        return;
    }
    // Its target would start with effective uid root and real uid nobody: root for anyone,
    // and secure-execution mode, where ld.so drops LD_PRELOAD and it would run unlocked.
    let launcher = bin_dir().join(format!("memlock-run-setuid-{}", std::process::id()));
    let original = memlock_run_path();
    writing_executables(|| fs::copy(&original, &launcher)).expect("copy memlock-run");
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let probe = probe();
    let mark = marker("setuid-launcher");
    let mut cmd = as_nobody().program(&launcher);
    cmd.args([
        "--",
        probe.to_str().unwrap(),
        "--mark",
        mark.to_str().unwrap(),
        "--exit",
        "0",
    ]);
    let out = output(cmd);
    // Nor may it read other users' processes or files with that privilege.
    let others: Vec<Output> = [&["--status", "1"][..], &["--check", "--", "/bin/true"]]
        .into_iter()
        .map(|args| {
            let mut cmd = as_nobody().program(&launcher);
            cmd.args(args);
            output(cmd)
        })
        .collect();
    let _ = fs::remove_file(&launcher);
    // Nothing may run with a root effective uid for nobody.
    assert_refused(
        &out,
        Refused::before_main().mark(&mark),
        &["set-user-ID", "COMMAND would inherit", "cap_ipc_lock+p"],
    );
    for other in others {
        assert_refused(&other, Refused::before_main(), &["set-user-ID"]);
        assert!(other.stdout.is_empty(), "{}", stdout_of(&other));
    }
}

#[test]
fn user_root_is_refused() {
    if skip_unless_root("--user is for root") {
        return;
    }
    for spec in ["root", "0", "0:0"] {
        let out = output(memlock_run(["--user", spec, "--", "/bin/true"]));
        let line = assert_refused(
            &out,
            Refused::before_main().row(spec),
            &["is root", "CAP_IPC_LOCK alone"],
        );
        assert!(line.contains(spec), "{spec}: {line}");
    }
}

/// The shim's failure line names the program by its argv[0], which the program's parent
/// chose: however long, the line keeps its end (the remedy), and no control byte of it
/// reaches the terminal.
#[test]
fn a_long_or_hostile_program_name_keeps_the_whole_message_and_no_control_bytes() {
    if skip_unprivileged_run("the limit binds an unprivileged user only")
        || skip_without("bash", "bash's exec -a sets the name")
    {
        return;
    }
    let name = format!("evil-\u{1b}[31m-{}", "x".repeat(3000));
    let probe = probe();
    let out = output(as_nobody().memlock_run([
        "--on-failure",
        "warn",
        "--limit",
        "64K",
        "--",
        "bash",
        "-c",
        "exec -a \"$1\" \"$2\" --exit 0",
        "bash",
        &name,
        probe.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    let line = stderr
        .lines()
        .find(|l| l.contains("evil-"))
        .unwrap_or_else(|| panic!("no line names the program: {stderr}"));
    assert!(!out.stderr.contains(&0x1b), "a raw escape reached stderr");
    assert!(
        line.contains("evil-\\x1b[31m-xxx"),
        "escaped: {}",
        &line[..80]
    );
    assert!(
        line.ends_with("running unlocked (--on-failure warn)"),
        "the end of the line is kept: ...{}",
        &line[line.len().saturating_sub(120)..]
    );
}
/// A build of memlock-run in a directory under /tmp (writable by others above it), as a
/// user's own checkout is: `name` tells the runs apart; `owner` owns the directory and the
/// files (a user-owned build), or root does.
fn build_under_tmp(name: &str, owner: Option<(u32, u32)>) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/memlock-run-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let launcher = install_copy(&dir, 0o755, &shim_path());
    if let Some((uid, gid)) = owner {
        for path in [&dir, &launcher, &dir.join("libmemlock_run_shim.so")] {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
        }
    }
    launcher
}

/// systemd's `User=` with `AmbientCapabilities=CAP_IPC_LOCK`, starting a user's own build
/// under /tmp: the capability is the caller's own, not one memlock-run's file gave it, so
/// the build is used as it is for that user without it (issue 23), and the lock goes past
/// the limit. The file-capability mode still refuses such a directory (the test above).
#[test]
fn ambient_ipc_lock_from_a_user_owned_build_under_tmp_locks_past_the_limit() {
    if skip_unprivileged_run("runs memlock-run as nobody with ambient CAP_IPC_LOCK")
        || skip_unless_limit_binds()
    {
        return;
    }
    let launcher = build_under_tmp("ambient", Some((NOBODY, NOBODY)));
    let dir = launcher.parent().unwrap().to_owned();
    let probe = probe();
    let mut cmd = as_nobody().ambient_ipc_lock().program(&launcher);
    cmd.args([
        "--future",
        "--",
        probe.to_str().unwrap(),
        "--map",
        "32",
        "--touch",
        "32",
    ]);
    let running = Running::start(cmd);
    let status = running.status();
    let maps = running.maps();
    let out = running.finish();
    let _ = fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        status.bytes("VmLck") >= 32 * MIB,
        "VmLck {}: {}",
        status.get("VmLck"),
        stderr_of(&out)
    );
    assert_eq!(status.caps("CapAmb"), CAP_IPC_LOCK);
    assert!(
        maps.contains(&format!("{}/libmemlock_run_shim.so", dir.display())),
        "the build's own shim is loaded"
    );
}

/// Inside `memlock-run --user nobody` started by root from a build under /tmp, a static
/// program the shell executes is sent back through that memlock-run, which now runs as
/// nobody with ambient CAP_IPC_LOCK: it is the caller's capability, so the nested run locks
/// the program instead of refusing the shim's directory as if it were privileged.
#[test]
fn a_nested_run_inside_user_from_a_build_under_tmp_locks_what_it_is_sent() {
    if skip_unless_root("--user is for root") {
        return;
    }
    let Some(image) = lockreport("gcc", &["-static"], "lockreport-static") else {
        return;
    };
    let image = reachable_copy(&image, "lockreport-static-nested-user");
    let launcher = build_under_tmp("nested-user", None);
    let mut cmd = Command::new(&launcher);
    cmd.args(["--user", "nobody", "--", "/bin/sh", "-c"])
        .arg(format!("exec {}", image.display()));
    let out = output(cmd);
    let _ = fs::remove_dir_all(launcher.parent().unwrap());
    let stderr = stderr_of(&out);
    assert!(
        !stderr.contains("privileges its caller does not have"),
        "a caller's own capability is named as memlock-run's privilege: {stderr}"
    );
    assert_locked(&out);
}

/// A capability held in a user namespace of the task's own (`unshare -r`, rootless
/// containers) is that namespace's: setrlimit(2) asks for CAP_SYS_RESOURCE and mlock(2) for
/// CAP_IPC_LOCK in the initial one. memlock-run, started by the shim inside such a namespace for
/// a static program, must plan with the limits it really has, not refuse for a hard limit it
/// believes it may raise; and the same program executed past the shim is refused with a line.
#[test]
fn in_a_user_namespace_of_its_own_a_static_program_is_locked_or_refused_with_a_line() {
    let probe = as_nobody()
        .program("unshare")
        .args(["-Ur", "true"])
        .output();
    if !probe.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!("SKIPPED: nobody cannot make a user namespace here (unshare -Ur: {probe:?})");
        return;
    }
    let Some(lockreport) = lockreport("gcc", &["-static"], "lockreport-static") else {
        eprintln!("SKIPPED: no static glibc to build a static program with");
        return;
    };
    let rawexec = compile("rawexec.c", "rawexec", &[]);
    // A directory of the namespace's root (nobody outside), 700: the program is reached
    // through it, as the tree's own files are. Then 000: only the namespace's root, with the
    // namespace's CAP_DAC_OVERRIDE, may enter it, and the gate, which cannot take that on,
    // cannot look: a system call made past the shim is refused for it, not let through.
    let script = format!(
        "d=$(mktemp -d) && cp {lockreport} \"$d/s\" && chmod $MODE \"$d\" && {{ $RUN \"$d/s\"; echo status=$?; }}; chmod 700 \"$d\"; rm -rf \"$d\"",
        lockreport = lockreport.display()
    );
    for (how, run, mode) in [
        ("through libc", "", "700"),
        ("by the system call", rawexec.to_str().unwrap(), "700"),
        ("through libc, from a directory of mode 000", "", "000"),
        (
            "by the system call, from a directory of mode 000",
            rawexec.to_str().unwrap(),
            "000",
        ),
    ] {
        let mut cmd = as_nobody()
            .limit(CI_MEMLOCK)
            .memlock_run(["--", "unshare", "-Ur", "sh", "-c", &script]);
        cmd.env("RUN", run).env("MODE", mode);
        let out = output(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = stderr_of(&out);
        if run.is_empty() {
            // The shim sends it through memlock-run, which locks it with ptrace.
            assert!(
                stdout.contains("locked VmLck=") && stdout.contains("status=0"),
                "{how}: locked:\n{stdout}\n{stderr}"
            );
            assert!(!stderr.contains("RLIMIT_MEMLOCK"), "{how}: {stderr}");
        } else {
            assert!(
                !stdout.contains("UNLOCKED") && stdout.contains("status=127"),
                "{how}: not run:\n{stdout}\n{stderr}"
            );
            let why = if mode == "000" {
                "it cannot be read to be judged"
            } else {
                "statically linked"
            };
            assert!(
                stderr.contains("memlock-run: not executing ") && stderr.contains(why),
                "{how}: refused with the gate's line: {stderr}"
            );
        }
    }
}
