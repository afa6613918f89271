//! `make bench`: what a task costs the store, and how fast the engine runs
//! on SQLite laid out and committed like Spin's default store.
//!
//! Prints a table, one machine-readable `BENCH …` line, and the
//! simulator's `SIM …` line. Figures, not assertions: the cost properties
//! themselves are tested in `tests/cost.rs`, the invariants in
//! `tests/simulation.rs`.

use serde_json::json;
use spin_work_queue::kv::{CountingKv, KeyValue, KvCounts, MemoryKv, SqliteKv};
use spin_work_queue::*;
use std::sync::Arc;
use std::time::Instant;

#[allow(unused_imports)]
#[path = "../tests/sim/mod.rs"]
mod sim;

/// Seeds per store the benchmark's simulation runs.
const SIM_SEEDS: u64 = 30;

/// Simulated time per call when maintenance is included: with the default
/// 1 s period it then runs about as often as at ~330 single tasks/s.
const MS_PER_STEP: u64 = 1;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn tasks(n: usize, tag: &str) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new("bench", format!("{tag}-{i}"), json!({ "i": i })))
        .collect()
}

/// Acks of every task of `got`, with the same output.
fn acks_of(got: Vec<LeasedTask>) -> Vec<Ack> {
    got.into_iter()
        .map(|l| Ack {
            id: l.task.id,
            lease_id: l.lease.id,
            output: json!("ok"),
        })
        .collect()
}

/// Enqueue, dequeue and ack `total` tasks in batches of `batch`, with
/// `depth` other tasks waiting in the queue throughout. `ms_per_step` is the
/// simulated time per call (0: time stands still, so the periodic
/// maintenance run never comes due). Returns the counts per task.
fn lifecycle_cost(batch: usize, depth: usize, total: usize, ms_per_step: u64) -> (f64, f64, f64) {
    let clock = ManualClock::new(1_700_000_000_000);
    let kv = CountingKv::new(MemoryKv::new());
    let q = KvWorkQueue::with_config(kv, QueueConfig::default(), Arc::new(clock.clone())).unwrap();
    let rt = rt();
    rt.block_on(async {
        for chunk in 0..depth.div_ceil(1000) {
            let n = (depth - chunk * 1000).min(1000);
            q.enqueue_batch(tasks(n, "depth")).await.unwrap();
        }
        // The first maintenance run of a new queue happens before measuring.
        q.rescue().await.unwrap();
        let before: KvCounts = q.kv().counts();
        let mut done = 0;
        while done < total {
            q.enqueue_batch(tasks(batch, "t")).await.unwrap();
            clock.advance(ms_per_step);
            let got = q
                .dequeue(&DequeueRequest::new("w", batch as u32))
                .await
                .unwrap();
            clock.advance(ms_per_step);
            assert_eq!(got.len(), batch);
            if batch == 1 {
                q.ack(&got[0].task.id, &got[0].lease.id, json!("ok"))
                    .await
                    .unwrap();
            } else {
                q.ack_batch(acks_of(got)).await.unwrap();
            }
            clock.advance(ms_per_step);
            done += batch;
        }
        let c = q.kv().counts().since(&before);
        let n = total as f64;
        (
            c.commits() as f64 / n,
            c.reads() as f64 / n,
            c.ops() as f64 / n,
        )
    })
}

/// Tasks completed before the maintenance run measured by
/// [`maintenance_cost`].
const MAINTENANCE_TASKS: usize = 1_000;

