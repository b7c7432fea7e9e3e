//! What /proc says about a process: its status fields, limits and seccomp state, read the
//! same way for this process ([`super::Host`]), the one `--pid` locks ([`Process`]) and the
//! tasks the exec gate judges.
//!
//! Only reads; a field that cannot be read is `None`, and the caller decides what that means.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use caps::Capability;

/// A `/proc/PID/status` field, as text.
pub fn status_field(pid: i32, name: &str) -> Option<String> {
    field_of(
        &read_whole_at_once(format!("/proc/{pid}/status")).ok()?,
        name,
    )
}

/// A small /proc file whole, in one read where it fits a page (its size says 0, so
/// `fs::read_to_string` stats it and reads it 32 bytes at a time, each read formatting the
/// file anew): what the exec gate reads of a task at every exec.
pub fn read_text(path: impl AsRef<Path>) -> std::io::Result<String> {
    read_proc(path, false)
}

/// [`read_text`] of a /proc file the kernel writes whole at its first read (seq_file's
/// single_open: status, stat, comm), so that a read shorter than asked for is its end: one
/// read, not two.
pub fn read_whole_at_once(path: impl AsRef<Path>) -> std::io::Result<String> {
    read_proc(path, true)
}

fn read_proc(path: impl AsRef<Path>, short_is_end: bool) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    // Not read_to_end, which stats the file and asks its offset before it reads.
    let mut text = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == text.len() {
            text.resize(len * 2, 0);
        }
        match file.read(&mut text[len..]) {
            Ok(0) => break,
            Ok(n) if short_is_end && len + n < text.len() => {
                len += n;
                break;
            }
            Ok(n) => len += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    text.truncate(len);
    String::from_utf8(text).map_err(|_| std::io::Error::from_raw_os_error(libc::EILSEQ))
}

/// A field of a `/proc/PID/status` text.
pub fn field_of(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
}

/// A process's soft and hard limit of `resource`, as prlimit(2) reads them (the caller must be
/// its user, or hold CAP_SYS_RESOURCE).
pub fn limits_of(pid: i32, resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a read-only query into a local.
    let rc = unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) };
    (rc == 0).then_some((old.rlim_cur, old.rlim_max))
}

/// The process tracing the one whose status text this is, with its name, if any.
pub fn tracer_in(status: &str) -> Option<(i32, String)> {
    let tracer: i32 = field_of(status, "TracerPid")?.parse().ok()?;
    (tracer != 0).then(|| {
        let name = fs::read_to_string(format!("/proc/{tracer}/comm"))
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "?".to_owned());
        (tracer, name)
    })
}

/// Whether a mandatory access control module may have a word on tracing: one securityfs
/// lists, or a security context for this process (/proc/self/attr/current reads EINVAL with
/// none).
pub fn mandatory_access_control() -> bool {
    mandatory_access_control_in(
        fs::read_to_string("/sys/kernel/security/lsm")
            .ok()
            .as_deref(),
        fs::read("/proc/self/attr/current"),
    )
}

/// `mandatory_access_control` of what securityfs lists (None: not mounted) and what
/// /proc/self/attr/current reads.
fn mandatory_access_control_in(lsm: Option<&str>, current: std::io::Result<Vec<u8>>) -> bool {
    const MAC: [&str; 4] = ["selinux", "apparmor", "smack", "tomoyo"];
    if lsm.is_some_and(|list| list.trim().split(',').any(|lsm| MAC.contains(&lsm))) {
        return true;
    }
    match current {
        Ok(context) => !context.is_empty(),
        Err(err) => !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)),
    }
}

/// The kernel's `kernel.yama.ptrace_scope`, where Yama is built in.
pub fn yama_scope() -> Option<u8> {
    fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A capability set of a status text (`CapEff`, `CapBnd`...) as its bit mask.
pub fn cap_mask(status: &str, set: &str) -> Option<u64> {
    u64::from_str_radix(&field_of(status, set)?, 16).ok()
}

/// Whether the one seccomp filter process `pid` runs under is the exec gate's (which touches
/// execve and execveat alone): its status counts one filter, its environment says that
/// memlock-run held one once its gate was armed and names the gate (protocol::GATE), and that
/// gate is alive and holds a seccomp listener. (An environment can say anything; a variable
/// that outlived its run, or leaked out of it, names no such gate.)
/// `status` is the process's /proc/PID/status, read already.
pub fn only_filter_is_gate(pid: i32, status: &str) -> bool {
    if field_of(status, "Seccomp_filters").as_deref() != Some("1") {
        return false;
    }
    let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let prefix = format!("{}=1:", memlock_run_protocol::GATE);
    let Some(gate) = environ
        .split(|&b| b == 0)
        .find_map(|entry| {
            entry
                .strip_prefix(prefix.as_bytes())
                .map(|_| &entry[memlock_run_protocol::GATE.len() + 1..])
        })
        .and_then(memlock_run_protocol::gate_pid)
    else {
        return false;
    };
    let holds_listener = || match fs::read_dir(format!("/proc/{gate}/fd")) {
        Ok(fds) => fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|link| link.as_os_str().as_bytes() == b"anon_inode:seccomp notify")
        }),
        // A gate is non-dumpable from its fork: only root may list its descriptors. Its
        // stat, anyone's to read, says it is a live exec gate by name.
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            fs::read_to_string(format!("/proc/{gate}/stat")).is_ok_and(|stat| {
                let named = format!("({}) ", memlock_run_protocol::GATE_NAME);
                stat.split_once(&named)
                    .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            })
        }
        Err(_) => false,
    };
    // COMMAND's start does not wait for its gate: the listener is queued on a socket to a gate
    // that may not have taken it yet, just after the start. Give a gate that is alive a
    // moment to take it (it takes it at once unless the machine is busy).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if holds_listener() {
            return true;
        }
        if !Path::new(&format!("/proc/{gate}")).exists() || std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// What `--pid` needs to know of a running process before it touches it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// `Name:` (the kernel's 15-character comm).
    pub name: String,
    /// `State:`, as `S (sleeping)`.
    pub state: String,
    /// Real, effective, saved and filesystem user IDs.
    pub uids: Vec<u32>,
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub seccomp: String,
    /// Its one seccomp filter is an exec gate of memlock-run's ([`only_filter_is_gate`]).
    pub only_gate: bool,
    pub tracer: Option<(i32, String)>,
    /// CAP_IPC_LOCK in its effective set: RLIMIT_MEMLOCK does not bind its mlockall.
    pub holds_ipc_lock: bool,
    /// Its RLIMIT_MEMLOCK (soft, hard), where prlimit(2) may read it.
    pub memlock: Option<(u64, u64)>,
    /// `VmSize:` in bytes.
    pub vm_size: Option<u64>,
}

