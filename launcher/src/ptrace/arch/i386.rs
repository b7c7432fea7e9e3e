//! i386 programs on an x86-64 kernel: `int 0x80`, the 32-bit system-call numbers and
//! argument registers (ebx, ecx, edx). PTRACE_GETREGS still gives the 64-bit layout; the
//! thread uses its low halves. An x86-64 `syscall` in 32-bit code raises SIGILL, so the
//! injection site must hold `int 0x80` (the 32-bit vDSO's __kernel_vsyscall has one).

use super::x86_64::Regs;
use super::{Abi, Call, Numbers};

pub struct I386;

const NUMBERS: Numbers = Numbers {
    mlockall: 152,
    munlockall: 153,
    madvise: 219,
    prctl: 172,
    exit_group: 252,
    setrlimit: 75,
    restart_syscall: 0,
};

/// A 32-bit register's value, sign-extended as the kernel does for the return register.
fn low(value: u64) -> i64 {
    i64::from(value as u32 as i32)
}

impl Abi for I386 {
    fn syscall_instruction(&self) -> &'static [u8] {
        &[0xcd, 0x80] // int 0x80
    }

    fn word_size(&self) -> usize {
        4
    }

    fn prepare(&self, saved: &Regs, site: u64, call: Call) -> Regs {
        let mut regs = *saved;
        let (nr, args) = call.encode(&NUMBERS);
        regs.rax = nr;
        regs.rbx = args[0];
        regs.rcx = args[1];
        regs.rdx = args[2];
        regs.rsi = 0;
        regs.rdi = 0;
        regs.rip = site;
        regs.orig_rax = u64::MAX;
        regs
    }

    fn result(&self, regs: &Regs) -> i64 {
        low(regs.rax)
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
            low(saved.rax),
            low(saved.orig_rax),
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

#[cfg(test)]
mod tests {
    use super::super::ERESTARTSYS;
    use super::*;

    #[test]
    fn a_32_bit_restart() {
        // SAFETY: plain integers.
        let mut saved: Regs = unsafe { std::mem::zeroed() };
        saved.orig_rax = 3; // read
        saved.rax = u64::from((-ERESTARTSYS) as i32 as u32);
        saved.rip = 0xf7f0_0002;
        let regs = I386.restarted(&saved);
        assert_eq!((regs.rax, regs.rip), (3, 0xf7f0_0000));
        assert_eq!(I386.result(&saved), -ERESTARTSYS);
    }
}
