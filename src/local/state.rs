//! The state behind [`LocalWorkQueue`](super::LocalWorkQueue)'s mutex and
//! every operation on it, synchronous and without I/O: each public-in-crate
//! method is one whole queue operation run under the lock.
//!
//! Indexes (every operation is O(batch · log n), never a scan of all tasks):
//!
//! | structure | holds |
//! | --- | --- |
//! | `tasks` | every task record, by id |
//! | `keys` | idempotency key → task id (until the task expires) |
//! | `ready` | due `Pending` task ids, in the order they became due |
//! | `scheduled` | delayed `Pending` and `Failed` tasks by (due time, sequence) |
//! | `leases` | `InProgress` tasks by (rescue time, id) |
//! | `dead` | `DeadLetter` tasks by the order they were dead-lettered |
//! | `results` | per pipeline, completed task ids in completion order |
//! | `finished` | completed and dead-lettered tasks by (finish time, sequence), for retention |

use crate::config::{QueueConfig, Timing};
use crate::error::{QueueError, Result};
use crate::ids::IdSource;
use crate::model::{
    validate_batch, validate_lease_ms, validate_output, DeadLetterEntry, DequeueRequest, Enqueued,
    FailOutcome, Lease, LeasedTask, NewTask, QueueStats, RescueReport, TaskInfo,
};
use crate::port::{TaskStatus, WorkTask};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// The error of a rescued task on its last attempt.
pub(crate) const LEASE_EXPIRED: &str = "lease expired";

/// One task and its bookkeeping.
#[derive(Debug)]
struct Record {
    /// The task; `attempt` is the attempt delivered last or to deliver next
    /// (see `docs/semantics.md`).
    task: WorkTask,
    status: TaskStatus,
    max_attempts: u32,
    created_at: u64,
    updated_at: u64,
    /// The current lease while `InProgress`; the lease that completed the
    /// task once `Completed` (so a repeated ack is recognised).
    lease: Option<Lease>,
    /// Position in `dead` while dead-lettered, and when it got there.
    dead: Option<(u64, u64)>,
    /// Key in `finished` once completed or dead-lettered.
    finished: Option<(u64, u64)>,
    /// The executor's route key when it is not the node name.
    executor: Option<String>,
}

impl Record {
    fn info(&self) -> TaskInfo {
        TaskInfo {
            task: self.task.clone(),
            status: self.status.clone(),
            max_attempts: self.max_attempts,
            created_at: self.created_at,
            updated_at: self.updated_at,
            lease: match self.status {
                TaskStatus::InProgress { .. } => self.lease.clone(),
                _ => None,
            },
            executor: self.executor.clone(),
        }
    }

    /// The expiry of `lease_id` if it is the lease of the running delivery.
    fn holds(&self, lease_id: &str) -> Option<u64> {
        match (&self.status, &self.lease) {
            (TaskStatus::InProgress { .. }, Some(l)) if l.id == lease_id => Some(l.expires_at),
            _ => None,
        }
    }
}

/// Task counts by state, kept up to date on every transition.
#[derive(Debug, Default)]
struct Counts([u64; 5]);

impl Counts {
    fn slot(status: &TaskStatus) -> usize {
        match status {
            TaskStatus::Pending => 0,
            TaskStatus::InProgress { .. } => 1,
            TaskStatus::Completed { .. } => 2,
            TaskStatus::Failed { .. } => 3,
            TaskStatus::DeadLetter { .. } => 4,
        }
    }

    fn stats(&self) -> QueueStats {
        let [pending, in_progress, completed, failed, dead_letter] = self.0;
        QueueStats {
            pending,
            in_progress,
            completed,
            failed,
            dead_letter,
            due: 0,
            set_aside: 0,
        }
    }
}

/// Everything a [`LocalWorkQueue`](super::LocalWorkQueue) holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    tasks: HashMap<String, Record>,
    keys: HashMap<String, String>,
    ready: VecDeque<String>,
    scheduled: BTreeMap<(u64, u64), String>,
    leases: BTreeSet<(u64, String)>,
    dead: BTreeMap<u64, String>,
    results: HashMap<String, VecDeque<String>>,
    finished: BTreeMap<(u64, u64), String>,
    counts: Counts,
    /// Source of the sequence numbers that order `scheduled`, `dead` and
    /// `finished`.
    seq: u64,
}

fn not_found(id: &str) -> QueueError {
    QueueError::NotFound { id: id.to_string() }
}

fn lease_lost(id: &str) -> QueueError {
    QueueError::LeaseLost { id: id.to_string() }
}

