//! What the injector needs to know of an instruction set, one file per architecture, as in
//! CRIU's compel: how a system call is made (instruction bytes, register convention, numbers),
//! how a stopped thread's system call is restarted, and how to stop at an address without
//! writing into the program's text. The generic core (`super::tracee`) uses only [`Abi`].
//!
//! The tracer is always the launcher's own architecture (x86-64 for now); the tracee may run
//! in another ABI of the same kernel (an i386 program under an x86-64 kernel), which is why
//! the ABI is chosen per tracee, from its registers, not at compile time.

#[cfg(target_arch = "x86_64")]
mod i386;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86_64")]
pub use x86_64::{hardware_breakpoint, Regs};

/// System calls the injector makes inside a tracee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// mlockall(flags)
    Mlockall(u64),
    /// munlockall(), to undo a lock whose later steps failed
    Munlockall,
    /// madvise(addr, len, advice)
    Madvise(u64, u64, u64),
    /// prctl(option, arg2)
    Prctl(u64, u64),
    /// exit_group(status)
    ExitGroup(u64),
    /// setrlimit(resource, rlim)
    Setrlimit(u64, u64),
}

/// An ABI's system-call numbers for the calls the injector makes.
pub struct Numbers {
    pub mlockall: u64,
    pub munlockall: u64,
    pub madvise: u64,
    pub prctl: u64,
    pub exit_group: u64,
    pub setrlimit: u64,
    /// What the kernel runs to resume an interrupted nanosleep and the like.
    pub restart_syscall: u64,
}

impl Call {
    /// The system-call number and first three arguments, in `numbers`' ABI.
    pub fn encode(self, numbers: &Numbers) -> (u64, [u64; 3]) {
        match self {
            Call::Mlockall(flags) => (numbers.mlockall, [flags, 0, 0]),
            Call::Munlockall => (numbers.munlockall, [0, 0, 0]),
            Call::Madvise(addr, len, advice) => (numbers.madvise, [addr, len, advice]),
            Call::Prctl(option, arg) => (numbers.prctl, [option, arg, 0]),
            Call::ExitGroup(status) => (numbers.exit_group, [status, 0, 0]),
            Call::Setrlimit(resource, rlim) => (numbers.setrlimit, [resource, rlim, 0]),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Call::Mlockall(_) => "mlockall",
            Call::Munlockall => "munlockall",
            Call::Madvise(..) => "madvise",
            Call::Prctl(..) => "prctl",
            Call::ExitGroup(_) => "exit_group",
            Call::Setrlimit(..) => "setrlimit",
        }
    }
}

/// A system-call convention of the kernel, as one tracee uses it.
pub trait Abi: Sync {
    /// The bytes of the instruction that enters the kernel (`syscall`, `int 0x80`).
    fn syscall_instruction(&self) -> &'static [u8];
    /// Width of a pointer in the tracee, for reading its auxiliary vector.
    fn word_size(&self) -> usize;
    /// Registers that make the thread execute `call` at `site` (an address holding
    /// [`Abi::syscall_instruction`]); everything else is kept from `saved`.
    fn prepare(&self, saved: &Regs, site: u64, call: Call) -> Regs;
    /// The system call's return value, as the kernel left it (negative: -errno).
    fn result(&self, regs: &Regs) -> i64;
    fn instruction_pointer(&self, regs: &Regs) -> u64;
    fn set_instruction_pointer(&self, regs: &mut Regs, ip: u64);
    fn stack_pointer(&self, regs: &Regs) -> u64;
    /// The registers to resume with, without a signal, when the thread was stopped inside
    /// a system call the kernel meant to restart (it left -ERESTART* in the return
    /// register): the kernel restarts a call only on its way out to a signal handler
    /// or when it finds no handler, and an injected call in between consumes that, so
    /// the restart is made here, as the kernel would make it.
    fn restarted(&self, saved: &Regs) -> Regs;
}

/// How a thread stopped inside a system call is resumed without a signal: the call's
/// number and the instruction to go back to, or `None` when it was not to be restarted.
/// `result` and `nr` are the return and number registers, sign-extended; `ip` is where the
/// thread stopped, just after the 2-byte system-call instruction (`syscall`, `int 0x80`).
pub fn restart(result: i64, nr: i64, ip: u64, restart_syscall: u64) -> Option<(u64, u64)> {
    if nr < 0 {
        return None;
    }
    match -result {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => Some((nr as u64, ip.wrapping_sub(2))),
        ERESTART_RESTARTBLOCK => Some((restart_syscall, ip.wrapping_sub(2))),
        _ => None,
    }
}

/// The kernel's internal "restart me" return values (include/linux/errno.h).
pub const ERESTARTSYS: i64 = 512;
pub const ERESTARTNOINTR: i64 = 513;
pub const ERESTARTNOHAND: i64 = 514;
pub const ERESTART_RESTARTBLOCK: i64 = 516;

/// The ABI a stopped thread runs in, from its registers.
#[cfg(target_arch = "x86_64")]
pub fn of(regs: &Regs) -> &'static dyn Abi {
    // The kernel's user code segments: __USER_CS (0x33) for 64-bit code, __USER32_CS (0x23)
    // for compatibility-mode code.
    if regs.cs == 0x23 {
        &i386::I386
    } else {
        &x86_64::X86_64
    }
}
