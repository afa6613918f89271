//! Ring walk: every slot dequeuers took is looked at once, in order, after
//! the fact. A slot either delivered its task (then a live lease is filed
//! as a timer, an expired one rescued) or delivered nothing: a stale entry,
//! a hole left by an enqueue that died, or a task whose taker died before
//! leasing it — re-queued once a grace period has passed.

use super::timers::{TimerEntry, TimerKind};
use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::{Place, State};
use crate::error::Result;
use crate::kv::KeyValue;
use std::collections::HashMap;

/// What the walk concluded about one slot.
enum Slot {
    /// Settled; move past it. `delivered` tells whether it delivered a task.
    Settled { delivered: bool },
    /// Cannot tell yet (an enqueue or dequeue may still be writing).
    Wait,
}

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn walk(&mut self) -> Result<()> {
        let start = self.state.walk;
        let end = self.ring_head.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let keys: Vec<String> = (start..end)
            .map(|n| self.q.keys.entry(Log::Ring, n))
            .collect();
        let entries: HashMap<String, String> = self.q.get_many_json(&keys)?;
        self.load(entries.values())?;
        let live: Vec<String> = entries
            .values()
            .filter(|id| {
                self.records
                    .get(*id)
                    .is_some_and(|r| matches!(r.state, State::InProgress { .. } | State::Pending))
            })
            .cloned()
            .collect();
        let results = self.completed(&live)?;
        let mut n = start;
        while n < end {
            let entry = entries.get(&keys[(n - start) as usize]).cloned();
            match self.settle(n, entry, &results) {
                Slot::Wait => break,
                Slot::Settled { delivered } => {
                    if !delivered {
                        self.state.totals.ring_undelivered += 1;
                    }
                    n += 1;
                }
            }
        }
        self.state.walk = n;
        Ok(())
    }

    fn settle(
        &mut self,
        n: u64,
        entry: Option<String>,
        results: &HashMap<String, crate::engine::record::ResultRecord>,
    ) -> Slot {
        let graced = self.state.graced;
        let Some(id) = entry else {
            if n >= self.ring_tail {
                return Slot::Wait; // taken before it was reserved: orphan path
            }
            return if n < graced.ring_tail {
                Slot::Settled { delivered: false } // its enqueue died
            } else {
                Slot::Wait
            };
        };
        let Some(r) = self.records.get(&id) else {
            return Slot::Settled { delivered: false };
        };
        let here = r.at == Place::ring(n);
        if !r.deliveries.contains(&n) {
            if here && r.state == State::Pending {
                // Taken, never leased. Its taker (or an orphan-log reader)
                // may still be at work until a grace period has passed since
                // both the take and the task's last write.
                if n < graced.ring_head && r.updated_at < graced.at {
                    self.requeue(&id, Requeue::Retake);
                    return Slot::Settled { delivered: false };
                }
                return Slot::Wait;
            }
            return Slot::Settled { delivered: false };
        }
        if here {
            if let State::InProgress { lease } = &r.state {
                let expires_at = lease.expires_at;
                if let Some(result) = results.get(&id) {
                    let result = result.clone();
                    self.repair(&id, &result);
                } else if self.now >= expires_at {
                    self.rescue(&id);
                } else {
                    let entry = TimerEntry {
                        id,
                        at: Place::ring(n),
                        kind: TimerKind::Lease,
                    };
                    self.file(expires_at, entry);
                }
            }
        }
        Slot::Settled { delivered: true }
    }
}
