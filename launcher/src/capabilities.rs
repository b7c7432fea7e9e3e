//! CAP_IPC_LOCK, and only it, across execve(2).
//!
//! A capability survives exec into a program without file capabilities only through the
//! ambient set (capabilities(7)), and a capability may only be raised there while it is
//! both permitted and inheritable. So when memlock-run holds CAP_IPC_LOCK (root, sudo,
//! systemd's AmbientCapabilities=, or the package's opt-in file capability), it makes it
//! inheritable and ambient, and checks that it is, before exec. It never adds any other
//! capability; what the caller already passed down through the ambient set stays as it was.

use anyhow::{bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

use crate::size::Limit;

/// The privileges memlock-run was started with.
#[derive(Clone, Debug)]
pub struct Privilege {
    pub ruid: u32,
    pub euid: u32,
    /// AT_SECURE: the kernel marked this exec as a privilege gain (set-ID or file capability).
    pub at_secure: bool,
    pub permitted: CapsHashSet,
    pub effective: CapsHashSet,
    /// The process is in the initial user namespace. In any other (rootless containers,
    /// `unshare --user`) its capabilities are the namespace's: mlock(2) asks for
    /// CAP_IPC_LOCK in the initial one, so RLIMIT_MEMLOCK binds it all the same.
    pub initial_user_ns: bool,
}

impl Privilege {
    pub fn detect() -> Result<Privilege> {
        let permitted = caps::read(None, CapSet::Permitted)
            .context("cannot read memlock-run's capabilities")?;
        let effective = caps::read(None, CapSet::Effective)
            .context("cannot read memlock-run's capabilities")?;
        // SAFETY: getauxval has no preconditions.
        let at_secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
        Ok(Privilege {
            ruid: nix::unistd::getuid().as_raw(),
            euid: nix::unistd::geteuid().as_raw(),
            at_secure,
            permitted,
            effective,
            initial_user_ns: in_initial_user_ns(),
        })
    }

    /// CAP_IPC_LOCK that the kernel honours for locking: held, in the initial user namespace.
    pub fn lock_exempt(&self) -> bool {
        self.has(Capability::CAP_IPC_LOCK) && self.initial_user_ns
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.permitted.contains(&cap)
    }

    pub fn has_effective(&self, cap: Capability) -> bool {
        self.effective.contains(&cap)
    }

    /// memlock-run holds more than the user who started it: the kernel marked its exec as a
    /// privilege gain (AT_SECURE), which its own file did (a file capability; a set-ID bit is
    /// refused before this is asked). Then nothing the caller controls may choose what it
    /// loads, and it acts as root for nobody.
    ///
    /// Holding a capability is not being elevated: capabilities that arrive through the
    /// ambient set (systemd's `AmbientCapabilities=` with `User=`, `setpriv --ambient-caps`,
    /// the nested runs of a `--user` run) are the caller's own, and the kernel does not set
    /// AT_SECURE for them (security/commoncap.c: the permitted set did not grow beyond the
    /// ambient one).
    pub fn elevated(&self) -> bool {
        self.at_secure || self.euid != self.ruid
    }

    /// Refuses a set-user-ID or set-group-ID memlock-run: exec keeps the effective IDs, so
    /// COMMAND would run as the file's owner. The supported way to let users lock memory is
    /// the file capability `cap_ipc_lock+p`, which passes nothing but CAP_IPC_LOCK.
    pub fn refuse_set_id(&self) -> Result<()> {
        let (rgid, egid) = (
            nix::unistd::getgid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        if self.euid != self.ruid || egid != rgid {
            bail!(
                "refusing to run: memlock-run is installed set-user-ID or set-group-ID (real uid {}, effective uid \
                 {}; real gid {rgid}, effective gid {egid}), and COMMAND would inherit those IDs; remove the set-ID \
                 bit (chmod u-s,g-s) and grant cap_ipc_lock+p instead, as the package's opt-in mode does",
                self.ruid,
                self.euid
            );
        }
        Ok(())
    }

    pub fn is_root(&self) -> bool {
        self.euid == 0 && self.ruid == 0
    }
}

/// Makes CAP_IPC_LOCK inheritable and ambient, so that it survives exec, and verifies it.
pub fn pass_ipc_lock() -> Result<()> {
    let cap = Capability::CAP_IPC_LOCK;
    caps::raise(None, CapSet::Inheritable, cap).context(
        "cannot make CAP_IPC_LOCK inheritable, which passing it to COMMAND needs (is it outside the bounding set?)",
    )?;
    caps::raise(None, CapSet::Ambient, cap).context(
        "cannot raise CAP_IPC_LOCK in the ambient set, which passing it to COMMAND needs (securebits may forbid \
         ambient capabilities: SECBIT_NO_CAP_AMBIENT_RAISE)",
    )?;
    if !caps::has_cap(None, CapSet::Ambient, cap)
        .context("cannot read the ambient capability set")?
    {
        bail!("CAP_IPC_LOCK is not in the ambient set after raising it; refusing to run COMMAND without it");
    }
    Ok(())
}

/// After a user switch: CAP_IPC_LOCK alone in the permitted, inheritable and ambient sets,
/// and nothing effective, so that COMMAND starts with exactly CAP_IPC_LOCK.
pub fn keep_only_ipc_lock() -> Result<()> {
    let only: CapsHashSet = [Capability::CAP_IPC_LOCK].into_iter().collect();
    caps::clear(None, CapSet::Ambient).context("cannot clear the ambient capability set")?;
    caps::clear(None, CapSet::Effective).context("cannot clear the effective capability set")?;
    caps::set(None, CapSet::Inheritable, &only)
        .context("cannot set the inheritable capability set")?;
    caps::set(None, CapSet::Permitted, &only)
        .context("cannot reduce the permitted capability set")?;
    pass_ipc_lock()?;
    for set in [CapSet::Permitted, CapSet::Inheritable, CapSet::Ambient] {
        let now = caps::read(None, set)
            .with_context(|| format!("cannot read the {set:?} capability set"))?;
        if now != only {
            bail!("the {set:?} capability set is {now:?} after the switch, not CAP_IPC_LOCK alone; refusing to run");
        }
    }
    if !caps::read(None, CapSet::Effective)
        .context("cannot read the effective capability set")?
        .is_empty()
    {
        bail!("capabilities remain effective after the switch; refusing to run");
    }
    Ok(())
}

/// The note for a process that was granted CAP_IPC_LOCK without receiving it: the capability
/// is in its bounding set, which has been narrowed (CAP_SYS_ADMIN is out, as in every
/// unprivileged container and in a systemd unit with CapabilityBoundingSet=), yet it does not
/// hold it, and RLIMIT_MEMLOCK will bind COMMAND. That is a non-root container started with
/// `--cap-add IPC_LOCK` or Kubernetes' `capabilities.add: [IPC_LOCK]`: the runtime puts added
/// capabilities in the bounding set (and for Kubernetes the permitted set), but no ambient
/// capability reaches a non-root process through exec. None in every other case: an ordinary
/// user on a host has the full bounding set, and the limit's own messages speak for it.
pub fn granted_but_not_held_note(holds_ipc_lock: bool, memlock_soft: Limit) -> Option<String> {
    let Limit::Bytes(limit) = memlock_soft else {
        return None;
    };
    let bounding = caps::read(None, CapSet::Bounding).ok()?;
    if holds_ipc_lock
        || !bounding.contains(&Capability::CAP_IPC_LOCK)
        || bounding.contains(&Capability::CAP_SYS_ADMIN)
    {
        return None;
    }
    Some(format!(
        "CAP_IPC_LOCK is in this process's bounding set but memlock-run does not hold it, so RLIMIT_MEMLOCK ({}) \
         bounds what COMMAND can lock: a container granted IPC_LOCK (Kubernetes capabilities.add, --cap-add) gives \
         it to a non-root user only through a file capability; give memlock-run one in the image (setcap \
         cap_ipc_lock+p /usr/bin/memlock-run, mode 0755; Docker's no-new-privileges defeats it, podman passes \
         added capabilities itself), or raise the limit (docker or podman run --ulimit memlock=-1), or in a systemd \
         unit set AmbientCapabilities=CAP_IPC_LOCK",
        crate::size::show(limit)
    ))
}

/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
pub fn in_initial_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}
