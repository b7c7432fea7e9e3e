//! `--status PID...`: what is locked in running processes, read from /proc.
//!
//! For each process: VmLck, VmRSS, VmSwap and VmSize from /proc/PID/status; each mapping
//! of /proc/PID/smaps with its size, resident share (Rss), locked share (smaps `Locked`,
//! which is proportional: a page shared by N processes counts 1/N) and lock flags (the
//! `lo` VmFlag is VM_LOCKED, `lf` VM_LOCKONFAULT); whether the memlock-run shim is mapped,
//! and the flags its environment gave it; the major and minor fault counts of
//! /proc/PID/stat; whether the process is dumpable; the exec gate its environment names
//! (protocol::GATE), and whether it is running, stopped or gone. As text for people, or as JSON
//! (`--json`, described in docs/status-json.md) for scripts.
//!
//! Linux shows no process's dumpable flag to others, but it gives a non-dumpable process's
//! /proc/PID files to root: a process whose effective UID is not 0 and whose
//! /proc/PID/status belongs to root is not dumpable (set by `--no-dump`, PR_SET_DUMPABLE, a
//! set-ID exec). The files are given their owner again at each lookup; the /proc/PID
//! directory itself keeps the owner it had when first looked up, so it cannot tell. For a
//! process running as root the two cannot be told apart, and the answer is unknown.
//! The same flag keeps a user's own `--status` out of the process's smaps: only root reads it.
//!
//! It only reads. VmLck is the kernel's count of locked address space, not of resident
//! pages: with MCL_ONFAULT, or a PROT_NONE reservation made under MCL_FUTURE (mariadbd's,
//! a JVM's, Go's), it can be far above VmRSS, terabytes for a few hundred MiB held. So the
//! headline is the resident locked share: Rss in mappings with the `lo` flag against the Rss
//! of all mappings; VmLck follows as the address space reserved under the lock. Some mappings cannot be locked at
//! all (`[vvar]`, `[vdso]`, `[vsyscall]`: VM_IO, VM_PFNMAP, VM_DONTEXPAND); they are shown
//! but do not make a process "partly locked"; nor do the shim's own mappings of its memfd
//! (its settings mark, and the alternate signal stack it keeps unlocked).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use memlock_run_protocol::{LockFlags, FLAGS, GATE, GATE_NAME, NO_DUMP, SHIM_FILE_NAME};
use serde::Serialize;

use crate::size::show;

/// Mappings at least this large that are not locked are listed on their own.
const LARGE: u64 = 1 << 20;

/// Bumped when a field changes meaning or goes away; new fields may come at any time.
const JSON_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub processes: Vec<Process>,
    pub errors: Vec<PidError>,
}

#[derive(Debug, Serialize)]
pub struct PidError {
    pub pid: u32,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `Name:` of /proc/PID/status (the kernel's 15-character comm).
    pub name: String,
    /// /proc/PID/exe, when readable.
    pub exe: Option<String>,
    /// `locked`, `partly locked` or `not locked`.
    pub state: &'static str,
    pub vm_lck: u64,
    pub vm_rss: u64,
    pub vm_swap: u64,
    pub vm_size: u64,
    /// Rss of the mappings with the `lo` flag: the memory the lock holds in RAM now.
    pub locked_rss: u64,
    /// Rss of all mappings (smaps), against which `locked_rss` is a share.
    pub total_rss: u64,
    pub faults: Faults,
    /// False when the process is not dumpable (`--no-dump`): no core dump, and only
    /// CAP_SYS_PTRACE reads its memory. None when it cannot be told (it runs as root).
    pub dumpable: Option<bool>,
    pub shim: Shim,
    /// The exec gate of the run the process belongs to (MEMLOCK_RUN_GATE in its environment);
    /// None when its environment names none, or cannot be read.
    pub gate: Option<Gate>,
    /// Resident bytes in lockable mappings without the `lo` flag: what could be paged out.
    pub unlocked_rss: u64,
    /// The lockable mappings without the `lo` flag, at least 1 MiB, largest first.
    pub large_unlocked: Vec<Mapping>,
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, Serialize)]
pub struct Faults {
    pub major: u64,
    pub minor: u64,
}

