//! How much a program will have mapped when the shim calls mlockall(2): an estimate from
//! ELF headers, for `--check`. Nothing is run.
//!
//! Without CAP_IPC_LOCK, mlockall(MCL_CURRENT) fails with ENOMEM when the process's whole
//! mapped size (the kernel's total_vm, `VmSize` in /proc/PID/status and in the shim's
//! report) is above the soft RLIMIT_MEMLOCK. At that moment the process maps:
//! - the program's PT_LOAD segments, and ld.so's (the kernel maps both, segment by segment);
//! - every preloaded library (the user's `LD_PRELOAD`, then the shim) and every DT_NEEDED
//!   library, transitively, found the way ld.so searches for them (DT_RPATH, then
//!   `LD_LIBRARY_PATH`, DT_RUNPATH, the directories of /etc/ld.so.conf, the default ones),
//!   each at its whole span, since ld.so reserves it and leaves the holes PROT_NONE;
//! - the main thread's stack (the kernel starts it at 132 KiB; a pre-fault adds to it), and
//!   the heap the shim grows for `--heap`;
//! - a small allowance for the kernel's `[vdso]` and `[vvar]` pages and ld.so's own
//!   allocations (TLS, link maps).
//!
//! What this does not see: libraries opened with dlopen(3), and whatever constructors that
//! run before the shim's map. So it is a floor for what a real run locks at start, and
//! `--check` says so. It is not a model of what the program maps later, under MCL_FUTURE.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::elf::{self, ElfIdentity, Layout};
use crate::host::install::MULTIARCH;
use crate::size::show;
use memlock_run_protocol::reach;

/// The stack the kernel sets up before the program runs (128 KiB plus a page or so for the
/// arguments, as /proc/PID/maps shows it).
pub const INITIAL_STACK: u64 = 132 << 10;

/// `[vvar]`, `[vvar_vclock]`, `[vdso]` and ld.so's early allocations, measured on x86-64
/// Linux 6.x at about 50 KiB; rounded up.
const EXTRAS: u64 = 64 << 10;

/// The system library directories when /etc/ld.so.conf names none (glibc's built-in list,
/// with Debian's multiarch directories).
fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(tuple) = MULTIARCH {
        dirs.push(Path::new("/lib").join(tuple));
        dirs.push(Path::new("/usr/lib").join(tuple));
    }
    for dir in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

/// The estimate, by part.
#[derive(Debug)]
pub struct Estimate {
    pub program: u64,
    pub loader: u64,
    /// Preloaded libraries, the shim included.
    pub preloaded: u64,
    /// DT_NEEDED libraries, transitively, and how many there are.
    pub libraries: u64,
    pub library_count: usize,
    pub stack: u64,
    /// `--heap`, grown before mlockall.
    pub heap: u64,
    pub extras: u64,
    /// The object whose `malloc` the process will call, when it is not glibc's: the first
    /// in ld.so's lookup order (program, preloads, then needed libraries) to define it.
    pub foreign_malloc: Option<PathBuf>,
    /// Libraries that were asked for but not found where ld.so would look.
    pub missing: Vec<String>,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        // Sizes from crafted headers and a --prefault near 2^64 must not wrap.
        [
            self.loader,
            self.preloaded,
            self.libraries,
            self.stack,
            self.heap,
            self.extras,
        ]
        .into_iter()
        .fold(self.program, u64::saturating_add)
    }

    /// `program 20 KiB, ld.so 212 KiB, preloaded 48 KiB, 1 library 1.88 MiB, stack 132 KiB, vdso and ld.so data 64 KiB`
    pub fn describe(&self) -> String {
        let heap = if self.heap > 0 {
            format!(", heap {}", show(self.heap))
        } else {
            String::new()
        };
        format!(
            "program {}, ld.so {}, preloaded {}, {} {} {}, stack {}{heap}, vdso and ld.so data {}",
            show(self.program),
            show(self.loader),
            show(self.preloaded),
            self.library_count,
            if self.library_count == 1 {
                "library"
            } else {
                "libraries"
            },
            show(self.libraries),
            show(self.stack),
            show(self.extras)
        )
    }
}

/// What a static program maps at its entry point, where the ptrace method locks it: its
/// own segments, its stack, and the kernel's extras (vDSO, vvar).
pub fn estimate_static(image: &Path, prefault: u64) -> Result<Estimate> {
    let program = read(image)?;
    Ok(Estimate {
        program: program.segments,
        loader: 0,
        preloaded: 0,
        libraries: 0,
        library_count: 0,
        stack: INITIAL_STACK.saturating_add(prefault),
        heap: 0,
        extras: EXTRAS,
        foreign_malloc: None,
        missing: Vec::new(),
    })
}

