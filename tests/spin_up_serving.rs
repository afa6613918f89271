//! Serving safely on a real `spin up`: no executor answers an outsider
//! while the worker runs each of them; where executors are public they
//! want the token; a burst of concurrent enqueues starts a few drains, not
//! one per request, and every task completes within 2 s of being due; a
//! `kill -9` of the whole process group mid-batch loses nothing.
//!
//! Skipped (with a note) where Spin is not installed, unless
//! `WQ_REQUIRE_SPIN` is set (see `tests/spin_support`).

mod e2e_support;
mod spin_support;

use e2e_support::{assert_each_once, eventually, numbered, serve_page, unique, PAGE};
use serde_json::{json, Value};
use spin_support::{spin_binary, Setup, SpinUp};
use spin_work_queue::client::HttpWorkQueue;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-token";

/// Every path an outsider might try for an executor.
const EXECUTOR_PATHS: [&str; 8] = [
    "/executors/echo",
    "/executors/echo/x",
    "/executors/fetch",
    "/executors/fetch/x",
    "/echo",
    "/fetch",
    "/",
    "/executors",
];

/// Enqueue one task and wait until it is finished.
async fn finished(q: &HttpWorkQueue, node: &str, input: Value) -> TaskStatus {
    let pipeline = unique("serving");
    let id = q
        .enqueue_batch(vec![NewTask::new(&pipeline, node, input)])
        .await
        .expect("enqueue")[0]
        .id
        .clone();
    eventually(
        &format!("the {node} task"),
        Duration::from_secs(60),
        || async {
            match q.status(&id).await.ok().flatten()? {
                s @ (TaskStatus::Completed { .. } | TaskStatus::DeadLetter { .. }) => Some(s),
                _ => None,
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_executor_answers_an_outsider_and_the_worker_runs_each() {
    let Some(spin) = spin_binary() else { return };
    let port = serve_page();
    let setup = Setup::default()
        .var("api_token", TOKEN)
        .var("fetch_private_hosts", "allow")
        .edit(
            r#"allowed_outbound_hosts = ["https://*:443", "http://*:80"]"#,
            format!(r#"allowed_outbound_hosts = ["http://127.0.0.1:{port}"]"#),
        );
    let app = SpinUp::start(&spin, setup).await;
    let http = reqwest::Client::new();
    for token in [None, Some(TOKEN)] {
        for path in EXECUTOR_PATHS {
            let mut req = http
                .post(format!("{}{path}", app.url))
                .header("content-type", "application/json")
                .body(
                    json!({"url": format!("http://127.0.0.1:{port}/"), "sleep_ms": 1}).to_string(),
                );
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let status = req.send().await.expect("request").status().as_u16();
            assert!(
                !(200..300).contains(&status),
                "{path} answered {status} (token: {token:?})"
            );
        }
    }
    let q = app.client_with(Some(TOKEN));
    assert_eq!(
        finished(&q, "echo", json!({"hello": "private"})).await,
        TaskStatus::Completed {
            output: json!({"hello": "private"})
        },
        "{}",
        app.log()
    );
    let fetched = finished(
        &q,
        "fetch",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    )
    .await;
    assert_eq!(
        fetched,
        TaskStatus::Completed {
            output: json!({
                "status": 200,
                "content_type": "text/html; charset=utf-8",
                "bytes": PAGE.len(),
                "title": "Local & page",
            })
        },
        "{}",
        app.log()
    );
}

/// Served on a public route and reached by self request (as where the
/// platform has no service chaining), an executor wants the token; the
/// worker sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_executor_route_requires_the_token_the_worker_sends() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default()
        .var("api_token", TOKEN)
        .var("executors", r#"{"echo": "/executors/echo"}"#)
        .edit(
            "route = { private = true }\ncomponent = \"echo\"",
            "route = \"/executors/echo\"\ncomponent = \"echo\"",
        );
    let app = SpinUp::start(&spin, setup).await;
    let http = reqwest::Client::new();
    let call = |token: Option<&'static str>| {
        let mut req = http
            .post(format!("{}/executors/echo", app.url))
            .header("content-type", "application/json")
            .body("{\"a\":1}");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(call(None).await.expect("call").status().as_u16(), 401);
    assert_eq!(
        call(Some("guess")).await.expect("call").status().as_u16(),
        401
    );
    assert_eq!(
        call(Some(TOKEN)).await.expect("call").status().as_u16(),
        200
    );
    let q = app.client_with(Some(TOKEN));
    assert_eq!(
        finished(&q, "echo", json!({"via": "self request"})).await,
        TaskStatus::Completed {
            output: json!({"via": "self request"})
        },
        "{}",
        app.log()
    );
}

/// Drains the worker ran so far (it logs one line per drain).
fn drains_logged(app: &SpinUp) -> usize {
    app.component_stdout("worker")
        .lines()
        .filter(|l| l.starts_with("spin-work-queue: drain "))
        .count()
}

/// 60 concurrent single-task enqueues, then one more task: a few drains
/// run them all, each within 2 s of being enqueued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_starts_a_few_drains_and_every_task_completes_within_two_seconds() {
    let Some(spin) = spin_binary() else { return };
    let app = SpinUp::start(&spin, Setup::default()).await;
    let q = app.client();
    let pipeline = unique("burst");
    let started = Instant::now();
    let q = std::sync::Arc::new(q);
    let sends = numbered(&pipeline, 60).into_iter().map(|task| {
        let q = q.clone();
        tokio::spawn(async move { q.enqueue_batch(vec![task]).await.expect("enqueue") })
    });
    for send in sends.collect::<Vec<_>>() {
        send.await.expect("enqueue task");
    }
    let results = eventually("the burst", Duration::from_secs(30), || async {
        let r = q.collect_results(&pipeline).await.ok()?;
        (r.len() >= 60).then_some(r)
    })
    .await;
    let burst = started.elapsed();
    assert_each_once("the burst", &results, 60);
    assert!(burst < Duration::from_secs(2), "the burst took {burst:?}");

    let lone = unique("lone");
    let started = Instant::now();
    q.enqueue_batch(vec![NewTask::new(&lone, "echo", json!({"n": 0}))])
        .await
        .expect("enqueue");
    eventually("the lone task", Duration::from_secs(30), || async {
        (!q.collect_results(&lone).await.ok()?.is_empty()).then_some(())
    })
    .await;
    let lone_took = started.elapsed();
    assert!(
        lone_took < Duration::from_secs(2),
        "the lone task took {lone_took:?}"
    );
    let drains = drains_logged(&app);
    assert!(
        (1..=20).contains(&drains),
        "{drains} drains for 61 tasks:\n{}",
        app.component_stdout("worker")
    );
    let stats = q.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.in_progress), (0, 0), "{stats:?}");
}

/// `kill -9` of `spin up` and its trigger mid-batch; once restarted on the
/// same store (and its maintenance run), every task completes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_process_group_mid_batch_loses_nothing() {
    let Some(spin) = spin_binary() else { return };
    let setup = Setup::default().var("grace_ms", "2000");
    let mut app = SpinUp::start(&spin, setup).await;
    let q = app.client();
    let pipeline = unique("kill9");
    let tasks: Vec<NewTask> = numbered(&pipeline, 300)
        .into_iter()
        .map(|mut t| {
            t.input["sleep_ms"] = json!(10);
            t
        })
        .collect();
    for chunk in tasks.chunks(100) {
        q.enqueue_batch(chunk.to_vec()).await.expect("enqueue");
    }
    eventually("some progress", Duration::from_secs(30), || async {
        let done = q.collect_results(&pipeline).await.ok()?.len();
        (done > 0).then_some(())
    })
    .await;
    let before = q.collect_results(&pipeline).await.expect("results").len();
    assert!(before < 300, "the batch finished before the kill");
    app.restart().await;
    let q = app.client();
    let results = eventually(
        "every task after the restart",
        Duration::from_secs(120),
        || async {
            q.rescue().await.ok();
            let r = q.collect_results(&pipeline).await.ok()?;
            (r.len() >= 300).then_some(r)
        },
    )
    .await;
    assert_each_once("the batch across the kill", &results, 300);
    let stats = q.stats().await.expect("stats");
    assert_eq!(
        (stats.pending, stats.in_progress, stats.dead_letter),
        (0, 0, 0),
        "{stats:?}"
    );
}
