//! Cost properties, counted with `CountingKv` (figures in `make bench`):
//! write commits per call do not grow with the batch, no operation's cost
//! depends on the depth of the queue, and polling an empty queue writes
//! nothing.

mod support;

use serde_json::json;
use spin_work_queue::kv::{CountingKv, KeyValue, KvCounts, MemoryKv};
use spin_work_queue::*;
use support::*;

type Q = KvWorkQueue<CountingKv<MemoryKv>>;

fn new_queue() -> (Q, ManualClock) {
    let (q, clock) = queue_on(CountingKv::new(MemoryKv::new()));
    (q, clock)
}

fn batch(n: usize, tag: &str) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new("cost", format!("{tag}{i}"), json!(i)))
        .collect()
}

/// Commits of one enqueue, dequeue and ack of `n` tasks, with time frozen
/// (so no maintenance run is due).
async fn lifecycle(q: &Q, n: usize) -> [KvCounts; 3] {
    let c0 = q.kv().counts();
    q.enqueue_batch(batch(n, "t")).await.unwrap();
    let c1 = q.kv().counts();
    let got = q
        .dequeue(&DequeueRequest::new("w", n as u32))
        .await
        .unwrap();
    assert_eq!(got.len(), n);
    let c2 = q.kv().counts();
    let acks = got
        .into_iter()
        .map(|l| Ack {
            id: l.task.id,
            lease_id: l.lease.id,
            output: json!("ok"),
        })
        .collect();
    for r in q.ack_batch(acks).await.unwrap() {
        r.unwrap();
    }
    let c3 = q.kv().counts();
    [c1.since(&c0), c2.since(&c1), c3.since(&c2)]
}

#[tokio::test]
async fn each_call_costs_two_write_commits_whatever_the_batch() {
    for n in [1, 10, 100] {
        let (q, _clock) = new_queue();
        q.rescue().await.unwrap();
        let costs = lifecycle(&q, n).await;
        let commits: Vec<u64> = costs.iter().map(KvCounts::commits).collect();
        assert_eq!(commits, vec![2, 2, 2], "batch of {n}: {costs:?}");
    }
}

#[tokio::test]
async fn no_operation_costs_more_in_a_deeper_queue() {
    let mut seen = Vec::new();
    for depth in [100, 10_000] {
        let (q, _clock) = new_queue();
        for chunk in 0..depth / 1_000 + 1 {
            let n = (depth - chunk * 1_000).min(1_000);
            if n > 0 {
                q.enqueue_batch(batch(n, "deep")).await.unwrap();
            }
        }
        q.rescue().await.unwrap();
        let costs = lifecycle(&q, 1).await;
        let per_op: Vec<(u64, u64, u64)> = costs
            .iter()
            .map(|c| (c.reads(), c.keys_read, c.commits()))
            .collect();
        seen.push(per_op);
    }
    assert_eq!(seen[0], seen[1], "costs at depth 100 vs 10,000");
}

#[tokio::test]
async fn polling_an_empty_queue_writes_nothing() {
    let (q, _clock) = new_queue();
    q.rescue().await.unwrap();
    let before = q.kv().counts();
    for _ in 0..10 {
        assert!(q
            .dequeue(&DequeueRequest::new("w", 10))
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(q.kv().counts().since(&before).commits(), 0);
}

#[tokio::test]
async fn a_maintenance_run_costs_a_few_commits_whatever_it_settles() {
    let mut commits = Vec::new();
    for tasks in [10, 1_000] {
        let (q, clock) = new_queue();
        q.rescue().await.unwrap();
        for _ in 0..tasks / 10 {
            lifecycle(&q, 10).await;
        }
        clock.advance(1_000);
        let before = q.kv().counts();
        q.rescue().await.unwrap();
        commits.push(q.kv().counts().since(&before).commits());
    }
    assert_eq!(commits[0], commits[1], "{commits:?}");
    assert!(commits[0] <= 3, "{commits:?}");
}

/// Maintenance's own state is read by every dequeue: it stays a few
/// hundred bytes whatever the delays (timers live in their own buckets).
#[tokio::test]
async fn the_maintenance_state_stays_small_whatever_the_delays() {
    let (q, clock) = new_queue();
    let tasks: Vec<NewTask> = (0..1_000u64)
        .map(|i| NewTask {
            // 1,000 distinct due seconds, up to 7 days ahead.
            delay_ms: 1_000 + i * 604_000,
            ..NewTask::new("cost", format!("d{i}"), json!(i))
        })
        .collect();
    q.enqueue_batch(tasks).await.unwrap();
    clock.advance(1);
    q.rescue().await.unwrap();
    let state = q.kv().inner().get("wq/m/state").unwrap().unwrap();
    assert!(state.len() < 2_000, "m/state is {} bytes", state.len());
    assert_eq!(q.stats().await.unwrap().pending, 1_000);
}

/// Once retention has passed, a finished task leaves no key behind.
#[tokio::test]
async fn finished_tasks_leave_no_keys_after_retention() {
    let (q, clock) = new_queue();
    q.rescue().await.unwrap();
    let empty = q.kv().inner().len();
    for _ in 0..20 {
        lifecycle(&q, 50).await;
        clock.advance(1);
    }
    let busy = q.kv().inner().len();
    assert!(busy > 1_000, "{busy} keys while the tasks are kept");
    for _ in 0..8 {
        clock.advance(config().retention_ms / 4);
        q.rescue().await.unwrap();
    }
    let left = q.kv().inner().len();
    assert!(left <= empty + 8, "{left} keys left (empty queue: {empty})");
}

/// A dequeue reads what it delivers, not the queue: the same keys at
/// depth 100 and 10,000, and the same bytes but for the digits of the
/// counters in the maintenance state.
#[tokio::test]
async fn a_dequeue_reads_the_same_bytes_at_any_depth() {
    let mut bytes = Vec::new();
    for depth in [100u64, 10_000] {
        let (q, _clock) = new_queue();
        for chunk in 0..depth.div_ceil(1_000) {
            let n = (depth - chunk * 1_000).min(1_000) as usize;
            q.enqueue_batch(batch(n, "b")).await.unwrap();
        }
        q.rescue().await.unwrap();
        let before = q.kv().counts();
        q.dequeue(&DequeueRequest::new("w", 10)).await.unwrap();
        let c = q.kv().counts().since(&before);
        bytes.push((c.keys_read, c.bytes_read));
    }
    assert_eq!(bytes[0].0, bytes[1].0, "keys read at depth 100 vs 10,000");
    assert!(
        bytes[1].1.abs_diff(bytes[0].1) <= 16,
        "bytes read: {bytes:?}"
    );
}
