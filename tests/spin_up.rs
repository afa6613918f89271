//! The README's promises on a real `spin up`: the quick start, a batch
//! drained by the worker component, retries, and the Redis runtime config.
//!
//! These run only when `spin` is on PATH (`WQ_SPIN` names another binary);
//! otherwise each test prints `SKIPPED` and passes (with `WQ_REQUIRE_SPIN`
//! set, as in CI, it fails). Build machines without Spin cover the same
//! flows on `wq-test-host` in `tests/e2e.rs`.

mod e2e_support;
mod spin_support;

use e2e_support::{assert_each_once, eventually, numbered, unique, Redis};
use serde_json::{json, Value};
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::path::Path;
use std::time::Duration;

/// Enqueue `count` echo tasks of a fresh pipeline and wait until every
/// result is there, exactly once.
async fn drain_batch(q: &HttpWorkQueue, count: usize) {
    let pipeline = unique("batch");
    for chunk in numbered(&pipeline, count).chunks(50) {
        q.enqueue_batch(chunk.to_vec()).await.expect("enqueue");
    }
    let results = eventually("every result", Duration::from_secs(120), || async {
        q.rescue().await.ok();
        let r = q.collect_results(&pipeline).await.ok()?;
        (r.len() >= count).then_some(r)
    })
    .await;
    assert_each_once("the batch", &results, count);
}

/// README "Quick start": one `curl` enqueues an `echo` task, the queue
/// pushes it to the worker, and a second `curl` reads the result.
#[tokio::test]
async fn readme_quick_start() {
    let Some(spin) = spin_binary() else { return };
    let app = SpinUp::start(&spin, Setup::default()).await;
    let http = reqwest::Client::new();
    let pipeline = unique("demo");
    let resp = http
        .post(format!("{}/v1/tasks", app.url))
        .header("content-type", "application/json")
        .body(
            json!({ "pipeline_id": pipeline, "node_name": "echo", "input": { "hello": "spin" } })
                .to_string(),
        )
        .send()
        .await
        .expect("enqueue");
    assert_eq!(resp.status().as_u16(), 201, "{}", app.log());
    let body: Value = resp.json().await.expect("enqueue answer");
    assert_eq!(body["tasks"][0]["duplicate"], false, "{body}");
    let url = format!("{}/v1/pipelines/{pipeline}/results", app.url);
    let results = eventually("the echo result", Duration::from_secs(60), || async {
        let r: Value = http.get(&url).send().await.ok()?.json().await.ok()?;
        r["results"].as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    assert_eq!(
        Value::Array(results),
        json!([{ "node_name": "echo", "output": { "hello": "spin" } }])
    );
}

/// Push dispatch through the worker component drains a batch, each task
/// once; a task whose executor fails twice completes on its third attempt.
#[tokio::test]
async fn batch_and_retries() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default()
        .var("retry_base_ms", "100")
        .var("retry_jitter", "0");
    let app = SpinUp::start(&spin, setup).await;
    let q = app.client();
    drain_batch(&q, 200).await;

    let enqueued = q
        .enqueue_batch(vec![NewTask::new(
            unique("retry"),
            "echo",
            json!({ "fail_times": 2 }),
        )])
        .await
        .expect("enqueue");
    let id = enqueued[0].id.clone();
    let status = eventually("the retried task", Duration::from_secs(60), || async {
        q.rescue().await.ok();
        match q.status(&id).await.ok().flatten()? {
            s @ (TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }) => Some(s),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        status,
        TaskStatus::Completed {
            output: json!({ "fail_times": 2 })
        },
        "{}",
        app.log()
    );
    let stats = q.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.in_progress), (0, 0), "{stats:?}");
}

/// `runtime-config/redis.toml` with the store pointed at a local
/// `redis-server`: the queue works on Spin's Redis backend.
#[tokio::test]
async fn redis_runtime_config() {
    let Some(spin) = spin_binary() else { return };
    let Some(redis) = Redis::start().await else {
        return;
    };
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime-config/redis.toml"),
    )
    .expect("read runtime-config/redis.toml");
    let config = shipped.replace("redis://127.0.0.1:6379", &redis.url);
    assert_ne!(
        config, shipped,
        "runtime-config/redis.toml names another URL"
    );
    let setup = Setup {
        runtime_config: Some(config),
        ..Setup::default().var("kv_get_many", "single")
    };
    let app = SpinUp::start(&spin, setup).await;
    drain_batch(&app.client(), 100).await;
}
