//! What a pipeline looks like now (`GET /v1/pipelines/{id}`), derived
//! from its record and its nodes' tasks — nothing else is stored, so the
//! view cannot drift from the tasks.

use super::spec::{Graph, OnFailure};
use super::PipelineRecord;
use crate::model::TaskInfo;
use crate::port::TaskStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The error a pending node of a cancelled pipeline is dead-lettered
/// with when a dequeue meets it, instead of being run.
pub const CANCELLED_ERROR: &str = "pipeline cancelled";

/// A node's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeState {
    /// Some parent has not completed yet.
    Waiting,
    /// Its task waits for a worker.
    Pending,
    /// Its task is running.
    InProgress,
    /// Its task failed and waits for a retry.
    Failed,
    /// Its task completed.
    Completed,
    /// Its task ran out of attempts.
    DeadLetter,
    /// An ancestor dead-lettered (policy `skip_dependents`): it will not run.
    Skipped,
    /// The pipeline was cancelled before it started.
    Cancelled,
}

impl NodeState {
    /// True for the states a node of a pipeline that is not redriven never
    /// leaves.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::DeadLetter | Self::Skipped | Self::Cancelled
        )
    }
}

/// A pipeline's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PipelineState {
    /// Some node can still run.
    Running,
    /// Every node completed.
    Completed,
    /// A node dead-lettered and nothing can run any more.
    Failed,
    /// Cancelled: nodes not started never will.
    Cancelled,
}

/// One node of a [`PipelineView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// The route key of its executor.
    pub executor: String,
    /// Its parents.
    pub depends_on: Vec<String>,
    /// Its depth: the longest path from a root.
    pub wave: u32,
    /// Its state.
    pub state: NodeState,
    /// Its task, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The task's current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The task's last error (failed or dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A pipeline and every node's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineView {
    /// The pipeline's id.
    pub id: String,
    /// Its state.
    pub state: PipelineState,
    /// Its failure policy.
    pub on_failure: OnFailure,
    /// Every node, in submission order.
    pub nodes: Vec<NodeView>,
    /// Nodes by state (only states some node is in).
    pub counts: BTreeMap<NodeState, u64>,
    /// When it was submitted (Unix ms).
    pub created_at: u64,
    /// When anything of it last changed (Unix ms).
    pub updated_at: u64,
    /// When it stopped running (completed, failed or cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

impl PipelineView {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// How many nodes are in `state`.
    pub fn count(&self, state: NodeState) -> u64 {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// Each node's state from its task (`None`: not created), in node order.
pub(crate) fn node_states(
    record: &PipelineRecord,
    graph: &Graph,
    cancelled: bool,
    tasks: &[Option<TaskInfo>],
) -> Vec<NodeState> {
    let mut states = vec![NodeState::Waiting; graph.len()];
    for &i in &graph.order {
        states[i] = match &tasks[i] {
            Some(info) => task_state(&info.status, cancelled),
            None if cancelled => NodeState::Cancelled,
            None => {
                let blocked = graph.parents[i].iter().any(|&p| match states[p] {
                    NodeState::Skipped | NodeState::Cancelled => true,
                    NodeState::DeadLetter => record.spec.on_failure == OnFailure::SkipDependents,
                    _ => false,
                });
                if blocked {
                    NodeState::Skipped
                } else {
                    NodeState::Waiting
                }
            }
        };
    }
    states
}

/// A created node's state: its task's, except that in a cancelled
/// pipeline what has not started never will.
fn task_state(status: &TaskStatus, cancelled: bool) -> NodeState {
    match status {
        TaskStatus::Pending | TaskStatus::Failed { .. } if cancelled => NodeState::Cancelled,
        TaskStatus::DeadLetter { error } if cancelled && error == CANCELLED_ERROR => {
            NodeState::Cancelled
        }
        TaskStatus::Pending => NodeState::Pending,
        TaskStatus::InProgress { .. } => NodeState::InProgress,
        TaskStatus::Failed { .. } => NodeState::Failed,
        TaskStatus::Completed { .. } => NodeState::Completed,
        TaskStatus::DeadLetter { .. } => NodeState::DeadLetter,
    }
}

/// The pipeline's state from its nodes'.
pub(crate) fn pipeline_state(states: &[NodeState], cancelled: bool) -> PipelineState {
    if cancelled {
        PipelineState::Cancelled
    } else if states.iter().all(|s| *s == NodeState::Completed) {
        PipelineState::Completed
    } else if states.iter().all(|s| s.is_final()) {
        PipelineState::Failed
    } else {
        PipelineState::Running
    }
}

/// True once nothing of the pipeline runs or can start: every node final
/// (a cancelled pipeline waits for its running nodes).
pub(crate) fn settled(states: &[NodeState]) -> bool {
    states.iter().all(|s| s.is_final())
}

/// The whole view.
pub(crate) fn view(
    record: &PipelineRecord,
    graph: &Graph,
    cancelled_at: Option<u64>,
    tasks: &[Option<TaskInfo>],
) -> PipelineView {
    let cancelled = cancelled_at.is_some();
    let states = node_states(record, graph, cancelled, tasks);
    let mut counts = BTreeMap::new();
    for s in &states {
        *counts.entry(*s).or_insert(0) += 1;
    }
    let updated_at = tasks
        .iter()
        .flatten()
        .map(|t| t.updated_at)
        .chain(cancelled_at)
        .fold(record.created_at, u64::max);
    let state = pipeline_state(&states, cancelled);
    let finished_at = match state {
        PipelineState::Running => None,
        PipelineState::Cancelled => cancelled_at,
        _ => Some(updated_at),
    };
    let nodes = record
        .spec
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let task = tasks[i].as_ref();
            NodeView {
                name: n.name.clone(),
                executor: n.route_key().to_string(),
                depends_on: n.depends_on.clone(),
                wave: graph.waves[i],
                state: states[i],
                task_id: task.map(|t| t.task.id.clone()),
                attempt: task.map(|t| t.task.attempt),
                error: task.and_then(|t| match &t.status {
                    TaskStatus::Failed { error, .. } | TaskStatus::DeadLetter { error } => {
                        Some(error.clone())
                    }
                    _ => None,
                }),
            }
        })
        .collect();
    PipelineView {
        id: record.id.clone(),
        state,
        on_failure: record.spec.on_failure,
        nodes,
        counts,
        created_at: record.created_at,
        updated_at,
        finished_at,
    }
}
