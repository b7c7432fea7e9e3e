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
/// and nothing effective, so that COMMAND starts with exactly CAP_IPC_LOCK (the kernel makes
/// the effective set the ambient one at exec). The inheritable set is set, not added to:
/// what the caller left there would reach the programs COMMAND executes whose file
/// capabilities name it inheritable. The bounding set is not touched (see user.rs).
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
