//! The HTTP layer of the API: routing (404, 405), bearer auth (401), body
//! limit (413), content type (415), `HEAD`, store failures (500), push
//! dispatch hints, and `openapi.yaml` matching the router.

mod api_support;

use api_support::{assert_error, setup, setup_with, task, DownQueue, LEASE_MS};
use serde_json::json;
use spin_work_queue::api::{self, ApiConfig};
use spin_work_queue::http::Request;

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    for fx in setup() {
        for path in ["/v1/nope", "/v2/tasks", "/", "/v1/tasks/a/b/c"] {
            let (status, out) = fx.get(path).await;
            assert_error(status, &out, 404, "not_found");
        }
        let resp = fx.call(Request::new("GET", "/v1/dequeue")).await;
        assert_error(resp.status, &resp.json_body(), 405, "method_not_allowed");
        assert_eq!(resp.header("allow"), Some("POST"));
        let resp = fx.call(Request::new("DELETE", "/v1/tasks/t1")).await;
        assert_eq!((resp.status, resp.header("allow")), (405, Some("GET")));
    }
}

#[tokio::test]
async fn a_configured_token_is_required_on_v1_only() {
    for fx in setup_with(ApiConfig {
        api_token: Some("s3cret".into()),
        ..ApiConfig::default()
    }) {
        let resp = fx.call(Request::new("GET", "/v1/stats")).await;
        assert_error(resp.status, &resp.json_body(), 401, "unauthorized");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
        let wrong = Request::new("GET", "/v1/stats").with_header("authorization", "Bearer guess");
        assert_eq!(fx.call(wrong).await.status, 401);
        let unknown = Request::new("GET", "/v1/secret-route");
        assert_eq!(
            fx.call(unknown).await.status,
            401,
            "routes are not revealed"
        );
        let right = Request::new("GET", "/v1/stats").with_header("Authorization", "Bearer s3cret");
        assert_eq!(fx.call(right).await.status, 200);
        assert_eq!(fx.get("/healthz").await.0, 200);
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    for fx in setup_with(ApiConfig {
        max_body_bytes: 1024,
        ..ApiConfig::default()
    }) {
        let big = json!({"pipeline_id": "p", "node_name": "a", "input": "x".repeat(2000)});
        let (status, out) = fx.post("/v1/tasks", big).await;
        assert_error(status, &out, 413, "payload_too_large");
        let declared =
            Request::json("POST", "/v1/tasks", &task("a")).with_header("content-length", "4096");
        let resp = fx.call(declared).await;
        assert_eq!(resp.status, 413);
    }
}

#[tokio::test]
async fn a_non_json_body_is_415() {
    for fx in setup() {
        let req = Request::new("POST", "/v1/tasks")
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(b"pipeline_id=p".to_vec());
        let resp = fx.call(req).await;
        assert_error(
            resp.status,
            &resp.json_body(),
            415,
            "unsupported_media_type",
        );
        let charset = Request::new("POST", "/v1/tasks")
            .with_header("content-type", "application/json; charset=utf-8")
            .with_body(task("a").to_string().into_bytes());
        assert_eq!(fx.call(charset).await.status, 201);
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    for fx in setup() {
        let resp = fx.call(Request::new("HEAD", "/v1/stats")).await;
        assert_eq!(resp.status, 200);
        assert!(resp.body.is_empty());
    }
}

#[tokio::test]
async fn store_failures_are_500_store_unavailable() {
    let config = ApiConfig::default();
    for req in [
        Request::json("POST", "/v1/tasks", &task("a")),
        Request::json("POST", "/v1/dequeue", &json!({"worker_id": "w"})),
        Request::new("GET", "/v1/stats"),
        Request::new("GET", "/v1/tasks/t1"),
    ] {
        let resp = api::handle(&DownQueue::default(), &config, &req)
            .await
            .response;
        assert_error(resp.status, &resp.json_body(), 500, "store_unavailable");
    }
    let health = api::handle(
        &DownQueue::default(),
        &config,
        &Request::new("GET", "/healthz"),
    )
    .await
    .response;
    assert_eq!(health.status, 200, "health does not touch the store");
}

#[tokio::test]
async fn work_due_now_is_reported_and_nothing_else() {
    for fx in setup() {
        let body = json!({"id": "t1", "pipeline_id": "p", "node_name": "a"});
        let req = Request::json("POST", "/v1/tasks", &body);
        assert!(fx.handle(req.clone()).await.work_due, "a new task");
        let again = fx.handle(req.clone()).await;
        assert_eq!(again.response.status, 200);
        assert!(!again.work_due, "a duplicate adds no work");
        let later = json!({"id": "t2", "pipeline_id": "p", "node_name": "a", "delay_ms": 60_000});
        let delayed = fx.handle(Request::json("POST", "/v1/tasks", &later)).await;
        assert_eq!(delayed.response.status, 201);
        assert!(!delayed.work_due, "a delayed task is not due yet");
        assert!(!fx.handle(Request::new("GET", "/v1/stats")).await.work_due);
        let rescue = Request::new("POST", "/v1/maintenance/rescue");
        let waiting = fx.handle(rescue.clone()).await;
        assert!(waiting.work_due, "a due task wants a drain");
        assert_eq!(waiting.response.json_body()["due"], 1);
        fx.dequeue(1).await;
        let idle = fx.handle(rescue.clone()).await;
        let report = idle.response.json_body();
        assert!(!idle.work_due, "only a delayed task waits: {report}");
        assert_eq!(
            (report["pending"].as_u64(), report["due"].as_u64()),
            (Some(1), Some(0))
        );
        let rescue_after = spin_work_queue::QueueConfig::default()
            .timing()
            .rescue_after_ms;
        fx.clock.advance(LEASE_MS + rescue_after);
        let busy = fx.handle(rescue.clone()).await;
        assert!(busy.work_due, "{:?}", busy.response.json_body());
    }
}

/// `(method, path)` of every operation in `openapi.yaml` (a line-based
/// read: paths are indented two spaces, methods four).
fn openapi_operations() -> Vec<(String, String)> {
    let spec = include_str!("../openapi.yaml");
    let mut ops = Vec::new();
    let mut in_paths = false;
    let mut path = String::new();
    for line in spec.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = format!("/{p}");
        } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':')) {
            if ["get", "post", "put", "delete", "patch"].contains(&m) {
                ops.push((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn openapi_describes_exactly_the_routes_of_the_api() {
    let ops = openapi_operations();
    let api_ops: Vec<_> = ops
        .iter()
        .filter(|(_, p)| !p.starts_with("/worker/"))
        .collect();
    assert_eq!(api_ops.len(), 17, "{ops:?}");
    for (method, path) in api_ops {
        let concrete = path.replace("{id}", "t1").replace("{pipeline_id}", "p1");
        assert!(
            api::route(method, &concrete).is_ok(),
            "openapi.yaml has {method} {path}, the router does not"
        );
    }
    assert!(ops.contains(&("POST".into(), "/worker/drain".into())));
}

/// A record the queue cannot decode is set aside when a dequeue meets it:
/// the dequeue delivers the rest, the value is listed with its key, and
/// the stats count it.
#[tokio::test]
async fn an_undecodable_record_is_set_aside_and_the_rest_delivered() {
    use spin_work_queue::kv::{KeyValue, MemoryKv};
    use spin_work_queue::{KvWorkQueue, ManualClock};
    use std::sync::Arc;
    let store = Arc::new(MemoryKv::new());
    let queue = KvWorkQueue::with_config(
        store.clone(),
        spin_work_queue::QueueConfig::default(),
        Arc::new(ManualClock::new(api_support::START_MS)),
    )
    .unwrap()
    .with_observer(Arc::new(Quiet));
    let config = ApiConfig::default();
    let call = |req: Request| {
        let q = &queue;
        let c = &config;
        async move { api::handle(q, c, &req).await.response }
    };
    let body = json!({"tasks": [
        {"id": "bad", "pipeline_id": "p", "node_name": "a"},
        {"id": "good", "pipeline_id": "p", "node_name": "b"},
    ]});
    assert_eq!(
        call(Request::json("POST", "/v1/tasks", &body)).await.status,
        201
    );
    store.set("wq/t/bad", b"\xffnot json").unwrap();
    let resp = call(Request::json(
        "POST",
        "/v1/dequeue",
        &json!({"worker_id": "w", "max": 10}),
    ))
    .await;
    assert_eq!(resp.status, 200);
    let ids: Vec<_> = resp.json_body()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["good"]);
    let listed = call(Request::new("GET", "/v1/set-aside")).await.json_body();
    assert_eq!(listed["entries"][0]["key"], "wq/t/bad", "{listed}");
    let stats = call(Request::new("GET", "/v1/stats")).await.json_body();
    assert_eq!(stats["set_aside"], 1, "{stats}");
    let status = call(Request::new("GET", "/v1/tasks/bad")).await;
    assert_eq!(status.status, 500);
    assert_eq!(status.json_body()["error"]["code"], "store_corrupt");
}

/// An observer that keeps quiet (the events are expected here).
struct Quiet;

impl spin_work_queue::Observer for Quiet {
    fn event(&self, _: &spin_work_queue::Event) {}
}
