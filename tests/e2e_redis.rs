//! End to end on Spin's Redis key-value store, as `wq-test-host --kv-redis`
//! serves it (decimal counters, `MSET`, and the `get-many` that Spin 4.1's
//! Redis backend cannot serve): two hosts sharing one queue, and the
//! components left at `kv_get_many = batch`. Needs `redis-server`.

mod e2e_support;

use e2e_support::{assert_each_once, eventually, external, numbered, unique, App, Options, Redis};
use serde_json::{json, Value};
use spin_work_queue::{LeasedQueue, NewTask, WorkQueuePort};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_sharing_one_redis_drain_one_queue_exactly_once() {
    if external().is_some() {
        eprintln!("SKIPPED: starts its own hosts on Redis");
        return;
    }
    let Some(redis) = Redis::start().await else {
        return;
    };
    let options = Options {
        redis: Some(redis.url.clone()),
        ..Options::default()
    }
    .var("kv_get_many", "single")
    .var("worker_url", "")
    // A place at the gate for each of the four drainers below: a drain that
    // hits `max_tasks` hands its place to its own follow-up, so at the
    // default of two the two drainers admitted first (the warm host's)
    // would do all the work and the others would only be told `busy`.
    .var("max_drains", "4");
    let a = App::start(options.clone()).await;
    let b = App::start(options).await;
    const TASKS: usize = 300;
    let pipeline = unique("redis");
    let q = a.client();
    for batch in numbered(&pipeline, TASKS).chunks(30) {
        q.enqueue_batch(batch.to_vec()).await.unwrap();
    }
    // Two drainers per host, all on the one store.
    let mut drainers = Vec::new();
    for (host, app) in [("a", &a), ("b", &b), ("a", &a), ("b", &b)] {
        let http = app.http();
        let url = format!("{}/worker/drain", app.url);
        drainers.push(tokio::spawn(async move {
            let mut processed = 0u64;
            loop {
                let r: Value = http
                    .post(&url)
                    .json(&json!({ "max_tasks": 25, "batch": 5 }))
                    .send()
                    .await
                    .expect("drain")
                    .json()
                    .await
                    .expect("drain report");
                let n = r["processed"].as_u64().unwrap_or(0);
                processed += n;
                if n == 0 {
                    return (host, processed);
                }
            }
        }));
    }
    let mut per_host = std::collections::BTreeMap::new();
    for d in drainers {
        let (host, n) = d.await.unwrap();
        *per_host.entry(host).or_insert(0) += n;
    }
    // Drains these loops did not start (a drain that hit `max_tasks` pushes
    // its own follow-up) may still be finishing; keep draining meanwhile.
    let http = b.http();
    let drain = format!("{}/worker/drain", b.url);
    let results = eventually("every result", Duration::from_secs(60), || async {
        http.post(&drain).json(&json!({})).send().await.ok();
        let r = q.collect_results(&pipeline).await.ok()?;
        (r.len() >= TASKS).then_some(r)
    })
    .await;
    assert_each_once("the pipeline", &results, TASKS);
    let stats = b.client().stats().await.unwrap();
    assert_eq!(
        (stats.completed, stats.pending, stats.in_progress),
        (TASKS as u64, 0, 0),
        "{stats:?}"
    );
    assert!(
        per_host.values().all(|n| *n > 0),
        "both hosts did work: {per_host:?}"
    );
}

/// `kv_get_many` left at its default on Redis, where every `get-many` of
/// several keys fails and one of a single existing key crashes the host:
/// the components fall back to one `get` per key and never send a lone key,
/// so the queue is slower but loses nothing and completes everything once.
/// 501 tasks with their own ids, enqueued twice, make the second enqueue
/// read 501 existing records (chunks of 500 would leave one alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_get_many_left_on_still_drains_everything() {
    if external().is_some() {
        eprintln!("SKIPPED: starts its own host on Redis");
        return;
    }
    let Some(redis) = Redis::start().await else {
        return;
    };
    let app = App::start(Options {
        redis: Some(redis.url.clone()),
        ..Options::default()
    })
    .await;
    const TASKS: usize = 501;
    let pipeline = unique("redis-batch");
    let q = app.client();
    let tasks: Vec<NewTask> = numbered(&pipeline, TASKS)
        .into_iter()
        .map(|mut t| {
            t.id = Some(ulid::Ulid::generate().to_string());
            t
        })
        .collect();
    let first = q.enqueue_batch(tasks.clone()).await.unwrap();
    assert!(first.iter().all(|e| !e.duplicate));
    let again = q.enqueue_batch(tasks).await.unwrap();
    assert!(again.iter().all(|e| e.duplicate), "{again:?}");
    assert_eq!(
        again.iter().map(|e| &e.id).collect::<Vec<_>>(),
        first.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    let results = eventually("every result", Duration::from_secs(120), || async {
        let r = q.collect_results(&pipeline).await.ok()?;
        (r.len() >= TASKS).then_some(r)
    })
    .await;
    assert_each_once("the pipeline", &results, TASKS);
}

/// A pipeline on two hosts sharing one Redis store: submitted on one and
/// watched from the other, which sees every node complete once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipeline_on_two_hosts_sharing_one_redis_runs_each_node_once() {
    use spin_work_queue::pipeline::PipelineQueue;
    use spin_work_queue::{NewPipeline, NodeSpec, PipelineState};
    if external().is_some() {
        eprintln!("SKIPPED: starts its own hosts on Redis");
        return;
    }
    let Some(redis) = Redis::start().await else {
        return;
    };
    let options = Options {
        redis: Some(redis.url.clone()),
        ..Options::default()
    }
    .var("kv_get_many", "single");
    let a = App::start(options.clone()).await;
    let b = App::start(options).await;
    let id = unique("redis-dag");
    let echo =
        |name: &str, deps: &[&str]| NodeSpec::new(name, json!({}), deps).with_executor("echo");
    let mut nodes = vec![echo("root", &[])];
    let middle: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    nodes.extend(middle.iter().map(|m| echo(m, &["root"])));
    let deps: Vec<&str> = middle.iter().map(String::as_str).collect();
    nodes.push(echo("sink", &deps));
    a.client()
        .submit_pipeline(NewPipeline::new(nodes).with_id(&id))
        .await
        .unwrap();
    let qb = b.client();
    let v = eventually(
        "the pipeline on two hosts",
        Duration::from_secs(120),
        || async {
            qb.pipeline(&id)
                .await
                .ok()
                .flatten()
                .filter(|v| v.state != PipelineState::Running)
        },
    )
    .await;
    assert_eq!(v.state, PipelineState::Completed, "{:?}", v.counts);
    let results = qb.collect_results(&id).await.unwrap();
    assert_eq!(results.len(), 42, "each node completed once");
}
