//! The work queue port: the interface a DAG executor uses to distribute
//! pipeline node execution across workers.
//!
//! ```text
//! DagExecutor
//! │ (wave N ready)
//! ▼
//! WorkQueuePort::enqueue(tasks…)
//! │
//! ├─► Worker 1: dequeue → execute node → acknowledge
//! ├─► Worker 2: dequeue → execute node → acknowledge
//! └─► Worker N: dequeue → execute node → acknowledge
//! │
//! collect_results(pipeline_id) → Vec<(node_name, output)>
//! ```
//!
//! Every implementation in this crate ([`LocalWorkQueue`](crate::LocalWorkQueue),
//! [`KvWorkQueue`](crate::KvWorkQueue) and the HTTP client) passes the same
//! conformance suite, so a DAG executor can switch between them freely.

use crate::error::Result;
use crate::MaybeSendSync;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A single unit of work: one pipeline node that needs to be executed.
///
/// Tasks are serialisable so they can be carried to remote workers over HTTP
/// or stored in a key-value store.
///
/// # Example
///
/// ```
/// use spin_work_queue::WorkTask;
/// use serde_json::json;
///
/// let task = WorkTask {
///     id: "01HX...".to_string(),
///     pipeline_id: "pipeline-abc".to_string(),
///     node_name: "fetch-homepage".to_string(),
///     input: json!({"url": "https://example.com"}),
///     wave: 0,
///     attempt: 0,
///     idempotency_key: "ik-01HX".to_string(),
/// };
/// assert_eq!(task.node_name, "fetch-homepage");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkTask {
    /// Unique task identifier (ULID recommended).
    pub id: String,
    /// Pipeline this task belongs to.
    pub pipeline_id: String,
    /// Name of the DAG node to execute.
    pub node_name: String,
    /// Input data for the node's service (JSON).
    pub input: serde_json::Value,
    /// Execution wave (tasks in the same wave are independent and can run in
    /// parallel).
    pub wave: u32,
    /// Retry attempt number (0 = first attempt).
    pub attempt: u32,
    /// Idempotency key for safe retries.
    pub idempotency_key: String,
}

/// Lifecycle status of a [`WorkTask`].
///
/// Serialised in serde's default externally tagged form, e.g. `"Pending"` or
/// `{"Completed":{"output":…}}`.
///
/// # Example
///
/// ```
/// use spin_work_queue::TaskStatus;
///
/// let status = TaskStatus::Pending;
/// assert!(matches!(status, TaskStatus::Pending));
/// assert_eq!(serde_json::to_string(&status).unwrap(), "\"Pending\"");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Task is queued (possibly delayed), not yet claimed by a worker.
    Pending,
    /// A worker has claimed the task and is executing it.
    InProgress {
        /// Identifier of the worker processing this task.
        worker_id: String,
    },
    /// Task completed successfully.
    Completed {
        /// Output produced by the node (JSON).
        output: serde_json::Value,
    },
    /// Task failed and waits for its retry (`attempt + 1 < max_attempts`).
    Failed {
        /// Human-readable error message.
        error: String,
        /// Which attempt number failed.
        attempt: u32,
    },
    /// Task has exhausted its attempts (or failed permanently) and sits in
    /// the dead-letter list.
    DeadLetter {
        /// Final error message.
        error: String,
    },
}

impl TaskStatus {
    /// True for the two states a task never leaves on its own:
    /// [`Completed`](TaskStatus::Completed) and
    /// [`DeadLetter`](TaskStatus::DeadLetter).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::DeadLetter { .. })
    }
}

