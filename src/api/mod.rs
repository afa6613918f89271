//! The HTTP API (`docs/api.md`, `openapi.yaml`) independent of Spin: a plain
//! [`Request`] goes in, an [`Response`] comes out, for any
//! [`LeasedQueue`].
//!
//! The queue component converts Spin's request into an [`Request`],
//! calls [`handle`] and converts the answer back; everything else — routing,
//! auth, body limits, JSON, validation, status codes — happens here, so it
//! is tested natively.
//!
//! ```
//! use spin_work_queue::api::{handle, ApiConfig};
//! use spin_work_queue::http::Request;
//! # use spin_work_queue::LocalWorkQueue;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let queue = LocalWorkQueue::new();
//! let resp = handle(&queue, &ApiConfig::default(), &Request::new("GET", "/healthz")).await;
//! assert_eq!(resp.status, 200);
//! # });
//! ```
//!
//! Order of the checks: auth for `/v1` paths (401), routing (404, 405),
//! body size (413), content type (415), JSON (400), rules (422), then the
//! queue's own answer (404, 409, 500).

mod auth;
mod body;
mod config;
mod error;
mod handlers;
mod router;

pub use auth::{authorize, constant_time_eq};
pub use body::is_json_content_type;
pub use config::{
    ApiConfig, DEFAULT_LEASE_MS_DEFAULT, DEFAULT_MAX_ATTEMPTS_DEFAULT, KEY_PREFIX_DEFAULT,
    MAX_BODY_BYTES_DEFAULT, MIN_BODY_BYTES, WORKER_URL_DEFAULT,
};
pub use error::{queue_status, ApiError};
pub use handlers::{DEAD_LETTER_LIMIT_DEFAULT, DEAD_LETTER_LIMIT_MAX};
pub use router::{route, Route};

pub(crate) use body::{check_body, decode, optional_json_object};
pub(crate) use config::parse_or;

use crate::http::{Request, Response};
use crate::queue::LeasedQueue;

/// Answer one request. Never panics: every failure is an error response
/// `{"error":{"code","message"}}`.
pub async fn handle<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    config: &ApiConfig,
    req: &Request,
) -> Response {
    let mut resp = match try_handle(queue, config, req).await {
        Ok(resp) => resp,
        Err(e) => e.to_response(),
    };
    if req.method.eq_ignore_ascii_case("HEAD") {
        resp.body.clear();
    }
    resp
}

async fn try_handle<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    config: &ApiConfig,
    req: &Request,
) -> Result<Response, ApiError> {
    if is_v1(req.path()) {
        authorize(req, config.api_token.as_deref())?;
    }
    let route = route(&req.method, req.path())?;
    check_body(req, config.max_body_bytes)?;
    handlers::run(queue, route, req).await
}

fn is_v1(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// True when answering `req` with `resp` put work in the queue that a
/// worker should be told about (push dispatch): an enqueue that added at
/// least one task (201), a redrive, or a rescue that re-queued or promoted
/// tasks.
///
/// ```
/// use spin_work_queue::api::triggers_dispatch;
/// use spin_work_queue::http::{Request, Response};
/// let req = Request::new("POST", "/v1/tasks");
/// assert!(triggers_dispatch(&req, &Response::json(201, &serde_json::json!({}))));
/// assert!(!triggers_dispatch(&req, &Response::json(200, &serde_json::json!({}))));
/// ```
pub fn triggers_dispatch(req: &Request, resp: &Response) -> bool {
    match route(&req.method, req.path()) {
        Ok(Route::Enqueue) => resp.status == 201,
        Ok(Route::Redrive(_)) => resp.status == 200,
        Ok(Route::Rescue) if resp.status == 200 => {
            let report = resp.json_body();
            let count = |k: &str| report.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            count("rescued") + count("promoted") + count("pending") > 0
        }
        _ => false,
    }
}
