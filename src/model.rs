//! Request and response types of the extended queue operations
//! ([`LeasedQueue`](crate::LeasedQueue)). Their serde forms are the JSON
//! bodies of the HTTP API (`openapi.yaml`).

use crate::config::{MAX_ATTEMPTS_LIMIT, MAX_DELAY_MS, MAX_JSON_DEPTH};
use crate::error::{InvalidKind, QueueError, Result};
use crate::port::{TaskStatus, WorkTask};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest accepted task id.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted pipeline id, node name, worker id or idempotency key.
pub const MAX_NAME_LEN: usize = 256;

/// A task to enqueue, with its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Task id (`[0-9A-Za-z_-]{1,128}`); generated (a ULID) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Pipeline the task belongs to.
    pub pipeline_id: String,
    /// DAG node to execute.
    pub node_name: String,
    /// Input handed to the node.
    #[serde(default)]
    pub input: Value,
    /// Execution wave.
    #[serde(default)]
    pub wave: u32,
    /// Deduplication key; defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Delivery attempts before dead-lettering; defaults to the queue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Do not deliver before this many milliseconds have passed.
    #[serde(default)]
    pub delay_ms: u64,
    /// Route key the worker finds the executor by; defaults to
    /// `node_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

impl NewTask {
    /// A task with default options.
    pub fn new(pipeline_id: impl Into<String>, node_name: impl Into<String>, input: Value) -> Self {
        Self {
            id: None,
            pipeline_id: pipeline_id.into(),
            node_name: node_name.into(),
            input,
            wave: 0,
            idempotency_key: None,
            max_attempts: None,
            delay_ms: 0,
            executor: None,
        }
    }

    /// The enqueue request for a port-level [`WorkTask`]: an empty id or
    /// idempotency key means "not given"; `attempt` is ignored.
    pub fn from_work_task(task: WorkTask) -> Self {
        Self {
            id: Some(task.id).filter(|s| !s.is_empty()),
            pipeline_id: task.pipeline_id,
            node_name: task.node_name,
            input: task.input,
            wave: task.wave,
            idempotency_key: Some(task.idempotency_key).filter(|s| !s.is_empty()),
            max_attempts: None,
            delay_ms: 0,
            executor: None,
        }
    }

    /// Check the task against the contract's rules; the message names the
    /// field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(QueueError::invalid(InvalidKind::Task, m));
        if let Some(id) = &self.id {
            validate_task_id(id)?;
        }
        validate_segment_name("pipeline_id", &self.pipeline_id)?;
        validate_segment_name("node_name", &self.node_name)?;
        if let Some(executor) = &self.executor {
            validate_segment_name("executor", executor)?;
        }
        if let Some(key) = &self.idempotency_key {
            validate_name("idempotency_key", key)?;
        }
        if let Some(n) = self.max_attempts {
            if !(1..=MAX_ATTEMPTS_LIMIT).contains(&n) {
                return bad(format!(
                    "max_attempts must be 1..={MAX_ATTEMPTS_LIMIT}, got {n}"
                ));
            }
        }
        if self.delay_ms > MAX_DELAY_MS {
            return bad(format!(
                "delay_ms must be at most {MAX_DELAY_MS}, got {}",
                self.delay_ms
            ));
        }
        if exceeds_depth(&self.input, MAX_JSON_DEPTH) {
            return bad(format!(
                "input nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
            ));
        }
        Ok(())
    }
}