/// What an operation needs besides the state.
pub(crate) struct Env<'a> {
    pub config: &'a QueueConfig,
    pub timing: Timing,
    pub ids: &'a dyn IdSource,
    pub now: u64,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Move `id` to `status` (counts, `updated_at` and the retention index
    /// follow).
    fn transition(&mut self, id: &str, status: TaskStatus, now: u64) {
        let seq = self.next_seq();
        let Some(rec) = self.tasks.get_mut(id) else {
            return;
        };
        self.counts.0[Counts::slot(&rec.status)] -= 1;
        self.counts.0[Counts::slot(&status)] += 1;
        if let Some(key) = rec.finished.take() {
            self.finished.remove(&key);
        }
        if status.is_terminal() {
            rec.finished = Some((now, seq));
            self.finished.insert((now, seq), id.to_string());
        }
        rec.status = status;
        rec.updated_at = now;
    }

    /// End the running delivery of `id`: drop its lease from the index.
    fn release(&mut self, id: &str, timing: Timing) -> Option<Lease> {
        let lease = self.tasks.get_mut(id)?.lease.take()?;
        self.leases
            .remove(&(lease.expires_at + timing.rescue_after_ms, id.to_string()));
        Some(lease)
    }

    /// Dead-letter `id` with `error` at `now`.
    fn dead_letter(&mut self, id: &str, error: &str, now: u64) -> TaskStatus {
        let seq = self.next_seq();
        self.dead.insert(seq, id.to_string());
        if let Some(rec) = self.tasks.get_mut(id) {
            rec.dead = Some((seq, now));
        }
        let status = TaskStatus::DeadLetter {
            error: error.to_string(),
        };
        self.transition(id, status.clone(), now);
        status
    }

    /// Enqueue a batch, validated as a whole first.
    pub(crate) fn enqueue(&mut self, tasks: Vec<NewTask>, env: &Env) -> Result<Vec<Enqueued>> {
        validate_batch(&tasks)?;
        Ok(tasks
            .into_iter()
            .map(|t| self.enqueue_one(t, env))
            .collect())
    }

    /// Enqueue tasks built by the queue itself (pipeline nodes), skipping
    /// the batch rules: their parts were checked when they came in.
    pub(crate) fn insert(&mut self, tasks: Vec<NewTask>, env: &Env) -> Vec<Enqueued> {
        tasks
            .into_iter()
            .map(|t| self.enqueue_one(t, env))
            .collect()
    }

    fn enqueue_one(&mut self, t: NewTask, env: &Env) -> Enqueued {
        if let Some(id) = t.id.as_ref().filter(|id| self.tasks.contains_key(*id)) {
            return Enqueued {
                id: id.clone(),
                duplicate: true,
            };
        }
        let id = t.id.unwrap_or_else(|| env.ids.next_id());
        let key = t.idempotency_key.unwrap_or_else(|| id.clone());
        if let Some(existing) = self.keys.get(&key) {
            return Enqueued {
                id: existing.clone(),
                duplicate: true,
            };
        }
        self.keys.insert(key.clone(), id.clone());
        let record = Record {
            task: WorkTask {
                id: id.clone(),
                pipeline_id: t.pipeline_id,
                node_name: t.node_name,
                input: t.input,
                wave: t.wave,
                attempt: 0,
                idempotency_key: key,
            },
            status: TaskStatus::Pending,
            max_attempts: t.max_attempts.unwrap_or(env.config.default_max_attempts),
            created_at: env.now,
            updated_at: env.now,
            lease: None,
            dead: None,
            finished: None,
            executor: t.executor,
        };
        self.tasks.insert(id.clone(), record);
        self.counts.0[Counts::slot(&TaskStatus::Pending)] += 1;
        if t.delay_ms == 0 {
            self.ready.push_back(id.clone());
        } else {
            let seq = self.next_seq();
            self.scheduled
                .insert((env.now.saturating_add(t.delay_ms), seq), id.clone());
        }
        Enqueued {
            id,
            duplicate: false,
        }
    }

    /// Rescue leases past their rescue time, promote what became due, and
    /// forget finished tasks past their retention.
    pub(crate) fn maintain(&mut self, env: &Env) -> RescueReport {
        let now = env.now;
        let mut report = RescueReport::default();
        while let Some((rescue_at, id)) = self.leases.first().cloned() {
            if rescue_at > now {
                break;
            }
            self.leases.pop_first();
            let Some(rec) = self.tasks.get_mut(&id) else {
                continue;
            };
            let running = matches!(rec.status, TaskStatus::InProgress { .. })
                && rec
                    .lease
                    .as_ref()
                    .is_some_and(|l| l.expires_at + env.timing.rescue_after_ms == rescue_at);
            if !running {
                continue; // a stale index entry
            }
            rec.lease = None;
            if rec.task.attempt + 1 < rec.max_attempts {
                rec.task.attempt += 1;
                self.transition(&id, TaskStatus::Pending, now);
                self.ready.push_back(id);
                report.rescued += 1;
            } else {
                self.dead_letter(&id, LEASE_EXPIRED, now);
                report.dead_lettered += 1;
            }
        }
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let id = entry.remove();
            let Some(rec) = self.tasks.get_mut(&id) else {
                continue;
            };
            match rec.status {
                TaskStatus::Pending => {}
                TaskStatus::Failed { .. } => {
                    rec.task.attempt += 1;
                    self.transition(&id, TaskStatus::Pending, now);
                }
                _ => continue, // only delayed tasks and retries are scheduled
            }
            self.ready.push_back(id);
            report.promoted += 1;
        }
        self.expire(env);
        report
    }

    /// Forget every finished task whose retention has passed.
    fn expire(&mut self, env: &Env) {
        let retention = env.config.retention_ms;
        if retention == 0 {
            return;
        }
        while let Some(entry) = self.finished.first_entry() {
            if entry.key().0 + retention > env.now {
                break;
            }
            let id = entry.remove();
            let Some(rec) = self.tasks.remove(&id) else {
                continue;
            };
            self.counts.0[Counts::slot(&rec.status)] -= 1;
            self.keys.remove(&rec.task.idempotency_key);
            if let Some((seq, _)) = rec.dead {
                self.dead.remove(&seq);
            }
            if let Some(ids) = self.results.get_mut(&rec.task.pipeline_id) {
                if ids.front() == Some(&id) {
                    ids.pop_front();
                } else {
                    ids.retain(|i| *i != id);
                }
                if ids.is_empty() {
                    self.results.remove(&rec.task.pipeline_id);
                }
            }
        }
    }

    /// Lease up to `req.max` due tasks (after maintenance).
    pub(crate) fn dequeue(&mut self, req: &DequeueRequest, env: &Env) -> Result<Vec<LeasedTask>> {
        req.validate()?;
        self.maintain(env);
        let lease_ms = req.lease_ms.unwrap_or(env.config.default_lease_ms);
        let mut out = Vec::new();
        while out.len() < req.max as usize {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(rec) = self.tasks.get_mut(&id) else {
                continue;
            };
            if rec.status != TaskStatus::Pending {
                continue;
            }
            let lease = Lease {
                id: env.ids.next_id(),
                expires_at: env.now.saturating_add(lease_ms),
            };
            rec.lease = Some(lease.clone());
            let task = rec.task.clone();
            let executor = rec.executor.clone();
            self.leases
                .insert((lease.expires_at + env.timing.rescue_after_ms, id.clone()));
            let worker_id = req.worker_id.clone();
            self.transition(&id, TaskStatus::InProgress { worker_id }, env.now);
            out.push(LeasedTask {
                task,
                lease,
                executor,
            });
        }
        Ok(out)
    }

    /// The running lease's expiry, if `lease_id` may still finish `id`:
    /// until the expiry plus `late_finish_ms`.
    fn finishing(&self, id: &str, lease_id: &str, env: &Env) -> Result<()> {
        let rec = self.tasks.get(id).ok_or_else(|| not_found(id))?;
        match rec.holds(lease_id) {
            Some(expiry) if env.now < expiry + env.timing.late_finish_ms => Ok(()),
            _ => Err(lease_lost(id)),
        }
    }

    /// Complete `id` if `lease_id` is its running lease.
    pub(crate) fn ack(
        &mut self,
        id: &str,
        lease_id: &str,
        output: Value,
        env: &Env,
    ) -> Result<TaskStatus> {
        validate_output(&output)?;
        let rec = self.tasks.get(id).ok_or_else(|| not_found(id))?;
        if let TaskStatus::Completed { .. } = rec.status {
            return match &rec.lease {
                Some(l) if l.id == lease_id => Ok(rec.status.clone()),
                _ => Err(lease_lost(id)),
            };
        }
        self.finishing(id, lease_id, env)?;
        let pipeline = rec.task.pipeline_id.clone();
        // Keep the lease on the record (out of the rescue index) so that a
        // repeated ack with it is recognised.
        if let Some(lease) = self.release(id, env.timing) {
            if let Some(rec) = self.tasks.get_mut(id) {
                rec.lease = Some(lease);
            }
        }
        let status = TaskStatus::Completed { output };
        self.transition(id, status.clone(), env.now);
        self.results
            .entry(pipeline)
            .or_default()
            .push_back(id.to_string());
        Ok(status)
    }

    /// Fail `id` if `lease_id` is its running lease.
    pub(crate) fn fail(
        &mut self,
        id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
        env: &Env,
    ) -> Result<FailOutcome> {
        self.finishing(id, lease_id, env)?;
        let rec = &self.tasks[id];
        let (attempt, max_attempts) = (rec.task.attempt, rec.max_attempts);
        self.release(id, env.timing);
        if retryable && attempt + 1 < max_attempts {
            let status = TaskStatus::Failed {
                error: error.to_string(),
                attempt,
            };
            self.transition(id, status.clone(), env.now);
            let due_at = env
                .now
                .saturating_add(env.config.retry.backoff_ms(id, attempt));
            let seq = self.next_seq();
            self.scheduled.insert((due_at, seq), id.to_string());
            Ok(FailOutcome {
                status,
                retry_at: Some(due_at),
            })
        } else {
            Ok(FailOutcome {
                status: self.dead_letter(id, error, env.now),
                retry_at: None,
            })
        }
    }

    /// Extend the live lease `lease_id` of `id` (never shortening it);
    /// returns the new expiry.
    pub(crate) fn heartbeat(
        &mut self,
        id: &str,
        lease_id: &str,
        lease_ms: Option<u64>,
        env: &Env,
    ) -> Result<u64> {
        let lease_ms = lease_ms.unwrap_or(env.config.default_lease_ms);
        validate_lease_ms(lease_ms)?;
        let rec = self.tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        let Some(old) = rec.holds(lease_id).filter(|&e| env.now < e) else {
            return Err(lease_lost(id));
        };
        let new = old.max(env.now.saturating_add(lease_ms));
        if let Some(lease) = rec.lease.as_mut() {
            lease.expires_at = new;
        }
        let rescue = env.timing.rescue_after_ms;
        self.leases.remove(&(old + rescue, id.to_string()));
        self.leases.insert((new + rescue, id.to_string()));
        Ok(new)
    }

    /// Everything known about `id`.
    pub(crate) fn info(&self, id: &str) -> Option<TaskInfo> {
        self.tasks.get(id).map(Record::info)
    }

    /// Counts by state.
    pub(crate) fn stats(&self) -> QueueStats {
        QueueStats {
            due: self
                .ready
                .iter()
                .filter(|id| {
                    self.tasks
                        .get(*id)
                        .is_some_and(|r| r.status == TaskStatus::Pending)
                })
                .count() as u64,
            ..self.counts.stats()
        }
    }

    /// The `limit` most recent dead letters, newest first.
    pub(crate) fn dead_letters(&self, limit: usize) -> Vec<DeadLetterEntry> {
        self.dead
            .values()
            .rev()
            .filter_map(|id| self.tasks.get(id))
            .take(limit)
            .filter_map(|rec| match (&rec.status, rec.dead) {
                (TaskStatus::DeadLetter { error }, Some((_, failed_at))) => Some(DeadLetterEntry {
                    task: rec.task.clone(),
                    error: error.clone(),
                    failed_at,
                }),
                _ => None,
            })
            .collect()
    }

    /// Put dead-lettered `id` back in the queue as attempt 0.
    pub(crate) fn redrive(&mut self, id: &str, env: &Env) -> Result<TaskStatus> {
        let rec = self.tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        let Some((seq, _)) = rec.dead else {
            return Err(QueueError::WrongState {
                id: id.to_string(),
                state: state_name(&rec.status).to_string(),
                reason: "only dead-lettered tasks can be redriven".to_string(),
            });
        };
        rec.dead = None;
        rec.task.attempt = 0;
        self.dead.remove(&seq);
        self.transition(id, TaskStatus::Pending, env.now);
        self.ready.push_back(id.to_string());
        Ok(TaskStatus::Pending)
    }

    /// `(node_name, output)` of the completed tasks of `pipeline_id`, in
    /// completion order.
    pub(crate) fn results(&self, pipeline_id: &str) -> Vec<(String, Value)> {
        let Some(ids) = self.results.get(pipeline_id) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.tasks.get(id))
            .filter_map(|rec| match &rec.status {
                TaskStatus::Completed { output } => {
                    Some((rec.task.node_name.clone(), output.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// A status in words, for [`QueueError::WrongState`].
pub(crate) fn state_name(status: &TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::InProgress { .. } => "in progress",
        TaskStatus::Completed { .. } => "completed",
        TaskStatus::Failed { .. } => "failed",
        TaskStatus::DeadLetter { .. } => "dead-lettered",
    }
}
