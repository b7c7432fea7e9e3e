//! What an ELF file's headers say: class, machine, type and interpreter (PT_INTERP); and,
//! for `--check`'s estimate, how much it maps (PT_LOAD) and what it needs (PT_DYNAMIC).
//!
//! Read through `object` with a read cache, so that only the headers (and the dynamic
//! string table) of a large program are read from disk.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memlock_run_protocol::reach;
use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader, Sym};
use object::{Endianness, FileKind, ReadCache, ReadRef};

/// The properties that decide whether a shared object can be loaded into a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfIdentity {
    pub bits: u8,
    pub machine: u16,
    pub little_endian: bool,
}

impl ElfIdentity {
    /// `64-bit x86-64`, for messages (the ladder's words: `reach::Identity::write`).
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let _ = reach::Identity::from(*self).write(&mut text);
        text
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

/// Reads the headers as the kernel does (see `memlock_run_protocol::reach`, which the shim
/// also uses at exec time); `None` when the file is not ELF at all.
pub fn read(path: &Path) -> Result<Option<ElfInfo>> {
    read_as(path, path)
}

/// `read` of `path` (a descriptor's /proc/self/fd link), naming `shown` in its errors.
pub fn read_as(path: &Path, shown: &Path) -> Result<Option<ElfInfo>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", shown.display()))?;
    read_file(&file, shown)
}

/// `read` of a file open for reading (positioned reads: its offset is left alone), naming
/// `shown` in its errors.
///
/// Its first page is read at once: the header, and for nearly every program its program
/// headers and PT_INTERP, which are then taken from it rather than read one by one (the exec
/// gate reads every program the tree executes); what lies past it is read where it is.
pub fn read_file(file: &File, shown: &Path) -> Result<Option<ElfInfo>> {
    let first = first_page(file).with_context(|| format!("cannot read {}", shown.display()))?;
    read_with_first_page(file, &first, shown)
}

/// A file's first page (less where the file is shorter), by positioned reads.
pub fn first_page(file: &File) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut first = vec![0u8; 4096];
    let mut filled = 0;
    while filled < first.len() {
        match file.read_at(&mut first[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    first.truncate(filled);
    Ok(first)
}

/// [`read_file`] of a file whose first page (`first_page`) the caller has read already.
pub fn read_with_first_page(file: &File, first: &[u8], shown: &Path) -> Result<Option<ElfInfo>> {
    use std::os::unix::fs::FileExt;
    let head = &first[..first.len().min(64)];
    if reach::format(head) != reach::Format::Elf {
        return Ok(None);
    }
    let read_at = |offset: u64, buf: &mut [u8]| {
        let within = usize::try_from(offset)
            .ok()
            .and_then(|from| first.get(from..from.checked_add(buf.len())?));
        match within {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                true
            }
            None => file.read_exact_at(buf, offset).is_ok(),
        }
    };
    let damaged = |why: reach::Malformed| {
        anyhow::anyhow!(
            "{} has a damaged ELF header ({}), which the kernel refuses to run",
            shown.display(),
            why.0
        )
    };
    let elf = reach::parse_elf(head, read_at).map_err(damaged)?;
    let interpreter = match elf.interp {
        None => None,
        Some((offset, size)) => {
            let mut bytes = vec![0u8; size];
            if !read_at(offset, &mut bytes) {
                return Err(damaged(reach::Malformed(
                    "a PT_INTERP past the end of the file",
                )));
            }
            let path = reach::interp_path(&bytes).map_err(damaged)?;
            Some(PathBuf::from(OsStr::from_bytes(path)))
        }
    };
    Ok(Some(ElfInfo {
        identity: ElfIdentity {
            bits: elf.identity.bits,
            machine: elf.identity.machine,
            little_endian: elf.identity.little_endian,
        },
        e_type: elf.e_type,
        interpreter,
    }))
}

pub fn identify(path: &Path) -> Result<Option<ElfIdentity>> {
    Ok(read(path)?.map(|info| info.identity))
}

impl From<ElfIdentity> for reach::Identity {
    fn from(id: ElfIdentity) -> Self {
        reach::Identity {
            bits: id.bits,
            machine: id.machine,
            little_endian: id.little_endian,
        }
    }
}

/// What the loaders map for an ELF file, and the libraries it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub identity: ElfIdentity,
    /// Its PT_LOAD segments, each rounded out to whole pages: what the kernel maps for a
    /// program or its loader (the holes between segments are unmapped).
    pub segments: u64,
    /// From the start of its first PT_LOAD to the end of its last, in whole pages: what
    /// ld.so maps for a library (it reserves the whole span and leaves the holes PROT_NONE).
    pub span: u64,
    /// DT_NEEDED, in order.
    pub needed: Vec<OsString>,
    /// DT_RPATH and DT_RUNPATH, each split at `:`; `$ORIGIN` not yet expanded.
    pub rpath: Vec<OsString>,
    pub runpath: Vec<OsString>,
    /// Its dynamic symbol table defines `malloc`: it provides malloc to the process when it
    /// comes first in ld.so's lookup order (an allocator such as jemalloc, or glibc itself).
    pub defines_malloc: bool,
}

