//! One handler per endpoint: decode the body, call the queue, encode the
//! answer.

use super::body::{decode, json_object, kind, optional_json_object, require};
use super::error::ApiError;
use super::router::Route;
use crate::error::QueueError;
use crate::http::{Request, Response};
use crate::model::{self, Ack, DequeueRequest, NewTask};
use crate::pipeline::PipelineQueue;
use crate::queue::LeasedQueue;
use serde::Deserialize;
use serde_json::{json, Value};

/// Default `limit` of `GET /v1/dead-letter` and `GET /v1/set-aside`.
pub const DEAD_LETTER_LIMIT_DEFAULT: usize = 100;
/// Largest `limit` of `GET /v1/dead-letter` and `GET /v1/set-aside`.
pub const DEAD_LETTER_LIMIT_MAX: usize = model::MAX_LIST_LIMIT;

/// Code of a 422 for a request body that is not a task or a batch.
const INVALID_REQUEST: &str = "invalid_request";
const INVALID_TASK: &str = "invalid_task";
const INVALID_BATCH: &str = "invalid_batch";

/// Run the handler of `route`: its answer, and whether it put work in
/// the queue that is due now.
pub async fn run<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    route: Route,
    req: &Request,
) -> Result<(Response, bool), ApiError> {
    match route {
        Route::Enqueue => enqueue(queue, req).await,
        Route::Redrive(id) => {
            known_id(&id)?;
            let status = queue.redrive(&id).await?;
            Ok((Response::json(200, &json!({ "status": status })), true))
        }
        Route::Rescue => {
            optional_json_object(req)?;
            let report = queue.rescue().await?;
            // `pending` and `due` (additive): what waits, and what a drain
            // would find now — so a cron calling this endpoint also starts
            // work made due elsewhere, and only that.
            let stats = queue.stats().await?;
            let mut body = serde_json::to_value(report).expect("reports serialise");
            body["pending"] = json!(stats.pending);
            body["due"] = json!(stats.due);
            Ok((Response::json(200, &body), stats.due > 0))
        }
        Route::Health => idle(Ok(Response::json(200, &json!({"ok": true})))),
        Route::Dequeue => idle(dequeue(queue, req).await),
        Route::Ack(id) => starts_nodes(ack(queue, &id, req).await, [id.as_str()]),
        Route::Fail(id) => starts_nodes(fail(queue, &id, req).await, [id.as_str()]),
        Route::Heartbeat(id) => idle(heartbeat(queue, &id, req).await),
        Route::AckBatch => {
            let ids = ack_batch_ids(req);
            starts_nodes(ack_batch(queue, req).await, ids.iter().map(String::as_str))
        }
        Route::Task(id) => idle(task(queue, &id).await),
        Route::Results(pipeline_id) => idle(results(queue, &pipeline_id).await),
        Route::SubmitPipeline => super::pipelines::submit(queue, req).await,
        Route::Pipeline(id) => idle(super::pipelines::view(queue, &id).await),
        Route::CancelPipeline(id) => idle(super::pipelines::cancel(queue, &id, req).await),
        Route::Stats => idle(ok(&queue.stats().await?)),
        Route::DeadLetters => idle(dead_letters(queue, req).await),
        Route::SetAside => {
            let limit = limit(req)?;
            idle(ok(&json!({ "entries": queue.set_aside(limit).await? })))
        }
    }
}

/// The answer of a finish of `ids`: work may be due when one of them is
/// a pipeline node (its children may have started).
fn starts_nodes<'a>(
    answer: Result<Response, ApiError>,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(Response, bool), ApiError> {
    let node = ids
        .into_iter()
        .any(|id| crate::pipeline::split_task_id(id).is_some());
    answer.map(|r| {
        let due = node && r.status < 300;
        (r, due)
    })
}

