//! Queries and maintenance: status, results, stats, dead letters, redrive,
//! rescue (with the retention sweep), values set aside. Queries read; the
//! writes of a rescue are decided from its look at the store and land
//! within the claim window, like any claim.

use super::dequeue::Due;
use super::record::{next_seq, Record};
use super::HostedWorkQueue;
use crate::error::{QueueError, Result};
use crate::kv::StoreKv;
use crate::model::{validate_limit, DeadLetterEntry, QueueStats, RescueReport, SetAside, TaskInfo};
use crate::port::TaskStatus;
use serde_json::Value;

impl<S: StoreKv> HostedWorkQueue<S> {
    pub(crate) fn info(&self, id: &str) -> Result<Option<TaskInfo>> {
        if let Some(r) = self.read_one(&self.keys.done(id))? {
            return Ok(Some(r.info()));
        }
        Ok(self.read_one(&self.keys.open(id))?.map(|r| r.info()))
    }

    /// Finished records, oldest finish first.
    fn finished(&self) -> Result<Vec<Record>> {
        let view = self.view(false, true)?;
        let mut done: Vec<Record> = view.done.into_values().collect();
        done.sort_by(|a, b| (a.finished_at, &a.seq).cmp(&(b.finished_at, &b.seq)));
        Ok(done)
    }

    pub(crate) fn pipeline_results(&self, pipeline_id: &str) -> Result<Vec<(String, Value)>> {
        Ok(self
            .finished()?
            .into_iter()
            .filter(|r| r.task.pipeline_id == pipeline_id)
            .filter_map(|r| match r.status {
                TaskStatus::Completed { output } => Some((r.task.node_name, output)),
                _ => None,
            })
            .collect())
    }

    pub(crate) fn count(&self) -> Result<QueueStats> {
        let view = self.view(true, true)?;
        let now = view.read_at;
        let mut s = QueueStats {
            set_aside: view.poison.len() as u64,
            ..QueueStats::default()
        };
        for r in view.open.values() {
            if view.done_ids.contains(&r.task.id) {
                continue; // a stale copy of a finished task
            }
            match r.status {
                TaskStatus::Pending => {
                    s.pending += 1;
                    s.due += u64::from(r.ready_at <= now);
                }
                TaskStatus::InProgress { .. } => s.in_progress += 1,
                TaskStatus::Failed { .. } => s.failed += 1,
                // Claimed as a dead letter, not moved yet.
                TaskStatus::DeadLetter { .. } => s.dead_letter += 1,
                TaskStatus::Completed { .. } => s.completed += 1,
            }
        }
        for r in view.done.values() {
            match r.status {
                TaskStatus::Completed { .. } => s.completed += 1,
                _ => s.dead_letter += 1,
            }
        }
        Ok(s)
    }

    pub(crate) fn dead(&self, limit: usize) -> Result<Vec<DeadLetterEntry>> {
        validate_limit(limit)?;
        Ok(self
            .finished()?
            .into_iter()
            .rev()
            .filter_map(|r| match r.status {
                TaskStatus::DeadLetter { error } => Some(DeadLetterEntry {
                    failed_at: r.finished_at.unwrap_or(r.updated_at),
                    task: r.task,
                    error,
                }),
                _ => None,
            })
            .take(limit)
            .collect())
    }

    /// Put a dead letter back as attempt 0: claim its open record (absent)
    /// by writing it, wait, read it back, then remove the finished one.
    pub(crate) fn requeue_dead(&self, id: &str) -> Result<TaskStatus> {
        let read_at = self.now();
        let dead = self.read_one(&self.keys.done(id))?;
        let open = self.read_one(&self.keys.open(id))?;
        let Some(dead) = dead
            .clone()
            .filter(|d| matches!(d.status, TaskStatus::DeadLetter { .. }))
        else {
            let state = open.as_ref().or(dead.as_ref()).map(|r| r.status.clone());
            return match state {
                None => Err(QueueError::NotFound { id: id.to_string() }),
                Some(status) => Err(QueueError::WrongState {
                    id: id.to_string(),
                    state: crate::local::state_name(&status).to_string(),
                    reason: "only dead-lettered tasks can be redriven".to_string(),
                }),
            };
        };
        if let Some(open) = open {
            // A redrive already put it back (or is doing so).
            return Ok(open.status);
        }
        let now = self.now();
        let token = ulid::Ulid::generate().to_string();
        let mut next = dead;
        next.status = TaskStatus::Pending;
        next.task.attempt = 0;
        next.lease = None;
        next.finished_at = None;
        next.updated_at = now;
        next.ready_at = now;
        next.seq = next_seq(now);
        next.claim = Some(token.clone());
        if now > read_at + self.timing.base.store_call_ms {
            return Err(QueueError::TooSlow(
                "a redrive read the dead letter too long before writing; nothing was written, retry"
                    .to_string(),
            ));
        }
        self.kv.set(&self.keys.open(id), &next.encode())?;
        self.clock.sleep_ms(self.timing.settle_ms);
        match self.read_one(&self.keys.open(id))? {
            Some(r) if r.claim.as_deref() == Some(token.as_str()) => {
                self.kv.delete(&self.keys.done(id))?;
                Ok(TaskStatus::Pending)
            }
            Some(r) => Ok(r.status),
            None => Err(QueueError::TooSlow(
                "a redrive raced the dead letter's move; retry".to_string(),
            )),
        }
    }

