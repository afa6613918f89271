//! Fail: a retryable failure with attempts left goes to the retry inbox,
//! due after the backoff; anything else is dead-lettered.
//!
//! Cost: 2 write commits (a reservation and one `set_many`).

use super::keys::Log;
use super::record::{DeadLetterRef, Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::port::TaskStatus;

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
    error: &str,
    retryable: bool,
) -> Result<TaskStatus> {
    let read_at = q.now();
    let record = leased_record(q, task_id, lease_id)?;
    let retry = retryable && record.task.attempt + 1 < record.max_attempts;
    q.guarded(|| {
        q.still_fresh(read_at)?;
        let now = q.now();
        let mut next = record.clone();
        next.updated_at = now;
        let mut writes = Writes::default();
        if retry {
            let n = q.reserve(&q.keys.tail(Log::Retries), 1)?;
            next.state = State::Failed {
                error: error.to_string(),
            };
            next.at = Place::retries(n);
            next.not_before = now + q.config.retry.backoff_ms(task_id, record.task.attempt);
            writes.put(q.keys.entry(Log::Retries, n), &task_id);
        } else {
            let n = q.reserve(&q.keys.tail(Log::DeadLetters), 1)?;
            next.state = State::DeadLetter {
                error: error.to_string(),
                failed_at: now,
            };
            next.at = Place::dead_letters(n);
            writes.put(
                q.keys.entry(Log::DeadLetters, n),
                &DeadLetterRef {
                    id: task_id.to_string(),
                    failed_at: now,
                },
            );
        }
        writes.put(q.keys.task(task_id), &next);
        writes.commit(&q.kv)?;
        Ok(next.status(None))
    })
}

/// The task's record if `lease_id` is its live delivery's lease: not
/// completed (no result), in progress under that lease.
pub(crate) fn leased_record<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
) -> Result<TaskRecord> {
    let record: TaskRecord =
        q.get_json(&q.keys.task(task_id))?
            .ok_or_else(|| QueueError::NotFound {
                id: task_id.to_string(),
            })?;
    let lost = || QueueError::LeaseLost {
        id: task_id.to_string(),
    };
    match &record.state {
        State::InProgress { lease } if lease.id == lease_id => {}
        _ => return Err(lost()),
    }
    if !q.load_results([&record])?.is_empty() {
        return Err(lost());
    }
    Ok(record)
}
