//! Fail: a retryable failure with attempts left goes to the retry inbox,
//! due after the backoff; anything else is dead-lettered.
//!
//! Cost: 2 write commits (a reservation and one `set_many`). Accepted
//! within the same window as an ack (the lease's expiry plus
//! `late_finish_ms`).

use super::keys::Log;
use super::record::{DeadLetterRef, Heartbeat, Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::FailOutcome;

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
    error: &str,
    retryable: bool,
) -> Result<FailOutcome> {
    let (record, expiry) = leased(q, task_id, lease_id)?;
    let late = q.timing.late_finish_ms;
    if q.now() >= expiry + late {
        return Err(lost(task_id));
    }
    let retry = retryable && record.task.attempt + 1 < record.max_attempts;
    let start = q.now();
    let deadline = q.deadline_from(start);
    let mut next = record.clone();
    next.updated_at = start;
    let mut writes = Writes::default();
    let retry_at = if retry {
        let n = q.reserve(Log::Retries, 1)?;
        let at = start + q.config.retry.backoff_ms(task_id, record.task.attempt);
        next.state = State::Failed {
            error: error.to_string(),
        };
        next.at = Place::retries(n);
        next.not_before = at;
        writes.put(q.keys.entry(Log::Retries, n), &task_id);
        Some(at)
    } else {
        let n = q.reserve(Log::DeadLetters, 1)?;
        next.state = State::DeadLetter {
            error: error.to_string(),
            failed_at: start,
        };
        next.at = Place::dead_letters(n);
        writes.put(
            q.keys.entry(Log::DeadLetters, n),
            &DeadLetterRef {
                id: task_id.to_string(),
                failed_at: start,
            },
        );
        None
    };
    writes.put(q.keys.task(task_id), &next);
    q.commit_checked("fail", writes, |now| {
        q.within(deadline, now, "fail")?;
        if now >= expiry + late {
            return Err(lost(task_id));
        }
        Ok(())
    })?;
    Ok(FailOutcome {
        status: next.status(),
        retry_at,
    })
}

fn lost(task_id: &str) -> QueueError {
    QueueError::LeaseLost {
        id: task_id.to_string(),
    }
}

/// The task's record and its lease's current expiry, if `lease_id` is the
/// lease of its running delivery.
pub(crate) fn leased<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
) -> Result<(TaskRecord, u64)> {
    let (record, heartbeat): (TaskRecord, Option<Heartbeat>) =
        q.load_task(task_id)?.ok_or_else(|| QueueError::NotFound {
            id: task_id.to_string(),
        })?;
    let expiry = match record.lease(heartbeat.as_ref()) {
        Some((lease, expiry)) if lease.id == lease_id => expiry,
        _ => return Err(lost(task_id)),
    };
    Ok((record, expiry))
}
