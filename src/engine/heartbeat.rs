//! Heartbeat: extend a live lease. Cost: 1 write commit.
//!
//! The extension goes to the task's heartbeat key (`h/{id}`), never to its
//! record, so a heartbeat that lands after its own delivery's ack cannot
//! undo the completion. Only a lease that has not expired can be
//! extended: once it has, maintenance may rescue the task at any time. A
//! heartbeat never shortens a lease: the expiry becomes `lease_ms` from
//! now or stays where it is, whichever is later.

use super::fail::leased;
use super::record::Heartbeat;
use super::store::{encode, Writes};
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
    let (_, expiry) = leased(q, task_id, lease_id)?;
    let now = q.now();
    let expires_at = expiry.max(now + lease_ms);
    let mut writes = Writes::default();
    writes.put_raw(
        q.keys.heartbeat(task_id),
        encode(&Heartbeat {
            lease_id: lease_id.to_string(),
            expires_at,
        }),
    );
    q.commit_checked("heartbeat", writes, |now| {
        if now >= expiry {
            return Err(QueueError::LeaseLost {
                id: task_id.to_string(),
            });
        }
        Ok(())
    })?;
    Ok(expires_at)
}