/// The task ids of a batch ack's body (none when it cannot be read).
fn ack_batch_ids(req: &Request) -> Vec<String> {
    serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| {
            v.get("acks").and_then(Value::as_array).map(|acks| {
                acks.iter()
                    .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The answer of a handler that adds no work.
fn idle(answer: Result<Response, ApiError>) -> Result<(Response, bool), ApiError> {
    answer.map(|r| (r, false))
}

fn ok<T: serde::Serialize + ?Sized>(value: &T) -> Result<Response, ApiError> {
    Ok(Response::json(200, value))
}

/// A path id that cannot be a task id names no task: 404.
fn known_id(id: &str) -> Result<(), ApiError> {
    model::validate_task_id(id)
        .map_err(|_| ApiError::Queue(QueueError::NotFound { id: id.to_string() }))
}

/// Decode one task of an enqueue: required fields (422) and types (400);
/// the contract's rules are the queue's to check.
fn new_task(value: Value, what: &str) -> Result<NewTask, ApiError> {
    let Value::Object(obj) = value else {
        return Err(ApiError::BadRequest(format!(
            "{what} must be an object, got {}",
            kind(&value)
        )));
    };
    require(&obj, &["pipeline_id", "node_name"], INVALID_TASK, what)?;
    decode(obj, what)
}

/// An enqueue's answer; work is due when a task new to the queue has no
/// delay.
async fn enqueue<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    req: &Request,
) -> Result<(Response, bool), ApiError> {
    let mut obj = json_object(req)?;
    let tasks = match obj.remove("tasks") {
        None => vec![new_task(Value::Object(obj), "task")?],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| new_task(v, &format!("tasks[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "tasks must be an array, got {}",
                kind(&other)
            )))
        }
    };
    let undelayed: Vec<bool> = tasks.iter().map(|t| t.delay_ms == 0).collect();
    let outcomes = queue.enqueue_batch(tasks).await?;
    let status = if outcomes.iter().all(|o| o.duplicate) {
        200
    } else {
        201
    };
    let due = outcomes
        .iter()
        .zip(undelayed)
        .any(|(o, undelayed)| undelayed && !o.duplicate);
    Ok((Response::json(status, &json!({ "tasks": outcomes })), due))
}

async fn dequeue<Q: LeasedQueue + ?Sized>(queue: &Q, req: &Request) -> Result<Response, ApiError> {
    let obj = json_object(req)?;
    require(&obj, &["worker_id"], INVALID_REQUEST, "dequeue")?;
    let request: DequeueRequest = decode(obj, "dequeue")?;
    let tasks = queue.dequeue(&request).await?;
    ok(&json!({ "tasks": tasks }))
}

#[derive(Deserialize)]
struct AckBody {
    lease_id: String,
    #[serde(default)]
    output: Value,
}

async fn ack<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    id: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    known_id(id)?;
    let obj = json_object(req)?;
    require(&obj, &["lease_id"], INVALID_REQUEST, "ack")?;
    let body: AckBody = decode(obj, "ack")?;
    let status = queue.ack(id, &body.lease_id, body.output).await?;
    ok(&json!({ "status": status }))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct FailBody {
    lease_id: String,
    error: String,
    #[serde(default = "yes")]
    retryable: bool,
}

async fn fail<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    id: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    known_id(id)?;
    let obj = json_object(req)?;
    require(&obj, &["lease_id", "error"], INVALID_REQUEST, "fail")?;
    let body: FailBody = decode(obj, "fail")?;
    let outcome = queue
        .fail_leased(id, &body.lease_id, &body.error, body.retryable)
        .await?;
    ok(&outcome)
}

#[derive(Deserialize)]
struct HeartbeatBody {
    lease_id: String,
    #[serde(default)]
    lease_ms: Option<u64>,
}

async fn heartbeat<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    id: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    known_id(id)?;
    let obj = json_object(req)?;
    require(&obj, &["lease_id"], INVALID_REQUEST, "heartbeat")?;
    let body: HeartbeatBody = decode(obj, "heartbeat")?;
    let expires_at = queue.heartbeat(id, &body.lease_id, body.lease_ms).await?;
    ok(&json!({ "expires_at": expires_at }))
}

async fn ack_batch<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut obj = json_object(req)?;
    require(&obj, &["acks"], INVALID_BATCH, "ack batch")?;
    let items = match obj.remove("acks") {
        Some(Value::Array(items)) => items,
        other => {
            return Err(ApiError::BadRequest(format!(
                "acks must be an array, got {}",
                kind(&other.unwrap_or(Value::Null))
            )))
        }
    };
    let mut acks = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("acks[{i}]");
        let Value::Object(entry) = item else {
            return Err(ApiError::BadRequest(format!("{what} must be an object")));
        };
        require(&entry, &["id", "lease_id"], INVALID_BATCH, &what)?;
        acks.push(decode::<Ack>(entry, &what)?);
    }
    let ids: Vec<String> = acks.iter().map(|a| a.id.clone()).collect();
    let outcomes = queue.ack_batch(acks).await?;
    let results: Vec<Value> = ids
        .into_iter()
        .zip(outcomes)
        .map(|(id, outcome)| match outcome {
            Ok(status) => json!({ "id": id, "ok": true, "status": status }),
            Err(e) => json!({ "id": id, "ok": false, "error": ApiError::from(e).to_json() }),
        })
        .collect();
    ok(&json!({ "results": results }))
}

async fn task<Q: LeasedQueue + ?Sized>(queue: &Q, id: &str) -> Result<Response, ApiError> {
    known_id(id)?;
    match queue.task(id).await? {
        Some(info) => ok(&info),
        None => Err(QueueError::NotFound { id: id.to_string() }.into()),
    }
}

async fn results<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    pipeline_id: &str,
) -> Result<Response, ApiError> {
    let results: Vec<Value> = queue
        .results(pipeline_id)
        .await?
        .into_iter()
        .map(|(node_name, output)| json!({ "node_name": node_name, "output": output }))
        .collect();
    ok(&json!({ "results": results }))
}

async fn dead_letters<Q: LeasedQueue + ?Sized>(
    queue: &Q,
    req: &Request,
) -> Result<Response, ApiError> {
    let limit = limit(req)?;
    ok(&json!({ "tasks": queue.dead_letters(limit).await? }))
}

/// The `limit` query parameter of a listing (its range is the queue's to
/// check).
fn limit(req: &Request) -> Result<usize, ApiError> {
    match req.query_param("limit") {
        None => Ok(DEAD_LETTER_LIMIT_DEFAULT),
        Some(raw) => raw
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("limit must be a number, got {raw:?}"))),
    }
}
