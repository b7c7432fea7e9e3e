//! The task that asks to exec, as the gate knows it: its IDs and PID levels from /proc, the
//! filesystem identity the gate takes on while it opens files for it, and what its memory
//! holds (the path of its exec; the environment is `environment.rs`'s).

use super::serve::start_time;
use crate::host::procfs::read_whole_at_once;

/// What the gate knows of a task that asks to exec, read once per exec from its
/// /proc/TID/status (readable whatever its dumpable flag), and its start time and root when
/// first asked.
pub(super) struct Task {
    pub(super) tid: i32,
    /// Effective user and group IDs.
    pub(super) uid: u32,
    pub(super) gid: u32,
    /// Real user and group IDs, and no_new_privs: with the effective IDs, what decides
    /// secure-execution mode for what it executes.
    pub(super) real_uid: u32,
    pub(super) real_gid: u32,
    pub(super) no_new_privs: bool,
    /// Its process and thread IDs in each PID namespace it is in, outermost first (NStgid,
    /// NSpid; one level before Linux 4.1, which has neither): a /proc shows those of its own.
    pub(super) levels: Vec<(u32, u32)>,
    /// Its start time, by which its directory in a /proc is known: read when first asked.
    started: std::cell::OnceCell<Option<u64>>,
    /// Its root directory (/proc/TID/root, O_PATH), opened when first asked, or the errno.
    root: std::cell::OnceCell<Result<std::fs::File, i32>>,
    /// Its supplementary groups, and which of CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH it holds
    /// in its effective set: with its IDs, what decides which files it may open and execute.
    pub(super) groups: Vec<u32>,
    pub(super) dac: Vec<caps::Capability>,
}

impl Task {
    /// None when the task has gone.
    pub(super) fn read(tid: i32) -> Option<Task> {
        let status = read_whole_at_once(format!("/proc/{tid}/status")).ok()?;
        let field = |name: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (tgids, tids) = (field("NStgid"), field("NSpid"));
        let levels = if !tgids.is_empty() && tgids.len() == tids.len() {
            tgids.into_iter().zip(tids).collect()
        } else {
            vec![(*field("Tgid").first()?, tid as u32)]
        };
        // Unknown, both: the gate then reads what the task may not, never less.
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX);
        let dac = [
            caps::Capability::CAP_DAC_OVERRIDE,
            caps::Capability::CAP_DAC_READ_SEARCH,
        ]
        .into_iter()
        .filter(|cap| effective & cap.bitmask() != 0)
        .collect();
        Some(Task {
            tid,
            uid: *field("Uid").get(1)?,
            gid: *field("Gid").get(1)?,
            real_uid: *field("Uid").first()?,
            real_gid: *field("Gid").first()?,
            // Before Linux 4.10, which does not show it: taken as clear, under which set-ID
            // bits count (the side of refusing).
            no_new_privs: field("NoNewPrivs").first() == Some(&1),
            levels,
            started: std::cell::OnceCell::new(),
            root: std::cell::OnceCell::new(),
            groups: field("Groups"),
            dac,
        })
    }

    /// Its start time (None: it has gone).
    pub(super) fn started(&self) -> Option<u64> {
        *self.started.get_or_init(|| start_time(self.tid))
    }

    /// Its root directory, opened once per exec for every walk of it.
    pub(super) fn root(&self) -> std::io::Result<&std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        self.root
            .get_or_init(|| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                    .open(format!("/proc/{}/root", self.tid))
                    .map_err(|err| err.raw_os_error().unwrap_or(libc::EIO))
            })
            .as_ref()
            .map_err(|&errno| std::io::Error::from_raw_os_error(errno))
    }
}

/// The task's filesystem identity on this thread while alive (its user and group as
/// setfsuid/setfsgid, its supplementary groups, its CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH),
/// the gate's own again when dropped. `exact` is false where the gate could not take on all of
/// it (no CAP_SETGID for the groups, a capability it does not hold): a refusal it then meets may
/// not be the kernel's for the task.
pub(super) struct FsIdentity {
    pub(super) exact: bool,
    groups: Option<Vec<libc::gid_t>>,
    effective: Option<caps::CapsHashSet>,
    /// Whether anything was taken on, to give back.
    taken: bool,
}

