//! Locking at exec time: a helper process traces memlock-run through its execve(2) of
//! COMMAND and injects the lock into the new image before its first instruction.
//!
//! COMMAND must keep memlock-run's PID and see nothing of the helper: no SIGCHLD, no zombie,
//! no child it did not make. So the helper is a grandchild (memlock-run forks, the child
//! forks the helper and exits at once, memlock-run reaps the child), and belongs to whoever
//! adopts orphans, never to COMMAND. The two talk over close-on-exec pipes:
//!
//! ```text
//! memlock-run (becomes COMMAND)             helper (grandchild, own session)
//!   fork ─ child: fork, _exit(0)
//!   waitpid(child)                     ◀──  "PID\n"
//!   PR_SET_PTRACER(PID) (Yama scope 1)
//!   "g"                                ──▶  PTRACE_SEIZE(memlock-run, TRACEEXEC|EXITKILL|TRACESYSGOOD)
//!                                      ◀──  "ok\n", or the reason it cannot
//!   execve(COMMAND)                         exec stop, then execve's exit stop
//!                                           run to AT_ENTRY (past ld.so, before constructors)
//!                                           inject mlockall (see `lock`), check VmLck
//!                                           restore the registers, PTRACE_DETACH, _exit
//! ```
//!
//! Fails closed: if the helper cannot attach, memlock-run does not exec (125, with the
//! reason); if the lock fails in the new image, the helper makes COMMAND exit_group(125)
//! before it runs any of its own code; if the helper dies while attached, PTRACE_O_EXITKILL
//! kills COMMAND.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use memlock_run_protocol::{OnFailure, FAILURE_EXIT_STATUS};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{pipe2, Pid};

use super::arch::Call;
use super::lock::{self, Job};
use super::tracee::{self, Ended, Patching, Tracee};
use super::{attach_refusal, report_prefix};
use crate::plan::PreloadCheck;

/// What the helper does in the new image.
#[derive(Clone, Debug)]
pub enum Work {
    /// The ptrace method: inject mlockall at the entry point.
    Lock(Job),
    /// The preload method where ld.so may skip the shim without stopping (a finite RLIMIT_AS:
    /// a preload it cannot map is ignored with a warning): at the entry point, after ld.so has
    /// mapped everything, check that the shim is mapped. Its constructor has then locked the
    /// process or ended it (glibc's ld.so runs the libraries' constructors before the entry
    /// point), or will before the program's own constructors and main (musl's, after it).
    CheckPreload(PreloadCheck),
}

/// What the helper does, and how it speaks.
#[derive(Clone, Debug)]
pub struct ExecJob {
    pub work: Work,
    pub on_failure: OnFailure,
    pub verbose: bool,
    /// COMMAND's name, for messages (`memlock-run: NAME (pid N): ...`).
    pub program: String,
    /// Why the ptrace method, for `-v`.
    pub reason: String,
    /// Device and inode of the image memlock-run judged: the new image must be that file.
    pub image: (u64, u64),
}

/// Starts the helper and returns once it has attached to this process; the caller execs
/// next. Never leaves a child, a zombie or a pending SIGCHLD behind.
pub fn arm(job: &ExecJob) -> Result<()> {
    // memlock-run as PID 1 is refused by the plan (the helper would become COMMAND's child).
    let me = nix::unistd::getpid();
    let (from_helper, helper_out) =
        pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe for the ptrace helper")?;
    let (helper_in, to_helper) =
        pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe for the ptrace helper")?;
    crate::detached::spawn(|| {
        // SAFETY: in the helper's process, which ends with _exit and never drops the parent's
        // copies: the two ends it does not use are closed, the two it does are handed over.
        unsafe {
            libc::close(from_helper.as_raw_fd());
            libc::close(to_helper.as_raw_fd());
            helper(
                me,
                job,
                OwnedFd::from_raw_fd(helper_in.as_raw_fd()),
                OwnedFd::from_raw_fd(helper_out.as_raw_fd()),
            )
        }
    })
    .context("cannot start the ptrace helper")?;
    drop(helper_in);
    drop(helper_out);

    let mut from_helper = BufReader::new(File::from(from_helper));
    let mut to_helper = File::from(to_helper);
    let mut line = String::new();
    from_helper
        .read_line(&mut line)
        .context("cannot hear from the ptrace helper")?;
    let helper_pid: i32 = line
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("the ptrace helper did not start: {}", line.trim()))?;
    // Yama's scope 1 lets a process trace only its descendants, unless named here. Without
    // Yama this fails with EINVAL, and nothing is needed.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, helper_pid as libc::c_ulong, 0, 0, 0) };
    // A user switch or a file capability left this process non-dumpable, which only
    // CAP_SYS_PTRACE may trace; exec makes COMMAND dumpable again in any case. The helper has
    // exactly our credentials and capabilities, and nobody else gains anything.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } != 1 {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    to_helper
        .write_all(b"g")
        .context("cannot signal the ptrace helper")?;
    line.clear();
    from_helper
        .read_to_string(&mut line)
        .context("cannot hear from the ptrace helper")?;
    match line.trim_end() {
        "ok" => Ok(()),
        "" => bail!("the ptrace helper ended before it could attach to memlock-run; COMMAND was not started"),
        why => bail!("{why}"),
    }
}

