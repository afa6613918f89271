//! Host side of the `spin-work-queue:app/storage` world: `wasi:keyvalue`
//! (`store`, `atomics`, `batch` @0.2.0-draft2) and `wasi:config/store`.
//!
//! Bindings are generated from the repository's `wit/` directory. The
//! interfaces dispatch to one [`KvBackend`] shared by the whole host; store
//! labels a component did not declare in `key_value_stores` are refused with
//! `access-denied`, as Spin does.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use wasmtime::component::{Resource, ResourceTable};

use crate::kv_redis::{GetManyFailure, RedisKv};
use crate::kv_sqlite::SqliteKv;
use crate::platform::Limits;
use crate::replica::Replica;

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "spin-work-queue:app/storage",
        // Spin 4.1's Redis `get-many` panics in the host for one existing
        // key: the call may trap instead of answering an error.
        imports: {
            "wasi:keyvalue/batch.get-many": async | trappable,
            default: async,
        },
        with: {
            "wasi:keyvalue/store.bucket": super::BucketHandle,
            "wasi:keyvalue/atomics.cas": super::CasHandle,
        },
    });
}

pub use bindings::wasi::config::store as config;
pub use bindings::wasi::keyvalue::{atomics, batch, store};
pub use bindings::Storage;

/// The key-value backend of a host.
pub enum KvBackend {
    /// One SQLite file, Spin's default store.
    Sqlite(SqliteKv),
    /// A Redis server, Spin's Redis store.
    Redis(RedisKv),
}

/// An open bucket: the store label.
pub struct BucketHandle {
    label: String,
}

/// An open compare-and-swap.
pub struct CasHandle {
    label: String,
    key: String,
    /// SQLite: the value read by `current` (`None` until then, and when the
    /// key was absent: the swap is then a plain upsert).
    expected: Option<Vec<u8>>,
    /// Redis: the CAS's own connection (it carries the WATCH).
    redis: Option<MultiplexedConnection>,
}

/// Per-request state of the storage interfaces.
pub struct StorageCtx {
    table: ResourceTable,
    backend: Arc<KvBackend>,
    allowed_labels: Arc<Vec<String>>,
    config: Arc<HashMap<String, String>>,
    limits: Arc<Limits>,
    emulation: Arc<Emulation>,
}

/// How a host emulates a platform's store beyond its limits: the write
/// rate (writes wait their turn) and replication (see [`Replica`]).
#[derive(Debug, Default)]
pub struct Emulation {
    /// Replication lag between hosts sharing the SQLite file.
    pub replica: Option<Replica>,
    /// Most key writes per second for the whole host.
    pub writes: Option<WriteRate>,
}

/// A token bucket of key writes per second.
#[derive(Debug)]
pub struct WriteRate {
    per_s: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl WriteRate {
    /// `per_s` key writes per second, a second's worth available at once.
    pub fn new(per_s: u32) -> Self {
        WriteRate {
            per_s: f64::from(per_s),
            state: std::sync::Mutex::new((f64::from(per_s), std::time::Instant::now())),
        }
    }

    /// Wait until `n` key writes may go.
    async fn take(&self, n: usize) {
        let wait = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            let refill = now.duration_since(st.1).as_secs_f64() * self.per_s;
            st.0 = (st.0 + refill).min(self.per_s);
            st.1 = now;
            st.0 -= n as f64;
            if st.0 >= 0.0 {
                0.0
            } else {
                -st.0 / self.per_s
            }
        };
        if wait > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
        }
    }
}

impl Emulation {
    async fn before_writes(&self, n: usize) {
        if let Some(w) = &self.writes {
            w.take(n).await;
        }
    }

    async fn after_writes(
        &self,
        backend: &KvBackend,
        label: &str,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), store::Error> {
        match (&self.replica, backend) {
            (Some(r), KvBackend::Sqlite(s)) => {
                r.log(s, label, writes).await.map_err(store::Error::Other)
            }
            _ => Ok(()),
        }
    }
}

impl StorageCtx {
    /// A fresh context for one component instance.
    pub fn new(
        backend: Arc<KvBackend>,
        allowed_labels: Arc<Vec<String>>,
        config: Arc<HashMap<String, String>>,
        limits: Arc<Limits>,
        emulation: Arc<Emulation>,
    ) -> Self {
        StorageCtx {
            table: ResourceTable::new(),
            backend,
            allowed_labels,
            config,
            limits,
            emulation,
        }
    }

    /// Refuse writes the platform would refuse: keys or values too large,
    /// or new keys past the store's cap.
    fn admit_writes(
        &self,
        label: &str,
        pairs: Vec<(String, usize)>,
    ) -> impl std::future::Future<Output = Result<(), store::Error>> + Send + 'static {
        admit_writes(
            self.backend.clone(),
            self.limits.clone(),
            label.to_string(),
            pairs,
        )
    }
}

