//! Maintenance: everything that needs time to pass or a crashed request to
//! be noticed — promotion of delayed tasks and retries, rescue of expired
//! leases, recovery of work taken or reserved by requests that died, and
//! the per-pipeline completion index.
//!
//! A run is exclusive: it takes a lock with one `increment` (see [`run`]).
//! It reads what changed since its cursors, decides, and writes
//! every decision, its cursors and its timers with one `set_many` — so a run
//! that dies changes nothing but the reservations it made, and the next run
//! decides again from the records. Each phase handles at most [`BUDGET`]
//! entries, keeping a run O(batch) whatever the depth of the queue.
//!
//! | phase | module |
//! | --- | --- |
//! | delayed and retry inboxes → ring or timers | [`inbox`] |
//! | orphan log: tasks written to slots dequeuers took too early → ring | [`orphans`] |
//! | due timers: promotions, lease expiry | [`timers`] |
//! | ring walk: leases to watch, slots whose taker died | [`walk`] |
//! | completion log → pipeline index | [`index`] |

mod inbox;
mod index;
mod orphans;
mod state;
mod timers;
mod walk;

pub(crate) use index::pipeline_completions;
pub(crate) use orphans::orphans_waiting;
pub(crate) use state::MaintenanceState;

use super::keys::Log;
use super::record::{DeadLetterRef, Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::RescueReport;
use state::Mark;
use std::collections::{BTreeSet, HashMap};
use timers::TimerEntry;

/// Most entries one phase reads at a time.
pub(crate) const BUDGET: u64 = 1024;
/// Most passes over the phases per run: a run handles at most
/// `ROUNDS × BUDGET` entries per phase.
const ROUNDS: usize = 8;

/// Run maintenance if [`QueueConfig::maintenance_period_ms`] has passed
/// since the last run; failures are left for the next caller (the request
/// that triggered it goes on).
///
/// [`QueueConfig::maintenance_period_ms`]: crate::QueueConfig::maintenance_period_ms
pub(crate) fn run_if_due<K: KeyValue>(q: &KvWorkQueue<K>) {
    let _ = run(q, false);
}

/// One maintenance run. Unless `forced`, nothing happens before the
/// maintenance period has passed since the last run.
///
/// Exclusivity: the lock is keyed by the generation of the state the run
/// starts from and by the current time slot (one grace period long). Every
/// contender that read the same state contends for the same key, so one
/// wins; a winner that dies only blocks maintenance until the slot ends. A
/// run commits only within the slot (and half a grace period) it started
/// in, so a later slot's winner never overlaps it.
pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>, forced: bool) -> Result<RescueReport> {
    let now = q.now();
    let state_key = q.keys.maintenance_state();
    let state: MaintenanceState = q.get_json(&state_key)?.unwrap_or_default();
    if !forced && now < state.last_run_at + q.config.maintenance_period_ms {
        return Ok(RescueReport::default());
    }
    let slot = now / q.config.grace_ms;
    let generation = state.generation;
    if q.increment(&q.keys.maintenance_lock(generation, slot), 1)? != 1 {
        return Ok(RescueReport::default());
    }
    // Re-read: the state may have moved on between the first read and the
    // lock (then this lock is for a generation that is already done).
    let state: MaintenanceState = q.get_json(&state_key)?.unwrap_or_default();
    if state.generation != generation {
        return Ok(RescueReport::default());
    }
    let mut run = Run::start(q, state, now, (generation, slot))?;
    for _ in 0..ROUNDS {
        let before = run.progress();
        run.inbox(inbox::Inbox::Delayed)?;
        run.inbox(inbox::Inbox::Retries)?;
        run.orphans()?;
        run.timers()?;
        run.unblock_ring()?;
        run.walk()?;
        run.completions()?;
        if run.progress() == before {
            break;
        }
    }
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
    /// It was written to a ring slot a dequeuer had already taken.
    Orphan,
}

/// The error of a task dead-lettered because its last lease expired.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";

/// Where a task is parked until `finish` gives it its real place.
const UNPLACED: u64 = u64::MAX;

