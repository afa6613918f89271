//! The queue component: serves the `/v1` API (and `/healthz`) on Spin's
//! key-value store.
//!
//! Thin adapter: read the request → [`api::handle`] on the engine over
//! `wasi:keyvalue` → send the response; then, when the request added work
//! ([`api::triggers_dispatch`]), POST `worker_url` (push dispatch) after the
//! response has gone out.

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::{self, ApiConfig, MAX_BODY_BYTES_DEFAULT};
use spin_work_queue::http::Request;
use wq_spin_glue::{open_queue, read_request, respond, send, variable, Limits};

/// Time allowed to the push-dispatch request (a whole drain answers it).
const DISPATCH_TIMEOUT_MS: u64 = 600_000;

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
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let queue = match open_queue(&config) {
        Ok(q) => q,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    let response = api::handle(&queue, &config, &request).await;
    let dispatch = api::triggers_dispatch(&request, &response);
    respond(out, &response).await;
    if let (true, Some(url)) = (dispatch, config.worker_url.as_deref()) {
        push_dispatch(url, config.api_token.as_deref()).await;
    }
}

/// Tell the worker there is work: `POST {worker_url}` with `{}`.
async fn push_dispatch(url: &str, token: Option<&str>) {
    let mut drain = Request::json("POST", url, &serde_json::json!({}));
    if let Some(token) = token {
        drain = drain.with_header("authorization", &format!("Bearer {token}"));
    }
    match send(&drain, Limits::within(DISPATCH_TIMEOUT_MS, 64 * 1024)).await {
        Ok(got) if (200..300).contains(&got.response.status) => {}
        Ok(got) => eprintln!(
            "spin-work-queue: push dispatch to {url} answered {}",
            got.response.status
        ),
        Err(e) => eprintln!("spin-work-queue: push dispatch to {url} failed: {e}"),
    }
}