/// The helper's life: attach, wait for the exec, lock, detach, exit. Never returns.
fn helper(parent: Pid, job: &ExecJob, input: OwnedFd, output: OwnedFd) -> ! {
    // Out of the terminal's job control: a Ctrl-Z for the foreground group must not stop the
    // tracer while COMMAND waits on it. Messages still go to the inherited stderr.
    let _ = nix::unistd::setsid();
    // SAFETY: setting a disposition; a write to a closed pipe is then EPIPE, not a kill.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // /proc/PID/mem, maps and auxv check the reader's effective capabilities against the
    // tracee's permitted ones (PTRACE_MODE_*_FSCREDS); after a user switch COMMAND gets
    // CAP_IPC_LOCK in its effective set through the ambient set, and so must the helper,
    // which holds it permitted (and nothing more).
    if let Ok(permitted) = caps::read(None, caps::CapSet::Permitted) {
        let _ = caps::set(None, caps::CapSet::Effective, &permitted);
    }
    let mut output = File::from(output);
    let mut input = File::from(input);
    let _ = writeln!(output, "{}", nix::unistd::getpid());
    let mut go = [0u8; 1];
    if input.read_exact(&mut go).is_err() {
        exit(0);
    }
    let options =
        Options::PTRACE_O_TRACEEXEC | Options::PTRACE_O_EXITKILL | Options::PTRACE_O_TRACESYSGOOD;
    if let Err(errno) = ptrace::seize(parent, options) {
        let _ = writeln!(output, "{}", attach_refusal(parent, errno, "memlock-run"));
        exit(1);
    }
    let _ = writeln!(output, "ok");
    drop(output);
    drop(input);

    // Until the exec, memlock-run's signals are its own: pass them on.
    loop {
        match tracee::wait_for(parent) {
            Ok(WaitStatus::PtraceEvent(_, _, event)) if event == libc::PTRACE_EVENT_EXEC => break,
            Ok(WaitStatus::PtraceEvent(_, signal, _)) if tracee::is_group_stop(signal) => {
                let _ = listen(parent);
            }
            Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::PtraceSyscall(_)) => {
                let _ = ptrace::cont(parent, None);
            }
            Ok(WaitStatus::Stopped(_, signal)) => {
                let _ = ptrace::cont(parent, Some(signal));
            }
            // execve failed and memlock-run said why and exited; or it was killed.
            _ => exit(0),
        }
    }
    // Registers set at the exec stop do not stick (execve writes its return value after):
    // go on to execve's own syscall-exit stop, holding any signal that comes first.
    let mut held = Vec::new();
    loop {
        if ptrace::syscall(parent, None).is_err() {
            exit(1);
        }
        match tracee::wait_for(parent) {
            Ok(WaitStatus::PtraceSyscall(_)) => break,
            Ok(WaitStatus::Stopped(_, signal)) => held.push(signal),
            Ok(WaitStatus::PtraceEvent(_, signal, _)) if tracee::is_group_stop(signal) => {
                held.push(signal)
            }
            Ok(WaitStatus::PtraceEvent(..)) => {}
            _ => exit(0),
        }
    }
    let pid = parent.as_raw();
    let name = program_name(pid).unwrap_or_else(|| job.program.clone());
    let lock_job = match &job.work {
        Work::Lock(lock_job) => lock_job,
        Work::CheckPreload(check) => check_preload(parent, job, check, held, &name),
    };
    match lock_new_image(parent, job, lock_job, held) {
        Ok((tracee, locked)) => {
            if job.verbose {
                say(&format!(
                    "{}locked {} with the ptrace method ({}): {}",
                    report_prefix(&name, pid),
                    lock_job.flags.describe(),
                    job.reason,
                    locked.describe()
                ));
            }
            if tracee.release().is_err() {
                // Still attached: ending now kills COMMAND (EXITKILL), which has run nothing.
                say(&format!(
                    "{}cannot let it go after locking it; it was killed so that nothing runs in an unknown state",
                    report_prefix(&name, pid)
                ));
                exit(1);
            }
            exit(0)
        }
        Err((tracee, why)) => {
            let prefix = report_prefix(&name, pid);
            match (job.on_failure, tracee) {
                (OnFailure::Warn, Some(tracee)) => {
                    say(&format!(
                        "{prefix}cannot lock memory: {why}; running unlocked (--on-failure warn)"
                    ));
                    let _ = tracee.release();
                    exit(0)
                }
                (_, Some(mut tracee)) => {
                    say(&format!(
                        "{prefix}cannot lock memory: {why}; exiting with status {FAILURE_EXIT_STATUS} so that \
                         nothing runs unlocked"
                    ));
                    let _ = tracee.call(Call::ExitGroup(u64::from(FAILURE_EXIT_STATUS)));
                    // If it is still alive, ending the tracer kills it (EXITKILL).
                    exit(1)
                }
                (_, None) => {
                    say(&format!(
                        "{prefix}cannot lock memory: {why}; it was killed before it ran so that nothing runs \
                         unlocked"
                    ));
                    exit(1)
                }
            }
        }
    }
}

