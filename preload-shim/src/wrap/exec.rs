//! The exec family: a locked program that executes another hands it the shim through the
//! environment, and ld.so fails open. So before the exec, the new image is judged with the
//! launcher's own rules (`memlock_run_protocol::reach`); where the preload will not lock
//! it, the program is executed through memlock-run instead, which locks it another way
//! (the ptrace method) or refuses it with a message. Why is a rung of the ladder the
//! launcher and the exec gate say too (`reach::Miss`), which this file's one line (when
//! memlock-run cannot be executed) names. An exec that fails with ENOSYS because the run's
//! exec gate has gone (killed) gets a line that names the gate (`gate_gone`); nothing is read
//! for it on the way of an exec that works. See `wrap.rs` for the list.
//!
//! Everything here may run in a vfork child or a signal handler, as the functions it
//! stands in for may: system calls, the stack and mmap(2), no locks, no allocator.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use memlock_run_protocol::reach::{self, Format, Miss, SecureExecution};
use memlock_run_protocol::{Config, GateReads, EXECUTED_BY, GATE, GATE_NAME, LAUNCHER};

use crate::environ::Entries;
use crate::line::Line;

type Argv = *const *const c_char;

/// What the constructor armed the wrappers with. Written once, by the constructor, before
/// the program's code runs (so before any other thread), and only read afterwards.
struct Armed {
    /// Written by `arm` before ARMED is set. Uninitialised rather than a default, so that
    /// the whole static is zeros and takes no room in the shim's file (.bss, not .data).
    config: core::mem::MaybeUninit<Config>,
    /// `MEMLOCK_RUN_LAUNCHER`, copied: programs rewrite their environment strings (a
    /// process title over them). Its buffer is locked into every process the shim serves, so
    /// it is small: a longer path leaves the launcher unknown, and programs the preload
    /// cannot reach are then refused with a message.
    launcher: Text,
    /// `MEMLOCK_RUN_LAUNCHER` was there but longer than `launcher` keeps.
    launcher_too_long: bool,
    /// The shim as `LD_PRELOAD` names it: the loader's own string for it (dladdr's
    /// dli_fname), which lives as long as the shim; and its device and inode.
    shim: *const c_char,
    shim_id: (u64, u64),
    /// The exec gate's PID (protocol::GATE), 0 for none: named when an exec fails for its
    /// absence.
    gate: u32,
    /// Whose memory that gate reads (protocol::GateReads): READS_WORD (0, also no gate),
    /// READS_ALL or READS_DUMPABLE. A byte, not the enum, so that the static stays zeros.
    gate_reads: u8,
}

const READS_WORD: u8 = 0;
const READS_ALL: u8 = 1;
const READS_DUMPABLE: u8 = 2;

struct Text {
    buf: [u8; 256],
    len: usize,
}

impl Text {
    const fn empty() -> Self {
        Text {
            buf: [0; 256],
            len: 0,
        }
    }
    fn set(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() >= self.buf.len() {
            return false;
        }
        for (slot, &b) in self.buf.iter_mut().zip(bytes) {
            *slot = b;
        }
        self.len = bytes.len();
        true
    }
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// NUL-terminated (the byte after `len` is always 0).
    fn c_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

struct Slot(core::cell::UnsafeCell<Armed>);
// SAFETY: written only by the constructor before the program's code (and threads) exist;
// read-only afterwards, behind ARMED's release/acquire.
unsafe impl Sync for Slot {}

static STATE: Slot = Slot(core::cell::UnsafeCell::new(Armed {
    config: core::mem::MaybeUninit::uninit(),
    launcher: Text::empty(),
    launcher_too_long: false,
    shim: core::ptr::null(),
    shim_id: (0, 0),
    gate: 0,
    gate_reads: READS_WORD,
}));
static ARMED: AtomicBool = AtomicBool::new(false);

impl Armed {
    fn shim(&self) -> &[u8] {
        cstr(self.shim)
    }

    fn config(&self) -> &Config {
        // SAFETY: `arm` writes the config before it sets ARMED, and only armed() hands out
        // an Armed.
        unsafe { self.config.assume_init_ref() }
    }
}

fn armed() -> Option<&'static Armed> {
    if ARMED.load(Ordering::Acquire) {
        // SAFETY: see `Slot`.
        Some(unsafe { &*STATE.0.get() })
    } else {
        None
    }
}

/// Called by the constructor once this process is locked and programs it executes are to
/// be locked too.
pub fn arm(config: &Config, env: Entries) {
    // SAFETY: the constructor runs alone, before anything reads STATE.
    let state = unsafe { &mut *STATE.0.get() };
    state.config = core::mem::MaybeUninit::new(*config);
    for entry in env {
        if let Some((name, value)) = memlock_run_protocol::split_entry(entry) {
            if name == LAUNCHER.as_bytes() && !state.launcher.set(value) {
                state.launcher.len = 0;
                state.launcher_too_long = true;
            } else if name == GATE.as_bytes() {
                let (gate, reads) =
                    memlock_run_protocol::gate_value(value).unwrap_or((0, GateReads::Word));
                state.gate = gate;
                state.gate_reads = match reads {
                    GateReads::All => READS_ALL,
                    GateReads::Dumpable => READS_DUMPABLE,
                    GateReads::Word => READS_WORD,
                };
            }
        }
    }
    let mut info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    let here = arm as *const c_void;
    // SAFETY: `info` is a valid out-pointer; dladdr reads the loader's tables.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return;
    }
    state.shim = info.dli_fname;
    let Some(id) = file_id_at(state.shim) else {
        return;
    };
    state.shim_id = id;
    ARMED.store(true, Ordering::Release);
}

/// How to carry out an exec.
enum Plan<'a> {
    /// The preload reaches the new image: exec it as asked.
    Direct,
    /// Through memlock-run, for this reason.
    Launcher(Miss<'a>),
    /// Fail with this errno without executing anything, as the kernel would.
    Fail(c_int),
    /// Exec it as asked, without the shim's word: what runs is the kernel's to choose (a
    /// binfmt_misc rule's interpreter, or ENOEXEC, on which the caller's own fallback runs it
    /// as a shell script), and the exec gate judges it on its own.
    Unjudged,
}

/// Room for the loader a PT_INTERP names, which the reason may quote: the caller's, so that
/// it outlives the judgement. Loaders' paths are short; memlock-run judges a longer one (the
/// kernel allows PATH_MAX) without a page of this caller's stack.
type LoaderPath = [u8; 512];
const NO_LOADER_PATH: LoaderPath = [0; 512];

/// Where the program to judge is: a path relative to a directory descriptor, or an open
/// descriptor itself (fexecve, execveat with AT_EMPTY_PATH).
#[derive(Clone, Copy)]
struct At {
    dir: c_int,
    path: *const c_char,
    flags: c_int,
}

