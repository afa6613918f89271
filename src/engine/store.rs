//! Typed access to the store: JSON values (undecodable ones reported, not
//! fatal), counters, batched writes, and the fenced commit every
//! time-bounded write goes through.

use super::keys::{CounterKey, Log};
use super::observe::Event;
use super::record::{Heartbeat, TaskRecord};
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::{decode_counter, KeyValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| QueueError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our own plain data types, with inputs and outputs validated to a
    // bounded depth: serialising them cannot fail.
    serde_json::to_vec(value).expect("engine records serialise")
}

/// Values read by key, plus the keys whose values could not be decoded.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    pub values: BTreeMap<String, T>,
    /// `(key, reason)` of every undecodable value.
    pub poison: Vec<(String, String)>,
}

impl<T> Default for Decoded<T> {
    fn default() -> Self {
        Self {
            values: BTreeMap::new(),
            poison: Vec::new(),
        }
    }
}

/// A deadline: nothing that depends on what a request reserved or read may
/// be written once `limit` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub limit: u64,
}

impl<K: KeyValue> KvWorkQueue<K> {
    /// The clock's current time.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The request deadline counted from `start` (a clock reading taken
    /// before the request's first reservation).
    pub(crate) fn deadline_from(&self, start: u64) -> Deadline {
        Deadline {
            limit: start + self.timing.deadline_ms,
        }
    }

    /// One JSON value, `None` when absent; undecodable is an error.
    pub(crate) fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.kv.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    /// Many JSON values in one `get_many`, by key; absent keys are left
    /// out, undecodable ones reported in [`Decoded::poison`].
    pub(crate) fn read_many<T: DeserializeOwned>(&self, keys: &[String]) -> Result<Decoded<T>> {
        let mut out = Decoded::default();
        if keys.is_empty() {
            return Ok(out);
        }
        for (k, v) in self.kv.get_many(keys)? {
            match decode(&k, &v) {
                Ok(value) => {
                    out.values.insert(k, value);
                }
                Err(QueueError::Corrupt { key, reason }) => out.poison.push((key, reason)),
                Err(other) => return Err(other),
            }
        }
        Ok(out)
    }

    /// Entries `range` of `log` in one `get_many`: their keys, in order,
    /// and what they hold.
    pub(crate) fn read_entries<T: DeserializeOwned>(
        &self,
        log: Log,
        range: std::ops::Range<u64>,
    ) -> Result<(Vec<String>, Decoded<T>)> {
        let keys: Vec<String> = range.map(|n| self.keys.entry(log, n)).collect();
        let found = self.read_many(&keys)?;
        Ok((keys, found))
    }

    /// Several counters in one `get_many` (absent = 0).
    pub(crate) fn read_counters(&self, keys: &[&CounterKey]) -> Result<Vec<u64>> {
        let names: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let found: BTreeMap<String, Vec<u8>> = self.kv.get_many(&names)?.into_iter().collect();
        let mut out = Vec::with_capacity(keys.len());
        for name in &names {
            let n = match found.get(name) {
                None => 0,
                Some(bytes) => match decode_counter(bytes) {
                    Some(n) => n,
                    None => self.kv.increment(name, 0)?,
                },
            };
            out.push(n.max(0) as u64);
        }
        Ok(out)
    }

    /// One counter (absent = 0).
    pub(crate) fn read_counter(&self, key: &CounterKey) -> Result<u64> {
        Ok(crate::kv::read_counter(&self.kv, &key.0)?.max(0) as u64)
    }

    /// Add `delta` to a counter; returns the new value.
    pub(crate) fn increment(&self, key: &CounterKey, delta: u64) -> Result<u64> {
        Ok(self.kv.increment(&key.0, delta as i64)?.max(0) as u64)
    }

    /// Reserve `n` entries of `log`: returns the first.
    pub(crate) fn reserve(&self, log: Log, n: u64) -> Result<u64> {
        Ok(self.increment(&self.keys.tail(log), n)? - n)
    }

