//! One simulated run: hosts on one store under a seeded scheduler, the
//! oracle after every step, then the liveness and storage checks.

use super::hosts::{Common, Counted, Host, Role};
use super::oracle::{block_on, Oracle};
use super::rng::Rng;
use super::sched::{skews, Chaos, Decision, Sched};
use super::store::{Shared, StoreKind};
use serde_json::json;
use spin_work_queue::{
    Ack, Clock, DequeueRequest, KvWorkQueue, LeasedQueue, ManualClock, NewTask, QueueConfig,
    RetryPolicy,
};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// Virtual time at the start of every run.
pub const START_MS: u64 = 1_700_000_000_000;
/// Retention in the simulation: short, so that the sweep runs.
pub const RETENTION_MS: u64 = 60_000;
/// Keys a drained store may keep once retention has passed: counters,
/// maintenance state, the latest locks and timer buckets.
pub const KEYS_AT_REST: usize = 40;

/// What a run is made of.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub store: StoreKind,
    pub hosts: usize,
    pub requests: usize,
    pub chaos: Chaos,
    /// Cap on the store's keys while faults run (`None`: no cap).
    pub key_cap: Option<usize>,
    /// Corrupt a few pending task records from outside.
    pub corrupt: bool,
}

impl Options {
    /// The options of seed `seed`: eight hosts, forty requests each, faults
    /// and stalls throughout; every fourth seed runs against a key cap,
    /// every third corrupts records from outside.
    pub fn for_seed(seed: u64, store: StoreKind) -> Self {
        Self {
            store,
            hosts: 8,
            requests: 40,
            chaos: Chaos {
                fault: 0.02,
                crash: 0.01,
                tick: 0.3,
                stall: 0.05,
                store_call_ms: 0, // set from the queue's timing
            },
            key_cap: (seed % 4 == 0).then_some(120 + (seed as usize * 37) % 200),
            corrupt: seed % 3 == 0,
        }
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub store: StoreKind,
    pub steps: u64,
    pub tasks: usize,
    pub violations: Vec<String>,
    pub trace: String,
    /// Keys left in the store once everything finished and expired.
    pub keys_at_rest: usize,
    /// Keys of an empty queue (before the first task).
    pub keys_empty: usize,
    pub finished: usize,
}

/// The configuration of the queue in every run.
pub fn config() -> QueueConfig {
    QueueConfig {
        retention_ms: RETENTION_MS,
        maintenance_period_ms: 100,
        retry: RetryPolicy {
            base_ms: 1_000,
            max_ms: 8_000,
            jitter: 0.2,
        },
        ..QueueConfig::default()
    }
}

/// Run seed `seed`.
pub fn run(seed: u64, opts: Options) -> Outcome {
    let config = config().validated().expect("valid config");
    let timing = config.timing();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let skews = skews(&mut rng, opts.hosts, timing.clock_skew_ms);
    let chaos = Chaos {
        store_call_ms: timing.store_call_ms,
        ..opts.chaos
    };
    let shared = Shared::new(
        Sched::new(START_MS, &skews, rng.next(), chaos),
        opts.store.open(),
    );
    let checker = KvWorkQueue::with_config(
        shared.store.clone(),
        config.clone(),
        Arc::new(ManualClock::new(START_MS)),
    )
    .expect("valid config")
    .with_observer(Arc::new(Counted::default()));
    let keys_empty = shared.store.all_keys().len();
    let oracle = Arc::new(Mutex::new(Oracle::new(timing, config.retention_ms)));
    let common = Common {
        shared: shared.clone(),
        oracle: oracle.clone(),
        config: config.clone(),
        observer: Arc::new(Counted::default()),
        known_keys: Arc::new(Mutex::new(Vec::new())),
    };
    if let Some(cap) = opts.key_cap {
        shared.key_cap.store(cap, SeqCst);
    }
    let roles = [Role::Producer, Role::Worker, Role::Worker, Role::Admin];
    let threads: Vec<_> = (0..opts.hosts)
        .map(|h| {
            let host = Host::new(h, roles[h % roles.len()], &common, rng.next());
            let shared = shared.clone();
            let oracle = oracle.clone();
            let requests = opts.requests;
            std::thread::spawn(move || {
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.run(requests)));
                if let Err(p) = r {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let now = shared.sched.now();
                    oracle
                        .lock()
                        .unwrap()
                        .violation(now, format!("host {h} panicked: {msg}"));
                    shared.sched.done(h);
                }
            })
        })
        .collect();

    let mut poisoned = BTreeSet::new();
    // The trace as it was at the first violation.
    let mut first_violation: Option<String> = None;
    loop {
        match shared.sched.step() {
            Decision::AllDone => break,
            Decision::Granted { .. } | Decision::Woke { .. } => {}
        }
        shared.sched.wait_idle();
        let now = shared.sched.now();
        let touched: Vec<String> = std::mem::take(&mut *shared.touched.lock().unwrap())
            .into_iter()
            .collect();
        let mut o = oracle.lock().unwrap();
        for id in &touched {
            o.observe(&checker, id, now);
        }
        if !o.violations.is_empty() && first_violation.is_none() {
            first_violation = Some(shared.trace.lock().unwrap().render());
        }
        if opts.corrupt && rng.chance(0.002) {
            if let Some(id) = corrupt_one(&shared, &checker, &mut o, &mut rng) {
                shared
                    .trace
                    .lock()
                    .unwrap()
                    .note(now, &format!("corrupted {id}"));
                poisoned.insert(id);
            }
        }
    }
    for t in threads {
        t.join().expect("host thread");
    }
    let steps = shared.sched.steps();

    // Faults stop; time moves on.
    shared.key_cap.store(0, SeqCst);
    shared.sched.set_chaos(Chaos::calm(timing.store_call_ms));
    let mut o = oracle.lock().unwrap();
    let ids: Vec<String> = o.tasks.keys().cloned().collect();
    let now = shared.sched.now();
    for id in &ids {
        o.observe(&checker, id, now);
    }
    shared.trace.lock().unwrap().note(now, "settle");
    dump(&shared, "settle");
    settle(&shared, &config, &mut o);
    set_aside(&shared, &config, &mut o, &poisoned);
    idle_delivery(&shared, &config, &mut o);
    let (keys_at_rest, finished) = at_rest(&shared, &config, &mut o);
    let trace = first_violation.unwrap_or_else(|| shared.trace.lock().unwrap().render());
    Outcome {
        seed,
        store: opts.store,
        steps,
        tasks: o.tasks.len(),
        violations: o.violations.clone(),
        trace,
        keys_at_rest,
        keys_empty,
        finished,
    }
}