impl At {
    /// `path` as execve(2) names it: relative to the working directory.
    fn cwd(path: *const c_char) -> At {
        At {
            dir: libc::AT_FDCWD,
            path,
            flags: 0,
        }
    }
}

/// The judgement for executing `at` with `envp`.
fn judge<'a>(armed: &Armed, at: At, envp: Argv, loader: &'a mut LoaderPath) -> Plan<'a> {
    let Some(file) = Fd::open_at(at) else {
        return unopened(at, Miss::Unreadable);
    };
    if !could_run(&file) {
        // The kernel refuses it (EACCES) before anything runs, as the caller expects: execvp
        // goes on to the next directory of PATH.
        return Plan::Direct;
    }
    let mut head = [0u8; reach::HEAD_SIZE];
    let len = file.read_at(0, &mut head);
    let head = head.get(..len).unwrap_or(&[]);
    match reach::format(head) {
        // binfmt_misc may hand it to an interpreter, by rules this guest does not read: the exec
        // gate does, and judges that interpreter. Without rules the kernel fails it, as said.
        Format::Other if crate::procfs::binfmt_rules() => Plan::Unjudged,
        Format::Other => Plan::Fail(libc::ENOEXEC),
        Format::Script => {
            let Some(interpreter) = reach::script_interpreter(head) else {
                return Plan::Fail(libc::ENOEXEC);
            };
            // The #! line is read from HEAD_SIZE bytes: the name is shorter, with its NUL.
            let mut path = [0u8; reach::HEAD_SIZE + 1];
            if interpreter.len() >= path.len() {
                return Plan::Launcher(Miss::TooLongToJudge);
            }
            for (slot, &b) in path.iter_mut().zip(interpreter) {
                *slot = b;
            }
            let at = At::cwd(path.as_ptr().cast());
            match Fd::open_at(at) {
                Some(interp) => judge_elf(armed, &interp, None, envp, loader),
                None => unopened(at, Miss::InterpreterUnreadable),
            }
        }
        Format::Elf => judge_elf(armed, &file, Some(head), envp, loader),
    }
}

/// A program (or #! interpreter) that could not be opened for judging. What the kernel fails
/// on as well (missing, not a directory, not executable, a symbolic link under
/// AT_SYMLINK_NOFOLLOW, which faccessat would follow) runs nothing. A file the kernel would
/// run cannot be judged here, whatever kept it from being opened: executable but not readable
/// (EACCES), or no descriptor to spare (EMFILE, ENFILE: a busy server's). memlock-run judges
/// it, or says why it cannot (`unreadable`, the program's rung or its interpreter's).
fn unopened(at: At, unreadable: Miss<'static>) -> Plan<'static> {
    if crate::errno() != libc::ELOOP && executable(at) {
        Plan::Launcher(unreadable)
    } else {
        Plan::Direct
    }
}

/// `read`: the file's first bytes when the caller has them already (a program), none for a
/// #! interpreter, whose header is read here.
fn judge_elf<'a>(
    armed: &Armed,
    file: &Fd,
    read: Option<&[u8]>,
    envp: Argv,
    loader: &'a mut LoaderPath,
) -> Plan<'a> {
    let interpreter = read.is_none();
    let mut buf = [0u8; 64];
    let head = match read {
        Some(head) => head,
        None => {
            let len = file.read_at(0, &mut buf);
            buf.get(..len).unwrap_or(&[])
        }
    };
    if reach::format(head) != Format::Elf {
        return if interpreter {
            Plan::Launcher(Miss::NestedScript)
        } else {
            Plan::Fail(libc::ENOEXEC)
        };
    }
    let read_at = |offset: u64, buf: &mut [u8]| file.read_at(offset, buf) == buf.len();
    let Ok(elf) = reach::parse_elf(head, read_at) else {
        return Plan::Launcher(Miss::Malformed);
    };
    let loader = match elf.interp {
        None => None,
        Some((offset, size)) => {
            let Some(bytes) = loader.get_mut(..size) else {
                return Plan::Launcher(Miss::TooLongToJudge);
            };
            if !read_at(offset, bytes) {
                return Plan::Launcher(Miss::Malformed);
            }
            let bytes: &'a [u8] = bytes;
            match reach::interp_path(bytes) {
                Ok(path) => Some(path),
                Err(_) => return Plan::Launcher(Miss::Malformed),
            }
        }
    };
    if let Err(miss) = reach::judge_image(elf.identity, loader, reach::Identity::NATIVE) {
        return Plan::Launcher(miss);
    }
    if let Some(path) = loader {
        // The loader by what it is (reach::system_library). `path` ends where the PT_INTERP's
        // NUL is, in the same buffer: a C string. One the kernel cannot find fails the exec.
        // SAFETY: a NUL-terminated path and a valid out-pointer.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        let found = unsafe {
            libc::syscall(
                libc::SYS_newfstatat,
                libc::AT_FDCWD,
                path.as_ptr(),
                &mut st,
                0,
            )
        } == 0;
        if found
            && !reach::system_library(path, st.st_uid, st.st_mode, true)
            && !reach::system_library(
                path,
                st.st_uid,
                st.st_mode,
                crate::procfs::initial_user_namespace(),
            )
        {
            return Plan::Launcher(Miss::ForeignLoader { loader: path });
        }
    }
    if let Some(miss) = secure_execution(file) {
        return Plan::Launcher(miss);
    }
    if address_space_limited() {
        // ld.so skips a preload it cannot map, with a warning: memlock-run checks at the
        // program's entry point that the shim is there.
        return Plan::Launcher(Miss::AddressSpaceLimited);
    }
    environment_plan(armed, envp)
}

/// Whether the environment given to the new image carries the shim, and this run's settings
/// (`reach::carries_shim`), and the shim is at its path from this process.
fn environment_plan(armed: &Armed, envp: Argv) -> Plan<'static> {
    // SAFETY: execve's caller passes a NUL-terminated array of NUL-terminated strings.
    let entries = unsafe { Entries::new(envp) };
    if let Err(miss) = reach::carries_shim(entries, armed.shim(), armed.config()) {
        return Plan::Launcher(miss);
    }
    if file_id_at(armed.shim) != Some(armed.shim_id) {
        return Plan::Launcher(Miss::ShimElsewhere);
    }
    Plan::Direct
}

