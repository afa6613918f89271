//! The worker component: `POST /worker/drain` dequeues batches straight
//! from the engine on the shared key-value store, POSTs each task to its
//! executor, and acks or fails it.
//!
//! Thin adapter: read the request → [`worker::accept_drain`] → answer a
//! pushed drain with `202` at once → [`worker::run_drain`] with
//! [`SpinExecutor`] (Spin's outbound HTTP, one deadline per call; the drain
//! sleeps on the clock for the retries it schedules when they fall due
//! within its budget) → answer a waiting caller with the report; then push
//! the next drain when the library says so.

#![cfg(target_arch = "wasm32")]

use async_trait::async_trait;
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::{ApiError, MAX_BODY_BYTES_DEFAULT};
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::{self, DrainSettings, Executor, ExecutorReply, WorkerConfig};
use spin_work_queue::SystemClock;
use std::sync::Arc;
use wq_spin_glue::{
    open_queue, push_drain, read_request, respond, send, variable, Limits, SendFailure,
};

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
        Err(e) => return respond(out, &ApiError::from(e).to_response()).await,
    };
    let queue = match open_queue(&config.api) {
        Ok(q) => q,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let settings = DrainSettings::new(
        format!("worker-{}", ulid::Ulid::generate()),
        config.routes.clone(),
        config.executor_timeout_ms,
        config.api.queue.default_lease_ms,
        Arc::new(SystemClock),
    )
    .awaiting_retries(config.api.queue.maintenance_period_ms)
    .recovering(
        &config.api.queue.timing(),
        config.api.queue.maintenance_period_ms,
    )
    .with_max_drains(config.api.dispatch.max_drains)
    .with_executor_token(config.api.api_token.clone());
    let executor = SpinExecutor {
        max_output_bytes: config.api.max_body_bytes,
    };
    let token = config.api.api_token.as_deref();
    let call = match worker::accept_drain(&request, token, limit) {
        Ok(call) => call,
        Err(refused) => return respond(out, &refused).await,
    };
    // A pushed drain is answered at once; the pusher waits for nothing else.
    let background = call.params.background;
    let out = match background {
        true => {
            respond(out, &worker::accepted()).await;
            None
        }
        false => Some(out),
    };
    let outcome = worker::run_drain(&queue, &executor, &settings, token, &call).await;
    println!(
        "spin-work-queue: drain {}: {}",
        settings.worker_id,
        String::from_utf8_lossy(&outcome.response.body)
    );
    match out {
        Some(out) => respond(out, &outcome.response).await,
        None if outcome.response.status >= 300 => eprintln!(
            "spin-work-queue: background drain: {}",
            String::from_utf8_lossy(&outcome.response.body)
        ),
        None => {}
    }
    if let Some(next) = outcome.follow_up {
        push_drain(&queue, &next.request, next.ticket, "next drain").await;
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
