//! [`HostedWorkQueue`]: the store-only engine, for hosted Spin (Fermyon
//! Cloud, Akamai Functions), whose key-value stores offer no `increment`.
//!
//! It uses `get`, `set`, `delete` and `list-keys` — and `get-many`,
//! `set-many`, `delete-many` where the platform has `wasi:keyvalue/batch`
//! (a store without them answers key by key, see [`StoreKv`]). One record
//! per task (`keys.rs`); every write to a record nobody owns is a timed
//! claim (`claim.rs`): written within the claim window of the read it was
//! decided from, confirmed by reading it back after the settle time.
//!
//! Costs, per task from enqueue to completion: 1 key write to enqueue, 1 to
//! lease, 2 to complete (the finished record, the open one removed), 1 when
//! retention deletes it. Every dequeue and rescue lists the keys and reads
//! every open record — `O(open tasks)` reads, bounded by the key budget on
//! a capped store — and a dequeue waits the settle time once.

mod admin;
mod claim;
mod dequeue;
mod enqueue;
mod finish;
mod keys;
mod record;
mod view;

use crate::clock::{Clock, SystemClock};
use crate::config::{QueueConfig, Timing};
use crate::dispatch::{DrainGate, Ticket};
use crate::error::Result;
use crate::kv::StoreKv;
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use crate::port::TaskStatus;
use crate::queue::{LeasedQueue, PortLeases};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// Keys a capped store keeps free for what is not a task (a few spare for
/// records written while an ack moves a task).
pub const RESERVED_KEYS: u64 = 16;

/// What the store-only engine needs to know besides the queue settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostedConfig {
    /// The queue's settings (`grace_ms` gives the time bounds).
    pub queue: QueueConfig,
    /// Most keys the store holds (Fermyon Cloud: 1,024); `None`: no cap.
    pub max_keys: Option<u64>,
    /// Bound on the time a write takes to be visible to every reader (a
    /// replicated store); 0 for a single-region store.
    pub replication_lag_ms: u64,
}

/// The time bounds of the store-only engine, from `grace_ms` and the
/// replication lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostedTiming {
    /// The default engine's bounds (skew, store call, late finish, rescue).
    pub base: Timing,
    /// `W`: a write decided from a read lands within this of the read
    /// (the engine writes at most `P` after it; the call lands within `P`).
    pub claim_window_ms: u64,
    /// `D`: how long a claim waits before reading its write back: more than
    /// `W` plus twice the replication lag.
    pub settle_ms: u64,
}

impl HostedTiming {
    /// The bounds for `config`.
    pub fn new(config: &HostedConfig) -> Self {
        let base = config.queue.timing();
        let claim_window_ms = 2 * base.store_call_ms;
        Self {
            base,
            claim_window_ms,
            settle_ms: claim_window_ms + 2 * config.replication_lag_ms + base.store_call_ms / 10,
        }
    }
}

/// The store-only work queue (see the module documentation).
pub struct HostedWorkQueue<S> {
    kv: S,
    config: HostedConfig,
    timing: HostedTiming,
    clock: Arc<dyn Clock>,
    keys: keys::Keys,
    port_leases: PortLeases,
}

impl<S: StoreKv> HostedWorkQueue<S> {
    /// A queue on `kv` with the defaults and the system clock.
    pub fn new(kv: S) -> Self {
        Self::with_config(kv, HostedConfig::default(), Arc::new(SystemClock))
            .expect("the default configuration is valid")
    }

    /// A queue on `kv` with `config` (validated) and `clock`.
    pub fn with_config(kv: S, config: HostedConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let queue = config.queue.clone().validated()?;
        let config = HostedConfig { queue, ..config };
        Ok(Self {
            kv,
            keys: keys::Keys::new(&config.queue.key_prefix),
            timing: HostedTiming::new(&config),
            port_leases: PortLeases::new(config.queue.port_worker_id.clone()),
            config,
            clock,
        })
    }