    /// Task records and their heartbeats by id, in one `get_many`; ids
    /// without a record are left out, undecodable records reported.
    pub(crate) fn load_tasks<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Result<Loaded> {
        let ids: Vec<&str> = ids.into_iter().collect();
        let mut keys = Vec::with_capacity(ids.len() * 2);
        for id in &ids {
            keys.push(self.keys.task(id));
            keys.push(self.keys.heartbeat(id));
        }
        let raw: BTreeMap<String, Vec<u8>> = if keys.is_empty() {
            BTreeMap::new()
        } else {
            self.kv.get_many(&keys)?.into_iter().collect()
        };
        let mut out = Loaded::default();
        for id in ids {
            let key = self.keys.task(id);
            let Some(bytes) = raw.get(&key) else { continue };
            match decode::<TaskRecord>(&key, bytes) {
                Ok(r) if r.task.id == id => {
                    out.records.insert(id.to_string(), r);
                }
                Ok(_) => out.poison.push((key, "record of another task".into())),
                Err(e) => out.poison.push((key, corrupt_reason(e))),
            }
            if let Some(bytes) = raw.get(&self.keys.heartbeat(id)) {
                // A heartbeat that cannot be read only costs its extension.
                if let Ok(h) = decode::<Heartbeat>("", bytes) {
                    out.heartbeats.insert(id.to_string(), h);
                }
            }
        }
        Ok(out)
    }

    /// One task's record and heartbeat; an undecodable record is an error.
    pub(crate) fn load_task(&self, id: &str) -> Result<Option<(TaskRecord, Option<Heartbeat>)>> {
        let mut loaded = self.load_tasks([id])?;
        if let Some((key, reason)) = loaded.poison.pop() {
            return Err(QueueError::Corrupt { key, reason });
        }
        Ok(loaded
            .records
            .remove(id)
            .map(|r| (r, loaded.heartbeats.remove(id))))
    }

    /// Commit `writes` if `check` passes at the current time; the check
    /// and the write are the last two things the request does, so the
    /// write lands within the store-call bound of the check.
    pub(crate) fn commit_checked(
        &self,
        op: &'static str,
        writes: Writes,
        check: impl FnOnce(u64) -> Result<()>,
    ) -> Result<()> {
        let checked_at = self.now();
        check(checked_at)?;
        if writes.is_empty() {
            return Ok(());
        }
        self.kv.set_many(&writes.pairs)?;
        let took = self.now().saturating_sub(checked_at);
        if took > self.timing.store_call_ms {
            self.observer.event(&Event::SlowWrite { op, ms: took });
        }
        Ok(())
    }

    /// Fail with `TooSlow` once `deadline` has passed at `now`.
    pub(crate) fn within(&self, deadline: Deadline, now: u64, op: &str) -> Result<()> {
        if now >= deadline.limit {
            return Err(QueueError::TooSlow(format!(
                "{op} took longer than {} ms; nothing was written, retry",
                self.timing.deadline_ms
            )));
        }
        Ok(())
    }

    /// Report values that could not be decoded.
    pub(crate) fn report_poison(&self, poison: &[(String, String)]) {
        for (key, reason) in poison {
            self.observer.event(&Event::SetAside {
                key: key.clone(),
                reason: reason.clone(),
            });
        }
    }
}

fn corrupt_reason(e: QueueError) -> String {
    match e {
        QueueError::Corrupt { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Task records (and heartbeats) read by [`KvWorkQueue::load_tasks`].
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub records: BTreeMap<String, TaskRecord>,
    pub heartbeats: BTreeMap<String, Heartbeat>,
    pub poison: Vec<(String, String)>,
}

/// Writes collected for one `set_many`.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pairs: Vec<(String, Vec<u8>)>,
    index: BTreeMap<String, usize>,
}

impl Writes {
    /// Write `value` as JSON at `key` (a later put of the same key wins).
    pub(crate) fn put<T: Serialize>(&mut self, key: String, value: &T) {
        self.put_raw(key, encode(value));
    }

    /// Write raw bytes at `key`.
    pub(crate) fn put_raw(&mut self, key: String, bytes: Vec<u8>) {
        match self.index.get(&key) {
            Some(&i) => self.pairs[i].1 = bytes,
            None => {
                self.index.insert(key.clone(), self.pairs.len());
                self.pairs.push((key, bytes));
            }
        }
    }

    /// True when `key` is written by this batch.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// True when nothing is collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