    /// Rescue expired leases, promote due retries, count delays that ended,
    /// finish moves a crashed request left, remove stale open copies of
    /// finished tasks and delete finished tasks past their retention.
    pub(crate) fn maintain(&self) -> Result<RescueReport> {
        let view = self.view(true, true)?;
        let now = view.read_at;
        let mut report = RescueReport::default();
        let settled = now.saturating_sub(self.timing.base.abandon_after_ms);
        // Moves a crashed request left half done, and stale open copies.
        let mut moves = Vec::new();
        let mut stale = Vec::new();
        for r in view.open.values() {
            if view.done_ids.contains(&r.task.id) {
                if r.updated_at <= settled {
                    stale.push(self.keys.open(&r.task.id));
                }
            } else if r.status.is_terminal() && r.updated_at <= settled {
                moves.push(r.clone());
            }
        }
        self.finish_records(&moves)?;
        let due = self.due_in(&view, now);
        let (expired, other): (Vec<_>, Vec<_>) =
            due.into_iter().partition(|(_, how)| *how == Due::Expired);
        let delayed: Vec<String> = view
            .open
            .values()
            .filter(|r| {
                r.status == TaskStatus::Pending
                    && !r.promoted
                    && r.ready_at > r.created_at
                    && r.ready_at <= now
                    && r.updated_at <= r.created_at
            })
            .map(|r| r.task.id.clone())
            .collect();
        let ids: Vec<String> = other
            .into_iter()
            .filter(|(_, how)| *how != Due::Pending)
            .map(|(id, _)| id)
            .chain(delayed)
            .collect();
        let written = self.claim(&ids, false, |r, at| {
            let (how, _) = self.due(r, at).unwrap_or((Due::Pending, 0));
            let mut next = r.clone();
            match how {
                Due::Pending if !r.promoted => next.promoted = true,
                Due::Retry | Due::Rescue => {
                    next.status = TaskStatus::Pending;
                    next.task.attempt += 1;
                    next.lease = None;
                    next.updated_at = at;
                    if how == Due::Rescue {
                        next.ready_at = at;
                        next.seq = next_seq(at);
                    }
                }
                _ => return None,
            }
            Some(next)
        })?;
        for (old, new) in written.iter().map(|n| (&view.open[&n.task.id], n)) {
            match (&old.status, new.promoted) {
                (TaskStatus::InProgress { .. }, _) => report.rescued += 1,
                _ => report.promoted += 1,
            }
        }
        let ids: Vec<String> = expired.into_iter().map(|(id, _)| id).collect();
        let dead = self.claim(&ids, true, |r, at| {
            matches!(self.due(r, at), Some((Due::Expired, _))).then(|| {
                let mut next = r.clone();
                next.status = TaskStatus::DeadLetter {
                    error: super::dequeue::LEASE_EXPIRED.to_string(),
                };
                next.lease = None;
                next.updated_at = at;
                next.finished_at = Some(at);
                next.seq = next_seq(at);
                next
            })
        })?;
        report.dead_lettered += dead.len() as u64;
        self.finish_records(&dead)?;
        self.retire(&view.done, now, stale)?;
        Ok(report)
    }

    /// Delete finished tasks past `retention_ms` (and their idempotency
    /// keys), with the stale keys found.
    fn retire(
        &self,
        done: &std::collections::BTreeMap<String, Record>,
        now: u64,
        mut keys: Vec<String>,
    ) -> Result<()> {
        let retention = self.config.queue.retention_ms;
        if retention > 0 {
            for r in done.values() {
                if r.finished_at.unwrap_or(r.updated_at) + retention <= now {
                    keys.push(self.keys.done(&r.task.id));
                    if r.task.idempotency_key != r.task.id {
                        keys.push(self.keys.idempotency(&r.task.idempotency_key));
                    }
                }
            }
        }
        if !keys.is_empty() {
            self.kv.delete_many(&keys)?;
        }
        Ok(())
    }

    pub(crate) fn undecodable(&self, limit: usize) -> Result<Vec<SetAside>> {
        validate_limit(limit)?;
        let view = self.view(true, true)?;
        Ok(view
            .poison
            .into_iter()
            .take(limit)
            .map(|(key, reason)| SetAside {
                key,
                reason,
                seen_at: view.read_at,
            })
            .collect())
    }
}
