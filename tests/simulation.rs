//! The deterministic simulation of the store engine (`tests/sim/`), on a
//! fixed set of seeds for every store, and differentially against
//! `LocalWorkQueue`.
//!
//! - `SIM_SEEDS=<n>` runs `n` seeds per store instead of the fixed set
//!   (`make sim SEEDS=<n>`), starting at `SIM_FIRST_SEED` (default 1).
//! - `SIM_SEED=<seed> SIM_STORE=<memory|memory-decimal|sqlite>` replays
//!   one run and prints its trace (the events up to the first violation);
//!   `SIM_TRACE_LINES=<n>` keeps more of it, `SIM_FULL_KEYS=1` lists every
//!   key of batched operations, `SIM_DUMP=<prefix>` adds what the store
//!   holds under a prefix when faults stop and at the end.

mod sim;

use sim::store::StoreKind;
use sim::world::{self, Options, Outcome};

/// Seeds per store in `make test`.
const FIXED_SEEDS: u64 = 40;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn report(o: &Outcome) -> String {
    format!(
        "seed {} on {}: {} violations in {} steps, {} tasks\n{}\n\nreplay: SIM_SEED={} SIM_STORE={} cargo test --test simulation replay -- --nocapture\n\ntrace:\n{}",
        o.seed,
        o.store.name(),
        o.violations.len(),
        o.steps,
        o.tasks,
        o.violations.join("\n"),
        o.seed,
        o.store.name(),
        o.trace
    )
}

fn seeds() -> std::ops::Range<u64> {
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(1);
    first..first + env_u64("SIM_SEEDS").unwrap_or(FIXED_SEEDS)
}

fn run_store(store: StoreKind) {
    let (mut steps, mut runs) = (0, 0);
    for seed in seeds() {
        let o = world::run(seed, Options::for_seed(seed, store));
        assert!(o.violations.is_empty(), "{}", report(&o));
        steps += o.steps;
        runs += 1;
    }
    println!(
        "SIM store={} seeds={runs} steps={steps} violations=0",
        store.name()
    );
}

#[test]
fn simulated_hosts_on_memory_keep_every_invariant() {
    run_store(StoreKind::MemoryLe);
}

#[test]
fn simulated_hosts_on_memory_with_decimal_counters_keep_every_invariant() {
    run_store(StoreKind::MemoryDecimal);
}

#[test]
fn simulated_hosts_on_sqlite_keep_every_invariant() {
    run_store(StoreKind::Sqlite);
}

#[test]
fn pushed_drains_leave_no_task_behind_and_stay_within_the_gate() {
    let (mut steps, mut runs, mut most) = (0, 0, 0);
    for seed in seeds() {
        for store in [StoreKind::MemoryLe, StoreKind::Sqlite] {
            let o = sim::dispatch::run(seed, store);
            assert!(
                o.violations.is_empty(),
                "dispatch seed {seed} on {}: {} of {} tasks\n{}\n\ntrace:\n{}",
                store.name(),
                o.violations.len(),
                o.tasks,
                o.violations.join("\n"),
                o.trace
            );
            steps += o.steps;
            runs += 1;
            most = most.max(o.drains_at_once);
        }
    }
    println!("SIM dispatch runs={runs} steps={steps} drains_at_once<={most} violations=0");
}

#[test]
fn the_store_only_engine_loses_nothing_and_never_runs_a_task_twice_at_once() {
    let (mut steps, mut runs, mut deliveries, mut full) = (0, 0, 0, 0);
    for seed in seeds() {
        for (store, cap) in [
            (StoreKind::MemoryLe, None),
            (StoreKind::Sqlite, None),
            (StoreKind::MemoryLe, Some(40)),
        ] {
            let o = sim::hosted::run(seed, store, cap);
            assert!(
                o.violations.is_empty(),
                "hosted seed {seed} on {} (cap {cap:?}): {} violations over {} tasks\n{}\n\ntrace:\n{}",
                store.name(),
                o.violations.len(),
                o.tasks,
                o.violations.join("\n"),
                o.trace
            );
            steps += o.steps;
            runs += 1;
            deliveries += o.deliveries;
            full += o.store_full;
        }
    }
    println!(
        "SIM_HOSTED runs={runs} steps={steps} deliveries={deliveries} duplicates=0 store_full_answers={full} violations=0"
    );
}

#[test]
fn pipeline_nodes_start_once_after_their_parents_and_every_node_finishes() {
    let (mut steps, mut runs, mut nodes, mut deliveries) = (0, 0, 0, 0);
    // Fewer fixed seeds than the other runs (each is longer); SIM_SEEDS
    // sets the count as everywhere.
    let fixed = std::env::var("SIM_SEEDS").is_err();
    let range = seeds();
    let list: Vec<u64> = if fixed {
        (range.start..range.start + 12).collect()
    } else {
        range.collect()
    };
    for seed in list {
        for store in [StoreKind::MemoryLe, StoreKind::Sqlite] {
            let o = sim::pipelines::run(seed, store);
            assert!(
                o.violations.is_empty(),
                "pipeline seed {seed} on {}: {} violations over {} nodes\n{}\n\ntrace:\n{}",
                store.name(),
                o.violations.len(),
                o.nodes,
                o.violations.join("\n"),
                o.trace
            );
            steps += o.steps;
            runs += 1;
            nodes += o.nodes;
            deliveries += o.deliveries;
        }
    }
    println!(
        "SIM_PIPELINES runs={runs} steps={steps} nodes={nodes} deliveries={deliveries} violations=0"
    );
}

#[test]
fn the_engine_answers_like_local_work_queue_one_request_at_a_time() {
    for seed in seeds() {
        if let Err(e) = sim::differential::run(seed, 400) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// Replay one seed (`SIM_SEED`, `SIM_STORE`) and print its trace.
#[test]
fn replay() {
    let Some(seed) = env_u64("SIM_SEED") else {
        return; // nothing to replay
    };
    let store = std::env::var("SIM_STORE")
        .ok()
        .and_then(|s| StoreKind::parse(&s))
        .unwrap_or(StoreKind::MemoryLe);
    let o = world::run(seed, Options::for_seed(seed, store));
    println!("{}", report(&o));
    assert!(o.violations.is_empty());
}
