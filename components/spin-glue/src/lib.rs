//! Spin glue shared by the components: `wasi:http` requests in and out as
//! the root crate's plain [`Request`](spin_work_queue::http::Request) /
//! [`Response`](spin_work_queue::http::Response), outbound calls with
//! timeouts, Spin variables, and the queue on Spin's key-value store
//! ([`WasiKv`]).
//!
//! Everything here is conversion; the behaviour lives in the root crate
//! (`spin_work_queue::api`, `spin_work_queue::worker`). `wasm32` only.

#![cfg(target_arch = "wasm32")]
#![deny(missing_docs)]

mod bindings;
pub mod bundled;
mod executor;
mod incoming;
mod kv;
mod outbound;
mod push;
mod store_only;
mod variables;

pub use executor::{drain_settings, SpinExecutor};
pub use incoming::{read_request, respond};
pub use kv::{GetMany, WasiKv, GET_MANY_CHUNK};
pub use outbound::{send, Limits, Received, SendFailure};
pub use push::push_drain;
pub use store_only::WasiStore;
pub use variables::variable;

use spin_work_queue::api::{ApiConfig, ApiError};
use spin_work_queue::{HostedConfig, HostedWorkQueue, KvWorkQueue, QueueError, SystemClock};
use std::sync::Arc;

/// The label of the key-value store the queue lives in.
pub const STORE_LABEL: &str = "default";

/// The queue engine on this component's `default` store, configured by
/// `config`; `kv_get_many` (`batch` | `single`) picks how several keys are
/// read.
pub fn open_queue(config: &ApiConfig) -> Result<KvWorkQueue<WasiKv>, ApiError> {
    let mode = GetMany::parse(&variable("kv_get_many").unwrap_or_default())?;
    let kv = WasiKv::open(STORE_LABEL, mode).map_err(|e| ApiError::Queue(QueueError::Store(e)))?;
    Ok(KvWorkQueue::with_config(
        kv,
        config.queue.clone(),
        Arc::new(SystemClock),
    )?)
}

/// The store-only engine on this component's `default` store (hosted
/// builds): `max_keys` caps the keys it uses (Fermyon Cloud: 1024),
/// `replication_lag_ms` bounds how late a write is seen elsewhere.
pub fn open_hosted_queue(config: &ApiConfig) -> Result<HostedWorkQueue<WasiStore>, ApiError> {
    let vars = spin_work_queue::config::Vars::new(variable);
    let max_keys = vars.parse_or::<u64>("max_keys", 0)?;
    let hosted = HostedConfig {
        queue: config.queue.clone(),
        max_keys: (max_keys > 0).then_some(max_keys),
        replication_lag_ms: vars.parse_or("replication_lag_ms", 0)?,
    };
    let kv = WasiStore::open(STORE_LABEL).map_err(|e| ApiError::Queue(QueueError::Store(e)))?;
    Ok(HostedWorkQueue::with_config(
        kv,
        hosted,
        Arc::new(SystemClock),
    )?)
}
