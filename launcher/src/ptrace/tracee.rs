//! The generic core of injection: a stopped thread of another process, made to run a
//! system call of ours and then put back exactly as it was.
//!
//! The call is made by pointing the thread at an instruction that enters the kernel and
//! already exists in the tracee, in its [vdso], so no byte of the program is written (a write
//! into text would copy a page of ld.so or the program, and another thread could run the
//! patched bytes). Only where there is no vDSO, and only at exec time when the new image has
//! a single thread, the instruction is written at the thread's own address and put back.
//!
//! Signals that arrive while the thread is ours are not lost: they are held and delivered
//! when it is let go (see [`Tracee::release`]).

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::arch::{self, Abi, Call, Regs};

/// A stopped thread of a traced process.
pub struct Tracee {
    pub pid: Pid,
    pub abi: &'static dyn Abi,
    /// The registers it was stopped with, to be restored.
    pub saved: Regs,
    /// Where our system calls are made: an address holding the ABI's syscall instruction.
    site: Option<Site>,
    patching: Patching,
    /// Signals that arrived while it was ours, to deliver on release.
    held: Vec<Signal>,
    mem: File,
}

enum Site {
    /// In the vDSO: nothing to undo.
    Vdso(u64),
    /// Written over the thread's own instruction pointer; the original word goes back on release.
    Patched { addr: u64, original: u64 },
}

impl Site {
    fn addr(&self) -> u64 {
        match *self {
            Site::Vdso(addr) => addr,
            Site::Patched { addr, .. } => addr,
        }
    }
}

/// How the thread ended up when we waited for it.
#[derive(Debug)]
pub enum Ended {
    Exited(i32),
    Killed(Signal),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Exited(code) => write!(f, "it exited with status {code}"),
            Ended::Killed(sig) => write!(f, "it was killed by {sig}"),
        }
    }
}

impl std::error::Error for Ended {}

/// May the instruction be written over the thread's own code when there is no vDSO?
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Patching {
    /// Only at exec time: the new image has one thread and has run nothing yet.
    Allowed,
    Forbidden,
}

impl Tracee {
    /// Takes hold of a thread already in a ptrace-stop; `held` are signals that arrived
    /// before, to be delivered on release.
    pub fn new(pid: Pid, patching: Patching, held: Vec<Signal>) -> Result<Tracee> {
        let saved = ptrace::getregs(pid).context("PTRACE_GETREGS failed")?;
        let abi = arch::of(&saved);
        let mem = File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .with_context(|| format!("cannot open /proc/{pid}/mem"))?;
        Ok(Tracee {
            pid,
            abi,
            saved,
            site: None,
            patching,
            held,
            mem,
        })
    }

    /// Where system calls are made; chosen at the first call, once the thread is where it
    /// will stay (after [`Tracee::run_to`]).
    fn site(&mut self) -> Result<u64> {
        if let Some(site) = &self.site {
            return Ok(site.addr());
        }
        let site = match find_in_vdso(self.pid, &self.mem, self.abi.syscall_instruction())? {
            Some(addr) => Site::Vdso(addr),
            None if self.patching == Patching::Allowed => {
                let addr = self.abi.instruction_pointer(&self.saved);
                let original = ptrace::read(self.pid, addr as ptrace::AddressType)
                    .context("cannot read the instruction at the entry point")?
                    as u64;
                let mut patched = original.to_le_bytes();
                let insn = self.abi.syscall_instruction();
                patched[..insn.len()].copy_from_slice(insn);
                write_word(self.pid, addr, u64::from_le_bytes(patched))?;
                Site::Patched { addr, original }
            }
            None => bail!(
                "the process has no vDSO (the kernel was booted with vdso=0), so there is no system-call instruction \
                 to borrow in it"
            ),
        };
        let addr = site.addr();
        self.site = Some(site);
        Ok(addr)
    }

