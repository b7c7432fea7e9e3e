//! Why the preload misses an image: the one ladder of reasons, with their texts, behind the
//! launcher's refusals and findings, the exec gate's lines and the shim's. Not the rules that
//! find them (those are [`super::judge_image`], [`SecureExecution`] and
//! [`super::carries_shim`], and what only one side can see, such as an unreadable file),
//! nor what to do about it: each side ends its message with the remedy that fits there.
//!
//! Every rung has two texts, written through `core::fmt::Write` with `write_str` alone, so
//! that the shim renders them into its fixed line buffer and the launcher into a `String`:
//! - the summary, a few words that follow `no preload reaches it: ` in a finding and come
//!   before `, so the preload cannot lock it` in the gate's and the shim's lines;
//! - the explanation, the cause in a long message, a clause about the image that follows
//!   `refusing PATH: ` and comes before the remedy.
//!
//! Where the rungs are met:
//! - what the image is ([`Miss::Static`], [`Miss::OtherLoader`], [`Miss::OtherMachine`]) and
//!   secure-execution mode ([`Miss::SetUserId`], [`Miss::SetGroupId`], [`Miss::EffectiveIds`],
//!   [`Miss::FileCapabilities`], by one rule, [`SecureExecution`], for the task that
//!   executes it): all three sides, the launcher for COMMAND and its `#!` interpreter;
//! - what cannot be judged: [`Miss::Unreadable`] (all three), [`Miss::InterpreterUnreadable`],
//!   [`Miss::NestedScript`], [`Miss::Malformed`] (the gate and the shim, which send such a
//!   program to memlock-run or refuse it), [`Miss::TooLongToJudge`], [`Miss::MovedBySpawn`]
//!   (the shim);
//! - what the exec hands the new image: [`Miss::AddressSpaceLimited`], [`Miss::ShimElsewhere`],
//!   [`Miss::NoShimInEnvironment`], [`Miss::DamagedSetting`], [`Miss::ChangedSettings`],
//!   [`Miss::AuditLibrary`] (the gate and the shim; the launcher refuses COMMAND's own
//!   LD_AUDIT in its words), [`Miss::EnvironmentUnreadable`] (the gate).

use core::fmt::{Result, Write};

use super::Identity;

