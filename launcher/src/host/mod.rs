//! Facts about this process and this machine, read once: who memlock-run runs as and with
//! what, its limits and environment, the kernel's version and settings, and where
//! memlock-run and its shim are.
//!
//! The plan (`crate::plan`) decides from a [`Host`] and the request alone, so every rule is a
//! function of values a test can write down literally: `Host { yama: Some(2), .. }`. Nothing
//! here decides or changes anything. [`Machine`] holds what only `--check` reports (memory,
//! swap, the memory cgroup, the doors secrets leave by), which a run does not read.

pub mod cgroup;
pub mod install;
pub mod machine;
pub mod procfs;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::{getrlimit, Resource};

pub use install::Shim;
pub use machine::Machine;

use crate::size::{Limit, Rlimit};

/// What a plan is decided from.
#[derive(Clone, Debug)]
pub struct Host {
    pub ids: Ids,
    /// AT_SECURE: the kernel marked memlock-run's exec as a privilege gain (a file capability;
    /// a set-ID bit, which is refused first).
    pub at_secure: bool,
    pub caps: Caps,
    pub no_new_privs: bool,
    /// PR_GET_SECUREBITS, where it can be read.
    pub securebits: Option<u32>,
    /// The initial user namespace: in any other (rootless containers, `unshare --user`) a
    /// capability is the namespace's, and mlock(2) asks for CAP_IPC_LOCK in the initial one.
    pub initial_user_ns: bool,
    pub limits: Limits,
    /// The environment memlock-run was given, in order: COMMAND inherits it.
    pub env: Vec<(OsString, OsString)>,
    /// The kernel's major and minor version.
    pub kernel: Option<(u32, u32)>,
    /// `kernel.yama.ptrace_scope`, where Yama is built in.
    pub yama: Option<u8>,
    /// A mandatory access control module (SELinux, AppArmor, Smack, TOMOYO) may have a say
    /// in who reads whose memory ([`procfs::mandatory_access_control`]).
    pub mac: bool,
    pub pid: u32,
    /// The process tracing memlock-run, with its name.
    pub tracer: Option<(i32, String)>,
    pub seccomp: Seccomp,
    /// memlock-run's own executable: where the shim sends programs, what the gate lets by.
    pub exe: Option<Executable>,
    /// The preload shim, or why it cannot be used.
    pub shim: Result<Shim, String>,
    /// What only `--check` reports; None in a run.
    pub machine: Option<Machine>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// memlock-run's capability sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub permitted: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub bounding: CapsHashSet,
    /// None where the kernel has no ambient capabilities (Linux 4.3 added them).
    pub ambient: Option<CapsHashSet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memlock: Rlimit,
    pub stack: Rlimit,
    pub address_space: Rlimit,
    pub core: Rlimit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seccomp {
    /// `Seccomp:` of /proc/self/status: 0 none, 1 strict, 2 filter.
    pub mode: u8,
    /// The one filter is an outer run's exec gate.
    pub only_gate: bool,
    /// The kernel's sizes of a seccomp notification and its response
    /// (SECCOMP_GET_NOTIF_SIZES), or why the seccomp system call answered none.
    pub notif_sizes: Result<(u16, u16), String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executable {
    pub path: PathBuf,
    /// Device and inode.
    pub id: (u64, u64),
}

const SECCOMP_GET_NOTIF_SIZES: libc::c_ulong = 3;

impl Ids {
    /// This process's real and effective IDs.
    pub fn read() -> Ids {
        Ids {
            uid: nix::unistd::getuid().as_raw(),
            euid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }
}

impl Host {
    /// This process, as it is now.
    pub fn read() -> Result<Host> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let read_set = |set: CapSet| -> Result<CapsHashSet> {
            caps::read(None, set)
                .map_err(|err| anyhow::anyhow!("cannot read the {set:?} capability set: {err}"))
        };
        // The bounding and ambient sets from status (one read, not a prctl per capability),
        // or from the kernel where /proc is not there.
        let from_mask = |mask: u64| -> CapsHashSet {
            caps::all()
                .into_iter()
                .filter(|c| mask & c.bitmask() != 0)
                .collect()
        };
        let bounding = match procfs::cap_mask(&status, "CapBnd") {
            Some(mask) => from_mask(mask),
            None => read_set(CapSet::Bounding)?,
        };
        let ambient = match procfs::cap_mask(&status, "CapAmb") {
            Some(mask) => Some(from_mask(mask)),
            None if status.is_empty() => caps::read(None, CapSet::Ambient).ok(),
            None => None,
        };
        // SAFETY: prctl queries without pointers; getauxval has no preconditions.
        let (no_new_privs, securebits, at_secure) = unsafe {
            (
                libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
                libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0),
                libc::getauxval(libc::AT_SECURE) != 0,
            )
        };
        let exe = std::env::current_exe().ok().and_then(|path| {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata("/proc/self/exe").ok()?;
            Some(Executable {
                path,
                id: (meta.dev(), meta.ino()),
            })
        });
        let mode = procfs::field_of(&status, "Seccomp")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        Ok(Host {
            ids: Ids::read(),
            at_secure,
            caps: Caps {
                permitted: read_set(CapSet::Permitted)
                    .context("cannot read memlock-run's capabilities")?,
                effective: read_set(CapSet::Effective)
                    .context("cannot read memlock-run's capabilities")?,
                inheritable: read_set(CapSet::Inheritable)
                    .context("cannot read memlock-run's capabilities")?,
                bounding,
                ambient,
            },
            no_new_privs,
            securebits: u32::try_from(securebits).ok(),
            initial_user_ns: in_initial_user_ns(),
            limits: Limits {
                memlock: rlimit(Resource::RLIMIT_MEMLOCK)?,
                stack: rlimit(Resource::RLIMIT_STACK)?,
                address_space: rlimit(Resource::RLIMIT_AS)?,
                core: rlimit(Resource::RLIMIT_CORE)?,
            },
            env: std::env::vars_os().collect(),
            kernel: kernel_release(),
            yama: procfs::yama_scope(),
            mac: procfs::mandatory_access_control(),
            pid: std::process::id(),
            tracer: procfs::tracer_in(&status),
            seccomp: Seccomp {
                only_gate: mode == 2
                    && procfs::only_filter_is_gate(std::process::id() as i32, &status),
                mode,
                notif_sizes: notif_sizes(),
            },
            exe,
            shim: install::locate_shim().map_err(|err| format!("{err:#}")),
            machine: None,
        })
    }

    /// This process and, for `--check`, the machine.
    pub fn read_with_machine() -> Result<Host> {
        let mut host = Host::read()?;
        host.machine = Some(Machine::read());
        Ok(host)
    }

    /// A variable of the environment memlock-run was given, as getenv(3) and execvp(3) read
    /// it: the first of its name.
    pub fn var(&self, name: &str) -> Option<&OsString> {
        self.env.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Holds `cap` in its permitted set.
    pub fn has(&self, cap: Capability) -> bool {
        self.caps.permitted.contains(&cap)
    }

    /// Holds `cap` in its effective set: the kernel honours it for memlock-run's own calls.
    pub fn has_effective(&self, cap: Capability) -> bool {
        self.caps.effective.contains(&cap)
    }

    /// CAP_IPC_LOCK that the kernel honours for locking: held, in the initial user namespace.
    pub fn lock_exempt(&self) -> bool {
        self.has(Capability::CAP_IPC_LOCK) && self.initial_user_ns
    }

    /// memlock-run holds more than the user who started it: the kernel marked its exec as a
    /// privilege gain (AT_SECURE), which its own file did (a file capability; a set-ID bit is
    /// refused before anything is planned). Then nothing the caller controls may choose what
    /// it loads, and it acts as root for nobody.
    ///
    /// Holding a capability is not being elevated: capabilities that arrive through the
    /// ambient set (systemd's `AmbientCapabilities=` with `User=`, `setpriv --ambient-caps`,
    /// the nested runs of a `--user` run) are the caller's own, and the kernel does not set
    /// AT_SECURE for them (security/commoncap.c: the permitted set did not grow beyond the
    /// ambient one).
    pub fn elevated(&self) -> bool {
        self.at_secure || self.ids.euid != self.ids.uid
    }

    pub fn is_root(&self) -> bool {
        self.ids.euid == 0 && self.ids.uid == 0
    }
}

/// A resource limit of this process.
pub fn rlimit(resource: Resource) -> Result<Rlimit> {
    let (soft, hard) =
        getrlimit(resource).with_context(|| format!("getrlimit({resource:?}) failed"))?;
    Ok(Rlimit {
        soft: Limit::from_rlim(soft),
        hard: Limit::from_rlim(hard),
    })
}

/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
pub fn in_initial_user_ns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true)
}

