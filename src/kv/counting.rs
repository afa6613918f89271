//! [`CountingKv`]: counts the reads and write commits a workload costs.

use super::{KeyValue, KvError};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Operation counts observed by a [`CountingKv`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvCounts {
    /// `get` calls.
    pub gets: u64,
    /// `get_many` calls.
    pub get_manys: u64,
    /// Keys asked for by `get` and `get_many` together.
    pub keys_read: u64,
    /// `set` calls.
    pub sets: u64,
    /// `set_many` calls.
    pub set_manys: u64,
    /// Pairs written by `set` and `set_many` together.
    pub pairs_written: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// `increment` calls.
    pub increments: u64,
}

impl KvCounts {
    /// Write commits: `set`, `set_many`, `delete` and `increment` calls.
    pub fn commits(&self) -> u64 {
        self.sets + self.set_manys + self.deletes + self.increments
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
            sets: self.sets - earlier.sets,
            set_manys: self.set_manys - earlier.set_manys,
            pairs_written: self.pairs_written - earlier.pairs_written,
            deletes: self.deletes - earlier.deletes,
            increments: self.increments - earlier.increments,
        }
    }
}

/// A wrapper that counts every call it forwards to the inner store.
#[derive(Debug, Default)]
pub struct CountingKv<K> {
    inner: K,
    gets: AtomicU64,
    get_manys: AtomicU64,
    keys_read: AtomicU64,
    sets: AtomicU64,
    set_manys: AtomicU64,
    pairs_written: AtomicU64,
    deletes: AtomicU64,
    increments: AtomicU64,
}

impl<K> CountingKv<K> {
    /// Count the calls made to `inner`.
    pub fn new(inner: K) -> Self {
        Self {
            inner,
            gets: AtomicU64::new(0),
            get_manys: AtomicU64::new(0),
            keys_read: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            set_manys: AtomicU64::new(0),
            pairs_written: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            increments: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> KvCounts {
        KvCounts {
            gets: self.gets.load(Relaxed),
            get_manys: self.get_manys.load(Relaxed),
            keys_read: self.keys_read.load(Relaxed),
            sets: self.sets.load(Relaxed),
            set_manys: self.set_manys.load(Relaxed),
            pairs_written: self.pairs_written.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            increments: self.increments.load(Relaxed),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &K {
        &self.inner
    }
}

impl<K: KeyValue> KeyValue for CountingKv<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.gets.fetch_add(1, Relaxed);
        self.keys_read.fetch_add(1, Relaxed);
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.sets.fetch_add(1, Relaxed);
        self.pairs_written.fetch_add(1, Relaxed);
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.deletes.fetch_add(1, Relaxed);
        self.inner.delete(key)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        self.get_manys.fetch_add(1, Relaxed);
        self.keys_read.fetch_add(keys.len() as u64, Relaxed);
        self.inner.get_many(keys)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.set_manys.fetch_add(1, Relaxed);
        self.pairs_written.fetch_add(pairs.len() as u64, Relaxed);
        self.inner.set_many(pairs)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.increments.fetch_add(1, Relaxed);
        self.inner.increment(key, delta)
    }
}
