//! The store-only engine (`HostedWorkQueue`) under the scheduler: two
//! producers, three workers and an admin calling `rescue`, every store
//! operation a scheduling point, skewed clocks, transient faults, requests
//! dying mid-way, stalls, and optionally a store capped at a few keys with
//! a one-minute retention (so that producers meet `store_full` and wait for
//! finished tasks to free their keys).
//!
//! Checked: a task is never delivered while another delivery of it still
//! holds a live lease (no duplicate execution while the time bounds hold —
//! every overlap is counted and reported); no two deliveries' acks both
//! succeed; and once the faults stop, every accepted task ends completed
//! (with the output of the ack that succeeded) or dead-lettered.

use super::oracle::block_on;
use super::rng::Rng;
use super::sched::{skews, Chaos, Decision, Sched};
use super::store::{Shared, SimClock, SimKv, StoreKind};
use spin_work_queue::{
    DequeueRequest, HostedConfig, HostedWorkQueue, LeasedQueue, ManualClock, NewTask, QueueConfig,
    QueueError, TaskStatus,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const START_MS: u64 = 1_700_000_000_000;
const PRODUCERS: usize = 2;
const WORKERS: usize = 3;
const TASKS_PER_PRODUCER: u64 = 25;
/// Virtual time after the faults stop by which everything must be done.
const SETTLE_MS: u64 = 600_000;

/// One delivery a worker got.
#[derive(Debug, Clone)]
struct Delivery {
    worker: usize,
    lease: String,
    started: u64,
    /// The lease's expiry as last known (dequeue, heartbeat).
    expires: u64,
    /// Ended: acked, failed, or its worker gave it up.
    ended: bool,
}

#[derive(Default)]
struct Board {
    accepted: Vec<String>,
    deliveries: BTreeMap<String, Vec<Delivery>>,
    /// Task → the lease whose ack succeeded.
    completed_by: BTreeMap<String, String>,
    producers_left: usize,
    calm_since: Option<u64>,
    duplicates: u64,
    store_full: u64,
    violations: Vec<String>,
}

/// What a run found.
#[derive(Debug)]
pub struct HostedOutcome {
    pub steps: u64,
    pub tasks: usize,
    pub deliveries: u64,
    pub duplicates: u64,
    pub store_full: u64,
    pub violations: Vec<String>,
    pub trace: String,
}

#[derive(Clone)]
struct World {
    shared: Arc<Shared>,
    board: Arc<Mutex<Board>>,
    config: HostedConfig,
    skew_ms: u64,
}

fn queue(w: &World, host: usize) -> HostedWorkQueue<SimKv> {
    let kv = SimKv {
        host,
        shared: w.shared.clone(),
        tripped: Default::default(),
    };
    let clock = Arc::new(SimClock {
        host,
        shared: w.shared.clone(),
    });
    HostedWorkQueue::with_config(kv, w.config.clone(), clock).expect("valid config")
}

/// A fresh handle per request: a request that died leaves its handle
/// tripped.
fn request<T>(w: &World, h: usize, f: impl FnOnce(&HostedWorkQueue<SimKv>) -> T) -> T {
    let q = queue(w, h);
    let out = f(&q);
    w.shared.sched.request_done(h);
    out
}

fn producer(h: usize, w: World, seed: u64) {
    let mut rng = Rng::new(seed);
    w.shared.sched.start(h);
    for n in 0..TASKS_PER_PRODUCER {
        let id = format!("p{h}x{n}");
        let task = NewTask {
            id: Some(id.clone()),
            max_attempts: Some(4),
            delay_ms: if rng.chance(0.2) {
                rng.range(1, 3_000)
            } else {
                0
            },
            ..NewTask::new("hosted", "work", serde_json::json!({ "n": n }))
        };
        // Retried with the same id until the queue answers: a first try
        // that applied makes the next one a duplicate, which is accepted.
        loop {
            match request(&w, h, |q| block_on(q.enqueue_batch(vec![task.clone()]))) {
                Ok(_) => {
                    w.board.lock().unwrap().accepted.push(id.clone());
                    break;
                }
                Err(QueueError::StoreFull(_)) => {
                    w.board.lock().unwrap().store_full += 1;
                    w.shared.sched.sleep(h, rng.range(500, 3_000));
                }
                Err(_) => w.shared.sched.sleep(h, rng.range(1, 200)),
            }
        }
        w.shared.sched.sleep(h, rng.range(1, 400));
    }
    let last = {
        let mut b = w.board.lock().unwrap();
        b.producers_left -= 1;
        b.producers_left == 0
    };
    if last {
        let timing = w.config.queue.timing();
        w.shared.sched.set_chaos(Chaos::calm(timing.store_call_ms));
        w.board.lock().unwrap().calm_since = Some(w.shared.sched.now());
    }
    w.shared.sched.done(h);
}

/// Whether the run is over for workers and the admin: producers stopped
/// and every accepted task finished, or the settle time ran out.
fn over(w: &World) -> bool {
    let b = w.board.lock().unwrap();
    let Some(calm) = b.calm_since else {
        return false;
    };
    if w.shared.sched.now() > calm + SETTLE_MS {
        return true;
    }
    drop(b);
    let checker = checker(w);
    let b = w.board.lock().unwrap();
    b.accepted.iter().all(|id| {
        matches!(
            block_on(checker.task(id)).ok().flatten().map(|i| i.status),
            Some(TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. })
        )
    })
}