/// What the kernel runs in secure-execution mode, where ld.so ignores the shim's path, by
/// memlock-run's rule (`reach::SecureExecution`) for this process's real and effective IDs.
/// What only voids a set-ID bit, a nosuid mount or no_new_privs, is not read here (taken as
/// absent, the side of refusing): such a file goes to memlock-run, which reads them, and
/// locks it where the bit has no effect.
fn secure_execution(file: &Fd) -> Option<Miss<'static>> {
    let Some(st) = file.stat() else {
        return Some(Miss::Unreadable);
    };
    // SAFETY: getters without preconditions.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    // File capabilities give a real root nothing new: the rule does not ask, and neither does
    // this.
    // SAFETY: a NUL-terminated name, no buffer (size 0 asks for the size).
    let capabilities = uid != 0
        && unsafe {
            libc::syscall(
                libc::SYS_fgetxattr,
                file.0,
                c"security.capability".as_ptr(),
                core::ptr::null_mut::<c_void>(),
                0usize,
            )
        } >= 0;
    SecureExecution {
        mode: st.st_mode,
        owner: st.st_uid,
        group: st.st_gid,
        uid,
        euid,
        gid,
        egid,
        file_capabilities: capabilities,
        nosuid: false,
        no_new_privs: false,
    }
    .miss()
}

fn address_space_limited() -> bool {
    let mut limit = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 of this process, reading into `limit`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_AS,
            core::ptr::null::<libc::rlimit64>(),
            &mut limit,
        )
    };
    rc == 0 && limit.rlim_cur != libc::RLIM64_INFINITY
}

/// Not certainly refused by the kernel: a regular file with an execute bit, on a mount
/// that allows execution. (The finer permission rules are left to the kernel: a file
/// judged here that it then refuses runs nothing either.)
fn could_run(file: &Fd) -> bool {
    let Some(st) = file.stat() else { return true };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_mode & 0o111 == 0 {
        return false;
    }
    // SAFETY: `fs` is a valid out-pointer (fstatvfs is fstatfs(2) and a copy).
    unsafe {
        let mut fs: libc::statvfs = core::mem::zeroed();
        libc::fstatvfs(file.0, &mut fs) != 0 || fs.f_flag & libc::ST_NOEXEC == 0
    }
}

fn executable(at: At) -> bool {
    if at.path.is_null() {
        return false;
    }
    let mut proc = [0u8; 32];
    // SAFETY: a NUL-terminated path from the caller, or `proc`'s.
    unsafe {
        // The descriptor itself (fexecve): faccessat has no AT_EMPTY_PATH before Linux 5.8's
        // faccessat2, and with an empty path it fails (ENOENT), which once let an execute-only
        // program executed by its O_PATH descriptor run as asked, unjudged.
        let (dir, path) =
            if at.flags & libc::AT_EMPTY_PATH != 0 && CStr::from_ptr(at.path).is_empty() {
                (libc::AT_FDCWD, fd_path(at.dir, &mut proc))
            } else {
                (at.dir, at.path)
            };
        libc::syscall(libc::SYS_faccessat, dir, path, libc::X_OK) == 0
    }
}

fn file_id_at(path: *const c_char) -> Option<(u64, u64)> {
    // SAFETY: `st` is a valid out-pointer and `path` NUL-terminated.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        (libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, &mut st, 0) == 0)
            .then_some((st.st_dev, st.st_ino))
    }
}

/// A descriptor opened for judging, closed when dropped.
struct Fd(c_int);

impl Fd {
    fn open_at(at: At) -> Option<Fd> {
        if at.path.is_null() {
            // SAFETY: this thread's errno slot; the kernel says EFAULT of a null path too.
            unsafe { *libc::__errno_location() = libc::EFAULT };
            return None;
        }
        // SAFETY: a NUL-terminated path; the flags ask for a new descriptor only.
        let fd = unsafe {
            // SAFETY: `at.path` is NUL-terminated.
            if at.flags & libc::AT_EMPTY_PATH != 0 && CStr::from_ptr(at.path).is_empty() {
                // The descriptor itself, reopened for reading (it may be O_PATH).
                let mut proc = [0u8; 32];
                let path = fd_path(at.dir, &mut proc);
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    path,
                    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
                )
            } else {
                let nofollow = if at.flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
                    libc::O_NOFOLLOW
                } else {
                    0
                };
                libc::syscall(
                    libc::SYS_openat,
                    at.dir,
                    at.path,
                    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | nofollow,
                )
            }
        };
        (fd >= 0).then(|| Fd(fd as c_int))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or(&mut []);
            // SAFETY: `rest` is a valid buffer of its length.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_pread64,
                    self.0,
                    rest.as_mut_ptr(),
                    rest.len(),
                    offset.saturating_add(done as u64),
                )
            };
            if n < 0 && crate::errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        done
    }

    fn stat(&self) -> Option<libc::stat> {
        // SAFETY: `st` is a valid out-pointer.
        unsafe {
            let mut st: libc::stat = core::mem::zeroed();
            (libc::syscall(libc::SYS_fstat, self.0, &mut st) == 0).then_some(st)
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this value owns.
        unsafe { libc::syscall(libc::SYS_close, self.0) };
    }
}

/// `/proc/self/fd/N`, NUL-terminated, in `buf`.
fn fd_path(fd: c_int, buf: &mut [u8; 32]) -> *const c_char {
    let prefix = b"/proc/self/fd/";
    let mut digits = [0u8; 20];
    let n = memlock_run_protocol::encode_u64(fd.max(0) as u64, &mut digits).as_bytes();
    let mut len = 0;
    for &b in prefix.iter().chain(n) {
        if let Some(slot) = buf.get_mut(len) {
            *slot = b;
            len += 1;
        }
    }
    if let Some(slot) = buf.get_mut(len.min(31)) {
        *slot = 0;
    }
    buf.as_ptr().cast()
}

/// Memory for the rewritten argv and envp: mmap(2), which is safe where malloc is not (a
/// vfork child, a signal handler); given back when an exec fails. A vfork child shares its
/// parent's memory, so after its exec the mapping would stay in the parent: each one is
/// recorded in `LEFT` while it lives, and what a vfork child left is unmapped by its parent
/// thread's next scratch.
struct Scratch {
    base: *mut u8,
    size: usize,
    used: usize,
    /// Its record in `LEFT`, if there was room.
    record: Option<&'static Left>,
}

