//! Where the shim lives, found from where the `memlock-run` executable itself is.
//!
//! ```text
//! cargo build            target/{debug,release}/memlock-run
//!                        target/{debug,release}/libmemlock_run_shim.so
//! Debian package         /usr/bin/memlock-run
//!                        /usr/lib/<multiarch>/memlock-run/libmemlock_run_shim.so
//! RPM package            /usr/bin/memlock-run
//!                        /usr/lib64/memlock-run/libmemlock_run_shim.so
//! make-style install     PREFIX/bin/memlock-run
//!                        PREFIX/lib/memlock-run/libmemlock_run_shim.so
//! ```
//!
//! The executable's path comes from the kernel (`/proc/self/exe`), never from the
//! environment or argv, and the candidates are fixed at build time: nobody who runs
//! memlock-run can choose what it loads into COMMAND. So a package unpacked under another
//! root still finds its own shim. Whether the shim and every directory above it are root's
//! and writable by root alone is recorded ([`Shim::untrusted`]): the plan refuses a shim that
//! is not when memlock-run runs with more privilege than its caller (a file capability).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memlock_run_protocol::SHIM_FILE_NAME;

use crate::elf::{self, ElfIdentity};

/// Debian's multiarch tuple for this build's target.
pub const MULTIARCH: Option<&str> = if cfg!(target_arch = "x86_64") {
    Some("x86_64-linux-gnu")
} else if cfg!(target_arch = "aarch64") {
    Some("aarch64-linux-gnu")
} else if cfg!(target_arch = "x86") {
    Some("i386-linux-gnu")
} else if cfg!(target_arch = "arm") {
    Some("arm-linux-gnueabihf")
} else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
    Some("powerpc64le-linux-gnu")
} else if cfg!(target_arch = "s390x") {
    Some("s390x-linux-gnu")
} else if cfg!(target_arch = "riscv64") {
    Some("riscv64-linux-gnu")
} else {
    None
};

/// The shim, located and identified.
#[derive(Clone, Debug)]
pub struct Shim {
    pub path: PathBuf,
    pub elf: ElfIdentity,
    /// Its device and inode: what the gate and the preload check look for.
    pub id: (u64, u64),
    /// The first of the shim and the directories above it that someone other than root could
    /// have replaced, and why: `/tmp is writable by others than root`.
    pub untrusted: Option<String>,
}

/// Directories, relative to the executable's, where the shim may be.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".")];
    if let Some(tuple) = MULTIARCH {
        dirs.push(Path::new("../lib").join(tuple).join("memlock-run"));
    }
    dirs.push(PathBuf::from("../lib64/memlock-run"));
    dirs.push(PathBuf::from("../lib/memlock-run"));
    dirs
}

pub fn locate_shim() -> Result<Shim> {
    let exe = std::env::current_exe()
        .context("cannot find memlock-run's own executable (/proc/self/exe)")?;
    let exe_dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates: Vec<PathBuf> = candidate_dirs()
        .iter()
        .map(|dir| exe_dir.join(dir).join(SHIM_FILE_NAME))
        .collect();
    // A candidate memlock-run cannot even look at (a directory it may not search) is named as
    // such: "not found" would send the user looking for a missing file.
    for path in &candidates {
        if let Err(err) = fs::metadata(path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                bail!(
                    "cannot look for the preload shim at {}: {err}; uid {} must be able to search the directories \
                     of memlock-run's install and read the shim (its package installs them so)",
                    path.display(),
                    nix::unistd::getuid()
                );
            }
        }
    }
    let Some(found) = candidates.iter().find(|path| path.is_file()) else {
        let looked = candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        bail!(
            "cannot find the preload shim {SHIM_FILE_NAME} beside {}: looked for {looked}; \
             it is built with memlock-run (cargo build --workspace) and installed by its package",
            exe.display()
        );
    };
    let path =
        fs::canonicalize(found).with_context(|| format!("cannot resolve {}", found.display()))?;
    let untrusted = untrusted_component(&path)?;
    let text = path.to_string_lossy();
    // ld.so splits LD_PRELOAD at colons and spaces, and expands $ORIGIN, $LIB and $PLATFORM
    // in it: such a path would name another file, or none, and ld.so would go on without it.
    if text.contains([':', ' ', '\t', '$']) || path.to_str().is_none() {
        bail!(
            "the shim's path {text} contains a colon, a space, a '$' or non-UTF-8 bytes, which LD_PRELOAD cannot \
             carry (ld.so splits it at colons and spaces and expands $ORIGIN, $LIB and $PLATFORM in it); install \
             memlock-run under a plain path"
        );
    }
    if let Err(errno) = nix::unistd::access(&path, nix::unistd::AccessFlags::R_OK) {
        bail!(
            "the preload shim {} cannot be read by uid {} ({errno}), so ld.so would skip it; make it readable by \
             every user (mode 644, as its package installs it)",
            path.display(),
            nix::unistd::getuid()
        );
    }
    let elf = elf::identify(&path)?.with_context(|| {
        format!(
            "the shim {} is not an ELF file; reinstall memlock-run",
            path.display()
        )
    })?;
    let meta = fs::metadata(&path).with_context(|| format!("cannot stat {}", path.display()))?;
    Ok(Shim {
        path,
        elf,
        id: (meta.dev(), meta.ino()),
        untrusted,
    })
}

/// The first of `path` and the directories above it that anyone but root could replace.
fn untrusted_component(path: &Path) -> Result<Option<String>> {
    for component in path.ancestors() {
        let meta = fs::metadata(component)
            .with_context(|| format!("cannot stat {}", component.display()))?;
        // Sticky or not: in a directory others may write to (/tmp), anyone can place a hard
        // link to a root-owned library under the shim's name (fs.protected_hardlinks=0), or to
        // memlock-run itself, beside which it would look for its shim.
        let writable_by_others = meta.mode() & 0o022 != 0;
        if meta.uid() != 0 || writable_by_others {
            return Ok(Some(format!(
                "{} is {}",
                component.display(),
                if meta.uid() != 0 {
                    "not owned by root"
                } else {
                    "writable by others than root"
                }
            )));
        }
    }
    Ok(None)
}
