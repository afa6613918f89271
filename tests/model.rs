//! Model-based test: random operation sequences run against the engine and
//! a small reference model of each task's lifecycle. After every step the
//! engine's answers must be ones the model allows; after `rescue` the
//! engine must agree with the model exactly (statuses, attempts, stats, and
//! which tasks a dequeue hands out).

mod support;

use proptest::prelude::*;
use serde_json::json;
use spin_work_queue::kv::MemoryKv;
use spin_work_queue::*;
use std::collections::BTreeMap;
use support::*;

const LEASE_MS: u64 = 5_000;

/// Until when after its expiry a lease may still finish its task.
fn late() -> u64 {
    config().timing().late_finish_ms
}

/// From when after its expiry a lease is rescued.
fn rescue_after() -> u64 {
    config().timing().rescue_after_ms
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue { delay_ms: u64, max_attempts: u32 },
    Dequeue { max: u32 },
    Ack { pick: usize },
    AckStale { pick: usize },
    Fail { pick: usize, retryable: bool },
    Heartbeat { pick: usize },
    Advance { ms: u64 },
    Redrive { pick: usize },
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop_oneof![Just(0u64), Just(0), 1_000u64..8_000], 1u32..4)
            .prop_map(|(delay_ms, max_attempts)| Op::Enqueue { delay_ms, max_attempts }),
        3 => (1u32..5).prop_map(|max| Op::Dequeue { max }),
        3 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        1 => any::<usize>().prop_map(|pick| Op::AckStale { pick }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, retryable)| Op::Fail { pick, retryable }),
        1 => any::<usize>().prop_map(|pick| Op::Heartbeat { pick }),
        2 => prop_oneof![1u64..2_000, 2_000u64..20_000].prop_map(|ms| Op::Advance { ms }),
        1 => any::<usize>().prop_map(|pick| Op::Redrive { pick }),
        2 => Just(Op::Settle),
    ]
}

/// The model of one task.
#[derive(Debug, Clone, PartialEq)]
enum M {
    Pending { due: u64 },
    Leased { lease: String, expires: u64 },
    Done { output: serde_json::Value },
    Failed { due: u64 },
    Dead,
}

#[derive(Debug, Clone)]
struct Task {
    state: M,
    attempt: u32,
    max_attempts: u32,
    /// Leases handed out for this task that are no longer current.
    stale: Vec<String>,
}

struct Model {
    tasks: BTreeMap<String, Task>,
    clock: ManualClock,
    q: KvWorkQueue<MemoryKv>,
    step: usize,
}

fn pick<T>(items: &[T], i: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[i % items.len()])
}

impl Model {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn leased(&self) -> Vec<(String, String)> {
        self.tasks
            .iter()
            .filter_map(|(id, t)| match &t.state {
                M::Leased { lease, .. } => Some((id.clone(), lease.clone())),
                _ => None,
            })
            .collect()
    }

    /// Apply what time allows: expired leases, due retries, due delays.
    /// Called only right after the engine's `rescue`, when both must agree.
    fn rescue(&mut self) {
        let now = self.now();
        for t in self.tasks.values_mut() {
            match t.state.clone() {
                M::Leased { lease, expires } if now >= expires + rescue_after() => {
                    t.stale.push(lease);
                    if t.attempt + 1 < t.max_attempts {
                        t.attempt += 1;
                        t.state = M::Pending { due: now };
                    } else {
                        t.state = M::Dead;
                    }
                }
                M::Failed { due } if now >= due => {
                    t.attempt += 1;
                    t.state = M::Pending { due };
                }
                _ => {}
            }
        }
    }

