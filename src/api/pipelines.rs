//! The pipeline endpoints: submit, view, cancel.

use super::body::{decode, json_object, kind, optional_json_object, require};
use super::error::ApiError;
use crate::error::QueueError;
use crate::http::{Request, Response};
use crate::pipeline::{NewPipeline, PipelineQueue};
use serde_json::{json, Value};

const INVALID_PIPELINE: &str = "invalid_pipeline";

/// `POST /v1/pipelines`: `201` when new (its roots are due), `200` for the
/// same spec again.
pub(super) async fn submit<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    req: &Request,
) -> Result<(Response, bool), ApiError> {
    let obj = json_object(req)?;
    require(&obj, &["nodes"], INVALID_PIPELINE, "pipeline")?;
    match obj.get("nodes") {
        Some(Value::Array(nodes)) => {
            for (i, node) in nodes.iter().enumerate() {
                let what = format!("nodes[{i}]");
                let Value::Object(n) = node else {
                    return Err(ApiError::BadRequest(format!(
                        "{what} must be an object, got {}",
                        kind(node)
                    )));
                };
                require(n, &["name"], INVALID_PIPELINE, &what)?;
            }
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "nodes must be an array, got {}",
                kind(other)
            )))
        }
        None => {}
    }
    let pipeline: NewPipeline = decode(obj, "pipeline")?;
    let submitted = queue.submit_pipeline(pipeline).await?;
    let status = if submitted.duplicate { 200 } else { 201 };
    Ok((Response::json(status, &submitted), !submitted.duplicate))
}

/// `GET /v1/pipelines/{id}`.
pub(super) async fn view<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    id: &str,
) -> Result<Response, ApiError> {
    match queue.pipeline(id).await? {
        Some(view) => Ok(Response::json(200, &view)),
        None => Err(QueueError::UnknownPipeline { id: id.to_string() }.into()),
    }
}

/// `POST /v1/pipelines/{id}/cancel`.
pub(super) async fn cancel<Q: PipelineQueue + ?Sized>(
    queue: &Q,
    id: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    optional_json_object(req)?;
    let cancelled = queue.cancel_pipeline(id).await?;
    Ok(Response::json(200, &json!(cancelled)))
}