/// The gate's own filesystem identity, as it is outside any [`FsIdentity`] (it never changes
/// otherwise): effective user and group, supplementary groups (sorted) and effective
/// capabilities. Read once.
struct Own {
    uid: u32,
    gid: u32,
    groups: Option<Vec<libc::gid_t>>,
    effective: Option<caps::CapsHashSet>,
}

fn own() -> &'static Own {
    static OWN: std::sync::OnceLock<Own> = std::sync::OnceLock::new();
    // SAFETY: geteuid and getegid cannot fail.
    OWN.get_or_init(|| Own {
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        groups: own_groups(),
        effective: caps::read(None, caps::CapSet::Effective).ok(),
    })
}

impl FsIdentity {
    pub(super) fn of(task: &Task) -> FsIdentity {
        // The gate's own identity already (root's tree under a root gate, an unprivileged
        // tree under its own user's gate): nothing to take on, or to give back.
        let own = own();
        let mut wanted = task.groups.clone();
        wanted.sort_unstable();
        wanted.dedup();
        if task.uid == own.uid
            && task.gid == own.gid
            && own.groups.as_ref() == Some(&wanted)
            && own
                .effective
                .as_ref()
                .is_some_and(|e| task.dac.iter().all(|cap| e.contains(cap)))
        {
            return FsIdentity {
                exact: true,
                groups: None,
                effective: None,
                taken: false,
            };
        }
        let effective = caps::read(None, caps::CapSet::Effective).ok();
        // SAFETY: setfsgid and setfsuid change this thread's filesystem IDs only.
        unsafe {
            libc::setfsgid(task.gid);
            libc::setfsuid(task.uid);
        }
        let mut exact = true;
        let groups = match own_groups() {
            Some(own) if own == wanted => None,
            // The system call, not glibc's setgroups, which sets every thread's.
            // SAFETY: setgroups(2) with a list of its length; this thread's groups only.
            Some(own)
                if unsafe { libc::syscall(libc::SYS_setgroups, wanted.len(), wanted.as_ptr()) }
                    == 0 =>
            {
                Some(own)
            }
            _ => {
                exact = false;
                None
            }
        };
        // setfsuid to another user than root took them from the effective set.
        let now = caps::read(None, caps::CapSet::Effective).ok();
        for &cap in &task.dac {
            if !now.as_ref().is_some_and(|e| e.contains(&cap)) {
                exact &= caps::raise(None, caps::CapSet::Effective, cap).is_ok();
            }
        }
        FsIdentity {
            exact: exact && effective.is_some(),
            groups,
            effective,
            taken: true,
        }
    }
}

/// This thread's supplementary groups, sorted. getgroups(2) itself, twice: nix's asks
/// sysconf(NGROUPS_MAX) first, which glibc reads from /proc at every call.
fn own_groups() -> Option<Vec<libc::gid_t>> {
    // SAFETY: getgroups(0, NULL) returns the count and writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0 as libc::gid_t; usize::try_from(count).ok()?];
    // SAFETY: room for `count` groups.
    let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    groups.truncate(usize::try_from(got).ok()?);
    groups.sort_unstable();
    groups.dedup();
    Some(groups)
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        if !self.taken {
            return;
        }
        // SAFETY: as above, back to the gate's own IDs and groups.
        unsafe {
            libc::setfsuid(libc::geteuid());
            libc::setfsgid(libc::getegid());
            if let Some(groups) = &self.groups {
                libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr());
            }
        }
        if let Some(effective) = &self.effective {
            let _ = caps::set(None, caps::CapSet::Effective, effective);
        }
    }
}

/// Bytes of another process's memory.
pub(super) fn read_memory(pid: i32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one local buffer of its length; the remote range is the kernel's to check.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n.max(0) as usize
}

