//! The gate's decision on one exec: let it go on (the kernel acts on what the gate judged), or
//! refuse it with a line.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use memlock_run_protocol::reach::{self, Format, Miss, SecureExecution};

use super::environment::Entries;
use super::task::{read_string, FsIdentity, Task};
use super::walk::{find_as_task, open_as_task, Opened, Walker};
use super::{Judgement, Notif, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32};
use crate::elf;
use crate::host::procfs::{limits_of, read_text};
use crate::plan::binfmt;
use crate::plan::target::has_file_capabilities;

/// An exec the gate does not let go on: ENOEXEC in silence (what the kernel would say), or
/// EPERM with a line naming the program (`subject`) and `why`; under --on-failure warn the
/// latter goes on, unlocked, with the line.
pub(super) struct Refusal {
    pub(super) errno: i32,
    pub(super) line: Option<(String, String)>,
}

/// `judged_by_shim` says whether the shim judged this exec first (protocol::GATE_WORD); it is
/// asked only where what the caller names cannot be read.
pub(super) fn decide(
    notif: &Notif,
    context: &Judgement,
    mut judged_by_shim: impl FnMut() -> bool,
) -> Result<(), Refusal> {
    let pid = notif.pid as i32;
    let args = notif.data.args;
    let nr = notif.data.nr as u32 & !X32;
    let at_fn = notif.data.arch == AUDIT_ARCH_I386 && nr == 358
        || notif.data.arch == AUDIT_ARCH_X86_64 && (nr == 322 || nr == 545);
    let (path_at, env_at, dirfd, flags) = if at_fn {
        (args[1], args[3], args[0] as i32, args[4] as i32)
    } else {
        (args[0], args[2], libc::AT_FDCWD, 0)
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    // memlock-run judges what it executes itself: a memlock-run process whose code is its own
    // (see `runs_only_its_own_code`); one with something else loaded or tracing it is judged.
    let a_launcher = id_of(&proc.join("exe")) == Some(context.launcher_id);
    if a_launcher && runs_only_its_own_code(&proc, context) {
        return Ok(());
    }
    // Gone: its exec is gone with it. There, but its /proc unread (a descriptor limit of the
    // gate's, lowered by a process of its user): not judged, refused.
    let Some(task) = Task::read(pid) else {
        // stat(2) takes no descriptor.
        return match fs::symlink_metadata(&proc) {
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            _ => Err(Refusal {
                errno: libc::EPERM,
                line: Some((
                    format!("the program pid {pid} asks for"),
                    "the exec gate cannot read the calling process's /proc/PID/status, so it cannot judge what \
                     it executes (a limit of the gate's, RLIMIT_NOFILE, lowered by a process of its user?)"
                        .into(),
                )),
            }),
        };
    };
    let wide = notif.data.arch != AUDIT_ARCH_I386;
    let Some(path) = read_string(pid, path_at, 4096) else {
        // The kernel faults on the same pointer, or the task has gone: nothing runs. Memory
        // the gate may not read is another matter: it cannot judge, so it refuses.
        let mut byte = [0u8; 1];
        let local = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: path_at as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: a one-byte probe of the same address, for its errno.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if n == 1 || matches!(errno, Some(libc::EFAULT) | Some(libc::ESRCH)) || judged_by_shim() {
            return Ok(());
        }
        let caller = comm(&proc);
        // A non-dumpable process's /proc files belong to root.
        let owner = fs::metadata(proc.join("mem")).map(|m| m.uid()).ok();
        let dumpable = owner != Some(0) || task.uid == 0;
        return Err(Refusal {
            errno: libc::EPERM,
            line: Some((
                format!("the program pid {pid} ({caller}) asks for"),
                format!(
                    "{caller} made the execve system call itself, past the shim (as Go's os/exec and static \
                     programs do), and the exec gate cannot read its memory to judge what it executes ({}: {}); \
                     start the run as root (sudo memlock-run --user NAME ...), or with --no-inherit if only \
                     COMMAND must be locked",
                    nix::errno::Errno::from_raw(errno.unwrap_or(libc::EPERM)).desc(),
                    if dumpable {
                        "it runs as another user, and the gate has no CAP_SYS_PTRACE"
                    } else {
                        "it is non-dumpable (--no-dump), and the gate has no CAP_SYS_PTRACE"
                    }
                ),
            )),
        });
    };
    let why = match open_as_task(&task, dirfd, flags, &path) {
        Opened::Kernel => return Ok(()),
        Opened::Unreadable if judged_by_shim() => return Ok(()),
        Opened::Unreadable => summary(Miss::Unreadable),
        Opened::File(file, meta) => {
            if (meta.dev(), meta.ino()) == context.launcher_id {
                return Ok(());
            }
            match judge(&task, file, *meta, Some(&path)) {
                Judged::Kernel => return Ok(()),
                Judged::NotExecutable => {
                    return Err(Refusal {
                        errno: libc::ENOEXEC,
                        line: None,
                    })
                }
                Judged::Reaches => match environment(&task, env_at, wide, context) {
                    Ok(()) => return Ok(()),
                    Err(Unfit::Misses(why)) => why,
                    Err(Unfit::Bound(why)) => {
                        // The kernel would fail it as well (E2BIG): that is the errno.
                        return Err(Refusal {
                            errno: libc::E2BIG,
                            line: Some((
                                subject(&named(&path, &proc, dirfd), pid, &comm(&proc)),
                                format!(
                                    "{why}; the exec gate refuses it rather than read on \
                                     (execve fails with E2BIG)"
                                ),
                            )),
                        });
                    }
                },
                Judged::Misses(why) => why,
                Judged::Binfmt(why) => {
                    return Err(Refusal {
                        errno: libc::EPERM,
                        line: Some((
                            subject(&named(&path, &proc, dirfd), pid, &comm(&proc)),
                            format!(
                                "{why}, so the preload cannot lock it; memlock-run locks it from outside when it \
                                 is started through memlock-run (memlock-run -- PROGRAM, or a wrapper script that \
                                 execs that), or start the run with --no-inherit if only COMMAND must be locked"
                            ),
                        )),
                    })
                }
            }
        }
    };
    let caller = comm(&proc);
    if a_launcher {
        return Err(Refusal {
            errno: libc::EPERM,
            line: Some((
                subject(&named(&path, &proc, dirfd), pid, &caller),
                format!(
                    "{why}, so the preload cannot lock it, and the memlock-run process that asks for it runs code \
                     that is not memlock-run's (a library preloaded into it, or a tracer), so its execs are judged \
                     like any other's; start memlock-run without LD_PRELOAD or LD_AUDIT of its own"
                ),
            )),
        });
    }
    Err(Refusal {
        errno: libc::EPERM,
        line: Some((
            subject(&named(&path, &proc, dirfd), pid, &caller),
            format!(
                "{why}, so the preload cannot lock it, and {caller} made the execve system call itself, past the \
                 shim (as Go's os/exec and static programs do), where memlock-run cannot lock it another way; start \
                 it through memlock-run (a wrapper script that execs memlock-run -- PROGRAM), or start the run with \
                 --no-inherit if only COMMAND must be locked"
            ),
        )),
    })
}

/// The program as a line names it: the path the task gave, or for an exec of a descriptor
/// itself (fexecve, execveat with AT_EMPTY_PATH: an empty path) that descriptor and what it is
/// (`descriptor 3 (/memfd:loader (deleted))`).
fn named(path: &[u8], proc: &Path, dirfd: i32) -> Vec<u8> {
    if !path.is_empty() {
        return path.to_vec();
    }
    let link = fs::read_link(proc.join(format!("fd/{dirfd}")))
        .map(|l| l.into_os_string().into_vec())
        .unwrap_or_else(|_| b"?".to_vec());
    let mut text = format!("descriptor {dirfd} (").into_bytes();
    text.extend_from_slice(&link);
    text.push(b')');
    text
}

/// What a line names: the program, and the task that asks for it.
fn subject(path: &[u8], pid: i32, caller: &str) -> String {
    format!(
        "{} (from pid {pid}, {caller})",
        crate::say::printable(&String::from_utf8_lossy(path))
    )
}

/// A task's command name, printable, for a line about it.
pub(super) fn comm(proc: &Path) -> String {
    read_text(proc.join("comm"))
        .map(|c| crate::say::printable(c.trim()))
        .unwrap_or_else(|_| "?".into())
}

pub(super) enum Judged {
    /// The kernel refuses it, or it is not there: nothing runs.
    Kernel,
    /// Neither ELF nor #!: ENOEXEC, as the shim says.
    NotExecutable,
    Reaches,
    /// The rung of the ladder, said (its summary).
    Misses(String),
    /// A binfmt_misc rule hands it to an interpreter the preload misses, said. The shim lets
    /// such an exec through to be judged here, so the line blames no system call.
    Binfmt(String),
}

/// A rung's summary, for the gate's line.
pub(super) fn summary(miss: Miss) -> String {
    let mut text = String::new();
    let _ = miss.write_summary(&mut text);
    text
}

/// `named`: the path the task gave execve, for the program itself (binfmt_misc matches its
/// extension); None for an interpreter.
pub(super) fn judge(task: &Task, opened: File, meta: fs::Metadata, named: Option<&[u8]>) -> Judged {
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Judged::Kernel;
    }
    // The first page: the head judged here, and for the ELF reader below its headers.
    let Ok(first) = elf::first_page(&opened) else {
        return Judged::Misses(summary(Miss::Unreadable));
    };
    let head = &first[..first.len().min(reach::HEAD_SIZE)];
    // binfmt_misc comes first in the kernel's order (crate::plan::binfmt), with the rules the
    // task sees under its own root.
    if let Some(named) = named {
        let rules = binfmt::rules(&PathBuf::from(format!(
            "/proc/{}/root/proc/sys/fs/binfmt_misc",
            task.tid
        )));
        match binfmt::rule_for(&rules, named, head) {
            Err(why) => return Judged::Binfmt(why),
            Ok(Some(rule)) => return judge_binfmt(task, &opened, &meta, rule),
            Ok(None) => {}
        }
    }
    match reach::format(head) {
        Format::Other => Judged::NotExecutable,
        Format::Script => {
            let Some(interpreter) = reach::script_interpreter(head) else {
                return Judged::NotExecutable;
            };
            if named.is_none() {
                return Judged::Misses(summary(Miss::NestedScript));
            }
            match open_as_task(task, libc::AT_FDCWD, 0, interpreter) {
                Opened::File(file, meta) => judge(task, file, *meta, None),
                Opened::Unreadable => Judged::Misses(summary(Miss::InterpreterUnreadable)),
                Opened::Kernel => Judged::Kernel,
            }
        }
        Format::Elf => {
            let path = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
            let Ok(Some(info)) = elf::read_with_first_page(&opened, &first, &path) else {
                return Judged::Misses(summary(Miss::Malformed));
            };
            let interp = info.interpreter.as_ref().map(|p| p.as_os_str().as_bytes());
            if let Err(miss) =
                reach::judge_image(info.identity.into(), interp, reach::Identity::NATIVE)
            {
                return Judged::Misses(summary(miss));
            }
            // The loader by what it is (reach::system_library), under the task's root: found,
            // not opened (an execute-only loader is judged too); one the kernel cannot open fails
            // the exec.
            if let Some(interp) = interp {
                let found = match find_as_task(task, libc::AT_FDCWD, 0, interp) {
                    Ok((loader, _as_task)) => Some(loader.metadata()),
                    // Not there, or not for the task to reach: the kernel fails the exec.
                    Err(Opened::Kernel) => None,
                    // What the gate could not look up for itself (no descriptor left, an
                    // identity it could not take on) is not judged, and not let through.
                    Err(_) => {
                        return Judged::Misses(format!(
                            "its loader {} cannot be looked up to be judged",
                            crate::say::printable(&String::from_utf8_lossy(interp))
                        ))
                    }
                };
                // Not a regular file: the kernel fails the exec itself.
                if let Some(meta) = found {
                    let system = meta.is_ok_and(|m| {
                        !m.is_file()
                            || reach::system_library(
                                interp,
                                m.uid(),
                                m.mode(),
                                gate_in_initial_ns(),
                            )
                    });
                    if !system {
                        return Judged::Misses(summary(Miss::ForeignLoader { loader: interp }));
                    }
                }
            }
            // Secure-execution mode, by the kernel's rule for this task (what the shim asks for
            // its own process, and the launcher for COMMAND).
            if let Some(miss) = secure_execution(task, &meta, &path) {
                return Judged::Misses(summary(miss));
            }
            Judged::Reaches
        }
    }
}

