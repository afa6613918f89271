//! Status: a task's record and the heartbeat of its running delivery
//! (reads only).

use super::record::{Heartbeat, TaskRecord};
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{Lease, TaskInfo};

pub(crate) fn info<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<Option<TaskInfo>> {
    Ok(q.load_task(task_id)?
        .map(|(record, heartbeat)| of_record(record, heartbeat.as_ref())))
}

/// What a record and its heartbeat say of a task.
pub(crate) fn of_record(record: TaskRecord, heartbeat: Option<&Heartbeat>) -> TaskInfo {
    let lease = record.lease(heartbeat).map(|(lease, expires_at)| Lease {
        id: lease.id.clone(),
        expires_at,
    });
    TaskInfo {
        status: record.status(),
        max_attempts: record.max_attempts,
        created_at: record.created_at,
        updated_at: record.updated_at,
        task: record.task,
        lease,
        executor: record.executor,
    }
}
