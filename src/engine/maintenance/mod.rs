//! Maintenance: everything that needs time to pass or a dead request to be
//! noticed — promotion of delayed tasks and retries, rescue of expired
//! leases, recovery of slots whose taker died, the per-pipeline completion
//! index, the retention sweep and the deletion of consumed entries.
//!
//! A run is exclusive by construction: it holds the lock of the state's
//! generation (`lock.rs`), and it writes every decision, its cursors and
//! its timers with one `set_many` (the ring publication of what it
//! re-queues) before its deadline — so a run that dies changes nothing,
//! and the next run decides again from the records. Deletions are garbage
//! of committed runs only. Each phase handles at most [`BUDGET`] entries
//! per pass, keeping a run O(batch) whatever the depth of the queue.
//!
//! | phase | module |
//! | --- | --- |
//! | delayed and retry inboxes → ring or timers | [`inbox`] |
//! | due timers: promotions, lease expiry | [`timers`] |
//! | ring walk: leases to watch, slots whose taker died; dead holes at the head | [`walk`] |
//! | completion log → pipeline index | [`index`] |
//! | retention sweep, consumed entries | [`retention`] |

mod inbox;
mod index;
mod retention;
mod state;
mod timers;
mod walk;

pub(crate) use index::pipeline_completions;
pub(crate) use state::MaintenanceState;

use super::keys::{CounterKey, Log};
use super::lock::{self, Acquired, LockKeys};
use super::observe::Event;
use super::record::{DeadLetterRef, Heartbeat, Place, State, TaskRecord, UNPLACED};
use super::ring;
use super::set_aside;
use super::store::{Deadline, Writes};
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::RescueReport;
use state::{Counters, SpentLock};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Most entries one phase reads at a time.
pub(crate) const BUDGET: u64 = 1024;
/// Most passes over the phases per run.
const ROUNDS: usize = 8;

/// The error of a task dead-lettered because its last lease expired.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";

/// The maintenance state (default when none was written yet).
pub(crate) fn state<K: KeyValue>(q: &KvWorkQueue<K>) -> Result<MaintenanceState> {
    Ok(q.get_json(&q.keys.maintenance_state())?.unwrap_or_default())
}

/// Run maintenance if [`QueueConfig::maintenance_period_ms`] has passed
/// since the last run; a failure is reported to the observer and the
/// calling request goes on. Returns the state as read before the run.
///
/// [`QueueConfig::maintenance_period_ms`]: crate::QueueConfig::maintenance_period_ms
pub(crate) fn run_if_due<K: KeyValue>(q: &KvWorkQueue<K>) -> MaintenanceState {
    let before = match state(q) {
        Ok(s) => s,
        Err(e) => {
            q.observer.event(&Event::MaintenanceFailed(e));
            return MaintenanceState::default();
        }
    };
    if q.now() >= before.committed_at + q.config.maintenance_period_ms {
        if let Err(e) = run_from(q, &before) {
            q.observer.event(&Event::MaintenanceFailed(e));
        }
    }
    before
}

/// One maintenance run. Unless `forced`, nothing happens before the
/// maintenance period has passed since the last run.
pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>, forced: bool) -> Result<RescueReport> {
    let s = state(q)?;
    if !forced && q.now() < s.committed_at + q.config.maintenance_period_ms {
        return Ok(RescueReport::default());
    }
    run_from(q, &s)
}

/// The lock of the run after generation `generation`.
struct MaintenanceLock<'a> {
    keys: &'a super::keys::Keys,
    generation: u64,
}

impl LockKeys for MaintenanceLock<'_> {
    fn counter(&self, attempt: u32) -> CounterKey {
        self.keys.lock(self.generation, attempt)
    }
    fn seen(&self, attempt: u32) -> String {
        self.keys.lock_seen(self.generation, attempt)
    }
    fn next(&self) -> String {
        self.keys.lock_next(self.generation)
    }
}

fn run_from<K: KeyValue>(q: &KvWorkQueue<K>, read: &MaintenanceState) -> Result<RescueReport> {
    let generation = read.generation;
    let lock = MaintenanceLock {
        keys: &q.keys,
        generation,
    };
    // A holder that started right after the period is surely still at
    // work for a deadline: noting that is a write for nothing.
    let holder_due = read.committed_at + q.config.maintenance_period_ms + q.timing.deadline_ms;
    let Acquired::Won { attempt, start } = lock::acquire(q, &lock, q.now() >= holder_due)? else {
        return Ok(RescueReport::default());
    };
    let done = run_held(q, generation, attempt, start);
    if done.is_err() {
        lock::release(q, &lock, attempt);
    }
    done
}

