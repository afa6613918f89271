//! `list-keys`, the one operation of `wasi:keyvalue/store` the default
//! engine never needs and the store-only engine ([`crate::hosted`]) lives
//! on: hosted Spin offers no counter, so that engine finds its tasks by
//! listing keys.

use super::{CountingKv, FaultyKv, KeyValue, KvError, MemoryKv};

/// A store that can list its keys (every key: `wasi:keyvalue` has no
/// prefix filter).
pub trait ListKeys {
    /// Every key of the store, in any order.
    fn list_keys(&self) -> Result<Vec<String>, KvError>;
}

impl ListKeys for MemoryKv {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        Ok(self.keys())
    }
}

impl<K: KeyValue + ListKeys> ListKeys for CountingKv<K> {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        let keys = self.inner().list_keys();
        let n = keys.as_ref().map_or(0, Vec::len) as u64;
        self.count_list(n);
        keys
    }
}

impl<K: KeyValue + ListKeys> ListKeys for FaultyKv<K> {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.call(|| self.inner().list_keys())
    }
}

impl<K: ListKeys + ?Sized> ListKeys for std::sync::Arc<K> {
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        (**self).list_keys()
    }
}

/// What the store-only engine may use of a store: `wasi:keyvalue/store`
/// (`get`, `set`, `delete`, `list-keys`) and, where the platform has it,
/// `batch` (`get_many`, `set_many`, `delete_many`; a store without it
/// answers them key by key). No `increment`: the engine cannot call one.
pub trait StoreKv {
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Write `key` (last writer wins).
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
    /// Remove `key` (absent is fine).
    fn delete(&self, key: &str) -> Result<(), KvError>;
    /// The values of the keys that exist.
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError>;
    /// Write every pair.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError>;
    /// Remove every key.
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError>;
    /// Every key of the store.
    fn list_keys(&self) -> Result<Vec<String>, KvError>;
}

impl<K: KeyValue + ListKeys> StoreKv for K {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        KeyValue::get(self, key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        KeyValue::set(self, key, value)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        KeyValue::delete(self, key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        KeyValue::get_many(self, keys)
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        KeyValue::set_many(self, pairs)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        KeyValue::delete_many(self, keys)
    }
    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        ListKeys::list_keys(self)
    }
}
