//! The worker side, independent of Spin: draining the queue through an
//! [`Executor`] ([`drain`], [`handle_drain`]) and executor URL resolution
//! ([`ExecutorRoutes`]).
//!
//! The worker component implements [`Executor`] with Spin's outbound HTTP
//! and calls [`handle_drain`]; tests use a fake executor and a manual
//! clock.

mod config;
mod drain;
mod executor;
mod http;
mod routes;
mod settings;

pub use config::{WorkerConfig, MIN_EXECUTOR_TIMEOUT_MS};
pub use drain::{
    drain, drain_admitted, DrainError, DrainReport, DrainRequest, Drained, BATCH_DEFAULT,
    BUDGET_MS_DEFAULT, BUDGET_MS_LIMIT, EXECUTOR_TIMEOUT_MS_DEFAULT, LEASE_MARGIN_MS,
    MAX_TASKS_DEFAULT, MAX_TASKS_LIMIT,
};
pub use executor::{
    classify, task_request, Execution, Executor, ExecutorReply, ERROR_EXCERPT_CHARS,
    HEADER_ATTEMPT, HEADER_IDEMPOTENCY_KEY, HEADER_NODE_NAME, HEADER_PIPELINE_ID, HEADER_TASK_ID,
    HEADER_TIMEOUT_MS,
};
pub use http::{
    accept_drain, accepted, handle_drain, run_drain, DrainCall, DrainOutcome, FollowUp,
    DRAIN_SEGMENT,
};
pub use routes::{
    ExecutorRoutes, EXECUTORS_DEFAULT, EXECUTOR_BASE_DEFAULT, FALLBACK_KEY, NODE_NAME_PLACEHOLDER,
};
pub use settings::{AwaitRetries, DrainSettings};
