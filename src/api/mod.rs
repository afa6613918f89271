//! The HTTP API (`docs/api.md`, `openapi.yaml`) independent of Spin: a plain
//! [`Request`] goes in, an [`Response`] comes out, for any
//! [`PipelineQueue`].
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
//! let handled = handle(&queue, &ApiConfig::default(), &Request::new("GET", "/healthz")).await;
//! assert!(!handled.work_due);
//! let resp = handled.response;
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
mod pipelines;
mod router;

pub use auth::{authorize, constant_time_eq};
pub use body::is_json_content_type;
pub use config::{
    ApiConfig, DispatchConfig, DEFAULT_LEASE_MS_DEFAULT, DEFAULT_MAX_ATTEMPTS_DEFAULT,
    KEY_PREFIX_DEFAULT, MAX_BODY_BYTES_DEFAULT, MAX_DRAINS_DEFAULT, MAX_DRAINS_LIMIT,
    MIN_BODY_BYTES, WORKER_URL_DEFAULT,
};
pub use error::{queue_status, ApiError};
pub use handlers::{DEAD_LETTER_LIMIT_DEFAULT, DEAD_LETTER_LIMIT_MAX};
pub use router::{route, Route};

pub(crate) use body::{check_body, decode, optional_json_object};

use crate::http::{Request, Response};
use crate::pipeline::PipelineQueue;

/// The answer to a request, and whether the request put work in the
/// queue that a dequeue would deliver now (push dispatch tells a worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The HTTP answer.
    pub response: Response,
    /// An enqueue that added a task without delay, a redrive, or a rescue
    /// after which tasks are due.
    pub work_due: bool,
}

/// Answer one request. Never panics: every failure is an error response
/// `{"error":{"code","message"}}`.
pub async fn handle<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    config: &ApiConfig,
    req: &Request,
) -> Handled {
    let (mut response, work_due) = match try_handle(queue, config, req).await {
        Ok(answer) => answer,
        Err(e) => (e.to_response(), false),
    };
    if req.method.eq_ignore_ascii_case("HEAD") {
        response.body.clear();
    }
    Handled { response, work_due }
}

async fn try_handle<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    config: &ApiConfig,
    req: &Request,
) -> Result<(Response, bool), ApiError> {
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
