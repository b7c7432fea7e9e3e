//! What we know about the program to run: where it is, what kind of executable it is, and
//! whether a preload can reach it.
//!
//! ld.so fails open: a preload it cannot apply is ignored, or only warned about, and the
//! program runs unlocked. So everything that would make the shim miss is judged here, and
//! recorded on the [`Target`] as a [`Refusal`] with the reason: the launcher refuses to run
//! it, and `--check` reports it as a finding. The rules and their texts are the ladder the
//! exec gate and the shim use too (`memlock_run_protocol::reach::Miss`):
//! - no PT_INTERP (static or static-pie): ld.so never runs;
//! - a loader that is neither glibc's nor musl's (the shim loads under those two);
//! - another ELF class or machine than the shim's;
//! - secure-execution mode, as the kernel computes it for the IDs and no_new_privs COMMAND
//!   is executed with (a set-ID bit that changes them, file capabilities for a user other
//!   than root, an effective ID not the real one): ld.so ignores a preload given by path,
//!   and the kernel clears the ambient capabilities;
//! - a file that may be executed but not read, whose headers cannot be judged.
//!
//! What remains here is the launcher's own: the remedy that ends each message, and whether
//! the ptrace method can lock the program instead. A `#!` script is judged by its
//! interpreter, as the kernel runs it.
//!
//! What makes COMMAND impossible to execute at all (not found, not executable, not ELF nor
//! `#!`) is an error carrying [`NotRunnable`] instead, with the status 126 or 127.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::{access, AccessFlags};

use super::{binfmt, envline};
use crate::elf::{self, ElfIdentity, ElfInfo};
use memlock_run_protocol::reach::{self, Miss, SecureExecution};

/// The default search path when PATH is unset, as glibc's execvp uses.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The kernel reads at most this much of a `#!` line (BINPRM_BUF_SIZE, Linux 5.1).
const SHEBANG_MAX: usize = 256;

/// The kernel follows at most this many nested interpreters.
const MAX_INTERPRETER_DEPTH: usize = 4;

/// COMMAND cannot be executed at all: 127 not found, 126 found but not executable.
#[derive(Debug)]
pub struct NotRunnable {
    pub status: u8,
    pub message: String,
}

impl fmt::Display for NotRunnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotRunnable {}

fn not_found(message: String) -> anyhow::Error {
    NotRunnable {
        status: 127,
        message,
    }
    .into()
}

fn not_executable(message: String) -> anyhow::Error {
    NotRunnable {
        status: 126,
        message,
    }
    .into()
}

/// The identity COMMAND will be executed with: its real and effective user and group IDs and
/// whether no_new_privs is set (by the caller, or by this run for its exec gate). They decide
/// secure-execution mode (`reach::SecureExecution`), as for a task of the tree.
#[derive(Clone, Copy, Debug)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub no_new_privs: bool,
}

/// Why the shim could not reach a program that can otherwise be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A few words for a finding: `statically linked (no PT_INTERP)`.
    pub summary: String,
    /// The whole message: the cause, and what to do instead.
    pub message: String,
    /// The ptrace method can lock it from outside (static, another loader, i386); not so for
    /// secure-execution mode, which no method may enter.
    pub ptrace_can: bool,
}

impl Refusal {
    /// A rung of the ladder as the launcher says it, ending with `remedy`.
    fn new(path: &Path, miss: Miss, remedy: &str, ptrace_can: bool) -> Refusal {
        let mut summary = String::new();
        let _ = miss.write_summary(&mut summary);
        Refusal {
            summary,
            message: refusing(path, miss, remedy),
            ptrace_can,
        }
    }
}

/// `refusing PATH: EXPLANATION; REMEDY`.
fn refusing(path: &Path, miss: Miss, remedy: &str) -> String {
    let mut message = format!("refusing {}: ", path.display());
    let _ = miss.write_explanation(&mut message);
    message.push_str("; ");
    message.push_str(remedy);
    message
}

