//! `--pid`: locking a process that is already running.
//!
//! One thread is stopped (PTRACE_SEIZE, then PTRACE_INTERRUPT), made to call mlockall(2),
//! and put back; mlockall acts on the whole address space, and MCL_FUTURE on the whole
//! process, so the other threads run on undisturbed. No PTRACE_O_EXITKILL here: if
//! memlock-run dies, the kernel detaches and the process carries on.
//!
//! What cannot be hidden, as with any debugger's attach: a system call that the kernel does
//! not restart after an interruption (epoll_wait, select, poll with a timeout, nanosleep's
//! remaining time aside) returns EINTR in the stopped thread. Calls the kernel restarts
//! (read, write, wait, futex...) are restarted exactly as a signal without a handler would.

use std::fmt::Write as _;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::arch::Call;
use super::attach_refusal;
use super::lock::{self, Job, Locked};
use super::tracee::{Patching, Tracee};
use crate::host::procfs::{describe_limit, limits_of, status_field};
use crate::plan::pid::LimitChange;
use crate::plan::PidPlan;

/// How long a thread may take to stop before memlock-run gives up and leaves it alone.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The report of a successful `--pid`.
pub struct PidLocked {
    pub name: String,
    pub locked: Locked,
    pub limit_note: Option<String>,
}

impl PidLocked {
    /// The one line on stdout.
    pub fn describe(&self, pid: u32, job: &Job) -> String {
        let mut text = format!(
            "memlock-run: {} (pid {pid}): locked {}: {}",
            self.name,
            job.flags.describe(),
            self.locked.describe()
        );
        if let Some(note) = &self.limit_note {
            let _ = write!(text, "; {note}");
        }
        text
    }
}

/// Locks the process of a plan without refusals (`PidPlan::refusal`).
pub fn lock_pid(plan: &PidPlan, job: &Job) -> Result<PidLocked> {
    let pid = plan.request.pid;
    let name = plan
        .process
        .as_ref()
        .map_or_else(|| "?".to_owned(), |p| p.name.clone());
    let target = Pid::from_raw(pid as i32);
    let tid = thread_to_stop(pid).unwrap_or(target);
    if let Err(errno) = ptrace::seize(tid, Options::PTRACE_O_TRACESYSGOOD) {
        bail!(attach_refusal(target, errno, &name));
    }
    if let Err(errno) = ptrace::interrupt(tid) {
        bail!("cannot stop {name} (pid {pid}): PTRACE_INTERRUPT failed with {errno}");
    }
    let held = match stop(tid) {
        Ok(held) => held,
        Err(why) => bail!(
            "{name} (pid {pid}) did not stop within {} s: {why}; it was left as it was (memlock-run detaches as \
             it exits). Try again later",
            STOP_TIMEOUT.as_secs()
        ),
    };
    let mut tracee = Tracee::new(tid, Patching::Forbidden, held)?;
    // The process is ours now: only from here on is it changed, and a failure puts its
    // limits back, so that a refusal leaves it as it was.
    let raw = pid as i32;
    let saved = [(libc::RLIMIT_MEMLOCK, limits_of(raw, libc::RLIMIT_MEMLOCK))];
    let limit_note = match raise_limit(pid, plan.limit) {
        Ok(note) => note,
        Err(err) => {
            tracee.release()?;
            return Err(err);
        }
    };
    // --no-dump: RLIMIT_CORE from outside, once the lock took (a hard limit lowered cannot be
    // raised again); where only the process may set it (another user's, and memlock-run
    // without CAP_SYS_RESOURCE), it is made to, before the lock: the injected prctl that ends
    // the lock leaves its memory out of reach.
    let core_from_inside = job.no_dump && !may_set_limits_of(raw);
    if core_from_inside {
        let rc = tracee.call_with_zeros(|rlim| Call::Setrlimit(libc::RLIMIT_CORE as u64, rlim));
        match rc {
            Ok(0) => {}
            Ok(rc) => {
                tracee.release()?;
                bail!(
                    "--no-dump: {name} (pid {pid}) could not set its RLIMIT_CORE to 0: setrlimit failed with {}; \
                     it was left as it was",
                    Errno::from_raw(-rc as i32)
                );
            }
            Err(err) => {
                tracee.release()?;
                return Err(err.context(format!("--no-dump: cannot set RLIMIT_CORE of pid {pid}")));
            }
        }
    }
    let outcome = lock::lock(&mut tracee, job);
    if outcome.is_err() {
        restore_limits(raw, &saved);
    }
    tracee.release()?;
    let locked = match outcome {
        Ok(locked) => locked,
        Err(why) => bail!("cannot lock {name} (pid {pid}): {why}; it runs on as before"),
    };
    if job.no_dump && !core_from_inside {
        forbid_core_dumps(pid).context(format!(
            "{name} (pid {pid}) is locked and no longer dumpable, but a crash could still write a core file"
        ))?;
    }
    Ok(PidLocked {
        name,
        locked,
        limit_note,
    })
}

