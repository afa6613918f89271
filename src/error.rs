//! The error type shared by every [`WorkQueuePort`](crate::WorkQueuePort)
//! implementation.

use crate::kv::KvError;

/// Result alias used throughout the port and its implementations.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// What kind of rule a rejected request broke; each kind has its own
/// error code ([`InvalidKind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidKind {
    /// A task to enqueue (`invalid_task`).
    Task,
    /// The shape of a batch: its size (`invalid_batch`).
    Batch,
    /// A node's output handed to ack (`invalid_output`).
    Output,
    /// Any other request field: worker id, `max`, `lease_ms`, a limit
    /// (`invalid_request`).
    Request,
    /// The queue's configuration (`invalid_config`).
    Config,
    /// A pipeline to submit (`invalid_pipeline`).
    Pipeline,
}

impl InvalidKind {
    /// The snake_case code of this kind, as used in HTTP error bodies.
    pub fn code(self) -> &'static str {
        match self {
            Self::Task => "invalid_task",
            Self::Batch => "invalid_batch",
            Self::Output => "invalid_output",
            Self::Request => "invalid_request",
            Self::Config => "invalid_config",
            Self::Pipeline => "invalid_pipeline",
        }
    }
}

/// A broken rule: its kind and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Which rule.
    pub kind: InvalidKind,
    /// A human-readable message naming the offending field.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a queue operation did not succeed.
///
/// Each variant maps to one HTTP status of the API contract; the mapping
/// lives in the API layer, not here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No task with this id exists.
    #[error("task {id} not found")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// The lease presented is no longer the task's current lease: it expired
    /// and the task was rescued, or the task was finished by someone else.
    #[error("lease on task {id} was lost")]
    LeaseLost {
        /// The task whose lease was lost.
        id: String,
    },
    /// The operation needs the task in another state (for example a redrive
    /// of a task that is not dead-lettered).
    #[error("task {id} is {state}: {reason}")]
    WrongState {
        /// The task concerned.
        id: String,
        /// Its current state, in words.
        state: String,
        /// What the operation needed.
        reason: String,
    },
    /// A request broke a rule of the contract (field missing, out of range…).
    #[error("{0}")]
    Invalid(Invalid),
    /// The key-value store failed; the operation may be retried.
    #[error(transparent)]
    Store(#[from] KvError),
    /// Stored data could not be decoded.
    #[error("corrupt data at {key}: {reason}")]
    Corrupt {
        /// The key that held undecodable data.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The store answered too slowly for the operation to be safe (its
    /// writes could race the recovery of abandoned work), so nothing was
    /// written; retry the request.
    #[error("store too slow: {0}")]
    TooSlow(String),
    /// The store holds as many keys as it may (a capped hosted store):
    /// nothing was written; retry once finished tasks were deleted.
    #[error("store full: {0}")]
    StoreFull(String),
    /// No pipeline with this id exists.
    #[error("pipeline {id} not found")]
    UnknownPipeline {
        /// The id that was looked up.
        id: String,
    },
    /// A pipeline with this id exists with another spec.
    #[error("pipeline {id} exists with another spec")]
    PipelineConflict {
        /// The pipeline's id.
        id: String,
    },
    /// This queue does not offer the operation.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A remote queue could not be reached or answered unexpectedly (HTTP
    /// client only).
    #[error("transport error: {0}")]
    Transport(String),
}

impl QueueError {
    /// A broken rule of kind `kind`.
    pub fn invalid(kind: InvalidKind, message: impl Into<String>) -> Self {
        Self::Invalid(Invalid {
            kind,
            message: message.into(),
        })
    }

    /// A short snake_case code for the error, as used in HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::LeaseLost { .. } => "lease_lost",
            Self::WrongState { .. } => "wrong_state",
            Self::Invalid(i) => i.kind.code(),
            Self::Store(_) => "store_unavailable",
            Self::Corrupt { .. } => "store_corrupt",
            Self::TooSlow(_) => "store_too_slow",
            Self::StoreFull(_) => "store_full",
            Self::UnknownPipeline { .. } => "not_found",
            Self::PipelineConflict { .. } => "pipeline_conflict",
            Self::Unsupported(_) => "not_supported",
            Self::Transport(_) => "transport",
        }
    }
}

impl From<crate::config::ConfigError> for QueueError {
    fn from(e: crate::config::ConfigError) -> Self {
        QueueError::invalid(InvalidKind::Config, e.to_string())
    }
}
