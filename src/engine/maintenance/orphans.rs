//! Orphan phase: ring slots a dequeuer took before any task was written to
//! them (it lost a race for the head, or took slots past the tail). Tasks
//! written there since go back to the ring at once; slots not reserved by
//! any enqueue yet are recorded again for a later run. Maintenance is the
//! log's only reader, so every entry is handled exactly once.

use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::maintenance::MaintenanceState;
use crate::engine::record::{OrphanRange, Place, State};
use crate::engine::KvWorkQueue;
use crate::error::Result;
use crate::kv::KeyValue;
use std::collections::HashMap;

/// Most orphan entries looked at by [`orphans_waiting`].
const PEEK: u64 = 64;

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn orphans(&mut self) -> Result<()> {
        let start = self.state.orphans;
        let end = self.orphans_tail.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let keys: Vec<String> = (start..end)
            .map(|n| self.q.keys.entry(Log::Orphans, n))
            .collect();
        let ranges: HashMap<String, OrphanRange> = self.q.get_many_json(&keys)?;
        let mut n = start;
        let mut settle = Vec::new();
        while n < end {
            match ranges.get(&keys[(n - start) as usize]) {
                Some(r) => {
                    let reserved_end = r.end.min(self.ring_tail);
                    settle.extend(r.start..reserved_end);
                    if reserved_end < r.end {
                        self.reorphaned.push(OrphanRange {
                            start: reserved_end.max(r.start),
                            end: r.end,
                        });
                    }
                }
                None if n < self.state.graced.orphans_tail => self.state.totals.orphan_holes += 1,
                None => break, // its dequeue may still be writing it
            }
            n += 1;
        }
        self.state.orphans = n;
        self.settle_slots(&settle)
    }

    /// Put the tasks written to `slots` (taken, never delivered) back in
    /// the ring. Reserved slots still empty are left to the ring walk.
    fn settle_slots(&mut self, slots: &[u64]) -> Result<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = slots
            .iter()
            .map(|s| self.q.keys.entry(Log::Ring, *s))
            .collect();
        let entries: HashMap<String, String> = self.q.get_many_json(&keys)?;
        self.load(entries.values())?;
        for (slot, key) in slots.iter().zip(&keys) {
            let Some(id) = entries.get(key) else { continue };
            let waiting = self.records.get(id).is_some_and(|r| {
                r.at == Place::ring(*slot)
                    && r.state == State::Pending
                    && !r.deliveries.contains(slot)
            });
            if waiting {
                self.requeue(id, Requeue::Orphan);
            }
        }
        Ok(())
    }
}

/// Whether the orphan log holds slots below `ring_tail` that maintenance has
/// not settled yet (reads only).
pub(crate) fn orphans_waiting<K: KeyValue>(q: &KvWorkQueue<K>, ring_tail: u64) -> Result<bool> {
    let state: MaintenanceState = q.get_json(&q.keys.maintenance_state())?.unwrap_or_default();
    let tail = q.read_counters(&[&q.keys.tail(Log::Orphans)])?[0];
    let end = tail.min(state.orphans + PEEK);
    if state.orphans >= end {
        return Ok(false);
    }
    let keys: Vec<String> = (state.orphans..end)
        .map(|n| q.keys.entry(Log::Orphans, n))
        .collect();
    let ranges: HashMap<String, OrphanRange> = q.get_many_json(&keys)?;
    Ok(ranges.values().any(|r| r.start < ring_tail))
}
