//! The pipeline rules, once for every [`PipelineStore`]: submission, the
//! view, cancellation, starting children after a parent finished, and the
//! reconciliation maintenance runs.

use super::spec::{Graph, NewPipeline, OnFailure, PipelineSpec};
use super::view::{self, NodeState, PipelineView, CANCELLED_ERROR};
use super::{split_task_id, Cancelled, PipelineRecord, PipelineState, PipelineStore, Submitted};
use crate::error::{QueueError, Result};
use crate::model::{generate_id, LeasedTask, NewTask, TaskInfo};
use crate::port::TaskStatus;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Tasks known so far while deciding, by node index (`None`: no task).
type Known = BTreeMap<usize, Option<TaskInfo>>;

/// Validate, store once, start the roots. A repeated submission starts
/// whatever a submission that died left unstarted.
pub(crate) async fn submit<S: PipelineStore + ?Sized>(
    s: &S,
    pipeline: NewPipeline,
) -> Result<Submitted> {
    let graph = pipeline.validate()?;
    let id = pipeline.id.unwrap_or_else(generate_id);
    let record = PipelineRecord {
        id: id.clone(),
        run: s.new_run(),
        spec: PipelineSpec {
            nodes: pipeline.nodes,
            on_failure: pipeline.on_failure,
        },
        created_at: s.now_ms(),
    };
    match s.insert_pipeline(&record).await? {
        None => {
            let roots: Vec<usize> = (0..graph.len())
                .filter(|&i| graph.parents[i].is_empty())
                .collect();
            let known: Known = roots.iter().map(|&i| (i, None)).collect();
            start_ready(s, &record, &graph, roots, known).await?;
            Ok(Submitted {
                id,
                duplicate: false,
            })
        }
        Some(existing) if existing.spec == record.spec => {
            if s.cancelled_at(&id).await?.is_none() {
                reconcile_one(s, &existing, &graph).await?;
            }
            Ok(Submitted {
                id,
                duplicate: true,
            })
        }
        Some(_) => Err(QueueError::PipelineConflict { id }),
    }
}

/// The pipeline's view, `None` when unknown.
pub(crate) async fn view<S: PipelineStore + ?Sized>(
    s: &S,
    id: &str,
) -> Result<Option<PipelineView>> {
    let Some((record, marks)) = s.load_pipeline(id).await? else {
        return Ok(None);
    };
    let graph = Graph::build(&record.spec.nodes)?;
    let tasks = all_tasks(s, &record).await?;
    Ok(Some(view::view(
        &record,
        &graph,
        marks.cancelled_at,
        &tasks,
    )))
}

/// Cancel `id` (idempotent): the nodes that will not run because of it.
/// A pipeline that already completed or failed stays so (nothing is left
/// to stop).
pub(crate) async fn cancel<S: PipelineStore + ?Sized>(s: &S, id: &str) -> Result<Cancelled> {
    let unknown = || QueueError::UnknownPipeline { id: id.to_string() };
    let before = view(s, id).await?.ok_or_else(unknown)?;
    if matches!(
        before.state,
        PipelineState::Completed | PipelineState::Failed
    ) {
        return Ok(Cancelled {
            state: before.state,
            cancelled: 0,
        });
    }
    s.mark_cancelled(id, s.now_ms()).await?;
    let after = view(s, id).await?.ok_or_else(unknown)?;
    Ok(Cancelled {
        state: after.state,
        cancelled: after.count(NodeState::Cancelled),
    })
}

