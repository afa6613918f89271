//! The dead-letter list (newest first) and redrive.

use super::keys::Log;
use super::record::{DeadLetterRef, Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::DeadLetterEntry;
use crate::port::TaskStatus;
use std::collections::HashMap;

/// Most entries returned by one listing.
pub(crate) const MAX_LIST: usize = 1000;

pub(crate) fn list<K: KeyValue>(q: &KvWorkQueue<K>, limit: usize) -> Result<Vec<DeadLetterEntry>> {
    let limit = limit.min(MAX_LIST);
    let mut out = Vec::new();
    let mut end = q.read_counters(&[&q.keys.tail(Log::DeadLetters)])?[0];
    // Redriven tasks leave stale entries behind; look at a bounded window.
    let mut budget = (limit as u64 * 4).max(64);
    while end > 0 && out.len() < limit && budget > 0 {
        let start = end
            .saturating_sub((limit as u64).clamp(16, 256))
            .max(end.saturating_sub(budget));
        let keys: Vec<String> = (start..end)
            .map(|n| q.keys.entry(Log::DeadLetters, n))
            .collect();
        let refs: HashMap<String, DeadLetterRef> = q.get_many_json(&keys)?;
        let records = q.load_tasks(refs.values().map(|r| r.id.as_str()))?;
        for n in (start..end).rev() {
            let Some(entry) = refs.get(&keys[(n - start) as usize]) else {
                continue;
            };
            let Some(r) = records.get(&entry.id) else {
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

pub(crate) fn redrive<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<TaskStatus> {
    let read_at = q.now();
    let record: TaskRecord =
        q.get_json(&q.keys.task(task_id))?
            .ok_or_else(|| QueueError::NotFound {
                id: task_id.to_string(),
            })?;
    let completed = !q.load_results([&record])?.is_empty();
    if completed || !matches!(record.state, State::DeadLetter { .. }) {
        return Err(QueueError::WrongState {
            id: task_id.to_string(),
            state: state_name(&record.state, completed).to_string(),
            reason: "only dead-lettered tasks can be redriven".to_string(),
        });
    }
    q.guarded(|| {
        q.still_fresh(read_at)?;
        let slot = q.reserve(&q.keys.tail(Log::Ring), 1)?;
        let mut next = record.clone();
        next.task.attempt = 0;
        next.requeue(Place::ring(slot), q.now(), true);
        let mut writes = Writes::default();
        writes.put(q.keys.entry(Log::Ring, slot), &task_id);
        writes.put(q.keys.task(task_id), &next);
        writes.commit(&q.kv)
    })?;
    q.increment(&q.keys.redriven(), 1)?;
    Ok(TaskStatus::Pending)
}

/// A state in words, for error messages.
pub(crate) fn state_name(state: &State, completed: bool) -> &'static str {
    if completed {
        return "completed";
    }
    match state {
        State::Pending => "pending",
        State::InProgress { .. } => "in progress",
        State::Completed { .. } => "completed",
        State::Failed { .. } => "failed",
        State::DeadLetter { .. } => "dead-lettered",
    }
}
