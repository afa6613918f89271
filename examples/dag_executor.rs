//! A DAG executor two ways, with the time each took:
//!
//! 1. **Wave by wave, client side**, written only against
//!    [`WorkQueuePort`]: enqueue a wave, let workers dequeue, execute and
//!    acknowledge, `collect_results`, build the next wave's inputs from
//!    them — the use the port was designed for.
//! 2. **Server side**: the whole DAG in one [`PipelineQueue::submit_pipeline`]
//!    (`POST /v1/pipelines`); each node starts as soon as its own parents
//!    completed, and nothing drives it.
//!
//! Both run on [`LocalWorkQueue`] and, with `WQ_URL` set, on the app
//! through [`HttpWorkQueue`](spin_work_queue::client::HttpWorkQueue). Every
//! node runs the echo executor (its output is its input), so whoever runs
//! a node, the results are the same — and the program checks they are.
//!
//! ```text
//! cargo run --example dag_executor
//! # against the app: every node name must reach the echo executor
//! SPIN_VARIABLE_EXECUTORS='{"*":"http://echo.spin.internal/"}' make up
//! WQ_URL=http://127.0.0.1:3000 cargo run --example dag_executor
//! ```
//!
//! `WQ_TOKEN` is sent as the bearer token when set.

use serde_json::{json, Map, Value};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{
    LocalWorkQueue, NewPipeline, NodeSpec, PipelineState, Result, WorkQueuePort, WorkTask,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The DAG: an extract, two cleaners, a join, a report and an audit that
/// needs both the extract and the join.
fn dag() -> Vec<NodeSpec> {
    vec![
        NodeSpec::new("extract", json!({"source": "orders.csv"}), &[]),
        NodeSpec::new("clean-eu", json!({"region": "eu"}), &["extract"]),
        NodeSpec::new("clean-us", json!({"region": "us"}), &["extract"]),
        NodeSpec::new("join", Value::Null, &["clean-eu", "clean-us"]),
        NodeSpec::new("report", json!({"format": "html"}), &["join"]),
        NodeSpec::new("audit", Value::Null, &["extract", "join"]),
    ]
}

/// Each node's wave: the longest path from a root.
fn waves(nodes: &[NodeSpec]) -> BTreeMap<String, u32> {
    let mut wave: BTreeMap<String, u32> = BTreeMap::new();
    while wave.len() < nodes.len() {
        for n in nodes {
            let deps: Option<Vec<u32>> =
                n.depends_on.iter().map(|d| wave.get(d).copied()).collect();
            if let Some(deps) = deps {
                let w = deps.into_iter().map(|d| d + 1).max().unwrap_or(0);
                wave.insert(n.name.clone(), w);
            }
        }
    }
    wave
}

/// The echo executor: the output is the input.
fn execute(task: &WorkTask) -> Value {
    task.input.clone()
}

/// Workers: dequeue, execute, acknowledge, until `stop` says so.
async fn work(q: Arc<dyn WorkQueuePort>, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<()> {
    use std::sync::atomic::Ordering::SeqCst;
    while !stop.load(SeqCst) {
        match q.try_dequeue().await? {
            Some(task) => q.acknowledge(&task.id, execute(&task)).await?,
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    Ok(())
}

/// Run `workers` workers on `q` while `until` is not done.
async fn with_workers<T, F>(q: Arc<dyn WorkQueuePort>, workers: usize, until: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(work(q.clone(), stop.clone())))
        .collect();
    let out = until.await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for h in handles {
        h.await.expect("a worker panicked")?;
    }
    out
}

/// The wave-by-wave executor: only the port.
async fn run_waves(
    q: Arc<dyn WorkQueuePort>,
    pipeline: &str,
    nodes: &[NodeSpec],
) -> Result<Vec<(String, Value)>> {
    let wave_of = waves(nodes);
    let last = wave_of.values().copied().max().unwrap_or(0);
    let mut outputs: BTreeMap<String, Value> = BTreeMap::new();
    for wave in 0..=last {
        let this: Vec<&NodeSpec> = nodes.iter().filter(|n| wave_of[&n.name] == wave).collect();
        for n in &this {
            let input = if n.depends_on.is_empty() {
                n.input.clone()
            } else {
                let parents: Map<String, Value> = n
                    .depends_on
                    .iter()
                    .map(|d| (d.clone(), outputs[d].clone()))
                    .collect();
                json!({ "input": n.input, "parents": parents })
            };
            q.enqueue(WorkTask {
                id: String::new(),
                pipeline_id: pipeline.to_string(),
                node_name: n.name.clone(),
                input,
                wave,
                attempt: 0,
                idempotency_key: format!("{pipeline}/{}", n.name),
            })
            .await?;
        }
        // Wait for the whole wave: the barrier the server side does without.
        loop {
            let results = q.collect_results(pipeline).await?;
            if this
                .iter()
                .all(|n| results.iter().any(|(name, _)| *name == n.name))
            {
                outputs.extend(results);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    q.collect_results(pipeline).await
}

/// The server-side run: one submission, then wait for the pipeline to
/// stop running.
async fn run_pipeline<Q: PipelineQueue + ?Sized>(
    q: &Q,
    pipeline: &str,
    nodes: &[NodeSpec],
) -> Result<Vec<(String, Value)>> {
    let nodes = nodes
        .iter()
        .cloned()
        .map(|n| n.with_executor("echo"))
        .collect();
    q.submit_pipeline(NewPipeline::new(nodes).with_id(pipeline))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = q.pipeline(pipeline).await?.expect("just submitted");
        match view.state {
            PipelineState::Running if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            PipelineState::Completed => return q.results(pipeline).await,
            other => panic!("pipeline {pipeline} ended {other:?}: {:?}", view.counts),
        }
    }
}

fn print(label: &str, took: Duration, results: &[(String, Value)]) {
    println!(
        "{label}: {} nodes in {:.1} ms",
        results.len(),
        took.as_secs_f64() * 1e3
    );
}

/// Results by node name (completion order differs between runs).
fn by_name(results: &[(String, Value)]) -> BTreeMap<String, Value> {
    results.iter().cloned().collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let nodes = dag();
    let run = ulid::Ulid::generate().to_string();
    let mut all: Vec<(String, BTreeMap<String, Value>)> = Vec::new();

    let local = Arc::new(LocalWorkQueue::new());
    let t = Instant::now();
    let id = format!("waves-local-{run}");
    let waves = with_workers(local.clone(), 4, run_waves(local.clone(), &id, &nodes)).await?;
    print("wave by wave, LocalWorkQueue", t.elapsed(), &waves);
    all.push(("wave by wave, LocalWorkQueue".into(), by_name(&waves)));

    let t = Instant::now();
    let id = format!("pipeline-local-{run}");
    let server = with_workers(local.clone(), 4, run_pipeline(&*local, &id, &nodes)).await?;
    print("submit_pipeline, LocalWorkQueue", t.elapsed(), &server);
    all.push(("submit_pipeline, LocalWorkQueue".into(), by_name(&server)));

    if let Ok(url) = std::env::var("WQ_URL") {
        let mut builder = spin_work_queue::client::HttpWorkQueue::builder(url.as_str());
        if let Ok(token) = std::env::var("WQ_TOKEN") {
            builder = builder.token(token);
        }
        let http = Arc::new(builder.build()?);
        let t = Instant::now();
        let id = format!("waves-http-{run}");
        let waves = with_workers(http.clone(), 4, run_waves(http.clone(), &id, &nodes)).await?;
        print(
            &format!("wave by wave, HttpWorkQueue ({url})"),
            t.elapsed(),
            &waves,
        );
        all.push(("wave by wave, HttpWorkQueue".into(), by_name(&waves)));

        // Server side: the app's own worker runs every node.
        let t = Instant::now();
        let id = format!("pipeline-http-{run}");
        let server = run_pipeline(&*http, &id, &nodes).await?;
        print(&format!("POST /v1/pipelines ({url})"), t.elapsed(), &server);
        all.push(("POST /v1/pipelines".into(), by_name(&server)));
    } else {
        println!("(set WQ_URL=http://127.0.0.1:3000 to run the same DAG on the app)");
    }

    println!("\nresults (the same for every run):");
    for (name, output) in &all[0].1 {
        println!("  {name:9} {output}");
    }
    for (label, results) in &all[1..] {
        assert_eq!(results, &all[0].1, "{label} disagrees with {}", all[0].0);
    }
    Ok(())
}
