//! The state behind [`LocalWorkQueue`](super::LocalWorkQueue)'s mutex and
//! every operation on it, synchronous and without I/O: each public-in-crate
//! method is one whole queue operation run under the lock.
//!
//! Indexes (every operation is O(batch · log n), never a scan of all tasks):
//!
//! | structure | holds |
//! | --- | --- |
//! | `tasks` | every task record, by id |
//! | `keys` | idempotency key → task id (kept forever) |
//! | `ready` | due `Pending` task ids, in the order they became due |
//! | `scheduled` | delayed `Pending` and `Failed` tasks by (due time, sequence) |
//! | `leases` | `InProgress` tasks by (lease expiry, id) |
//! | `dead` | `DeadLetter` tasks by the order they were dead-lettered |
//! | `results` | per pipeline, completed task ids in completion order |

use crate::config::QueueConfig;
use crate::error::{QueueError, Result};
use crate::model::{
    generate_id, validate_lease_ms, DeadLetterEntry, DequeueRequest, Enqueued, Lease, LeasedTask,
    NewTask, QueueStats, RescueReport, TaskInfo,
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
        }
    }

    /// Whether `lease_id` is the lease of the task's running delivery.
    fn holds(&self, lease_id: &str) -> bool {
        matches!(self.status, TaskStatus::InProgress { .. })
            && self.lease.as_ref().is_some_and(|l| l.id == lease_id)
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

    fn moved(&mut self, from: &TaskStatus, to: &TaskStatus) {
        self.0[Self::slot(from)] -= 1;
        self.0[Self::slot(to)] += 1;
    }

    fn stats(&self) -> QueueStats {
        let [pending, in_progress, completed, failed, dead_letter] = self.0;
        QueueStats {
            pending,
            in_progress,
            completed,
            failed,
            dead_letter,
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
    results: HashMap<String, Vec<String>>,
    /// Leases taken through the port's `try_dequeue`, by task id.
    port_leases: HashMap<String, String>,
    counts: Counts,
    /// Source of the sequence numbers that order `scheduled` and `dead`.
    seq: u64,
}

fn not_found(id: &str) -> QueueError {
    QueueError::NotFound { id: id.to_string() }
}

fn lease_lost(id: &str) -> QueueError {
    QueueError::LeaseLost { id: id.to_string() }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Move `id` to `status` (counts and `updated_at` follow).
    fn transition(&mut self, id: &str, status: TaskStatus, now: u64) {
        if let Some(rec) = self.tasks.get_mut(id) {
            self.counts.moved(&rec.status, &status);
            rec.status = status;
            rec.updated_at = now;
        }
    }

    /// Queue `id` for delivery at `due_at`: at the back of `ready` when it
    /// is due already, else in `scheduled`.
    fn schedule(&mut self, id: String, due_at: u64, now: u64) {
        if due_at <= now {
            self.ready.push_back(id);
        } else {
            let seq = self.next_seq();
            self.scheduled.insert((due_at, seq), id);
        }
    }

    /// End the running delivery of `id`: drop its lease from the index.
    fn release(&mut self, id: &str) -> Option<Lease> {
        let lease = self.tasks.get_mut(id)?.lease.take()?;
        self.leases.remove(&(lease.expires_at, id.to_string()));
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

    /// Enqueue a validated-as-a-whole batch.
    pub(crate) fn enqueue(
        &mut self,
        tasks: Vec<NewTask>,
        config: &QueueConfig,
        now: u64,
    ) -> Result<Vec<Enqueued>> {
        if tasks.is_empty() || tasks.len() > crate::config::MAX_ENQUEUE_BATCH {
            return Err(QueueError::Invalid(format!(
                "a batch holds 1..={} tasks, got {}",
                crate::config::MAX_ENQUEUE_BATCH,
                tasks.len()
            )));
        }
        for (i, t) in tasks.iter().enumerate() {
            t.validate().map_err(|e| match e {
                QueueError::Invalid(m) => QueueError::Invalid(format!("task #{i}: {m}")),
                other => other,
            })?;
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(self.enqueue_one(t, config, now));
        }
        Ok(out)
    }

    fn enqueue_one(&mut self, t: NewTask, config: &QueueConfig, now: u64) -> Enqueued {
        if let Some(id) = t.id.as_ref().filter(|id| self.tasks.contains_key(*id)) {
            return Enqueued {
                id: id.clone(),
                duplicate: true,
            };
        }
        let id = t.id.unwrap_or_else(generate_id);
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
            max_attempts: t.max_attempts.unwrap_or(config.default_max_attempts),
            created_at: now,
            updated_at: now,
            lease: None,
            dead: None,
        };
        self.tasks.insert(id.clone(), record);
        self.counts.0[Counts::slot(&TaskStatus::Pending)] += 1;
        self.schedule(id.clone(), now.saturating_add(t.delay_ms), now);
        Enqueued {
            id,
            duplicate: false,
        }
    }

    /// Rescue expired leases, then promote what became due.
    pub(crate) fn maintain(&mut self, now: u64) -> RescueReport {
        let mut report = RescueReport::default();
        while let Some((expires_at, id)) = self.leases.first().cloned() {
            if expires_at > now {
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
                    .is_some_and(|l| l.expires_at == expires_at);
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
        report
    }

    /// Lease up to `req.max` due tasks (after maintenance).
    pub(crate) fn dequeue(
        &mut self,
        req: &DequeueRequest,
        config: &QueueConfig,
        now: u64,
    ) -> Result<Vec<LeasedTask>> {
        req.validate()?;
        self.maintain(now);
        let lease_ms = req.lease_ms.unwrap_or(config.default_lease_ms);
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
                id: generate_id(),
                expires_at: now.saturating_add(lease_ms),
            };
            rec.lease = Some(lease.clone());
            let task = rec.task.clone();
            self.leases.insert((lease.expires_at, id.clone()));
            let worker_id = req.worker_id.clone();
            self.transition(&id, TaskStatus::InProgress { worker_id }, now);
            out.push(LeasedTask { task, lease });
        }
        Ok(out)
    }

    /// Complete `id` if `lease_id` is its running lease.
    pub(crate) fn ack(
        &mut self,
        id: &str,
        lease_id: &str,
        output: Value,
        now: u64,
    ) -> Result<TaskStatus> {
        let rec = self.tasks.get(id).ok_or_else(|| not_found(id))?;
        if let TaskStatus::Completed { .. } = rec.status {
            return match &rec.lease {
                Some(l) if l.id == lease_id => Ok(rec.status.clone()),
                _ => Err(lease_lost(id)),
            };
        }
        if !rec.holds(lease_id) {
            return Err(lease_lost(id));
        }
        let pipeline = rec.task.pipeline_id.clone();
        // Keep the lease on the record (out of the expiry index) so that a
        // repeated ack with it is recognised.
        if let Some(lease) = self.release(id) {
            if let Some(rec) = self.tasks.get_mut(id) {
                rec.lease = Some(lease);
            }
        }
        let status = TaskStatus::Completed { output };
        self.transition(id, status.clone(), now);
        self.results
            .entry(pipeline)
            .or_default()
            .push(id.to_string());
        Ok(status)
    }

    /// Fail `id` if `lease_id` is its running lease.
    pub(crate) fn fail(
        &mut self,
        id: &str,
        lease_id: &str,
        error: &str,
        retryable: bool,
        config: &QueueConfig,
        now: u64,
    ) -> Result<TaskStatus> {
        let rec = self.tasks.get(id).ok_or_else(|| not_found(id))?;
        if !rec.holds(lease_id) {
            return Err(lease_lost(id));
        }
        let (attempt, max_attempts) = (rec.task.attempt, rec.max_attempts);
        self.release(id);
        if retryable && attempt + 1 < max_attempts {
            let status = TaskStatus::Failed {
                error: error.to_string(),
                attempt,
            };
            self.transition(id, status.clone(), now);
            let due_at = now.saturating_add(config.retry.backoff_ms(id, attempt));
            let seq = self.next_seq();
            self.scheduled.insert((due_at, seq), id.to_string());
            Ok(status)
        } else {
            Ok(self.dead_letter(id, error, now))
        }
    }

    /// Extend the live lease `lease_id` of `id`; returns the new expiry.
    pub(crate) fn heartbeat(
        &mut self,
        id: &str,
        lease_id: &str,
        lease_ms: Option<u64>,
        config: &QueueConfig,
        now: u64,
    ) -> Result<u64> {
        if let Some(ms) = lease_ms {
            validate_lease_ms(ms)?;
        }
        let rec = self.tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        if !rec.holds(lease_id) {
            return Err(lease_lost(id));
        }
        let Some(lease) = rec.lease.as_mut() else {
            return Err(lease_lost(id));
        };
        if now >= lease.expires_at {
            return Err(lease_lost(id));
        }
        let old = lease.expires_at;
        lease.expires_at = now.saturating_add(lease_ms.unwrap_or(config.default_lease_ms));
        let new = lease.expires_at;
        self.leases.remove(&(old, id.to_string()));
        self.leases.insert((new, id.to_string()));
        Ok(new)
    }

    /// The lease a port-level ack/fail of `id` uses: the one remembered by
    /// `try_dequeue`, else the running lease.
    pub(crate) fn port_lease(&self, id: &str) -> Result<String> {
        if let Some(lease) = self.port_leases.get(id) {
            return Ok(lease.clone());
        }
        let rec = self.tasks.get(id).ok_or_else(|| not_found(id))?;
        match (&rec.status, &rec.lease) {
            (TaskStatus::InProgress { .. }, Some(l)) => Ok(l.id.clone()),
            _ => Err(lease_lost(id)),
        }
    }

    /// Remember that `try_dequeue` took `id` with `lease_id`.
    pub(crate) fn remember_port_lease(&mut self, id: &str, lease_id: &str) {
        self.port_leases
            .insert(id.to_string(), lease_id.to_string());
    }

    /// Forget the lease `try_dequeue` took for `id`.
    pub(crate) fn forget_port_lease(&mut self, id: &str) {
        self.port_leases.remove(id);
    }

    /// Everything known about `id`.
    pub(crate) fn info(&self, id: &str) -> Option<TaskInfo> {
        self.tasks.get(id).map(Record::info)
    }

    /// Counts by state.
    pub(crate) fn stats(&self) -> QueueStats {
        self.counts.stats()
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
    pub(crate) fn redrive(&mut self, id: &str, now: u64) -> Result<TaskStatus> {
        let rec = self.tasks.get_mut(id).ok_or_else(|| not_found(id))?;
        let Some((seq, _)) = rec.dead else {
            return Err(QueueError::WrongState {
                id: id.to_string(),
                state: state_name(&rec.status).to_string(),
                reason: "only a dead-lettered task can be redriven".to_string(),
            });
        };
        rec.dead = None;
        rec.task.attempt = 0;
        self.dead.remove(&seq);
        self.transition(id, TaskStatus::Pending, now);
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
