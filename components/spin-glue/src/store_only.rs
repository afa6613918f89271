//! [`WasiStore`]: the [`StoreKv`] seam over `wasi:keyvalue/store` alone —
//! no `atomics`, no `batch` — for the hosted builds (Fermyon Cloud offers
//! only `store`; Akamai Functions `store` and `batch`). Several keys are
//! read, written and deleted key by key; keys are listed page by page.

use crate::bindings::wasi::keyvalue::store;
use crate::kv::convert;
use spin_work_queue::kv::{KvError, StoreKv};

/// A store opened by label, used through `wasi:keyvalue/store` only.
pub struct WasiStore {
    bucket: store::Bucket,
}

impl WasiStore {
    /// Open the store `label` of this component.
    pub fn open(label: &str) -> Result<Self, KvError> {
        Ok(Self {
            bucket: store::open(label).map_err(convert)?,
        })
    }
}

impl StoreKv for WasiStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket.get(key).map_err(convert)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bucket.set(key, value).map_err(convert)
    }

    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bucket.delete(key).map_err(convert)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(v) = self.get(key)? {
                found.push((key.clone(), v));
            }
        }
        Ok(found)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        pairs.iter().try_for_each(|(k, v)| self.set(k, v))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        keys.iter().try_for_each(|k| self.delete(k))
    }

    fn list_keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor.as_deref()).map_err(convert)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
}
