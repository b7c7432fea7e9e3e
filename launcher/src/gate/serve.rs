//! The gate's process: its own session and descriptors, then one answer per notification
//! until the tree has ended.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use memlock_run_protocol::OnFailure;

use super::judge::{decide, Refusal};
use super::words::{Refused, Words};
use super::{
    recv_fd, Judgement, Notif, Response, AUDIT_ARCH_X86_64, PRCTL, SECCOMP_IOCTL_NOTIF_RECV,
    SECCOMP_IOCTL_NOTIF_SEND, SECCOMP_USER_NOTIF_FLAG_CONTINUE,
};
use crate::host::procfs::{read_whole_at_once, status_field};

/// The gate's life: its own session (a terminal's signals are COMMAND's) and name, no
/// descriptor of memlock-run's but stderr, then one answer per exec until the tree has ended.
/// `command`: COMMAND's PID, which its name gives.
pub(super) fn gate_main(socket: RawFd, context: &Judgement, command: u32) {
    take_name(command);
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

/// Gives the gate a name of its own in place of memlock-run's command line, which is COMMAND's
/// (`pgrep -f` of COMMAND's would find both, and `pkill -f` kill both): the comm
/// protocol::GATE_NAME, and `memlock-run exec gate for PID N` as its command line (`ps -o
/// args`, `pgrep -f`, /proc/PID/cmdline).
///
/// The command line is written over the argument strings in place (setproctitle's way),
/// running on into the environment's strings, which follow them and which the gate never
/// reads again (it clears its environment first): nothing to exec, so the gate starts no
/// later and keeps its identity and its dumpable flag exactly as forked. A line longer than
/// that room would need PR_SET_MM (CAP_SYS_RESOURCE) or a re-exec of memlock-run (a second
/// image to load on the launch path, a dumpable window before it could set the flag again,
/// the judgement to serialise). Linux reads a command line whose arguments' last byte is not
/// NUL up to the first NUL (at most a page), and the arguments as they are otherwise; both
/// end at the title here. Where arguments and environment together are shorter than the
/// title (`env -i memlock-run true`), it is cut short; the comm is whole either way.
fn take_name(command: u32) {
    let mut comm = [0u8; 16];
    for (slot, b) in comm
        .iter_mut()
        .zip(memlock_run_protocol::GATE_NAME.bytes().take(15))
    {
        *slot = b;
    }
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr(), 0, 0, 0) };
    let Some((args, args_end, env, env_end)) = fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(stat_areas)
    else {
        return;
    };
    let end = if env == args_end && env_end > env {
        env_end
    } else {
        args_end
    };
    let room = end.saturating_sub(args).min(4096);
    let args_len = args_end.saturating_sub(args);
    if room == 0 || args_len == 0 {
        return;
    }
    let title = format!("memlock-run exec gate for PID {command}");
    let len = title.len().min(room - 1);
    // SAFETY: the gate is single-threaded and never reads its environment: clearenv drops
    // libc's pointers into the strings about to be overwritten. [args, end) is this process's
    // own argument and environment strings, writable, as the kernel laid them out at exec.
    unsafe {
        if end > args_end {
            libc::clearenv();
        }
        let base = args as *mut u8;
        std::ptr::write_bytes(base, 0, room);
        std::ptr::copy_nonoverlapping(title.as_ptr(), base, len);
        if len + 1 < args_len {
            // The arguments' last byte not NUL: the kernel stops at the title's NUL.
            *base.add(args_len - 1) = b' ';
        }
    }
}

/// arg_start, arg_end, env_start and env_end: fields 48 to 51 of a /proc/self/stat text.
pub(super) fn stat_areas(stat: &str) -> Option<(usize, usize, usize, usize)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3.
    let mut fields = rest
        .split_whitespace()
        .skip(48 - 3)
        .map(str::parse::<usize>);
    Some((
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ))
}

/// Writes `text` on the stderr of the process of task `pid`, whose exec the gate refuses or
/// warns about, so that the line shows where that process's own messages show (a tmux pane,
/// a service's log), not only where memlock-run was started. True when written.
///
/// The gate takes the process's descriptor 2 itself (pidfd_getfd(2), Linux 5.6; a root gate,
/// or one of the process's user while it is dumpable) rather than opening /proc/PID/fd/2 by
/// path: the description the process opened, with its access mode, so that a root gate writes
/// nothing the process could not write itself. It never blocks: a regular file is written
/// through that description (its offset and O_APPEND are the process's, as if it wrote the
/// line); a socket with MSG_DONTWAIT; a pipe or terminal is opened again with O_NONBLOCK, only
/// where the process's description is open for writing. Anything else, or a descriptor that
/// cannot be taken, leaves the line to memlock-run's stderr.
fn task_stderr_line(pid: u32, text: &str) -> bool {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // A thread's descriptor table is its process's (pidfd_open takes a thread group leader).
    let Some(tgid) = status_field(pid as i32, "Tgid").and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: pidfd_open with a PID and no flags returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tgid, 0) };
    if pidfd < 0 {
        return false;
    }
    // SAFETY: a descriptor just returned, owned here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd of descriptor 2 returns a new descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), 2, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: a descriptor just returned, owned here.
    let taken = unsafe { File::from_raw_fd(fd as RawFd) };
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(b'\n');
    // SAFETY: F_GETFL on a descriptor of ours.
    let mode = unsafe { libc::fcntl(taken.as_raw_fd(), libc::F_GETFL) };
    if mode < 0 || mode & libc::O_ACCMODE == libc::O_RDONLY {
        return false;
    }
    let Ok(meta) = taken.metadata() else {
        return false;
    };
    let kind = meta.file_type();
    let written = if kind.is_file() {
        (&taken).write(&bytes).ok()
    } else if kind.is_socket() {
        // SAFETY: send(2) on a descriptor of ours with a valid buffer.
        let n = unsafe {
            libc::send(
                taken.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT,
            )
        };
        usize::try_from(n).ok()
    } else if kind.is_fifo() || kind.is_char_device() {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(format!("/proc/self/fd/{}", taken.as_raw_fd()))
            .and_then(|mut file| file.write(&bytes))
            .ok()
    } else {
        None
    };
    written == Some(bytes.len())
}

