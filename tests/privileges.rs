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
    let running = Running::start(memlock_run_as_nobody(
        false,
        ["--", probe.to_str().unwrap()],
    ));
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

#[test]
fn a_too_low_limit_stops_the_program_with_the_cause_and_the_remedies() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_unless_memlock_hard_at_least(MIB, "the test sets --limit 1M")
    {
        return;
    }
    let probe = probe();
    let mark = marker("too-low");
    let out = output(memlock_run_as_nobody(
        false,
        [
            "--limit",
            "1M",
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &[
            "mlockall(MCL_CURRENT) failed with ENOMEM",
            "RLIMIT_MEMLOCK is 1 MiB",
            "--limit",
            "LimitMEMLOCK=",
            "ulimit -l",
            "AmbientCapabilities=CAP_IPC_LOCK",
        ],
    );
    assert!(!mark.exists(), "the program's main must not run unlocked");

    // At the hard limit --limit cannot help: the remedy names where the hard limit is set.
    let Some(hard) = hard_memlock() else { return };
    let out = output(memlock_run_as_nobody(
        false,
        [
            "--prefault",
            &format!("{}K", hard / KIB - 512),
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert_mentions(&line, &["ENOMEM", "the hard limit binds", "limits.conf"]);
    assert!(
        !line.contains("--limit"),
        "--limit cannot raise a hard limit: {line}"
    );
    assert!(!mark.exists(), "the program's main must not run unlocked");
}

#[test]
fn ambient_ipc_lock_locks_past_the_limit_and_is_the_only_capability() {
    if skip_unprivileged_run("runs memlock-run as nobody with ambient CAP_IPC_LOCK")
        || skip_unless_limit_binds()
    {
        return;
    }
    let probe = probe();
    let running = Running::start(memlock_run_as_nobody(
        true,
        [
            "--future",
            "--",
            probe.to_str().unwrap(),
            "--map",
            "32",
            "--touch",
            "32",
        ],
    ));
    let status = running.status();
    assert!(
        status.bytes("VmLck") >= 32 * MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    for set in ["CapAmb", "CapPrm", "CapEff"] {
        assert_eq!(status.caps(set), CAP_IPC_LOCK, "{set}: {}", status.get(set));
    }
    assert_eq!(status.ids("Uid"), [NOBODY; 4]);
    assert!(running.finish().status.success());
}

#[test]
fn a_limit_above_the_hard_limit_is_an_error_without_ipc_lock_and_a_note_with_it() {
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
    let out = output(memlock_run_as_nobody(
        false,
        [
            "--limit",
            &above,
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &[
            "is above the hard RLIMIT_MEMLOCK",
            "CAP_SYS_RESOURCE",
            "CAP_IPC_LOCK",
        ],
    );
    assert!(!mark.exists());

    let out = output(memlock_run_as_nobody(
        true,
        [
            "--limit",
            &above,
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
        ],
    ));
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

#[test]
fn user_is_refused_when_not_root() {
    if skip_unprivileged_run("runs memlock-run as nobody") {
        return;
    }
    let probe = probe();
    let mark = marker("user-not-root");
    let out = output(memlock_run_as_nobody(
        false,
        [
            "--user",
            "nobody",
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(&one_line(&out), &["--user needs root"]);
    assert!(!mark.exists());
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
            memlock_run_as_nobody(true, ["--", probe.to_str().unwrap()]),
            "as nobody with ambient CAP_IPC_LOCK",
        );
    }
}

#[test]
fn a_file_capability_on_memlock_run_reaches_the_target() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_without("setcap", "gives a copy of memlock-run CAP_IPC_LOCK")
        || skip_unless_limit_binds()
        || skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
    {
        return;
    }
    // A copy beside the shim, with the file capability of the package's opt-in mode.
    let name = format!("memlock-run-filecap-{}", std::process::id());
    let launcher = bin_dir().join(&name);
    let original = memlock_run_path();
    writing_executables(|| fs::copy(&original, &launcher)).expect("copy memlock-run");
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).expect("chmod");
    let setcap = output({
        let mut cmd = Command::new("setcap");
        cmd.arg("cap_ipc_lock+p").arg(&launcher);
        cmd
    });
    if !setcap.status.success() {
        let _ = fs::remove_file(&launcher);
        skip(format_args!(
            "setcap failed (file system without xattrs?): {}",
            stderr_of(&setcap).trim()
        ));
        return;
    }
    let probe = probe();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&launcher)
        .args([
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
    let out = running.finish();
    let _ = fs::remove_file(&launcher);
    assert!(
        status.bytes("VmLck") >= 32 * MIB,
        "VmLck {}",
        status.get("VmLck")
    );
    assert_eq!(status.caps("CapAmb"), CAP_IPC_LOCK);
    assert_eq!(status.caps("CapEff"), CAP_IPC_LOCK);
    assert!(out.status.success(), "{}", stderr_of(&out));
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

#[test]
fn user_is_refused_when_the_user_cannot_read_the_shim() {
    if skip_unless_root("--user is for root") {
        return;
    }
    // memlock-run and its shim in a directory only root may enter, as under /root: ld.so,
    // running as nobody, could not open the shim, and it skips a preload it cannot open.
    let dir = unique("private-install");
    let launcher = install_copy(&dir, 0o700, &shim_path());
    let probe = probe();
    let mark = marker("unreadable-shim");
    let out = output({
        let mut cmd = Command::new(&launcher);
        cmd.args([
            "--user",
            "nobody",
            "--",
            probe.to_str().unwrap(),
            "--mark",
            mark.to_str().unwrap(),
            "--exit",
            "0",
        ]);
        cmd
    });
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &["libmemlock_run_shim.so", "nobody", "cannot read"],
    );
    assert!(!mark.exists(), "the target must not run unlocked");
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
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&launcher)
        .args([
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
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                .arg(&launcher)
                .args(args);
            output(cmd)
        })
        .collect();
    let _ = fs::remove_file(&launcher);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &["set-user-ID", "COMMAND would inherit", "cap_ipc_lock+p"],
    );
    for other in others {
        assert_eq!(other.status.code(), Some(125), "{}", stderr_of(&other));
        assert!(other.stdout.is_empty(), "{}", stdout_of(&other));
        assert_mentions(&one_line(&other), &["set-user-ID"]);
    }
    assert!(
        !mark.exists(),
        "nothing may run with a root effective uid for nobody"
    );
}

#[test]
fn user_root_is_refused() {
    if skip_unless_root("--user is for root") {
        return;
    }
    for spec in ["root", "0", "0:0"] {
        let out = output(memlock_run(["--user", spec, "--", "/bin/true"]));
        assert_eq!(out.status.code(), Some(125), "{spec}: {}", stderr_of(&out));
        assert_mentions(&one_line(&out), &["is root", "CAP_IPC_LOCK alone"]);
    }
}

/// ld.so expands `$LIB` (and `$ORIGIN`, `$PLATFORM`) in LD_PRELOAD: an install path with a
/// `$` would name another file, ld.so would skip it, and the program would run unlocked.
#[test]
fn an_install_path_ld_so_would_expand_is_refused() {
    let dir = scratch().join(format!("lib$LIB-{}", std::process::id()));
    let launcher = install_copy(&dir, 0o755, &shim_path());
    let mark = marker("dollar-path");
    let out = output({
        let mut cmd = Command::new(&launcher);
        cmd.arg("--")
            .arg(probe())
            .arg("--mark")
            .arg(&mark)
            .args(["--exit", "0"]);
        cmd
    });
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(&one_line(&out), &["'$'", "$LIB", "plain path"]);
    assert!(!mark.exists(), "the target must not run unlocked");
}

/// A privileged memlock-run in a world-writable directory, sticky or not (/tmp): anyone could
/// put a root-owned library there under the shim's name by a hard link.
#[test]
fn a_privileged_memlock_run_refuses_a_shim_in_a_world_writable_directory() {
    if skip_unprivileged_run("runs memlock-run as nobody")
        || skip_without("setcap", "gives a copy of memlock-run CAP_IPC_LOCK")
        || skip_on_nosuid(bin_dir(), "file capabilities have no effect there")
    {
        return;
    }
    let dir = unique("sticky");
    // Root's own file under the shim's name, as a hard link would put it.
    let launcher = install_copy(&dir, 0o1777, Path::new("/bin/true"));
    let setcap = output({
        let mut cmd = Command::new("setcap");
        cmd.arg("cap_ipc_lock+p").arg(&launcher);
        cmd
    });
    if !setcap.status.success() {
        let _ = fs::remove_dir_all(&dir);
        skip(format_args!("setcap failed: {}", stderr_of(&setcap).trim()));
        return;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&launcher)
        .args(["--", "/bin/true"]);
    let out = output(cmd);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &["refusing to load the shim", "writable by others"],
    );
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
    let out = output(memlock_run_as_nobody(
        false,
        [
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
        ],
    ));
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

/// A shim its user cannot read is named as such, not as missing.
#[test]
fn an_unreadable_shim_is_reported_as_unreadable() {
    if skip_unprivileged_run("runs memlock-run as nobody") {
        return;
    }
    let dir = unique("unreadable-shim");
    let launcher = install_copy(&dir, 0o755, &shim_path());
    set_mode(&dir.join("libmemlock_run_shim.so"), 0o000);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&launcher)
        .args(["--", "/bin/true"]);
    let out = output(cmd);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert_mentions(
        &one_line(&out),
        &["cannot be read by uid 65534", "mode 644"],
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
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=+ipc_lock",
        "--ambient-caps=+ipc_lock",
        "--",
    ])
    .arg(&launcher)
    .args([
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