/// Whether the kernel runs the file at `path` (its metadata `meta`) in secure-execution mode
/// for `task`, and why.
fn secure_execution(task: &Task, meta: &fs::Metadata, path: &Path) -> Option<Miss<'static>> {
    let set_id = meta.mode() & (libc::S_ISUID | libc::S_ISGID) != 0;
    let capabilities = task.real_uid != 0 && has_file_capabilities(path);
    SecureExecution {
        mode: meta.mode(),
        owner: meta.uid(),
        group: meta.gid(),
        uid: task.real_uid,
        euid: task.uid,
        gid: task.real_gid,
        egid: task.gid,
        file_capabilities: capabilities,
        nosuid: (set_id || capabilities)
            && nix::sys::statvfs::statvfs(path)
                .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID)),
        no_new_privs: task.no_new_privs,
    }
    .miss()
}

/// A program binfmt_misc `rule` hands to its interpreter: the interpreter is the image the
/// lock must reach (judged as a `#!` interpreter is); under the rule's `C` flag the program's
/// own set-ID bits count too.
fn judge_binfmt(task: &Task, opened: &File, meta: &fs::Metadata, rule: &binfmt::Rule) -> Judged {
    let by = |why: String| {
        Judged::Binfmt(format!(
            "binfmt_misc rule {} runs it with {}, and {why}",
            rule.name,
            rule.interpreter.display()
        ))
    };
    if rule.flags.contains('C') {
        let path = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
        if let Some(miss) = secure_execution(task, meta, &path) {
            return by(summary(miss));
        }
    }
    let interpreter = rule.interpreter.as_os_str().as_bytes();
    match open_as_task(task, libc::AT_FDCWD, 0, interpreter) {
        Opened::File(file, meta) => match judge(task, file, *meta, None) {
            Judged::Misses(why) | Judged::Binfmt(why) => by(format!("that interpreter is {why}")),
            Judged::NotExecutable => by("that interpreter is neither ELF nor #!".into()),
            judged => judged,
        },
        Opened::Unreadable => by("that interpreter cannot be read to be judged".into()),
        Opened::Kernel => Judged::Kernel,
    }
}

