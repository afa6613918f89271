//! Concurrency: producers, workers (acking, failing, abandoning), a
//! rescuer that moves time and a redriver share one store. At the end no
//! accepted task is lost, no task ever had two live leases at once, and
//! completed results are stored once and stay stable.

mod support;

use serde_json::json;
use spin_work_queue::kv::{KeyValue, MemoryKv, SqliteKv};
use spin_work_queue::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use support::*;

const PIPELINE: &str = "conc";

/// One delivery as the workers saw it.
#[derive(Debug, Clone)]
struct Delivery {
    task: String,
    expires_at: u64,
    lease_ms: u64,
    /// Global sequence number when the dequeue call returned.
    dequeued: u64,
    /// Sequence number when an accepted ack/fail call started.
    finished: Option<u64>,
}

struct Shared<K> {
    q: KvWorkQueue<K>,
    clock: ManualClock,
    seq: AtomicU64,
    deliveries: Mutex<Vec<Delivery>>,
    accepted: Mutex<HashSet<String>>,
    producing: AtomicBool,
}

impl<K> Shared<K> {
    fn tick(&self) -> u64 {
        self.seq.fetch_add(1, SeqCst)
    }
}

/// A tiny deterministic generator per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn producer<K: KeyValue + Send + Sync>(s: Arc<Shared<K>>, me: u64, tasks: u64) {
    let mut rng = Rng(0x9e37_79b9 + me);
    let mut made = 0;
    while made < tasks {
        let n = (rng.next() % 10 + 1).min(tasks - made);
        let batch: Vec<NewTask> = (made..made + n)
            .map(|i| {
                let id = format!("p{me}-{i}");
                NewTask {
                    id: Some(id.clone()),
                    ..NewTask::new(PIPELINE, format!("node-{id}"), json!(i))
                }
            })
            .collect();
        for e in s.q.enqueue_batch(batch).await.expect("enqueue") {
            assert!(!e.duplicate);
            s.accepted.lock().unwrap().insert(e.id);
        }
        made += n;
        tokio::task::yield_now().await;
    }
}

async fn worker<K: KeyValue + Send + Sync>(s: Arc<Shared<K>>, me: u64) {
    let mut rng = Rng(0x51ed_2701 + me);
    let mut idle = 0;
    while idle < 200 {
        let req = DequeueRequest {
            worker_id: format!("w{me}"),
            max: (rng.next() % 5 + 1) as u32,
            lease_ms: Some(5_000),
        };
        let got = match s.q.dequeue(&req).await {
            Ok(got) => got,
            Err(QueueError::TooSlow(_)) => continue,
            Err(e) => panic!("dequeue: {e}"),
        };
        let returned = s.tick();
        if got.is_empty() {
            if !s.producing.load(SeqCst) {
                idle += 1;
            }
            tokio::task::yield_now().await;
            continue;
        }
        idle = 0;
        for t in got {
            let index = {
                let mut d = s.deliveries.lock().unwrap();
                d.push(Delivery {
                    task: t.task.id.clone(),
                    expires_at: t.lease.expires_at,
                    lease_ms: 5_000,
                    dequeued: returned,
                    finished: None,
                });
                d.len() - 1
            };
            let roll = rng.next() % 100;
            let started = s.tick();
            let accepted = if roll < 70 {
                let out = json!({ "task": t.task.id, "lease": t.lease.id });
                s.q.ack(&t.task.id, &t.lease.id, out).await.is_ok()
            } else if roll < 85 {
                s.q.fail_leased(&t.task.id, &t.lease.id, "flaky", true)
                    .await
                    .is_ok()
            } else if roll < 90 {
                s.q.fail_leased(&t.task.id, &t.lease.id, "broken", false)
                    .await
                    .is_ok()
            } else {
                false // abandoned: the lease expires and is rescued
            };
            if accepted {
                s.deliveries.lock().unwrap()[index].finished = Some(started);
            }
        }
    }
}

/// Time moves with the work done: 250 ms per 40 operations of the others,
/// so a thread the OS leaves idle for a while sees little time pass.
async fn rescuer<K: KeyValue + Send + Sync>(s: Arc<Shared<K>>, stop: Arc<AtomicBool>) {
    let (mut last, mut idle) = (0, 0);
    while !stop.load(SeqCst) {
        let now = s.seq.load(SeqCst);
        // Move on when the others did enough, or nothing at all for a while
        // (everything left waits for a lease to expire).
        idle = if now == last { idle + 1 } else { 0 };
        if now < last + 40 && idle < 50 {
            tokio::task::yield_now().await;
            continue;
        }
        (last, idle) = (now, 0);
        s.clock.advance(250);
        match s.q.rescue().await {
            Ok(_) | Err(QueueError::TooSlow(_)) => {}
            Err(e) => panic!("rescue: {e}"),
        }
        tokio::task::yield_now().await;
    }
}

