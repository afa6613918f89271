//! Timer phase: a two-level timer wheel in the store.
//!
//! A timer due at `d` lives in the bucket of its second (`m/t/{second}`)
//! when that second falls before the hour cursor, else in the bucket of
//! its hour (`m/w/{hour}`). Each run first moves the hour buckets that
//! are about to begin (this hour and the next) into second buckets, then
//! processes every second bucket from the second cursor to the current
//! second: due entries fire, entries of the current second that are not
//! due yet are filed again, so a timer fires at the first run at or after
//! its due time. Nothing is filed past the horizon, so an idle queue's
//! cursor jumps ahead instead of reading empty seconds. A bucket is one
//! or more chunks of at most [`TIMER_CHUNK`] entries; chunk 0 knows how
//! many. Processed buckets are garbage for the next run.
//!
//! Each entry is re-checked against the task's record when it fires, so
//! stale entries are harmless.

use super::{Requeue, Run, BUDGET};
use crate::engine::keys::Wheel;
use crate::engine::record::{Place, State};
use crate::engine::store::Writes;
use crate::error::Result;
use crate::kv::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most entries per stored chunk.
const TIMER_CHUNK: usize = 512;
/// Second buckets read per `get_many` while looking for timers.
const SECONDS_PER_READ: u64 = 1024;
const HOUR_S: u64 = 3_600;

/// What a timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TimerKind {
    /// A delayed task's `not_before`.
    Delayed,
    /// A failed task's retry time.
    Retry,
    /// A lease's rescue time (its expiry plus `rescue_after_ms`).
    Lease,
}

/// One timer: task `id`, indexed at `at` when filed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TimerEntry {
    pub id: String,
    pub at: Place,
    pub kind: TimerKind,
}

/// A chunk of a bucket: chunk 0 also says how many chunks there are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Chunk {
    #[serde(default)]
    chunks: u32,
    entries: Vec<(u64, TimerEntry)>,
}

