//! Status: a task's record and its winning result (reads only).

use super::record::{State, TaskRecord};
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{Lease, TaskInfo};
use crate::port::TaskStatus;

pub(crate) fn info<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<Option<TaskInfo>> {
    let Some(record) = q.get_json::<TaskRecord>(&q.keys.task(task_id))? else {
        return Ok(None);
    };
    let results = q.load_results([&record])?;
    let status = record.status(results.get(task_id));
    let lease = match (&status, &record.state) {
        (TaskStatus::InProgress { .. }, State::InProgress { lease }) => Some(Lease {
            id: lease.id.clone(),
            expires_at: lease.expires_at,
        }),
        _ => None,
    };
    Ok(Some(TaskInfo {
        task: record.task,
        status,
        max_attempts: record.max_attempts,
        created_at: record.created_at,
        updated_at: record.updated_at,
        lease,
    }))
}

/// The lease of the task's delivery in progress (for port-level finishes
/// from a handle that did not take the task).
pub(crate) fn current_lease<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<String> {
    let record: TaskRecord =
        q.get_json(&q.keys.task(task_id))?
            .ok_or_else(|| QueueError::NotFound {
                id: task_id.to_string(),
            })?;
    match record.state {
        State::InProgress { lease } => Ok(lease.id),
        _ => Err(QueueError::LeaseLost {
            id: task_id.to_string(),
        }),
    }
}
