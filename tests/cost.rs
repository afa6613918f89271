//! Cost properties, counted with `CountingKv` (figures in `make bench`):
//! write commits per call do not grow with the batch, no operation's cost
//! depends on the depth of the queue, and polling an empty queue writes
//! nothing.

mod support;

use serde_json::json;
use spin_work_queue::kv::{CountingKv, KvCounts, MemoryKv};
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