/// Reads the load segments and dynamic section; `None` when the file is not ELF.
pub fn layout(path: &Path) -> Result<Option<Layout>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let data = ReadCache::new(file);
    let parsed = match FileKind::parse(&data) {
        Ok(FileKind::Elf32) => parse_layout::<FileHeader32<Endianness>, _>(&data),
        Ok(FileKind::Elf64) => parse_layout::<FileHeader64<Endianness>, _>(&data),
        _ => return Ok(None),
    };
    parsed
        .map(Some)
        .with_context(|| format!("{} has damaged ELF headers", path.display()))
}

fn parse_layout<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
) -> Result<Layout> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    let page = page_size();
    let round_down = |n: u64| n & !(page - 1);
    let round_up = |n: u64| n.saturating_add(page - 1) & !(page - 1);

    let segments = header.program_headers(endian, data)?;
    let mut loads: Vec<(u64, u64, u64, u64)> = Vec::new(); // vaddr, memsz, offset, filesz
    let mut dynamic = None;
    for segment in segments {
        match segment.p_type(endian) {
            object::elf::PT_LOAD => loads.push((
                segment.p_vaddr(endian).into(),
                segment.p_memsz(endian).into(),
                segment.p_offset(endian).into(),
                segment.p_filesz(endian).into(),
            )),
            object::elf::PT_DYNAMIC => dynamic = segment.dynamic(endian, data)?,
            _ => {}
        }
    }
    let mapped: u64 = loads
        .iter()
        .map(|&(vaddr, memsz, _, _)| {
            round_up(vaddr.saturating_add(memsz)).saturating_sub(round_down(vaddr))
        })
        // A crafted file's sizes must not wrap the sum.
        .fold(0u64, u64::saturating_add);
    let low = loads.iter().map(|l| l.0).min().unwrap_or(0);
    let high = loads
        .iter()
        .map(|l| l.0.saturating_add(l.1))
        .max()
        .unwrap_or(0);
    let span = round_up(high).saturating_sub(round_down(low));

    let mut layout = Layout {
        identity: ElfIdentity {
            bits: if header.is_type_64() { 64 } else { 32 },
            machine: header.e_machine(endian),
            little_endian: endian == Endianness::Little,
        },
        segments: mapped,
        span,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        defines_malloc: false,
    };
    // The section headers name .dynsym; a file stripped of them (rare) is taken not to define it.
    if let Ok(sections) = header.sections(endian, data) {
        if let Ok(dynsym) = sections.symbols(endian, data, object::elf::SHT_DYNSYM) {
            layout.defines_malloc = dynsym.iter().any(|sym| {
                sym.st_shndx(endian) != object::elf::SHN_UNDEF
                    && dynsym.symbol_name(endian, sym).ok() == Some(&b"malloc"[..])
            });
        }
    }
    let Some(entries) = dynamic else {
        return Ok(layout);
    };
    // DT_STRTAB is an address; find it in the file through the segment that loads it.
    let (mut strtab, mut strsz) = (None, 0u64);
    for entry in entries {
        match entry.tag32(endian) {
            Some(object::elf::DT_STRTAB) => strtab = Some(entry.d_val(endian).into()),
            Some(object::elf::DT_STRSZ) => strsz = entry.d_val(endian).into(),
            _ => {}
        }
    }
    let Some(strtab) = strtab else {
        return Ok(layout);
    };
    let Some(offset) = loads
        .iter()
        .find(|&&(vaddr, _, _, filesz)| vaddr <= strtab && strtab < vaddr.saturating_add(filesz))
        .map(|&(vaddr, _, offset, _)| offset + (strtab - vaddr))
    else {
        return Ok(layout);
    };
    let strings = data
        .read_bytes_at(offset, strsz)
        .map_err(|()| anyhow::anyhow!("its dynamic string table is outside the file"))?;
    let string_at = |value: u64| -> Option<&[u8]> {
        let rest = strings.get(usize::try_from(value).ok()?..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    };
    let split = |bytes: &[u8]| -> Vec<OsString> {
        bytes
            .split(|&b| b == b':')
            .filter(|p| !p.is_empty())
            .map(|p| OsStr::from_bytes(p).to_owned())
            .collect()
    };
    for entry in entries {
        let value: u64 = entry.d_val(endian).into();
        match entry.tag32(endian) {
            Some(object::elf::DT_NEEDED) => {
                if let Some(name) = string_at(value) {
                    layout.needed.push(OsStr::from_bytes(name).to_owned());
                }
            }
            Some(object::elf::DT_RPATH) => layout
                .rpath
                .extend(string_at(value).map(split).unwrap_or_default()),
            Some(object::elf::DT_RUNPATH) => layout
                .runpath
                .extend(string_at(value).map(split).unwrap_or_default()),
            _ => {}
        }
    }
    Ok(layout)
}

