//! Dequeue: take slots from the ring head with one `increment` (see
//! `ring.rs`), read the records, lease the pending ones with one
//! `set_many`.
//!
//! Cost: 2 write commits per batch; reads of a fixed number of keys, so
//! the same cost at any queue depth. An empty queue costs reads only.
//! The whole call finishes its writes within the request deadline of the
//! take, or writes nothing: maintenance re-queues what it took once the
//! slots are abandoned.

use super::maintenance;
use super::record::{LeaseRecord, Place, State, TaskRecord};
use super::ring;
use super::set_aside;
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{DequeueRequest, Lease, LeasedTask};
use std::collections::BTreeMap;

/// Take-and-lease rounds per call (a round may deliver less than asked
/// when it meets stale entries, padding or holes).
const MAX_ROUNDS: usize = 4;

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    req: &DequeueRequest,
) -> Result<Vec<LeasedTask>> {
    req.validate()?;
    let dead_tail = maintenance::run_if_due(q).graced.ring_tail;
    let lease_ms = req.lease_ms.unwrap_or(q.config.default_lease_ms);
    let max = req.max as usize;
    let mut writes = Writes::default();
    let mut leased: BTreeMap<String, (u64, TaskRecord)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut poison = Vec::new();
    // Tasks taken beyond `max` (the head moved between the peek and the
    // take): handed back to the ring.
    let mut spill: Vec<TaskRecord> = Vec::new();
    let mut start = None;
    for _ in 0..MAX_ROUNDS {
        let want = max.saturating_sub(order.len());
        if want == 0 {
            break;
        }
        let Some(taken) = ring::take(q, want as u64, ring::Reach::LastWritten, dead_tail)? else {
            break;
        };
        start.get_or_insert(taken.start);
        poison.extend(taken.poison);
        let loaded = q.load_tasks(taken.tasks.iter().map(|(_, id)| id.as_str()))?;
        poison.extend(loaded.poison);
        for (slot, id) in taken.tasks {
            let Some(record) = loaded.records.get(&id) else {
                continue; // no such task (any more)
            };
            if record.at != Place::ring(slot)
                || record.state != State::Pending
                || leased.contains_key(&id)
            {
                continue; // a stale entry: the task lives elsewhere now
            }
            if order.len() == max {
                spill.push(record.clone());
                continue;
            }
            order.push(id.clone());
            leased.insert(id, (slot, record.clone()));
        }
    }
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let deadline = q.deadline_from(start);
    set_aside::record(q, &poison, &mut writes)?;
    let now = q.now();
    let mut out = Vec::with_capacity(order.len());
    for id in &order {
        let (slot, record) = leased.get_mut(id).expect("leased above");
        record.delivered_from(*slot);
        let lease = LeaseRecord {
            id: q.ids.next_id(),
            worker_id: req.worker_id.clone(),
            expires_at: now + lease_ms,
        };
        out.push(LeasedTask {
            task: record.task.clone(),
            lease: Lease {
                id: lease.id.clone(),
                expires_at: lease.expires_at,
            },
            executor: record.executor.clone(),
        });
        record.state = State::InProgress { lease };
        record.updated_at = now;
        writes.put(q.keys.task(id), &*record);
    }
    let committed = q.commit_checked("dequeue", writes, |now| q.within(deadline, now, "dequeue"));
    if committed.is_ok() && !spill.is_empty() {
        // Best effort: a task not handed back stays in its taken slot, and
        // maintenance re-queues it once the slot is abandoned.
        let _ = ring::publish(q, "dequeue", spill, Writes::default(), deadline, |_| Ok(()));
    }
    if out.is_empty() {
        // Only set-aside entries were at stake: a reader that meets those
        // values again sets them aside again.
        return Ok(out);
    }
    committed.map(|()| out)
}
