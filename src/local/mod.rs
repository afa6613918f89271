//! [`LocalWorkQueue`]: the queue in process memory.
//!
//! It follows the contract every implementation shares — written down in
//! `docs/semantics.md` and checked by the conformance suite
//! (`tests/conformance`) — with all state behind one [`std::sync::Mutex`]
//! that is never held across an `.await`. Each operation takes the lock
//! once, so every operation (including a whole batch) is atomic.
//!
//! There is no background thread: maintenance (rescue of expired leases,
//! promotion of delayed tasks and retries) runs at the start of every
//! [`dequeue`](LeasedQueue::dequeue) and on [`rescue`](LeasedQueue::rescue).

mod pipelines;
mod state;

pub(crate) use state::state_name;

use crate::clock::{Clock, SystemClock};
use crate::config::{QueueConfig, Timing};
use crate::dispatch::{DrainGate, Ticket};
use crate::error::Result;
use crate::ids::{IdSource, UlidIds};
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use crate::pipeline;
use crate::port::TaskStatus;
use crate::queue::{LeasedQueue, PortLeases};
use async_trait::async_trait;
use serde_json::Value;
use state::{Env, State};
use std::sync::{Arc, Mutex, MutexGuard};

/// An in-process work queue: the [`WorkQueuePort`](crate::WorkQueuePort)
/// and [`LeasedQueue`] contract on plain memory, for tests, single-process
/// DAG executors and as the reference the other implementations are
/// compared with.
///
/// It keeps the store engine's time rules too, so that the two answer
/// alike: a lease may be finished until its expiry plus
/// [`late_finish_ms`](crate::config::Timing::late_finish_ms), it is rescued
/// once its expiry plus [`rescue_after_ms`](crate::config::Timing::rescue_after_ms)
/// has passed, and finished tasks are forgotten after
/// [`retention_ms`](QueueConfig::retention_ms).
///
/// `Send + Sync`: share it between tasks and threads behind an [`Arc`].
///
/// # Example
///
/// ```
/// use spin_work_queue::{DequeueRequest, LeasedQueue, LocalWorkQueue, NewTask, TaskStatus};
/// use serde_json::json;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let queue = LocalWorkQueue::new();
/// let ids = queue
///     .enqueue_batch(vec![NewTask::new("p1", "fetch", json!({"url": "https://example.com"}))])
///     .await?;
/// let leased = queue.dequeue(&DequeueRequest::new("worker-1", 10)).await?;
/// assert_eq!(leased[0].task.id, ids[0].id);
/// let status = queue.ack(&leased[0].task.id, &leased[0].lease.id, json!(200)).await?;
/// assert_eq!(status, TaskStatus::Completed { output: json!(200) });
/// # Ok::<(), spin_work_queue::QueueError>(())
/// # });
/// ```
pub struct LocalWorkQueue {
    config: QueueConfig,
    timing: Timing,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    state: Mutex<State>,
    port_leases: PortLeases,
    /// Drains admitted and not released (the drain gate, in process: a
    /// drain cannot die without its process).
    drains: Mutex<u32>,
    /// Submitted pipelines (locked before `state` when both are).
    pipelines: Mutex<pipelines::Pipelines>,
}

impl LocalWorkQueue {
    /// An empty queue with the default [`QueueConfig`] and the
    /// [`SystemClock`].
    pub fn new() -> Self {
        Self::with_config(QueueConfig::default(), Arc::new(SystemClock))
            .expect("the default configuration is valid")
    }

    /// An empty queue with `config` (validated: an invalid config is
    /// [`QueueError::Invalid`](crate::QueueError::Invalid)) and `clock`.
    ///
    /// ```
    /// use spin_work_queue::{LocalWorkQueue, ManualClock, QueueConfig};
    /// use std::sync::Arc;
    ///
    /// let clock = ManualClock::new(1_000);
    /// let config = QueueConfig { default_lease_ms: 5_000, ..QueueConfig::default() };
    /// let queue = LocalWorkQueue::with_config(config, Arc::new(clock.clone())).unwrap();
    /// assert_eq!(queue.config().default_lease_ms, 5_000);
    ///
    /// let bad = QueueConfig { default_max_attempts: 0, ..QueueConfig::default() };
    /// assert!(LocalWorkQueue::with_config(bad, Arc::new(clock)).is_err());
    /// ```
    pub fn with_config(config: QueueConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let config = config.validated()?;
        Ok(Self {
            timing: config.timing(),
            port_leases: PortLeases::new(config.port_worker_id.clone()),
            config,
            clock,
            ids: Arc::new(UlidIds),
            state: Mutex::default(),
            drains: Mutex::new(0),
            pipelines: Mutex::default(),
        })
    }

    /// The same queue drawing lease ids and generated task ids from `ids`.
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The state, locked. A poisoned lock is taken over: every operation
    /// leaves the state consistent before anything that could panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn env(&self) -> Env<'_> {
        Env {
            config: &self.config,
            timing: self.timing,
            ids: self.ids.as_ref(),
            now: self.clock.now_ms(),
        }
    }
}