/// A scratch mapping that may outlive its exec: the thread it belongs to (pthread_self, which
/// a vfork child shares with its parent thread: the same TCB), the process that mapped it
/// (the child's own PID), and the mapping.
struct Left {
    thread: AtomicUsize,
    pid: AtomicUsize,
    base: AtomicUsize,
    size: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const NO_LEFT: Left = Left {
    thread: AtomicUsize::new(0),
    pid: AtomicUsize::new(0),
    base: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
};
static LEFT: [Left; 8] = [NO_LEFT; 8];

/// Unmaps what this thread's vfork children left: a record of this thread's from another
/// process than this one or its parent (this thread ran on, so that child has executed or
/// ended); its own and, in a vfork child, its parent's scratch are in use up the stack.
fn reclaim_left() {
    // SAFETY: pthread_self, getpid and getppid cannot fail.
    let (me, pid, parent) = unsafe {
        (
            libc::pthread_self() as usize,
            libc::getpid() as usize,
            libc::getppid() as usize,
        )
    };
    for left in &LEFT {
        let from = left.pid.load(Ordering::Acquire);
        // 0: being filled in (a signal handler of this thread got here meanwhile).
        if left.thread.load(Ordering::Acquire) == me && from != 0 && from != pid && from != parent {
            // SAFETY: a mapping of this thread's that no live frame uses (above).
            unsafe {
                libc::syscall(
                    libc::SYS_munmap,
                    left.base.load(Ordering::Relaxed),
                    left.size.load(Ordering::Relaxed),
                )
            };
            left.pid.store(0, Ordering::Relaxed);
            left.thread.store(0, Ordering::Release);
        }
    }
}

impl Scratch {
    fn new(size: usize) -> Option<Scratch> {
        reclaim_left();
        // SAFETY: a fresh private anonymous mapping.
        let base = unsafe {
            libc::syscall(
                libc::SYS_mmap,
                core::ptr::null_mut::<c_void>(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == -1 || base == 0 {
            return None;
        }
        // SAFETY: pthread_self and getpid cannot fail.
        let (me, pid) = unsafe { (libc::pthread_self() as usize, libc::getpid() as usize) };
        let record = LEFT.iter().find(|left| {
            left.thread
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(left) = record {
            left.base.store(base as usize, Ordering::Relaxed);
            left.size.store(size, Ordering::Relaxed);
            left.pid.store(pid, Ordering::Release);
        }
        Some(Scratch {
            base: base as *mut u8,
            size,
            used: 0,
            record,
        })
    }

    /// `count` pointer slots, zeroed.
    fn slots(&mut self, count: usize) -> Option<*mut *const c_char> {
        let align = core::mem::align_of::<*const c_char>();
        let start = self.used.checked_add(align - 1)? / align * align;
        let end = start.checked_add(count.checked_mul(core::mem::size_of::<usize>())?)?;
        if end > self.size {
            return None;
        }
        self.used = end;
        // SAFETY: within the mapping, aligned.
        Some(unsafe { self.base.add(start).cast() })
    }

    /// A NUL-terminated copy of the concatenation of `parts`.
    fn text(&mut self, parts: &[&[u8]]) -> Option<*const c_char> {
        let start = self.here();
        for part in parts {
            self.put(part)?;
        }
        self.put(&[0])?;
        Some(start)
    }

    /// Where the next bytes go.
    fn here(&self) -> *const c_char {
        // SAFETY: `used` is within the mapping (or one past its end, never written there).
        unsafe { self.base.add(self.used).cast_const().cast() }
    }

    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.used.checked_add(bytes.len())?;
        if end > self.size {
            return None;
        }
        // SAFETY: within the mapping; `bytes` does not overlap a fresh mapping.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(self.used), bytes.len())
        };
        self.used = end;
        Some(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(left) = self.record {
            left.pid.store(0, Ordering::Relaxed);
            left.thread.store(0, Ordering::Release);
        }
        // SAFETY: the mapping this value owns.
        unsafe { libc::syscall(libc::SYS_munmap, self.base, self.size) };
    }
}

fn count(v: Argv) -> usize {
    if v.is_null() {
        return 0;
    }
    let mut n = 0;
    // SAFETY: a NUL-terminated array.
    while !unsafe { *v.add(n) }.is_null() {
        n += 1;
    }
    n
}

fn cstr<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: a NUL-terminated string from the caller.
    unsafe { CStr::from_ptr(p).to_bytes() }
}

/// Pointer slots being filled, with room for the closing null.
struct Slots {
    at: *mut *const c_char,
    cap: usize,
    len: usize,
}

impl Slots {
    fn push(&mut self, p: *const c_char) -> Option<()> {
        if self.len + 1 >= self.cap {
            return None;
        }
        // SAFETY: len + 1 < cap slots of the scratch mapping (zeroed: the closing null).
        unsafe { *self.at.add(self.len) = p };
        self.len += 1;
        Some(())
    }
}

/// The command line and environment that run the program through memlock-run.
struct Rerouted {
    _scratch: Scratch,
    argv: Argv,
    envp: Argv,
}

/// `memlock-run OPTIONS --argv0 ARGV0 -- PATH ARGS...`, with the shim taken out of
/// `LD_PRELOAD` (memlock-run puts it back where it belongs, and must not load it itself).
fn reroute(armed: &Armed, path: &[u8], argv: Argv, envp: Argv) -> Option<Rerouted> {
    const OPTIONS: usize = 24;
    let argc = count(argv);
    let envc = count(envp);
    // SAFETY: argc > 0 is checked before argv[0] is read.
    let argv0 = if argc > 0 {
        cstr(unsafe { *argv }).len()
    } else {
        0
    };
    let mut bytes = path.len() + argv0 + 512;
    for i in 0..envc {
        // SAFETY: i < envc.
        bytes += cstr(unsafe { *envp.add(i) }).len() + 1;
    }
    // SAFETY: the C library's own string (program_invocation_short_name(3)), or null.
    let caller = cstr(unsafe { program_invocation_short_name });
    let caller = caller.get(..caller.len().min(64)).unwrap_or(&[]);
    let pointers = (argc + OPTIONS + 1 + envc + 2) * core::mem::size_of::<usize>();
    let mut scratch = Scratch::new(bytes + pointers + caller.len() + 128)?;
    let mut args = Slots {
        at: scratch.slots(argc + OPTIONS + 1)?,
        cap: argc + OPTIONS + 1,
        len: 0,
    };
    let mut env = Slots {
        at: scratch.slots(envc + 2)?,
        cap: envc + 2,
        len: 0,
    };
    args.push(armed.launcher.c_ptr())?;
    let mut complete = true;
    armed.config().args(|arg| {
        let pushed = scratch.text(&[arg.as_bytes()]).and_then(|p| args.push(p));
        complete &= pushed.is_some();
    });
    if !complete {
        return None;
    }
    if argc > 0 {
        // One word, `--argv0=NAME`: a NAME that starts with `-` (a login shell's `-bash`) is
        // then never read as an option.
        // SAFETY: argc > 0.
        let name = cstr(unsafe { *argv });
        args.push(scratch.text(&[b"--argv0=", name])?)?;
    }
    args.push(c"--".as_ptr())?;
    args.push(scratch.text(&[path])?)?;
    for i in 1..argc {
        // SAFETY: i < argc.
        args.push(unsafe { *argv.add(i) })?;
    }
    for i in 0..envc {
        // SAFETY: i < envc.
        let entry = unsafe { *envp.add(i) };
        match memlock_run_protocol::split_entry(cstr(entry)) {
            Some((b"LD_PRELOAD", value)) => {
                if let Some(kept) = without_shim(&mut scratch, value, armed.shim())? {
                    env.push(kept)?;
                }
            }
            _ => env.push(entry)?,
        }
    }
    // Who sent it, for memlock-run's messages (a refusal then names the run to give
    // --no-inherit); memlock-run drops it with every other MEMLOCK_RUN_ variable.
    let mut pid = [0u8; 20];
    // SAFETY: getpid cannot fail.
    let pid = memlock_run_protocol::encode_u64(unsafe { libc::getpid() } as u64, &mut pid);
    env.push(scratch.text(&[
        EXECUTED_BY.as_bytes(),
        b"=",
        caller,
        b" (pid ",
        pid.as_bytes(),
        b")",
    ])?)?;
    Some(Rerouted {
        _scratch: scratch,
        argv: args.at.cast_const(),
        envp: env.at.cast_const(),
    })
}

/// `LD_PRELOAD=` less the shim, written into `scratch`: `None` inside when nothing else
/// was in it.
fn without_shim(scratch: &mut Scratch, value: &[u8], shim: &[u8]) -> Option<Option<*const c_char>> {
    let kept = || {
        value
            .split(|&b| b == b':' || b == b' ')
            .filter(move |e| !e.is_empty() && *e != shim)
    };
    if kept().next().is_none() {
        return Some(None);
    }
    let start = scratch.here();
    scratch.put(b"LD_PRELOAD=")?;
    for (i, entry) in kept().enumerate() {
        if i > 0 {
            scratch.put(b":")?;
        }
        scratch.put(entry)?;
    }
    scratch.put(&[0])?;
    Some(Some(start))
}

/// Carries out an exec of `at` as `path` (what memlock-run is to run) with `argv`, `envp`:
/// `real` makes the exec (or spawn) of a path, argv and envp and returns its result.
fn carry_out(
    at: At,
    path: &[u8],
    argv: Argv,
    envp: Argv,
    real: &mut dyn FnMut(*const c_char, Argv, Argv) -> c_int,
    spawn: Spawn,
) -> c_int {
    let Some(armed) = armed() else {
        return real(at.path, argv, envp);
    };
    let mut loader = NO_LOADER_PATH;
    let plan = if spawn == Spawn::Moved {
        Plan::Launcher(Miss::MovedBySpawn)
    } else {
        judge(armed, at, envp, &mut loader)
    };
    let spawn = spawn != Spawn::No;
    let why = match plan {
        Plan::Direct => {
            let rc = judged(spawn, || real(at.path, argv, envp));
            let errno = if spawn { rc } else { crate::errno() };
            if rc != 0 && errno == libc::ENOSYS {
                gate_gone(armed, path);
            }
            return rc;
        }
        Plan::Fail(errno) => return failure(errno, spawn),
        Plan::Unjudged => {
            let rc = real(at.path, argv, envp);
            if rc != 0 && (if spawn { rc } else { crate::errno() }) == libc::ENOSYS {
                gate_gone(armed, path);
            }
            return rc;
        }
        Plan::Launcher(why) => why,
    };
    if armed.launcher.len == 0 {
        let (what, remedy) = if armed.launcher_too_long {
            (
                "memlock-run's path is longer than the 255 bytes the shim keeps of it",
                "install memlock-run at a shorter path",
            )
        } else {
            (
                "memlock-run's path was not handed to this process (MEMLOCK_RUN_LAUNCHER)",
                "start the parent with memlock-run itself rather than with LD_PRELOAD by hand",
            )
        };
        refuse(path, &why, b"", 0, what, remedy);
        return failure(libc::EPERM, spawn);
    }
    let Some(rerouted) = reroute(armed, path, argv, envp) else {
        refuse(
            path,
            &why,
            b"",
            libc::ENOMEM,
            "its command line for memlock-run cannot be built (out of memory)",
            "make room for it (RLIMIT_MEMLOCK under --future, RLIMIT_AS)",
        );
        return failure(libc::ENOMEM, spawn);
    };
    let rc = judged(spawn, || {
        real(armed.launcher.c_ptr(), rerouted.argv, rerouted.envp)
    });
    if spawn && rc == 0 {
        return 0;
    }
    let errno = if spawn { rc } else { crate::errno() };
    if errno == libc::ENOSYS && gate_gone(armed, path) {
        return failure(errno, spawn);
    }
    refuse(
        path,
        &why,
        armed.launcher.bytes(),
        errno,
        "memlock-run, which would lock it another way, cannot be executed",
        "install memlock-run where this process can run it (inside its root directory)",
    );
    // EPERM, a refusal: not EACCES or ENOENT, on which execvp would go on to the next
    // directory of PATH and might run another program of that name.
    failure(libc::EPERM, spawn)
}

/// After an exec that failed with ENOSYS, which is what the kernel answers for a seccomp
/// filter whose listener has gone: when this run's exec gate is no longer there (no
/// /proc/PID, a zombie, or another program at its PID), says so on stderr, and true. errno is
/// kept. A stopped gate fails nothing (the exec waits for it), and is not seen here. Said
/// once by a process (a shell's PATH search fails in every directory), which is known by its
/// PID: a vfork child shares this memory with its parent.
fn gate_gone(armed: &Armed, path: &[u8]) -> bool {
    static SAID_BY: AtomicUsize = AtomicUsize::new(0);
    if armed.gate == 0 {
        return false;
    }
    let saved = crate::errno();
    let mut proc_path = [0u8; 32];
    let mut len = 0;
    let mut digits = [0u8; 20];
    let pid = memlock_run_protocol::encode_u64(u64::from(armed.gate), &mut digits).as_bytes();
    for &b in b"/proc/".iter().chain(pid).chain(b"/stat") {
        if let Some(slot) = proc_path.get_mut(len) {
            *slot = b;
            len += 1;
        }
    }
    let mut stat = [0u8; 64];
    // SAFETY: a NUL-terminated path (`proc_path` has room to spare); read into `stat`; the
    // descriptor is closed once.
    let read = unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            proc_path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            if crate::errno() == libc::ENOENT {
                0
            } else {
                -1
            }
        } else {
            let n = libc::syscall(libc::SYS_read, fd, stat.as_mut_ptr(), stat.len());
            libc::syscall(libc::SYS_close, fd);
            n
        }
    };
    // `PID (memlock-gate) S ...`: the gate, and not a zombie, is there.
    let stat = stat.get(..read.max(0) as usize).unwrap_or(&[]);
    let name = GATE_NAME.as_bytes();
    let state = stat
        .iter()
        .position(|&b| b == b'(')
        .and_then(|open| stat.get(open.saturating_add(1)..))
        .filter(|rest| rest.starts_with(name))
        .and_then(|rest| rest.get(name.len()..))
        .filter(|rest| rest.starts_with(b") "))
        .and_then(|rest| rest.get(2).copied());
    let gone = read == 0 || (read > 0 && matches!(state, None | Some(b'Z' | b'X')));
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() } as usize;
    if gone && SAID_BY.swap(me, Ordering::Relaxed) != me {
        let mut line = Line::new();
        line.push("memlock-run: cannot execute ").push_escaped(path);
        line.push(" (from pid ").push_u64(me as u64);
        line.push("): memlock-run's exec gate (pid ")
            .push_u64(u64::from(armed.gate));
        line.push("), which judges every exec of this process's tree, has ended (killed?), and without it the kernel fails them all with ")
            .push_errno(libc::ENOSYS)
            .push("; start the tree again under memlock-run");
        line.emit();
    }
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() = saved };
    gone
}

