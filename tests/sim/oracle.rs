//! The invariants, checked after every step against what the store holds
//! (read by a checker that never yields) and against what the hosts were
//! told.
//!
//! Safety, after every step, for every task the step wrote:
//! - nothing accepted is lost: an accepted task's record exists until the
//!   retention period after it finished;
//! - at most one live lease: a task leaves a lease (a rescue, a new lease)
//!   only once no host can still finish with it (its expiry plus
//!   `late_finish_ms`, seen from the fastest clock), and a lease that left
//!   never comes back; a live lease is never answered `LeaseLost`;
//! - a completed task stays completed with the same output, and is in its
//!   pipeline's results with that output;
//! - idempotency: an enqueue of a known key answers the existing task.
//!
//! Liveness, at the end (`World::settle`): every task that exists ends
//! Completed or DeadLetter.

use serde_json::Value;
use spin_work_queue::config::Timing;
use spin_work_queue::{KvWorkQueue, LeasedQueue, QueueError, TaskInfo, TaskStatus};
use std::collections::{BTreeMap, BTreeSet};

/// What a task looked like when last observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Obs {
    Pending,
    InProgress { lease: String, expiry: u64 },
    Completed(Value),
    Failed,
    Dead(String),
}

impl Obs {
    fn of(info: &TaskInfo) -> Self {
        match &info.status {
            TaskStatus::Pending => Obs::Pending,
            TaskStatus::InProgress { .. } => {
                let lease = info
                    .lease
                    .as_ref()
                    .expect("an in-progress task has a lease");
                Obs::InProgress {
                    lease: lease.id.clone(),
                    expiry: lease.expires_at,
                }
            }
            TaskStatus::Completed { output } => Obs::Completed(output.clone()),
            TaskStatus::Failed { .. } => Obs::Failed,
            TaskStatus::DeadLetter { error } => Obs::Dead(error.clone()),
        }
    }

    fn terminal(&self) -> bool {
        matches!(self, Obs::Completed(_) | Obs::Dead(_))
    }
}

/// One task as the oracle knows it.
#[derive(Debug, Default)]
pub struct Known {
    pub pipeline: String,
    pub node: String,
    pub accepted: bool,
    pub last: Option<Obs>,
    /// When it was last seen finishing (its `updated_at`, host clock).
    pub finished_at: Option<u64>,
    /// Leases it left.
    pub retired: BTreeSet<String>,
    /// Its record was corrupted from outside on purpose.
    pub poisoned: bool,
    /// Deleted by the retention sweep.
    pub expired: bool,
}

/// The oracle of one run.
pub struct Oracle {
    pub timing: Timing,
    pub retention_ms: u64,
    pub tasks: BTreeMap<String, Known>,
    pub violations: Vec<String>,
}

/// The error the engine reports for a deliberately corrupted record.
fn corrupt(e: &QueueError) -> bool {
    matches!(e, QueueError::Corrupt { .. })
}