impl Process {
    /// None when no process has that PID (or /proc is not mounted).
    pub fn read(pid: u32) -> Option<Process> {
        let raw = pid as i32;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| field_of(&status, name).unwrap_or_default();
        let seccomp = field("Seccomp");
        Some(Process {
            pid,
            name: field_of(&status, "Name")?,
            state: field("State"),
            uids: field("Uid")
                .split_whitespace()
                .filter_map(|u| u.parse().ok())
                .collect(),
            only_gate: seccomp == "2" && only_filter_is_gate(raw, &status),
            seccomp,
            tracer: tracer_in(&status),
            holds_ipc_lock: cap_mask(&status, "CapEff")
                .is_some_and(|caps| caps & (1 << Capability::CAP_IPC_LOCK.index()) != 0),
            memlock: limits_of(raw, libc::RLIMIT_MEMLOCK),
            vm_size: field_of(&status, "VmSize")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024),
        })
    }
}

/// `8 MiB` or `unlimited`.
pub fn describe_limit(limit: u64) -> String {
    if limit == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        crate::size::show(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mandatory access control module is taken to be there when securityfs lists one, or
    /// when this process has a security context to read; none where that read says EINVAL (no
    /// module keeps one) or ENOENT.
    #[test]
    fn a_security_module_is_seen_in_either_place() {
        use super::mandatory_access_control_in as mac;
        let none = || Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(!mac(None, none()));
        assert!(!mac(Some("capability,yama,bpf\n"), none()));
        assert!(!mac(
            None,
            Err(std::io::Error::from_raw_os_error(libc::ENOENT))
        ));
        assert!(mac(Some("lockdown,capability,apparmor\n"), none()));
        assert!(mac(Some("capability,selinux"), none()));
        assert!(mac(None, Ok(b"unconfined\n".to_vec())));
        assert!(!mac(None, Ok(Vec::new())));
        // Not readable for another reason: the side of giving the word.
        assert!(mac(
            None,
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        ));
    }

    /// Read in one read or many, a /proc file comes whole: one longer than the first buffer
    /// (this thread's status with 3000 supplementary groups, which a single_open file writes
    /// whole; smaps, which a seq_file writes a page at a time) as fs::read_to_string reads it.
    #[test]
    fn proc_files_longer_than_a_page_come_whole() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: setting 3000 supplementary groups needs root");
            return;
        }
        let groups: Vec<libc::gid_t> = (10_000..13_000).collect();
        // SAFETY: setgroups(2), the system call: this thread's groups only, a list of its
        // length; given back below.
        let own = nix::unistd::getgroups().unwrap();
        assert_eq!(
            unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) },
            0
        );
        let status = "/proc/thread-self/status";
        let (once, twice) = (read_whole_at_once(status), read_text(status));
        let whole = fs::read_to_string(status).unwrap();
        let own: Vec<libc::gid_t> = own.iter().map(|g| g.as_raw()).collect();
        // SAFETY: as above, this thread's own groups again.
        unsafe { libc::syscall(libc::SYS_setgroups, own.len(), own.as_ptr()) };
        assert!(whole.len() > 4096, "{}", whole.len());
        // Its memory figures move between reads; its groups and its lines do not.
        let groups_of = |text: &str| field_of(text, "Groups").map(|g| g.split_whitespace().count());
        let lines = |text: &str| text.lines().count();
        for read in [once.unwrap(), twice.unwrap()] {
            assert_eq!(groups_of(&read), Some(3000));
            assert_eq!(lines(&read), lines(&whole));
            assert!(read.ends_with('\n'));
        }
        // A seq_file's first read gives a page of it at most: more is read on.
        let smaps = read_text("/proc/self/smaps").unwrap();
        assert!(smaps.len() > 8192, "{}", smaps.len());
    }

    #[test]
    fn this_process_reads_as_a_process() {
        let me = Process::read(std::process::id()).unwrap();
        assert!(!me.name.is_empty() && me.uids.len() == 4);
        assert!(me.vm_size.unwrap() > 0);
        assert!(me.memlock.is_some());
        assert_eq!(
            field_of("Name:\tx\nSeccomp:\t2\n", "Seccomp").as_deref(),
            Some("2")
        );
        assert_eq!(
            cap_mask("CapEff:\t0000000000004000\n", "CapEff"),
            Some(1 << 14)
        );
    }
}
