//! Crash at every step: a scripted workload runs with the k-th store
//! operation failing (and every later operation of the same request, like a
//! process that died), for every k, with the failing operation either not
//! applied or applied-then-lost. Afterwards a new "process" rescues and
//! drains the queue, and invariants 1 and 3 must hold: every task that was
//! accepted — or that exists at all — is Completed or DeadLetter, each
//! completed task has exactly one stored result and is collected once.

mod support;

use serde_json::json;
use spin_work_queue::kv::{FaultMode, FaultyKv, KeyValue, MemoryKv};
use spin_work_queue::*;
use std::collections::HashSet;
use std::sync::Arc;
use support::*;

const PIPELINE: &str = "crash";

#[derive(Debug, Clone)]
enum Step {
    Enqueue(&'static [(&'static str, u64)]),
    Dequeue(u32),
    Ack,
    AckBatch,
    Fail { retryable: bool },
    Heartbeat,
    Advance(u64),
    Rescue,
    RedriveAll,
    Collect,
    Stats,
}

fn script() -> Vec<Step> {
    use Step::*;
    vec![
        Enqueue(&[("t1", 0), ("t2", 0), ("t3", 0), ("t4", 3_000)]),
        Dequeue(2),
        Ack,
        Fail { retryable: true },
        Enqueue(&[("t5", 0), ("t6", 0), ("t1", 0)]),
        Dequeue(3),
        Heartbeat,
        Fail { retryable: false },
        AckBatch,
        Advance(5_000),
        Rescue,
        Dequeue(5),
        AckBatch,
        RedriveAll,
        Dequeue(5),
        Ack,
        AckBatch,
        Advance(40_000),
        Rescue,
        Dequeue(5),
        Collect,
        Stats,
    ]
}

type Store = FaultyKv<Arc<MemoryKv>>;

struct World {
    q: KvWorkQueue<Store>,
    clock: ManualClock,
    leases: Vec<LeasedTask>,
    accepted: HashSet<String>,
}

impl World {
    fn new() -> (Self, Arc<MemoryKv>) {
        let mem = Arc::new(MemoryKv::new());
        let (q, clock) = queue_on(FaultyKv::new(mem.clone()));
        let w = World {
            q,
            clock,
            leases: Vec::new(),
            accepted: HashSet::new(),
        };
        (w, mem)
    }

    /// Run one step; store failures are the injected crash.
    async fn step(&mut self, step: &Step) -> Result<()> {
        let q = &self.q;
        match step {
            Step::Enqueue(tasks) => {
                let batch = tasks
                    .iter()
                    .map(|(id, delay)| NewTask {
                        id: Some(id.to_string()),
                        delay_ms: *delay,
                        ..NewTask::new(PIPELINE, format!("node-{id}"), json!({ "id": id }))
                    })
                    .collect();
                for e in q.enqueue_batch(batch).await? {
                    self.accepted.insert(e.id);
                }
            }
            Step::Dequeue(max) => {
                let got = q.dequeue(&DequeueRequest::new("worker", *max)).await?;
                self.leases.extend(got);
            }
            Step::Ack => {
                if let Some(l) = self.leases.pop() {
                    q.ack(
                        &l.task.id,
                        &l.lease.id,
                        json!({ "by": "worker", "task": l.task.id }),
                    )
                    .await?;
                }
            }
            Step::AckBatch => {
                let acks = self
                    .leases
                    .drain(..)
                    .map(|l| Ack {
                        output: json!({ "by": "worker", "task": l.task.id }),
                        id: l.task.id,
                        lease_id: l.lease.id,
                    })
                    .collect();
                for r in q.ack_batch(acks).await? {
                    tolerate(r.map(drop))?;
                }
            }
            Step::Fail { retryable } => {
                if let Some(l) = self.leases.pop() {
                    q.fail_leased(&l.task.id, &l.lease.id, "failed", *retryable)
                        .await?;
                }
            }
            Step::Heartbeat => {
                if let Some(l) = self.leases.last() {
                    q.heartbeat(&l.task.id, &l.lease.id, None).await?;
                }
            }
            Step::Advance(ms) => self.clock.advance(*ms),
            Step::Rescue => {
                q.rescue().await?;
            }
            Step::RedriveAll => {
                for d in q.dead_letters(100).await? {
                    q.redrive(&d.task.id).await?;
                }
            }
            Step::Collect => {
                q.collect_results(PIPELINE).await?;
            }
            Step::Stats => {
                q.stats().await?;
            }
        }
        Ok(())
    }
}

