//! What the virtual hosts do: producers enqueue (with delays, idempotency
//! keys, poison inputs), workers dequeue and then ack, fail, heartbeat,
//! work for a while or walk away, admins rescue, redrive and read. Every
//! engine call is one request; its answer goes to the oracle.

use super::oracle::{block_on, Oracle};
use super::rng::Rng;
use super::store::{Shared, SimClock, SimKv};
use serde_json::{json, Value};
use spin_work_queue::ids::SequentialIds;
use spin_work_queue::{
    Ack, DequeueRequest, Event, KvWorkQueue, LeasedQueue, LeasedTask, NewTask, Observer,
    QueueConfig, QueueError, TaskStatus,
};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// What a host does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Worker,
    Admin,
}

/// The engine's events, counted (they are expected under faults).
#[derive(Debug, Default)]
pub struct Counted {
    pub maintenance_failed: AtomicU64,
    pub set_aside: AtomicU64,
    pub slow_writes: AtomicU64,
}

impl Observer for Counted {
    fn event(&self, event: &Event) {
        let c = match event {
            Event::MaintenanceFailed(_) => &self.maintenance_failed,
            Event::SetAside { .. } => &self.set_aside,
            Event::SlowWrite { .. } => &self.slow_writes,
            _ => return,
        };
        c.fetch_add(1, SeqCst);
    }
}

/// What every host shares.
pub struct Common {
    pub shared: Arc<Shared>,
    pub oracle: Arc<Mutex<Oracle>>,
    pub config: QueueConfig,
    pub observer: Arc<Counted>,
    /// Accepted task ids, their idempotency keys and when they were
    /// accepted, shared by producers.
    pub known_keys: Arc<Mutex<Vec<(String, String, u64)>>>,
}

/// One host's world.
pub struct Host {
    pub id: usize,
    pub role: Role,
    pub shared: Arc<Shared>,
    pub oracle: Arc<Mutex<Oracle>>,
    pub queue: KvWorkQueue<SimKv>,
    pub rng: Rng,
    pub held: Vec<LeasedTask>,
    pub made: u64,
    /// Accepted task ids, their idempotency keys and when they were
    /// accepted, shared by producers.
    pub known_keys: Arc<Mutex<Vec<(String, String, u64)>>>,
}

impl Host {
    /// A host with its own queue handle on the shared store.
    pub fn new(id: usize, role: Role, common: &Common, seed: u64) -> Self {
        let kv = SimKv {
            host: id,
            shared: common.shared.clone(),
            tripped: Default::default(),
        };
        let clock = Arc::new(SimClock {
            host: id,
            shared: common.shared.clone(),
        });
        let queue = KvWorkQueue::with_config(kv, common.config.clone(), clock)
            .expect("valid config")
            .with_ids(Arc::new(SequentialIds::new(&format!("h{id}-"))))
            .with_observer(common.observer.clone());
        Self {
            id,
            role,
            shared: common.shared.clone(),
            oracle: common.oracle.clone(),
            queue,
            rng: Rng::new(seed),
            held: Vec::new(),
            made: 0,
            known_keys: common.known_keys.clone(),
        }
    }

    fn log(&self, what: String) {
        let now = self.shared.sched.now();
        self.shared
            .trace
            .lock()
            .unwrap()
            .request(now, self.id, &what);
    }

    fn now(&self) -> u64 {
        self.shared.sched.now()
    }

    /// This host's clock, without counting as a read before a write.
    fn clock(&self) -> u64 {
        self.shared.sched.peek_clock(self.id)
    }

    /// Run `requests` requests, then stop.
    pub fn run(mut self, requests: usize) {
        self.shared.sched.start(self.id);
        for _ in 0..requests {
            match self.role {
                Role::Producer => self.produce(),
                Role::Worker => self.work(),
                Role::Admin => self.administer(),
            }
            self.shared.sched.request_done(self.id);
            self.queue.kv().tripped.store(false, SeqCst);
            if self.rng.chance(0.3) {
                let pause = self.rng.range(1, 2_000);
                self.shared.sched.sleep(self.id, pause);
            }
        }
        // Walk away from whatever is still held: maintenance must rescue it.
        self.shared.sched.done(self.id);
    }

