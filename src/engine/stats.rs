//! Stats: counts by state from the log counters and maintenance's totals —
//! two reads, whatever the size of the queue.
//!
//! Every delivery leaves a trace in exactly one log (completion, retry,
//! dead letter) or in maintenance's rescue totals, so in-progress work is
//! what was taken and not yet finished. Exact when no request is in
//! flight and maintenance has walked what dequeuers took; until then a
//! slot taken without delivering (padding, a stale entry, a dead writer's
//! hole) counts as in progress, and padding written ahead of the head
//! after a burst of concurrent dequeues counts as pending.

use super::keys::Log;
use super::maintenance;
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::QueueStats;

pub(crate) fn run<K: KeyValue>(q: &KvWorkQueue<K>) -> Result<QueueStats> {
    let k = &q.keys;
    let c = q.read_counters(&[
        &k.ring_head(),
        &k.tail(Log::Ring),
        &k.tail(Log::Delayed),
        &k.tail(Log::Retries),
        &k.tail(Log::Completions),
        &k.tail(Log::DeadLetters),
        &k.redriven(),
        &k.tail(Log::SetAside),
    ])?;
    let [head, tail, delayed, retries, completions, dead, redriven, set_aside] =
        c.try_into().expect("eight counters");
    let t = maintenance::state(q)?.totals;
    let completed_ever = completions.saturating_sub(t.completion_holes + t.completion_superseded);
    let retried_ever = retries.saturating_sub(t.retry_holes);
    let dead_ever = dead.saturating_sub(t.dead_holes);
    let finished = completed_ever + retried_ever + dead_ever + t.rescued;
    let delivered = head.min(tail).saturating_sub(t.undelivered);
    Ok(QueueStats {
        pending: tail.saturating_sub(head)
            + delayed.saturating_sub(t.delayed_holes + t.delayed_promoted),
        in_progress: delivered.saturating_sub(finished),
        completed: completed_ever.saturating_sub(t.retained_completed),
        failed: retried_ever.saturating_sub(t.retries_promoted),
        dead_letter: dead_ever.saturating_sub(redriven + t.retained_dead),
        set_aside: set_aside.saturating_sub(t.retained_set_aside),
    })
}
