//! The worker side, independent of Spin: draining the queue through an
//! [`Executor`] ([`drain`], [`handle_drain`]), executor URL resolution
//! ([`ExecutorRoutes`]) and the logic of the two bundled executors
//! ([`echo_plan`], [`fetch_target`] / [`fetch_output`]).
//!
//! The worker component implements [`Executor`] with Spin's outbound HTTP
//! and calls [`handle_drain`]; tests use a fake executor and a manual
//! clock.

mod config;
mod drain;
mod echo;
mod executor;
mod fetch;
mod http;
mod routes;

pub use config::{WorkerConfig, MIN_EXECUTOR_TIMEOUT_MS};
pub use drain::{
    drain, AwaitRetries, DrainError, DrainReport, DrainRequest, DrainSettings, BATCH_DEFAULT,
    BUDGET_MS_DEFAULT, BUDGET_MS_LIMIT, EXECUTOR_TIMEOUT_MS_DEFAULT, LEASE_MARGIN_MS,
    MAX_TASKS_DEFAULT, MAX_TASKS_LIMIT,
};
pub use echo::{echo_plan, EchoPlan, ECHO_FAIL_STATUS_DEFAULT, ECHO_MAX_SLEEP_MS};
pub use executor::{
    classify, Execution, Executor, ExecutorReply, ExecutorRequest, ERROR_EXCERPT_CHARS,
    HEADER_ATTEMPT, HEADER_IDEMPOTENCY_KEY, HEADER_NODE_NAME, HEADER_PIPELINE_ID, HEADER_TASK_ID,
};
pub use fetch::{
    fetch_denied, fetch_output, fetch_target, fetch_unreachable, html_title, FetchConfig,
    FETCH_TITLE_MAX_CHARS, FETCH_TITLE_SCAN_BYTES,
};
pub use http::{handle_drain, DrainOutcome, DRAIN_SEGMENT};
pub use routes::{ExecutorRoutes, EXECUTOR_BASE_DEFAULT, FALLBACK_KEY, NODE_NAME_PLACEHOLDER};