/// Debugging a replay (`SIM_DUMP=<prefix>`): what the store holds under a
/// prefix, into the trace.
fn dump(shared: &Shared, when: &str) {
    let Ok(prefix) = std::env::var("SIM_DUMP") else {
        return;
    };
    let now = shared.sched.now();
    for k in shared
        .store
        .all_keys()
        .iter()
        .filter(|k| k.starts_with(&prefix))
    {
        let v = shared.store.get(k).ok().flatten().unwrap_or_default();
        let value = match <[u8; 8]>::try_from(v.as_slice()) {
            Ok(counter) => format!("#{}", i64::from_le_bytes(counter)),
            Err(_) => String::from_utf8_lossy(&v).into_owned(),
        };
        let text = format!("{when}: {k} = {value}");
        shared.trace.lock().unwrap().note(now, &text);
    }
}

/// Overwrite the record of one unfinished task (pending, leased or
/// waiting for a retry) with bytes no decoder reads.
fn corrupt_one(
    shared: &Shared,
    checker: &KvWorkQueue<Arc<dyn super::store::Inspect>>,
    o: &mut Oracle,
    rng: &mut Rng,
) -> Option<String> {
    use super::oracle::Obs;
    let unfinished: Vec<String> = o
        .tasks
        .iter()
        .filter(|(_, k)| {
            matches!(
                k.last,
                Some(Obs::Pending | Obs::InProgress { .. } | Obs::Failed)
            ) && !k.poisoned
        })
        .map(|(id, _)| id.clone())
        .collect();
    if unfinished.is_empty() {
        return None;
    }
    let id = rng.pick(&unfinished).clone();
    let info = block_on(checker.task(&id)).ok().flatten()?;
    use spin_work_queue::TaskStatus;
    if matches!(
        info.status,
        TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }
    ) {
        return None;
    }
    shared
        .store
        .set(&format!("wq/t/{id}"), b"\x00not json")
        .expect("corrupt");
    o.tasks.get_mut(&id).expect("known").poisoned = true;
    Some(id)
}

/// A queue on the raw store with the global clock (no faults, no skew).
fn direct(
    shared: &Arc<Shared>,
    config: &QueueConfig,
) -> (KvWorkQueue<Arc<dyn super::store::Inspect>>, ManualClock) {
    let clock = ManualClock::new(shared.sched.now());
    let q = KvWorkQueue::with_config(
        shared.store.clone(),
        config.clone(),
        Arc::new(clock.clone()),
    )
    .expect("valid config")
    .with_observer(Arc::new(Counted::default()));
    (q, clock)
}

