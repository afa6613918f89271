//! What the engine stores: task records, heartbeats and log entries.

use super::keys::Log;
use crate::port::{TaskStatus, WorkTask};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a task is indexed right now: entry `n` of `log`. Exactly one entry
/// is authoritative for a task; every other entry that names the task is
/// stale and ignored by its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Place {
    pub log: LogName,
    pub n: u64,
}

/// Serde form of the logs a task can be placed in.
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

/// The slot of a task about to be published (see `ring::publish`), which
/// no entry ever has.
pub(crate) const UNPLACED: u64 = u64::MAX;

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

/// The lease of the delivery in progress, as the dequeue wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub id: String,
    pub worker_id: String,
    pub expires_at: u64,
}

/// A task's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum State {
    /// Waiting for delivery (in the ring, or delayed until `not_before`).
    Pending,
    /// Delivered under `lease` (a [`Heartbeat`] may extend it).
    InProgress { lease: LeaseRecord },
    /// Completed by the delivery holding `lease_id`; entry `seq` of the
    /// completion log.
    Completed {
        output: Value,
        lease_id: String,
        seq: u64,
        completed_at: u64,
    },
    /// Attempt `task.attempt` failed; retried at `not_before`.
    Failed { error: String },
    /// Out of attempts (or failed permanently).
    DeadLetter { error: String, failed_at: u64 },
}

impl State {
    /// The state in words, for error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InProgress { .. } => "in progress",
            State::Completed { .. } => "completed",
            State::Failed { .. } => "failed",
            State::DeadLetter { .. } => "dead-lettered",
        }
    }
}

/// The record of one task, at `t/{id}`.
///
/// One writer at a time owns it (docs/engine.md, "Who writes a record"):
/// the enqueuer until a dequeuer takes its ring slot, that dequeuer until
/// it wrote the lease, the lease holder until its expiry, maintenance for
/// everything time decides, the winner of a redrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    /// The task; `attempt` is the current (or last delivered) attempt.
    pub task: WorkTask,
    pub max_attempts: u32,
    pub state: State,
    /// The authoritative index entry.
    pub at: Place,
    /// Not to be delivered before (Unix ms).
    pub not_before: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Ring slots this task was delivered from (the most recent ones), so
    /// that the ring walk tells a slot that delivered from one that did
    /// not after the task has moved on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<u64>,
    /// The executor's route key when it is not the node name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
}

/// Most ring slots remembered in [`TaskRecord::deliveries`].
const DELIVERIES_KEPT: usize = 32;

impl TaskRecord {
    /// Remember that ring slot `slot` delivered this task.
    pub(crate) fn delivered_from(&mut self, slot: u64) {
        self.deliveries.push(slot);
        if self.deliveries.len() > DELIVERIES_KEPT {
            self.deliveries.remove(0);
        }
    }

    /// The public status.
    pub(crate) fn status(&self) -> TaskStatus {
        match &self.state {
            State::Pending => TaskStatus::Pending,
            State::InProgress { lease } => TaskStatus::InProgress {
                worker_id: lease.worker_id.clone(),
            },
            State::Completed { output, .. } => TaskStatus::Completed {
                output: output.clone(),
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

    /// The lease of the running delivery and its current expiry (the later
    /// of the dequeue's and the latest heartbeat's for that lease).
    pub(crate) fn lease(&self, heartbeat: Option<&Heartbeat>) -> Option<(&LeaseRecord, u64)> {
        let State::InProgress { lease } = &self.state else {
            return None;
        };
        let extended = heartbeat
            .filter(|h| h.lease_id == lease.id)
            .map_or(0, |h| h.expires_at);
        Some((lease, lease.expires_at.max(extended)))
    }

    /// Make the task pending again at `at`, due at `now` (`updated_at`
    /// moves only when the state changes: not for a delay that ended).
    pub(crate) fn requeue(&mut self, at: Place, now: u64) {
        if self.state != State::Pending {
            self.updated_at = now;
        }
        self.state = State::Pending;
        self.at = at;
        self.not_before = now;
    }
}

/// A lease extension, at `h/{id}`: written by heartbeats only, so that a
/// heartbeat racing its own ack can never undo the completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub lease_id: String,
    pub expires_at: u64,
}

/// A ring entry: the id of a due task, or padding (`null`) written over
/// slots that dequeuers took before any enqueue reserved them.
pub(crate) type RingEntry = Option<String>;

/// An entry of the completion log (and of a pipeline's index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompletionEntry {
    pub id: String,
    pub pipeline_id: String,
    pub node_name: String,
    pub seq: u64,
    pub completed_at: u64,
}

/// An entry of the dead-letter log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeadLetterRef {
    pub id: String,
    pub failed_at: u64,
}
