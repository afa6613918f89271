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
mod incoming;
mod kv;
mod outbound;
mod push;
mod variables;

pub use incoming::{read_request, respond};
pub use kv::{GetMany, WasiKv, GET_MANY_CHUNK};
pub use outbound::{send, Limits, Received, SendFailure};
pub use push::push_drain;
pub use variables::variable;

use spin_work_queue::api::{ApiConfig, ApiError};
use spin_work_queue::{KvWorkQueue, QueueError, SystemClock};
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
