//! Fencing: ack, fail and heartbeat with current, stale, wrong and
//! expired leases.

use super::support::{
    assert_invalid, assert_lease_lost, assert_not_found, completed, in_progress, Ctx,
};
use super::{late_finish_ms, rescue_after_ms, suite_config, Fixture};
use serde_json::json;
use spin_work_queue::config::{MAX_LEASE_MS, MIN_LEASE_MS};
use spin_work_queue::{Ack, LeasedQueue, TaskStatus, WorkQueuePort};

/// Ack completes the task; nothing changes it afterwards.
pub async fn ack_completes_the_task_and_the_result_is_stable<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "ack");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("node")).await;
    let leased = ctx.take(&id, "w", Some(1_000)).await;
    let output = json!({"rows": [1, 2, 3]});
    let status = q.ack(&id, &leased.lease.id, output.clone()).await.unwrap();
    assert_eq!(status, completed(output.clone()));
    let info = ctx.info(&id).await;
    assert_eq!(info.status, status);
    assert_eq!(
        ctx.results().await,
        vec![("node".to_string(), output.clone())]
    );

    assert_lease_lost(
        q.fail_leased(&id, &leased.lease.id, "late", true).await,
        &id,
    );
    assert_lease_lost(
        q.fail_leased(&id, &leased.lease.id, "late", false).await,
        &id,
    );
    assert_lease_lost(q.heartbeat(&id, &leased.lease.id, None).await, &id);
    assert_lease_lost(q.ack(&id, "some-other-lease", json!("other")).await, &id);
    ctx.advance(60_000); // long past the lease
    ctx.rescue().await;
    ctx.assert_nothing_due().await;
    assert_eq!(
        ctx.info(&id).await,
        info,
        "status, output and times are unchanged"
    );
    assert_eq!(ctx.results().await, vec![("node".to_string(), output)]);
}

/// A second ack with the same lease returns the first outcome.
pub async fn repeated_ack_with_the_same_lease_is_idempotent<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "ack-twice");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("node")).await;
    let before = q.stats().await.unwrap();
    let leased = ctx.take(&id, "w", None).await;
    let first = q.ack(&id, &leased.lease.id, json!("first")).await.unwrap();
    ctx.advance(10);
    let second = q.ack(&id, &leased.lease.id, json!("second")).await.unwrap();
    assert_eq!(first, completed(json!("first")));
    assert_eq!(second, first, "the first output is kept");
    assert_eq!(ctx.status(&id).await, first);
    assert_eq!(
        ctx.results().await,
        vec![("node".to_string(), json!("first"))]
    );
    if ctx.exclusive() {
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.completed, before.completed + 1, "completed once");
    }
}

/// A lease that was never the task's is refused everywhere.
pub async fn ack_with_a_wrong_lease_is_lease_lost<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "wrong-lease");
    let q = ctx.q();
    let ids = ctx.enqueue(vec![ctx.task("a"), ctx.task("b")]).await;
    let (a, b) = (&ids[0], &ids[1]);
    let made_up = ulid::Ulid::generate().to_string();
    assert_lease_lost(q.ack(a, &made_up, json!(0)).await, a);
    assert_eq!(
        ctx.status(a).await,
        TaskStatus::Pending,
        "a pending task has no lease"
    );

    let la = ctx.take(a, "w", None).await;
    let lb = ctx.take(b, "w", None).await;
    assert_lease_lost(q.ack(a, &made_up, json!(0)).await, a);
    assert_lease_lost(q.ack(a, &lb.lease.id, json!(0)).await, a);
    assert_lease_lost(q.fail_leased(a, &made_up, "x", true).await, a);
    assert_lease_lost(q.heartbeat(a, &lb.lease.id, None).await, a);
    assert_eq!(ctx.status(a).await, in_progress("w"));
    assert!(ctx.results().await.is_empty());

    assert_eq!(
        q.ack(a, &la.lease.id, json!("a")).await.unwrap(),
        completed(json!("a"))
    );
    assert_lease_lost(q.ack(b, &la.lease.id, json!(0)).await, b);
    assert_eq!(
        q.ack(b, &lb.lease.id, json!("b")).await.unwrap(),
        completed(json!("b"))
    );
}