#[derive(Debug)]
pub struct Target {
    /// The file handed to execve(2).
    pub path: PathBuf,
    /// The file as it was judged, open: memlock-run execs exactly this one where it can
    /// (execveat), so that a file swapped in after the judgement is not what runs.
    pub file: File,
    /// Its device and inode, which the ptrace helper checks the new image against.
    pub id: (u64, u64),
    pub program: Program,
    /// Why the preload would miss this program itself (a script's interpreter has its own).
    pub refusal: Option<Refusal>,
}

#[derive(Debug)]
pub enum Program {
    /// A dynamically linked glibc program.
    Elf(ElfInfo),
    /// A `#!` script, and the interpreter that will run it (what the shim is loaded into).
    Script {
        interpreter: Box<Target>,
        via_env: bool,
        /// The binfmt_misc rule that hands the file to `interpreter`, in place of a `#!` line.
        binfmt: Option<String>,
    },
}

impl Target {
    /// `dynamic ELF, 64-bit x86-64, loader /lib64/ld-linux-x86-64.so.2` or
    /// `#! script run by /usr/bin/python3.11 (dynamic ELF, ...)`.
    pub fn describe(&self) -> String {
        match &self.program {
            Program::Elf(info) => match &info.interpreter {
                Some(loader) => format!(
                    "dynamic ELF, {}, loader {}",
                    info.identity.describe(),
                    loader.display()
                ),
                None => format!("static ELF, {} (no PT_INTERP)", info.identity.describe()),
            },
            Program::Script {
                interpreter,
                binfmt: Some(rule),
                ..
            } => format!(
                "run by {} through binfmt_misc rule {rule} ({})",
                interpreter.path.display(),
                interpreter.describe()
            ),
            Program::Script {
                interpreter,
                via_env,
                binfmt: None,
            } => format!(
                "#! script run by {}{} ({})",
                interpreter.path.display(),
                if *via_env { " through env" } else { "" },
                interpreter.describe()
            ),
        }
    }

    /// The first reason the preload would miss: this program's own, else its interpreter's.
    pub fn refusal(&self) -> Option<Refusal> {
        if let Some(refusal) = &self.refusal {
            return Some(refusal.clone());
        }
        match &self.program {
            Program::Elf(_) => None,
            Program::Script {
                interpreter,
                binfmt,
                ..
            } => interpreter.refusal().map(|inner| {
                let how = match binfmt {
                    Some(rule) => format!("is run by binfmt_misc rule {rule}"),
                    None => "is a #! script".to_owned(),
                };
                Refusal {
                    summary: format!(
                        "its {} {}: {}",
                        if binfmt.is_some() {
                            "binfmt_misc interpreter"
                        } else {
                            "#! interpreter"
                        },
                        interpreter.path.display(),
                        inner.summary
                    ),
                    message: format!("{} {how}: {}", self.path.display(), inner.message),
                    ptrace_can: inner.ptrace_can,
                }
            }),
        }
    }

    /// The ELF program the shim is loaded into: the program itself, or the interpreter at
    /// the end of a `#!` chain.
    pub fn image(&self) -> (&Path, &ElfInfo) {
        match &self.program {
            Program::Elf(info) => (&self.path, info),
            Program::Script { interpreter, .. } => interpreter.image(),
        }
    }

    /// The set-ID bit of the image that the kernel ignores only because the exec has
    /// no_new_privs (`creds`): the program then runs as its caller, locked, but without the
    /// privilege the bit would give it. `set-user-ID (owner uid 0)`, for a note.
    pub fn set_id_voided(&self, creds: Credentials) -> Option<String> {
        if !creds.no_new_privs {
            return None;
        }
        let meta = fs::metadata(self.image().0).ok()?;
        // As if no_new_privs were not set: whether the bit would count without it.
        let file = secure_execution_of(self.image().0, &meta, creds, false, false);
        match file.miss()? {
            Miss::SetUserId { owner } => Some(format!("set-user-ID (owner uid {owner})")),
            Miss::SetGroupId { group } => Some(format!("set-group-ID (group gid {group})")),
            _ => None,
        }
    }