/// Errors a crash elsewhere can legitimately cause (a lease lost to a
/// rescue, a task never written…).
fn tolerate(r: Result<()>) -> Result<()> {
    match r {
        Err(
            QueueError::LeaseLost { .. }
            | QueueError::NotFound { .. }
            | QueueError::WrongState { .. },
        ) => Ok(()),
        other => other,
    }
}

/// Run the script with a fault at operation `k` (`None`: no fault); returns
/// whether the fault fired.
async fn run(k: Option<u64>, mode: FaultMode) -> bool {
    let (mut w, mem) = World::new();
    if let Some(k) = k {
        w.q.kv().arm(k, mode);
    }
    let mut fired = false;
    for step in script() {
        let r = w.step(&step).await;
        if w.q.kv().tripped() && !fired {
            // The request died here; what follows is a new process.
            fired = true;
            if std::env::var_os("CRASH_DEBUG").is_some() {
                eprintln!("k={k:?} {mode:?}: crashed in {step:?}: {r:?}");
            }
            // (A step may still report success when only best-effort
            // clean-up failed; its answer is lost with the process anyway.)
            w.q.kv().heal();
            let _ = r;
            continue;
        }
        if let Err(e) = tolerate(r) {
            panic!("k={k:?} {mode:?}: {step:?} failed without a fault: {e}");
        }
    }
    // The script is over: the fault, if it did not fire, is disarmed.
    w.q.kv().heal();
    // Every task that exists must settle, accepted or not.
    let mut ids = w.accepted.clone();
    for id in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        if w.q.status(id).await.unwrap().is_some() {
            ids.insert(id.to_string());
        }
    }
    for id in &w.accepted {
        assert!(
            w.q.status(id).await.unwrap().is_some(),
            "accepted task {id} lost (k={k:?} {mode:?})"
        );
    }
    settle(&w.q, &w.clock, &ids, 20).await;
    let first = check_invariants(&w.q, &mem, PIPELINE, &ids).await;
    // Stable: another round of maintenance and delivery changes nothing.
    settle(&w.q, &w.clock, &ids, 2).await;
    w.clock.advance(100_000);
    w.q.rescue().await.unwrap();
    let second = check_invariants(&w.q, &mem, PIPELINE, &ids).await;
    assert_eq!(first, second, "statuses changed after completion");
    let stats = w.q.stats().await.unwrap();
    if std::env::var_os("CRASH_DEBUG").is_some() && stats.in_progress != 0 {
        for (key, v) in mem.snapshot() {
            if key.contains("/m/state")
                || key.ends_with("tail")
                || key.ends_with("head")
                || key.contains("redriven")
            {
                eprintln!("{key} = {}", String::from_utf8_lossy(&v));
            }
        }
    }
    assert_eq!(
        (stats.pending, stats.in_progress, stats.failed),
        (0, 0, 0),
        "k={k:?} {mode:?}: {stats:?}"
    );
    fired
}

async fn every_k(mode: FaultMode) {
    assert!(!run(None, mode).await, "the clean run must not fault");
    let mut k = 1;
    while run(Some(k), mode).await {
        k += 1;
    }
    assert!(
        k > 100,
        "the script should take well over 100 store operations, took {k}"
    );
}

#[tokio::test]
async fn crash_before_any_operation_applies_loses_nothing() {
    every_k(FaultMode::Before).await;
}

#[tokio::test]
async fn crash_after_any_operation_applies_loses_nothing() {
    every_k(FaultMode::After).await;
}

#[test]
fn the_faulty_store_counts_every_operation() {
    let kv = FaultyKv::new(MemoryKv::new());
    kv.set("a", b"1").unwrap();
    kv.get("a").unwrap();
    kv.get_many(&["a".into()]).unwrap();
    kv.increment("c", 1).unwrap();
    kv.set_many(&[]).unwrap();
    kv.delete("a").unwrap();
    assert_eq!(kv.ops(), 6);
}
