//! The lock itself, as the shim does it but from outside: grow the stack for `--prefault`,
//! mlockall(2) in the tracee, populate what MCL_ONFAULT left, and read VmLck back.

use std::fmt::Write as _;
use std::time::Instant;

use memlock_run_protocol::LockFlags;
use nix::errno::Errno;

use super::arch::Call;
use super::tracee::{page_size, Tracee};
use crate::host::procfs::{describe_limit, limits_of};
use crate::size::show;

/// madvise(2): populate writable, as the thread's own writes would (Linux 5.14).
const MADV_POPULATE_WRITE: u64 = 23;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;

/// What to do inside the tracee.
#[derive(Clone, Debug)]
pub struct Job {
    pub flags: LockFlags,
    /// Bytes of the main thread's stack to grow, populate and lock; 0 for none.
    pub prefault: u64,
    /// PR_SET_DUMPABLE 0 after locking (`--no-dump`).
    pub no_dump: bool,
}

/// What the kernel says once the lock took.
#[derive(Clone, Copy, Debug)]
pub struct Locked {
    pub vm_lck: u64,
    pub vm_rss: u64,
    pub vm_size: u64,
    pub prefaulted: u64,
    pub no_dump: bool,
    pub micros: u128,
}

impl Locked {
    /// `VmLck 10.9 MiB, VmRSS 11 MiB, VmSize 12 MiB, stack pre-faulted 8 MiB, in 1.2 ms`
    pub fn describe(&self) -> String {
        let mut text = format!(
            "VmLck {}, VmRSS {}, VmSize {}",
            show(self.vm_lck),
            show(self.vm_rss),
            show(self.vm_size)
        );
        if self.prefaulted > 0 {
            let _ = write!(text, ", stack pre-faulted {}", show(self.prefaulted));
        }
        if self.no_dump {
            text.push_str(", not dumpable (no core dump, memory readable by root only)");
        }
        let _ = write!(
            text,
            ", in {}.{} ms",
            self.micros / 1000,
            self.micros % 1000 / 100
        );
        text
    }
}

pub fn mcl_bits(flags: LockFlags) -> u64 {
    (if flags.current { libc::MCL_CURRENT } else { 0 }
        | if flags.future { libc::MCL_FUTURE } else { 0 }
        | if flags.onfault { libc::MCL_ONFAULT } else { 0 }) as u64
}

/// Locks the tracee's memory; on failure, the cause and the remedy, for the one-line message.
pub fn lock(tracee: &mut Tracee, job: &Job) -> Result<Locked, String> {
    let started = Instant::now();
    let pid = tracee.pid;
    let mut prefaulted = None;
    if job.prefault > 0 {
        prefaulted = Some(grow_stack(tracee, job.prefault)?);
    }
    let rc = tracee
        .call(Call::Mlockall(mcl_bits(job.flags)))
        .map_err(|err| format!("cannot make it call mlockall: {err:#}"))?;
    if rc < 0 {
        let errno = Errno::from_raw(-rc as i32);
        let mut why = format!(
            "mlockall({}) failed with {errno} ({})",
            job.flags.describe(),
            errno.desc()
        );
        let limits = limits_of(pid.as_raw(), libc::RLIMIT_MEMLOCK);
        if let Some((soft, _)) = limits {
            let _ = write!(why, "; RLIMIT_MEMLOCK is {}", describe_limit(soft));
        }
        if let Some(status) = Status::read(pid.as_raw()) {
            let _ = write!(why, " and VmSize is {}", show(status.vm_size));
        }
        let _ = write!(why, "; {}", memlock_run_protocol::limit_remedy(limits));
        return Err(why);
    }
    let locked = after_mlockall(tracee, job, prefaulted, started);
    if locked.is_err() {
        // The memory is locked, but the lock failed as a whole: undone, the process is as the
        // failure line says (`--pid`: it runs on as before, not locked under MCL_FUTURE with
        // its own lower limit put back; `--on-failure warn`: COMMAND runs unlocked). Best
        // effort: the line is about the failure, not this.
        let _ = tracee.call(Call::Munlockall);
    }
    locked
}

