//! [`KvWorkQueue`]: the queue engine on any [`KeyValue`] store.
//!
//! The layout of the store and the reasoning behind every operation are in
//! `docs/engine.md`; each operation lives in its own module.

mod ack;
mod dead_letter;
mod dequeue;
mod enqueue;
mod fail;
mod heartbeat;
mod keys;
mod maintenance;
mod record;
mod results;
mod stats;
mod status;
mod store;

use crate::clock::{Clock, SystemClock};
use crate::config::QueueConfig;
use crate::error::Result;
use crate::kv::KeyValue;
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, LeasedTask, NewTask, QueueStats, RescueReport,
    TaskInfo,
};
use crate::port::{TaskStatus, WorkQueuePort, WorkTask};
use crate::queue::LeasedQueue;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The work queue engine, generic over the store.
///
/// Every method is a short sequence of store operations; there is no
/// background thread. Maintenance (rescue of expired leases, promotion of
/// delayed tasks and retries) runs opportunistically inside `dequeue` at most
/// once per [`QueueConfig::maintenance_period_ms`], and on
/// [`LeasedQueue::rescue`].
pub struct KvWorkQueue<K> {
    kv: K,
    config: QueueConfig,
    clock: Arc<dyn Clock>,
    keys: keys::Keys,
    /// Leases taken through [`WorkQueuePort::try_dequeue`], by task id, so
    /// that `acknowledge` / `fail` (which carry no lease) stay fenced.
    port_leases: Mutex<HashMap<String, String>>,
}

impl<K: KeyValue> KvWorkQueue<K> {
    /// A queue on `kv` with the default configuration and the system clock.
    pub fn new(kv: K) -> Self {
        let config = QueueConfig::default();
        Self {
            kv,
            keys: keys::Keys::new(&config.key_prefix),
            config,
            clock: Arc::new(SystemClock),
            port_leases: Mutex::default(),
        }
    }

    /// A queue on `kv` with `config` (validated) and `clock`.
    pub fn with_config(kv: K, config: QueueConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let config = config.validated()?;
        Ok(Self {
            kv,
            keys: keys::Keys::new(&config.key_prefix),
            config,
            clock,
            port_leases: Mutex::default(),
        })
    }

    /// The store.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    fn remember_lease(&self, task_id: &str, lease_id: &str) {
        if let Ok(mut m) = self.port_leases.lock() {
            m.insert(task_id.to_string(), lease_id.to_string());
        }
    }

    fn forget_lease(&self, task_id: &str) {
        if let Ok(mut m) = self.port_leases.lock() {
            m.remove(task_id);
        }
    }

    /// The lease to use for a port-level ack/fail: the one this handle
    /// took, else the task's current lease (an unfenced finish).
    fn port_lease(&self, task_id: &str) -> Result<String> {
        let remembered = self
            .port_leases
            .lock()
            .ok()
            .and_then(|m| m.get(task_id).cloned());
        match remembered {
            Some(l) => Ok(l),
            None => status::current_lease(self, task_id),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> WorkQueuePort for KvWorkQueue<K> {
    async fn enqueue(&self, task: WorkTask) -> Result<()> {
        enqueue::run(self, vec![NewTask::from_work_task(task)]).map(drop)
    }

    async fn try_dequeue(&self) -> Result<Option<WorkTask>> {
        let req = DequeueRequest::new(self.config.port_worker_id.clone(), 1);
        let leased = dequeue::run(self, &req)?.into_iter().next();
        Ok(leased.map(|l| {
            self.remember_lease(&l.task.id, &l.lease.id);
            l.task
        }))
    }

    async fn acknowledge(&self, task_id: &str, output: Value) -> Result<()> {
        let lease = self.port_lease(task_id)?;
        ack::run_one(self, task_id, &lease, output)?;
        self.forget_lease(task_id);
        Ok(())
    }

    async fn fail(&self, task_id: &str, error: &str) -> Result<()> {
        let lease = self.port_lease(task_id)?;
        fail::run(self, task_id, &lease, error, true)?;
        self.forget_lease(task_id);
        Ok(())
    }

    async fn status(&self, task_id: &str) -> Result<Option<TaskStatus>> {
        Ok(status::info(self, task_id)?.map(|i| i.status))
    }

    async fn collect_results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        results::run(self, pipeline_id)
    }

    async fn pending_count(&self) -> Result<usize> {
        Ok(stats::run(self)?.pending as usize)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<K: KeyValue + crate::MaybeSendSync> LeasedQueue for KvWorkQueue<K> {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        enqueue::run(self, tasks)
    }

    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        dequeue::run(self, req)
    }

    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus> {
        ack::run_one(self, task_id, lease_id, output)
    }

    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        ack::run(self, acks)
    }

    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<TaskStatus> {
        fail::run(self, task_id, lease_id, error, retryable)
    }

    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        heartbeat::run(self, task_id, lease_id, lease_ms)
    }

    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>> {
        status::info(self, task_id)
    }

    async fn stats(&self) -> Result<QueueStats> {
        stats::run(self)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        dead_letter::list(self, limit)
    }

    async fn redrive(&self, task_id: &str) -> Result<TaskStatus> {
        dead_letter::redrive(self, task_id)
    }

    async fn rescue(&self) -> Result<RescueReport> {
        maintenance::run(self, true)
    }
}
