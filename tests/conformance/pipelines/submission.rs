//! Submission: validation, idempotency, the shape of node inputs and the
//! view of a pipeline that ran.

use super::{assert_pipeline, node, output_of, parents_in, pipeline, Run};
use crate::conformance::Fixture;
use serde_json::{json, Value};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{
    InvalidKind, LeasedQueue, NewPipeline, NodeSpec, NodeState, OnFailure, PipelineState,
    QueueError, WorkQueuePort,
};
use std::collections::BTreeSet;

/// a → {b, c} → d: a alone first; b and c only after a, with a's output;
/// d only after both, with both outputs; waves are depths; the results
/// list every node in completion order.
pub async fn a_diamond_runs_each_node_after_its_parents_with_their_outputs<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let p = pipeline(
        "diamond",
        vec![
            node("a", &[]),
            node("b", &["a"]),
            node("c", &["a"]),
            node("d", &["b", "c"]),
        ],
    );
    let mut run = Run::submit(fx, p).await;
    let v = run
        .assert_states(&[
            ("a", NodeState::Pending),
            ("b", NodeState::Waiting),
            ("d", NodeState::Waiting),
        ])
        .await;
    assert_pipeline(&v, PipelineState::Running);
    assert_eq!(
        v.nodes.iter().map(|n| n.wave).collect::<Vec<_>>(),
        [0, 1, 1, 2]
    );
    assert!(v.node("b").unwrap().task_id.is_none());

    let first = run.take(10).await;
    assert_eq!(first.len(), 1, "only the root is due");
    let a = &first[0];
    assert_eq!(a.task.node_name, "a");
    assert_eq!(a.task.wave, 0);
    assert_eq!(a.task.input, json!({"n": "a"}));
    run.assert_states(&[("a", NodeState::InProgress)]).await;
    let a_out = output_of(a);
    run.finish(a, super::Outcome::Ok(a_out.clone())).await;

    let mid = run.take(10).await;
    let names: BTreeSet<&str> = mid.iter().map(|l| l.task.node_name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["b", "c"]));
    for l in &mid {
        assert_eq!(l.task.wave, 1);
        assert_eq!(
            l.task.input,
            json!({"input": {"n": l.task.node_name}, "parents": {"a": a_out}})
        );
    }
    run.finish(&mid[0], super::Outcome::Ok(output_of(&mid[0])))
        .await;
    assert!(
        run.take(10).await.is_empty(),
        "d waits for its other parent"
    );
    run.assert_states(&[("d", NodeState::Waiting)]).await;
    run.finish(&mid[1], super::Outcome::Ok(output_of(&mid[1])))
        .await;

    let last = run.take(10).await;
    assert_eq!(last.len(), 1);
    let d = &last[0];
    assert_eq!(d.task.node_name, "d");
    assert_eq!(d.task.wave, 2);
    assert_eq!(parents_in(d), BTreeSet::from(["b".into(), "c".into()]));
    for l in &mid {
        assert_eq!(d.task.input["parents"][&l.task.node_name], output_of(l));
    }
    assert_eq!(d.task.input["input"], json!({"n": "d"}));
    run.finish(d, super::Outcome::Ok(json!("done"))).await;

    let v = run.view().await;
    assert_pipeline(&v, PipelineState::Completed);
    assert_eq!(v.count(NodeState::Completed), 4);
    assert!(v.finished_at.is_some());
    assert!(v.updated_at >= v.created_at);
    let results = run.q().collect_results(&run.id).await.unwrap();
    let order: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        order,
        run.completed.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(results[3].1, json!("done"));
    // The nodes are tasks like any other.
    let info = run
        .q()
        .task(v.node("d").unwrap().task_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.task.pipeline_id, run.id);
    assert_eq!(info.task.node_name, "d");
}

/// A root's executor gets its input as given; the executor route key
/// travels with the task (absent when it is the node name).
pub async fn roots_get_their_input_unchanged_and_tasks_carry_the_executor<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let p = pipeline(
        "executor",
        vec![
            NodeSpec::new(
                "fetch-home",
                json!({"url": "https://example.com", "deep": [[1]]}),
                &[],
            )
            .with_executor("fetch"),
            NodeSpec::new("plain", Value::Null, &[]),
            NodeSpec::new("after", Value::Null, &["plain"]).with_executor("echo"),
        ],
    );
    let mut run = Run::submit(fx, p).await;
    let mut got = run.take(10).await;
    got.sort_by(|a, b| a.task.node_name.cmp(&b.task.node_name));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].task.node_name, "fetch-home");
    assert_eq!(
        got[0].task.input,
        json!({"url": "https://example.com", "deep": [[1]]})
    );
    assert_eq!(got[0].executor.as_deref(), Some("fetch"));
    assert_eq!(got[0].route_key(), "fetch");
    assert_eq!(got[1].executor, None);
    assert_eq!(got[1].route_key(), "plain");
    run.finish(&got[1], super::Outcome::Ok(json!(7))).await;
    let after = run.take(10).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].route_key(), "echo");
    assert_eq!(
        after[0].task.input,
        json!({"input": null, "parents": {"plain": 7}})
    );
    let v = run.view().await;
    assert_eq!(v.node("after").unwrap().executor, "echo");
    assert_eq!(v.node("plain").unwrap().executor, "plain");
}

