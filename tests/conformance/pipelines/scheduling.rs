//! Scheduling: nodes start as soon as their own parents completed (not
//! at wave barriers), exactly once, acked one by one or in batches.

use super::{node, pipeline, Run};
use crate::conformance::Fixture;
use serde_json::json;
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{LeasedQueue, NodeSpec, NodeState, PipelineState, TaskStatus};
use std::collections::BTreeMap;

/// Three layers of four, each node depending on every node of the layer
/// before, plus a side chain: batches of acks start each layer once its
/// parents all completed, and the side chain runs alongside.
pub async fn a_layered_dag_acked_in_batches_runs_in_dependency_order<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let layer = |l: usize| -> Vec<String> { (0..4).map(|i| format!("l{l}n{i}")).collect() };
    let mut nodes = Vec::new();
    for l in 0..3 {
        let deps: Vec<String> = if l == 0 { vec![] } else { layer(l - 1) };
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        nodes.extend(layer(l).iter().map(|n| node(n, &deps)));
    }
    nodes.push(node("side0", &[]));
    nodes.push(node("side1", &["side0"]));
    let mut run = Run::submit(fx, pipeline("layered", nodes)).await;
    let mut rounds = 0;
    loop {
        let batch = run.take(100).await;
        if batch.is_empty() {
            break;
        }
        rounds += 1;
        run.ack_all(&batch).await;
    }
    assert_eq!(
        rounds, 3,
        "one round per layer; the side chain fits in them"
    );
    assert_eq!(run.delivered.len(), 14, "each node delivered once");
    let v = run.view().await;
    assert_eq!(v.state, PipelineState::Completed);
    let waves: BTreeMap<&str, u32> = v.nodes.iter().map(|n| (n.name.as_str(), n.wave)).collect();
    assert_eq!(waves["l2n3"], 2);
    assert_eq!(waves["side1"], 1);
    let last = run
        .q()
        .task(v.node("l2n0").unwrap().task_id.as_deref().unwrap());
    let last = last.await.unwrap().unwrap();
    assert_eq!(
        last.task.input["parents"].as_object().unwrap().len(),
        4,
        "every parent's output"
    );
}

/// Twenty roots acked in one batch, and again acked one by one
/// concurrently: their common child starts once.
pub async fn parents_acked_together_start_their_child_once<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let roots: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let deps: Vec<&str> = roots.iter().map(String::as_str).collect();
    let mut nodes: Vec<NodeSpec> = roots.iter().map(|r| node(r, &[])).collect();
    nodes.push(node("sink", &deps));
    let mut run = Run::submit(fx, pipeline("fanin", nodes)).await;
    let batch = run.take(100).await;
    assert_eq!(batch.len(), 20);
    let q = run.q();
    let acks = batch
        .iter()
        .map(|l| q.ack(&l.task.id, &l.lease.id, json!(l.task.node_name)));
    for r in futures_join(acks).await {
        r.expect("ack");
    }
    run.completed.extend(roots.iter().cloned());
    let sink = run.take(100).await;
    assert_eq!(sink.len(), 1, "the child started once: {sink:?}");
    assert_eq!(sink[0].task.input["parents"].as_object().unwrap().len(), 20);
    assert!(run.take(100).await.is_empty());
    // Repeating the parents' acks (same leases) starts nothing new.
    for l in &batch {
        run.q()
            .ack(&l.task.id, &l.lease.id, json!(l.task.node_name))
            .await
            .expect("a repeated ack is harmless");
    }
    assert!(run.take(100).await.is_empty());
}

/// Every future of `futs`, run concurrently.
async fn futures_join<T>(
    futs: impl IntoIterator<Item = impl std::future::Future<Output = T>>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll them together: each await point of one lets the others run.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(
        results
            .into_iter()
            .map(|r| r.expect("every future finished")),
    );
    out
}

/// A node failing once shows `Failed` with its attempt, then runs again
/// after the backoff and completes; its child starts then.
pub async fn a_node_retried_shows_failed_then_completes<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let mut flaky = node("flaky", &[]);
    flaky.max_attempts = Some(2);
    let mut run = Run::submit(fx, pipeline("retry", vec![flaky, node("next", &["flaky"])])).await;
    let first = run.take(10).await;
    let l = &first[0];
    let out = run
        .q()
        .fail_leased(&l.task.id, &l.lease.id, "transient", true)
        .await
        .unwrap();
    assert!(matches!(out.status, TaskStatus::Failed { .. }));
    let v = run
        .assert_states(&[("flaky", NodeState::Failed), ("next", NodeState::Waiting)])
        .await;
    assert_eq!(v.node("flaky").unwrap().error.as_deref(), Some("transient"));
    assert_eq!(v.state, PipelineState::Running);
    assert!(out.retry_at.is_some());
    fx.advance(1_001); // the suite's first backoff: 1 s, no jitter
    run.q().rescue().await.unwrap();
    let again = run.take(10).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task.attempt, 1);
    run.finish(&again[0], super::Outcome::Ok(json!("ok"))).await;
    let next = run.take(10).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].task.node_name, "next");
    let v = run.assert_states(&[("flaky", NodeState::Completed)]).await;
    assert_eq!(v.node("flaky").unwrap().attempt, Some(1));
}