/// A NUL-terminated string of another process, read a page at most at a time (a read
/// across into an unmapped page fails as a whole).
pub(super) fn read_string(pid: i32, mut addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < max {
        let room = 4096 - (addr % 4096) as usize;
        let mut chunk = vec![0u8; room.min(max - out.len()).max(1)];
        let n = read_memory(pid, addr, &mut chunk);
        if n == 0 {
            return None;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(out);
        }
        out.extend_from_slice(&chunk[..n]);
        addr += n as u64;
    }
    None
}

/// Bytes of another process's memory into several buffers in one call, each (address,
/// buffer) read in order, which stops at the first that fails: the bytes read, 0 on an error.
/// A buffer within one page is read whole or not at all.
pub(super) fn read_vectors(pid: i32, pieces: &mut [(u64, &mut [u8])]) -> usize {
    let local: Vec<libc::iovec> = pieces
        .iter_mut()
        .map(|(_, buf)| libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        })
        .collect();
    let remote: Vec<libc::iovec> = pieces
        .iter()
        .map(|(at, buf)| libc::iovec {
            iov_base: *at as *mut libc::c_void,
            iov_len: buf.len(),
        })
        .collect();
    // SAFETY: local buffers of their lengths; the remote ranges are the kernel's to check.
    let n = unsafe {
        libc::process_vm_readv(
            pid,
            local.as_ptr(),
            local.len() as libc::c_ulong,
            remote.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    n.max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(uid: u32, gid: u32, groups: Vec<u32>, dac: Vec<caps::Capability>) -> Task {
        Task {
            tid: 0,
            uid,
            gid,
            real_uid: uid,
            real_gid: gid,
            no_new_privs: false,
            levels: Vec::new(),
            started: std::cell::OnceCell::new(),
            root: std::cell::OnceCell::new(),
            groups,
            dac,
        }
    }

    /// The gate keeps its own identity only for a task whose user, group, supplementary
    /// groups and DAC capabilities it already has; any one of them other, it takes on the
    /// task's (and a file only its own user may read is then out of reach), and gives its own
    /// back after.
    #[test]
    fn the_gates_own_identity_is_kept_only_for_a_task_of_the_same() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: taking on another user's identity needs root");
            return;
        }
        let own = own();
        let groups = own.groups.clone().unwrap_or_default();
        let dac: Vec<caps::Capability> = [
            caps::Capability::CAP_DAC_OVERRIDE,
            caps::Capability::CAP_DAC_READ_SEARCH,
        ]
        .into_iter()
        .filter(|cap| own.effective.as_ref().is_some_and(|e| e.contains(cap)))
        .collect();
        let private = std::env::temp_dir().join(format!("gate-task-{}", std::process::id()));
        std::fs::write(&private, b"x").unwrap();
        std::fs::set_permissions(
            &private,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut other_groups = groups.clone();
        other_groups.push(4242);
        let rows = [
            (
                "the same",
                task(own.uid, own.gid, groups.clone(), dac.clone()),
                false,
            ),
            (
                "the same, fewer capabilities",
                task(own.uid, own.gid, groups.clone(), Vec::new()),
                false,
            ),
            (
                "another user",
                task(65534, own.gid, groups.clone(), Vec::new()),
                true,
            ),
            (
                "another group",
                task(own.uid, 65534, groups.clone(), dac.clone()),
                true,
            ),
            (
                "other groups",
                task(own.uid, own.gid, other_groups, dac.clone()),
                true,
            ),
        ];
        for (what, task, taken) in rows {
            let identity = FsIdentity::of(&task);
            assert_eq!(identity.taken, taken, "{what}");
            assert!(identity.exact, "{what}");
            let readable = std::fs::File::open(&private).is_ok();
            assert_eq!(readable, task.uid == own.uid, "{what}");
            drop(identity);
            assert!(
                std::fs::File::open(&private).is_ok(),
                "{what}: its own again"
            );
        }
        let _ = std::fs::remove_file(&private);
    }
}
