//! What the shim said to the gate (protocol::GATE_WORD): the threads whose next exec it
//! judged, and the processes with spawns under way, each with its start time (a reused PID is
//! not them).
//!
//! A tree may say more than it executes (a thread that says its word and waits, thousands of
//! them), so each table is bounded ([`Table::MOST`]) and costs the same whatever it holds: a
//! lookup or insertion is a hash map's, and when a table is full the gate looks at its few
//! oldest entries ([`Table::LOOKS`]), drops those whose task has gone, and if none has, refuses
//! the new word (the prctl fails with ENOSPC, and the gate says so once per filling) rather
//! than keep it or read every entry again. A word refused is a word not given: the exec it
//! would have covered is judged like any other, and one whose memory the gate cannot read is
//! refused with a line. So a full table slows nothing down and lets nothing through.

use std::collections::{HashMap, VecDeque};

use super::serve::{start_time, tgid_of};
use crate::host::procfs::status_field;

/// The tables of the shim's words.
#[derive(Default)]
pub(super) struct Words {
    execs: Table<()>,
    spawns: Table<Spawns>,
}

/// A process's spawns under way: `open` said begun and not yet returned; `children`, the
/// execs of spawned children still to come, one per spawn (a spawn's child execs once), so
/// that another child of the process cannot pass for one while a long system(3) runs.
#[derive(Default)]
pub(super) struct Spawns {
    open: u32,
    children: u32,
}

/// Why a word was not kept.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The task that said it has gone, or is not what it was: nothing to keep.
    Gone,
    /// Its table is full of tasks that are still there.
    Full,
}

impl Words {
    /// The gate's line when a table is first full.
    pub(super) fn full_line() -> String {
        format!(
            "memlock-run: the exec gate's table of the shim's words is full ({} threads or processes said \
             that the shim judged their next exec or spawn, and have not made it yet); it refuses further words \
             until they do, so an exec whose memory the gate cannot read is refused meanwhile",
            Table::<()>::MOST
        )
    }