/// Waits for the interrupted thread to stop; returns the signals it stopped for (held,
/// to be delivered when it is let go).
fn stop(tid: Pid) -> Result<Vec<nix::sys::signal::Signal>, String> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut held = Vec::new();
    loop {
        match waitpid(tid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            // PTRACE_INTERRUPT's stop, or a group-stop (it was stopped by job control: it
            // stays stopped after the detach).
            Ok(WaitStatus::PtraceEvent(..)) => return Ok(held),
            Ok(WaitStatus::Stopped(_, signal)) => {
                held.push(signal);
                return Ok(held);
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => {
                return Err("it ended".to_owned())
            }
            Ok(other) => return Err(format!("unexpected state {other:?}")),
            Err(errno) => return Err(format!("waitpid failed with {errno}")),
        }
        if Instant::now() >= deadline {
            let state = status_field(tid.as_raw(), "State").unwrap_or_default();
            return Err(if state.starts_with('D') {
                format!("the thread is in uninterruptible sleep (State: {state}), in the kernel on I/O or waiting for a vfork child")
            } else {
                format!("the thread did not reach a stop (State: {state})")
            });
        }
        sleep(Duration::from_millis(1));
    }
}

/// The main thread, unless it has exited (a leader that called pthread_exit): then the
/// first live thread.
fn thread_to_stop(pid: u32) -> Option<Pid> {
    let main_state = status_field(pid as i32, "State")?;
    if !main_state.starts_with('Z') {
        return Some(Pid::from_raw(pid as i32));
    }
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
                .map(|s| !s.contains("State:\tZ"))
                .unwrap_or(false)
        })
        .map(Pid::from_raw)
}

/// Sets the process's soft RLIMIT_MEMLOCK as the plan says (`--limit`, or its hard limit);
/// returns what changed.
fn raise_limit(pid: u32, change: Option<LimitChange>) -> Result<Option<String>> {
    let Some(change) = change else {
        return Ok(None);
    };
    let new = libc::rlimit {
        rlim_cur: change.wanted,
        rlim_max: change.hard.max(change.wanted),
    };
    // SAFETY: sets the limit from a local.
    if unsafe { libc::prlimit(pid as i32, libc::RLIMIT_MEMLOCK, &new, std::ptr::null_mut()) } != 0 {
        let errno = Errno::last();
        bail!(
            "cannot set RLIMIT_MEMLOCK of pid {pid} to {}: prlimit failed with {errno} (above the hard limit {} \
             needs CAP_SYS_RESOURCE; another user's process needs root)",
            describe_limit(change.wanted),
            describe_limit(change.hard)
        );
    }
    Ok(Some(change.describe()))
}

/// Puts back limits read before they were changed (best effort: a hard limit that was
/// lowered cannot be raised again without CAP_SYS_RESOURCE).
fn restore_limits(pid: i32, saved: &[(libc::__rlimit_resource_t, Option<(u64, u64)>)]) {
    for &(resource, limits) in saved {
        let Some((soft, hard)) = limits else { continue };
        if limits_of(pid, resource) == Some((soft, hard)) {
            continue;
        }
        let old = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: sets the limit from a local.
        unsafe { libc::prlimit(pid, resource, &old, std::ptr::null_mut()) };
    }
}

/// prlimit(2) may change the process's limits: memlock-run runs as its user (real, effective
/// and saved IDs alike) or holds CAP_SYS_RESOURCE. Asked of the kernel with a no-op write.
fn may_set_limits_of(pid: i32) -> bool {
    let Some((soft, hard)) = limits_of(pid, libc::RLIMIT_CORE) else {
        return false;
    };
    let same = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: sets the limit it read back to the same value.
    unsafe { libc::prlimit(pid, libc::RLIMIT_CORE, &same, std::ptr::null_mut()) == 0 }
}

/// `--no-dump`: RLIMIT_CORE 0, soft and hard, in the running process.
fn forbid_core_dumps(pid: u32) -> Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: sets the limit from a local.
    if unsafe { libc::prlimit(pid as i32, libc::RLIMIT_CORE, &zero, std::ptr::null_mut()) } != 0 {
        bail!(
            "--no-dump: cannot set RLIMIT_CORE of pid {pid} to 0: prlimit failed with {}; it was left as it was",
            Errno::last()
        );
    }
    Ok(())
}