/// This machine's page size: sysconf's, or 4096 where it gives none that makes sense.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// Whether the file is a Go program (its `.go.buildinfo` or `.note.go.buildid` section):
/// Go's runtime reserves hundreds of MiB of address space at start, which MCL_FUTURE counts.
pub fn is_go(path: &Path) -> bool {
    use object::{Object, ObjectSection};
    let Ok(file) = File::open(path) else {
        return false;
    };
    let data = ReadCache::new(file);
    let Ok(parsed) = object::File::parse(&data) else {
        return false;
    };
    let found = parsed.sections().any(|section| {
        matches!(
            section.name(),
            Ok(".go.buildinfo") | Ok(".note.go.buildid") | Ok(".gopclntab")
        )
    });
    found
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
    fn this_test_binary_needs_libc() {
        let exe = std::env::current_exe().unwrap();
        let layout = layout(&exe).unwrap().expect("an ELF file");
        assert!(
            layout
                .needed
                .iter()
                .any(|n| n.to_string_lossy().starts_with("libc.so")),
            "{:?}",
            layout.needed
        );
        assert!(layout.segments > 0 && layout.span >= layout.segments);
        assert!(
            !layout.defines_malloc,
            "Rust programs take malloc from libc"
        );
        assert_eq!(layout.segments % 4096, 0);
    }

    #[test]
    fn a_text_file_is_not_elf() {
        assert_eq!(read(Path::new("/etc/hostname")).unwrap(), None);
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let mut bytes = std::fs::read("/proc/self/exe").expect("read own executable");
            bytes.truncate(16 << 10);
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A real ELF header with bytes changed anywhere in its first pages: read as a program,
        /// a layout or an error, never a panic or a wrapped sum.
        #[test]
        fn a_damaged_elf_file_is_read_or_refused(
            changes in proptest::collection::vec((0usize..4096, any::<u8>()), 1..16)
        ) {
            let mut bytes = sample().to_vec();
            for (at, value) in changes {
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = value;
                }
            }
            let path = std::env::temp_dir().join(format!(
                "memlock-run-elf-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, &bytes).unwrap();
            let _ = read(&path);
            let _ = layout(&path);
            let _ = is_go(&path);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
