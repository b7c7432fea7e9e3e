//! Whether the preload can reach an image: the one judgement that the launcher, `--check`
//! and the shim (when a locked program executes another) share, so that they cannot disagree.
//!
//! ld.so fails open: a preload it cannot apply is skipped, with a warning or without, and
//! the program runs unlocked. The shim is loaded only into an ELF program that:
//! - has a PT_INTERP (without one, static or static-pie, ld.so never runs);
//! - names glibc's or musl's loader there (the shim is built against glibc 2.17 and loads
//!   under musl's loader too, which maps `libc.so.6` to itself; other loaders may not honour
//!   `LD_PRELOAD` at all);
//! - is of the shim's class and machine (ld.so skips a library of another one).
//!
//! Secure-execution mode (set-ID or file capabilities) needs more than the headers: each side
//! reads the file's metadata and the identity that executes it, and judges them by one rule
//! ([`SecureExecution`]).
//!
//! Why the preload misses an image is one ladder of reasons, [`Miss`], whose texts all three
//! sides write (see `miss.rs`).
//!
//! The headers are read as the kernel's binfmt_elf reads them (fs/binfmt_elf.c), so that a
//! crafted file cannot be one thing here and another to the kernel: `e_phentsize` must be
//! the native size, the program header table at most one page, and the *first* PT_INTERP
//! names the loader (its size between 2 and PATH_MAX, its last byte NUL). Anything the
//! kernel would refuse to run is [`Malformed`].
//!
//! `no_std` and allocation-free: the shim runs it inside an `execve` call, possibly in a
//! vfork child.

mod miss;

pub use miss::{Miss, SecureExecution};

/// The most the kernel reads of a file to tell its format (BINPRM_BUF_SIZE).
pub const HEAD_SIZE: usize = 256;
/// The largest program header table the kernel accepts (ELF_MIN_ALIGN, one page on x86).
pub const MAX_PHDRS_SIZE: usize = 4096;
/// The largest PT_INTERP the kernel accepts (PATH_MAX, with its NUL).
pub const MAX_INTERP_SIZE: usize = 4096;

pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

/// The properties that decide whether a shared object can be loaded into a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub bits: u8,
    pub machine: u16,
    pub little_endian: bool,
}

impl Identity {
    /// The machine this crate, and so the shim, is built for.
    pub const NATIVE: Identity = Identity {
        bits: if cfg!(target_pointer_width = "64") {
            64
        } else {
            32
        },
        machine: if cfg!(target_arch = "x86_64") {
            EM_X86_64
        } else if cfg!(target_arch = "x86") {
            EM_386
        } else if cfg!(target_arch = "aarch64") {
            183
        } else if cfg!(target_arch = "arm") {
            40
        } else if cfg!(target_arch = "riscv64") {
            243
        } else if cfg!(any(target_arch = "powerpc64", target_arch = "powerpc")) {
            if cfg!(target_pointer_width = "64") {
                21
            } else {
                20
            }
        } else if cfg!(target_arch = "s390x") {
            22
        } else {
            0
        },
        little_endian: cfg!(target_endian = "little"),
    };
}

/// What the first bytes of a file make of it, to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Elf,
    /// `#!`: the kernel runs the interpreter its line names.
    Script,
    /// Neither: execve(2) fails with ENOEXEC (unless a binfmt_misc handler claims it).
    Other,
}

pub fn format(head: &[u8]) -> Format {
    if head.starts_with(b"\x7fELF") {
        Format::Elf
    } else if head.starts_with(b"#!") {
        Format::Script
    } else {
        Format::Other
    }
}

