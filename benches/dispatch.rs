//! `make bench` (third part): coalesced push dispatch on a real `spin up`
//! (SQLite store, `echo`): 60 concurrent single-task enqueues, then one
//! more task, three times — drains started per round (the worker logs one
//! line per drain), time until all 60 are completed, the lone task's
//! latency. Needs `spin` on PATH (or `WQ_SPIN`); says so otherwise.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/spin_support/mod.rs"]
mod spin_support;

use e2e_support::{eventually, numbered, unique};
use serde_json::json;
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, WorkQueuePort};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const BURST: usize = 60;

fn drains_logged(app: &SpinUp) -> usize {
    app.component_stdout("worker")
        .lines()
        .filter(|l| l.starts_with("spin-work-queue: drain "))
        .count()
}

/// One burst of concurrent single-task enqueues: seconds until all are
/// completed.
async fn burst(q: &Arc<HttpWorkQueue>) -> f64 {
    let pipeline = unique("burst");
    let start = Instant::now();
    let sends: Vec<_> = numbered(&pipeline, BURST)
        .into_iter()
        .map(|task| {
            let q = q.clone();
            tokio::spawn(async move { q.enqueue_batch(vec![task]).await.expect("enqueue") })
        })
        .collect();
    for s in sends {
        s.await.expect("enqueue task");
    }
    eventually("the burst", Duration::from_secs(60), || async {
        (q.collect_results(&pipeline).await.ok()?.len() >= BURST).then_some(())
    })
    .await;
    start.elapsed().as_secs_f64()
}

/// One task alone: seconds until it is completed.
async fn lone(q: &HttpWorkQueue) -> f64 {
    let pipeline = unique("lone");
    let start = Instant::now();
    q.enqueue_batch(vec![NewTask::new(&pipeline, "echo", json!({"n": 0}))])
        .await
        .expect("enqueue");
    eventually("the lone task", Duration::from_secs(60), || async {
        (!q.collect_results(&pipeline).await.ok()?.is_empty()).then_some(())
    })
    .await;
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(spin) = spin_binary() else {
        println!("BENCH_DISPATCH skipped: spin is not on PATH");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let app = SpinUp::start(&spin, Setup::default()).await;
        let q = Arc::new(app.client());
        let (mut bursts, mut lones, mut drains) = (Vec::new(), Vec::new(), Vec::new());
        println!("\nCoalesced push dispatch on spin up (SQLite, max_drains = 2, echo):");
        println!("| round | drains started | 60 concurrent enqueues done (s) | lone task (s) |");
        println!("| ---: | ---: | ---: | ---: |");
        for round in 1..=ROUNDS {
            let before = drains_logged(&app);
            let b = burst(&q).await;
            let l = lone(&q).await;
            // Drains log when they end; the last one ends right after its
            // task.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let d = drains_logged(&app) - before;
            println!("| {round} | {d} | {b:.2} | {l:.2} |");
            bursts.push(b);
            lones.push(l);
            drains.push(d as f64);
        }
        println!(
            "\nBENCH_DISPATCH drains={:.0} burst60_s={:.2} lone_task_s={:.2}",
            median(drains),
            median(bursts),
            median(lones)
        );
    });
}
