//! The worker component: `POST /worker/drain` dequeues batches straight
//! from the engine on the shared key-value store, POSTs each task to its
//! executor, and acks or fails it.
//!
//! Thin adapter: read the request → [`worker::accept_drain`] → answer a
//! pushed drain with `202` at once → [`worker::run_drain`] with
//! [`SpinExecutor`] (in process for `local:` routes, else Spin's outbound
//! HTTP with one deadline per call; the drain
//! sleeps on the clock for the retries it schedules when they fall due
//! within its budget) → answer a waiting caller with the report; then push
//! the next drain when the library says so.
//!
//! Built with the `hosted` feature, it drains the store-only engine
//! (`HostedWorkQueue`, no `wasi:keyvalue/atomics` or `batch`).

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::{ApiError, MAX_BODY_BYTES_DEFAULT};
use spin_work_queue::worker::{self, WorkerConfig};
#[cfg(feature = "hosted")]
use wq_spin_glue::open_hosted_queue as open_queue;
#[cfg(not(feature = "hosted"))]
use wq_spin_glue::open_queue;
use wq_spin_glue::{drain_settings, push_drain, read_request, respond, variable, SpinExecutor};

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
    let settings = drain_settings(&config);
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
