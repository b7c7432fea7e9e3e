//! x86-64: the `syscall` instruction, the 64-bit system-call numbers, and the debug
//! registers (hardware breakpoints) through the `struct user` area.

use nix::unistd::Pid;

use super::{Abi, Call, Numbers};

/// The registers PTRACE_GETREGS gives for any thread on an x86-64 kernel, 64-bit or not.
pub type Regs = libc::user_regs_struct;

pub struct X86_64;

const NUMBERS: Numbers = Numbers {
    mlockall: 151,
    munlockall: 152,
    madvise: 28,
    prctl: 157,
    exit_group: 231,
    setrlimit: 160,
    restart_syscall: 219,
};

impl Abi for X86_64 {
    fn syscall_instruction(&self) -> &'static [u8] {
        &[0x0f, 0x05] // syscall
    }

    fn word_size(&self) -> usize {
        8
    }

    fn prepare(&self, saved: &Regs, site: u64, call: Call) -> Regs {
        let mut regs = *saved;
        let (nr, args) = call.encode(&NUMBERS);
        regs.rax = nr;
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = 0;
        regs.r8 = 0;
        regs.r9 = 0;
        regs.rip = site;
        // Not inside a system call: the kernel must not apply restart logic to these.
        regs.orig_rax = u64::MAX;
        regs
    }

    fn result(&self, regs: &Regs) -> i64 {
        regs.rax as i64
    }

    fn instruction_pointer(&self, regs: &Regs) -> u64 {
        regs.rip
    }

    fn set_instruction_pointer(&self, regs: &mut Regs, ip: u64) {
        regs.rip = ip;
    }

    fn stack_pointer(&self, regs: &Regs) -> u64 {
        regs.rsp
    }

    fn restarted(&self, saved: &Regs) -> Regs {
        let mut regs = *saved;
        let restart = super::restart(
            saved.rax as i64,
            saved.orig_rax as i64,
            saved.rip,
            NUMBERS.restart_syscall,
        );
        if let Some((nr, ip)) = restart {
            regs.rax = nr;
            regs.rip = ip;
            regs.orig_rax = u64::MAX;
        }
        regs
    }
}

/// Execution breakpoints in the debug registers DR0-DR3 and DR7, written through
/// PTRACE_POKEUSER: the CPU stops the thread at an address without a byte of the program's
/// text being changed (no copy-on-write of a text page, nothing another thread could run).
pub mod hardware_breakpoint {
    use super::*;

    fn debugreg_offset(n: usize) -> usize {
        std::mem::offset_of!(libc::user, u_debugreg) + n * std::mem::size_of::<u64>()
    }

    fn poke_user(pid: Pid, offset: usize, value: u64) -> nix::Result<()> {
        // SAFETY: PTRACE_POKEUSER writes into the tracee's user area at a checked offset;
        // no memory of this process is touched.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_POKEUSER,
                pid.as_raw(),
                offset as *mut libc::c_void,
                value as *mut libc::c_void,
            )
        };
        if rc == -1 {
            Err(nix::errno::Errno::last())
        } else {
            Ok(())
        }
    }

    /// Arms DR0 as an execution breakpoint at `addr` (DR7: L0, RW0 = execute, LEN0 = 1 byte).
    pub fn set(pid: Pid, addr: u64) -> nix::Result<()> {
        poke_user(pid, debugreg_offset(0), addr)?;
        poke_user(pid, debugreg_offset(7), 1)
    }

    /// Disarms it and clears the status in DR6.
    pub fn clear(pid: Pid) -> nix::Result<()> {
        poke_user(pid, debugreg_offset(7), 0)?;
        poke_user(pid, debugreg_offset(0), 0)?;
        poke_user(pid, debugreg_offset(6), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ERESTARTSYS, ERESTART_RESTARTBLOCK};
    use super::*;

    fn zero() -> Regs {
        // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn an_interrupted_read_is_restarted() {
        let mut saved = zero();
        saved.orig_rax = 0; // read
        saved.rax = (-ERESTARTSYS) as u64;
        saved.rip = 0x1002;
        let regs = X86_64.restarted(&saved);
        assert_eq!((regs.rax, regs.rip), (0, 0x1000));
        saved.rax = (-ERESTART_RESTARTBLOCK) as u64;
        let regs = X86_64.restarted(&saved);
        assert_eq!((regs.rax, regs.rip), (NUMBERS.restart_syscall, 0x1000));
    }

    #[test]
    fn a_finished_call_or_user_code_is_left_alone() {
        let mut saved = zero();
        saved.orig_rax = u64::MAX;
        saved.rax = (-ERESTARTSYS) as u64;
        saved.rip = 0x1002;
        assert_eq!(X86_64.restarted(&saved).rip, 0x1002);
        saved.orig_rax = 0;
        saved.rax = 5;
        assert_eq!(X86_64.restarted(&saved).rax, 5);
    }

    #[test]
    fn a_call_is_laid_out_in_registers() {
        let regs = X86_64.prepare(&zero(), 0x7000, Call::Mlockall(3));
        assert_eq!(
            (regs.rax, regs.rdi, regs.rip),
            (NUMBERS.mlockall, 3, 0x7000)
        );
        assert_eq!(regs.orig_rax, u64::MAX);
    }
}
