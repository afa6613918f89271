//! Delivery: the port example flow, FIFO order, batch limits, leases and task
//! metadata.

use super::support::{assert_invalid, completed, in_progress, Ctx};
use super::{rescue_after_ms, suite_config, Fixture};
use serde_json::json;
use spin_work_queue::config::{MAX_DEQUEUE_BATCH, MAX_LEASE_MS, MIN_LEASE_MS};
use spin_work_queue::{DequeueRequest, LeasedQueue, NewTask, TaskStatus, WorkQueuePort, WorkTask};

/// The port's doc example, carried through to the results.
pub async fn port_doc_example_flow_completes<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "port-example");
    let q = ctx.q();
    let before = q.pending_count().await.unwrap();
    q.enqueue(WorkTask {
        id: String::new(), // generated
        pipeline_id: ctx.pipeline.clone(),
        node_name: "fetch".to_string(),
        input: json!({"url": "https://example.com"}),
        wave: 0,
        attempt: 0,
        idempotency_key: String::new(), // defaults to the id
    })
    .await
    .unwrap();
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before + 1);
    }

    let task = ctx.try_dequeue_own().await.expect("the task is delivered");
    assert!(
        ulid::Ulid::from_string(&task.id).is_ok(),
        "generated id {} is a ULID",
        task.id
    );
    assert_eq!(task.idempotency_key, task.id);
    assert_eq!(task.node_name, "fetch");
    assert_eq!(task.input, json!({"url": "https://example.com"}));
    assert_eq!(task.attempt, 0);
    assert_eq!(
        ctx.status(&task.id).await,
        in_progress(&suite_config().port_worker_id)
    );
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before);
        assert!(q.try_dequeue().await.unwrap().is_none());
    }

    let output = json!({"status": 200});
    q.acknowledge(&task.id, output.clone()).await.unwrap();
    assert_eq!(ctx.status(&task.id).await, completed(output.clone()));
    assert_eq!(ctx.results().await, vec![("fetch".to_string(), output)]);
}

/// Tasks come out in the order they went in, across batches and calls.
pub async fn tasks_are_delivered_in_fifo_order<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "fifo");
    let mut want = ctx
        .enqueue((0..5).map(|i| ctx.task(&format!("n{i}"))).collect())
        .await;
    want.push(ctx.enqueue_one(ctx.task("n5")).await);
    want.push(ctx.enqueue_one(ctx.task("n6")).await);

    let mut got = Vec::new();
    for id in &want {
        got.push(ctx.take(id, "w", None).await.task.id);
    }
    assert_eq!(got, want);
    ctx.assert_nothing_due().await;

    let want = ctx
        .enqueue((0..20).map(|i| ctx.task(&format!("m{i}"))).collect())
        .await;
    let got: Vec<_> = ctx
        .dequeue("w", 100, None)
        .await
        .into_iter()
        .map(|l| l.task.id)
        .collect();
    assert_eq!(got, want, "one batch dequeue keeps the order too");
}

/// A retry and a rescued task join the line behind what was already due.
pub async fn retried_and_rescued_tasks_go_to_the_back_of_the_line<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "back-of-line");
    let ids = ctx
        .enqueue(vec![ctx.task("a"), ctx.task("b"), ctx.task("c")])
        .await;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let la = ctx.take(a, "w", Some(2_000)).await;
    let lb = ctx.take(b, "w", Some(60_000)).await;
    let status = ctx
        .q()
        .fail_leased(b, &lb.lease.id, "boom", true)
        .await
        .unwrap();
    assert!(
        matches!(status.status, TaskStatus::Failed { attempt: 0, .. }),
        "{status:?}"
    );

    ctx.advance(500);
    let d = ctx.enqueue_one(ctx.task("d")).await;
    ctx.advance(500); // b's retry is due (backoff 1 s)
    ctx.rescue().await;
    let e = ctx.enqueue_one(ctx.task("e")).await;
    ctx.advance(1_000 + rescue_after_ms()); // a's lease expired, rescue time
    ctx.rescue().await;
    assert_eq!(ctx.info(a).await.status, TaskStatus::Pending);
    let f = ctx.enqueue_one(ctx.task("f")).await;

    let got = ctx.drain("w").await;
    let order: Vec<_> = got.iter().map(|l| l.task.id.clone()).collect();
    assert_eq!(order, vec![c.clone(), d, b.clone(), e, a.clone(), f]);
    let attempts: Vec<_> = got.iter().map(|l| l.task.attempt).collect();
    assert_eq!(attempts, vec![0, 0, 1, 0, 1, 0]);
    assert_ne!(got[4].lease.id, la.lease.id, "a redelivery has a new lease");
}