/// One run in progress: what was read and what was decided.
pub(super) struct Run<'a, K> {
    pub q: &'a KvWorkQueue<K>,
    pub now: u64,
    lock: (u64, u64),
    pub state: MaintenanceState,
    pub ring_head: u64,
    pub ring_tail: u64,
    pub delayed_tail: u64,
    pub retries_tail: u64,
    pub completions_tail: u64,
    pub orphans_tail: u64,
    /// Orphan ranges to append again (their slots are not reserved yet).
    pub reorphaned: Vec<super::record::OrphanRange>,
    /// Records read (and possibly changed) by this run.
    pub records: HashMap<String, TaskRecord>,
    dirty: BTreeSet<String>,
    requeued: Vec<String>,
    dead: Vec<String>,
    pub filed: Vec<(u64, TimerEntry)>,
    pub indexed: Vec<super::record::CompletionEntry>,
    pub markers: Vec<(String, u64)>,
    pub stale_chunks: Vec<String>,
    pub report: RescueReport,
}

impl<'a, K: KeyValue> Run<'a, K> {
    fn start(
        q: &'a KvWorkQueue<K>,
        mut state: MaintenanceState,
        now: u64,
        lock: (u64, u64),
    ) -> Result<Self> {
        let c = q.read_counters(&[
            &q.keys.head(Log::Ring),
            &q.keys.tail(Log::Ring),
            &q.keys.tail(Log::Delayed),
            &q.keys.tail(Log::Retries),
            &q.keys.tail(Log::Completions),
            &q.keys.tail(Log::Orphans),
        ])?;
        if now >= state.mark.at + q.config.grace_ms {
            state.graced = state.mark;
            state.mark = Mark {
                at: now,
                ring_head: c[0],
                ring_tail: c[1],
                delayed_tail: c[2],
                retries_tail: c[3],
                completions_tail: c[4],
                orphans_tail: c[5],
            };
        }
        Ok(Self {
            q,
            now,
            lock,
            state,
            ring_head: c[0],
            ring_tail: c[1],
            delayed_tail: c[2],
            retries_tail: c[3],
            completions_tail: c[4],
            orphans_tail: c[5],
            reorphaned: Vec::new(),
            records: HashMap::new(),
            dirty: BTreeSet::new(),
            requeued: Vec::new(),
            dead: Vec::new(),
            filed: Vec::new(),
            indexed: Vec::new(),
            markers: Vec::new(),
            stale_chunks: Vec::new(),
            report: RescueReport::default(),
        })
    }

    /// The cursors, to tell whether a pass moved any of them.
    fn progress(&self) -> (u64, u64, u64, u64, u64) {
        let s = &self.state;
        (
            s.walk,
            s.delayed + s.retries + s.orphans,
            s.completions,
            s.timers.len() as u64,
            self.ring_head,
        )
    }