    /// The image the shim would be loaded into is linked against musl: nothing of glibc's
    /// (mallopt, glibc's thread attributes) is there for the shim to act through.
    pub fn is_musl(&self) -> bool {
        let (_, info) = self.image();
        info.interpreter
            .as_ref()
            .is_some_and(|l| reach::loader_kind(l.as_os_str().as_bytes()) == reach::Loader::Musl)
    }

    /// Device and inode of the image the kernel will run: the program, or the interpreter at
    /// the end of a `#!` chain.
    pub fn image_id(&self) -> (u64, u64) {
        match &self.program {
            Program::Elf(_) => self.id,
            Program::Script { interpreter, .. } => interpreter.image_id(),
        }
    }

    /// Whether the image that loads the shim execs another program to get to the real one
    /// (`#!/usr/bin/env python3`): env is locked first, then python3 through inheritance.
    pub fn goes_through_env(&self) -> bool {
        match &self.program {
            Program::Elf(_) => false,
            Program::Script {
                interpreter,
                via_env,
                ..
            } => *via_env || interpreter.goes_through_env(),
        }
    }
}

/// Finds COMMAND as execvp(3) does: a name with a slash is a path; otherwise the first
/// executable regular file of that name in PATH.
pub fn resolve(command: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf> {
    let shown = command.to_string_lossy();
    if command.is_empty() {
        return Err(not_found(
            "cannot run '': the command name is empty".to_owned(),
        ));
    }
    if command.as_bytes().contains(&b'/') {
        let path = PathBuf::from(command);
        check_executable(&path, &shown)?;
        return Ok(path);
    }
    let search = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut denied = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        // An empty entry is the current directory, as in execvp.
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(command);
        match fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if access(&candidate, AccessFlags::X_OK).is_ok() {
                    return Ok(candidate);
                }
                denied.get_or_insert(candidate);
            }
            _ => continue,
        }
    }
    match denied {
        Some(path) => Err(not_executable(format!(
            "cannot run '{shown}': {} is not executable by this user (chmod +x, or check the mount's noexec)",
            path.display()
        ))),
        None => Err(not_found(format!(
            "cannot run '{shown}': not found in PATH ({}); give its path, or check the spelling",
            search.to_string_lossy()
        ))),
    }
}

fn check_executable(path: &Path, shown: &str) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_found(format!("cannot run '{shown}': no such file")));
        }
        Err(err) => return Err(not_executable(format!("cannot run '{shown}': {err}"))),
    };
    if meta.is_dir() {
        return Err(not_executable(format!(
            "cannot run '{shown}': it is a directory"
        )));
    }
    // execve(2) runs regular files only (EACCES otherwise); and reading a FIFO's header
    // would block memlock-run until something writes to it.
    if !meta.is_file() {
        return Err(not_executable(format!(
            "cannot run '{shown}': it is not a regular file but {}; execve(2) runs regular files only",
            file_kind(&meta)
        )));
    }
    if access(path, AccessFlags::X_OK).is_err() {
        return Err(not_executable(format!(
            "cannot run '{shown}': permission denied: the file is not executable by this user \
             (mode {:o}; chmod +x it, or check the mount's noexec)",
            meta.permissions().mode() & 0o7777
        )));
    }
    Ok(())
}

/// Where binfmt_misc shows its rules.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// Reads what the program at `path` is and whether the shim can reach it, following `#!`
/// lines; a program it cannot reach comes back with a [`Refusal`] (see [`Target::refusal`]).
pub fn inspect(
    path: &Path,
    shim: &ElfIdentity,
    creds: Credentials,
    path_var: Option<&OsStr>,
) -> Result<Target> {
    inspect_at_depth(path, shim, creds, path_var, 0)
}