/// `max` bounds every dequeue.
pub async fn dequeue_returns_at_most_max_tasks<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "max");
    let want = ctx
        .enqueue((0..5).map(|i| ctx.task(&format!("n{i}"))).collect())
        .await;
    let mut got = Vec::new();
    for expected in [2, 2, 1, 0] {
        let batch = ctx.dequeue("w", 2, None).await;
        assert_eq!(batch.len(), expected);
        got.extend(batch.into_iter().map(|l| l.task.id));
    }
    assert_eq!(got, want);

    let more = ctx
        .enqueue((0..3).map(|i| ctx.task(&format!("k{i}"))).collect())
        .await;
    let one = ctx.dequeue("w", 1, None).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].task.id, more[0]);
    let leases: std::collections::HashSet<_> = ctx
        .drain("w")
        .await
        .into_iter()
        .map(|l| l.lease.id)
        .collect();
    assert_eq!(leases.len(), 2, "every delivery has its own lease id");
    assert!(!leases.contains(&one[0].lease.id));
}

/// Bad dequeue requests are `Invalid` and deliver nothing.
pub async fn dequeue_rejects_invalid_requests<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "dequeue-invalid");
    let id = ctx.enqueue_one(ctx.task("n")).await;
    let ok = DequeueRequest::new("w", 1);
    let bad = [
        (
            "max 0",
            DequeueRequest {
                max: 0,
                ..ok.clone()
            },
        ),
        (
            "max over the limit",
            DequeueRequest {
                max: MAX_DEQUEUE_BATCH + 1,
                ..ok.clone()
            },
        ),
        (
            "empty worker id",
            DequeueRequest {
                worker_id: String::new(),
                ..ok.clone()
            },
        ),
        (
            "control character in worker id",
            DequeueRequest {
                worker_id: "w\n".into(),
                ..ok.clone()
            },
        ),
        (
            "lease too short",
            DequeueRequest {
                lease_ms: Some(MIN_LEASE_MS - 1),
                ..ok.clone()
            },
        ),
        (
            "lease too long",
            DequeueRequest {
                lease_ms: Some(MAX_LEASE_MS + 1),
                ..ok.clone()
            },
        ),
    ];
    for (what, req) in bad {
        assert_invalid(ctx.q().dequeue(&req).await, what);
    }
    assert_eq!(
        ctx.status(&id).await,
        TaskStatus::Pending,
        "nothing was delivered"
    );

    let got = ctx
        .dequeue("w", MAX_DEQUEUE_BATCH, Some(MIN_LEASE_MS))
        .await;
    assert_eq!(got.len(), 1, "the limits themselves are accepted");
    assert_eq!(got[0].task.id, id);
}

/// `task()` reports the options and the times of creation and last change.
pub async fn task_metadata_tracks_creation_and_updates<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "metadata");
    let config = suite_config();
    let custom = NewTask {
        wave: 2,
        max_attempts: Some(5),
        idempotency_key: Some(ctx.id("key")),
        ..ctx.task("custom")
    };
    let key = custom.idempotency_key.clone().unwrap();
    let input = custom.input.clone();
    let ids = ctx.enqueue(vec![custom, ctx.task("plain")]).await;
    let (custom, plain) = (&ids[0], &ids[1]);

    let info = ctx.info(custom).await;
    assert_eq!(info.task.id, *custom);
    assert_eq!(info.task.pipeline_id, ctx.pipeline);
    assert_eq!(info.task.node_name, "custom");
    assert_eq!(info.task.input, input);
    assert_eq!(info.task.wave, 2);
    assert_eq!(info.task.attempt, 0);
    assert_eq!(info.task.idempotency_key, key);
    assert_eq!(info.status, TaskStatus::Pending);
    assert_eq!(info.max_attempts, 5);
    assert_eq!(info.updated_at, info.created_at);
    let created = info.created_at;
    assert_eq!(
        ctx.info(plain).await.max_attempts,
        config.default_max_attempts
    );

    ctx.advance(250);
    let leased = ctx.take(custom, "meta-worker", Some(1_000)).await;
    assert_eq!(
        leased.lease.expires_at,
        created + 250 + 1_000,
        "created_at is the enqueue time"
    );
    let info = ctx.info(custom).await;
    assert_eq!(info.status, in_progress("meta-worker"));
    assert_eq!((info.created_at, info.updated_at), (created, created + 250));

    ctx.advance(100);
    let output = json!({"ok": true});
    ctx.q()
        .ack(custom, &leased.lease.id, output.clone())
        .await
        .unwrap();
    let info = ctx.info(custom).await;
    assert_eq!(info.status, completed(output));
    assert_eq!((info.created_at, info.updated_at), (created, created + 350));

    let leased = ctx.take(plain, "meta-worker", None).await;
    assert_eq!(
        leased.lease.expires_at,
        created + 350 + config.default_lease_ms,
        "the default lease is the config's"
    );
}
