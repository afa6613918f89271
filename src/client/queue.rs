//! The port and the extended operations over HTTP.

use super::{ErrorBody, HttpWorkQueue};
use crate::encode::percent_encode;
use crate::error::{QueueError, Result};
use crate::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use crate::port::TaskStatus;
use crate::queue::{LeasedQueue, PortLeases};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Tasks<T> {
    tasks: Vec<T>,
}

#[derive(Deserialize)]
struct Status {
    status: TaskStatus,
}

#[derive(Deserialize)]
struct Expiry {
    expires_at: u64,
}

#[derive(Deserialize)]
struct AckResults {
    results: Vec<AckResult>,
}

#[derive(Deserialize)]
struct AckResult {
    id: String,
    ok: bool,
    #[serde(default)]
    status: Option<TaskStatus>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct NodeResults {
    results: Vec<NodeResult>,
}

#[derive(Deserialize)]
struct NodeResult {
    node_name: String,
    output: Value,
}

/// Attach the task id to errors whose body did not carry it.
fn for_task(e: QueueError, id: &str) -> QueueError {
    match e {
        QueueError::NotFound { id: i } if i.is_empty() => QueueError::NotFound { id: id.into() },
        QueueError::LeaseLost { id: i } if i.is_empty() => QueueError::LeaseLost { id: id.into() },
        QueueError::WrongState {
            id: i,
            state,
            reason,
        } if i.is_empty() => QueueError::WrongState {
            id: id.into(),
            state,
            reason,
        },
        other => other,
    }
}

#[async_trait]
impl LeasedQueue for HttpWorkQueue {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        let r: Tasks<Enqueued> = self.post("/v1/tasks", &json!({ "tasks": tasks })).await?;
        Ok(r.tasks)
    }

    async fn dequeue(&self, req: &DequeueRequest) -> Result<Vec<LeasedTask>> {
        let r: Tasks<LeasedTask> = self.post("/v1/dequeue", req).await?;
        Ok(r.tasks)
    }

    async fn ack(&self, task_id: &str, lease_id: &str, output: Value) -> Result<TaskStatus> {
        let path = format!("/v1/tasks/{}/ack", task_segment(task_id)?);
        let body = json!({ "lease_id": lease_id, "output": output });
        let r: Status = self
            .post(&path, &body)
            .await
            .map_err(|e| for_task(e, task_id))?;
        Ok(r.status)
    }

    async fn ack_batch(&self, acks: Vec<Ack>) -> Result<Vec<Result<TaskStatus>>> {
        let outputs: Vec<Value> = acks.iter().map(|a| a.output.clone()).collect();
        let r: AckResults = self.post("/v1/ack", &json!({ "acks": acks })).await?;
        if r.results.len() != outputs.len() {
            return Err(QueueError::Transport(format!(
                "/v1/ack answered {} results for {} acks",
                r.results.len(),
                outputs.len()
            )));
        }
        Ok(r.results
            .into_iter()
            .zip(outputs)
            .map(|(item, output)| match (item.ok, item.status, item.error) {
                (true, Some(status), _) => Ok(status),
                (true, None, _) => Ok(TaskStatus::Completed { output }),
                (false, _, Some(e)) => Err(e.with_id(&item.id).into_queue_error()),
                (false, _, None) => {
                    Err(QueueError::Transport(format!("ack of {} failed", item.id)))
                }
            })
            .collect())
    }

    async fn fail_leased(
        &self,
        task_id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<FailOutcome> {
        let path = format!("/v1/tasks/{}/fail", task_segment(task_id)?);
        let body = json!({ "lease_id": lease_id, "error": error, "retryable": retryable });
        self.post(&path, &body)
            .await
            .map_err(|e| for_task(e, task_id))
    }

    async fn heartbeat(&self, task_id: &str, lease_id: &str, lease_ms: Option<u64>) -> Result<u64> {
        let path = format!("/v1/tasks/{}/heartbeat", task_segment(task_id)?);
        let mut body = json!({ "lease_id": lease_id });
        if let Some(ms) = lease_ms {
            body["lease_ms"] = json!(ms);
        }
        let r: Expiry = self
            .post(&path, &body)
            .await
            .map_err(|e| for_task(e, task_id))?;
        Ok(r.expires_at)
    }

    async fn task(&self, task_id: &str) -> Result<Option<TaskInfo>> {
        let Ok(id) = task_segment(task_id) else {
            return Ok(None);
        };
        match self.get(&format!("/v1/tasks/{id}")).await {
            Ok(info) => Ok(Some(info)),
            Err(QueueError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        let Some(pipeline) = segment(pipeline_id) else {
            return Ok(Vec::new()); // no pipeline can have that id
        };
        let path = format!("/v1/pipelines/{pipeline}/results");
        let r: NodeResults = self.get(&path).await?;
        Ok(r.results
            .into_iter()
            .map(|r| (r.node_name, r.output))
            .collect())
    }

    async fn stats(&self) -> Result<QueueStats> {
        self.get("/v1/stats").await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        let r: Tasks<DeadLetterEntry> = self.get(&format!("/v1/dead-letter?limit={limit}")).await?;
        Ok(r.tasks)
    }

    async fn redrive(&self, task_id: &str) -> Result<TaskStatus> {
        let path = format!("/v1/dead-letter/{}/redrive", task_segment(task_id)?);
        let r: Status = self
            .post(&path, &json!({}))
            .await
            .map_err(|e| for_task(e, task_id))?;
        Ok(r.status)
    }

    async fn rescue(&self) -> Result<RescueReport> {
        self.post("/v1/maintenance/rescue", &json!({})).await
    }

    async fn set_aside(&self, limit: usize) -> Result<Vec<SetAside>> {
        #[derive(Deserialize)]
        struct Entries {
            entries: Vec<SetAside>,
        }
        let r: Entries = self.get(&format!("/v1/set-aside?limit={limit}")).await?;
        Ok(r.entries)
    }

    fn port_leases(&self) -> &PortLeases {
        &self.leases
    }
}

/// `value` as one percent-encoded URL path segment; `None` for `.`, `..`
/// (which URL libraries resolve to "this" or "the parent" directory, in
/// any spelling) and the empty string: no id can be one of those.
pub(super) fn segment(value: &str) -> Option<String> {
    (!matches!(value, "" | "." | "..")).then(|| percent_encode(value))
}

/// A task id as a path segment; one that cannot be names no task.
fn task_segment(task_id: &str) -> Result<String> {
    segment(task_id).ok_or_else(|| QueueError::NotFound {
        id: task_id.to_string(),
    })
}
