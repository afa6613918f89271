//! What a pipeline node costs on the KV engine: a 1,000-node layered DAG
//! (ten layers of 100, each node depending on three nodes of the layer
//! before) submitted in one call and run by workers that dequeue batches
//! of 100 and ack them in one call — write commits per node (every
//! `set`, `set_many`, `delete`, `increment`, submission and maintenance
//! included) in memory, and nodes per second on a SQLite file laid out
//! like Spin's default store.
//!
//! Prints a table and one machine-readable line:
//! `BENCH_PIPELINE nodes=1000 commits_per_node=<f> nodes_per_s=<f>`.

use serde_json::{json, Value};
use spin_work_queue::kv::{CountingKv, KeyValue, MemoryKv, SqliteKv};
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{
    Ack, DequeueRequest, KvWorkQueue, LeasedQueue, NewPipeline, NodeSpec, PipelineState,
};
use std::time::Instant;

const LAYERS: usize = 10;
const WIDTH: usize = 100;
const FAN_IN: usize = 3;

fn layered() -> NewPipeline {
    let mut nodes = Vec::with_capacity(LAYERS * WIDTH);
    for l in 0..LAYERS {
        for i in 0..WIDTH {
            let deps: Vec<String> = if l == 0 {
                Vec::new()
            } else {
                (0..FAN_IN)
                    .map(|k| format!("l{}n{}", l - 1, (i + k * 37) % WIDTH))
                    .collect()
            };
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            nodes.push(NodeSpec::new(format!("l{l}n{i}"), json!({"i": i}), &deps));
        }
    }
    NewPipeline::new(nodes).with_id(format!("bench-{}", ulid::Ulid::generate()))
}

/// Run the layered DAG to completion; returns the seconds it took.
fn run<K: KeyValue + Send + Sync>(q: &KvWorkQueue<K>) -> f64 {
    let p = layered();
    let id = p.id.clone().unwrap();
    let started = Instant::now();
    block_on(q.submit_pipeline(p)).expect("submit");
    loop {
        let batch = block_on(q.dequeue(&DequeueRequest::new("bench", 100))).expect("dequeue");
        if batch.is_empty() {
            break;
        }
        let acks = batch
            .iter()
            .map(|l| Ack {
                id: l.task.id.clone(),
                lease_id: l.lease.id.clone(),
                output: Value::from(l.task.node_name.len()),
            })
            .collect();
        for r in block_on(q.ack_batch(acks)).expect("ack_batch") {
            r.expect("ack");
        }
    }
    let took = started.elapsed().as_secs_f64();
    let view = block_on(q.pipeline(&id)).expect("view").expect("exists");
    assert_eq!(view.state, PipelineState::Completed, "{:?}", view.counts);
    took
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn main() {
    let nodes = (LAYERS * WIDTH) as f64;
    let counted = KvWorkQueue::new(CountingKv::new(MemoryKv::new()));
    run(&counted);
    let c = counted.kv().counts();
    let commits = c.commits() as f64 / nodes;

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = KvWorkQueue::new(SqliteKv::open(dir.path().join("kv.db")).expect("sqlite"));
    let took = run(&sqlite);
    let per_s = nodes / took;

    println!("A layered DAG of {LAYERS} × {WIDTH} nodes, {FAN_IN} parents each, batches of 100:");
    println!("| | per node |");
    println!("| --- | ---: |");
    println!("| write commits (memory, counted) | {commits:.3} |");
    println!(
        "| of them `increment`s | {:.3} |",
        c.increments as f64 / nodes
    );
    println!(
        "| reads (`get` + `get_many`) | {:.3} |",
        (c.gets + c.get_manys) as f64 / nodes
    );
    println!("| keys read | {:.1} |", c.keys_read as f64 / nodes);
    println!(
        "\nSQLite file (Spin's layout and settings): {nodes} nodes in {took:.2} s, {per_s:.0} nodes/s"
    );
    println!(
        "\nBENCH_PIPELINE nodes={} commits_per_node={commits:.3} nodes_per_s={per_s:.1}",
        LAYERS * WIDTH
    );
}
