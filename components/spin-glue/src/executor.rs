//! [`SpinExecutor`]: how a drain calls a node's executor inside Spin —
//! in process for `local:` routes ([`crate::bundled`]), else by Spin's
//! outbound HTTP with one deadline for the whole exchange — and the drain
//! settings a component builds from its variables.

use crate::outbound::{send, Limits, SendFailure};
use async_trait::async_trait;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::{DrainSettings, Executor, ExecutorReply, WorkerConfig};
use spin_work_queue::SystemClock;
use std::sync::Arc;

/// Executes nodes in process or with Spin's outbound HTTP.
pub struct SpinExecutor {
    /// Largest output kept; a bigger answer fails the task for good.
    pub max_output_bytes: usize,
}

fn too_large(max: usize) -> ExecutorReply {
    // Not retryable: the same node would answer the same way.
    ExecutorReply::Answered(Response {
        status: 413,
        headers: Vec::new(),
        body: format!("output larger than {max} bytes").into_bytes(),
    })
}

#[async_trait(?Send)]
impl Executor for SpinExecutor {
    async fn call(&self, req: Request, timeout_ms: u64) -> ExecutorReply {
        if let Some(answer) = crate::bundled::run_local(&req).await {
            return match answer.body.len() > self.max_output_bytes {
                true => too_large(self.max_output_bytes),
                false => ExecutorReply::Answered(answer),
            };
        }
        let limits = Limits {
            deadline_ms: Some(timeout_ms),
            keep_bytes: self.max_output_bytes,
            max_read_bytes: self.max_output_bytes as u64 + 1,
        };
        match send(&req, limits).await {
            Ok(got) if got.body_bytes > self.max_output_bytes as u64 => {
                too_large(self.max_output_bytes)
            }
            Ok(got) => ExecutorReply::Answered(got.response),
            Err(SendFailure::Timeout) => ExecutorReply::Timeout,
            Err(e) => ExecutorReply::Unreachable(e.to_string()),
        }
    }
}

/// The drain settings of a component configured by `config`.
pub fn drain_settings(config: &WorkerConfig) -> DrainSettings {
    let queue = &config.api.queue;
    DrainSettings::new(
        format!("worker-{}", ulid::Ulid::generate()),
        config.routes.clone(),
        config.executor_timeout_ms,
        queue.default_lease_ms,
        Arc::new(SystemClock),
    )
    .awaiting_retries(queue.maintenance_period_ms)
    .recovering(&queue.timing(), queue.maintenance_period_ms)
    .with_max_drains(config.api.dispatch.max_drains)
    .with_executor_token(config.api.api_token.clone())
}
