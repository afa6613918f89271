//! End to end: the built `.wasm` components served from `spin.toml` by
//! `wq-test-host` (Spin's key-value semantics on SQLite), driven
//! over HTTP — or, with `WQ_BASE_URL=http://127.0.0.1:3000`, a running
//! `spin up` (tests that need the test host's clock or settings then say
//! `SKIPPED`).

mod conformance;
mod e2e_support;

use conformance::{Fixture, SUITE_START_MS};
use e2e_support::{assert_each_once, eventually, external, unique, App, Options};
use serde_json::{json, Value};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{
    DequeueRequest, LeasedQueue, NewTask, QueueError, TaskStatus, WorkQueuePort,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// The conformance suite through `HttpWorkQueue`, against a fresh app per
/// test whose wall clock is frozen and moved by the test.
struct HttpFixture {
    app: App,
    queue: HttpWorkQueue,
    skip: Option<String>,
}

impl HttpFixture {
    async fn start() -> Self {
        if let Some(url) = external() {
            let app = App::external(url);
            return HttpFixture {
                queue: app.client(),
                app,
                skip: Some("the conformance suite needs the test host's frozen clock".into()),
            };
        }
        let app = App::start(Options {
            frozen_at: Some(SUITE_START_MS),
            ..suite_options()
        })
        .await;
        HttpFixture {
            queue: app.client(),
            app,
            skip: None,
        }
    }
}

/// The app settings matching `conformance::suite_config()`, without push
/// dispatch (the suite plays the worker).
fn suite_options() -> Options {
    Options::default()
        .var("worker_url", "")
        .var("maintenance_period_ms", "1")
        .var("retry_base_ms", "1000")
        .var("retry_max_ms", "60000")
        .var("retry_jitter", "0")
}

impl Fixture for HttpFixture {
    type Queue = HttpWorkQueue;
    fn queue(&self) -> &HttpWorkQueue {
        &self.queue
    }
    fn advance(&self, ms: u64) {
        self.app.advance(ms);
    }
    fn skip(&self) -> Option<String> {
        self.skip.clone()
    }
}

mod http_conformance {
    use super::*;
    conformance_suite!(HttpFixture::start().await);
}

mod http_pipelines {
    use super::*;
    pipeline_suite!(HttpFixture::start().await);
}

/// The app with its defaults (push dispatch to the worker, the `echo`
/// executor), or the external server.
async fn default_app(options: Options) -> App {
    match external() {
        Some(url) => App::external(url),
        None => App::start(options).await,
    }
}

fn echo_task(pipeline: &str, input: Value) -> NewTask {
    NewTask::new(pipeline, "echo", input)
}

/// Wait for `id` to finish, only reading: nobody calls
/// `POST /v1/maintenance/rescue` — the drain that failed a task waits for
/// its retry.
async fn terminal_status(q: &HttpWorkQueue, id: &str, limit: Duration) -> TaskStatus {
    eventually(&format!("task {id} to finish"), limit, || async {
        q.status(id)
            .await
            .ok()
            .flatten()
            .filter(TaskStatus::is_terminal)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueued_task_is_pushed_to_the_worker_and_its_result_is_readable() {
    let app = default_app(Options::default()).await;
    let q = app.client();
    let pipeline = unique("push");
    let input = json!({ "hello": "world", "n": 1 });
    let id = q
        .enqueue_batch(vec![echo_task(&pipeline, input.clone())])
        .await
        .unwrap()[0]
        .id
        .clone();
    // No dequeue from here: the queue pushes a drain, the worker calls the
    // echo executor and acks.
    let status = eventually(
        "the pushed drain to complete the task",
        Duration::from_secs(60),
        || async {
            q.status(&id)
                .await
                .ok()
                .flatten()
                .filter(TaskStatus::is_terminal)
        },
    )
    .await;
    assert_eq!(
        status,
        TaskStatus::Completed {
            output: input.clone()
        }
    );
    assert_eq!(
        q.collect_results(&pipeline).await.unwrap(),
        vec![("echo".to_string(), input)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_failures_are_retried_then_dead_lettered() {
    let app = default_app(
        Options::default()
            .var("retry_base_ms", "20")
            .var("retry_max_ms", "100")
            .var("maintenance_period_ms", "10"),
    )
    .await;
    let q = app.client();
    let pipeline = unique("retry");
    let tasks = vec![
        NewTask {
            max_attempts: Some(3),
            ..echo_task(&pipeline, json!({ "fail_times": 2 }))
        },
        NewTask {
            max_attempts: Some(3),
            ..echo_task(&pipeline, json!({ "fail_times": 5 }))
        },
        NewTask {
            max_attempts: Some(3),
            ..echo_task(&pipeline, json!({ "fail_times": 1, "fail_status": 404 }))
        },
    ];
    let ids: Vec<String> = q
        .enqueue_batch(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    // Generous: on a shared server other tests may keep the queue busy.
    let limit = Duration::from_secs(300);

    // 500, 500, then 2xx on the third attempt.
    let recovered = terminal_status(&q, &ids[0], limit).await;
    assert_eq!(
        recovered,
        TaskStatus::Completed {
            output: json!({ "fail_times": 2 })
        }
    );
    assert_eq!(q.task(&ids[0]).await.unwrap().unwrap().task.attempt, 2);

    // 500 on every attempt: dead-lettered after max_attempts.
    assert!(matches!(
        terminal_status(&q, &ids[1], limit).await,
        TaskStatus::DeadLetter { .. }
    ));
    assert_eq!(q.task(&ids[1]).await.unwrap().unwrap().task.attempt, 2);

    // A 4xx is not retried.
    assert!(matches!(
        terminal_status(&q, &ids[2], limit).await,
        TaskStatus::DeadLetter { .. }
    ));
    assert_eq!(q.task(&ids[2]).await.unwrap().unwrap().task.attempt, 0);

    let dead: BTreeSet<String> = q
        .dead_letters(100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.task.id)
        .collect();
    assert!(dead.contains(&ids[1]) && dead.contains(&ids[2]) && !dead.contains(&ids[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_rescued_and_the_stale_ack_refused() {
    if external().is_some() {
        eprintln!("SKIPPED: needs the test host's frozen clock");
        return;
    }
    let app = App::start(Options {
        frozen_at: Some(SUITE_START_MS),
        ..suite_options()
    })
    .await;
    let q = app.client();
    let id = q
        .enqueue_batch(vec![NewTask::new("lease", "n", json!(1))])
        .await
        .unwrap()[0]
        .id
        .clone();
    let first = q
        .dequeue(&DequeueRequest {
            worker_id: "slow".into(),
            max: 1,
            lease_ms: Some(1_000),
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.lease.expires_at, SUITE_START_MS + 1_000);
    app.advance(1_000 + conformance::rescue_after_ms());
    let report = q.rescue().await.unwrap();
    assert_eq!(report.rescued, 1, "{report:?}");
    let second = q
        .dequeue(&DequeueRequest::new("fast", 1))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (second.task.id.as_str(), second.task.attempt),
        (id.as_str(), 1)
    );
    assert!(matches!(
        q.ack(&id, &first.lease.id, json!("late")).await,
        Err(QueueError::LeaseLost { .. })
    ));
    assert_eq!(
        q.ack(&id, &second.lease.id, json!("on time"))
            .await
            .unwrap(),
        TaskStatus::Completed {
            output: json!("on time")
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_clients_of_500_tasks_lose_and_duplicate_nothing() {
    const CLIENTS: usize = 16;
    const TASKS: usize = 500;
    let app = default_app(Options::default()).await;
    let run = unique("load");
    let mut producers = Vec::new();
    for c in 0..CLIENTS {
        let q = app.client();
        let pipeline = format!("{run}-{c}");
        producers.push(tokio::spawn(async move {
            for chunk in 0..TASKS / 50 {
                let batch = (chunk * 50..chunk * 50 + 50)
                    .map(|n| echo_task(&pipeline, json!({ "client": c, "n": n })))
                    .collect();
                let out = q.enqueue_batch(batch).await.expect("enqueue");
                assert!(out.iter().all(|e| !e.duplicate));
            }
            pipeline
        }));
    }
    let mut pipelines = Vec::new();
    for p in producers {
        pipelines.push(p.await.unwrap());
    }
    let q = app.client();
    for (c, pipeline) in pipelines.iter().enumerate() {
        let results = eventually(
            &format!("client {c}'s {TASKS} results"),
            Duration::from_secs(600),
            || async {
                q.rescue().await.ok();
                let r = q.collect_results(pipeline).await.ok()?;
                (r.len() >= TASKS).then_some(r)
            },
        )
        .await;
        assert_each_once(&format!("client {c}"), &results, TASKS);
        assert!(results.iter().all(|(_, out)| out["client"] == json!(c)));
    }
    if external().is_none() {
        let stats = q.stats().await.unwrap();
        assert_eq!(stats.completed, (CLIENTS * TASKS) as u64, "{stats:?}");
        assert_eq!(
            (stats.pending, stats.failed, stats.dead_letter),
            (0, 0, 0),
            "{stats:?}"
        );
    }
}

/// Status and error code of a raw request.
async fn call(req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

fn assert_error(got: &(u16, Value, reqwest::header::HeaderMap), status: u16, code: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{:?}", got.1);
    assert!(got.1["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_as_the_contract_says() {
    let app = default_app(Options::default().var("max_body_bytes", "4096")).await;
    let http = app.http();
    let url = |p: &str| format!("{}{p}", app.url);
    let auth = |r: reqwest::RequestBuilder| match &app.token {
        Some(t) => r.bearer_auth(t),
        None => r,
    };
    let json_post = |p: &str, body: &str| {
        auth(http.post(url(p)))
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    assert_error(&call(json_post("/v1/tasks", "{")).await, 400, "bad_request");
    assert_error(
        &call(json_post("/v1/dequeue", r#"{"worker_id": 5}"#)).await,
        400,
        "bad_request",
    );
    let text = auth(http.post(url("/v1/tasks")))
        .header("content-type", "text/plain")
        .body("hi");
    assert_error(&call(text).await, 415, "unsupported_media_type");
    assert_error(
        &call(json_post("/v1/tasks", r#"{"pipeline_id": "p"}"#)).await,
        422,
        "invalid_task",
    );
    assert_error(
        &call(json_post("/v1/tasks", r#"{"tasks": []}"#)).await,
        422,
        "invalid_batch",
    );
    assert_error(
        &call(json_post("/v1/tasks/nope/ack", r#"{"lease_id": "x"}"#)).await,
        404,
        "not_found",
    );
    assert_error(
        &call(auth(http.get(url("/v1/nope")))).await,
        404,
        "not_found",
    );
    let delete = call(auth(http.delete(url("/v1/stats")))).await;
    assert_error(&delete, 405, "method_not_allowed");
    assert!(delete.2.get("allow").is_some());
    let limit: usize = if external().is_some() {
        1_048_576
    } else {
        4096
    };
    let big = format!(
        r#"{{"pipeline_id":"p","node_name":"n","input":"{}"}}"#,
        "x".repeat(limit)
    );
    assert_error(
        &call(json_post("/v1/tasks", &big)).await,
        413,
        "payload_too_large",
    );
    // Nothing above was enqueued.
    if external().is_none() {
        assert_eq!(app.client().stats().await.unwrap().pending, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_configured_token_every_call_is_401() {
    if external().is_some() {
        eprintln!("SKIPPED: needs a test host started with a token");
        return;
    }
    let app = App::start(Options::default().var("api_token", "s3cret")).await;
    let http = app.http();
    let url = |p: &str| format!("{}{p}", app.url);
    let missing = call(http.get(url("/v1/stats"))).await;
    assert_error(&missing, 401, "unauthorized");
    assert!(missing.2.get("www-authenticate").is_some());
    assert_error(
        &call(http.get(url("/v1/stats")).bearer_auth("wrong")).await,
        401,
        "unauthorized",
    );
    assert_error(
        &call(http.post(url("/worker/drain")).json(&json!({}))).await,
        401,
        "unauthorized",
    );
    assert_eq!(
        call(http.get(url("/v1/stats")).bearer_auth("s3cret"))
            .await
            .0,
        200
    );
    assert_eq!(call(http.get(url("/healthz"))).await.0, 200);
    let anonymous = HttpWorkQueue::new(&app.url).unwrap();
    assert!(anonymous.stats().await.is_err());
    assert!(app.client().stats().await.is_ok());
}

/// Two bursts of 60 concurrent single-task enqueues, then one lone task:
/// every task is completed by the drains the enqueues push, with nothing
/// else calling the API (the checks only read). The queue used to stall
/// after the first burst: concurrent drains ran the ring's head past its
/// tail, and every later task waited for maintenance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_concurrent_enqueues_leave_nothing_pending() {
    let app = default_app(Options::default()).await;
    let q = std::sync::Arc::new(app.client());
    let pipeline = unique("burst");
    let mut ids = Vec::new();
    for (round, size) in [(0, 60), (1, 60), (2, 1)] {
        let started = std::time::Instant::now();
        let sends: Vec<_> = (0..size)
            .map(|i| {
                let q = q.clone();
                let task = echo_task(&pipeline, json!({ "round": round, "i": i }));
                tokio::spawn(async move { q.enqueue_batch(vec![task]).await })
            })
            .collect();
        for s in sends {
            ids.push(s.await.unwrap().unwrap().remove(0).id);
        }
        let expected = ids.len();
        eventually(
            &format!("round {round}: all {expected} tasks completed"),
            Duration::from_secs(20),
            || async {
                let results = q.collect_results(&pipeline).await.ok()?;
                (results.len() == expected).then_some(())
            },
        )
        .await;
        eprintln!(
            "round {round}: {size} tasks completed in {:?}",
            started.elapsed()
        );
    }
    for id in &ids {
        assert!(matches!(
            q.status(id).await.unwrap(),
            Some(TaskStatus::Completed { .. })
        ));
    }
}
