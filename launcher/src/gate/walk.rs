//! Opening what an exec names as the task would: from its root, working directory or
//! descriptor, a component at a time, with its filesystem identity.

use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use super::judge::id_of_file;
use super::serve::stat_start_time;
use super::task::{FsIdentity, Task};

pub(super) enum Opened {
    /// Missing, or refused by the kernel as well: nothing runs.
    Kernel,
    /// The task may execute it but not read it: nothing can judge it.
    Unreadable,
    /// Opened for reading, with what it is (the metadata of the file found).
    File(File, Box<fs::Metadata>),
}

/// Opens the file a task's exec names as the task would: from its root, working directory or
/// descriptor (through /proc), walking the path a component at a time (`walk`) so that
/// absolute symlinks resolve in the task's root and /proc/self and /proc/thread-self name
/// the task, not the gate; with the task's filesystem identity (what the task may not open,
/// the gate does not read for it); without blocking (a FIFO put in its place must not stall
/// the gate), and regular files only.
pub(super) fn open_as_task(task: &Task, dirfd: i32, flags: i32, path: &[u8]) -> Opened {
    let (found, as_task, readable) = match locate(task, dirfd, flags, path, true) {
        Ok(found) => found,
        Err(opened) => return opened,
    };
    // Only a regular file is executed (EACCES otherwise); a device or FIFO is not read. What
    // the gate cannot stat (its own failure) is not judged.
    let meta = match found.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Opened::Kernel,
        Err(_) => return Opened::Unreadable,
    };
    if readable {
        return Opened::File(found, Box::new(meta));
    }
    reopen(&found, meta, &as_task)
}

/// The file a task's exec names, found as [`open_as_task`] finds it but not opened (O_PATH):
/// enough to know what it is (the loader, the shim), with the task's identity still taken on.
/// Err: what the exec comes to where it cannot be found.
pub(super) fn find_as_task(
    task: &Task,
    dirfd: i32,
    flags: i32,
    path: &[u8],
) -> Result<(File, FsIdentity), Opened> {
    locate(task, dirfd, flags, path, false).map(|(found, as_task, _)| (found, as_task))
}

/// [`find_as_task`], and where `read` and the kernel's walk can open it for reading at once
/// (see [`Walker::walk`]), opened so (true).
fn locate(
    task: &Task,
    dirfd: i32,
    flags: i32,
    path: &[u8],
    read: bool,
) -> Result<(File, FsIdentity, bool), Opened> {
    use std::os::unix::fs::OpenOptionsExt;
    let proc = PathBuf::from(format!("/proc/{}", task.tid));
    let open_dir = |path: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
    };
    // The task has gone, or its descriptor is not open or not a directory: nothing runs. Its
    // root, working directory or descriptor withheld from the gate, or the gate's own failure:
    // nothing can judge what it names.
    let withheld = |err: std::io::Error| {
        if matches!(
            err.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::ENOTDIR)
        ) {
            Opened::Kernel
        } else {
            Opened::Unreadable
        }
    };
    let (found, as_task, readable) = if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        // The task's own descriptor (O_PATH, it may be): the file it holds, judged below as
        // one a path names, for what the task may read and execute of it.
        let found = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(proc.join("fd").join(dirfd.to_string()))
        {
            Ok(found) => found,
            Err(err) => return Err(withheld(err)),
        };
        (found, FsIdentity::of(task), false)
    } else {
        let walker = match Walker::of(task) {
            Ok(walker) => walker,
            Err(err) => return Err(withheld(err)),
        };
        let start = if path.first() == Some(&b'/') {
            None
        } else {
            let base = if dirfd == libc::AT_FDCWD {
                proc.join("cwd")
            } else {
                proc.join("fd").join(dirfd.to_string())
            };
            match open_dir(&base) {
                Ok(dir) => Some(dir),
                Err(err) => return Err(withheld(err)),
            }
        };
        let as_task = FsIdentity::of(task);
        match walker.walk(start, path, flags & libc::AT_SYMLINK_NOFOLLOW != 0, read) {
            Ok((found, readable)) => (found, as_task, readable),
            // A per-process link of /proc the gate may not follow (the task may: its own).
            Err(err) if err.kind() == std::io::ErrorKind::Other => return Err(Opened::Unreadable),
            // Not for the task to reach, as far as the gate could take on its identity.
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied && !as_task.exact => {
                return Err(Opened::Unreadable)
            }
            // Missing, or not for the task to reach: its exec fails as well.
            Err(err) if the_kernels(&err) => return Err(Opened::Kernel),
            // The gate's own failure (no descriptor left, no memory): nothing judged it.
            Err(_) => return Err(Opened::Unreadable),
        }
    };
    Ok((found, as_task, readable))
}

