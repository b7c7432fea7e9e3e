//! RLIMIT_MEMLOCK and RLIMIT_STACK for COMMAND.
//!
//! Resource limits survive execve(2), so these are the one part of locking the launcher can
//! do itself. Each rule is a pure function of the limits in force and what was asked, which
//! the plan records (the new limits, or why they cannot be had), so that every decision can be
//! tested and shown by `--dry-run` and `--check` before anything changes; `crate::apply`
//! sets them.

use crate::size::{show, Limit, Rlimit};

/// Stack in use when the shim runs, beyond the argument and environment strings: the
/// kernel's auxiliary vector and pointers, ld.so's and the constructors' frames, and the
/// random offset of the stack top. Generous; the shim checks the real figure.
pub const STACK_HEADROOM: u64 = 256 << 10;

/// What was asked of the limits, and what memlock-run may do about them.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    /// `--limit`, if given.
    pub memlock: Option<Limit>,
    /// `--prefault`, in bytes (0 for none).
    pub prefault: u64,
    /// `--heap`, in bytes (0 for none).
    pub heap: u64,
    /// Bytes of argument and environment strings COMMAND starts with.
    pub args_bytes: u64,
    /// COMMAND will hold CAP_IPC_LOCK, so RLIMIT_MEMLOCK does not bind its mlockall.
    pub holds_ipc_lock: bool,
    /// memlock-run holds CAP_SYS_RESOURCE, so it may raise hard limits.
    pub may_raise_hard: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub before: Rlimit,
    pub after: Rlimit,
}

impl Change {
    pub fn describe(&self) -> String {
        if self.before == self.after {
            format!("{} (unchanged)", self.after)
        } else {
            format!("{} -> {}", self.before, self.after)
        }
    }
}

/// Without CAP_IPC_LOCK the pre-faulted stack and heap alone must fit under the soft limit.
pub fn prefault_fits(request: &Ask, memlock_after: Rlimit) -> Result<(), String> {
    let pre_faulted = request.prefault.saturating_add(request.heap);
    if pre_faulted > 0 && !request.holds_ipc_lock && Limit::Bytes(pre_faulted) >= memlock_after.soft
    {
        let asked = match (request.prefault, request.heap) {
            (0, heap) => format!("--heap {}", show(heap)),
            (prefault, 0) => format!("--prefault {}", show(prefault)),
            (prefault, heap) => format!("--prefault {} with --heap {}", show(prefault), show(heap)),
        };
        return Err(format!(
            "{asked} cannot be locked under an RLIMIT_MEMLOCK of {} (the program's own mappings come on top); \
             pre-fault less, raise the limit (--limit, LimitMEMLOCK= in a systemd unit, ulimit -l), or run with \
             CAP_IPC_LOCK (memlock-run as root, AmbientCapabilities=CAP_IPC_LOCK in a unit)",
            memlock_after.soft
        ));
    }
    Ok(())
}

/// RLIMIT_MEMLOCK for COMMAND; `notes` gets what the user should know.
pub fn memlock(request: &Ask, now: Rlimit, notes: &mut Vec<String>) -> Result<Rlimit, String> {
    let Some(wanted) = request.memlock else {
        // As far as allowed: unlimited if the hard limit may be raised, else the hard limit.
        return Ok(if request.may_raise_hard {
            Rlimit::UNLIMITED
        } else {
            Rlimit {
                soft: now.hard,
                hard: now.hard,
            }
        });
    };
    if wanted <= now.hard {
        return Ok(Rlimit {
            soft: wanted,
            hard: now.hard,
        });
    }
    if request.may_raise_hard {
        return Ok(Rlimit {
            soft: wanted,
            hard: wanted,
        });
    }
    if request.holds_ipc_lock {
        notes.push(format!(
            "--limit {wanted} is above the hard RLIMIT_MEMLOCK of {}, which only CAP_SYS_RESOURCE may raise; the soft \
             limit is set to {} instead, and COMMAND holds CAP_IPC_LOCK, so its mlockall is not bound by the limit",
            now.hard, now.hard
        ));
        return Ok(Rlimit {
            soft: now.hard,
            hard: now.hard,
        });
    }
    Err(format!(
        "--limit {wanted} is above the hard RLIMIT_MEMLOCK of {}, and raising a hard limit needs CAP_SYS_RESOURCE; \
         ask for at most {}, raise the hard limit where it is set (LimitMEMLOCK= in a systemd unit, memlock in \
         /etc/security/limits.conf, ulimit -Hl as root), or run COMMAND with CAP_IPC_LOCK, which the limit does not \
         bind (memlock-run as root, AmbientCapabilities=CAP_IPC_LOCK in a unit)",
        now.hard,
        now.hard
    ))
}

