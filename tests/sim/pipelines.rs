//! Pipelines under the scheduler: a submitter sends random DAGs (and
//! sends some again, and cancels one), workers dequeue, ack one by one or
//! in batches, fail some nodes for good and some once, and walk away from
//! others; an admin calls `rescue` and redrives a few dead letters. Every store operation is a
//! scheduling point; faults, crashes (a request dying at any operation —
//! between a parent's ack and its children's creation included), stalls
//! and skewed clocks run until the submissions are done, then the store
//! calms down.
//!
//! Checked at every delivery: each parent of the node completed (or, under
//! `continue`, dead-lettered); the node's task was created once (its
//! `created_at` never changes). At the end: every node of every accepted
//! pipeline is `Completed`, `DeadLetter`, `Skipped` or `Cancelled`, each as
//! the nodes' fates say.

use super::oracle::block_on;
use super::rng::Rng;
use super::sched::{skews, Chaos, Decision, Sched};
use super::store::{Inspect, Shared, SimClock, SimKv, StoreKind};
use serde_json::json;
use spin_work_queue::kv::KeyValue;
use spin_work_queue::pipeline::PipelineQueue;
use spin_work_queue::{
    Ack, DequeueRequest, KvWorkQueue, LeasedQueue, LeasedTask, ManualClock, NewPipeline, NodeSpec,
    NodeState, OnFailure, PipelineState, QueueConfig, TaskStatus,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

const START_MS: u64 = 1_700_000_000_000;
const WORKERS: usize = 4;
const PIPELINES: usize = 5;
/// Virtual time after which a run that has not settled fails liveness.
const GIVE_UP_MS: u64 = 40 * 60_000;

/// What the workers do with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    /// Fails its first attempt (retryable), then completes.
    Flaky,
    /// Fails for good.
    Dead,
}

/// A pipeline the submitter generated.
#[derive(Debug, Clone)]
struct Planned {
    spec: NewPipeline,
    fates: Vec<Fate>,
    accepted: bool,
    cancelled: bool,
}

#[derive(Default)]
struct Board {
    plans: Vec<Planned>,
    submitting: bool,
    finished: bool,
    /// `created_at` of each node task when first delivered.
    created: BTreeMap<String, u64>,
    /// Node tasks redriven by the admin.
    redriven: Vec<String>,
    deliveries: u64,
    violations: Vec<String>,
}

/// What a pipeline run found.
#[derive(Debug)]
pub struct PipelineOutcome {
    pub steps: u64,
    pub nodes: usize,
    pub deliveries: u64,
    pub violations: Vec<String>,
    pub trace: String,
}

/// The queue's settings: a grace period of 20 s, since a maintenance run
/// here indexes completions of several pipelines at once, many store
/// operations interleaved with four other hosts' at a few hundred virtual
/// milliseconds each (`grace_ms` is what to raise for a slow store).
fn config() -> QueueConfig {
    QueueConfig {
        maintenance_period_ms: 100,
        grace_ms: 20_000,
        default_lease_ms: 15_000,
        ..QueueConfig::default()
    }
    .validated()
    .expect("valid config")
}

fn queue(shared: &Arc<Shared>, host: usize) -> KvWorkQueue<SimKv> {
    let kv = SimKv {
        host,
        shared: shared.clone(),
        tripped: Default::default(),
    };
    let clock = Arc::new(SimClock {
        host,
        shared: shared.clone(),
    });
    KvWorkQueue::with_config(kv, config(), clock)
        .expect("valid config")
        .with_observer(Arc::new(super::hosts::Counted::default()))
}

/// A reader of the store outside the scheduler (the host holding the
/// baton is the only one running).
fn checker(shared: &Shared) -> KvWorkQueue<Arc<dyn Inspect>> {
    KvWorkQueue::with_config(
        shared.store.clone(),
        config(),
        Arc::new(ManualClock::new(shared.sched.now())),
    )
    .expect("valid config")
    .with_observer(Arc::new(super::hosts::Counted::default()))
}

