//! [`WasiKv`]: the [`KeyValue`] seam over `wasi:keyvalue@0.2.0-draft2`
//! inside a Spin component.
//!
//! `get-many` is broken on Spin's Redis backend (Spin 4.1: an error with
//! several keys, a host panic with one existing key), so reads of several
//! keys go through a [`GetMany`] setting: [`GetMany::Batch`] (the default,
//! right for Spin's SQLite store) sends `get-many` for two keys or more;
//! [`GetMany::Single`] never sends it and reads key by key with `get`.
//! One-key reads always use `get`. Should a `get-many` fail in `Batch` mode
//! anyway (Spin's Redis backend left at the default), the read is retried
//! key by key and the handle stays in `Single` mode for its lifetime (one
//! request), so a misconfigured Redis app is slower but correct.

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use spin_work_queue::config::ConfigError;
use spin_work_queue::kv::{even_chunks, KeyValue, KvError};
use std::cell::Cell;

/// Most keys sent in one `get-many`.
pub const GET_MANY_CHUNK: usize = 500;

/// How [`WasiKv::get_many`](KeyValue::get_many) reads several keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GetMany {
    /// One `wasi:keyvalue/batch.get-many` per [`GET_MANY_CHUNK`] keys.
    #[default]
    Batch,
    /// One `get` per key: never a `get-many` (Spin's Redis backend).
    Single,
}

impl GetMany {
    /// Parse the `kv_get_many` Spin variable: `batch` (also empty) or
    /// `single`, case-insensitive.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "batch" => Ok(Self::Batch),
            "single" => Ok(Self::Single),
            other => Err(ConfigError::Rule(format!(
                "kv_get_many must be \"batch\" or \"single\", got {other:?}"
            ))),
        }
    }
}

/// A Spin key-value store opened by label (`"default"`).
pub struct WasiKv {
    bucket: store::Bucket,
    get_many: Cell<GetMany>,
}

impl WasiKv {
    /// Open the store `label` of this component (it must be listed in the
    /// component's `key_value_stores`).
    pub fn open(label: &str, get_many: GetMany) -> Result<Self, KvError> {
        let bucket = store::open(label).map_err(convert)?;
        Ok(Self {
            bucket,
            get_many: Cell::new(get_many),
        })
    }

    /// The `get-many` mode in use (`Single` after a failed `get-many`).
    pub fn get_many_mode(&self) -> GetMany {
        self.get_many.get()
    }

    fn get_each(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, KvError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.get(key)? {
                found.push((key.clone(), value));
            }
        }
        Ok(found)
    }
}

impl std::fmt::Debug for WasiKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiKv")
            .field("get_many", &self.get_many.get())
            .finish_non_exhaustive()
    }
}

/// A `wasi:keyvalue` error as a [`KvError`].
pub(crate) fn convert(e: store::Error) -> KvError {
    match e {
        store::Error::NoSuchStore => KvError::Unavailable("no such store".into()),
        store::Error::AccessDenied => KvError::Rejected("access denied".into()),
        store::Error::Other(msg) => KvError::Unavailable(msg),
    }
}

impl KeyValue for WasiKv {
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
        if keys.len() < 2 || self.get_many.get() == GetMany::Single {
            return self.get_each(keys);
        }
        let mut found = Vec::with_capacity(keys.len());
        // Even chunks: never a one-key `get-many` (see the module docs).
        for range in even_chunks(keys.len(), GET_MANY_CHUNK) {
            let chunk = &keys[range];
            if self.get_many.get() == GetMany::Single {
                found.extend(self.get_each(chunk)?);
                continue;
            }
            match batch::get_many(&self.bucket, chunk) {
                Ok(pairs) => found.extend(pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)))),
                Err(e) => {
                    eprintln!("spin-work-queue: get-many failed ({e:?}); reading key by key");
                    self.get_many.set(GetMany::Single);
                    found.extend(self.get_each(chunk)?);
                }
            }
        }
        Ok(found)
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        batch::set_many(&self.bucket, pairs).map_err(convert)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        batch::delete_many(&self.bucket, keys).map_err(convert)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        atomics::increment(&self.bucket, key, delta).map_err(convert)
    }
}
