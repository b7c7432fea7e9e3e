//! `--user USER[:GROUP]`: become USER, keeping CAP_IPC_LOCK.
//!
//! The order is the one util-linux setpriv and systemd use. setresuid(2) away from uid 0
//! clears the permitted and effective sets, unless PR_SET_KEEPCAPS is set, and always
//! clears the ambient set; so: keep capabilities, drop supplementary groups and the group
//! IDs while still root, then the user IDs, and only then trim the capability sets to
//! CAP_IPC_LOCK and raise it in the ambient set. Every step is read back.
//!
//! The inheritable set is trimmed too, whatever the caller left there: a capability kept
//! inheritable would reach every program COMMAND executes whose file names it inheritable.
//! The bounding set is left as the caller gave it, as setpriv, su and systemd's `User=` do:
//! it grants nothing, and trimming it would make the execve(2) of a program with effective
//! file capabilities outside it (ping's `cap_net_raw+ep`) fail with EPERM (capabilities(7),
//! "Safety checking for capability-dumb binaries"). docs/privileges.md says how to trim it.

use anyhow::{bail, Context, Result};
use nix::unistd::{getgroups, getresgid, getresuid, setgroups, setresgid, setresuid, Gid, Uid};

use super::capabilities;
use crate::plan::user::User;

/// Becomes `user` for good, with CAP_IPC_LOCK alone, and verifies the end state.
pub fn switch(user: &User) -> Result<()> {
    let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
    let groups: Vec<Gid> = user.groups.iter().map(|&g| Gid::from_raw(g)).collect();

    nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS) failed")?;
    setgroups(&groups)
        .with_context(|| format!("cannot set the supplementary groups of {}", user.name))?;
    setresgid(gid, gid, gid).with_context(|| format!("cannot switch to gid {}", user.gid))?;
    setresuid(uid, uid, uid).with_context(|| format!("cannot switch to uid {}", user.uid))?;
    nix::sys::prctl::set_keepcaps(false).context("prctl(PR_SET_KEEPCAPS) failed")?;

    let ids = getresuid().context("getresuid failed")?;
    if [ids.real, ids.effective, ids.saved] != [uid; 3] {
        bail!(
            "user IDs are {ids:?} after switching to {}; refusing to run",
            user.uid
        );
    }
    let gids = getresgid().context("getresgid failed")?;
    if [gids.real, gids.effective, gids.saved] != [gid; 3] {
        bail!(
            "group IDs are {gids:?} after switching to {}; refusing to run",
            user.gid
        );
    }
    let mut now: Vec<u32> = getgroups()
        .context("getgroups failed")?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    now.sort_unstable();
    now.dedup();
    if now != user.groups {
        bail!(
            "supplementary groups are {now:?} after the switch, not {:?}; refusing to run",
            user.groups
        );
    }
    capabilities::keep_only_ipc_lock()
}
