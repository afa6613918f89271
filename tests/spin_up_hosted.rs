//! The hosted builds on a real `spin up`, served from their own manifests
//! (`deploy/fermyon-cloud/spin.toml`, `deploy/akamai-functions/spin.toml`)
//! on Spin's default store: the token is required, a task and a burst of
//! concurrent enqueues complete through the inline drain and the in-process
//! executors, a `kill -9` mid-work loses nothing, and a store capped at a
//! few keys answers `store_full` (507) without losing what it accepted.
//!
//! Skipped (with a note) where Spin is not installed, unless
//! `WQ_REQUIRE_SPIN` is set (see `tests/spin_support`). Needs
//! `make build-hosted`.

mod e2e_support;
mod spin_support;

use e2e_support::{eventually, unique};
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, QueueError, TaskStatus};
use std::time::Duration;

const TOKEN: &str = "hosted-token";

async fn all_completed(q: &HttpWorkQueue, pipeline: &str, n: usize, limit: Duration) {
    eventually(
        &format!("{n} completed tasks of {pipeline}"),
        limit,
        || async {
            let got = q.results(pipeline).await.ok()?;
            (got.len() == n).then_some(())
        },
    )
    .await;
}

async fn serve(spin: &std::path::Path, platform: &str, setup: Setup) -> SpinUp {
    let setup = setup
        .manifest(&format!("deploy/{platform}/spin.toml"))
        .var("api_token", TOKEN);
    SpinUp::start(spin, setup).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hosted_manifest_runs_tasks_and_bursts_with_the_token_required() {
    let Some(spin) = spin_binary() else { return };
    for platform in ["fermyon-cloud", "akamai-functions"] {
        let app = serve(&spin, platform, Setup::default()).await;
        let outsider = app.client_with(None);
        let refused = outsider.stats().await;
        assert!(
            matches!(&refused, Err(QueueError::Transport(m)) if m.contains("unauthorized")),
            "{platform}: no token must be refused, got {refused:?}"
        );
        let q = app.client_with(Some(TOKEN));
        let pipeline = unique("hosted");
        let one = NewTask::new(&pipeline, "echo", serde_json::json!({"hello": platform}));
        q.enqueue_batch(vec![one]).await.expect("enqueue");
        all_completed(&q, &pipeline, 1, Duration::from_secs(30)).await;

        // A burst of concurrent single enqueues: each request drains after
        // its answer, the executors run in process.
        let burst = unique("burst");
        let mut joins = Vec::new();
        for n in 0..40 {
            let (q, burst) = (app.client_with(Some(TOKEN)), burst.clone());
            joins.push(tokio::spawn(async move {
                let t = NewTask::new(&burst, "echo", serde_json::json!({ "n": n }));
                q.enqueue_batch(vec![t])
                    .await
                    .expect("enqueue in the burst");
            }));
        }
        for j in joins {
            j.await.expect("enqueue task");
        }
        all_completed(&q, &burst, 40, Duration::from_secs(60)).await;
        let stats = q.stats().await.expect("stats");
        assert_eq!(
            (stats.pending, stats.in_progress),
            (0, 0),
            "{platform}: {stats:?}"
        );
        assert!(
            app.component_stdout("queue").contains("inline drain"),
            "{platform}: the queue component drained inline"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_work_loses_nothing_on_the_hosted_build() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default().var("default_lease_ms", "2000");
    let mut app = serve(&spin, "fermyon-cloud", setup).await;
    let q = app.client_with(Some(TOKEN));
    let pipeline = unique("kill");
    let tasks: Vec<NewTask> = (0..10)
        .map(|n| {
            NewTask::new(
                &pipeline,
                "echo",
                serde_json::json!({ "n": n, "sleep_ms": 300 }),
            )
        })
        .collect();
    q.enqueue_batch(tasks).await.expect("enqueue");
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.restart().await;
    let q = app.client_with(Some(TOKEN));
    // Nothing pushes after a restart: a rescue call (a scheduler's) drains
    // what the killed drain left once its leases can be rescued.
    eventually(
        "every task after the kill",
        Duration::from_secs(90),
        || async {
            let _ = q.rescue().await;
            let got = q.results(&pipeline).await.ok()?;
            (got.len() == 10).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_store_answers_store_full_and_keeps_what_it_accepted() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default().var("max_keys", "40");
    let app = serve(&spin, "fermyon-cloud", setup).await;
    let q = app.client_with(Some(TOKEN));
    let pipeline = unique("cap");
    let mut accepted = Vec::new();
    let full = loop {
        let t = NewTask {
            delay_ms: 3_600_000, // they stay open: nothing frees keys
            ..NewTask::new(
                &pipeline,
                "echo",
                serde_json::json!({ "n": accepted.len() }),
            )
        };
        match q.enqueue_batch(vec![t]).await {
            Ok(e) => accepted.push(e[0].id.clone()),
            Err(e) => break e,
        }
        assert!(accepted.len() <= 40, "more tasks accepted than keys");
    };
    assert!(matches!(full, QueueError::StoreFull(_)), "got {full:?}");
    assert_eq!(
        accepted.len() as u64,
        40 - spin_work_queue::hosted::RESERVED_KEYS
    );
    for id in &accepted {
        let info = q.task(id).await.expect("task").expect("kept");
        assert_eq!(info.status, TaskStatus::Pending);
    }
}