/// Every operation on an unknown id says so.
pub async fn unknown_task_ids_are_not_found<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "unknown");
    let q = ctx.q();
    let id = ctx.id("missing");
    assert_not_found(q.ack(&id, "lease", json!(0)).await, &id);
    assert_not_found(q.fail_leased(&id, "lease", "boom", true).await, &id);
    assert_not_found(q.heartbeat(&id, "lease", None).await, &id);
    assert_not_found(q.redrive(&id).await, &id);
    assert_not_found(q.acknowledge(&id, json!(0)).await, &id);
    assert_not_found(q.fail(&id, "boom").await, &id);
    assert_eq!(q.task(&id).await.unwrap(), None);
    assert_eq!(q.status(&id).await.unwrap(), None);
    let results = q
        .ack_batch(vec![Ack {
            id: id.clone(),
            lease_id: "lease".into(),
            output: json!(0),
        }])
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_not_found(results.into_iter().next().unwrap(), &id);
    assert!(q.collect_results(&ctx.pipeline).await.unwrap().is_empty());
    // Ids that are not URL path segments name nothing either (over HTTP
    // they would resolve to another path).
    for odd in [".", ".."] {
        assert_not_found(q.ack(odd, "lease", json!(0)).await, odd);
        assert_not_found(q.heartbeat(odd, "lease", None).await, odd);
        assert_not_found(q.redrive(odd).await, odd);
        assert_eq!(q.task(odd).await.unwrap(), None, "{odd}");
        assert!(q.collect_results(odd).await.unwrap().is_empty(), "{odd}");
    }
}

/// A worker whose lease expired and was rescued can no longer finish the
/// task; the worker of the redelivery can.
pub async fn stale_worker_ack_is_rejected<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "stale");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("node")).await;
    let stale = ctx.take(&id, "worker-a", Some(1_000)).await;
    assert_eq!(stale.task.attempt, 0);

    ctx.advance(1_000 + rescue_after_ms());
    ctx.rescue_expecting(1, 0, 0).await;
    let info = ctx.info(&id).await;
    assert_eq!(info.status, TaskStatus::Pending);
    assert_eq!(info.task.attempt, 1, "rescued as the next attempt");

    let fresh = ctx.take(&id, "worker-b", None).await;
    assert_eq!(fresh.task.attempt, 1);
    assert_ne!(fresh.lease.id, stale.lease.id);
    assert_lease_lost(q.ack(&id, &stale.lease.id, json!("stale")).await, &id);
    assert_lease_lost(
        q.fail_leased(&id, &stale.lease.id, "stale", true).await,
        &id,
    );
    assert_lease_lost(q.heartbeat(&id, &stale.lease.id, None).await, &id);
    assert_eq!(ctx.status(&id).await, in_progress("worker-b"));

    let status = q.ack(&id, &fresh.lease.id, json!("fresh")).await.unwrap();
    assert_eq!(status, completed(json!("fresh")));
    assert_lease_lost(q.ack(&id, &stale.lease.id, json!("stale")).await, &id);
    assert_lease_lost(
        q.fail_leased(&id, &stale.lease.id, "late", false).await,
        &id,
    );
    assert_eq!(ctx.status(&id).await, completed(json!("fresh")));
    assert_eq!(
        ctx.results().await,
        vec![("node".to_string(), json!("fresh"))]
    );
}