/// The run, once its lock is held.
fn run_held<K: KeyValue>(
    q: &KvWorkQueue<K>,
    generation: u64,
    attempt: u32,
    start: u64,
) -> Result<RescueReport> {
    // Re-read as the holder: the generation may be done already (and its
    // lock keys deleted, which is how this caller could win it).
    let s = state(q)?;
    if s.generation != generation {
        let stale = MaintenanceLock {
            keys: &q.keys,
            generation,
        };
        q.kv.delete_many(&lock::keys_up_to(&stale, attempt))?;
        return Ok(RescueReport::default());
    }
    let mut run = Run::start(q, s, q.deadline_from(start), attempt)?;
    run.sweep_consumed();
    run.delete_garbage()?;
    for _ in 0..ROUNDS {
        let before = run.progress();
        run.inbox(inbox::Inbox::Delayed)?;
        run.inbox(inbox::Inbox::Retries)?;
        run.timers()?;
        run.unblock_head()?;
        run.walk()?;
        run.completions()?;
        run.dead_letters()?;
        if run.progress() == before {
            break;
        }
    }
    run.retention()?;
    run.finish()
}

/// How a task goes back to the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Requeue {
    /// A delayed task became due.
    Promote,
    /// A failed task's retry became due.
    Retry,
    /// Its lease expired.
    Rescue,
    /// Its ring slot was taken by a request that died before leasing it.
    Retake,
}

/// One run in progress: what was read and what was decided.
pub(super) struct Run<'a, K> {
    pub q: &'a KvWorkQueue<K>,
    /// The time every decision of the run is made at.
    pub now: u64,
    deadline: Deadline,
    attempt: u32,
    pub state: MaintenanceState,
    /// The counters as this run read them.
    pub counters: Counters,
    /// Records read (and possibly changed) by this run.
    pub records: BTreeMap<String, TaskRecord>,
    pub heartbeats: BTreeMap<String, Heartbeat>,
    dirty: BTreeSet<String>,
    requeued: Vec<String>,
    dead: Vec<String>,
    /// Timers filed by this run: (due ms, entry).
    pub filed: Vec<(u64, timers::TimerEntry)>,
    /// Timer buckets this run consumed.
    pub fired: BTreeSet<(super::keys::Wheel, u64)>,
    /// Places whose timer found the record set aside (counted once).
    pub ended: HashSet<Place>,
    /// Completion entries to append to their pipelines' indexes.
    pub indexed: Vec<super::record::CompletionEntry>,
    /// Entries of each pipeline's index that expired in this run.
    pub expired: BTreeMap<String, u64>,
    /// Keys the next run deletes (unless this run writes them again).
    pub garbage: Vec<String>,
    /// Keys the next run deletes even though this run writes them (what
    /// readers still need until then).
    pub doomed: Vec<String>,
    /// Keys this run deletes before it commits.
    pub deletes: Vec<String>,
    /// Writes made ahead of the commit's decisions (padding of the ring).
    pub writes: Writes,
    /// Undecodable values met by this run.
    pub poison: Vec<(String, String)>,
    pub report: RescueReport,
}

impl<'a, K: KeyValue> Run<'a, K> {
    fn start(
        q: &'a KvWorkQueue<K>,
        mut state: MaintenanceState,
        deadline: Deadline,
        attempt: u32,
    ) -> Result<Self> {
        let c = q.read_counters(&[
            &q.keys.ring_head(),
            &q.keys.tail(Log::Ring),
            &q.keys.tail(Log::Delayed),
            &q.keys.tail(Log::Retries),
            &q.keys.tail(Log::Completions),
            &q.keys.tail(Log::DeadLetters),
            &q.keys.tail(Log::SetAside),
        ])?;
        // Read after the counters: every reservation they count was made
        // before this instant.
        let now = q.now();
        let counters = Counters {
            at: now,
            ring_head: c[0],
            ring_tail: c[1],
            delayed_tail: c[2],
            retries_tail: c[3],
            completions_tail: c[4],
            dead_tail: c[5],
            set_aside_tail: c[6],
        };
        if now >= state.mark.at + q.timing.abandon_after_ms {
            state.graced = state.mark;
            state.mark = counters;
        }
        // A read that fails fails the run: a run that skipped the garbage
        // would commit its own list over it and leak those keys.
        let key = q.keys.garbage();
        let mut found = q.read_many::<Vec<String>>(std::slice::from_ref(&key))?;
        q.report_poison(&found.poison);
        let garbage = found.values.remove(&key).unwrap_or_default();
        Ok(Self {
            q,
            now,
            deadline,
            attempt,
            state,
            counters,
            records: BTreeMap::new(),
            heartbeats: BTreeMap::new(),
            dirty: BTreeSet::new(),
            requeued: Vec::new(),
            dead: Vec::new(),
            filed: Vec::new(),
            fired: BTreeSet::new(),
            ended: HashSet::new(),
            indexed: Vec::new(),
            expired: BTreeMap::new(),
            garbage: Vec::new(),
            doomed: Vec::new(),
            deletes: garbage,
            writes: Writes::default(),
            poison: Vec::new(),
            report: RescueReport::default(),
        })
    }

    /// The cursors, to tell whether a pass moved any of them.
    fn progress(&self) -> (state::Cursors, state::WheelCursors, u64, usize) {
        (
            self.state.cursors,
            self.state.wheel,
            self.counters.ring_head,
            self.filed.len() + self.requeued.len(),
        )
    }

