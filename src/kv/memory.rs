//! [`MemoryKv`]: an in-memory, thread-safe [`KeyValue`].

use super::{KeyValue, KvError};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// How [`KeyValue::increment`] stores counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterEncoding {
    /// 8 little-endian bytes, as Spin's default SQLite store.
    #[default]
    LittleEndian,
    /// A decimal string, as Spin's Redis store (`INCRBY`).
    Decimal,
}

/// An in-memory store behind one mutex: every operation is atomic.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    counters: CounterEncoding,
}

impl MemoryKv {
    /// An empty store with little-endian counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with the given counter encoding.
    pub fn with_counters(counters: CounterEncoding) -> Self {
        Self {
            map: Mutex::default(),
            counters,
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A copy of every key and value (for tests and debugging).
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-written:
        // every operation mutates it in one step.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryKv {
    /// Every key, in order.
    pub(super) fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

impl KeyValue for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.lock().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.lock().remove(key);
        Ok(())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let map = self.lock();
        Ok(keys
            .iter()
            .filter_map(|k| map.get(k).map(|v| (k.clone(), v.clone())))
            .collect())
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let mut map = self.lock();
        for (k, v) in pairs {
            map.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let mut map = self.lock();
        for k in keys {
            map.remove(k);
        }
        Ok(())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut map = self.lock();
        let current = match map.get(key) {
            None => 0,
            Some(bytes) => decode(self.counters, bytes).ok_or_else(|| {
                KvError::Rejected(format!("increment of {key}: value is not a counter"))
            })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| KvError::Rejected(format!("increment of {key} overflows")))?;
        let bytes = match self.counters {
            CounterEncoding::LittleEndian => next.to_le_bytes().to_vec(),
            CounterEncoding::Decimal => next.to_string().into_bytes(),
        };
        map.insert(key.to_string(), bytes);
        Ok(next)
    }
}

fn decode(encoding: CounterEncoding, bytes: &[u8]) -> Option<i64> {
    match encoding {
        CounterEncoding::LittleEndian => Some(i64::from_le_bytes(bytes.try_into().ok()?)),
        CounterEncoding::Decimal => std::str::from_utf8(bytes).ok()?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_many_leaves_missing_keys_out() {
        let kv = MemoryKv::new();
        kv.set("a", b"1").unwrap();
        let got = kv.get_many(&["a".into(), "b".into()]).unwrap();
        assert_eq!(got, vec![("a".to_string(), b"1".to_vec())]);
    }

    #[test]
    fn increment_rejects_values_that_are_not_counters() {
        let kv = MemoryKv::new();
        kv.set("v", b"{}").unwrap();
        assert!(matches!(kv.increment("v", 1), Err(KvError::Rejected(_))));
    }

    #[test]
    fn decimal_counters_are_stored_as_text() {
        let kv = MemoryKv::with_counters(CounterEncoding::Decimal);
        assert_eq!(kv.increment("c", 12).unwrap(), 12);
        assert_eq!(kv.get("c").unwrap().unwrap(), b"12");
    }
}