/// An expired lease still finishes its task for a short while
/// (`late_finish_ms`): a worker that overran a little does not waste its
/// work.
pub async fn finishing_shortly_after_expiry_is_accepted<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "late-ack");
    let q = ctx.q();
    let ids = ctx.enqueue(vec![ctx.task("a"), ctx.task("b")]).await;
    let la = ctx.take(&ids[0], "w", Some(1_000)).await;
    let lb = ctx.take(&ids[1], "w", Some(1_000)).await;
    ctx.advance(1_000 + late_finish_ms() - 1);
    assert_eq!(
        q.ack(&ids[0], &la.lease.id, json!("a")).await.unwrap(),
        completed(json!("a"))
    );
    let outcome = q
        .fail_leased(&ids[1], &lb.lease.id, "late", false)
        .await
        .unwrap();
    let dead = TaskStatus::DeadLetter {
        error: "late".into(),
    };
    assert_eq!(outcome.status, dead);
    ctx.advance(rescue_after_ms());
    ctx.rescue_expecting(0, 0, 0).await;
    assert_eq!(ctx.status(&ids[0]).await, completed(json!("a")));
    assert_eq!(ctx.status(&ids[1]).await, dead);
}

/// Past the late window a lease can no longer finish its task, even
/// before maintenance rescued it: a rescue may be under way.
pub async fn finishing_past_the_late_window_is_lease_lost_before_any_rescue<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "too-late");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let leased = ctx.take(&id, "w", Some(1_000)).await;
    ctx.advance(1_000 + late_finish_ms());
    assert_lease_lost(q.ack(&id, &leased.lease.id, json!(1)).await, &id);
    assert_lease_lost(
        q.fail_leased(&id, &leased.lease.id, "late", true).await,
        &id,
    );
    assert_eq!(ctx.status(&id).await, in_progress("w"), "not rescued yet");
    ctx.advance(rescue_after_ms() - late_finish_ms());
    ctx.rescue_expecting(1, 0, 0).await;
    assert_eq!(ctx.take(&id, "w2", None).await.task.attempt, 1);
}

/// A heartbeat pushes the expiry out; rescue waits for the new expiry.
pub async fn heartbeat_extends_the_lease<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "heartbeat");
    let q = ctx.q();
    let ids = ctx.enqueue(vec![ctx.task("a"), ctx.task("b")]).await;
    let (a, b) = (&ids[0], &ids[1]);
    let la = ctx.take(a, "w", Some(1_000)).await;
    let lb = ctx.take(b, "w", Some(1_000)).await;
    let taken_at = la.lease.expires_at - 1_000;

    assert_invalid(
        q.heartbeat(a, &la.lease.id, Some(MIN_LEASE_MS - 1)).await,
        "lease too short",
    );
    assert_invalid(
        q.heartbeat(a, &la.lease.id, Some(MAX_LEASE_MS + 1)).await,
        "lease too long",
    );
    let default = q.heartbeat(b, &lb.lease.id, None).await.unwrap();
    assert_eq!(
        default,
        taken_at + suite_config().default_lease_ms,
        "default lease length"
    );

    ctx.advance(800);
    let expiry = q.heartbeat(a, &la.lease.id, Some(1_000)).await.unwrap();
    assert_eq!(expiry, taken_at + 1_800);
    // Past the first expiry's rescue time, before the new one's.
    ctx.advance(999 + rescue_after_ms());
    ctx.rescue_expecting(0, 0, 0).await;
    assert_eq!(ctx.status(a).await, in_progress("w"));

    ctx.advance(1);
    ctx.rescue_expecting(1, 0, 0).await;
    assert_eq!(ctx.status(a).await, TaskStatus::Pending);
    assert_eq!(
        ctx.status(b).await,
        in_progress("w"),
        "b's lease runs for 30 s"
    );
    assert_lease_lost(q.heartbeat(a, &la.lease.id, None).await, a);
    assert_eq!(ctx.take(a, "w2", None).await.task.attempt, 1);
}

/// An expired lease cannot be extended, even before it is rescued.
pub async fn heartbeat_after_lease_expiry_is_rejected<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "heartbeat-late");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let leased = ctx.take(&id, "w", Some(1_000)).await;
    ctx.advance(999);
    let expiry = q
        .heartbeat(&id, &leased.lease.id, Some(MIN_LEASE_MS))
        .await
        .unwrap();
    assert_eq!(expiry, leased.lease.expires_at - 1 + MIN_LEASE_MS);
    ctx.advance(MIN_LEASE_MS); // now == expiry
    assert_lease_lost(q.heartbeat(&id, &leased.lease.id, None).await, &id);
    assert_eq!(ctx.status(&id).await, in_progress("w"));
    assert_eq!(
        q.ack(&id, &leased.lease.id, json!(1)).await.unwrap(),
        completed(json!(1))
    );
}