#[derive(Debug, Serialize)]
pub struct Shim {
    /// The shim's file is mapped in the process.
    pub loaded: bool,
    pub path: Option<String>,
    /// `MCL_CURRENT|MCL_FUTURE` from MEMLOCK_RUN_FLAGS in its environment, when readable.
    pub flags: Option<String>,
    /// MEMLOCK_RUN_NO_DUMP=1 in its environment (`--no-dump`), when readable.
    pub no_dump: Option<bool>,
}

/// The process that judges the execs of a process's tree (launcher/src/gate).
#[derive(Debug, Serialize)]
pub struct Gate {
    pub pid: u32,
    /// `running`; `stopped` (SIGSTOP: the tree's execs wait for it); `gone` (ended, killed,
    /// or its PID is no longer a memlock-gate: the tree's execs fail).
    pub state: &'static str,
    /// `state` is not `gone`.
    pub alive: bool,
}

impl Gate {
    fn read(pid: u32) -> Gate {
        let state = gate_state(
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref(),
        );
        Gate {
            pid,
            state,
            alive: state != "gone",
        }
    }
}

/// A gate's state from its /proc/PID/stat text (None: no such process).
fn gate_state(stat: Option<&str>) -> &'static str {
    let Some((name, rest)) = stat.and_then(|stat| {
        let (_, after_pid) = stat.split_once(" (")?;
        after_pid.rsplit_once(") ")
    }) else {
        return "gone";
    };
    if name != GATE_NAME {
        return "gone";
    }
    match rest.chars().next() {
        Some('T' | 't') => "stopped",
        Some('Z' | 'X') | None => "gone",
        Some(_) => "running",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Mapping {
    /// Hexadecimal, as in /proc/PID/maps.
    pub start: String,
    pub end: String,
    pub perms: String,
    /// The file, `[heap]`, `[stack]`..., or empty for anonymous memory.
    pub name: String,
    pub size: u64,
    pub rss: u64,
    /// smaps `Locked`: proportional, so shared pages count in part.
    pub locked: u64,
    pub swap: u64,
    /// VmFlags `lo`: VM_LOCKED.
    pub vm_locked: bool,
    /// VmFlags `lf`: VM_LOCKONFAULT.
    pub lock_on_fault: bool,
    /// False for mappings mlock never applies to (VM_IO, VM_PFNMAP, VM_DONTEXPAND, the
    /// vsyscall page).
    pub lockable: bool,
}

/// Reports on every PID; `Ok(false)` when one of them could not be read.
pub fn run(pids: &[u32], json: bool) -> Result<bool> {
    let mut report = Report {
        version: JSON_VERSION,
        processes: Vec::new(),
        errors: Vec::new(),
    };
    for &pid in pids {
        match read(pid) {
            Ok(process) => report.processes.push(process),
            Err(error) => report.errors.push(PidError { pid, error }),
        }
    }
    // Not println!, which panics (and so aborts) when stdout is closed, as under `| head`.
    let text = if json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report
            .processes
            .iter()
            .map(render)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the --status report to stdout")?;
    let mut err = io::stderr().lock();
    for error in &report.errors {
        let _ = writeln!(err, "memlock-run: --status {}: {}", error.pid, error.error);
    }
    Ok(report.errors.is_empty())
}

/// Why a /proc file could not be read, in words a user can act on.
fn explain(pid: u32, file: &str, err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => format!(
            "no such process (/proc/{pid} does not exist); it has exited, or the PID is wrong (pgrep NAME finds it)"
        ),
        io::ErrorKind::PermissionDenied if nix::unistd::geteuid().is_root() => format!(
            "cannot read /proc/{pid}/{file}: permission denied even to root: the kernel's ptrace access check \
             refused it (the process is in another user namespace or container, or Yama's \
             /proc/sys/kernel/yama/ptrace_scope forbids it); run memlock-run --status inside its namespace"
        ),
        io::ErrorKind::PermissionDenied if dumpable(pid) == Some(false) => format!(
            "cannot read /proc/{pid}/{file}: permission denied: the process is not dumpable (memlock-run --no-dump, \
             or prctl PR_SET_DUMPABLE 0), so the kernel lets only root or CAP_SYS_PTRACE read its memory map, even \
             for its own user; that is what --no-dump is for (sudo memlock-run --status {pid})"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot read /proc/{pid}/{file}: permission denied; another user's memory map needs root or \
             CAP_SYS_PTRACE (sudo memlock-run --status {pid})"
        ),
        _ => format!("cannot read /proc/{pid}/{file}: {err}"),
    }
}