    fn produce(&mut self) {
        let n = self.rng.range(1, 4);
        let poison = self.rng.chance(0.05);
        let mut tasks = Vec::new();
        let mut expect_dup = Vec::new();
        for i in 0..n {
            self.made += 1;
            let id = format!("t{}x{}", self.id, self.made);
            let pipeline = format!("p{}", self.rng.below(3));
            let mut t = NewTask {
                id: Some(id.clone()),
                max_attempts: Some(self.rng.range(1, 3) as u32),
                ..NewTask::new(pipeline, format!("n-{id}"), json!({ "i": i }))
            };
            if self.rng.chance(0.2) {
                t.delay_ms = self.rng.range(1, 20_000);
            }
            // Keys of tasks too recent to have expired yet.
            let now = self.now();
            let known: Vec<(String, String)> = self
                .known_keys
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, _, at)| now < at + 30_000)
                .map(|(id, key, _)| (id.clone(), key.clone()))
                .collect();
            if !known.is_empty() && self.rng.chance(0.1) {
                let (existing, key) = self.rng.pick(&known).clone();
                t.idempotency_key = Some(key);
                expect_dup.push((i as usize, existing));
            } else if self.rng.chance(0.3) {
                t.idempotency_key = Some(format!("key-{id}"));
            }
            if poison && i == 0 {
                t.input = nested(self.rng.range(65, 126) as usize);
            }
            tasks.push(t);
        }
        let sent = tasks.clone();
        let r = block_on(self.queue.enqueue_batch(tasks));
        let now = self.now();
        self.log(format!(
            "enqueue {:?} -> {}",
            sent.iter()
                .map(|t| t.id.clone().unwrap())
                .collect::<Vec<_>>(),
            brief(&r)
        ));
        let mut oracle = self.oracle.lock().unwrap();
        match (&r, poison) {
            (Err(QueueError::Invalid(_)), true) => {}
            (_, true) => oracle.violation(now, format!("input nested too deep answered {r:?}")),
            (Ok(outcomes), false) => {
                for (i, (o, t)) in outcomes.iter().zip(&sent).enumerate() {
                    if let Some((_, existing)) = expect_dup.iter().find(|(j, _)| *j == i) {
                        if !(o.duplicate && o.id == *existing) {
                            oracle.violation(
                                now,
                                format!("key of {existing} reused by {:?}: answered {o:?}", t.id),
                            );
                        }
                        continue;
                    }
                    if o.duplicate {
                        oracle.violation(now, format!("fresh task {:?} called a duplicate", t.id));
                        continue;
                    }
                    oracle.accepted(&o.id, &t.pipeline_id, &t.node_name);
                    let key = t.idempotency_key.clone().unwrap_or_else(|| o.id.clone());
                    self.known_keys
                        .lock()
                        .unwrap()
                        .push((o.id.clone(), key, now));
                }
            }
            (Err(_), false) => {} // a fault: maybe written, the checker sees it
        }
    }

    fn work(&mut self) {
        if self.held.is_empty() || self.rng.chance(0.3) {
            let lease_ms = *self.rng.pick(&[1_000u64, 5_000, 20_000]);
            let req = DequeueRequest {
                worker_id: format!("w{}", self.id),
                max: self.rng.range(1, 3) as u32,
                lease_ms: Some(lease_ms),
            };
            let r = block_on(self.queue.dequeue(&req));
            self.log(format!(
                "dequeue -> {}",
                match &r {
                    Ok(got) => format!(
                        "{:?}",
                        got.iter()
                            .map(|l| format!("{}@{}", l.task.id, l.lease.id))
                            .collect::<Vec<_>>()
                    ),
                    Err(e) => format!("err {e}"),
                }
            ));
            if let Ok(got) = r {
                self.held.extend(got);
            }
            return;
        }
        let i = self.rng.below(self.held.len() as u64) as usize;
        match self.rng.below(10) {
            0..=3 => {
                let l = self.held.remove(i);
                let output = json!({ "by": self.id, "lease": l.lease.id });
                let r = block_on(self.queue.ack(&l.task.id, &l.lease.id, output));
                self.finished(&l, "ack", r.map(drop));
            }
            4 => {
                let acks: Vec<Ack> = self
                    .held
                    .iter()
                    .map(|l| Ack {
                        id: l.task.id.clone(),
                        lease_id: l.lease.id.clone(),
                        output: json!({ "by": self.id, "lease": l.lease.id }),
                    })
                    .collect();
                let held = std::mem::take(&mut self.held);
                match block_on(self.queue.ack_batch(acks)) {
                    Ok(results) => {
                        for (l, r) in held.iter().zip(results) {
                            self.finished(l, "ack_batch", r.map(drop));
                        }
                    }
                    Err(e) => self.log(format!("ack_batch -> err {e}")),
                }
            }
            5 | 6 => {
                let l = self.held.remove(i);
                let retryable = self.rng.chance(0.7);
                let r =
                    block_on(
                        self.queue
                            .fail_leased(&l.task.id, &l.lease.id, "boom", retryable),
                    );
                self.finished(&l, "fail", r.map(drop));
            }
            7 => {
                let l = self.held[i].clone();
                let r = block_on(self.queue.heartbeat(&l.task.id, &l.lease.id, Some(5_000)));
                if let Ok(at) = r {
                    self.held[i].lease.expires_at = at;
                }
                self.finished(&l, "heartbeat", r.map(drop));
            }
            8 => {
                // Work on it for a while (maybe past the lease).
                let ms = self.rng.range(100, 12_000);
                self.shared.sched.sleep(self.id, ms);
            }
            _ => {
                let l = self.held.remove(i);
                self.log(format!("walk away from {}@{}", l.task.id, l.lease.id));
            }
        }
    }

    /// Report how a finishing call with a lease went.
    fn finished(&mut self, l: &LeasedTask, what: &str, r: Result<(), QueueError>) {
        let clock = self.clock();
        self.log(format!(
            "{what} {}@{} -> {}",
            l.task.id,
            l.lease.id,
            brief(&r)
        ));
        if let Err(QueueError::LeaseLost { .. }) = r {
            let now = self.now();
            self.oracle
                .lock()
                .unwrap()
                .lease_lost(&l.task.id, &l.lease.id, clock, now);
        }
    }

    fn administer(&mut self) {
        match self.rng.below(6) {
            0 | 1 => {
                let r = block_on(self.queue.rescue());
                self.log(format!("rescue -> {}", brief(&r)));
            }
            2 => {
                let r = block_on(self.queue.stats());
                self.log(format!("stats -> {}", brief(&r)));
            }
            3 => {
                let r = block_on(self.queue.dead_letters(10));
                self.log(format!("dead_letters -> {}", brief(&r)));
                if let Ok(dead) = r {
                    if let Some(d) = dead.first() {
                        let r = block_on(self.queue.redrive(&d.task.id));
                        self.log(format!("redrive {} -> {}", d.task.id, brief(&r)));
                    }
                }
            }
            4 => {
                let pipeline = format!("p{}", self.rng.below(3));
                let r = block_on(self.queue.results(&pipeline));
                self.log(format!("results {pipeline} -> {}", brief(&r)));
            }
            _ => {
                let known = self.known_keys.lock().unwrap().clone();
                if let Some((id, _, _)) =
                    known.get(self.rng.below(known.len().max(1) as u64) as usize)
                {
                    let r = block_on(self.queue.task(id));
                    let status = r.map(|i| i.map(|i| i.status));
                    self.log(format!("task {id} -> {}", brief(&status)));
                    if let Ok(Some(TaskStatus::Completed { .. })) = status {
                        // The checker's next look compares it with the results.
                        self.shared.touched.lock().unwrap().insert(id.clone());
                    }
                }
            }
        }
    }
}

/// `depth` arrays, one inside the other.
pub fn nested(depth: usize) -> Value {
    let mut v = json!(0);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

fn brief<T: std::fmt::Debug>(r: &Result<T, QueueError>) -> String {
    let s = match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("err {e}"),
    };
    s.chars().take(160).collect()
}
