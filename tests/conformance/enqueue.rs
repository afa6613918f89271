//! Enqueue: generated ids, idempotency, validation of whole batches and
//! delays.

use super::support::{assert_invalid, completed, Ctx};
use super::Fixture;
use serde_json::json;
use spin_work_queue::config::{MAX_DELAY_MS, MAX_ENQUEUE_BATCH};
use spin_work_queue::model::MAX_ID_LEN;
use spin_work_queue::{Enqueued, LeasedQueue, NewTask, TaskStatus, WorkQueuePort};

fn fresh(id: &str) -> Enqueued {
    Enqueued {
        id: id.to_string(),
        duplicate: false,
    }
}

fn dup(id: &str) -> Enqueued {
    Enqueued {
        id: id.to_string(),
        duplicate: true,
    }
}

/// Ids are generated when absent; a known key or an existing id is a
/// duplicate reporting the existing task, in the same batch and later.
pub async fn batch_enqueue_generates_ids_and_reports_duplicates<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "dedup");
    let q = ctx.q();
    let before = q.pending_count().await.unwrap();
    let x = ctx.id("x");
    let key = ctx.id("key");
    let anon = || NewTask::new(ctx.pipeline.clone(), "n", json!(null));
    let keyed = || NewTask {
        idempotency_key: Some(key.clone()),
        ..anon()
    };
    let out = q
        .enqueue_batch(vec![
            anon(),
            NewTask {
                id: Some(x.clone()),
                ..anon()
            },
            keyed(),
            keyed(),
            NewTask {
                id: Some(x.clone()),
                idempotency_key: Some(ctx.id("other")),
                ..anon()
            },
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    let (generated, keyed_id) = (out[0].id.clone(), out[2].id.clone());
    assert!(
        ulid::Ulid::from_string(&generated).is_ok(),
        "{generated} is a ULID"
    );
    assert!(
        ulid::Ulid::from_string(&keyed_id).is_ok(),
        "{keyed_id} is a ULID"
    );
    assert_ne!(generated, keyed_id);
    assert_eq!(
        out,
        vec![
            fresh(&generated),
            fresh(&x),
            fresh(&keyed_id),
            dup(&keyed_id),
            dup(&x)
        ]
    );
    assert_eq!(
        ctx.info(&generated).await.task.idempotency_key,
        generated,
        "key defaults to the id"
    );
    assert_eq!(ctx.info(&x).await.task.idempotency_key, x);
    assert_eq!(ctx.info(&keyed_id).await.task.idempotency_key, key);
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before + 3);
    }

    let (y, z) = (ctx.id("y"), ctx.id("z"));
    let again = q
        .enqueue_batch(vec![
            NewTask {
                id: Some(y.clone()),
                ..keyed()
            },
            NewTask {
                id: Some(z.clone()),
                idempotency_key: Some(x.clone()),
                ..anon()
            },
            NewTask {
                id: Some(x.clone()),
                ..anon()
            },
        ])
        .await
        .unwrap();
    assert_eq!(again, vec![dup(&keyed_id), dup(&x), dup(&x)]);
    assert!(
        !ctx.exists(&y).await && !ctx.exists(&z).await,
        "duplicates add nothing"
    );
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before + 3);
    }

    for leased in ctx.drain("w").await {
        q.ack(&leased.task.id, &leased.lease.id, json!(1))
            .await
            .unwrap();
    }
    let after = q.enqueue_batch(vec![keyed()]).await.unwrap();
    assert_eq!(
        after,
        vec![dup(&keyed_id)],
        "a key stays known after completion"
    );
    assert_eq!(ctx.status(&keyed_id).await, completed(json!(1)));
    ctx.assert_nothing_due().await;
}

