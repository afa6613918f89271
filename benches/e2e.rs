//! `make bench` (second part): tasks per second through the served
//! components — enqueue over HTTP, the worker component draining, the
//! `echo` executor, acks — on `wq-test-host` with Spin's default store
//! (SQLite, one file, a commit per write as Spin does it).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;

use e2e_support::{eventually, App, Options};
use serde_json::json;
use spin_work_queue::kv::{KeyValue, SqliteKv};
use spin_work_queue::{LeasedQueue, NewTask, WorkQueuePort};
use std::time::{Duration, Instant};

/// Drainers working at once (the worker component runs one per request).
const DRAINERS: usize = 2;

/// Enqueue `total` tasks in batches of `batch`, then drain them with
/// batches of `batch`; tasks per second from the first enqueue to the last
/// result.
async fn run(total: usize, batch: usize) -> f64 {
    let app = App::start(Options::default().var("worker_url", "")).await;
    let q = app.client();
    let pipeline = format!("bench-{batch}");
    let start = Instant::now();
    for chunk in 0..total / batch {
        let tasks = (chunk * batch..(chunk + 1) * batch)
            .map(|n| NewTask::new(&pipeline, "echo", json!({ "n": n })))
            .collect();
        q.enqueue_batch(tasks).await.expect("enqueue");
    }
    let mut drainers = Vec::new();
    for _ in 0..DRAINERS {
        let http = app.http();
        let url = format!("{}/worker/drain", app.url);
        let body = json!({ "max_tasks": total, "batch": batch.min(100), "budget_ms": 600_000 });
        drainers.push(tokio::spawn(async move {
            loop {
                let r: serde_json::Value = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .expect("drain")
                    .json()
                    .await
                    .expect("report");
                if r["processed"].as_u64().unwrap_or(0) == 0 {
                    return;
                }
            }
        }));
    }
    for d in drainers {
        d.await.expect("drainer");
    }
    eventually("every result", Duration::from_secs(600), || async {
        let done = q.stats().await.ok()?.completed as usize;
        (done >= total).then_some(())
    })
    .await;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    assert_eq!(q.collect_results(&pipeline).await.unwrap().len(), total);
    rate
}

/// Autocommit writes per second on a SQLite file right now.
fn commit_rate() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let kv = SqliteKv::open(dir.path().join("raw.db")).unwrap();
    let start = Instant::now();
    for i in 0..1_000 {
        kv.set(&format!("k{i}"), b"v").unwrap();
    }
    1_000.0 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let commits = commit_rate();
    let batched = rt.block_on(run(5_000, 100));
    let single = rt.block_on(run(300, 1));
    println!("\nEnd to end through the components on wq-test-host (SQLite file, {DRAINERS} drainers, echo executor):");
    println!("| workload | tasks/s |");
    println!("| --- | ---: |");
    println!("| raw autocommit writes on this disk | {commits:.0} commits/s |");
    println!("| enqueue, drain and ack in batches of 100 | {batched:.0} |");
    println!("| one task per call (enqueue, drain batch 1) | {single:.0} |");
    println!(
        "\nBENCH_E2E commit_limit_per_s={commits:.1} tasks_per_s_batch100={batched:.1} tasks_per_s_single={single:.1}"
    );
}
