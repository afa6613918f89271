//! [`LeasedQueue`]: the full queue contract — batch enqueue with options,
//! batch dequeue with leases, fenced ack / fail / heartbeat, the
//! dead-letter list and maintenance — and the one adapter that turns any
//! `LeasedQueue` into the seed's [`WorkQueuePort`].

use crate::error::{QueueError, Result};
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use crate::port::{TaskStatus, WorkQueuePort, WorkTask};
use crate::MaybeSendSync;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// The full queue contract. Every implementation runs the same conformance
/// suite (`tests/conformance`), and is a [`WorkQueuePort`] through the
/// blanket implementation below.
///
/// Fencing: ack, fail and heartbeat take the lease id a dequeue handed out
/// and fail with [`QueueError::LeaseLost`] once that lease is no longer the
/// task's current one.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait LeasedQueue: MaybeSendSync {
    /// Enqueue up to [`MAX_ENQUEUE_BATCH`](crate::config::MAX_ENQUEUE_BATCH)
    /// tasks. The whole batch is validated first; one outcome per task, in
    /// order. A task whose idempotency key is already known (in the store or
    /// earlier in the batch) is reported as a duplicate with the existing id.
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>>;

    /// Take up to `req.max` due tasks, each with a lease.
    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>>;

    /// Complete a leased task with its output; returns the new status.
    /// Repeating an ack with the same lease is harmless and returns the same
    /// status.
    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus>;

    /// Complete several leased tasks; one result per ack, in order.
    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>>;

    /// Fail a leased task. Retryable failures are retried with backoff until
    /// `max_attempts`; the rest are dead-lettered. Returns the new status
    /// and, for a retry, when it becomes due.
    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome>;

    /// Extend a live lease to `lease_ms` (default: the queue's) from now —
    /// never shortening it; returns the new expiry.
    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64>;

    /// Everything known about a task, `None` when unknown.
    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>>;

    /// `(node_name, output)` of every completed task of `pipeline_id`, in
    /// completion order.
    async fn results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>>;

    /// Counts by state.
    async fn stats(&self) -> Result<QueueStats>;

    /// The most recently dead-lettered tasks, newest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>>;

    /// Put a dead-lettered task back in the queue with its attempts reset.
    async fn redrive(&self, task_id: &str) -> Result<TaskStatus>;

    /// Rescue expired leases and make due delayed tasks and retries
    /// deliverable. Safe to call at any rate.
    async fn rescue(&self) -> Result<RescueReport>;

    /// The most recently set-aside stored values (ones the queue could not
    /// decode), newest first.
    async fn set_aside(&self, limit: usize) -> Result<Vec<SetAside>>;

    /// The leases taken through [`WorkQueuePort::try_dequeue`] on this
    /// handle, so that the port's `acknowledge` / `fail` stay fenced.
    fn port_leases(&self) -> &PortLeases;
}

/// The leases a queue handle took through
/// [`WorkQueuePort::try_dequeue`], by task id, and the worker id it
/// dequeues as.
#[derive(Debug)]
pub struct PortLeases {
    worker_id: String,
    leases: Mutex<HashMap<String, String>>,
}

impl PortLeases {
    /// No leases yet; `try_dequeue` takes tasks as `worker_id`.
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            leases: Mutex::default(),
        }
    }

    /// The worker id of port-level dequeues.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    fn remember(&self, task_id: &str, lease_id: &str) {
        self.lock()
            .insert(task_id.to_string(), lease_id.to_string());
    }

    fn forget(&self, task_id: &str) {
        self.lock().remove(task_id);
    }

    fn get(&self, task_id: &str) -> Option<String> {
        self.lock().get(task_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The lease a port-level finish of `task_id` uses: the one this handle
/// took, else the task's running lease (an unfenced finish).
async fn port_lease<Q: LeasedQueue + ?Sized>(q: &Q, task_id: &str) -> Result<String> {
    if let Some(lease) = q.port_leases().get(task_id) {
        return Ok(lease);
    }
    match q.task(task_id).await? {
        None => Err(QueueError::NotFound {
            id: task_id.to_string(),
        }),
        Some(info) => info.lease.map(|l| l.id).ok_or(QueueError::LeaseLost {
            id: task_id.to_string(),
        }),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl<Q: LeasedQueue + ?Sized> WorkQueuePort for Q {
    async fn enqueue(&self, task: WorkTask) -> Result<()> {
        self.enqueue_batch(vec![NewTask::from_work_task(task)])
            .await
            .map(drop)
    }

    async fn try_dequeue(&self) -> Result<Option<WorkTask>> {
        let req = DequeueRequest::new(self.port_leases().worker_id(), 1);
        let leased = self.dequeue(&req).await?.into_iter().next();
        Ok(leased.map(|l| {
            self.port_leases().remember(&l.task.id, &l.lease.id);
            l.task
        }))
    }

    async fn acknowledge(&self, task_id: &str, output: Value) -> Result<()> {
        let lease = port_lease(self, task_id).await?;
        self.ack(task_id, &lease, output).await?;
        self.port_leases().forget(task_id);
        Ok(())
    }

    async fn fail(&self, task_id: &str, error: &str) -> Result<()> {
        let lease = port_lease(self, task_id).await?;
        self.fail_leased(task_id, &lease, error, true).await?;
        self.port_leases().forget(task_id);
        Ok(())
    }

    async fn status(&self, task_id: &str) -> Result<Option<TaskStatus>> {
        Ok(self.task(task_id).await?.map(|i| i.status))
    }

    async fn collect_results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        self.results(pipeline_id).await
    }

    async fn pending_count(&self) -> Result<usize> {
        Ok(self.stats().await?.pending as usize)
    }
}
