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
//!   secure-execution mode ([`Miss::SetUserId`], [`Miss::SetGroupId`],
//!   [`Miss::FileCapabilities`]): all three sides, the launcher for COMMAND and its `#!`
//!   interpreter. The exec gate refuses every set-ID or capability file, a coarser rule than
//!   the kernel's: its line names the kernel's rung where that applies, and
//!   [`Miss::SetIdUnjudged`] where it does not;
//! - what cannot be judged: [`Miss::Unreadable`] (all three), [`Miss::InterpreterUnreadable`],
//!   [`Miss::NestedScript`], [`Miss::Malformed`] (the gate and the shim, which send such a
//!   program to memlock-run or refuse it), [`Miss::TooLongToJudge`], [`Miss::MovedBySpawn`]
//!   (the shim);
//! - what the exec hands the new image: [`Miss::AddressSpaceLimited`], [`Miss::ShimElsewhere`],
//!   [`Miss::NoShimInEnvironment`], [`Miss::DamagedSetting`], [`Miss::ChangedSettings`] (the
//!   gate and the shim), [`Miss::EnvironmentUnreadable`] (the gate).

use core::fmt::{Result, Write};

use super::Identity;

/// Why the preload misses an image, or cannot be shown to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss<'a> {
    /// No PT_INTERP (static or static-pie): ld.so never runs in it.
    Static,
    /// PT_INTERP names a loader that is neither glibc's nor musl's; `loader` is its path.
    OtherLoader { loader: &'a [u8] },
    /// Another ELF class or machine than the shim's (see [`Miss::i386_on_x86_64`]).
    OtherMachine { program: Identity, shim: Identity },
    /// Secure-execution mode for a set-user-ID file of another owner.
    SetUserId { owner: u32 },
    /// Secure-execution mode for a set-group-ID file of another group.
    SetGroupId { group: u32 },
    /// Secure-execution mode for a file with capabilities, run by another user than root.
    FileCapabilities,
    /// A set-ID or capability file that the exec gate takes for secure-execution mode whoever
    /// executes it, where the kernel would not run it so (the gate's rule is coarser).
    SetIdUnjudged,
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
            Miss::SetIdUnjudged => {
                "set-user-ID, set-group-ID or given file capabilities, which the exec gate takes \
                for secure-execution mode (where ld.so ignores the preload) whoever executes it"
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
            Miss::SetIdUnjudged => "it is set-user-ID, set-group-ID or given file capabilities, which the exec gate \
                takes for secure-execution mode, where ld.so ignores LD_PRELOAD by path, whoever executes it, though \
                the kernel would not run it so for this caller",
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

/// Secure-execution mode, as the kernel decides it for an image from its file and the
/// identity that executes it (AT_SECURE): then ld.so ignores a preload given by path. The
/// launcher (for COMMAND, with the IDs it will run under) and the shim (at exec time, with
/// the process's effective IDs) judge by it; each reads the inputs in its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureExecution {
    /// The file's `st_mode`, `st_uid` and `st_gid`.
    pub mode: u32,
    pub owner: u32,
    pub group: u32,
    /// The user and group that execute it.
    pub uid: u32,
    pub gid: u32,
    /// The file has a `security.capability` extended attribute.
    pub file_capabilities: bool,
    /// The file is on a nosuid mount, where the kernel ignores set-ID bits and file
    /// capabilities alike.
    pub nosuid: bool,
}

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;

impl SecureExecution {
    /// The rung, where the kernel runs it in secure-execution mode. A set-user-ID file of
    /// one's own is no privilege change; set-group-ID without group execute is a mandatory
    /// locking mark, not set-ID; file capabilities give root nothing new.
    pub fn miss(&self) -> Option<Miss<'static>> {
        if self.nosuid {
            None
        } else if self.mode & S_ISUID != 0 && self.owner != self.uid {
            Some(Miss::SetUserId { owner: self.owner })
        } else if self.mode & S_ISGID != 0 && self.mode & S_IXGRP != 0 && self.group != self.gid {
            Some(Miss::SetGroupId { group: self.group })
        } else if self.uid != 0 && self.file_capabilities {
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
    const ALL: [Miss<'static>; 19] = [
        Miss::Static,
        Miss::OtherLoader {
            loader: b"/lib/ld-uClibc.so.0",
        },
        Miss::OtherMachine {
            program: I386,
            shim: AMD64,
        },
        Miss::SetUserId { owner: 0 },
        Miss::SetGroupId { group: 42 },
        Miss::FileCapabilities,
        Miss::SetIdUnjudged,
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
        Miss::ShimElsewhere,
    ];

    /// Fails to build when a rung is added: add it to `ALL` too.
    #[allow(dead_code)]
    fn all_is_every_rung(miss: Miss) {
        match miss {
            Miss::Static
            | Miss::OtherLoader { .. }
            | Miss::OtherMachine { .. }
            | Miss::SetUserId { .. }
            | Miss::SetGroupId { .. }
            | Miss::FileCapabilities
            | Miss::SetIdUnjudged
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

    #[test]
    fn secure_execution_as_the_kernel_decides_it() {
        let file = |mode: u32, owner: u32, group: u32| SecureExecution {
            mode,
            owner,
            group,
            uid: 1000,
            gid: 1000,
            file_capabilities: false,
            nosuid: false,
        };
        let plain = file(0o755, 0, 0);
        assert_eq!(plain.miss(), None);
        assert_eq!(
            file(0o4755, 0, 0).miss(),
            Some(Miss::SetUserId { owner: 0 })
        );
        assert_eq!(file(0o4755, 1000, 0).miss(), None, "set-user-ID to oneself");
        assert_eq!(
            file(0o2755, 0, 50).miss(),
            Some(Miss::SetGroupId { group: 50 })
        );
        assert_eq!(
            file(0o2745, 0, 50).miss(),
            None,
            "no group execute: a locking mark"
        );
        assert_eq!(file(0o2755, 0, 1000).miss(), None, "one's own group");
        assert_eq!(
            file(0o6755, 0, 50).miss(),
            Some(Miss::SetUserId { owner: 0 }),
            "set-user-ID is named first"
        );
        let capped = SecureExecution {
            file_capabilities: true,
            ..plain
        };
        assert_eq!(capped.miss(), Some(Miss::FileCapabilities));
        assert_eq!(
            SecureExecution { uid: 0, ..capped }.miss(),
            None,
            "capabilities give root nothing new"
        );
        let nosuid = SecureExecution {
            nosuid: true,
            ..file(0o6755, 0, 50)
        };
        assert_eq!(
            SecureExecution {
                file_capabilities: true,
                ..nosuid
            }
            .miss(),
            None,
            "a nosuid mount"
        );
    }
}
