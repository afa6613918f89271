//! Shared fixture of the API tests: one queue per implementation behind
//! `api::handle`, on a manual clock, with request helpers.

#![allow(dead_code)]

use serde_json::{json, Value};
use spin_work_queue::api::{self, ApiConfig};
use spin_work_queue::config::QueueConfig;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::kv::{KvError, MemoryKv};
use spin_work_queue::model::{
    Ack, DeadLetterEntry, DequeueRequest, Enqueued, FailOutcome, LeasedTask, NewTask, QueueStats,
    RescueReport, SetAside, TaskInfo,
};
use spin_work_queue::pipeline::{Cancelled, Submitted};
use spin_work_queue::{
    Clock, DrainQueue, KvWorkQueue, LeasedQueue, LocalWorkQueue, ManualClock, PortLeases,
    QueueError, RetryPolicy, TaskStatus,
};
use spin_work_queue::{NewPipeline, PipelineQueue, PipelineView};
use std::sync::Arc;

pub const START_MS: u64 = 1_700_000_000_000;
pub const LEASE_MS: u64 = 10_000;

/// The implementations under test, by name.
pub fn implementations() -> Vec<(&'static str, MakeQueue)> {
    vec![
        ("LocalWorkQueue", |config, clock| {
            Box::new(LocalWorkQueue::with_config(config, clock).expect("valid config"))
        }),
        ("KvWorkQueue<MemoryKv>", |config, clock| {
            Box::new(
                KvWorkQueue::with_config(MemoryKv::new(), config, clock).expect("valid config"),
            )
        }),
    ]
}

pub type MakeQueue = fn(QueueConfig, Arc<dyn Clock>) -> Box<dyn DrainQueue>;

/// A queue behind the API, on a manual clock.
pub struct Fixture {
    pub name: &'static str,
    pub queue: Box<dyn DrainQueue>,
    pub clock: ManualClock,
    pub config: ApiConfig,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed against {}", self.name);
        }
    }
}

/// One fixture per implementation, with the test configuration.
pub fn setup() -> Vec<Fixture> {
    let mut config = ApiConfig::default();
    config.queue.default_lease_ms = LEASE_MS;
    setup_with(config)
}

pub fn setup_with(config: ApiConfig) -> Vec<Fixture> {
    implementations()
        .into_iter()
        .map(|(name, make)| {
            let clock = ManualClock::new(START_MS);
            let queue_config = QueueConfig {
                retry: RetryPolicy {
                    base_ms: 1_000,
                    max_ms: 1_000,
                    jitter: 0.0,
                },
                ..config.queue.clone()
            };
            Fixture {
                name,
                queue: make(queue_config, Arc::new(clock.clone())),
                clock,
                config: config.clone(),
            }
        })
        .collect()
}

impl Fixture {
    pub async fn call(&self, req: Request) -> Response {
        self.handle(req).await.response
    }

    /// The answer, and whether the request made work due.
    pub async fn handle(&self, req: Request) -> api::Handled {
        api::handle(&*self.queue, &self.config, &req).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self.call(Request::json("POST", path, &body)).await;
        (resp.status, resp.json_body())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.call(Request::new("GET", path)).await;
        (resp.status, resp.json_body())
    }

    /// Enqueue `body`, expecting success; the ids.
    pub async fn enqueue(&self, body: Value) -> Vec<String> {
        let (status, out) = self.post("/v1/tasks", body).await;
        assert!(status == 200 || status == 201, "enqueue: {status} {out}");
        out["tasks"]
            .as_array()
            .expect("tasks list")
            .iter()
            .map(|t| t["id"].as_str().expect("id").to_string())
            .collect()
    }

    /// Dequeue up to `max`; (task id, lease id) pairs.
    pub async fn dequeue(&self, max: u32) -> Vec<(String, String)> {
        let (status, out) = self
            .post("/v1/dequeue", json!({"worker_id": "w1", "max": max}))
            .await;
        assert_eq!(status, 200, "{out}");
        out["tasks"]
            .as_array()
            .expect("tasks list")
            .iter()
            .map(|t| {
                (
                    t["task"]["id"].as_str().expect("id").to_string(),
                    t["lease"]["id"].as_str().expect("lease id").to_string(),
                )
            })
            .collect()
    }
}

pub fn task(node: &str) -> Value {
    json!({"pipeline_id": "p1", "node_name": node, "input": {"n": node}})
}

/// An error answer with the contract's body shape.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// A queue whose store is down: every operation fails with a store error.
pub struct DownQueue(pub PortLeases);

impl Default for DownQueue {
    fn default() -> Self {
        Self(PortLeases::new("port"))
    }
}

pub fn down<T>() -> Result<T, QueueError> {
    Err(QueueError::Store(KvError::Unavailable(
        "store is down".into(),
    )))
}

#[async_trait::async_trait]
impl LeasedQueue for DownQueue {
    async fn enqueue_batch(&self, _: Vec<NewTask>) -> Result<Vec<Enqueued>, QueueError> {
        down()
    }
    async fn dequeue(&self, _: &DequeueRequest) -> Result<Vec<LeasedTask>, QueueError> {
        down()
    }
    async fn ack(&self, _: &str, _: &str, _: Value) -> Result<TaskStatus, QueueError> {
        down()
    }
    async fn ack_batch(
        &self,
        _: Vec<Ack>,
    ) -> Result<Vec<Result<TaskStatus, QueueError>>, QueueError> {
        down()
    }
    async fn fail_leased(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<FailOutcome, QueueError> {
        down()
    }
    async fn heartbeat(&self, _: &str, _: &str, _: Option<u64>) -> Result<u64, QueueError> {
        down()
    }
    async fn task(&self, _: &str) -> Result<Option<TaskInfo>, QueueError> {
        down()
    }
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        down()
    }
    async fn dead_letters(&self, _: usize) -> Result<Vec<DeadLetterEntry>, QueueError> {
        down()
    }
    async fn redrive(&self, _: &str) -> Result<TaskStatus, QueueError> {
        down()
    }
    async fn rescue(&self) -> Result<RescueReport, QueueError> {
        down()
    }
    async fn results(&self, _: &str) -> Result<Vec<(String, Value)>, QueueError> {
        down()
    }
    async fn set_aside(&self, _: usize) -> Result<Vec<SetAside>, QueueError> {
        down()
    }
    fn port_leases(&self) -> &PortLeases {
        &self.0
    }
}

#[async_trait::async_trait]
impl PipelineQueue for DownQueue {
    async fn submit_pipeline(&self, _: NewPipeline) -> Result<Submitted, QueueError> {
        down()
    }
    async fn pipeline(&self, _: &str) -> Result<Option<PipelineView>, QueueError> {
        down()
    }
    async fn cancel_pipeline(&self, _: &str) -> Result<Cancelled, QueueError> {
        down()
    }
}
