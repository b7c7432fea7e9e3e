//! The doors by which a locked program's memory can still leave RAM, as `--check` reports
//! them ([`findings`]).
//!
//! Locking keeps pages out of swap. The same bytes can leave the process by other doors:
//! a core dump when it crashes, another process of the same user reading /proc/PID/mem or
//! attaching with ptrace, hibernation writing all of RAM to disk, and the pages that are not
//! locked going to an unencrypted swap device. `--no-dump` closes the first two from
//! outside: RLIMIT_CORE 0, set before exec (`crate::apply::limits`), and PR_SET_DUMPABLE 0,
//! which execve resets and which is therefore set inside the new image by whatever runs there
//! first (the shim's constructor; an injecting locker). The other doors belong to the
//! administrator; each finding says what to do. The facts are the host's
//! (`crate::host::machine`).

use std::path::Path;

use crate::host::machine::{Machine, SwapDevice, SwapKind};
use crate::host::Host;
use crate::say::finding::{Finding, Verdict};
use crate::size::{Limit, Rlimit};

/// What `--check` says about the doors besides locking; `as_root`: COMMAND will run as root.
pub fn findings(
    host: &Host,
    machine: &Machine,
    no_dump: bool,
    future: bool,
    as_root: bool,
) -> Vec<Finding> {
    let yama = host.yama.map(|scope| scope.to_string());
    vec![
        swap_finding(&machine.swaps, machine.zswap, future),
        hibernation_finding(
            machine.power.state.as_deref(),
            machine.power.disk.as_deref(),
            &machine.power.cmdline,
            machine.power.resume.as_deref(),
            &machine.swaps,
        ),
        core_finding(
            machine.core_pattern.as_deref(),
            Some(host.limits.core),
            no_dump,
        ),
        ptrace_finding(yama.as_deref(), no_dump, as_root),
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