fn inspect_at_depth(
    path: &Path,
    shim: &ElfIdentity,
    creds: Credentials,
    path_var: Option<&OsStr>,
    depth: usize,
) -> Result<Target> {
    let shown = path.display();
    // Everything below reads the file through this descriptor (its /proc/self/fd link), so
    // that what is judged is one file, even if the path is made to name another meanwhile.
    let (file, id) = open_regular(path)?;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let via = if fd_path.exists() {
        fd_path.as_path()
    } else {
        path
    };
    // binfmt_misc comes first in the kernel's order: a rule decides whatever the file is.
    let rules = binfmt::rules(Path::new(BINFMT_MISC));
    if !rules.is_empty() {
        let mut head = Vec::with_capacity(binfmt::HEAD);
        fs::File::open(via)
            .and_then(|f| f.take(binfmt::HEAD as u64).read_to_end(&mut head))
            .with_context(|| format!("cannot read {shown}"))?;
        match binfmt::rule_for(&rules, path.as_os_str().as_bytes(), &head) {
            Err(why) => bail!(
                "refusing {shown}: {why}; remove one of the rules (echo -1 > {BINFMT_MISC}/NAME, as root)"
            ),
            Ok(Some(rule)) => {
                return binfmt_target(path, via, (file, id), rule, shim, creds, path_var, depth)
            }
            Ok(None) => {}
        }
    }
    // A header the kernel refuses (ENOEXEC: an object file, a damaged one) cannot be executed.
    let elf = elf::read_as(via, path).map_err(|err| not_executable(format!("{err:#}")))?;
    if let Some(elf) = elf {
        let refusal = match secure_execution(via, path, creds)? {
            Some(refusal) => Some(refusal),
            None => judge_elf(path, &elf, shim),
        };
        return Ok(Target {
            path: path.to_owned(),
            file,
            id,
            program: Program::Elf(elf),
            refusal,
        });
    }
    let Some((interpreter, argument, crlf)) = read_shebang(via)? else {
        return Err(not_executable(format!(
            "cannot run {shown}: it is neither an ELF executable nor a #! script (execve would fail \
             with ENOEXEC); add a #! line naming its interpreter"
        )));
    };
    if depth >= MAX_INTERPRETER_DEPTH {
        return Err(not_executable(format!(
            "cannot run {shown}: its #! interpreters nest more than {MAX_INTERPRETER_DEPTH} deep, which Linux refuses"
        )));
    }
    let interpreter_path = PathBuf::from(&interpreter);
    match fs::metadata(&interpreter_path) {
        Ok(meta) if !meta.is_file() => {
            return Err(not_executable(format!(
                "cannot run {shown}: its #! interpreter {} is not a regular file but {}",
                interpreter_path.display(),
                file_kind(&meta)
            )));
        }
        Ok(_) => {}
        Err(_) if crlf => {
            return Err(not_found(format!(
                "cannot run {shown}: its #! line ends with a carriage return (DOS line endings), so the kernel looks \
                 for an interpreter named {:?}, which does not exist; convert the file to Unix line endings \
                 (dos2unix, or sed -i 's/\\r$//')",
                interpreter_path.as_os_str()
            )));
        }
        Err(_) => {
            return Err(not_found(format!(
                "cannot run {shown}: its #! interpreter {} does not exist",
                interpreter_path.display()
            )));
        }
    }
    let via_env = interpreter_path.file_name() == Some(OsStr::new("env"));
    let runs = if via_env {
        envline::env_runs(argument.as_deref().map(OsStr::as_bytes)).map_err(|why| {
            anyhow::anyhow!(
                "refusing {shown}: its #! line `{} {}` {why}, so that program would not get the shim or would not \
                 be the one judged, and could run unlocked; remove that from the #! line, or name the \
                 interpreter's path in it",
                interpreter_path.display(),
                argument.as_deref().unwrap_or_default().as_bytes().escape_ascii()
            )
        })?
    } else {
        None
    };
    let interpreter = match runs {
        // `#!/usr/bin/env NAME`: the program that ends up running the script is NAME, found
        // through the PATH the line sets, if it sets one.
        Some(envline::EnvRuns {
            program,
            path,
            chdir,
        }) => {
            let mut search = path.or_else(|| path_var.map(OsStr::to_owned));
            let mut program = program;
            // `-C DIR`: env changes to DIR first, which relative names are then found from.
            if let Some(dir) = chdir {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    bail!(
                        "refusing {shown}: its #! line has env change to {}, which is not a directory, so env \
                         would stop there and nothing would run; fix the -C in the #! line",
                        dir.display()
                    );
                }
                // Path::join keeps an absolute path as it is.
                if program.as_bytes().contains(&b'/') {
                    program = dir.join(&program).into_os_string();
                }
                search = search.map(|value| {
                    let entries: Vec<OsString> = value
                        .as_bytes()
                        .split(|&b| b == b':')
                        .map(|entry| match entry {
                            b"" => dir.clone().into_os_string(),
                            e => dir.join(OsStr::from_bytes(e)).into_os_string(),
                        })
                        .collect();
                    entries.join(OsStr::new(":"))
                });
            }
            let search = search.as_deref();
            // As context, so that a missing program stays 127 (NotRunnable), as env's own.
            let found = resolve(&program, search).with_context(|| {
                format!(
                    "{shown} is run through `{} {}`",
                    interpreter_path.display(),
                    program.as_bytes().escape_ascii()
                )
            })?;
            inspect_at_depth(&found, shim, creds, search, depth + 1)
        }
        // env with nothing to run takes the next operand, the script itself, and runs it:
        // its #! line starts env again, and so on without end.
        None if via_env => {
            return Err(anyhow::anyhow!(
                "refusing {shown}: its #! line `{} {}` names no program for env to run, so env would execute \
                 {shown} itself again, without end; name the interpreter in the #! line",
                interpreter_path.display(),
                argument.as_deref().unwrap_or_default().as_bytes().escape_ascii()
            ))
        }
        None => inspect_at_depth(&interpreter_path, shim, creds, path_var, depth + 1),
    }
    .with_context(|| format!("{shown} is a #! script"))?;
    Ok(Target {
        path: path.to_owned(),
        file,
        id,
        program: Program::Script {
            interpreter: Box::new(interpreter),
            via_env,
            binfmt: None,
        },
        refusal: None,
    })
}