/// The running kernel's major and minor version, from uname(2).
fn kernel_release() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    let release = uts.release().to_string_lossy().into_owned();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    Some((numbers.next()?, numbers.next()?))
}

/// SECCOMP_GET_NOTIF_SIZES: the sizes of a notification and its response.
fn notif_sizes() -> Result<(u16, u16), String> {
    #[repr(C)]
    #[derive(Default)]
    struct Sizes {
        notif: u16,
        resp: u16,
        data: u16,
    }
    let mut sizes = Sizes::default();
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes the three sizes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut Sizes,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok((sizes.notif, sizes.resp))
}

#[cfg(test)]
pub mod fixture {
    //! A host written down: an unprivileged user on a Debian machine with an 8 MiB hard
    //! RLIMIT_MEMLOCK, Linux 6.1, no Yama, no seccomp; rows of the plan's tests change what
    //! they are about.

    use super::*;

    pub const MIB: u64 = 1 << 20;

    pub fn user() -> Host {
        let shim = std::env::current_exe().unwrap();
        Host {
            ids: Ids {
                uid: 1000,
                euid: 1000,
                gid: 1000,
                egid: 1000,
            },
            at_secure: false,
            caps: Caps {
                bounding: caps::all(),
                ambient: Some(CapsHashSet::new()),
                ..Caps::default()
            },
            no_new_privs: false,
            securebits: Some(0),
            initial_user_ns: true,
            limits: Limits {
                memlock: Rlimit::both(8 * MIB),
                stack: Rlimit {
                    soft: Limit::Bytes(8 * MIB),
                    hard: Limit::Unlimited,
                },
                address_space: Rlimit::UNLIMITED,
                core: Rlimit {
                    soft: Limit::Bytes(0),
                    hard: Limit::Unlimited,
                },
            },
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            kernel: Some((6, 1)),
            yama: None,
            mac: false,
            pid: 4242,
            tracer: None,
            seccomp: Seccomp {
                mode: 0,
                only_gate: false,
                notif_sizes: Ok((80, 24)),
            },
            exe: Some(Executable {
                path: "/usr/bin/memlock-run".into(),
                id: (1, 2),
            }),
            shim: Ok(Shim {
                elf: crate::elf::identify(&shim).unwrap().unwrap(),
                path: shim,
                id: (1, 3),
                untrusted: None,
            }),
            machine: None,
        }
    }

    /// root, with every capability but CAP_SYS_RESOURCE (as on these machines).
    pub fn root() -> Host {
        let mut all = caps::all();
        all.remove(&Capability::CAP_SYS_RESOURCE);
        Host {
            ids: Ids {
                uid: 0,
                euid: 0,
                gid: 0,
                egid: 0,
            },
            caps: Caps {
                permitted: all.clone(),
                effective: all.clone(),
                inheritable: CapsHashSet::new(),
                bounding: all,
                ambient: Some(CapsHashSet::new()),
            },
            ..user()
        }
    }

    /// An unprivileged user given CAP_IPC_LOCK in the ambient set (systemd's
    /// AmbientCapabilities=, setpriv --ambient-caps).
    pub fn user_with_ambient_ipc_lock() -> Host {
        let only: CapsHashSet = [Capability::CAP_IPC_LOCK].into_iter().collect();
        Host {
            caps: Caps {
                permitted: only.clone(),
                effective: only.clone(),
                inheritable: only.clone(),
                bounding: caps::all(),
                ambient: Some(only),
            },
            ..user()
        }
    }
}
