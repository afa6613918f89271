//! Stats: counts by state from the log counters and maintenance's totals —
//! two reads, whatever the size of the queue.
//!
//! Exact when no request has died recently; a crash or a race shows up as a
//! small transient error (for instance, until maintenance has walked a slot
//! that delivered nothing, that slot counts as in progress).

use super::keys::Log;
use super::maintenance::MaintenanceState;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::QueueStats;

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
    ])?;
    let (ring_head, ring_tail, delayed_tail, retries_tail, completions_tail, dead_tail, redriven) =
        (c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    let s: MaintenanceState = q.get_json(&k.maintenance_state())?.unwrap_or_default();
    let t = s.totals;
    let completed = completions_tail.saturating_sub(t.completion_holes + t.completion_superseded);
    let retried = retries_tail.saturating_sub(t.retry_holes);
    let finished = completed + retried + dead_tail + t.rescued + t.ring_undelivered;
    Ok(QueueStats {
        pending: ring_tail.saturating_sub(ring_head)
            + delayed_tail.saturating_sub(s.delayed + t.delayed_holes)
            + s.waiting.delayed,
        in_progress: ring_head.saturating_sub(finished),
        completed,
        failed: retries_tail.saturating_sub(s.retries + t.retry_holes) + s.waiting.retries,
        dead_letter: dead_tail.saturating_sub(redriven),
    })
}
