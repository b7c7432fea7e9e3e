//! `--no-dump`, and the doors by which a locked program's memory can still leave RAM.
//!
//! Locking keeps pages out of swap. The same bytes can leave the process by other doors:
//! a core dump when it crashes, another process of the same user reading /proc/PID/mem or
//! attaching with ptrace, hibernation writing all of RAM to disk, and the pages that are not
//! locked going to an unencrypted swap device. `--no-dump` closes the first two from
//! outside: RLIMIT_CORE 0, set here before exec (rlimits survive execve, so this holds for
//! every locking method), and PR_SET_DUMPABLE 0, which execve resets and which is therefore
//! set inside the new image by whatever runs there first (the shim's constructor; an
//! injecting locker). The decision travels as [`memlock_run_protocol::Config::no_dump`].
//!
//! The other doors belong to the administrator; `--check` reports them with what to do
//! ([`findings`]). This module reads /proc and /sys and changes nothing but RLIMIT_CORE.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::resource::{setrlimit, Resource};

use crate::check::{Finding, Verdict};
use crate::limits::{self, Rlimit};
use crate::size::Limit;

/// RLIMIT_CORE 0, soft and hard (COMMAND cannot raise a hard limit without
/// CAP_SYS_RESOURCE), read back.
pub fn forbid_core_dumps() -> Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context(
        "--no-dump: cannot set RLIMIT_CORE to 0, so a crash could write a core file; lowering a limit is always \
         allowed, so something in this environment (a seccomp filter?) forbids setrlimit: run without it",
    )?;
    let now = limits::get(Resource::RLIMIT_CORE)?;
    let zero = Rlimit {
        soft: Limit::Bytes(0),
        hard: Limit::Bytes(0),
    };
    if now != zero {
        bail!(
            "--no-dump: RLIMIT_CORE reads {now} after setting it to 0; refusing to run COMMAND with core dumps possible"
        );
    }
    Ok(())
}

/// The `--dry-run` line. `by_ptrace`: the new image is made non-dumpable from outside, by
/// the injecting helper, not by the shim; `shim_in_execs`: the shim stays in the
/// environment of the programs COMMAND executes (inheritance), so it sets the flag there.
pub fn plan_text(no_dump: bool, by_ptrace: bool, shim_in_execs: bool) -> String {
    if !no_dump {
        return "allowed (no --no-dump): RLIMIT_CORE unchanged, COMMAND dumpable".to_owned();
    }
    let setter = if by_ptrace {
        "the ptrace helper makes COMMAND call prctl(PR_SET_DUMPABLE, 0) before its first instruction"
    } else {
        "the shim sets PR_SET_DUMPABLE 0 in COMMAND before its code runs"
    };
    let execs = if shim_in_execs {
        "and again in every program COMMAND executes"
    } else {
        "programs COMMAND executes are dumpable again (execve resets the flag) but keep RLIMIT_CORE 0"
    };
    format!("none: RLIMIT_CORE 0 (soft and hard) before exec; {setter}; {execs}")
}

/// What `--check` says about the doors besides locking; `as_root`: COMMAND will run as root.
pub fn findings(no_dump: bool, future: bool, as_root: bool) -> Vec<Finding> {
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    let devices: Vec<SwapDevice> = swap_names(&swaps)
        .into_iter()
        .map(|name| {
            let kind = swap_kind(&name, Path::new("/sys"));
            SwapDevice { name, kind }
        })
        .collect();
    let zswap = fs::read_to_string("/sys/module/zswap/parameters/enabled")
        .is_ok_and(|v| matches!(v.trim(), "Y" | "1"));
    let core = limits::get(Resource::RLIMIT_CORE).ok();
    vec![
        swap_finding(&devices, zswap, future),
        hibernation_finding(
            fs::read_to_string("/sys/power/state").ok().as_deref(),
            fs::read_to_string("/sys/power/disk").ok().as_deref(),
            &fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            fs::read_to_string("/sys/power/resume").ok().as_deref(),
            &devices,
        ),
        core_finding(
            fs::read_to_string("/proc/sys/kernel/core_pattern")
                .ok()
                .as_deref(),
            core,
            no_dump,
        ),
        ptrace_finding(
            fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
                .ok()
                .as_deref(),
            no_dump,
            as_root,
        ),
    ]
}