    /// Notes a word said by thread `tid`.
    pub(super) fn note(&mut self, tid: i32, word: u64) -> Result<(), Refused> {
        let started = start_time(tid).ok_or(Refused::Gone)?;
        let alive = |task: i32, started: u64| start_time(task) == Some(started);
        match word {
            memlock_run_protocol::GATE_EXEC => {
                self.execs.insert(tid, started, alive)?;
            }
            memlock_run_protocol::GATE_SPAWN | memlock_run_protocol::GATE_SPAWNED => {
                let process = tgid_of(tid).ok_or(Refused::Gone)?;
                let started = start_time(process).ok_or(Refused::Gone)?;
                if word == memlock_run_protocol::GATE_SPAWN {
                    let entry = self.spawns.insert(process, started, alive)?;
                    entry.open += 1;
                    entry.children += 1;
                } else if let Some(entry) = self.spawns.get_mut(process, started) {
                    entry.open = entry.open.saturating_sub(1);
                    if entry.open == 0 {
                        self.spawns.remove(process);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the shim said that this thread's exec, now, was judged (said once per exec).
    pub(super) fn take_exec(&mut self, tid: i32) -> bool {
        self.execs
            .remove(tid)
            .is_some_and(|(started, ())| start_time(tid) == Some(started))
    }

    /// Whether the calling task is a spawn's child (its own process, its parent's memory)
    /// whose parent, the same process as when it said so, has a spawn under way whose child
    /// has not executed yet; that one is then taken.
    pub(super) fn take_spawned(&mut self, tid: i32) -> bool {
        let Some(parent) = status_field(tid, "PPid").and_then(|p| p.parse::<i32>().ok()) else {
            return false;
        };
        let Some(started) = start_time(parent) else {
            return false;
        };
        match self.spawns.get_mut(parent, started) {
            Some(spawns) if spawns.children > 0 => {
                spawns.children -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Entries keyed by a task's ID, each with the task's start time, at most [`Table::MOST`],
/// and the order they came in (with stale places, skipped when met: an entry taken, or
/// replaced by a newer one for the same ID).
pub(super) struct Table<V> {
    map: HashMap<i32, (u64, V)>,
    order: VecDeque<(i32, u64)>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V: Default> Table<V> {
    /// At most this many entries.
    pub(super) const MOST: usize = 4096;
    /// Oldest entries looked at, when full, for one whose task has gone.
    pub(super) const LOOKS: usize = 8;

    /// The entry of `key` as started at `started`, a fresh one if there is none (or one of an
    /// earlier task of that ID); Full when there is no room for it. `alive(key, started)`
    /// says whether an entry's task is still there.
    pub(super) fn insert(
        &mut self,
        key: i32,
        started: u64,
        alive: impl Fn(i32, u64) -> bool,
    ) -> Result<&mut V, Refused> {
        let current = self.map.get(&key).is_some_and(|(s, _)| *s == started);
        if !current {
            if !self.map.contains_key(&key) && self.map.len() >= Self::MOST {
                self.make_room(alive)?;
            }
            self.map.insert(key, (started, V::default()));
            self.order.push_back((key, started));
            // Stale places grow with every entry taken: compacted when they outnumber the
            // entries, which costs a pass over at most twice MOST now and then.
            if self.order.len() > 2 * Self::MOST {
                let map = &self.map;
                self.order
                    .retain(|(k, s)| map.get(k).is_some_and(|(now, _)| now == s));
            }
        }
        Ok(&mut self.map.get_mut(&key).expect("just inserted").1)
    }

    /// Drops the first of the oldest entries whose task has gone; Full if none of the
    /// LOOKS oldest has (those go to the back, so that the next look sees others).
    fn make_room(&mut self, alive: impl Fn(i32, u64) -> bool) -> Result<(), Refused> {
        let mut looked = 0;
        while looked < Self::LOOKS {
            let Some((key, started)) = self.order.pop_front() else {
                break;
            };
            if !self.map.get(&key).is_some_and(|(s, _)| *s == started) {
                continue;
            }
            looked += 1;
            if alive(key, started) {
                self.order.push_back((key, started));
            } else {
                self.map.remove(&key);
                return Ok(());
            }
        }
        Err(Refused::Full)
    }

    pub(super) fn get_mut(&mut self, key: i32, started: u64) -> Option<&mut V> {
        match self.map.get_mut(&key) {
            Some((s, value)) if *s == started => Some(value),
            _ => None,
        }
    }

    pub(super) fn remove(&mut self, key: i32) -> Option<(u64, V)> {
        self.map.remove(&key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    type Execs = Table<()>;

    #[test]
    fn a_full_table_of_living_tasks_refuses_a_new_word_after_a_few_looks() {
        let mut table = Execs::default();
        for tid in 0..Execs::MOST as i32 {
            assert!(table.insert(tid, 7, |_, _| true).is_ok());
        }
        let looks = Cell::new(0);
        let alive = |_, _| {
            looks.set(looks.get() + 1);
            true
        };
        for tid in 0..1000 {
            looks.set(0);
            assert_eq!(
                table.insert(100_000 + tid, 7, alive).err(),
                Some(Refused::Full)
            );
            assert!(looks.get() <= Execs::LOOKS, "{} looks", looks.get());
        }
        assert_eq!(table.len(), Execs::MOST);
        // A word again from a task already there takes no room.
        assert!(table.insert(5, 7, |_, _| true).is_ok());
        assert_eq!(table.len(), Execs::MOST);
    }

    #[test]
    fn room_is_made_from_tasks_that_have_gone() {
        let mut table = Execs::default();
        for tid in 0..Execs::MOST as i32 {
            table.insert(tid, 1, |_, _| true).unwrap();
        }
        // Odd IDs have gone.
        let alive = |tid: i32, _| tid % 2 == 0;
        for tid in 0..100 {
            assert!(table.insert(100_000 + tid, 1, alive).is_ok(), "{tid}");
            assert_eq!(table.len(), Execs::MOST);
        }
        assert!(table.get_mut(1, 1).is_none(), "gone, dropped");
        assert!(table.get_mut(0, 1).is_some(), "alive, kept");
    }

    #[test]
    fn places_of_taken_entries_do_not_pile_up() {
        let mut table = Execs::default();
        for round in 0..10 * Execs::MOST as i32 {
            table.insert(round, 1, |_, _| true).unwrap();
            assert!(table.remove(round).is_some());
        }
        assert_eq!(table.len(), 0);
        assert!(
            table.order.len() <= 2 * Execs::MOST + 1,
            "{}",
            table.order.len()
        );
    }

    #[test]
    fn a_reused_id_is_another_task() {
        let mut table = Table::<Spawns>::default();
        table.insert(9, 1, |_, _| true).unwrap().open = 3;
        assert_eq!(table.get_mut(9, 1).map(|s| s.open), Some(3));
        assert!(table.get_mut(9, 2).is_none());
        assert_eq!(table.insert(9, 2, |_, _| true).unwrap().open, 0);
    }
}
