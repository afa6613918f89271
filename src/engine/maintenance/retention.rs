//! Bounded storage: consumed entries are deleted as soon as nobody can
//! touch them any more, finished tasks once they are older than
//! [`retention_ms`](crate::QueueConfig::retention_ms).
//!
//! - **Consumed entries** (ring slots and their settle counters, inbox
//!   entries) behind the walk and the inbox cursors, and behind the graced
//!   mark — a writer or taker still at work could otherwise write one back
//!   — are deleted by the run that sees them so: deleting what a committed
//!   state has passed is always safe.
//! - **Drain-gate counters** of epochs before the previous one.
//! - **Finished tasks**: the completion log and the dead-letter log are in
//!   finishing order, so the sweep walks each from its cursor and stops at
//!   the first entry younger than the retention period. A task's record,
//!   heartbeat, idempotency mapping and log entry become garbage of this
//!   run, deleted by the next one — after this run's decisions committed.
//!   Set-aside entries expire the same way, with the value they point to.
//!
//! Keys left per finished task once its retention has passed: none.

use super::{Run, BUDGET};
use crate::engine::dead_letter::RedriveLock;
use crate::engine::keys::Log;
use crate::engine::lock;
use crate::engine::record::{CompletionEntry, DeadLetterRef, Place, State, TaskRecord};
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::SetAside;

/// Most consumed ring slots deleted per run.
const SWEEP_BUDGET: u64 = 4 * BUDGET;
/// Most drain-gate epochs deleted per run.
const DRAIN_EPOCHS_BUDGET: u64 = 64;
/// Most finished tasks deleted per run and log.
const RETAIN_BUDGET: u64 = BUDGET / 2;