/// Port: distributed work queue for pipeline node execution.
///
/// # Example
///
/// ```
/// use spin_work_queue::{LocalWorkQueue, WorkQueuePort, WorkTask};
/// use serde_json::json;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let queue = LocalWorkQueue::new();
/// let task = WorkTask {
///     id: "t1".to_string(),
///     pipeline_id: "p1".to_string(),
///     node_name: "fetch".to_string(),
///     input: json!({"url": "https://example.com"}),
///     wave: 0,
///     attempt: 0,
///     idempotency_key: "ik-t1".to_string(),
/// };
/// queue.enqueue(task).await.unwrap();
/// let dequeued = queue.try_dequeue().await.unwrap();
/// assert!(dequeued.is_some());
/// # });
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait WorkQueuePort: MaybeSendSync {
    /// Enqueue a task for execution.
    ///
    /// An empty `id` asks the queue to generate one (a ULID); an empty
    /// `idempotency_key` defaults to the id. Enqueueing a task whose
    /// idempotency key is already known is a no-op that succeeds.
    ///
    /// # Example
    ///
    /// ```
    /// use spin_work_queue::{LocalWorkQueue, WorkQueuePort, WorkTask};
    /// use serde_json::json;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = LocalWorkQueue::new();
    /// let task = WorkTask {
    ///     id: "t1".to_string(),
    ///     pipeline_id: "p1".to_string(),
    ///     node_name: "fetch".to_string(),
    ///     input: json!({"url": "https://example.com"}),
    ///     wave: 0,
    ///     attempt: 0,
    ///     idempotency_key: "ik-t1".to_string(),
    /// };
    /// queue.enqueue(task).await.unwrap();
    /// assert_eq!(queue.pending_count().await.unwrap(), 1);
    /// # });
    /// ```
    async fn enqueue(&self, task: WorkTask) -> Result<()>;

    /// Attempt to dequeue one task. Returns `None` immediately if no task is
    /// due (non-blocking).
    ///
    /// The task is leased to this queue handle; [`acknowledge`](Self::acknowledge)
    /// and [`fail`](Self::fail) on the same handle use that lease.
    ///
    /// # Example
    ///
    /// ```
    /// use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = LocalWorkQueue::new();
    /// let result = queue.try_dequeue().await.unwrap();
    /// assert!(result.is_none()); // empty
    /// # });
    /// ```
    async fn try_dequeue(&self) -> Result<Option<WorkTask>>;

    /// Acknowledge successful completion of a task.
    ///
    /// Records the output and marks the task as [`TaskStatus::Completed`].
    /// Fails with [`QueueError::LeaseLost`](crate::QueueError::LeaseLost) when
    /// the task was meanwhile rescued and handed to another worker.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    /// # use serde_json::json;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let queue = LocalWorkQueue::new();
    /// queue.acknowledge("task-id", json!({"data": "ok"})).await.unwrap();
    /// # });
    /// ```
    async fn acknowledge(&self, task_id: &str, output: serde_json::Value) -> Result<()>;

    /// Record a task failure: the task is retried with exponential backoff
    /// until its attempts are exhausted, then dead-lettered.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let queue = LocalWorkQueue::new();
    /// queue.fail("task-id", "connection refused").await.unwrap();
    /// # });
    /// ```
    async fn fail(&self, task_id: &str, error: &str) -> Result<()>;

    /// Retrieve the current [`TaskStatus`] for a task by id (`None` when the
    /// task is unknown).
    ///
    /// # Example
    ///
    /// ```
    /// # use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let queue = LocalWorkQueue::new();
    /// let status = queue.status("task-id").await.unwrap();
    /// assert!(status.is_none());
    /// # });
    /// ```
    async fn status(&self, task_id: &str) -> Result<Option<TaskStatus>>;

    /// Collect all completed results for a pipeline.
    ///
    /// Returns `(node_name, output)` pairs for every completed task belonging
    /// to `pipeline_id`, in completion order.
    ///
    /// # Example
    ///
    /// ```
    /// # use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let queue = LocalWorkQueue::new();
    /// let results = queue.collect_results("pipeline-abc").await.unwrap();
    /// assert!(results.is_empty());
    /// # });
    /// ```
    async fn collect_results(&self, pipeline_id: &str) -> Result<Vec<(String, serde_json::Value)>>;

    /// Number of tasks waiting to be delivered (due now or delayed).
    ///
    /// # Example
    ///
    /// ```
    /// use spin_work_queue::{LocalWorkQueue, WorkQueuePort};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = LocalWorkQueue::new();
    /// assert_eq!(queue.pending_count().await.unwrap(), 0);
    /// # });
    /// ```
    async fn pending_count(&self) -> Result<usize>;
}
