//! `POST /worker/drain` as plain requests and responses: [`accept_drain`]
//! checks the request, [`run_drain`] drains through the gate and says
//! which drain to push next; [`handle_drain`] does both, for a caller that
//! waits for the report.
//!
//! A drain pushed by the queue (`{"background": true, "ticket": …}`) is
//! answered `202` before it runs ([`accepted`]); the caller only waits for
//! that. When a drain ends it releases its place at the gate, then hands
//! over — pushes the next drain, admitted first — when it stopped on its
//! budget or `max_tasks`, or when work became due while it was ending.

use super::drain::{drain_admitted, DrainReport, DrainRequest, Drained};
use super::executor::Executor;
use super::settings::DrainSettings;
use crate::api::{authorize, check_body, decode, optional_json_object, ApiError};
use crate::dispatch::{admit_for_push, DrainQueue, Ticket};
use crate::error::QueueError;
use crate::http::{Request, Response};

/// The last path segment of the drain route.
pub const DRAIN_SEGMENT: &str = "drain";

/// A drain request that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainCall {
    /// Its parameters.
    pub params: DrainRequest,
    /// Its path, where the next drain is pushed.
    pub path: String,
}

/// The answer to a drain request, and the drain to push next (after the
/// answer) when work remains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOutcome {
    /// The report (`200`), or why the drain stopped (`500`, with the
    /// partial counts).
    pub response: Response,
    /// The next drain, admitted already.
    pub follow_up: Option<FollowUp>,
}

/// A drain to push: the request, and the ticket to give back when the push
/// is not accepted ([`crate::dispatch::pushed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// `POST` of the same drain, in the background, with its ticket (and
    /// the bearer token when one is configured).
    pub request: Request,
    /// Its place at the gate.
    pub ticket: Ticket,
}

/// The `202` a background drain is answered with before it runs.
pub fn accepted() -> Response {
    Response::json(202, &serde_json::json!({ "accepted": true }))
}

/// Check a request to the worker component: `POST …/drain` (auth as for
/// `/v1` when a token is configured); any other path is a 404, another
/// method a 405, bad parameters a 400 or 422.
pub fn accept_drain(
    req: &Request,
    api_token: Option<&str>,
    max_body_bytes: usize,
) -> Result<DrainCall, Response> {
    accept(req, api_token, max_body_bytes).map_err(|e| e.to_response())
}

fn accept(
    req: &Request,
    api_token: Option<&str>,
    max_body_bytes: usize,
) -> Result<DrainCall, ApiError> {
    let path = req.path();
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if last != DRAIN_SEGMENT {
        return Err(ApiError::NoRoute(path.to_string()));
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
    Ok(DrainCall {
        params,
        path: path.to_string(),
    })
}

/// Run an accepted drain through the gate: under the ticket it was pushed
/// with, or one it is admitted for now (else it drains nothing and reports
/// `busy`).
pub async fn run_drain<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    api_token: Option<&str>,
    call: &DrainCall,
) -> DrainOutcome
where
    Q: DrainQueue + ?Sized,
    E: Executor + ?Sized,
{
    match try_run(queue, executor, settings, api_token, call).await {
        Ok(outcome) => outcome,
        Err(e) => failed(e, DrainReport::default()),
    }
}

async fn try_run<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    api_token: Option<&str>,
    call: &DrainCall,
) -> Result<DrainOutcome, QueueError>
where
    Q: DrainQueue + ?Sized,
    E: Executor + ?Sized,
{
    let max = settings.max_drains;
    let ticket = match call.params.ticket {
        Some(t) => Some(t),
        None => queue.admit(max).await?,
    };
    let Some(ticket) = ticket else {
        let busy = DrainReport {
            busy: true,
            ..DrainReport::default()
        };
        return Ok(DrainOutcome {
            response: Response::json(200, &busy),
            follow_up: None,
        });
    };
    let Drained { result, ticket } =
        drain_admitted(queue, executor, settings, &call.params, Some(ticket)).await;
    if let Some(ticket) = ticket {
        queue.release(ticket).await?;
    }
    // Released first, then looked again: work a request added while this
    // drain was ending (and so pushed nothing) is not left waiting. A drain
    // the store stopped (too slow, unavailable) hands over too when work is
    // due, or the tasks it would have taken wait for traffic.
    let (mut outcome, hand_over) = match result {
        Ok(report) => (
            ok(&report),
            report.more || queue.work_due().await? || recovery_pending(queue, settings).await?,
        ),
        Err(e) => {
            let transient = matches!(e.source, QueueError::TooSlow(_) | QueueError::Store(_));
            let due = transient
                && (queue.work_due().await.unwrap_or(false)
                    || recovery_pending(queue, settings).await.unwrap_or(false));
            (failed(e.source, e.partial), due)
        }
    };
    if hand_over {
        outcome.follow_up = admit_for_push(queue, max).await?.map(|ticket| FollowUp {
            request: next_drain(call, ticket, api_token),
            ticket,
        });
    }
    Ok(outcome)
}

/// Whether a recovery a drain waits for is pending (see
/// [`DrainSettings::recovering`]).
async fn recovery_pending<Q: DrainQueue + ?Sized>(
    queue: &Q,
    settings: &DrainSettings,
) -> Result<bool, QueueError> {
    match settings.recovery_ms {
        Some(within) => Ok(queue.recovery_pending(within).await?.is_some()),
        None => Ok(false),
    }
}

fn ok(report: &DrainReport) -> DrainOutcome {
    DrainOutcome {
        response: Response::json(200, report),
        follow_up: None,
    }
}

/// Check and run a drain, for a caller that waits for the report
/// ([`accept_drain`] then [`run_drain`]).
pub async fn handle_drain<Q, E>(
    queue: &Q,
    executor: &E,
    settings: &DrainSettings,
    api_token: Option<&str>,
    max_body_bytes: usize,
    req: &Request,
) -> DrainOutcome
where
    Q: DrainQueue + ?Sized,
    E: Executor + ?Sized,
{
    match accept_drain(req, api_token, max_body_bytes) {
        Ok(call) => run_drain(queue, executor, settings, api_token, &call).await,
        Err(response) => DrainOutcome {
            response,
            follow_up: None,
        },
    }
}

/// A store failure stopped the drain: its status, and the partial counts.
fn failed(source: QueueError, partial: DrainReport) -> DrainOutcome {
    let api = ApiError::from(source);
    let body = serde_json::json!({ "error": api.to_json(), "partial": partial });
    DrainOutcome {
        response: Response::json(api.status(), &body),
        follow_up: None,
    }
}

/// The same drain again, in the background, under `ticket`.
fn next_drain(call: &DrainCall, ticket: Ticket, api_token: Option<&str>) -> Request {
    let params = DrainRequest {
        background: true,
        ticket: Some(ticket),
        ..call.params
    };
    let body = serde_json::to_value(params).unwrap_or_default();
    let next = Request::json("POST", &call.path, &body);
    match api_token {
        Some(token) => next.with_header("authorization", &format!("Bearer {token}")),
        None => next,
    }
}