fn finding(verdict: Verdict, topic: &'static str, text: String, remedy: Option<&str>) -> Finding {
    Finding {
        verdict,
        topic,
        text,
        remedy: remedy.map(str::to_owned),
    }
}

/// What a swap area is made of, as far as secrets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapKind {
    /// dm-crypt somewhere beneath it (a `CRYPT-` device-mapper UUID).
    Encrypted,
    /// zram: compressed RAM, never written to disk.
    Ram,
    Unencrypted,
    /// Its device could not be found in /sys.
    Unknown,
}

#[derive(Debug)]
pub struct SwapDevice {
    pub name: String,
    pub kind: SwapKind,
}

/// The first column of /proc/swaps (spaces in names are escaped as `\040`).
fn swap_names(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| name.replace("\\040", " "))
        .collect()
}

/// A swap partition's own device, or for a swap file the device of its filesystem, and the
/// devices under it (`slaves/`: LVM over dm-crypt, a partition of an encrypted disk), looked
/// up in `sys`/dev/block/MAJOR:MINOR.
pub fn swap_kind(name: &str, sys: &Path) -> SwapKind {
    if Path::new(name)
        .file_name()
        .and_then(|f| f.to_str())
        .is_some_and(|f| f.starts_with("zram"))
    {
        return SwapKind::Ram;
    }
    let Ok(meta) = fs::metadata(name) else {
        return SwapKind::Unknown;
    };
    let dev = if meta.file_type().is_block_device() {
        meta.rdev()
    } else {
        meta.dev()
    };
    let node = sys.join(format!(
        "dev/block/{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    ));
    match fs::canonicalize(&node) {
        Ok(dir) => block_kind(&dir, 0),
        Err(_) => SwapKind::Unknown,
    }
}

/// Encrypted if this block device or any beneath it is a dm-crypt target. A partition's
/// `slaves/` is empty; its disk is its parent directory in /sys.
fn block_kind(dir: &Path, depth: u32) -> SwapKind {
    if depth > 8 {
        return SwapKind::Unknown;
    }
    if fs::read_to_string(dir.join("dm/uuid")).is_ok_and(|uuid| uuid.starts_with("CRYPT-")) {
        return SwapKind::Encrypted;
    }
    let mut below: Vec<PathBuf> = fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().and_then(|e| fs::canonicalize(e.path()).ok()))
                .collect()
        })
        .unwrap_or_default();
    if dir.join("partition").exists() {
        below.extend(dir.parent().map(Path::to_owned));
    }
    if below
        .iter()
        .any(|d| block_kind(d, depth + 1) == SwapKind::Encrypted)
    {
        SwapKind::Encrypted
    } else {
        SwapKind::Unencrypted
    }
}

const SWAP_REMEDY: &str = "--future, so that all of COMMAND's memory is locked and none of it is swapped; or \
    encrypt swap (dm-crypt: a crypttab line `swap /dev/DEVICE /dev/urandom swap,cipher=aes-xts-plain64,size=512`, \
    a new key each boot), or turn it off (swapoff, and remove it from /etc/fstab)";