type Failure = (Option<Box<Tracee>>, String);

fn lock_new_image(
    pid: Pid,
    job: &ExecJob,
    lock_job: &Job,
    held: Vec<nix::sys::signal::Signal>,
) -> Result<(Box<Tracee>, lock::Locked), Failure> {
    let mut tracee = to_entry(pid, job, Patching::Allowed, held).map_err(Failure::from)?;
    match lock::lock(&mut tracee, lock_job) {
        Ok(locked) => Ok((tracee, locked)),
        Err(why) => Err((Some(tracee), why)),
    }
}

/// The preload check's whole course (see [`Work::CheckPreload`]). Never returns.
fn check_preload(
    pid: Pid,
    job: &ExecJob,
    check: &PreloadCheck,
    held: Vec<Signal>,
    name: &str,
) -> ! {
    let prefix = report_prefix(name, pid.as_raw());
    // The libraries' constructors have run by the entry point, and may have started threads,
    // which are not ours: no byte of text is written (the exit below borrows the vDSO's
    // instruction, and without one the helper's end kills the process).
    let mut tracee = match to_entry(pid, job, Patching::Forbidden, held) {
        Ok(tracee) => tracee,
        // ld.so could not load it ("error while loading shared libraries"), or the shim
        // could not lock it: each has said why.
        Err(NotAtEntry::Exited(_)) => exit(0),
        Err(NotAtEntry::Killed(signal)) => {
            say(&format!(
                "{prefix}it was killed by {signal} before its own code ran, while ld.so loaded it and ran its \
                 libraries' constructors ({}); nothing of the program ran",
                check.limit
            ));
            exit(1)
        }
        Err(NotAtEntry::Failed((tracee, why))) => {
            say(&format!(
                "{prefix}cannot check that the preload shim is loaded ({}): {why}; it was stopped before its \
                 own code ran, so that nothing runs unlocked",
                check.limit
            ));
            if let Some(mut tracee) = tracee {
                let _ = tracee.call(Call::ExitGroup(u64::from(FAILURE_EXIT_STATUS)));
            }
            exit(1)
        }
    };
    match maps_hold(pid.as_raw(), check.shim_id) {
        Ok(true) => {
            if tracee.release().is_err() {
                say(&format!(
                    "{prefix}cannot let it go after checking that the preload shim is loaded; it was killed so that \
                     nothing runs in an unknown state"
                ));
                exit(1);
            }
            exit(0)
        }
        Ok(false) if job.on_failure == OnFailure::Warn => {
            say(&format!(
                "{prefix}ld.so did not load the preload shim ({}) and went on without it, most likely because \
                 {} left no room for it; running unlocked (--on-failure warn)",
                check.shim.display(),
                check.limit
            ));
            let _ = tracee.release();
            exit(0)
        }
        outcome => {
            let why = match outcome {
                Err(err) => format!("cannot read its memory map: {err}"),
                _ => format!(
                    "ld.so did not load the preload shim ({}) and went on without it, most likely because {} \
                     left no room for it after the libraries before it in LD_PRELOAD",
                    check.shim.display(),
                    check.limit
                ),
            };
            say(&format!(
                "{prefix}{why}; exiting with status {FAILURE_EXIT_STATUS} before its own code runs, so that nothing \
                 runs unlocked; raise RLIMIT_AS (ulimit -v, prlimit --as, LimitAS= in a systemd unit) or preload \
                 fewer libraries"
            ));
            let _ = tracee.call(Call::ExitGroup(u64::from(FAILURE_EXIT_STATUS)));
            exit(1)
        }
    }
}