/// The tree's stderr, written without ever blocking on a reader that has stopped reading
/// (that would stall every exec of the tree behind a refusal's line). A pipe or terminal is
/// opened again, on its own with O_NONBLOCK (setting it on the shared descriptor would change
/// COMMAND's stderr too); a socket (systemd's journal) is sent to with MSG_DONTWAIT; a regular
/// file, which does not block, is written through descriptor 2 itself (opened again it would
/// have an offset of its own, and overwrite the file).
pub(super) enum Stderr {
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

    /// A line about task `pid`'s exec, on that process's own stderr where it can be written
    /// there, else on memlock-run's (see [`task_stderr_line`]).
    fn line_for(&self, pid: u32, text: &str) {
        if !task_stderr_line(pid, text) {
            self.line(text);
        }
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

pub(super) fn serve(listener: &OwnedFd, context: &Judgement, stderr: &Stderr) {
    let mut words = Words::default();
    let mut said_full = false;
    // Linux 6.6: the kernel switches from a notifying task straight to this gate on the same
    // CPU, and back on the answer, instead of waking each other through the scheduler, which on
    // a busy machine waits for a CPU both ways. Older kernels say EINVAL: wakeups as before.
    // SAFETY: an ioctl on the listener with a u64 of flags.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
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
            // The shim's word: noted, and its prctl returns 0 (no CONTINUE: no kernel knows
            // it), or fails with ENOSPC when its table is full (see `words`).
            let error = match words.note(notif.pid as i32, notif.data.args[1]) {
                Err(Refused::Full) => {
                    if !said_full {
                        said_full = true;
                        stderr.line_for(notif.pid, &Words::full_line());
                    }
                    -libc::ENOSPC
                }
                _ => 0,
            };
            respond(listener, notif.id, error, 0);
            continue;
        }
        let announced = words.take_exec(notif.pid as i32);
        let error = match decide(&notif, context, || {
            announced || words.take_spawned(notif.pid as i32)
        }) {
            Ok(()) => 0,
            // E2BIG: past execve's own bounds, which --on-failure warn cannot let run.
            Err(Refusal {
                line: Some((subject, why)),
                errno,
            }) if context.config.on_failure == OnFailure::Warn && errno != libc::E2BIG => {
                stderr.line_for(
                    notif.pid,
                    &format!(
                        "memlock-run: warning: {subject} runs unlocked (--on-failure warn): {why}"
                    ),
                );
                0
            }
            Err(refusal) => {
                if let Some((subject, why)) = refusal.line {
                    stderr.line_for(
                        notif.pid,
                        &format!("memlock-run: not executing {subject}: {why}"),
                    );
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
/// `SECCOMP_IOW(4, __u64)`: sets flags of a listener (Linux 6.6).
const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

pub(super) fn respond(listener: &OwnedFd, id: u64, error: i32, flags: u32) {
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

/// A task's start time (field 22 of /proc/PID/stat, readable whatever the task's dumpable flag).
/// The thread's own stat (task/TID), whose figures are its alone: /proc/TID/stat sums them over
/// every thread of its process, which costs the gate a pass over all of them per read.
pub(super) fn start_time(tid: i32) -> Option<u64> {
    stat_start_time(&read_whole_at_once(format!("/proc/{tid}/task/{tid}/stat")).ok()?)
}

/// Field 22 of a /proc/PID/stat text.
pub(super) fn stat_start_time(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold anything: fields are counted after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(super) fn tgid_of(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_areas_of_the_command_line_and_environment_follow_a_name_with_spaces() {
        // Fields 3 to 47, then arg_start, arg_end, env_start, env_end, exit_code.
        let middle = (3..48).map(|n| n.to_string()).collect::<Vec<_>>().join(" ");
        let stat = format!("7 (a) b (c)) {middle} 1000 1030 1030 1100 0\n");
        assert_eq!(stat_areas(&stat), Some((1000, 1030, 1030, 1100)));
        assert_eq!(stat_areas("7 (a) S 1 2"), None);
    }

    #[test]
    fn this_process_has_its_areas() {
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        let (args, args_end, env, env_end) = stat_areas(&stat).unwrap();
        assert!(args < args_end && args_end <= env && env <= env_end);
    }
}