pub fn swap_finding(devices: &[SwapDevice], zswap: bool, future: bool) -> Finding {
    let zswap_text = if zswap {
        "; zswap is on: pages going to swap are compressed in RAM first and written to the swap devices later"
    } else {
        ""
    };
    if devices.is_empty() {
        return finding(
            Verdict::Ok,
            "swap encryption",
            format!("no swap: nothing of COMMAND can be written to a swap device{zswap_text}"),
            None,
        );
    }
    let list = devices
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d.name,
                match d.kind {
                    SwapKind::Encrypted => "(dm-crypt)",
                    SwapKind::Ram => "(zram, in RAM)",
                    SwapKind::Unencrypted => "(not encrypted)",
                    SwapKind::Unknown => "(encryption unknown: its device is not in /sys)",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let exposed = devices
        .iter()
        .any(|d| matches!(d.kind, SwapKind::Unencrypted | SwapKind::Unknown));
    match (exposed, future) {
        (false, _) => finding(
            Verdict::Ok,
            "swap encryption",
            format!("{list}: what is swapped out is encrypted or stays in RAM{zswap_text}"),
            None,
        ),
        (true, true) => finding(
            Verdict::Ok,
            "swap encryption",
            format!(
                "{list}; --future locks all of COMMAND's memory, so none of it is swapped, but other programs' \
                 pages may be{zswap_text}"
            ),
            None,
        ),
        (true, false) => finding(
            Verdict::Warn,
            "swap encryption",
            format!(
                "{list}: memory COMMAND maps after start is not locked without --future and may be written \
                 there in clear{zswap_text}"
            ),
            Some(SWAP_REMEDY),
        ),
    }
}

/// Hibernation writes all of RAM, locked pages included, to the resume device: locking
/// cannot keep secrets out of a hibernation image.
pub fn hibernation_finding(
    state: Option<&str>,
    disk: Option<&str>,
    cmdline: &str,
    resume: Option<&str>,
    swaps: &[SwapDevice],
) -> Finding {
    let topic = "hibernation";
    let Some(state) = state.filter(|s| s.split_whitespace().any(|w| w == "disk")) else {
        return finding(
            Verdict::Ok,
            topic,
            "not available: /sys/power/state has no `disk` (no hibernation in this kernel, or locked down)"
                .to_owned(),
            None,
        );
    };
    let resume_arg = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("resume="));
    let resume_dev = resume
        .map(str::trim)
        .filter(|r| *r != "0:0" && !r.is_empty());
    let mode = disk
        .map(|d| format!(", /sys/power/disk: {}", d.trim()))
        .unwrap_or_default();
    let facts = format!(
        "/sys/power/state: {}{mode}; resume= {}; /sys/power/resume {}; {} swap device{}",
        state.trim(),
        resume_arg.unwrap_or("not set"),
        resume_dev.unwrap_or("not set"),
        swaps.len(),
        if swaps.len() == 1 { "" } else { "s" }
    );
    if resume_arg.is_none() && resume_dev.is_none() && swaps.is_empty() {
        return finding(
            Verdict::Ok,
            topic,
            format!("{facts}: the kernel could hibernate, but has nowhere to write the image"),
            None,
        );
    }
    let all_encrypted = !swaps.is_empty()
        && swaps.iter().all(|d| d.kind == SwapKind::Encrypted)
        && resume_arg.is_none();
    if all_encrypted {
        return finding(
            Verdict::Ok,
            topic,
            format!("{facts}: the image, locked pages included, would go to encrypted swap"),
            None,
        );
    }
    finding(
        Verdict::Warn,
        topic,
        format!(
            "{facts}: hibernating writes all of RAM, locked pages and COMMAND's secrets included, to disk; \
             --no-dump does not prevent it"
        ),
        Some(
            "turn hibernation off (systemctl mask hibernate.target hybrid-sleep.target \
             suspend-then-hibernate.target, and remove resume= from the kernel command line), or hibernate \
             only to an encrypted swap device",
        ),
    )
}

/// Core dump handlers known to keep what they are given.
const STORING_HANDLERS: [&str; 4] = ["systemd-coredump", "apport", "abrt-hook-ccpp", "abrt"];