    /// Makes the thread execute `call` and returns its result (negative: -errno).
    pub fn call(&mut self, call: Call) -> Result<i64> {
        let site = self.site()?;
        let regs = self.abi.prepare(&self.saved, site, call);
        ptrace::setregs(self.pid, regs).context("PTRACE_SETREGS failed")?;
        let mut entered = false;
        loop {
            ptrace::syscall(self.pid, None).context("PTRACE_SYSCALL failed")?;
            match self.wait()? {
                WaitStatus::PtraceSyscall(_) if !entered => entered = true,
                WaitStatus::PtraceSyscall(_) => break,
                WaitStatus::Stopped(_, signal) => self.held.push(signal),
                WaitStatus::PtraceEvent(_, signal, _) if is_group_stop(signal) => {
                    self.held.push(signal)
                }
                WaitStatus::PtraceEvent(..) => {}
                WaitStatus::Exited(_, code) => return Err(Ended::Exited(code).into()),
                WaitStatus::Signaled(_, signal, _) => return Err(Ended::Killed(signal).into()),
                other => bail!("unexpected stop while running {}: {other:?}", call.name()),
            }
        }
        let regs = ptrace::getregs(self.pid).context("PTRACE_GETREGS failed")?;
        Ok(self.abi.result(&regs))
    }

    /// Runs the thread until it reaches `addr`, with a hardware breakpoint (no byte of text
    /// is changed), falling back to an int3 written at `addr` where the debug registers
    /// cannot be set. Used at exec time, when the new image has one thread.
    pub fn run_to(&mut self, addr: u64) -> Result<()> {
        debug_assert!(self.site.is_none(), "run_to after a call");
        let hardware = arch::hardware_breakpoint::set(self.pid, addr).is_ok();
        let original = if hardware {
            None
        } else {
            let word = ptrace::read(self.pid, addr as ptrace::AddressType)
                .context("cannot read the program's entry point")? as u64;
            write_word(self.pid, addr, (word & !0xff) | 0xcc)?;
            Some(word)
        };
        ptrace::setregs(self.pid, self.saved).context("PTRACE_SETREGS failed")?;
        let mut deliver = None;
        loop {
            ptrace::cont(self.pid, deliver.take()).context("PTRACE_CONT failed")?;
            match self.wait()? {
                WaitStatus::Stopped(_, Signal::SIGTRAP) => {
                    let regs = ptrace::getregs(self.pid).context("PTRACE_GETREGS failed")?;
                    let ip = self.abi.instruction_pointer(&regs);
                    if hardware && ip == addr {
                        arch::hardware_breakpoint::clear(self.pid)
                            .context("cannot clear the debug registers")?;
                        self.saved = regs;
                        return Ok(());
                    }
                    if let (Some(word), true) = (original, ip == addr.wrapping_add(1)) {
                        write_word(self.pid, addr, word)?;
                        let mut regs = regs;
                        self.abi.set_instruction_pointer(&mut regs, addr);
                        self.saved = regs;
                        return Ok(());
                    }
                    // A SIGTRAP of the program's own: deliver it later.
                    self.held.push(Signal::SIGTRAP);
                }
                // A fault of the loader's (under a tight RLIMIT_AS, a stack or heap that cannot
                // grow): held, the faulting instruction would run again, and fault, forever.
                WaitStatus::Stopped(_, signal) if is_fault(signal) => deliver = Some(signal),
                WaitStatus::Stopped(_, signal) => self.held.push(signal),
                WaitStatus::PtraceEvent(_, signal, _) if is_group_stop(signal) => {
                    self.held.push(signal)
                }
                WaitStatus::PtraceEvent(..) | WaitStatus::PtraceSyscall(_) => {}
                WaitStatus::Exited(_, code) => return Err(Ended::Exited(code).into()),
                WaitStatus::Signaled(_, signal, _) => return Err(Ended::Killed(signal).into()),
                other => bail!("unexpected stop on the way to the entry point: {other:?}"),
            }
        }
    }

    /// Reads a word of the tracee's memory; at an address below its stack this grows the
    /// stack as the thread's own access would (the kernel extends a VM_GROWSDOWN mapping
    /// for ptrace's access too, within RLIMIT_STACK).
    pub fn touch(&self, addr: u64) -> nix::Result<()> {
        ptrace::read(self.pid, addr as ptrace::AddressType).map(drop)
    }

    /// Runs `call` with 16 zero bytes at `arg`'s place, laid below the thread's stack pointer
    /// (past the x86-64 red zone, where a signal frame would go) and put back after: for a
    /// call that takes a small struct of zeros (`struct rlimit {0, 0}` in either ABI).
    pub fn call_with_zeros(&mut self, call: impl Fn(u64) -> Call) -> Result<i64> {
        let sp = self.abi.stack_pointer(&self.saved);
        let addr = (sp - 512) & !15;
        let mut original = [0u64; 2];
        for (i, word) in original.iter_mut().enumerate() {
            let at = addr + 8 * i as u64;
            *word = ptrace::read(self.pid, at as ptrace::AddressType)
                .with_context(|| format!("cannot read the stack at {at:#x}"))?
                as u64;
            write_word(self.pid, at, 0)?;
        }
        let result = self.call(call(addr));
        for (i, word) in original.iter().enumerate() {
            write_word(self.pid, addr + 8 * i as u64, *word)?;
        }
        result
    }

