//! Status: a task's record and the heartbeat of its running delivery
//! (reads only).

use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{Lease, TaskInfo};

pub(crate) fn info<K: KeyValue>(q: &KvWorkQueue<K>, task_id: &str) -> Result<Option<TaskInfo>> {
    let Some((record, heartbeat)) = q.load_task(task_id)? else {
        return Ok(None);
    };
    let lease = record
        .lease(heartbeat.as_ref())
        .map(|(lease, expires_at)| Lease {
            id: lease.id.clone(),
            expires_at,
        });
    Ok(Some(TaskInfo {
        status: record.status(),
        max_attempts: record.max_attempts,
        created_at: record.created_at,
        updated_at: record.updated_at,
        task: record.task,
        lease,
    }))
}
