//! Example executor: input `{"url"}` → `GET` it → output
//! `{status, content_type, bytes, title}` (see
//! [`wq_executors::fetch::fetch_output`]). A target that cannot be
//! reached is a 502 (retryable); a host outside `allowed_outbound_hosts`, or
//! a private address while `fetch_private_hosts` is `deny`, a 403.

#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_work_queue::api::ApiError;
use spin_work_queue::http::Request;
use wq_executors::fetch::{
    fetch_denied, fetch_output, fetch_target, fetch_unreachable, FetchConfig,
    FETCH_TITLE_SCAN_BYTES,
};
use wq_executors::{work_budget_ms, ExecutorAuth};
use wq_spin_glue::{read_request, respond, send, variable, Limits, SendFailure};

/// Largest input accepted.
const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Longest fetch: connecting, the target's answer and its body (shorter
/// when the worker's deadline is nearer).
const FETCH_TIMEOUT_MS: u64 = 20_000;
/// Most body bytes read (and counted in `bytes`).
const FETCH_MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let request = match read_request(req, MAX_INPUT_BYTES).await {
        Ok(r) => r,
        Err(e) => return respond(out, &e.to_response()).await,
    };
    if let Err(refused) = ExecutorAuth::from_lookup(variable).check(&request) {
        return respond(out, &refused).await;
    }
    let config = match FetchConfig::from_lookup(variable) {
        Ok(c) => c,
        Err(e) => return respond(out, &ApiError::from(e).to_response()).await,
    };
    let url = match fetch_target(&request, &config) {
        Ok(url) => url,
        Err(answer) => return respond(out, &answer).await,
    };
    let get = Request::new("GET", &url).with_header("accept", "text/html,*/*");
    let limits = Limits {
        deadline_ms: Some(work_budget_ms(&request, FETCH_TIMEOUT_MS)),
        keep_bytes: FETCH_TITLE_SCAN_BYTES,
        max_read_bytes: FETCH_MAX_READ_BYTES,
    };
    let answer = match send(&get, limits).await {
        Ok(got) => fetch_output(
            got.response.status,
            got.response.header("content-type"),
            got.body_bytes,
            &got.response.body,
        ),
        Err(SendFailure::Denied) => fetch_denied(&url),
        Err(e) => fetch_unreachable(&url, &e.to_string()),
    };
    respond(out, &answer).await;
}
