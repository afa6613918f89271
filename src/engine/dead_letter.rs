//! The dead-letter list (newest first) and redrive.
//!
//! Redrive is exclusive per dead-lettering: the lock
//! `x/{n}/r/{attempt}` of dead-letter entry `n` (see `lock.rs`) decides
//! which of several concurrent redrives publishes the task again. Cost: 3
//! write commits (the lock, the ring reservation, one `set_many`) and the
//! `x/redriven` counter.

use super::keys::{CounterKey, Log};
use super::lock::{self, Acquired, LockKeys};
use super::record::{DeadLetterRef, LogName, Place, State, TaskRecord, UNPLACED};
use super::ring;
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{validate_limit, DeadLetterEntry};
use crate::port::TaskStatus;

pub(crate) fn list<K: KeyValue>(q: &KvWorkQueue<K>, limit: usize) -> Result<Vec<DeadLetterEntry>> {
    validate_limit(limit)?;
    let mut out = Vec::new();
    let mut end = q.read_counter(&q.keys.tail(Log::DeadLetters))?;
    // Redriven and expired tasks leave stale entries or gaps behind; look
    // at a bounded window.
    let mut budget = (limit as u64 * 4).max(64);
    while end > 0 && out.len() < limit && budget > 0 {
        let start = end
            .saturating_sub((limit as u64).clamp(16, 256))
            .max(end.saturating_sub(budget));
        let (keys, refs) = q.read_entries::<DeadLetterRef>(Log::DeadLetters, start..end)?;
        let loaded = q.load_tasks(refs.values.values().map(|r| r.id.as_str()))?;
        for n in (start..end).rev() {
            let Some(entry) = refs.values.get(&keys[(n - start) as usize]) else {
                continue;
            };
            let Some(r) = loaded.records.get(&entry.id) else {
                continue;
            };
            if let (State::DeadLetter { error, failed_at }, true) =
                (&r.state, r.at == Place::dead_letters(n))
            {
                if out.len() < limit {
                    out.push(DeadLetterEntry {
                        task: r.task.clone(),
                        error: error.clone(),
                        failed_at: *failed_at,
                    });
                }
            }
        }
        budget = budget.saturating_sub(end - start);
        end = start;
    }
    Ok(out)
}

/// The redrive lock of dead-letter entry `n`.
pub(crate) struct RedriveLock<'a> {
    pub keys: &'a super::keys::Keys,
    pub entry: u64,
}

impl LockKeys for RedriveLock<'_> {
    fn counter(&self, attempt: u32) -> CounterKey {
        self.keys.redrive_lock(self.entry, attempt)
    }
    fn seen(&self, attempt: u32) -> String {
        self.keys.redrive_seen(self.entry, attempt)
    }
    fn next(&self) -> String {
        self.keys.redrive_next(self.entry)
    }
}

pub(crate) fn redrive<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<TaskStatus> {
    let record = dead_record(q, task_id)?;
    let entry = record.at.n;
    let lock = RedriveLock {
        keys: &q.keys,
        entry,
    };
    let Acquired::Won { start, attempt } = lock::acquire(q, &lock, true)? else {
        return Err(wrong_state(
            task_id,
            "being redriven",
            "another redrive of this task is in progress; retry in a few seconds",
        ));
    };
    let done = redrive_held(q, task_id, entry, start);
    if done.is_err() {
        lock::release(q, &lock, attempt);
    }
    done
}

/// The redrive, once its lock is held.
fn redrive_held<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    entry: u64,
    start: u64,
) -> Result<TaskStatus> {
    // Re-read as the lock's holder: a redrive that finished meanwhile (or
    // one taken over) has moved the task on.
    let record = dead_record(q, task_id)?;
    if record.at.n != entry {
        return Err(wrong_state(
            task_id,
            "redriven",
            "it was redriven meanwhile",
        ));
    }
    let deadline = q.deadline_from(start);
    let retention_end = retention_end(q, &record);
    let mut next = record;
    next.task.attempt = 0;
    next.requeue(Place::ring(UNPLACED), start);
    ring::publish(
        q,
        "redrive",
        vec![next],
        Writes::default(),
        deadline,
        |now| match retention_end {
            Some(end) if now >= end => Err(wrong_state(
                task_id,
                "expiring",
                "it is about to be deleted by the retention sweep",
            )),
            _ => Ok(()),
        },
    )?;
    q.increment(&q.keys.redriven(), 1)?;
    Ok(TaskStatus::Pending)
}

/// The record of a dead-lettered task, or the error a redrive answers.
fn dead_record<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<TaskRecord> {
    let (record, _) = q.load_task(task_id)?.ok_or_else(|| QueueError::NotFound {
        id: task_id.to_string(),
    })?;
    match (&record.state, record.at.log) {
        (State::DeadLetter { .. }, LogName::DeadLetters) => {}
        (state, _) => {
            return Err(wrong_state(
                task_id,
                state.name(),
                "only dead-lettered tasks can be redriven",
            ))
        }
    }
    if let Some(end) = retention_end(q, &record) {
        if q.now() >= end {
            return Err(wrong_state(
                task_id,
                "expiring",
                "it is about to be deleted by the retention sweep",
            ));
        }
    }
    Ok(record)
}

/// When a redrive of `record` must have landed by: the retention sweep
/// deletes dead letters `retention_ms` after they failed; redrives stop an
/// abandonment period before that.
fn retention_end<K: KeyValue>(q: &KvWorkQueue<K>, record: &TaskRecord) -> Option<u64> {
    let State::DeadLetter { failed_at, .. } = record.state else {
        return None;
    };
    (q.config.retention_ms > 0)
        .then(|| (failed_at + q.config.retention_ms).saturating_sub(q.timing.abandon_after_ms))
}

fn wrong_state(id: &str, state: &str, reason: &str) -> QueueError {
    QueueError::WrongState {
        id: id.to_string(),
        state: state.to_string(),
        reason: reason.to_string(),
    }
}
