//! Pipelines, crash at every step: a scripted workload of three pipelines
//! (a diamond, a failing branch under `continue`, one cancelled while it
//! runs) with the k-th store operation failing — and every later one of
//! the same request, like a process that died — for every k, the failing
//! operation applied or not. Then a new process rescues and works until
//! every pipeline settles. Checked: no node is delivered before its
//! parents are done; no node's task is created twice; nothing of a
//! pipeline whose cancel was answered is handed out (not even when
//! dead-lettering it fails); every node ends `Completed`, `DeadLetter`,
//! `Skipped` or `Cancelled`, as the script says.

mod support;

use serde_json::json;
use spin_work_queue::kv::{FaultMode, FaultyKv, MemoryKv};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::*;

type Store = FaultyKv<Arc<MemoryKv>>;

fn diamond() -> NewPipeline {
    NewPipeline::new(vec![
        NodeSpec::new("a", json!(1), &[]),
        NodeSpec::new("b", json!(2), &["a"]),
        NodeSpec::new("c", json!(3), &["a"]),
        NodeSpec::new("d", json!(4), &["b", "c"]),
    ])
    .with_id("diamond")
}

fn failing() -> NewPipeline {
    NewPipeline::new(vec![
        NodeSpec::new("bad", json!(1), &[]),
        NodeSpec::new("after", json!(2), &["bad"]),
        NodeSpec::new("good", json!(3), &[]),
    ])
    .with_id("failing")
    .with_on_failure(OnFailure::Continue)
}

