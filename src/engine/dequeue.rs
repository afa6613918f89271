//! Dequeue: peek the ring, take the filled prefix with one `increment` of
//! its head, lease what was taken with one `set_many`.
//!
//! Cost: 2 write commits per batch; reads of a fixed number of keys, so
//! the same cost at any queue depth. An empty queue costs reads only.
//!
//! Under contention two dequeuers may peek the same prefix; the loser's
//! `increment` then hands it slots past what it peeked, possibly past the
//! tail, that no task fills yet. Those are recorded in the orphan log (one
//! more reservation, same `set_many`); maintenance — the log's only reader
//! — puts the tasks written there back in the ring. A dequeue that finds
//! the ring empty while orphaned tasks wait runs that step at once.

use super::keys::Log;
use super::maintenance;
use super::record::{LeaseRecord, OrphanRange, Place, State, TaskRecord};
use super::store::Writes;
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::KeyValue;
use crate::model::{DequeueRequest, Lease, LeasedTask};
use std::collections::HashMap;

/// Peek-and-take rounds per call (a round may deliver less than asked when
/// it meets stale entries).
const MAX_ROUNDS: usize = 4;

/// What one call has gathered so far.
struct Batch {
    out: Vec<LeasedTask>,
    records: HashMap<String, TaskRecord>,
    writes: Writes,
    orphans: Vec<u64>,
}

pub(crate) fn run<K: KeyValue>(
    q: &KvWorkQueue<K>,
    req: &DequeueRequest,
) -> Result<Vec<LeasedTask>> {
    req.validate()?;
    maintenance::run_if_due(q);
    let started = q.now();
    let lease_ms = req.lease_ms.unwrap_or(q.config.default_lease_ms);
    let max = req.max as usize;
    let mut batch = Batch {
        out: Vec::new(),
        records: HashMap::new(),
        writes: Writes::default(),
        orphans: Vec::new(),
    };
    let mut settled_orphans = false;
    for _ in 0..MAX_ROUNDS {
        if batch.out.len() >= max {
            break;
        }
        let c = q.read_counters(&[&q.keys.head(Log::Ring), &q.keys.tail(Log::Ring)])?;
        let (head, tail) = (c[0], c[1]);
        let want = (max - batch.out.len()) as u64;
        let slots = if head < tail {
            take(q, head, tail, want)?
        } else {
            Vec::new()
        };
        if slots.is_empty() {
            // Nothing in the ring: tasks may still wait in the orphan log.
            if !settled_orphans && batch.out.is_empty() && maintenance::orphans_waiting(q, tail)? {
                settled_orphans = true;
                maintenance::run(q, true)?;
                continue;
            }
            break;
        }
        deliver(q, &slots, req, lease_ms, max, &mut batch)?;
    }
    if q.now().saturating_sub(started) >= q.config.grace_ms / 2 {
        // Maintenance may already treat what this call took as abandoned;
        // leave it to maintenance rather than risk a second live lease.
        return Err(QueueError::TooSlow(
            "dequeue took longer than half the grace period".into(),
        ));
    }
    if !batch.orphans.is_empty() {
        write_orphans(q, &batch.orphans, &mut batch.writes)?;
    }
    batch.writes.commit(&q.kv)?;
    Ok(batch.out)
}

/// Take up to `want` slots from the ring head: as many as the filled prefix
/// that was peeked.
fn take<K: KeyValue>(q: &KvWorkQueue<K>, head: u64, tail: u64, want: u64) -> Result<Vec<u64>> {
    let window = want.min(tail - head);
    let keys: Vec<String> = (head..head + window)
        .map(|s| q.keys.entry(Log::Ring, s))
        .collect();
    let filled: HashMap<String, Vec<u8>> = q.kv.get_many(&keys)?.into_iter().collect();
    let n = keys.iter().take_while(|k| filled.contains_key(*k)).count() as u64;
    if n == 0 {
        // The head slot is reserved but not written: an enqueue in flight,
        // or one that died (maintenance moves past it after the grace).
        return Ok(Vec::new());
    }
    let end = q.increment(&q.keys.head(Log::Ring), n)?;
    Ok((end - n..end).collect())
}

/// Lease every deliverable task among the taken slots; empty ones become
/// orphans.
fn deliver<K: KeyValue>(
    q: &KvWorkQueue<K>,
    slots: &[u64],
    req: &DequeueRequest,
    lease_ms: u64,
    max: usize,
    batch: &mut Batch,
) -> Result<()> {
    let keys: Vec<String> = slots.iter().map(|s| q.keys.entry(Log::Ring, *s)).collect();
    let entries: HashMap<String, String> = q.get_many_json(&keys)?;
    let missing: Vec<&str> = entries
        .values()
        .map(String::as_str)
        .filter(|id| !batch.records.contains_key(*id))
        .collect();
    let loaded = q.load_tasks(missing)?;
    batch.records.extend(loaded);
    let candidates: Vec<&TaskRecord> = entries
        .values()
        .filter_map(|id| batch.records.get(id))
        .filter(|r| r.state == State::Pending)
        .collect();
    let results = q.load_results(candidates)?;
    let now = q.now();
    for (slot, key) in slots.iter().zip(&keys) {
        let Some(id) = entries.get(key) else {
            batch.orphans.push(*slot);
            continue;
        };
        let Some(record) = batch.records.get_mut(id) else {
            continue;
        };
        if record.at != Place::ring(*slot) || record.state != State::Pending {
            continue; // a stale entry: the task lives elsewhere now
        }
        if let Some(result) = results.get(id) {
            // Completed by an earlier delivery that a rescue raced: the
            // result wins and the task is not run again.
            record.state = State::Completed {
                lease_id: result.lease_id.clone(),
                seq: result.seq,
            };
            record.updated_at = now;
            batch.writes.put(q.keys.task(id), &*record);
            continue;
        }
        if batch.out.len() >= max {
            batch.orphans.push(*slot); // taken beyond the batch: hand it on
            continue;
        }
        let lease = LeaseRecord {
            id: crate::model::generate_id(),
            worker_id: req.worker_id.clone(),
            expires_at: now + lease_ms,
        };
        record.state = State::InProgress {
            lease: lease.clone(),
        };
        record.delivered_from(*slot);
        record.updated_at = now;
        batch.writes.put(q.keys.task(id), &*record);
        batch.out.push(LeasedTask {
            task: record.task.clone(),
            lease: Lease {
                id: lease.id,
                expires_at: lease.expires_at,
            },
        });
    }
    Ok(())
}

/// Record slots taken before they were filled as runs in the orphan log.
fn write_orphans<K: KeyValue>(
    q: &KvWorkQueue<K>,
    slots: &[u64],
    writes: &mut Writes,
) -> Result<()> {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    let mut ranges: Vec<OrphanRange> = Vec::new();
    for s in sorted {
        match ranges.last_mut() {
            Some(r) if r.end == s => r.end += 1,
            _ => ranges.push(OrphanRange {
                start: s,
                end: s + 1,
            }),
        }
    }
    q.append(Log::Orphans, &ranges, writes).map(drop)
}