/// See [`StorageCtx::admit_writes`].
async fn admit_writes(
    backend: Arc<KvBackend>,
    limits: Arc<Limits>,
    label: String,
    pairs: Vec<(String, usize)>,
) -> Result<(), store::Error> {
    {
        let l = &limits;
        for (key, len) in &pairs {
            if l.max_key_bytes.is_some_and(|m| key.len() > m) {
                return Err(store::Error::Other(format!(
                    "key of {} bytes: the platform allows {}",
                    key.len(),
                    l.max_key_bytes.unwrap_or_default()
                )));
            }
            if l.max_value_bytes.is_some_and(|m| *len > m) {
                return Err(store::Error::Other(format!(
                    "value of {len} bytes: the platform allows {}",
                    l.max_value_bytes.unwrap_or_default()
                )));
            }
        }
        let Some(cap) = l.max_keys else {
            return Ok(());
        };
        let keys = match &*backend {
            KvBackend::Sqlite(s) => s.keys(&label).await,
            KvBackend::Redis(r) => r.keys().await,
        }
        .map_err(store::Error::Other)?;
        let existing: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let fresh: std::collections::HashSet<&str> = pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !existing.contains(k))
            .collect();
        if keys.len() + fresh.len() > cap {
            return Err(store::Error::Other(format!(
                "the store holds {} keys: the platform allows {cap}",
                keys.len()
            )));
        }
        Ok(())
    }
}

impl StorageCtx {
    fn label(&self, bucket: &Resource<BucketHandle>) -> Result<String, store::Error> {
        self.table
            .get(bucket)
            .map(|b| b.label.clone())
            .map_err(|e| store::Error::Other(format!("invalid bucket: {e}")))
    }

    async fn new_cas(
        &mut self,
        label: String,
        key: String,
    ) -> Result<Resource<CasHandle>, store::Error> {
        let redis = match &*self.backend {
            KvBackend::Sqlite(_) => None,
            KvBackend::Redis(r) => Some(r.cas_connection().await.map_err(store::Error::Other)?),
        };
        self.table
            .push(CasHandle {
                label,
                key,
                expected: None,
                redis,
            })
            .map_err(|e| store::Error::Other(format!("cannot open cas: {e}")))
    }

    async fn cas_current(
        &mut self,
        cas: &Resource<CasHandle>,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let backend = self.backend.clone();
        let handle = self
            .table
            .get_mut(cas)
            .map_err(|e| store::Error::Other(format!("invalid cas: {e}")))?;
        let value = match &*backend {
            KvBackend::Sqlite(s) => s.get(&handle.label, &handle.key).await,
            KvBackend::Redis(_) => match handle.redis.as_mut() {
                Some(conn) => RedisKv::cas_current(conn, &handle.key).await,
                None => Err("cas has no connection".to_string()),
            },
        }
        .map_err(store::Error::Other)?;
        handle.expected.clone_from(&value);
        Ok(value)
    }
}

impl store::Host for StorageCtx {
    async fn open(&mut self, identifier: String) -> Result<Resource<BucketHandle>, store::Error> {
        if !self.allowed_labels.contains(&identifier) {
            return Err(store::Error::AccessDenied);
        }
        self.table
            .push(BucketHandle { label: identifier })
            .map_err(|e| store::Error::Other(format!("cannot open store: {e}")))
    }
}

impl store::HostBucket for StorageCtx {
    async fn get(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let label = self.label(&bucket)?;
        if let (Some(r), KvBackend::Sqlite(s)) = (&self.emulation.replica, &*self.backend) {
            return r.get(s, &label, &key).await.map_err(store::Error::Other);
        }
        match &*self.backend {
            KvBackend::Sqlite(s) => s.get(&label, &key).await,
            KvBackend::Redis(r) => r.get(&key).await,
        }
        .map_err(store::Error::Other)
    }