pub fn core_finding(pattern: Option<&str>, core: Option<Rlimit>, no_dump: bool) -> Finding {
    let topic = "core dumps";
    let pattern = pattern.map(str::trim).unwrap_or("unreadable");
    if no_dump {
        return finding(
            Verdict::Ok,
            topic,
            format!(
                "none: --no-dump sets RLIMIT_CORE 0 and makes COMMAND non-dumpable, and the kernel dumps a \
                 non-dumpable process nowhere, not to a file, not to a pipe (core_pattern {pattern})"
            ),
            None,
        );
    }
    let remedy =
        "--no-dump; or LimitCORE=0 in the systemd unit (ulimit -c 0) and a handler that stores \
                  nothing (systemd-coredump: Storage=none in /etc/systemd/coredump.conf)";
    let soft = core.map(|c| c.soft);
    let limit = core.map_or_else(|| "unreadable".to_owned(), |c| c.to_string());
    if let Some(command) = pattern.strip_prefix('|') {
        let program = command.split_whitespace().next().unwrap_or("");
        let name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        let storing = STORING_HANDLERS.contains(&name);
        // The kernel runs a pipe handler whatever RLIMIT_CORE says (it passes the limit as
        // %c); systemd-coredump stores no core under a limit below a page ("Resource limits
        // disable core dumping"), though it still logs the crash; others decide for themselves.
        if name == "systemd-coredump" && soft == Some(Limit::Bytes(0)) {
            return finding(
                Verdict::Ok,
                topic,
                format!(
                    "core_pattern pipes to systemd-coredump, which stores no core under RLIMIT_CORE 0 ({limit}) but \
                     still logs the crash to the journal; COMMAND could raise the soft limit up to the hard one; \
                     --no-dump keeps the handler from running at all"
                ),
                None,
            );
        }
        return finding(
            Verdict::Warn,
            topic,
            format!(
                "core_pattern pipes a crash to {program}, {}; the kernel runs it whatever RLIMIT_CORE ({limit}) says",
                if storing {
                    "which stores core dumps: COMMAND's memory would be written to disk"
                } else {
                    "a handler memlock-run does not know, which may store COMMAND's memory"
                }
            ),
            Some(remedy),
        );
    }
    match soft {
        Some(Limit::Bytes(0)) => finding(
            Verdict::Ok,
            topic,
            format!(
                "core_pattern {pattern}, RLIMIT_CORE {limit}: no core file, unless COMMAND raises its soft limit"
            ),
            None,
        ),
        _ => finding(
            Verdict::Warn,
            topic,
            format!(
                "core_pattern {pattern}, RLIMIT_CORE {limit}: a crash writes COMMAND's memory, secrets \
                 included, to a core file"
            ),
            Some(remedy),
        ),
    }
}