/// The interpreter a `#!` line names, as the kernel reads it from the first
/// [`HEAD_SIZE`] bytes (fs/binfmt_script.c); `None` where the kernel fails with ENOEXEC.
/// `head` is the start of the file, all of it if it is shorter than [`HEAD_SIZE`].
pub fn script_interpreter(head: &[u8]) -> Option<&[u8]> {
    let buf = head.get(..head.len().min(HEAD_SIZE))?;
    let line = buf.get(2..)?;
    let spacetab = |b: &u8| *b == b' ' || *b == b'\t';
    let end = match line.iter().position(|&b| b == b'\n') {
        Some(newline) => newline,
        None => {
            // No newline within the buffer: the kernel accepts the line only if the
            // interpreter's name ends before the buffer does (a shorter file's buffer is
            // padded with NULs, which end it).
            let start = line.iter().position(|b| !spacetab(b))?;
            let rest = line.get(start..)?;
            if buf.len() == HEAD_SIZE {
                rest.iter()
                    .position(|&b| b == b' ' || b == b'\t' || b == 0)?;
            }
            line.len()
        }
    };
    let line = line.get(..end)?;
    let start = line.iter().position(|b| !spacetab(b))?;
    let name = line.get(start..)?;
    let len = name
        .iter()
        .position(|&b| b == b' ' || b == b'\t' || b == 0)
        .unwrap_or(name.len());
    let name = name.get(..len)?;
    (!name.is_empty()).then_some(name)
}

/// What an ELF file's headers say, read as the kernel reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elf {
    pub identity: Identity,
    /// ET_EXEC or ET_DYN.
    pub e_type: u16,
    /// Where the first PT_INTERP's path is in the file: offset and size, its NUL included.
    pub interp: Option<(u64, usize)>,
}

/// The kernel would not run this file as ELF: the reason, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Reads the ELF header from `head` (the file's first bytes, at least 52 or 64 of them) and
/// the program header table through `read_at(offset, buf)`, which fills `buf` from that
/// offset of the file and says whether it could.
pub fn parse_elf(
    head: &[u8],
    mut read_at: impl FnMut(u64, &mut [u8]) -> bool,
) -> Result<Elf, Malformed> {
    if format(head) != Format::Elf {
        return Err(Malformed("no ELF magic"));
    }
    let bits = match head.get(4) {
        Some(1) => 32,
        Some(2) => 64,
        _ => return Err(Malformed("an ELF class neither 32- nor 64-bit")),
    };
    let little_endian = match head.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => {
            return Err(Malformed(
                "an ELF byte order neither little- nor big-endian",
            ))
        }
    };
    let r = Reader { little_endian };
    let (phoff, phentsize, phnum, native_phentsize) = if bits == 64 {
        (r.u64(head, 32), r.u16(head, 54), r.u16(head, 56), 56)
    } else {
        (
            r.u32(head, 28).map(u64::from),
            r.u16(head, 42),
            r.u16(head, 44),
            32,
        )
    };
    let (Some(e_type), Some(machine), Some(phoff), Some(phentsize), Some(phnum)) =
        (r.u16(head, 16), r.u16(head, 18), phoff, phentsize, phnum)
    else {
        return Err(Malformed("a truncated ELF header"));
    };
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(Malformed(
            "an ELF type other than executable or shared object",
        ));
    }
    if phentsize != native_phentsize {
        return Err(Malformed("program headers of the wrong size"));
    }
    let size = usize::from(phentsize) * usize::from(phnum);
    if size == 0 || size > MAX_PHDRS_SIZE {
        return Err(Malformed("no program headers, or more than a page of them"));
    }
    // The kernel reads the whole table or refuses the file; here it is read one header at a
    // time (no page-sized buffer on the stack of whatever calls execve), its end first.
    let mut last = [0u8; 1];
    let end = phoff
        .checked_add(size as u64 - 1)
        .ok_or(Malformed("program headers past the end of the file"))?;
    if !read_at(end, &mut last) {
        return Err(Malformed("program headers past the end of the file"));
    }
    let mut interp = None;
    let mut ph = [0u8; 56];
    let ph = ph
        .get_mut(..usize::from(native_phentsize))
        .ok_or(Malformed("program headers"))?;
    for index in 0..u64::from(phnum) {
        let at = phoff
            .checked_add(index * u64::from(native_phentsize))
            .ok_or(Malformed("program headers past the end of the file"))?;
        if !read_at(at, ph) {
            return Err(Malformed("program headers past the end of the file"));
        }
        if r.u32(ph, 0) != Some(PT_INTERP) {
            continue;
        }
        let (offset, filesz) = if bits == 64 {
            (r.u64(ph, 8), r.u64(ph, 32))
        } else {
            (r.u32(ph, 4).map(u64::from), r.u32(ph, 16).map(u64::from))
        };
        let (Some(offset), Some(filesz)) = (offset, filesz) else {
            return Err(Malformed("a truncated PT_INTERP"));
        };
        if !(2..=MAX_INTERP_SIZE as u64).contains(&filesz) {
            return Err(Malformed(
                "a PT_INTERP shorter than 2 bytes or longer than PATH_MAX",
            ));
        }
        interp = Some((offset, filesz as usize));
        // The kernel takes the first and looks no further.
        break;
    }
    Ok(Elf {
        identity: Identity {
            bits,
            machine,
            little_endian,
        },
        e_type,
        interp,
    })
}