impl<K: KeyValue> Run<'_, K> {
    /// Queue the deletion of consumed entries the committed state passed.
    pub(super) fn sweep_consumed(&mut self) {
        let graced = self.state.graced;
        let c = &mut self.state.cursors;
        let keys = &self.q.keys;
        let ring_end = c
            .walk
            .min(graced.ring_head)
            .min(graced.ring_tail)
            .min(c.swept_ring + SWEEP_BUDGET);
        for n in c.swept_ring..ring_end {
            self.deletes.push(keys.entry(Log::Ring, n));
            self.deletes.push(keys.settle(n).0);
        }
        c.swept_ring = c.swept_ring.max(ring_end);
        for (log, cursor, swept, graced_tail) in [
            (
                Log::Delayed,
                c.delayed,
                &mut c.swept_delayed,
                graced.delayed_tail,
            ),
            (
                Log::Retries,
                c.retries,
                &mut c.swept_retries,
                graced.retries_tail,
            ),
        ] {
            let end = cursor.min(graced_tail).min(*swept + SWEEP_BUDGET);
            for n in *swept..end {
                self.deletes.push(keys.entry(log, n));
            }
            *swept = (*swept).max(end);
        }
        // The drain gate's counters of epochs before the previous one: no
        // drain counts there any more (see `engine/drains.rs`).
        let done = super::super::drains::epoch(self.q, self.now).saturating_sub(1);
        let from = match c.swept_drain_epochs {
            0 => done.saturating_sub(DRAIN_EPOCHS_BUDGET), // a new queue
            swept => swept,
        };
        let to = done.min(from + DRAIN_EPOCHS_BUDGET);
        for e in from..to {
            self.deletes.push(keys.drains(e).0);
            self.deletes.push(keys.recovery(e).0);
        }
        c.swept_drain_epochs = c.swept_drain_epochs.max(to);
    }

    /// The retention sweep over the completion, dead-letter and set-aside
    /// logs.
    pub(super) fn retention(&mut self) -> Result<()> {
        let retention = self.q.config.retention_ms;
        if retention == 0 {
            return Ok(());
        }
        let expired_before = self.now.saturating_sub(retention);
        self.retain_completions(expired_before)?;
        self.retain_dead_letters(expired_before)?;
        self.retain_set_aside(expired_before)
    }

    fn retain_completions(&mut self, expired_before: u64) -> Result<()> {
        let start = self.state.cursors.retained_completions;
        let end = self.state.cursors.completions.min(start + RETAIN_BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self
            .q
            .read_entries::<CompletionEntry>(Log::Completions, start..end)?;
        let ids: Vec<String> = found.values.values().map(|e| e.id.clone()).collect();
        let loaded = self.q.load_tasks(ids.iter().map(String::as_str))?;
        let mut n = start;
        while n < end {
            let key = keys[(n - start) as usize].clone();
            if let Some(e) = found.values.get(&key) {
                if e.completed_at > expired_before {
                    break;
                }
                *self.expired.entry(e.pipeline_id.clone()).or_insert(0) += 1;
                let current = loaded
                    .records
                    .get(&e.id)
                    .filter(|r| matches!(r.state, State::Completed { seq, .. } if seq == e.seq));
                match current {
                    Some(r) => {
                        let r = r.clone();
                        self.forget_task(&r);
                        self.state.totals.retained_completed += 1;
                    }
                    None => self.state.totals.completion_superseded += 1,
                }
            }
            self.garbage.push(key);
            n += 1;
        }
        self.state.cursors.retained_completions = n;
        Ok(())
    }

    fn retain_dead_letters(&mut self, expired_before: u64) -> Result<()> {
        let start = self.state.cursors.retained_dead;
        let end = self.state.cursors.dead.min(start + RETAIN_BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self
            .q
            .read_entries::<DeadLetterRef>(Log::DeadLetters, start..end)?;
        let ids: Vec<String> = found.values.values().map(|e| e.id.clone()).collect();
        let loaded = self.q.load_tasks(ids.iter().map(String::as_str))?;
        // How far each entry's redrive lock went (usually nowhere).
        let hint_keys: Vec<String> = (start..end).map(|n| self.q.keys.redrive_next(n)).collect();
        let hints = self.q.read_many::<u32>(&hint_keys)?;
        let mut n = start;
        while n < end {
            let key = keys[(n - start) as usize].clone();
            if let Some(e) = found.values.get(&key) {
                if e.failed_at > expired_before {
                    break;
                }
                let attempts = hints
                    .values
                    .get(&self.q.keys.redrive_next(n))
                    .copied()
                    .unwrap_or(0);
                let current = loaded.records.get(&e.id).filter(|r| {
                    r.at == Place::dead_letters(n) && matches!(r.state, State::DeadLetter { .. })
                });
                if let Some(r) = current {
                    let r = r.clone();
                    self.forget_task(&r);
                    self.state.totals.retained_dead += 1;
                }
                let redrive = RedriveLock {
                    keys: &self.q.keys,
                    entry: n,
                };
                self.garbage.extend(lock::keys_up_to(&redrive, attempts));
            }
            self.garbage.push(key);
            n += 1;
        }
        self.state.cursors.retained_dead = n;
        Ok(())
    }

    fn retain_set_aside(&mut self, expired_before: u64) -> Result<()> {
        let start = self.state.cursors.retained_set_aside;
        let end = self.counters.set_aside_tail.min(start + RETAIN_BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self.q.read_entries::<SetAside>(Log::SetAside, start..end)?;
        let mut n = start;
        while n < end {
            let key = keys[(n - start) as usize].clone();
            match found.values.get(&key) {
                Some(e) if e.seen_at > expired_before => break,
                Some(e) => {
                    self.garbage.push(e.key.clone());
                    self.state.totals.retained_set_aside += 1;
                }
                None if n >= self.state.graced.set_aside_tail => break,
                None => {}
            }
            self.garbage.push(key);
            n += 1;
        }
        self.state.cursors.retained_set_aside = n;
        Ok(())
    }

    /// Every key of a finished task becomes garbage.
    fn forget_task(&mut self, r: &TaskRecord) {
        let keys = &self.q.keys;
        self.garbage.push(keys.task(&r.task.id));
        self.garbage.push(keys.heartbeat(&r.task.id));
        if r.task.idempotency_key != r.task.id {
            self.garbage.push(keys.idempotency(&r.task.idempotency_key));
        }
    }
}