/// A random DAG of 3..=12 nodes, each depending on up to three earlier
/// ones, with fates.
fn plan(rng: &mut Rng, k: usize, seed: u64) -> Planned {
    let n = rng.range(3, 12) as usize;
    let mut nodes = Vec::new();
    let mut fates = Vec::new();
    for i in 0..n {
        let mut deps: Vec<String> = Vec::new();
        if i > 0 {
            for _ in 0..rng.range(0, 3) {
                let d = format!("n{}", rng.range(0, i as u64 - 1));
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
        }
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        let mut node = NodeSpec::new(format!("n{i}"), json!({ "i": i }), &deps);
        let fate = match rng.range(0, 9) {
            0 => Fate::Dead,
            1 => Fate::Flaky,
            _ => Fate::Ok,
        };
        // Enough attempts that walking away and dying requests never
        // exhaust a node that should complete.
        node.max_attempts = Some(8);
        nodes.push(node);
        fates.push(fate);
    }
    let policy = if rng.chance(0.5) {
        OnFailure::Continue
    } else {
        OnFailure::SkipDependents
    };
    Planned {
        spec: NewPipeline::new(nodes)
            .with_id(format!("sim-{seed}-{k}"))
            .with_on_failure(policy),
        fates,
        accepted: false,
        cancelled: false,
    }
}

/// `op` until it answers (a fault or a dying request changes nothing the
/// retry cannot see).
fn until_ok<T>(
    q: &KvWorkQueue<SimKv>,
    mut op: impl FnMut() -> Result<T, spin_work_queue::QueueError>,
) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(_) => q.kv().tripped.store(false, SeqCst),
        }
    }
}

fn submitter(shared: Arc<Shared>, board: Arc<Mutex<Board>>, seed: u64) {
    let h = 0;
    let mut rng = Rng::new(seed);
    let q = queue(&shared, h);
    shared.sched.start(h);
    for k in 0..PIPELINES {
        let planned = plan(&mut rng, k, seed);
        let spec = planned.spec.clone();
        board.lock().unwrap().plans.push(planned);
        until_ok(&q, || block_on(q.submit_pipeline(spec.clone())));
        board.lock().unwrap().plans[k].accepted = true;
        shared.sched.request_done(h);
        if rng.chance(0.3) {
            // The same submission again: a duplicate.
            let again = until_ok(&q, || block_on(q.submit_pipeline(spec.clone())));
            if !again.duplicate {
                board
                    .lock()
                    .unwrap()
                    .violations
                    .push(format!("resubmitting {k} was not a duplicate"));
            }
            shared.sched.request_done(h);
        }
        if k == 2 && seed % 2 == 0 {
            shared.sched.sleep(h, rng.range(0, 3_000));
            let id = spec.id.clone().unwrap();
            until_ok(&q, || block_on(q.cancel_pipeline(&id)));
            board.lock().unwrap().plans[k].cancelled = true;
            shared.sched.request_done(h);
        }
        shared.sched.sleep(h, rng.range(1, 4_000));
    }
    board.lock().unwrap().submitting = false;
    // The admin's part: rescue now and then until everything settled, and
    // redrive a dead letter now and then (its node fails again: its
    // descendants are skipped again, or under `continue` already ran).
    let mut calm_at = None;
    let mut redrives = 0;
    loop {
        let _ = block_on(q.rescue());
        q.kv().tripped.store(false, SeqCst);
        shared.sched.request_done(h);
        if redrives < 3 && rng.chance(0.3) {
            if let Ok(dead) = block_on(q.dead_letters(5)) {
                if let Some(d) = dead.first() {
                    // Noted first: the redrive may land and still answer an error.
                    board.lock().unwrap().redriven.push(d.task.id.clone());
                    if block_on(q.redrive(&d.task.id)).is_ok() {
                        redrives += 1;
                    }
                }
            }
            q.kv().tripped.store(false, SeqCst);
            shared.sched.request_done(h);
        }
        let now = shared.sched.now();
        let calm = *calm_at.get_or_insert(now + 30_000);
        if now >= calm {
            shared
                .sched
                .set_chaos(Chaos::calm(config().timing().store_call_ms));
        }
        if settled(&shared, &board) {
            break;
        }
        if now > START_MS + GIVE_UP_MS {
            board
                .lock()
                .unwrap()
                .violations
                .push("pipelines did not settle within 40 virtual minutes".into());
            break;
        }
        shared.sched.sleep(h, rng.range(200, 3_000));
    }
    board.lock().unwrap().finished = true;
    shared.sched.done(h);
}

/// True when every accepted pipeline has every node final.
fn settled(shared: &Shared, board: &Mutex<Board>) -> bool {
    let c = checker(shared);
    let b = board.lock().unwrap();
    b.plans.iter().all(|p| {
        let id = p.spec.id.as_deref().unwrap();
        match block_on(c.pipeline(id)) {
            Ok(Some(v)) => v.nodes.iter().all(|n| n.state.is_final()),
            _ => false,
        }
    })
}

