//! The exec gate: the programs COMMAND's tree executes with the execve system call itself,
//! which the shim's wrappers never see (Go's os/exec, static programs).
//!
//! Before exec, a run that passes the lock on installs a seccomp filter that turns every
//! execve and execveat of the tree into a user notification (seccomp_unotify(2)), answered by
//! a small process of memlock-run's own, started beside COMMAND (not its child). The gate
//! judges each exec by the rules the shim applies (`memlock_run_protocol::reach`), reading the
//! path and the environment from the calling task's memory and the file through the task's
//! own root and working directory: an image the preload will lock goes on
//! (SECCOMP_USER_NOTIF_FLAG_CONTINUE); memlock-run itself goes on (it judges what it runs);
//! anything else fails with EPERM and one line on stderr. The shim's wrappers send such
//! programs through memlock-run before they get here, so what the gate refuses is only what
//! a program executed past them.
//!
//! Installing a filter needs CAP_SYS_ADMIN or no_new_privs: a run without the first sets the
//! second (see `crate::plan::Arming`, which the plan decides). Reading the memory of a non-dumpable process (--no-dump) or another
//! user's needs CAP_SYS_PTRACE: a gate without it takes the shim's word (protocol::GATE_WORD,
//! a prctl only this filter answers) for the execs and spawns the shim judged, and refuses an
//! execve system call such a process makes itself. It needs Linux 5.5
//! (SECCOMP_USER_NOTIF_FLAG_CONTINUE); where it cannot be armed, an inheriting run is refused
//! (`crate::plan::gate`), and when a filter of the tree already has a listener (a gate of an outer run),
//! that one answers. When every process of the tree has ended, the kernel says so to the gate
//! (POLLHUP), and it exits. If it is killed, the tree's execs fail (ENOSYS): closed.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memlock_run_protocol::reach::{self, Format, Miss, SecureExecution};
use memlock_run_protocol::{Config, OnFailure};

use crate::elf;
use crate::host::procfs::{limits_of, status_field};
use crate::plan::gate::{NOTIF_SIZE, RESPONSE_SIZE};
use crate::plan::Arming;

// The notification and response this gate reads and writes are the kernel's, as the plan
// checked (SECCOMP_GET_NOTIF_SIZES) before arming it.
const _: () = assert!(std::mem::size_of::<Notif>() == NOTIF_SIZE as usize);
const _: () = assert!(std::mem::size_of::<Response>() == RESPONSE_SIZE as usize);

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32: u32 = 0x4000_0000;
const PRCTL: u32 = 157;

#[repr(C)]
#[derive(Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct Response {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// What the gate judges with.
pub struct Judgement {
    pub config: Config,
    /// The shim as LD_PRELOAD names it, and its device and inode.
    pub shim: PathBuf,
    pub shim_id: (u64, u64),
    /// memlock-run's own executable.
    pub launcher_id: (u64, u64),
}