/// The steps after mlockall took: populate an MCL_ONFAULT pre-fault, check VmLck, `--no-dump`.
fn after_mlockall(
    tracee: &mut Tracee,
    job: &Job,
    prefaulted: Option<(u64, u64)>,
    started: Instant,
) -> Result<Locked, String> {
    let pid = tracee.pid;
    if let (Some((low, high)), true) = (prefaulted, job.flags.onfault) {
        // MCL_ONFAULT locks pages as they are touched: populate the pre-fault now.
        let rc = tracee
            .call(Call::Madvise(low, high - low, MADV_POPULATE_WRITE))
            .map_err(|err| format!("cannot make it populate its stack: {err:#}"))?;
        if rc == -(Errno::EINVAL as i64) {
            tracee
                .populate_by_writing(low, high)
                .map_err(|err| format!("cannot populate the pre-faulted stack: {err:#}"))?;
        } else if rc < 0 {
            let errno = Errno::from_raw(-rc as i32);
            return Err(format!(
                "cannot populate {} of pre-faulted stack: madvise(MADV_POPULATE_WRITE) failed with {errno} ({}); {}",
                show(high - low),
                errno.desc(),
                memlock_run_protocol::limit_remedy(limits_of(pid.as_raw(), libc::RLIMIT_MEMLOCK))
            ));
        }
    }
    let status = Status::read(pid.as_raw())
        .ok_or_else(|| format!("cannot verify the lock: /proc/{pid}/status cannot be read"))?;
    if status.vm_lck == 0 {
        return Err(format!(
            "mlockall({}) returned success but VmLck is 0 kB; something in the kernel or a security module \
             intercepts it",
            job.flags.describe()
        ));
    }
    // Last: once it is not dumpable, a tracer without CAP_SYS_PTRACE may no longer read or
    // write its memory (registers still), and nothing after this needs to.
    if job.no_dump {
        let set = tracee
            .call(Call::Prctl(PR_SET_DUMPABLE, 0))
            .map_err(|err| format!("cannot make it call prctl: {err:#}"))?;
        let now = tracee
            .call(Call::Prctl(PR_GET_DUMPABLE, 0))
            .map_err(|err| format!("cannot make it call prctl: {err:#}"))?;
        if set < 0 || now != 0 {
            let why = if set < 0 {
                let errno = Errno::from_raw(-set as i32);
                format!("failed with {errno} ({})", errno.desc())
            } else {
                format!("left PR_GET_DUMPABLE at {now}")
            };
            return Err(format!(
                "--no-dump: prctl(PR_SET_DUMPABLE, 0) {why}; it would stay readable by its user and dumpable"
            ));
        }
    }
    Ok(Locked {
        vm_lck: status.vm_lck,
        vm_rss: status.vm_rss,
        vm_size: status.vm_size,
        prefaulted: prefaulted.map_or(0, |(low, high)| high - low),
        no_dump: job.no_dump,
        micros: started.elapsed().as_micros(),
    })
}

/// Grows the main thread's stack down to `size` below its stack pointer, checked first
/// against RLIMIT_STACK and the mapping below it, so that a refusal is a message; returns the
/// grown range `[low, high)`, which mlockall(MCL_CURRENT) then populates.
fn grow_stack(tracee: &Tracee, size: u64) -> Result<(u64, u64), String> {
    let pid = tracee.pid.as_raw();
    let sp = tracee.abi.stack_pointer(&tracee.saved);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|err| format!("cannot read /proc/{pid}/maps: {err}"))?;
    let stack_limit = limits_of(pid, libc::RLIMIT_STACK).map(|(soft, _)| soft);
    let growth = stack_growth(sp, size, page_size(), &maps, stack_limit)?;
    if growth.below_mapping {
        tracee.touch(growth.low).map_err(|errno| {
            format!(
                "cannot pre-fault {} of stack: the kernel would not grow it ({errno}); lower --prefault",
                show(size)
            )
        })?;
    }
    Ok((growth.low, growth.high))
}

/// The pre-fault's place on the stack, judged before anything is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Growth {
    /// `[low, high)`: whole pages, from the page of the stack pointer down.
    low: u64,
    high: u64,
    /// `low` lies below the stack's mapping, which the kernel must grow down to it.
    below_mapping: bool,
}

/// Where `size` bytes of stack below `sp` go, given the process's `/proc/PID/maps` and its
/// soft RLIMIT_STACK; or why the kernel would not grow the stack that far, as a message.
fn stack_growth(
    sp: u64,
    size: u64,
    page: u64,
    maps: &str,
    stack_limit: Option<u64>,
) -> Result<Growth, String> {
    let high = sp & !(page - 1);
    let low = high
        .checked_sub(size)
        .map(|low| low & !(page - 1))
        .ok_or_else(|| {
            format!(
                "cannot pre-fault {}: the stack is not that high",
                show(size)
            )
        })?;
    let ranges: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let (s, e) = line.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        })
        .collect();
    let Some(&(stack_start, stack_end)) = ranges.iter().find(|&&(s, e)| s <= sp && sp < e) else {
        return Err("cannot find the stack's mapping in /proc/PID/maps".to_owned());
    };
    // The kernel refuses to grow a stack past its soft RLIMIT_STACK (acct_stack_growth).
    if let Some(limit) = stack_limit.filter(|&soft| soft != libc::RLIM_INFINITY) {
        if stack_end - low > limit {
            return Err(format!(
                "cannot pre-fault {} of stack: the stack would be {} and RLIMIT_STACK is {}; lower --prefault",
                show(size),
                show(stack_end - low),
                show(limit)
            ));
        }
    }
    // The kernel keeps a guard gap (stack_guard_gap, 256 pages) below a growing stack.
    let guard = 256 * page;
    if let Some(&(_, below_end)) = ranges
        .iter()
        .filter(|&&(_, e)| e <= stack_start)
        .max_by_key(|&&(_, e)| e)
    {
        if low < below_end.saturating_add(guard) {
            return Err(format!(
                "cannot pre-fault {} of stack: another mapping lies {} below the stack; lower --prefault",
                show(size),
                show(stack_start - below_end)
            ));
        }
    }
    Ok(Growth {
        low,
        high,
        below_mapping: low < stack_start,
    })
}