/// Whether a mapping of the file `(dev, ino)` is in the process's /proc/PID/maps.
fn maps_hold(pid: i32, (dev, ino): (u64, u64)) -> std::io::Result<bool> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let wanted_dev = format!("{major:02x}:{minor:02x}");
    Ok(maps.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(3);
        fields.next() == Some(wanted_dev.as_str())
            && fields.next().and_then(|i| i.parse::<u64>().ok()) == Some(ino)
    }))
}

/// Why the new image is not held at its entry point.
enum NotAtEntry {
    /// It exited on the way, on its own (ld.so's "error while loading shared libraries", or
    /// the shim's exit after a failed lock): whatever made it exit has said why.
    Exited(i32),
    /// A signal killed it on the way (ld.so or a library's constructor crashed).
    Killed(Signal),
    Failed(Failure),
}

impl From<NotAtEntry> for Failure {
    fn from(not: NotAtEntry) -> Failure {
        match not {
            NotAtEntry::Exited(code) => (
                None,
                format!("its loader did not reach the program's entry point: it exited with status {code}"),
            ),
            NotAtEntry::Killed(signal) => (
                None,
                format!("its loader did not reach the program's entry point: it was killed by {signal}"),
            ),
            NotAtEntry::Failed(failure) => failure,
        }
    }
}

/// Holds the new image at its entry point, once it is known to be the judged file.
fn to_entry(
    pid: Pid,
    job: &ExecJob,
    patching: Patching,
    held: Vec<nix::sys::signal::Signal>,
) -> Result<Box<Tracee>, NotAtEntry> {
    let failed = |failure: Failure| NotAtEntry::Failed(failure);
    let mut tracee = Box::new(
        Tracee::new(pid, patching, held).map_err(|err| failed((None, format!("{err:#}"))))?,
    );
    // The path may have been made to name another file after memlock-run judged it. The
    // preload check looks for the shim in whatever image the kernel started (env, for a
    // `#!/usr/bin/env NAME` script, whose image_id is NAME's): a swapped-in program without
    // it fails the check as any other.
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(format!("/proc/{pid}/exe")) {
        _ if matches!(job.work, Work::CheckPreload(_)) => {}
        Ok(meta) if (meta.dev(), meta.ino()) == job.image => {}
        Ok(_) => {
            return Err(failed((
                Some(tracee),
                "the program the kernel started is not the file memlock-run judged (it was replaced in between), \
                 so it is not known to be lockable this way; run it again, and keep others from writing where it \
                 lives"
                    .into(),
            )))
        }
        Err(err) => {
            return Err(failed((
                Some(tracee),
                format!("cannot check which file the kernel started: /proc/{pid}/exe: {err}"),
            )))
        }
    }
    // Stop where the program's own code starts (AT_ENTRY): after ld.so has mapped every
    // library it needs (and glibc's has run the libraries' constructors), before the program's
    // own constructors. A static program starts there already.
    let entry = match tracee.auxv(libc::AT_ENTRY) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return Err(failed((
                Some(tracee),
                "its auxiliary vector has no AT_ENTRY".into(),
            )))
        }
        Err(err) => return Err(failed((Some(tracee), format!("{err:#}")))),
    };
    if tracee.abi.instruction_pointer(&tracee.saved) != entry {
        if let Err(err) = tracee.run_to(entry) {
            match err.downcast_ref::<Ended>() {
                Some(&Ended::Exited(code)) => return Err(NotAtEntry::Exited(code)),
                Some(&Ended::Killed(signal)) => return Err(NotAtEntry::Killed(signal)),
                None => {}
            }
            return Err(failed((
                None,
                format!("its loader did not reach the program's entry point: {err:#}"),
            )));
        }
    }
    Ok(tracee)
}

/// The new image's own name (comm), for messages.
fn program_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn exit(status: i32) -> ! {
    // SAFETY: _exit ends the helper without running memlock-run's clean-up, which is not ours.
    unsafe { libc::_exit(status) }
}

fn listen(pid: Pid) -> nix::Result<()> {
    // SAFETY: PTRACE_LISTEN takes no memory arguments.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_LISTEN,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