impl Default for LocalWorkQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LocalWorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWorkQueue")
            .field("config", &self.config)
            .field("stats", &self.lock().stats())
            .finish_non_exhaustive()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl LeasedQueue for LocalWorkQueue {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        let env = self.env();
        self.lock().enqueue(tasks, &env)
    }

    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        let env = self.env();
        let (report, leased) = {
            let mut state = self.lock();
            let report = state.maintain(&env);
            (report, state.dequeue(req, &env)?)
        };
        // Leases that expired on their last attempt start their children
        // under `continue`; settled pipelines are found and, after the
        // retention period, forgotten.
        if report.dead_lettered > 0 || self.reconcile_due(env.now) {
            let _ = pipeline::reconcile(self).await;
            self.pipelines().sweep(env.now, self.config.retention_ms);
        }
        pipeline::after_dequeue(self, leased).await
    }

    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus> {
        let env = self.env();
        let status = self.lock().ack(task_id, lease_id, output, &env)?;
        pipeline::completed(self, &[task_id.to_string()]).await?;
        Ok(status)
    }

    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        crate::model::validate_ack_batch(&acks)?;
        let env = self.env();
        let (ids, out): (Vec<String>, Vec<Result<TaskStatus>>) = {
            let mut state = self.lock();
            acks.into_iter()
                .map(|a| {
                    let r = state.ack(&a.id, &a.lease_id, a.output, &env);
                    (a.id, r)
                })
                .unzip()
        };
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
        let env = self.env();
        let outcome = self
            .lock()
            .fail(task_id, lease_id, error, retryable, &env)?;
        if matches!(outcome.status, TaskStatus::DeadLetter { .. }) {
            // The failure is recorded: children a hiccup here leaves
            // unstarted are started by the next reconciliation.
            let _ = pipeline::after_dead_letter(self, &[task_id.to_string()]).await;
        }
        Ok(outcome)
    }

    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        let env = self.env();
        self.lock().heartbeat(task_id, lease_id, lease_ms, &env)
    }

    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>> {
        Ok(self.lock().info(task_id))
    }

    async fn results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        Ok(self.lock().results(pipeline_id))
    }

    async fn stats(&self) -> Result<QueueStats> {
        Ok(self.lock().stats())
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        crate::model::validate_limit(limit)?;
        Ok(self.lock().dead_letters(limit))
    }

    async fn redrive(&self, task_id: &str) -> Result<TaskStatus> {
        let env = self.env();
        let status = self.lock().redrive(task_id, &env)?;
        pipeline::after_redrive(self, task_id).await?;
        Ok(status)
    }

    async fn rescue(&self) -> Result<RescueReport> {
        let env = self.env();
        let report = self.lock().maintain(&env);
        pipeline::reconcile(self).await?;
        self.pipelines().sweep(env.now, self.config.retention_ms);
        Ok(report)
    }

    async fn set_aside(&self, limit: usize) -> Result<Vec<SetAside>> {
        crate::model::validate_limit(limit)?;
        // Nothing is ever stored in a form that cannot be read back.
        Ok(Vec::new())
    }

    fn port_leases(&self) -> &PortLeases {
        &self.port_leases
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
impl DrainGate for LocalWorkQueue {
    async fn drains_in_flight(&self) -> Result<u32> {
        Ok(*self.drains.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn admit(&self, max: u32) -> Result<Option<Ticket>> {
        let mut n = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        if *n >= max {
            return Ok(None);
        }
        *n += 1;
        Ok(Some(Ticket { epoch: 0 }))
    }

    async fn renew(&self, ticket: Ticket, _max: u32) -> Result<Option<Ticket>> {
        Ok(Some(ticket))
    }

    async fn release(&self, _ticket: Ticket) -> Result<()> {
        let mut n = self.drains.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        Ok(())
    }

    async fn work_due(&self) -> Result<bool> {
        Ok(self.lock().stats().due > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn local_work_queue_is_send_and_sync() {
        assert_send_sync::<LocalWorkQueue>();
    }

    use crate::WorkQueuePort;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_workers_complete_every_task_once() {
        let queue = Arc::new(LocalWorkQueue::new());
        let tasks = (0..500)
            .map(|i| NewTask::new("p", format!("n{i}"), Value::from(i)))
            .collect();
        queue.enqueue_batch(tasks).await.unwrap();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move {
                    let req = DequeueRequest::new(format!("w{w}"), 7);
                    loop {
                        let got = queue.dequeue(&req).await.unwrap();
                        if got.is_empty() {
                            return;
                        }
                        for l in got {
                            let out = l.task.input.clone();
                            queue.ack(&l.task.id, &l.lease.id, out).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let results = queue.collect_results("p").await.unwrap();
        assert_eq!(results.len(), 500);
        let names: std::collections::HashSet<_> = results.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 500, "every task completed exactly once");
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.completed, stats.pending, stats.in_progress),
            (500, 0, 0)
        );
    }
}