/// Liveness: with faults over, every task ends Completed or DeadLetter
/// within a bounded virtual time.
fn settle(shared: &Arc<Shared>, config: &QueueConfig, o: &mut Oracle) {
    const BOUND_MS: u64 = 30 * 60_000;
    let (q, clock) = direct(shared, config);
    let start = clock.now_ms();
    while clock.now_ms() < start + BOUND_MS {
        let ids: Vec<String> = o.unfinished().into_iter().map(|(id, _)| id).collect();
        if ids.is_empty() {
            // Everything finished: the counts say so too.
            let stats = block_on(q.stats()).expect("stats");
            if (stats.pending, stats.in_progress, stats.failed) != (0, 0, 0) {
                let now = clock.now_ms();
                dump(shared, "stats disagree");
                o.violation(
                    now,
                    format!("every task finished, but the stats say {stats:?}"),
                );
            }
            return;
        }
        clock.advance(2_000);
        shared.sched.advance(2_000);
        let now = clock.now_ms();
        if let Err(e) = block_on(q.rescue()) {
            o.violation(now, format!("rescue failed once faults stopped: {e}"));
        }
        loop {
            let got = block_on(q.dequeue(&DequeueRequest::new("settler", 100))).unwrap_or_default();
            if got.is_empty() {
                break;
            }
            let acks = got
                .iter()
                .map(|l| Ack {
                    id: l.task.id.clone(),
                    lease_id: l.lease.id.clone(),
                    output: json!({ "by": "settler", "lease": l.lease.id }),
                })
                .collect();
            let _ = block_on(q.ack_batch(acks));
        }
        for id in &ids {
            o.observe(&q, id, now);
        }
    }
    let stuck = o.unfinished();
    let now = clock.now_ms();
    o.violation(
        now,
        format!(
            "not finished {} min after faults stopped: {stuck:?}",
            BOUND_MS / 60_000
        ),
    );
}

/// A task enqueued into an idle queue is delivered by the next dequeue.
fn idle_delivery(shared: &Arc<Shared>, config: &QueueConfig, o: &mut Oracle) {
    let (q, clock) = direct(shared, config);
    clock.advance(1_000);
    shared.sched.advance(1_000);
    let id = "idle-check";
    let task = NewTask {
        id: Some(id.into()),
        ..NewTask::new("idle", "n-idle", json!(null))
    };
    let now = clock.now_ms();
    if let Err(e) = block_on(q.enqueue_batch(vec![task])) {
        o.violation(now, format!("idle enqueue failed: {e}"));
        return;
    }
    match block_on(q.dequeue(&DequeueRequest::new("idle", 1))) {
        Ok(got) if got.len() == 1 && got[0].task.id == id => {
            let _ = block_on(q.ack(id, &got[0].lease.id, json!("idle")));
        }
        other => o.violation(
            now,
            format!("the idle queue's next dequeue answered {other:?}"),
        ),
    }
}

/// Every corrupted pending task was set aside (or written over by the
/// taker that read it just before the corruption).
fn set_aside(
    shared: &Arc<Shared>,
    config: &QueueConfig,
    o: &mut Oracle,
    poisoned: &BTreeSet<String>,
) {
    let (q, clock) = direct(shared, config);
    let listed: BTreeSet<String> = block_on(q.set_aside(1_000))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.key)
        .collect();
    for id in poisoned {
        let key = format!("wq/t/{id}");
        let readable = block_on(q.task(id)).is_ok();
        if !listed.contains(&key) && !readable {
            o.violation(clock.now_ms(), format!("corrupted {key} never set aside"));
        }
    }
}

/// Once retention has passed, the store holds a bounded number of keys.
fn at_rest(shared: &Arc<Shared>, config: &QueueConfig, o: &mut Oracle) -> (usize, usize) {
    let (q, clock) = direct(shared, config);
    let finished = o.tasks.len() + 1;
    for _ in 0..6 {
        clock.advance(RETENTION_MS / 2);
        if let Err(e) = block_on(q.rescue()) {
            o.violation(clock.now_ms(), format!("rescue at rest failed: {e}"));
        }
    }
    let now = clock.now_ms();
    let keys = shared.store.all_keys();
    dump(shared, "at rest");
    if keys.len() > KEYS_AT_REST {
        o.violation(
            now,
            format!(
                "{} keys left at rest (more than {KEYS_AT_REST}): {keys:?}",
                keys.len()
            ),
        );
    }
    (keys.len(), finished)
}
