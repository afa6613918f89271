//! End to end under the hosted platforms' profiles: the hosted builds
//! served from `deploy/<platform>/spin.toml` by `wq-test-host --platform
//! …`, which links only the key-value interfaces the platform offers and
//! enforces its key cap, key and value sizes, handler time and outbound
//! budget. The conformance suite over HTTP runs under each profile; then
//! retries and dead letters through the in-process executors with no
//! outbound request, and the default build refused where `atomics` is
//! missing.

mod conformance;
mod e2e_support;

use conformance::{Fixture, SUITE_START_MS};
use e2e_support::{eventually, manifest_in, unique, App, Options};
use serde_json::json;
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus};
use std::time::Duration;

const TOKEN: &str = "hosted-e2e";

fn options(platform: &'static str) -> Options {
    Options {
        platform: Some(platform),
        ..Options::default()
    }
    .var("api_token", TOKEN)
}

/// The conformance suite's settings, without dispatch (the suite plays
/// the worker).
fn suite_options(platform: &'static str) -> Options {
    Options {
        frozen_at: Some(SUITE_START_MS),
        ..options(platform)
    }
    .var("worker_url", "")
    // The host does not emulate replication: no lag to wait for.
    .var("replication_lag_ms", "0")
    .var("maintenance_period_ms", "1")
    .var("retry_base_ms", "1000")
    .var("retry_max_ms", "60000")
    .var("retry_jitter", "0")
}

struct HostedHttp {
    app: App,
    queue: HttpWorkQueue,
}

impl HostedHttp {
    async fn start(platform: &'static str) -> Self {
        let app = App::start(suite_options(platform)).await;
        HostedHttp {
            queue: app.client(),
            app,
        }
    }
}

impl Fixture for HostedHttp {
    type Queue = HttpWorkQueue;
    fn queue(&self) -> &HttpWorkQueue {
        &self.queue
    }
    fn advance(&self, ms: u64) {
        self.app.advance(ms);
    }
}

mod fermyon_cloud {
    use super::*;
    conformance_suite!(HostedHttp::start("fermyon-cloud").await);
}

mod akamai_functions {
    use super::*;
    conformance_suite!(HostedHttp::start("akamai-functions").await);
}

async fn finished(q: &HttpWorkQueue, id: &str) -> TaskStatus {
    eventually(&format!("task {id}"), Duration::from_secs(60), || async {
        match q.task(id).await.ok().flatten()?.status {
            s @ (TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }) => Some(s),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_dead_letters_run_in_process_with_no_outbound_request() {
    for platform in ["fermyon-cloud", "akamai-functions"] {
        let app = App::start(options(platform).var("retry_base_ms", "100")).await;
        let q = app.client();
        let pipeline = unique("hosted");
        let tasks = vec![
            NewTask::new(&pipeline, "echo", json!({"ok": 1})),
            // Fails once (retryable), then answers.
            NewTask::new(&pipeline, "echo", json!({"fail_times": 1})),
            // Fails for good: a dead letter.
            NewTask::new(
                &pipeline,
                "echo",
                json!({"fail_times": 9, "fail_status": 400}),
            ),
        ];
        let ids: Vec<String> = q
            .enqueue_batch(tasks)
            .await
            .expect("enqueue")
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert!(matches!(
            finished(&q, &ids[0]).await,
            TaskStatus::Completed { .. }
        ));
        assert!(matches!(
            finished(&q, &ids[2]).await,
            TaskStatus::DeadLetter { .. }
        ));
        // The retry is due after the first drain ended: a rescue call (a
        // scheduler's) drains it.
        let retried = eventually("the retried task", Duration::from_secs(60), || async {
            let _ = q.rescue().await;
            match q.task(&ids[1]).await.ok().flatten()?.status {
                s @ TaskStatus::Completed { .. } => Some(s),
                _ => None,
            }
        })
        .await;
        assert!(matches!(retried, TaskStatus::Completed { .. }));
        assert_eq!(
            app.outbound_requests(),
            0,
            "{platform}: the bundled executors run in process"
        );
    }
}

#[tokio::test]
async fn the_default_build_is_refused_where_atomics_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = wq_test_host::HostConfig::new(manifest_in(dir.path()));
    config.platform = wq_test_host::platform::Platform::FermyonCloud;
    config.kv_sqlite = Some(dir.path().join("kv.db"));
    let refused = wq_test_host::serve(config).await.err().expect("refused");
    let why = refused.to_string();
    assert!(
        why.contains("does not offer") && why.contains("atomics"),
        "unexpected refusal: {why}"
    );
}

/// Two hosts sharing one store under the Akamai profile, each seeing the
/// other's writes 500 ms late (`--replication-lag-ms`), the app told to
/// allow for 1 s: a write on one is not read on the other at once, and
/// tasks enqueued on both, drained by both, all complete, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_seeing_each_other_late_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("shared.db");
    let mut hosts = Vec::new();
    for _ in 0..2 {
        let opts = options("akamai-functions").var("replication_lag_ms", "1000");
        hosts.push(App::start_shared(opts, &db, 500).await);
    }
    let (a, b) = (hosts[0].client(), hosts[1].client());
    let pipeline = unique("replicas");
    let first = a
        .enqueue_batch(vec![NewTask {
            delay_ms: 3_600_000,
            ..NewTask::new(&pipeline, "echo", json!({"late": true}))
        }])
        .await
        .expect("enqueue on a")[0]
        .id
        .clone();
    assert!(
        b.task(&first).await.expect("status on b").is_none(),
        "b saw a's write at once"
    );
    eventually("a's write on b", Duration::from_secs(10), || async {
        b.task(&first).await.ok().flatten().map(|_| ())
    })
    .await;

    let mut sends = Vec::new();
    for n in 0..30u32 {
        let q = if n % 2 == 0 {
            hosts[0].client()
        } else {
            hosts[1].client()
        };
        let pipeline = pipeline.clone();
        sends.push(tokio::spawn(async move {
            let t = NewTask::new(&pipeline, "echo", json!({ "n": n }));
            q.enqueue_batch(vec![t]).await.expect("enqueue")
        }));
    }
    for s in sends {
        s.await.expect("enqueue task");
    }
    let results = eventually(
        "30 tasks on two replicas",
        Duration::from_secs(120),
        || async {
            let _ = a.rescue().await;
            let _ = b.rescue().await;
            let got = a.results(&pipeline).await.ok()?;
            (got.len() >= 30).then_some(got)
        },
    )
    .await;
    e2e_support::assert_each_once("replicated tasks", &results, 30);
}
