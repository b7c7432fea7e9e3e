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
//! anything else fails with EPERM and one line on the failing process's own stderr (memlock-run's
//! where that cannot be written). The shim's wrappers send such
//! programs through memlock-run before they get here, so what the gate refuses is only what
//! a program executed past them.
//!
//! It models the kernel's exec (the path walk as the task, binfmt_misc, `#!`, the loader by
//! what it is, secure execution) rather than judging what the kernel loaded at each task's exec
//! event (PTRACE_EVENT_EXEC). That was considered and not chosen: it takes a tracer on every
//! process of the tree (one tracer a process: gdb, strace, a JVM's attach and memlock-run's own
//! ptrace method would conflict with it; Yama scope 1 forbids tracing what is not a
//! descendant), a stop for every exec and, to follow the tree, every fork; and at the exec
//! event the old image is gone, so a program that cannot be locked could only be killed, not
//! refused with an errno and a line its caller can act on. The model fails closed instead:
//! what it cannot judge (a bound reached, a file it cannot open as the task, two binfmt_misc
//! rules that both match) is refused with a line. The path walk is the kernel's own where that
//! is the task's walk (openat2 from the task's root or directory, no magic links, nothing on a
//! procfs: `walk::Walker::resolve`), a component at a time where it is not.
//!
//! What one judgement costs is what it asks of the kernel, about 25 system calls (the
//! inheritance section of bench/ counts the gate's CPU time): the task's status, its path
//! and environment (process_vm_readv, a page at a time), one walk each for the program, its
//! loader and the shim, the program's first page. The shim's word (protocol::GATE_WORD), a
//! second stop in the gate, is given only where the gate may not read the task
//! (protocol::GateReads, judged by the plan: `crate::plan::gate::reads`).
//!
//! What it reads of a task is bounded by what execve itself accepts, and never judged in part:
//! the environment a batch and a judged entry at a time, refused with a line (E2BIG) past
//! execve's bounds (`environment`); the shim's words in tables of fixed size, a word refused
//! when they are full (`words`). An error of the gate's own (no descriptor left) refuses too.
//!
//! The tree cannot reach it, as far as the kernel lets it say so: the gate is non-dumpable
//! from its fork (`undumpable`), so without CAP_SYS_PTRACE no process may trace it, read its
//! memory or take its listener (pidfd_getfd), which all need PTRACE_MODE_ATTACH over it; a
//! root gate keeps root's identity (it judges as each task, never as itself), out of reach of
//! a tree run with `--user`. Two things cannot be promised. A tree that holds CAP_SYS_PTRACE
//! (root's, without `--user`) reaches any process, the gate included. And a process of the
//! gate's own user (an unprivileged run's tree) may still signal it and lower its limits,
//! which ask for the user alone (kill(2), prlimit(2)): a killed gate fails every later exec
//! (ENOSYS), a stopped one holds them, a starved one refuses them; closed, never open. A gate
//! of its own user ID would take a privilege the unprivileged run does not have.
//!
//! Installing a filter needs CAP_SYS_ADMIN or no_new_privs: a run without the first sets the
//! second (see `crate::plan::Arming`, which the plan decides). Reading the memory of a non-dumpable process (--no-dump) or another
//! user's needs CAP_SYS_PTRACE: a gate without it takes the shim's word (protocol::GATE_WORD,
//! a prctl only this filter answers) for the execs and spawns the shim judged, and refuses an
//! execve system call such a process makes itself. It needs Linux 5.5
//! (SECCOMP_USER_NOTIF_FLAG_CONTINUE); where it cannot be armed, an inheriting run is refused
//! (`crate::plan::gate`), and when a filter of the tree already has a listener (a gate of an outer run),
//! that one answers. When every process of the tree has ended, the kernel says so to the gate
//! (POLLHUP), and it exits. If it is killed, the tree's execs fail (ENOSYS): closed; the shim
//! names the gate in the line of the next exec through libc that fails so (wrap/exec.rs). If it
//! is stopped (SIGSTOP), the tree's execs wait for it, and go on once it is continued.
//!
//! It goes by a name of its own, `memlock-gate` in `ps -o comm` and `pgrep`, and `memlock-run
//! exec gate for PID N` in `ps -o args` (`serve::take_name`); COMMAND's environment carries
//! its PID (protocol::GATE), which `--status` reads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use memlock_run_protocol::Config;

mod environment;
mod judge;
mod serve;
mod task;
mod walk;
mod words;

use crate::plan::gate::{NOTIF_SIZE, RESPONSE_SIZE};
use crate::plan::Arming;
use serve::gate_main;

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
/// `reads`: whose memory the gate will read, as the plan judged it (crate::plan::gate).
pub fn arm(
    context: Judgement,
    arming: Arming,
    reads: memlock_run_protocol::GateReads,
) -> Result<Option<Armed>> {
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
    // COMMAND keeps this process's PID.
    let command = std::process::id();
    let gate = undumpable(|| {
        crate::detached::spawn(|| {
            gate_main(theirs_raw, &context, command);
        })
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
        reads,
    }))
}

/// Runs `spawn` with this process non-dumpable, as what it forks is from its first instruction
/// (fork copies the flag): the gate is never dumpable, not even before it runs, so that the
/// tree, which may start first, cannot trace it or take its listener (pidfd_getfd) without
/// CAP_SYS_PTRACE. This process's own flag is restored after; its exec of COMMAND sets
/// COMMAND's anew in any case.
fn undumpable<T>(spawn: impl FnOnce() -> T) -> T {
    // SAFETY: prctl with integer arguments, on this single-threaded process.
    let was = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let spawned = spawn();
    if was > 0 {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, was, 0, 0, 0) };
    }
    spawned
}

/// A gate armed by this run.
pub struct Armed {
    pub pid: u32,
    /// What memlock-run's own exec of COMMAND carries past the filter (see `program`).
    pub cookie: u64,
    /// Whose memory the gate reads, for the shim (protocol::GATE).
    pub reads: memlock_run_protocol::GateReads,
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
