//! What was asked, typed: the command line past `crate::cli`, in protocol's own enums and
//! this crate's sizes, and nothing of clap's. The plan decides from it and the host.
//!
//! (`packaging/docs` compiles this file with `cli.rs` for the man page: it depends on
//! `crate::size` and the protocol crate alone.)

use std::ffi::OsString;

use memlock_run_protocol::{Fork, LockFlags, OnFailure, Verbose};

use crate::size::Limit;

/// What was asked: the command line, typed (`crate::cli` makes it).
#[derive(Clone, Debug)]
pub struct Request {
    pub command: Vec<OsString>,
    /// `--argv0`: COMMAND's argv[0] in place of its name.
    pub argv0: Option<OsString>,
    pub flags: LockFlags,
    /// `--prefault`, in bytes; 0 for none.
    pub prefault: u64,
    pub heap: Option<u64>,
    /// `--huge`: MADV_HUGEPAGE on the pre-faulted stack and heap.
    pub huge: bool,
    pub thread_stack: Option<u64>,
    /// `--fork`; None for the default (relock where the shim can).
    pub fork: Option<Fork>,
    pub bind_now: bool,
    pub limit: Option<Limit>,
    pub user: Option<String>,
    pub on_failure: OnFailure,
    pub inherit: bool,
    pub exec_gate: bool,
    pub no_dump: bool,
    pub method: Wanted,
    /// `-v` (COMMAND reports), `-vv` (every locked program of the tree does).
    pub verbose: Verbose,
}

impl Request {
    /// COMMAND's argv: as given, with `--argv0` in place of its first word.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = self.command.clone();
        if let (Some(first), Some(name)) = (argv.first_mut(), &self.argv0) {
            *first = name.clone();
        }
        argv
    }
}

/// What `--pid` was asked.
#[derive(Clone, Debug)]
pub struct PidRequest {
    pub pid: u32,
    pub flags: LockFlags,
    /// `--limit`: the process's RLIMIT_MEMLOCK to set first; default: its hard limit.
    pub limit: Option<Limit>,
    /// Lock even under a seccomp filter memlock-run cannot read.
    pub force: bool,
    pub no_dump: bool,
}

/// `--method`: what was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The preload where it reaches, ptrace where it does not.
    Auto,
    Preload,
    Ptrace,
}