/// Whether the process is dumpable, from who owns /proc/PID/status (see the module's opening
/// comment); None for a process running as root, or one that cannot be read.
fn dumpable(pid: u32) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/{pid}/status");
    // Owner first: should the process exec in between, the Uid read after it is current.
    let owner = fs::metadata(&path).ok()?.uid();
    let status = fs::read_to_string(&path).ok()?;
    dumpable_from(&status, owner)
}

/// `Uid:` gives real, effective, saved and filesystem UIDs; /proc/PID/status belongs to the
/// effective one while the process is dumpable, and to root when it is not.
fn dumpable_from(status: &str, proc_owner: u32) -> Option<bool> {
    let euid: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    (euid != 0).then_some(proc_owner == euid)
}

fn read_proc(pid: u32, file: &str) -> Result<String, String> {
    fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|err| explain(pid, file, &err))
}

fn read(pid: u32) -> Result<Process, String> {
    let status = read_proc(pid, "status")?;
    let stat = read_proc(pid, "stat")?;
    let smaps = read_proc(pid, "smaps")?;
    let kb = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let name = status
        .lines()
        .find_map(|line| line.strip_prefix("Name:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let mappings = parse_smaps(&smaps);
    if mappings.is_empty() && kb("VmSize") == 0 {
        return Err(format!(
            "process {pid} ({name}) has no memory of its own: it is a kernel thread or a zombie"
        ));
    }
    // The shim's own mappings (its settings mark, the alternate signal stack it keeps
    // unlocked on purpose) say nothing about whether the program is locked.
    let lockable: Vec<&Mapping> = mappings
        .iter()
        .filter(|m| m.lockable && !shim_own(m))
        .collect();
    let locked_count = lockable.iter().filter(|m| m.vm_locked).count();
    let state = if locked_count == 0 {
        "not locked"
    } else if locked_count == lockable.len() {
        "locked"
    } else {
        "partly locked"
    };
    let unlocked_rss = lockable
        .iter()
        .filter(|m| !m.vm_locked)
        .map(|m| m.rss)
        .sum();
    let mut large_unlocked: Vec<Mapping> = lockable
        .iter()
        .filter(|m| !m.vm_locked && m.size >= LARGE)
        .map(|m| (*m).clone())
        .collect();
    large_unlocked.sort_by_key(|m| std::cmp::Reverse(m.size));
    let locked_rss = mappings.iter().filter(|m| m.vm_locked).map(|m| m.rss).sum();
    let total_rss = mappings.iter().map(|m| m.rss).sum();

    let shim_path = mappings
        .iter()
        .find(|m| Path::new(&m.name).file_name() == Some(SHIM_FILE_NAME.as_ref()))
        .map(|m| m.name.clone());
    let environ = fs::read(format!("/proc/{pid}/environ")).ok();
    let mut flags = environ.as_deref().and_then(shim_flags);
    let mut no_dump = environ.as_deref().map(shim_no_dump);
    // The program rewrote its environment (redis does): the shim's named mapping.
    if let (true, None, Some(marked)) = (shim_path.is_some(), &flags, marked_settings(&mappings)) {
        flags = shim_flags(&marked);
        no_dump = Some(shim_no_dump(&marked));
    }
    let gate = environ
        .as_deref()
        .and_then(|environ| {
            environ.split(|&b| b == 0).find_map(|entry| {
                let (name, value) = memlock_run_protocol::split_entry(entry)?;
                (name == GATE.as_bytes()).then_some(value)
            })
        })
        .and_then(memlock_run_protocol::gate_pid)
        .map(Gate::read);
    Ok(Process {
        pid,
        name,
        exe: fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.display().to_string()),
        state,
        vm_lck: kb("VmLck"),
        vm_rss: kb("VmRSS"),
        vm_swap: kb("VmSwap"),
        vm_size: kb("VmSize"),
        locked_rss,
        total_rss,
        faults: parse_faults(&stat)
            .ok_or_else(|| format!("/proc/{pid}/stat is not in the form this memlock-run knows"))?,
        dumpable: dumpable(pid),
        shim: Shim {
            loaded: shim_path.is_some(),
            path: shim_path,
            flags,
            no_dump,
        },
        gate,
        unlocked_rss,
        large_unlocked,
        mappings,
    })
}

/// MEMLOCK_RUN_FLAGS from a NUL-separated environment, spelled `MCL_CURRENT|MCL_FUTURE`.
fn shim_flags(environ: &[u8]) -> Option<String> {
    environ.split(|&b| b == 0).find_map(|entry| {
        let (name, value) = memlock_run_protocol::split_entry(entry)?;
        if name != FLAGS.as_bytes() {
            return None;
        }
        Some(match LockFlags::decode(value) {
            Some(flags) => flags.describe().to_owned(),
            None => format!("invalid ({})", String::from_utf8_lossy(value)),
        })
    })
}

/// The settings the shim wrote into the name of its memfd mapping, as NUL-separated
/// entries: `/memfd:memlock-run MEMLOCK_RUN_FLAGS=... MEMLOCK_RUN_NO_DUMP=0 (deleted)`.
fn marked_settings(mappings: &[Mapping]) -> Option<Vec<u8>> {
    mappings.iter().find_map(|m| {
        let rest = m
            .name
            .strip_prefix("/memfd:")?
            .strip_prefix(memlock_run_protocol::ANON_NAME_PREFIX)?;
        let rest = rest.strip_suffix(" (deleted)").unwrap_or(rest);
        Some(rest.replace(' ', "\0").into_bytes())
    })
}

/// A mapping of the shim's memfd (`/memfd:memlock-run ...`): its settings mark, and the
/// alternate signal stack it maps from the same file, unlocked so that it costs no locked
/// memory (preload-shim/src/limit.rs).
fn shim_own(m: &Mapping) -> bool {
    m.name
        .strip_prefix("/memfd:")
        .is_some_and(|rest| rest.starts_with(memlock_run_protocol::ANON_NAME_PREFIX))
}

/// MEMLOCK_RUN_NO_DUMP=1 in a NUL-separated environment.
fn shim_no_dump(environ: &[u8]) -> bool {
    environ
        .split(|&b| b == 0)
        .filter_map(memlock_run_protocol::split_entry)
        .any(|(name, value)| name == NO_DUMP.as_bytes() && value == b"1")
}

/// Minor and major faults: fields 10 and 12 of /proc/PID/stat (proc(5)), counted after the
/// `)` that ends the command name, which may itself hold spaces and parentheses.
fn parse_faults(stat: &str) -> Option<Faults> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    Some(Faults {
        minor: fields.get(10 - 3)?.parse().ok()?,
        major: fields.get(12 - 3)?.parse().ok()?,
    })
}

fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-').filter(|(s, e)| {
            u64::from_str_radix(s, 16).is_ok() && u64::from_str_radix(e, 16).is_ok()
        }) {
            let perms = words.next().unwrap_or("").to_owned();
            // offset, device, inode, then the name, which may contain spaces.
            let name = nth_field_rest(line, 5);
            let size = u64::from_str_radix(end, 16).unwrap_or(0)
                - u64::from_str_radix(start, 16).unwrap_or(0);
            maps.push(Mapping {
                start: start.to_owned(),
                end: end.to_owned(),
                perms,
                lockable: name != "[vsyscall]",
                name,
                size,
                rss: 0,
                locked: 0,
                swap: 0,
                vm_locked: false,
                lock_on_fault: false,
            });
            continue;
        }
        let Some(map) = maps.last_mut() else {
            continue;
        };
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            map.vm_locked = flags.contains(&"lo");
            map.lock_on_fault = flags.contains(&"lf");
            // VM_SPECIAL: mlock(2) leaves these alone.
            if flags.iter().any(|f| ["io", "pf", "de", "mm"].contains(f)) {
                map.lockable = false;
            }
        } else if let Some((key, value)) = line.split_once(':') {
            let kb = || {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    * 1024
            };
            match key {
                "Rss" => map.rss = kb(),
                "Locked" => map.locked = kb(),
                "Swap" => map.swap = kb(),
                _ => {}
            }
        }
    }
    maps
}