/// What the program `image` (an ELF file with a PT_INTERP) will map at the shim's mlockall.
///
/// `preload` is the `LD_PRELOAD` list COMMAND will get (the shim last), `prefault` and
/// `heap` the bytes of stack and heap the shim grows before it locks.
pub fn estimate(
    image: &Path,
    loader: &Path,
    preload: &[PathBuf],
    ld_library_path: Option<&OsStr>,
    prefault: u64,
    heap: u64,
) -> Result<Estimate> {
    let program = read(image)?;
    let loader_layout = read(loader)?;
    let musl = reach::loader_kind(loader.as_os_str().as_bytes()) == reach::Loader::Musl;
    let search = Search::new(&program, musl.then_some(loader), ld_library_path);
    let mut estimate = Estimate {
        program: program.segments,
        loader: loader_layout.segments,
        preloaded: 0,
        libraries: 0,
        library_count: 0,
        stack: INITIAL_STACK.saturating_add(prefault),
        heap,
        extras: EXTRAS,
        foreign_malloc: None,
        missing: Vec::new(),
    };
    let mut malloc_found = false;

    // ld.so loads the preloads first, then the program's needs breadth-first, each once.
    let mut seen_names: HashSet<OsString> = HashSet::new();
    let mut seen_files: HashSet<PathBuf> = HashSet::new();
    seen_files.insert(canonical(image));
    seen_files.insert(canonical(loader));
    if let Some(name) = loader.file_name() {
        seen_names.insert(name.to_owned());
    }
    let mut queue: Vec<(PathBuf, Layout)> = Vec::new();
    for entry in preload {
        let found = if entry.as_os_str().as_bytes().contains(&b'/') {
            entry.is_file().then(|| entry.clone())
        } else {
            search.find(entry.as_os_str(), None)
        };
        let Some(path) = found else {
            // ld.so says "cannot be preloaded ... ignored" and goes on.
            estimate
                .missing
                .push(format!("{} (LD_PRELOAD)", entry.display()));
            continue;
        };
        if !seen_files.insert(canonical(&path)) {
            continue;
        }
        if let Some(name) = path.file_name() {
            seen_names.insert(name.to_owned());
        }
        let layout = read(&path)?;
        estimate.preloaded = estimate.preloaded.saturating_add(layout.span);
        queue.push((path, layout));
    }
    queue.insert(0, (image.to_owned(), program.clone()));

    let mut next = 0;
    while let Some((path, layout)) = queue.get(next).cloned() {
        next += 1;
        // The queue is ld.so's global lookup order: the first definition of malloc wins.
        if layout.defines_malloc && !malloc_found {
            malloc_found = true;
            let glibc = path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("libc.so"));
            if !glibc {
                estimate.foreign_malloc = Some(path.clone());
            }
        }
        for name in &layout.needed {
            if !seen_names.insert(name.clone()) || (musl && musl_provides(name)) {
                continue;
            }
            let found = if name.as_bytes().contains(&b'/') {
                Some(PathBuf::from(name))
            } else {
                search.find(name, Some((&path, &layout)))
            };
            let Some(found) = found else {
                estimate.missing.push(name.to_string_lossy().into_owned());
                continue;
            };
            if !seen_files.insert(canonical(&found)) {
                continue;
            }
            let needed = read(&found)?;
            estimate.libraries = estimate.libraries.saturating_add(needed.span);
            estimate.library_count += 1;
            queue.push((found, needed));
        }
    }
    Ok(estimate)
}

/// musl's loader is its C library, and answers for the names of glibc's parts itself
/// (`libc.so.6`, `libdl.so.2`, `libpthread.so.0`...): they are never looked for on disk.
fn musl_provides(name: &OsStr) -> bool {
    let Some(rest) = name.as_bytes().strip_prefix(b"lib") else {
        return false;
    };
    [
        &b"c."[..],
        b"pthread.",
        b"rt.",
        b"m.",
        b"dl.",
        b"util.",
        b"xnet.",
    ]
    .iter()
    .any(|part| rest.starts_with(part))
}

