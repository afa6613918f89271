//! [`HttpWorkQueue`]: the queue API (`openapi.yaml`) as a
//! [`WorkQueuePort`](crate::WorkQueuePort) and
//! [`LeasedQueue`](crate::LeasedQueue), so a Rust DAG executor uses a
//! queue served by Spin exactly like the in-process one.
//!
//! Native only, behind the `client` feature (`client-tls` adds HTTPS).
//!
//! ```no_run
//! use spin_work_queue::client::HttpWorkQueue;
//! use spin_work_queue::{WorkQueuePort, WorkTask};
//! # async fn run() -> spin_work_queue::Result<()> {
//! let queue = HttpWorkQueue::builder("http://127.0.0.1:3000")
//!     .token("s3cret")
//!     .build()?;
//! println!("{} pending", queue.pending_count().await?);
//! # Ok(()) }
//! ```

mod pipelines;
mod queue;

use crate::error::{InvalidKind, QueueError, Result};
use crate::kv::KvError;
use crate::queue::PortLeases;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// Default timeout of one HTTP request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default worker id sent by [`WorkQueuePort::try_dequeue`](crate::WorkQueuePort::try_dequeue).
pub const DEFAULT_WORKER_ID: &str = crate::config::DEFAULT_PORT_WORKER_ID;

/// A client of the queue's HTTP API.
#[derive(Debug)]
pub struct HttpWorkQueue {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// Leases taken through `try_dequeue`, for the port's `acknowledge` /
    /// `fail` (which carry none).
    leases: PortLeases,
}

/// Builds an [`HttpWorkQueue`].
#[derive(Debug, Clone)]
pub struct HttpWorkQueueBuilder {
    base: String,
    token: Option<String>,
    timeout: Duration,
    worker_id: String,
}

impl HttpWorkQueueBuilder {
    /// Send `Authorization: Bearer <token>` (the app's `api_token`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t: &String| !t.is_empty());
        self
    }

    /// Give up on a request after `timeout` (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The worker id `try_dequeue` reports (default `port`, as every port implementation).
    pub fn worker_id(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = worker_id.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<HttpWorkQueue> {
        let base = self.base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(QueueError::invalid(
                InvalidKind::Request,
                format!("base URL must start with http:// or https://, got {base:?}"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| QueueError::Transport(e.to_string()))?;
        Ok(HttpWorkQueue {
            base,
            http,
            token: self.token,
            leases: PortLeases::new(self.worker_id),
        })
    }
}

impl HttpWorkQueue {
    /// A client of the queue served at `base_url` (e.g.
    /// `http://127.0.0.1:3000`), without a token.
    pub fn new(base_url: impl Into<String>) -> Result<Self> {
        Self::builder(base_url).build()
    }

    /// Configure a client of the queue served at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> HttpWorkQueueBuilder {
        HttpWorkQueueBuilder {
            base: base_url.into(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            worker_id: DEFAULT_WORKER_ID.to_string(),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /healthz` answers 200.
    pub async fn healthy(&self) -> bool {
        let req = self.http.get(format!("{}/healthz", self.base));
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(self.url(path)), path).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.send(self.http.post(self.url(path)).json(body), path)
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        mut req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<T> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| QueueError::Transport(format!("{path}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| QueueError::Transport(format!("{path}: reading the body: {e}")))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                QueueError::Transport(format!(
                    "{path}: unexpected answer ({e}): {}",
                    preview(&bytes)
                ))
            });
        }
        Err(error_from(status, &bytes, path))
    }
}

/// The queue error an HTTP error answer stands for.
fn error_from(status: u16, body: &[u8], path: &str) -> QueueError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: ErrorBody,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice::<Body>(body).ok().map(|b| b.error);
    match parsed {
        Some(e) => e.into_queue_error(),
        None => QueueError::Transport(format!("{path}: HTTP {status}: {}", preview(body))),
    }
}

/// An error body `{"code","message"}` (also the `error` of a batch ack item).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    id: Option<String>,
}

impl ErrorBody {
    pub(crate) fn with_id(mut self, id: &str) -> Self {
        self.id.get_or_insert_with(|| id.to_string());
        self
    }

    pub(crate) fn into_queue_error(self) -> QueueError {
        let id = self.id.clone().unwrap_or_default();
        match self.code.as_str() {
            "not_found" => QueueError::NotFound { id },
            "lease_lost" => QueueError::LeaseLost { id },
            "wrong_state" => QueueError::WrongState {
                id,
                state: String::new(),
                reason: self.message,
            },
            "bad_request" | "invalid_request" => {
                QueueError::invalid(InvalidKind::Request, self.message)
            }
            "invalid_task" => QueueError::invalid(InvalidKind::Task, self.message),
            "invalid_batch" => QueueError::invalid(InvalidKind::Batch, self.message),
            "invalid_output" => QueueError::invalid(InvalidKind::Output, self.message),
            "invalid_pipeline" => QueueError::invalid(InvalidKind::Pipeline, self.message),
            "pipeline_conflict" => QueueError::PipelineConflict { id },
            "not_supported" => QueueError::Unsupported(self.message),
            "store_corrupt" => QueueError::Corrupt {
                key: id,
                reason: self.message,
            },
            "store_unavailable" => QueueError::Store(KvError::Unavailable(self.message)),
            "store_too_slow" => QueueError::TooSlow(self.message),
            "store_full" => QueueError::StoreFull(self.message),
            code => QueueError::Transport(format!("{code}: {}", self.message)),
        }
    }
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}
