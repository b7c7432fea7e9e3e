//! What only `--check` reports of the machine: memory and swap, the memory cgroup, whether
//! the kernel has MCL_ONFAULT, and the doors by which locked memory can still leave RAM
//! (swap devices and their encryption, zswap, hibernation, the core dump pattern).
//!
//! Read once by [`Machine::read`]; the findings that judge them are `crate::say::check`'s.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::cgroup::{self, MemoryCgroup};

#[derive(Clone, Debug)]
pub struct Machine {
    /// /proc/meminfo, where it can be read.
    pub meminfo: Option<Meminfo>,
    /// /proc/swaps, each device with what it is made of.
    pub swaps: Vec<SwapDevice>,
    pub zswap: bool,
    pub power: Power,
    /// /proc/sys/kernel/core_pattern.
    pub core_pattern: Option<String>,
    /// This process's memory cgroup, where a memory controller is mounted.
    pub cgroup: Option<MemoryCgroup>,
    /// What mlock2(NULL, 0, MLOCK_ONFAULT) said: Ok, or the errno.
    pub onfault: Result<(), i32>,
    /// Transparent huge pages, for `--huge`; None where the kernel has none.
    pub thp: Option<Thp>,
}

/// /sys/kernel/mm/transparent_hugepage: the modes in force, and how much free memory
/// /proc/buddyinfo holds in blocks of a huge page or more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thp {
    /// `enabled`: always, madvise or never.
    pub enabled: String,
    /// `defrag`: always, defer, defer+madvise, madvise or never.
    pub defrag: String,
    /// Bytes of free memory in blocks of 2 MiB or more, over every zone; None where
    /// /proc/buddyinfo cannot be read.
    pub free_huge: Option<u64>,
}

/// The fields of /proc/meminfo `--check` reads, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// What hibernation would need: /sys/power/state and disk, the kernel command line's
/// `resume=`, /sys/power/resume.
#[derive(Clone, Debug, Default)]
pub struct Power {
    pub state: Option<String>,
    pub disk: Option<String>,
    pub cmdline: String,
    pub resume: Option<String>,
}

impl Machine {
    pub fn read() -> Machine {
        let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let meminfo = match (meminfo(&text, "MemTotal"), meminfo(&text, "MemAvailable")) {
            (Some(total), Some(available)) => Some(Meminfo {
                total,
                available,
                swap_total: meminfo(&text, "SwapTotal").unwrap_or(0),
                swap_free: meminfo(&text, "SwapFree").unwrap_or(0),
            }),
            _ => None,
        };
        let swaps = swap_names(&fs::read_to_string("/proc/swaps").unwrap_or_default())
            .into_iter()
            .map(|name| {
                let kind = swap_kind(&name, Path::new("/sys"));
                SwapDevice { name, kind }
            })
            .collect();
        Machine {
            meminfo,
            swaps,
            zswap: fs::read_to_string("/sys/module/zswap/parameters/enabled")
                .is_ok_and(|v| matches!(v.trim(), "Y" | "1")),
            power: Power {
                state: fs::read_to_string("/sys/power/state").ok(),
                disk: fs::read_to_string("/sys/power/disk").ok(),
                cmdline: fs::read_to_string("/proc/cmdline").unwrap_or_default(),
                resume: fs::read_to_string("/sys/power/resume").ok(),
            },
            core_pattern: fs::read_to_string("/proc/sys/kernel/core_pattern").ok(),
            cgroup: cgroup::this_process(),
            onfault: onfault(),
            thp: thp(Path::new("/sys/kernel/mm/transparent_hugepage")),
        }
    }
}

fn thp(dir: &Path) -> Option<Thp> {
    let mode = |name: &str| {
        fs::read_to_string(dir.join(name))
            .ok()
            .and_then(|text| selected(&text))
    };
    Some(Thp {
        enabled: mode("enabled")?,
        defrag: mode("defrag").unwrap_or_default(),
        free_huge: fs::read_to_string("/proc/buddyinfo")
            .ok()
            .map(|text| free_huge(&text, crate::elf::page_size())),
    })
}

