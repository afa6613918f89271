//! What the engine stores: task records, results and log entries.

use super::keys::Log;
use crate::port::{TaskStatus, WorkTask};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most ring slots remembered in [`TaskRecord::deliveries`].
const DELIVERIES_KEPT: usize = 32;

/// Where a task is indexed right now: entry `n` of `log`. Exactly one entry
/// is authoritative for a task; every other entry that names the task is
/// stale and ignored by its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Place {
    pub log: LogName,
    pub n: u64,
}

/// Serde form of [`Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum LogName {
    #[serde(rename = "q")]
    Ring,
    #[serde(rename = "d")]
    Delayed,
    #[serde(rename = "f")]
    Retries,
    #[serde(rename = "x")]
    DeadLetters,
}

impl Place {
    pub(crate) fn ring(n: u64) -> Self {
        Self {
            log: LogName::Ring,
            n,
        }
    }
    pub(crate) fn delayed(n: u64) -> Self {
        Self {
            log: LogName::Delayed,
            n,
        }
    }
    pub(crate) fn retries(n: u64) -> Self {
        Self {
            log: LogName::Retries,
            n,
        }
    }
    pub(crate) fn dead_letters(n: u64) -> Self {
        Self {
            log: LogName::DeadLetters,
            n,
        }
    }
}

impl From<LogName> for Log {
    fn from(l: LogName) -> Log {
        match l {
            LogName::Ring => Log::Ring,
            LogName::Delayed => Log::Delayed,
            LogName::Retries => Log::Retries,
            LogName::DeadLetters => Log::DeadLetters,
        }
    }
}

/// The lease of the delivery in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub id: String,
    pub worker_id: String,
    pub expires_at: u64,
}

/// A task's state as recorded. A stored result overrides it: a task with a
/// result is completed whatever its record says (see [`TaskRecord::status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum State {
    /// Waiting for delivery (in the ring, or delayed until `not_before`).
    Pending,
    /// Delivered under `lease`.
    InProgress { lease: LeaseRecord },
    /// Completed by the delivery holding `lease_id`; result `seq` in the
    /// completion log.
    Completed { lease_id: String, seq: u64 },
    /// Attempt `task.attempt` failed; retried at `not_before`.
    Failed { error: String },
    /// Out of attempts (or failed permanently).
    DeadLetter { error: String, failed_at: u64 },
}

/// The record of one task, at `t/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    /// The task; `attempt` is the current (or last delivered) attempt.
    pub task: WorkTask,
    pub max_attempts: u32,
    pub state: State,
    /// The authoritative index entry.
    pub at: Place,
    /// Delivery generation: bumped whenever a task that may have been
    /// delivered is queued again, so each delivery writes its own result key.
    pub gen: u32,
    /// Not to be delivered before (Unix ms).
    pub not_before: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Ring slots this task was delivered from (the most recent ones).
    #[serde(default)]
    pub deliveries: Vec<u64>,
}

impl TaskRecord {
    /// The public status, given the task's earliest stored result.
    pub(crate) fn status(&self, result: Option<&ResultRecord>) -> TaskStatus {
        if let Some(r) = result {
            return TaskStatus::Completed {
                output: r.output.clone(),
            };
        }
        match &self.state {
            State::Pending => TaskStatus::Pending,
            State::InProgress { lease } => TaskStatus::InProgress {
                worker_id: lease.worker_id.clone(),
            },
            // A completed record always has its result written in the same
            // commit; without one (data lost outside the queue) report the
            // closest truth rather than inventing an output.
            State::Completed { .. } => TaskStatus::Completed {
                output: Value::Null,
            },
            State::Failed { error } => TaskStatus::Failed {
                error: error.clone(),
                attempt: self.task.attempt,
            },
            State::DeadLetter { error, .. } => TaskStatus::DeadLetter {
                error: error.clone(),
            },
        }
    }

    /// Remember that ring slot `slot` delivered this task.
    pub(crate) fn delivered_from(&mut self, slot: u64) {
        self.deliveries.push(slot);
        if self.deliveries.len() > DELIVERIES_KEPT {
            self.deliveries.remove(0);
        }
    }

    /// Make the task pending again at `at`, due at `now`. `redelivery`
    /// bumps the generation (the task may have been delivered before).
    pub(crate) fn requeue(&mut self, at: Place, now: u64, redelivery: bool) {
        self.state = State::Pending;
        self.at = at;
        self.not_before = now;
        self.updated_at = now;
        if redelivery {
            self.gen += 1;
        }
    }
}

/// A result, at `r/{id}/{gen}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResultRecord {
    pub output: Value,
    /// Position in the completion log; the lowest wins.
    pub seq: u64,
    pub completed_at: u64,
    pub lease_id: String,
}

/// An entry of the completion log (and of a pipeline's index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompletionEntry {
    pub id: String,
    pub pipeline_id: String,
    pub node_name: String,
    pub gen: u32,
    pub seq: u64,
}

/// An entry of the dead-letter log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeadLetterRef {
    pub id: String,
    pub failed_at: u64,
}

/// An entry of the orphan log: ring slots `start..end` were taken by a
/// dequeuer before they were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrphanRange {
    pub start: u64,
    pub end: u64,
}
