//! The memory cgroup limit that applies to this process, for `--check`.
//!
//! Locked pages are charged to the memory cgroup like any others, but the cgroup cannot
//! reclaim them: a program that locks more than its cgroup allows is killed by the OOM
//! killer, and one that locks close to `memory.high` is throttled. The limit that applies
//! is the tightest one on the way from the process's cgroup up to the root of the
//! hierarchy. cgroup v2 (`0::/path` in /proc/self/cgroup, `memory.max` and `memory.high`)
//! is used when its memory controller is enabled there; otherwise cgroup v1's memory
//! hierarchy (`memory.limit_in_bytes`), as hybrid setups and older container hosts have.
//!
//! It reads the files; it does not follow cgroup namespaces or delegation beyond what
//! /proc/self/mountinfo shows.

use std::fs;
use std::path::{Path, PathBuf};

/// A limit and the cgroup directory that sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub bytes: u64,
    pub file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryCgroup {
    /// 1 or 2.
    pub version: u8,
    /// The cgroup as /proc/self/cgroup names it: `/system.slice/app.service`.
    pub path: String,
    /// The tightest hard limit above it (`memory.max`, `memory.limit_in_bytes`); none if
    /// every level is unlimited.
    pub max: Option<Bound>,
    /// cgroup v2's throttling limit (`memory.high`), the tightest.
    pub high: Option<Bound>,
    /// What it uses now (`memory.current`, `memory.usage_in_bytes`), memlock-run included.
    pub current: Option<u64>,
}

/// This process's memory cgroup, or `None` when no memory controller is mounted.
pub fn this_process() -> Option<MemoryCgroup> {
    let membership = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mounts = parse_mountinfo(&mountinfo);
    let mut v1 = None;
    let mut v2 = None;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path.to_owned());
        }
    }
    if let Some(path) = v2 {
        if let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2") {
            let found = walk(mount, &path, 2);
            if found.is_some() {
                return found;
            }
        }
    }
    let path = v1?;
    let mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "memory"))?;
    walk(mount, &path, 1)
}

struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    options: String,
}

/// `36 25 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory`
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let before: Vec<&str> = before.split(' ').collect();
            let mut after = after.split(' ');
            Some(Mount {
                root: unescape(before.get(3)?),
                point: PathBuf::from(unescape(before.get(4)?)),
                fstype: after.next()?.to_owned(),
                options: after.nth(1)?.to_owned(),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn walk(mount: &Mount, path: &str, version: u8) -> Option<MemoryCgroup> {
    // Inside a cgroup namespace the path is already relative to the mount's root.
    let relative = path
        .strip_prefix(mount.root.as_str())
        .unwrap_or(path)
        .trim_start_matches('/');
    let leaf = mount.point.join(relative);
    let (max_file, current_file) = match version {
        2 => ("memory.max", "memory.current"),
        _ => ("memory.limit_in_bytes", "memory.usage_in_bytes"),
    };
    if !leaf.join(max_file).exists() && !leaf.join(current_file).exists() {
        return None;
    }
    let mut cgroup = MemoryCgroup {
        version,
        path: path.to_owned(),
        max: None,
        high: None,
        current: read_value(&leaf.join(current_file)),
    };
    let mut dir: Option<&Path> = Some(&leaf);
    while let Some(here) = dir {
        tighten(&mut cgroup.max, &here.join(max_file));
        if version == 2 {
            tighten(&mut cgroup.high, &here.join("memory.high"));
        }
        if here == mount.point {
            break;
        }
        dir = here.parent();
    }
    Some(cgroup)
}

fn tighten(bound: &mut Option<Bound>, file: &Path) {
    if let Some(bytes) = read_value(file) {
        if bound.as_ref().map_or(true, |b| bytes < b.bytes) {
            *bound = Some(Bound {
                bytes,
                file: file.to_owned(),
            });
        }
    }
}

/// A byte count; `None` for `max`, for v1's "unlimited" (a page-rounded i64::MAX), or
/// when the file is missing.
fn read_value(file: &Path) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 62).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let mounts = parse_mountinfo(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
             30 23 0:26 /ns /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
             40 23 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw\n",
        );
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mounts[0].options, "rw,memory");
        assert_eq!(mounts[1].fstype, "cgroup2");
        assert_eq!(mounts[1].root, "/ns");
        assert_eq!(mounts[2].point, Path::new("/mnt/with space"));
    }

    #[test]
    fn the_tightest_limit_on_the_way_up_applies() {
        let root = std::env::temp_dir().join(format!("memlock-run-cgroup-{}", std::process::id()));
        let leaf = root.join("system.slice/app.service");
        fs::create_dir_all(&leaf).unwrap();
        fs::write(root.join("system.slice/memory.max"), "67108864\n").unwrap();
        fs::write(root.join("system.slice/memory.high"), "max\n").unwrap();
        fs::write(leaf.join("memory.max"), "max\n").unwrap();
        fs::write(leaf.join("memory.high"), "33554432\n").unwrap();
        fs::write(leaf.join("memory.current"), "1048576\n").unwrap();
        let mount = Mount {
            root: "/".into(),
            point: root.clone(),
            fstype: "cgroup2".into(),
            options: "rw".into(),
        };
        let found = walk(&mount, "/system.slice/app.service", 2).unwrap();
        assert_eq!(found.max.as_ref().map(|b| b.bytes), Some(64 << 20));
        assert_eq!(
            found.max.unwrap().file,
            root.join("system.slice/memory.max")
        );
        assert_eq!(found.high.map(|b| b.bytes), Some(32 << 20));
        assert_eq!(found.current, Some(1 << 20));
        assert!(
            walk(&mount, "/elsewhere", 2).is_none(),
            "no memory files: no memory controller"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn this_process_reads_without_failing() {
        // Whatever the host has; a memory cgroup, when found, names a limit file it read.
        if let Some(cgroup) = this_process() {
            assert!(cgroup.version == 1 || cgroup.version == 2);
            if let Some(max) = cgroup.max {
                assert!(max.file.exists());
            }
        }
    }
}
