//! The bundled executors are not public: nothing outside the app gets a
//! 2xx from them, while the worker still runs each of them; and where
//! they are served on a public route (platforms without service
//! chaining), they require the app's token, which the worker sends.

mod e2e_support;

use e2e_support::{eventually, external, App, Options};
use serde_json::json;
use spin_work_queue::{LeasedQueue, NewTask, TaskStatus, WorkQueuePort};
use std::time::Duration;

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

async fn app(options: Options) -> App {
    match external() {
        Some(url) => App::external(url),
        None => App::start(options).await,
    }
}

/// POST `body` to every executor path, with `token` when given; the
/// statuses.
async fn try_every_path(app: &App, token: Option<&str>) -> Vec<(String, u16)> {
    let http = app.http();
    let mut out = Vec::new();
    for path in EXECUTOR_PATHS {
        let mut req = http
            .post(format!("{}{path}", app.url))
            .header("content-type", "application/json")
            .body(json!({"url": "http://example.com/", "sleep_ms": 1}).to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.expect("request").status().as_u16();
        out.push((path.to_string(), status));
    }
    out
}

async fn finished(app: &App, node: &str, input: serde_json::Value) -> TaskStatus {
    let q = app.client();
    let pipeline = format!("exec-{}", ulid::Ulid::generate());
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
async fn no_executor_answers_an_outsider_and_the_worker_runs_them_all() {
    let app = app(Options::default()).await;
    let token = app.token.clone();
    for attempt in [None, token.as_deref()] {
        for (path, status) in try_every_path(&app, attempt).await {
            assert!(!(200..300).contains(&status), "{path} answered {status}");
        }
    }
    assert_eq!(
        finished(&app, "echo", json!({"hello": "private"})).await,
        TaskStatus::Completed {
            output: json!({"hello": "private"})
        }
    );
    // The fetch executor runs too: it refuses a private address itself
    // (403, dead letter), which only it can answer.
    let refused = finished(&app, "fetch", json!({"url": "http://127.0.0.1/"})).await;
    let TaskStatus::DeadLetter { error } = refused else {
        panic!("expected a dead letter, got {refused:?}");
    };
    assert!(error.contains("host_not_allowed"), "{error}");
}

/// Without service chaining the executors are served on public routes and
/// reached by self requests: then they want the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_executor_routes_require_the_token_the_worker_sends() {
    if external().is_some() {
        eprintln!("SKIPPED: needs its own manifest");
        return;
    }
    let app = App::start(
        Options::default()
            .edit(
                "route = { private = true }\ncomponent = \"echo\"",
                "route = \"/executors/echo\"\ncomponent = \"echo\"",
            )
            .var("executors", r#"{"echo": "/executors/echo"}"#)
            .var("api_token", "s3cret"),
    )
    .await;
    let http = app.http();
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
        call(Some("s3cret")).await.expect("call").status().as_u16(),
        200
    );
    assert_eq!(
        finished(&app, "echo", json!({"via": "self request"})).await,
        TaskStatus::Completed {
            output: json!({"via": "self request"})
        }
    );
}
