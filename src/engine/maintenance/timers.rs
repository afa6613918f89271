//! Timer phase: entries filed by due second (`m/t/{second}/{chunk}`, the
//! directory of seconds in the state), processed as soon as their second
//! has begun; entries of the current second that are not due yet are filed
//! again, so a timer fires at the first run at or after its due time. Each
//! entry is re-checked against the task's record, so stale entries are
//! harmless.

use super::{Requeue, Run, BUDGET};
use crate::engine::record::{Place, State};
use crate::engine::store::Writes;
use crate::error::Result;
use crate::kv::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Most entries per stored chunk.
const TIMER_CHUNK: usize = 512;

/// What a timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    /// A delayed task's `not_before`.
    Delayed,
    /// A failed task's retry time.
    Retry,
    /// A lease's expiry.
    Lease,
}

/// One timer: task `id` indexed at `at` when filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TimerEntry {
    pub id: String,
    pub at: Place,
    pub kind: TimerKind,
}

impl<K: KeyValue> Run<'_, K> {
    /// File a timer due at `due_ms`, in the bucket of its second.
    pub(super) fn file(&mut self, due_ms: u64, entry: TimerEntry) {
        let second = due_ms / 1000;
        match entry.kind {
            TimerKind::Delayed => self.state.waiting.delayed += 1,
            TimerKind::Retry => self.state.waiting.retries += 1,
            TimerKind::Lease => {}
        }
        self.filed.push((second, entry));
    }

    pub(super) fn timers(&mut self) -> Result<()> {
        let now_second = self.now / 1000;
        let due: Vec<(u64, u32)> = self
            .state
            .timers
            .range(..=now_second)
            .map(|(s, c)| (*s, *c))
            .collect();
        let mut handled = 0u64;
        for (second, chunks) in due {
            if handled >= BUDGET {
                break;
            }
            let keys: Vec<String> = (0..chunks)
                .map(|c| self.q.keys.timer_chunk(second, c))
                .collect();
            let stored: HashMap<String, Vec<TimerEntry>> = self.q.get_many_json(&keys)?;
            let entries: Vec<TimerEntry> = keys
                .iter()
                .filter_map(|k| stored.get(k))
                .flatten()
                .cloned()
                .collect();
            handled += entries.len() as u64;
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            self.load(ids.iter())?;
            let results = self.completed(&ids)?;
            for e in entries {
                self.fire(e, &results);
            }
            self.state.timers.remove(&second);
            self.stale_chunks.extend(keys);
        }
        Ok(())
    }

    fn fire(
        &mut self,
        e: TimerEntry,
        results: &HashMap<String, crate::engine::record::ResultRecord>,
    ) {
        match e.kind {
            TimerKind::Delayed => {
                self.state.waiting.delayed = self.state.waiting.delayed.saturating_sub(1)
            }
            TimerKind::Retry => {
                self.state.waiting.retries = self.state.waiting.retries.saturating_sub(1)
            }
            TimerKind::Lease => {}
        }
        let Some(r) = self.records.get(&e.id) else {
            return;
        };
        if r.at != e.at {
            return; // stale: the task moved on
        }
        match (e.kind, &r.state) {
            (TimerKind::Delayed, State::Pending) | (TimerKind::Retry, State::Failed { .. }) => {
                let due_at = r.not_before;
                if due_at > self.now {
                    self.file(due_at, e);
                } else if e.kind == TimerKind::Delayed {
                    self.state.totals.delayed_promoted += 1;
                    self.requeue(&e.id, Requeue::Promote);
                } else {
                    self.state.totals.retries_promoted += 1;
                    self.requeue(&e.id, Requeue::Retry);
                }
            }
            (TimerKind::Lease, State::InProgress { lease }) => {
                let expires_at = lease.expires_at;
                if let Some(result) = results.get(&e.id) {
                    let result = result.clone();
                    self.repair(&e.id, &result);
                } else if self.now >= expires_at {
                    self.rescue(&e.id);
                } else {
                    self.file(expires_at, e);
                }
            }
            _ => {}
        }
    }

    /// Append the timers filed by this run to their seconds' chunks.
    pub(super) fn write_timers(&mut self, writes: &mut Writes) -> Result<()> {
        let mut by_second: BTreeMap<u64, Vec<TimerEntry>> = BTreeMap::new();
        for (second, e) in self.filed.drain(..) {
            by_second.entry(second).or_default().push(e);
        }
        for (second, new) in by_second {
            let chunks = self.state.timers.get(&second).copied().unwrap_or(0);
            let mut index = chunks.saturating_sub(1);
            let mut current: Vec<TimerEntry> = if chunks > 0 {
                self.q
                    .get_json(&self.q.keys.timer_chunk(second, index))?
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            for e in new {
                if current.len() >= TIMER_CHUNK {
                    writes.put(self.q.keys.timer_chunk(second, index), &current);
                    index += 1;
                    current = Vec::new();
                }
                current.push(e);
            }
            writes.put(self.q.keys.timer_chunk(second, index), &current);
            self.state.timers.insert(second, index + 1);
        }
        Ok(())
    }
}