/// Makes an exec or spawn the shim has judged, telling memlock-run's exec gate so first
/// (protocol::GATE_WORD) where the gate may not read this process's memory (--no-dump, a
/// gate without CAP_SYS_PTRACE, Yama): that is how it knows the exec was judged. Where it
/// reads it (`word_needed`), the gate judges the exec itself and the word would cost a second
/// stop in the gate for nothing. A spawn's child runs no shim code: the gate takes the word of
/// its parent while the spawn is under way.
fn judged(spawn: bool, make: impl FnOnce() -> c_int) -> c_int {
    use memlock_run_protocol::{GATE_EXEC, GATE_SPAWN, GATE_SPAWNED};
    let say = word_needed();
    if say {
        gate_word(if spawn { GATE_SPAWN } else { GATE_EXEC });
    }
    let rc = make();
    if spawn && say {
        gate_word(GATE_SPAWNED);
    }
    rc
}

/// Whether the exec gate needs the shim's word: memlock-run said which processes it reads
/// (protocol::GateReads). Under an unprivileged gate (`d`), only this process while it is
/// dumpable (PR_GET_DUMPABLE says 1, SUID_DUMP_USER, read now: a program may have made itself
/// non-dumpable, as ssh-agent does) and holds no capability but CAP_IPC_LOCK: one it holds
/// (its own user namespace's, after `unshare -r`) opens files the gate, which cannot take it
/// on, may not, and the gate then judges such a file by the word. Should the gate fail to
/// read or open what it judges after all, the exec is refused with a line: closed.
fn word_needed() -> bool {
    match armed().map(|armed| armed.gate_reads) {
        Some(READS_ALL) => false,
        Some(READS_DUMPABLE) => {
            // SAFETY: prctl with integer arguments; it has no error of its own.
            (unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }) != 1
                || crate::wrap::holds_more_than_ipc_lock()
        }
        _ => true,
    }
}