impl<K: KeyValue> Run<'_, K> {
    /// File a timer due at `due_ms` (the caller fires what is due now).
    pub(super) fn file(&mut self, due_ms: u64, entry: TimerEntry) {
        self.filed.push((due_ms, entry));
    }

    /// Where a timer due at `due_ms` is filed, given the cursors.
    fn bucket_of(&self, due_ms: u64) -> (Wheel, u64) {
        let second = (due_ms / 1000).max(self.state.wheel.second);
        if second / HOUR_S < self.state.wheel.hour {
            (Wheel::Seconds, second)
        } else {
            (Wheel::Hours, second / HOUR_S)
        }
    }

    pub(super) fn timers(&mut self) -> Result<()> {
        let now_second = self.now / 1000;
        let wheel = &mut self.state.wheel;
        if wheel.second == 0 {
            // A fresh store: nothing was filed before now.
            wheel.second = now_second;
            wheel.hour = now_second / HOUR_S + 2;
            wheel.horizon = now_second;
        }
        // Hour buckets that begin before the next hour is over.
        let last_hour = now_second / HOUR_S + 1;
        let mut handled = 0u64;
        while self.state.wheel.hour <= last_hour && handled < BUDGET {
            let hour = self.state.wheel.hour;
            self.state.wheel.hour += 1;
            handled += self.fire_bucket(Wheel::Hours, hour)?;
        }
        // Second buckets up to the current one.
        while self.state.wheel.second <= now_second && handled < BUDGET {
            let from = self.state.wheel.second;
            if from >= self.state.wheel.horizon {
                // Nothing was filed this far ahead: jump.
                self.state.wheel.second = now_second;
                break;
            }
            let to = now_second.min(from + SECONDS_PER_READ - 1);
            let keys: Vec<String> = (from..=to)
                .map(|s| self.q.keys.timer_chunk(Wheel::Seconds, s, 0))
                .collect();
            let present: BTreeSet<String> = self
                .q
                .kv
                .get_many(&keys)?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            for (second, key) in (from..=to).zip(&keys) {
                if handled >= BUDGET {
                    self.state.wheel.second = second;
                    return Ok(());
                }
                if present.contains(key) {
                    handled += self.fire_bucket(Wheel::Seconds, second)?;
                }
            }
            if to == now_second {
                // The current second stays current: what is filed into it
                // later in this second fires at the next run.
                self.state.wheel.second = now_second;
                break;
            }
            self.state.wheel.second = to + 1;
        }
        Ok(())
    }

    /// Process one bucket (once per run); returns how many entries it held.
    fn fire_bucket(&mut self, wheel: Wheel, bucket: u64) -> Result<u64> {
        if !self.fired.insert((wheel, bucket)) {
            return Ok(0);
        }
        let first_key = self.q.keys.timer_chunk(wheel, bucket, 0);
        let Some(first) = self.read_chunk(&first_key)? else {
            return Ok(0);
        };
        let mut keys = vec![first_key];
        keys.extend((1..first.chunks).map(|c| self.q.keys.timer_chunk(wheel, bucket, c)));
        let rest = self.q.read_many::<Chunk>(&keys[1..])?;
        self.poison.extend(rest.poison);
        let entries: Vec<(u64, TimerEntry)> = std::iter::once(&first)
            .chain(keys[1..].iter().filter_map(|k| rest.values.get(k)))
            .flat_map(|c| c.entries.iter().cloned())
            .collect();
        self.garbage.extend(keys);
        let ids: Vec<String> = entries.iter().map(|(_, e)| e.id.clone()).collect();
        self.load(ids.iter())?;
        let n = entries.len() as u64;
        for (due, e) in entries {
            self.fire(due, e);
        }
        Ok(n)
    }

    fn read_chunk(&mut self, key: &str) -> Result<Option<Chunk>> {
        let found = self.q.read_many::<Chunk>(&[key.to_string()])?;
        self.poison.extend(found.poison);
        Ok(found.values.into_values().next())
    }

    /// A timer's moment has come (or its hour has): act on it if it still
    /// matches the task's record, else drop it.
    fn fire(&mut self, due: u64, e: TimerEntry) {
        let Some(r) = self.records.get(&e.id) else {
            // Gone (finished and retained away), or unreadable: then this
            // timer's entry ends here, set aside, and the stats say so.
            let key = self.q.keys.task(&e.id);
            if self.poison.iter().any(|(k, _)| *k == key) && self.ended.insert(e.at) {
                let t = &mut self.state.totals;
                match e.kind {
                    TimerKind::Delayed => t.delayed_holes += 1,
                    TimerKind::Retry => t.retry_holes += 1,
                    TimerKind::Lease => t.set_aside_leased += 1,
                }
            }
            return;
        };
        if r.at != e.at {
            return; // stale: the task moved on
        }
        match (e.kind, &r.state) {
            (TimerKind::Delayed, State::Pending) | (TimerKind::Retry, State::Failed { .. }) => {
                let due = r.not_before;
                if due > self.now {
                    self.file(due, e);
                } else if e.kind == TimerKind::Delayed {
                    self.requeue(&e.id, Requeue::Promote);
                } else {
                    self.requeue(&e.id, Requeue::Retry);
                }
            }
            (TimerKind::Lease, State::InProgress { .. }) => {
                let expiry = r
                    .lease(self.heartbeats.get(&e.id))
                    .map_or(due, |(_, expiry)| expiry);
                let rescue_at = expiry + self.q.timing.rescue_after_ms;
                if self.now >= rescue_at {
                    self.rescue(&e.id);
                } else {
                    self.file(rescue_at, e);
                }
            }
            _ => {}
        }
    }

    /// Append the timers filed by this run to their buckets.
    pub(super) fn write_timers(&mut self, writes: &mut Writes) -> Result<()> {
        let mut by_bucket: BTreeMap<(Wheel, u64), Vec<(u64, TimerEntry)>> = BTreeMap::new();
        for (due, e) in std::mem::take(&mut self.filed) {
            let bucket = self.bucket_of(due);
            if bucket.0 == Wheel::Seconds {
                self.state.wheel.horizon = self.state.wheel.horizon.max(bucket.1 + 1);
            }
            by_bucket.entry(bucket).or_default().push((due, e));
        }
        // What buckets not consumed by this run hold already.
        let keys: Vec<String> = by_bucket
            .keys()
            .filter(|b| !self.fired.contains(b))
            .map(|&(w, b)| self.q.keys.timer_chunk(w, b, 0))
            .collect();
        let heads = self.q.read_many::<Chunk>(&keys)?;
        self.poison.extend(heads.poison);
        for ((wheel, bucket), new) in by_bucket {
            let head_key = self.q.keys.timer_chunk(wheel, bucket, 0);
            let mut head = if self.fired.contains(&(wheel, bucket)) {
                Chunk::default()
            } else {
                heads.values.get(&head_key).cloned().unwrap_or_default()
            };
            let chunks = head.chunks.max(1);
            let mut index = chunks - 1;
            let mut current = if index == 0 {
                std::mem::take(&mut head.entries)
            } else {
                let key = self.q.keys.timer_chunk(wheel, bucket, index);
                let mut found = self.q.read_many::<Chunk>(std::slice::from_ref(&key))?;
                self.poison.append(&mut found.poison);
                found.values.remove(&key).unwrap_or_default().entries
            };
            for e in new {
                if current.len() >= TIMER_CHUNK {
                    self.put_chunk(writes, wheel, bucket, index, &mut head, current);
                    index += 1;
                    current = Vec::new();
                }
                current.push(e);
            }
            self.put_chunk(writes, wheel, bucket, index, &mut head, current);
            head.chunks = index + 1;
            writes.put(head_key, &head);
        }
        Ok(())
    }

    fn put_chunk(
        &self,
        writes: &mut Writes,
        wheel: Wheel,
        bucket: u64,
        index: u32,
        head: &mut Chunk,
        entries: Vec<(u64, TimerEntry)>,
    ) {
        if index == 0 {
            head.entries = entries;
        } else {
            writes.put(
                self.q.keys.timer_chunk(wheel, bucket, index),
                &Chunk { chunks: 0, entries },
            );
        }
    }
}