pub(super) fn id_of_file(file: &File) -> Option<(u64, u64)> {
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Why the gate lets an environment go on unjudged: a rung of the shim's ladder, said; or a
/// bound of execve's reached (`environment::Stop`), where the kernel would refuse it too.
pub(super) enum Unfit {
    Misses(String),
    Bound(String),
}

/// The environment the task hands the new image, by the shim's rule (read as
/// `environment::Entries` says: never past execve's bounds, and never judged in part); the
/// shim at its path under the task's root; no finite RLIMIT_AS (where ld.so may skip the shim).
pub(super) fn environment(
    task: &Task,
    env_at: u64,
    wide: bool,
    context: &Judgement,
) -> Result<(), Unfit> {
    let pid = task.tid;
    let mut entries = Entries::new(pid, env_at, wide);
    let verdict = reach::carries_shim(
        entries.by_ref(),
        context.shim.as_os_str().as_bytes(),
        &context.config,
    );
    // What was read before a stop is not judged, whatever the rule made of it.
    if let Some(stop) = entries.stop {
        return Err(match stop.bound() {
            Some(why) => Unfit::Bound(why),
            None => Unfit::Misses(summary(Miss::EnvironmentUnreadable)),
        });
    }
    verdict.map_err(|miss| Unfit::Misses(summary(miss)))?;
    // As the task's ld.so will find it: absolute symlinks in the task's root.
    let shim = Walker::of(task).ok().and_then(|walker| {
        let _as_task = FsIdentity::of(task);
        walker
            .walk(None, context.shim.as_os_str().as_bytes(), false, false)
            .ok()
            .map(|(found, _)| found)
    });
    if shim.as_ref().and_then(id_of_file) != Some(context.shim_id) {
        return Err(Unfit::Misses(summary(Miss::ShimElsewhere)));
    }
    if let Some((soft, _)) = limits_of(pid, libc::RLIMIT_AS) {
        if soft != libc::RLIM_INFINITY {
            return Err(Unfit::Misses(summary(Miss::AddressSpaceLimited)));
        }
    }
    Ok(())
}

/// Whether the memlock-run process at `proc` runs memlock-run's code alone, so that what it
/// executes is what memlock-run judged: nothing but memlock-run, the shim (by device and
/// inode) and the system's libraries (in a system library directory, owned by root and
/// writable by nobody else: the loader, libc, libgcc_s, NSS modules for --user) is mapped from
/// a file, and nothing traces it but memlock-run's ptrace helper. A library the tree preloaded into a nested memlock-run
/// (`LD_PRELOAD=x.so memlock-run ...`), or a tracer that injects an execve into it, would
/// otherwise execute anything past the gate. Anything that cannot be read: not trusted, and
/// the exec is judged as any other.
/// The gate's own user namespace is the initial one (read once): where it is not (a container
/// of its own), root's files it does not map show as the overflow uid (reach::system_library).
fn gate_in_initial_ns() -> bool {
    static INITIAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INITIAL.get_or_init(crate::host::in_initial_user_ns)
}

fn runs_only_its_own_code(proc: &Path, context: &Judgement) -> bool {
    let Ok(status) = read_text(proc.join("status")) else {
        return false;
    };
    let tracer = crate::host::procfs::field_of(&status, "TracerPid");
    match tracer.as_deref().map(str::trim) {
        Some("0") => {}
        Some(pid) if id_of(Path::new(&format!("/proc/{pid}/exe"))) == Some(context.launcher_id) => {
        }
        _ => return false,
    }
    let Ok(maps) = fs::read_to_string(proc.join("maps")) else {
        return false;
    };
    let root = proc.join("root");
    maps.lines().all(|line| {
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        let (Some(dev), Some(ino), Some(path)) = (fields.get(3), fields.get(4), fields.get(5))
        else {
            return false;
        };
        let path = path.trim_start();
        if ino.trim() == "0" || !path.starts_with('/') {
            // Anonymous memory, [heap], [stack], [vdso]: no file's code.
            return true;
        }
        if path.starts_with("/memfd:memlock-run ") {
            // The shim's mark (protocol::ANON_NAME_PREFIX), mapped PROT_NONE.
            return true;
        }
        let Some((major, minor)) = dev.split_once(':') else {
            return false;
        };
        let (Ok(major), Ok(minor), Ok(ino)) = (
            u32::from_str_radix(major, 16),
            u32::from_str_radix(minor, 16),
            ino.trim().parse::<u64>(),
        ) else {
            return false;
        };
        let id = (libc::makedev(major, minor), ino);
        if id == context.launcher_id || id == context.shim_id {
            return true;
        }
        // A system library (reach::system_library, the loader's rule too),
        // the file there now the one mapped.
        fs::metadata(root.join(path.trim_start_matches('/'))).is_ok_and(|meta| {
            (meta.dev(), meta.ino()) == id
                && reach::system_library(
                    path.as_bytes(),
                    meta.uid(),
                    meta.mode(),
                    gate_in_initial_ns(),
                )
        })
    })
}

pub(super) fn id_of(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