/// After the tasks `ids` completed (or dead-lettered): start each child
/// of theirs whose parents are now all done. Tasks that are not pipeline
/// nodes are ignored without a read.
pub(crate) async fn completed<S: PipelineStore + ?Sized>(s: &S, ids: &[String]) -> Result<()> {
    let nodes: Vec<String> = ids
        .iter()
        .filter(|id| split_task_id(id).is_some())
        .cloned()
        .collect();
    if nodes.is_empty() {
        return Ok(());
    }
    let mut by_pipeline: BTreeMap<String, Vec<TaskInfo>> = BTreeMap::new();
    for info in s.tasks_of(&nodes).await?.into_iter().flatten() {
        by_pipeline
            .entry(info.task.pipeline_id.clone())
            .or_default()
            .push(info);
    }
    for (pid, infos) in by_pipeline {
        let Some((record, marks)) = s.load_pipeline(&pid).await? else {
            continue;
        };
        if marks.cancelled_at.is_some() {
            continue;
        }
        let graph = Graph::build(&record.spec.nodes)?;
        let mut known = Known::new();
        let mut candidates = BTreeSet::new();
        for info in infos {
            if let Some(i) = record.node_of(&info.task.id) {
                candidates.extend(graph.children[i].iter().copied());
                known.insert(i, Some(info));
            }
        }
        start_ready(s, &record, &graph, candidates.into_iter().collect(), known).await?;
    }
    Ok(())
}

/// After a batch ack of `ids` answered `out` (one result per id): what
/// [`completed`] does for the acks that succeeded.
pub(crate) async fn batch_acked<S: PipelineStore + ?Sized>(
    s: &S,
    ids: Vec<String>,
    out: &[Result<TaskStatus>],
) -> Result<()> {
    let done: Vec<String> = ids
        .into_iter()
        .zip(out)
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id)
        .collect();
    completed(s, &done).await
}

/// After tasks dead-lettered: under [`OnFailure::Continue`] their
/// children start (the policy is the pipeline's, checked in
/// [`start_ready`]).
pub(crate) async fn after_dead_letter<S: PipelineStore + ?Sized>(
    s: &S,
    ids: &[String],
) -> Result<()> {
    completed(s, ids).await
}

/// After a redrive of `id`: its pipeline runs again.
pub(crate) async fn after_redrive<S: PipelineStore + ?Sized>(s: &S, id: &str) -> Result<()> {
    if split_task_id(id).is_none() {
        return Ok(());
    }
    if let Some(info) = s.task(id).await? {
        if let Some((record, _)) = s.load_pipeline(&info.task.pipeline_id).await? {
            if record.node_of(id).is_some() {
                s.reopen_pipeline(&record.id).await?;
            }
        }
    }
    Ok(())
}

/// Dequeued tasks of cancelled pipelines are dead-lettered with
/// [`CANCELLED_ERROR`] instead of being handed out.
pub(crate) async fn after_dequeue<S: PipelineStore + ?Sized>(
    s: &S,
    leased: Vec<LeasedTask>,
) -> Result<Vec<LeasedTask>> {
    let mut cancelled: BTreeMap<&str, bool> = BTreeMap::new();
    for l in &leased {
        if split_task_id(&l.task.id).is_some()
            && !cancelled.contains_key(l.task.pipeline_id.as_str())
        {
            let c = s.cancelled_at(&l.task.pipeline_id).await?.is_some();
            cancelled.insert(&l.task.pipeline_id, c);
        }
    }
    if !cancelled.values().any(|c| *c) {
        return Ok(leased);
    }
    let mut out = Vec::with_capacity(leased.len());
    for l in leased.iter() {
        if cancelled.get(l.task.pipeline_id.as_str()) == Some(&true) {
            // Not handed out even when this fails: its lease expires, it
            // is rescued, and the next dequeue that meets it tries again.
            let _ = s
                .fail_leased(&l.task.id, &l.lease.id, CANCELLED_ERROR, false)
                .await;
            continue;
        }
        out.push(l.clone());
    }
    Ok(out)
}

/// Maintenance: every running pipeline the store lists gets the nodes a
/// request that died did not start; settled ones are marked so. Returns
/// how many nodes started.
pub(crate) async fn reconcile<S: PipelineStore + ?Sized>(s: &S) -> Result<usize> {
    let mut started = 0;
    for pid in s.running_pipelines().await? {
        let Some((record, marks)) = s.load_pipeline(&pid).await? else {
            continue;
        };
        let graph = Graph::build(&record.spec.nodes)?;
        let tasks = all_tasks(s, &record).await?;
        let states = view::node_states(&record, &graph, marks.cancelled_at.is_some(), &tasks);
        if view::settled(&states) {
            s.settle_pipeline(&pid, s.now_ms()).await?;
            continue;
        }
        if marks.cancelled_at.is_none() {
            let known: Known = tasks.into_iter().enumerate().collect();
            let waiting: Vec<usize> = (0..graph.len())
                .filter(|&i| states[i] == NodeState::Waiting)
                .collect();
            started += start_ready(s, &record, &graph, waiting, known).await?;
        }
    }
    Ok(started)
}