/// `found` (O_PATH) opened again for reading, through the gate's own descriptor, as the task's
/// identity (`as_task`).
fn reopen(found: &File, meta: fs::Metadata, as_task: &FsIdentity) -> Opened {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", found.as_raw_fd()))
    {
        Ok(file) => Opened::File(file, Box::new(meta)),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            // Executable by the task though not readable by it: nothing can judge it.
            let link = format!("/proc/self/fd/{}\0", found.as_raw_fd());
            // SAFETY: faccessat with a NUL-terminated path, as the task's identity.
            let runnable = unsafe {
                libc::faccessat(
                    libc::AT_FDCWD,
                    link.as_ptr().cast(),
                    libc::X_OK,
                    libc::AT_EACCESS,
                )
            } == 0;
            if runnable || !as_task.exact {
                Opened::Unreadable
            } else {
                Opened::Kernel
            }
        }
        Err(err) if the_kernels(&err) => Opened::Kernel,
        Err(_) => Opened::Unreadable,
    }
}

/// Whether an error of the gate's walk is one the task's exec meets as well, on the same
/// path: anything else (EMFILE, ENFILE, ENOMEM: a limit of the gate's, which a process of its
/// user may lower with prlimit(2)) is the gate's own, and nothing has judged the file.
fn the_kernels(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ENOTDIR
                | libc::ELOOP
                | libc::ENAMETOOLONG
                | libc::EACCES
                | libc::EPERM
                | libc::ESRCH
        )
    )
}

/// A path walk done as a task's would be: from its root, with what /proc/self and
/// /proc/thread-self name for it.
pub(super) struct Walker<'a> {
    root: &'a File,
    task: &'a Task,
}