fn pipeline_message(r: Result<spin_work_queue::pipeline::Submitted, QueueError>) -> String {
    match r {
        Err(QueueError::Invalid(i)) => {
            assert_eq!(i.kind, InvalidKind::Pipeline, "{}", i.message);
            i.message
        }
        other => panic!("expected invalid_pipeline, got {other:?}"),
    }
}

/// Each broken rule is refused whole, naming the node; nothing starts.
pub async fn invalid_pipelines_are_refused_naming_the_node<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let q = fx.queue();
    let cases: Vec<(Vec<NodeSpec>, &str)> = vec![
        (vec![], "1..=1000"),
        (
            vec![node("root", &[]), node("x", &["nope"])],
            "\"x\" depends on unknown node \"nope\"",
        ),
        (vec![node("me", &["me"])], "\"me\" depends on itself"),
        (
            vec![node("twin", &[]), node("twin", &[])],
            "duplicate node name \"twin\"",
        ),
        (
            vec![
                node("r", &[]),
                node("a", &["r", "c"]),
                node("b", &["a"]),
                node("c", &["b"]),
            ],
            "cycle: ",
        ),
        (
            (0..1001).map(|i| node(&format!("n{i}"), &[])).collect(),
            "got 1001",
        ),
    ];
    for (nodes, want) in cases {
        let m = pipeline_message(q.submit_pipeline(pipeline("invalid", nodes)).await);
        assert!(m.contains(want), "{m:?} should contain {want:?}");
    }
    let m = pipeline_message(
        q.submit_pipeline(NewPipeline::new(vec![node("a", &[])]).with_id(".."))
            .await,
    );
    assert!(m.contains("id"), "{m}");
    if fx.exclusive_store() {
        assert_eq!(q.pending_count().await.unwrap(), 0, "nothing was enqueued");
    }
}

/// The same id and spec again is a duplicate that starts nothing new;
/// another spec under that id is a conflict.
pub async fn submission_is_idempotent_by_id<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let q = fx.queue();
    let p = pipeline("idem", vec![node("a", &[]), node("b", &["a"])]);
    let first = q.submit_pipeline(p.clone()).await.unwrap();
    assert!(!first.duplicate);
    let again = q.submit_pipeline(p.clone()).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.duplicate);
    let other = p.clone().with_on_failure(OnFailure::Continue);
    match q.submit_pipeline(other).await {
        Err(QueueError::PipelineConflict { id }) => assert_eq!(id, first.id),
        r => panic!("expected a conflict, got {r:?}"),
    }
    let mut run = Run {
        fx,
        id: first.id.clone(),
        parents: [("a".into(), vec![]), ("b".into(), vec!["a".into()])].into(),
        completed: vec![],
        delivered: vec![],
    };
    let got = run.take(10).await;
    assert_eq!(got.len(), 1, "the root was enqueued once: {got:?}");
    assert!(run.take(10).await.is_empty());
    // A generated id.
    let generated = q
        .submit_pipeline(NewPipeline::new(vec![node("solo", &[])]))
        .await
        .unwrap();
    assert!(!generated.id.is_empty());
    assert!(q.pipeline(&generated.id).await.unwrap().is_some());
}

/// An unknown pipeline has no view, and cannot be cancelled.
pub async fn unknown_pipelines_are_not_found<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let q = fx.queue();
    let id = format!("never-{}", super::unique());
    assert!(q.pipeline(&id).await.unwrap().is_none());
    match q.cancel_pipeline(&id).await {
        Err(QueueError::UnknownPipeline { id: got }) => assert_eq!(got, id),
        r => panic!("expected unknown pipeline, got {r:?}"),
    }
}

/// A pipeline that settled is forgotten with its tasks once the retention
/// period has passed; its id can then be submitted anew.
pub async fn a_settled_pipeline_is_forgotten_after_retention<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let p = pipeline("retention", vec![node("only", &[])]);
    let mut run = Run::submit(fx, p.clone()).await;
    run.drive(&[]).await;
    assert_pipeline(&run.view().await, PipelineState::Completed);
    run.q().rescue().await.unwrap(); // finds it settled
    fx.advance(spin_work_queue::QueueConfig::default().retention_ms + 60_000);
    run.q().rescue().await.unwrap();
    run.q().rescue().await.unwrap();
    assert!(
        run.q().pipeline(&run.id).await.unwrap().is_none(),
        "the pipeline is gone after the retention period"
    );
    let again = run.q().submit_pipeline(p).await.unwrap();
    assert!(!again.duplicate, "its id is free again");
}
