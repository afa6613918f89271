//! The drain gate and push dispatch under the scheduler: producers enqueue
//! one task per request and push a drain when the gate admits one (some
//! pushes are lost: refused, so their place is given back); worker hosts
//! run each pushed drain with the library's `run_drain` — renewal across
//! epochs, release, the look for work due, hand-over — and push the next.
//! Every store operation is a scheduling point, clocks are skewed and
//! requests stall.
//!
//! Checked: of the drains executing at any moment, at most `max_drains`
//! were admitted in any one epoch of the gate (drains alive together were
//! counted together), and once producers stop and no push is left, every
//! task is completed — with no scheduler or rescue calling in: nothing
//! waits for traffic that never comes.

use super::oracle::block_on;
use super::rng::Rng;
use super::sched::{skews, Chaos, Decision, Sched};
use super::store::{Shared, SimClock, SimKv, StoreKind};
use async_trait::async_trait;
use spin_work_queue::http::{Request, Response};
use spin_work_queue::worker::{
    accept_drain, run_drain, DrainSettings, Executor, ExecutorReply, ExecutorRoutes,
};
use spin_work_queue::{
    dispatch, KvWorkQueue, LeasedQueue, ManualClock, NewTask, QueueConfig, QueueError,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Virtual time at the start.
const START_MS: u64 = 1_700_000_000_000;
const PRODUCERS: usize = 2;
const WORKERS: usize = 3;
const TASKS_PER_PRODUCER: u64 = 40;

/// What each host gets.
#[derive(Clone)]
struct World {
    shared: Arc<Shared>,
    board: Arc<Mutex<Board>>,
    config: QueueConfig,
    /// `max_drains`.
    max: u32,
}

/// What the hosts share besides the store.
#[derive(Default)]
struct Board {
    /// Pushed drains not started yet.
    mailbox: VecDeque<Request>,
    producers_left: usize,
    /// Workers inside a drain.
    draining: usize,
    /// The epoch each worker's current drain was admitted in.
    admitted: BTreeMap<usize, u64>,
    /// Hosts whose drain executed a task and has not ended.
    executing: BTreeSet<usize>,
    most_executing: usize,
    produced: Vec<String>,
    violations: Vec<String>,
}

/// What a dispatch run found.
#[derive(Debug)]
pub struct DispatchOutcome {
    pub steps: u64,
    pub tasks: usize,
    pub drains_at_once: usize,
    pub violations: Vec<String>,
    pub trace: String,
}

struct SimExecutor {
    host: usize,
    shared: Arc<Shared>,
    board: Arc<Mutex<Board>>,
    work_ms: u64,
    max: u32,
}

#[async_trait(?Send)]
impl Executor for SimExecutor {
    async fn call(&self, req: Request, _timeout_ms: u64) -> ExecutorReply {
        {
            let mut b = self.board.lock().unwrap();
            b.executing.insert(self.host);
            b.most_executing = b.most_executing.max(b.executing.len());
            let mut per_epoch: BTreeMap<u64, u32> = BTreeMap::new();
            for h in &b.executing {
                *per_epoch.entry(b.admitted[h]).or_default() += 1;
            }
            if let Some((epoch, n)) = per_epoch.into_iter().find(|(_, n)| *n > self.max) {
                let max = self.max;
                b.violations.push(format!(
                    "{n} drains admitted in epoch {epoch} execute at once (at most {max})"
                ));
            }
        }
        self.shared.sched.sleep(self.host, self.work_ms);
        ExecutorReply::Answered(Response {
            status: 200,
            headers: Vec::new(),
            body: req.body,
        })
    }
}

fn queue(shared: &Arc<Shared>, host: usize, config: &QueueConfig) -> KvWorkQueue<SimKv> {
    let kv = SimKv {
        host,
        shared: shared.clone(),
        tripped: Default::default(),
    };
    let clock = Arc::new(SimClock {
        host,
        shared: shared.clone(),
    });
    KvWorkQueue::with_config(kv, config.clone(), clock)
        .expect("valid config")
        .with_observer(Arc::new(super::hosts::Counted::default()))
}

/// Send `push` to the mailbox, tried [`dispatch::PUSH_TRIES`] times like
/// the components do; while producers run, each try is lost with
/// probability 0.1 (then, when all are, the place is given back). Once
/// they stopped the network is sound.
fn deliver(
    q: &KvWorkQueue<SimKv>,
    board: &Mutex<Board>,
    rng: &mut Rng,
    push: Request,
    ticket: spin_work_queue::Ticket,
) {
    let accepted = {
        let mut b = board.lock().unwrap();
        let lossy = b.producers_left > 0;
        let accepted = (0..dispatch::PUSH_TRIES).any(|_| !(lossy && rng.chance(0.1)));
        if accepted {
            b.mailbox.push_back(push);
        }
        accepted
    };
    block_on(dispatch::pushed(q, ticket, accepted)).expect("release");
}

/// `op`, again while the store answers too slowly to be safe.
fn retried<T>(mut op: impl FnMut() -> Result<T, QueueError>) -> Result<T, QueueError> {
    loop {
        match op() {
            Err(QueueError::TooSlow(_)) => continue,
            other => return other,
        }
    }
}

fn producer(h: usize, world: World, seed: u64) {
    let World {
        shared,
        board,
        config,
        max,
    } = world;
    let mut rng = Rng::new(seed);
    let q = queue(&shared, h, &config);
    shared.sched.start(h);
    for n in 0..TASKS_PER_PRODUCER {
        let id = format!("d{h}x{n}");
        let task = NewTask {
            id: Some(id.clone()),
            ..NewTask::new("dispatch", "echo", serde_json::json!({ "n": n }))
        };
        // A slow store refuses with nothing written: the caller retries.
        let enqueued = retried(|| block_on(q.enqueue_batch(vec![task.clone()])));
        if let Err(e) = enqueued {
            board
                .lock()
                .unwrap()
                .violations
                .push(format!("enqueue {id}: {e}"));
            continue;
        }
        board.lock().unwrap().produced.push(id);
        let admitted = retried(|| block_on(dispatch::admit_for_push(&q, max)));
        if let Some(ticket) = admitted.expect("the gate answers") {
            let push = dispatch::push_request("/worker/drain", ticket, None);
            deliver(&q, &board, &mut rng, push, ticket);
        }
        shared.sched.request_done(h);
        if rng.chance(0.5) {
            // Bursts, and quiet spells longer than an epoch.
            let pause = if rng.chance(0.1) {
                rng.range(5_000, 25_000)
            } else {
                rng.range(1, 300)
            };
            shared.sched.sleep(h, pause);
        }
    }
    let last = {
        let mut b = board.lock().unwrap();
        b.producers_left -= 1;
        b.producers_left == 0
    };
    if last {
        // The store recovers: what the drains in flight (and the drains
        // they hand over to) do from here must finish every task.
        shared
            .sched
            .set_chaos(Chaos::calm(config.timing().store_call_ms));
    }
    shared.sched.done(h);
}

fn worker(h: usize, world: World, seed: u64) {
    let World {
        shared,
        board,
        config,
        max,
    } = world;
    let mut rng = Rng::new(seed);
    let q = queue(&shared, h, &config);
    let clock = Arc::new(SimClock {
        host: h,
        shared: shared.clone(),
    });
    let settings = DrainSettings::new(
        format!("w{h}"),
        ExecutorRoutes::default(),
        25_000,
        30_000,
        clock,
    )
    .with_max_drains(max)
    .awaiting_retries(config.maintenance_period_ms)
    .recovering(&config.timing(), config.maintenance_period_ms);
    let executor = SimExecutor {
        host: h,
        shared: shared.clone(),
        board: board.clone(),
        work_ms: rng.range(1, 200),
        max,
    };
    shared.sched.start(h);
    loop {
        let next = {
            let mut b = board.lock().unwrap();
            match b.mailbox.pop_front() {
                Some(push) => {
                    b.draining += 1;
                    Some(push)
                }
                None if b.producers_left == 0 && b.draining == 0 => break,
                None => None,
            }
        };
        let Some(push) = next else {
            shared.sched.sleep(h, 50);
            continue;
        };
        let call = accept_drain(&push, None, 1 << 20).expect("a pushed drain is valid");
        let epoch = call.params.ticket.expect("pushed with a ticket").epoch;
        board.lock().unwrap().admitted.insert(h, epoch);
        let outcome = block_on(run_drain(&q, &executor, &settings, None, &call));
        if outcome.response.status != 200 {
            let why = String::from_utf8_lossy(&outcome.response.body).into_owned();
            board
                .lock()
                .unwrap()
                .violations
                .push(format!("drain on h{h} failed: {why}"));
        }
        {
            let mut b = board.lock().unwrap();
            b.executing.remove(&h);
            b.draining -= 1;
        }
        if let Some(next) = outcome.follow_up {
            deliver(&q, &board, &mut rng, next.request, next.ticket);
        }
        shared.sched.request_done(h);
    }
    shared.sched.done(h);
}

/// Run seed `seed` on `store`.
pub fn run(seed: u64, store: StoreKind) -> DispatchOutcome {
    let config = QueueConfig {
        maintenance_period_ms: 100,
        ..QueueConfig::default()
    }
    .validated()
    .expect("valid config");
    let timing = config.timing();
    let mut rng = Rng::new(seed ^ 0xd15a);
    let hosts = PRODUCERS + WORKERS;
    let skews = skews(&mut rng, hosts, timing.clock_skew_ms);
    let chaos = Chaos {
        stall: 0.05,
        ..Chaos::calm(timing.store_call_ms)
    };
    let shared = Shared::new(
        Sched::new(START_MS, &skews, rng.next(), chaos),
        store.open(),
    );
    let board = Arc::new(Mutex::new(Board {
        producers_left: PRODUCERS,
        ..Board::default()
    }));
    let max = 1 + (seed % 3) as u32;
    let world = World {
        shared: shared.clone(),
        board: board.clone(),
        config: config.clone(),
        max,
    };
    let threads: Vec<_> = (0..hosts)
        .map(|h| {
            let (world, seed) = (world.clone(), rng.next());
            std::thread::spawn(move || {
                if h < PRODUCERS {
                    producer(h, world, seed);
                } else {
                    worker(h, world, seed);
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
    let steps = shared.sched.steps();
    let checker = KvWorkQueue::with_config(
        shared.store.clone(),
        config,
        Arc::new(ManualClock::new(shared.sched.now())),
    )
    .expect("valid config");
    let mut b = board.lock().unwrap();
    let produced = b.produced.clone();
    for id in &produced {
        match block_on(checker.task(id)) {
            Ok(Some(info))
                if matches!(info.status, spin_work_queue::TaskStatus::Completed { .. }) => {}
            other => b.violations.push(format!(
                "{id} is not completed once no push is left: {:?}",
                other.map(|i| i.map(|i| i.status))
            )),
        }
    }
    let trace = shared.trace.lock().unwrap().render();
    DispatchOutcome {
        steps,
        tasks: produced.len(),
        drains_at_once: b.most_executing,
        violations: b.violations.clone(),
        trace,
    }
}