/// A prctl no kernel knows, which only the exec gate's filter answers; errno is kept.
fn gate_word(word: u64) {
    let saved = crate::errno();
    // SAFETY: prctl(2) with integer arguments; EINVAL where no gate listens.
    unsafe {
        libc::syscall(
            libc::SYS_prctl,
            memlock_run_protocol::GATE_WORD as libc::c_long,
            word,
            0,
            0,
            0,
        );
        *libc::__errno_location() = saved;
    }
}

/// Whether the call is posix_spawn's, which returns an error number, and whether its file
/// actions run before the exec in the child (a chdir there moves a relative path).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spawn {
    No,
    Yes,
    /// A relative path with file actions: judged where it runs, by memlock-run.
    Moved,
}

impl Spawn {
    fn of(path: *const c_char, actions: *const c_void) -> Spawn {
        if !actions.is_null() && cstr(path).first() != Some(&b'/') {
            Spawn::Moved
        } else {
            Spawn::Yes
        }
    }
}

/// -1 with errno for the exec family; the error number itself for posix_spawn.
fn failure(errno: c_int, spawn: bool) -> c_int {
    if spawn {
        errno
    } else {
        // SAFETY: this thread's errno slot.
        unsafe { *libc::__errno_location() = errno };
        -1
    }
}

/// The one line that says why a program was not executed.
fn refuse(path: &[u8], why: &Miss, launcher: &[u8], errno: c_int, what: &str, remedy: &str) {
    let mut line = Line::new();
    line.push("memlock-run: not executing ")
        .push_escaped(path)
        .push(" (from pid ");
    // SAFETY: getpid cannot fail.
    line.push_u64(unsafe { libc::getpid() } as u64).push("): ");
    let _ = why.write_summary(&mut line);
    line.push(", so the preload cannot lock it, and ")
        .push(what);
    if !launcher.is_empty() {
        line.push(" (")
            .push_escaped(launcher)
            .push(": ")
            .push_errno(errno)
            .push(")");
    }
    line.push(
        "; this process runs under memlock-run, which locks the programs it executes as well: ",
    );
    line.push(remedy);
    line.push(", or start the parent with --no-inherit if only it must be locked");
    line.emit();
}

extern "C" {
    /// The process's environment, which execv, execvp and execl pass on.
    static environ: *const *const c_char;
    /// The program's name, glibc's and musl's alike.
    static program_invocation_short_name: *const c_char;
}

fn process_env() -> Argv {
    // SAFETY: reading the pointer libc keeps; the array is NUL-terminated.
    unsafe { environ }
}

/// The next definition of `name` after the shim's (libc's).
fn next(cache: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    super::next(cache, name)
}

fn sys_execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: execve(2) with the caller's arguments.
    unsafe { libc::syscall(libc::SYS_execve, path, argv, envp) as c_int }
}

fn sys_execveat(dir: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int {
    // SAFETY: execveat(2) with the caller's arguments.
    unsafe { libc::syscall(libc::SYS_execveat, dir, path, argv, envp, flags) as c_int }
}

/// `execve(2)`: see `wrap.rs`.
///
/// # Safety
/// As execve(2).
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let at = At::cwd(path);
    carry_out(
        at,
        cstr(path),
        argv,
        envp,
        &mut |p, a, e| sys_execve(p, a, e),
        Spawn::No,
    )
}

/// `execv(3)`.
///
/// # Safety
/// As execv(3).
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    execve(path, argv, process_env())
}