    async fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let label = self.label(&bucket)?;
        self.admit_writes(&label, vec![(key.clone(), value.len())])
            .await?;
        self.emulation.before_writes(1).await;
        let logged = vec![(key.clone(), Some(value.clone()))];
        match &*self.backend {
            KvBackend::Sqlite(s) => s.set(&label, &key, value).await,
            KvBackend::Redis(r) => r.set(&key, value).await,
        }
        .map_err(store::Error::Other)?;
        self.emulation
            .after_writes(&self.backend, &label, logged)
            .await
    }

    async fn delete(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<(), store::Error> {
        let label = self.label(&bucket)?;
        self.emulation.before_writes(1).await;
        let logged = vec![(key.clone(), None)];
        match &*self.backend {
            KvBackend::Sqlite(s) => s.delete(&label, &key).await,
            KvBackend::Redis(r) => r.delete(&key).await,
        }
        .map_err(store::Error::Other)?;
        self.emulation
            .after_writes(&self.backend, &label, logged)
            .await
    }

    async fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<bool, store::Error> {
        let label = self.label(&bucket)?;
        if let (Some(r), KvBackend::Sqlite(s)) = (&self.emulation.replica, &*self.backend) {
            let found = r.get(s, &label, &key).await;
            return found.map(|v| v.is_some()).map_err(store::Error::Other);
        }
        match &*self.backend {
            KvBackend::Sqlite(s) => s.exists(&label, &key).await,
            KvBackend::Redis(r) => r.exists(&key).await,
        }
        .map_err(store::Error::Other)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        if cursor.is_some() {
            return Err(store::Error::Other(
                "list_keys: cursor not supported".into(),
            ));
        }
        let label = self.label(&bucket)?;
        let keys = match (&self.emulation.replica, &*self.backend) {
            (Some(r), KvBackend::Sqlite(s)) => r.keys(s, &label).await,
            (_, b) => match b {
                KvBackend::Sqlite(s) => s.keys(&label).await,
                KvBackend::Redis(r) => r.keys().await,
            },
        }
        .map_err(store::Error::Other)?;
        Ok(store::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for StorageCtx {
    async fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, store::Error>> {
        let label = match self.label(&bucket) {
            Ok(label) => label,
            Err(e) => return Ok(Err(e)),
        };
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        if let (Some(r), KvBackend::Sqlite(s)) = (&self.emulation.replica, &*self.backend) {
            let found = r.get_many(s, &label, keys).await;
            return Ok(found
                .map(|f| f.into_iter().filter(|(_, v)| v.is_some()).collect())
                .map_err(store::Error::Other));
        }
        Ok(match &*self.backend {
            KvBackend::Sqlite(s) => s.get_many(&label, keys).await.map_err(store::Error::Other),
            KvBackend::Redis(r) => match r.get_many(keys).await {
                Ok(found) => Ok(found),
                Err(GetManyFailure::Error(e)) => Err(store::Error::Other(e)),
                Err(GetManyFailure::Panic(e)) => return Err(wasmtime::format_err!("{e}")),
            },
        })
    }

    async fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let label = self.label(&bucket)?;
        if key_values.is_empty() {
            return Ok(());
        }
        let sizes: Vec<(String, usize)> = key_values
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect();
        self.admit_writes(&label, sizes).await?;
        self.emulation.before_writes(key_values.len()).await;
        let logged: Vec<(String, Option<Vec<u8>>)> = match self.emulation.replica {
            Some(_) => key_values
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            None => Vec::new(),
        };
        match &*self.backend {
            KvBackend::Sqlite(s) => s.set_many(&label, key_values).await,
            KvBackend::Redis(r) => r.set_many(key_values).await,
        }
        .map_err(store::Error::Other)?;
        self.emulation
            .after_writes(&self.backend, &label, logged)
            .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let label = self.label(&bucket)?;
        if keys.is_empty() {
            return Ok(());
        }
        self.emulation.before_writes(keys.len()).await;
        let logged: Vec<(String, Option<Vec<u8>>)> =
            keys.iter().map(|k| (k.clone(), None)).collect();
        match &*self.backend {
            KvBackend::Sqlite(s) => s.delete_many(&label, keys).await,
            KvBackend::Redis(r) => r.delete_many(keys).await,
        }
        .map_err(store::Error::Other)?;
        self.emulation
            .after_writes(&self.backend, &label, logged)
            .await
    }
}

impl atomics::Host for StorageCtx {
    async fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> Result<i64, store::Error> {
        let label = self.label(&bucket)?;
        match &*self.backend {
            KvBackend::Sqlite(s) => s.increment(&label, &key, delta).await,
            KvBackend::Redis(r) => r.increment(&key, delta).await,
        }
        .map_err(store::Error::Other)
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> Result<(), atomics::CasError> {
        let backend = self.backend.clone();
        let handle = self.table.delete(cas).map_err(|e| {
            atomics::CasError::StoreError(store::Error::Other(format!("invalid cas: {e}")))
        })?;
        let CasHandle {
            label,
            key,
            expected,
            redis,
        } = handle;
        let swapped = match &*backend {
            KvBackend::Sqlite(s) => s.swap(&label, &key, expected, value).await,
            KvBackend::Redis(_) => match redis {
                Some(mut conn) => RedisKv::cas_swap(&mut conn, &key, value).await,
                None => Err("cas has no connection".to_string()),
            },
        }
        .map_err(|e| atomics::CasError::StoreError(store::Error::Other(e)))?;
        if swapped {
            return Ok(());
        }
        // Like Spin: hand back a fresh CAS that has already read the value.
        let fresh = self
            .new_cas(label, key)
            .await
            .map_err(atomics::CasError::StoreError)?;
        self.cas_current(&fresh)
            .await
            .map_err(atomics::CasError::StoreError)?;
        Err(atomics::CasError::CasFailed(fresh))
    }
}

impl atomics::HostCas for StorageCtx {
    async fn new(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Resource<CasHandle>, store::Error> {
        let label = self.label(&bucket)?;
        self.new_cas(label, key).await
    }

    async fn current(&mut self, cas: Resource<CasHandle>) -> Result<Option<Vec<u8>>, store::Error> {
        self.cas_current(&cas).await
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl config::Host for StorageCtx {
    async fn get(&mut self, key: String) -> Result<Option<String>, config::Error> {
        Ok(self.config.get(&key).cloned())
    }

    async fn get_all(&mut self) -> Result<Vec<(String, String)>, config::Error> {
        let mut all: Vec<_> = self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        Ok(all)
    }
}