/// Why the preload misses an image, or cannot be shown to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss<'a> {
    /// No PT_INTERP (static or static-pie): ld.so never runs in it.
    Static,
    /// PT_INTERP names a loader that is neither glibc's nor musl's; `loader` is its path.
    OtherLoader { loader: &'a [u8] },
    /// PT_INTERP names a glibc or musl loader by name, but not the system's (see
    /// [`super::system_library`]): what it does with LD_PRELOAD cannot be known.
    ForeignLoader { loader: &'a [u8] },
    /// Another ELF class or machine than the shim's (see [`Miss::i386_on_x86_64`]).
    OtherMachine { program: Identity, shim: Identity },
    /// Secure-execution mode for a set-user-ID file of another owner.
    SetUserId { owner: u32 },
    /// Secure-execution mode for a set-group-ID file of another group.
    SetGroupId { group: u32 },
    /// Secure-execution mode for a file with capabilities, run by another user than root.
    FileCapabilities,
    /// Secure-execution mode for whatever it is: the task that executes it has an effective
    /// user or group ID other than its real one.
    EffectiveIds,
    /// It may be executed but not read: its headers cannot be judged.
    Unreadable,
    /// Its `#!` interpreter may be executed but not read.
    InterpreterUnreadable,
    /// Its `#!` interpreter is a script too: judged one line deep only.
    NestedScript,
    /// Its ELF headers are not what the kernel runs.
    Malformed,
    /// A path in it (the `#!` interpreter, PT_INTERP) is longer than the shim judges in place.
    TooLongToJudge,
    /// A relative path that a spawn's file actions may move before it runs.
    MovedBySpawn,
    /// A finite RLIMIT_AS, under which ld.so may skip the shim.
    AddressSpaceLimited,
    /// The environment the exec hands on cannot be read.
    EnvironmentUnreadable,
    /// The environment the exec hands on does not name the shim in one LD_PRELOAD.
    NoShimInEnvironment,
    /// The environment the exec hands on holds a MEMLOCK_RUN_ setting that does not parse.
    DamagedSetting,
    /// The environment the exec hands on changes this run's MEMLOCK_RUN_ settings.
    ChangedSettings,
    /// The environment the exec hands on sets LD_AUDIT: ld.so loads an audit library before
    /// any preload, and it may keep the shim out (la_objsearch refusing its name).
    AuditLibrary,
    /// The shim is not at its path under the calling process's root directory.
    ShimElsewhere,
}

impl Miss<'_> {
    /// The few words for a finding or a line: `statically linked (no PT_INTERP): ld.so never
    /// runs in it`.
    pub fn write_summary(&self, out: &mut impl Write) -> Result {
        let text = match self {
            Miss::Static => "statically linked (no PT_INTERP): ld.so never runs in it",
            Miss::OtherLoader { loader } => {
                out.write_str("its loader ")?;
                write_escaped(out, loader)?;
                " is neither glibc's nor musl's"
            }
            Miss::ForeignLoader { loader } => {
                out.write_str("its loader ")?;
                write_escaped(out, loader)?;
                " is not the system's (root's own, in a system library directory)"
            }
            Miss::OtherMachine { program, shim } => {
                out.write_str("a ")?;
                program.write(out)?;
                out.write_str(" program, and the shim is ")?;
                return shim.write(out);
            }
            Miss::SetUserId { .. } | Miss::SetGroupId { .. } | Miss::FileCapabilities => {
                self.write_set_id(out)?;
                ": secure-execution mode, where ld.so ignores the preload"
            }
            Miss::EffectiveIds => {
                "executed by a process whose effective user or group ID is not its real one: \
                secure-execution mode, where ld.so ignores the preload"
            }
            Miss::Unreadable => "it cannot be read to be judged",
            Miss::InterpreterUnreadable => "its #! interpreter cannot be read to be judged",
            Miss::NestedScript => "its #! interpreter is itself a script",
            Miss::Malformed => "its ELF headers are not what the kernel runs",
            Miss::TooLongToJudge => {
                "its #! interpreter or loader has a path too long to judge here"
            }
            Miss::MovedBySpawn => {
                "it is named relative to a directory the spawn's file actions may change"
            }
            Miss::AddressSpaceLimited => "RLIMIT_AS is finite, under which ld.so may skip the shim",
            Miss::EnvironmentUnreadable => "its environment cannot be read",
            Miss::NoShimInEnvironment => {
                "its environment does not hand it the shim in one LD_PRELOAD"
            }
            Miss::DamagedSetting => "its environment holds a damaged MEMLOCK_RUN_ setting",
            Miss::ChangedSettings => "its environment changes this run's MEMLOCK_RUN_ settings",
            Miss::AuditLibrary => {
                "its environment sets LD_AUDIT, whose library ld.so loads first and which may keep the \
                shim out"
            }
            Miss::ShimElsewhere => {
                "the shim is not at its path under the calling process's root directory"
            }
        };
        out.write_str(text)
    }

    /// The cause, for a long message: `it is statically linked (no PT_INTERP), so ld.so never
    /// runs in it ...`; the side that writes the message ends it with the remedy.
    pub fn write_explanation(&self, out: &mut impl Write) -> Result {
        let text = match self {
            Miss::Static => "it is statically linked (no PT_INTERP), so ld.so never runs in it to preload the shim, \
                and it would run unlocked",
            Miss::OtherLoader { loader } => {
                out.write_str("its dynamic loader ")?;
                write_escaped(out, loader)?;
                " is neither glibc's nor musl's, the two the shim loads under (another may not honour LD_PRELOAD \
                at all), and it would run unlocked"
            }
            Miss::ForeignLoader { loader } => {
                out.write_str("its dynamic loader ")?;
                write_escaped(out, loader)?;
                " is named like glibc's or musl's but is not the system's (root's own file, writable by nobody \
                else, in a system library directory), and a loader is judged by what it is: one of anybody's \
                making need not honour LD_PRELOAD, and it could run unlocked"
            }
            Miss::OtherMachine { program, shim } => {
                out.write_str("it is a ")?;
                program.write(out)?;
                out.write_str(" program but the shim is ")?;
                shim.write(out)?;
                ", and ld.so cannot load a library of another class or machine into it (it would run unlocked)"
            }
            Miss::SetUserId { .. } | Miss::SetGroupId { .. } | Miss::FileCapabilities => {
                out.write_str("it is ")?;
                self.write_set_id(out)?;
                ", so the kernel runs it in secure-execution mode, where ld.so ignores LD_PRELOAD by path, the \
                ambient capabilities are cleared and a traced exec would drop its privilege: it would run unlocked \
                or not as intended"
            }
            Miss::EffectiveIds => "the process that executes it has an effective user or group ID other than its \
                real one (seteuid, or a set-ID program that kept its IDs), so the kernel runs whatever it executes in \
                secure-execution mode, where ld.so ignores LD_PRELOAD by path: it would run unlocked",
            Miss::Unreadable => "it cannot be read to be judged: it may be executed but not read by this user, and \
                its ELF headers (or #! line) must be read to know whether, and how, it can be locked",
            Miss::InterpreterUnreadable => "its #! interpreter cannot be read to be judged: it may be executed but \
                not read by this user, and its ELF headers must be read to know whether the preload reaches it",
            Miss::NestedScript => "its #! interpreter is itself a script, and only one #! line is judged on the way \
                to the image the kernel runs",
            Miss::Malformed => "its ELF headers are not what the kernel runs (damaged, or read past the end of the \
                file), so what ld.so would do with it cannot be known",
            Miss::TooLongToJudge => "its #! interpreter or loader has a path longer than the shim judges in place, \
                inside the process that executes it",
            Miss::MovedBySpawn => "it is named relative to a directory that the spawn's file actions may change \
                before it runs, so which file runs cannot be known before",
            Miss::AddressSpaceLimited => "RLIMIT_AS is finite, and under it ld.so may find no room for the shim and \
                run the program without it, with a warning only",
            Miss::EnvironmentUnreadable => "the environment it is given cannot be read, so whether it hands on the \
                shim cannot be known",
            Miss::NoShimInEnvironment => "the environment it is given does not hand it the shim in one LD_PRELOAD \
                (ld.so honours one of several, and which is not to be guessed)",
            Miss::DamagedSetting => "the environment it is given holds a MEMLOCK_RUN_ setting that does not parse, \
                so the shim would not lock it as this run does",
            Miss::ChangedSettings => "the environment it is given changes this run's MEMLOCK_RUN_ settings, so the \
                shim would not lock it as this run does",
            Miss::ShimElsewhere => "the shim is not at its path under the calling process's root directory (a \
                chroot?), so ld.so would not find it there",
            Miss::AuditLibrary => "the environment it is given sets LD_AUDIT, and ld.so loads an audit library \
                before any preload and asks it about every library it loads, the shim included, which it may \
                refuse or replace (la_objsearch); what it does cannot be known before, so it could run unlocked",
        };
        out.write_str(text)
    }

    /// `set-user-ID (owner uid 0)`, `set-group-ID (group gid 5)`, `given file capabilities
    /// (getcap shows them)`.
    fn write_set_id(&self, out: &mut impl Write) -> Result {
        let (what, id) = match self {
            Miss::SetUserId { owner } => ("set-user-ID (owner uid ", *owner),
            Miss::SetGroupId { group } => ("set-group-ID (group gid ", *group),
            _ => return out.write_str("given file capabilities (getcap shows them)"),
        };
        let mut digits = [0u8; 20];
        out.write_str(what)?;
        out.write_str(crate::encode_u64(u64::from(id), &mut digits))?;
        out.write_str(")")
    }

    /// A 32-bit x86 program on x86-64: ld.so cannot load the shim into it, but the ptrace
    /// method can lock it from outside.
    pub fn i386_on_x86_64(&self) -> bool {
        match self {
            Miss::OtherMachine { program, shim } => super::i386_on_x86_64(*program, *shim),
            _ => false,
        }
    }
}