fn read(path: &Path) -> Result<Layout> {
    elf::layout(path)?.with_context(|| format!("{} is not an ELF file", path.display()))
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// ld.so's search for a library by name, as ld.so(8) describes it.
struct Search {
    identity: ElfIdentity,
    /// The program's own DT_RPATH, which glibc also searches for its libraries' needs
    /// (unless the program has a DT_RUNPATH).
    program_rpath: Vec<PathBuf>,
    ld_library_path: Vec<PathBuf>,
    system: Vec<PathBuf>,
}

impl Search {
    /// `musl_loader`: musl's loader reads /etc/ld-musl-ARCH.path (named after its own file
    /// name), or searches /lib, /usr/local/lib and /usr/lib; not /etc/ld.so.conf.
    fn new(
        program: &Layout,
        musl_loader: Option<&Path>,
        ld_library_path: Option<&OsStr>,
    ) -> Search {
        let ld_library_path = ld_library_path
            .map(|value| {
                value
                    .as_bytes()
                    .split(|&b| b == b':' || b == b';')
                    .filter(|dir| !dir.is_empty())
                    .map(|dir| PathBuf::from(OsStr::from_bytes(dir)))
                    .collect()
            })
            .unwrap_or_default();
        let mut system = Vec::new();
        if let Some(loader) = musl_loader {
            let arch = loader
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("ld-musl-"))
                .and_then(|n| n.strip_suffix(".so.1"))
                .unwrap_or("x86_64");
            match std::fs::read(format!("/etc/ld-musl-{arch}.path")) {
                Ok(text) => system.extend(
                    text.split(|&b| b == b':' || b == b'\n')
                        .filter(|dir| !dir.is_empty())
                        .map(|dir| PathBuf::from(OsStr::from_bytes(dir))),
                ),
                Err(_) => system.extend(["/lib", "/usr/local/lib", "/usr/lib"].map(PathBuf::from)),
            }
        } else {
            ld_so_conf(Path::new("/etc/ld.so.conf"), &mut system, 0);
            for dir in default_dirs() {
                if !system.contains(&dir) {
                    system.push(dir);
                }
            }
        }
        Search {
            identity: program.identity,
            program_rpath: if program.runpath.is_empty() {
                program.rpath.iter().map(PathBuf::from).collect()
            } else {
                Vec::new()
            },
            ld_library_path,
            system,
        }
    }

    /// The file ld.so would load for `name`, needed by `by` (none for a preload).
    fn find(&self, name: &OsStr, by: Option<(&Path, &Layout)>) -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some((path, layout)) = by {
            let origin = canonical(path)
                .parent()
                .map(Path::to_owned)
                .unwrap_or_default();
            let expand = |dir: &OsString| expand_origin(dir, &origin);
            if layout.runpath.is_empty() {
                dirs.extend(layout.rpath.iter().map(expand));
                dirs.extend(self.program_rpath.iter().cloned());
            }
            dirs.extend(self.ld_library_path.iter().cloned());
            dirs.extend(layout.runpath.iter().map(expand));
        } else {
            dirs.extend(self.ld_library_path.iter().cloned());
        }
        dirs.extend(self.system.iter().cloned());
        dirs.into_iter()
            .map(|dir| dir.join(name))
            .find(|candidate| self.loadable(candidate))
    }

    /// ld.so skips a file of the wrong class or machine and goes on searching.
    fn loadable(&self, candidate: &Path) -> bool {
        candidate.is_file()
            && matches!(elf::identify(candidate), Ok(Some(identity)) if identity == self.identity)
    }
}

fn expand_origin(dir: &OsString, origin: &Path) -> PathBuf {
    let text = dir.to_string_lossy();
    let origin = origin.to_string_lossy();
    PathBuf::from(
        text.replace("${ORIGIN}", &origin)
            .replace("$ORIGIN", &origin),
    )
}

/// The directories /etc/ld.so.conf names, following `include` lines (whose patterns may
/// have `*` and `?` in their last component, as the stock files use them).
fn ld_so_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    if depth > 8 {
        return;
    }
    let base = path.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            for pattern in pattern.split_whitespace() {
                for file in glob(&base.join(pattern)) {
                    ld_so_conf(&file, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            // `dir=TYPE` is an old form some files still use.
            let dir = PathBuf::from(line.split('=').next().unwrap_or(line).trim());
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
}

/// The files matching a pattern with wildcards in its last component, sorted.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?']) {
        return vec![pattern.to_owned()];
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| wildcard(name.as_bytes(), entry.file_name().as_bytes()))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard(&pattern[1..], text) || (!text.is_empty() && wildcard(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wildcard(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_the_shell_does() {
        assert!(wildcard(b"*.conf", b"libc.conf"));
        assert!(wildcard(b"x86_64-*.conf", b"x86_64-linux-gnu.conf"));
        assert!(wildcard(b"?.so", b"a.so"));
        assert!(!wildcard(b"*.conf", b"libc.conf.bak"));
        assert!(!wildcard(b"?.so", b"ab.so"));
    }

    #[test]
    fn origin_is_the_objects_directory() {
        assert_eq!(
            expand_origin(&"$ORIGIN/../lib".into(), Path::new("/opt/app/bin")),
            Path::new("/opt/app/bin/../lib")
        );
        assert_eq!(
            expand_origin(&"${ORIGIN}".into(), Path::new("/opt")),
            Path::new("/opt")
        );
    }

    #[test]
    fn this_test_binary_maps_at_least_libc() {
        let exe = std::env::current_exe().unwrap();
        let info = elf::read(&exe).unwrap().unwrap();
        let loader = info.interpreter.unwrap();
        let estimate = estimate(&exe, &loader, &[], None, 0, 0).unwrap();
        assert!(estimate.missing.is_empty(), "{:?}", estimate.missing);
        assert_eq!(estimate.foreign_malloc, None, "glibc's malloc");
        assert!(estimate.library_count >= 1, "{estimate:?}");
        assert!(estimate.libraries > 1 << 20, "libc alone maps over 1 MiB");
        assert_eq!(
            estimate.total(),
            estimate.program + estimate.loader + estimate.libraries + INITIAL_STACK + EXTRAS
        );
    }
}
