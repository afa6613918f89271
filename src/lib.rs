//! # Overview
//!
//! `spin-work-queue` is a distributed work queue for pipeline (DAG) node
//! execution that runs as a [Spin](https://spinframework.dev) application.
//!
//! - [`WorkQueuePort`] is the interface a DAG executor programs against;
//!   [`LeasedQueue`] extends it with batches, leases and administration.
//! - [`LocalWorkQueue`] implements it in process.
//! - [`KvWorkQueue`] implements it on any [`KeyValue`](kv::KeyValue) store —
//!   Spin's key-value store inside the components, [`kv::MemoryKv`] and
//!   [`kv::SqliteKv`] natively — with at most a handful of write commits per
//!   task and crash safety at every store operation.
//!
//! # Quick start
//!
//! ```no_run
//! use spin_work_queue::{KvWorkQueue, WorkQueuePort, WorkTask, kv::MemoryKv};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let queue = KvWorkQueue::new(MemoryKv::new());
//! queue.enqueue(WorkTask {
//!     id: String::new(), // generated
//!     pipeline_id: "p1".into(),
//!     node_name: "fetch".into(),
//!     input: json!({"url": "https://example.com"}),
//!     wave: 0,
//!     attempt: 0,
//!     idempotency_key: String::new(), // defaults to the id
//! }).await?;
//! if let Some(task) = queue.try_dequeue().await? {
//!     queue.acknowledge(&task.id, json!({"status": 200})).await?;
//! }
//! let results = queue.collect_results("p1").await?;
//! assert_eq!(results.len(), 1);
//! # Ok::<(), spin_work_queue::QueueError>(())
//! # });
//! ```

#![deny(missing_docs)]

pub mod api;
#[cfg(all(feature = "client", not(target_arch = "wasm32")))]
pub mod client;
pub mod clock;
pub mod config;
pub mod dispatch;
mod encode;
pub mod engine;
pub mod error;
pub mod hosted;
pub mod http;
pub mod ids;
pub mod kv;
pub mod local;
pub mod model;
pub mod pipeline;
pub mod port;
pub mod queue;
pub mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{QueueConfig, RetryPolicy};
pub use dispatch::{DrainGate, DrainQueue, Ticket};
pub use engine::{Event, KvWorkQueue, Observer, StderrObserver};
pub use error::{Invalid, InvalidKind, QueueError, Result};
pub use hosted::{HostedConfig, HostedWorkQueue};
pub use local::LocalWorkQueue;
pub use model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, Lease, LeasedTask, NewTask,
    QueueStats, RescueReport, SetAside, TaskInfo,
};
pub use pipeline::{
    NewPipeline, NodeSpec, NodeState, OnFailure, PipelineQueue, PipelineState, PipelineView,
};
pub use port::{TaskStatus, WorkQueuePort, WorkTask};
pub use queue::{LeasedQueue, PortLeases};

/// `Send + Sync` on native targets, nothing on `wasm32` (single-threaded
/// components whose store handles are not thread-safe).
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` on native targets, nothing on `wasm32` (single-threaded
/// components whose store handles are not thread-safe).
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}