/// VmLck, VmRSS and VmSize of a process, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status {
    pub vm_lck: u64,
    pub vm_rss: u64,
    pub vm_size: u64,
}

impl Status {
    pub fn read(pid: i32) -> Option<Status> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let mut status = Status::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let slot = match name {
                "VmLck" => &mut status.vm_lck,
                "VmRSS" => &mut status.vm_rss,
                "VmSize" => &mut status.vm_size,
                _ => continue,
            };
            *slot = value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                .saturating_mul(1024);
        }
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const PAGE: u64 = 4096;

    /// A mapping that ends 15 MiB below a 132 KiB stack; the stack pointer is in the stack's
    /// second page from the top, the page at `HIGH`.
    const MAPS: &str = "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n\
                        7f0001000000-7f0001021000 rw-p 00000000 00:00 0                          [stack]\n";
    const BELOW_END: u64 = 0x7f00_0010_0000;
    const STACK_START: u64 = 0x7f00_0100_0000;
    const STACK_END: u64 = 0x7f00_0102_1000;
    const SP: u64 = 0x7f00_0101_f9c8;
    const HIGH: u64 = 0x7f00_0101_f000;

    fn grow(size: u64, stack_limit: Option<u64>) -> Result<Growth, String> {
        stack_growth(SP, size, PAGE, MAPS, stack_limit)
    }

    #[test]
    fn a_prefault_takes_whole_pages_from_the_stack_pointers_page_down() {
        assert_eq!(
            grow(4 * MIB + 100, None),
            Ok(Growth {
                low: HIGH - 4 * MIB - PAGE,
                high: HIGH,
                below_mapping: true,
            })
        );
        // Down to the mapping's first page the stack needs no growing; a page further, it does.
        assert_eq!(
            grow(HIGH - STACK_START, None).map(|g| (g.low, g.below_mapping)),
            Ok((STACK_START, false))
        );
        assert_eq!(
            grow(HIGH - STACK_START + PAGE, None).map(|g| g.below_mapping),
            Ok(true)
        );
    }

    /// The kernel grows a stack up to its soft RLIMIT_STACK, that size included.
    #[test]
    fn a_prefault_past_rlimit_stack_is_refused() {
        let in_use = STACK_END - HIGH;
        assert!(grow(4 * MIB, Some(4 * MIB + in_use)).is_ok());
        let refused = grow(4 * MIB, Some(4 * MIB + in_use - PAGE)).unwrap_err();
        assert_eq!(
            refused,
            format!(
                "cannot pre-fault 4 MiB of stack: the stack would be {} and RLIMIT_STACK is {}; lower --prefault",
                show(4 * MIB + in_use),
                show(4 * MIB + in_use - PAGE)
            )
        );
        assert!(
            grow(4 * MIB, Some(libc::RLIM_INFINITY)).is_ok(),
            "unlimited"
        );
        assert!(grow(4 * MIB, None).is_ok(), "unknown: the kernel judges");
    }

    /// The kernel keeps 256 pages (stack_guard_gap) between a growing stack and the mapping
    /// below it.
    #[test]
    fn a_prefault_into_the_guard_gap_of_the_mapping_below_is_refused() {
        let room = HIGH - (BELOW_END + 256 * PAGE);
        assert_eq!(grow(room, None).map(|g| g.low), Ok(BELOW_END + 256 * PAGE));
        assert_eq!(
            grow(room + PAGE, None),
            Err(format!(
                "cannot pre-fault {} of stack: another mapping lies 15 MiB below the stack; lower --prefault",
                show(room + PAGE)
            ))
        );
    }

    #[test]
    fn a_stack_pointer_in_no_mapping_is_refused() {
        // The end of a mapping is the first byte past it.
        assert_eq!(
            stack_growth(STACK_END, MIB, PAGE, MAPS, None),
            Err("cannot find the stack's mapping in /proc/PID/maps".to_owned())
        );
    }

    /// The `-v` line of a program locked at its start, and `--pid`'s line.
    #[test]
    fn the_lock_line_names_a_prefault_only_when_there_was_one() {
        let locked = Locked {
            vm_lck: 10 * MIB,
            vm_rss: 11 * MIB,
            vm_size: 12 * MIB,
            prefaulted: 0,
            no_dump: false,
            micros: 1234,
        };
        assert_eq!(
            locked.describe(),
            "VmLck 10 MiB, VmRSS 11 MiB, VmSize 12 MiB, in 1.2 ms"
        );
        let prefaulted = Locked {
            prefaulted: 8 * MIB,
            ..locked
        };
        assert_eq!(
            prefaulted.describe(),
            "VmLck 10 MiB, VmRSS 11 MiB, VmSize 12 MiB, stack pre-faulted 8 MiB, in 1.2 ms"
        );
    }
}