/// A file the kernel hands to binfmt_misc `rule`'s interpreter: that interpreter is the image
/// the lock must reach, judged as a `#!` interpreter is; with the rule's `C` flag the file's
/// own set-ID bits count too.
#[allow(clippy::too_many_arguments)]
fn binfmt_target(
    path: &Path,
    via: &Path,
    (file, id): (File, (u64, u64)),
    rule: &binfmt::Rule,
    shim: &ElfIdentity,
    creds: Credentials,
    path_var: Option<&OsStr>,
    depth: usize,
) -> Result<Target> {
    let shown = path.display();
    if depth >= MAX_INTERPRETER_DEPTH {
        return Err(not_executable(format!(
            "cannot run {shown}: its interpreters nest more than {MAX_INTERPRETER_DEPTH} deep, which Linux refuses"
        )));
    }
    let refusal = if rule.flags.contains('C') {
        secure_execution(via, path, creds)?
    } else {
        None
    };
    let interpreter = inspect_at_depth(&rule.interpreter, shim, creds, path_var, depth + 1)
        .with_context(|| {
            format!(
                "{shown} is run by binfmt_misc rule {} ({})",
                rule.name,
                rule.interpreter.display()
            )
        })?;
    Ok(Target {
        path: path.to_owned(),
        file,
        id,
        program: Program::Script {
            interpreter: Box::new(interpreter),
            via_env: false,
            binfmt: Some(rule.name.clone()),
        },
        refusal,
    })
}