    /// Writes zeros over `[start, end)` one byte a page, through /proc/PID/mem: populates
    /// memory the thread has not touched, where MADV_POPULATE_WRITE is not known (Linux
    /// before 5.14). Only for memory nothing uses yet (the stack below the thread's).
    pub fn populate_by_writing(&self, start: u64, end: u64) -> Result<()> {
        let page = page_size();
        let mut addr = start;
        while addr < end {
            self.mem
                .write_at(&[0], addr)
                .with_context(|| format!("cannot write the tracee's memory at {addr:#x}"))?;
            addr += page;
        }
        Ok(())
    }

    /// An auxiliary-vector entry of the process (`AT_ENTRY`...).
    pub fn auxv(&self, key: u64) -> Result<Option<u64>> {
        let data = std::fs::read(format!("/proc/{}/auxv", self.pid))
            .context("cannot read the process's auxiliary vector")?;
        let word = self.abi.word_size();
        let value = |chunk: &[u8]| -> u64 {
            let mut bytes = [0u8; 8];
            bytes[..word].copy_from_slice(chunk);
            u64::from_le_bytes(bytes)
        };
        Ok(data
            .chunks_exact(2 * word)
            .map(|pair| (value(&pair[..word]), value(&pair[word..])))
            .take_while(|&(k, _)| k != 0)
            .find(|&(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// Puts the registers back (with an interrupted system call set to restart when no
    /// signal is delivered), undoes a patched instruction, and detaches, delivering the first
    /// held signal with the detach and sending the others after it.
    pub fn release(mut self) -> Result<()> {
        if let Some(Site::Patched { addr, original }) = self.site {
            write_word(self.pid, addr, original)?;
        }
        let first = if self.held.is_empty() {
            None
        } else {
            Some(self.held.remove(0))
        };
        let regs = match first {
            // The kernel makes the restart itself on its way to the signal.
            Some(_) => self.saved,
            None => self.abi.restarted(&self.saved),
        };
        ptrace::setregs(self.pid, regs).context("PTRACE_SETREGS failed")?;
        ptrace::detach(self.pid, first).context("PTRACE_DETACH failed")?;
        for signal in self.held {
            let _ = nix::sys::signal::kill(self.pid, signal);
        }
        Ok(())
    }

    /// The next stop of this thread (`__WALL`: it may be any thread of the process).
    pub fn wait(&self) -> Result<WaitStatus> {
        wait_for(self.pid)
    }
}

/// waitpid for a tracee, retried on EINTR.
pub fn wait_for(pid: Pid) -> Result<WaitStatus> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Err(Errno::EINTR) => continue,
            other => return other.with_context(|| format!("waitpid({pid}) failed")),
        }
    }
}

/// A signal the kernel sends for the instruction the thread just ran: it cannot wait.
fn is_fault(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGILL | Signal::SIGFPE | Signal::SIGSYS
    )
}

/// With PTRACE_SEIZE a group-stop is reported as PTRACE_EVENT_STOP with the stopping signal;
/// PTRACE_INTERRUPT's own stop carries SIGTRAP.
pub fn is_group_stop(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
    )
}

fn write_word(pid: Pid, addr: u64, word: u64) -> Result<()> {
    ptrace::write(pid, addr as ptrace::AddressType, word as i64)
        .map_err(|errno| anyhow!("cannot write the tracee's memory at {addr:#x}: {errno}"))
}

pub use crate::elf::page_size;

/// The address of `insn` inside the process's [vdso], if it has one.
fn find_in_vdso(pid: Pid, mem: &File, insn: &[u8]) -> Result<Option<u64>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .with_context(|| format!("cannot read /proc/{pid}/maps"))?;
    let Some((start, end)) = maps
        .lines()
        .find(|line| line.ends_with("[vdso]"))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|range| range.split_once('-'))
        .and_then(|(s, e)| {
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        })
    else {
        return Ok(None);
    };
    let mut text = vec![0u8; end.saturating_sub(start) as usize];
    mem.read_exact_at(&mut text, start)
        .context("cannot read the process's vDSO")?;
    Ok(text
        .windows(insn.len())
        .position(|w| w == insn)
        .map(|offset| start + offset as u64))
}
