//! What an ELF file's headers say: class, machine, type and interpreter (PT_INTERP).
//!
//! Read through `object` with a read cache, so that only the headers of a large program
//! are read from disk.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind, ReadCache, ReadRef};

/// The properties that decide whether a shared object can be loaded into a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfIdentity {
    pub bits: u8,
    pub machine: u16,
    pub little_endian: bool,
}

impl ElfIdentity {
    /// `64-bit x86-64`, for messages.
    pub fn describe(&self) -> String {
        let machine = match self.machine {
            object::elf::EM_X86_64 => "x86-64",
            object::elf::EM_386 => "i386",
            object::elf::EM_AARCH64 => "AArch64",
            object::elf::EM_ARM => "ARM",
            object::elf::EM_PPC64 => "PowerPC64",
            object::elf::EM_PPC => "PowerPC",
            object::elf::EM_S390 => "s390",
            object::elf::EM_RISCV => "RISC-V",
            object::elf::EM_MIPS => "MIPS",
            _ => return format!("{}-bit machine {}", self.bits, self.machine),
        };
        format!(
            "{}-bit {machine}{}",
            self.bits,
            if self.little_endian {
                ""
            } else {
                " big-endian"
            }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfInfo {
    pub identity: ElfIdentity,
    /// `e_type`: ET_EXEC, ET_DYN (PIE or shared object), ...
    pub e_type: u16,
    /// PT_INTERP: the dynamic loader the kernel starts for it; none for a static program.
    pub interpreter: Option<PathBuf>,
}

/// Reads the headers; `None` when the file is not ELF at all.
pub fn read(path: &Path) -> Result<Option<ElfInfo>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let data = ReadCache::new(file);
    let kind = match FileKind::parse(&data) {
        Ok(kind) => kind,
        Err(_) => return Ok(None),
    };
    let parsed = match kind {
        FileKind::Elf32 => parse::<FileHeader32<Endianness>, _>(&data),
        FileKind::Elf64 => parse::<FileHeader64<Endianness>, _>(&data),
        _ => return Ok(None),
    };
    parsed
        .map(Some)
        .with_context(|| format!("{} has a damaged ELF header", path.display()))
}

pub fn identify(path: &Path) -> Result<Option<ElfIdentity>> {
    Ok(read(path)?.map(|info| info.identity))
}

fn parse<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
) -> object::Result<ElfInfo> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    let mut interpreter = None;
    for segment in header.program_headers(endian, data)? {
        if let Some(bytes) = segment.interpreter(endian, data)? {
            interpreter = Some(PathBuf::from(OsStr::from_bytes(bytes)));
        }
    }
    Ok(ElfInfo {
        identity: ElfIdentity {
            bits: if header.is_type_64() { 64 } else { 32 },
            machine: header.e_machine(endian),
            little_endian: endian == Endianness::Little,
        },
        e_type: header.e_type(endian),
        interpreter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let info = read(&exe).unwrap().expect("an ELF file");
        assert_eq!(info.identity.bits as usize, usize::BITS as usize);
        let interp = info.interpreter.expect("a dynamic executable");
        assert!(
            interp.to_string_lossy().contains("ld-"),
            "{}",
            interp.display()
        );
    }

    #[test]
    fn a_text_file_is_not_elf() {
        assert_eq!(read(Path::new("/etc/hostname")).unwrap(), None);
    }
}
