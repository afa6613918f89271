//! The worker component: `POST /worker/drain` dequeues batches straight
//! from the engine on the shared key-value store, POSTs each task to its
//! executor, and acks or fails it.
//!
//! Thin adapter: read the request → [`worker::handle_drain`] with
//! [`SpinExecutor`] (Spin's outbound HTTP; the drain sleeps on the clock for
//! the retries it schedules when they fall due within its budget) → send the response;
//! then, when work remains, POST the same drain again (after the response
//! is out).

#![cfg(target_arch = "wasm32")]

use async_trait::async_trait;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::MAX_BODY_BYTES_DEFAULT;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::{self, DrainSettings, Executor, ExecutorReply, WorkerConfig};
use spin_work_queue::SystemClock;
use std::sync::Arc;
use wq_spin_glue::{open_queue, read_request, respond, send, variable, Limits, SendFailure};

/// Time allowed to the follow-up drain request.
const FOLLOW_UP_TIMEOUT_MS: u64 = 600_000;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let config = WorkerConfig::from_lookup(variable);
    let limit = config
        .as_ref()
        .map_or(MAX_BODY_BYTES_DEFAULT, |c| c.api.max_body_bytes);
    let request = match read_request(req, limit).await {
        Ok(r) => r,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let queue = match open_queue(&config.api) {
        Ok(q) => q,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let settings = DrainSettings::new(
        format!("worker-{}", ulid::Ulid::generate()),
        config.routes.clone(),
        config.executor_timeout_ms,
        config.api.default_lease_ms,
        Arc::new(SystemClock),
    )
    .awaiting_retries(config.api.maintenance_period_ms);
    let executor = SpinExecutor {
        max_output_bytes: config.api.max_body_bytes,
    };
    let token = config.api.api_token.as_deref();
    let outcome = worker::handle_drain(&queue, &executor, &settings, token, limit, &request).await;
    respond(out, &outcome.response).await;
    if let Some(next) = outcome.follow_up {
        match send(&next, Limits::within(FOLLOW_UP_TIMEOUT_MS, 64 * 1024)).await {
            Ok(got) if (200..300).contains(&got.response.status) => {}
            Ok(got) => eprintln!(
                "spin-work-queue: follow-up drain answered {}",
                got.response.status
            ),
            Err(e) => eprintln!("spin-work-queue: follow-up drain failed: {e}"),
        }
    }
}

/// Executes nodes with Spin's outbound HTTP.
struct SpinExecutor {
    /// Largest output kept; a bigger answer fails the task for good.
    max_output_bytes: usize,
}

#[async_trait(?Send)]
impl Executor for SpinExecutor {
    async fn call(&self, req: Request, timeout_ms: u64) -> ExecutorReply {
        let limits = Limits {
            deadline_ms: Some(timeout_ms),
            keep_bytes: self.max_output_bytes,
            max_read_bytes: self.max_output_bytes as u64 + 1,
        };
        match send(&req, limits).await {
            Ok(got) if got.body_bytes > self.max_output_bytes as u64 => {
                // Not retryable: the same node would answer the same way.
                let too_large = format!("output larger than {} bytes", self.max_output_bytes);
                ExecutorReply::Answered(Response {
                    status: 413,
                    headers: Vec::new(),
                    body: too_large.into_bytes(),
                })
            }
            Ok(got) => ExecutorReply::Answered(got.response),
            Err(SendFailure::Timeout) => ExecutorReply::Timeout,
            Err(e) => ExecutorReply::Unreachable(e.to_string()),
        }
    }
}