/// `execveat(2)`.
///
/// # Safety
/// As execveat(2).
#[no_mangle]
pub unsafe extern "C" fn execveat(
    dir: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    let at = At { dir, path, flags };
    let mut shown = [0u8; 4200];
    let name = path_of(at, &mut shown);
    carry_out(
        at,
        name,
        argv,
        envp,
        &mut |p, a, e| {
            if p == path {
                sys_execveat(dir, path, a, e, flags)
            } else {
                sys_execve(p, a, e)
            }
        },
        Spawn::No,
    )
}

/// `fexecve(3)`.
///
/// # Safety
/// As fexecve(3).
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    execveat(fd, c"".as_ptr(), argv, envp, libc::AT_EMPTY_PATH)
}

/// The name memlock-run is given for a program named relative to a descriptor:
/// `/proc/self/fd/N` or `/proc/self/fd/N/PATH` (the descriptor stays open across exec
/// unless it is close-on-exec, in which case memlock-run says it cannot open it).
fn path_of(at: At, buf: &mut [u8; 4200]) -> &[u8] {
    let path = cstr(at.path);
    if at.dir == libc::AT_FDCWD || path.first() == Some(&b'/') {
        return path;
    }
    let mut proc = [0u8; 32];
    let prefix = cstr(fd_path(at.dir, &mut proc));
    let mut len = 0;
    let sep: &[u8] = if path.is_empty() { b"" } else { b"/" };
    for &b in prefix.iter().chain(sep).chain(path) {
        let Some(slot) = buf.get_mut(len) else {
            return path;
        };
        *slot = b;
        len += 1;
    }
    buf.get(..len).unwrap_or(path)
}

/// `execvpe(3)`: the PATH search of glibc's, each candidate judged as execve judges it.
///
/// # Safety
/// As execvpe(3).
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if armed().is_none() {
        static NEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
        let f = next(&NEXT, c"execvpe");
        if f.is_null() {
            return failure(libc::ENOSYS, false);
        }
        // SAFETY: libc's execvpe, whose type this is.
        let real: unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int =
            core::mem::transmute::<*mut c_void, _>(f);
        return real(file, argv, envp);
    }
    let name = cstr(file);
    if name.is_empty() {
        return failure(libc::ENOENT, false);
    }
    if has_slash(name) {
        return exec_or_shell(file, argv, envp);
    }
    let mut denied = false;
    let mut found = false;
    let mut buf = [0u8; 4200];
    for dir in search_path().split(|&b| b == b':') {
        let Some(candidate) = join(dir, name, &mut buf) else {
            continue;
        };
        exec_or_shell(candidate, argv, envp);
        match crate::errno() {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => {
                found = true;
                break;
            }
        }
    }
    if found {
        return -1;
    }
    failure(if denied { libc::EACCES } else { libc::ENOENT }, false)
}

/// `execvp(3)`.
///
/// # Safety
/// As execvp(3).
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    execvpe(file, argv, process_env())
}

/// PATH as glibc's execvp reads it: from this process's environment, "/bin:/usr/bin" when
/// unset.
fn search_path() -> &'static [u8] {
    // SAFETY: the process's own environment.
    for entry in unsafe { Entries::new(process_env()) } {
        if let Some((b"PATH", value)) = memlock_run_protocol::split_entry(entry) {
            return value;
        }
    }
    b"/bin:/usr/bin"
}

/// `DIR/NAME` (`NAME` for an empty DIR, the current directory), NUL-terminated.
fn join(dir: &[u8], name: &[u8], buf: &mut [u8; 4200]) -> Option<*const c_char> {
    let sep: &[u8] = if dir.is_empty() { b"" } else { b"/" };
    let len = dir.len() + sep.len() + name.len();
    if len >= buf.len() {
        return None;
    }
    let mut at = 0;
    for &b in dir.iter().chain(sep).chain(name) {
        *buf.get_mut(at)? = b;
        at += 1;
    }
    *buf.get_mut(at)? = 0;
    Some(buf.as_ptr().cast())
}

/// execve, and for a file the kernel does not recognise, `/bin/sh FILE ARGS...` as glibc's
/// execvp does.
unsafe fn exec_or_shell(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    execve(path, argv, envp);
    if crate::errno() != libc::ENOEXEC {
        return -1;
    }
    let argc = count(argv);
    let Some(mut scratch) = Scratch::new((argc + 3) * core::mem::size_of::<usize>()) else {
        return failure(libc::ENOMEM, false);
    };
    let Some(at) = scratch.slots(argc + 3) else {
        return failure(libc::ENOMEM, false);
    };
    let mut args = Slots {
        at,
        cap: argc + 3,
        len: 0,
    };
    let _ = args.push(c"/bin/sh".as_ptr());
    let _ = args.push(path);
    for i in 1..argc {
        let _ = args.push(*argv.add(i));
    }
    execve(c"/bin/sh".as_ptr(), args.at.cast_const(), envp);
    failure(libc::ENOEXEC, false)
}

type SpawnFn = unsafe extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const c_void,
    *const c_void,
    Argv,
    Argv,
) -> c_int;

fn real_spawn(cache: &AtomicPtr<c_void>, name: &CStr) -> Option<SpawnFn> {
    let f = next(cache, name);
    // SAFETY: libc's posix_spawn or posix_spawnp, whose type this is.
    (!f.is_null()).then(|| unsafe { core::mem::transmute::<*mut c_void, SpawnFn>(f) })
}

static NEXT_SPAWN: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static NEXT_SPAWNP: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// `posix_spawn(3)`: glibc's executes in the child with its own internal execve, so the
/// program is judged here, in the parent, before.
///
/// # Safety
/// As posix_spawn(3).
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *const c_void,
    attr: *const c_void,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let Some(spawn) = real_spawn(&NEXT_SPAWN, c"posix_spawn") else {
        return libc::ENOSYS;
    };
    let at = At::cwd(path);
    carry_out(
        at,
        cstr(path),
        argv,
        envp,
        &mut |p, a, e| spawn(pid, p, actions, attr, a, e),
        Spawn::of(path, actions),
    )
}

/// `posix_spawnp(3)`: the program its PATH search would find, judged as posix_spawn judges.
///
/// # Safety
/// As posix_spawnp(3).
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *const c_void,
    attr: *const c_void,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let Some(spawnp) = real_spawn(&NEXT_SPAWNP, c"posix_spawnp") else {
        return libc::ENOSYS;
    };
    let name = cstr(file);
    if armed().is_none() || name.is_empty() {
        return spawnp(pid, file, actions, attr, argv, envp);
    }
    let mut buf = [0u8; 4200];
    let found = if has_slash(name) {
        Some(file)
    } else {
        search_path().split(|&b| b == b':').find_map(|dir| {
            let candidate = join(dir, name, &mut buf)?;
            runnable(candidate).then_some(candidate)
        })
    };
    match found {
        // The program found, spawned by path: judged as posix_spawn judges it.
        Some(path) => posix_spawn(pid, path, actions, attr, argv, envp),
        None => spawnp(pid, file, actions, attr, argv, envp),
    }
}

