//! `make bench` (fourth part): the store-only engine and the hosted build.
//!
//! - key writes per task (the unit of Akamai Functions' 50 writes/s), from
//!   enqueue through completion and the retention sweep, counted by
//!   `CountingKv` over the engine with single-task calls;
//! - live tasks a store capped at 1,024 keys holds (Fermyon Cloud): tasks
//!   enqueued until the engine answers `store_full`;
//! - outbound requests per 100 tasks on a real `spin up` of
//!   `deploy/fermyon-cloud/spin.toml` (needs `spin` and `make
//!   build-hosted`): the executors run in process, so every outbound
//!   request is a drain pushed to the worker, and the worker logs one line
//!   per drain.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/spin_support/mod.rs"]
mod spin_support;

use e2e_support::{eventually, numbered, unique};
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::kv::{CountingKv, MemoryKv};
use spin_work_queue::{
    DequeueRequest, HostedConfig, HostedWorkQueue, LeasedQueue, ManualClock, NewTask, QueueConfig,
    QueueError, WorkQueuePort,
};
use std::sync::Arc;
use std::time::Duration;

const TASKS: u64 = 200;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Key writes per task over enqueue → dequeue → ack → retention.
fn writes_per_task() -> f64 {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = HostedConfig {
        queue: QueueConfig {
            retention_ms: 60_000,
            ..QueueConfig::default()
        },
        ..HostedConfig::default()
    };
    let q = HostedWorkQueue::with_config(
        CountingKv::new(MemoryKv::new()),
        config,
        Arc::new(clock.clone()),
    )
    .expect("config");
    block_on(async {
        for n in 0..TASKS {
            let t = NewTask::new("bench", "echo", serde_json::json!({ "n": n }));
            q.enqueue_batch(vec![t]).await.expect("enqueue");
        }
        let mut done = 0;
        while done < TASKS {
            let got = q
                .dequeue(&DequeueRequest::new("w", 1))
                .await
                .expect("dequeue");
            for l in got {
                q.ack(&l.task.id, &l.lease.id, serde_json::json!(1))
                    .await
                    .expect("ack");
                done += 1;
            }
        }
        clock.advance(61_000);
        q.rescue().await.expect("retention");
    });
    let keys_left = q.kv().inner().len();
    assert_eq!(keys_left, 0, "retention left keys behind");
    q.kv().counts().key_writes() as f64 / TASKS as f64
}

/// Tasks a store capped at 1,024 keys accepts before `store_full`.
fn max_live_tasks() -> u64 {
    let config = HostedConfig {
        max_keys: Some(1_024),
        ..HostedConfig::default()
    };
    let q = HostedWorkQueue::with_config(MemoryKv::new(), config, Arc::new(ManualClock::new(0)))
        .expect("config");
    block_on(async {
        let mut n = 0u64;
        loop {
            let t = NewTask::new("cap", "echo", serde_json::json!(n));
            match q.enqueue_batch(vec![t]).await {
                Ok(_) => n += 1,
                Err(QueueError::StoreFull(_)) => return n,
                Err(e) => panic!("enqueue: {e}"),
            }
        }
    })
}

/// Outbound requests per 100 tasks on a real `spin up` of the Fermyon
/// Cloud manifest: 100 tasks in batches of 10.
fn outbound_per_100(spin: &std::path::Path) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let setup = Setup::default()
            .manifest("deploy/fermyon-cloud/spin.toml")
            .var("api_token", "bench");
        let app = SpinUp::start(spin, setup).await;
        let q = app.client_with(Some("bench"));
        let pipeline = unique("hosted-bench");
        for chunk in numbered(&pipeline, 100).chunks(10) {
            q.enqueue_batch(chunk.to_vec()).await.expect("enqueue");
        }
        eventually("100 tasks", Duration::from_secs(120), || async {
            (q.collect_results(&pipeline).await.ok()?.len() >= 100).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.component_stdout("worker")
            .lines()
            .filter(|l| l.starts_with("spin-work-queue: drain "))
            .count() as f64
    })
}

fn main() {
    let writes = writes_per_task();
    let live = max_live_tasks();
    println!("\nStore-only engine (HostedWorkQueue):");
    println!("| figure | value |");
    println!("| --- | ---: |");
    println!("| key writes per task, enqueue → lease → ack → retention | {writes:.3} |");
    println!("| live tasks in a store capped at 1,024 keys | {live} |");
    let outbound = match spin_binary() {
        Some(spin) => {
            let o = outbound_per_100(&spin);
            println!(
                "| outbound requests per 100 tasks (spin up, deploy/fermyon-cloud) | {o:.1} |"
            );
            format!("{o:.1}")
        }
        None => {
            println!("(outbound requests: spin is not on PATH, skipped)");
            "skipped".to_string()
        }
    };
    println!(
        "\nBENCH_HOSTED writes_per_task={writes:.3} max_live_tasks_1024_keys={live} outbound_requests_per_100_tasks={outbound}"
    );
}
