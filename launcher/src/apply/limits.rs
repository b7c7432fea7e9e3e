//! Setting the limits the plan decided, and reading each back: RLIMIT_MEMLOCK and
//! RLIMIT_STACK for COMMAND, and RLIMIT_CORE 0 for `--no-dump`.

use anyhow::{bail, Context, Result};
use nix::sys::resource::{setrlimit, Resource};

use crate::host::rlimit;
use crate::plan::limits::Change;
use crate::size::Rlimit;

/// Sets each planned limit that changes, and reads it back.
pub fn apply(changes: &[(Resource, Change)]) -> Result<()> {
    for &(resource, change) in changes {
        if change.before == change.after {
            continue;
        }
        setrlimit(
            resource,
            change.after.soft.to_rlim(),
            change.after.hard.to_rlim(),
        )
        .with_context(|| format!("cannot set {resource:?} to {}", change.after))?;
        let now = rlimit(resource)?;
        if now != change.after {
            bail!("{resource:?} reads {now} after setting it to {}; refusing to run with a limit it did not ask for", change.after);
        }
    }
    Ok(())
}

/// `--no-dump`: RLIMIT_CORE 0, soft and hard (COMMAND cannot raise a hard limit without
/// CAP_SYS_RESOURCE), read back. It survives exec, whichever way COMMAND is then locked; the
/// dumpable flag does not, so the shim or the ptrace helper clears that in the new image.
pub fn forbid_core_dumps() -> Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context(
        "--no-dump: cannot set RLIMIT_CORE to 0, so a crash could write a core file; lowering a limit is always \
         allowed, so something in this environment (a seccomp filter?) forbids setrlimit: run without it",
    )?;
    let now = rlimit(Resource::RLIMIT_CORE)?;
    if now != Rlimit::both(0) {
        bail!(
            "--no-dump: RLIMIT_CORE reads {now} after setting it to 0; refusing to run COMMAND with core dumps possible"
        );
    }
    Ok(())
}