/// Start whatever of one pipeline is ready (a repeated submission).
async fn reconcile_one<S: PipelineStore + ?Sized>(
    s: &S,
    record: &PipelineRecord,
    graph: &Graph,
) -> Result<usize> {
    let known: Known = all_tasks(s, record)
        .await?
        .into_iter()
        .enumerate()
        .collect();
    start_ready(s, record, graph, (0..graph.len()).collect(), known).await
}

async fn all_tasks<S: PipelineStore + ?Sized>(
    s: &S,
    record: &PipelineRecord,
) -> Result<Vec<Option<TaskInfo>>> {
    let ids: Vec<String> = (0..record.spec.nodes.len())
        .map(|i| record.task_id(i))
        .collect();
    s.tasks_of(&ids).await
}

/// Create each of `candidates` that has no task and whose parents are all
/// done; reads what `known` lacks. Returns how many were handed to the
/// store to create.
async fn start_ready<S: PipelineStore + ?Sized>(
    s: &S,
    record: &PipelineRecord,
    graph: &Graph,
    candidates: Vec<usize>,
    mut known: Known,
) -> Result<usize> {
    let mut needed: BTreeSet<usize> = BTreeSet::new();
    for &c in &candidates {
        needed.insert(c);
        needed.extend(graph.parents[c].iter().copied());
    }
    let missing: Vec<usize> = needed
        .into_iter()
        .filter(|i| !known.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let ids: Vec<String> = missing.iter().map(|&i| record.task_id(i)).collect();
        for (i, t) in missing.into_iter().zip(s.tasks_of(&ids).await?) {
            known.insert(i, t);
        }
    }
    let policy = record.spec.on_failure;
    let mut ready = Vec::new();
    for c in candidates {
        if known.get(&c).is_some_and(Option::is_some) {
            continue; // started already
        }
        let mut parents = Map::new();
        let all_done = graph.parents[c].iter().all(|&p| {
            let node = &record.spec.nodes[p];
            match known
                .get(&p)
                .and_then(Option::as_ref)
                .and_then(|t| done(t, policy))
            {
                Some(v) => {
                    parents.insert(node.name.clone(), v);
                    true
                }
                None => false,
            }
        });
        if all_done {
            ready.push((c, node_task(record, graph, c, parents)));
        }
    }
    let n = ready.len();
    if n > 0 {
        s.create_nodes(record, ready).await?;
    }
    Ok(n)
}

/// What a finished parent hands its children: its output, or under
/// [`OnFailure::Continue`] `{"error": …}` for a dead letter. `None` while
/// it is not done.
fn done(parent: &TaskInfo, policy: OnFailure) -> Option<Value> {
    match &parent.status {
        TaskStatus::Completed { output } => Some(output.clone()),
        TaskStatus::DeadLetter { error }
            if policy == OnFailure::Continue && error != CANCELLED_ERROR =>
        {
            Some(json!({ "error": error }))
        }
        _ => None,
    }
}

/// The task of node `i`: a root's own input, else
/// `{"input", "parents": {name: output}}`.
fn node_task(
    record: &PipelineRecord,
    graph: &Graph,
    i: usize,
    parents: Map<String, Value>,
) -> NewTask {
    let node = &record.spec.nodes[i];
    let input = if graph.parents[i].is_empty() {
        node.input.clone()
    } else {
        json!({ "input": node.input, "parents": parents })
    };
    NewTask {
        id: Some(record.task_id(i)),
        pipeline_id: record.id.clone(),
        node_name: node.name.clone(),
        input,
        wave: graph.waves[i],
        idempotency_key: None,
        max_attempts: node.max_attempts,
        delay_ms: 0,
        executor: node.executor.clone(),
    }
}