/// Secure-execution mode (AT_SECURE), as the kernel computes it for the task that executes a
/// file: then ld.so ignores a preload given by path. The launcher (for COMMAND, with the IDs
/// it will run under), the exec gate (for a task of the tree, from its /proc/PID/status) and
/// the shim (at exec time, for its own process) judge by it; each reads the inputs its own way.
///
/// The kernel's rule (fs/exec.c `bprm_fill_uid`, security/commoncap.c
/// `cap_bprm_creds_from_file`), measured on Linux 6.18 for each row of the unit test below:
/// the new image's effective user ID is the file's owner where a set-user-ID bit applies and
/// the task's effective one otherwise (the same for groups, where set-group-ID comes with
/// group execute); the exec is secure when that ID differs from the task's real one or from
/// its effective one. So a set-user-ID root program run by root is not secure-execution, the
/// same run by nobody is, and every exec of a task whose effective ID is not its real one
/// (seteuid) is. File capabilities make it secure for a task whose real user ID is not root.
/// Set-ID bits do not apply on a nosuid mount or under no_new_privs; file capabilities do
/// not apply on a nosuid mount (no_new_privs leaves them counting: the kernel still runs the
/// file securely).
///
/// What is not modelled, each on the side of refusing: file capabilities whose sets give the
/// task nothing (an inheritable-only file run by a task without those inheritable
/// capabilities is not secure-execution to the kernel, and is refused here); the root of a
/// user namespace, seen from outside it (the gate reads IDs as its own namespace maps them);
/// a set-ID file whose owner has no mapping in the task's user namespace (the kernel ignores
/// the bit); and a security module's own transitions (SELinux's AT_SECURE on a domain
/// change, AppArmor's on a profile change), which only the kernel knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureExecution {
    /// The file's `st_mode`, `st_uid` and `st_gid`.
    pub mode: u32,
    pub owner: u32,
    pub group: u32,
    /// The real and effective user and group IDs of the task that executes it.
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// The file has a `security.capability` extended attribute.
    pub file_capabilities: bool,
    /// The file is on a nosuid mount, where the kernel ignores set-ID bits and file
    /// capabilities alike.
    pub nosuid: bool,
    /// The task has no_new_privs, under which the kernel ignores set-ID bits.
    pub no_new_privs: bool,
}

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

