//! What the lock limit leaves a program for the rest of its life, for `--check`.
//!
//! Without CAP_IPC_LOCK, RLIMIT_MEMLOCK is met again after start, every time a locked
//! program grows: the main stack is a locked mapping, so each page it grows by is charged
//! (the kernel refuses the growth past the limit, and the program gets SIGSEGV), and under
//! MCL_FUTURE every new mapping is charged in full when it is made (a thread's whole stack at
//! pthread_create, which then fails with EAGAIN; the heap, where malloc returns NULL). The
//! headroom is the limit less what is locked at start (the footprint estimate, a floor, so
//! the headroom is an upper bound). What will certainly fail is a FAIL with its remedy; what
//! may fail later a warning naming the figure. Not for: the lock at start itself (the
//! `lock at start` finding), or what a program does at run time (the shim's lines say that).

use crate::say::finding::{Finding, Verdict};
use crate::size::{show, Limit};

/// glibc's guard page below each thread stack, mapped (and charged) with it.
const GUARD: u64 = 4 << 10;

/// A thread stack small enough for most threads, as `--thread-stack` is advised.
const SMALL_THREAD_STACK: u64 = 256 << 10;

/// What the findings are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    /// RLIMIT_MEMLOCK's soft value for COMMAND, which will not hold CAP_IPC_LOCK.
    pub limit: u64,
    /// About what is locked at start (the footprint estimate).
    pub at_start: u64,
    /// The main stack at start, pre-fault included.
    pub stack_at_start: u64,
    /// COMMAND's soft RLIMIT_STACK: how far the main stack may grow.
    pub stack_limit: Limit,
    /// --future.
    pub future: bool,
    /// The program links pthread_create.
    pub threads: bool,
    /// The program grows its main stack to its whole RLIMIT_STACK at start (Ruby).
    pub whole_stack: bool,
    /// Each new thread's stack: --thread-stack, or glibc's default.
    pub thread_stack: u64,
    /// --thread-stack was given.
    pub thread_stack_given: bool,
}

impl Growth {
    /// What the limit leaves after the lock at start.
    pub fn headroom(&self) -> u64 {
        self.limit.saturating_sub(self.at_start)
    }
}