/// What a file is, for messages: `a FIFO`, `a socket`...
fn file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The kernel's reading of a `#!` line: the interpreter, at most one argument, and whether
/// the line ends in a carriage return (which the kernel keeps as part of the last word).
fn read_shebang(path: &Path) -> Result<Option<(OsString, Option<OsString>, bool)>> {
    let mut head = Vec::with_capacity(SHEBANG_MAX);
    fs::File::open(path)
        .and_then(|f| f.take(SHEBANG_MAX as u64).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let crlf = line.ends_with(b"\r");
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line: Vec<u8> = line.iter().copied().skip_while(is_blank).collect();
    let end = line.iter().position(is_blank).unwrap_or(line.len());
    let (interpreter, argument) = line.split_at(end);
    if interpreter.is_empty() {
        return Ok(None);
    }
    let argument: Vec<u8> = argument.iter().copied().skip_while(is_blank).collect();
    // The kernel strips trailing spaces and tabs only: a carriage return stays in the word.
    let kept = argument
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(0, |i| i + 1);
    let argument = &argument[..kept];
    let argument = (!argument.is_empty()).then(|| OsString::from_vec(argument.to_vec()));
    Ok(Some((
        OsString::from_vec(interpreter.to_vec()),
        argument,
        crlf,
    )))
}

/// The ELF rules (`memlock_run_protocol::reach::judge_image`, which the shim and the exec
/// gate apply at exec time too): same class and machine as the shim, a PT_INTERP, and
/// glibc's or musl's loader.
fn judge_elf(path: &Path, elf: &ElfInfo, shim: &ElfIdentity) -> Option<Refusal> {
    let interp = elf.interpreter.as_ref().map(|l| l.as_os_str().as_bytes());
    let miss = match reach::judge_image(elf.identity.into(), interp, (*shim).into()) {
        Err(miss) => miss,
        // The loader by what it is (reach::system_library); one the kernel cannot find fails
        // the exec.
        Ok(_) => {
            let loader = interp?;
            let meta = fs::metadata(OsStr::from_bytes(loader)).ok()?;
            if reach::system_library(
                loader,
                meta.uid(),
                meta.mode(),
                crate::host::in_initial_user_ns(),
            ) {
                return None;
            }
            Miss::ForeignLoader { loader }
        }
    };
    let (remedy, ptrace_can) = match miss {
        Miss::OtherMachine { .. } => (
            format!(
                "run a {} build of the program, or install memlock-run built for {}",
                shim.describe(),
                elf.identity.describe()
            ),
            miss.i386_on_x86_64(),
        ),
        Miss::OtherLoader { .. } => ("use a glibc or musl build of the program".to_owned(), true),
        Miss::ForeignLoader { .. } => (
            "link it for the system's loader (its PT_INTERP naming the system's own file), or let \
             memlock-run lock it with ptrace"
                .to_owned(),
            true,
        ),
        // Static: judge_image gives no other.
        _ => (
            "link it dynamically against glibc, or make it call mlockall(2) itself".to_owned(),
            true,
        ),
    };
    Some(Refusal::new(path, miss, &remedy, ptrace_can))
}

/// Opens a file to judge: regular (a FIFO would block the read, and execve runs regular files
/// only), without blocking, close-on-exec; with its device and inode.
fn open_regular(path: &Path) -> Result<(File, (u64, u64))> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        // Executable but not readable (mode 711): the kernel would run it, but memlock-run
        // cannot read its headers to know whether, and how, it can be locked.
        Err(err)
            if err.kind() == std::io::ErrorKind::PermissionDenied
                && access(path, AccessFlags::X_OK).is_ok() =>
        {
            bail!(refusing(
                path,
                Miss::Unreadable,
                "make it readable (chmod a+r) or run as a user who may read it"
            ))
        }
        // Neither readable nor executable: execve(2) fails with EACCES, which shells report
        // as 126.
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(not_executable(format!(
                "cannot run {}: {err}; execve(2) needs execute permission on it (chmod a+rx)",
                path.display()
            )))
        }
        Err(err) => return Err(err).with_context(|| format!("cannot open {}", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.is_file() {
        return Err(not_executable(format!(
            "cannot run {}: it is not a regular file but {}; execve(2) runs regular files only",
            path.display(),
            file_kind(&meta)
        )));
    }
    Ok((file, (meta.dev(), meta.ino())))
}

/// A program the kernel would run in secure-execution mode (AT_SECURE). `path` is read (the
/// judged file's descriptor link), `named` is shown.
fn secure_execution(path: &Path, named: &Path, creds: Credentials) -> Result<Option<Refusal>> {
    let shown = named.display();
    let meta = fs::metadata(path).with_context(|| format!("cannot stat {shown}"))?;
    // File capabilities give a real root nothing new: the rule does not ask for root.
    let file_capabilities = creds.uid != 0 && has_file_capabilities(path);
    let file = secure_execution_of(path, &meta, creds, file_capabilities, creds.no_new_privs);
    Ok(file.miss().map(|miss| {
        Refusal::new(
            named,
            miss,
            "run a copy without the set-ID bit or capabilities, or make it lock its own memory",
            false,
        )
    }))
}

/// The facts the secure-execution rule (`reach::SecureExecution`) asks about `path`, whose
/// metadata is `meta`, run by a task with `creds`.
fn secure_execution_of(
    path: &Path,
    meta: &fs::Metadata,
    creds: Credentials,
    file_capabilities: bool,
    no_new_privs: bool,
) -> SecureExecution {
    SecureExecution {
        mode: meta.mode(),
        owner: meta.uid(),
        group: meta.gid(),
        uid: creds.uid,
        euid: creds.euid,
        gid: creds.gid,
        egid: creds.egid,
        file_capabilities,
        nosuid: nix::sys::statvfs::statvfs(path)
            .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID)),
        no_new_privs,
    }
}