/// The mode in brackets of a sysfs choice: `always [madvise] never` is `madvise`.
fn selected(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text.get(start..)?.find(']')?;
    Some(text.get(start..start + len)?.to_owned())
}

/// Free memory in blocks of a 2 MiB huge page or more: /proc/buddyinfo gives, for each zone,
/// how many free blocks of 2^order pages it holds, order 0 first.
fn free_huge(buddyinfo: &str, page: u64) -> u64 {
    const HUGE: u64 = 2 << 20;
    let mut bytes = 0u64;
    for line in buddyinfo.lines() {
        let Some((_, counts)) = line.split_once("zone") else {
            continue;
        };
        // The zone's name, then one count an order.
        for (order, count) in counts.split_whitespace().skip(1).enumerate() {
            let block = page.checked_shl(order as u32).unwrap_or(u64::MAX);
            if block >= HUGE {
                let count: u64 = count.parse().unwrap_or(0);
                bytes = bytes.saturating_add(count.saturating_mul(block));
            }
        }
    }
    bytes
}

/// Whether the kernel has MCL_ONFAULT (Linux 4.4). mlock2(2) came with it and takes the
/// same flag: mlock2(NULL, 0, MLOCK_ONFAULT) locks nothing, and fails with ENOSYS or
/// EINVAL where the flag is unknown. EPERM (a zero limit without CAP_IPC_LOCK) is decided
/// after the flags are, so it also means the kernel knows the flag.
fn onfault() -> Result<(), i32> {
    // SAFETY: a zero-length range locks nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mlock2,
            std::ptr::null::<u8>(),
            0usize,
            libc::MLOCK_ONFAULT,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOSYS))
    }
}

/// /proc/meminfo's `Name:   1234 kB`, in bytes.
fn meminfo(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}
/// What a swap area is made of, as far as secrets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapKind {
    /// dm-crypt somewhere beneath it (a `CRYPT-` device-mapper UUID).
    Encrypted,
    /// zram: compressed RAM, never written to disk.
    Ram,
    Unencrypted,
    /// Its device could not be found in /sys.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct SwapDevice {
    pub name: String,
    pub kind: SwapKind,
}

/// The first column of /proc/swaps (spaces in names are escaped as `\040`).
fn swap_names(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| name.replace("\\040", " "))
        .collect()
}