    fn eligible(&self) -> Vec<String> {
        let now = self.now();
        self.tasks
            .iter()
            .filter(|(_, t)| matches!(t.state, M::Pending { due } if due <= now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn apply(&mut self, op: &Op) {
        self.step += 1;
        let now = self.now();
        match op {
            Op::Enqueue {
                delay_ms,
                max_attempts,
            } => {
                let id = format!("m{}", self.tasks.len());
                let t = NewTask {
                    id: Some(id.clone()),
                    delay_ms: *delay_ms,
                    max_attempts: Some(*max_attempts),
                    ..NewTask::new("model", format!("node-{id}"), json!(self.step))
                };
                let out = self.q.enqueue_batch(vec![t]).await.unwrap();
                assert_eq!(out[0].id, id);
                self.tasks.insert(
                    id,
                    Task {
                        state: M::Pending {
                            due: now + delay_ms,
                        },
                        attempt: 0,
                        max_attempts: *max_attempts,
                        stale: Vec::new(),
                    },
                );
            }
            Op::Dequeue { max } => {
                // Maintenance may or may not run inside a dequeue; whatever
                // it does must be something `rescue` would have done.
                let got = self
                    .q
                    .dequeue(&DequeueRequest {
                        worker_id: "w".into(),
                        max: *max,
                        lease_ms: Some(LEASE_MS),
                    })
                    .await
                    .unwrap();
                assert!(got.len() <= *max as usize);
                let mut seen = std::collections::HashSet::new();
                for l in got {
                    assert!(
                        seen.insert(l.task.id.clone()),
                        "delivered twice in one batch"
                    );
                    let t = self
                        .tasks
                        .get_mut(&l.task.id)
                        .expect("unknown task delivered");
                    // Bring the model up to what maintenance may have done.
                    match t.state.clone() {
                        M::Pending { due } => {
                            assert!(due <= now, "{} delivered before due", l.task.id)
                        }
                        M::Leased { lease, expires } => {
                            assert!(
                                now >= expires + rescue_after(),
                                "{} delivered under a live lease",
                                l.task.id
                            );
                            t.stale.push(lease);
                            t.attempt += 1;
                        }
                        M::Failed { due } => {
                            assert!(due <= now, "{} retried before its backoff", l.task.id);
                            t.attempt += 1;
                        }
                        other => panic!("{} delivered while {other:?}", l.task.id),
                    }
                    assert!(t.attempt < t.max_attempts);
                    assert_eq!(l.task.attempt, t.attempt, "attempt of {}", l.task.id);
                    assert_eq!(l.lease.expires_at, now + LEASE_MS);
                    t.state = M::Leased {
                        lease: l.lease.id,
                        expires: l.lease.expires_at,
                    };
                }
            }
            Op::Ack { pick: i } => {
                let Some((id, lease)) = pick(&self.leased(), *i).cloned() else {
                    return;
                };
                let output = json!({ "step": self.step });
                let r = self.q.ack(&id, &lease, output.clone()).await;
                let t = self.tasks.get_mut(&id).unwrap();
                match r {
                    Ok(TaskStatus::Completed { output: o }) => {
                        assert_eq!(o, output);
                        t.state = M::Done { output };
                    }
                    // Only possible if maintenance already rescued it.
                    Err(QueueError::LeaseLost { .. }) => {
                        let M::Leased { expires, .. } = t.state else {
                            unreachable!()
                        };
                        assert!(now >= expires + late(), "ack of a live lease refused");
                        self.resync(&id).await;
                    }
                    other => panic!("ack: {other:?}"),
                }
            }
            Op::AckStale { pick: i } => {
                let stale: Vec<(String, String)> = self
                    .tasks
                    .iter()
                    .flat_map(|(id, t)| t.stale.iter().map(move |l| (id.clone(), l.clone())))
                    .collect();
                let Some((id, lease)) = pick(&stale, *i).cloned() else {
                    return;
                };
                let before = self.q.status(&id).await.unwrap();
                let r = self.q.ack(&id, &lease, json!("stale")).await;
                match (&r, &before) {
                    (Err(QueueError::LeaseLost { .. }), _) => {}
                    // A repeated ack by the completing lease is answered
                    // with the recorded output.
                    (Ok(s), Some(b @ TaskStatus::Completed { .. })) => assert_eq!(s, b),
                    other => panic!("stale ack of {id}: {other:?}"),
                }
                assert_eq!(
                    self.q.status(&id).await.unwrap(),
                    before,
                    "a stale ack changed {id}"
                );
            }
            Op::Fail { pick: i, retryable } => {
                let Some((id, lease)) = pick(&self.leased(), *i).cloned() else {
                    return;
                };
                let r = self.q.fail_leased(&id, &lease, "err", *retryable).await;
                let t = self.tasks.get_mut(&id).unwrap();
                match r {
                    Ok(FailOutcome { status, retry_at }) => {
                        t.stale.push(lease);
                        if *retryable && t.attempt + 1 < t.max_attempts {
                            let due = now + QueueConfig::default().retry.backoff_ms(&id, t.attempt);
                            assert_eq!(
                                status,
                                TaskStatus::Failed {
                                    error: "err".into(),
                                    attempt: t.attempt
                                }
                            );
                            assert_eq!(retry_at, Some(due));
                            t.state = M::Failed { due };
                        } else {
                            assert_eq!(retry_at, None);
                            assert_eq!(
                                status,
                                TaskStatus::DeadLetter {
                                    error: "err".into()
                                }
                            );
                            t.state = M::Dead;
                        }
                    }
                    Err(QueueError::LeaseLost { .. }) => {
                        let M::Leased { expires, .. } = t.state else {
                            unreachable!()
                        };
                        assert!(now >= expires + late(), "fail of a live lease refused");
                        self.resync(&id).await;
                    }
                    Err(e) => panic!("fail: {e}"),
                }
            }
            Op::Heartbeat { pick: i } => {
                let Some((id, lease)) = pick(&self.leased(), *i).cloned() else {
                    return;
                };
                let r = self.q.heartbeat(&id, &lease, Some(LEASE_MS)).await;
                let t = self.tasks.get_mut(&id).unwrap();
                let M::Leased { expires, .. } = t.state else {
                    unreachable!()
                };
                match r {
                    Ok(e) => {
                        assert!(now < expires, "heartbeat of an expired lease accepted");
                        assert_eq!(e, expires.max(now + LEASE_MS));
                        t.state = M::Leased { lease, expires: e };
                    }
                    Err(QueueError::LeaseLost { .. }) => {
                        assert!(now >= expires, "heartbeat of a live lease refused");
                        self.resync(&id).await;
                    }
                    Err(e) => panic!("heartbeat: {e}"),
                }
            }
            Op::Advance { ms } => self.clock.advance(*ms),
            Op::Redrive { pick: i } => {
                let ids: Vec<String> = self.tasks.keys().cloned().collect();
                let Some(id) = pick(&ids, *i).cloned() else {
                    return;
                };
                if matches!(self.tasks[&id].state, M::Leased { expires, .. } if now >= expires + late())
                {
                    self.resync(&id).await; // maintenance may have rescued it
                }
                let r = self.q.redrive(&id).await;
                let t = self.tasks.get_mut(&id).unwrap();
                match (&t.state, r) {
                    (M::Dead, Ok(TaskStatus::Pending)) => {
                        t.attempt = 0;
                        t.state = M::Pending { due: now };
                    }
                    (M::Dead, other) => panic!("redrive of a dead letter: {other:?}"),
                    (_, Err(QueueError::WrongState { .. })) => {}
                    (s, other) => panic!("redrive while {s:?}: {other:?}"),
                }
            }
            Op::Settle => {
                self.clock.advance(1);
                self.q.rescue().await.unwrap();
                self.rescue();
                self.check_all().await;
                // Everything due is handed out by one large dequeue.
                let mut expected = self.eligible();
                let got = self
                    .q
                    .dequeue(&DequeueRequest {
                        worker_id: "w".into(),
                        max: 100,
                        lease_ms: Some(LEASE_MS),
                    })
                    .await
                    .unwrap();
                let mut ids: Vec<String> = got.iter().map(|l| l.task.id.clone()).collect();
                ids.sort();
                expected.sort();
                assert_eq!(ids, expected, "dequeue after rescue");
                let now = self.now();
                for l in got {
                    let t = self.tasks.get_mut(&l.task.id).unwrap();
                    assert_eq!(l.task.attempt, t.attempt);
                    t.state = M::Leased {
                        lease: l.lease.id,
                        expires: now + LEASE_MS,
                    };
                }
            }
        }
    }

    /// Maintenance rescued a task behind the model's back (it may, inside
    /// a dequeue): check that was allowed and follow it.
    async fn resync(&mut self, id: &str) {
        let status = self.q.status(id).await.unwrap().unwrap();
        let t = self.tasks.get_mut(id).unwrap();
        let M::Leased { lease, .. } = t.state.clone() else {
            unreachable!()
        };
        if matches!(status, TaskStatus::InProgress { .. }) {
            return; // refused (expired) but not rescued yet
        }
        t.stale.push(lease);
        match status {
            TaskStatus::Pending => {
                t.attempt += 1;
                t.state = M::Pending { due: 0 };
            }
            TaskStatus::DeadLetter { .. } => t.state = M::Dead,
            other => panic!("{id} left its lease for {other:?}"),
        }
    }

    async fn check_all(&self) {
        let mut stats = QueueStats::default();
        for (id, t) in &self.tasks {
            let info = self.q.task(id).await.unwrap().unwrap();
            let ok = match (&t.state, &info.status) {
                (M::Pending { due }, TaskStatus::Pending) => {
                    stats.pending += 1;
                    // Deliverable now: undelayed, or made due by maintenance.
                    stats.due += u64::from(*due <= self.now());
                    true
                }
                (M::Leased { .. }, TaskStatus::InProgress { .. }) => {
                    stats.in_progress += 1;
                    true
                }
                (M::Done { output }, TaskStatus::Completed { output: o }) => {
                    stats.completed += 1;
                    output == o
                }
                (M::Failed { .. }, TaskStatus::Failed { attempt, .. }) => {
                    stats.failed += 1;
                    *attempt == t.attempt
                }
                (M::Dead, TaskStatus::DeadLetter { .. }) => {
                    stats.dead_letter += 1;
                    true
                }
                _ => false,
            };
            assert!(ok, "{id}: model {t:?}, engine {:?}", info.status);
            assert_eq!(info.task.attempt, t.attempt, "{id} attempt");
        }
        assert_eq!(self.q.stats().await.unwrap(), stats);
        let mut done: Vec<(String, serde_json::Value)> = self
            .tasks
            .iter()
            .filter_map(|(id, t)| match &t.state {
                M::Done { output } => Some((format!("node-{id}"), output.clone())),
                _ => None,
            })
            .collect();
        let mut collected = self.q.collect_results("model").await.unwrap();
        done.sort_by(|a, b| a.0.cmp(&b.0));
        collected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(collected, done);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_follows_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let (q, clock) = queue_on(MemoryKv::new());
            let mut m = Model { tasks: BTreeMap::new(), clock, q, step: 0 };
            for op in &ops {
                m.apply(op).await;
            }
            m.apply(&Op::Settle).await;
        });
    }
}
