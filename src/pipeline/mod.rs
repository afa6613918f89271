//! Pipelines: a whole DAG submitted in one call and run on the queue with
//! no driver process. A node becomes a task as soon as all of its own
//! parents completed; its input is `{"input", "parents": {name: output}}`.
//!
//! The rules are written once, here, against two traits:
//! [`PipelineQueue`] is what callers use (`submit`, `pipeline`, `cancel`)
//! and `PipelineStore` the few primitives each implementation provides
//! (store a pipeline once, create a node's task exactly once, list the
//! pipelines still running). Everything else — validation, scheduling,
//! the failure policy, the view — is shared, so [`LocalWorkQueue`],
//! [`KvWorkQueue`] and the HTTP client answer alike (the pipeline
//! conformance suite, `tests/pipelines`).
//!
//! How a node starts exactly once whatever crashes or races happen:
//!
//! 1. An ack (or a dead-lettering, under [`OnFailure::Continue`]) of a
//!    node is committed first; then the same request reads the states of
//!    its children's parents and creates every child whose parents are
//!    all done. Two parents finishing at once each read the other's state
//!    after writing their own, so at least one of them sees both done.
//! 2. Creating a node's task goes through the store's
//!    `PipelineStore::create_nodes`, which lets one creator win per node
//!    (an `increment` lock on the key-value engine, the state lock in
//!    process) and writes the task within that creator's deadline.
//! 3. A request that dies between 1 and 2 leaves a node whose parents are
//!    done and which has no task; maintenance ([`LeasedQueue::rescue`],
//!    and dequeues once per maintenance period) reconciles every running
//!    pipeline and creates what is missing.
//!
//! [`LocalWorkQueue`]: crate::LocalWorkQueue
//! [`KvWorkQueue`]: crate::KvWorkQueue

mod ops;
mod spec;
mod view;

pub use spec::{Graph, NewPipeline, NodeSpec, OnFailure, PipelineSpec, MAX_PIPELINE_NODES};
pub use view::{NodeState, NodeView, PipelineState, PipelineView, CANCELLED_ERROR};

pub(crate) use ops::{
    after_dead_letter, after_dequeue, after_redrive, batch_acked, cancel, completed, reconcile,
    submit, view,
};

use crate::error::Result;
use crate::model::{NewTask, TaskInfo};
use crate::queue::LeasedQueue;
use crate::MaybeSendSync;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// The pipeline's id (generated when none was given).
    pub id: String,
    /// True when the same id and spec were submitted before: nothing new.
    pub duplicate: bool,
}

/// The answer to a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    /// [`PipelineState::Cancelled`] — or, for a pipeline that had already
    /// completed or failed, that state, left as it was.
    pub state: PipelineState,
    /// Nodes that will not run because of the cancellation.
    pub cancelled: u64,
}

/// Queues that run whole pipelines.
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub trait PipelineQueue: LeasedQueue {
    /// Submit a pipeline: validated whole (a message naming the node),
    /// stored once per id (the same spec again is a duplicate, another
    /// spec under the same id [`QueueError::PipelineConflict`]), its roots
    /// enqueued at once.
    ///
    /// [`QueueError::PipelineConflict`]: crate::QueueError::PipelineConflict
    async fn submit_pipeline(&self, pipeline: NewPipeline) -> Result<Submitted>;

    /// The pipeline and every node's state; `None` when unknown.
    async fn pipeline(&self, id: &str) -> Result<Option<PipelineView>>;

    /// Cancel a pipeline: nodes not started yet never will; running ones
    /// finish but start nothing. Idempotent; a pipeline that already
    /// completed or failed is left as it is.
    async fn cancel_pipeline(&self, id: &str) -> Result<Cancelled>;
}

/// A stored pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// The pipeline's id.
    pub id: String,
    /// The run's unique id, the prefix of its nodes' task ids.
    pub run: String,
    /// What was submitted.
    pub spec: PipelineSpec,
    /// When it was accepted (Unix ms).
    pub created_at: u64,
}

impl PipelineRecord {
    /// The task id of node `index`: `{run}-{index}`.
    pub fn task_id(&self, index: usize) -> String {
        format!("{}-{index}", self.run)
    }

    /// The node index of `task_id` if it is one of this run's tasks.
    pub fn node_of(&self, task_id: &str) -> Option<usize> {
        let (run, index) = split_task_id(task_id)?;
        (run == self.run && index < self.spec.nodes.len()).then_some(index)
    }
}

/// `(run, index)` of a task id shaped like a pipeline node's
/// (`{26-character run}-{index}`).
pub(crate) fn split_task_id(task_id: &str) -> Option<(&str, usize)> {
    let (run, index) = task_id.rsplit_once('-')?;
    if run.len() != 26 || !run.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if index.is_empty() || index.len() > 4 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index.parse().ok().map(|i| (run, i))
}

/// What a store keeps of a pipeline besides its record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipelineMarks {
    /// When it was cancelled.
    pub cancelled_at: Option<u64>,
}

/// The primitives an implementation provides for [`PipelineQueue`]; the
/// rules on top of them are shared (`ops.rs`).
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
pub(crate) trait PipelineStore: LeasedQueue + MaybeSendSync {
    /// The clock, in Unix ms.
    fn now_ms(&self) -> u64;

    /// A fresh unique run id (26 alphanumeric characters).
    fn new_run(&self) -> String;

    /// Store `record` unless a pipeline with its id exists; returns the
    /// stored one when it does. A stored pipeline counts as running.
    async fn insert_pipeline(&self, record: &PipelineRecord) -> Result<Option<PipelineRecord>>;

    /// The pipeline `id` and its marks.
    async fn load_pipeline(&self, id: &str) -> Result<Option<(PipelineRecord, PipelineMarks)>>;

    /// When `id` was cancelled, if it was (a read cheaper than the whole
    /// pipeline).
    async fn cancelled_at(&self, id: &str) -> Result<Option<u64>>;

    /// Mark `id` cancelled at `at` unless it was already; returns when it
    /// was cancelled.
    async fn mark_cancelled(&self, id: &str, at: u64) -> Result<u64>;

    /// The tasks of `ids`, `None` for those that do not exist.
    async fn tasks_of(&self, ids: &[String]) -> Result<Vec<Option<TaskInfo>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.task(id).await?);
        }
        Ok(out)
    }

    /// Create the tasks of nodes `(index, task)` of `record`, each at most
    /// once ever: a node whose task exists or another creator is writing
    /// is left alone.
    async fn create_nodes(
        &self,
        record: &PipelineRecord,
        nodes: Vec<(usize, NewTask)>,
    ) -> Result<()>;

    /// Some of the pipelines not yet seen settled, oldest first.
    async fn running_pipelines(&self) -> Result<Vec<String>>;

    /// `id` settled at `at`: nothing of it runs or can start.
    async fn settle_pipeline(&self, id: &str, at: u64) -> Result<()>;

    /// `id` runs again (a node of it was redriven).
    async fn reopen_pipeline(&self, id: &str) -> Result<()>;
}
