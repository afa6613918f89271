//! Pipelines on a real `spin up`: a burst of concurrent submissions (and a
//! few bad ones) all complete with no driver; a `kill -9` of the whole
//! process group while a layered DAG runs loses no node and runs none
//! twice once the app is back.
//!
//! Skipped (with a note) where Spin is not installed, unless
//! `WQ_REQUIRE_SPIN` is set (see `tests/spin_support`).

mod e2e_support;
mod spin_support;

use e2e_support::{echo_node as echo, eventually, pipeline_finished as settled, unique};
use serde_json::{json, Value};
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{NewPipeline, NodeState, PipelineState, QueueError, WorkQueuePort};
use std::collections::BTreeSet;
use std::time::Duration;

/// A diamond with a tail: a → {b, c} → d → e.
fn small(id: &str) -> NewPipeline {
    NewPipeline::new(vec![
        echo("a", json!({"id": id}), &[]),
        echo("b", Value::Null, &["a"]),
        echo("c", Value::Null, &["a"]),
        echo("d", Value::Null, &["b", "c"]),
        echo("e", Value::Null, &["d"]),
    ])
    .with_id(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_submissions_completes_with_no_driver_and_bad_ones_are_refused() {
    let Some(spin) = spin_binary() else { return };
    let app = SpinUp::start(&spin, Setup::default()).await;
    let q = std::sync::Arc::new(app.client());
    let ids: Vec<String> = (0..20).map(|i| unique(&format!("burst{i}"))).collect();
    let submissions = ids.iter().map(|id| {
        let q = q.clone();
        let p = small(id);
        tokio::spawn(async move { q.submit_pipeline(p).await })
    });
    for s in submissions.collect::<Vec<_>>() {
        assert!(!s.await.unwrap().expect("submit").duplicate);
    }
    // Bad ones, meanwhile: refused whole, naming the node.
    let cycle = NewPipeline::new(vec![
        echo("x", Value::Null, &["y"]),
        echo("y", Value::Null, &["x"]),
    ]);
    match q.submit_pipeline(cycle).await {
        Err(QueueError::Invalid(i)) => assert!(i.message.contains("cycle"), "{}", i.message),
        r => panic!("a cycle was accepted: {r:?}"),
    }
    let deep = (0..80).fold(json!(1), |v, _| json!([v]));
    match q
        .submit_pipeline(NewPipeline::new(vec![echo("deep", deep, &[])]))
        .await
    {
        Err(QueueError::Invalid(i)) => assert!(i.message.contains("deep"), "{}", i.message),
        r => panic!("a too deep input was accepted: {r:?}"),
    }
    for id in &ids {
        let v = settled(&q, id, Duration::from_secs(120), false).await;
        assert_eq!(v.state, PipelineState::Completed, "{id}: {:?}", v.counts);
        let results = q.collect_results(id).await.unwrap();
        let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 5, "{id}: each node once: {names:?}");
        assert_eq!((names[0], names[4]), ("a", "e"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_a_dag_runs_loses_no_node_and_runs_none_twice() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default().var("grace_ms", "2000");
    let mut app = SpinUp::start(&spin, setup).await;
    let q = app.client();
    let id = unique("kill9-dag");
    // Eight layers of 25, three parents each, 30 ms per node.
    let mut nodes = Vec::new();
    for l in 0..8 {
        for i in 0..25 {
            let deps: Vec<String> = if l == 0 {
                vec![]
            } else {
                (0..3)
                    .map(|k| format!("l{}n{}", l - 1, (i + k * 7) % 25))
                    .collect()
            };
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            nodes.push(echo(&format!("l{l}n{i}"), json!({"sleep_ms": 30}), &deps));
        }
    }
    q.submit_pipeline(NewPipeline::new(nodes).with_id(&id))
        .await
        .unwrap();
    eventually("some progress", Duration::from_secs(60), || async {
        let v = q.pipeline(&id).await.ok().flatten()?;
        (v.count(NodeState::Completed) >= 30).then_some(())
    })
    .await;
    let before = q.pipeline(&id).await.unwrap().unwrap();
    assert_eq!(
        before.state,
        PipelineState::Running,
        "it finished before the kill"
    );
    app.restart().await;
    let q = app.client();
    let v = settled(&q, &id, Duration::from_secs(180), true).await;
    assert_eq!(v.state, PipelineState::Completed, "{:?}", v.counts);
    let results = q.collect_results(&id).await.unwrap();
    let names: BTreeSet<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 200, "every node completed");
    assert_eq!(results.len(), 200, "none completed twice");
}