/// The loader's path from the bytes of a PT_INTERP: the kernel requires the last byte to be
/// NUL and opens the string up to the first NUL.
pub fn interp_path(bytes: &[u8]) -> Result<&[u8], Malformed> {
    if bytes.last() != Some(&0) {
        return Err(Malformed("a PT_INTERP not terminated by NUL"));
    }
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(0);
    bytes.get(..len).ok_or(Malformed("PT_INTERP"))
}

struct Reader {
    little_endian: bool,
}

impl Reader {
    /// The unsigned integer of `len` bytes at `at`, in the file's byte order.
    fn uint(&self, buf: &[u8], at: usize, len: usize) -> Option<u64> {
        let bytes = buf.get(at..at.checked_add(len)?)?;
        let join = |n: u64, &b: &u8| n << 8 | u64::from(b);
        Some(if self.little_endian {
            bytes.iter().rev().fold(0, join)
        } else {
            bytes.iter().fold(0, join)
        })
    }
    fn u16(&self, buf: &[u8], at: usize) -> Option<u16> {
        self.uint(buf, at, 2).map(|n| n as u16)
    }
    fn u32(&self, buf: &[u8], at: usize) -> Option<u32> {
        self.uint(buf, at, 4).map(|n| n as u32)
    }
    fn u64(&self, buf: &[u8], at: usize) -> Option<u64> {
        self.uint(buf, at, 8)
    }
}

/// Whose dynamic loader a PT_INTERP names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    Glibc,
    Musl,
    Unknown,
}

/// glibc's loaders are `ld-linux*.so.N` (x86, ARM, RISC-V), `ld64.so.N` (ppc64, s390x)
/// and `ld.so.1` (ppc32, MIPS); musl's are `ld-musl-ARCH.so.1`.
pub fn loader_kind(path: &[u8]) -> Loader {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    if name.starts_with(b"ld-musl-") {
        Loader::Musl
    } else if name.starts_with(b"ld-linux") || name.starts_with(b"ld64.so.") || name == b"ld.so.1" {
        Loader::Glibc
    } else {
        Loader::Unknown
    }
}

/// Where the system's libraries and loaders are (the multiarch and versioned directories
/// below them included; the Nix and Guix stores, which only their daemon writes).
pub const SYSTEM_LIBRARY_DIRS: [&str; 9] = [
    "/lib/",
    "/lib64/",
    "/lib32/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/lib32/",
    "/usr/local/lib/",
    "/nix/store/",
    "/gnu/store/",
];

/// The owner a user namespace shows for a file whose owner it does not map (the kernel's
/// default overflowuid): the initial namespace's root, seen from a namespace of one's own
/// (`unshare -r`, a rootless container).
pub const OVERFLOW_UID: u32 = 65534;