impl SecureExecution {
    /// The rung, where the kernel runs it in secure-execution mode. Set-group-ID without
    /// group execute is a mandatory locking mark, not set-ID.
    pub fn miss(&self) -> Option<Miss<'static>> {
        let set_id = !self.nosuid && !self.no_new_privs;
        let changes = |to: u32, real: u32, effective: u32| to != real || to != effective;
        if set_id && self.mode & S_ISUID != 0 && changes(self.owner, self.uid, self.euid) {
            Some(Miss::SetUserId { owner: self.owner })
        } else if set_id
            && self.mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP
            && changes(self.group, self.gid, self.egid)
        {
            Some(Miss::SetGroupId { group: self.group })
        } else if self.euid != self.uid || self.egid != self.gid {
            Some(Miss::EffectiveIds)
        } else if !self.nosuid && self.file_capabilities && self.uid != 0 {
            Some(Miss::FileCapabilities)
        } else {
            None
        }
    }
}

impl Identity {
    /// `64-bit x86-64`, `32-bit i386`, `64-bit PowerPC64 big-endian`, `32-bit machine 92`.
    pub fn write(&self, out: &mut impl Write) -> Result {
        let mut digits = [0u8; 20];
        out.write_str(crate::encode_u64(u64::from(self.bits), &mut digits))?;
        out.write_str("-bit ")?;
        let machine = match self.machine {
            super::EM_X86_64 => "x86-64",
            super::EM_386 => "i386",
            183 => "AArch64",
            40 => "ARM",
            21 => "PowerPC64",
            20 => "PowerPC",
            22 => "s390",
            243 => "RISC-V",
            8 => "MIPS",
            other => {
                out.write_str("machine ")?;
                return out.write_str(crate::encode_u64(u64::from(other), &mut digits));
            }
        };
        out.write_str(machine)?;
        if self.little_endian {
            Ok(())
        } else {
            out.write_str(" big-endian")
        }
    }
}