async fn redriver<K: KeyValue + Send + Sync>(s: Arc<Shared<K>>, stop: Arc<AtomicBool>) {
    let mut redriven = 0;
    while !stop.load(SeqCst) {
        for d in s.q.dead_letters(10).await.expect("dead letters") {
            if redriven < 50 {
                match s.q.redrive(&d.task.id).await {
                    Ok(_) | Err(QueueError::WrongState { .. }) => redriven += 1,
                    Err(e) => panic!("redrive: {e}"),
                }
            }
        }
        s.q.stats().await.expect("stats");
        s.q.collect_results(PIPELINE).await.expect("collect");
        tokio::task::yield_now().await;
    }
}

/// No task was ever leased while an earlier lease of it was still live:
/// a later delivery granted before the earlier lease's expiry is only
/// fine if the earlier delivery had already finished.
fn assert_one_live_lease(deliveries: &[Delivery]) {
    let mut by_task: HashMap<&str, Vec<&Delivery>> = HashMap::new();
    for d in deliveries {
        by_task.entry(&d.task).or_default().push(d);
    }
    for (task, mut ds) in by_task {
        ds.sort_by_key(|d| d.expires_at - d.lease_ms);
        for pair in ds.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let b_granted = b.expires_at - b.lease_ms;
            if b_granted < a.expires_at {
                let finished_first = a.finished.is_some_and(|f| f < b.dequeued);
                assert!(finished_first, "{task}: two live leases: {a:?} and {b:?}");
            }
        }
    }
}

async fn run<K: KeyValue + Send + Sync + 'static>(
    kv: K,
    store: impl Fn(&K) -> Option<&MemoryKv>,
    tasks: u64,
) {
    let (q, clock) = queue_on(kv);
    let s = Arc::new(Shared {
        q,
        clock,
        seq: AtomicU64::new(0),
        deliveries: Mutex::new(Vec::new()),
        accepted: Mutex::new(HashSet::new()),
        producing: AtomicBool::new(true),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|i| tokio::spawn(producer(s.clone(), i, tasks / 2)))
        .collect();
    let workers: Vec<_> = (0..4).map(|i| tokio::spawn(worker(s.clone(), i))).collect();
    let helpers = vec![
        tokio::spawn(rescuer(s.clone(), stop.clone())),
        tokio::spawn(redriver(s.clone(), stop.clone())),
    ];
    for p in producers {
        p.await.unwrap();
    }
    s.producing.store(false, SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    stop.store(true, SeqCst);
    for h in helpers {
        h.await.unwrap();
    }

    let accepted = s.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len() as u64, tasks);
    settle(&s.q, &s.clock, &accepted, 30).await;
    assert_one_live_lease(&s.deliveries.lock().unwrap());
    let statuses: BTreeMap<String, TaskStatus> = match store(s.q.kv()) {
        Some(mem) => check_invariants(&s.q, mem, PIPELINE, &accepted).await,
        None => {
            let mut m = BTreeMap::new();
            for id in &accepted {
                let st = s.q.status(id).await.unwrap().expect("accepted task lost");
                assert!(st.is_terminal(), "{id}: {st:?}");
                m.insert(id.clone(), st);
            }
            m
        }
    };
    let collected = s.q.collect_results(PIPELINE).await.unwrap();
    let completed = statuses
        .values()
        .filter(|st| matches!(st, TaskStatus::Completed { .. }))
        .count();
    assert_eq!(
        collected.len(),
        completed,
        "every completed task collected once"
    );
    // Stable afterwards.
    // Let maintenance catch up with everything that happened.
    for _ in 0..5 {
        s.clock.advance(60_000);
        s.q.rescue().await.unwrap();
    }
    for (id, st) in &statuses {
        assert_eq!(&s.q.status(id).await.unwrap().unwrap(), st, "{id} changed");
    }
    assert_eq!(s.q.collect_results(PIPELINE).await.unwrap(), collected);
    let stats = s.q.stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.in_progress, stats.failed),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.completed as usize, completed, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_threads_on_one_memory_store_lose_nothing() {
    run(Arc::new(MemoryKv::new()), |kv| Some(&**kv), 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_threads_on_one_sqlite_file_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kv = SqliteKv::open(dir.path().join("kv.db")).unwrap();
    run(kv, |_| None, 300).await;
}
