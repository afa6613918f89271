//! The queue component: serves the `/v1` API (and `/healthz`) on Spin's
//! key-value store.
//!
//! Thin adapter: read the request → [`api::handle`] on the engine over
//! `wasi:keyvalue` → send the response; then, when the request made work
//! due, push a drain to `worker_url` — unless `max_drains` drains are in
//! flight already ([`dispatch::admit_for_push`]). The push waits only for
//! the worker's `202`.

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::{self, ApiConfig, ApiError, MAX_BODY_BYTES_DEFAULT};
#[cfg(not(feature = "hosted"))]
use spin_work_queue::{dispatch, KvWorkQueue};
#[cfg(feature = "hosted")]
use wq_spin_glue::open_hosted_queue as open_queue;
#[cfg(not(feature = "hosted"))]
use wq_spin_glue::{open_queue, push_drain, WasiKv};
use wq_spin_glue::{read_request, respond, variable};

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let config = ApiConfig::from_lookup(variable);
    let limit = config
        .as_ref()
        .map_or(MAX_BODY_BYTES_DEFAULT, |c| c.max_body_bytes);
    let request = match read_request(req, limit).await {
        Ok(r) => r,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return respond(out, &ApiError::from(e).to_response()).await,
    };
    let queue = match open_queue(&config) {
        Ok(q) => q,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let handled = api::handle(&queue, &config, &request).await;
    respond(out, &handled.response).await;
    if handled.work_due {
        dispatch_drain(&queue, &config).await;
    }
}

/// Tell a worker there is work, when the gate admits one more drain.
#[cfg(not(feature = "hosted"))]
async fn dispatch_drain(queue: &KvWorkQueue<WasiKv>, config: &ApiConfig) {
    let Some(url) = config.dispatch.worker_url.as_deref() else {
        return;
    };
    let ticket = match dispatch::admit_for_push(queue, config.dispatch.max_drains).await {
        Ok(Some(ticket)) => ticket,
        Ok(None) => return, // enough drains in flight
        Err(e) => return eprintln!("spin-work-queue: drain gate: {e}"),
    };
    let push = dispatch::push_request(url, ticket, config.api_token.as_deref());
    push_drain(queue, &push, ticket, "push dispatch").await;
}

/// Time a drain run after an enqueue's answer may take new batches (the
/// platforms end a handler after 30 s).
#[cfg(feature = "hosted")]
const INLINE_BUDGET_MS: u64 = 15_000;

/// Hosted builds drain in this request, after its answer (unless
/// `worker_url` is empty, which disables dispatch): no request to a
/// worker (Fermyon Cloud counts each against 500 an hour), executors in
/// process for `local:` routes. A drain that stops on its budget with work
/// left pushes the next one to the worker route.
#[cfg(feature = "hosted")]
async fn dispatch_drain<Q: spin_work_queue::DrainQueue>(queue: &Q, config: &ApiConfig) {
    use spin_work_queue::worker::{self, DrainCall, DrainRequest, WorkerConfig};
    // An empty `worker_url` disables dispatch, the inline drain included.
    let Some(path) = config.dispatch.worker_url.clone() else {
        return;
    };
    let worker_config = match WorkerConfig::from_lookup(variable) {
        Ok(c) => c,
        Err(e) => return eprintln!("spin-work-queue: inline drain: {e}"),
    };
    let settings = wq_spin_glue::drain_settings(&worker_config);
    let call = DrainCall {
        params: DrainRequest {
            budget_ms: INLINE_BUDGET_MS,
            ..DrainRequest::default()
        },
        path,
    };
    let executor = wq_spin_glue::SpinExecutor {
        max_output_bytes: config.max_body_bytes,
    };
    let token = config.api_token.as_deref();
    let outcome = worker::run_drain(queue, &executor, &settings, token, &call).await;
    println!(
        "spin-work-queue: inline drain {}: {}",
        settings.worker_id,
        String::from_utf8_lossy(&outcome.response.body)
    );
    if let Some(next) = outcome.follow_up {
        wq_spin_glue::push_drain(queue, &next.request, next.ticket, "next drain").await;
    }
}