/// Yama's ptrace_scope decides which processes of the same user may read /proc/PID/mem or
/// attach; a non-dumpable process needs CAP_SYS_PTRACE whatever it says. Root's processes
/// hold CAP_SYS_PTRACE, so for a COMMAND running as root neither helps against them.
pub fn ptrace_finding(scope: Option<&str>, no_dump: bool, as_root: bool) -> Finding {
    let topic = "ptrace access";
    let scope = scope.map(str::trim);
    let yama = scope.map_or_else(
        || "Yama is not in this kernel".to_owned(),
        |s| format!("Yama ptrace_scope {s}"),
    );
    if as_root && scope != Some("3") {
        return finding(
            Verdict::Warn,
            topic,
            format!(
                "{yama}; COMMAND runs as root, and every process of root holds CAP_SYS_PTRACE: they can read its \
                 memory and attach to it, --no-dump or not"
            ),
            Some(
                "run COMMAND as a user of its own (--user USER, or User= with AmbientCapabilities=CAP_IPC_LOCK \
                 in a systemd unit), with --no-dump",
            ),
        );
    }
    if no_dump {
        return finding(
            Verdict::Ok,
            topic,
            format!(
                "{yama}; --no-dump: only root (CAP_SYS_PTRACE) can read COMMAND's memory or attach to it, and \
                 tools of its own user (gdb, strace, perf, --status) cannot"
            ),
            None,
        );
    }
    let remedy =
        "--no-dump (then only root can read it); or kernel.yama.ptrace_scope=2 (sysctl; for every \
                  program on the machine)";
    let (verdict, text) = match scope {
        None | Some("0") => (
            Verdict::Warn,
            format!(
                "{yama}: every process of COMMAND's user can read its memory (/proc/PID/mem) and attach to it \
                 (gdb, strace)"
            ),
        ),
        Some("1") => (
            Verdict::Warn,
            format!(
                "{yama}: processes of COMMAND's user that are its ancestors (the shell or manager that started \
                 it) can read its memory and attach to it; others cannot unless COMMAND allows them \
                 (PR_SET_PTRACER)"
            ),
        ),
        Some("2") => (
            Verdict::Ok,
            format!("{yama}: only CAP_SYS_PTRACE (root) can read COMMAND's memory or attach to it"),
        ),
        Some("3") => (
            Verdict::Ok,
            format!("{yama}: no process can attach to COMMAND, root included"),
        ),
        Some(other) => (
            Verdict::Warn,
            format!("Yama ptrace_scope reads {other:?}, which memlock-run does not know"),
        ),
    };
    finding(
        verdict,
        topic,
        text,
        (verdict != Verdict::Ok).then_some(remedy),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, kind: SwapKind) -> SwapDevice {
        SwapDevice {
            name: name.to_owned(),
            kind,
        }
    }

    #[test]
    fn the_plan_names_who_clears_the_flag_and_where() {
        assert!(plan_text(false, false, true).starts_with("allowed"));
        let shim = plan_text(true, false, true);
        assert!(shim.contains("the shim sets") && shim.contains("again in every program"));
        let ptrace = plan_text(true, true, false);
        assert!(ptrace.contains("ptrace helper") && ptrace.contains("dumpable again"));
    }

    #[test]
    fn swaps_are_named_from_the_first_column() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition 2097148 0 -2\n\
                    /swap\\040file file 1024 0 -3\n";
        assert_eq!(swap_names(text), ["/dev/dm-1", "/swap file"]);
        assert!(swap_names("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn dm_crypt_beneath_a_device_counts() {
        let sys = std::env::temp_dir().join(format!("memlock-run-sys-{}", std::process::id()));
        let crypt = sys.join("block/dm-0");
        let lvm = sys.join("block/dm-1");
        fs::create_dir_all(crypt.join("dm")).unwrap();
        fs::create_dir_all(lvm.join("dm")).unwrap();
        fs::create_dir_all(lvm.join("slaves")).unwrap();
        fs::write(crypt.join("dm/uuid"), "CRYPT-LUKS2-abc-swap\n").unwrap();
        fs::write(lvm.join("dm/uuid"), "LVM-xyz\n").unwrap();
        assert_eq!(block_kind(&crypt, 0), SwapKind::Encrypted);
        assert_eq!(block_kind(&lvm, 0), SwapKind::Unencrypted);
        std::os::unix::fs::symlink(&crypt, lvm.join("slaves/dm-0")).unwrap();
        assert_eq!(block_kind(&lvm, 0), SwapKind::Encrypted);
        fs::remove_dir_all(&sys).unwrap();
        assert_eq!(swap_kind("/dev/zram0", Path::new("/sys")), SwapKind::Ram);
        assert_eq!(
            swap_kind("/nonexistent/swap", Path::new("/sys")),
            SwapKind::Unknown
        );
    }

    #[test]
    fn unencrypted_swap_is_a_warning_unless_everything_is_locked() {
        let plain = [dev("/dev/sda2", SwapKind::Unencrypted)];
        let w = swap_finding(&plain, true, false);
        assert_eq!(w.verdict, Verdict::Warn);
        assert!(w.text.contains("/dev/sda2 (not encrypted)") && w.text.contains("zswap is on"));
        assert!(w.remedy.unwrap().contains("crypttab"));
        assert_eq!(swap_finding(&plain, false, true).verdict, Verdict::Ok);
        let safe = [
            dev("/dev/dm-1", SwapKind::Encrypted),
            dev("/dev/zram0", SwapKind::Ram),
        ];
        assert_eq!(swap_finding(&safe, false, false).verdict, Verdict::Ok);
        assert_eq!(swap_finding(&[], false, false).verdict, Verdict::Ok);
    }

    #[test]
    fn hibernation_needs_disk_and_somewhere_to_write() {
        let plain = [dev("/dev/sda2", SwapKind::Unencrypted)];
        let crypt = [dev("/dev/dm-1", SwapKind::Encrypted)];
        let f = hibernation_finding(Some("freeze mem\n"), None, "quiet", None, &plain);
        assert_eq!(f.verdict, Verdict::Ok);
        let f = hibernation_finding(
            Some("freeze mem disk\n"),
            Some("[platform] shutdown reboot\n"),
            "quiet resume=UUID=1234",
            Some("8:2\n"),
            &plain,
        );
        assert_eq!(f.verdict, Verdict::Warn);
        assert!(
            f.text.contains("resume= UUID=1234") && f.text.contains("[platform]"),
            "{}",
            f.text
        );
        let f = hibernation_finding(Some("mem disk"), None, "", Some("0:0"), &[]);
        assert_eq!(f.verdict, Verdict::Ok, "{}", f.text);
        let f = hibernation_finding(Some("mem disk"), None, "", None, &crypt);
        assert_eq!(f.verdict, Verdict::Ok, "{}", f.text);
    }

    #[test]
    fn core_dumps_by_pattern_and_limit() {
        let zero = Some(Rlimit {
            soft: Limit::Bytes(0),
            hard: Limit::Unlimited,
        });
        let unlimited = Some(Rlimit {
            soft: Limit::Unlimited,
            hard: Limit::Unlimited,
        });
        assert_eq!(
            core_finding(Some("core\n"), zero, false).verdict,
            Verdict::Ok
        );
        assert_eq!(
            core_finding(Some("core"), unlimited, false).verdict,
            Verdict::Warn
        );
        let coredump = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h";
        assert_eq!(
            core_finding(Some(coredump), zero, false).verdict,
            Verdict::Ok
        );
        let f = core_finding(Some(coredump), unlimited, false);
        assert_eq!(f.verdict, Verdict::Warn);
        assert!(f.text.contains("stores core dumps"), "{}", f.text);
        let f = core_finding(Some("|/usr/share/apport/apport -p%p"), zero, false);
        assert_eq!(
            f.verdict,
            Verdict::Warn,
            "apport is run whatever RLIMIT_CORE says"
        );
        let f = core_finding(Some("|/opt/x/handler"), zero, false);
        assert!(f.text.contains("does not know"), "{}", f.text);
        for pattern in ["core", coredump] {
            assert_eq!(
                core_finding(Some(pattern), unlimited, true).verdict,
                Verdict::Ok
            );
        }
    }

    #[test]
    fn ptrace_scope_decides_who_reads() {
        assert_eq!(ptrace_finding(None, false, false).verdict, Verdict::Warn);
        assert_eq!(
            ptrace_finding(Some("0\n"), false, false).verdict,
            Verdict::Warn
        );
        assert!(ptrace_finding(Some("1"), false, false)
            .text
            .contains("ancestors"));
        assert_eq!(ptrace_finding(Some("2"), false, false).verdict, Verdict::Ok);
        assert_eq!(ptrace_finding(Some("3"), false, false).verdict, Verdict::Ok);
        let f = ptrace_finding(Some("0"), true, false);
        assert_eq!(f.verdict, Verdict::Ok);
        assert!(f.remedy.is_none());
    }

    #[test]
    fn no_dump_does_not_keep_root_out_of_a_root_process() {
        let f = ptrace_finding(Some("2"), true, true);
        assert_eq!(f.verdict, Verdict::Warn);
        assert!(f.remedy.unwrap().contains("--user"));
        assert_eq!(ptrace_finding(Some("3"), true, true).verdict, Verdict::Ok);
    }
}
