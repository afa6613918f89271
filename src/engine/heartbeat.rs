//! Heartbeat: extend a live lease. Cost: 1 write commit.

use super::fail::leased_record;
use super::record::State;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::validate_lease_ms;

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    task_id: &str,
    lease_id: &str,
    lease_ms: Option<u64>,
) -> Result<u64> {
    let lease_ms = lease_ms.unwrap_or(q.config.default_lease_ms);
    validate_lease_ms(lease_ms)?;
    let read_at = q.now();
    let mut record = leased_record(q, task_id, lease_id)?;
    let now = q.now();
    let State::InProgress { lease } = &mut record.state else {
        unreachable!("leased_record returns tasks in progress");
    };
    // An expired lease may be rescued at any moment: extending it now could
    // leave two live deliveries.
    if now >= lease.expires_at {
        return Err(QueueError::LeaseLost {
            id: task_id.to_string(),
        });
    }
    lease.expires_at = now + lease_ms;
    let expires_at = lease.expires_at;
    record.updated_at = now;
    q.still_fresh(read_at)?;
    let bytes = serde_json::to_vec(&record).expect("engine records serialise");
    q.kv.set(&q.keys.task(task_id), &bytes)?;
    Ok(expires_at)
}
