//! Failure: retries with backoff, attempt numbering, the dead-letter list
//! and redrive.

use super::support::{assert_lease_lost, completed, in_progress, Ctx};
use super::{rescue_after_ms, Fixture};
use serde_json::json;
use spin_work_queue::{LeasedQueue, NewTask, QueueError, TaskStatus};

fn failed(error: &str, attempt: u32) -> TaskStatus {
    TaskStatus::Failed {
        error: error.to_string(),
        attempt,
    }
}

fn dead(error: &str) -> TaskStatus {
    TaskStatus::DeadLetter {
        error: error.to_string(),
    }
}

/// Each retry is the next attempt, after `1 s · 2^attempt`; failing the
/// last attempt dead-letters the task.
pub async fn retries_number_attempts_and_dead_letter_after_max_attempts<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "attempts");
    let q = ctx.q();
    let id = ctx
        .enqueue_one(NewTask {
            max_attempts: Some(3),
            ..ctx.task("n")
        })
        .await;
    let created = ctx.info(&id).await.created_at;

    let l0 = ctx.take(&id, "w", None).await;
    assert_eq!(l0.task.attempt, 0);
    assert_eq!(
        q.fail_leased(&id, &l0.lease.id, "boom-0", true)
            .await
            .unwrap()
            .status,
        failed("boom-0", 0)
    );
    assert_eq!(ctx.status(&id).await, failed("boom-0", 0));

    ctx.advance(1_000);
    ctx.rescue().await;
    let l1 = ctx.take(&id, "w", None).await;
    assert_eq!(l1.task.attempt, 1);
    assert_eq!(ctx.info(&id).await.task.attempt, 1);
    assert_eq!(
        q.fail_leased(&id, &l1.lease.id, "boom-1", true)
            .await
            .unwrap()
            .status,
        failed("boom-1", 1)
    );

    ctx.advance(1_999); // the second backoff is 2 s
    ctx.rescue().await;
    ctx.assert_nothing_due().await;
    ctx.advance(1);
    ctx.rescue().await;
    let l2 = ctx.take(&id, "w", None).await;
    assert_eq!(l2.task.attempt, 2);
    assert_eq!(
        q.fail_leased(&id, &l2.lease.id, "boom-2", true)
            .await
            .unwrap()
            .status,
        dead("boom-2")
    );
    assert_eq!(ctx.status(&id).await, dead("boom-2"));

    let entries = q.dead_letters(1_000).await.unwrap();
    let entry = entries
        .iter()
        .find(|d| d.task.id == id)
        .expect("listed as a dead letter");
    assert_eq!(entry.error, "boom-2");
    assert_eq!(entry.failed_at, created + 3_000);
    assert_eq!(
        entry.task.attempt, 2,
        "the entry shows the last attempt run"
    );
    assert_eq!(entry.task.pipeline_id, ctx.pipeline);

    ctx.advance(120_000);
    ctx.rescue().await;
    ctx.assert_nothing_due().await;
    assert_eq!(ctx.status(&id).await, dead("boom-2"));
}

/// A retry is not delivered before its backoff and is after it.
pub async fn retries_wait_for_the_backoff<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "backoff");
    let q = ctx.q();
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let before = q.stats().await.unwrap();
    let leased = ctx.take(&id, "w", None).await;
    let failed_at = leased.lease.expires_at - super::suite_config().default_lease_ms;
    let outcome = q
        .fail_leased(&id, &leased.lease.id, "boom", true)
        .await
        .unwrap();
    assert_eq!(
        outcome.retry_at,
        Some(failed_at + 1_000),
        "the backoff is 1 s"
    );
    if ctx.exclusive() {
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.failed, before.failed + 1);
        assert_eq!(stats.pending + 1, before.pending);
    }

    ctx.advance(999);
    ctx.rescue_expecting(0, 0, 0).await;
    ctx.assert_nothing_due().await;
    assert_eq!(ctx.status(&id).await, failed("boom", 0));

    ctx.advance(1);
    ctx.rescue_expecting(0, 0, 1).await;
    let retry = ctx.take(&id, "w", None).await;
    assert_eq!(retry.task.attempt, 1);
    assert_ne!(retry.lease.id, leased.lease.id);
    assert_lease_lost(q.ack(&id, &leased.lease.id, json!(0)).await, &id);
    assert_eq!(
        q.ack(&id, &retry.lease.id, json!(1)).await.unwrap(),
        completed(json!(1))
    );
}

/// `retryable: false` dead-letters at once, attempts left or not.
pub async fn non_retryable_failure_dead_letters_immediately<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "permanent");
    let q = ctx.q();
    let id = ctx
        .enqueue_one(NewTask {
            max_attempts: Some(5),
            ..ctx.task("n")
        })
        .await;
    let leased = ctx.take(&id, "w", None).await;
    let outcome = q
        .fail_leased(&id, &leased.lease.id, "400 bad input", false)
        .await
        .unwrap();
    assert_eq!(outcome.status, dead("400 bad input"));
    assert_eq!(outcome.retry_at, None, "a dead letter has no retry");
    assert_eq!(ctx.dead_letter_ids().await, vec![id.clone()]);

    ctx.advance(120_000);
    ctx.rescue().await;
    ctx.assert_nothing_due().await;
    assert_eq!(ctx.status(&id).await, dead("400 bad input"));
    assert_lease_lost(
        q.fail_leased(&id, &leased.lease.id, "again", false).await,
        &id,
    );
}

