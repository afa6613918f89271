//! The bundled executors run in process: a route `local:echo` or
//! `local:fetch` (the `executors` variable) makes the worker call their
//! logic directly — no request between components. That is what a platform
//! without service chaining needs (Fermyon Cloud counts every outbound
//! request against 500 an hour), and the fastest path anywhere. The `echo`
//! and `fetch` components serve the same logic over HTTP.

use crate::outbound::{send, Limits, SendFailure};
use crate::variables::variable;
use spin_work_queue::api::ApiError;
use spin_work_queue::http::{Request, Response};
use wq_executors::echo::echo_plan;
use wq_executors::fetch::{
    fetch_denied, fetch_output, fetch_target, fetch_unreachable, FetchConfig,
    FETCH_TITLE_SCAN_BYTES,
};
use wq_executors::work_budget_ms;

/// The scheme of in-process executor routes.
pub const LOCAL_SCHEME: &str = "local:";

/// Time allowed to one fetch.
const FETCH_TIMEOUT_MS: u64 = 20_000;
/// Most bytes of a page read (the rest is counted, not kept).
const FETCH_MAX_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Answer `req` with the bundled executor its `local:` URL names; `None`
/// for a URL that names none.
pub async fn run_local(req: &Request) -> Option<Response> {
    match req.url.strip_prefix(LOCAL_SCHEME)?.trim_matches('/') {
        "echo" => Some(echo(req)),
        "fetch" => Some(fetch(req).await),
        _ => None,
    }
}

/// `echo`: its input back, after its knobs (`sleep_ms`, `fail_times`,
/// `fail_status`).
pub fn echo(req: &Request) -> Response {
    let plan = echo_plan(req);
    if plan.sleep_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(plan.sleep_ms));
    }
    plan.response
}

/// `fetch`: GET `{"url"}` within the guard, and describe the page.
pub async fn fetch(req: &Request) -> Response {
    let config = match FetchConfig::from_lookup(variable) {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).to_response(),
    };
    let url = match fetch_target(req, &config) {
        Ok(url) => url,
        Err(answer) => return answer,
    };
    let get = Request::new("GET", &url).with_header("accept", "text/html,*/*");
    let limits = Limits {
        deadline_ms: Some(work_budget_ms(req, FETCH_TIMEOUT_MS)),
        keep_bytes: FETCH_TITLE_SCAN_BYTES,
        max_read_bytes: FETCH_MAX_READ_BYTES,
    };
    match send(&get, limits).await {
        Ok(got) => fetch_output(
            got.response.status,
            got.response.header("content-type"),
            got.body_bytes,
            &got.response.body,
        ),
        Err(SendFailure::Denied) => fetch_denied(&url),
        Err(e) => fetch_unreachable(&url, &e.to_string()),
    }
}