    /// Read the records of `ids` afresh — except those this run already
    /// changed, whose changed copy is what the run will write.
    pub fn load<'i>(&mut self, ids: impl IntoIterator<Item = &'i String>) -> Result<()> {
        let fresh: Vec<&str> = ids
            .into_iter()
            .filter(|id| !self.dirty.contains(*id))
            .map(String::as_str)
            .collect();
        let loaded = self.q.load_tasks(fresh)?;
        self.records.extend(loaded);
        Ok(())
    }

    /// Ids among `ids` whose task has a stored result.
    pub fn completed(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, super::record::ResultRecord>> {
        self.q
            .load_results(ids.iter().filter_map(|id| self.records.get(id)))
    }

    /// A stored result overrides the record: mark it completed.
    pub fn repair(&mut self, id: &str, result: &super::record::ResultRecord) {
        if let Some(r) = self.records.get_mut(id) {
            r.state = State::Completed {
                lease_id: result.lease_id.clone(),
                seq: result.seq,
            };
            r.updated_at = self.now;
            self.dirty.insert(id.to_string());
        }
    }

    /// Send a task back to the ring.
    pub fn requeue(&mut self, id: &str, how: Requeue) {
        let Some(r) = self.records.get_mut(id) else {
            return;
        };
        match how {
            Requeue::Promote => {
                r.requeue(Place::ring(UNPLACED), self.now, false);
                self.report.promoted += 1;
            }
            Requeue::Retry => {
                r.task.attempt += 1;
                r.requeue(Place::ring(UNPLACED), self.now, true);
                self.report.promoted += 1;
            }
            Requeue::Rescue => {
                r.task.attempt += 1;
                r.requeue(Place::ring(UNPLACED), self.now, true);
                self.report.rescued += 1;
                self.state.totals.rescued += 1;
            }
            Requeue::Retake => r.requeue(Place::ring(UNPLACED), self.now, true),
            Requeue::Orphan => r.requeue(Place::ring(UNPLACED), self.now, false),
        }
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
        r.at = Place::dead_letters(UNPLACED);
        r.updated_at = self.now;
        self.report.dead_lettered += 1;
        self.state.totals.rescued_dead += 1;
        self.dead.push(id.to_string());
        self.dirty.insert(id.to_string());
    }

    /// Ring slots at the head that are reserved but unwritten since before
    /// the graced mark belong to requests that died: take them so
    /// dequeuers move on (the walk counts them as holes later).
    fn unblock_ring(&mut self) -> Result<()> {
        let head = self.ring_head;
        let end = self
            .ring_tail
            .min(self.state.graced.ring_tail)
            .min(head + BUDGET);
        if head >= end {
            return Ok(());
        }
        let keys: Vec<String> = (head..end)
            .map(|n| self.q.keys.entry(Log::Ring, n))
            .collect();
        let found: std::collections::HashSet<String> = self
            .q
            .kv
            .get_many(&keys)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let holes = keys.iter().take_while(|k| !found.contains(*k)).count() as u64;
        if holes > 0 {
            // Should a dequeuer move the head meanwhile, the slots taken
            // here may hold tasks: the walk re-queues those after the grace.
            self.ring_head = self.q.increment(&self.q.keys.head(Log::Ring), holes)?;
        }
        Ok(())
    }

    /// Fail if this run has outlived its lock: another slot's winner may be
    /// running, so nothing is written and the next run decides again.
    fn check_lock(&self) -> Result<()> {
        let now = self.q.now();
        let grace = self.q.config.grace_ms;
        if now / grace != self.lock.1 || now.saturating_sub(self.now) >= grace / 2 {
            return Err(QueueError::TooSlow(
                "maintenance run outlived its lock".into(),
            ));
        }
        Ok(())
    }

    /// Place re-queued and dead-lettered tasks, then write every decision
    /// and the new state in one `set_many`.
    fn finish(mut self) -> Result<RescueReport> {
        let q = self.q;
        self.check_lock()?;
        let mut writes = Writes::default();
        let first = q.append(Log::Ring, &self.requeued, &mut writes)?;
        for (i, id) in self.requeued.iter().enumerate() {
            if let Some(r) = self.records.get_mut(id) {
                r.at = Place::ring(first + i as u64);
            }
        }
        let refs: Vec<DeadLetterRef> = self
            .dead
            .iter()
            .map(|id| DeadLetterRef {
                id: id.clone(),
                failed_at: self.now,
            })
            .collect();
        let first = q.append(Log::DeadLetters, &refs, &mut writes)?;
        for (i, id) in self.dead.iter().enumerate() {
            if let Some(r) = self.records.get_mut(id) {
                r.at = Place::dead_letters(first + i as u64);
            }
        }
        q.append(Log::Orphans, &self.reorphaned, &mut writes)?;
        for id in &self.dirty {
            if let Some(r) = self.records.get(id) {
                writes.put(q.keys.task(id), r);
            }
        }
        self.write_timers(&mut writes)?;
        // A bucket processed and filed again in this run is rewritten, not
        // garbage.
        self.stale_chunks.retain(|k| !writes.contains(k));
        self.write_index(&mut writes)?;
        let previous_lock = self.state.last_lock.replace(self.lock);
        self.state.generation += 1;
        self.state.last_run_at = self.now;
        writes.put(q.keys.maintenance_state(), &self.state);
        self.check_lock()?;
        writes.commit(&q.kv)?;
        // Garbage only from here: failures leave a key behind, nothing more.
        if let Some((generation, slot)) = previous_lock {
            let _ = q.kv.delete(&q.keys.maintenance_lock(generation, slot).0);
        }
        for key in &self.stale_chunks {
            let _ = q.kv.delete(key);
        }
        Ok(self.report)
    }
}
