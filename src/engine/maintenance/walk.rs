//! Ring walk: every slot dequeuers took is looked at once, in order, after
//! the fact. A slot either delivered its task (then a live lease is filed
//! as a timer, an expired one rescued) or delivered nothing: padding, a
//! stale entry, a hole left by a writer that died, or a task whose taker
//! died before leasing it — re-queued once its slot is abandoned.
//!
//! Also the repair of the head itself: slots taken beyond the tail get
//! their padding, and dead holes at a head no dequeuer moved for an
//! abandonment period are taken, so that the count of pending tasks does
//! not include them.

use super::timers::{TimerEntry, TimerKind};
use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::{Place, RingEntry, State};
use crate::engine::ring;
use crate::error::Result;
use crate::kv::KeyValue;

/// What the walk concluded about one slot.
enum Slot {
    /// Settled; move past it. `delivered` tells whether it delivered a task.
    Settled { delivered: bool },
    /// Cannot tell yet (a writer or taker may still be at work).
    Wait,
}

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn walk(&mut self) -> Result<()> {
        let start = self.state.cursors.walk;
        let end = self.counters.ring_head.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self.q.read_entries::<RingEntry>(Log::Ring, start..end)?;
        self.poison.extend(found.poison.iter().cloned());
        let ids: Vec<String> = found.values.values().flatten().cloned().collect();
        self.load(ids.iter())?;
        let mut n = start;
        while n < end {
            let key = &keys[(n - start) as usize];
            let slot = if found.poison.iter().any(|(k, _)| k == key) {
                Slot::Settled { delivered: false }
            } else {
                self.settle(n, found.values.get(key).cloned())
            };
            match slot {
                Slot::Wait => break,
                Slot::Settled { delivered } => {
                    if !delivered {
                        self.state.totals.undelivered += 1;
                    }
                    n += 1;
                }
            }
        }
        self.state.cursors.walk = n;
        Ok(())
    }

    fn settle(&mut self, n: u64, entry: Option<RingEntry>) -> Slot {
        let graced = self.state.graced;
        let id = match entry {
            Some(Some(id)) => id,
            Some(None) => return Slot::Settled { delivered: false }, // padding
            None if n >= self.counters.ring_tail => return Slot::Wait, // to be padded
            None if n < graced.ring_tail => return Slot::Settled { delivered: false }, // dead
            None => return Slot::Wait, // its writer may still be at work
        };
        let Some(r) = self.records.get(&id) else {
            return Slot::Settled { delivered: false };
        };
        let here = r.at == Place::ring(n);
        if r.deliveries.contains(&n) {
            if here && matches!(r.state, State::InProgress { .. }) {
                let expiry = r.lease(self.heartbeats.get(&id)).map_or(0, |(_, e)| e);
                let rescue_at = expiry + self.q.timing.rescue_after_ms;
                if self.now >= rescue_at {
                    self.rescue(&id);
                } else {
                    let entry = TimerEntry {
                        id,
                        at: Place::ring(n),
                        kind: TimerKind::Lease,
                    };
                    self.file(rescue_at, entry);
                }
            }
            return Slot::Settled { delivered: true };
        }
        if here && r.state == State::Pending {
            // Taken, never leased: its taker (or its writer, settling the
            // slot) may still be at work until the slot is abandoned.
            if n < graced.ring_head && n < graced.ring_tail {
                self.requeue(&id, Requeue::Retake);
                return Slot::Settled { delivered: false };
            }
            return Slot::Wait;
        }
        Slot::Settled { delivered: false }
    }

    /// Repair the head: pad slots taken beyond the tail; take dead holes
    /// at a head that has not moved for an abandonment period.
    pub(super) fn unblock_head(&mut self) -> Result<()> {
        let (head, tail) = (self.counters.ring_head, self.counters.ring_tail);
        if head > tail {
            let mut padding = std::mem::take(&mut self.writes);
            ring::pad(self.q, &mut padding)?;
            self.writes = padding;
            self.counters.ring_tail = head;
            return Ok(());
        }
        let graced = self.state.graced;
        if head >= tail || head != graced.ring_head || head >= graced.ring_tail {
            return Ok(());
        }
        let taken = ring::take(self.q, BUDGET, ring::Reach::LeadingDead, graced.ring_tail)?;
        let Some(taken) = taken else {
            return Ok(());
        };
        self.poison.extend(taken.poison);
        let ids: Vec<String> = taken.tasks.iter().map(|(_, id)| id.clone()).collect();
        self.load(ids.iter())?;
        for (slot, id) in taken.tasks {
            let waiting = self
                .records
                .get(&id)
                .is_some_and(|r| r.at == Place::ring(slot) && r.state == State::Pending);
            if waiting {
                // Another taker moved the head meanwhile and this take got
                // written slots: they are this run's to hand on.
                self.requeue(&id, Requeue::Retake);
            }
        }
        self.counters.ring_head = self
            .q
            .read_counter(&self.q.keys.ring_head())?
            .max(self.counters.ring_head);
        Ok(())
    }
}