/// A swap partition's own device, or for a swap file the device of its filesystem, and the
/// devices under it (`slaves/`: LVM over dm-crypt, a partition of an encrypted disk), looked
/// up in `sys`/dev/block/MAJOR:MINOR.
pub fn swap_kind(name: &str, sys: &Path) -> SwapKind {
    if Path::new(name)
        .file_name()
        .and_then(|f| f.to_str())
        .is_some_and(|f| f.starts_with("zram"))
    {
        return SwapKind::Ram;
    }
    let Ok(meta) = fs::metadata(name) else {
        return SwapKind::Unknown;
    };
    let dev = if meta.file_type().is_block_device() {
        meta.rdev()
    } else {
        meta.dev()
    };
    let node = sys.join(format!(
        "dev/block/{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    ));
    match fs::canonicalize(&node) {
        Ok(dir) => block_kind(&dir, 0),
        Err(_) => SwapKind::Unknown,
    }
}

/// Encrypted if this block device or any beneath it is a dm-crypt target. A partition's
/// `slaves/` is empty; its disk is its parent directory in /sys.
fn block_kind(dir: &Path, depth: u32) -> SwapKind {
    if depth > 8 {
        return SwapKind::Unknown;
    }
    if fs::read_to_string(dir.join("dm/uuid")).is_ok_and(|uuid| uuid.starts_with("CRYPT-")) {
        return SwapKind::Encrypted;
    }
    let mut below: Vec<PathBuf> = fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().and_then(|e| fs::canonicalize(e.path()).ok()))
                .collect()
        })
        .unwrap_or_default();
    if dir.join("partition").exists() {
        below.extend(dir.parent().map(Path::to_owned));
    }
    if below
        .iter()
        .any(|d| block_kind(d, depth + 1) == SwapKind::Encrypted)
    {
        SwapKind::Encrypted
    } else {
        SwapKind::Unencrypted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_is_read_from_sysfs() {
        // SAFETY: sysconf has no preconditions.
        assert_eq!(
            crate::elf::page_size(),
            unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
        );
        let dir = Path::new("/sys/kernel/mm/transparent_hugepage");
        match fs::read_to_string(dir.join("enabled")) {
            Ok(text) => {
                let thp = thp(dir).expect("THP modes read");
                assert!(
                    text.contains(&format!("[{}]", thp.enabled)),
                    "{text} {thp:?}"
                );
                assert!(!thp.defrag.is_empty(), "{thp:?}");
                assert!(thp.free_huge.is_some(), "{thp:?}");
            }
            Err(_) => assert_eq!(thp(dir), None),
        }
        assert_eq!(thp(Path::new("/nonexistent")), None);
    }

    #[test]
    fn thp_modes_and_free_huge_blocks() {
        assert_eq!(
            selected("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            selected("always defer [defer+madvise] madvise never").as_deref(),
            Some("defer+madvise")
        );
        assert_eq!(selected("always madvise never"), None);
        // Orders 9 and 10 are 2 and 4 MiB with 4 KiB pages; order 8 (1 MiB) does not count.
        let buddyinfo = "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3\n\
                         Node 0, zone   Normal  45170  15179   6691   3299   4795   3239   1911    928    898    518    941\n";
        assert_eq!(
            free_huge(buddyinfo, 4096),
            (1 + 518) * (2 << 20) + (3 + 941) * (4 << 20)
        );
        assert_eq!(free_huge("", 4096), 0);
        // 64 KiB pages: order 5 is 2 MiB.
        assert_eq!(
            free_huge("Node 0, zone Normal 0 0 0 0 0 2\n", 64 << 10),
            2 * (2 << 20)
        );
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:       16318480 kB\nSwapTotal:       2097148 kB\nSwapFree:  0 kB\n";
        assert_eq!(meminfo(text, "SwapTotal"), Some(2097148 * 1024));
        assert_eq!(meminfo(text, "SwapFree"), Some(0));
        assert_eq!(meminfo(text, "Swap"), None);
    }

    #[test]
    fn swaps_are_named_from_the_first_column() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n/dev/dm-1 partition 2097148 0 -2\n\
                    /swap\\040file file 1024 0 -3\n";
        assert_eq!(swap_names(text), ["/dev/dm-1", "/swap file"]);
        assert!(swap_names("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn dm_crypt_beneath_a_device_counts() {
        let sys = std::env::temp_dir().join(format!("memlock-run-sys-{}", std::process::id()));
        let crypt = sys.join("block/dm-0");
        let lvm = sys.join("block/dm-1");
        fs::create_dir_all(crypt.join("dm")).unwrap();
        fs::create_dir_all(lvm.join("dm")).unwrap();
        fs::create_dir_all(lvm.join("slaves")).unwrap();
        fs::write(crypt.join("dm/uuid"), "CRYPT-LUKS2-abc-swap\n").unwrap();
        fs::write(lvm.join("dm/uuid"), "LVM-xyz\n").unwrap();
        assert_eq!(block_kind(&crypt, 0), SwapKind::Encrypted);
        assert_eq!(block_kind(&lvm, 0), SwapKind::Unencrypted);
        std::os::unix::fs::symlink(&crypt, lvm.join("slaves/dm-0")).unwrap();
        assert_eq!(block_kind(&lvm, 0), SwapKind::Encrypted);
        fs::remove_dir_all(&sys).unwrap();
        assert_eq!(swap_kind("/dev/zram0", Path::new("/sys")), SwapKind::Ram);
        assert_eq!(
            swap_kind("/nonexistent/swap", Path::new("/sys")),
            SwapKind::Unknown
        );
    }
}