/// Whether `path` carries a `security.capability` attribute. Its presence counts, whatever it
/// holds (fail closed: one the kernel would reject is refused all the same). The launcher's
/// judgement and the exec gate's.
pub fn has_file_capabilities(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a size query (null buffer, size 0) of a NUL-terminated path and name.
    unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        ) >= 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shebang(text: &str) -> Option<(String, Option<String>)> {
        let dir = std::env::temp_dir().join(format!("memlock-run-shebang-{}", std::process::id()));
        fs::write(&dir, text).unwrap();
        let parsed = read_shebang(&dir).unwrap();
        fs::remove_file(&dir).unwrap();
        parsed.map(|(i, a, _)| {
            (
                i.to_string_lossy().into_owned(),
                a.map(|a| a.to_string_lossy().into_owned()),
            )
        })
    }

    #[test]
    fn shebang_lines_read_as_the_kernel_reads_them() {
        assert_eq!(shebang("#!/bin/sh\necho"), Some(("/bin/sh".into(), None)));
        assert_eq!(
            shebang("#! /usr/bin/python3 -u  \n"),
            Some(("/usr/bin/python3".into(), Some("-u".into())))
        );
        assert_eq!(
            shebang("#!/usr/bin/env -S python3 -u\n"),
            Some(("/usr/bin/env".into(), Some("-S python3 -u".into())))
        );
        assert_eq!(shebang("#!\n"), None);
        assert_eq!(shebang("echo hi\n"), None);
    }

    #[test]
    fn refusals_are_the_ladder_with_the_launchers_remedy() {
        let identity = |bits, machine| ElfIdentity {
            bits,
            machine,
            little_endian: true,
        };
        let (amd64, i386, aarch64) = (identity(64, 62), identity(32, 3), identity(64, 183));
        let elf = |identity, interpreter: Option<&str>| ElfInfo {
            identity,
            e_type: object::elf::ET_DYN,
            interpreter: interpreter.map(PathBuf::from),
        };
        let path = Path::new("/opt/x");
        let judged = |info: ElfInfo| judge_elf(path, &info, &amd64);
        assert_eq!(
            judged(elf(amd64, Some("/lib64/ld-linux-x86-64.so.2"))),
            None
        );
        let fixed = judged(elf(amd64, None)).unwrap();
        assert_eq!(
            fixed.summary,
            "statically linked (no PT_INTERP): ld.so never runs in it"
        );
        assert!(
            fixed
                .message
                .starts_with("refusing /opt/x: it is statically linked (no PT_INTERP)")
                && fixed
                    .message
                    .ends_with("or make it call mlockall(2) itself"),
            "{}",
            fixed.message
        );
        assert!(fixed.ptrace_can);
        let other = judged(elf(amd64, Some("/lib/ld-uClibc.so.0"))).unwrap();
        assert_eq!(
            other.summary,
            "its loader /lib/ld-uClibc.so.0 is neither glibc's nor musl's"
        );
        assert!(
            other
                .message
                .ends_with("use a glibc or musl build of the program"),
            "{}",
            other.message
        );
        assert!(other.ptrace_can);
        let x86 = judged(elf(i386, Some("/lib/ld-linux.so.2"))).unwrap();
        assert_eq!(
            x86.summary,
            "a 32-bit i386 program, and the shim is 64-bit x86-64"
        );
        assert!(
            x86.message.contains("another class or machine")
                && x86
                    .message
                    .ends_with("install memlock-run built for 32-bit i386"),
            "{}",
            x86.message
        );
        assert!(x86.ptrace_can, "the ptrace method locks i386 programs");
        let arm = judged(elf(aarch64, Some("/lib/ld-linux-aarch64.so.1"))).unwrap();
        assert!(!arm.ptrace_can);
    }

    #[test]
    fn resolution_follows_execvp() {
        let sh = resolve(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(sh, Path::new("/bin/sh"));
        let err =
            resolve(OsStr::new("no-such-command-here"), Some(OsStr::new("/bin"))).unwrap_err();
        assert_eq!(err.downcast_ref::<NotRunnable>().unwrap().status, 127);
        let plain = std::env::temp_dir().join(format!("memlock-run-plain-{}", std::process::id()));
        fs::write(&plain, "data").unwrap();
        fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(plain.as_os_str(), None).unwrap_err();
        fs::remove_file(&plain).unwrap();
        assert_eq!(err.downcast_ref::<NotRunnable>().unwrap().status, 126);
        let err = resolve(OsStr::new("/etc"), None).unwrap_err();
        assert_eq!(err.downcast_ref::<NotRunnable>().unwrap().status, 126);
    }

    #[test]
    fn a_directory_of_the_commands_name_earlier_in_path_is_passed_over_as_execvp_does() {
        let dir = std::env::temp_dir().join(format!("memlock-run-path-dir-{}", std::process::id()));
        fs::create_dir_all(dir.join("sh")).unwrap();
        let search = format!("{}:/bin", dir.display());
        let found = resolve(OsStr::new("sh"), Some(OsStr::new(&search)));
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), Path::new("/bin/sh"));
    }

    #[test]
    fn a_path_through_a_regular_file_cannot_be_executed_126_as_the_shell_says() {
        // ENOTDIR, not ENOENT: bash and env(1) exit 126 for it, 127 only for a missing file.
        let err = resolve(OsStr::new("/etc/passwd/sh"), None).unwrap_err();
        let not_runnable = err.downcast_ref::<NotRunnable>().unwrap();
        assert_eq!(not_runnable.status, 126);
        assert!(
            not_runnable.message.contains("Not a directory"),
            "{}",
            not_runnable.message
        );
    }
}
