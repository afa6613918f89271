//! Pipelines end to end: the built components served by `wq-test-host`
//! (or a running `spin up` named by `WQ_BASE_URL`). A DAG is submitted in
//! one call and nobody drives it: the queue pushes drains, the worker runs
//! each node on the echo executor and acks, and each ack starts the nodes
//! whose parents all completed.

mod e2e_support;

use e2e_support::{echo_node as echo, external, pipeline_finished, unique, App, Options};
use serde_json::{json, Value};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{NewPipeline, NodeState, PipelineState, WorkQueuePort};
use std::time::{Duration, Instant};

async fn app() -> App {
    match external() {
        Some(url) => App::external(url),
        None => App::start(Options::default()).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_runs_on_the_served_components_with_no_driver() {
    let app = app().await;
    let q = app.client();
    let id = unique("diamond");
    let p = NewPipeline::new(vec![
        echo("a", json!({"seed": 1}), &[]),
        echo("b", json!({"side": "left"}), &["a"]),
        echo("c", json!({"side": "right"}), &["a"]),
        echo("d", Value::Null, &["b", "c"]),
    ])
    .with_id(&id);
    let submitted = q.submit_pipeline(p.clone()).await.unwrap();
    assert!(!submitted.duplicate);
    assert!(q.submit_pipeline(p).await.unwrap().duplicate);
    let v = pipeline_finished(&q, &id, Duration::from_secs(60), false).await;
    assert_eq!(v.state, PipelineState::Completed, "{v:#?}");
    assert_eq!(v.count(NodeState::Completed), 4);
    let results = q.collect_results(&id).await.unwrap();
    let order: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order.first(), Some(&"a"));
    assert_eq!(order.last(), Some(&"d"));
    let d = &results[3].1;
    assert_eq!(d["input"], Value::Null);
    assert_eq!(d["parents"]["b"]["input"], json!({"side": "left"}));
    assert_eq!(d["parents"]["c"]["parents"]["a"], json!({"seed": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_and_fan_in_of_200_nodes_completes_each_node_once() {
    let app = app().await;
    let q = app.client();
    let id = unique("fan");
    let middle: Vec<String> = (0..198).map(|i| format!("m{i}")).collect();
    let deps: Vec<&str> = middle.iter().map(String::as_str).collect();
    let mut nodes = vec![echo("root", json!({"n": 0}), &[])];
    nodes.extend(middle.iter().map(|m| echo(m, Value::Null, &["root"])));
    nodes.push(echo("sink", Value::Null, &deps));
    let started = Instant::now();
    q.submit_pipeline(NewPipeline::new(nodes).with_id(&id))
        .await
        .unwrap();
    let v = pipeline_finished(&q, &id, Duration::from_secs(180), false).await;
    let took = started.elapsed();
    assert_eq!(v.state, PipelineState::Completed, "{:?}", v.counts);
    assert_eq!(v.nodes.len(), 200);
    let results = q.collect_results(&id).await.unwrap();
    assert_eq!(results.len(), 200, "each node completed once");
    let sink = &results.last().unwrap();
    assert_eq!(sink.0, "sink");
    assert_eq!(sink.1["parents"].as_object().unwrap().len(), 198);
    assert_eq!(v.node("sink").unwrap().wave, 2);
    println!("fan-out/fan-in of 200 nodes: {:.2} s", took.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_branch_skips_its_descendants_and_the_rest_completes() {
    let app = app().await;
    let q = app.client();
    let id = unique("failing");
    let mut bad = echo("bad", json!({"fail_times": 100}), &["a"]);
    bad.max_attempts = Some(2);
    let p = NewPipeline::new(vec![
        echo("a", json!(1), &[]),
        bad,
        echo("after-bad", Value::Null, &["bad"]),
        echo("good", Value::Null, &["a"]),
    ])
    .with_id(&id);
    q.submit_pipeline(p).await.unwrap();
    // The retry of `bad` waits for its backoff; maintenance runs in the
    // worker's drain.
    let v = pipeline_finished(&q, &id, Duration::from_secs(120), false).await;
    assert_eq!(v.state, PipelineState::Failed, "{v:#?}");
    assert_eq!(v.node("bad").unwrap().state, NodeState::DeadLetter);
    assert!(v
        .node("bad")
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .contains("fail"));
    assert_eq!(v.node("after-bad").unwrap().state, NodeState::Skipped);
    assert_eq!(v.node("good").unwrap().state, NodeState::Completed);
    assert!(v.finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_requests_are_checked_over_http() {
    let app = app().await;
    let http = app.http();
    let url = |p: &str| format!("{}{p}", app.url);
    let post = |path: &str, body: Value| {
        let mut r = http.post(url(path)).json(&body);
        if let Some(t) = &app.token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let id = unique("http");
    let body = json!({"id": id, "nodes": [
        {"name": "a", "executor": "echo"},
        {"name": "b", "executor": "echo", "depends_on": ["a"]}
    ]});
    let r = post("/v1/pipelines", body.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer, json!({"id": id, "duplicate": false}));
    assert_eq!(post("/v1/pipelines", body).await.unwrap().status(), 200);
    let other = json!({"id": id, "nodes": [{"name": "a"}]});
    let r = post("/v1/pipelines", other).await.unwrap();
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "pipeline_conflict");
    let cycle = json!({"nodes": [
        {"name": "x", "depends_on": ["y"]},
        {"name": "y", "depends_on": ["x"]}
    ]});
    let r = post("/v1/pipelines", cycle).await.unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_pipeline");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("cycle") && m.contains('x') && m.contains('y'),
        "{m}"
    );
    let r = post("/v1/pipelines/nope-nope/cancel", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mut get = http.get(url("/v1/pipelines/nope-nope"));
    if let Some(t) = &app.token {
        get = get.bearer_auth(t);
    }
    assert_eq!(get.send().await.unwrap().status(), 404);
    let q = app.client();
    let v = pipeline_finished(&q, &id, Duration::from_secs(60), false).await;
    assert_eq!(v.state, PipelineState::Completed);
    let r = post(&format!("/v1/pipelines/{id}/cancel"), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    assert_eq!(
        c,
        json!({"state": "Completed", "cancelled": 0}),
        "a finished pipeline stays as it is"
    );
}