impl Oracle {
    pub fn new(timing: Timing, retention_ms: u64) -> Self {
        Self {
            timing,
            retention_ms,
            tasks: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    pub fn violation(&mut self, now: u64, what: String) {
        self.violations.push(format!("t={now}: {what}"));
    }

    /// A task was accepted by an enqueue.
    pub fn accepted(&mut self, id: &str, pipeline: &str, node: &str) {
        let k = self.tasks.entry(id.to_string()).or_default();
        k.accepted = true;
        k.pipeline = pipeline.to_string();
        k.node = node.to_string();
    }

    /// Look at task `id` in the store at real time `now`. A lease
    /// expiring at `e` may still finish its task until `e +
    /// late_finish_ms + clock_skew_ms / 2` (a host whose clock lags).
    pub fn observe<K>(&mut self, q: &KvWorkQueue<K>, id: &str, now: u64)
    where
        K: spin_work_queue::kv::KeyValue + Send + Sync,
    {
        let read = block_on(q.task(id));
        let info = match read {
            Err(e) if corrupt(&e) => {
                if !self.tasks.get(id).is_some_and(|k| k.poisoned) {
                    self.violation(now, format!("{id} unreadable: {e}"));
                }
                return;
            }
            Err(e) => panic!("the checker's store failed: {e}"),
            Ok(info) => info,
        };
        let grace = (self.timing.late_finish_ms, self.timing.clock_skew_ms / 2);
        let dead_at = |expiry: u64| expiry + grace.0 + grace.1;
        // A holder's last write may land up to a store call after its check.
        let last_holder_write = |expiry: u64| dead_at(expiry) + self.timing.store_call_ms;
        let known = self.tasks.entry(id.to_string()).or_default();
        let Some(info) = info else {
            let expired_ok = known
                .finished_at
                .is_some_and(|f| now + self.timing.clock_skew_ms / 2 >= f + self.retention_ms);
            if known.last.is_some() && !known.expired && !expired_ok && !known.poisoned {
                let last = known.last.clone();
                self.violation(now, format!("{id} lost (last seen {last:?})"));
            }
            let known = self.tasks.get_mut(id).expect("known");
            if known.last.is_some() {
                known.expired = true;
            }
            return;
        };
        known.pipeline = info.task.pipeline_id.clone();
        known.node = info.task.node_name.clone();
        let obs = Obs::of(&info);
        let last = known.last.replace(obs.clone());
        if obs.terminal() && known.finished_at.is_none() {
            known.finished_at = Some(info.updated_at);
        }
        if !obs.terminal() {
            known.finished_at = None;
        }
        let mut problems = Vec::new();
        match (&last, &obs) {
            (Some(Obs::Completed(a)), Obs::Completed(b)) if a != b => {
                problems.push(format!("{id} completed with {a} then {b}"));
            }
            (Some(Obs::Completed(a)), other) if !matches!(other, Obs::Completed(_)) => {
                problems.push(format!("{id} completed with {a}, then {other:?}"));
            }
            (Some(Obs::InProgress { lease, expiry }), next) => {
                // Outputs in the simulation name the lease that acked.
                let completed_by = |o: &Value| o["lease"].as_str() == Some(lease.as_str());
                let finished_by_holder = match next {
                    Obs::Completed(o) => completed_by(o),
                    Obs::Failed => true,
                    Obs::Dead(e) => e != "lease expired",
                    _ => false,
                };
                // Maintenance rescued it, or (seen coarsely, after faults
                // stopped) it went on to another lease.
                let left = match next {
                    Obs::InProgress { lease: l, .. } => l != lease,
                    Obs::Pending => true,
                    Obs::Dead(e) => e == "lease expired",
                    Obs::Completed(o) => !completed_by(o),
                    Obs::Failed => false,
                };
                if left && now < dead_at(*expiry) {
                    problems.push(format!(
                        "{id} taken from lease {lease} at {now}, live until {}",
                        dead_at(*expiry)
                    ));
                }
                if finished_by_holder && now > last_holder_write(*expiry) {
                    problems.push(format!(
                        "{id} finished by lease {lease} at {now}, dead since {}",
                        dead_at(*expiry)
                    ));
                }
                if left || finished_by_holder {
                    known.retired.insert(lease.clone());
                }
            }
            _ => {}
        }
        if let Obs::InProgress { lease, .. } = &obs {
            if known.retired.contains(lease) {
                problems.push(format!("{id}: lease {lease} came back"));
            }
        }
        let check_results = matches!(obs, Obs::Completed(_));
        let (pipeline, node) = (known.pipeline.clone(), known.node.clone());
        for p in problems {
            self.violation(now, p);
        }
        if let (true, Obs::Completed(output)) = (check_results, &obs) {
            let results = block_on(q.results(&pipeline)).expect("results");
            let found: Vec<&Value> = results
                .iter()
                .filter(|(n, _)| *n == node)
                .map(|(_, o)| o)
                .collect();
            if found != vec![output] {
                self.violation(
                    now,
                    format!(
                        "{id} completed with {output} but results of {pipeline} hold {found:?}"
                    ),
                );
            }
        }
    }

    /// A host was told `LeaseLost` for `lease` of `id` when its clock read
    /// `clock`: wrong if that lease is the task's and had not expired.
    pub fn lease_lost(&mut self, id: &str, lease: &str, clock: u64, now: u64) {
        if let Some(Obs::InProgress { lease: l, expiry }) =
            self.tasks.get(id).and_then(|k| k.last.clone())
        {
            if l == lease && clock < expiry {
                self.violation(now, format!("{id}: live lease {lease} answered lease_lost"));
            }
        }
    }

    /// Every task not finished (for the liveness check).
    pub fn unfinished(&self) -> Vec<(String, Option<Obs>)> {
        self.tasks
            .iter()
            .filter(|(_, k)| !k.poisoned && !k.expired)
            .filter(|(_, k)| !k.last.as_ref().is_some_and(Obs::terminal))
            .map(|(id, k)| (id.clone(), k.last.clone()))
            .collect()
    }
}

/// Run a future of the engine, which never waits on anything (its store
/// calls are synchronous), to completion.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("an engine call waited"),
    }
}
