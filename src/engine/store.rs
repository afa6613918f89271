//! Typed access to the store: JSON values, counters, batched writes, and
//! the slow-write guard every appending operation runs under.

use super::keys::{CounterKey, Log};
use super::record::{ResultRecord, TaskRecord};
use super::KvWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::{decode_counter, KeyValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

/// How many times an appending operation is redone when its writes landed
/// too late to be trusted (see [`guarded`]).
const SLOW_WRITE_RETRIES: usize = 3;

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| QueueError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data types cannot fail.
    serde_json::to_vec(value).expect("engine records serialise")
}

impl<K: KeyValue> KvWorkQueue<K> {
    /// The clock's current time.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// One JSON value, `None` when absent.
    pub(crate) fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.kv.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    /// Many JSON values in one `get_many`, by key; absent keys are left out.
    pub(crate) fn get_many_json<T: DeserializeOwned>(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, T>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (k, v) in self.kv.get_many(keys)? {
            let value = decode(&k, &v)?;
            out.insert(k, value);
        }
        Ok(out)
    }

    /// Several counters in one `get_many` (absent = 0).
    pub(crate) fn read_counters(&self, keys: &[&CounterKey]) -> Result<Vec<u64>> {
        let names: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let found: HashMap<String, Vec<u8>> = self.kv.get_many(&names)?.into_iter().collect();
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

    /// Add `delta` to a counter; returns the new value.
    pub(crate) fn increment(&self, key: &CounterKey, delta: u64) -> Result<u64> {
        Ok(self.kv.increment(&key.0, delta as i64)?.max(0) as u64)
    }

    /// Append `n` entries to the log whose tail counter is `tail`: returns
    /// the first of the `n` slots now reserved.
    pub(crate) fn reserve(&self, tail: &CounterKey, n: u64) -> Result<u64> {
        Ok(self.increment(tail, n)? - n)
    }

    /// Append `entries` to `log`: one reservation, the entries added to
    /// `writes`. Returns the first slot (nothing is reserved for none).
    pub(crate) fn append<T: Serialize>(
        &self,
        log: Log,
        entries: &[T],
        writes: &mut Writes,
    ) -> Result<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        let first = self.reserve(&self.keys.tail(log), entries.len() as u64)?;
        for (i, e) in entries.iter().enumerate() {
            writes.put(self.keys.entry(log, first + i as u64), e);
        }
        Ok(first)
    }

    /// Task records by id (absent ids are left out).
    pub(crate) fn load_tasks<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, TaskRecord>> {
        let keys: Vec<String> = ids.into_iter().map(|id| self.keys.task(id)).collect();
        let mut by_key: HashMap<String, TaskRecord> = self.get_many_json(&keys)?;
        Ok(by_key
            .drain()
            .map(|(_, r)| (r.task.id.clone(), r))
            .collect())
    }

    /// The winning result (lowest completion `seq`) of each task that has
    /// one, looking at every generation up to the record's.
    pub(crate) fn load_results<'a>(
        &self,
        records: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<HashMap<String, ResultRecord>> {
        let mut keys = Vec::new();
        let mut owner = HashMap::new();
        for r in records {
            for gen in 0..=r.gen {
                let key = self.keys.result(&r.task.id, gen);
                owner.insert(key.clone(), r.task.id.clone());
                keys.push(key);
            }
        }
        let mut best: HashMap<String, ResultRecord> = HashMap::new();
        for (key, result) in self.get_many_json::<ResultRecord>(&keys)? {
            let id = owner[&key].clone();
            match best.get(&id) {
                Some(b) if b.seq <= result.seq => {}
                _ => {
                    best.insert(id, result);
                }
            }
        }
        Ok(best)
    }

    /// Fail with [`QueueError::TooSlow`] when what was read at `read_at`
    /// is too old to act on: maintenance may have rescued the task since
    /// (there is no compare-and-swap to catch that at write time).
    pub(crate) fn still_fresh(&self, read_at: u64) -> Result<()> {
        if self.now().saturating_sub(read_at) >= self.config.grace_ms / 2 {
            return Err(QueueError::TooSlow(
                "the task was read too long ago to change it safely; retry".into(),
            ));
        }
        Ok(())
    }

    /// Run an appending operation (reservations plus one `set_many`) and
    /// check it finished within half the grace period of its start.
    ///
    /// Maintenance treats a reserved entry that is still empty after the
    /// grace period as abandoned by a crashed request and moves past it; an
    /// operation whose writes landed later than that could be skipped, so it
    /// is redone (fresh reservations, the same records) before reporting
    /// success, and reported as [`QueueError::TooSlow`] if it stays slow.
    pub(crate) fn guarded<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        for _ in 0..SLOW_WRITE_RETRIES {
            let start = self.now();
            let value = op()?;
            if self.now().saturating_sub(start) < self.config.grace_ms / 2 {
                return Ok(value);
            }
        }
        Err(QueueError::TooSlow(format!(
            "writes took longer than {} ms, {SLOW_WRITE_RETRIES} times",
            self.config.grace_ms / 2
        )))
    }
}

/// Writes collected for one `set_many`.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pairs: Vec<(String, Vec<u8>)>,
    index: HashMap<String, usize>,
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

    /// One `set_many` of everything collected (nothing when empty).
    pub(crate) fn commit<K: KeyValue>(self, kv: &K) -> Result<()> {
        if self.pairs.is_empty() {
            return Ok(());
        }
        kv.set_many(&self.pairs)?;
        Ok(())
    }
}
