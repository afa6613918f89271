//! Shared helpers for the engine's crash, concurrency and cost tests.
#![allow(dead_code)]

pub mod hook;

use serde_json::json;
use spin_work_queue::kv::{KeyValue, MemoryKv};
use spin_work_queue::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Start of every test clock.
pub const START_MS: u64 = 1_700_000_000_000;
/// Grace period used by these tests.
pub const GRACE_MS: u64 = 10_000;

/// The configuration these tests run with: maintenance may run every
/// millisecond of (manual) time.
pub fn config() -> QueueConfig {
    QueueConfig {
        maintenance_period_ms: 1,
        grace_ms: GRACE_MS,
        ..QueueConfig::default()
    }
}

/// A queue on `kv` with a manual clock.
pub fn queue_on<K: KeyValue>(kv: K) -> (KvWorkQueue<K>, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let q = KvWorkQueue::with_config(kv, config(), Arc::new(clock.clone())).expect("valid config");
    (q, clock)
}

/// Deliver and complete everything, moving time past every lease, backoff
/// and grace period, until every task in `ids` is terminal. Panics if that
/// does not happen within `rounds` rounds.
pub async fn settle<K: KeyValue + Send + Sync>(
    q: &KvWorkQueue<K>,
    clock: &ManualClock,
    ids: &HashSet<String>,
    rounds: usize,
) {
    for _ in 0..rounds {
        if all_terminal(q, ids).await {
            return;
        }
        clock.advance(GRACE_MS + QueueConfig::default().default_lease_ms + 60_000);
        q.rescue().await.expect("rescue");
        loop {
            let got = q
                .dequeue(&DequeueRequest::new("settler", 100))
                .await
                .expect("dequeue");
            if got.is_empty() {
                break;
            }
            for t in got {
                q.ack(
                    &t.task.id,
                    &t.lease.id,
                    json!({"by": "settler", "task": t.task.id}),
                )
                .await
                .expect("ack of a fresh lease");
            }
        }
    }
    let mut stuck = Vec::new();
    for id in ids {
        stuck.push((id.clone(), q.status(id).await.unwrap()));
    }
    stuck.retain(|(_, s)| !s.as_ref().is_some_and(TaskStatus::is_terminal));
    panic!("tasks not terminal after {rounds} rounds: {stuck:?}");
}

async fn all_terminal<K: KeyValue + Send + Sync>(
    q: &KvWorkQueue<K>,
    ids: &HashSet<String>,
) -> bool {
    for id in ids {
        match q.status(id).await.expect("status") {
            Some(s) if s.is_terminal() => {}
            _ => return false,
        }
    }
    true
}

/// Completion-log entries per task id, read straight from the store
/// (`wq/c/{n}`, each naming the task it completed).
pub fn results_per_task(kv: &MemoryKv) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (key, value) in kv.snapshot() {
        let Some(n) = key.strip_prefix("wq/c/") else {
            continue;
        };
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let entry: serde_json::Value = serde_json::from_slice(&value).expect("a completion entry");
        let id = entry["id"].as_str().expect("an id").to_string();
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

/// Check invariants 1 and 3 for `ids` of pipeline `pipeline`: every task is
/// Completed or DeadLetter, every completed task has exactly one
/// completion entry and appears exactly once in the pipeline's results.
pub async fn check_invariants<K: KeyValue + Send + Sync>(
    q: &KvWorkQueue<K>,
    store: &MemoryKv,
    pipeline: &str,
    ids: &HashSet<String>,
) -> BTreeMap<String, TaskStatus> {
    let results = results_per_task(store);
    let mut statuses = BTreeMap::new();
    for id in ids {
        let status = q
            .status(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        match &status {
            TaskStatus::Completed { .. } => {
                assert_eq!(
                    results.get(id),
                    Some(&1),
                    "{id} must be completed exactly once"
                );
            }
            TaskStatus::DeadLetter { .. } => {
                assert_eq!(results.get(id), None, "{id} dead-lettered with a result");
            }
            other => panic!("{id} not terminal: {other:?}"),
        }
        statuses.insert(id.clone(), status);
    }
    let collected = q.collect_results(pipeline).await.unwrap();
    let names: Vec<&String> = collected.iter().map(|(n, _)| n).collect();
    let unique: HashSet<&String> = names.iter().copied().collect();
    assert_eq!(
        names.len(),
        unique.len(),
        "a result collected twice: {names:?}"
    );
    for (id, status) in &statuses {
        let node = format!("node-{id}");
        let found = collected.iter().find(|(n, _)| *n == node);
        match status {
            TaskStatus::Completed { output } => {
                assert_eq!(
                    found.map(|(_, o)| o),
                    Some(output),
                    "{id} missing from results"
                );
            }
            _ => assert!(found.is_none(), "{id} collected but not completed"),
        }
    }
    statuses
}

/// Run an engine call (which never waits: its store calls are synchronous)
/// to completion, from synchronous code such as a store hook.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("an engine call waited"),
    }
}