    /// The same queue with a settle time of `ms`. Only for callers that
    /// never run two requests at once (tests of the contract, where the
    /// wait would only move the clock): a settle time not longer than the
    /// claim window lets two claimants both win.
    pub fn with_settle_ms(mut self, ms: u64) -> Self {
        self.timing.settle_ms = ms;
        self
    }

    /// The store.
    pub fn kv(&self) -> &S {
        &self.kv
    }

    /// The configuration.
    pub fn config(&self) -> &HostedConfig {
        &self.config
    }

    /// The time bounds.
    pub fn timing(&self) -> HostedTiming {
        self.timing
    }

    /// Live tasks a store capped at `max_keys` holds (one key each).
    pub fn capacity(max_keys: u64) -> u64 {
        max_keys.saturating_sub(RESERVED_KEYS)
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<S: StoreKv + crate::MaybeSendSync> LeasedQueue for HostedWorkQueue<S> {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        self.enqueue(tasks)
    }

    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        self.take(req)
    }

    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus> {
        let ack = Ack {
            id: task_id.to_string(),
            lease_id: lease_id.to_string(),
            output,
        };
        self.complete(vec![ack])?.pop().expect("one result per ack")
    }

    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        crate::model::validate_ack_batch(&acks)?;
        self.complete(acks)
    }

    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome> {
        self.fail(task_id, lease_id, error, retryable)
    }

    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        self.beat(task_id, lease_id, lease_ms)
    }

    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>> {
        self.info(task_id)
    }

    async fn results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        self.pipeline_results(pipeline_id)
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.count()
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        self.dead(limit)
    }

    async fn redrive(&self, task_id: &str) -> Result<TaskStatus> {
        self.requeue_dead(task_id)
    }

    async fn rescue(&self) -> Result<RescueReport> {
        self.maintain()
    }

    async fn set_aside(&self, limit: usize) -> Result<Vec<SetAside>> {
        self.undecodable(limit)
    }

    fn port_leases(&self) -> &PortLeases {
        &self.port_leases
    }
}

/// No store-wide gate without a counter: every drain is admitted, and the
/// components bound dispatch by other means (see `docs/hosted.md`).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<S: StoreKv + crate::MaybeSendSync> DrainGate for HostedWorkQueue<S> {
    async fn drains_in_flight(&self) -> Result<u32> {
        Ok(0)
    }

    async fn admit(&self, _max: u32) -> Result<Option<Ticket>> {
        Ok(Some(Ticket { epoch: 0 }))
    }

    async fn renew(&self, ticket: Ticket, _max: u32) -> Result<Option<Ticket>> {
        Ok(Some(ticket))
    }

    async fn release(&self, _ticket: Ticket) -> Result<()> {
        Ok(())
    }

    async fn work_due(&self) -> Result<bool> {
        // The open records only: what a dequeue would take now.
        let view = self.view(true, false)?;
        Ok(!self.due_in(&view, view.read_at).is_empty())
    }
}

/// Pipelines need exclusive creation of a node's task, which the
/// store-only engine cannot give cheaply: every call is refused with
/// [`QueueError::Unsupported`](crate::QueueError::Unsupported) (`501`).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<S: StoreKv + crate::MaybeSendSync> crate::pipeline::PipelineQueue for HostedWorkQueue<S> {
    async fn submit_pipeline(
        &self,
        _pipeline: crate::pipeline::NewPipeline,
    ) -> Result<crate::pipeline::Submitted> {
        Err(unsupported())
    }

    async fn pipeline(&self, _id: &str) -> Result<Option<crate::pipeline::PipelineView>> {
        Err(unsupported())
    }

    async fn cancel_pipeline(&self, _id: &str) -> Result<crate::pipeline::Cancelled> {
        Err(unsupported())
    }
}

fn unsupported() -> crate::QueueError {
    crate::QueueError::Unsupported(
        "pipelines need the key-value engine (wasi:keyvalue/atomics); the hosted build runs tasks only"
            .into(),
    )
}