/// Whether a loader or library is the system's, judged by what it is rather than by its name
/// (any file can be named `ld-linux-x86-64.so.2`, and a loader of the tree's own making need
/// not honour LD_PRELOAD): its path in a system library directory, and the file it names
/// (symbolic links followed: `owner`, `mode`) root's own and writable by nobody else. The rule
/// for the loader a PT_INTERP names, and the exec gate's for the libraries of a memlock-run
/// process. Seen from a user namespace other than the initial one (`initial_ns` false) root's
/// files show as [`OVERFLOW_UID`] (or as 0 where the namespace maps root): either counts there,
/// and the exec gate, which judges from the initial namespace, holds the owner to root's. A
/// loader that is not the system's is a [`Miss::ForeignLoader`]: the ptrace method locks such
/// a program from outside, whatever its loader does.
pub fn system_library(path: &[u8], owner: u32, mode: u32, initial_ns: bool) -> bool {
    SYSTEM_LIBRARY_DIRS
        .iter()
        .any(|dir| path.starts_with(dir.as_bytes()))
        && !path.windows(4).any(|w| w == b"/../")
        && (owner == 0 || !initial_ns && owner == OVERFLOW_UID)
        && mode & 0o022 == 0
}

/// Whether the preload reaches an ELF program, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// glibc's or musl's loader, of the shim's machine: it loads the shim. Under musl the
    /// shim has no glibc to act through: `--heap` and `--thread-stack` are refused there.
    Preload(Loader),
    /// Another class or machine than the shim's; `i386_on_x86_64` when the ptrace method
    /// can still lock it (a 32-bit x86 program on x86-64).
    OtherMachine { i386_on_x86_64: bool },
    /// No PT_INTERP: static or static-pie.
    Static,
    /// A loader that is neither glibc's nor musl's.
    OtherLoader,
}

/// The rule itself, for a program of `identity` whose PT_INTERP names `interp`, against a
/// shim of `shim`.
pub fn judge(identity: Identity, interp: Option<&[u8]>, shim: Identity) -> Reach {
    if identity != shim {
        return Reach::OtherMachine {
            i386_on_x86_64: i386_on_x86_64(identity, shim),
        };
    }
    match interp.map(loader_kind) {
        None => Reach::Static,
        Some(Loader::Glibc) => Reach::Preload(Loader::Glibc),
        Some(Loader::Musl) => Reach::Preload(Loader::Musl),
        Some(Loader::Unknown) => Reach::OtherLoader,
    }
}

/// [`judge`], with the rung of the ladder where the preload misses: the loader that reaches
/// it, or why none does.
pub fn judge_image(
    identity: Identity,
    interp: Option<&[u8]>,
    shim: Identity,
) -> Result<Loader, Miss<'_>> {
    match judge(identity, interp, shim) {
        Reach::Preload(loader) => Ok(loader),
        Reach::Static => Err(Miss::Static),
        Reach::OtherLoader => Err(Miss::OtherLoader {
            loader: interp.unwrap_or_default(),
        }),
        Reach::OtherMachine { .. } => Err(Miss::OtherMachine {
            program: identity,
            shim,
        }),
    }
}

/// A 32-bit x86 program against an x86-64 shim.
fn i386_on_x86_64(program: Identity, shim: Identity) -> bool {
    program.machine == EM_386 && program.little_endian && shim.machine == EM_X86_64
}