impl Walker<'_> {
    /// At most this many symlinks on one walk, as the kernel's own limit.
    const MOST_LINKS: usize = 40;

    /// The file `path` names, from `start` (None: the root), opened with O_PATH; an error of
    /// kind Other where a per-process link of /proc is withheld from the gate. Each
    /// component is opened without following it; a symlink's target is read and walked in
    /// its place (from the task's root when absolute), except on procfs: there `self` and
    /// `thread-self` stand for the task, and the per-process links (exe, cwd, root, fd/N),
    /// which name the same file whoever follows them, are followed by the kernel.
    /// With `read`, the kernel's walk (`resolve`) opens the file for reading at once
    /// (O_NONBLOCK, O_NOCTTY: a FIFO does not block, a terminal is not taken), saving the
    /// second open through /proc/self/fd: what it opens, the task may open itself; true
    /// then. Anything it cannot open so (a file the task may execute and not read) is found
    /// again, O_PATH, and told apart by the caller.
    pub(super) fn walk(
        &self,
        start: Option<File>,
        path: &[u8],
        nofollow: bool,
        read: bool,
    ) -> std::io::Result<(File, bool)> {
        if read {
            let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
            if let Some(found) = self.resolve(start.as_ref(), path, nofollow, flags) {
                return Ok((found, true));
            }
        }
        if let Some(found) = self.resolve(start.as_ref(), path, nofollow, libc::O_PATH) {
            return Ok((found, false));
        }
        self.walk_components(start, path, nofollow)
            .map(|found| (found, false))
    }

    /// The kernel's own walk of `path` in one call (openat2(2), Linux 5.6) where it is the
    /// task's walk: from the task's root with RESOLVE_IN_ROOT (absolute symlinks and `..`
    /// stay in that root, as the task's own walk does), or from `start` with RESOLVE_BENEATH
    /// (refused, EXDEV, where a `..` or an absolute symlink would leave it), and never through
    /// a magic link (ELOOP). None wherever the result may not be the task's: any error (a
    /// component missing for the gate may be there for the task: /proc/self is the gate's
    /// own in a kernel walk, so /proc/self/fd/N would be the gate's descriptor), or a file
    /// found on a procfs. The component walk then answers.
    fn resolve(
        &self,
        start: Option<&File>,
        path: &[u8],
        nofollow: bool,
        mode: i32,
    ) -> Option<File> {
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
        const RESOLVE_BENEATH: u64 = 0x08;
        const RESOLVE_IN_ROOT: u64 = 0x10;
        let (dir, scope) = match start {
            None => (self.root, RESOLVE_IN_ROOT),
            Some(dir) => (dir, RESOLVE_BENEATH),
        };
        let nofollow = if nofollow { libc::O_NOFOLLOW } else { 0 };
        let how = OpenHow {
            flags: (mode | libc::O_CLOEXEC | nofollow) as u64,
            mode: 0,
            resolve: scope | RESOLVE_NO_MAGICLINKS,
        };
        let path = std::ffi::CString::new(path).ok()?;
        // SAFETY: openat2 with a directory we hold, a NUL-terminated path and an open_how of
        // the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: the descriptor openat2 just made, owned from here.
        let found = unsafe { File::from_raw_fd(fd as i32) };
        (!on_procfs(&found)).then_some(found)
    }

    /// The walk a component at a time: see [`Walker::walk`].
    fn walk_components(
        &self,
        start: Option<File>,
        path: &[u8],
        nofollow: bool,
    ) -> std::io::Result<File> {
        let mut dir = match start {
            Some(dir) => dir,
            None => self.root.try_clone()?,
        };
        let mut todo: std::collections::VecDeque<Vec<u8>> = components(path).collect();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == b"." {
                continue;
            }
            if name == b".." && id_of_file(&dir) == id_of_file(self.root) {
                continue;
            }
            let last = todo.is_empty();
            let entry = open_at(&dir, &name, libc::O_PATH | libc::O_NOFOLLOW)?;
            let meta = entry.metadata()?;
            if !meta.file_type().is_symlink() || (last && nofollow) {
                dir = entry;
                continue;
            }
            links += 1;
            if links > Self::MOST_LINKS {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = if on_procfs(&dir) && (name == b"self" || name == b"thread-self") {
                // What the task reads there: its IDs in that /proc's namespace.
                self.selfs(&dir, name == b"thread-self")
                    .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))?
            } else if on_procfs(&dir) {
                // A per-process link: the kernel follows it to what it names, for the gate as
                // the task's identity, which a non-dumpable task's links refuse.
                dir =
                    open_at(&dir, &name, libc::O_PATH).map_err(|err| match err.raw_os_error() {
                        Some(libc::EACCES) | Some(libc::EPERM) => std::io::Error::other(err),
                        _ => err,
                    })?;
                continue;
            } else {
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                let c = std::ffi::CString::new(name.clone())
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOENT))?;
                // SAFETY: readlinkat into a buffer of its length.
                let n = unsafe {
                    libc::readlinkat(
                        dir.as_raw_fd(),
                        c.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                buf.truncate(n as usize);
                buf
            };
            if target.first() == Some(&b'/') {
                dir = self.root.try_clone()?;
            }
            for (i, part) in components(&target).enumerate() {
                todo.insert(i, part);
            }
        }
        Ok(dir)
    }
}

impl Walker<'_> {
    /// The walker of `task`: from its root (/proc/TID/root).
    pub(super) fn of(task: &Task) -> std::io::Result<Walker<'_>> {
        Ok(Walker {
            root: task.root()?,
            task,
        })
    }

    /// The target of `self` ("TGID") or `thread-self` ("TGID/task/TID") for the task in the
    /// /proc `dir`: the level of its IDs whose directory there started when the task did.
    fn selfs(&self, dir: &File, thread: bool) -> Option<Vec<u8>> {
        self.task.levels.iter().find_map(|&(tgid, tid)| {
            let target = if thread {
                format!("{tgid}/task/{tid}")
            } else {
                tgid.to_string()
            };
            let stat = open_at(dir, format!("{target}/stat").as_bytes(), libc::O_RDONLY).ok()?;
            let text = std::io::read_to_string(stat).ok()?;
            (stat_start_time(&text) == self.task.started()).then(|| target.into_bytes())
        })
    }
}

/// A path's components, empty ones (repeated slashes) left out.
pub(super) fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}

/// openat(2) of one name in `dir`.
pub(super) fn open_at(dir: &File, name: &[u8], flags: i32) -> std::io::Result<File> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: a directory descriptor we hold and a NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor openat just made, owned from here.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Whether `dir` is on a procfs.
pub(super) fn on_procfs(dir: &File) -> bool {
    const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;
    // SAFETY: fstatfs into a zeroed statfs.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::fstatfs(dir.as_raw_fd(), &mut st) == 0 && st.f_type == PROC_SUPER_MAGIC
    }
}
