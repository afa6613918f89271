//! [`LeasedQueue`]: the port extended with what the HTTP API needs — batch
//! enqueue with options, batch dequeue with leases, fenced ack / fail /
//! heartbeat, the dead-letter list and maintenance.

use crate::error::Result;
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, LeasedTask, NewTask, QueueStats, RescueReport,
    TaskInfo,
};
use crate::port::{TaskStatus, WorkQueuePort};
use async_trait::async_trait;
use serde_json::Value;

/// The full queue contract. Every implementation runs the same conformance
/// suite (`tests/conformance`).
///
/// Fencing: ack, fail and heartbeat take the lease id a dequeue handed out
/// and fail with [`QueueError::LeaseLost`](crate::QueueError::LeaseLost) once
/// that lease is no longer the task's current one.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait LeasedQueue: WorkQueuePort {
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
    /// `max_attempts`; the rest are dead-lettered. Returns the new status.
    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<TaskStatus>;

    /// Extend a live lease by `lease_ms` (default: the queue's) from now;
    /// returns the new expiry.
    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64>;

    /// Everything known about a task, `None` when unknown.
    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>>;

    /// Counts by state.
    async fn stats(&self) -> Result<QueueStats>;

    /// The most recently dead-lettered tasks, newest first.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>>;

    /// Put a dead-lettered task back in the queue with its attempts reset.
    async fn redrive(&self, task_id: &str) -> Result<TaskStatus>;

    /// Rescue expired leases and make due delayed tasks and retries
    /// deliverable. Safe to call at any rate.
    async fn rescue(&self) -> Result<RescueReport>;
}