/// Everything after the first `n` whitespace-separated fields, as maps(5) lays it out.
fn nth_field_rest(line: &str, n: usize) -> String {
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    rest.trim().to_owned()
}

fn percent(part: u64, whole: u64) -> String {
    part.saturating_mul(100)
        .checked_div(whole)
        .map_or_else(|| "-".to_owned(), |p| format!("{p}%"))
}

fn render(p: &Process) -> String {
    let mut out = String::new();
    let exe = p.exe.as_deref().unwrap_or("?");
    out.push_str(&format!("PID {} ({}, {exe}): {}\n", p.pid, p.name, p.state));
    out.push_str(&format!(
        "  locked: {} resident in locked mappings of {} resident ({}); VmLck {} of address space reserved \
         under the lock, VmRSS {}; VmSwap {}, VmSize {}\n",
        show(p.locked_rss),
        show(p.total_rss),
        percent(p.locked_rss, p.total_rss),
        show(p.vm_lck),
        show(p.vm_rss),
        show(p.vm_swap),
        show(p.vm_size)
    ));
    if let Some(times) = reserved_far_above(p.vm_lck, p.locked_rss) {
        out.push_str(&format!(
            "  VmLck is {times} times the locked resident memory: most of the locked address space is reserved, \
             not held in RAM (PROT_NONE reservations or untouched pages locked on fault, made under MCL_FUTURE); \
             the locked share above is what the lock holds\n"
        ));
    }
    let lockable = p
        .mappings
        .iter()
        .filter(|m| m.lockable && !shim_own(m))
        .count();
    let locked = p
        .mappings
        .iter()
        .filter(|m| m.lockable && !shim_own(m) && m.vm_locked)
        .count();
    let on_fault = p.mappings.iter().filter(|m| m.lock_on_fault).count();
    out.push_str(&format!(
        "  mappings: {locked} of {lockable} lockable have the lo flag{}; {} resident outside them\n",
        if on_fault > 0 {
            format!(", {on_fault} of them locked on fault (lf)")
        } else {
            String::new()
        },
        show(p.unlocked_rss)
    ));
    let no_dump = if p.shim.no_dump == Some(true) {
        ", --no-dump"
    } else {
        ""
    };
    out.push_str(&match (&p.shim.path, &p.shim.flags) {
        (Some(path), Some(flags)) => format!("  shim: loaded ({path}), {flags}{no_dump}\n"),
        (Some(path), None) => format!(
            "  shim: loaded ({path}){no_dump}; its settings cannot be read: they are not in its environment \
             (the program may have rewritten it) nor in a memlock-run mapping (a shim older than this memlock-run)\n"
        ),
        (None, _) => "  shim: not loaded\n".to_owned(),
    });
    if let Some(gate) = &p.gate {
        let pid = gate.pid;
        out.push_str(&match gate.state {
            "running" => format!(
                "  exec gate: pid {pid} ({GATE_NAME}), running: it judges every exec of this process's tree\n"
            ),
            "stopped" => format!(
                "  exec gate: pid {pid} ({GATE_NAME}), stopped: every exec of this process's tree waits until it \
                 is continued (kill -CONT {pid})\n"
            ),
            _ => format!(
                "  exec gate: pid {pid}, gone: every exec of this process's tree fails (Function not \
                 implemented) until the run is started again\n"
            ),
        });
    }
    out.push_str(match p.dumpable {
        Some(false) => {
            "  dumpable: no: no core dump, and only root (CAP_SYS_PTRACE) can read its memory or attach\n"
        }
        Some(true) => {
            "  dumpable: yes: a crash can write a core dump, and processes of its user can read its memory\n"
        }
        None => "  dumpable: unknown: it runs as root, whose /proc/PID files belong to root either way\n",
    });
    out.push_str(&format!(
        "  faults: {} major, {} minor\n",
        p.faults.major, p.faults.minor
    ));
    if p.large_unlocked.is_empty() {
        out.push_str(&format!("  not locked, {} or larger: none\n", show(LARGE)));
    } else {
        out.push_str(&format!("  not locked, {} or larger:\n", show(LARGE)));
        for m in &p.large_unlocked {
            out.push_str(&format!(
                "    {} {} at {}, {} resident ({})\n",
                show(m.size),
                display_name(m),
                m.start,
                show(m.rss),
                percent(m.rss, m.size)
            ));
        }
    }
    out.push_str(&format!(
        "  {:<16} {:>11} {:>11} {:>5} {:>11} {:>5} {:>11}  {:<4} NAME\n",
        "ADDRESS", "SIZE", "RSS", "RES", "LOCKED", "FLAG", "SWAP", "PERM"
    ));
    for m in &p.mappings {
        let flag = match (m.vm_locked, m.lock_on_fault, m.lockable) {
            (true, true, _) => "lf",
            (true, false, _) => "lo",
            (false, _, false) => "n/a",
            (false, _, true) => "-",
        };
        out.push_str(&format!(
            "  {:<16} {:>11} {:>11} {:>5} {:>11} {:>5} {:>11}  {:<4} {}\n",
            m.start,
            show(m.size),
            show(m.rss),
            percent(m.rss, m.size),
            show(m.locked),
            flag,
            show(m.swap),
            m.perms,
            m.name
        ));
    }
    out
}

