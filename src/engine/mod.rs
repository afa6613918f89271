//! [`KvWorkQueue`]: the queue engine on any [`KeyValue`] store.
//!
//! The layout of the store, the protocol and the time bounds it rests on
//! are in `docs/engine.md`; each operation lives in its own module.

mod ack;
mod dead_letter;
mod dequeue;
mod drains;
mod enqueue;
mod fail;
mod heartbeat;
mod keys;
mod lock;
mod maintenance;
mod observe;
mod pipelines;
mod record;
mod results;
mod ring;
mod set_aside;
mod stats;
mod status;
mod store;

pub use observe::{Event, Observer, StderrObserver};

use crate::clock::{Clock, SystemClock};
use crate::config::{QueueConfig, Timing};
use crate::dispatch::{DrainGate, Ticket};
use crate::error::Result;
use crate::ids::{IdSource, UlidIds};
use crate::kv::KeyValue;
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use crate::pipeline;
use crate::port::TaskStatus;
use crate::queue::{LeasedQueue, PortLeases};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// The work queue engine, generic over the store.
///
/// Every method is a short sequence of store operations; there is no
/// background thread. Maintenance (rescue of expired leases, promotion of
/// delayed tasks and retries, the retention sweep) runs opportunistically
/// inside `dequeue` at most once per
/// [`QueueConfig::maintenance_period_ms`], and on [`LeasedQueue::rescue`].
pub struct KvWorkQueue<K> {
    kv: K,
    config: QueueConfig,
    timing: Timing,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    observer: Arc<dyn Observer>,
    keys: keys::Keys,
    port_leases: PortLeases,
}

impl<K: KeyValue> KvWorkQueue<K> {
    /// A queue on `kv` with the default configuration and the system clock.
    pub fn new(kv: K) -> Self {
        Self::with_config(kv, QueueConfig::default(), Arc::new(SystemClock))
            .expect("the default configuration is valid")
    }

    /// A queue on `kv` with `config` (validated) and `clock`.
    pub fn with_config(kv: K, config: QueueConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let config = config.validated()?;
        Ok(Self {
            kv,
            keys: keys::Keys::new(&config.key_prefix),
            timing: config.timing(),
            port_leases: PortLeases::new(config.port_worker_id.clone()),
            config,
            clock,
            ids: Arc::new(UlidIds),
            observer: Arc::new(StderrObserver),
        })
    }

    /// The same queue drawing lease ids and generated task ids from `ids`.
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// The same queue reporting [`Event`]s to `observer` (default: standard
    /// error).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The store.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Report a failed pipeline step that reconciliation makes up for.
    fn note(&self, step: Result<()>) {
        if let Err(e) = step {
            self.observer.event(&Event::PipelineStepFailed(e));
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> LeasedQueue for KvWorkQueue<K> {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        enqueue::run(self, tasks)
    }

    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        let leased = dequeue::run(self, req)?;
        match self.reconcile_due() {
            Ok(true) => self.note(pipeline::reconcile(self).await.map(drop)),
            Ok(false) => {}
            Err(e) => self.note(Err(e)),
        }
        pipeline::after_dequeue(self, leased).await
    }

    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus> {
        let ack = Ack {
            id: task_id.to_string(),
            lease_id: lease_id.to_string(),
            output,
        };
        let status = ack::run_one(self, ack)?;
        // An error here fails the ack, whose repetition (harmless) starts
        // the children again.
        pipeline::completed(self, &[task_id.to_string()]).await?;
        Ok(status)
    }

    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        let ids: Vec<String> = acks.iter().map(|a| a.id.clone()).collect();
        let out = ack::run(self, acks)?;
        pipeline::batch_acked(self, ids, &out).await?;
        Ok(out)
    }

    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome> {
        let outcome = fail::run(self, task_id, lease_id, error, retryable)?;
        if matches!(outcome.status, TaskStatus::DeadLetter { .. }) {
            let ids = [task_id.to_string()];
            self.note(pipeline::after_dead_letter(self, &ids).await);
        }
        Ok(outcome)
    }

    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        heartbeat::run(self, task_id, lease_id, lease_ms)
    }

    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>> {
        status::info(self, task_id)
    }

    async fn results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        results::run(self, pipeline_id)
    }

    async fn stats(&self) -> Result<QueueStats> {
        stats::run(self)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        dead_letter::list(self, limit)
    }

    async fn redrive(&self, task_id: &str) -> Result<TaskStatus> {
        let status = dead_letter::redrive(self, task_id)?;
        self.note(pipeline::after_redrive(self, task_id).await);
        Ok(status)
    }

    async fn rescue(&self) -> Result<RescueReport> {
        let report = maintenance::run(self, true)?;
        pipeline::reconcile(self).await?;
        self.sweep_pipelines()?;
        Ok(report)
    }

    async fn set_aside(&self, limit: usize) -> Result<Vec<SetAside>> {
        set_aside::list(self, limit)
    }

    fn port_leases(&self) -> &PortLeases {
        &self.port_leases
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> DrainGate for KvWorkQueue<K> {
    async fn drains_in_flight(&self) -> Result<u32> {
        drains::in_flight(self)
    }

    async fn admit(&self, max: u32) -> Result<Option<Ticket>> {
        drains::admit(self, max)
    }

    async fn renew(&self, ticket: Ticket, max: u32) -> Result<Option<Ticket>> {
        drains::renew(self, ticket, max)
    }

    async fn release(&self, ticket: Ticket) -> Result<()> {
        drains::release(self, ticket)
    }

    async fn work_due(&self) -> Result<bool> {
        drains::work_due(self)
    }

    async fn expect_recovery(&self, at: u64) -> Result<()> {
        drains::expect_recovery(self, at)
    }

    async fn recovery_pending(&self, within_ms: u64) -> Result<Option<u64>> {
        drains::recovery_pending(self, within_ms)
    }
}