fn cancelled() -> NewPipeline {
    NewPipeline::new(vec![
        NodeSpec::new("x", json!(1), &[]),
        NodeSpec::new("y", json!(2), &["x"]),
    ])
    .with_id("cancelled")
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Submit(fn() -> NewPipeline),
    Dequeue(u32),
    Work,
    AckBatch,
    Cancel(&'static str),
    Advance(u64),
    Rescue,
}

fn script() -> Vec<Step> {
    use Step::*;
    vec![
        Submit(diamond),
        Submit(failing),
        Dequeue(2),
        AckBatch,
        Dequeue(3),
        Work,
        Work,
        Submit(diamond),
        Dequeue(4),
        Submit(cancelled),
        Cancel("cancelled"),
        AckBatch,
        Dequeue(4),
        Work,
        Advance(40_000),
        Rescue,
        Dequeue(4),
        AckBatch,
    ]
}

struct World {
    q: KvWorkQueue<Store>,
    clock: ManualClock,
    leases: Vec<LeasedTask>,
    /// `created_at` of each node task when first delivered.
    created: BTreeMap<String, u64>,
    submitted: Vec<NewPipeline>,
    /// Pipelines whose cancel was answered.
    cancelled: Vec<String>,
}

impl World {
    /// Deliver: check the parents, the creation time, and that nothing of
    /// a pipeline whose cancel was answered is handed out.
    async fn delivered(&mut self, got: Vec<LeasedTask>) -> Result<()> {
        for l in &got {
            let pid = &l.task.pipeline_id;
            assert!(
                !self.cancelled.contains(pid),
                "{pid}/{} handed out after its pipeline was cancelled",
                l.task.node_name
            );
            let spec = [diamond(), failing(), cancelled()]
                .into_iter()
                .find(|p| p.id.as_deref() == Some(pid))
                .expect("a scripted pipeline");
            let view = self.q.pipeline(pid).await?.expect("its pipeline exists");
            let node = spec
                .nodes
                .iter()
                .find(|n| n.name == l.task.node_name)
                .unwrap();
            for p in &node.depends_on {
                let s = view.node(p).unwrap().state;
                let done = s == NodeState::Completed
                    || (s == NodeState::DeadLetter && spec.on_failure == OnFailure::Continue);
                assert!(done, "{pid}/{} delivered while {p} is {s:?}", node.name);
            }
            let info = self
                .q
                .task(&l.task.id)
                .await?
                .expect("a delivered task exists");
            let first = *self
                .created
                .entry(l.task.id.clone())
                .or_insert(info.created_at);
            assert_eq!(first, info.created_at, "{pid}/{} created twice", node.name);
        }
        self.leases.extend(got);
        Ok(())
    }

    /// Finish one held task: `bad` fails for good, the rest complete.
    async fn work_one(&mut self, l: LeasedTask) -> Result<()> {
        if l.task.node_name == "bad" {
            self.q
                .fail_leased(&l.task.id, &l.lease.id, "bad node", false)
                .await?;
        } else {
            self.q
                .ack(&l.task.id, &l.lease.id, json!({ "done": l.task.node_name }))
                .await?;
        }
        Ok(())
    }

    async fn step(&mut self, step: Step) -> Result<()> {
        match step {
            Step::Submit(p) => {
                let p = p();
                self.q.submit_pipeline(p.clone()).await?;
                self.submitted.push(p);
            }
            Step::Dequeue(max) => {
                let got = self.q.dequeue(&DequeueRequest::new("w", max)).await?;
                self.delivered(got).await?;
            }
            Step::Work => {
                if let Some(l) = self.leases.pop() {
                    tolerate(self.work_one(l).await)?;
                }
            }
            Step::AckBatch => {
                let (bad, good): (Vec<_>, Vec<_>) = self
                    .leases
                    .drain(..)
                    .partition(|l| l.task.node_name == "bad");
                self.leases = bad;
                let acks = good
                    .into_iter()
                    .map(|l| Ack {
                        output: json!({ "done": l.task.node_name }),
                        id: l.task.id,
                        lease_id: l.lease.id,
                    })
                    .collect();
                for r in self.q.ack_batch(acks).await? {
                    tolerate(r.map(drop))?;
                }
            }
            Step::Cancel(id) => {
                let c = self.q.cancel_pipeline(id).await?;
                if c.state == PipelineState::Cancelled {
                    self.cancelled.push(id.to_string());
                }
            }
            Step::Advance(ms) => self.clock.advance(ms),
            Step::Rescue => {
                self.q.rescue().await?;
            }
        }
        Ok(())
    }

    /// A new process: rescue and work until every submitted pipeline has
    /// every node final.
    async fn settle(&mut self) {
        for _ in 0..30 {
            let mut all = true;
            for p in &self.submitted {
                let v = self.q.pipeline(p.id.as_deref().unwrap()).await.unwrap();
                all &= v.is_some_and(|v| v.nodes.iter().all(|n| n.state.is_final()));
            }
            if all {
                return;
            }
            self.leases.clear(); // the old process is gone
            self.clock
                .advance(GRACE_MS + QueueConfig::default().default_lease_ms + 60_000);
            self.q.rescue().await.expect("rescue");
            loop {
                let got = self
                    .q
                    .dequeue(&DequeueRequest::new("settler", 100))
                    .await
                    .expect("dequeue");
                if got.is_empty() {
                    break;
                }
                self.delivered(got).await.expect("checks");
                for l in std::mem::take(&mut self.leases) {
                    tolerate(self.work_one(l).await).expect("work");
                }
            }
        }
        panic!("the pipelines did not settle");
    }
}

fn tolerate(r: Result<()>) -> Result<()> {
    match r {
        Err(QueueError::LeaseLost { .. } | QueueError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Run the script with a fault at operation `k`; returns whether it fired.
async fn run(k: Option<u64>, mode: FaultMode) -> bool {
    let mem = Arc::new(MemoryKv::new());
    let (q, clock) = queue_on(FaultyKv::new(mem.clone()));
    let mut w = World {
        q,
        clock,
        leases: Vec::new(),
        created: BTreeMap::new(),
        submitted: Vec::new(),
        cancelled: Vec::new(),
    };
    if let Some(k) = k {
        w.q.kv().arm(k, mode);
    }
    let mut fired = false;
    for step in script() {
        let r = w.step(step).await;
        if w.q.kv().tripped() && !fired {
            fired = true;
            w.q.kv().heal();
            if let Step::Submit(p) = step {
                // The caller retries a submission it got no answer for;
                // while the dead request's lock is held, it is told to
                // retry later.
                let p = p();
                let mut tries = 0;
                while let Err(e) = w.q.submit_pipeline(p.clone()).await {
                    assert!(matches!(e, QueueError::TooSlow(_)), "resubmit: {e}");
                    tries += 1;
                    assert!(tries < 60, "the submission lock was never taken over");
                    w.clock.advance(1_000);
                }
                w.submitted.push(p);
            }
            continue;
        }
        if let Err(e) = r {
            panic!("k={k:?} {mode:?}: {step:?} failed without a fault: {e}");
        }
    }
    w.q.kv().heal();
    w.settle().await;
    let cancelled_was_submitted = w
        .submitted
        .iter()
        .any(|p| p.id.as_deref() == Some("cancelled"));
    for p in [diamond(), failing(), cancelled()] {
        let id = p.id.clone().unwrap();
        let Some(v) = w.q.pipeline(&id).await.unwrap() else {
            assert!(
                !w.submitted.iter().any(|s| s.id == p.id),
                "k={k:?} {mode:?}: {id} was accepted and is gone"
            );
            continue;
        };
        let want: &[(&str, NodeState)] = match id.as_str() {
            "diamond" => &[
                ("a", NodeState::Completed),
                ("b", NodeState::Completed),
                ("c", NodeState::Completed),
                ("d", NodeState::Completed),
            ],
            "failing" => &[
                ("bad", NodeState::DeadLetter),
                ("after", NodeState::Completed),
                ("good", NodeState::Completed),
            ],
            _ => &[],
        };
        for (name, state) in want {
            assert_eq!(
                v.node(name).unwrap().state,
                *state,
                "k={k:?} {mode:?}: {id}/{name} in {v:#?}"
            );
        }
        for n in &v.nodes {
            assert!(n.state.is_final(), "k={k:?} {mode:?}: {id}/{}", n.name);
        }
        if id == "cancelled" && cancelled_was_submitted {
            assert!(matches!(
                v.state,
                PipelineState::Cancelled | PipelineState::Completed
            ));
        }
    }
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
async fn a_crash_before_any_operation_of_a_pipeline_applies_loses_no_node() {
    every_k(FaultMode::Before).await;
}

#[tokio::test]
async fn a_crash_after_any_operation_of_a_pipeline_applies_loses_no_node() {
    every_k(FaultMode::After).await;
}