/// The port's `enqueue` of a known key succeeds and adds nothing.
pub async fn port_enqueue_of_a_known_key_is_a_no_op<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "port-dedup");
    let q = ctx.q();
    let before = q.pending_count().await.unwrap();
    let key = ctx.id("key");
    let first = spin_work_queue::WorkTask {
        idempotency_key: key.clone(),
        ..ctx.work_task("n")
    };
    let second = spin_work_queue::WorkTask {
        idempotency_key: key.clone(),
        ..ctx.work_task("n")
    };
    q.enqueue(first.clone()).await.unwrap();
    q.enqueue(second.clone()).await.unwrap();
    q.enqueue(first.clone()).await.unwrap();
    assert!(ctx.exists(&first.id).await);
    assert!(
        !ctx.exists(&second.id).await,
        "the duplicate key added no task"
    );
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before + 1);
    }
    let got = ctx.drain_ids("w").await;
    assert_eq!(got, vec![first.id]);
}

/// One invalid task rejects the whole batch: nothing is enqueued.
pub async fn invalid_batches_are_rejected_whole<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "invalid");
    let q = ctx.q();
    let before = q.pending_count().await.unwrap();
    assert_invalid(q.enqueue_batch(Vec::new()).await, "empty batch");

    let too_many: Vec<_> = (0..=MAX_ENQUEUE_BATCH)
        .map(|i| ctx.task(&format!("n{i}")))
        .collect();
    let (first, last) = (
        too_many[0].id.clone().unwrap(),
        too_many[MAX_ENQUEUE_BATCH].id.clone().unwrap(),
    );
    assert_invalid(q.enqueue_batch(too_many).await, "batch over the limit");
    assert!(!ctx.exists(&first).await && !ctx.exists(&last).await);

    let base = ctx.task("bad");
    let bad: Vec<(&str, NewTask)> = vec![
        (
            "space in id",
            NewTask {
                id: Some("has space".into()),
                ..base.clone()
            },
        ),
        (
            "slash in id",
            NewTask {
                id: Some(format!("a/{}", ctx.id("b"))),
                ..base.clone()
            },
        ),
        (
            "id too long",
            NewTask {
                id: Some("i".repeat(MAX_ID_LEN + 1)),
                ..base.clone()
            },
        ),
        (
            "empty id",
            NewTask {
                id: Some(String::new()),
                ..base.clone()
            },
        ),
        (
            "empty node_name",
            NewTask {
                node_name: String::new(),
                ..base.clone()
            },
        ),
        (
            "empty pipeline_id",
            NewTask {
                pipeline_id: String::new(),
                ..base.clone()
            },
        ),
        (
            "node_name ..",
            NewTask {
                node_name: "..".into(),
                ..base.clone()
            },
        ),
        (
            "node_name .",
            NewTask {
                node_name: ".".into(),
                ..base.clone()
            },
        ),
        (
            "pipeline_id ..",
            NewTask {
                pipeline_id: "..".into(),
                ..base.clone()
            },
        ),
        (
            "empty idempotency key",
            NewTask {
                idempotency_key: Some(String::new()),
                ..base.clone()
            },
        ),
        (
            "max_attempts 0",
            NewTask {
                max_attempts: Some(0),
                ..base.clone()
            },
        ),
        (
            "max_attempts over the limit",
            NewTask {
                max_attempts: Some(101),
                ..base.clone()
            },
        ),
        (
            "delay over the limit",
            NewTask {
                delay_ms: MAX_DELAY_MS + 1,
                ..base.clone()
            },
        ),
    ];
    for (what, task) in bad {
        let valid = ctx.task("valid");
        let valid_id = valid.id.clone().unwrap();
        assert_invalid(q.enqueue_batch(vec![valid, task]).await, what);
        assert!(
            !ctx.exists(&valid_id).await,
            "{what}: the valid task was not enqueued"
        );
    }
    assert!(!ctx.exists(base.id.as_deref().unwrap()).await);
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before);
    }
    ctx.assert_nothing_due().await;

    let longest = NewTask {
        delay_ms: MAX_DELAY_MS,
        max_attempts: Some(100),
        ..ctx.task("limits")
    };
    let id = ctx.enqueue_one(longest).await;
    assert_eq!(
        ctx.status(&id).await,
        TaskStatus::Pending,
        "the limits themselves are accepted"
    );
}

