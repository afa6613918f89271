//! The bundled executors' logic, independent of Spin, so that it is tested
//! natively: [`echo`] answers with its input (with knobs for delays and
//! failures), [`fetch`] reports what a `GET` of a public URL returned. The
//! `echo` and `fetch` components are thin adapters over these functions.

#![deny(missing_docs)]

pub mod echo;
pub mod fetch;

use spin_work_queue::api::authorize;
use spin_work_queue::config::Vars;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::HEADER_TIMEOUT_MS;

/// Who may call an executor: with the app's `api_token` set, only requests
/// that carry it — the worker sends it to the app's own executors. Where
/// the platform has service chaining the executors are private routes as
/// well, so nothing outside the app reaches them at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorAuth {
    /// The app's bearer token; `None`: no token configured.
    pub api_token: Option<String>,
}

impl ExecutorAuth {
    /// Read `api_token` through `var` (a Spin variable lookup).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            api_token: Vars::new(var).text("api_token"),
        }
    }

    /// `Ok` when `req` may be executed, else the `401` to answer.
    ///
    /// ```
    /// use spin_work_queue::http::Request;
    /// use wq_executors::ExecutorAuth;
    /// let auth = ExecutorAuth { api_token: Some("t".into()) };
    /// assert_eq!(auth.check(&Request::new("POST", "/")).unwrap_err().status, 401);
    /// let signed = Request::new("POST", "/").with_header("authorization", "Bearer t");
    /// assert!(auth.check(&signed).is_ok());
    /// assert!(ExecutorAuth::default().check(&Request::new("POST", "/")).is_ok());
    /// ```
    pub fn check(&self, req: &Request) -> Result<(), Response> {
        authorize(req, self.api_token.as_deref()).map_err(|e| e.to_response())
    }
}

/// Time an executor keeps for sending its answer back after its own work
/// stops.
pub const ANSWER_MARGIN_MS: u64 = 500;

/// How long an executor may work on `req`: the worker's deadline
/// (`x-wq-timeout-ms`) minus [`ANSWER_MARGIN_MS`], at most `own_max` — so
/// that it has stopped when the worker gives up on the call, and a retry
/// never runs while this attempt still does.
///
/// ```
/// use spin_work_queue::http::Request;
/// use wq_executors::work_budget_ms;
/// let call = Request::new("POST", "/").with_header("x-wq-timeout-ms", "2000");
/// assert_eq!(work_budget_ms(&call, 20_000), 1_500);
/// assert_eq!(work_budget_ms(&call, 1_000), 1_000);
/// assert_eq!(work_budget_ms(&Request::new("POST", "/"), 20_000), 20_000);
/// ```
pub fn work_budget_ms(req: &Request, own_max: u64) -> u64 {
    req.header(HEADER_TIMEOUT_MS)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(own_max, |ms| {
            ms.saturating_sub(ANSWER_MARGIN_MS).min(own_max)
        })
}

/// An error answer `{"error":{"code","message"}}`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}
