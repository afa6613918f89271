//! Inbox phase: tasks enqueued with a delay and failed tasks waiting for a
//! retry arrive in append logs; due ones go straight back to the ring, the
//! rest are filed as timers.

use super::timers::{TimerEntry, TimerKind};
use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Log;
use crate::engine::record::{Place, State};
use crate::error::Result;
use crate::kv::KeyValue;
use std::collections::HashMap;

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
                self.state.delayed,
                self.delayed_tail,
                self.state.graced.delayed_tail,
            ),
            Inbox::Retries => (
                Log::Retries,
                self.state.retries,
                self.retries_tail,
                self.state.graced.retries_tail,
            ),
        };
        let end = tail.min(cursor + BUDGET);
        if cursor >= end {
            return Ok(());
        }
        let keys: Vec<String> = (cursor..end).map(|n| self.q.keys.entry(log, n)).collect();
        let entries: HashMap<String, String> = self.q.get_many_json(&keys)?;
        self.load(entries.values())?;
        let mut n = cursor;
        while n < end {
            let Some(id) = entries.get(&keys[(n - cursor) as usize]).cloned() else {
                if n < graced {
                    // Reserved by a request that died before writing.
                    match inbox {
                        Inbox::Delayed => self.state.totals.delayed_holes += 1,
                        Inbox::Retries => self.state.totals.retry_holes += 1,
                    }
                    n += 1;
                    continue;
                }
                break; // possibly still being written
            };
            n += 1;
            let place = match inbox {
                Inbox::Delayed => Place::delayed(n - 1),
                Inbox::Retries => Place::retries(n - 1),
            };
            let Some(r) = self.records.get(&id) else {
                continue;
            };
            let waiting = match (inbox, &r.state) {
                (Inbox::Delayed, State::Pending) => r.at == place,
                (Inbox::Retries, State::Failed { .. }) => r.at == place,
                _ => false,
            };
            if !waiting {
                continue; // stale: the task moved on
            }
            let due_at = r.not_before;
            if due_at <= self.now {
                match inbox {
                    Inbox::Delayed => {
                        self.state.totals.delayed_promoted += 1;
                        self.requeue(&id, Requeue::Promote);
                    }
                    Inbox::Retries => {
                        self.state.totals.retries_promoted += 1;
                        self.requeue(&id, Requeue::Retry);
                    }
                }
            } else {
                let kind = match inbox {
                    Inbox::Delayed => TimerKind::Delayed,
                    Inbox::Retries => TimerKind::Retry,
                };
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
            Inbox::Delayed => self.state.delayed = n,
            Inbox::Retries => self.state.retries = n,
        }
        Ok(())
    }
}