fn checker(w: &World) -> HostedWorkQueue<Arc<dyn super::store::Inspect>> {
    HostedWorkQueue::with_config(
        w.shared.store.clone(),
        w.config.clone(),
        Arc::new(ManualClock::new(w.shared.sched.now())),
    )
    .expect("valid config")
}

fn worker(h: usize, w: World, seed: u64) {
    let mut rng = Rng::new(seed);
    w.shared.sched.start(h);
    while !over(&w) {
        let req = DequeueRequest {
            worker_id: format!("w{h}"),
            max: 1 + rng.below(3) as u32,
            lease_ms: Some(rng.range(2_000, 6_000)),
        };
        let got = request(&w, h, |q| block_on(q.dequeue(&req)));
        let leased = match got {
            Ok(l) if !l.is_empty() => l,
            _ => {
                w.shared.sched.sleep(h, rng.range(100, 1_500));
                continue;
            }
        };
        let now = w.shared.sched.now();
        for l in &leased {
            let mut b = w.board.lock().unwrap();
            let skew = w.skew_ms;
            let live: Vec<usize> = b
                .deliveries
                .get(&l.task.id)
                .into_iter()
                .flatten()
                .filter(|d| !d.ended && now + skew < d.expires)
                .map(|d| d.worker)
                .collect();
            if !live.is_empty() {
                b.duplicates += 1;
                b.violations.push(format!(
                    "{} delivered to w{h} while w{:?} held a live lease",
                    l.task.id, live
                ));
            }
            b.deliveries
                .entry(l.task.id.clone())
                .or_default()
                .push(Delivery {
                    worker: h,
                    lease: l.lease.id.clone(),
                    started: now,
                    expires: l.lease.expires_at,
                    ended: false,
                });
        }
        for l in leased {
            // Work: sometimes longer than the lease (then it is lost).
            w.shared.sched.sleep(h, rng.range(10, 3_000));
            if rng.chance(0.2) {
                if let Ok(at) = request(&w, h, |q| {
                    block_on(q.heartbeat(&l.task.id, &l.lease.id, Some(5_000)))
                }) {
                    let mut b = w.board.lock().unwrap();
                    if let Some(d) = b
                        .deliveries
                        .get_mut(&l.task.id)
                        .and_then(|ds| ds.iter_mut().find(|d| d.lease == l.lease.id))
                    {
                        d.expires = at;
                    }
                }
                w.shared.sched.sleep(h, rng.range(10, 2_000));
            }
            let ok = if rng.chance(0.15) {
                let _ = request(&w, h, |q| {
                    block_on(q.fail_leased(&l.task.id, &l.lease.id, "boom", true))
                });
                false
            } else {
                let out = serde_json::json!({ "lease": l.lease.id });
                request(&w, h, |q| block_on(q.ack(&l.task.id, &l.lease.id, out)))
                    .is_ok_and(|s| matches!(s, TaskStatus::Completed { .. }))
            };
            let mut b = w.board.lock().unwrap();
            if ok {
                if let Some(prev) = b.completed_by.insert(l.task.id.clone(), l.lease.id.clone()) {
                    if prev != l.lease.id {
                        b.violations.push(format!(
                            "{} completed twice: leases {prev} and {}",
                            l.task.id, l.lease.id
                        ));
                    }
                }
            }
            if let Some(d) = b
                .deliveries
                .get_mut(&l.task.id)
                .and_then(|ds| ds.iter_mut().find(|d| d.lease == l.lease.id))
            {
                d.ended = true;
            }
        }
    }
    w.shared.sched.done(h);
}

