//! Pipelines over HTTP (`/v1/pipelines`).

use super::queue::segment;
use super::HttpWorkQueue;
use crate::error::{QueueError, Result};
use crate::pipeline::{Cancelled, NewPipeline, PipelineQueue, PipelineView, Submitted};
use async_trait::async_trait;
use serde_json::json;

/// A `not_found` answer about pipeline `id`.
fn unknown(e: QueueError, id: &str) -> QueueError {
    match e {
        QueueError::NotFound { .. } => QueueError::UnknownPipeline { id: id.to_string() },
        QueueError::PipelineConflict { .. } => QueueError::PipelineConflict { id: id.to_string() },
        other => other,
    }
}

#[async_trait]
impl PipelineQueue for HttpWorkQueue {
    async fn submit_pipeline(&self, pipeline: NewPipeline) -> Result<Submitted> {
        let id = pipeline.id.clone().unwrap_or_default();
        self.post("/v1/pipelines", &pipeline)
            .await
            .map_err(|e| unknown(e, &id))
    }

    async fn pipeline(&self, id: &str) -> Result<Option<PipelineView>> {
        let Some(seg) = segment(id) else {
            return Ok(None);
        };
        match self.get(&format!("/v1/pipelines/{seg}")).await {
            Ok(view) => Ok(Some(view)),
            Err(QueueError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn cancel_pipeline(&self, id: &str) -> Result<Cancelled> {
        let seg = segment(id).ok_or_else(|| QueueError::UnknownPipeline { id: id.to_string() })?;
        self.post(&format!("/v1/pipelines/{seg}/cancel"), &json!({}))
            .await
            .map_err(|e| unknown(e, id))
    }
}