/// A delayed task is pending but not delivered until its delay has passed.
pub async fn delayed_tasks_are_not_delivered_before_their_delay<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "delay");
    let q = ctx.q();
    let before = q.pending_count().await.unwrap();
    let delayed = ctx
        .enqueue_one(NewTask {
            delay_ms: 5_000,
            ..ctx.task("later")
        })
        .await;
    let now = ctx.enqueue_one(ctx.task("now")).await;
    assert_eq!(ctx.drain_ids("w").await, vec![now.clone()]);
    assert_eq!(ctx.status(&delayed).await, TaskStatus::Pending);
    if ctx.exclusive() {
        assert_eq!(
            q.pending_count().await.unwrap(),
            before + 1,
            "a delayed task is pending"
        );
    }

    ctx.advance(4_999);
    ctx.rescue().await;
    ctx.assert_nothing_due().await;
    assert_eq!(ctx.status(&delayed).await, TaskStatus::Pending);

    ctx.advance(1);
    ctx.rescue_expecting(0, 0, 1).await;
    let got = ctx.take(&delayed, "w", None).await;
    assert_eq!(got.task.attempt, 0);
    if ctx.exclusive() {
        assert_eq!(q.pending_count().await.unwrap(), before);
    }
}

/// A task whose id is another task's idempotency key is that task: the
/// key is taken, whichever of the two forms came first.
pub async fn an_id_equal_to_a_known_key_is_a_duplicate<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "key-id");
    let q = ctx.q();
    let key = ctx.id("k");
    let first = ctx
        .enqueue_one(NewTask {
            idempotency_key: Some(key.clone()),
            ..ctx.task("a")
        })
        .await;
    let again = NewTask {
        id: Some(key.clone()),
        ..ctx.task("b")
    };
    assert_eq!(
        q.enqueue_batch(vec![again]).await.unwrap(),
        vec![dup(&first)]
    );
    assert_eq!(q.status(&key).await.unwrap(), None, "no task was made");

    // And the other way round: an id first, then that id as a key.
    let id = ctx.enqueue_one(ctx.task("c")).await;
    let keyed = NewTask {
        idempotency_key: Some(id.clone()),
        ..ctx.task("d")
    };
    assert_eq!(q.enqueue_batch(vec![keyed]).await.unwrap(), vec![dup(&id)]);
}

/// Inputs nested deeper than `MAX_JSON_DEPTH` are refused whole, with the
/// task's own error code; as deep as allowed is fine.
pub async fn inputs_nested_too_deep_are_refused<F: Fixture>(fx: &F) {
    use spin_work_queue::config::MAX_JSON_DEPTH;
    use spin_work_queue::{InvalidKind, QueueError};
    let ctx = Ctx::new(fx, "deep");
    let q = ctx.q();
    let nested = |depth: usize| {
        let mut v = json!(0);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    };
    let too_deep = NewTask {
        input: nested(MAX_JSON_DEPTH + 1),
        ..ctx.task("deep")
    };
    match q.enqueue_batch(vec![ctx.task("fine"), too_deep]).await {
        Err(QueueError::Invalid(i)) => {
            assert_eq!(i.kind, InvalidKind::Task);
            assert!(
                i.message.starts_with("tasks[1]: input nests"),
                "{}",
                i.message
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    ctx.assert_nothing_due().await;
    let ok = ctx
        .enqueue_one(NewTask {
            input: nested(MAX_JSON_DEPTH),
            ..ctx.task("deepest")
        })
        .await;
    assert_eq!(
        ctx.take(&ok, "w", None).await.task.input,
        nested(MAX_JSON_DEPTH)
    );
}

/// A delayed task that becomes due keeps its `updated_at`: its state did
/// not change.
pub async fn a_delay_ending_changes_no_timestamp<F: Fixture>(fx: &F) {
    let ctx = Ctx::new(fx, "delay-time");
    let id = ctx
        .enqueue_one(NewTask {
            delay_ms: 1_000,
            ..ctx.task("later")
        })
        .await;
    let created = ctx.info(&id).await;
    ctx.advance(1_000);
    ctx.rescue().await;
    let due = ctx.info(&id).await;
    assert_eq!(
        (due.created_at, due.updated_at),
        (created.created_at, created.updated_at)
    );
    assert_eq!(due.status, TaskStatus::Pending);
}