/// How many times VmLck is the locked resident memory, when it is at least ten times (an
/// order of magnitude or more) and the difference is more than 64 MiB: a figure worth a line.
fn reserved_far_above(vm_lck: u64, locked_rss: u64) -> Option<u64> {
    const PAGE: u64 = 4096;
    let times = vm_lck / locked_rss.max(PAGE);
    (times >= 10 && vm_lck - locked_rss.min(vm_lck) > 64 << 20).then_some(times)
}

fn display_name(m: &Mapping) -> &str {
    if m.name.is_empty() {
        "anonymous memory"
    } else {
        &m.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 1234 0 7 0 5 6 0 0 20 0 1 0";
        let faults = parse_faults(stat).unwrap();
        assert_eq!((faults.minor, faults.major), (1234, 7));
        assert!(parse_faults("42 (x) S 1").is_none());
    }

    #[test]
    fn smaps_entries() {
        let text = "\
55d89b38d000-55d89b38e000 r--p 00000000 fe:00 10043548                   /tmp/a b
Size:                  4 kB
Rss:                   4 kB
Locked:                2 kB
Swap:                  0 kB
VmFlags: rd mr mw me lo lf
7efec132b000-7efec132f000 r--p 00000000 00:00 0                          [vvar]
Size:                 16 kB
Rss:                   0 kB
VmFlags: rd mr pf io de dd
7efec1313000-7efec1320000 rw-p 00000000 00:00 0
Size:                 52 kB
Rss:                  12 kB
VmFlags: rd wr mr mw me ac
";
        let maps = parse_smaps(text);
        assert_eq!(maps.len(), 3);
        assert_eq!(maps[0].name, "/tmp/a b");
        assert_eq!(
            (maps[0].size, maps[0].rss, maps[0].locked),
            (4096, 4096, 2048)
        );
        assert!(maps[0].vm_locked && maps[0].lock_on_fault && maps[0].lockable);
        assert!(!maps[1].lockable, "[vvar] is VM_IO|VM_PFNMAP");
        assert_eq!(maps[2].name, "");
        assert_eq!(maps[2].rss, 12 * 1024);
        assert!(!maps[2].vm_locked && maps[2].lockable);
    }

    #[test]
    fn vmlck_far_above_the_locked_resident_memory() {
        const MIB: u64 = 1 << 20;
        assert_eq!(reserved_far_above(8 << 40, 210 * MIB), Some(39_945));
        assert_eq!(
            reserved_far_above(64 * MIB, 8 * MIB),
            None,
            "64 MiB on fault, 8 touched: small"
        );
        assert_eq!(reserved_far_above(1024 * MIB, 8 * MIB), Some(128));
        assert_eq!(
            reserved_far_above(1024 * MIB, 200 * MIB),
            None,
            "five times"
        );
        assert_eq!(reserved_far_above(0, 0), None);
        assert_eq!(reserved_far_above(1024 * MIB, 0), Some(1024 * MIB / 4096));
    }

    #[test]
    fn flags_from_the_environment() {
        assert_eq!(
            shim_flags(b"PATH=/bin\0MEMLOCK_RUN_FLAGS=current,future\0").as_deref(),
            Some("MCL_CURRENT|MCL_FUTURE")
        );
        assert_eq!(shim_flags(b"PATH=/bin\0"), None);
    }

    #[test]
    fn a_gate_is_known_by_its_name_and_state() {
        let stat = |name: &str, state: char| format!("42 ({name}) {state} 1 42 42 0 -1");
        assert_eq!(gate_state(Some(&stat(GATE_NAME, 'S'))), "running");
        assert_eq!(gate_state(Some(&stat(GATE_NAME, 'R'))), "running");
        assert_eq!(gate_state(Some(&stat(GATE_NAME, 'T'))), "stopped");
        assert_eq!(gate_state(Some(&stat(GATE_NAME, 't'))), "stopped");
        assert_eq!(gate_state(Some(&stat(GATE_NAME, 'Z'))), "gone");
        // Its PID reused by another program, even one whose name holds ") ".
        assert_eq!(gate_state(Some(&stat("sleep", 'S'))), "gone");
        assert_eq!(gate_state(Some(&stat("memlock-gate) S", 'S'))), "gone");
        assert_eq!(gate_state(None), "gone");
    }

    #[test]
    fn dumpable_from_the_owner_of_proc_pid() {
        let status = "Name:\tprobe\nUid:\t65534\t65534\t65534\t65534\n";
        assert_eq!(dumpable_from(status, 65534), Some(true));
        assert_eq!(dumpable_from(status, 0), Some(false));
        assert_eq!(dumpable_from("Uid:\t1000\t0\t0\t0\n", 0), None, "euid 0");
        assert_eq!(dumpable_from("Name:\tx\n", 0), None);
        assert!(shim_no_dump(b"A=1\0MEMLOCK_RUN_NO_DUMP=1\0"));
        assert!(!shim_no_dump(b"MEMLOCK_RUN_NO_DUMP=0\0"));
    }

    #[test]
    fn this_process_reads() {
        let me = read(std::process::id()).unwrap();
        assert_eq!(me.state, "not locked");
        assert!(me.vm_rss > 0 && me.faults.minor > 0);
        assert!(!me.shim.loaded);
        let err = read(u32::MAX / 2).unwrap_err();
        assert!(err.contains("no such process"), "{err}");
    }
}
