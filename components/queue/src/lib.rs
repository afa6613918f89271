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
use spin_work_queue::{dispatch, KvWorkQueue};
use wq_spin_glue::{open_queue, push_drain, read_request, respond, variable, WasiKv};

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