/// Check a whole enqueue batch: its size, then every task (the message
/// names the task as `tasks[i]` in a batch of several). Nothing of a batch
/// that fails is enqueued.
pub fn validate_batch(tasks: &[NewTask]) -> Result<()> {
    use crate::config::MAX_ENQUEUE_BATCH;
    if tasks.is_empty() || tasks.len() > MAX_ENQUEUE_BATCH {
        return Err(QueueError::invalid(
            InvalidKind::Batch,
            format!(
                "tasks must hold 1..={MAX_ENQUEUE_BATCH} tasks, got {}",
                tasks.len()
            ),
        ));
    }
    for (i, t) in tasks.iter().enumerate() {
        t.validate().map_err(|e| match e {
            QueueError::Invalid(mut invalid) if tasks.len() > 1 => {
                invalid.message = format!("tasks[{i}]: {}", invalid.message);
                QueueError::Invalid(invalid)
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Most entries one listing (dead letters, set-aside values) returns.
pub const MAX_LIST_LIMIT: usize = 1_000;

/// Check the `limit` of a listing: at most [`MAX_LIST_LIMIT`].
pub fn validate_limit(limit: usize) -> Result<()> {
    if limit > MAX_LIST_LIMIT {
        return Err(QueueError::invalid(
            InvalidKind::Request,
            format!("limit must be 0..={MAX_LIST_LIMIT}, got {limit}"),
        ));
    }
    Ok(())
}

/// Check the size of a batch ack.
pub fn validate_ack_batch(acks: &[Ack]) -> Result<()> {
    use crate::config::MAX_ENQUEUE_BATCH;
    if acks.len() > MAX_ENQUEUE_BATCH {
        return Err(QueueError::invalid(
            InvalidKind::Batch,
            format!(
                "acks must hold at most {MAX_ENQUEUE_BATCH} entries, got {}",
                acks.len()
            ),
        ));
    }
    Ok(())
}

/// Check a node's output before it is recorded: at most
/// [`MAX_JSON_DEPTH`] levels of arrays and objects.
pub fn validate_output(output: &Value) -> Result<()> {
    if exceeds_depth(output, MAX_JSON_DEPTH) {
        return Err(QueueError::invalid(
            InvalidKind::Output,
            format!("output nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// True when `value` nests arrays and objects more than `max` levels deep
/// (`1` and `"a"` are depth 0, `[1]` is depth 1). Iterative, so a value
/// built in Rust, however deep, cannot overflow the stack here.
///
/// ```
/// use serde_json::json;
/// use spin_work_queue::model::exceeds_depth;
/// assert!(!exceeds_depth(&json!([[1]]), 2));
/// assert!(exceeds_depth(&json!([[[1]]]), 2));
/// assert!(!exceeds_depth(&json!(7), 0));
/// ```
pub fn exceeds_depth(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Check a task id: `[0-9A-Za-z_-]{1,128}`.
pub fn validate_task_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid(
            InvalidKind::Task,
            format!("id must match [0-9A-Za-z_-]{{1,{MAX_ID_LEN}}}, got {id:?}"),
        ))
    }
}

/// Check a free-form name: 1 to [`MAX_NAME_LEN`] bytes, no control characters.
pub fn validate_name(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        let kind = if field == "worker_id" {
            InvalidKind::Request
        } else {
            InvalidKind::Task
        };
        return Err(QueueError::invalid(
            kind,
            format!("{field} must be 1..={MAX_NAME_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Check a name that becomes a URL path segment (the pipeline of
/// `/v1/pipelines/{pipeline_id}/results`, the node of
/// `{executor_base}/{node_name}`): a free-form name, but not `.` or `..`,
/// which URL libraries resolve to another path.
pub fn validate_segment_name(field: &str, value: &str) -> Result<()> {
    validate_name(field, value)?;
    if matches!(value, "." | "..") {
        return Err(QueueError::invalid(
            InvalidKind::Task,
            format!("{field} cannot be {value:?}: it is used as a URL path segment"),
        ));
    }
    Ok(())
}

/// The outcome of enqueueing one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The task's id (the existing task's id for a duplicate).
    pub id: String,
    /// True when the idempotency key was already known: nothing was added.
    pub duplicate: bool,
}

/// A request for a batch of due tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DequeueRequest {
    /// Who takes the tasks; recorded in `InProgress { worker_id }`.
    pub worker_id: String,
    /// Most tasks to take (1..=100).
    #[serde(default = "one")]
    pub max: u32,
    /// Lease length; defaults to the queue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl DequeueRequest {
    /// Up to `max` tasks for `worker_id` with the default lease.
    pub fn new(worker_id: impl Into<String>, max: u32) -> Self {
        Self {
            worker_id: worker_id.into(),
            max,
            lease_ms: None,
        }
    }

    /// Check the request against the contract's rules.
    pub fn validate(&self) -> Result<()> {
        validate_name("worker_id", &self.worker_id)?;
        if !(1..=crate::config::MAX_DEQUEUE_BATCH).contains(&self.max) {
            return Err(QueueError::invalid(
                InvalidKind::Request,
                format!(
                    "max must be 1..={}, got {}",
                    crate::config::MAX_DEQUEUE_BATCH,
                    self.max
                ),
            ));
        }
        if let Some(ms) = self.lease_ms {
            validate_lease_ms(ms)?;
        }
        Ok(())
    }
}

/// Check a lease length.
pub fn validate_lease_ms(ms: u64) -> Result<()> {
    use crate::config::{MAX_LEASE_MS, MIN_LEASE_MS};
    if (MIN_LEASE_MS..=MAX_LEASE_MS).contains(&ms) {
        Ok(())
    } else {
        Err(QueueError::invalid(
            InvalidKind::Request,
            format!("lease_ms must be {MIN_LEASE_MS}..={MAX_LEASE_MS}, got {ms}"),
        ))
    }
}

/// A lease: the right to finish one delivery of a task until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Opaque lease id; ack, fail and heartbeat must present it.
    pub id: String,
    /// Unix milliseconds after which the task may be rescued.
    pub expires_at: u64,
}

/// A delivered task and its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedTask {
    /// The task; `attempt` is the attempt being delivered (0 first).
    pub task: WorkTask,
    /// The lease to finish it with.
    pub lease: Lease,
    /// The executor's route key when it is not the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

impl LeasedTask {
    /// The route key the worker finds the executor by: the task's
    /// `executor`, else its node name.
    pub fn route_key(&self) -> &str {
        self.executor.as_deref().unwrap_or(&self.task.node_name)
    }
}

/// One acknowledgement of a batch ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Task id.
    pub id: String,
    /// Lease it was delivered with.
    pub lease_id: String,
    /// The node's output.
    #[serde(default)]
    pub output: Value,
}

/// Everything known about one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task (with its current attempt).
    pub task: WorkTask,
    /// Its status.
    pub status: TaskStatus,
    /// Attempts allowed before dead-lettering.
    pub max_attempts: u32,
    /// When it was enqueued (Unix ms).
    pub created_at: u64,
    /// When its state last changed (Unix ms).
    pub updated_at: u64,
    /// The lease of the delivery in progress (absent unless `InProgress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The executor's route key when it is not the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

/// Task counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Waiting to be delivered (the port's `pending_count`).
    pub pending: u64,
    /// Of those, the ones a dequeue would deliver now: not waiting for a
    /// delay or retry that maintenance has not made due yet.
    #[serde(default)]
    pub due: u64,
    /// Delivered and not finished.
    pub in_progress: u64,
    /// Completed.
    pub completed: u64,
    /// Failed and waiting for a retry.
    pub failed: u64,
    /// Dead-lettered.
    pub dead_letter: u64,
    /// Stored values the queue could not decode, set aside (see
    /// [`LeasedQueue::set_aside`](crate::LeasedQueue::set_aside)).
    #[serde(default)]
    pub set_aside: u64,
}

/// One entry of the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterEntry {
    /// The task.
    pub task: WorkTask,
    /// Its final error.
    pub error: String,
    /// When it was dead-lettered (Unix ms).
    pub failed_at: u64,
}

/// What a failure did to the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailOutcome {
    /// The task's new status: `Failed` (a retry is scheduled) or
    /// `DeadLetter`.
    pub status: TaskStatus,
    /// When the retry becomes due (Unix ms); absent for a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<u64>,
}

/// A stored value the queue could not decode and set aside instead of
/// failing on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The key that holds the value (left in place, untouched).
    pub key: String,
    /// Why it could not be decoded.
    pub reason: String,
    /// When it was found (Unix ms).
    pub seen_at: u64,
}

/// What one maintenance step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescueReport {
    /// Expired leases re-queued as their next attempt.
    pub rescued: u64,
    /// Expired leases on their last attempt, dead-lettered.
    pub dead_lettered: u64,
    /// Delayed tasks and retries made due.
    pub promoted: u64,
}

/// A new unique id: a ULID (time-ordered, 26 characters).
pub fn generate_id() -> String {
    ulid::Ulid::generate().to_string()
}