    /// Read the records of `ids` afresh — except those this run already
    /// changed, whose changed copy is what the run will write.
    pub fn load<'i>(&mut self, ids: impl IntoIterator<Item = &'i String>) -> Result<()> {
        let fresh: BTreeSet<&str> = ids
            .into_iter()
            .filter(|id| !self.dirty.contains(*id))
            .map(String::as_str)
            .collect();
        let loaded = self.q.load_tasks(fresh)?;
        self.records.extend(loaded.records);
        self.heartbeats.extend(loaded.heartbeats);
        self.poison.extend(loaded.poison);
        Ok(())
    }

    /// Send a task back to the ring.
    pub fn requeue(&mut self, id: &str, how: Requeue) {
        let Some(r) = self.records.get_mut(id) else {
            return;
        };
        match how {
            Requeue::Promote => {
                self.state.totals.delayed_promoted += 1;
                self.report.promoted += 1;
            }
            Requeue::Retry => {
                r.task.attempt += 1;
                self.state.totals.retries_promoted += 1;
                self.report.promoted += 1;
            }
            Requeue::Rescue => {
                r.task.attempt += 1;
                self.state.totals.rescued += 1;
                self.report.rescued += 1;
            }
            Requeue::Retake => {}
        }
        r.requeue(Place::ring(UNPLACED), self.now);
        self.requeued.push(id.to_string());
        self.dirty.insert(id.to_string());
    }

    /// Rescue an expired lease: next attempt, or the dead-letter list when
    /// none is left.
    pub fn rescue(&mut self, id: &str) {
        let Some(r) = self.records.get_mut(id) else {
            return;
        };
        if r.task.attempt + 1 < r.max_attempts {
            self.requeue(id, Requeue::Rescue);
            return;
        }
        r.state = State::DeadLetter {
            error: LEASE_EXPIRED.to_string(),
            failed_at: self.now,
        };
        r.updated_at = self.now;
        self.report.dead_lettered += 1;
        self.state.totals.rescued_dead += 1;
        self.dead.push(id.to_string());
        self.dirty.insert(id.to_string());
    }

    /// Delete the garbage of committed runs, the consumed entries queued
    /// by [`Run::sweep_consumed`] and the keys of locks no contender can
    /// touch any more — all before this run reads anything else.
    fn delete_garbage(&mut self) -> Result<()> {
        let q = self.q;
        let old = self.now.saturating_sub(q.timing.abandon_after_ms);
        for s in self
            .state
            .spent_locks
            .iter()
            .filter(|s| s.released_at <= old)
        {
            let lock = MaintenanceLock {
                keys: &q.keys,
                generation: s.generation,
            };
            self.deletes.extend(lock::keys_up_to(&lock, s.attempt));
        }
        self.state.spent_locks.retain(|s| s.released_at > old);
        if self.deletes.is_empty() {
            return Ok(());
        }
        q.within(self.deadline, q.now(), "maintenance")?;
        q.kv.delete_many(&std::mem::take(&mut self.deletes))?;
        Ok(())
    }

    /// Write every decision and the new state in one `set_many` (through
    /// the ring, which places what this run re-queued), after deleting the
    /// garbage of committed runs.
    fn finish(mut self) -> Result<RescueReport> {
        let q = self.q;
        let mut writes = std::mem::take(&mut self.writes);
        if !self.dead.is_empty() {
            let first = q.reserve(Log::DeadLetters, self.dead.len() as u64)?;
            for (i, id) in self.dead.iter().enumerate() {
                let n = first + i as u64;
                writes.put(
                    q.keys.entry(Log::DeadLetters, n),
                    &DeadLetterRef {
                        id: id.clone(),
                        failed_at: self.now,
                    },
                );
                if let Some(r) = self.records.get_mut(id) {
                    r.at = Place::dead_letters(n);
                }
            }
        }
        self.write_timers(&mut writes)?;
        self.write_index(&mut writes)?;
        let poison = std::mem::take(&mut self.poison);
        set_aside::record(q, &poison, &mut writes)?;
        let requeued: BTreeSet<&String> = self.requeued.iter().collect();
        for id in self.dirty.iter().filter(|id| !requeued.contains(id)) {
            if let Some(r) = self.records.get(id) {
                writes.put(q.keys.task(id), r);
            }
        }
        let records: Vec<TaskRecord> = self
            .requeued
            .iter()
            .filter_map(|id| self.records.get(id).cloned())
            .collect();
        // Garbage of this run: what it consumed and does not write again,
        // and what it writes for the last time.
        self.garbage.retain(|k| !writes.contains(k));
        self.garbage.append(&mut self.doomed);
        self.garbage.sort();
        self.garbage.dedup();
        self.state.spent_locks.push(SpentLock {
            generation: self.state.generation,
            attempt: self.attempt,
            released_at: self.now,
        });
        self.state.generation += 1;
        self.state.committed_at = self.now;
        writes.put(q.keys.maintenance_state(), &self.state);
        writes.put(q.keys.garbage(), &self.garbage);
        let deadline = self.deadline;
        ring::publish(q, "maintenance", records, writes, deadline, |_| Ok(()))?;
        Ok(self.report)
    }
}
