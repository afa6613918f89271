//! Results, counts and the port's lease-less acknowledge / fail.

use super::support::{assert_lease_lost, completed, in_progress, Ctx};
use super::{rescue_after_ms, suite_config, Fixture};
use serde_json::json;
use spin_work_queue::{LeasedQueue, NewTask, QueueStats, TaskStatus, WorkQueuePort};

/// Results come in completion order, only for completed tasks of the
/// pipeline asked for.
pub async fn collect_results_lists_completed_tasks_in_completion_order<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "results");
    let q = ctx.q();
    let other = Ctx::new(fx, "results-other");
    let ids = ctx
        .enqueue(vec![
            ctx.task("a"),
            ctx.task("b"),
            ctx.task("c"),
            ctx.task("d"),
        ])
        .await;
    let e = other.enqueue_one(other.task("e")).await;
    let leased = ctx.dequeue("w", 4, None).await;
    let order: Vec<_> = leased.iter().map(|l| l.task.id.clone()).collect();
    assert_eq!(order, ids);
    let le = other.take(&e, "w", None).await;

    q.ack(&ids[2], &leased[2].lease.id, json!({"c": 3}))
        .await
        .unwrap();
    ctx.advance(1);
    q.ack(&ids[0], &leased[0].lease.id, json!({"a": 1}))
        .await
        .unwrap();
    q.fail_leased(&ids[1], &leased[1].lease.id, "boom", true)
        .await
        .unwrap();
    q.ack(&e, &le.lease.id, json!("e")).await.unwrap();
    let want = vec![
        ("c".to_string(), json!({"c": 3})),
        ("a".to_string(), json!({"a": 1})),
    ];
    assert_eq!(
        ctx.results().await,
        want,
        "d is running and b failed: not listed"
    );
    assert_eq!(other.results().await, vec![("e".to_string(), json!("e"))]);
    assert!(q
        .collect_results(&ctx.id("no-such-pipeline"))
        .await
        .unwrap()
        .is_empty());

    q.ack(&ids[3], &leased[3].lease.id, json!(null))
        .await
        .unwrap();
    ctx.advance(1_000);
    ctx.rescue().await;
    let retry = ctx.take(&ids[1], "w", None).await;
    q.ack(&ids[1], &retry.lease.id, json!({"b": 2}))
        .await
        .unwrap();
    let mut want = want;
    want.push(("d".to_string(), json!(null)));
    want.push(("b".to_string(), json!({"b": 2})));
    assert_eq!(ctx.results().await, want);
}

fn delta(before: QueueStats, after: QueueStats) -> [i64; 5] {
    let d = |a: u64, b: u64| b as i64 - a as i64;
    [
        d(before.pending, after.pending),
        d(before.in_progress, after.in_progress),
        d(before.completed, after.completed),
        d(before.failed, after.failed),
        d(before.dead_letter, after.dead_letter),
    ]
}

/// `stats` and `pending_count` follow every transition (exclusive stores
/// only: other tests' tasks would change the counts).
pub async fn stats_count_tasks_by_state<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "stats");
    if !ctx.exclusive() {
        eprintln!("stats_count_tasks_by_state: skipped, the store is shared between tests");
        return;
    }
    let q = ctx.q();
    let s0 = q.stats().await.unwrap();
    let check = |want: [i64; 5], what: &'static str| async move {
        let stats = q.stats().await.unwrap();
        assert_eq!(
            delta(s0, stats),
            want,
            "{what}: [pending, in_progress, completed, failed, dead_letter]"
        );
        assert_eq!(
            q.pending_count().await.unwrap() as u64,
            stats.pending,
            "{what}: pending_count"
        );
    };
    let due = |want: u64, what: &'static str| async move {
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.due - s0.due, want, "{what}: due");
    };

    let ids = ctx
        .enqueue(vec![
            ctx.task("ok"),
            ctx.task("retry"),
            NewTask {
                max_attempts: Some(1),
                ..ctx.task("dead")
            },
            NewTask {
                delay_ms: 10_000,
                ..ctx.task("later")
            },
        ])
        .await;
    check([4, 0, 0, 0, 0], "enqueued").await;
    due(3, "enqueued: the delayed task is not due").await;
    let leased = ctx.dequeue("w", 4, None).await;
    assert_eq!(leased.len(), 3, "the delayed task is not due");
    check([1, 3, 0, 0, 0], "dequeued").await;
    due(0, "dequeued").await;
    q.ack(&ids[0], &leased[0].lease.id, json!(0)).await.unwrap();
    check([1, 2, 1, 0, 0], "acked").await;
    q.fail_leased(&ids[1], &leased[1].lease.id, "boom", true)
        .await
        .unwrap();
    check([1, 1, 1, 1, 0], "failed, retry scheduled").await;
    q.fail_leased(&ids[2], &leased[2].lease.id, "boom", true)
        .await
        .unwrap();
    check([1, 0, 1, 1, 1], "failed on the last attempt").await;

    ctx.advance(1_000);
    ctx.rescue_expecting(0, 0, 1).await;
    check([2, 0, 1, 0, 1], "retry due").await;
    due(1, "retry due").await;
    q.redrive(&ids[2]).await.unwrap();
    check([3, 0, 1, 0, 0], "redriven").await;
    due(2, "redriven").await;
    let leased = ctx.dequeue("w", 4, None).await;
    assert_eq!(leased.len(), 2);
    check([1, 2, 1, 0, 0], "redelivered").await;

    ctx.advance(suite_config().default_lease_ms + rescue_after_ms());
    // The retry goes back as attempt 2 of 3; the redriven task (1 attempt
    // allowed) is dead-lettered; the delayed task is due.
    ctx.rescue_expecting(1, 1, 1).await;
    check([2, 0, 1, 0, 1], "leases expired, delay over").await;
}