fn worker(h: usize, shared: Arc<Shared>, board: Arc<Mutex<Board>>, seed: u64) {
    let mut rng = Rng::new(seed);
    let q = queue(&shared, h);
    shared.sched.start(h);
    while !board.lock().unwrap().finished {
        let req = DequeueRequest::new(format!("w{h}"), rng.range(1, 4) as u32);
        let leased = block_on(q.dequeue(&req)).unwrap_or_default();
        q.kv().tripped.store(false, SeqCst);
        shared.sched.request_done(h);
        if leased.is_empty() {
            // Idle workers poll like a drain's backoff, not in a busy loop
            // that would keep every maintenance run past its deadline.
            shared.sched.sleep(h, rng.range(200, 2_000));
            continue;
        }
        let mut acks = Vec::new();
        for l in &leased {
            check_delivery(&shared, &board, l);
            let fate = fate_of(&board, l);
            if rng.chance(0.05) {
                continue; // walk away: the lease expires, a rescue re-queues it
            }
            match fate {
                Fate::Dead => {
                    let _ = block_on(q.fail_leased(&l.task.id, &l.lease.id, "dead", false));
                }
                Fate::Flaky if l.task.attempt == 0 => {
                    let _ = block_on(q.fail_leased(&l.task.id, &l.lease.id, "flaky", true));
                }
                _ => acks.push(Ack {
                    id: l.task.id.clone(),
                    lease_id: l.lease.id.clone(),
                    output: json!({ "node": l.task.node_name, "attempt": l.task.attempt }),
                }),
            }
            q.kv().tripped.store(false, SeqCst);
            shared.sched.request_done(h);
        }
        if rng.chance(0.5) {
            let _ = block_on(q.ack_batch(acks));
        } else {
            for a in acks {
                let _ = block_on(q.ack(&a.id, &a.lease_id, a.output));
                q.kv().tripped.store(false, SeqCst);
                shared.sched.request_done(h);
            }
        }
        q.kv().tripped.store(false, SeqCst);
        shared.sched.request_done(h);
    }
    shared.sched.done(h);
}

fn plan_of<'a>(b: &'a Board, pipeline: &str) -> Option<&'a Planned> {
    b.plans
        .iter()
        .find(|p| p.spec.id.as_deref() == Some(pipeline))
}

fn fate_of(board: &Mutex<Board>, l: &LeasedTask) -> Fate {
    let b = board.lock().unwrap();
    let p = plan_of(&b, &l.task.pipeline_id).expect("a planned pipeline");
    let i: usize = l.task.node_name[1..].parse().expect("node n{i}");
    p.fates[i]
}

/// At delivery: every parent completed (or dead-lettered under
/// `continue`), and the task is the one created first.
fn check_delivery(shared: &Shared, board: &Mutex<Board>, l: &LeasedTask) {
    let c = checker(shared);
    let mut b = board.lock().unwrap();
    b.deliveries += 1;
    let Some(p) = plan_of(&b, &l.task.pipeline_id).cloned() else {
        b.violations
            .push(format!("{} belongs to no pipeline", l.task.id));
        return;
    };
    let id = p.spec.id.clone().unwrap();
    let view = block_on(c.pipeline(&id)).ok().flatten();
    let Some(view) = view else {
        b.violations.push(format!("{id} has no view"));
        return;
    };
    let node = p
        .spec
        .nodes
        .iter()
        .find(|n| n.name == l.task.node_name)
        .expect("a node of the plan");
    for parent in &node.depends_on {
        let state = view.node(parent).map(|n| n.state);
        let parent_task = view.node(parent).and_then(|n| n.task_id.clone());
        let continued = p.spec.on_failure == OnFailure::Continue;
        // Under `continue` a child started after its parent dead-lettered;
        // a redrive of that parent later does not take the child back.
        let redriven = parent_task.is_some_and(|t| b.redriven.contains(&t));
        let ok = match state {
            Some(NodeState::Completed) => true,
            Some(NodeState::DeadLetter) => continued,
            _ => continued && redriven,
        };
        if !ok {
            b.violations.push(format!(
                "{id}/{} delivered while its parent {parent} is {state:?}",
                node.name
            ));
        }
    }
    match block_on(c.task(&l.task.id)) {
        Ok(Some(info)) => {
            let first = *b
                .created
                .entry(l.task.id.clone())
                .or_insert(info.created_at);
            if first != info.created_at {
                b.violations.push(format!(
                    "{id}/{} was created twice (at {first} and {})",
                    node.name, info.created_at
                ));
            }
        }
        other => b
            .violations
            .push(format!("{id}/{}: delivered but {other:?}", node.name)),
    }
}