fn admin(h: usize, w: World, seed: u64) {
    let mut rng = Rng::new(seed);
    w.shared.sched.start(h);
    while !over(&w) {
        let _ = request(&w, h, |q| block_on(q.rescue()));
        w.shared.sched.sleep(h, rng.range(500, 2_000));
    }
    w.shared.sched.done(h);
}

/// Run seed `seed` on `store`, capped at `max_keys` keys when given.
pub fn run(seed: u64, store: StoreKind, max_keys: Option<u64>) -> HostedOutcome {
    let queue = QueueConfig {
        retention_ms: if max_keys.is_some() { 60_000 } else { 0 },
        ..QueueConfig::default()
    };
    let config = HostedConfig {
        queue,
        max_keys,
        replication_lag_ms: 0,
    };
    let timing = config.queue.timing();
    let mut rng = Rng::new(seed ^ 0x4057);
    let hosts = PRODUCERS + WORKERS + 1;
    let skews = skews(&mut rng, hosts, timing.clock_skew_ms);
    let chaos = Chaos {
        fault: 0.02,
        crash: 0.01,
        stall: 0.05,
        ..Chaos::calm(timing.store_call_ms)
    };
    let shared = Shared::new(
        Sched::new(START_MS, &skews, rng.next(), chaos),
        store.open(),
    );
    if let Some(cap) = max_keys {
        shared
            .key_cap
            .store(cap as usize, std::sync::atomic::Ordering::SeqCst);
    }
    let board = Arc::new(Mutex::new(Board {
        producers_left: PRODUCERS,
        ..Board::default()
    }));
    let world = World {
        shared: shared.clone(),
        board: board.clone(),
        config,
        skew_ms: timing.clock_skew_ms,
    };
    let threads: Vec<_> = (0..hosts)
        .map(|h| {
            let (w, seed) = (world.clone(), rng.next());
            std::thread::spawn(move || match h {
                h if h < PRODUCERS => producer(h, w, seed),
                h if h < PRODUCERS + WORKERS => worker(h, w, seed),
                h => admin(h, w, seed),
            })
        })
        .collect();
    while shared.sched.step() != Decision::AllDone {
        shared.sched.wait_idle();
    }
    for t in threads {
        t.join().expect("host thread");
    }
    let checker = checker(&world);
    let mut b = board.lock().unwrap();
    let accepted = b.accepted.clone();
    for id in &accepted {
        let status = block_on(checker.task(id)).ok().flatten().map(|i| i.status);
        let acked = b.completed_by.get(id).cloned();
        match (status, acked.as_ref()) {
            (Some(TaskStatus::Completed { output }), Some(lease)) => {
                if output["lease"] != *lease {
                    let v =
                        format!("{id} completed with {output}, but the ack of {lease} succeeded");
                    b.violations.push(v);
                }
            }
            // An ack that applied but answered a fault: its lease must be
            // one of the task's deliveries.
            (Some(TaskStatus::Completed { output }), None) => {
                let delivered = b
                    .deliveries
                    .get(id)
                    .into_iter()
                    .flatten()
                    .any(|d| output["lease"] == d.lease);
                if !delivered {
                    b.violations.push(format!(
                        "{id} completed with {output}, a lease never delivered"
                    ));
                }
            }
            (Some(TaskStatus::DeadLetter { .. }), None) => {}
            (None, _) if max_keys.is_some() => {} // retired after retention
            (other, _) => b
                .violations
                .push(format!("{id} ended {other:?} (ack succeeded: {acked:?})")),
        }
    }
    let deliveries = b.deliveries.values().map(|d| d.len() as u64).sum();
    let trace = shared.trace.lock().unwrap().render();
    HostedOutcome {
        steps: shared.sched.steps(),
        tasks: accepted.len(),
        deliveries,
        duplicates: b.duplicates,
        store_full: b.store_full,
        violations: b.violations.clone(),
        trace,
    }
}
