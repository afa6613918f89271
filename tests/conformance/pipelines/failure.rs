//! Failure: the two policies, redrive of a dead-lettered node, cancel.

use super::{node, output_of, pipeline, Outcome, Run};
use crate::conformance::Fixture;
use serde_json::json;
use spin_work_queue::pipeline::{PipelineQueue, CANCELLED_ERROR};
use spin_work_queue::{LeasedQueue, NewPipeline, NodeState, OnFailure, PipelineState, TaskStatus};

/// a → b → c and a → d: b dead-letters, so c is skipped while d, on an
/// independent branch, completes; then the pipeline has failed.
fn branching(label: &str) -> NewPipeline {
    pipeline(
        label,
        vec![
            node("a", &[]),
            node("b", &["a"]),
            node("c", &["b"]),
            node("d", &["a"]),
        ],
    )
}

/// `skip_dependents` (the default): descendants of a dead letter are
/// `Skipped`, independent branches finish, the pipeline is `Failed`.
pub async fn a_dead_letter_skips_its_descendants_and_other_branches_finish<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let mut run = Run::submit(fx, branching("skip")).await;
    run.drive(&["b"]).await;
    let v = run
        .assert_states(&[
            ("a", NodeState::Completed),
            ("b", NodeState::DeadLetter),
            ("c", NodeState::Skipped),
            ("d", NodeState::Completed),
        ])
        .await;
    assert_eq!(v.state, PipelineState::Failed);
    assert_eq!(v.on_failure, OnFailure::SkipDependents);
    assert_eq!(v.node("b").unwrap().error.as_deref(), Some("b failed"));
    assert!(v.node("c").unwrap().task_id.is_none());
    assert!(v.finished_at.is_some());
    assert_eq!(v.count(NodeState::Skipped), 1);
    assert!(!run.delivered.contains(&"c".to_string()));
}

/// `continue`: the children of a dead letter start, seeing
/// `{"error": …}` in its place.
pub async fn continue_starts_children_with_the_parent_error<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let p = branching("continue").with_on_failure(OnFailure::Continue);
    let mut run = Run::submit(fx, p).await;
    let a = run.take(10).await.remove(0);
    run.finish(&a, Outcome::Ok(output_of(&a))).await;
    let mut mid = run.take(10).await;
    mid.sort_by(|x, y| x.task.node_name.cmp(&y.task.node_name));
    run.finish(&mid[0], Outcome::Fail("b broke".into())).await; // b
    run.finish(&mid[1], Outcome::Ok(json!("d ok"))).await; // d
                                                           // c's parent b dead-lettered: c starts anyway (but not as a completion of b).
    run.completed.push("b".into());
    let c = run.take(10).await;
    assert_eq!(c.len(), 1, "c starts under continue");
    assert_eq!(
        c[0].task.input,
        json!({"input": {"n": "c"}, "parents": {"b": {"error": "b broke"}}})
    );
    run.finish(&c[0], Outcome::Ok(json!("c ok"))).await;
    let v = run
        .assert_states(&[("b", NodeState::DeadLetter), ("c", NodeState::Completed)])
        .await;
    assert_eq!(v.state, PipelineState::Failed, "a node dead-lettered");
}

/// A redrive of the dead-lettered node puts its skipped descendants back
/// to `Waiting` and the pipeline back to `Running`; they then run.
pub async fn redrive_resumes_the_skipped_descendants<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let mut run = Run::submit(fx, branching("redrive")).await;
    run.drive(&["b"]).await;
    let v = run.view().await;
    assert_eq!(v.state, PipelineState::Failed);
    let b = v.node("b").unwrap().task_id.clone().unwrap();
    run.q().rescue().await.unwrap(); // settles the failed pipeline
    let status = run.q().redrive(&b).await.unwrap();
    assert_eq!(status, TaskStatus::Pending);
    let v = run
        .assert_states(&[("b", NodeState::Pending), ("c", NodeState::Waiting)])
        .await;
    assert_eq!(v.state, PipelineState::Running);
    assert!(v.finished_at.is_none());
    run.drive(&[]).await;
    let v = run.view().await;
    assert_eq!(v.state, PipelineState::Completed, "{v:#?}");
    assert_eq!(run.delivered.iter().filter(|n| *n == "c").count(), 1);
}

/// Cancel: nodes not started (waiting or pending) never run; a running
/// one finishes but starts nothing; cancel again answers the same.
pub async fn cancel_stops_what_has_not_started<F: Fixture>(fx: &F)
where
    F::Queue: PipelineQueue,
{
    let p = pipeline(
        "cancel",
        vec![node("a", &[]), node("b", &["a"]), node("solo", &[])],
    );
    let mut run = Run::submit(fx, p).await;
    let mut first = run.take(1).await;
    let running = first.remove(0);
    let other = if running.task.node_name == "a" {
        "solo"
    } else {
        "a"
    };
    let cancelled = run.q().cancel_pipeline(&run.id).await.unwrap();
    assert_eq!(cancelled.state, PipelineState::Cancelled);
    assert_eq!(
        cancelled.cancelled, 2,
        "b (waiting) and {other} (pending) will not run"
    );
    assert!(
        run.take(10).await.is_empty(),
        "the pending node is not handed out"
    );
    run.finish(&running, Outcome::Ok(json!("finished"))).await;
    assert!(
        run.take(10).await.is_empty(),
        "nothing starts after a cancel"
    );
    let v = run.view().await;
    assert_eq!(v.state, PipelineState::Cancelled);
    assert_eq!(
        v.node(&running.task.node_name).unwrap().state,
        NodeState::Completed
    );
    assert_eq!(v.node("b").unwrap().state, NodeState::Cancelled);
    assert_eq!(v.node(other).unwrap().state, NodeState::Cancelled);
    assert!(v.finished_at.is_some());
    let again = run.q().cancel_pipeline(&run.id).await.unwrap();
    assert_eq!(again, cancelled);
    let id = v
        .node(other)
        .unwrap()
        .task_id
        .clone()
        .expect("it was enqueued");
    let status = run.q().task(&id).await.unwrap().map(|t| t.status);
    assert_eq!(
        status,
        Some(TaskStatus::DeadLetter {
            error: CANCELLED_ERROR.into()
        }),
        "met by a dequeue, it was dead-lettered instead of run"
    );
}
