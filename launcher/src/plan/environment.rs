//! COMMAND's environment: the shim appended to `LD_PRELOAD` and its settings.
//!
//! A user's own `LD_PRELOAD` is kept and the shim goes after it (sanitizer runtimes must
//! come first in the list). Every inherited `MEMLOCK_RUN_*` variable is dropped before the
//! launcher writes its own, so that the shim only ever acts on what this run decided.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use memlock_run_protocol::{Config, PREFIX};

pub const LD_PRELOAD: &str = "LD_PRELOAD";

/// The environment for COMMAND, in the original order with additions at the end.
pub fn environment(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    shim: &Path,
    config: &Config,
    overrides: &[(&str, String)],
) -> Vec<(OsString, OsString)> {
    let mut env = without_settings(inherited);

    // An environment may hold a name twice (whoever started memlock-run built it by hand);
    // ld.so honours the last LD_PRELOAD. That one is the user's, and `set` leaves one entry.
    let preload = env
        .iter()
        .rev()
        .find(|(name, _)| name == LD_PRELOAD)
        .map(|(_, value)| value.clone());
    set(&mut env, LD_PRELOAD, with_shim(preload.as_deref(), shim));
    config.encode(|name, value| set(&mut env, name, value.into()));
    for (name, value) in overrides {
        set(&mut env, name, value.into());
    }
    env
}

/// The environment for COMMAND when it is locked without the shim (the ptrace method into
/// an image that would load it wrongly): inherited `MEMLOCK_RUN_*` settings still go, so that
/// nothing of a caller's reaches a shim further down; `LD_PRELOAD` stays the user's own.
pub fn without_shim(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    overrides: &[(&str, String)],
) -> Vec<(OsString, OsString)> {
    let mut env = without_settings(inherited);
    for (name, value) in overrides {
        set(&mut env, name, value.into());
    }
    env
}

/// The inherited environment less every `MEMLOCK_RUN_*` variable: only this run's settings
/// may reach a shim.
fn without_settings(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    inherited
        .into_iter()
        .filter(|(name, _)| !name.as_bytes().starts_with(PREFIX.as_bytes()))
        .collect()
}

/// `LD_PRELOAD` with the shim after the user's entries, once.
fn with_shim(current: Option<&OsStr>, shim: &Path) -> OsString {
    let shim = shim.as_os_str();
    let Some(current) = current.filter(|value| !value.is_empty()) else {
        return shim.to_owned();
    };
    let present = current
        .as_bytes()
        .split(|&b| b == b':' || b == b' ')
        .any(|entry| entry == shim.as_bytes());
    if present {
        return current.to_owned();
    }
    let mut value = current.to_owned();
    value.push(":");
    value.push(shim);
    value
}

/// Sets `name` in its first place and drops any other entry of that name: getenv(3) reads the
/// first, ld.so the last, and they must agree.
fn set(env: &mut Vec<(OsString, OsString)>, name: &str, value: OsString) {
    match env.iter().position(|(n, _)| n == name) {
        Some(first) => {
            env[first].1 = value;
            let mut index = 0;
            env.retain(|(n, _)| {
                index += 1;
                index - 1 == first || n != name
            });
        }
        None => env.push((name.into(), value)),
    }
}

/// The name execve(2) of `path` gives a process: its last component, 15 bytes at most
/// (protocol::COMM).
pub fn comm_for(path: &Path) -> OsString {
    let bytes = path.as_os_str().as_encoded_bytes();
    let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
    OsString::from_vec(last.iter().take(15).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_given_twice_leaves_one_entry_with_the_shim() {
        let inherited = [
            ("LD_PRELOAD", "/a.so"),
            ("PATH", "/bin"),
            ("LD_PRELOAD", ""),
            ("LD_PRELOAD", "/b.so"),
        ]
        .map(|(n, v)| (OsString::from(n), OsString::from(v)));
        let config = Config::default();
        let env = environment(inherited, Path::new("/shim.so"), &config, &[]);
        let preloads: Vec<_> = env.iter().filter(|(n, _)| n == LD_PRELOAD).collect();
        assert_eq!(preloads.len(), 1, "{env:?}");
        // ld.so would have used the last one: that is the user's preload, kept first.
        assert_eq!(preloads[0].1, "/b.so:/shim.so");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(n, v)| (n.into(), v.into())).collect()
    }

    fn get<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn the_shim_is_appended_to_the_users_preload() {
        let shim = Path::new("/usr/lib/memlock-run/libmemlock_run_shim.so");
        let out = environment(
            env(&[("LD_PRELOAD", "/opt/libfoo.so")]),
            shim,
            &Config::default(),
            &[],
        );
        assert_eq!(
            get(&out, "LD_PRELOAD"),
            Some("/opt/libfoo.so:/usr/lib/memlock-run/libmemlock_run_shim.so")
        );
        let again = environment(out.clone(), shim, &Config::default(), &[]);
        assert_eq!(
            get(&again, "LD_PRELOAD"),
            get(&out, "LD_PRELOAD"),
            "nested runs add the shim once"
        );
        let out = environment(env(&[]), shim, &Config::default(), &[]);
        assert_eq!(
            get(&out, "LD_PRELOAD"),
            Some("/usr/lib/memlock-run/libmemlock_run_shim.so")
        );
    }

    #[test]
    fn inherited_protocol_variables_are_replaced() {
        let shim = Path::new("/shim.so");
        let inherited = env(&[
            ("MEMLOCK_RUN_FLAGS", "future"),
            ("MEMLOCK_RUN_SOMETHING", "x"),
            ("PATH", "/bin"),
        ]);
        let out = environment(
            inherited,
            shim,
            &Config::default(),
            &[("HOME", "/home/a".into())],
        );
        assert_eq!(get(&out, "MEMLOCK_RUN_FLAGS"), Some("current"));
        assert_eq!(get(&out, "MEMLOCK_RUN_SOMETHING"), None);
        assert_eq!(get(&out, "PATH"), Some("/bin"));
        assert_eq!(get(&out, "HOME"), Some("/home/a"));
        assert_eq!(out[0].0, "PATH", "the original order is kept");
    }
}