/// Whether the environment a new image gets hands it the shim and this run's settings: one
/// `LD_PRELOAD` (ld.so honours one of several, and which is not to be guessed) that names
/// `shim`, `MEMLOCK_RUN_*` settings that decode to `config`, and no `LD_AUDIT` library (ld.so
/// loads audit libraries before any preload, and one may refuse the shim: `LD_AUDIT` is
/// treated as `LD_PRELOAD` is, judged, and what cannot be shown to hand on the shim is a
/// miss). The rung when not.
pub fn carries_shim(
    entries: impl Iterator<Item = impl AsRef<[u8]>>,
    shim: &[u8],
    config: &crate::Config,
) -> Result<(), Miss<'static>> {
    let mut preloads = 0;
    let mut names_shim = false;
    let mut settings = crate::Config::default();
    for entry in entries {
        let Some((name, value)) = crate::split_entry(entry.as_ref()) else {
            continue;
        };
        if name == b"LD_AUDIT" && !value.is_empty() {
            return Err(Miss::AuditLibrary);
        } else if name == b"LD_PRELOAD" {
            preloads += 1;
            names_shim = value.split(|&b| b == b':' || b == b' ').any(|e| e == shim);
        } else if name.starts_with(crate::PREFIX.as_bytes()) && settings.apply(name, value).is_err()
        {
            return Err(Miss::DamagedSetting);
        }
    }
    if preloads != 1 || !names_shim {
        return Err(Miss::NoShimInEnvironment);
    }
    if settings != *config {
        return Err(Miss::ChangedSettings);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn elf64(phdrs: &[(u32, u64, u64)], extra: &[u8]) -> [u8; 1024] {
        let mut f = [0u8; 1024];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, (kind, offset, size)) in phdrs.iter().enumerate() {
            let at = 64 + i * 56;
            f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        }
        f[512..512 + extra.len()].copy_from_slice(extra);
        f
    }

    /// `read_at` over a file held in memory.
    pub(super) fn reader(file: &[u8]) -> impl FnMut(u64, &mut [u8]) -> bool + '_ {
        move |offset, buf| {
            let Some(src) = usize::try_from(offset)
                .ok()
                .and_then(|o| file.get(o..o.checked_add(buf.len())?))
            else {
                return false;
            };
            buf.copy_from_slice(src);
            true
        }
    }

    fn parse(file: &[u8]) -> Result<Elf, Malformed> {
        parse_elf(file, reader(file))
    }

    #[test]
    fn the_first_pt_interp_counts_as_for_the_kernel() {
        let loader = b"/lib64/ld-linux-x86-64.so.2\0/lib/ld-musl-x86_64.so.1\0";
        let file = elf64(&[(1, 0, 0), (3, 512, 28), (3, 540, 25)], loader);
        let elf = parse(&file).unwrap();
        let (offset, size) = elf.interp.unwrap();
        let path = interp_path(&file[offset as usize..offset as usize + size]).unwrap();
        assert_eq!(path, b"/lib64/ld-linux-x86-64.so.2");
        assert_eq!(
            judge(elf.identity, Some(path), Identity::NATIVE),
            if Identity::NATIVE.machine == EM_X86_64 {
                Reach::Preload(Loader::Glibc)
            } else {
                Reach::OtherMachine {
                    i386_on_x86_64: false,
                }
            }
        );
    }

    #[test]
    fn what_the_kernel_refuses_is_malformed() {
        assert!(parse(&elf64(&[], b"")).is_err(), "no program headers");
        assert!(
            parse(&elf64(&[(3, 512, 1)], b"\0")).is_err(),
            "PT_INTERP of 1 byte"
        );
        assert!(
            parse(&elf64(&[(3, 512, 5000)], b"")).is_err(),
            "over PATH_MAX"
        );
        assert!(interp_path(b"/lib/ld.so").is_err(), "no NUL at the end");
        let mut file = elf64(&[(1, 0, 0)], b"");
        file[54] = 55;
        assert!(parse(&file).is_err(), "odd e_phentsize");
        let file = elf64(&[(1, 0, 0)], b"");
        assert_eq!(parse(&file).unwrap().interp, None, "static");
        assert!(parse(&file[..40]).is_err(), "truncated header");
    }

    #[test]
    fn a_loader_is_the_systems_by_where_it_is_and_whose_it_is() {
        let glibc = b"/lib64/ld-linux-x86-64.so.2";
        assert!(system_library(glibc, 0, 0o100755, true));
        assert!(system_library(
            b"/lib/ld-musl-x86_64.so.1",
            0,
            0o100755,
            true
        ));
        assert!(system_library(
            b"/nix/store/abc-glibc-2.40/lib/ld-linux-x86-64.so.2",
            0,
            0o100555,
            true
        ));
        // Anybody's file, one writable by others, or one outside the library directories.
        assert!(!system_library(glibc, 1000, 0o100755, true));
        assert!(!system_library(glibc, 0, 0o100775, true));
        assert!(!system_library(glibc, 0, 0o100757, true));
        assert!(!system_library(
            b"/tmp/x/ld-linux-x86-64.so.2",
            0,
            0o100755,
            true
        ));
        assert!(!system_library(
            b"/home/linuxbrew/lib/ld.so",
            0,
            0o100755,
            true
        ));
        assert!(!system_library(
            b"/lib/../tmp/ld-linux-x86-64.so.2",
            0,
            0o100755,
            true
        ));
        assert!(!system_library(
            b"lib64/ld-linux-x86-64.so.2",
            0,
            0o100755,
            true
        ));
        // From a user namespace of one's own, root's files show as the overflow uid.
        assert!(!system_library(glibc, OVERFLOW_UID, 0o100755, true));
        assert!(system_library(glibc, OVERFLOW_UID, 0o100755, false));
        assert!(!system_library(glibc, 1000, 0o100755, false));
    }

    #[test]
    fn loaders() {
        assert_eq!(loader_kind(b"/lib64/ld-linux-x86-64.so.2"), Loader::Glibc);
        assert_eq!(loader_kind(b"/lib/ld-linux-aarch64.so.1"), Loader::Glibc);
        assert_eq!(loader_kind(b"/lib64/ld64.so.2"), Loader::Glibc);
        assert_eq!(loader_kind(b"/lib/ld-musl-x86_64.so.1"), Loader::Musl);
        assert_eq!(loader_kind(b"/nix/store/x/ld-foo.so"), Loader::Unknown);
        let i386 = Identity {
            bits: 32,
            machine: EM_386,
            little_endian: true,
        };
        let amd64 = Identity {
            bits: 64,
            machine: EM_X86_64,
            little_endian: true,
        };
        assert_eq!(
            judge(i386, Some(b"/lib/ld-linux.so.2"), amd64),
            Reach::OtherMachine {
                i386_on_x86_64: true
            }
        );
        assert_eq!(judge(amd64, None, amd64), Reach::Static);
        assert_eq!(
            judge(amd64, Some(b"/lib/ld-musl-x86_64.so.1"), amd64),
            Reach::Preload(Loader::Musl)
        );
        // The same judgement as a rung of the ladder.
        assert_eq!(
            judge_image(amd64, Some(b"/lib64/ld-linux-x86-64.so.2"), amd64),
            Ok(Loader::Glibc)
        );
        assert_eq!(judge_image(amd64, None, amd64), Err(Miss::Static));
        assert_eq!(
            judge_image(amd64, Some(b"/system/bin/linker64"), amd64),
            Err(Miss::OtherLoader {
                loader: b"/system/bin/linker64"
            })
        );
        let i386_miss = judge_image(i386, Some(b"/lib/ld-linux.so.2"), amd64).unwrap_err();
        assert_eq!(
            i386_miss,
            Miss::OtherMachine {
                program: i386,
                shim: amd64
            }
        );
        assert!(i386_miss.i386_on_x86_64());
        assert!(!judge_image(amd64, None, i386).unwrap_err().i386_on_x86_64());
    }

    /// ld.so reads an LD_PRELOAD list split at colons and spaces: the shim anywhere in it is
    /// preloaded; two LD_PRELOAD variables, or none naming it, are not the environment the
    /// shim judged.
    #[test]
    fn the_environment_carries_the_shim_in_a_list_of_preloads() {
        let config = crate::Config::default();
        let shim = &b"/usr/lib/memlock-run/libmemlock_run_shim.so"[..];
        let env = |preload: &'static [u8]| [preload, &b"HOME=/root"[..]];
        for list in [
            &b"LD_PRELOAD=/usr/lib/memlock-run/libmemlock_run_shim.so"[..],
            b"LD_PRELOAD=libfoo.so:/usr/lib/memlock-run/libmemlock_run_shim.so",
            b"LD_PRELOAD=libfoo.so /usr/lib/memlock-run/libmemlock_run_shim.so libbar.so",
        ] {
            assert_eq!(
                carries_shim(env(list).into_iter(), shim, &config),
                Ok(()),
                "{}",
                core::str::from_utf8(list).unwrap()
            );
        }
        for list in [
            &b"LD_PRELOAD=libfoo.so"[..],
            b"LD_PRELOAD=/usr/lib/memlock-run/libmemlock_run_shim.so.old",
            b"LD_PRELOAD=libfoo.so,/usr/lib/memlock-run/libmemlock_run_shim.so",
        ] {
            assert_eq!(
                carries_shim(env(list).into_iter(), shim, &config),
                Err(Miss::NoShimInEnvironment)
            );
        }
        let twice = [
            &b"LD_PRELOAD=/usr/lib/memlock-run/libmemlock_run_shim.so"[..],
            b"LD_PRELOAD=/usr/lib/memlock-run/libmemlock_run_shim.so",
        ];
        assert_eq!(
            carries_shim(twice.into_iter(), shim, &config),
            Err(Miss::NoShimInEnvironment)
        );
    }

    /// An audit library runs before the shim and may refuse it: any LD_AUDIT that names one,
    /// wherever it is in the environment, is a miss; an empty one loads nothing.
    #[test]
    fn an_audit_library_in_the_environment_is_a_miss() {
        let config = crate::Config::default();
        let shim = &b"/usr/lib/memlock-run/libmemlock_run_shim.so"[..];
        let preload = &b"LD_PRELOAD=/usr/lib/memlock-run/libmemlock_run_shim.so"[..];
        for env in [
            [preload, b"LD_AUDIT=/tmp/audit.so"],
            [b"LD_AUDIT=audit.so:other.so", preload],
        ] {
            assert_eq!(
                carries_shim(env.into_iter(), shim, &config),
                Err(Miss::AuditLibrary)
            );
        }
        assert_eq!(
            carries_shim([preload, b"LD_AUDIT="].into_iter(), shim, &config),
            Ok(())
        );
        assert_eq!(
            carries_shim([preload, b"LD_AUDITX=/tmp/a.so"].into_iter(), shim, &config),
            Ok(())
        );
    }

    /// binfmt_elf refuses a file with no program headers, and one whose table is larger
    /// than a page (ELF_MIN_ALIGN), even when the file holds all of it.
    #[test]
    fn no_program_headers_or_more_than_a_page_of_them_is_malformed() {
        let none = elf64(&[], &[]);
        assert_eq!(
            parse(&none),
            Err(Malformed("no program headers, or more than a page of them"))
        );
        const COUNT: usize = MAX_PHDRS_SIZE / 56 + 1;
        let count = COUNT;
        let mut big = [0u8; 64 + COUNT * 56];
        big[..64].copy_from_slice(&elf64(&[], &[])[..64]);
        big[56..58].copy_from_slice(&(count as u16).to_le_bytes());
        assert_eq!(
            parse(&big),
            Err(Malformed("no program headers, or more than a page of them"))
        );
        let fits = MAX_PHDRS_SIZE / 56;
        big[56..58].copy_from_slice(&(fits as u16).to_le_bytes());
        assert!(parse(&big).is_ok(), "{fits} headers fit in a page");
        // 32-bit headers fill a page exactly: 128 of them are allowed, as by the kernel.
        let mut page = [0u8; 52 + MAX_PHDRS_SIZE];
        page[..4].copy_from_slice(b"\x7fELF");
        page[4] = 1; // 32-bit
        page[5] = 1;
        page[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        page[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
        page[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
        page[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
        page[44..46].copy_from_slice(&128u16.to_le_bytes()); // e_phnum
        assert!(parse(&page).is_ok(), "a page of 32-bit program headers");
    }

    /// A big-endian file (an s390x program) is ELF the kernel reads, for another machine:
    /// its headers are read in its own byte order, PT_INTERP and all.
    #[test]
    fn a_big_endian_program_is_read_in_its_byte_order() {
        let mut file = [0u8; 64 + 56 + 32];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // 64-bit
        file[5] = 2; // big-endian
        file[6] = 1;
        file[16..18].copy_from_slice(&ET_DYN.to_be_bytes());
        file[18..20].copy_from_slice(&22u16.to_be_bytes()); // EM_S390
        file[32..40].copy_from_slice(&64u64.to_be_bytes()); // e_phoff
        file[54..56].copy_from_slice(&56u16.to_be_bytes()); // e_phentsize
        file[56..58].copy_from_slice(&1u16.to_be_bytes()); // e_phnum
        file[64..68].copy_from_slice(&PT_INTERP.to_be_bytes());
        file[72..80].copy_from_slice(&120u64.to_be_bytes()); // p_offset
        file[96..104].copy_from_slice(&20u64.to_be_bytes()); // p_filesz
        let elf = parse(&file).expect("a big-endian ELF file");
        assert_eq!(
            elf.identity,
            Identity {
                bits: 64,
                machine: 22,
                little_endian: false
            }
        );
        assert_eq!(elf.interp, Some((120, 20)));
    }

    #[test]
    fn shebang_lines_as_the_kernel_reads_them() {
        assert_eq!(script_interpreter(b"#!/bin/sh\n"), Some(&b"/bin/sh"[..]));
        assert_eq!(
            script_interpreter(b"#! \t/usr/bin/env -S a b\n"),
            Some(&b"/usr/bin/env"[..])
        );
        assert_eq!(script_interpreter(b"#!/bin/sh"), Some(&b"/bin/sh"[..]));
        assert_eq!(script_interpreter(b"#!\n"), None);
        assert_eq!(script_interpreter(b"#!   \n/bin/sh"), None);
        let mut long = [b'a'; 300];
        long[0] = b'#';
        long[1] = b'!';
        assert_eq!(script_interpreter(&long), None, "a name cut by the buffer");
        long[100] = b' ';
        assert_eq!(script_interpreter(&long).map(<[u8]>::len), Some(98));
        // A tab or a NUL ends the name within the buffer as a space does.
        for end in [b'\t', 0] {
            long[100] = end;
            assert_eq!(
                script_interpreter(&long).map(<[u8]>::len),
                Some(98),
                "{end}"
            );
        }
    }
}

#[cfg(test)]
mod hostile {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    use super::tests::{elf64, reader};

    /// A well-formed 64-bit header with a PT_LOAD and a PT_INTERP, for mutation.
    fn valid() -> Vec<u8> {
        elf64(
            &[(1, 0, 0), (PT_INTERP, 512, 28)],
            b"/lib64/ld-linux-x86-64.so.2\0",
        )
        .to_vec()
    }

    proptest! {
        /// Any file is ELF as the kernel reads it, or malformed: never a panic, and what
        /// parses stays within the kernel's bounds.
        #[test]
        fn any_bytes_parse_or_are_refused(file in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(elf) = parse_elf(&file, reader(&file)) {
                if let Some((_, size)) = elf.interp {
                    prop_assert!((2..=MAX_INTERP_SIZE).contains(&size));
                }
            }
            let _ = script_interpreter(&file);
            let _ = interp_path(&file);
            let _ = loader_kind(&file);
        }

        /// A valid header with bytes changed anywhere: parsed the same way every time, and a
        /// loader read from it is judged without a panic.
        #[test]
        fn mutated_headers(changes in proptest::collection::vec((0usize..600, any::<u8>()), 1..8)) {
            let mut file = valid();
            for (at, byte) in changes {
                file[at] = byte;
            }
            let first = parse_elf(&file, reader(&file));
            prop_assert_eq!(first, parse_elf(&file, reader(&file)));
            if let Ok(Elf { identity, interp: Some((offset, size)), .. }) = first {
                let bytes = file.get(offset as usize..offset as usize + size);
                if let Some(Ok(path)) = bytes.map(interp_path) {
                    let _ = judge(identity, Some(path), Identity::NATIVE);
                }
            }
        }

        /// The interpreter of a `#!` line holds no separator and comes from the first 256 bytes.
        #[test]
        fn shebang_interpreters_are_one_word(line in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut file = b"#!".to_vec();
            file.extend_from_slice(&line);
            if let Some(name) = script_interpreter(&file) {
                prop_assert!(!name.is_empty());
                prop_assert!(!name.iter().any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0)));
                let start = name.as_ptr() as usize - file.as_ptr() as usize;
                prop_assert!(start + name.len() <= HEAD_SIZE);
            }
        }
    }
}
