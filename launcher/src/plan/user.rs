//! `--user USER[:GROUP]`: who COMMAND will run as, looked up in the user and group
//! databases (`crate::apply::user` becomes that user).

use std::ffi::CString;

use anyhow::{anyhow, Context, Result};
use nix::unistd::{getgrouplist, Gid, Group, Uid};

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
    pub shell: String,
}

impl User {
    /// `nobody (uid 65534, gid 65534, groups 65534)`
    pub fn describe(&self) -> String {
        let groups = self
            .groups
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "{} (uid {}, gid {}, groups {groups})",
            self.name, self.uid, self.gid
        )
    }

    /// The variables a login sets, as systemd's User= and runuser(1) do.
    pub fn environment(&self) -> [(&'static str, String); 4] {
        [
            ("HOME", self.home.clone()),
            ("USER", self.name.clone()),
            ("LOGNAME", self.name.clone()),
            ("SHELL", self.shell.clone()),
        ]
    }
}

/// Looks USER (a name or a uid) and GROUP up in the user and group databases.
pub fn resolve(spec: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let by_name = nix::unistd::User::from_name(user_part)
        .with_context(|| format!("cannot look up user '{user_part}'"))?;
    let entry = match by_name {
        Some(entry) => entry,
        None => user_part
            .parse::<u32>()
            .ok()
            .and_then(|uid| {
                nix::unistd::User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
            })
            .ok_or_else(|| {
                anyhow!("--user {spec}: there is no user '{user_part}' (getent passwd {user_part})")
            })?,
    };
    let gid = match group_part {
        None => entry.gid,
        Some(group) => {
            let by_name = Group::from_name(group)
                .with_context(|| format!("cannot look up group '{group}'"))?;
            match by_name {
                Some(g) => g.gid,
                None => group
                    .parse::<u32>()
                    .ok()
                    .and_then(|gid| Group::from_gid(Gid::from_raw(gid)).ok().flatten())
                    .map(|g| g.gid)
                    .ok_or_else(|| {
                        anyhow!("--user {spec}: there is no group '{group}' (getent group {group})")
                    })?,
            }
        }
    };
    let c_name = CString::new(entry.name.clone()).context("user name contains a NUL byte")?;
    let mut groups: Vec<u32> = getgrouplist(&c_name, gid)
        .with_context(|| format!("cannot list the groups of user '{}'", entry.name))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    Ok(User {
        name: entry.name,
        uid: entry.uid.as_raw(),
        gid: gid.as_raw(),
        groups,
        home: entry.dir.to_string_lossy().into_owned(),
        shell: entry.shell.to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What --dry-run and --check print for `--user`: the name and every ID the switch sets.
    #[test]
    fn a_user_is_described_by_name_and_ids() {
        let user = resolve("nobody:nogroup").expect("nobody and nogroup exist here");
        let (uid, gid) = (user.uid, user.gid);
        assert_eq!(
            user.describe(),
            format!("nobody (uid {uid}, gid {gid}, groups {gid})")
        );
        let several = User {
            groups: vec![4, 27, 1000],
            ..user
        };
        assert_eq!(
            several.describe(),
            format!("nobody (uid {uid}, gid {gid}, groups 4,27,1000)")
        );
    }
}