/// Whether `/bin/sh`, which system(3) and popen(3) start with their C library's own spawn,
/// where no wrapper can send it through memlock-run, is not a program the preload locks: then
/// it is refused, with a line saying why.
fn shell_refused() -> bool {
    let Some(armed) = armed() else {
        return false;
    };
    let at = At::cwd(c"/bin/sh".as_ptr());
    let mut loader = NO_LOADER_PATH;
    match judge(armed, at, process_env(), &mut loader) {
        Plan::Launcher(why) => {
            refuse(
                b"/bin/sh",
                &why,
                b"",
                0,
                "system(3) and popen(3) start it with their C library's own spawn, which cannot send it \
                 through memlock-run",
                "give this system a /bin/sh the preload reaches (dynamically linked glibc or musl)",
            );
            true
        }
        Plan::Direct | Plan::Fail(_) | Plan::Unjudged => false,
    }
}

/// `system(3)`: glibc's and musl's run `/bin/sh -c COMMAND` through a spawn of their own,
/// which no wrapper sees; so the shell is judged first. A shell the preload would miss is
/// refused: -1 with EPERM (for `system(NULL)`, 0: no shell to use).
///
/// # Safety
/// As system(3).
#[no_mangle]
pub unsafe extern "C" fn system(command: *const c_char) -> c_int {
    static NEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
    if shell_refused() {
        return if command.is_null() {
            0
        } else {
            failure(libc::EPERM, false)
        };
    }
    let f = next(&NEXT, c"system");
    if f.is_null() {
        return failure(libc::ENOSYS, false);
    }
    // SAFETY: the C library's system, whose type this is.
    let real: unsafe extern "C" fn(*const c_char) -> c_int =
        core::mem::transmute::<*mut c_void, _>(f);
    judged(true, || real(command))
}

/// `popen(3)`, judged as `system`: a refused shell gives NULL with EPERM.
///
/// # Safety
/// As popen(3).
#[no_mangle]
pub unsafe extern "C" fn popen(command: *const c_char, mode: *const c_char) -> *mut c_void {
    static NEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
    if shell_refused() {
        failure(libc::EPERM, false);
        return core::ptr::null_mut();
    }
    let f = next(&NEXT, c"popen");
    if f.is_null() {
        failure(libc::ENOSYS, false);
        return core::ptr::null_mut();
    }
    // SAFETY: the C library's popen, whose type this is (FILE * as an opaque pointer).
    let real: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void =
        core::mem::transmute::<*mut c_void, _>(f);
    let mut file = core::ptr::null_mut();
    judged(true, || {
        file = real(command, mode);
        0
    });
    file
}

/// A regular file this process may execute.
fn runnable(path: *const c_char) -> bool {
    // SAFETY: `st` is a valid out-pointer, `path` NUL-terminated.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, &mut st, 0) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && libc::syscall(libc::SYS_faccessat, libc::AT_FDCWD, path, libc::X_OK) == 0
    }
}

/// The variadic `execl`, `execle` and `execlp`: stable Rust cannot define a variadic
/// function, so each is a naked entry that stores the six argument registers beside the
/// caller's stack arguments and hands both to [`collect`] (x86-64 System V: the arguments
/// after the sixth are on the stack above the return address).
#[cfg(target_arch = "x86_64")]
mod variadic {
    use super::*;

    const EXECL: c_int = 0;
    const EXECLE: c_int = 1;
    const EXECLP: c_int = 2;

    macro_rules! entry {
        ($name:ident, $kind:expr) => {
            /// See `wrap.rs`.
            ///
            /// # Safety
            /// As the C function of this name: NULL-terminated arguments.
            #[unsafe(naked)]
            #[no_mangle]
            pub unsafe extern "C" fn $name(path: *const c_char, arg: *const c_char) -> c_int {
                core::arch::naked_asm!(
                    "push rbp",
                    "mov rbp, rsp",
                    "sub rsp, 48",
                    "mov [rsp], rsi",
                    "mov [rsp + 8], rdx",
                    "mov [rsp + 16], rcx",
                    "mov [rsp + 24], r8",
                    "mov [rsp + 32], r9",
                    "mov rsi, rsp",
                    "lea rdx, [rbp + 16]",
                    "mov ecx, {kind}",
                    "call {collect}",
                    "leave",
                    "ret",
                    kind = const $kind,
                    collect = sym collect,
                )
            }
        };
    }

    entry!(execl, EXECL);
    entry!(execle, EXECLE);
    entry!(execlp, EXECLP);

    /// Builds argv from the arguments after `path` (five in `regs`, the rest at `stack`),
    /// up to the null one; for execle, envp is the argument after that.
    unsafe extern "C" fn collect(
        path: *const c_char,
        regs: *const *const c_char,
        stack: *const *const c_char,
        kind: c_int,
    ) -> c_int {
        let arg = |i: usize| -> *const c_char {
            if i < 5 {
                *regs.add(i)
            } else {
                *stack.add(i - 5)
            }
        };
        let mut argc = 0;
        while !arg(argc).is_null() {
            argc += 1;
        }
        let envp = if kind == EXECLE {
            arg(argc + 1).cast::<*const c_char>()
        } else {
            process_env()
        };
        // On the stack up to 128 arguments: a vfork child shares its parent's memory, and
        // a mapping made there before a successful exec would stay in the parent.
        let mut small = [core::ptr::null::<c_char>(); 129];
        let mut _scratch = None;
        let argv: *mut *const c_char = if argc < small.len() {
            small.as_mut_ptr()
        } else {
            let Some(mut scratch) = Scratch::new((argc + 1) * core::mem::size_of::<usize>()) else {
                return failure(libc::ENOMEM, false);
            };
            let Some(slots) = scratch.slots(argc + 1) else {
                return failure(libc::ENOMEM, false);
            };
            _scratch = Some(scratch);
            slots
        };
        for i in 0..argc {
            *argv.add(i) = arg(i);
        }
        *argv.add(argc) = core::ptr::null();
        if kind == EXECLP {
            execvpe(path, argv.cast_const(), envp)
        } else {
            execve(path, argv.cast_const(), envp)
        }
    }
}

/// `name.contains(&b'/')`, which calls core's memchr: a debug build links that from the
/// prebuilt core, with its unwinding tables, which a shim without an unwinder cannot link.
#[allow(clippy::manual_contains)]
fn has_slash(name: &[u8]) -> bool {
    name.iter().any(|&b| b == b'/')
}
