//! Stats: counts by state from the log counters and maintenance's totals,
//! and a bounded look at the two stretches of the ring maintenance has not
//! settled yet — a few reads, whatever the size of the queue.
//!
//! Every delivery leaves a trace in exactly one log (completion, retry,
//! dead letter) or in maintenance's rescue totals, so in-progress work is
//! what was taken, minus what delivered nothing, minus what finished. The
//! slots taken since maintenance's walk and the slots not taken yet are
//! read (up to [`LOOK`] of each): padding and holes count as nothing.
//! Exact when no request is in flight and those stretches are shorter than
//! [`LOOK`].

use super::keys::Log;
use super::maintenance;
use super::record::{Place, RingEntry, State};
use super::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::QueueStats;

/// Most ring slots read in each unsettled stretch.
const LOOK: u64 = 1_000;

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
    let state = maintenance::state(q)?;
    let t = state.totals;
    let (unwalked_undelivered, stuck) = unwalked(q, state.cursors.walk, head.min(tail))?;
    let waiting = ahead(q, head, tail)?;
    let completed_ever = completions.saturating_sub(t.completion_holes + t.completion_superseded);
    let retried_ever = retries.saturating_sub(t.retry_holes);
    let dead_ever = dead.saturating_sub(t.dead_holes);
    let finished = completed_ever + retried_ever + dead_ever + t.rescued + t.set_aside_leased;
    let delivered = head
        .min(tail)
        .saturating_sub(t.undelivered + unwalked_undelivered);
    Ok(QueueStats {
        pending: waiting + stuck + delayed.saturating_sub(t.delayed_holes + t.delayed_promoted),
        due: waiting + stuck,
        in_progress: delivered.saturating_sub(finished),
        completed: completed_ever.saturating_sub(t.retained_completed),
        failed: retried_ever.saturating_sub(t.retries_promoted),
        dead_letter: dead_ever.saturating_sub(redriven + t.retained_dead),
        set_aside: set_aside.saturating_sub(t.retained_set_aside),
    })
}

/// Of the taken slots `walk..end` maintenance has not walked: how many
/// delivered nothing, and how many of those still hold their pending task
/// (its taker died; maintenance will re-queue it).
pub(crate) fn unwalked<K: KeyValue>(q: &KvWorkQueue<K>, walk: u64, end: u64) -> Result<(u64, u64)> {
    let end = end.min(walk + LOOK);
    if walk >= end {
        return Ok((0, 0));
    }
    let (keys, entries) = q.read_entries::<RingEntry>(Log::Ring, walk..end)?;
    let ids: Vec<&str> = entries
        .values
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    let loaded = q.load_tasks(ids)?;
    let (mut undelivered, mut stuck) = (0, 0);
    for (n, key) in (walk..end).zip(&keys) {
        let record = entries
            .values
            .get(key)
            .and_then(Option::as_ref)
            .and_then(|id| loaded.records.get(id));
        match record {
            Some(r) if r.deliveries.contains(&n) => {}
            Some(r) if r.at == Place::ring(n) && r.state == State::Pending => {
                undelivered += 1;
                stuck += 1;
            }
            _ => undelivered += 1,
        }
    }
    Ok((undelivered, stuck))
}

/// Tasks in the slots not taken yet (`head..tail`): task entries, not
/// padding or holes, exactly up to [`LOOK`] slots and assumed beyond.
fn ahead<K: KeyValue>(q: &KvWorkQueue<K>, head: u64, tail: u64) -> Result<u64> {
    if head >= tail {
        return Ok(0);
    }
    let end = tail.min(head + LOOK);
    let (_, entries) = q.read_entries::<RingEntry>(Log::Ring, head..end)?;
    let tasks = entries.values.values().filter(|e| e.is_some()).count() as u64;
    Ok(tasks + (tail - end))
}