/// The findings; `remedy(needed)` says how to let COMMAND lock `needed` bytes (a limit that
/// fits, or CAP_IPC_LOCK).
pub fn findings(g: &Growth, remedy: &dyn Fn(u64) -> String) -> Vec<Finding> {
    let mut out = Vec::new();
    // A lock that fails at start is a FAIL of its own; nothing is left to grow into.
    if g.at_start > g.limit {
        return out;
    }
    let room = g.headroom();
    let start = show(g.at_start);
    let limit = show(g.limit);

    // The main stack, charged page by page as it grows, with or without --future.
    let wanted = match g.stack_limit {
        Limit::Bytes(bytes) => Some(bytes.saturating_sub(g.stack_at_start)),
        Limit::Unlimited => None,
    };
    let stack_limit = match g.stack_limit {
        Limit::Bytes(bytes) => show(bytes),
        Limit::Unlimited => "unlimited".to_owned(),
    };
    if wanted.is_some_and(|w| w <= room) {
        out.push(Finding {
            verdict: Verdict::Ok,
            topic: "stack growth",
            text: format!(
                "the main stack can grow to its RLIMIT_STACK {stack_limit} within RLIMIT_MEMLOCK {limit}: about {} \
                 is left after the lock at start (about {start})",
                show(room)
            ),
            remedy: None,
        });
    } else if g.whole_stack {
        out.push(Finding::problem(
            Verdict::Fail,
            "stack growth",
            format!(
                "a Ruby interpreter: it touches the bottom of its main stack at start, as deep as its RLIMIT_STACK \
                 {stack_limit} allows, and the stack is locked, so the growth counts against RLIMIT_MEMLOCK {limit}: \
                 after the lock at start (about {start}) only {} is left, and it dies with SIGSEGV before its first \
                 line (the shim says so on stderr)",
                show(room)
            ),
            format!(
                "a limit that holds the whole stack: {}; or a smaller stack limit that fits in what is left \
                 (ulimit -s, LimitSTACK= in a systemd unit)",
                remedy(g.at_start.saturating_add(wanted.unwrap_or(8 << 20)))
            ),
        ));
    } else {
        out.push(Finding::problem(
            Verdict::Warn,
            "stack growth",
            format!(
                "the main stack is locked, so each page it grows by counts against RLIMIT_MEMLOCK {limit}: after the \
                 lock at start (about {start}) the stack can grow by {} more, to about {} of its RLIMIT_STACK \
                 {stack_limit}; deeper, the growth fails and the program gets SIGSEGV (the shim says so on \
                 stderr){}",
                show(room),
                show(g.stack_at_start.saturating_add(room)),
                if g.future {
                    ", and under --future the heap and thread stacks share that room"
                } else {
                    ""
                }
            ),
            format!(
                "a limit that holds the whole stack: {}; or, for a program that needs a known depth, --prefault \
                 of that size measured from a run (VmStk in /proc/PID/status at its peak) within the limit",
                remedy(g.at_start.saturating_add(wanted.unwrap_or(8 << 20)))
            ),
        ));
    }

    if !g.future {
        return out;
    }
    // Under --future each thread's whole stack, guard page included, is charged at creation.
    if g.threads {
        let each = g.thread_stack.saturating_add(GUARD);
        let fit = room / each.max(1);
        let small = room / (SMALL_THREAD_STACK + GUARD);
        let smaller = if g.thread_stack_given || g.thread_stack <= SMALL_THREAD_STACK || small == 0
        {
            String::new()
        } else {
            format!("give threads smaller stacks (--thread-stack 256K: {small} would fit); or ")
        };
        let (verdict, what) = if fit == 0 {
            (
                Verdict::Fail,
                "its first thread cannot be created: pthread_create fails with EAGAIN (the shim says \
                 so on stderr), and a program that does not expect it stops or runs crippled"
                    .to_owned(),
            )
        } else {
            (
                Verdict::Warn,
                format!(
                    "at most {fit} thread{} fit, fewer as the heap and the stack grow; the next pthread_create \
                     fails with EAGAIN",
                    if fit == 1 { "" } else { "s" }
                ),
            )
        };
        out.push(Finding::problem(
            verdict,
            "threads",
            format!(
                "a program that can create threads, under --future without CAP_IPC_LOCK: each thread's stack ({}{}) \
                 is locked in full when it is created, and after the lock at start (about {start}) RLIMIT_MEMLOCK \
                 {limit} leaves about {}: {what}",
                show(g.thread_stack),
                if g.thread_stack_given {
                    ", --thread-stack"
                } else {
                    ", the default from RLIMIT_STACK"
                },
                show(room)
            ),
            format!(
                "{smaller}{}",
                // Room for four threads on top of what is locked at start, or four more.
                remedy(
                    if fit == 0 { g.at_start } else { g.limit }
                        .saturating_add(each.saturating_mul(4))
                )
            ),
        ));
    }
    // The heap, and every other mapping made later.
    out.push(Finding::problem(
        Verdict::Warn,
        "MCL_FUTURE",
        format!(
            "what COMMAND maps later is locked too and counts against RLIMIT_MEMLOCK {limit}: after the lock at start \
             (about {start}) about {} is left for its heap, thread stacks and stack growth together; past it malloc \
             returns NULL, thread creation fails with EAGAIN and stack growth is a SIGSEGV",
            show(room)
        ),
        format!(
            "size RLIMIT_MEMLOCK for COMMAND's peak, not its start: {}",
            remedy(g.at_start.saturating_mul(2).max(g.limit.saturating_mul(2)))
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;

    /// nobody at the 8 MiB limit: a program of about 2.5 MiB at start, 8 MiB stacks.
    fn nobody() -> Growth {
        Growth {
            limit: 8 * MIB,
            at_start: 2560 * KIB,
            stack_at_start: 132 * KIB,
            stack_limit: Limit::Bytes(8 * MIB),
            future: false,
            threads: true,
            whole_stack: false,
            thread_stack: 8 * MIB,
            thread_stack_given: false,
        }
    }

    fn remedy(needed: u64) -> String {
        format!("--limit {}M", needed.div_ceil(MIB))
    }

    fn verdict(found: &[Finding], topic: &str) -> Option<Verdict> {
        found.iter().find(|f| f.topic == topic).map(|f| f.verdict)
    }

    #[test]
    fn the_stack_that_cannot_reach_its_limit_is_a_warning_with_the_figure() {
        let found = findings(&nobody(), &remedy);
        let stack = found.iter().find(|f| f.topic == "stack growth").unwrap();
        assert_eq!(stack.verdict, Verdict::Warn);
        assert!(
            stack.text.contains("can grow by 5.5 MiB more"),
            "{}",
            stack.text
        );
        assert!(stack.remedy.as_deref().unwrap().contains("--limit 11M"));
        // MCL_CURRENT alone: nothing else grows locked.
        assert_eq!(verdict(&found, "threads"), None);
        assert_eq!(verdict(&found, "MCL_FUTURE"), None);

        let roomy = Growth {
            limit: 64 * MIB,
            ..nobody()
        };
        assert_eq!(
            verdict(&findings(&roomy, &remedy), "stack growth"),
            Some(Verdict::Ok)
        );
        let unlimited_stack = Growth {
            limit: 64 * MIB,
            stack_limit: Limit::Unlimited,
            ..nobody()
        };
        assert_eq!(
            verdict(&findings(&unlimited_stack, &remedy), "stack growth"),
            Some(Verdict::Warn)
        );
        let ruby = Growth {
            whole_stack: true,
            ..nobody()
        };
        assert_eq!(
            verdict(&findings(&ruby, &remedy), "stack growth"),
            Some(Verdict::Fail)
        );
        let roomy_ruby = Growth {
            limit: 64 * MIB,
            ..ruby
        };
        assert_eq!(
            verdict(&findings(&roomy_ruby, &remedy), "stack growth"),
            Some(Verdict::Ok)
        );
        let failing_at_start = Growth {
            at_start: 9 * MIB,
            ..nobody()
        };
        assert!(findings(&failing_at_start, &remedy).is_empty());
    }

    #[test]
    fn a_thread_stack_larger_than_the_headroom_is_a_fail() {
        let future = Growth {
            future: true,
            ..nobody()
        };
        let found = findings(&future, &remedy);
        let threads = found.iter().find(|f| f.topic == "threads").unwrap();
        assert_eq!(threads.verdict, Verdict::Fail, "{}", threads.text);
        assert!(threads.text.contains("EAGAIN") && threads.text.contains("leaves about 5.5 MiB"));
        let remedy_text = threads.remedy.as_deref().unwrap();
        assert!(
            remedy_text.contains("--thread-stack 256K: 21 would fit"),
            "{remedy_text}"
        );
        assert_eq!(verdict(&found, "MCL_FUTURE"), Some(Verdict::Warn));

        let small = Growth {
            thread_stack: 256 * KIB,
            thread_stack_given: true,
            ..future
        };
        let found = findings(&small, &remedy);
        let threads = found.iter().find(|f| f.topic == "threads").unwrap();
        assert_eq!(threads.verdict, Verdict::Warn);
        assert!(
            threads.text.contains("at most 21 threads fit"),
            "{}",
            threads.text
        );
        assert!(!threads
            .remedy
            .as_deref()
            .unwrap()
            .contains("--thread-stack"));

        let unthreaded = Growth {
            threads: false,
            ..future
        };
        assert_eq!(verdict(&findings(&unthreaded, &remedy), "threads"), None);
    }

    /// A lock at start that takes the whole limit succeeds (the kernel refuses only past
    /// it): the stack gets a warning that it cannot grow at all, not silence as if the
    /// lock had failed.
    #[test]
    fn a_lock_that_fills_the_limit_exactly_warns_that_the_stack_cannot_grow() {
        let full = Growth {
            at_start: 8 * MIB,
            ..nobody()
        };
        let found = findings(&full, &remedy);
        let stack = found.iter().find(|f| f.topic == "stack growth").unwrap();
        assert_eq!(stack.verdict, Verdict::Warn);
        assert!(
            stack.text.contains("can grow by 0 B more"),
            "{}",
            stack.text
        );
    }

    /// Threads whose stacks are already 256 KiB or less, from RLIMIT_STACK or given with
    /// --thread-stack, are not told to take --thread-stack 256K: only a larger limit helps.
    #[test]
    fn small_thread_stacks_are_not_told_to_shrink() {
        let future = Growth {
            future: true,
            ..nobody()
        };
        for (thread_stack, thread_stack_given) in
            [(256 * KIB, false), (128 * KIB, false), (MIB, true)]
        {
            let g = Growth {
                thread_stack,
                thread_stack_given,
                ..future
            };
            let found = findings(&g, &remedy);
            let threads = found.iter().find(|f| f.topic == "threads").unwrap();
            let remedy_text = threads.remedy.as_deref().unwrap();
            assert!(
                !remedy_text.contains("--thread-stack"),
                "{thread_stack} given {thread_stack_given}: {remedy_text}"
            );
            assert!(remedy_text.contains("--limit"), "{remedy_text}");
        }
    }
}
