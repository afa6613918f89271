//! `POST /worker/drain` as a plain request → response function, with the
//! follow-up drain request the component sends when work remains.

use super::drain::{drain, DrainRequest, DrainSettings};
use super::executor::Executor;
use crate::api::{authorize, check_body, decode, optional_json_object, ApiError};
use crate::http::{Request, Response};
use crate::queue::LeasedQueue;

/// The last path segment of the drain route.
pub const DRAIN_SEGMENT: &str = "drain";

/// The answer to a drain request, and the request that continues the drain
/// when work remains (to send after the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOutcome {
    /// The HTTP answer.
    pub response: Response,
    /// `POST` to the same path with the same parameters (and the bearer
    /// token when one is configured), when the drain stopped with work left.
    pub follow_up: Option<Request>,
}

/// Answer a request to the worker component.
///
/// `POST …/drain` drains (auth as for `/v1` when a token is configured);
/// any other path is a 404, another method a 405. Store failures are a 500
/// whose body also carries the partial counts.
pub async fn handle_drain<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    api_token: Option<&str>,
    max_body_bytes: usize,
    req: &Request,
) -> DrainOutcome
where
    Q: LeasedQueue + ?Sized,
    E: Executor + ?Sized,
{
    match try_drain(queue, executor, settings, api_token, max_body_bytes, req).await {
        Ok(outcome) => outcome,
        Err(e) => DrainOutcome {
            response: e.to_response(),
            follow_up: None,
        },
    }
}

async fn try_drain<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    api_token: Option<&str>,
    max_body_bytes: usize,
    req: &Request,
) -> Result<DrainOutcome, ApiError>
where
    Q: LeasedQueue + ?Sized,
    E: Executor + ?Sized,
{
    let last = req
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    if last != DRAIN_SEGMENT {
        return Err(ApiError::NoRoute(req.path().to_string()));
    }
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(ApiError::MethodNotAllowed {
            method: req.method.clone(),
            allow: "POST",
        });
    }
    authorize(req, api_token)?;
    check_body(req, max_body_bytes)?;
    let params: DrainRequest = decode(optional_json_object(req)?, "drain")?;
    params
        .validate()
        .map_err(|m| ApiError::unprocessable("invalid_request", m))?;
    match drain(queue, executor, settings, &params).await {
        Ok(report) => {
            let follow_up = report.more.then(|| follow_up(req, &params, api_token));
            Ok(DrainOutcome {
                response: Response::json(200, &report),
                follow_up,
            })
        }
        Err(e) => {
            let api = ApiError::from(e.source.clone());
            let body = serde_json::json!({ "error": api.to_json(), "partial": e.partial });
            Ok(DrainOutcome {
                response: Response::json(api.status(), &body),
                follow_up: None,
            })
        }
    }
}

fn follow_up(req: &Request, params: &DrainRequest, api_token: Option<&str>) -> Request {
    let body = serde_json::to_value(params).unwrap_or_default();
    let next = Request::json("POST", req.path(), &body);
    match api_token {
        Some(token) => next.with_header("authorization", &format!("Bearer {token}")),
        None => next,
    }
}
