//! Stats: counts by state from the log counters and maintenance's totals —
//! two reads, whatever the size of the queue.
//!
//! Exact when no request has died recently; a crash or a race shows up as a
//! small transient error (for instance, until maintenance has walked a slot
//! that delivered nothing, that slot counts as in progress).

use super::keys::Log;
use super::maintenance::MaintenanceState;
use super::record::OrphanRange;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::QueueStats;
use std::collections::HashMap;

/// Most orphan entries read to count orphaned tasks (there are normally
/// none or a few: one per dequeue that lost a race).
const ORPHANS_COUNTED: u64 = 64;

/// Ring slots named by orphan entries maintenance has not settled, that
/// are reserved (so probably written).
fn orphaned_and_written<K: KeyValue>(
    q: &KvWorkQueue<K>,
    o_head: u64,
    o_tail: u64,
    ring_tail: u64,
) -> Result<u64> {
    let end = o_tail.min(o_head + ORPHANS_COUNTED);
    if o_head >= end {
        return Ok(0);
    }
    let keys: Vec<String> = (o_head..end)
        .map(|n| q.keys.entry(Log::Orphans, n))
        .collect();
    let ranges: HashMap<String, OrphanRange> = q.get_many_json(&keys)?;
    Ok(ranges
        .values()
        .map(|r| r.end.min(ring_tail).saturating_sub(r.start))
        .sum())
}

pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>) -> Result<QueueStats> {
    let k = &q.keys;
    let c = q.read_counters(&[
        &k.head(Log::Ring),
        &k.tail(Log::Ring),
        &k.tail(Log::Delayed),
        &k.tail(Log::Retries),
        &k.tail(Log::Completions),
        &k.tail(Log::DeadLetters),
        &k.redriven(),
        &k.tail(Log::Orphans),
    ])?;
    let (ring_head, ring_tail, delayed_tail, retries_tail, completions_tail, dead_tail, redriven) =
        (c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    let s: MaintenanceState = q.get_json(&k.maintenance_state())?.unwrap_or_default();
    let orphaned = orphaned_and_written(q, s.orphans, c[7], ring_tail)?;
    let t = s.totals;
    let completed = completions_tail.saturating_sub(t.completion_holes + t.completion_superseded);
    let retried = retries_tail.saturating_sub(t.retry_holes);
    let finished = completed + retried + dead_tail + t.rescued + t.ring_undelivered;
    // Slots taken beyond the tail are not deliveries; taken slots written
    // since (orphans) are pending until a dequeuer delivers them.
    let taken = ring_head.min(ring_tail);
    Ok(QueueStats {
        pending: ring_tail.saturating_sub(ring_head)
            + orphaned
            + delayed_tail.saturating_sub(s.delayed + t.delayed_holes)
            + s.waiting.delayed,
        in_progress: taken.saturating_sub(finished + orphaned),
        completed,
        failed: retries_tail.saturating_sub(s.retries + t.retry_holes) + s.waiting.retries,
        dead_letter: dead_tail.saturating_sub(redriven),
    })
}
