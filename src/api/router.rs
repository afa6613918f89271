//! Routing: from method and path to a [`Route`], or a 404 / 405.

use super::error::ApiError;
use crate::http::percent_decode;

/// Every endpoint of the API, with its path parameters (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Health,
    /// `POST /v1/tasks`
    Enqueue,
    /// `POST /v1/dequeue`
    Dequeue,
    /// `POST /v1/tasks/{id}/ack`
    Ack(String),
    /// `POST /v1/tasks/{id}/fail`
    Fail(String),
    /// `POST /v1/tasks/{id}/heartbeat`
    Heartbeat(String),
    /// `POST /v1/ack`
    AckBatch,
    /// `GET /v1/tasks/{id}`
    Task(String),
    /// `GET /v1/pipelines/{pipeline_id}/results`
    Results(String),
    /// `POST /v1/pipelines`
    SubmitPipeline,
    /// `GET /v1/pipelines/{pipeline_id}`
    Pipeline(String),
    /// `POST /v1/pipelines/{pipeline_id}/cancel`
    CancelPipeline(String),
    /// `GET /v1/stats`
    Stats,
    /// `GET /v1/dead-letter`
    DeadLetters,
    /// `POST /v1/dead-letter/{id}/redrive`
    Redrive(String),
    /// `POST /v1/maintenance/rescue`
    Rescue,
    /// `GET /v1/set-aside`
    SetAside,
}

impl Route {
    /// The one method the route accepts.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Health
            | Self::Task(_)
            | Self::Results(_)
            | Self::Pipeline(_)
            | Self::Stats
            | Self::DeadLetters
            | Self::SetAside => "GET",
            _ => "POST",
        }
    }

    /// True for the routes under `/v1` (which need the bearer token).
    pub fn needs_auth(&self) -> bool {
        !matches!(self, Self::Health)
    }
}

/// Find the route for `method` and `path` (raw, not decoded).
///
/// A path that matches no route is a 404; a known path with another method
/// is a 405 naming the allowed method. `HEAD` is accepted where `GET` is.
///
/// ```
/// use spin_work_queue::api::{route, Route};
/// assert_eq!(route("POST", "/v1/tasks/t1/ack").unwrap(), Route::Ack("t1".into()));
/// assert_eq!(route("GET", "/v1/dequeue").unwrap_err().status(), 405);
/// assert_eq!(route("GET", "/v2/stats").unwrap_err().status(), 404);
/// ```
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let found = match_path(path)?.ok_or_else(|| ApiError::NoRoute(path.to_string()))?;
    let allowed = found.method();
    let method_ok = method.eq_ignore_ascii_case(allowed)
        || (allowed == "GET" && method.eq_ignore_ascii_case("HEAD"));
    if method_ok {
        Ok(found)
    } else {
        Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow: allowed,
        })
    }
}

/// The route whose path matches, regardless of method; a 404 when a path
/// parameter cannot be decoded.
fn match_path(path: &str) -> Result<Option<Route>, ApiError> {
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let param = |raw: &str| {
        percent_decode(raw)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::NoRoute(path.to_string()))
    };
    let route = match segments.as_slice() {
        ["healthz"] => Route::Health,
        ["v1", "tasks"] => Route::Enqueue,
        ["v1", "dequeue"] => Route::Dequeue,
        ["v1", "ack"] => Route::AckBatch,
        ["v1", "stats"] => Route::Stats,
        ["v1", "dead-letter"] => Route::DeadLetters,
        ["v1", "maintenance", "rescue"] => Route::Rescue,
        ["v1", "set-aside"] => Route::SetAside,
        ["v1", "tasks", id] => Route::Task(param(id)?),
        ["v1", "tasks", id, "ack"] => Route::Ack(param(id)?),
        ["v1", "tasks", id, "fail"] => Route::Fail(param(id)?),
        ["v1", "tasks", id, "heartbeat"] => Route::Heartbeat(param(id)?),
        ["v1", "pipelines"] => Route::SubmitPipeline,
        ["v1", "pipelines", pid] => Route::Pipeline(param(pid)?),
        ["v1", "pipelines", pid, "results"] => Route::Results(param(pid)?),
        ["v1", "pipelines", pid, "cancel"] => Route::CancelPipeline(param(pid)?),
        ["v1", "dead-letter", id, "redrive"] => Route::Redrive(param(id)?),
        _ => return Ok(None),
    };
    Ok(Some(route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_routes() {
        let cases = [
            ("GET", "/healthz", Route::Health),
            ("POST", "/v1/tasks", Route::Enqueue),
            ("POST", "/v1/dequeue", Route::Dequeue),
            ("POST", "/v1/tasks/a/ack", Route::Ack("a".into())),
            ("POST", "/v1/tasks/a/fail", Route::Fail("a".into())),
            (
                "POST",
                "/v1/tasks/a/heartbeat",
                Route::Heartbeat("a".into()),
            ),
            ("POST", "/v1/ack", Route::AckBatch),
            ("GET", "/v1/tasks/a", Route::Task("a".into())),
            (
                "GET",
                "/v1/pipelines/p%2F1/results",
                Route::Results("p/1".into()),
            ),
            ("POST", "/v1/pipelines", Route::SubmitPipeline),
            ("GET", "/v1/pipelines/p%2F1", Route::Pipeline("p/1".into())),
            (
                "POST",
                "/v1/pipelines/p/cancel",
                Route::CancelPipeline("p".into()),
            ),
            ("GET", "/v1/stats", Route::Stats),
            ("GET", "/v1/dead-letter", Route::DeadLetters),
            (
                "POST",
                "/v1/dead-letter/a/redrive",
                Route::Redrive("a".into()),
            ),
            ("POST", "/v1/maintenance/rescue", Route::Rescue),
            ("GET", "/v1/set-aside", Route::SetAside),
            ("HEAD", "/v1/stats/", Route::Stats),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(method, path).unwrap(), want, "{method} {path}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "/",
            "/v1",
            "/v1/tasks/a/b",
            "/v1/tasks//ack",
            "/v1/pipelines/%zz/results",
        ] {
            assert_eq!(route("GET", path).unwrap_err().status(), 404, "{path}");
        }
        let err = route("DELETE", "/v1/tasks/a").unwrap_err();
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                method: "DELETE".into(),
                allow: "GET"
            }
        );
    }
}