/// The dead-letter list is newest first and honours its limit.
pub async fn dead_letters_are_listed_newest_first<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "dead-order");
    let q = ctx.q();
    let ids = ctx
        .enqueue(vec![ctx.task("a"), ctx.task("b"), ctx.task("c")])
        .await;
    let leased = ctx.dequeue("w", 3, None).await;
    let order: Vec<_> = leased.iter().map(|l| l.task.id.clone()).collect();
    assert_eq!(order, ids);
    let created = ctx.info(&ids[0]).await.created_at;
    for (i, l) in [&leased[1], &leased[0], &leased[2]].into_iter().enumerate() {
        ctx.advance(10);
        let status = q
            .fail_leased(&l.task.id, &l.lease.id, &format!("e{i}"), false)
            .await
            .unwrap();
        assert_eq!(status.status, dead(&format!("e{i}")));
    }
    let want = vec![ids[2].clone(), ids[0].clone(), ids[1].clone()];
    assert_eq!(ctx.dead_letter_ids().await, want);
    let all = q.dead_letters(1_000).await.unwrap();
    let times: Vec<_> = all
        .iter()
        .filter(|d| d.task.pipeline_id == ctx.pipeline)
        .map(|d| d.failed_at)
        .collect();
    assert_eq!(times, vec![created + 30, created + 20, created + 10]);
    if ctx.exclusive() {
        let two: Vec<_> = q
            .dead_letters(2)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.task.id)
            .collect();
        assert_eq!(two, want[..2].to_vec());
        assert!(q.dead_letters(0).await.unwrap().is_empty());
    }
}

/// Redrive puts a dead letter back as attempt 0, behind what is already
/// due, and takes it off the list.
pub async fn redrive_requeues_a_dead_letter_at_the_back_with_attempts_reset<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "redrive");
    let q = ctx.q();
    let x = ctx
        .enqueue_one(NewTask {
            max_attempts: Some(2),
            ..ctx.task("x")
        })
        .await;
    ctx.take(&x, "w", Some(1_000)).await;
    ctx.advance(1_000 + rescue_after_ms());
    ctx.rescue().await;
    let l1 = ctx.take(&x, "w", None).await;
    assert_eq!(l1.task.attempt, 1);
    assert_eq!(
        q.fail_leased(&x, &l1.lease.id, "boom", true)
            .await
            .unwrap()
            .status,
        dead("boom")
    );
    assert_eq!(ctx.dead_letter_ids().await, vec![x.clone()]);

    let y = ctx.enqueue_one(ctx.task("y")).await;
    ctx.advance(5);
    assert_eq!(q.redrive(&x).await.unwrap(), TaskStatus::Pending);
    let info = ctx.info(&x).await;
    assert_eq!(info.status, TaskStatus::Pending);
    assert_eq!(info.task.attempt, 0, "attempts are reset");
    assert_eq!(info.updated_at, info.created_at + 1_005 + rescue_after_ms());
    assert!(ctx.dead_letter_ids().await.is_empty(), "no longer listed");
    let z = ctx.enqueue_one(ctx.task("z")).await;

    let got = ctx.drain("w").await;
    let order: Vec<_> = got.iter().map(|l| l.task.id.clone()).collect();
    assert_eq!(order, vec![y, x.clone(), z]);
    assert_eq!(got[1].task.attempt, 0);
    assert_eq!(
        q.ack(&x, &got[1].lease.id, json!("ok")).await.unwrap(),
        completed(json!("ok"))
    );
}

/// Only a dead-lettered task can be redriven.
pub async fn redrive_of_a_task_that_is_not_dead_lettered_is_wrong_state<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "wrong-state");
    let q = ctx.q();
    let ids = ctx
        .enqueue(vec![
            ctx.task("a"),
            ctx.task("b"),
            ctx.task("c"),
            ctx.task("d"),
        ])
        .await;
    let leased = ctx.dequeue("w", 3, None).await;
    assert_eq!(leased.len(), 3);
    q.ack(&ids[0], &leased[0].lease.id, json!(0)).await.unwrap();
    q.fail_leased(&ids[1], &leased[1].lease.id, "boom", true)
        .await
        .unwrap();
    let cases = [
        (&ids[0], completed(json!(0))),
        (&ids[1], failed("boom", 0)),
        (&ids[2], in_progress("w")),
        (&ids[3], TaskStatus::Pending),
    ];
    for (id, status) in cases {
        match q.redrive(id).await {
            Err(QueueError::WrongState { id: got, .. }) => assert_eq!(&got, id),
            other => panic!("redrive of a {status:?} task: expected WrongState, got {other:?}"),
        }
        assert_eq!(ctx.status(id).await, status, "redrive changed nothing");
    }
}

/// A lease that expires on the last attempt dead-letters the task.
pub async fn expired_lease_on_the_last_attempt_dead_letters_the_task<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "last-lease");
    let q = ctx.q();
    let id = ctx
        .enqueue_one(NewTask {
            max_attempts: Some(1),
            ..ctx.task("n")
        })
        .await;
    let created = ctx.info(&id).await.created_at;
    let leased = ctx.take(&id, "w", Some(1_000)).await;

    // Rescued once the expiry plus the rescue delay has passed.
    ctx.advance(999 + rescue_after_ms());
    ctx.rescue_expecting(0, 0, 0).await;
    assert_eq!(ctx.status(&id).await, in_progress("w"));

    ctx.advance(1);
    ctx.rescue_expecting(0, 1, 0).await;
    assert_eq!(ctx.status(&id).await, dead("lease expired"));
    let entries = q.dead_letters(1_000).await.unwrap();
    let entry = entries
        .iter()
        .find(|d| d.task.id == id)
        .expect("listed as a dead letter");
    assert_eq!(
        (entry.error.as_str(), entry.failed_at),
        ("lease expired", created + 1_000 + rescue_after_ms())
    );
    assert_lease_lost(q.ack(&id, &leased.lease.id, json!(1)).await, &id);
    ctx.assert_nothing_due().await;
}