/// Starts the gate and installs the filter in this process, which then execs COMMAND; None
/// when the tree already has a listener (an outer run's gate, which then answers for it).
pub fn arm(context: Judgement, arming: Arming) -> Result<Option<Armed>> {
    let mut pair = [0 as RawFd; 2];
    // SAFETY: socketpair fills two descriptors.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        bail!(
            "cannot create a socket for the exec gate: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: the two descriptors socketpair made, owned from here.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let theirs_raw = theirs.as_raw_fd();
    let gate = crate::ptrace::spawn_detached(|| {
        gate_main(theirs_raw, &context);
    })
    .context("cannot start the exec gate")?;
    drop(theirs);

    if arming == Arming::SetsNoNewPrivs {
        // SAFETY: prctl with integer arguments; inherited by every process of the tree.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            bail!(
                "cannot set no_new_privs, which an exec gate needs without CAP_SYS_ADMIN: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let mut cookie = [0u8; 8];
    // The system call, not glibc's wrapper (2.25), which the packages' glibc 2.17 lacks.
    // SAFETY: getrandom(2) fills the 8 bytes it is given.
    if unsafe { libc::syscall(libc::SYS_getrandom, cookie.as_mut_ptr(), cookie.len(), 0) } != 8 {
        bail!(
            "cannot draw a random value for the exec gate: {}",
            std::io::Error::last_os_error()
        );
    }
    let cookie = u64::from_ne_bytes(cookie);
    let filter = program(cookie);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: a filter program that outlives the call.
    let listener = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    if listener < 0 {
        let err = std::io::Error::last_os_error();
        // The gate reads end-of-file and exits.
        drop(ours);
        if err.raw_os_error() == Some(libc::EBUSY) {
            return Ok(None);
        }
        bail!("cannot install the exec gate's seccomp filter: {err}");
    }
    // SAFETY: the listener the kernel just made, owned from here.
    let listener = unsafe { OwnedFd::from_raw_fd(listener as RawFd) };
    // Queued for the gate, which may not have run yet: COMMAND's exec waits for its answer.
    send_fd(&ours, listener.as_raw_fd()).context("cannot hand the exec gate its listener")?;
    Ok(Some(Armed {
        pid: gate as u32,
        cookie,
    }))
}

/// A gate armed by this run.
pub struct Armed {
    pub pid: u32,
    /// What memlock-run's own exec of COMMAND carries past the filter (see `program`).
    pub cookie: u64,
}

/// execve and execveat, in the x86-64, x32 and i386 ABIs, and the shim's word (an x86-64
/// prctl whose option is GATE_WORD), to the listener; all else allowed. So is memlock-run's
/// own exec of COMMAND, which carries `cookie` in the sixth argument register (execve and
/// execveat ignore it): it need not wait for the gate to be up, and it is judged already.
fn program(cookie: u64) -> Vec<libc::sock_filter> {
    let ld = |k: u32| libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ret = |k: u32| libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // seccomp_data: nr at 0, arch at 4, argument N's low and high halves at 16 + 8N and
    // 20 + 8N (little-endian). A jump's offsets count from the next instruction.
    vec![
        ld(4),                                       // 0
        jeq(AUDIT_ARCH_X86_64, 0, 14),               // 1: else 16
        ld(0),                                       // 2
        jeq(59, 8, 0),                               // 3: execve -> 12
        jeq(322, 7, 0),                              // 4: execveat -> 12
        jeq(X32 | 520, 15, 0),                       // 5: x32 execve -> 21
        jeq(X32 | 545, 14, 0),                       // 6: x32 execveat -> 21
        jeq(PRCTL, 0, 12),                           // 7: else 20
        ld(16),                                      // 8
        jeq(memlock_run_protocol::GATE_WORD, 0, 10), // 9: else 20
        ld(20),                                      // 10
        jeq(0, 9, 8),                                // 11: the word -> 21, else 20
        ld(56),                                      // 12
        jeq(cookie as u32, 0, 7),                    // 13: else 21
        ld(60),                                      // 14
        jeq((cookie >> 32) as u32, 4, 5),            // 15: memlock-run's -> 20, else 21
        jeq(AUDIT_ARCH_I386, 0, 3),                  // 16: else 20
        ld(0),                                       // 17
        jeq(11, 2, 0),                               // 18: execve -> 21
        jeq(358, 1, 0),                              // 19: execveat -> 21
        ret(SECCOMP_RET_ALLOW),                      // 20
        ret(SECCOMP_RET_USER_NOTIF),                 // 21
    ]
}

/// A one-byte message with room for one descriptor (SCM_RIGHTS): its iovec and control
/// buffer live in the caller's frame, so the pointers stay valid for sendmsg and recvmsg.
fn fd_message(byte: &mut [u8; 1], iov: &mut libc::iovec, control: &mut Vec<u8>) -> libc::msghdr {
    *iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is a size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    control.resize(space, 0);
    // SAFETY: a zeroed msghdr is valid; its pointers are set to the caller's buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    msg
}

fn send_fd(socket: &OwnedFd, fd: RawFd) -> std::io::Result<()> {
    let (mut byte, mut control) = ([b'f'], Vec::new());
    let mut iov = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let msg = fd_message(&mut byte, &mut iov, &mut control);
    // SAFETY: the control buffer has room for one descriptor (CMSG_SPACE).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(socket.as_raw_fd(), &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn recv_fd(socket: RawFd) -> Option<OwnedFd> {
    let (mut byte, mut control) = ([0u8], Vec::new());
    let mut iov = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut msg = fd_message(&mut byte, &mut iov, &mut control);
    // SAFETY: recvmsg into the buffers above; the descriptor is read only if one came.
    unsafe {
        if libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) != 1 {
            return None;
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// The gate's life: its own session (a terminal's signals are COMMAND's), no descriptor of
/// memlock-run's but stderr, then one answer per exec until the tree has ended.
fn gate_main(socket: RawFd, context: &Judgement) {
    // SAFETY: setsid, signal dispositions and descriptor plumbing in a fresh single-threaded
    // process that runs nothing else.
    let socket = unsafe {
        libc::setsid();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Above the standard three (memlock-run may have been started with one closed, and
        // then the socket took its number), which become /dev/null and stderr.
        let moved = libc::fcntl(socket, libc::F_DUPFD_CLOEXEC, 3);
        if moved < 0 {
            libc::_exit(0);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if socket == 2 {
                libc::dup2(null, 2);
            }
        }
        // Everything else goes: a pipe held open here would keep its reader waiting.
        if moved > 3 {
            libc::syscall(libc::SYS_close_range, 3, moved - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, moved + 1, u32::MAX, 0);
        libc::chdir(c"/".as_ptr());
        moved
    };
    let stderr = Stderr::open();
    let Some(listener) = recv_fd(socket) else {
        // SAFETY: ends the gate.
        unsafe { libc::_exit(0) }
    };
    // SAFETY: the socket is ours, and done with.
    unsafe { libc::close(socket) };
    serve(&listener, context, &stderr);
    // SAFETY: ends the gate.
    unsafe { libc::_exit(0) }
}

/// The tree's stderr, written without ever blocking on a reader that has stopped reading
/// (that would stall every exec of the tree behind a refusal's line). A pipe or terminal is
/// opened again, on its own with O_NONBLOCK (setting it on the shared descriptor would change
/// COMMAND's stderr too); a socket (systemd's journal) is sent to with MSG_DONTWAIT; a regular
/// file, which does not block, is written through descriptor 2 itself (opened again it would
/// have an offset of its own, and overwrite the file).
enum Stderr {
    Shared,
    Reopened(File),
    Socket,
}

impl Stderr {
    fn open() -> Stderr {
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let Ok(meta) = fs::metadata("/proc/self/fd/2") else {
            return Stderr::Shared;
        };
        let kind = meta.file_type();
        if kind.is_socket() {
            return Stderr::Socket;
        }
        if kind.is_fifo() || kind.is_char_device() {
            if let Ok(file) = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open("/proc/self/fd/2")
            {
                return Stderr::Reopened(file);
            }
        }
        Stderr::Shared
    }

    fn line(&self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\n');
        match self {
            Stderr::Reopened(file) => {
                let _ = (&*file).write(&bytes);
            }
            // SAFETY: send(2) on descriptor 2 with a valid buffer.
            Stderr::Socket => unsafe {
                libc::send(2, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT);
            },
            Stderr::Shared => {
                let _ = std::io::stderr().write_all(&bytes);
            }
        }
    }
}

fn serve(listener: &OwnedFd, context: &Judgement, stderr: &Stderr) {
    let mut words = Words::default();
    loop {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more.
            return;
        }
        let mut notif = Notif::default();
        // SAFETY: the kernel fills a zeroed notification of its own size (checked).
        if unsafe { libc::ioctl(listener.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } != 0 {
            // The task went away meanwhile (ENOENT), or a signal: next.
            continue;
        }
        if notif.data.arch == AUDIT_ARCH_X86_64 && notif.data.nr as u32 == PRCTL {
            // The shim's word: noted, and its prctl returns 0 (no CONTINUE: no kernel knows it).
            words.note(notif.pid as i32, notif.data.args[1]);
            respond(listener, notif.id, 0, 0);
            continue;
        }
        let announced = words.take_exec(notif.pid as i32);
        let error = match decide(&notif, context, || {
            announced || words.take_spawned(notif.pid as i32)
        }) {
            Ok(()) => 0,
            Err(Refusal {
                line: Some((subject, why)),
                ..
            }) if context.config.on_failure == OnFailure::Warn => {
                stderr.line(&format!(
                    "memlock-run: warning: {subject} runs unlocked (--on-failure warn): {why}"
                ));
                0
            }
            Err(refusal) => {
                if let Some((subject, why)) = refusal.line {
                    stderr.line(&format!("memlock-run: not executing {subject}: {why}"));
                }
                -refusal.errno
            }
        };
        let flags = if error == 0 {
            SECCOMP_USER_NOTIF_FLAG_CONTINUE
        } else {
            0
        };
        respond(listener, notif.id, error, flags);
    }
}

/// Answers a notification: CONTINUE (the call goes on), or the call returns 0 or -error.
fn respond(listener: &OwnedFd, id: u64, error: i32, flags: u32) {
    let mut response = Response {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: a response for a notification received; the kernel drops one whose task has gone.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SEND,
            &mut response,
        )
    };
}

/// What the shim said (protocol::GATE_WORD): the threads whose next exec it judged, and the
/// processes with spawns under way, each with its start time (a reused PID is not them).
#[derive(Default)]
struct Words {
    execs: std::collections::HashMap<i32, u64>,
    spawns: std::collections::HashMap<i32, Spawns>,
}

/// A process's spawns under way: `open` said begun and not yet returned; `children`, the
/// execs of spawned children still to come, one per spawn (a spawn's child execs once), so
/// that another child of the process cannot pass for one while a long system(3) runs.
struct Spawns {
    started: u64,
    open: u32,
    children: u32,
}

impl Words {
    /// At most this many of each: a tree that says more than it execs is trimmed to the living.
    const MOST: usize = 4096;

    fn note(&mut self, tid: i32, word: u64) {
        let Some(started) = start_time(tid) else {
            return;
        };
        match word {
            memlock_run_protocol::GATE_EXEC => {
                if self.execs.len() >= Self::MOST {
                    self.execs.retain(|&t, &mut s| start_time(t) == Some(s));
                }
                self.execs.insert(tid, started);
            }
            memlock_run_protocol::GATE_SPAWN | memlock_run_protocol::GATE_SPAWNED => {
                let Some(process) = tgid_of(tid) else {
                    return;
                };
                let Some(started) = start_time(process) else {
                    return;
                };
                if self.spawns.len() >= Self::MOST {
                    self.spawns
                        .retain(|&p, spawns| start_time(p) == Some(spawns.started));
                }
                let fresh = Spawns {
                    started,
                    open: 0,
                    children: 0,
                };
                let entry = self.spawns.entry(process).or_insert(fresh);
                if entry.started != started {
                    *entry = Spawns {
                        started,
                        open: 0,
                        children: 0,
                    };
                }
                if word == memlock_run_protocol::GATE_SPAWN {
                    entry.open += 1;
                    entry.children += 1;
                } else {
                    entry.open = entry.open.saturating_sub(1);
                    if entry.open == 0 {
                        self.spawns.remove(&process);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether the shim said that this thread's exec, now, was judged (said once per exec).
    fn take_exec(&mut self, tid: i32) -> bool {
        self.execs
            .remove(&tid)
            .is_some_and(|started| start_time(tid) == Some(started))
    }

    /// Whether the calling task is a spawn's child (its own process, its parent's memory)
    /// whose parent, the same process as when it said so, has a spawn under way whose child
    /// has not executed yet; that one is then taken.
    fn take_spawned(&mut self, tid: i32) -> bool {
        let Some(parent) = status_field(tid, "PPid").and_then(|p| p.parse::<i32>().ok()) else {
            return false;
        };
        match self.spawns.get_mut(&parent) {
            Some(spawns) if spawns.children > 0 && start_time(parent) == Some(spawns.started) => {
                spawns.children -= 1;
                true
            }
            _ => false,
        }
    }
}

/// A task's start time (field 22 of /proc/PID/stat, readable whatever the task's dumpable flag).
fn start_time(tid: i32) -> Option<u64> {
    stat_start_time(&fs::read_to_string(format!("/proc/{tid}/stat")).ok()?)
}

/// Field 22 of a /proc/PID/stat text.
fn stat_start_time(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold anything: fields are counted after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn tgid_of(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid")?.parse().ok()
}

/// What the gate knows of a task that asks to exec, read once per exec from its
/// /proc/TID/status and stat (readable whatever its dumpable flag).
struct Task {
    tid: i32,
    /// Effective user and group IDs.
    uid: u32,
    gid: u32,
    /// Its process and thread IDs in each PID namespace it is in, outermost first (NStgid,
    /// NSpid; one level before Linux 4.1, which has neither): a /proc shows those of its own.
    levels: Vec<(u32, u32)>,
    /// Its start time, by which its directory in a /proc is known.
    started: u64,
}

impl Task {
    /// None when the task has gone.
    fn read(tid: i32) -> Option<Task> {
        let status = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
        let field = |name: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (tgids, tids) = (field("NStgid"), field("NSpid"));
        let levels = if !tgids.is_empty() && tgids.len() == tids.len() {
            tgids.into_iter().zip(tids).collect()
        } else {
            vec![(*field("Tgid").first()?, tid as u32)]
        };
        Some(Task {
            tid,
            uid: *field("Uid").get(1)?,
            gid: *field("Gid").get(1)?,
            levels,
            started: start_time(tid)?,
        })
    }
}

/// setfsuid/setfsgid to a task's effective IDs while alive; root's again when dropped.
struct FsIdentity;

impl FsIdentity {
    fn of(task: &Task) -> FsIdentity {
        // SAFETY: setfsgid and setfsuid change this thread's filesystem IDs only.
        unsafe {
            libc::setfsgid(task.gid);
            libc::setfsuid(task.uid);
        }
        FsIdentity
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // SAFETY: as above, back to the gate's own IDs.
        unsafe {
            libc::setfsuid(libc::geteuid());
            libc::setfsgid(libc::getegid());
        }
    }
}

/// An exec the gate does not let go on: ENOEXEC in silence (what the kernel would say), or
/// EPERM with a line naming the program (`subject`) and `why`; under --on-failure warn the
/// latter goes on, unlocked, with the line.
struct Refusal {
    errno: i32,
    line: Option<(String, String)>,
}

/// `judged_by_shim` says whether the shim judged this exec first (protocol::GATE_WORD); it is
/// asked only where what the caller names cannot be read.
fn decide(
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
    // memlock-run judges what it executes itself.
    if id_of(&proc.join("exe")) == Some(context.launcher_id) {
        return Ok(());
    }
    // Gone: its exec is gone with it.
    let Some(task) = Task::read(pid) else {
        return Ok(());
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
        Opened::File(file) => {
            if id_of_file(&file) == Some(context.launcher_id) {
                return Ok(());
            }
            match judge(&task, file, 0) {
                Judged::Kernel => return Ok(()),
                Judged::NotExecutable => {
                    return Err(Refusal {
                        errno: libc::ENOEXEC,
                        line: None,
                    })
                }
                Judged::Reaches => match environment(&task, env_at, wide, context) {
                    Ok(()) => return Ok(()),
                    Err(why) => why,
                },
                Judged::Misses(why) => why,
            }
        }
    };
    let caller = comm(&proc);
    Err(Refusal {
        errno: libc::EPERM,
        line: Some((
            format!(
                "{} (from pid {pid}, {caller})",
                crate::printable(&String::from_utf8_lossy(&path))
            ),
            format!(
                "{why}, so the preload cannot lock it, and {caller} made the execve system call itself, past the \
                 shim (as Go's os/exec and static programs do), where memlock-run cannot lock it another way; start \
                 it through memlock-run (a wrapper script that execs memlock-run -- PROGRAM), or start the run with \
                 --no-inherit if only COMMAND must be locked"
            ),
        )),
    })
}

/// A task's command name, printable, for a line about it.
fn comm(proc: &Path) -> String {
    fs::read_to_string(proc.join("comm"))
        .map(|c| crate::printable(c.trim()))
        .unwrap_or_else(|_| "?".into())
}

enum Opened {
    /// Missing, or refused by the kernel as well: nothing runs.
    Kernel,
    /// The task may execute it but not read it: nothing can judge it.
    Unreadable,
    File(File),
}

/// Opens the file a task's exec names as the task would: from its root, working directory or
/// descriptor (through /proc), walking the path a component at a time (`walk`) so that
/// absolute symlinks resolve in the task's root and /proc/self and /proc/thread-self name
/// the task, not the gate; with the task's filesystem identity (what the task may not open,
/// the gate does not read for it); without blocking (a FIFO put in its place must not stall
/// the gate), and regular files only.
fn open_as_task(task: &Task, dirfd: i32, flags: i32, path: &[u8]) -> Opened {
    use std::os::unix::fs::OpenOptionsExt;
    let proc = PathBuf::from(format!("/proc/{}", task.tid));
    let open_dir = |path: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
    };
    // The task has gone: nothing runs. Its root, working directory or descriptor withheld
    // from the gate: nothing can judge what it names.
    let withheld = |err: std::io::Error| {
        if matches!(err.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
            Opened::Unreadable
        } else {
            Opened::Kernel
        }
    };
    if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        // The task's own descriptor: what it holds, it may run.
        return match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(proc.join("fd").join(dirfd.to_string()))
        {
            Ok(file) => Opened::File(file),
            Err(_) => Opened::Kernel,
        };
    }
    let walker = match Walker::of(task) {
        Ok(walker) => walker,
        Err(err) => return withheld(err),
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
            Err(err) => return withheld(err),
        }
    };
    let _as_task = FsIdentity::of(task);
    let found = match walker.walk(start, path, flags & libc::AT_SYMLINK_NOFOLLOW != 0) {
        Ok(found) => found,
        // A per-process link of /proc the gate may not follow (the task may: its own).
        Err(err) if err.kind() == std::io::ErrorKind::Other => return Opened::Unreadable,
        // Missing, or not for the task to reach: its exec fails as well.
        Err(_) => return Opened::Kernel,
    };
    // Only a regular file is executed (EACCES otherwise); a device or FIFO is not opened.
    if !found.metadata().is_ok_and(|m| m.is_file()) {
        return Opened::Kernel;
    }
    // Opened again for reading, through the gate's own descriptor, as the task's identity.
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/self/fd/{}", found.as_raw_fd()))
    {
        Ok(file) => Opened::File(file),
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
            if runnable {
                Opened::Unreadable
            } else {
                Opened::Kernel
            }
        }
        Err(_) => Opened::Kernel,
    }
}

/// A path walk done as a task's would be: from its root, with what /proc/self and
/// /proc/thread-self name for it.
struct Walker<'a> {
    root: File,
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
    fn walk(&self, start: Option<File>, path: &[u8], nofollow: bool) -> std::io::Result<File> {
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
            if name == b".." && id_of_file(&dir) == id_of_file(&self.root) {
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
    fn of(task: &Task) -> std::io::Result<Walker<'_>> {
        use std::os::unix::fs::OpenOptionsExt;
        let root = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(format!("/proc/{}/root", task.tid))?;
        Ok(Walker { root, task })
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
            (stat_start_time(&text) == Some(self.task.started)).then(|| target.into_bytes())
        })
    }
}

/// A path's components, empty ones (repeated slashes) left out.
fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}

/// openat(2) of one name in `dir`.
fn open_at(dir: &File, name: &[u8], flags: i32) -> std::io::Result<File> {
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
fn on_procfs(dir: &File) -> bool {
    const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;
    // SAFETY: fstatfs into a zeroed statfs.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::fstatfs(dir.as_raw_fd(), &mut st) == 0 && st.f_type == PROC_SUPER_MAGIC
    }
}

enum Judged {
    /// The kernel refuses it, or it is not there: nothing runs.
    Kernel,
    /// Neither ELF nor #!: ENOEXEC, as the shim says.
    NotExecutable,
    Reaches,
    /// The rung of the ladder, said (its summary).
    Misses(String),
}

/// A rung's summary, for the gate's line.
fn summary(miss: Miss) -> String {
    let mut text = String::new();
    let _ = miss.write_summary(&mut text);
    text
}

fn judge(task: &Task, mut opened: File, depth: usize) -> Judged {
    let Ok(meta) = opened.metadata() else {
        return Judged::Kernel;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Judged::Kernel;
    }
    let mut head = [0u8; reach::HEAD_SIZE];
    let len = match opened.read(&mut head) {
        Ok(len) => len,
        Err(_) => return Judged::Misses(summary(Miss::Unreadable)),
    };
    let head = &head[..len];
    match reach::format(head) {
        Format::Other => Judged::NotExecutable,
        Format::Script => {
            let Some(interpreter) = reach::script_interpreter(head) else {
                return Judged::NotExecutable;
            };
            if depth > 0 {
                return Judged::Misses(summary(Miss::NestedScript));
            }
            match open_as_task(task, libc::AT_FDCWD, 0, interpreter) {
                Opened::File(file) => judge(task, file, depth + 1),
                Opened::Unreadable => Judged::Misses(summary(Miss::InterpreterUnreadable)),
                Opened::Kernel => Judged::Kernel,
            }
        }
        Format::Elf => {
            let path = PathBuf::from(format!("/proc/self/fd/{}", opened.as_raw_fd()));
            let Ok(Some(info)) = elf::read(&path) else {
                return Judged::Misses(summary(Miss::Malformed));
            };
            let interp = info.interpreter.as_ref().map(|p| p.as_os_str().as_bytes());
            if let Err(miss) =
                reach::judge_image(info.identity.into(), interp, reach::Identity::NATIVE)
            {
                return Judged::Misses(summary(miss));
            }
            let set_id = meta.mode() & (libc::S_ISUID | libc::S_ISGID) != 0;
            let capabilities = xattr_present(&path);
            if set_id || capabilities {
                // Refused whoever executes it, which is coarser than the kernel's rule (issue
                // 19: judge it for the calling task); the line names the kernel's rule where
                // it applies, and says where it does not.
                let file = SecureExecution {
                    mode: meta.mode(),
                    owner: meta.uid(),
                    group: meta.gid(),
                    uid: task.uid,
                    gid: task.gid,
                    file_capabilities: capabilities,
                    nosuid: nix::sys::statvfs::statvfs(&path)
                        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID)),
                };
                return Judged::Misses(summary(file.miss().unwrap_or(Miss::SetIdUnjudged)));
            }
            Judged::Reaches
        }
    }
}

fn id_of_file(file: &File) -> Option<(u64, u64)> {
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn xattr_present(file: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(file.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path and name; size 0 asks for the size only.
    unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        ) >= 0
    }
}

/// The environment the task hands the new image, by the shim's rule; the shim at its path
/// under the task's root; no finite RLIMIT_AS (where ld.so may skip the shim).
fn environment(task: &Task, env_at: u64, wide: bool, context: &Judgement) -> Result<(), String> {
    let pid = task.tid;
    let entries =
        read_environment(pid, env_at, wide).ok_or_else(|| summary(Miss::EnvironmentUnreadable))?;
    reach::carries_shim(
        entries.iter().map(Vec::as_slice),
        context.shim.as_os_str().as_bytes(),
        &context.config,
    )
    .map_err(summary)?;
    // As the task's ld.so will find it: absolute symlinks in the task's root.
    let shim = Walker::of(task).ok().and_then(|walker| {
        let _as_task = FsIdentity::of(task);
        walker
            .walk(None, context.shim.as_os_str().as_bytes(), false)
            .ok()
    });
    if shim.as_ref().and_then(id_of_file) != Some(context.shim_id) {
        return Err(summary(Miss::ShimElsewhere));
    }
    if let Some((soft, _)) = limits_of(pid, libc::RLIMIT_AS) {
        if soft != libc::RLIM_INFINITY {
            return Err(summary(Miss::AddressSpaceLimited));
        }
    }
    Ok(())
}

fn id_of(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Bytes of another process's memory.
fn read_memory(pid: i32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one local buffer of its length; the remote range is the kernel's to check.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n.max(0) as usize
}

/// A NUL-terminated string of another process, read a page at most at a time (a read
/// across into an unmapped page fails as a whole).
fn read_string(pid: i32, mut addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < max {
        let room = 4096 - (addr % 4096) as usize;
        let mut chunk = vec![0u8; room.min(max - out.len()).max(1)];
        let n = read_memory(pid, addr, &mut chunk);
        if n == 0 {
            return None;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(out);
        }
        out.extend_from_slice(&chunk[..n]);
        addr += n as u64;
    }
    None
}

/// The entries of another process's environment array that the shim's rule reads
/// (`LD_PRELOAD`, `MEMLOCK_RUN_*`): the pointers a page at a time, the first bytes of every
/// string in one call, and only those entries whole.
fn read_environment(pid: i32, mut at: u64, wide: bool) -> Option<Vec<Vec<u8>>> {
    const HEAD: usize = 12;
    let width = if wide { 8 } else { 4 };
    let mut pointers = Vec::new();
    'array: while at != 0 && pointers.len() < 100_000 {
        let mut page = vec![0u8; 4096 - (at % 4096) as usize];
        let n = read_memory(pid, at, &mut page);
        if n < width {
            return None;
        }
        for word in page[..n - n % width].chunks_exact(width) {
            let ptr = if wide {
                u64::from_le_bytes(word.try_into().ok()?)
            } else {
                u64::from(u32::from_le_bytes(word.try_into().ok()?))
            };
            if ptr == 0 {
                break 'array;
            }
            pointers.push(ptr);
        }
        at += (n - n % width) as u64;
    }
    let mut heads = vec![[0u8; HEAD]; pointers.len()];
    let mut entries = Vec::new();
    for (chunk, ptrs) in heads.chunks_mut(512).zip(pointers.chunks(512)) {
        let local: Vec<libc::iovec> = chunk
            .iter_mut()
            .map(|h| libc::iovec {
                iov_base: h.as_mut_ptr().cast(),
                iov_len: HEAD,
            })
            .collect();
        let remote: Vec<libc::iovec> = ptrs
            .iter()
            .map(|&p| libc::iovec {
                iov_base: p as *mut libc::c_void,
                iov_len: HEAD,
            })
            .collect();
        // SAFETY: local buffers of HEAD bytes each; the remote ranges are the kernel's to check.
        let n = unsafe {
            libc::process_vm_readv(
                pid,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        let whole = n >= 0 && n as usize == HEAD * ptrs.len();
        for (head, &ptr) in chunk.iter().zip(ptrs) {
            // A string near the end of its mapping fails the batch: read that one alone.
            let relevant = if whole {
                head.starts_with(b"LD_PRELOAD=") || head.starts_with(b"MEMLOCK_RUN_")
            } else {
                true
            };
            if relevant {
                let entry = read_string(pid, ptr, 128 * 1024)?;
                if entry.starts_with(b"LD_PRELOAD=") || entry.starts_with(b"MEMLOCK_RUN_") {
                    entries.push(entry);
                }
            }
        }
    }
    Some(entries)
}