/// The end: every node final, as its fate and its ancestors' say.
///
/// First the system runs on a little with nobody working: the leases of
/// tasks a dequeue met in a cancelled pipeline but failed to dead-letter
/// expire, and the next dequeue dead-letters them. Nothing is acked, so a
/// node that was not final stays so.
fn check_end(shared: &Shared, board: &mut Board) {
    let clock = ManualClock::new(shared.sched.now());
    let c = KvWorkQueue::with_config(shared.store.clone(), config(), Arc::new(clock.clone()))
        .expect("valid config")
        .with_observer(Arc::new(super::hosts::Counted::default()));
    let timing = config().timing();
    for _ in 0..2 {
        clock.advance(config().default_lease_ms + timing.rescue_after_ms + timing.grace_ms);
        let _ = block_on(c.rescue());
        while !block_on(c.dequeue(&DequeueRequest::new("end", 100)))
            .unwrap_or_default()
            .is_empty()
        {}
    }
    let plans = board.plans.clone();
    for p in plans.iter().filter(|p| p.accepted) {
        let id = p.spec.id.clone().unwrap();
        let Ok(Some(v)) = block_on(c.pipeline(&id)) else {
            board.violations.push(format!("{id} is gone"));
            continue;
        };
        let graph = spin_work_queue::pipeline::Graph::build(&p.spec.nodes).unwrap();
        // What each node must end as, in dependency order.
        let mut want = vec![NodeState::Completed; p.fates.len()];
        for &i in &graph.order {
            let blocked = graph.parents[i].iter().any(|&q| match want[q] {
                NodeState::DeadLetter => p.spec.on_failure == OnFailure::SkipDependents,
                NodeState::Skipped => true,
                _ => false,
            });
            want[i] = if blocked {
                NodeState::Skipped
            } else if p.fates[i] == Fate::Dead {
                NodeState::DeadLetter
            } else {
                NodeState::Completed
            };
        }
        for (i, n) in v.nodes.iter().enumerate() {
            if !n.state.is_final() {
                let raw = n
                    .task_id
                    .as_ref()
                    .and_then(|t| shared.store.get(&format!("wq/t/{t}")).ok().flatten());
                board.violations.push(format!(
                    "{id}/{} never finished: {:?} (record: {})",
                    n.name,
                    n.state,
                    raw.map_or("none".into(), |r| String::from_utf8_lossy(&r).into_owned())
                ));
                continue;
            }
            if p.cancelled {
                continue; // any final state, depending on when the cancel landed
            }
            if n.state != want[i] {
                board.violations.push(format!(
                    "{id}/{} ended {:?} (attempt {:?}, error {:?}), expected {:?}",
                    n.name, n.state, n.attempt, n.error, want[i]
                ));
            }
            if let Some(task) = &n.task_id {
                if let Ok(Some(info)) = block_on(c.task(task)) {
                    if let Some(first) = board.created.get(task) {
                        if *first != info.created_at {
                            board
                                .violations
                                .push(format!("{id}/{} was created twice", n.name));
                        }
                    }
                    if matches!(info.status, TaskStatus::Completed { .. })
                        && n.state != NodeState::Completed
                    {
                        board
                            .violations
                            .push(format!("{id}/{} view and task disagree", n.name));
                    }
                }
            }
        }
        let expect = if want.iter().all(|s| *s == NodeState::Completed) {
            PipelineState::Completed
        } else {
            PipelineState::Failed
        };
        // A cancel that came after the pipeline finished leaves it so.
        let cancelled_late = p.cancelled && v.state == expect;
        if p.cancelled && v.state != PipelineState::Cancelled && !cancelled_late {
            board
                .violations
                .push(format!("{id} was cancelled and ended {:?}", v.state));
        } else if !p.cancelled && v.state != expect {
            board
                .violations
                .push(format!("{id} ended {:?}, expected {expect:?}", v.state));
        }
    }
}

/// Run seed `seed` on `store`.
pub fn run(seed: u64, store: StoreKind) -> PipelineOutcome {
    let timing = config().timing();
    let mut rng = Rng::new(seed ^ 0x9a9e);
    let hosts = 1 + WORKERS;
    let skews = skews(&mut rng, hosts, timing.clock_skew_ms);
    let chaos = Chaos {
        fault: 0.02,
        crash: 0.02,
        tick: 0.3,
        stall: 0.05,
        store_call_ms: timing.store_call_ms,
    };
    let shared = Shared::new(
        Sched::new(START_MS, &skews, rng.next(), chaos),
        store.open(),
    );
    let board = Arc::new(Mutex::new(Board {
        submitting: true,
        ..Board::default()
    }));
    let threads: Vec<_> = (0..hosts)
        .map(|h| {
            let (shared, board, seed) = (shared.clone(), board.clone(), rng.next());
            std::thread::spawn(move || {
                if h == 0 {
                    submitter(shared, board, seed);
                } else {
                    worker(h, shared, board, seed);
                }
            })
        })
        .collect();
    while shared.sched.step() != Decision::AllDone {
        shared.sched.wait_idle();
    }
    for t in threads {
        t.join().expect("host thread");
    }
    let mut b = board.lock().unwrap();
    check_end(&shared, &mut b);
    let nodes = b.plans.iter().map(|p| p.fates.len()).sum();
    let trace = shared.trace.lock().unwrap().render();
    PipelineOutcome {
        steps: shared.sched.steps(),
        nodes,
        deliveries: b.deliveries,
        violations: b.violations.clone(),
        trace,
    }
}