/// The port's acknowledge / fail need no lease after `try_dequeue`, and
/// finish a task taken by someone else only while it runs.
pub async fn port_acknowledge_and_fail_work_without_a_lease<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "port");
    let q = ctx.q();
    let port_worker = suite_config().port_worker_id;
    let (a, b, c, d) = (
        ctx.work_task("a"),
        ctx.work_task("b"),
        ctx.work_task("c"),
        ctx.work_task("d"),
    );
    for t in [&a, &b] {
        q.enqueue(t.clone()).await.unwrap();
    }

    let got = ctx.try_dequeue_own().await.expect("a is delivered");
    assert_eq!((got.id.as_str(), got.attempt), (a.id.as_str(), 0));
    assert_eq!(ctx.status(&a.id).await, in_progress(&port_worker));
    q.acknowledge(&a.id, json!("a")).await.unwrap();
    assert_eq!(ctx.status(&a.id).await, completed(json!("a")));
    assert_lease_lost(q.acknowledge(&a.id, json!("again")).await, &a.id);
    assert_eq!(ctx.status(&a.id).await, completed(json!("a")));

    let got = ctx.try_dequeue_own().await.expect("b is delivered");
    assert_eq!(got.id, b.id);
    q.fail(&b.id, "boom").await.unwrap();
    let failed = TaskStatus::Failed {
        error: "boom".into(),
        attempt: 0,
    };
    assert_eq!(
        ctx.status(&b.id).await,
        failed,
        "a port failure is retryable"
    );

    q.enqueue(c.clone()).await.unwrap();
    let lc = ctx.take(&c.id, "other-worker", None).await;
    q.acknowledge(&c.id, json!("c")).await.unwrap();
    assert_eq!(ctx.status(&c.id).await, completed(json!("c")));
    let again = q.ack(&c.id, &lc.lease.id, json!("late")).await.unwrap();
    assert_eq!(
        again,
        completed(json!("c")),
        "the port used the running lease"
    );

    q.enqueue(d.clone()).await.unwrap();
    assert_lease_lost(q.acknowledge(&d.id, json!("d")).await, &d.id);
    assert_lease_lost(q.fail(&d.id, "boom").await, &d.id);
    assert_eq!(ctx.status(&d.id).await, TaskStatus::Pending);
    assert_eq!(
        ctx.results().await,
        vec![("a".to_string(), json!("a")), ("c".to_string(), json!("c"))]
    );
}

/// A port lease that expired and was rescued stays lost: the port never
/// finishes the redelivery it did not take.
pub async fn port_acknowledge_is_fenced_by_the_remembered_lease<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "port-fenced");
    let q = ctx.q();
    let t = ctx.work_task("n");
    q.enqueue(t.clone()).await.unwrap();
    assert_eq!(
        ctx.try_dequeue_own().await.map(|w| w.id),
        Some(t.id.clone())
    );

    ctx.advance(suite_config().default_lease_ms + rescue_after_ms());
    ctx.rescue_expecting(1, 0, 0).await;
    let redelivered = ctx.take(&t.id, "worker-b", None).await;
    assert_eq!(redelivered.task.attempt, 1);
    assert_lease_lost(q.acknowledge(&t.id, json!("port")).await, &t.id);
    assert_lease_lost(q.fail(&t.id, "port").await, &t.id);
    assert_eq!(ctx.status(&t.id).await, in_progress("worker-b"));

    q.ack(&t.id, &redelivered.lease.id, json!("b"))
        .await
        .unwrap();
    assert_eq!(ctx.results().await, vec![("n".to_string(), json!("b"))]);
}