/// A batch ack reports each item on its own, in order.
pub async fn ack_batch_reports_each_item<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "ack-batch");
    let q = ctx.q();
    let ids = ctx
        .enqueue(vec![ctx.task("a"), ctx.task("b"), ctx.task("c")])
        .await;
    let leased = ctx.dequeue("w", 3, None).await;
    let order: Vec<_> = leased.iter().map(|l| l.task.id.clone()).collect();
    assert_eq!(order, ids);
    let missing = ctx.id("missing");
    let ack = |i: usize, lease: &str, out: serde_json::Value| Ack {
        id: ids[i].clone(),
        lease_id: lease.to_string(),
        output: out,
    };
    let results = q
        .ack_batch(vec![
            ack(0, &leased[0].lease.id, json!("a")),
            ack(1, &leased[2].lease.id, json!("b")),
            ack(2, &leased[2].lease.id, json!("c")),
            Ack {
                id: missing.clone(),
                lease_id: leased[0].lease.id.clone(),
                output: json!(0),
            },
            ack(0, &leased[0].lease.id, json!("a-again")),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    let mut results = results.into_iter();
    assert_eq!(results.next().unwrap().unwrap(), completed(json!("a")));
    assert_lease_lost(results.next().unwrap(), &ids[1]);
    assert_eq!(results.next().unwrap().unwrap(), completed(json!("c")));
    assert_not_found(results.next().unwrap(), &missing);
    assert_eq!(
        results.next().unwrap().unwrap(),
        completed(json!("a")),
        "idempotent in a batch"
    );

    assert_eq!(ctx.status(&ids[1]).await, in_progress("w"));
    let want = vec![("a".to_string(), json!("a")), ("c".to_string(), json!("c"))];
    assert_eq!(ctx.results().await, want);
}

/// The acks of one batch count as if made in turn: a stale lease before
/// the live one of the same task loses, the live one completes it.
pub async fn a_batch_with_a_stale_then_a_live_ack_of_one_task_completes_it<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "batch-stale");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let stale = ctx.take(&id, "w", Some(1_000)).await;
    ctx.advance(1_000 + rescue_after_ms());
    ctx.rescue().await;
    let live = ctx.take(&id, "w", None).await;
    let ack = |lease: &str, out: serde_json::Value| Ack {
        id: id.clone(),
        lease_id: lease.to_string(),
        output: out,
    };
    let results = q
        .ack_batch(vec![
            ack(&stale.lease.id, json!("stale")),
            ack(&live.lease.id, json!("live")),
        ])
        .await
        .unwrap();
    let mut results = results.into_iter();
    assert_lease_lost(results.next().unwrap(), &id);
    assert_eq!(results.next().unwrap().unwrap(), completed(json!("live")));
    assert_eq!(ctx.status(&id).await, completed(json!("live")));
}

/// An output nested deeper than `MAX_JSON_DEPTH` is refused with
/// `invalid_output`; the lease stays live for a valid ack.
pub async fn outputs_nested_too_deep_are_refused<F: Fixture>(fx: &F) {
    use spin_work_queue::config::MAX_JSON_DEPTH;
    use spin_work_queue::{InvalidKind, QueueError};
    let ctx = Ctx::new(fx, "deep-out");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let l = ctx.take(&id, "w", None).await;
    let mut deep = json!(0);
    for _ in 0..=MAX_JSON_DEPTH {
        deep = json!({ "x": deep });
    }
    match q.ack(&id, &l.lease.id, deep).await {
        Err(QueueError::Invalid(i)) => assert_eq!(i.kind, InvalidKind::Output),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(ctx.status(&id).await, in_progress("w"));
    assert_eq!(
        q.ack(&id, &l.lease.id, json!("flat")).await.unwrap(),
        completed(json!("flat"))
    );
}
