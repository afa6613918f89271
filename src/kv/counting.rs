//! [`CountingKv`]: counts the reads and write commits a workload costs.

use super::{KeyValue, KvError};
use std::sync::{Mutex, MutexGuard};

/// Operation counts observed by a [`CountingKv`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvCounts {
    /// `get` calls.
    pub gets: u64,
    /// `get_many` calls.
    pub get_manys: u64,
    /// Keys asked for by `get` and `get_many` together.
    pub keys_read: u64,
    /// Bytes of the values returned by `get` and `get_many`.
    pub bytes_read: u64,
    /// `set` calls.
    pub sets: u64,
    /// `set_many` calls.
    pub set_manys: u64,
    /// Pairs written by `set` and `set_many` together.
    pub pairs_written: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// `delete_many` calls.
    pub delete_manys: u64,
    /// `increment` calls.
    pub increments: u64,
    /// Keys removed by `delete` and `delete_many` together.
    pub keys_deleted: u64,
    /// `list_keys` calls.
    pub lists: u64,
    /// Keys returned by `list_keys`.
    pub keys_listed: u64,
}

impl KvCounts {
    /// Write commits: `set`, `set_many`, `delete`, `delete_many` and
    /// `increment` calls.
    pub fn commits(&self) -> u64 {
        self.sets + self.set_manys + self.deletes + self.delete_manys + self.increments
    }

    /// Key writes, the unit of hosted stores' write limits: pairs set plus
    /// keys deleted.
    pub fn key_writes(&self) -> u64 {
        self.pairs_written + self.keys_deleted
    }

    /// Read calls: `get` and `get_many`.
    pub fn reads(&self) -> u64 {
        self.gets + self.get_manys
    }

    /// Every call.
    pub fn ops(&self) -> u64 {
        self.reads() + self.commits()
    }

    /// The difference `self - earlier`, field by field.
    pub fn since(&self, earlier: &KvCounts) -> KvCounts {
        KvCounts {
            gets: self.gets - earlier.gets,
            get_manys: self.get_manys - earlier.get_manys,
            keys_read: self.keys_read - earlier.keys_read,
            bytes_read: self.bytes_read - earlier.bytes_read,
            sets: self.sets - earlier.sets,
            set_manys: self.set_manys - earlier.set_manys,
            pairs_written: self.pairs_written - earlier.pairs_written,
            deletes: self.deletes - earlier.deletes,
            delete_manys: self.delete_manys - earlier.delete_manys,
            increments: self.increments - earlier.increments,
            keys_deleted: self.keys_deleted - earlier.keys_deleted,
            lists: self.lists - earlier.lists,
            keys_listed: self.keys_listed - earlier.keys_listed,
        }
    }
}

/// A wrapper that counts every call it forwards to the inner store.
#[derive(Debug, Default)]
pub struct CountingKv<K> {
    inner: K,
    counts: Mutex<KvCounts>,
}

impl<K> CountingKv<K> {
    /// Count the calls made to `inner`.
    pub fn new(inner: K) -> Self {
        Self {
            inner,
            counts: Mutex::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> KvCounts {
        *self.lock()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, KvCounts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one `list_keys` call that returned `keys` keys.
    pub(super) fn count_list(&self, keys: u64) {
        self.count(|c| {
            c.lists += 1;
            c.keys_listed += keys;
        });
    }

    fn count(&self, f: impl FnOnce(&mut KvCounts)) {
        f(&mut self.lock());
    }
}

impl<K: KeyValue> KeyValue for CountingKv<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let got = self.inner.get(key);
        let bytes = got
            .as_ref()
            .ok()
            .and_then(|v| v.as_ref())
            .map_or(0, Vec::len);
        self.count(|c| {
            c.gets += 1;
            c.keys_read += 1;
            c.bytes_read += bytes as u64;
        });
        got
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.count(|c| {
            c.sets += 1;
            c.pairs_written += 1;
        });
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.count(|c| {
            c.deletes += 1;
            c.keys_deleted += 1;
        });
        self.inner.delete(key)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let got = self.inner.get_many(keys);
        let bytes: usize = got
            .as_ref()
            .map_or(0, |pairs| pairs.iter().map(|(_, v)| v.len()).sum());
        self.count(|c| {
            c.get_manys += 1;
            c.keys_read += keys.len() as u64;
            c.bytes_read += bytes as u64;
        });
        got
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.count(|c| {
            c.set_manys += 1;
            c.pairs_written += pairs.len() as u64;
        });
        self.inner.set_many(pairs)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.count(|c| {
            c.delete_manys += 1;
            c.keys_deleted += keys.len() as u64;
        });
        self.inner.delete_many(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.count(|c| c.increments += 1);
        self.inner.increment(key, delta)
    }
}