/// The soft RLIMIT_STACK the pre-fault needs, and the thread stack size to keep.
pub fn stack(request: &Ask, now: Rlimit) -> Result<(Rlimit, Option<u64>), String> {
    if request.prefault == 0 {
        return Ok((now, None));
    }
    let needed = request
        .prefault
        .saturating_add(request.args_bytes)
        .saturating_add(STACK_HEADROOM);
    let needed = needed.saturating_add(4095) & !4095;
    if now.soft >= Limit::Bytes(needed) {
        return Ok((now, None));
    }
    if now.hard < Limit::Bytes(needed) {
        let most = match now.hard {
            Limit::Bytes(hard) => {
                let in_use = request.args_bytes.saturating_add(STACK_HEADROOM);
                hard.saturating_sub(in_use.saturating_add(4095) & !4095)
            }
            Limit::Unlimited => unreachable!("an unlimited hard limit allows any soft limit"),
        };
        return Err(format!(
            "--prefault {} needs an RLIMIT_STACK of at least {} (the pre-fault plus the stack in use at start), but \
             the hard limit is {}; pre-fault at most {}, or raise the hard stack limit (LimitSTACK= in a systemd \
             unit, ulimit -Hs as root)",
            show(request.prefault),
            show(needed),
            now.hard,
            show(most)
        ));
    }
    // glibc sizes new threads' stacks from the soft RLIMIT_STACK it finds at start; have the
    // shim restore the size they would have had.
    let thread_stack = match now.soft {
        Limit::Bytes(soft) => Some(soft),
        Limit::Unlimited => None,
    };
    Ok((
        Rlimit {
            soft: Limit::Bytes(needed),
            hard: now.hard,
        },
        thread_stack,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three rules in the plan's order, stopping at the first refusal.
    #[derive(Debug)]
    struct Plan {
        memlock: Change,
        stack: Change,
        thread_stack: Option<u64>,
        notes: Vec<String>,
    }

    fn plan(request: Ask, memlock_now: Rlimit, stack_now: Rlimit) -> Result<Plan, String> {
        let mut notes = Vec::new();
        let after = memlock(&request, memlock_now, &mut notes)?;
        prefault_fits(&request, after)?;
        let (stack_after, thread_stack) = stack(&request, stack_now)?;
        Ok(Plan {
            memlock: Change {
                before: memlock_now,
                after,
            },
            stack: Change {
                before: stack_now,
                after: stack_after,
            },
            thread_stack,
            notes,
        })
    }

    const MIB: u64 = 1 << 20;

    fn limit(soft: Limit, hard: Limit) -> Rlimit {
        Rlimit { soft, hard }
    }

    fn request() -> Ask {
        Ask {
            memlock: None,
            prefault: 0,
            heap: 0,
            args_bytes: 4096,
            holds_ipc_lock: false,
            may_raise_hard: false,
        }
    }

    const EIGHT: Rlimit = Rlimit {
        soft: Limit::Bytes(8 * MIB),
        hard: Limit::Bytes(8 * MIB),
    };
    const STACK: Rlimit = Rlimit {
        soft: Limit::Bytes(8 * MIB),
        hard: Limit::Unlimited,
    };

    #[test]
    fn default_raises_soft_to_hard() {
        let low = limit(Limit::Bytes(64 << 10), Limit::Bytes(8 * MIB));
        let plan = plan(request(), low, STACK).unwrap();
        assert_eq!(plan.memlock.after, EIGHT);
        let plan = plan_with(
            Ask {
                may_raise_hard: true,
                ..request()
            },
            low,
        );
        assert_eq!(
            plan.memlock.after,
            limit(Limit::Unlimited, Limit::Unlimited)
        );
    }

    fn plan_with(request: Ask, memlock: Rlimit) -> Plan {
        plan(request, memlock, STACK).unwrap()
    }

    #[test]
    fn a_limit_within_the_hard_limit_is_set() {
        let plan = plan_with(
            Ask {
                memlock: Some(Limit::Bytes(MIB)),
                ..request()
            },
            EIGHT,
        );
        assert_eq!(
            plan.memlock.after,
            limit(Limit::Bytes(MIB), Limit::Bytes(8 * MIB))
        );
    }

    #[test]
    fn a_limit_above_the_hard_limit_is_an_error_without_privilege() {
        let err = plan(
            Ask {
                memlock: Some(Limit::Bytes(64 * MIB)),
                ..request()
            },
            EIGHT,
            STACK,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--limit 64 MiB is above the hard RLIMIT_MEMLOCK of 8 MiB"),
            "{text}"
        );
        assert!(text.contains("CAP_IPC_LOCK"), "{text}");
    }

    #[test]
    fn a_limit_above_the_hard_limit_is_a_note_with_ipc_lock() {
        let plan = plan_with(
            Ask {
                memlock: Some(Limit::Unlimited),
                holds_ipc_lock: true,
                ..request()
            },
            EIGHT,
        );
        assert_eq!(plan.memlock.after, EIGHT);
        assert_eq!(plan.notes.len(), 1);
        let plan = plan_with(
            Ask {
                memlock: Some(Limit::Unlimited),
                may_raise_hard: true,
                ..request()
            },
            EIGHT,
        );
        assert_eq!(
            plan.memlock.after,
            limit(Limit::Unlimited, Limit::Unlimited)
        );
        assert!(plan.notes.is_empty());
    }

    #[test]
    fn a_prefault_near_2_to_the_64_does_not_wrap() {
        let request = Ask {
            memlock: None,
            prefault: u64::MAX,
            heap: 0,
            args_bytes: 4096,
            holds_ipc_lock: true,
            may_raise_hard: false,
        };
        let now = Rlimit {
            soft: Limit::Bytes(16 * MIB),
            hard: Limit::Bytes(16 * MIB),
        };
        let err = stack(&request, now).unwrap_err();
        assert!(err.contains("pre-fault at most 15.74 MiB"), "{err}");
    }

    #[test]
    fn prefault_raises_the_soft_stack_limit_and_keeps_thread_stacks() {
        let plan = plan(
            Ask {
                prefault: 8 * MIB,
                holds_ipc_lock: true,
                ..request()
            },
            EIGHT,
            STACK,
        )
        .unwrap();
        assert_eq!(
            plan.stack.after.soft,
            Limit::Bytes(8 * MIB + 4096 + STACK_HEADROOM)
        );
        assert_eq!(plan.stack.after.hard, Limit::Unlimited);
        assert_eq!(plan.thread_stack, Some(8 * MIB));
    }

    #[test]
    fn prefault_within_the_stack_limit_changes_nothing() {
        let big = limit(Limit::Bytes(64 * MIB), Limit::Unlimited);
        let plan = plan(
            Ask {
                prefault: 8 * MIB,
                holds_ipc_lock: true,
                ..request()
            },
            EIGHT,
            big,
        )
        .unwrap();
        assert_eq!(plan.stack.after, big);
        assert_eq!(plan.thread_stack, None);
    }

    #[test]
    fn prefault_past_the_hard_stack_limit_is_refused() {
        let err = plan(
            Ask {
                prefault: 8 * MIB,
                holds_ipc_lock: true,
                ..request()
            },
            EIGHT,
            EIGHT,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("the hard limit is 8 MiB; pre-fault at most 7.74 MiB"),
            "{text}"
        );
    }

    #[test]
    fn prefault_past_the_memlock_limit_is_refused_without_ipc_lock() {
        let err = plan(
            Ask {
                prefault: 8 * MIB,
                ..request()
            },
            EIGHT,
            STACK,
        )
        .unwrap_err();
        assert!(err.to_string().contains("RLIMIT_MEMLOCK of 8 MiB"), "{err}");
        let err = plan(
            Ask {
                prefault: MIB,
                heap: 7 * MIB,
                ..request()
            },
            EIGHT,
            STACK,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--prefault 1 MiB with --heap 7 MiB cannot be locked"),
            "{err}"
        );
        assert!(plan(
            Ask {
                prefault: MIB,
                ..request()
            },
            EIGHT,
            STACK
        )
        .is_ok());
    }

    /// With nothing to pre-fault there is nothing to fit, even under a soft limit of 0.
    #[test]
    fn no_pre_fault_fits_any_lock_limit() {
        let zero = limit(Limit::Bytes(0), Limit::Bytes(0));
        assert_eq!(prefault_fits(&request(), zero), Ok(()));
        let one_page = Ask {
            prefault: 4096,
            ..request()
        };
        assert!(prefault_fits(&one_page, zero).is_err());
    }

    /// A hard RLIMIT_STACK of exactly what the pre-fault needs is enough: the soft limit is
    /// raised to it. One page less is refused, naming how much could be pre-faulted.
    #[test]
    fn a_hard_stack_limit_of_exactly_the_need_is_enough() {
        let ask = Ask {
            prefault: 16 * MIB,
            ..request()
        };
        let needed = (16 * MIB + 4096 + STACK_HEADROOM + 4095) & !4095;
        let (after, thread_stack) =
            stack(&ask, limit(Limit::Bytes(8 * MIB), Limit::Bytes(needed))).expect("fits");
        assert_eq!(after.soft, Limit::Bytes(needed));
        assert_eq!(thread_stack, Some(8 * MIB));
        let refused = stack(
            &ask,
            limit(Limit::Bytes(8 * MIB), Limit::Bytes(needed - 4096)),
        )
        .expect_err("one page short");
        assert!(refused.contains("pre-fault at most"), "{refused}");
    }

    /// --dry-run's and -v's limit lines: the limit, and where it comes from when it changes.
    #[test]
    fn a_limit_change_is_described_from_before_to_after() {
        let sixteen = limit(Limit::Bytes(16 * MIB), Limit::Bytes(16 * MIB));
        let same = Change {
            before: EIGHT,
            after: EIGHT,
        };
        assert_eq!(same.describe(), format!("{EIGHT} (unchanged)"));
        let raised = Change {
            before: EIGHT,
            after: sixteen,
        };
        assert_eq!(raised.describe(), format!("{EIGHT} -> {sixteen}"));
        assert!(
            raised.describe().contains("16 MiB"),
            "{}",
            raised.describe()
        );
    }
}