/// Bytes from a file (a loader's path): printable ASCII as is, anything else (and `\`) as
/// `\xNN`, so that no control byte reaches a terminal and nothing needs to be UTF-8.
fn write_escaped(out: &mut impl Write, bytes: &[u8]) -> Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.write_str(crate::ascii(core::slice::from_ref(&b)))?;
        } else {
            let hex = |n: u8| HEX.get(usize::from(n & 0xf)).copied().unwrap_or(b'?');
            out.write_str(crate::ascii(&[b'\\', b'x', hex(b >> 4), hex(b)]))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{EM_386, EM_X86_64};
    use super::*;

    /// A fixed buffer, as the shim writes into: nothing here allocates.
    struct Fixed {
        buf: [u8; 512],
        len: usize,
    }

    impl Fixed {
        fn new() -> Self {
            Fixed {
                buf: [0; 512],
                len: 0,
            }
        }
        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.buf[..self.len]).unwrap()
        }
    }

    impl Write for Fixed {
        fn write_str(&mut self, s: &str) -> Result {
            let end = self.len + s.len();
            self.buf
                .get_mut(self.len..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }

    fn summary(miss: Miss) -> Fixed {
        let mut out = Fixed::new();
        miss.write_summary(&mut out).unwrap();
        out
    }

    fn explanation(miss: Miss) -> Fixed {
        let mut out = Fixed::new();
        miss.write_explanation(&mut out).unwrap();
        out
    }

    const AMD64: Identity = Identity {
        bits: 64,
        machine: EM_X86_64,
        little_endian: true,
    };
    const I386: Identity = Identity {
        bits: 32,
        machine: EM_386,
        little_endian: true,
    };
    const AARCH64: Identity = Identity {
        bits: 64,
        machine: 183,
        little_endian: true,
    };

    /// One of each rung.
    const ALL: [Miss<'static>; 21] = [
        Miss::Static,
        Miss::OtherLoader {
            loader: b"/lib/ld-uClibc.so.0",
        },
        Miss::ForeignLoader {
            loader: b"/tmp/x/ld-linux-x86-64.so.2",
        },
        Miss::OtherMachine {
            program: I386,
            shim: AMD64,
        },
        Miss::SetUserId { owner: 0 },
        Miss::SetGroupId { group: 42 },
        Miss::FileCapabilities,
        Miss::EffectiveIds,
        Miss::Unreadable,
        Miss::InterpreterUnreadable,
        Miss::NestedScript,
        Miss::Malformed,
        Miss::TooLongToJudge,
        Miss::MovedBySpawn,
        Miss::AddressSpaceLimited,
        Miss::EnvironmentUnreadable,
        Miss::NoShimInEnvironment,
        Miss::DamagedSetting,
        Miss::ChangedSettings,
        Miss::AuditLibrary,
        Miss::ShimElsewhere,
    ];

    /// Fails to build when a rung is added: add it to `ALL` too.
    #[allow(dead_code)]
    fn all_is_every_rung(miss: Miss) {
        match miss {
            Miss::Static
            | Miss::OtherLoader { .. }
            | Miss::ForeignLoader { .. }
            | Miss::OtherMachine { .. }
            | Miss::SetUserId { .. }
            | Miss::SetGroupId { .. }
            | Miss::FileCapabilities
            | Miss::EffectiveIds
            | Miss::Unreadable
            | Miss::InterpreterUnreadable
            | Miss::NestedScript
            | Miss::Malformed
            | Miss::TooLongToJudge
            | Miss::MovedBySpawn
            | Miss::AddressSpaceLimited
            | Miss::EnvironmentUnreadable
            | Miss::NoShimInEnvironment
            | Miss::DamagedSetting
            | Miss::ChangedSettings
            | Miss::AuditLibrary
            | Miss::ShimElsewhere => {}
        }
    }

    #[test]
    fn every_rung_renders_into_a_fixed_buffer() {
        for miss in ALL {
            let (summary, explanation) = (summary(miss), explanation(miss));
            let (summary, explanation) = (summary.as_str(), explanation.as_str());
            assert!(
                !summary.is_empty() && summary.len() < 160,
                "{miss:?}: {summary}"
            );
            assert!(explanation.len() > summary.len(), "{miss:?}: {explanation}");
            for text in [summary, explanation] {
                assert!(text.is_ascii() && !text.contains('\n'), "{text}");
                // Both go in the middle of a sentence: no capital to start (an acronym may),
                // no full stop to end.
                let first = text.split(' ').next().unwrap_or_default();
                assert!(
                    !first.starts_with(char::is_uppercase) || !first.contains(char::is_lowercase),
                    "{text}"
                );
                assert!(!text.ends_with(['.', ';', ',']), "{text}");
            }
        }
    }

    #[test]
    fn texts_that_tests_and_users_look_for() {
        assert_eq!(
            summary(Miss::Static).as_str(),
            "statically linked (no PT_INTERP): ld.so never runs in it"
        );
        assert_eq!(
            summary(ALL[1]).as_str(),
            "its loader /lib/ld-uClibc.so.0 is neither glibc's nor musl's"
        );
        assert!(explanation(ALL[1])
            .as_str()
            .starts_with("its dynamic loader /lib/ld-uClibc.so.0 is neither glibc's nor musl's, "));
        assert!(explanation(Miss::SetUserId { owner: 0 })
            .as_str()
            .starts_with(
                "it is set-user-ID (owner uid 0), so the kernel runs it in secure-execution mode"
            ));
        assert_eq!(
            summary(Miss::SetGroupId { group: 42 }).as_str(),
            "set-group-ID (group gid 42): secure-execution mode, where ld.so ignores the preload"
        );
        assert!(summary(Miss::FileCapabilities)
            .as_str()
            .starts_with("given file capabilities"));
    }

    #[test]
    fn a_loader_path_is_escaped() {
        let miss = Miss::OtherLoader {
            loader: b"/x\n\\\xff",
        };
        assert_eq!(
            summary(miss).as_str(),
            "its loader /x\\x0a\\x5c\\xff is neither glibc's nor musl's"
        );
    }

    #[test]
    fn i386_on_x86_64_is_told_apart() {
        let i386 = Miss::OtherMachine {
            program: I386,
            shim: AMD64,
        };
        assert!(i386.i386_on_x86_64());
        assert_eq!(
            summary(i386).as_str(),
            "a 32-bit i386 program, and the shim is 64-bit x86-64"
        );
        let text = explanation(i386);
        assert!(
            text.as_str().contains("another class or machine"),
            "{}",
            text.as_str()
        );
        let foreign = Miss::OtherMachine {
            program: AARCH64,
            shim: AMD64,
        };
        assert!(!foreign.i386_on_x86_64());
        assert_eq!(
            summary(foreign).as_str(),
            "a 64-bit AArch64 program, and the shim is 64-bit x86-64"
        );
        let big_endian = Identity {
            bits: 32,
            machine: EM_386,
            little_endian: false,
        };
        assert!(!Miss::OtherMachine {
            program: big_endian,
            shim: AMD64
        }
        .i386_on_x86_64());
        assert!(!Miss::Static.i386_on_x86_64());
        let odd = Identity {
            bits: 32,
            machine: 9999,
            little_endian: false,
        };
        let mut out = Fixed::new();
        odd.write(&mut out).unwrap();
        assert_eq!(out.as_str(), "32-bit machine 9999");
    }

    /// AT_SECURE as Linux 6.18 set it, measured: a probe printing getauxval(AT_SECURE), as
    /// each file (a plain copy, set-user-ID root, set-user-ID nobody, set-group-ID gid 50,
    /// cap_net_raw+ep, cap_net_raw+p), executed by a task of each (real, effective) user and
    /// group ID. Every row is the kernel's; the rule gives it.
    #[test]
    fn secure_execution_as_the_kernel_computed_it() {
        const NOBODY: u32 = 65534;
        // (mode, owner, group, file capabilities) of each file.
        let plain = (0o755, 0, 0, false);
        let setuid_root = (0o4755, 0, 0, false);
        let setuid_nobody = (0o4755, NOBODY, 0, false);
        let setgid = (0o2755, 0, 50, false);
        let capped = (0o755, 0, 0, true);
        // (uid, euid, gid, egid) of each task.
        let root = (0, 0, 0, 0);
        let nobody = (NOBODY, NOBODY, NOBODY, NOBODY);
        let root_as_nobody = (0, NOBODY, 0, 0);
        let nobody_as_root = (NOBODY, 0, NOBODY, NOBODY);
        let root_other_egid = (0, 0, 0, NOBODY);
        let user_in_root_group = (1000, 1000, 0, 0);
        let rows = [
            (plain, root, false),
            (plain, nobody, false),
            (plain, root_as_nobody, true),
            (plain, nobody_as_root, true),
            (plain, root_other_egid, true),
            (plain, user_in_root_group, false),
            (setuid_root, root, false),
            (setuid_root, nobody, true),
            (setuid_root, root_as_nobody, true),
            (setuid_root, nobody_as_root, true),
            (setuid_root, root_other_egid, true),
            (setuid_root, user_in_root_group, true),
            (setuid_nobody, root, true),
            (setuid_nobody, nobody, false),
            (setuid_nobody, root_as_nobody, true),
            (setuid_nobody, nobody_as_root, true),
            (setuid_nobody, user_in_root_group, true),
            (setgid, root, true),
            (setgid, nobody, true),
            (setgid, user_in_root_group, true),
            (capped, root, false),
            (capped, nobody, true),
            (capped, root_as_nobody, true),
            (capped, nobody_as_root, true),
            (capped, user_in_root_group, true),
        ];
        let judge = |file: (u32, u32, u32, bool), task: (u32, u32, u32, u32)| SecureExecution {
            mode: file.0,
            owner: file.1,
            group: file.2,
            file_capabilities: file.3,
            uid: task.0,
            euid: task.1,
            gid: task.2,
            egid: task.3,
            nosuid: false,
            no_new_privs: false,
        };
        for (file, task, secure) in rows {
            assert_eq!(
                judge(file, task).miss().is_some(),
                secure,
                "{file:?} run by {task:?}"
            );
        }
        // The rung names the cause.
        assert_eq!(
            judge(setuid_root, nobody).miss(),
            Some(Miss::SetUserId { owner: 0 })
        );
        assert_eq!(
            judge(setuid_root, root_as_nobody).miss(),
            Some(Miss::SetUserId { owner: 0 })
        );
        assert_eq!(
            judge(setgid, root).miss(),
            Some(Miss::SetGroupId { group: 50 })
        );
        assert_eq!(
            judge(plain, root_as_nobody).miss(),
            Some(Miss::EffectiveIds)
        );
        assert_eq!(judge(capped, nobody).miss(), Some(Miss::FileCapabilities));
        assert_eq!(
            judge((0o6755, 0, 50, false), nobody).miss(),
            Some(Miss::SetUserId { owner: 0 }),
            "set-user-ID is named first"
        );
        assert_eq!(
            judge((0o2745, 0, 50, false), nobody).miss(),
            None,
            "no group execute: a locking mark"
        );
        // no_new_privs: set-ID bits have no effect (measured: set-user-ID root run by nobody,
        // set-user-ID nobody run by root), file capabilities still do (cap_net_raw+ep and +p
        // run by nobody are secure-execution; run by root, not).
        let nnp = |file, task| SecureExecution {
            no_new_privs: true,
            ..judge(file, task)
        };
        assert_eq!(nnp(setuid_root, nobody).miss(), None);
        assert_eq!(nnp(setuid_nobody, root).miss(), None);
        assert_eq!(nnp(setgid, nobody).miss(), None);
        assert_eq!(nnp(capped, nobody).miss(), Some(Miss::FileCapabilities));
        assert_eq!(nnp(capped, root).miss(), None);
        assert_eq!(
            nnp(plain, root_as_nobody).miss(),
            Some(Miss::EffectiveIds),
            "no_new_privs keeps the task's own IDs"
        );
        // A nosuid mount: neither set-ID bits nor file capabilities.
        for file in [setuid_root, setgid, capped] {
            let nosuid = SecureExecution {
                nosuid: true,
                ..judge(file, nobody)
            };
            assert_eq!(nosuid.miss(), None, "{file:?} on a nosuid mount");
        }
    }
}