/// The cost of one maintenance run that walks, settles and indexes
/// [`MAINTENANCE_TASKS`] completed tasks.
fn maintenance_cost() -> KvCounts {
    let clock = ManualClock::new(1_700_000_000_000);
    let q = KvWorkQueue::with_config(
        CountingKv::new(MemoryKv::new()),
        QueueConfig::default(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    rt().block_on(async {
        q.rescue().await.unwrap();
        for _ in 0..MAINTENANCE_TASKS / 100 {
            q.enqueue_batch(tasks(100, "m")).await.unwrap();
            let got = q.dequeue(&DequeueRequest::new("w", 100)).await.unwrap();
            q.ack_batch(acks_of(got)).await.unwrap();
        }
        clock.advance(1_000);
        let before = q.kv().counts();
        q.rescue().await.unwrap();
        q.kv().counts().since(&before)
    })
}

/// Per-operation counts for one lifecycle step, maintenance not included.
fn step_costs(batch: usize) -> [(&'static str, KvCounts); 3] {
    let clock = ManualClock::new(1_700_000_000_000);
    let q = KvWorkQueue::with_config(
        CountingKv::new(MemoryKv::new()),
        QueueConfig::default(),
        Arc::new(clock),
    )
    .unwrap();
    rt().block_on(async {
        // A first dequeue runs maintenance once; later ones in the same
        // period do not.
        q.dequeue(&DequeueRequest::new("w", 1)).await.unwrap();
        let c0 = q.kv().counts();
        q.enqueue_batch(tasks(batch, "s")).await.unwrap();
        let c1 = q.kv().counts();
        let got = q
            .dequeue(&DequeueRequest::new("w", batch as u32))
            .await
            .unwrap();
        let c2 = q.kv().counts();
        q.ack_batch(acks_of(got)).await.unwrap();
        let c3 = q.kv().counts();
        [
            ("enqueue", c1.since(&c0)),
            ("dequeue", c2.since(&c1)),
            ("ack", c3.since(&c2)),
        ]
    })
}

/// Keys left per finished task once the retention period has passed, and
/// keys per finished task while they are kept.
fn keys_after_retention(total: usize) -> (f64, f64) {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = QueueConfig::default();
    let retention = config.retention_ms;
    let mem = Arc::new(MemoryKv::new());
    let q = KvWorkQueue::with_config(mem.clone(), config, Arc::new(clock.clone())).unwrap();
    rt().block_on(async {
        q.rescue().await.unwrap();
        let empty = mem.len();
        for _ in 0..total / 100 {
            q.enqueue_batch(tasks(100, "r")).await.unwrap();
            let got = q.dequeue(&DequeueRequest::new("w", 100)).await.unwrap();
            q.ack_batch(acks_of(got)).await.unwrap();
            clock.advance(10);
        }
        clock.advance(1_000);
        q.rescue().await.unwrap();
        let kept = (mem.len() - empty) as f64 / total as f64;
        // Past the retention period, maintenance sweeps what it may.
        let mut runs = 0;
        while runs < 100 {
            clock.advance(retention / 4 + 1_000);
            q.rescue().await.unwrap();
            runs += 1;
            if runs > 8 && mem.len() <= empty + 8 {
                break;
            }
        }
        let left = mem.len().saturating_sub(empty) as f64 / total as f64;
        (left, kept)
    })
}

/// Keys and bytes one dequeue of 10 reads at queue depth `depth`.
fn dequeue_reads(depth: usize) -> (u64, u64) {
    let clock = ManualClock::new(1_700_000_000_000);
    let q = KvWorkQueue::with_config(
        CountingKv::new(MemoryKv::new()),
        QueueConfig::default(),
        Arc::new(clock),
    )
    .unwrap();
    rt().block_on(async {
        for chunk in 0..depth.div_ceil(1000) {
            let n = (depth - chunk * 1000).min(1000);
            q.enqueue_batch(tasks(n, "d")).await.unwrap();
        }
        q.rescue().await.unwrap();
        let before = q.kv().counts();
        q.dequeue(&DequeueRequest::new("w", 10)).await.unwrap();
        let c = q.kv().counts().since(&before);
        (c.keys_read, c.bytes_read)
    })
}

/// Run the simulator on `seeds` seeds per store: (seeds, steps, violations).
fn simulate(seeds: u64) -> (u64, u64, usize) {
    use sim::store::StoreKind;
    use sim::world::{run, Options};
    let (mut runs, mut steps, mut violations) = (0, 0, 0);
    for store in StoreKind::ALL {
        for seed in 1..=seeds {
            let o = run(seed, Options::for_seed(seed, store));
            runs += 1;
            steps += o.steps;
            violations += o.violations.len();
            if !o.violations.is_empty() {
                eprintln!("seed {seed} on {}: {:?}", store.name(), o.violations);
            }
        }
    }
    (runs, steps, violations)
}

/// Tasks per second through enqueue → dequeue → ack on a SQLite file.
fn sqlite_throughput(batch: usize, total: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let kv = SqliteKv::open(dir.path().join("kv.db")).unwrap();
    let q = KvWorkQueue::new(kv);
    let rt = rt();
    rt.block_on(async {
        let start = Instant::now();
        let mut done = 0;
        while done < total {
            q.enqueue_batch(tasks(batch, "t")).await.unwrap();
            let got = q
                .dequeue(&DequeueRequest::new("w", batch as u32))
                .await
                .unwrap();
            q.ack_batch(acks_of(got)).await.unwrap();
            done += batch;
        }
        total as f64 / start.elapsed().as_secs_f64()
    })
}

/// Raw autocommit writes per second on the same kind of file: the machine's
/// write-commit limit the engine's figures compare to.
fn sqlite_commit_rate(n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let kv = SqliteKv::open(dir.path().join("raw.db")).unwrap();
    let start = Instant::now();
    for i in 0..n {
        kv.set(&format!("k{i}"), b"v").unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    println!("spin-work-queue benchmark (engine on the KeyValue seam)\n");
    println!("Per operation, one batch (maintenance not included):");
    println!("| operation | batch | reads | keys read | write commits |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for batch in [1, 100] {
        for (name, c) in step_costs(batch) {
            println!(
                "| {name} | {batch} | {} | {} | {} |",
                c.reads(),
                c.keys_read,
                c.commits()
            );
        }
    }

    let (single_commits, single_reads, _) = lifecycle_cost(1, 100, 2_000, 0);
    let (batch_commits, batch_reads, _) = lifecycle_cost(100, 100, 20_000, 0);
    let (single_m, single_m_reads, _) = lifecycle_cost(1, 100, 2_000, MS_PER_STEP);
    let (batch_m, batch_m_reads, _) = lifecycle_cost(100, 100, 20_000, MS_PER_STEP);
    let (_, _, ops_100) = lifecycle_cost(1, 100, 2_000, 0);
    let (_, _, ops_100k) = lifecycle_cost(1, 100_000, 2_000, 0);
    let maintenance = maintenance_cost();
    println!("\nFull lifecycle (enqueue → dequeue → ack), per task:");
    println!("| calls | queue depth | write commits / task | reads / task |");
    println!("| --- | ---: | ---: | ---: |");
    println!("| single-task | 100 | {single_commits:.3} | {single_reads:.3} |");
    println!("| batches of 100 | 100 | {batch_commits:.3} | {batch_reads:.3} |");
    println!("| single-task, maintenance every period at ~330 tasks/s | 100 | {single_m:.3} | {single_m_reads:.3} |");
    println!("| batches of 100, maintenance every period at ~33,000 tasks/s | 100 | {batch_m:.3} | {batch_m_reads:.3} |");
    println!(
        "\nMaintenance: {} write commits and {} reads per run that finds {} completed tasks to settle \
         (at most one run per maintenance period, default 1 s).",
        maintenance.commits(),
        maintenance.reads(),
        MAINTENANCE_TASKS
    );
    println!("\nDepth independence (single-task lifecycle, all KV operations per task):");
    println!("| queue depth | KV operations / task |");
    println!("| ---: | ---: |");
    println!("| 100 | {ops_100:.3} |");
    println!("| 100,000 | {ops_100k:.3} |");

    let commit_rate = sqlite_commit_rate(2_000);
    let single_tps = sqlite_throughput(1, 1_000);
    let batch_tps = sqlite_throughput(100, 30_000);
    println!("\nSQLite file (Spin's layout and settings), one process:");
    println!("| workload | tasks/s |");
    println!("| --- | ---: |");
    println!("| raw autocommit `set`s (the machine's commit limit) | {commit_rate:.0} commits/s |");
    println!("| single-task lifecycle | {single_tps:.0} |");
    println!("| batches of 100 | {batch_tps:.0} |");
    let (left, kept) = keys_after_retention(10_000);
    let (keys_100, bytes_100) = dequeue_reads(100);
    let (keys_100k, bytes_100k) = dequeue_reads(100_000);
    println!("\nStorage (10,000 tasks, batches of 100, default retention of 7 days):");
    println!("| | keys / finished task |");
    println!("| --- | ---: |");
    println!("| while kept (record, mapping, completion entry, index) | {kept:.3} |");
    println!("| after the retention period | {left:.4} |");
    println!("\nOne dequeue of 10 tasks:");
    println!("| queue depth | keys read | bytes read |");
    println!("| ---: | ---: | ---: |");
    println!("| 100 | {keys_100} | {bytes_100} |");
    println!("| 100,000 | {keys_100k} | {bytes_100k} |");
    let started = Instant::now();
    let (runs, steps, violations) = simulate(SIM_SEEDS);
    println!(
        "\nSimulation: {runs} runs ({SIM_SEEDS} seeds × 3 stores), {steps} steps, {violations} violations, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "\nBENCH commits_per_task_single={single_commits:.3} commits_per_task_batch100={batch_commits:.3} \
         kv_ops_per_task_depth100={ops_100:.3} kv_ops_per_task_depth100000={ops_100k:.3} \
         tasks_per_s_sqlite_single={single_tps:.1} tasks_per_s_sqlite_batch100={batch_tps:.1} \
         keys_per_finished_task_after_retention={left:.4} bytes_read_per_dequeue={bytes_100k}"
    );
    println!("SIM seeds={runs} steps={steps} violations={violations}");
}
