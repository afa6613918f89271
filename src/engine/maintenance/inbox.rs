//! Inbox phase: tasks enqueued with a delay and failed tasks waiting for a
//! retry arrive in append logs; due ones go straight back to the ring, the
//! rest are filed as timers. Also the dead-letter log's check for holes.

use super::timers::{TimerEntry, TimerKind};
use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::{DeadLetterRef, Place, State};
use crate::error::Result;
use crate::kv::KeyValue;

/// Which inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inbox {
    Delayed,
    Retries,
}

impl<K: KeyValue> Run<'_, K> {
    pub(super) fn inbox(&mut self, inbox: Inbox) -> Result<()> {
        let (log, cursor, tail, graced) = match inbox {
            Inbox::Delayed => (
                Log::Delayed,
                self.state.cursors.delayed,
                self.counters.delayed_tail,
                self.state.graced.delayed_tail,
            ),
            Inbox::Retries => (
                Log::Retries,
                self.state.cursors.retries,
                self.counters.retries_tail,
                self.state.graced.retries_tail,
            ),
        };
        let end = tail.min(cursor + BUDGET);
        if cursor >= end {
            return Ok(());
        }
        let (keys, found) = self.q.read_entries::<String>(log, cursor..end)?;
        self.poison.extend(found.poison.iter().cloned());
        self.load(found.values.values())?;
        let mut n = cursor;
        while n < end {
            let key = &keys[(n - cursor) as usize];
            let Some(id) = found.values.get(key).cloned() else {
                let poisoned = found.poison.iter().any(|(k, _)| k == key);
                if poisoned || n < graced {
                    // Undecodable, or reserved by a request that died.
                    self.count_hole(inbox);
                    n += 1;
                    continue;
                }
                break; // possibly still being written
            };
            let place = match inbox {
                Inbox::Delayed => Place::delayed(n),
                Inbox::Retries => Place::retries(n),
            };
            n += 1;
            let waiting = self.records.get(&id).filter(|r| {
                r.at == place
                    && matches!(
                        (inbox, &r.state),
                        (Inbox::Delayed, State::Pending) | (Inbox::Retries, State::Failed { .. })
                    )
            });
            let Some(due_at) = waiting.map(|r| r.not_before) else {
                self.count_hole(inbox); // stale: it will never be promoted from here
                continue;
            };
            let (kind, how) = match inbox {
                Inbox::Delayed => (TimerKind::Delayed, Requeue::Promote),
                Inbox::Retries => (TimerKind::Retry, Requeue::Retry),
            };
            if due_at <= self.now {
                self.requeue(&id, how);
            } else {
                self.file(
                    due_at,
                    TimerEntry {
                        id,
                        at: place,
                        kind,
                    },
                );
            }
        }
        match inbox {
            Inbox::Delayed => self.state.cursors.delayed = n,
            Inbox::Retries => self.state.cursors.retries = n,
        }
        Ok(())
    }

    fn count_hole(&mut self, inbox: Inbox) {
        match inbox {
            Inbox::Delayed => self.state.totals.delayed_holes += 1,
            Inbox::Retries => self.state.totals.retry_holes += 1,
        }
    }

    /// Count the dead-letter log's holes (reservations whose writer died),
    /// so that the stats stay exact.
    pub(super) fn dead_letters(&mut self) -> Result<()> {
        let start = self.state.cursors.dead;
        let end = self.counters.dead_tail.min(start + BUDGET);
        if start >= end {
            return Ok(());
        }
        let (keys, found) = self
            .q
            .read_entries::<DeadLetterRef>(Log::DeadLetters, start..end)?;
        let mut n = start;
        while n < end {
            let key = &keys[(n - start) as usize];
            if !found.values.contains_key(key) {
                if n >= self.state.graced.dead_tail {
                    break;
                }
                self.state.totals.dead_holes += 1;
            }
            n += 1;
        }
        self.state.cursors.dead = n;
        Ok(())
    }
}
